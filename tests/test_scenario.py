"""The scenario runner: seeded sessions in their own trio runs, a results table, worker
processes, and the research example at a small size."""

from __future__ import annotations

import csv
import io
import math
import subprocess
import sys
from pathlib import Path

import attrs

from trio_rtc.testing import (
    BulkTransfer,
    LinkConditions,
    Results,
    Scenario,
    Session,
    run_many,
    run_session,
)

ROOT = Path(__file__).resolve().parent.parent


async def count_candidates(session: Session) -> None:
    """A custom workload: any async function of the session; metrics become columns."""
    description = session.a.localDescription
    assert description is not None
    session.metrics["candidates"] = description.sdp.count("a=candidate:")


def test_run_session_reports_connection_and_metrics() -> None:
    scenario = Scenario(
        "lossy", workload=BulkTransfer(size=30_000), conditions=LinkConditions(delay=0.025)
    )
    result = run_session(scenario, seed=1)
    assert result.connected and result.error == ""
    # One RTT for the ICE check (the binding to the STUN server runs alongside gathering),
    # then the DTLS flights: a few RTTs of 50 ms, nothing more.
    assert 0.05 <= result.connect_time < 0.5
    assert result.metrics["goodput"] > 0
    assert result.metrics["transfer_time"] > 0
    assert result.network.sent > 30
    assert result.wall_time > 0


def test_results_table() -> None:
    scenario = Scenario("custom", workload=count_candidates, parameters={"x": 1.5})
    results = run_many(scenario, range(3))
    assert isinstance(results, Results)
    assert [r.seed for r in results] == [0, 1, 2]
    assert results.success_rate() == 1.0
    assert results.mean("candidates") >= 1
    assert math.isnan(results.mean("missing"))
    rows = list(csv.DictReader(io.StringIO(results.to_csv())))
    assert [row["seed"] for row in rows] == ["0", "1", "2"]
    assert rows[0]["x"] == "1.5" and rows[0]["connected"] == "True"
    markdown = results.to_markdown(["seed", "connected", "candidates"])
    assert markdown.splitlines()[0] == "| seed | connected | candidates |"
    assert len(markdown.splitlines()) == 5


def test_failures_are_rows_not_crashes() -> None:
    blackhole = Scenario("blackhole", conditions=LinkConditions(loss=1.0), connect_timeout=5.0)
    (result,) = run_many(blackhole, [0])
    assert not result.connected
    assert result.error == "connect timeout"
    assert math.isnan(result.connect_time)


def test_worker_processes_give_the_same_numbers() -> None:
    scenario = Scenario(
        "parallel",
        workload=BulkTransfer(size=20_000),
        conditions=LinkConditions(delay=0.01, loss=0.02),
    )
    serial = run_many(scenario, range(2))
    parallel = run_many(scenario, range(2), parallel=2)
    assert [r.metrics for r in serial] == [r.metrics for r in parallel]
    assert [attrs.asdict(r.network) for r in serial] == [attrs.asdict(r.network) for r in parallel]


def test_sctp_vs_loss_example(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "research" / "sctp_vs_loss.py"),
            "--sessions",
            "2",
            "--size",
            "30000",
            "--losses",
            "0.02,0.1",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 sessions in" in done.stdout
    assert "| 0.02 | 2 |" in done.stdout and "| 0.1 | 2 |" in done.stdout
    rows = list(csv.DictReader((tmp_path / "sctp_vs_loss.csv").open()))
    assert len(rows) == 4 and all(float(row["goodput"]) > 0 for row in rows)


async def broken(session: Session) -> None:
    raise ValueError("workload bug")


def test_a_failing_workload_is_a_row() -> None:
    (result,) = run_many(Scenario("broken", workload=broken), [0])
    assert result.connected
    assert result.error == "ValueError: workload bug"
