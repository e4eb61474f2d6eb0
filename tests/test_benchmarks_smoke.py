"""The side-by-side benchmark command runs and writes the JSON it promises (no timing asserts)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_common() -> Any:
    """``benchmarks/common.py`` under a name of its own (the directory is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "trio_rtc_benchmarks_common", BENCHMARKS / "common.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


common = load_common()
PC_MISSING = "trio_rtc.RTCPeerConnection is not available yet"


def check_figure(stack: dict[str, Any], name: str, rounds: int) -> None:
    figure = stack["figures"][name]
    assert len(figure["values"]) == rounds
    assert all(isinstance(value, float) and value > 0 for value in figure["values"])
    assert min(figure["values"]) <= figure["median"] <= max(figure["values"])


def test_quick_run_writes_table_and_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "run.py"),
            "--no-separate-venv",  # aiortc from the project venv: no PyPI install in CI
            "--quick",
            "--rounds",
            "1",
            "--only",
            "setup,ice_connect_ms",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "trio/aio" in done.stdout
    assert "setup: 2 pcs created" in done.stdout

    report = json.loads(out.read_text())
    assert report["schema"] == 2
    assert report["quick"] is True
    assert report["rounds"] == 1
    assert report["scenarios"] == ["setup", "ice"]
    assert set(report["source"]) == {"commit", "trio_rtc_dirty"}
    machine = report["machine"]
    for key in ("cpu_model", "cpu_count", "python", "platform", "load_average"):
        assert machine[key], key

    aiortc = report["stacks"]["aiortc"]
    assert aiortc["versions"]["aiortc"]
    assert aiortc["errors"] == {}
    assert aiortc["unavailable"] == {}
    check_figure(aiortc, "setup_ms", 1)
    check_figure(aiortc, "ice_connect_ms", 1)

    trio_rtc = report["stacks"]["trio_rtc"]
    assert trio_rtc["versions"]["trio_rtc"]
    assert trio_rtc["errors"] == {}
    # The ICE layer exists today; the peer connection is measured once it exists.
    check_figure(trio_rtc, "ice_connect_ms", 1)
    if "setup" in trio_rtc["unavailable"]:
        assert trio_rtc["unavailable"]["setup"] == PC_MISSING
        assert "setup_ms" not in trio_rtc["figures"]
        assert "missing" in done.stdout
    else:
        check_figure(trio_rtc, "setup_ms", 1)

    comparison = report["comparison"]
    assert set(comparison) == {"setup_ms", "setup_cpu_ms", "ice_connect_ms"}
    ice = comparison["ice_connect_ms"]
    assert ice["ratio"] == pytest.approx(ice["trio_rtc"] / ice["aiortc"])
    assert ice["winner"] in ("trio_rtc", "aiortc")
    assert comparison["setup_ms"]["target"] == 0.3
    assert comparison["setup_ms"]["aiortc"] == aiortc["figures"]["setup_ms"]["median"]

    # A later run compared with this one, as the performance work does.
    again = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "run.py"),
            "--no-separate-venv",  # aiortc from the project venv: no PyPI install in CI
            "--quick",
            "--rounds",
            "1",
            "--only",
            "ice",
            "--stacks",
            "trio_rtc",
            "--baseline",
            str(out),
            "--json",
            str(tmp_path / "again.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "now/before" in again.stdout
    moved = json.loads((tmp_path / "again.json").read_text())["baseline"]["changes"]
    assert set(moved) == {"ice_connect_ms"}
    change = moved["ice_connect_ms"]["trio_rtc"]
    assert change["before"] == ice["trio_rtc"]
    assert change["change"] == pytest.approx(change["now"] / change["before"])
    assert isinstance(change["improved"], bool)
    assert change["verdict"] in ("better", "worse", "same")


def test_figures_name_their_scenarios() -> None:
    assert common.scenarios_for(["rtt_ms", "setup", "reliable_16k_cpu_s_per_mib"]) == [
        "setup",
        "reliable_16k",
        "rtt",
    ]
    assert {figure.scenario for figure in common.FIGURES} == set(common.SCENARIOS)
    with pytest.raises(ValueError, match="unknown figure"):
        common.scenarios_for(["throughput"])


def test_sdp_check_accepts_loopback_only() -> None:
    loopback = "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n"
    lan = "a=candidate:2 1 udp 2130706431 192.0.2.2 50001 typ host\r\n"
    assert common.check_sdp_loopback("v=0\r\n" + loopback + loopback) == 2
    with pytest.raises(RuntimeError, match=r"192\.0\.2\.2"):
        common.check_sdp_loopback(loopback + lan)
    with pytest.raises(RuntimeError, match="no candidate"):
        common.check_sdp_loopback("v=0\r\n")


@pytest.mark.interop
def test_chromium_setup_benchmark_runs_each_variant(tmp_path: Path) -> None:
    """``bench_chromium_setup.py`` (headless Chromium, started by the script as the interop
    tests start it): one round of each variant, a positive time for each in the JSON."""
    out = tmp_path / "setup.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "bench_chromium_setup.py"),
            "--runs",
            "1",
            "--warmup",
            "0",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    times = result["times_ms"]
    assert set(times) == {"chromium-pair", "chromium-pages", "trio-offers", "chromium-offers"}
    assert all(len(values) == 1 and values[0] > 0 for values in times.values()), times
    assert "Chrome" in result["user_agent"]
