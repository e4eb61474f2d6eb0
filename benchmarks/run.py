"""trio_rtc against aiortc, side by side on this machine: the one benchmark command.

    .venv/bin/python benchmarks/run.py [--path default|loopback|both] [--quick] [--rounds N]
                                       [--json out.json] [--baseline earlier.json]
                                       [--only figure,...] [--no-separate-venv]

Every (round, path, scenario, stack) runs in a fresh process (``bench_trio_rtc.py`` or
``bench_aiortc.py``), the two stacks alternating A B A B, so neither inherits the other's heap,
sockets or warmed caches and a slow drift of the machine's load hits both alike. The table shows
the median over the rounds of every figure, the ratio trio_rtc / aiortc, which stack is better
(and by how much), and the target where there is one. ``--json`` keeps every raw value, the
machine and the package versions, for comparing later runs.

``--path default`` (the default) measures what a user gets: the default configuration and every
interface the ICE layer finds, nothing patched; below the table, which addresses were gathered
and which candidate pair carried the data. ``--path loopback`` narrows both stacks' interface
scans to 127.0.0.1 (an extra row, labelled as such); ``--path both`` runs the two paths in the
same rounds and prints a table for each.

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
    FIGURES_BY_NAME,
    PATH_LABELS,
    PATHS,
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


def run_one(
    python: str, stack: str, scenario: str, quick: bool, path: str
) -> tuple[int, dict[str, Any], str]:
    """One bench process: exit status, its JSON result (empty if it wrote none), stderr tail."""
    sizes = Sizes.make(quick)
    with tempfile.TemporaryDirectory(prefix="trio_rtc-bench-") as scratch:
        out = Path(scratch) / "result.json"
        command = [
            python,
            str(HERE / f"bench_{stack}.py"),
            "--scenario",
            scenario,
            "--path",
            path,
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
    pythons: dict[str, str], scenarios: list[str], rounds: int, quick: bool, paths: list[str]
) -> dict[str, dict[str, StackRuns]]:
    """Every path's runs per stack; each round runs every path, scenario and stack in turn."""
    by_path = {
        path: {stack: StackRuns(python) for stack, python in pythons.items()} for path in paths
    }
    for round_number in range(1, rounds + 1):
        for path in paths:
            for scenario in scenarios:
                for stack, stack_runs in by_path[path].items():
                    if scenario in stack_runs.unavailable:
                        continue
                    started = time.perf_counter()
                    status, result, stderr = run_one(
                        stack_runs.python, stack, scenario, quick, path
                    )
                    outcome = record(stack_runs, scenario, status, result, stderr)
                    print(
                        f"[round {round_number}/{rounds}] {path:<8} {scenario:<13} {stack:<8} "
                        f"{time.perf_counter() - started:5.1f} s  {outcome}",
                        file=sys.stderr,
                        flush=True,
                    )
    return by_path


def record(
    stack_runs: StackRuns, scenario: str, status: int, result: dict[str, Any], stderr: str
) -> str:
    """Keep one bench process's outcome in ``stack_runs``; one line saying what it was."""
    stack_runs.versions.update(result.get("versions", {}))
    if status == EXIT_UNAVAILABLE:
        reason = result.get("error") or stderr or "unavailable"
        stack_runs.unavailable[scenario] = reason
        return f"n/a: {reason}"
    if status != 0 or result.get("error"):
        message = result.get("error") or stderr or f"exit status {status}"
        stack_runs.errors.setdefault(scenario, []).append(message)
        return f"error: {message}"
    for name, value in result.get("figures", {}).items():
        stack_runs.values.setdefault(name, []).append(float(value))
    if result.get("details"):
        stack_runs.details.setdefault(scenario, []).append(result["details"])
    return ", ".join(f"{name}={value:.4g}" for name, value in result.get("figures", {}).items())


def compare(
    figure: Figure, ours: float | None, theirs: float | None, versus: float | None = None
) -> dict[str, Any]:
    """Ratio trio_rtc / aiortc, who is better and whether the target is met. ``versus``:
    aiortc's value of ``figure.versus``, compared with when aiortc lacks this figure."""
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
    if theirs is None and versus is not None and figure.versus is not None:
        entry["versus"] = {"figure": figure.versus, "aiortc": versus}
        theirs = versus
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
    def median_of(stack: str, name: str) -> float | None:
        values = runs[stack].values.get(name) if stack in runs else None
        return median(values) if values else None

    table: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        for figure in figures_of(scenario):
            versus = median_of("aiortc", figure.versus) if figure.versus else None
            table[figure.name] = compare(
                figure, median_of("trio_rtc", figure.name), median_of("aiortc", figure.name), versus
            )
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
        return "n/a"
    if scenario in stack.errors:
        return "error"
    return "-"


def data_path_lines(runs: dict[str, StackRuns]) -> list[str]:
    """Which addresses each stack gathered on and which pairs carried the data (from the bench
    processes' details), and whether trickled descriptions left before gathering completed."""
    lines: list[str] = []
    for stack_name, stack in runs.items():
        gathered: set[str] = set()
        pairs: dict[str, int] = {}
        sent: dict[str, int] = {}
        for details in (entry for entries in stack.details.values() for entry in entries):
            gathered.update(details.get("gathered_addresses", ()))
            for pair, count in details.get("selected_pairs", {}).items():
                pairs[pair] = pairs.get(pair, 0) + count
            for key, count in details.items():
                if "_sent_while_" in key:
                    state = key.split("_sent_while_", 1)[1]
                    sent[state] = sent.get(state, 0) + count
        if not pairs:
            continue
        by_use = sorted(pairs.items(), key=lambda item: (-item[1], item[0]))
        lines.append(
            f"{stack_name} data path: gathered on {', '.join(sorted(gathered))}; selected pair "
            + ", ".join(f"{pair} ({count}x)" for pair, count in by_use)
        )
        if sent:
            early = sum(count for state, count in sent.items() if state != "complete")
            lines.append(
                f"{stack_name} trickle: {early} of {sum(sent.values())} descriptions sent "
                "before gathering completed"
            )
    return lines


def render_table(
    runs: dict[str, StackRuns],
    table: dict[str, dict[str, Any]],
    sizes: Sizes,
    rounds: int,
    path: str,
) -> str:
    header = ("figure", "unit", "trio_rtc", "aiortc", "trio/aio", "better", "target")
    rows: list[tuple[str, ...]] = [header]
    footnotes: list[str] = []
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
        ratio = f"{entry['ratio']:.3g}" if entry["ratio"] is not None else "-"
        if "versus" in entry and entry["ratio"] is not None:
            ratio += "*"
            versus = FIGURES_BY_NAME[entry["versus"]["figure"]]
            footnotes.append(
                f"* {figure.name}: against aiortc's {versus.name} "
                f"({number(entry['versus']['aiortc'])} {versus.unit})"
            )
        rows.append(
            (
                figure.title,
                f"{figure.unit} ({arrow})",
                cell(entry["trio_rtc"], figure.scenario, runs.get("trio_rtc")),
                cell(entry["aiortc"], figure.scenario, runs.get("aiortc")),
                ratio,
                better,
                target,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = [
        f"{PATH_LABELS[path]} (--path {path})",
        f"median of {rounds} round(s), {'--quick sizes' if sizes.quick else 'full sizes'}; "
        f"N pcs = {sizes.many_pcs}; fleet: {sizes.fleet_pcs} pcs, {sizes.fleet_seconds:.0f} s of"
        f" echoes; media: {sizes.media_frames} VP8 frames",
    ]
    for index, row in enumerate(rows):
        cells = [text.ljust(width) for text, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines.extend(footnotes)
    for stack_name, stack in runs.items():
        by_reason: dict[str, list[str]] = {}
        for scenario, reason in stack.unavailable.items():
            by_reason.setdefault(reason, []).append(scenario)
        for reason, scenarios in by_reason.items():
            lines.append(f"{stack_name} n/a ({', '.join(scenarios)}): {reason}")
        for scenario, messages in stack.errors.items():
            lines.append(f"{stack_name} {scenario}: {len(messages)} error(s), first: {messages[0]}")
    lines.extend(data_path_lines(runs))
    return "\n".join(lines)


def baseline_comparison(baseline: dict[str, Any], path: str) -> dict[str, dict[str, Any]] | None:
    """The table of ``path`` in an earlier ``--json`` report, or None if it has none. Reports
    before ``--path`` (schema 1) measured the loopback path only."""
    if "by_path" in baseline:
        entry: dict[str, Any] | None = baseline["by_path"].get(path)
        return entry["comparison"] if entry is not None else None
    return baseline.get("comparison", {}) if path == "loopback" else None


def baseline_changes(
    table: dict[str, dict[str, Any]], before_table: dict[str, dict[str, Any]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """For every figure and stack measured both now and in ``before_table`` (from an earlier
    ``--json`` report): the two medians, now / before, and whether that moved in the better
    direction."""
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
    parser.add_argument(
        "--path",
        choices=[*PATHS, "both"],
        default="default",
        help="default: every interface ICE finds, nothing patched (the default); loopback: both "
        "stacks' interface scans narrowed to 127.0.0.1; both: the two, a table for each",
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
    args.paths = list(PATHS) if args.path == "both" else [args.path]
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
    by_path = collect(pythons, args.scenarios, args.rounds, args.quick, args.paths)
    results: dict[str, dict[str, Any]] = {}
    for index, (path, runs) in enumerate(by_path.items()):
        table = comparison(runs, args.scenarios)
        if index:
            print()
        print(render_table(runs, table, sizes, args.rounds, path))
        result: dict[str, Any] = {
            "label": PATH_LABELS[path],
            "stacks": {stack: stack_runs.to_json() for stack, stack_runs in runs.items()},
            "comparison": table,
        }
        if args.baseline_report is not None:
            before = baseline_comparison(args.baseline_report, path)
            print()
            if before is None:
                print(f"{args.baseline} has no {path} path to compare with")
            else:
                changes = baseline_changes(table, before)
                print(render_changes(changes, f"{args.baseline}, {path} path"))
                result["baseline"] = {"file": str(args.baseline), "changes": changes}
            if args.baseline_report.get("quick") != args.quick:
                print("note: the baseline was measured with other sizes (--quick differs)")
        results[path] = result
    if args.json is not None:
        machine["load_average_after"] = list(os.getloadavg())
        # The first path's table at the top level too (the headline, and what schema 1 had).
        headline = results[args.paths[0]]
        report = {
            "schema": 2,
            "created": datetime.datetime.fromtimestamp(started, datetime.UTC).isoformat(),
            "seconds": time.time() - started,
            "argv": sys.argv,
            "quick": args.quick,
            "rounds": args.rounds,
            "scenarios": args.scenarios,
            "paths": args.paths,
            "machine": machine,
            "source": source,
            "path": args.paths[0],
            "stacks": headline["stacks"],
            "comparison": headline["comparison"],
            "by_path": results,
        }
        if "baseline" in headline:
            report["baseline"] = headline["baseline"]
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    failed = any(stack.errors for runs in by_path.values() for stack in runs.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
