"""SACK policy: one SACK for a burst handed over in one step (unless it must report a gap or
duplicates), and slow start that keeps its pace when SACKs acknowledge whole bursts."""

from __future__ import annotations

from test_sctp_harness import Pair

from trio_rtc.sctp.association import SctpAssociation
from trio_rtc.sctp.chunks import ChunkType, decode_chunks_untrusted, decode_sack_untrusted
from trio_rtc.sctp.congestion import CongestionControl


def sacks_in(packets: list[bytes]) -> list[tuple[int, int]]:
    """(cumulative TSN, number of gap blocks) of every SACK in ``packets``."""
    found = []
    for packet in packets:
        for chunk in decode_chunks_untrusted(packet):
            if chunk.type == ChunkType.SACK:
                sack = decode_sack_untrusted(chunk)
                found.append((sack.cumulative_tsn_ack, len(sack.gap_blocks)))
    return found


def burst(pair: Pair, count: int) -> list[bytes]:
    sender: SctpAssociation = pair.a
    for _ in range(count):
        sender.send_message(1, 53, b"x" * 1100, now=pair.now)
    packets = sender.datagrams_to_send(pair.now)
    assert len(packets) == count  # the initial cwnd admits four
    return packets


def test_a_burst_in_one_step_gets_one_sack() -> None:
    pair = Pair()
    pair.connect()
    packets = burst(pair, 4)
    receiver = pair.b
    for packet in packets:
        receiver.receive_datagram(packet, pair.now)
    [(cumulative, gaps)] = sacks_in(receiver.datagrams_to_send(pair.now))
    assert gaps == 0 and cumulative == receiver.receiver.cumulative_tsn  # type: ignore[union-attr]


def test_sacks_reporting_a_gap_still_go_per_packet() -> None:
    pair = Pair()
    pair.connect()
    first, _lost, *rest = burst(pair, 4)
    receiver = pair.b
    for packet in [first, *rest]:
        receiver.receive_datagram(packet, pair.now)
    sacks = sacks_in(receiver.datagrams_to_send(pair.now))
    # The packet before the hole may be acked later; every one after it reports the gap.
    assert [gaps for _, gaps in sacks][-len(rest) :] == [1] * len(rest)


def test_slow_start_counts_bytes_up_to_half_of_what_was_acked() -> None:
    mtu = 1200
    cc = CongestionControl(mtu=mtu, peer_rwnd=1 << 20)
    start = cc.cwnd
    # One SACK for two full packets: one MTU, as RFC 9260 §7.2.1 gives per SACK.
    cc.on_cumulative_ack(2 * 1172, cc.cwnd, 1)
    assert cc.cwnd == start + mtu
    # One SACK for a burst of 20 packets: what ten SACKs (one per two packets) would give.
    before = cc.cwnd
    cc.on_cumulative_ack(20 * 1172, cc.cwnd, 21)
    assert cc.cwnd == before + 10 * 1172
    # One small chunk: never more than what was acked.
    before = cc.cwnd
    cc.on_cumulative_ack(100, cc.cwnd, 22)
    assert cc.cwnd == before + 100
