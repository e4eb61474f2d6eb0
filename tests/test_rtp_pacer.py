"""The pacer (trio_rtc.rtp.pacer): spacing, priorities, queue bounds, probe clusters."""

from __future__ import annotations

import itertools

import pytest

from trio_rtc.rtp.gcc import ProbeCluster
from trio_rtc.rtp.pacer import Paced, Pacer, PacketKind


def run(pacer: Pacer[str], until: float, start: float = 0.0) -> list[tuple[float, Paced[str]]]:
    """Drive the pacer by its own timer, as the driver would."""
    out: list[tuple[float, Paced[str]]] = []
    now = start
    while True:
        out.extend((now, p) for p in pacer.datagrams_to_send(now))
        timer = pacer.get_timer()
        if timer is None or timer > until:
            return out
        assert timer >= now  # never a deadline in the past (the driver would spin)
        now = max(timer, now)


def test_spacing_follows_the_rate() -> None:
    # 1 Mbit/s estimate, factor 1: 1000-byte packets every 8 ms.
    pacer: Pacer[str] = Pacer(1_000_000, pacing_factor=1.0, max_burst=0.0)
    pacer.enqueue_many([f"v{i}" for i in range(50)], [1000] * 50, PacketKind.VIDEO, 0.0)
    sent = run(pacer, 10.0)
    times = [t for t, _ in sent]
    assert [p.item for _, p in sent] == [f"v{i}" for i in range(50)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g == pytest.approx(0.008) for g in gaps)


def test_default_factor_and_rate_change() -> None:
    pacer: Pacer[str] = Pacer(1_000_000)
    assert pacer.pacing_rate == 2_500_000
    pacer.enqueue_many(["a"] * 100, [1250] * 100, PacketKind.VIDEO, 0.0)
    sent = run(pacer, 10.0)
    duration = sent[-1][0] - sent[0][0]
    # 125,000 bytes at 2.5 Mbit/s = 0.4 s (less the first 5 ms burst).
    assert duration == pytest.approx(0.4, abs=0.01)
    pacer.set_estimate(2_000_000)
    assert pacer.pacing_rate == 5_000_000


def test_priorities() -> None:
    pacer: Pacer[str] = Pacer(100_000, pacing_factor=1.0, max_burst=0.0)
    pacer.enqueue_many(["v1", "v2"], [1000, 1000], PacketKind.VIDEO, 0.0)
    pacer.enqueue("r1", 1000, PacketKind.RETRANSMISSION, 0.0)
    pacer.enqueue("a1", 100, PacketKind.AUDIO, 0.0)
    first = pacer.datagrams_to_send(0.0)
    assert [p.item for p in first] == ["a1"]  # audio at once, counted against the budget
    pacer.enqueue("a2", 100, PacketKind.AUDIO, 0.001)
    assert [p.item for p in pacer.datagrams_to_send(0.001)] == ["a2"]  # audio is never held
    rest = run(pacer, 10.0, start=0.002)
    assert [p.item for _, p in rest] == ["r1", "v1", "v2"]  # retransmissions before video
    with pytest.raises(ValueError):
        pacer.enqueue("p", 100, PacketKind.PADDING, 0.0)


def test_queue_drains_within_max_queue_time() -> None:
    pacer: Pacer[str] = Pacer(100_000, pacing_factor=1.0, max_queue_time=2.0)
    # 10 s of data at the pacing rate: the rate is raised to send it within 2 s.
    pacer.enqueue_many(["v"] * 125, [1000] * 125, PacketKind.VIDEO, 0.0)
    assert pacer.expected_queue_time == pytest.approx(2.0)
    sent = run(pacer, 100.0)
    assert len(sent) == 125 and sent[-1][0] <= 2.0


def test_queue_bound_drops_oldest_video() -> None:
    pacer: Pacer[str] = Pacer(100_000, max_queue_packets=10)
    pacer.enqueue("a", 100, PacketKind.AUDIO, 0.0)
    pacer.enqueue_many([f"v{i}" for i in range(20)], [500] * 20, PacketKind.VIDEO, 0.0)
    assert pacer.queued_packets == 10
    assert pacer.counters.packets_dropped == 11
    sent = [p.item for _, p in run(pacer, 100.0)]
    assert sent == ["a"] + [f"v{i}" for i in range(11, 20)]


def test_probe_cluster_uses_media_then_padding() -> None:
    pacer: Pacer[str] = Pacer(300_000, max_burst=0.0)
    pacer.enqueue_many(["v1", "v2"], [1000, 1000], PacketKind.VIDEO, 0.0)
    pacer.add_probe_cluster(ProbeCluster(7, 2_000_000, 6000, 5))
    sent = run(pacer, 1.0)
    probe = [(t, p) for t, p in sent if p.probe_cluster == 7]
    assert [p.item for _, p in probe[:2]] == ["v1", "v2"]
    assert all(p.item is None and p.kind is PacketKind.PADDING for _, p in probe[2:])
    assert sum(p.size for _, p in probe) >= 6000 and len(probe) >= 5
    # Sent at the probe's rate: bytes before the last packet over the time they took.
    elapsed = probe[-1][0] - probe[0][0]
    rate = sum(p.size for _, p in probe[:-1]) * 8 / elapsed
    assert rate == pytest.approx(2_000_000, rel=0.05)
    assert pacer.counters.probe_clusters_sent == 1
    assert pacer.get_timer() is None


def test_at_high_rates_a_wake_up_releases_a_few_packets_and_the_rate_holds() -> None:
    # 10 Mbit/s x 2.5: a 2 ms step holds 6,250 bytes, five 1,200-byte packets.
    pacer: Pacer[str] = Pacer(10_000_000, max_burst=0.0)
    count = 500
    pacer.enqueue_many([f"v{i}" for i in range(count)], [1200] * count, PacketKind.VIDEO, 0.0)
    sent = run(pacer, 10.0)
    assert [p.item for _, p in sent] == [f"v{i}" for i in range(count)]
    wake_ups = len({t for t, _ in sent})
    assert wake_ups <= count / 4, wake_ups
    # The average rate is still the pacing rate: 500 x 1,200 bytes at 25 Mbit/s is 192 ms.
    assert sent[-1][0] == pytest.approx(count * 1200 * 8 / 25_000_000, abs=0.003)


def test_after_a_back_off_retransmissions_stay_within_their_share_and_stale_ones_go() -> None:
    from trio_rtc.rtp.pacer import (
        RETRANSMISSION_LIMIT_SECONDS,
        RETRANSMISSION_MAX_WAIT,
        RETRANSMISSION_SHARE,
    )

    pacer: Pacer[str] = Pacer(3_000_000)
    pacer.datagrams_to_send(0.0)
    pacer.limit_retransmissions(0.0, 1_000_000)
    pacer.set_estimate(1_000_000)
    assert pacer.retransmissions_limited
    # 40 resends of a dropped burst, and a frame of video behind them.
    pacer.enqueue_many([f"r{i}" for i in range(40)], [1200] * 40, PacketKind.RETRANSMISSION, 0.0)
    pacer.enqueue_many([f"v{i}" for i in range(4)], [1200] * 4, PacketKind.VIDEO, 0.0)
    sent = run(pacer, 0.5)
    resent = [(t, p) for t, p in sent if p.kind is PacketKind.RETRANSMISSION]
    video = [p.item for _, p in sent if p.kind is PacketKind.VIDEO]
    assert video == [f"v{i}" for i in range(4)]  # media is not held behind them
    # Within RETRANSMISSION_MAX_WAIT at most the share of the new estimate (plus one packet
    # of budget) went; the rest was dropped as stale.
    allowed = 1_000_000 * RETRANSMISSION_SHARE / 8 * RETRANSMISSION_MAX_WAIT + 1200
    assert sum(p.size for _, p in resent) <= allowed + 1200
    assert all(t <= RETRANSMISSION_MAX_WAIT + 0.001 for t, _ in resent)
    assert pacer.counters.retransmissions_dropped == 40 - len(resent)
    assert pacer.counters.retransmissions_dropped > 30
    assert pacer.queued_packets == 0
    # Once the limit is over, resends go at the pacing rate again.
    later = RETRANSMISSION_LIMIT_SECONDS + 0.1
    pacer.enqueue_many([f"s{i}" for i in range(10)], [1200] * 10, PacketKind.RETRANSMISSION, later)
    assert not pacer.retransmissions_limited
    again = run(pacer, later + 1.0, start=later)
    assert [p.item for _, p in again] == [f"s{i}" for i in range(10)]
    assert pacer.counters.retransmissions_dropped == 40 - len(resent)


def test_a_limited_retransmission_queue_sets_a_timer_that_moves_forward() -> None:
    pacer: Pacer[str] = Pacer(1_000_000)
    pacer.datagrams_to_send(0.0)
    pacer.limit_retransmissions(0.0, 1_000_000)
    pacer.enqueue_many(["a", "b", "c"], [1200] * 3, PacketKind.RETRANSMISSION, 0.0)
    sent = run(pacer, 1.0)  # asserts every timer is now or later (no spin)
    assert sent  # the first within its budget, the others dropped or sent as it refills
    assert pacer.get_timer() is None
