"""STUN codec: RFC 5769 test vectors, attribute round trips, integrity and framing errors."""

from __future__ import annotations

import struct
import zlib

import pytest

from trio_rtc.stun import (
    MAGIC_COOKIE,
    MAX_ATTRIBUTES,
    Attr,
    MessageClass,
    Method,
    StunError,
    StunMessage,
    is_stun_untrusted,
    long_term_key,
    make_transaction_id,
    parse_message_untrusted,
)


def unhex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# RFC 5769 (Copyright (c) 2010 IETF Trust and the persons identified as the document authors;
# Simplified BSD License). The padding of USERNAME (§2.1) and SOFTWARE (§2.2, §2.3) is 0x20 in
# the RFC: RFC 8489 lets padding be any value, and the MESSAGE-INTEGRITY covers it.
RFC5769_REQUEST = unhex("""
    00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
    00 24 00 04 6e 00 01 ff
    80 29 00 08 93 2f f9 b1 51 26 3b 36
    00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
    00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
    80 28 00 04 e5 7a 3b cf
""")
RFC5769_IPV4_RESPONSE = unhex("""
    01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 08 00 01 a1 47 e1 12 a6 43
    00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
    80 28 00 04 c0 7d 4c 96
""")
RFC5769_IPV6_RESPONSE = unhex("""
    01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
    00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
    80 28 00 04 c8 fb 0b 4c
""")
RFC5769_LONG_TERM_REQUEST = unhex("""
    00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
    00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
    00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
    00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
    00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66
""")
RFC5769_TID = unhex("b7 e7 a7 01 bc 34 d6 86 fa 87 df ae")
SHORT_TERM_PASSWORD = b"VOkJxbRl1RmTxUk/WvJxBt"


def zero_padding(data: bytes) -> bytes:
    """The message with every attribute's padding bytes set to zero (integrity values kept)."""
    out = bytearray(data)
    pos = 20
    while pos < len(out):
        _, length = struct.unpack_from("!HH", out, pos)
        end = pos + 4 + length
        padded = pos + 4 + ((length + 3) & ~3)
        out[end:padded] = bytes(padded - end)
        pos = padded
    return bytes(out)


def without_tail(data: bytes, attr_types: set[int]) -> bytes:
    """The attribute bytes (header excluded) up to the first attribute of ``attr_types``."""
    pos = 20
    while pos < len(data):
        attr_type, length = struct.unpack_from("!HH", data, pos)
        if attr_type in attr_types:
            break
        pos += 4 + ((length + 3) & ~3)
    return data[20:pos]


INTEGRITY_TYPES: set[int] = {
    Attr.MESSAGE_INTEGRITY,
    Attr.MESSAGE_INTEGRITY_SHA256,
    Attr.FINGERPRINT,
}


def test_rfc5769_sample_request() -> None:
    msg = parse_message_untrusted(RFC5769_REQUEST)
    assert msg.method == Method.BINDING
    assert msg.message_class == MessageClass.REQUEST
    assert msg.transaction_id == RFC5769_TID
    assert list(msg.attributes) == [
        Attr.SOFTWARE,
        Attr.PRIORITY,
        Attr.ICE_CONTROLLED,
        Attr.USERNAME,
        Attr.MESSAGE_INTEGRITY,
        Attr.FINGERPRINT,
    ]
    assert msg.get_str(Attr.SOFTWARE) == "STUN test client"
    assert msg.get_int(Attr.PRIORITY) == 0x6E0001FF
    assert msg.get_int(Attr.ICE_CONTROLLED) == 0x932FF9B151263B36
    assert msg.get_str(Attr.USERNAME) == "evtj:h6vY"
    assert msg.get_int(Attr.FINGERPRINT) == 0xE57A3BCF
    assert msg.check_integrity(SHORT_TERM_PASSWORD)
    assert not msg.check_integrity(b"VOkJxbRl1RmTxUk/WvJxBu")

    again = StunMessage.request(Method.BINDING, msg.transaction_id, dict(msg.attributes))
    encoded = again.encode(key=SHORT_TERM_PASSWORD)
    # Only USERNAME is padded (with 0x20 in the RFC): identical up to the padding, and what we
    # produce verifies on its own.
    assert len(encoded) == len(RFC5769_REQUEST)
    assert without_tail(encoded, INTEGRITY_TYPES) == without_tail(
        zero_padding(RFC5769_REQUEST), INTEGRITY_TYPES
    )
    assert encoded[:20] == RFC5769_REQUEST[:20]
    reparsed = parse_message_untrusted(encoded)
    assert reparsed.check_integrity(SHORT_TERM_PASSWORD)
    assert reparsed.attributes.keys() == msg.attributes.keys()


@pytest.mark.parametrize(
    ("vector", "address"),
    [
        (RFC5769_IPV4_RESPONSE, ("192.0.2.1", 32853)),
        (RFC5769_IPV6_RESPONSE, ("2001:db8:1234:5678:11:2233:4455:6677", 32853)),
    ],
)
def test_rfc5769_sample_responses(vector: bytes, address: tuple[str, int]) -> None:
    msg = parse_message_untrusted(vector)
    assert msg.method == Method.BINDING
    assert msg.message_class == MessageClass.SUCCESS
    assert msg.get_str(Attr.SOFTWARE) == "test vector"
    assert msg.get_address(Attr.XOR_MAPPED_ADDRESS) == address
    assert msg.check_integrity(SHORT_TERM_PASSWORD)
    assert not msg.check_integrity(b"nope")

    response = msg.success_response()
    response.attributes[Attr.SOFTWARE] = "test vector"
    response.attributes[Attr.XOR_MAPPED_ADDRESS] = address
    encoded = response.encode(key=SHORT_TERM_PASSWORD)
    assert encoded[:20] == vector[:20]
    assert without_tail(encoded, INTEGRITY_TYPES) == without_tail(
        zero_padding(vector), INTEGRITY_TYPES
    )
    assert parse_message_untrusted(encoded).check_integrity(SHORT_TERM_PASSWORD)


def test_rfc5769_long_term_request_byte_for_byte() -> None:
    msg = parse_message_untrusted(RFC5769_LONG_TERM_REQUEST)
    username = "\u30de\u30c8\u30ea\u30c3\u30af\u30b9"
    assert msg.get_str(Attr.USERNAME) == username
    assert msg.get_str(Attr.NONCE) == "f//499k954d6OL34oL9FSTvy64sA"
    assert msg.get_str(Attr.REALM) == "example.org"
    assert not msg.has(Attr.FINGERPRINT)
    # The RFC's password "TheM\u00aatr\u2168" after SASLprep is "TheMatrIX"; OpaqueString (RFC 8265)
    # only applies NFC, so the caller passes the prepared form.
    key = long_term_key(username, "example.org", "TheMatrIX")
    assert msg.check_integrity(key)
    assert not msg.check_integrity(long_term_key(username, "example.org", "thematrix"))

    again = StunMessage.request(Method.BINDING, msg.transaction_id, dict(msg.attributes))
    assert again.encode(key=key, fingerprint=False) == RFC5769_LONG_TERM_REQUEST


def test_long_term_key_is_md5_of_nfc_text() -> None:
    import hashlib

    assert long_term_key("user", "realm", "pass") == hashlib.md5(b"user:realm:pass").digest()
    assert long_term_key("e\u0301", "r", "p") == long_term_key("\u00e9", "r", "p")


def test_is_stun_prefilter() -> None:
    assert is_stun_untrusted(RFC5769_REQUEST)
    assert is_stun_untrusted(memoryview(RFC5769_IPV6_RESPONSE))
    assert not is_stun_untrusted(RFC5769_REQUEST[:-4])
    assert not is_stun_untrusted(b"\x80" + RFC5769_REQUEST[1:])
    assert not is_stun_untrusted(b"\x16\xfe\xfd" + bytes(30))
    assert not is_stun_untrusted(b"")


def test_message_type_bits_for_every_method_and_class() -> None:
    for method in (*Method, 0xFFF, 0x5A5):
        for klass in MessageClass:
            msg = StunMessage(method, klass, make_transaction_id())
            data = msg.encode(fingerprint=False)
            parsed = parse_message_untrusted(data)
            assert parsed.method == method
            assert parsed.message_class is klass
    # RFC 8489 §5 examples: Binding request 0x0001, success 0x0101, error 0x0111; 0x0011 indication.
    tid = bytes(12)
    assert StunMessage.request(Method.BINDING, tid).encode(fingerprint=False)[:2] == b"\x00\x01"
    assert StunMessage(1, MessageClass.SUCCESS, tid).encode()[:2] == b"\x01\x01"
    assert StunMessage(1, MessageClass.ERROR, tid).encode()[:2] == b"\x01\x11"
    assert StunMessage.indication(Method.SEND, tid).encode()[:2] == b"\x00\x16"


def test_parsed_method_is_enum_when_known() -> None:
    data = StunMessage.request(Method.ALLOCATE).encode()
    parsed = parse_message_untrusted(data)
    assert parsed.method is Method.ALLOCATE


ROUND_TRIP_VALUES: list[tuple[int, object]] = [
    (Attr.MAPPED_ADDRESS, ("192.0.2.7", 1)),
    (Attr.XOR_MAPPED_ADDRESS, ("2001:db8::1", 65535)),
    (Attr.XOR_PEER_ADDRESS, ("10.0.0.1", 3478)),
    (Attr.XOR_RELAYED_ADDRESS, ("::ffff:192.0.2.9", 9)),
    (Attr.ALTERNATE_SERVER, ("fe80::1:2:3:4", 7)),
    (Attr.RESPONSE_ORIGIN, ("::", 0)),
    (Attr.OTHER_ADDRESS, ("255.255.255.255", 5)),
    (Attr.USERNAME, "alice:bob"),
    (Attr.REALM, "example.org"),
    (Attr.NONCE, "n\u00f6nce"),
    (Attr.SOFTWARE, "trio_rtc"),
    (Attr.ALTERNATE_DOMAIN, "turn.example.org"),
    (Attr.PRIORITY, 0x6E0001FF),
    (Attr.LIFETIME, 600),
    (Attr.CHANNEL_NUMBER, 0x4001),
    (Attr.REQUESTED_TRANSPORT, 17),
    (Attr.REQUESTED_ADDRESS_FAMILY, 0x02),
    (Attr.ADDITIONAL_ADDRESS_FAMILY, 0x02),
    (Attr.CACHE_TIMEOUT, 30),
    (Attr.CONNECTION_ID, 0xDEADBEEF),
    (Attr.ICE_CONTROLLED, 0xFFFFFFFFFFFFFFFF),
    (Attr.ICE_CONTROLLING, 1),
    (Attr.USE_CANDIDATE, None),
    (Attr.DONT_FRAGMENT, None),
    (Attr.EVEN_PORT, True),
    (Attr.ERROR_CODE, (438, "Stale Nonce")),
    (Attr.ADDRESS_ERROR_CODE, (0x02, 440, "Address Family not Supported")),
    (Attr.UNKNOWN_ATTRIBUTES, [0x0031, 0x7FFF, 0x0002]),
    (Attr.DATA, b"\x00\x01hello"),
    (Attr.RESERVATION_TOKEN, bytes(range(8))),
    (Attr.USERHASH, bytes(range(32))),
    (Attr.PASSWORD_ALGORITHM, (0x0002, b"")),
    (Attr.PASSWORD_ALGORITHMS, [(0x0002, b""), (0x0001, b"abcde")]),
    (Attr.ICMP, (3, 1, 0x01020304)),
    (Attr.ICMP, (127, 511, 0)),
    (Attr.TRANSACTION_TRANSMIT_COUNTER, (3, 1)),
    (0x7F31, b"comprehension-required, unknown"),
    (0xC057, b"\x00\x01\x00\x0a"),
]


@pytest.mark.parametrize(("attr_type", "value"), ROUND_TRIP_VALUES)
def test_attribute_round_trip(attr_type: int, value: object) -> None:
    msg = StunMessage.request(Method.ALLOCATE, attributes={attr_type: value})
    data = msg.encode()
    assert len(data) % 4 == 0
    parsed = parse_message_untrusted(data)
    assert parsed.attributes[attr_type] == value
    assert parsed.transaction_id == msg.transaction_id


def test_all_attributes_in_one_message_v4_and_v6() -> None:
    values = dict(ROUND_TRIP_VALUES)
    msg = StunMessage(Method.ALLOCATE, MessageClass.SUCCESS, attributes=values)
    parsed = parse_message_untrusted(msg.encode(key=b"k"))
    assert parsed.check_integrity(b"k")
    assert {k: v for k, v in parsed.attributes.items() if k not in INTEGRITY_TYPES} == values
    assert parsed.unknown_comprehension_required() == [0x7F31]


def test_typed_accessors() -> None:
    msg = StunMessage.request(
        Method.BINDING,
        attributes={
            Attr.XOR_MAPPED_ADDRESS: ("1.2.3.4", 5),
            Attr.PRIORITY: 7,
            Attr.USERNAME: "u",
            Attr.DATA: b"d",
            Attr.EVEN_PORT: False,
            Attr.USE_CANDIDATE: None,
        },
    )
    assert msg.get_address(Attr.XOR_MAPPED_ADDRESS) == ("1.2.3.4", 5)
    assert msg.get_address(Attr.PRIORITY) is None
    assert msg.get_int(Attr.PRIORITY) == 7
    assert msg.get_int(Attr.EVEN_PORT) is None
    assert msg.get_int(Attr.USERNAME) is None
    assert msg.get_str(Attr.USERNAME) == "u"
    assert msg.get_str(Attr.DATA) is None
    assert msg.get_bytes(Attr.DATA) == b"d"
    assert msg.get_bytes(Attr.LIFETIME) is None
    assert msg.has(Attr.USE_CANDIDATE)
    assert not msg.has(Attr.ICE_CONTROLLING)
    assert msg.error_code is None
    error = msg.error_response(487, "Role Conflict")
    assert error.message_class is MessageClass.ERROR
    assert error.transaction_id == msg.transaction_id
    assert parse_message_untrusted(error.encode()).error_code == (487, "Role Conflict")
    ok = msg.success_response()
    assert (ok.method, ok.message_class, ok.attributes) == (
        Method.BINDING,
        MessageClass.SUCCESS,
        {},
    )


def test_message_integrity_sha256_round_trip_and_truncation() -> None:
    key = b"secret key"
    msg = StunMessage.request(Method.BINDING, attributes={Attr.USERNAME: "a:b"})
    data = msg.encode(key=key, sha256=True)
    parsed = parse_message_untrusted(data)
    assert len(parsed.attributes[Attr.MESSAGE_INTEGRITY_SHA256]) == 32  # type: ignore[arg-type]
    assert Attr.MESSAGE_INTEGRITY not in parsed.attributes
    assert parsed.check_integrity(key)
    assert not parsed.check_integrity(b"other key")

    # RFC 8489 §14.6: a sender may truncate to 16 bytes; the HMAC input then counts 20 bytes.
    no_fp = msg.encode(fingerprint=False)
    body_len = len(no_fp) - 20 + 20
    head = no_fp[:2] + struct.pack("!H", body_len) + no_fp[4:20]
    import hmac

    digest = hmac.digest(key, head + no_fp[20:], "sha256")[:16]
    truncated = head + no_fp[20:] + struct.pack("!HH", Attr.MESSAGE_INTEGRITY_SHA256, 16) + digest
    parsed = parse_message_untrusted(truncated)
    assert parsed.check_integrity(key)
    assert not parsed.check_integrity(b"k")


def test_sha256_preferred_when_both_present() -> None:
    key = b"k1"
    msg = StunMessage.request(Method.BINDING, attributes={Attr.PRIORITY: 1})
    data = bytearray(msg.encode(key=key, fingerprint=False))
    # Append an MI-SHA256 computed with another key after the MI: that one must be checked.
    other = b"k2"
    new_len = len(data) - 20 + 36
    struct.pack_into("!H", data, 2, new_len)
    import hmac

    digest = hmac.digest(other, bytes(data), "sha256")
    data += struct.pack("!HH", Attr.MESSAGE_INTEGRITY_SHA256, 32) + digest
    parsed = parse_message_untrusted(bytes(data))
    assert parsed.has(Attr.MESSAGE_INTEGRITY)
    assert parsed.check_integrity(other)
    assert not parsed.check_integrity(key)


def test_check_integrity_false_without_integrity_or_raw() -> None:
    msg = StunMessage.request(Method.BINDING)
    assert not msg.check_integrity(b"k")
    assert not parse_message_untrusted(msg.encode()).check_integrity(b"k")


def test_tampering_is_detected() -> None:
    data = StunMessage.request(Method.BINDING, attributes={Attr.USERNAME: "abcd"}).encode(key=b"k")
    # Every byte the MESSAGE-INTEGRITY covers, and itself (the FINGERPRINT that follows is
    # outside it: a flip there is caught by the CRC or turns it into an ignored attribute).
    for index in range(len(data) - 8):
        tampered = bytearray(data)
        tampered[index] ^= 0x01
        try:
            parsed = parse_message_untrusted(bytes(tampered))
        except StunError:
            continue
        assert not parsed.check_integrity(b"k"), index
    # Without FINGERPRINT the MESSAGE-INTEGRITY alone catches a flipped bit in a value.
    data = StunMessage.request(Method.BINDING, attributes={Attr.PRIORITY: 5}).encode(
        key=b"k", fingerprint=False
    )
    tampered = bytearray(data)
    tampered[27] ^= 0x80
    parsed = parse_message_untrusted(bytes(tampered))
    assert parsed.get_int(Attr.PRIORITY) == 5 ^ 0x80
    assert not parsed.check_integrity(b"k")


def test_bad_fingerprint_is_rejected() -> None:
    data = bytearray(StunMessage.request(Method.BINDING).encode())
    data[-1] ^= 0xFF
    with pytest.raises(StunError, match="FINGERPRINT"):
        parse_message_untrusted(bytes(data))


def _append(data: bytes, attr: bytes) -> bytes:
    out = bytearray(data + attr)
    struct.pack_into("!H", out, 2, len(out) - 20)
    return bytes(out)


def test_attributes_after_integrity_are_ignored() -> None:
    key = b"k"
    signed = StunMessage.request(Method.BINDING, attributes={Attr.PRIORITY: 9}).encode(
        key=key, fingerprint=False
    )
    extra = struct.pack("!HHI", Attr.LIFETIME, 4, 77)
    parsed = parse_message_untrusted(_append(signed, extra))
    assert not parsed.has(Attr.LIFETIME)
    assert parsed.check_integrity(key)
    # A second MESSAGE-INTEGRITY is ignored too.
    parsed = parse_message_untrusted(_append(signed, struct.pack("!HH", 8, 20) + bytes(20)))
    assert parsed.check_integrity(key)


def test_attributes_after_fingerprint_are_ignored() -> None:
    fp = StunMessage.request(Method.BINDING).encode()
    parsed = parse_message_untrusted(_append(fp, struct.pack("!HHI", Attr.PRIORITY, 4, 1)))
    assert list(parsed.attributes) == [Attr.FINGERPRINT]


def test_duplicate_attribute_keeps_the_first() -> None:
    data = StunMessage.request(Method.BINDING, attributes={Attr.PRIORITY: 1}).encode(
        fingerprint=False
    )
    parsed = parse_message_untrusted(_append(data, struct.pack("!HHI", Attr.PRIORITY, 4, 2)))
    assert parsed.get_int(Attr.PRIORITY) == 1


def header(length: int, message_type: int = 1, cookie: int = MAGIC_COOKIE) -> bytes:
    return struct.pack("!HHI", message_type, length, cookie) + bytes(12)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes(19),
        header(0, message_type=0x8001),
        header(0, message_type=0x4001),
        header(0, cookie=0x2112A443),
        header(2) + b"\x00\x00",
        header(8) + struct.pack("!HH", Attr.SOFTWARE, 0),
        header(4) + struct.pack("!HH", Attr.SOFTWARE, 1),
        header(8) + struct.pack("!HH", Attr.PRIORITY, 5) + bytes(4),
        header(8) + struct.pack("!HH", Attr.PRIORITY, 2) + bytes(4),
        header(12) + struct.pack("!HHBBH", Attr.MAPPED_ADDRESS, 8, 0, 3, 1) + bytes(4),
        header(12) + struct.pack("!HHBBH", Attr.MAPPED_ADDRESS, 8, 0, 2, 1) + bytes(4),
        header(8) + struct.pack("!HH", Attr.USERNAME, 2) + b"\xff\xfe\x00\x00",
        header(8) + struct.pack("!HHI", Attr.ERROR_CODE, 4, 0x0000_0200),
        header(8) + struct.pack("!HHI", Attr.ERROR_CODE, 4, 0x0000_0364),
        header(8) + struct.pack("!HHI", Attr.FINGERPRINT, 4, 0),
        header(12) + struct.pack("!HH", Attr.MESSAGE_INTEGRITY, 8) + bytes(8),
        header(16) + struct.pack("!HH", Attr.MESSAGE_INTEGRITY_SHA256, 12) + bytes(12),
        header(40) + struct.pack("!HH", Attr.MESSAGE_INTEGRITY_SHA256, 36) + bytes(36),
        header(24) + struct.pack("!HH", Attr.MESSAGE_INTEGRITY_SHA256, 18) + bytes(20),
        header(8) + struct.pack("!HHI", Attr.USE_CANDIDATE, 4, 0),
        header(8) + struct.pack("!HHHH", Attr.UNKNOWN_ATTRIBUTES, 3, 1, 0),
        header(12) + struct.pack("!HHHHI", Attr.PASSWORD_ALGORITHMS, 8, 1, 8, 0),
        header(4 + 4 * 17) + struct.pack("!HH", Attr.PASSWORD_ALGORITHMS, 4 * 17) + bytes(4 * 17),
        header(4 + 2 * 130) + struct.pack("!HH", Attr.UNKNOWN_ATTRIBUTES, 2 * 130) + bytes(260),
        header(4 * (MAX_ATTRIBUTES + 1)) + struct.pack("!HH", 0x8FFF, 0) * (MAX_ATTRIBUTES + 1),
    ],
)
def test_malformed_messages_raise_stun_error(data: bytes) -> None:
    with pytest.raises(StunError):
        parse_message_untrusted(data)


def test_attribute_count_limit_is_inclusive() -> None:
    data = header(4 * MAX_ATTRIBUTES) + struct.pack("!HH", 0x8FFF, 0) * MAX_ATTRIBUTES
    assert parse_message_untrusted(data).attributes == {0x8FFF: b""}


def test_fingerprint_over_the_whole_message() -> None:
    data = StunMessage.request(Method.BINDING, bytes(12)).encode()
    crc = zlib.crc32(data[:-8]) ^ 0x5354554E
    assert data[-8:] == struct.pack("!HHI", Attr.FINGERPRINT, 4, crc)


def test_accepts_bytearray_and_memoryview() -> None:
    for data in (bytearray(RFC5769_REQUEST), memoryview(RFC5769_REQUEST)):
        msg = parse_message_untrusted(data)
        assert msg.check_integrity(SHORT_TERM_PASSWORD)


@pytest.mark.parametrize(
    ("attr_type", "value"),
    [
        (Attr.USERNAME, "x" * 509),
        (Attr.USERNAME, b"bytes"),
        (Attr.REALM, "r" * 128),
        (Attr.SOFTWARE, "\u00e9" * 128),
        (Attr.ALTERNATE_DOMAIN, "d" * 256),
        (Attr.NONCE, "\ud800"),
        (Attr.PRIORITY, -1),
        (Attr.PRIORITY, 1 << 32),
        (Attr.PRIORITY, True),
        (Attr.ICE_CONTROLLING, 1 << 64),
        (Attr.CHANNEL_NUMBER, 0x10000),
        (Attr.REQUESTED_TRANSPORT, 256),
        (Attr.USE_CANDIDATE, b""),
        (Attr.EVEN_PORT, 1),
        (Attr.ERROR_CODE, (200, "OK")),
        (Attr.ERROR_CODE, (700, "x")),
        (Attr.ERROR_CODE, 400),
        (Attr.ERROR_CODE, (400, "r" * 128)),
        (Attr.ADDRESS_ERROR_CODE, (400, "x")),
        (Attr.UNKNOWN_ATTRIBUTES, [0x10000]),
        (Attr.UNKNOWN_ATTRIBUTES, 5),
        (Attr.XOR_MAPPED_ADDRESS, ("[::1]", 1)),
        (Attr.XOR_MAPPED_ADDRESS, ("1.2.3", 1)),
        (Attr.XOR_MAPPED_ADDRESS, ("1.2.3.4", 65536)),
        (Attr.MAPPED_ADDRESS, "1.2.3.4:5"),
        (Attr.DATA, "text"),
        (Attr.DATA, b"x" * 65536),
        (Attr.PASSWORD_ALGORITHM, (1, "params")),
        (Attr.ICMP, (1, 2)),
        (Attr.ICMP, (128, 0, 0)),
        (Attr.ICMP, (0, 512, 0)),
        (Attr.TRANSACTION_TRANSMIT_COUNTER, (256, 0)),
        (0x10000, b""),
    ],
)
def test_encode_rejects_bad_values(attr_type: int, value: object) -> None:
    with pytest.raises(StunError):
        StunMessage.request(Method.BINDING, attributes={attr_type: value}).encode()


def test_encode_rejects_bad_header_fields() -> None:
    with pytest.raises(StunError):
        StunMessage(0x1000, MessageClass.REQUEST).encode()
    with pytest.raises(StunError):
        StunMessage(1, MessageClass.REQUEST, b"short").encode()
    with pytest.raises(StunError):
        StunMessage(1, MessageClass.REQUEST, attributes={Attr.DATA: b"x" * 65530}).encode()


def test_integrity_attributes_in_dict_are_recomputed() -> None:
    msg = parse_message_untrusted(RFC5769_REQUEST)
    # A parsed message re-encoded with another key carries a fresh MI, not the received one.
    data = msg.encode(key=b"other")
    again = parse_message_untrusted(data)
    assert again.check_integrity(b"other")
    assert again.attributes[Attr.MESSAGE_INTEGRITY] != msg.attributes[Attr.MESSAGE_INTEGRITY]
    # And without a key, no MESSAGE-INTEGRITY at all.
    assert not parse_message_untrusted(msg.encode()).has(Attr.MESSAGE_INTEGRITY)


def test_icmp_layout_and_scope_id() -> None:
    # RFC 8656 §18.13 figure: Reserved (16) | ICMP Type (7) | ICMP Code (9) | Error Data (32).
    msg = StunMessage.indication(Method.DATA, bytes(12), {Attr.ICMP: (3, 4, 1280)})
    assert msg.encode(fingerprint=False)[24:] == unhex("0000 0604 0000 0500")
    # A link-local peer as a socket reports it: the scope id is not sent.
    msg = StunMessage.request(1, attributes={Attr.MAPPED_ADDRESS: ("fe80::1%eth0", 9)})
    assert parse_message_untrusted(msg.encode()).get_address(Attr.MAPPED_ADDRESS) == ("fe80::1", 9)


def test_xor_address_matches_rfc_bytes() -> None:
    msg = StunMessage(
        Method.BINDING,
        MessageClass.SUCCESS,
        RFC5769_TID,
        {Attr.XOR_MAPPED_ADDRESS: ("2001:db8:1234:5678:11:2233:4455:6677", 32853)},
    )
    data = msg.encode(fingerprint=False)
    assert data[20:] == unhex(
        "00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9"
    )
