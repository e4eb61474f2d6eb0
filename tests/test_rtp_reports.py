"""RTCP scheduling and report generation (trio_rtc.rtp.reports): RFC 3550 §6.3/A.7 intervals
with a seeded Random, compound layout (SR/RR first, SDES CNAME), splitting, early feedback and
reduced-size RTCP, BYE; and the runnable example of docs/rtp-streams.md."""

from __future__ import annotations

import random
import re
import statistics
from pathlib import Path

import pytest

from trio_rtc.rtp.packet import RtpPacket
from trio_rtc.rtp.reports import (
    AUDIO_MINIMUM_INTERVAL,
    VIDEO_MINIMUM_INTERVAL,
    RtcpScheduler,
    reduced_minimum_interval,
)
from trio_rtc.rtp.rtcp import (
    Bye,
    GenericNack,
    PictureLossIndication,
    ReceiverReport,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    parse_rtcp_untrusted,
    serialize_compound,
)
from trio_rtc.rtp.stats import ReceiveStreamStatistics, SendStreamStatistics

LOCAL, REMOTE = 0xAAAA, 0xBBBB


def _scheduler(**kwargs: object) -> RtcpScheduler:
    return RtcpScheduler("cname-1", random.Random(42), receiver_ssrc=1, **kwargs)  # type: ignore[arg-type]


def _receiving(ssrc: int, now: float, count: int = 3) -> ReceiveStreamStatistics:
    stats = ReceiveStreamStatistics(ssrc, 90000)
    for i in range(count):
        stats.on_packet(RtpPacket(96, i, 3000 * i, ssrc, b"v"), now)
    return stats


def _sending(ssrc: int, now: float) -> SendStreamStatistics:
    stats = SendStreamStatistics(ssrc, 90000)
    stats.on_packet_sent(RtpPacket(96, 1, 1000, ssrc, b"v" * 10), now)
    return stats


def _round_trip(compound: list[RtcpPacket]) -> list[RtcpPacket]:
    return parse_rtcp_untrusted(serialize_compound(compound))


# --- intervals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("video", "expected"), [(True, VIDEO_MINIMUM_INTERVAL), (False, AUDIO_MINIMUM_INTERVAL)]
)
def test_interval_draws_are_uniform_around_the_minimum(video: bool, expected: float) -> None:
    scheduler = _scheduler(video=video)
    draws = [scheduler.next_interval() for _ in range(20000)]
    assert min(draws) >= 0.5 * expected and max(draws) <= 1.5 * expected
    # Uniform on [0.5T, 1.5T]: mean T, standard deviation T/sqrt(12).
    assert statistics.fmean(draws) == pytest.approx(expected, rel=0.01)
    assert statistics.pstdev(draws) == pytest.approx(expected / 12**0.5, rel=0.03)
    initial = [scheduler.next_interval(initial=True) for _ in range(20000)]
    assert statistics.fmean(initial) == pytest.approx(expected / 2, rel=0.01)


def test_same_seed_same_schedule() -> None:
    a, b = _scheduler(video=True), _scheduler(video=True)
    assert [a.next_interval() for _ in range(10)] == [b.next_interval() for _ in range(10)]


def test_reduced_minimum_is_360_over_kbps() -> None:
    assert reduced_minimum_interval(1_000_000) == pytest.approx(0.36)
    assert reduced_minimum_interval(64_000) == pytest.approx(5.625)
    with pytest.raises(ValueError):
        reduced_minimum_interval(0)
    scheduler = _scheduler(minimum_interval=reduced_minimum_interval(2_000_000))
    assert scheduler.deterministic_interval() == pytest.approx(0.18)


def test_a_small_session_bandwidth_lengthens_the_interval() -> None:
    # 8 kbit/s: RTCP gets 50 octets/s. Two members, both sending: n = 2 and the whole RTCP
    # bandwidth, so T = 100 * 2 / 50 = 4 s, above the 1 s minimum (A.7).
    scheduler = _scheduler(video=True, session_bandwidth_bps=8000)
    scheduler.add_sender(_sending(LOCAL, 0.0))
    scheduler.add_receiver(_receiving(REMOTE, 0.0))
    assert scheduler.deterministic_interval() == pytest.approx(4.0)
    # One sender among five members: senders get a quarter of the bandwidth, shared by one.
    for ssrc in (1, 2, 3):
        scheduler.add_receiver(ReceiveStreamStatistics(ssrc, 90000))
    scheduler.remove_receiver(REMOTE)
    assert scheduler.deterministic_interval() == pytest.approx(100 * 1 / (50 * 0.25))
    # Plenty of bandwidth: the minimum rules.
    assert _scheduler(video=True, session_bandwidth_bps=2e6).deterministic_interval() == 1.0


def test_reports_over_a_long_run_average_one_per_interval() -> None:
    scheduler = _scheduler(video=True)
    now = 0.0
    scheduler.start(now)
    sent = 0
    while now < 1000.0:
        timer = scheduler.get_timer()
        assert timer is not None and timer > now
        now = timer
        sent += len(scheduler.handle_timer(now))
    assert 950 <= sent <= 1050


# --- compounds -----------------------------------------------------------------------------


def test_timer_and_a_receive_only_compound() -> None:
    scheduler = _scheduler(video=True)
    assert scheduler.get_timer() is None
    assert scheduler.handle_timer(100.0) == []
    scheduler.start(0.0)
    timer = scheduler.get_timer()
    assert timer is not None and 0.25 <= timer <= 0.75
    assert scheduler.handle_timer(timer - 0.01) == []
    receiver = _receiving(REMOTE, 0.1)
    scheduler.add_receiver(receiver)
    (compound,) = scheduler.handle_timer(timer)
    rr, sdes = _round_trip(compound)
    assert isinstance(rr, ReceiverReport) and rr.ssrc == 1
    assert [b.ssrc for b in rr.reports] == [REMOTE]
    assert isinstance(sdes, SourceDescription) and sdes.chunks[0].cname == "cname-1"
    next_timer = scheduler.get_timer()
    assert next_timer is not None and timer + 0.5 <= next_timer <= timer + 1.5


def test_an_active_sender_sends_an_sr_first_with_the_report_blocks() -> None:
    scheduler = _scheduler(video=True, wallclock_offset=1_700_000_000.0)
    sender = _sending(LOCAL, 0.0)
    scheduler.add_sender(sender)
    scheduler.add_sender(SendStreamStatistics(0xCCCC, 90000))  # not sending yet: no SR
    scheduler.add_receiver(_receiving(REMOTE, 0.1))
    scheduler.start(0.0)
    timer = scheduler.get_timer()
    assert timer is not None
    (compound,) = scheduler.handle_timer(timer)
    sr, sdes = _round_trip(compound)
    assert isinstance(sr, SenderReport) and sr.ssrc == LOCAL
    assert [b.ssrc for b in sr.reports] == [REMOTE]
    assert isinstance(sdes, SourceDescription) and [c.ssrc for c in sdes.chunks] == [LOCAL]
    # A source heard of nothing since the last report gets no block.
    (compound,) = scheduler.handle_timer(timer + 2.0)
    assert isinstance(compound[0], SenderReport) and compound[0].reports == []


def test_a_sender_that_stopped_falls_back_to_rr_after_two_reports() -> None:
    scheduler = _scheduler(video=True)
    scheduler.add_sender(_sending(LOCAL, 0.0))
    scheduler.start(0.0)
    kinds = []
    now = 0.0
    for _ in range(3):
        timer = scheduler.get_timer()
        assert timer is not None
        now = timer
        (compound,) = scheduler.handle_timer(now)
        kinds.append(type(compound[0]))
    assert kinds == [SenderReport, SenderReport, ReceiverReport]
    assert compound[0].ssrc == 1


def test_many_sources_spill_into_extra_rrs_and_extra_compounds() -> None:
    scheduler = _scheduler(video=True)
    scheduler.add_sender(_sending(LOCAL, 0.0))
    for ssrc in range(100, 140):
        scheduler.add_receiver(_receiving(ssrc, 0.1))
    scheduler.start(0.0)
    timer = scheduler.get_timer()
    assert timer is not None
    (compound,) = scheduler.handle_timer(timer)
    sr, rr, sdes = compound
    assert isinstance(sr, SenderReport) and len(sr.reports) == 31
    assert isinstance(rr, ReceiverReport) and rr.ssrc == LOCAL and len(rr.reports) == 9
    assert isinstance(sdes, SourceDescription)

    scheduler = _scheduler(video=True, max_packet_size=600)
    for ssrc in range(100, 160):
        scheduler.add_receiver(_receiving(ssrc, 0.1))
    scheduler.start(0.0)
    timer = scheduler.get_timer()
    assert timer is not None
    compounds = scheduler.handle_timer(timer)
    assert len(compounds) >= 2
    reported = []
    for compound in compounds:
        data = serialize_compound(compound)
        assert len(data) <= 1200
        assert isinstance(compound[0], ReceiverReport)
        assert isinstance(compound[-1], SourceDescription)
        reported += [b.ssrc for p in compound if isinstance(p, ReceiverReport) for b in p.reports]
    assert sorted(reported) == list(range(100, 160))


def test_feedback_reduced_size_goes_alone() -> None:
    scheduler = _scheduler(video=True, reduced_size=True)
    nack = GenericNack.from_lost(1, REMOTE, [5, 6])
    assert scheduler.send_feedback([nack], 0.0) == [[nack]]
    assert scheduler.send_feedback([], 0.0) == []


def test_feedback_without_rsize_rides_one_early_compound_then_waits() -> None:
    scheduler = _scheduler(video=True)
    scheduler.start(0.0)
    pli = PictureLossIndication(1, REMOTE)
    (early,) = scheduler.send_feedback([pli], 0.1)
    rr, sdes, fb = _round_trip(early)
    assert isinstance(rr, ReceiverReport) and isinstance(sdes, SourceDescription) and fb == pli
    nack = GenericNack.from_lost(1, REMOTE, [9])
    assert scheduler.send_feedback([nack], 0.2) == []  # one early packet per interval
    timer = scheduler.get_timer()
    assert timer is not None
    (regular,) = scheduler.handle_timer(timer)
    assert regular[-1] == nack
    (early,) = scheduler.send_feedback([pli], timer + 0.01)  # allowed again
    assert early[-1] == pli


def test_bye_ends_the_schedule() -> None:
    scheduler = _scheduler(video=True)
    scheduler.add_sender(_sending(LOCAL, 0.0))
    scheduler.start(0.0)
    (compound,) = scheduler.bye(0.5, b"done")
    parsed = _round_trip(compound)
    assert isinstance(parsed[0], SenderReport)
    assert isinstance(parsed[-1], Bye) and parsed[-1].ssrcs == [LOCAL]
    assert parsed[-1].reason == b"done"
    assert scheduler.get_timer() is None
    assert scheduler.bye(1.0) == []
    assert scheduler.handle_timer(10.0) == []


def test_avg_rtcp_size_follows_sent_and_received_compounds() -> None:
    scheduler = _scheduler(video=True)
    before = scheduler.avg_rtcp_size
    for _ in range(200):
        scheduler.on_rtcp_received(1000)
    assert scheduler.avg_rtcp_size > before
    assert scheduler.avg_rtcp_size == pytest.approx(1000 + 42, rel=0.01)


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError):
        _scheduler(minimum_interval=0)
    with pytest.raises(ValueError):
        _scheduler(session_bandwidth_bps=-5)


# --- docs ----------------------------------------------------------------------------------


def test_docs_example_runs_and_prints_what_it_says(capsys: pytest.CaptureFixture[str]) -> None:
    text = (Path(__file__).parent.parent / "docs" / "rtp-streams.md").read_text()
    example = re.findall(r"```python\n(.*?)```", text, re.S)[-1]
    printed = text.split("It prints:\n\n```\n", 1)[1].split("```", 1)[0]
    exec(compile(example, "docs/rtp-streams.md", "exec"), {})
    assert capsys.readouterr().out == printed
