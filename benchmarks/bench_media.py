"""Media latency and CPU, trio_rtc against aiortc in one run (issue 12).

    .venv/bin/python benchmarks/bench_media.py [--rounds 3] [--seconds 10]
                                               [--codec vp8|h264|opus|all] [--json out.json]

For every round and codec, each stack gets one sender process and one receiver process (four
fresh processes per round and codec: trio_rtc sender + receiver, then aiortc sender +
receiver; the stacks alternate A B A B). The two processes of a pair talk over real UDP with
each stack's default configuration and are signalled through this process (stdin/stdout
pipes, no trickle: each description carries its gathered candidates).

Video: a 640x480, 30 fps test pattern (a scrolling ramp with a band of noise, so the encoder
has work to do) with a 16-bit frame counter stamped into the picture as large black/white
blocks (and its complement, as a check); the receiver reads the counter back from every
decoded picture. Audio: 48 kHz mono, 20 ms frames, a 1 kHz tone burst of 100 ms every 0.5 s
and silence otherwise; the receiver notes the first decoded frame whose peak crosses a
threshold after a quiet one. The very same generator (this module) feeds both stacks.

Timing across processes is ``time.monotonic()`` (CLOCK_MONOTONIC is system-wide on Linux): the
sender logs counter -> the moment it handed the frame to its stack, the receiver counter -> the
moment the decoded frame came out of ``recv()``; this process joins them. Each process also
samples its own CPU time (``getrusage``, every thread) and runs a watchdog task that sleeps 1 ms
in a loop and logs how late it wakes (how long the event loop was blocked); the sender samples
its ``outbound-rtp`` ``bytesSent`` (RTP payload octets) for the bitrate. Everything is measured
over a window of ``--seconds`` that starts ``--warmup`` seconds after the first frame was sent.

The watchdog is an instrument, not part of the stack, and it is not free: about 900 wake-ups a
second, each a pass of the event loop. A pass costs more in Trio than in asyncio (a Trio sleep
is a cancel scope whose deadline raises and catches ``Cancelled``; an asyncio sleep is a
future and a timer handle): measured alone on an idle loop, about 40-50 µs of CPU per wake-up
against 25-30 µs, i.e. 1.5 points of a core more for the Trio process. That difference
is the instrument's, so each peer measures its own watchdog's cost once connected and before
any media flows (idle loop, :data:`CALIBRATION_SETTLE` seconds after ``connected``, then
:data:`CALIBRATION_ROUNDS` pairs of :data:`CALIBRATION_SECONDS` without and with the watchdog;
the median of the pairs' differences, so that a window hit by one-off work such as the codec
modules' import does not count), and the CPU figure is the process's CPU less that cost; the
figure with the watchdog included is reported beside it (``*_cpu_raw_pct``), and so is the
cost (``*_watchdog_cpu_pct``). ``--no-watchdog`` runs neither the watchdog nor the calibration
(raw and net CPU are then the same) and is the check on the correction: net CPU with the
watchdog should match CPU without it, for both stacks.

Where the CPU goes: this process also samples, from outside (``/proc``, Linux only), each
peer's CPU per thread: the process's main thread, which runs the event loop (Trio's or
asyncio's) and with it the whole protocol stack, and its other threads together (codec
workers, which run the same libraries in both stacks). ``*_loop_cpu_pct`` is the main thread
less the watchdog's cost (the watchdog runs there), ``*_threads_cpu_pct`` the rest: a gap
between the stacks in the first is the stack's own work, in the second the codecs' settings or
their hand-over.

This module is standard library only at import (``av`` is imported by the generator
functions), so both peer scripts import it.
"""

from __future__ import annotations

import argparse
import array
import datetime
import fractions
import json
import math
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# --- the test signals ------------------------------------------------------------------------

WIDTH, HEIGHT, FPS = 640, 480, 30
VIDEO_TIME_BASE = fractions.Fraction(1, 90_000)
#: The counter: 16 blocks of BLOCK x BLOCK pixels in a row (most significant bit first), the
#: bits in rows 0..BLOCK-1 and their complement in rows BLOCK..2*BLOCK-1.
COUNTER_BITS = 16
BLOCK = WIDTH // COUNTER_BITS
BLACK, WHITE = 16, 235
#: Where the noise band sits (rows, columns): fresh random bytes in every picture.
NOISE_ROWS = range(200, 320)
NOISE_COLUMNS = slice(240, 400)

AUDIO_RATE = 48_000
AUDIO_SAMPLES = 960  # 20 ms
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE)
AUDIO_FRAME_SECONDS = AUDIO_SAMPLES / AUDIO_RATE
#: A burst starts every BURST_EVERY frames (0.5 s) and lasts BURST_FRAMES frames (100 ms).
BURST_EVERY = 25
BURST_FRAMES = 5
TONE_HZ = 1000
TONE_AMPLITUDE = 12_000
#: A decoded audio frame whose peak sample reaches this is "tone" (silence decodes to ~0).
ONSET_THRESHOLD = 2_000


class VideoPattern:
    """640x480 yuv420p pictures: ``picture(counter)`` in well under a millisecond (slices of
    precomputed bytes; no per-pixel Python)."""

    def __init__(self, seed: int = 12) -> None:
        # A diagonal ramp 256 rows taller than the picture; picture n shows it scrolled by 4n
        # rows (modulo 256, where the ramp repeats).
        ramp = bytes(range(256)) * 4
        self._tall = b"".join(ramp[row % 256 :][:WIDTH] for row in range(HEIGHT + 256))
        self._noise = random.Random(seed).randbytes(1 << 20)
        self._noise_width = NOISE_COLUMNS.stop - NOISE_COLUMNS.start
        self._offsets = random.Random(seed + 1)
        self._chroma = bytes([128]) * ((WIDTH // 2) * (HEIGHT // 2))
        black, white = bytes([BLACK]) * BLOCK, bytes([WHITE]) * BLOCK
        self._blocks = (black, white)

    def stamp_rows(self, counter: int) -> bytes:
        """Rows 0..2*BLOCK-1 of the picture for ``counter``: bits, then their complement."""
        bits = [(counter >> (COUNTER_BITS - 1 - i)) & 1 for i in range(COUNTER_BITS)]
        row = b"".join(self._blocks[bit] for bit in bits)
        complement = b"".join(self._blocks[1 - bit] for bit in bits)
        return row * BLOCK + complement * BLOCK

    def luma(self, counter: int) -> bytearray:
        offset = (4 * counter) % 256
        luma = bytearray(self._tall[offset * WIDTH : (offset + HEIGHT) * WIDTH])
        stamp = self.stamp_rows(counter & 0xFFFF)
        luma[: len(stamp)] = stamp
        width = self._noise_width
        start = self._offsets.randrange(len(self._noise) - width * len(NOISE_ROWS))
        for index, row in enumerate(NOISE_ROWS):
            base = row * WIDTH
            source = start + index * width
            luma[base + NOISE_COLUMNS.start : base + NOISE_COLUMNS.stop] = self._noise[
                source : source + width
            ]
        return luma

    def picture(self, counter: int) -> Any:
        """An ``av.VideoFrame`` with ``pts`` = counter x 3000 at 1/90000."""
        import av

        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        luma_plane, blue, red = frame.planes
        luma = self.luma(counter)
        if luma_plane.line_size != WIDTH:
            pad = bytes(luma_plane.line_size - WIDTH)
            luma = bytearray(
                b"".join(luma[r * WIDTH : (r + 1) * WIDTH] + pad for r in range(HEIGHT))
            )
        luma_plane.update(bytes(luma))
        for plane in (blue, red):
            if plane.line_size == WIDTH // 2:
                plane.update(self._chroma)
            else:
                plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = counter * (90_000 // FPS)
        frame.time_base = VIDEO_TIME_BASE
        return frame


def read_counter(frame: Any) -> int | None:
    """The counter stamped into a decoded picture, or None when the bits and their complement
    disagree (a damaged or foreign picture). Each bit is the mean of 9 pixels around its block's
    centre, thresholded half-way between black and white."""
    if frame.format.name != "yuv420p" or frame.width != WIDTH or frame.height != HEIGHT:
        frame = frame.reformat(width=WIDTH, height=HEIGHT, format="yuv420p")
    plane = frame.planes[0]
    stride = plane.line_size
    data = bytes(plane)[: stride * 2 * BLOCK]
    middle = (BLACK + WHITE) // 2
    value = 0
    for bit in range(COUNTER_BITS):
        x = bit * BLOCK + BLOCK // 2
        levels = []
        for y in (BLOCK // 2, BLOCK + BLOCK // 2):
            total = 0
            for dy in (-4, 0, 4):
                row = (y + dy) * stride
                total += data[row + x - 4] + data[row + x] + data[row + x + 4]
            levels.append(total / 9 > middle)
        if levels[0] == levels[1]:
            return None
        value = (value << 1) | int(levels[0])
    return value


class TonePattern:
    """48 kHz mono s16 frames of 20 ms: a tone burst at every BURST_EVERY-th frame."""

    def __init__(self) -> None:
        samples = array.array(
            "h",
            (
                int(TONE_AMPLITUDE * math.sin(2 * math.pi * TONE_HZ * n / AUDIO_RATE))
                for n in range(AUDIO_SAMPLES)
            ),
        )
        self._tone = samples.tobytes()  # a whole number of periods: every tone frame is alike
        self._silence = bytes(2 * AUDIO_SAMPLES)

    @staticmethod
    def is_onset(index: int) -> bool:
        return index % BURST_EVERY == 0

    def frame(self, index: int) -> Any:
        import av

        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_SAMPLES)
        frame.sample_rate = AUDIO_RATE
        loud = index % BURST_EVERY < BURST_FRAMES
        frame.planes[0].update(self._tone if loud else self._silence)
        frame.pts = index * AUDIO_SAMPLES
        frame.time_base = AUDIO_TIME_BASE
        return frame


def audio_onset(frame: Any) -> float | None:
    """Seconds from the start of a decoded audio frame to its first sample at or above
    ONSET_THRESHOLD (any channel), or None when the whole frame is below it."""
    if frame.format.name not in ("s16", "s16p"):
        frame = _to_s16(frame)
    first: int | None = None
    for plane in frame.planes:
        channels = _channels_in(frame, plane)
        samples = array.array("h", bytes(plane)[: 2 * frame.samples * channels])
        if not samples or max(max(samples), -min(samples)) < ONSET_THRESHOLD:
            continue
        for index, sample in enumerate(samples):
            if sample >= ONSET_THRESHOLD or -sample >= ONSET_THRESHOLD:
                position = index // channels
                first = position if first is None else min(first, position)
                break
    return None if first is None else first / frame.sample_rate


def _channels_in(frame: Any, plane: Any) -> int:
    return 1 if frame.format.is_planar else len(frame.layout.channels)


def _to_s16(frame: Any) -> Any:
    import av

    resampler = av.AudioResampler(format="s16", layout=frame.layout.name, rate=frame.sample_rate)
    out = resampler.resample(frame)
    return out[0] if out else frame


# --- what every peer process records -----------------------------------------------------------


def cpu_seconds() -> float:
    """User + system CPU time of this process, every thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def watchdog_cost(pairs: Sequence[tuple[float, float]]) -> float:
    """The watchdog's own CPU (fraction of a core) from the calibration's pairs of CPU seconds
    spent in a window without it and in one with it (CALIBRATION_SECONDS each): the median of
    the differences."""
    differences = [(with_it - without) / CALIBRATION_SECONDS for without, with_it in pairs]
    return max(0.0, statistics.median(differences)) if differences else 0.0


class PeerLog:
    """The raw record of one peer process, written as JSON for the parent to join."""

    def __init__(self, stack: str, role: str, codec: str) -> None:
        self.data: dict[str, Any] = {
            "stack": stack,
            "role": role,
            "codec": codec,
            "pid": os.getpid(),
            "frames": [],  # sender: [counter, t]; receiver: [counter or None, t]
            "onsets": [],  # audio: sender: burst onset handed over; receiver: onset decoded
            "audio_frames": [],  # receiver: t of every decoded audio frame
            "cpu": [],  # [t, cpu seconds]
            "bytes": [],  # sender: [t, outbound-rtp bytesSent]
            "watchdog_t": [],  # t of each 1 ms sleep's start
            "watchdog_late": [],  # how much later than 1 ms it woke, seconds
            "watchdog_cpu": None,  # the watchdog's own CPU (core fraction), idle calibration
            "error": None,
            "versions": {},
            "notes": {},
        }

    def write(self, path: str) -> None:
        Path(path).write_text(json.dumps(self.data))


def emit(kind: str, payload: dict[str, Any]) -> None:
    """A signalling line for the parent on stdout."""
    sys.stdout.write(f"{kind} {json.dumps(payload)}\n")
    sys.stdout.flush()


def read_signal(kind: str) -> dict[str, Any]:
    """Block until the parent writes a ``kind`` line on stdin (call it in a thread)."""
    while True:
        line = sys.stdin.readline()
        if not line:
            raise EOFError(f"stdin closed while waiting for {kind}")
        if line.startswith(kind + " "):
            result: dict[str, Any] = json.loads(line[len(kind) + 1 :])
            return result


def peer_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="one media benchmark peer (started by bench_media)"
    )
    parser.add_argument("--role", choices=("sender", "receiver"), required=True)
    parser.add_argument("--codec", choices=("vp8", "h264", "opus"), required=True)
    parser.add_argument("--duration", type=float, required=True, help="seconds of media to send")
    parser.add_argument("--bitrate", type=int, default=0, help="bits/s; 0: the stack's default")
    parser.add_argument("--no-watchdog", action="store_true")
    parser.add_argument(
        "--announce-start",
        action="store_true",
        help="sender: write a STARTED line on stdout as it hands over its first frame",
    )
    parser.add_argument("--out", required=True)
    return parser.parse_args()


#: Seconds the receiver keeps reading after the last frame could have been sent, and the
#: sender keeps its connection up after its last frame.
TAIL = 1.0
WATCHDOG_INTERVAL = 0.001
#: The watchdog's calibration: after CALIBRATION_SETTLE seconds, this many pairs of (seconds
#: without, seconds with it), on the idle loop.
CALIBRATION_SETTLE = 0.5
CALIBRATION_SECONDS = 0.25
CALIBRATION_ROUNDS = 6
#: The sender waits this long after its calibration, so the receiver's ends before media flows.
CALIBRATION_MARGIN = 0.3
CPU_SAMPLE_INTERVAL = 0.1
STATS_SAMPLE_INTERVAL = 0.25

# --- the parent: run the pairs, join the logs, aggregate ------------------------------------------

STACKS = ("trio_rtc", "aiortc")
CODECS = ("vp8", "h264", "opus")
PEER_SCRIPT = {"trio_rtc": "media_peer_trio.py", "aiortc": "media_peer_aiortc.py"}
#: Video bitrate both stacks are held at unless --bitrate says otherwise.
DEFAULT_VIDEO_BITRATE = 1_000_000
#: aiortc's Opus encoder is fixed at 96 kbit/s (stereo); trio_rtc's is told the same.
OPUS_BITRATE = 96_000
#: Seconds a pair may take beyond its media duration (imports, ICE, DTLS, teardown).
PAIR_SLACK = 40.0


@dataclass(frozen=True)
class Figure:
    key: str  # the figure's name without the codec, e.g. "latency_ms_median"
    unit: str
    better: str  # "lower" / "higher"
    title: str
    #: trio_rtc / aiortc at most (lower better) or at least (higher better); None: no target.
    ratio_target: float | None = None
    #: trio_rtc's value itself at most this (absolute), None: no target.
    absolute_target: float | None = None
    kinds: tuple[str, ...] = ("video", "audio")


FIGURES: tuple[Figure, ...] = (
    Figure("latency_ms_median", "ms", "lower", "glass-to-glass latency, median"),
    Figure("latency_ms_p95", "ms", "lower", "  latency p95"),
    Figure("frames_s", "frames/s", "higher", "  decoded frames received per second"),
    Figure("lost_pct", "%", "lower", "  frames sent in the window, never decoded"),
    Figure("kbit_s", "kbit/s", "higher", "  bitrate (RTP payload, sender's bytesSent)"),
    Figure("sender_cpu_pct", "% core", "lower", "  sender process CPU (less watchdog)", 1.0),
    Figure("receiver_cpu_pct", "% core", "lower", "  receiver process CPU (less watchdog)", 1.0),
    Figure("sender_loop_cpu_pct", "% core", "lower", "  sender event-loop thread (less watchdog)"),
    Figure("sender_threads_cpu_pct", "% core", "lower", "  sender other threads (codecs)"),
    Figure("receiver_loop_cpu_pct", "% core", "lower", "  receiver event-loop thread (less wd)"),
    Figure("receiver_threads_cpu_pct", "% core", "lower", "  receiver other threads (codecs)"),
    Figure("sender_cpu_raw_pct", "% core", "lower", "  sender CPU, watchdog included"),
    Figure("receiver_cpu_raw_pct", "% core", "lower", "  receiver CPU, watchdog included"),
    Figure("sender_watchdog_cpu_pct", "% core", "lower", "  sender watchdog's own CPU"),
    Figure("receiver_watchdog_cpu_pct", "% core", "lower", "  receiver watchdog's own CPU"),
    Figure("sender_block_max_ms", "ms", "lower", "  sender loop blocked, max", None, 5.0),
    Figure("receiver_block_max_ms", "ms", "lower", "  receiver loop blocked, max", None, 5.0),
    Figure("sender_block_p99_ms", "ms", "lower", "  sender 1 ms sleep late by, p99"),
    Figure("receiver_block_p99_ms", "ms", "lower", "  receiver 1 ms sleep late by, p99"),
)
LATENCY_TARGET = {"video": 0.3, "audio": 0.35}


def kind_of(codec: str) -> str:
    return "audio" if codec == "opus" else "video"


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def interpolate(samples: Sequence[Sequence[float]], at: float) -> float | None:
    """The value of a sampled counter ([t, value] pairs, t rising) at ``at``, linearly."""
    if not samples or at < samples[0][0] or at > samples[-1][0]:
        return None
    low, high = 0, len(samples) - 1
    while high - low > 1:
        middle = (low + high) // 2
        if samples[middle][0] <= at:
            low = middle
        else:
            high = middle
    (t0, v0), (t1, v1) = samples[low][:2], samples[high][:2]
    if t1 == t0:
        return float(v0)
    return v0 + (v1 - v0) * (at - t0) / (t1 - t0)


def rate_over(samples: Sequence[Sequence[float]], start: float, end: float) -> float | None:
    """Increase per second of a sampled counter over [start, end]."""
    first, last = interpolate(samples, start), interpolate(samples, end)
    if first is None or last is None:
        return None
    return (last - first) / (end - start)


def loop_blocking(log: dict[str, Any], start: float, end: float) -> tuple[float, float] | None:
    """(max, p99) in ms of how late the watchdog's 1 ms sleeps woke within [start, end]."""
    late = [
        lateness
        for moment, lateness in zip(log["watchdog_t"], log["watchdog_late"], strict=True)
        if start <= moment <= end
    ]
    if not late:
        return None
    return max(late) * 1000, percentile(late, 0.99) * 1000


def analyse(
    codec: str, sender: dict[str, Any], receiver: dict[str, Any], warmup: float, seconds: float
) -> tuple[dict[str, float], dict[str, Any]]:
    """The figures of one pair from its two raw logs, and details for the JSON."""
    kind = kind_of(codec)
    produced = sender["frames"]
    if not produced:
        raise RuntimeError("the sender logged no frame")
    origin = produced[0][1]
    start, end = origin + warmup, origin + warmup + seconds
    figures: dict[str, float] = {}
    details: dict[str, Any] = {"window": [start, end]}
    if kind == "video":
        sent_at = {counter: moment for counter, moment in produced}
        decoded_at: dict[int, float] = {}
        unreadable = 0
        for counter, moment in receiver["frames"]:
            if counter is None:
                unreadable += 1
            elif counter in sent_at and counter not in decoded_at:
                decoded_at[counter] = moment
        in_window = [c for c, moment in produced if start <= moment < end]
        latencies = [decoded_at[c] - sent_at[c] for c in in_window if c in decoded_at]
        details.update(
            sent_in_window=len(in_window),
            decoded_in_window=len(latencies),
            unreadable=unreadable,
            decoded_total=len(receiver["frames"]),
        )
        if not latencies:
            raise RuntimeError(
                f"no frame sent in the window was decoded ({len(receiver['frames'])} decoded"
                f" in all, {unreadable} unreadable)"
            )
        figures["frames_s"] = len(latencies) / seconds
        figures["lost_pct"] = 100 * (1 - len(latencies) / len(in_window))
    else:
        onsets = [moment for moment in sender["onsets"] if start <= moment < end]
        heard = sorted(receiver["onsets"])
        latencies = []
        for onset in onsets:
            after = [moment for moment in heard if onset <= moment < onset + 0.45]
            if after:
                latencies.append(after[0] - onset)
        frames_in_window = [m for m in receiver["audio_frames"] if start <= m < end]
        details.update(
            onsets_in_window=len(onsets),
            onsets_heard=len(latencies),
            audio_frames_total=len(receiver["audio_frames"]),
        )
        if not latencies:
            raise RuntimeError(
                f"no tone burst was heard ({len(receiver['onsets'])} onsets decoded, "
                f"{len(receiver['audio_frames'])} audio frames)"
            )
        figures["frames_s"] = len(frames_in_window) / seconds
        figures["lost_pct"] = 100 * (1 - len(latencies) / len(onsets))
    figures["latency_ms_median"] = statistics.median(latencies) * 1000
    figures["latency_ms_p95"] = percentile(latencies, 0.95) * 1000
    details["latency_ms_min"] = min(latencies) * 1000
    details["latency_ms_max"] = max(latencies) * 1000
    byte_rate = rate_over(sender["bytes"], start, end)
    if byte_rate is not None:
        figures["kbit_s"] = byte_rate * 8 / 1000
    for role, log in (("sender", sender), ("receiver", receiver)):
        cpu = rate_over(log["cpu"], start, end)
        if cpu is not None:
            # The instrument's own cost comes off (see the module docstring).
            cost = log.get("watchdog_cpu")
            figures[f"{role}_cpu_raw_pct"] = cpu * 100
            figures[f"{role}_cpu_pct"] = (cpu - (cost or 0.0)) * 100
            if cost is not None:
                figures[f"{role}_watchdog_cpu_pct"] = cost * 100
        threads = log.get("thread_cpu") or []
        loop = rate_over([(t, main) for t, main, _ in threads], start, end)
        others = rate_over([(t, rest) for t, _, rest in threads], start, end)
        if loop is not None and others is not None:
            figures[f"{role}_loop_cpu_pct"] = (loop - (log.get("watchdog_cpu") or 0.0)) * 100
            figures[f"{role}_threads_cpu_pct"] = others * 100
        blocking = loop_blocking(log, start, end)
        if blocking is not None:
            figures[f"{role}_block_max_ms"], figures[f"{role}_block_p99_ms"] = blocking
        details[f"{role}_notes"] = log.get("notes", {})
    details["codec_used"] = sender.get("codec_used")
    details["load_average"] = sender.get("load_average")
    return figures, details


class PairError(Exception):
    pass


def thread_cpu(pid: int) -> tuple[float, float] | None:
    """CPU seconds of process ``pid``'s main thread, and of the rest of the process (its other
    threads, those that ended included), from ``/proc``; None where there is no such file (not
    Linux, or the process has ended)."""

    def seconds(path: str) -> float:
        with open(path) as handle:
            stat = handle.read()
        # Fields after the command (which may hold spaces): utime and stime are 14th and 15th.
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    try:
        process = seconds(f"/proc/{pid}/stat")
        main = seconds(f"/proc/{pid}/task/{pid}/stat")
    except (OSError, ValueError, IndexError):
        return None
    return main, max(process - main, 0.0)


class ThreadCpuSampler:
    """A thread of this process that samples :func:`thread_cpu` of the peers every
    CPU_SAMPLE_INTERVAL: ``samples[role]`` is a list of [monotonic time, main, others]."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.samples: dict[str, list[list[float]]] = {role: [] for role in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="thread-cpu sampler", daemon=True)

    def __enter__(self) -> ThreadCpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(CPU_SAMPLE_INTERVAL):
            for role, pid in self.pids.items():
                sample = thread_cpu(pid)
                if sample is not None:
                    self.samples[role].append([time.monotonic(), *sample])


def run_pair(
    python: str,
    stack: str,
    codec: str,
    *,
    duration: float,
    bitrate: int,
    watchdog: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start a sender and a receiver process, relay offer and answer, wait for both; their logs."""
    script = str(HERE / PEER_SCRIPT[stack])
    with tempfile.TemporaryDirectory(prefix="trio_rtc-media-") as scratch:
        processes: dict[str, subprocess.Popen[str]] = {}
        errors: dict[str, Any] = {}
        outs = {role: os.path.join(scratch, f"{role}.json") for role in ("sender", "receiver")}
        for role in ("sender", "receiver"):
            command = [
                python,
                script,
                "--role",
                role,
                "--codec",
                codec,
                "--duration",
                str(duration),
                "--bitrate",
                str(bitrate),
                "--out",
                outs[role],
            ]
            if not watchdog:
                command.append("--no-watchdog")
            errors[role] = open(os.path.join(scratch, f"{role}.stderr"), "w+")
            processes[role] = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors[role],
                text=True,
                cwd=HERE.parent,
            )

        timed_out: list[bool] = []

        def kill_all() -> None:
            timed_out.append(True)
            for process in processes.values():
                if process.poll() is None:
                    process.kill()

        timer = threading.Timer(duration + PAIR_SLACK, kill_all)
        timer.start()
        sampler = ThreadCpuSampler({role: process.pid for role, process in processes.items()})
        try:
            with sampler:
                sender, receiver = processes["sender"], processes["receiver"]
                offer = _next_signal(sender, "OFFER")
                _send_signal(receiver, "OFFER", offer)
                answer = _next_signal(receiver, "ANSWER")
                _send_signal(sender, "ANSWER", answer)
                for process in processes.values():
                    process.wait()
        except PairError as error:
            kill_all()
            for process in processes.values():
                process.wait()
            raise PairError(f"{error}; {_stderr_tails(errors)}") from None
        finally:
            timer.cancel()
        logs = {}
        for role, process in processes.items():
            path = Path(outs[role])
            if not path.exists():
                why = f"killed after {duration + PAIR_SLACK:.0f} s" if timed_out else "exited"
                raise PairError(
                    f"{role} {why} ({process.returncode}) and wrote nothing; "
                    f"{_stderr_tails(errors)}"
                )
            logs[role] = json.loads(path.read_text())
            logs[role]["thread_cpu"] = sampler.samples[role]
            if logs[role].get("error"):
                raise PairError(f"{role}: {logs[role]['error']}; {_stderr_tails(errors)}")
        for handle in errors.values():
            handle.close()
        # The answer's first payload type in its first section: what the offer's sender uses.
        logs["sender"]["codec_used"] = negotiated_codec(json.loads(answer)["sdp"])
        # The machine is shared: its load over the last minute goes with the figures.
        logs["sender"]["load_average"] = os.getloadavg()[0]
        return logs["sender"], logs["receiver"]


def _next_signal(process: subprocess.Popen[str], kind: str) -> str:
    assert process.stdout is not None
    while True:
        line = process.stdout.readline()
        if not line:
            raise PairError(f"the process ended before sending {kind}")
        if line.startswith(kind + " "):
            return line[len(kind) + 1 :].strip()


def _send_signal(process: subprocess.Popen[str], kind: str, payload: str) -> None:
    assert process.stdin is not None
    try:
        process.stdin.write(f"{kind} {payload}\n")
        process.stdin.flush()
    except BrokenPipeError:
        raise PairError(f"the process ended before receiving {kind}") from None


def _stderr_tails(handles: dict[str, Any]) -> str:
    parts = []
    for role, handle in handles.items():
        handle.flush()
        handle.seek(0)
        lines = handle.read().strip().splitlines()
        if lines:
            parts.append(f"{role} stderr: " + " | ".join(lines[-4:]))
    return "; ".join(parts) or "no stderr"


def median_or_none(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def render(
    results: dict[str, dict[str, dict[str, list[float]]]],
    errors: dict[str, dict[str, list[str]]],
    codecs: Sequence[str],
    header: str,
) -> tuple[str, dict[str, Any]]:
    """The table and the comparison for the JSON."""
    rows = [("figure", "unit", "trio_rtc", "aiortc", "trio/aio", "target", "verdict")]
    comparison: dict[str, Any] = {}
    for codec in codecs:
        kind = kind_of(codec)
        rows.append((f"{codec.upper()} ({kind})", "", "", "", "", "", ""))
        for figure in FIGURES:
            if kind not in figure.kinds:
                continue
            name = f"{codec}_{figure.key}"
            ours = median_or_none(results.get("trio_rtc", {}).get(codec, {}).get(figure.key, []))
            theirs = median_or_none(results.get("aiortc", {}).get(codec, {}).get(figure.key, []))
            ratio = ours / theirs if ours is not None and theirs else None
            ratio_target = figure.ratio_target
            if figure.key == "latency_ms_median":
                ratio_target = LATENCY_TARGET[kind]
            target, verdict, met = "", "", None
            if ratio_target is not None:
                sign = "<=" if figure.better == "lower" else ">="
                target = f"{sign}{ratio_target:g}x"
                if ratio is not None:
                    met = (
                        ratio <= ratio_target if figure.better == "lower" else ratio >= ratio_target
                    )
            elif figure.absolute_target is not None:
                target = f"<={figure.absolute_target:g} {figure.unit} (trio)"
                if ours is not None:
                    met = ours <= figure.absolute_target
            if met is not None:
                verdict = "met" if met else "NOT met"
            elif ratio and ours is not None and theirs is not None:  # not 0: no 1/ratio
                better = ours < theirs if figure.better == "lower" else ours > theirs
                verdict = f"{'trio_rtc' if better else 'aiortc'} {max(ratio, 1 / ratio):.2g}x"
            comparison[name] = {
                "unit": figure.unit,
                "better": figure.better,
                "trio_rtc": ours,
                "aiortc": theirs,
                "ratio": ratio,
                "ratio_target": ratio_target,
                "absolute_target": figure.absolute_target,
                "target_met": met,
            }

            rows.append(
                (
                    figure.title,
                    figure.unit,
                    _show(ours, bool(errors.get("trio_rtc", {}).get(codec))),
                    _show(theirs, bool(errors.get("aiortc", {}).get(codec))),
                    f"{ratio:.3g}" if ratio is not None else "-",
                    target,
                    verdict,
                )
            )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [header]
    for index, row in enumerate(rows):
        lines.append(
            "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip()
        )
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    for stack, by_codec in errors.items():
        for codec, messages in by_codec.items():
            lines.append(f"{stack} {codec}: {len(messages)} error(s), first: {messages[0]}")
    return "\n".join(lines), comparison


def _show(value: float | None, failed: bool) -> str:
    if value is not None:
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "error" if failed else "-"


def negotiated_codec(sdp: str) -> str | None:
    """The encoding name of the first payload type of the first media section (what the
    offerer sends with, the answer's order being the answerer's preference among its own)."""
    section = re.search(r"^m=(?:audio|video) \S+ \S+ (\d+)", sdp, re.MULTILINE)
    if section is None:
        return None
    rtpmap = re.search(rf"^a=rtpmap:{section[1]} ([^\s]+)", sdp, re.MULTILINE)
    return rtpmap[1] if rtpmap else None


def versions(python: str) -> dict[str, str]:
    code = (
        "import json\nfrom importlib import metadata\nout = {}\n"
        "for name in ('aiortc', 'aioice', 'av', 'trio', 'trio_rtc', 'cryptography'):\n"
        "    try: out[name] = metadata.version(name)\n"
        "    except metadata.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=30)
        result: dict[str, str] = json.loads(done.stdout)
        return result
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=3, help="A B rounds (default 3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before the window")
    parser.add_argument("--codec", default="all", help="vp8, h264, opus, a comma list, or all")
    parser.add_argument("--json", type=Path, help="write every raw value here")
    parser.add_argument(
        "--bitrate",
        type=int,
        default=DEFAULT_VIDEO_BITRATE,
        help="video bits/s both stacks are held at (0: each stack's own default and, for "
        "aiortc, its REMB-driven adaptation); default %(default)s",
    )
    parser.add_argument("--stacks", default=",".join(STACKS), help="subset of trio_rtc,aiortc")
    parser.add_argument("--python", default=sys.executable, help="python for trio_rtc peers")
    parser.add_argument(
        "--aiortc-python", default=sys.executable, help="python for aiortc peers (has aiortc)"
    )
    parser.add_argument(
        "--no-watchdog",
        action="store_true",
        help="no 1 ms watchdog task (its wake-ups cost CPU; the blocking figures go)",
    )
    args = parser.parse_args(argv)
    codecs = list(CODECS) if args.codec == "all" else args.codec.split(",")
    for codec in codecs:
        if codec not in CODECS:
            parser.error(f"unknown codec {codec!r}")
    stacks = [stack for stack in STACKS if stack in args.stacks.split(",")]
    pythons = {"trio_rtc": args.python, "aiortc": args.aiortc_python}
    duration = args.warmup + args.seconds + 0.5

    results: dict[str, dict[str, dict[str, list[float]]]] = {s: {} for s in stacks}
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {s: {} for s in stacks}
    errors: dict[str, dict[str, list[str]]] = {s: {} for s in stacks}
    begun = time.perf_counter()
    for round_number in range(1, args.rounds + 1):
        for codec in codecs:
            bitrate = OPUS_BITRATE if codec == "opus" else args.bitrate
            for stack in stacks:
                started = time.perf_counter()
                try:
                    sender, receiver = run_pair(
                        pythons[stack],
                        stack,
                        codec,
                        duration=duration,
                        bitrate=bitrate,
                        watchdog=not args.no_watchdog,
                    )
                    figures, details = analyse(codec, sender, receiver, args.warmup, args.seconds)
                except (PairError, RuntimeError) as error:
                    errors[stack].setdefault(codec, []).append(str(error))
                    outcome = f"error: {error}"
                else:
                    for key, value in figures.items():
                        results[stack].setdefault(codec, {}).setdefault(key, []).append(value)
                    raw[stack].setdefault(codec, []).append({"figures": figures, **details})
                    outcome = ", ".join(
                        f"{key}={value:.3g}"
                        for key, value in figures.items()
                        if key in ("latency_ms_median", "frames_s", "kbit_s")
                        or key.endswith("cpu_pct")
                    )
                print(
                    f"[round {round_number}/{args.rounds}] {codec:<5} {stack:<8} "
                    f"{time.perf_counter() - started:5.1f} s  {outcome}",
                    file=sys.stderr,
                    flush=True,
                )
    video_rate = (
        f"video held at {args.bitrate / 1000:g} kbit/s"
        if args.bitrate
        else "video at each stack's own bitrate"
    )
    header = (
        f"median of {args.rounds} round(s); 640x480 {FPS} fps / Opus 48 kHz; "
        f"{args.seconds:g} s measured after {args.warmup:g} s; {video_rate}, Opus "
        f"{OPUS_BITRATE // 1000} kbit/s"
    )
    loads = [
        run["load_average"]
        for by_codec in raw.values()
        for runs in by_codec.values()
        for run in runs
        if run.get("load_average") is not None
    ]
    cores = os.cpu_count() or 1
    if loads:
        header += f"\nload average (1 min) after each pair: {min(loads):.1f} to {max(loads):.1f}"
        header += f" on {cores} cores"
        if max(loads) > cores:
            header += " -- the machine was busy with other work: the CPU and latency figures are unreliable"
    table, comparison = render(results, errors, codecs, header)
    print(table)
    print(f"(took {time.perf_counter() - begun:.0f} s)", file=sys.stderr)
    if args.json:
        report = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "arguments": {
                "rounds": args.rounds,
                "seconds": args.seconds,
                "warmup": args.warmup,
                "codecs": codecs,
                "video_bitrate": args.bitrate,
                "opus_bitrate": OPUS_BITRATE,
                "watchdog": not args.no_watchdog,
            },
            "machine": {
                "cpu_count": os.cpu_count(),
                "load_average": list(os.getloadavg()),
                "python": sys.version.split()[0],
            },
            "versions": {stack: versions(pythons[stack]) for stack in stacks},
            "comparison": comparison,
            "values": results,
            "runs": raw,
            "errors": errors,
        }
        args.json.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    return 1 if any(errors[stack] for stack in stacks) else 0


if __name__ == "__main__":
    sys.exit(main())
