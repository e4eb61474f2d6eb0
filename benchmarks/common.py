"""What the side-by-side benchmark scripts share: figures, sizes, measurement and result files.

Standard library only: ``bench_aiortc.py`` may run in a separate venv that has aiortc and nothing
of trio_rtc, and ``run.py`` must run before either stack is importable.

Each ``bench_<stack>.py`` process runs one *scenario* (a workload that yields one or more
*figures*) and writes a :class:`ScenarioResult` as JSON; ``run.py`` starts those processes,
alternating the stacks, and aggregates medians and ratios.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import os
import platform
import re
import resource
import statistics
import struct
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

#: The address the ``loopback`` path narrows both stacks' interface scans to; on that path the
#: scripts check every SDP and candidate against it.
LOOPBACK = "127.0.0.1"

#: Which network path the pcs use (``--path``). ``default``: what a user gets, the default
#: configuration and every interface the ICE layer finds, nothing patched and nothing checked
#: (the result records which addresses were gathered and which pair carried the data).
#: ``loopback``: both stacks' interface scans narrowed to 127.0.0.1 and every SDP checked, an
#: extra row for comparing the stacks without the host's network in the way.
PATHS: tuple[str, ...] = ("default", "loopback")
PATH_LABELS = {
    "default": "default path: every interface ICE finds",
    "loopback": "loopback only (ICE patched to gather 127.0.0.1)",
}

#: Flow control used by every sender (the same on both stacks): keep sending while
#: ``bufferedAmount`` is below HIGH_WATER, then wait for ``bufferedamountlow``, fired when it
#: falls to LOW_THRESHOLD (``bufferedAmountLowThreshold``), as a browser application would.
HIGH_WATER = 1024 * 1024
LOW_THRESHOLD = 256 * 1024

#: The media scenario's flow control (the same on both stacks): the sender keeps at most this
#: many frames in flight (sent, not yet delivered to the receiving application), so neither
#: stack loses packets to a full socket buffer and both run as fast as their receive path allows.
MEDIA_WINDOW = 6
MEDIA_WIDTH, MEDIA_HEIGHT, MEDIA_FPS = 640, 480, 30
#: 90 kHz RTP clock ticks per frame at 30 fps.
MEDIA_TICKS_PER_FRAME = 90_000 // MEDIA_FPS

#: Exit status of a bench script whose stack lacks what the scenario needs (not a crash).
EXIT_UNAVAILABLE = 3

Better = Literal["lower", "higher"]


@dataclass(frozen=True)
class Figure:
    """One number of the table: its key in the JSON, unit, which direction is better."""

    name: str
    unit: str
    better: Better
    title: str
    scenario: str
    #: The target for trio_rtc / aiortc (at least this when higher is better, at most this when
    #: lower is better), or None: issue 14's on the default path for setup and RTT, issue 6's
    #: for the others.
    target: float | None = None
    #: The aiortc figure this one is compared with when aiortc cannot measure it itself (aiortc
    #: has no trickle ICE: trickle setup is compared with its only setup), or None.
    versus: str | None = None


FIGURES: tuple[Figure, ...] = (
    Figure("setup_ms", "ms", "lower", "setup: 2 pcs created -> channel open on both", "setup", 0.3),
    Figure("setup_cpu_ms", "CPU ms", "lower", "  CPU per setup (both pcs)", "setup", 1.0),
    Figure(
        "setup_trickle_ms",
        "ms",
        "lower",
        "setup, trickle ICE (vs aiortc non-trickle)",
        "setup_trickle",
        0.3,
        versus="setup_ms",
    ),
    Figure("setup_trickle_cpu_ms", "CPU ms", "lower", "  CPU per trickle setup", "setup_trickle"),
    Figure(
        "reliable_16k_mib_s", "MiB/s", "higher", "reliable ordered, 16 KiB msgs", "reliable_16k", 10
    ),
    Figure("reliable_16k_cpu_s_per_mib", "CPU s/MiB", "lower", "  CPU per MiB", "reliable_16k"),
    Figure(
        "reliable_64k_mib_s", "MiB/s", "higher", "reliable ordered, 64 KiB msgs", "reliable_64k", 5
    ),
    Figure("reliable_64k_cpu_s_per_mib", "CPU s/MiB", "lower", "  CPU per MiB", "reliable_64k"),
    Figure(
        "unordered_mib_s", "MiB/s", "higher", "unordered maxRetransmits=0, 16 KiB", "unordered", 5
    ),
    Figure("unordered_delivered_pct", "%", "higher", "  messages delivered", "unordered"),
    Figure("small_msg_s", "msg/s", "higher", "100-byte messages, reliable", "small", 30),
    Figure("small_cpu_s_per_mib", "CPU s/MiB", "lower", "  CPU per MiB", "small"),
    Figure("rtt_ms", "ms", "lower", "ping-pong RTT (median)", "rtt", 0.5),
    Figure("many_connect_s", "s", "lower", "N pcs in one process: connect all", "many", 0.5),
    Figure("many_rss_kib_per_pc", "KiB", "lower", "  RSS per pc", "many", 0.5),
    Figure("fleet_connect_s", "s", "lower", "1,000 pcs in one process: connect all", "fleet"),
    Figure("fleet_rss_kib_per_pc", "KiB", "lower", "  RSS per pc", "fleet"),
    Figure("fleet_cpu_pct", "% of a core", "lower", "  CPU, every pc echoing 1 msg/s", "fleet"),
    Figure("fleet_echo_p99_ms", "ms", "lower", "  echo latency p99", "fleet"),
    Figure("ice_connect_ms", "ms", "lower", "lower layer: ICE gather+connect", "ice"),
    Figure("ice_dtls_connect_ms", "ms", "lower", "lower layer: ICE+DTLS connect", "ice_dtls"),
    Figure("media_rtp_packets_s", "pkt/s", "higher", "media: VP8 SRTP packets received", "media"),
    Figure("media_cpu_us_per_packet", "CPU us/pkt", "lower", "  CPU per packet", "media"),
)

FIGURES_BY_NAME = {figure.name: figure for figure in FIGURES}
SCENARIOS: tuple[str, ...] = tuple(dict.fromkeys(figure.scenario for figure in FIGURES))


def figures_of(scenario: str) -> list[Figure]:
    return [figure for figure in FIGURES if figure.scenario == scenario]


def scenarios_for(selection: Iterable[str]) -> list[str]:
    """Scenarios to run for ``--only`` names, which may be scenario or figure names."""
    wanted: list[str] = []
    for name in selection:
        if name in SCENARIOS:
            scenario = name
        elif name in FIGURES_BY_NAME:
            scenario = FIGURES_BY_NAME[name].scenario
        else:
            known = ", ".join([*SCENARIOS, *FIGURES_BY_NAME])
            raise ValueError(f"unknown figure or scenario {name!r}; expected one of: {known}")
        if scenario not in wanted:
            wanted.append(scenario)
    return [scenario for scenario in SCENARIOS if scenario in wanted]


@dataclass(frozen=True)
class Sizes:
    """Workload sizes; ``quick`` divides every one by about 50 for smoke runs."""

    quick: bool
    setup_repeats: int
    bulk_bytes: int
    small_count: int
    small_size: int
    rtt_count: int
    rtt_warmup: int
    many_pcs: int
    #: The fleet scenario: this many pcs in one process, then every pair echoing one message a
    #: second for ``fleet_seconds``.
    fleet_pcs: int
    fleet_seconds: float
    ice_repeats: int
    #: VP8 frames of the media scenario (640x480, ~8 KB each: ~7 packets per frame).
    media_frames: int
    #: Seconds a scenario may take before it is abandoned (and reported as an error).
    deadline: float

    @classmethod
    def make(cls, quick: bool) -> Sizes:
        if quick:
            return cls(
                quick=True,
                setup_repeats=2,
                # 32 MiB / 50, rounded to a whole number of 64 KiB messages.
                bulk_bytes=10 * 64 * 1024,
                small_count=1000,
                small_size=100,
                rtt_count=10,
                rtt_warmup=2,
                many_pcs=4,
                fleet_pcs=8,
                fleet_seconds=2.0,
                ice_repeats=2,
                media_frames=6,
                deadline=60.0,
            )
        return cls(
            quick=False,
            setup_repeats=5,
            bulk_bytes=32 * 1024 * 1024,
            small_count=50_000,
            small_size=100,
            rtt_count=500,
            rtt_warmup=20,
            many_pcs=200,
            fleet_pcs=1000,
            fleet_seconds=60.0,
            ice_repeats=5,
            media_frames=300,
            deadline=300.0,
        )


@dataclass
class ScenarioResult:
    """What one bench process reports: figures it measured, or why it could not."""

    stack: str
    scenario: str
    quick: bool
    available: bool = True
    figures: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "scenario": self.scenario,
            "quick": self.quick,
            "available": self.available,
            "figures": self.figures,
            "error": self.error,
            "details": self.details,
            "versions": self.versions,
        }


def bench_arguments(description: str) -> argparse.Namespace:
    """The command line every ``bench_<stack>.py`` takes (``run.py`` builds it)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--scenario", required=True, choices=SCENARIOS)
    parser.add_argument("--quick", action="store_true", help="sizes divided by ~50 (smoke run)")
    parser.add_argument(
        "--path",
        choices=PATHS,
        default="default",
        help="default: every interface ICE finds, nothing patched (default); "
        "loopback: the interface scan narrowed to 127.0.0.1",
    )
    parser.add_argument("--out", type=Path, help="write the JSON result here (default: stdout)")
    parser.add_argument(
        "--profile",
        type=Path,
        help="write a cProfile of the scenario here (read it with python -m pstats)",
    )
    return parser.parse_args()


def call_profiled(profile: Path | None, function: Callable[[], None]) -> None:
    """Call ``function``, under cProfile when ``profile`` names a file for the stats."""
    if profile is None:
        function()
        return
    profiler = cProfile.Profile()
    try:
        profiler.runcall(function)
    finally:
        profiler.dump_stats(profile)


def write_result(result: ScenarioResult, out: Path | None) -> None:
    text = json.dumps(result.to_json(), indent=1, sort_keys=True)
    if out is None:
        print(text)
    else:
        out.write_text(text + "\n")


def describe_error(error: BaseException) -> str:
    """One line for the table: the first leaf of an exception group, with how many there were.

    The whole traceback goes to stderr, which ``run.py`` shows when the process wrote nothing.
    """
    traceback.print_exception(error, file=sys.stderr)
    leaves: list[BaseException] = []
    pending = [error]
    while pending:
        current = pending.pop(0)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        else:
            leaves.append(current)
    first = leaves[0] if leaves else error
    more = f" (and {len(leaves) - 1} more)" if len(leaves) > 1 else ""
    return f"{type(first).__name__}: {first}{more}"


def cpu_seconds() -> float:
    """User + system CPU time of this process (every thread), from ``getrusage``."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_bytes() -> int:
    """Current resident set size, after a full garbage collection."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0.99 for p99) of ``values``, by the nearest-rank method."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return float(ordered[rank - 1])


def raise_fd_limit(needed: int) -> None:
    """Raise this process's soft limit on open files towards ``needed`` (the fleet scenario
    opens a few sockets per pc), as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


#: The fleet scenario's message: a send time (perf_counter) and padding, 32 bytes in all.
FLEET_MESSAGE = struct.Struct("!d24x")


def mib(byte_count: float) -> float:
    return byte_count / (1024 * 1024)


_CANDIDATE_ADDRESS = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ ", re.MULTILINE)


def check_sdp_loopback(sdp: str, *, trickle: bool = False) -> int:
    """Raise unless every candidate in ``sdp`` is on 127.0.0.1; returns how many there are.

    Run on every description before the other side sees it, so no stack can ever send a check
    to an address that is not loopback. A description sent before gathering completes
    (``trickle``) may carry no candidate yet; the trickled ones are checked one by one.
    """
    addresses = _CANDIDATE_ADDRESS.findall(sdp)
    if not addresses and not trickle:
        raise RuntimeError("the SDP carries no candidate at all")
    others = sorted({address for address in addresses if address != LOOPBACK})
    if others:
        raise RuntimeError(f"non-loopback candidates in the SDP: {others}")
    return len(addresses)


def note_data_path(
    details: dict[str, Any], gathered: Iterable[str], local: str, remote: str
) -> None:
    """Record in a result's ``details`` the addresses a connection gathered candidates on and
    the selected pair that carried its data (``local -> remote``, counted per connection).

    On the default path nothing is patched or checked, so this is how a report says which path
    the data took (a LAN address to itself, IPv6, or loopback when nothing else exists).
    """
    addresses: list[str] = details.setdefault("gathered_addresses", [])
    addresses.extend(address for address in gathered if address not in addresses)
    addresses.sort()
    pairs: dict[str, int] = details.setdefault("selected_pairs", {})
    key = f"{local} -> {remote}"
    pairs[key] = pairs.get(key, 0) + 1


def first_video_codec(sdp: str) -> str:
    """The encoding name of the first payload type of the first ``m=video`` section (what the
    sender of an answered section uses), e.g. ``VP8``."""
    section = re.search(r"^m=video \S+ \S+ (\d+)", sdp, re.MULTILINE)
    if section is None:
        raise RuntimeError("the SDP has no video section")
    rtpmap = re.search(rf"^a=rtpmap:{section[1]} ([^/\s]+)/", sdp, re.MULTILINE)
    if rtpmap is None:
        raise RuntimeError(f"no rtpmap for payload type {section[1]}")
    return rtpmap[1]


def package_versions(names: Iterable[str]) -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """The machine a run happened on, for the JSON and docs/performance.md."""
    try:
        usable_cores: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        usable_cores = None
    try:
        with open("/proc/meminfo") as meminfo:
            mem_total_kib = int(meminfo.readline().split()[1])
    except (OSError, ValueError, IndexError):
        mem_total_kib = 0
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores,
        "memory_mib": mem_total_kib // 1024,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "load_average": list(os.getloadavg()),
    }


@dataclass
class Transfer:
    """One timed transfer, as both stacks' scenarios report it."""

    elapsed: float
    """Seconds from the first send to the last message received."""
    messages: int
    byte_count: int
    cpu: float
    """Process CPU seconds (both peers) over the same interval."""


@dataclass
class MediaRun:
    """One timed media run, as both stacks' media scenarios report it."""

    elapsed: float
    """Seconds from the first frame handed to the sender to the last counted frame delivered."""
    frames: int
    """Frames delivered to the receiving application (the receiver's track)."""
    packets: int
    """RTP packets the receiver counted (its ``inbound-rtp`` ``packetsReceived``)."""
    cpu: float
    """Process CPU seconds (both peers) over the same interval."""


def encode_vp8_frames(count: int) -> list[tuple[bytes, bool]]:
    """``count`` VP8 frames (data, keyframe) of a 640x480 test pattern, encoded once with PyAV
    (libvpx, realtime, one thread) before any timing: a moving gradient with a band of noise, so
    each frame is about 8 KB (~7 RTP packets), the first a keyframe.

    Imports ``av`` here: this module is standard library only, but both stacks' venvs have PyAV
    (aiortc depends on it; it is in trio_rtc's dev extras).
    """
    import fractions
    import random

    import av

    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = MEDIA_WIDTH, MEDIA_HEIGHT, "yuv420p"
    codec.time_base = fractions.Fraction(1, MEDIA_FPS)
    codec.bit_rate = 2_000_000
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "threads": "1"}
    noise_source = random.Random(6)
    ramp = bytes(range(256)) * 4
    band = MEDIA_WIDTH // 4
    frames: list[tuple[bytes, bool]] = []
    index = 0
    while len(frames) < count:
        picture = av.VideoFrame(MEDIA_WIDTH, MEDIA_HEIGHT, "yuv420p")
        luma, blue, red = picture.planes
        pad = bytes(luma.line_size - MEDIA_WIDTH)
        rows = []
        for row in range(MEDIA_HEIGHT):
            line = bytearray(ramp[(row + 4 * index) % 256 :][:MEDIA_WIDTH])
            if row % 2 == 0:
                line[band : 2 * band] = noise_source.randbytes(band)
            rows.append(bytes(line) + pad)
        luma.update(b"".join(rows))
        for plane in (blue, red):
            plane.update(bytes([128]) * (plane.line_size * plane.height))
        picture.pts = index
        frames.extend((bytes(packet), bool(packet.is_keyframe)) for packet in codec.encode(picture))
        index += 1
    return frames[:count]
