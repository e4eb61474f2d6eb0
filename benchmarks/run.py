"""trio_rtc against aiortc, side by side on this machine: the one benchmark command.

    .venv/bin/python benchmarks/run.py [--quick] [--rounds N] [--json out.json]
                                       [--only figure,...] [--no-separate-venv]

Every (round, scenario, stack) runs in a fresh process (``bench_trio_rtc.py`` or
``bench_aiortc.py``), the two stacks alternating A B A B, so neither inherits the other's heap,
sockets or warmed caches and a slow drift of the machine's load hits both alike. The table shows
the median over the rounds of every figure, the ratio trio_rtc / aiortc, which stack is better
(and by how much), and the issue 6 target where there is one. ``--json`` keeps every raw value,
the machine and the package versions, for comparing later runs.

aiortc runs in the benchmark's own venv, ``benchmarks/.venv-aiortc``, created once with aiortc
from PyPI; ``--no-separate-venv`` runs it from this interpreter's environment instead (the
project venv has aiortc as a test dependency; the CI smoke test uses that).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    EXIT_UNAVAILABLE,
    FIGURES,
    SCENARIOS,
    Figure,
    Sizes,
    figures_of,
    machine_info,
    median,
    scenarios_for,
)

HERE = Path(__file__).resolve().parent
STACKS = ("trio_rtc", "aiortc")
SEPARATE_VENV = HERE / ".venv-aiortc"
#: Seconds a bench process may take on top of its scenario's own deadline (start-up, imports).
PROCESS_SLACK = 60.0
#: A median that moved less than this fraction against a baseline is called "same", not a
#: change: even the CPU-time figures wander by a few percent between runs on a shared machine.
SAME_WITHIN = 0.03


@dataclass
class StackRuns:
    """Everything one stack produced over all rounds."""

    python: str
    values: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    details: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        figures = {
            name: {"median": median(values), "values": values}
            for name, values in self.values.items()
            if values
        }
        return {
            "python": self.python,
            "available": bool(self.values) or not self.unavailable,
            "unavailable": self.unavailable,
            "figures": figures,
            "errors": self.errors,
            "versions": self.versions,
            "details": self.details,
        }


def ensure_separate_venv() -> str:
    """The python of ``benchmarks/.venv-aiortc``, created with aiortc from PyPI if absent."""
    python = SEPARATE_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {SEPARATE_VENV} with aiortc from PyPI", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(SEPARATE_VENV)], check=True)
        # Keep the venv out of git and of the linters, as Python 3.13's venv does itself.
        (SEPARATE_VENV / ".gitignore").write_text("*\n")
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "aiortc"], check=True)
    return str(python)


def source_state() -> dict[str, Any]:
    """The commit measured and whether trio_rtc/ had uncommitted changes (a shared tree)."""

    def git(*arguments: str) -> str:
        try:
            done = subprocess.run(
                ["git", *arguments], capture_output=True, text=True, cwd=HERE.parent, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "commit": git("rev-parse", "HEAD") or None,
        "trio_rtc_dirty": bool(git("status", "--porcelain", "--", "trio_rtc")),
    }


def run_one(python: str, stack: str, scenario: str, quick: bool) -> tuple[int, dict[str, Any], str]:
    """One bench process: exit status, its JSON result (empty if it wrote none), stderr tail."""
    sizes = Sizes.make(quick)
    with tempfile.TemporaryDirectory(prefix="trio_rtc-bench-") as scratch:
        out = Path(scratch) / "result.json"
        command = [
            python,
            str(HERE / f"bench_{stack}.py"),
            "--scenario",
            scenario,
            "--out",
            str(out),
        ]
        if quick:
            command.append("--quick")
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=sizes.deadline + PROCESS_SLACK,
                cwd=HERE.parent,
            )
        except subprocess.TimeoutExpired:
            return -1, {}, f"process killed after {sizes.deadline + PROCESS_SLACK:.0f} s"
        result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        return done.returncode, result, tail


def collect(
    pythons: dict[str, str], scenarios: list[str], rounds: int, quick: bool
) -> dict[str, StackRuns]:
    runs = {stack: StackRuns(python) for stack, python in pythons.items()}
    for round_number in range(1, rounds + 1):
        for scenario in scenarios:
            for stack, stack_runs in runs.items():
                if scenario in stack_runs.unavailable:
                    continue
                started = time.perf_counter()
                status, result, stderr = run_one(stack_runs.python, stack, scenario, quick)
                took = time.perf_counter() - started
                stack_runs.versions.update(result.get("versions", {}))
                if status == EXIT_UNAVAILABLE:
                    reason = result.get("error") or stderr or "unavailable"
                    stack_runs.unavailable[scenario] = reason
                    outcome = f"missing: {reason}"
                elif status != 0 or result.get("error"):
                    message = result.get("error") or stderr or f"exit status {status}"
                    stack_runs.errors.setdefault(scenario, []).append(message)
                    outcome = f"error: {message}"
                else:
                    for name, value in result.get("figures", {}).items():
                        stack_runs.values.setdefault(name, []).append(float(value))
                    if result.get("details"):
                        stack_runs.details.setdefault(scenario, []).append(result["details"])
                    outcome = ", ".join(
                        f"{name}={value:.4g}" for name, value in result.get("figures", {}).items()
                    )
                print(
                    f"[round {round_number}/{rounds}] {scenario:<12} {stack:<8} "
                    f"{took:5.1f} s  {outcome}",
                    file=sys.stderr,
                    flush=True,
                )
    return runs


def compare(figure: Figure, ours: float | None, theirs: float | None) -> dict[str, Any]:
    """Ratio trio_rtc / aiortc, who is better and whether the issue's target is met."""
    entry: dict[str, Any] = {
        "unit": figure.unit,
        "better": figure.better,
        "title": figure.title.strip(),
        "trio_rtc": ours,
        "aiortc": theirs,
        "ratio": None,
        "winner": None,
        "factor": None,
        "target": figure.target,
        "target_met": None,
    }
    if ours is None or theirs is None or ours <= 0 or theirs <= 0:
        return entry
    ratio = ours / theirs
    ours_better = ratio > 1 if figure.better == "higher" else ratio < 1
    entry["ratio"] = ratio
    entry["winner"] = "trio_rtc" if ours_better else "aiortc"
    entry["factor"] = max(ratio, 1 / ratio)
    if figure.target is not None:
        met = ratio >= figure.target if figure.better == "higher" else ratio <= figure.target
        entry["target_met"] = met
    return entry


def comparison(runs: dict[str, StackRuns], scenarios: list[str]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        for figure in figures_of(scenario):
            medians = {
                stack: median(values) if (values := runs[stack].values.get(figure.name)) else None
                for stack in STACKS
                if stack in runs
            }
            table[figure.name] = compare(figure, medians.get("trio_rtc"), medians.get("aiortc"))
    return table


def number(value: float) -> str:
    """Four significant digits, without exponents for the large counts (messages/s)."""
    return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"


def cell(value: float | None, scenario: str, stack: StackRuns | None) -> str:
    if value is not None:
        return number(value)
    if stack is None:
        return "-"
    if scenario in stack.unavailable:
        return "missing"
    if scenario in stack.errors:
        return "error"
    return "-"


def render_table(
    runs: dict[str, StackRuns], table: dict[str, dict[str, Any]], sizes: Sizes, rounds: int
) -> str:
    header = ("figure", "unit", "trio_rtc", "aiortc", "trio/aio", "better", "target")
    rows: list[tuple[str, ...]] = [header]
    for figure in FIGURES:
        entry = table.get(figure.name)
        if entry is None:
            continue
        better = ""
        if entry["winner"] is not None:
            better = f"{entry['winner']} {entry['factor']:.3g}x"
        arrow = "higher" if figure.better == "higher" else "lower"
        target = ""
        if figure.target is not None:
            sign = ">=" if figure.better == "higher" else "<="
            target = f"{sign}{figure.target:g}"
            if entry["target_met"] is not None:
                target += " met" if entry["target_met"] else " not met"
        rows.append(
            (
                figure.title,
                f"{figure.unit} ({arrow})",
                cell(entry["trio_rtc"], figure.scenario, runs.get("trio_rtc")),
                cell(entry["aiortc"], figure.scenario, runs.get("aiortc")),
                f"{entry['ratio']:.3g}" if entry["ratio"] is not None else "-",
                better,
                target,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = [
        f"median of {rounds} round(s), {'--quick sizes' if sizes.quick else 'full sizes'}; "
        f"loopback UDP; N pcs = {sizes.many_pcs}; media: {sizes.media_frames} VP8 frames"
    ]
    for index, row in enumerate(rows):
        cells = [text.ljust(width) for text, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    for stack_name, stack in runs.items():
        by_reason: dict[str, list[str]] = {}
        for scenario, reason in stack.unavailable.items():
            by_reason.setdefault(reason, []).append(scenario)
        for reason, scenarios in by_reason.items():
            lines.append(f"{stack_name} missing ({', '.join(scenarios)}): {reason}")
        for scenario, messages in stack.errors.items():
            lines.append(f"{stack_name} {scenario}: {len(messages)} error(s), first: {messages[0]}")
    return "\n".join(lines)


def baseline_changes(
    table: dict[str, dict[str, Any]], baseline: dict[str, Any]
) -> dict[str, dict[str, dict[str, Any]]]:
    """For every figure and stack measured both now and in ``baseline`` (an earlier ``--json``
    report): the two medians, now / before, and whether that moved in the better direction."""
    before_table: dict[str, dict[str, Any]] = baseline.get("comparison", {})
    changes: dict[str, dict[str, dict[str, Any]]] = {}
    for name, entry in table.items():
        before_entry = before_table.get(name, {})
        for stack in STACKS:
            now, before = entry.get(stack), before_entry.get(stack)
            if not now or not before:
                continue
            change = now / before
            improved = change > 1 if entry["better"] == "higher" else change < 1
            changes.setdefault(name, {})[stack] = {
                "before": before,
                "now": now,
                "change": change,
                "improved": improved,
                "verdict": (
                    "same" if abs(change - 1) < SAME_WITHIN else "better" if improved else "worse"
                ),
            }
    return changes


def render_changes(changes: dict[str, dict[str, dict[str, Any]]], baseline_name: str) -> str:
    rows = [("figure", "stack", "before", "now", "now/before", "")]
    for figure in FIGURES:
        for stack, change in changes.get(figure.name, {}).items():
            rows.append(
                (
                    figure.name,
                    stack,
                    number(change["before"]),
                    number(change["now"]),
                    f"{change['change']:.3g}",
                    change["verdict"],
                )
            )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [f"against {baseline_name} (medians; the machine's noise applies to both):"]
    for index, row in enumerate(rows):
        cells = [text.ljust(width) for text, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="figures: " + ", ".join(figure.name for figure in FIGURES),
    )
    parser.add_argument("--quick", action="store_true", help="sizes divided by ~50 (smoke run)")
    parser.add_argument("--rounds", type=int, default=3, help="A B rounds (default 3)")
    parser.add_argument("--json", type=Path, help="write every value and the machine here")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="an earlier --json report: also show how every median moved since",
    )
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help="comma-separated figures or scenarios (default: all): " + ", ".join(SCENARIOS),
    )
    parser.add_argument(
        "--stacks", default=",".join(STACKS), help="comma-separated subset of trio_rtc,aiortc"
    )
    parser.add_argument(
        "--separate-venv",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"run aiortc from {SEPARATE_VENV.relative_to(HERE.parent)}, created from PyPI "
        "(default); --no-separate-venv runs it from this interpreter's environment",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    try:
        args.scenarios = scenarios_for(name for name in args.only.split(",") if name)
    except ValueError as error:
        parser.error(str(error))
    args.baseline_report = None
    if args.baseline is not None:
        try:
            args.baseline_report = json.loads(args.baseline.read_text())
        except (OSError, ValueError) as error:
            parser.error(f"--baseline {args.baseline}: {error}")
    args.stack_list = [name for name in args.stacks.split(",") if name]
    if not args.stack_list or any(name not in STACKS for name in args.stack_list):
        parser.error(f"--stacks takes names among {', '.join(STACKS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    pythons = {stack: sys.executable for stack in STACKS if stack in args.stack_list}
    if "aiortc" in pythons and args.separate_venv:
        pythons["aiortc"] = ensure_separate_venv()
    sizes = Sizes.make(args.quick)
    machine = machine_info()
    source = source_state()
    started = time.time()
    runs = collect(pythons, args.scenarios, args.rounds, args.quick)
    table = comparison(runs, args.scenarios)
    print(render_table(runs, table, sizes, args.rounds))
    changes = None
    if args.baseline_report is not None:
        changes = baseline_changes(table, args.baseline_report)
        print()
        print(render_changes(changes, str(args.baseline)))
        if args.baseline_report.get("quick") != args.quick:
            print("note: the baseline was measured with other sizes (--quick differs)")
    if args.json is not None:
        machine["load_average_after"] = list(os.getloadavg())
        report = {
            "schema": 1,
            "created": datetime.datetime.fromtimestamp(started, datetime.UTC).isoformat(),
            "seconds": time.time() - started,
            "argv": sys.argv,
            "quick": args.quick,
            "rounds": args.rounds,
            "scenarios": args.scenarios,
            "machine": machine,
            "source": source,
            "stacks": {stack: stack_runs.to_json() for stack, stack_runs in runs.items()},
            "comparison": table,
        }
        if changes is not None:
            report["baseline"] = {"file": str(args.baseline), "changes": changes}
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    failed = any(stack.errors for stack in runs.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
