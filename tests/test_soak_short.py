"""The soak of ``benchmarks/soak.py`` for about 20 seconds: mixed data-channel traffic, channels
opened and closed continuously and ICE restarts over the virtual network with 5 % loss and
reordering, in real time. Every reliable byte arrives in order (sha256 per channel), and fds,
tasks and RSS stay flat between a sample after warm-up and the last one (generous margins: the
hour-long run is the real measurement, see benchmarks/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SOAK = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    report_path = tmp_path_factory.mktemp("soak") / "soak.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--minutes",
            "0.35",
            "--sample-every",
            "3",
            "--warmup",
            "6",
            "--restart-every",
            "5",
            "--rss-margin",
            "4",
            "--json",
            str(report_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert report_path.exists(), output
    report: dict[str, Any] = json.loads(report_path.read_text())
    return report, output


def test_short_soak_is_flat_and_delivers_every_reliable_byte(
    soak: tuple[dict[str, Any], str],
) -> None:
    report, output = soak
    failed = [name for name, ok in report["checks"].items() if not ok]
    assert not failed, f"{failed}\n{output}"

    # What the checks stand on: traffic of every kind really flowed.
    for name, flow in report["reliable"].items():
        assert flow["match"] and flow["received_bytes"] == flow["sent_bytes"] > 0, name
    for name, flow in report["partial"].items():
        assert flow["delivered"] > 0 and flow["bad"] == 0, name
    # Low bars: the run is in real time and a loaded machine slows it (about 30 churn channels
    # and 3 restarts on an idle one).
    assert report["churn"]["verified"] >= 3
    assert report["restarts"] >= 1
    assert report["connection_states"] == ["connected", "connected"]
    warm, last = report["warmup_sample"], report["last_sample"]
    assert last["t"] > warm["t"]
    assert last["fds"] == warm["fds"]
    assert abs(last["tasks"] - warm["tasks"]) <= 1
    assert report["rss_growth_mib"] < 4
    assert report["tasks"]["after"] == report["tasks"]["before"]


def test_short_soak_keeps_no_closed_channel(soak: tuple[dict[str, Any], str]) -> None:
    report, output = soak
    assert report["checks"]["channels_flat"], output
    assert report["ok"]
