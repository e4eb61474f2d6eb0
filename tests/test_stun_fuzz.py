"""Hypothesis: the STUN parser only ever returns a message or raises StunError."""

from __future__ import annotations

import ipaddress
import socket
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_rtc.stun import (
    MAGIC_COOKIE,
    Attr,
    MessageClass,
    StunError,
    StunMessage,
    is_stun_untrusted,
    parse_message_untrusted,
)

# One value of every attribute kind (self-contained: test modules do not import each other).
SAMPLE_VALUES: list[tuple[int, object]] = [
    (Attr.MAPPED_ADDRESS, ("192.0.2.7", 1)),
    (Attr.XOR_MAPPED_ADDRESS, ("2001:db8::1", 65535)),
    (Attr.XOR_RELAYED_ADDRESS, ("10.1.2.3", 3478)),
    (Attr.ALTERNATE_SERVER, ("::1", 7)),
    (Attr.USERNAME, "alice:bob"),
    (Attr.REALM, "example.org"),
    (Attr.NONCE, "n\u00f6nce"),
    (Attr.ALTERNATE_DOMAIN, "turn.example.org"),
    (Attr.LIFETIME, 600),
    (Attr.CHANNEL_NUMBER, 0x4001),
    (Attr.REQUESTED_TRANSPORT, 17),
    (Attr.REQUESTED_ADDRESS_FAMILY, 0x02),
    (Attr.ICE_CONTROLLING, 0x0123456789ABCDEF),
    (Attr.USE_CANDIDATE, None),
    (Attr.DONT_FRAGMENT, None),
    (Attr.EVEN_PORT, True),
    (Attr.ERROR_CODE, (438, "Stale Nonce")),
    (Attr.ADDRESS_ERROR_CODE, (0x01, 440, "Address Family not Supported")),
    (Attr.UNKNOWN_ATTRIBUTES, [0x0031, 0x7FFF]),
    (Attr.DATA, b"\x00\x01hello"),
    (Attr.RESERVATION_TOKEN, bytes(range(8))),
    (Attr.USERHASH, bytes(range(32))),
    (Attr.PASSWORD_ALGORITHM, (0x0002, b"")),
    (Attr.PASSWORD_ALGORITHMS, [(0x0002, b""), (0x0001, b"abcde")]),
    (Attr.ICMP, (3, 1, 0x01020304)),
    (Attr.TRANSACTION_TRANSMIT_COUNTER, (3, 1)),
    (0x7F31, b"comprehension-required, unknown"),
]
_ALL = dict(SAMPLE_VALUES)
SEEDS = [
    StunMessage(1, MessageClass.REQUEST, attributes=_ALL).encode(key=b"k"),
    StunMessage(3, MessageClass.ERROR, attributes=_ALL).encode(key=b"k", sha256=True),
    StunMessage(1, MessageClass.SUCCESS, attributes=_ALL).encode(fingerprint=False),
    StunMessage(7, MessageClass.INDICATION, attributes={Attr.DATA: b"x" * 33}).encode(),
]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_stun_error(data: bytes) -> StunMessage | None:
    is_stun_untrusted(data)
    try:
        msg = parse_message_untrusted(data)
    except StunError:
        return None
    # Everything a caller then does with a parsed message must be exception-free too.
    msg.check_integrity(b"key")
    msg.unknown_comprehension_required()
    for attr_type in msg.attributes:
        msg.get_address(attr_type)
        msg.get_int(attr_type)
        msg.get_str(attr_type)
        msg.get_bytes(attr_type)
    _ = msg.error_code
    return msg


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes(data: bytes) -> None:
    parse_or_stun_error(data)


@st.composite
def stun_shaped(draw: st.DrawFn) -> bytes:
    """A valid header over a soup of TLVs of known and unknown types."""
    known = [int(a) for a in Attr]
    body = bytearray()
    for _ in range(draw(st.integers(0, 12))):
        attr_type = draw(st.sampled_from(known) | st.integers(0, 0xFFFF))
        value = draw(st.binary(max_size=40))
        length = draw(st.sampled_from([len(value), len(value) + 1, max(len(value) - 1, 0)]))
        body += struct.pack("!HH", attr_type, length) + value + bytes(-len(value) & 3)
    if len(body) % 4:
        body += bytes(-len(body) & 3)
    message_type = draw(st.integers(0, 0x3FFF))
    tid = draw(st.binary(min_size=12, max_size=12))
    return struct.pack("!HHI", message_type, len(body), MAGIC_COOKIE) + tid + bytes(body)


@FUZZ
@given(stun_shaped())
def test_stun_shaped_soup(data: bytes) -> None:
    parse_or_stun_error(data)


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=6),
)
def test_flipped_bytes(seed: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(seed)
    for index, mask in flips:
        data[index % len(data)] ^= mask
    parse_or_stun_error(bytes(data))


@FUZZ
@given(st.sampled_from(SEEDS), st.integers(0, 200), st.binary(max_size=40), st.booleans())
def test_truncated_and_extended(seed: bytes, cut: int, extra: bytes, fix_length: bool) -> None:
    data = bytearray(seed[: min(cut, len(seed))] + extra)
    if fix_length and len(data) >= 20:
        struct.pack_into("!H", data, 2, (len(data) - 20) & 0xFFFF)
    parse_or_stun_error(bytes(data))


def socket_text(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The text form sockets report (inet_ntop), which is what the codec returns: it differs
    from ``str(ip)`` for IPv4-mapped IPv6 addresses on Python 3.11."""
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    return socket.inet_ntop(family, ip.packed)


@st.composite
def messages(draw: st.DrawFn) -> StunMessage:
    chosen = draw(st.lists(st.sampled_from(SAMPLE_VALUES), max_size=10))
    attributes = dict(chosen)
    extra = draw(st.dictionaries(st.integers(0xC000, 0xFFFF), st.binary(max_size=30), max_size=3))
    attributes.update(extra)
    attributes[int(Attr.SOFTWARE)] = draw(st.text(max_size=20))
    attributes[int(Attr.PRIORITY)] = draw(st.integers(0, 0xFFFFFFFF))
    attributes[int(Attr.XOR_PEER_ADDRESS)] = draw(
        st.tuples(st.ip_addresses().map(socket_text), st.integers(0, 65535))
    )
    return StunMessage(
        draw(st.integers(0, 0xFFF)),
        draw(st.sampled_from(list(MessageClass))),
        draw(st.binary(min_size=12, max_size=12)),
        attributes,
    )


@FUZZ
@given(messages(), st.none() | st.binary(max_size=40), st.booleans(), st.booleans())
def test_encode_parse_round_trip(
    msg: StunMessage, key: bytes | None, sha256: bool, fingerprint: bool
) -> None:
    data = msg.encode(key=key, sha256=sha256, fingerprint=fingerprint)
    assert is_stun_untrusted(data)
    parsed = parse_message_untrusted(data)
    assert parsed.method == msg.method
    assert parsed.message_class == msg.message_class
    assert parsed.transaction_id == msg.transaction_id
    computed = {Attr.MESSAGE_INTEGRITY, Attr.MESSAGE_INTEGRITY_SHA256, Attr.FINGERPRINT}
    assert {k: v for k, v in parsed.attributes.items() if k not in computed} == msg.attributes
    assert list(parsed.attributes)[: len(msg.attributes)] == list(msg.attributes)
    if key is not None:
        assert parsed.check_integrity(key)
        assert not parsed.check_integrity(key + b"x")
    assert parsed.has(Attr.FINGERPRINT) == fingerprint
