"""Helpers of the raw-frame media tests (``test_pc_media_frames_*``): a small media file written
with PyAV from trio_rtc's test sources, reading counters back, and a bridge that lets a track
living on an asyncio loop (aiortc's ``MediaPlayer``) be read from Trio."""

from __future__ import annotations

import fractions
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import av
import trio
import trio.lowlevel

from trio_rtc.media import RTCRtpSender
from trio_rtc.media.sources import TestPatternTrack, ToneTrack

#: What each container gets: (video encoder, audio encoder).
FILE_CODECS = {".webm": ("libvpx", "libopus"), ".mp4": ("libx264", "aac")}


def write_test_file(
    path: Path,
    *,
    seconds: float = 2.0,
    width: int = 320,
    height: int = 240,
    framerate: int = 30,
    video: bool = True,
    audio: bool = True,
) -> Path:
    """A ``seconds`` long file of trio_rtc's test pattern (frame ``n`` stamped with counter
    ``n``, see ``read_frame_counter``) and a 440 Hz tone, encoded with PyAV; the container (and
    so its codecs, :data:`FILE_CODECS`) follows the suffix."""
    video_codec, audio_codec = FILE_CODECS[path.suffix]
    pattern = TestPatternTrack(width, height, framerate, realtime=False)
    tone = ToneTrack(realtime=False)
    time_base = fractions.Fraction(1, framerate)
    with av.open(str(path), "w") as container:
        # Every stream is added before the first packet is muxed (that writes the header).
        video_stream = audio_stream = None
        if video:
            video_stream = container.add_stream(video_codec, rate=framerate)
            video_stream.width, video_stream.height = width, height
            video_stream.pix_fmt = "yuv420p"
            if video_codec == "libx264":
                video_stream.options = {"bf": "0"}  # no B-frames: plain decode order
        if audio:
            audio_stream = container.add_stream(audio_codec, rate=48000)
            audio_stream.layout = "mono"
        if video_stream is not None:
            for index in range(round(seconds * framerate)):
                picture = pattern.make_frame(index)
                picture.pts, picture.time_base = index, time_base
                container.mux(video_stream.encode(picture))
            container.mux(video_stream.encode())
        if audio_stream is not None:
            for index in range(round(seconds * 50)):
                container.mux(audio_stream.encode(tone.make_frame(index * 960)))
            container.mux(audio_stream.encode())
    return path


def file_streams(path: Path) -> dict[str, tuple[str, float]]:
    """Each stream's type → (codec name, seconds from the first to the last packet's end), as
    PyAV reads ``path`` back (from the packets themselves, not the container's header)."""
    out: dict[str, tuple[str, float]] = {}
    with av.open(str(path)) as container:
        spans: dict[int, list[float]] = {}
        for packet in container.demux():
            if packet.pts is None or packet.time_base is None:
                continue
            start = float(packet.pts * packet.time_base)
            end = start + float((packet.duration or 0) * packet.time_base)
            span = spans.setdefault(packet.stream.index, [start, end])
            span[0], span[1] = min(span[0], start), max(span[1], end)
        for stream in container.streams:
            first, last = spans.get(stream.index, [0.0, 0.0])
            out[stream.type] = (stream.codec_context.name, last - first)
    return out


def prefer_codec(transceiver: Any, kind: str, name: str) -> None:
    """``setCodecPreferences`` with only ``name`` (every profile of it)."""
    capabilities = RTCRtpSender.getCapabilities(kind)
    assert capabilities is not None
    codecs = [c for c in capabilities.codecs if c.mimeType.lower() == f"{kind}/{name}".lower()]
    assert codecs, f"{name} is not offered"
    transceiver.setCodecPreferences(codecs)


def increasing_run(counters: list[int]) -> int:
    """The length of the longest strictly increasing run in ``counters``."""
    best = run = 0
    previous: int | None = None
    for counter in counters:
        run = run + 1 if previous is not None and counter > previous else 1
        best = max(best, run)
        previous = counter
    return best


# --- an asyncio loop in a thread, for aiortc's tracks -----------------------------------------


# --- leaks: tasks, file descriptors, threads ----------------------------------------------------


def task_names() -> Counter[str]:
    """The name of every task alive under trio's root task, counted."""
    names: Counter[str] = Counter()

    def walk(task: trio.lowlevel.Task) -> None:
        names[task.name] += 1
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    walk(root)
    return names


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def other_threads() -> list[str]:
    """Live threads other than trio's idle worker-thread cache (``trio.to_thread`` keeps its
    workers for a while; one still running a job shows in ``active_thread_count``)."""
    return sorted(t.name for t in threading.enumerate() if not t.name.startswith("Trio thread "))


def rss_bytes() -> int:
    """This process's resident set size."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
