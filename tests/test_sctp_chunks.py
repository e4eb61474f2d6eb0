"""SCTP codec: CRC32c vectors, chunk round trips, and hypothesis fuzzing of every parser and of
the association's packet input (garbage is counted and dropped, never raised)."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sctp_harness import Pair

from trio_rtc.sctp.chunks import (
    ChunkType,
    ForwardTsnChunk,
    IncomingResetRequest,
    InitChunk,
    OutgoingResetRequest,
    Parameter,
    RawChunk,
    ReconfigParameter,
    ReconfigResponse,
    SackChunk,
    SctpError,
    decode_chunk_body_untrusted,
    decode_chunks_untrusted,
    decode_forward_tsn_untrusted,
    decode_init_untrusted,
    decode_reconfig_untrusted,
    decode_sack_untrusted,
    encode_chunk,
    encode_forward_tsn,
    encode_init,
    encode_packet,
    encode_reconfig,
    encode_sack,
    verify_packet_untrusted,
)
from trio_rtc.sctp.crc32c import crc32c, crc32c_pure
from trio_rtc.sctp.events import MessageReceived
from trio_rtc.sctp.handshake import StateCookie

# RFC 3720 Appendix B.4 test vectors for CRC32c.
VECTORS = [
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
]


def test_crc32c_vectors() -> None:
    for data, expected in VECTORS:
        assert crc32c(data) == expected
        assert crc32c_pure(data) == expected


@given(st.binary(max_size=300))
def test_crc32c_fallback_matches(data: bytes) -> None:
    assert crc32c_pure(data) == crc32c(data)


def _single(chunk: bytes) -> RawChunk:
    (raw,) = decode_chunks_untrusted(b"\x00" * 12 + chunk)
    return raw


def test_round_trips() -> None:
    init = InitChunk(0xDEADBEEF, 65536, 10, 20, 7, [Parameter(0xC000, b""), Parameter(7, b"abc")])
    assert decode_init_untrusted(_single(encode_init(ChunkType.INIT, init))) == init
    sack = SackChunk(0xFFFFFFFE, 1000, [(2, 3), (5, 9)], [1, 2, 0xFFFFFFFF])
    assert decode_sack_untrusted(_single(encode_sack(sack))) == sack
    forward = ForwardTsnChunk(12345, [(1, 2), (65535, 65535)])
    assert decode_forward_tsn_untrusted(_single(encode_forward_tsn(forward))) == forward
    parameters: list[ReconfigParameter] = [
        OutgoingResetRequest(1, 2, 3, [4, 5, 6]),
        IncomingResetRequest(9, []),
        ReconfigResponse(1, 6),
        ReconfigResponse(1, 1, 10, 20),
    ]
    assert decode_reconfig_untrusted(_single(encode_reconfig(parameters))).parameters == parameters


def test_packet_checksum_and_zero_checksum() -> None:
    packet = encode_packet(5000, 5000, 42, [encode_chunk(ChunkType.COOKIE_ACK)])
    assert verify_packet_untrusted(packet, accept_zero_checksum=False) == (5000, 5000, 42, False)
    corrupted = packet[:-1] + b"\x01"
    try:
        verify_packet_untrusted(corrupted, accept_zero_checksum=False)
    except SctpError:
        pass
    else:
        raise AssertionError("corruption not detected")
    zero = encode_packet(5000, 5000, 42, [encode_chunk(ChunkType.COOKIE_ACK)], zero_checksum=True)
    assert zero[8:12] == bytes(4)
    assert verify_packet_untrusted(zero, accept_zero_checksum=True)[3]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_fuzz_packet_level_parsers(data: bytes) -> None:
    for accept in (False, True):
        try:
            verify_packet_untrusted(data, accept_zero_checksum=accept)
        except SctpError:
            pass
    try:
        decode_chunks_untrusted(data, 0)
    except SctpError:
        pass
    try:
        StateCookie.decode_untrusted(data, b"k" * 32)
    except SctpError:
        pass


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 130, 192, 63, 64, 127, 128, 255]),
    st.integers(0, 255),
    st.binary(max_size=120),
)
def test_fuzz_chunk_decoders(chunk_type: int, flags: int, value: bytes) -> None:
    try:
        decode_chunk_body_untrusted(RawChunk(chunk_type, flags, value))
    except SctpError:
        pass


def _chunk_strategy() -> st.SearchStrategy[bytes]:
    raw = st.binary(max_size=64)
    typed = st.builds(
        lambda t, f, v: struct.pack("!BBH", t, f, 4 + len(v)) + v + b"\x00" * (-len(v) % 4),
        st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 130, 192, 63, 64, 128, 200]),
        st.integers(0, 255),
        st.binary(max_size=60),
    )
    return st.one_of(raw, typed)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(_chunk_strategy(), min_size=1, max_size=4), st.booleans())
def test_fuzz_association_never_crashes(chunks: list[bytes], good_tag: bool) -> None:
    """Garbage in a packet with a valid header and checksum: dropped or handled, never raised."""
    pair = Pair(seed=77)
    pair.connect()
    core = pair.b
    tag = core.local_tag if good_tag else 0
    body = b"".join(chunks)
    body += b"\x00" * (-len(body) % 4)
    packet = encode_packet(core.remote_port, core.local_port, tag, [body])
    core.receive_datagram(packet, pair.now)
    core.datagrams_to_send(pair.now)
    while core.next_event() is not None:
        pass
    # Whatever happened, the core still answers timers without raising.
    deadline = core.get_timer()
    if deadline is not None:
        core.handle_timer(deadline)
        core.datagrams_to_send(deadline)


def test_association_still_works_after_garbage() -> None:
    pair = Pair(seed=3)
    pair.connect()
    junk = [
        b"",
        b"\x00" * 11,
        b"\x13\x88\x13\x88" + b"\xff" * 40,
        encode_packet(5000, 5000, pair.b.local_tag, [b"\x00\x03\x00\x08abcd"]),
        encode_packet(5000, 5000, pair.b.local_tag, [b"\x00\x00\x00\x03"]),
        encode_packet(5000, 5000, pair.b.local_tag, [b"\xc1\x00\x00\x04"]),
        encode_packet(5000, 5000, 12345, [encode_chunk(ChunkType.COOKIE_ACK)]),
        encode_packet(4000, 5000, pair.b.local_tag, [encode_chunk(ChunkType.COOKIE_ACK)]),
    ]
    for packet in junk:
        pair.b.receive_datagram(packet, pair.now)
    stats = pair.b.stats
    assert stats.malformed_packets >= 4 and stats.foreign_packets == 2
    assert stats.unknown_chunks == 1
    pair.a.send_message(0, 53, b"still alive", now=pair.now)
    pair.run(lambda: bool(pair.of(pair.b, MessageReceived)))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from([1, 2, 10, 11, 6]), st.binary(max_size=80), st.integers(0, 2**32 - 1))
def test_fuzz_handshake_chunks_on_fresh_core(chunk_type: int, value: bytes, tag: int) -> None:
    from trio_rtc.sctp.association import SctpAssociation

    for connect in (False, True):
        core = SctpAssociation(is_client=False)
        if connect:
            core.connect(0.0)
            core.datagrams_to_send(0.0)
        packet = encode_packet(5000, 5000, tag, [encode_chunk(chunk_type, 0, value)])
        core.receive_datagram(packet, 0.0)
        core.datagrams_to_send(0.0)
        while core.next_event() is not None:
            pass
