"""Loss repair cores: packet history and retransmitter (trio_rtc.rtp.repair), the NACK
generator (trio_rtc.rtp.nack) and the key frame request limiters (trio_rtc.rtp.keyframes)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_rtc.rtp.errors import RtpError
from trio_rtc.rtp.keyframes import KeyframeRequester, KeyframeResponder
from trio_rtc.rtp.nack import NackGenerator
from trio_rtc.rtp.packet import RtpPacket, parse_rtp_untrusted
from trio_rtc.rtp.repair import PacketHistory, Retransmitter, unwrap_rtx_untrusted, wrap_rtx
from trio_rtc.rtp.rtcp_feedback import GenericNack

MEDIA_SSRC = 0x1234
RTX_SSRC = 0x5678
VP8, RTX = 96, 97


def media(seq: int, payload: bytes = b"x" * 1000) -> RtpPacket:
    return RtpPacket(VP8, seq & 0xFFFF, 1000 + seq, MEDIA_SSRC, payload, extensions={1: b"0"})


# --- history and retransmission ----------------------------------------------------------


def test_history_bounds() -> None:
    history = PacketHistory(max_packets=100, max_age=1.0, max_bytes=50_000)
    for i in range(200):
        history.put(media(65_500 + i), i * 0.001)
    assert len(history) <= 100 and history.bytes_stored <= 50_000
    assert history.get((65_500 + 199) & 0xFFFF) is not None  # across the wrap
    assert history.get(65_500) is None
    history.put(media(65_500 + 200), 5.0)  # a second later: everything older goes
    assert len(history) == 1


def test_rtx_round_trip() -> None:
    original = media(40_000, b"frame data")
    rtx = wrap_rtx(original, RTX_SSRC, RTX, 7)
    wire = parse_rtp_untrusted(rtx.serialize())
    assert (wire.ssrc, wire.payload_type, wire.sequence_number) == (RTX_SSRC, RTX, 7)
    restored = unwrap_rtx_untrusted(wire, MEDIA_SSRC, {RTX: VP8})
    assert restored is not None
    assert restored.serialize() == original.serialize()


def test_rtx_unwrap_rejects_and_padding() -> None:
    packet = RtpPacket(RTX, 1, 0, RTX_SSRC, b"\x00")
    with pytest.raises(RtpError):
        unwrap_rtx_untrusted(packet, MEDIA_SSRC, {RTX: VP8})
    with pytest.raises(RtpError):
        unwrap_rtx_untrusted(RtpPacket(99, 1, 0, RTX_SSRC, b"\x00\x01x"), MEDIA_SSRC, {RTX: VP8})
    padding = RtpPacket(RTX, 1, 0, RTX_SSRC, b"", padding_size=200)
    assert unwrap_rtx_untrusted(padding, MEDIA_SSRC, {RTX: VP8}) is None
    assert unwrap_rtx_untrusted(RtpPacket(RTX, 1, 0, RTX_SSRC, b"\x00\x01"), 0, {RTX: VP8}) is None


@settings(deadline=None)
@given(st.binary(max_size=300), st.integers(0, 127))
def test_rtx_unwrap_fuzz(payload: bytes, pt: int) -> None:
    packet = RtpPacket(pt, 1, 0, RTX_SSRC, payload)
    try:
        restored = unwrap_rtx_untrusted(packet, MEDIA_SSRC, {RTX: VP8})
    except RtpError:
        return
    assert restored is None or restored.payload == payload[2:]


def test_retransmit_over_rtx_and_plain() -> None:
    retransmitter = Retransmitter(
        PacketHistory(), rtx_ssrc=RTX_SSRC, rtx_payload_types={VP8: RTX}, rtx_sequence_start=65535
    )
    for i in range(10):
        retransmitter.on_media_sent(media(i), i * 0.01)
    out = retransmitter.receive_nack(
        GenericNack.from_lost(1, MEDIA_SSRC, [3, 5]).lost_sequence_numbers(), 0.2
    )
    assert [r.original_sequence_number for r in out] == [3, 5]
    assert all(r.rtx for r in out)
    assert [r.packet.sequence_number for r in out] == [65535, 0]  # RTX numbers wrap on their own
    assert out[0].packet.payload == b"\x00\x03" + media(3).payload
    assert retransmitter.counters.retransmitted_packets_sent == 2
    assert retransmitter.counters.retransmitted_bytes_sent == 2000

    plain = Retransmitter(PacketHistory())
    plain.on_media_sent(media(1), 0.0)
    (again,) = plain.receive_nack([1, 2], 0.1)
    assert not again.rtx and again.packet is plain.history.get(1)
    assert plain.counters.not_in_history == 1


def test_retransmit_not_again_within_rtt() -> None:
    retransmitter = Retransmitter(PacketHistory())
    retransmitter.set_rtt(0.1)
    retransmitter.on_media_sent(media(1), 0.0)
    assert len(retransmitter.receive_nack([1], 0.1)) == 1
    assert retransmitter.receive_nack([1], 0.15) == []  # the first cannot have arrived yet
    assert retransmitter.counters.too_soon == 1
    assert len(retransmitter.receive_nack([1], 0.21)) == 1


def test_nack_storm_is_rate_limited() -> None:
    retransmitter = Retransmitter(PacketHistory(), ratio=0.5, floor_bps=0, min_interval=0.01)
    # 1 Mbit/s of media: 125 packets of 1000 bytes per second.
    for i in range(125):
        retransmitter.on_media_sent(media(i), i / 125)
    resent = 0
    now = 1.0
    for ms in range(1000):  # a NACK of everything every millisecond for a second
        now += 0.001
        resent += sum(r.size for r in retransmitter.receive_nack(range(125), now))
        if ms % 8 == 0:
            retransmitter.on_media_sent(media(125 + ms // 8), now)
    # At most half the media rate (plus one packet of slack) went to retransmissions.
    assert resent <= 0.5 * 125 * 1012 + 1012
    assert retransmitter.counters.rate_limited > 0


# --- NACK generator ------------------------------------------------------------------------


def test_nack_after_reorder_window_and_retries() -> None:
    gen = NackGenerator(reorder_delay=0.01, rtt=0.05, max_retries=3, max_age=1.0)
    gen.receive_packet(100, 0.0)
    gen.receive_packet(103, 0.001)  # 101 and 102 missing
    assert gen.missing == [101, 102]
    assert gen.nacks_to_send(0.005) == []  # may only be reordered
    assert gen.get_timer() == pytest.approx(0.011)
    assert gen.nacks_to_send(0.011) == [101, 102]
    gen.receive_packet(101, 0.03, recovered=True)
    assert gen.nacks_to_send(0.04) == []  # not again before one RTT
    assert gen.nacks_to_send(0.061) == [102]
    assert gen.nacks_to_send(0.111) == [102]
    assert gen.nacks_to_send(0.161) == []  # three tries, then given up
    assert gen.missing == []
    assert gen.counters.recovered == 1 and gen.counters.given_up == 1
    assert gen.counters.nack_requests == 4 and gen.counters.nack_packets == 3


def test_reordered_packet_is_not_nacked() -> None:
    gen = NackGenerator(reorder_delay=0.02)
    gen.receive_packet(65535, 0.0)
    gen.receive_packet(1, 0.001)  # 0 late, across the wrap
    gen.receive_packet(0, 0.005)
    assert gen.nacks_to_send(0.1) == []
    assert gen.counters.late_arrivals == 1 and gen.get_timer() is None


def test_far_behind_is_nacked_without_waiting() -> None:
    gen = NackGenerator(reorder_delay=0.5, reorder_packets=5)
    gen.receive_packet(0, 0.0)
    gen.receive_packet(2, 0.0)
    assert gen.nacks_to_send(0.0) == []
    for seq in range(3, 8):
        gen.receive_packet(seq, 0.001)
    assert gen.nacks_to_send(0.001) == [1]


def test_give_up_by_age() -> None:
    gen = NackGenerator(reorder_delay=0.0, rtt=0.01, max_retries=1000, max_age=0.5)
    gen.receive_packet(0, 0.0)
    gen.receive_packet(2, 0.0)
    sent = 0
    t = 0.0
    while t < 1.0:
        sent += len(gen.nacks_to_send(t))
        t += 0.01
    assert gen.missing == [] and 40 <= sent <= 51


def test_too_many_missing_asks_for_keyframe() -> None:
    gen = NackGenerator(max_missing=100)
    gen.receive_packet(0, 0.0)
    gen.receive_packet(500, 0.0)
    assert gen.missing == []
    assert gen.take_keyframe_request() and not gen.take_keyframe_request()
    gen.receive_packet(510, 0.01)  # afterwards, NACK goes on as usual
    assert len(gen.missing) == 9


def test_keyframe_clears_older_missing() -> None:
    gen = NackGenerator()
    gen.receive_packet(0, 0.0)
    gen.receive_packet(10, 0.0)
    gen.receive_packet(20, 0.0, keyframe=True)
    assert gen.missing == []


@settings(deadline=None)
@given(st.lists(st.integers(0, 0xFFFF), max_size=200))
def test_nack_generator_fuzz(seqs: list[int]) -> None:
    gen = NackGenerator(max_missing=300)
    for i, seq in enumerate(seqs):
        gen.receive_packet(seq, i * 0.001)
        assert len(gen) <= 300
        out = gen.nacks_to_send(i * 0.001 + 0.05)
        assert all(0 <= s <= 0xFFFF for s in out)


# --- key frames ----------------------------------------------------------------------------


def test_pli_limiter() -> None:
    requester = KeyframeRequester(min_interval=0.3)
    requester.request_keyframe(MEDIA_SSRC, 0.0)
    assert requester.requests_to_send(0.0) == [MEDIA_SSRC]
    first = requester.fir_entry(MEDIA_SSRC).sequence_number
    requester.request_keyframe(MEDIA_SSRC, 0.1)
    requester.request_keyframe(MEDIA_SSRC, 0.2)
    assert requester.requests_to_send(0.2) == []
    assert requester.get_timer() == pytest.approx(0.3)
    assert requester.requests_to_send(0.3) == [MEDIA_SSRC]  # deferred, not lost
    assert requester.fir_entry(MEDIA_SSRC).sequence_number == (first + 1) & 0xFF
    assert requester.requests_sent == 2 and requester.requests_suppressed == 1
    assert requester.get_timer() is None


def test_keyframe_responder_folds_bursts() -> None:
    responder = KeyframeResponder(hold_off=0.3)
    assert responder.receive_pli(1.0)
    assert not responder.receive_pli(1.05)
    assert not responder.receive_fir(0xAAAA, 1, 1.1)
    assert not responder.receive_fir(0xAAAA, 1, 2.0)  # the same FIR repeated
    assert responder.receive_fir(0xAAAA, 2, 2.0)
    responder.on_keyframe_sent(3.0)
    assert not responder.receive_pli(3.1)
    assert responder.receive_pli(3.4)
