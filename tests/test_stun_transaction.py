"""RFC 8489 §6.2.1 retransmission schedule."""

from __future__ import annotations

import pytest

from trio_rtc.stun import RetransmissionSchedule


def run_to_failure(
    schedule: RetransmissionSchedule, start: float = 0.0
) -> tuple[list[float], float]:
    """Fire every timer on time; return the send times and the failure time."""
    sends = [start]
    while True:
        deadline = schedule.get_timer
        assert deadline is not None
        if schedule.on_timeout(deadline):
            sends.append(deadline)
        else:
            return sends, deadline


def test_rfc_example_timings() -> None:
    schedule = RetransmissionSchedule(0.0, rto=0.5, rc=7, rm=16)
    assert schedule.attempts == 1
    sends, failed_at = run_to_failure(schedule)
    # RFC 8489 §6.2.1: sent at 0, 500, 1500, 3500, 7500, 15500 and 31500 ms; fails at 39500 ms.
    assert [round(t * 1000) for t in sends] == [0, 500, 1500, 3500, 7500, 15500, 31500]
    assert round(failed_at * 1000) == 39500
    assert schedule.attempts == 7
    assert schedule.failed
    assert not schedule.done
    assert schedule.get_timer is None
    assert not schedule.on_timeout(100.0)


def test_defaults_are_the_rfc_values() -> None:
    sends, failed_at = run_to_failure(RetransmissionSchedule(10.0), start=10.0)
    assert [round(t - 10.0, 3) for t in sends] == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert failed_at == pytest.approx(49.5)


def test_max_rto_caps_the_interval() -> None:
    schedule = RetransmissionSchedule(0.0, rto=0.5, rc=7, rm=16, max_rto=2.0)
    sends, failed_at = run_to_failure(schedule)
    assert sends == [0.0, 0.5, 1.5, 3.5, 5.5, 7.5, 9.5]
    assert failed_at == pytest.approx(17.5)


def test_max_rto_below_initial_rto() -> None:
    schedule = RetransmissionSchedule(0.0, rto=3.0, rc=3, rm=2, max_rto=1.0)
    sends, failed_at = run_to_failure(schedule)
    assert sends == [0.0, 1.0, 2.0]
    assert failed_at == pytest.approx(8.0)


def test_late_timer_schedules_from_the_actual_send() -> None:
    schedule = RetransmissionSchedule(0.0)
    assert schedule.on_timeout(0.7)
    assert schedule.get_timer == pytest.approx(1.7)


def test_complete_stops_everything() -> None:
    schedule = RetransmissionSchedule(0.0)
    assert schedule.on_timeout(0.5)
    schedule.complete()
    assert schedule.done
    assert not schedule.failed
    assert schedule.get_timer is None
    assert not schedule.is_due(1e9)
    assert not schedule.on_timeout(1e9)
    assert not schedule.failed
    assert schedule.attempts == 2


def test_single_send_for_reliable_transport() -> None:
    schedule = RetransmissionSchedule(0.0, rto=0.5, rc=1, rm=79)
    assert schedule.get_timer == pytest.approx(39.5)
    assert not schedule.is_due(39.4)
    assert schedule.is_due(39.5)
    assert not schedule.on_timeout(39.5)
    assert schedule.failed
    assert schedule.attempts == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"rto": 0.0}, {"rto": -1.0}, {"rc": 0}, {"rm": 0}, {"max_rto": 0.0}],
)
def test_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetransmissionSchedule(0.0, **kwargs)  # type: ignore[arg-type]
