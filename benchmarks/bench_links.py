"""Video over an impaired link, trio_rtc against aiortc in one run.

    sudo .venv/bin/python benchmarks/bench_links.py [--scenario a,b,c,d] [--seconds 30]
                                                    [--codec vp8] [--json out.json]

Each (scenario, stack) gets a fresh sender process in one network namespace and a fresh receiver
process in another, joined through a third that holds the link (``links_net.py``: ``tbf`` rate,
``nft`` random loss, and ``links_bridge.py`` for delay and burst loss). The peers are the ones
of ``bench_media.py`` (``media_peer_trio.py`` / ``media_peer_aiortc.py``) with each stack's
default configuration and its own bitrate control (no ``--bitrate``): what the stack does about
the link is what is measured. Signalling goes through this process over the peers' stdin and
stdout (pipes cross namespaces; loopback does not).

RTX: the peers (shared with ``bench_media.py``) prefer the measured codec alone with
``setCodecPreferences``, which leaves ``video/rtx`` out of the offer, so lost packets were resent
as plain copies. A user's default offer has RTX, so here each peer keeps it (the peer script is
started through ``KEEP_RTX``, which adds the RTX codec to its preference); ``--no-rtx``
measures the peers as they are.

Scenarios (the issue's): (a) 2 Mbit/s, no loss; (b) 2 Mbit/s, 5 % random loss, 30 ms one-way
delay; (c) capacity 3 -> 1 -> 3 Mbit/s, a third of the window each; (d) 2 Mbit/s, 10 % loss in
bursts. Loss is on the media direction only (sender -> receiver); delay is on both.

The window is ``--seconds`` long and opens ``--warmup`` seconds after the sender's first frame;
the scenario's timeline (rate steps, loss bursts) is laid from that first frame, so both stacks
meet the very same link at the same moment of their stream. See ``benchmarks/README.md`` for
what each figure is.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import itertools
import json
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench_media import PEER_SCRIPT, percentile, rate_over, versions
from links_net import Link, LinkError, missing_tools, remove_stale

HERE = Path(__file__).resolve().parent
STACKS = ("trio_rtc", "aiortc")
CODECS = ("vp8", "h264")
#: Seconds a pair may take beyond its media duration (imports, ICE, DTLS under loss, teardown).
PAIR_SLACK = 45.0
#: How often the receiver namespace's delivered-bytes counter is read.
COUNTER_INTERVAL = 0.5
#: The sending bitrate at t is the sender's IP bytes in (t - SEND_RATE_WINDOW, t], on a grid
#: of SEND_RATE_STEP.
SEND_RATE_WINDOW = 0.5
SEND_RATE_STEP = 0.05
#: "Back to capacity" after a step up: the sending bitrate reaches this share of the new rate.
RECOVERED_SHARE = 0.85
#: W3C webrtc-stats freezeCount: a frame duration >= max(3 x avg, avg + 150 ms), avg being the
#: mean duration of the last 30 rendered frames.
FREEZE_HISTORY = 30
FREEZE_FACTOR = 3.0
FREEZE_EXTRA = 0.150


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    rate: float  # bits/s from the start
    loss: float = 0.0  # random, nft
    delay: float = 0.0  # one way, both directions, bridge
    burst_loss: float = 0.0  # mean share of time in a loss burst, bridge
    #: (fraction of the window, new rate): tbf changes at window start + fraction x seconds.
    steps: tuple[tuple[float, float], ...] = field(default=())


SCENARIOS = {
    "a": Scenario("a", "2 Mbit/s, no loss", 2e6),
    "b": Scenario("b", "2 Mbit/s, 5 % random loss, 30 ms one-way delay", 2e6, 0.05, 0.030),
    "c": Scenario(
        "c",
        "3 -> 1 -> 3 Mbit/s, a third of the window each",
        3e6,
        steps=((1 / 3, 1e6), (2 / 3, 3e6)),
    ),
    "d": Scenario("d", "2 Mbit/s, 10 % loss in bursts (40-160 ms)", 2e6, burst_loss=0.10),
}
#: Starts a peer script (argv[1], its arguments after it) with ``video/rtx`` kept in its codec
#: preference: its ``prefer()`` keeps only the named codec. Both peers define ``prefer`` and
#: import ``RTCRtpSender`` at module level.
KEEP_RTX = """
import os, runpy, sys
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(script))
peer = runpy.run_path(script, run_name="bench_peer")
def prefer(transceiver, kind, name):
    codecs = peer["RTCRtpSender"].getCapabilities(kind).codecs
    wanted = (f"{kind}/{name}".lower(), f"{kind}/rtx")
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() in wanted])
# run_path returns a copy of the script's globals: the peer's functions look names up in
# their own, which is where prefer() must be replaced.
peer["main"].__globals__["prefer"] = prefer
sys.exit(peer["main"]())
"""

#: Burst loss: each burst lasts uniformly BURST_MIN..BURST_MAX seconds; see burst_schedule.
BURST_MIN, BURST_MAX = 0.040, 0.160


def burst_schedule(share: float, length: float, seed: int) -> list[tuple[float, float]]:
    """(start, end) offsets in seconds from the first frame, the same for every stack.

    Burst lengths are drawn uniform in BURST_MIN..BURST_MAX and the gaps exponential, then both
    are scaled (the bursts by a few per cent) so that exactly *share* of [0, length] is in a
    burst: a short run gets the nominal loss, not whatever a few random draws add up to.
    """
    rng = random.Random(seed)
    mean_burst = (BURST_MIN + BURST_MAX) / 2
    count = max(1, round(share * length / mean_burst))
    drawn = [rng.uniform(BURST_MIN, BURST_MAX) for _ in range(count)]
    durations = [duration * share * length / sum(drawn) for duration in drawn]
    gaps = [rng.expovariate(1.0) for _ in range(count + 1)]  # before each burst, and after
    scale = (length - sum(durations)) / sum(gaps)
    bursts: list[tuple[float, float]] = []
    moment = 0.0
    for duration, gap in zip(durations, gaps, strict=False):
        moment += gap * scale
        bursts.append((moment, moment + duration))
        moment += duration
    return bursts


# --- running one pair --------------------------------------------------------------------------


class PairError(Exception):
    pass


class LineReader:
    """Reads a child's stdout in a thread: ``expect(kind)`` returns the payload of a ``kind``
    line (the peers' OFFER/ANSWER/STARTED, the bridge's READY)."""

    def __init__(self, process: subprocess.Popen[str], name: str) -> None:
        self.name = name
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def expect(self, kind: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise PairError(f"{self.name}: no {kind} within {timeout:.0f} s") from None
            if line is None:
                raise PairError(f"{self.name} ended before {kind}")
            line = line.rstrip("\n")
            if line == kind or line.startswith(kind + " "):
                return line[len(kind) + 1 :].strip()


def send_line(process: subprocess.Popen[str], name: str, line: str) -> None:
    assert process.stdin is not None
    try:
        process.stdin.write(line + "\n")
        process.stdin.flush()
    except (BrokenPipeError, ValueError):
        raise PairError(f"{name} ended before it could read {line.split()[0]}") from None


class CounterSampler:
    """Reads the receiver namespace's nft counters every COUNTER_INTERVAL in a thread."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.samples: list[list[float]] = []  # [t, delivered bytes, delivered packets, dropped]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CounterSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def sample(self) -> None:
        before = time.monotonic()
        try:
            counters = self.link.receiver_counters()
        except (LinkError, ValueError, subprocess.TimeoutExpired):
            return
        moment = (before + time.monotonic()) / 2
        self.samples.append(
            [
                moment,
                counters.get("delivered_bytes", 0),
                counters.get("delivered_packets", 0),
                counters.get("dropped_packets", 0),
            ]
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(COUNTER_INTERVAL)


def run_pair(
    link: Link,
    scenario: Scenario,
    stack: str,
    *,
    python: str,
    codec: str,
    warmup: float,
    seconds: float,
    seed: int,
    scratch: str,
    rtx: bool = True,
) -> dict[str, Any]:
    """One sender and one receiver over the scenario's link; every raw record of the pair."""
    duration = warmup + seconds + 0.5
    link.clear_rate()  # a fresh qdisc: its drop counter starts at zero
    link.set_rate(scenario.rate)
    link.set_receiver_filter(scenario.loss)
    outs = {role: os.path.join(scratch, f"{stack}-{role}.json") for role in ("sender", "receiver")}
    bridge_out = os.path.join(scratch, f"{stack}-bridge.json")
    stderr: dict[str, IO[str]] = {}
    processes: dict[str, subprocess.Popen[str]] = {}

    def start(name: str, namespace: str, argv: list[str]) -> LineReader:
        stderr[name] = open(os.path.join(scratch, f"{stack}-{name}.stderr"), "w+")
        processes[name] = subprocess.Popen(
            link.command(namespace, *argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr[name],
            text=True,
            cwd=HERE.parent,
            start_new_session=True,  # Ctrl-C reaches this process only; it cleans up
        )
        return LineReader(processes[name], name)

    rates: list[tuple[float, float]] = []
    try:
        bridge = start(
            "bridge",
            link.middle,
            [python, str(HERE / "links_bridge.py"), "--sender-side", "to-snd",
             "--receiver-side", "to-rcv", "--delay", str(scenario.delay), "--out", bridge_out],
        )  # fmt: skip
        bridge.expect("READY", 10)
        peers = {}
        for role, namespace in (("receiver", link.receiver), ("sender", link.sender)):
            argv = [
                python, *(("-c", KEEP_RTX) if rtx else ()), str(HERE / PEER_SCRIPT[stack]),
                "--role", role, "--codec", codec,
                "--duration", str(duration), "--bitrate", "0", "--no-watchdog",
                "--out", outs[role],
            ]  # fmt: skip
            if role == "sender":
                argv.append("--announce-start")
            peers[role] = start(role, namespace, argv)
        offer = peers["sender"].expect("OFFER", 60)
        send_line(processes["receiver"], "receiver", f"OFFER {offer}")
        answer = peers["receiver"].expect("ANSWER", 60)
        send_line(processes["sender"], "sender", f"ANSWER {answer}")
        with CounterSampler(link) as sampler:
            origin = json.loads(peers["sender"].expect("STARTED", 40))["t"]
            rates.append((origin, scenario.rate))
            if scenario.burst_loss:
                bursts = burst_schedule(scenario.burst_loss, duration, seed)
                absolute = [[origin + begin, origin + end] for begin, end in bursts]
                send_line(processes["bridge"], "bridge", json.dumps({"bursts": absolute}))
            for fraction, rate in scenario.steps:
                time.sleep(max(0.0, origin + warmup + fraction * seconds - time.monotonic()))
                link.set_rate(rate)
                rates.append((time.monotonic(), rate))
            deadline = time.monotonic() + duration + PAIR_SLACK
            for role in ("sender", "receiver"):
                try:
                    processes[role].wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    raise PairError(
                        f"{role} still running {PAIR_SLACK:.0f} s after its media"
                    ) from None
        send_line(processes["bridge"], "bridge", json.dumps({"quit": True}))
        processes["bridge"].wait(timeout=10)
        qdisc = link.qdisc_stats()
    except PairError as error:
        raise PairError(f"{error}; {_stderr_tails(stderr)}") from None
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()
        tails = _stderr_tails(stderr)
        for handle in stderr.values():
            handle.close()
    logs: dict[str, Any] = {}
    for role, path in (*outs.items(), ("bridge", bridge_out)):
        if not Path(path).exists():
            raise PairError(f"{role} wrote no log ({processes[role].returncode}); {tails}")
        logs[role] = json.loads(Path(path).read_text())
        if logs[role].get("error"):
            raise PairError(f"{role}: {logs[role]['error']}; {tails}")
    return {
        **logs,
        "counters": sampler.samples,
        "rates": rates,
        "qdisc": qdisc,
        "load_average": os.getloadavg()[0],
    }


def _stderr_tails(handles: dict[str, IO[str]]) -> str:
    parts = []
    for role, handle in handles.items():
        if handle.closed:
            continue
        handle.flush()
        handle.seek(0)
        lines = handle.read().strip().splitlines()
        if lines:
            parts.append(f"{role} stderr: " + " | ".join(line.strip() for line in lines[-3:]))
    return "; ".join(parts) or "no stderr"


# --- figures -----------------------------------------------------------------------------------


def freezes(times: Sequence[float], start: float, end: float) -> tuple[int, float]:
    """(count, total seconds) of W3C freezes among the frames rendered in [start, end)
    (see :func:`freeze_intervals`)."""
    found = freeze_intervals(times, start, end)
    return len(found), sum(until - since for since, until in found)


def freeze_intervals(times: Sequence[float], start: float, end: float) -> list[tuple[float, float]]:
    """The W3C freezes among the frames rendered in [start, end), each as (the frame before
    it, the frame that ended it or the window's end).

    Each frame's duration is the time since the previous one; the history of the last 30
    durations includes frames before the window, so the first frames of the window are judged
    like the others. A stall still going on at the window's end counts as a freeze up to the end
    when it is already long enough (otherwise a stream that stops for good would score none).
    """
    history: collections.deque[float] = collections.deque(maxlen=FREEZE_HISTORY)
    found: list[tuple[float, float]] = []

    def is_freeze(duration: float) -> bool:
        if not history:
            return False
        average = sum(history) / len(history)
        return duration >= max(FREEZE_FACTOR * average, average + FREEZE_EXTRA)

    previous: float | None = None
    for moment in times:
        if moment >= end:
            break
        if previous is not None:
            duration = moment - previous
            if moment >= start and is_freeze(duration):
                found.append((previous, moment))
            history.append(duration)
        previous = moment
    if previous is None:
        return [(start, end)]  # nothing at all came out
    if is_freeze(end - previous):
        found.append((max(previous, start), end))
    return found


def sending_rate(offered: Sequence[Sequence[float]], moments: Sequence[float]) -> list[float]:
    """Bits/s the sender put on the wire in (t - SEND_RATE_WINDOW, t] for each t (rising)."""
    result = []
    low = high = 0
    total = 0.0
    for moment in moments:
        while high < len(offered) and offered[high][0] <= moment:
            total += offered[high][1]
            high += 1
        while low < high and offered[low][0] <= moment - SEND_RATE_WINDOW:
            total -= offered[low][1]
            low += 1
        result.append(total * 8 / SEND_RATE_WINDOW)
    return result


def adaptation(
    offered: Sequence[Sequence[float]], step: float, until: float, test: Callable[[float], bool]
) -> float | None:
    """Seconds from *step* to the first grid point where the sending rate passes *test*."""
    moments = [step + k * SEND_RATE_STEP for k in range(int((until - step) / SEND_RATE_STEP) + 1)]
    for moment, rate in zip(moments, sending_rate(offered, moments), strict=True):
        if test(rate):
            return moment - step
    return None


def below(limit: float) -> Callable[[float], bool]:
    return lambda rate: rate < limit


def at_least(limit: float) -> Callable[[float], bool]:
    return lambda rate: rate >= limit


def mean_rate(rates: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """Time-average of the link rate over [start, end] (rates: (since, bits/s), rising)."""
    total = 0.0
    for index, (since, rate) in enumerate(rates):
        until = rates[index + 1][0] if index + 1 < len(rates) else end
        overlap = min(until, end) - max(since, start)
        if overlap > 0:
            total += overlap * rate
    return total / (end - start)


def analyse(
    scenario: Scenario, raw: dict[str, Any], warmup: float, seconds: float
) -> tuple[dict[str, float | None], dict[str, Any]]:
    sender, receiver, bridge = raw["sender"], raw["receiver"], raw["bridge"]
    if not sender["frames"]:
        raise PairError("the sender logged no frame")
    origin = sender["frames"][0][1]
    start, end = origin + warmup, origin + warmup + seconds
    figures: dict[str, float | None] = {}
    rendered = [moment for _, moment in receiver["frames"]]
    figures["frames_s"] = sum(start <= m < end for m in rendered) / seconds
    frozen = freeze_intervals(rendered, start, end)
    figures["freeze_count"] = len(frozen)
    figures["freeze_s"] = sum(until - since for since, until in frozen)
    sent_at = {counter: moment for counter, moment in sender["frames"]}
    decoded_at: dict[int, float] = {}
    for counter, moment in receiver["frames"]:
        if counter is not None and counter in sent_at and counter not in decoded_at:
            decoded_at[counter] = moment
    in_window = [c for c, moment in sender["frames"] if start <= moment < end]
    latencies = [decoded_at[c] - sent_at[c] for c in in_window if c in decoded_at]
    figures["latency_ms_median"] = statistics.median(latencies) * 1000 if latencies else None
    figures["latency_ms_p95"] = percentile(latencies, 0.95) * 1000 if latencies else None
    figures["lost_pct"] = 100 * (1 - len(latencies) / len(in_window)) if in_window else None
    offered = bridge["offered"]
    figures["send_kbit_s"] = (
        sum(size for t, size in offered if start <= t < end) * 8 / seconds / 1000
    )
    delivered = rate_over([[t, b] for t, b, *_ in raw["counters"]], start, end)
    link_rate = mean_rate(raw["rates"], start, end)
    figures["recv_kbit_s"] = delivered * 8 / 1000 if delivered is not None else None
    figures["utilisation_pct"] = 100 * delivered * 8 / link_rate if delivered is not None else None
    if scenario.steps:
        bounds_all = [max(start, moment) for moment, _ in raw["rates"]] + [end]
        for phase, (begin, until) in enumerate(itertools.pairwise(bounds_all), start=1):
            sent = sum(size for t, size in offered if begin <= t < until)
            figures[f"phase{phase}_send_kbit_s"] = sent * 8 / max(until - begin, 1e-9) / 1000
        rates = raw["rates"]
        bounds = [moment for moment, _ in rates[1:]] + [end]
        for (_, before), (moment, rate), until in zip(
            rates[:-1], rates[1:], bounds[1:], strict=True
        ):
            if rate < before:
                figures["adapt_down_s"] = adaptation(offered, moment, until, below(rate))
            else:
                figures["adapt_up_s"] = adaptation(
                    offered, moment, until, at_least(RECOVERED_SHARE * rate)
                )
                # The same against what the stack itself sent before the drop: a stack whose
                # encoder stops below the link (a picture-size ceiling) never reaches 85 % of
                # it, however quickly it recovers.
                before_drop = figures.get("phase1_send_kbit_s")
                if before_drop is not None:
                    own = RECOVERED_SHARE * min(rate, before_drop * 1000)
                    figures["adapt_up_own_s"] = adaptation(offered, moment, until, at_least(own))
    counters = raw["counters"]
    if scenario.loss and counters:
        dropped, passed = counters[-1][3], counters[-1][2]
        figures["loss_pct"] = 100 * dropped / max(1, dropped + passed)
    elif scenario.burst_loss:
        # Over the window, from the bridge's own record (it logs each packet before it drops it).
        bursts = bridge["bursts"]
        arrivals = [t for t, _ in offered if start <= t < end]
        lost = sum(any(b0 <= t < b1 for b0, b1 in bursts) for t in arrivals)
        figures["loss_pct"] = 100 * lost / max(1, len(arrivals))
    figures["queue_drops"] = raw["qdisc"].get("drops")
    grid = [start + k * 0.25 for k in range(int(seconds / 0.25) + 1)]
    details = {
        "window": [start, end],
        "link_rate_mean": link_rate,
        "rate_changes": [[moment - origin, rate] for moment, rate in raw["rates"]],
        "sending_kbit_s_every_250ms": [round(r / 1000) for r in sending_rate(offered, grid)],
        "frames_sent_in_window": len(in_window),
        "frames_rendered_total": len(rendered),
        "unreadable_frames": sum(c is None for c, _ in receiver["frames"]),
        "bridge_counts": bridge["counts"],
        "qdisc": raw["qdisc"],
        "receiver_notes": receiver.get("notes", {}),
        "sender_notes": sender.get("notes", {}),
        "load_average": raw["load_average"],
        # Each freeze: from the frame before it to the one after (seconds from the first
        # frame sent), with the loss bursts that began inside it or up to 0.5 s before.
        "freezes": [
            {
                "from": round(since - origin, 3),
                "seconds": round(until - since, 3),
                "bursts": [
                    [round(b0 - origin, 3), round(b1 - b0, 3)]
                    for b0, b1 in bridge.get("bursts", [])
                    if since - 0.5 <= b0 < until
                ],
            }
            for since, until in frozen
        ],
    }
    return figures, details


# --- the table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    key: str
    unit: str
    better: str  # "lower", "higher" or "" (neither: a description of what happened)
    title: str
    only_steps: bool = False


FIGURES = (
    Figure("frames_s", "fps", "higher", "received frame rate"),
    Figure("freeze_count", "", "lower", "freezes (W3C freezeCount)"),
    Figure("freeze_s", "s", "lower", "total freeze duration"),
    Figure("latency_ms_median", "ms", "lower", "glass-to-glass latency, median"),
    Figure("latency_ms_p95", "ms", "lower", "glass-to-glass latency, p95"),
    Figure("lost_pct", "%", "lower", "frames sent, never decoded"),
    Figure("utilisation_pct", "%", "higher", "link utilisation (received / link rate)"),
    Figure("recv_kbit_s", "kbit/s", "", "received (UDP at the receiver, IP bytes)"),
    Figure("send_kbit_s", "kbit/s", "", "sent (UDP from the sender, IP bytes)"),
    Figure("phase1_send_kbit_s", "kbit/s", "", "sent, first third (3 Mbit/s)", True),
    Figure("phase2_send_kbit_s", "kbit/s", "", "sent, second third (1 Mbit/s)", True),
    Figure("phase3_send_kbit_s", "kbit/s", "", "sent, last third (3 Mbit/s)", True),
    Figure("adapt_down_s", "s", "lower", "3->1: sending rate below 1 Mbit/s after", True),
    Figure("adapt_up_s", "s", "lower", "1->3: sending rate >= 85 % of 3 Mbit/s after", True),
    Figure("adapt_up_own_s", "s", "lower", "1->3: >= 85 % of its own first-third rate after", True),
    Figure("loss_pct", "%", "", "realised loss, media direction"),
    Figure("queue_drops", "pkts", "lower", "bottleneck queue drops"),
)


def render(
    scenarios: Sequence[Scenario],
    results: dict[str, dict[str, dict[str, float | None]]],
    errors: dict[str, dict[str, str]],
    stacks: Sequence[str],
) -> tuple[str, dict[str, Any]]:
    rows: list[tuple[str, ...]] = [("figure", "unit", "trio_rtc", "aiortc", "trio/aio", "better")]
    comparison: dict[str, Any] = {}
    for scenario in scenarios:
        rows.append((f"({scenario.name}) {scenario.title}", "", "", "", "", ""))
        for figure in FIGURES:
            if figure.only_steps and not scenario.steps:
                continue
            values = {}
            for stack in STACKS:
                by_scenario = results.get(stack, {}).get(scenario.name)
                values[stack] = by_scenario.get(figure.key) if by_scenario else None
            if figure.key == "loss_pct" and all(v is None for v in values.values()):
                continue
            ours, theirs = values["trio_rtc"], values["aiortc"]
            ratio = ours / theirs if ours is not None and theirs else None
            verdict = ""
            if figure.better and ours is not None and theirs is not None and ours != theirs:
                ours_better = ours < theirs if figure.better == "lower" else ours > theirs
                verdict = "trio_rtc" if ours_better else "aiortc"
            comparison[f"{scenario.name}_{figure.key}"] = {
                "unit": figure.unit,
                "better": figure.better,
                "trio_rtc": ours,
                "aiortc": theirs,
                "ratio": ratio,
            }
            cells = []
            for stack in STACKS:
                if stack not in stacks:
                    cells.append("")
                elif scenario.name in errors.get(stack, {}):
                    cells.append("error")
                elif values[stack] is None and figure.key.startswith("adapt"):
                    cells.append("never")
                else:
                    cells.append(_show(values[stack]))
            rows.append(
                (
                    f"  {figure.title}",
                    figure.unit,
                    *cells,
                    f"{ratio:.3g}" if ratio is not None else "-",
                    verdict,
                )
            )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append(
            "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip()
        )
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    for stack, failed in errors.items():
        for name, message in failed.items():
            lines.append(f"{stack} ({name}): {message}")
    return "\n".join(lines), comparison


def _show(value: float | None) -> str:
    if value is None:
        return "-"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def median_figures(rounds: Sequence[dict[str, float | None]]) -> dict[str, float | None]:
    """Each figure's median over the rounds that have it (None where none has)."""
    keys = {key for figures in rounds for key in figures}
    out: dict[str, float | None] = {}
    for key in sorted(keys):
        values = [value for f in rounds if (value := f.get(key)) is not None]
        out[key] = statistics.median(values) if values else None
    return out


# --- main ----------------------------------------------------------------------------------


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", default="a,b,c,d", help="a comma list of a, b, c, d")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window (default 30)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before the window")
    parser.add_argument("--codec", default="vp8", choices=CODECS)
    parser.add_argument("--queue-ms", type=float, default=200.0, help="tbf queue (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the loss bursts")
    parser.add_argument(
        "--no-rtx", action="store_true", help="the peers as they are: no video/rtx offered"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help=(
            "run every scenario this many times per stack and show the medians (default 1); "
            "round k lays its loss bursts with seed + k - 1, the same for both stacks"
        ),
    )
    parser.add_argument("--json", type=Path, help="write every figure and raw detail here")
    parser.add_argument("--stacks", default=",".join(STACKS), help="subset of trio_rtc,aiortc")
    parser.add_argument("--python", default=sys.executable, help="python for trio_rtc peers")
    parser.add_argument("--aiortc-python", default=sys.executable, help="python with aiortc")
    args = parser.parse_args(argv)
    names = args.scenario.split(",")
    for name in names:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name!r} (a, b, c, d)")
    scenarios = [SCENARIOS[name] for name in names]
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    stacks = [stack for stack in STACKS if stack in args.stacks.split(",")]
    pythons = {"trio_rtc": args.python, "aiortc": args.aiortc_python}
    missing = missing_tools()
    if missing:
        print(
            f"bench_links needs {', '.join(missing)} (Debian: apt-get install iproute2 "
            "nftables ethtool; run as root)",
            file=sys.stderr,
        )
        return 2
    # SIGINT too: a shell starts background jobs with it ignored, and Python then leaves it so.
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, _raise_interrupt)
    for name in remove_stale():
        print(f"removed {name}, left by an earlier run", file=sys.stderr)

    results: dict[str, dict[str, dict[str, float | None]]] = {s: {} for s in stacks}
    by_round: dict[str, dict[str, list[dict[str, float | None]]]] = {s: {} for s in stacks}
    details: dict[str, dict[str, Any]] = {s: {} for s in stacks}
    errors: dict[str, dict[str, str]] = {s: {} for s in stacks}
    begun = time.perf_counter()
    link = Link()
    link.queue_ms = args.queue_ms
    try:
        link.create()
        with tempfile.TemporaryDirectory(prefix="trio_rtc-links-") as scratch:
            runs = [(r, scenario) for r in range(args.rounds) for scenario in scenarios]
            for index, (round_index, scenario) in enumerate(runs):
                # Alternate which stack goes first, so a drift of the machine hits both alike.
                order = stacks if index % 2 == 0 else stacks[::-1]
                label = f"round {round_index + 1}/{args.rounds} " if args.rounds > 1 else ""
                for stack in order:
                    started = time.perf_counter()
                    try:
                        raw = run_pair(
                            link, scenario, stack, python=pythons[stack], codec=args.codec,
                            warmup=args.warmup, seconds=args.seconds, seed=args.seed + round_index,
                            rtx=not args.no_rtx,
                            scratch=scratch,
                        )  # fmt: skip
                        figures, more = analyse(scenario, raw, args.warmup, args.seconds)
                    except Exception as error:  # shown in the table; the other pairs go on
                        if not isinstance(error, PairError | LinkError):
                            error = PairError(f"{type(error).__name__}: {error}")
                        if scenario.name not in results[stack]:  # no round got through yet
                            errors[stack][scenario.name] = str(error)
                        outcome = f"error: {error}"
                    else:
                        by_round[stack].setdefault(scenario.name, []).append(figures)
                        results[stack][scenario.name] = median_figures(
                            by_round[stack][scenario.name]
                        )
                        errors[stack].pop(scenario.name, None)  # another round got through
                        if args.rounds > 1:
                            details[stack].setdefault(scenario.name, {"rounds": []})
                            details[stack][scenario.name]["rounds"].append(more)
                        else:
                            details[stack][scenario.name] = more
                        outcome = ", ".join(
                            f"{key}={_show(figures.get(key))}"
                            for key in ("frames_s", "freeze_count", "latency_ms_median",
                                        "utilisation_pct")
                        )  # fmt: skip
                    print(
                        f"{label}({scenario.name}) {stack:<8} "
                        f"{time.perf_counter() - started:5.1f} s  "
                        f"{outcome}",
                        file=sys.stderr,
                        flush=True,
                    )
    except KeyboardInterrupt:
        print("interrupted: namespaces and processes removed", file=sys.stderr)
        return 130
    finally:
        link.destroy()
    table, comparison = render(scenarios, results, errors, stacks)
    header = (
        f"{args.codec.upper()} 640x480 30 fps, each stack's own bitrate control; "
        f"{args.seconds:g} s measured after {args.warmup:g} s; tbf queue {args.queue_ms:g} ms; "
        f"{'no RTX offered' if args.no_rtx else 'RTX offered'}"
    )
    if args.rounds > 1:
        header += f"; median of {args.rounds} rounds (stacks alternating)"
    loads = [
        load
        for by in details.values()
        for d in by.values()
        for load in (
            [r["load_average"] for r in d["rounds"]] if "rounds" in d else [d["load_average"]]
        )
    ]
    if loads:
        header += f"; load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores"
    print(header)
    print(table)
    print(f"(took {time.perf_counter() - begun:.0f} s)", file=sys.stderr)
    if args.json:
        report = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "arguments": vars(args) | {"json": str(args.json)},
            "scenarios": {s.name: s.__dict__ for s in scenarios},
            "machine": {"cpu_count": os.cpu_count(), "python": sys.version.split()[0]},
            "versions": {stack: versions(pythons[stack]) for stack in stacks},
            "comparison": comparison,
            "figures": results,
            "figures_by_round": by_round,
            "details": details,
            "errors": errors,
        }
        args.json.write_text(json.dumps(report, indent=1, sort_keys=True, default=str) + "\n")
    return 1 if any(errors[stack] for stack in stacks) else 0


if __name__ == "__main__":
    sys.exit(main())
