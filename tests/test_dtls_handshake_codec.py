"""Handshake message codec, fragmentation and reassembly, with hypothesis fuzzing."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_rtc.dtls.handshake import (
    Certificate,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    ClientKeyExchange,
    Finished,
    HandshakeFragment,
    HelloVerifyRequest,
    Reassembler,
    ServerHello,
    ServerHelloDone,
    ServerKeyExchange,
    encode_handshake,
    fragment_handshake,
    handshake_fragments_untrusted,
    u16_list_extension_untrusted,
    use_srtp_untrusted,
)
from trio_rtc.dtls.records import DtlsError

MESSAGES = [
    ClientHello(
        b"r" * 32, b"", b"cookie", [0xC02B, 0xC02F], b"\x00", {10: b"\x00\x02\x00\x1d", 23: b""}
    ),
    ServerHello(b"s" * 32, b"id", 0xC02B, {0xFF01: b"\x00"}),
    HelloVerifyRequest(b"c" * 20),
    Certificate([b"der-one", b"der-two"]),
    ServerKeyExchange(29, b"k" * 32, 0x0403, b"sig"),
    CertificateRequest(b"\x40\x01", [0x0403, 0x0804]),
    ServerHelloDone(),
    ClientKeyExchange(b"\x04" + b"p" * 64),
    CertificateVerify(0x0403, b"signature"),
    Finished(b"v" * 12),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: object) -> None:
    encoded = message.encode()  # type: ignore[attr-defined]
    assert type(message).parse_untrusted(encoded) == message  # type: ignore[attr-defined]


def test_client_hello_without_extensions() -> None:
    hello = ClientHello(b"r" * 32, b"", b"", [0xC02B], b"\x00", {})
    encoded = hello.encode()[:-2]  # extensions block absent entirely, as TLS allows
    assert ClientHello.parse_untrusted(encoded).extensions == {}


def test_duplicate_extension_refused() -> None:
    hello = ClientHello(b"r" * 32, b"", b"", [0xC02B], b"\x00", {})
    body = hello.encode()[:-2] + b"\x00\x08" + b"\x00\x17\x00\x00" * 2
    with pytest.raises(DtlsError):
        ClientHello.parse_untrusted(body)


def test_extension_bodies() -> None:
    assert u16_list_extension_untrusted(b"\x00\x04\x00\x1d\x00\x17") == [29, 23]
    assert use_srtp_untrusted(b"\x00\x02\x00\x07\x00") == ([7], b"")
    for bad in (b"\x00\x03\x00\x1d\x00", b"\x00\x02\x00"):
        with pytest.raises(DtlsError):
            u16_list_extension_untrusted(bad)


def test_fragment_and_reassemble_out_of_order() -> None:
    body = bytes(random.Random(1).randrange(256) for _ in range(3000))
    fragments = fragment_handshake(11, 3, body, 500)
    assert len(fragments) == 6
    parsed = [f for data in fragments for f in handshake_fragments_untrusted(data)]
    random.Random(2).shuffle(parsed)
    reassembler = Reassembler()
    reassembler.next_seq = 3
    for fragment in parsed[:-1] + parsed[:2]:  # duplicates are harmless
        reassembler.add_untrusted(fragment, epoch=0)
        assert reassembler.pop_message() is None
    reassembler.add_untrusted(parsed[-1], epoch=0)
    assert reassembler.pop_message() == (11, body, 0)
    assert reassembler.pop_message() is None
    assert encode_handshake(11, 3, body)[12:] == body


def test_overlapping_fragments() -> None:
    body = bytes(range(200))
    reassembler = Reassembler()
    for start, end in ((50, 120), (0, 60), (100, 200)):
        reassembler.add_untrusted(HandshakeFragment(1, 200, 0, start, body[start:end]), 0)
    assert reassembler.pop_message() == (1, body, 0)


def test_reassembler_window_and_conflicts() -> None:
    reassembler = Reassembler(window=4)
    reassembler.add_untrusted(
        HandshakeFragment(1, 10, 9, 0, b"x" * 10), 0
    )  # too far ahead: ignored
    assert reassembler._partial == {}
    reassembler.add_untrusted(HandshakeFragment(1, 10, 0, 0, b"x" * 5), 0)
    with pytest.raises(DtlsError):
        reassembler.add_untrusted(HandshakeFragment(2, 10, 0, 5, b"x" * 5), 0)
    with pytest.raises(DtlsError):
        reassembler.add_untrusted(HandshakeFragment(1, 10, 0, 5, b"x" * 5), 1)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fragment_parser_fuzz(data: bytes) -> None:
    reassembler = Reassembler()
    try:
        fragments = handshake_fragments_untrusted(data)
    except DtlsError:
        return
    for fragment in fragments:
        try:
            reassembler.add_untrusted(fragment, 0)
        except DtlsError:
            pass
    while reassembler.pop_message() is not None:
        pass


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(MESSAGES), st.binary(max_size=120), st.integers(0, 200))
def test_message_parsers_fuzz(message: object, noise: bytes, cut: int) -> None:
    """Random bytes, and valid messages truncated or with bytes spliced in, give DtlsError or a
    value, nothing else."""
    encoded = message.encode()  # type: ignore[attr-defined]
    for candidate in (noise, encoded[:cut], encoded[:cut] + noise, noise + encoded):
        for cls in {type(m) for m in MESSAGES}:
            try:
                cls.parse_untrusted(candidate)  # type: ignore[attr-defined]
            except DtlsError:
                pass
