"""One aiortc peer of the media benchmark (``bench_media.py`` starts two: sender, receiver).

aiortc's usual API: the sender adds a ``MediaStreamTrack`` subclass whose ``recv()`` returns the
test pattern's frames in real time (aiortc's sender pulls them, encodes in its thread pool and
packetizes), prefers the codec with ``setCodecPreferences`` and offers; the receiver answers and
reads decoded frames from the ``track`` event's track with ``recv()``. Signalling is the
parent's stdin/stdout (no trickle; aiortc gathers before ``setLocalDescription`` returns).

Configuration: ``RTCConfiguration(iceServers=[])``, i.e. aiortc's defaults minus the public
STUN server it would otherwise contact (trio_rtc's default has no ICE server either).

Bitrate: aiortc has no API for it. Its VP8 and H.264 encoders start at a module constant
(DEFAULT_BITRATE) and follow the receiver's REMB between MIN_BITRATE and MAX_BITRATE; with
``--bitrate`` all three constants are set to that value, so the encoder is held there as
trio_rtc's is by ``maxBitrate``. Its Opus encoder is fixed at 96 kbit/s stereo.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.codecs import h264, vpx
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from bench_media import (
    AUDIO_FRAME_SECONDS,
    CALIBRATION_MARGIN,
    CALIBRATION_ROUNDS,
    CALIBRATION_SECONDS,
    CALIBRATION_SETTLE,
    CPU_SAMPLE_INTERVAL,
    FPS,
    STATS_SAMPLE_INTERVAL,
    TAIL,
    WATCHDOG_INTERVAL,
    PeerLog,
    TonePattern,
    VideoPattern,
    audio_onset,
    cpu_seconds,
    emit,
    peer_arguments,
    read_counter,
    read_signal,
    watchdog_cost,
)


def hold_bitrate(bitrate: int) -> None:
    for module in (vpx, h264):
        module.DEFAULT_BITRATE = module.MIN_BITRATE = module.MAX_BITRATE = bitrate  # type: ignore[attr-defined]


class PatternTrack(MediaStreamTrack):
    """The test pattern (or tone bursts), paced in real time, logging each hand-over."""

    def __init__(self, kind: str, log: PeerLog, duration: float, announce: bool = False) -> None:
        super().__init__()
        self.announce = announce
        self.kind = kind
        self.log = log
        self.interval = 1 / FPS if kind == "video" else AUDIO_FRAME_SECONDS
        self.count = int(duration / self.interval)
        self.index = 0
        self.begin: float | None = None
        self.pattern = VideoPattern() if kind == "video" else None
        self.tones = TonePattern() if kind == "audio" else None
        self.done = asyncio.Event()
        #: Set when frames may flow (aiortc pulls as soon as DTLS is up; the watchdog's
        #: calibration comes first).
        self.go = asyncio.Event()

    async def recv(self) -> Any:
        loop = asyncio.get_running_loop()
        await self.go.wait()
        if self.begin is None:
            self.begin = loop.time()
        if self.index >= self.count:
            self.done.set()
            self.stop()
            raise MediaStreamError
        delay = self.begin + self.index * self.interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        index = self.index
        self.index += 1
        if index == 0 and self.announce:
            emit("STARTED", {"t": time.monotonic()})
        if self.pattern is not None:
            frame = self.pattern.picture(index)
            self.log.data["frames"].append([index, time.monotonic()])
        else:
            assert self.tones is not None
            frame = self.tones.frame(index)
            moment = time.monotonic()
            self.log.data["frames"].append([index, moment])
            if self.tones.is_onset(index):
                self.log.data["onsets"].append(moment)
        return frame


async def watchdog(log: PeerLog) -> None:
    starts, lates = log.data["watchdog_t"], log.data["watchdog_late"]
    clock = time.monotonic
    while True:
        before = clock()
        await asyncio.sleep(WATCHDOG_INTERVAL)
        starts.append(before)
        lates.append(clock() - before - WATCHDOG_INTERVAL)


async def calibrate_watchdog(log: PeerLog) -> None:
    """The watchdog's own CPU on this idle loop (connected, no media yet): alternate windows
    without and with it, as the trio_rtc peer does."""
    scratch = PeerLog("aiortc", "calibration", "")
    pairs = []
    await asyncio.sleep(CALIBRATION_SETTLE)
    for _ in range(CALIBRATION_ROUNDS):
        before = cpu_seconds()
        await asyncio.sleep(CALIBRATION_SECONDS)
        without = cpu_seconds() - before
        task = asyncio.ensure_future(watchdog(scratch))
        before = cpu_seconds()
        await asyncio.sleep(CALIBRATION_SECONDS)
        pairs.append((without, cpu_seconds() - before))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    log.data["watchdog_cpu"] = watchdog_cost(pairs)


async def cpu_sampler(log: PeerLog) -> None:
    samples = log.data["cpu"]
    while True:
        samples.append([time.monotonic(), cpu_seconds()])
        await asyncio.sleep(CPU_SAMPLE_INTERVAL)


async def bytes_sampler(pc: Any, log: PeerLog) -> None:
    samples = log.data["bytes"]
    while True:
        report = await pc.getStats()
        sent = sum(
            getattr(entry, "bytesSent", 0)
            for entry in report.values()
            if entry.type == "outbound-rtp"
        )
        samples.append([time.monotonic(), sent])
        await asyncio.sleep(STATS_SAMPLE_INTERVAL)


def prefer(transceiver: Any, kind: str, name: str) -> None:
    wanted = f"{kind}/{name}".lower()
    codecs = [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType.lower() == wanted]
    if not codecs:
        raise RuntimeError(f"{name} is not among aiortc's {kind} codecs")
    transceiver.setCodecPreferences(codecs)


async def wait_connected(pc: Any) -> None:
    while pc.connectionState != "connected":
        if pc.connectionState in ("failed", "closed"):
            raise RuntimeError(f"connection {pc.connectionState}")
        await asyncio.sleep(0.01)


def start(tasks: list[asyncio.Task[Any]], coroutine: Any) -> None:
    tasks.append(asyncio.ensure_future(coroutine))


async def run_sender(args: Any, log: PeerLog) -> None:
    kind = "audio" if args.codec == "opus" else "video"
    if args.bitrate and kind == "video":
        hold_bitrate(args.bitrate)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tasks: list[asyncio.Task[Any]] = []
    try:
        track = PatternTrack(kind, log, args.duration, args.announce_start)
        pc.addTrack(track)
        [transceiver] = pc.getTransceivers()
        prefer(transceiver, kind, args.codec)
        await pc.setLocalDescription(await pc.createOffer())
        emit("OFFER", {"type": pc.localDescription.type, "sdp": pc.localDescription.sdp})
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(None, read_signal, "ANSWER")
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        await asyncio.wait_for(wait_connected(pc), 30)
        if not args.no_watchdog:
            await calibrate_watchdog(log)
            await asyncio.sleep(CALIBRATION_MARGIN)  # the receiver calibrates meanwhile
            start(tasks, watchdog(log))
        track.go.set()
        start(tasks, cpu_sampler(log))
        start(tasks, bytes_sampler(pc, log))
        await asyncio.wait_for(track.done.wait(), args.duration + 30)
        await asyncio.sleep(TAIL + 0.5)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await pc.close()


async def run_receiver(args: Any, log: PeerLog) -> None:
    kind = "audio" if args.codec == "opus" else "video"
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tasks: list[asyncio.Task[Any]] = []
    tracks: list[Any] = []
    arrived = asyncio.Event()

    @pc.on("track")
    def on_track(track: Any) -> None:
        tracks.append(track)
        arrived.set()

    try:
        loop = asyncio.get_running_loop()
        offer = await loop.run_in_executor(None, read_signal, "OFFER")
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], offer["type"]))
        await pc.setLocalDescription(await pc.createAnswer())
        emit("ANSWER", {"type": pc.localDescription.type, "sdp": pc.localDescription.sdp})
        await asyncio.wait_for(arrived.wait(), 30)
        await asyncio.wait_for(wait_connected(pc), 30)
        if not args.no_watchdog:
            await calibrate_watchdog(log)
            start(tasks, watchdog(log))
        start(tasks, cpu_sampler(log))
        track = tracks[0]
        frames = log.data["frames"]
        clock = time.monotonic
        deadline: float | None = None
        loud = False
        while True:
            timeout = args.duration + 30 if deadline is None else deadline - loop.time()
            if timeout <= 0:
                break
            try:
                frame = await asyncio.wait_for(track.recv(), timeout)
            except (MediaStreamError, TimeoutError):
                break
            moment = clock()
            if deadline is None:
                deadline = loop.time() + args.duration + TAIL
            if kind == "video":
                frames.append([read_counter(frame), moment])
            else:
                log.data["audio_frames"].append(moment)
                onset = audio_onset(frame)  # as on the trio_rtc side
                if onset is not None and not loud:
                    log.data["onsets"].append(moment + onset)
                loud = onset is not None
        if not frames and not log.data["audio_frames"]:
            raise RuntimeError("no frame arrived")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await pc.close()


def main() -> int:
    args = peer_arguments()
    log = PeerLog("aiortc", args.role, args.codec)
    try:
        asyncio.run(run_sender(args, log) if args.role == "sender" else run_receiver(args, log))
    except BaseException as error:  # reported to the parent, then re-raised
        log.data["error"] = f"{type(error).__name__}: {error}"
        log.write(args.out)
        raise
    log.write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
