"""The small trace viewer behind ``trio-rtc trace summarize FILE`` and ``trio-rtc trace plot``.

``summarize`` prints a timeline of state changes and protocol decisions and a table of events
per layer; ``plot`` draws SCTP's cwnd, the RTT, throughput and the bandwidth estimate over time
to a PNG with matplotlib (the optional extra ``trio_rtc[plot]``).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .events import TraceEvent

__all__ = ["PlotUnavailable", "load_events", "plot", "plot_series", "summarize"]

#: Decisions shown in the timeline beside every ``state`` / ``*_state`` event.
_TIMELINE = frozenset(
    {
        "nomination_started",
        "pair_selected",
        "consent_expired",
        "role_switched",
        "flight_retransmitted",
        "alert_sent",
        "alert_received",
        "t3_expired",
        "stream_reset",
        "open_sent",
        "open_received",
    }
)


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def load_events(path: str | os.PathLike[str]) -> list[TraceEvent]:
    """The events of a JSON-lines trace, or of a qlog file this package wrote."""
    text = Path(path).read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("{") and '"traces"' in stripped[:4096]:
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, Mapping) and "traces" in document:
            return _from_qlog(document)
    events = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(TraceEvent.from_record(json.loads(line)))
        except ValueError as error:
            raise ValueError(f"{path}:{number}: {error}") from None
    return events


def _from_qlog(document: Mapping[str, Any]) -> list[TraceEvent]:
    events = []
    for trace in document["traces"]:
        common = trace.get("common_fields", {})
        reference = float(common.get("reference_time", 0.0)) / 1000.0
        pc = str(common.get("group_id", trace.get("title", "?")))
        for event in trace.get("events", []):
            layer, _, name = str(event["name"]).partition(":")
            events.append(
                TraceEvent(reference + event["time"] / 1000.0, pc, layer, name, event["data"])
            )
    return events


def _detail(event: TraceEvent) -> str:
    data = dict(event.data)
    state = data.pop("state", None)
    previous = data.pop("previous", None)
    parts = []
    if state is not None:
        parts.append(f"{previous} -> {state}" if previous is not None else str(state))
    parts.extend(f"{key}={value}" for key, value in data.items() if value is not None)
    return " ".join(parts)


def summarize(events: Iterable[TraceEvent]) -> str:
    """A timeline of state changes and decisions, then a per-layer count table."""
    events = list(events)
    if not events:
        return "empty trace\n"
    start = min(e.time for e in events)
    pcs = sorted({e.pc for e in events})
    short = {pc: f"pc{index}" for index, pc in enumerate(pcs, 1)}
    lines = [f"trace: {len(events)} events, {len(pcs)} peer connection(s)"]
    lines.extend(f"  {short[pc]} = {pc}" for pc in pcs)
    lines.append("")
    lines.append("timeline (state changes and decisions):")
    for event in events:
        if event.name == "state" or event.name.endswith("_state") or event.name in _TIMELINE:
            lines.append(
                f"  {event.time - start:9.3f}s  {short[event.pc]:<5} {event.layer:<11} "
                f"{event.name:<22} {_detail(event)}".rstrip()
            )
    lines.append("")
    lines.append("events per layer:")
    by_layer: dict[str, Counter[str]] = {}
    for event in events:
        by_layer.setdefault(event.layer, Counter())[event.name] += 1
    lines.append(f"  {'layer':<12} {'events':>7}  most frequent")
    for layer, counter in sorted(by_layer.items(), key=lambda item: -sum(item[1].values())):
        common = ", ".join(f"{name} {count}" for name, count in counter.most_common(4))
        lines.append(f"  {layer:<12} {sum(counter.values()):>7}  {common}")
    return "\n".join(lines) + "\n"


def plot_series(events: Iterable[TraceEvent]) -> dict[str, list[tuple[float, float]]]:
    """The curves ``plot`` draws, as (seconds since the first event, value): ``cwnd`` (bytes),
    ``srtt`` (ms, SCTP), ``ice_rtt`` (ms), ``throughput`` (Mbit/s acknowledged by the peer,
    SCTP) and ``bitrate`` (the send-side estimate, Mbit/s). Of the first pc in the trace."""
    events = list(events)
    series: dict[str, list[tuple[float, float]]] = {
        "cwnd": [],
        "srtt": [],
        "ice_rtt": [],
        "throughput": [],
        "bitrate": [],
    }
    if not events:
        return series
    start = events[0].time
    pc = events[0].pc
    last_acked: tuple[float, float] | None = None
    for event in events:
        if event.pc != pc:
            continue
        t = event.time - start
        data = event.data
        if event.layer == "sctp" and event.name == "metrics":
            series["cwnd"].append((t, float(data["cwnd"])))
            if data.get("srtt") is not None:
                series["srtt"].append((t, float(data["srtt"]) * 1000.0))
            acked = data.get("bytes_acked")
            if isinstance(acked, int | float):
                if last_acked is not None and t - last_acked[0] >= 0.05:
                    rate = (acked - last_acked[1]) * 8 / (t - last_acked[0]) / 1e6
                    series["throughput"].append((t, rate))
                    last_acked = (t, float(acked))
                elif last_acked is None:
                    last_acked = (t, float(acked))
        elif event.layer == "ice" and event.name == "pair_selected" and data.get("rtt"):
            series["ice_rtt"].append((t, float(data["rtt"]) * 1000.0))
        elif event.layer == "rtp" and event.name == "estimate":
            series["bitrate"].append((t, float(data["bitrate"]) / 1e6))
    return series


def plot(events: Iterable[TraceEvent], output: str | os.PathLike[str]) -> None:
    """Draw :func:`plot_series` to a PNG. PlotUnavailable without matplotlib."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise PlotUnavailable("trace plot needs matplotlib: pip install 'trio_rtc[plot]'") from None
    series = plot_series(events)
    panels = [
        ("cwnd", "SCTP cwnd (bytes)"),
        ("srtt", "RTT (ms)"),
        ("throughput", "throughput (Mbit/s)"),
        ("bitrate", "bandwidth estimate (Mbit/s)"),
    ]
    figure, axes = pyplot.subplots(len(panels), 1, sharex=True, figsize=(9, 9))
    for axis, (key, label) in zip(axes, panels, strict=True):
        points = series[key]
        if key == "srtt" and series["ice_rtt"]:
            xs, ys = zip(*series["ice_rtt"], strict=True)
            axis.plot(xs, ys, "o", label="ICE check")
        if points:
            xs, ys = zip(*points, strict=True)
            axis.step(xs, ys, where="post", label="SCTP" if key == "srtt" else None)
        else:
            axis.text(0.5, 0.5, "no data", transform=axis.transAxes, ha="center")
        axis.set_ylabel(label)
        if key == "srtt" and (points or series["ice_rtt"]):
            axis.legend(loc="upper right")
    axes[-1].set_xlabel("seconds")
    figure.tight_layout()
    figure.savefig(output)
    pyplot.close(figure)


def run_command(action: str, file: str, output: str | None = None) -> int:
    """``trio-rtc trace summarize|plot FILE``: 0 done, 1 with a message on stderr."""
    import sys

    try:
        events = load_events(file)
        if action == "summarize":
            sys.stdout.write(summarize(events))
            return 0
        target = output or str(Path(file).with_suffix(".png"))
        plot(events, target)
        print(f"wrote {target}", file=sys.stderr)
        return 0
    except PlotUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
