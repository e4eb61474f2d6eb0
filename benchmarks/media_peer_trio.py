"""One trio_rtc peer of the media benchmark (``bench_media.py`` starts two: sender, receiver).

The sender adds a :class:`~trio_rtc.media.VideoSource` (or ``AudioSource``) track, prefers the
codec with ``setCodecPreferences``, holds the encoder at ``--bitrate`` through
``setParameters`` (``maxBitrate``), offers, and once connected hands the test pattern's frames to
``source.send`` in real time. The receiver answers and reads decoded frames from the ``track``
event's track with ``recv()``. Signalling is the parent's stdin/stdout (no trickle). The
default ``RTCPeerConnection()`` configuration: what a user gets.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import trio
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

from trio_rtc import RTCPeerConnection, RTCSessionDescription
from trio_rtc.media import AudioSource, RTCRtpSender, VideoSource


async def watchdog(log: PeerLog) -> None:
    """Sleep 1 ms forever, noting how late each wake-up is (the loop was busy meanwhile)."""
    starts, lates = log.data["watchdog_t"], log.data["watchdog_late"]
    clock = time.monotonic
    while True:
        before = clock()
        await trio.sleep(WATCHDOG_INTERVAL)
        starts.append(before)
        lates.append(clock() - before - WATCHDOG_INTERVAL)


async def calibrate_watchdog(log: PeerLog) -> None:
    """The watchdog's own CPU on this idle loop (connected, no media yet): alternate windows
    without and with it (bench_media's docstring says why)."""
    scratch = PeerLog("trio_rtc", "calibration", "")
    pairs = []
    await trio.sleep(CALIBRATION_SETTLE)
    for _ in range(CALIBRATION_ROUNDS):
        before = cpu_seconds()
        await trio.sleep(CALIBRATION_SECONDS)
        without = cpu_seconds() - before
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watchdog, scratch)
            before = cpu_seconds()
            await trio.sleep(CALIBRATION_SECONDS)
            pairs.append((without, cpu_seconds() - before))
            nursery.cancel_scope.cancel()
    log.data["watchdog_cpu"] = watchdog_cost(pairs)


async def cpu_sampler(log: PeerLog) -> None:
    samples = log.data["cpu"]
    while True:
        samples.append([time.monotonic(), cpu_seconds()])
        await trio.sleep(CPU_SAMPLE_INTERVAL)


async def bytes_sampler(pc: Any, log: PeerLog) -> None:
    """Bytes sent, and (in the notes, for reading a run) the bandwidth estimate and the
    encoder's target: [t, availableOutgoingBitrate, targetBitrate]."""
    samples = log.data["bytes"]
    estimates = log.data["notes"].setdefault("estimate", [])
    while True:
        report = await pc.getStats()
        sent = target = 0
        available = None
        for entry in report.values():
            if entry["type"] == "outbound-rtp":
                sent += entry.get("bytesSent", 0)
                target += entry.get("targetBitrate", 0) or 0
            elif entry["type"] == "candidate-pair" and entry.get("nominated"):
                available = entry.get("availableOutgoingBitrate")
        now = time.monotonic()
        samples.append([now, sent])
        estimates.append([now, available, target])
        await trio.sleep(STATS_SAMPLE_INTERVAL)


def prefer(transceiver: Any, kind: str, name: str) -> None:
    capabilities = RTCRtpSender.getCapabilities(kind)
    assert capabilities is not None
    wanted = f"{kind}/{name}".lower()
    codecs = [c for c in capabilities.codecs if c.mimeType.lower() == wanted]
    if not codecs:
        raise RuntimeError(f"{name} is not among trio_rtc's {kind} codecs")
    transceiver.setCodecPreferences(codecs)


async def run_sender(args: Any, log: PeerLog) -> None:
    kind = "audio" if args.codec == "opus" else "video"
    async with RTCPeerConnection() as pc, trio.open_nursery() as nursery:
        source: Any = AudioSource() if kind == "audio" else VideoSource()
        sender = pc.addTrack(source.create_track("bench"))
        [transceiver] = pc.getTransceivers()
        prefer(transceiver, kind, args.codec)
        if args.bitrate:
            parameters = sender.getParameters()
            parameters.encodings[0].maxBitrate = args.bitrate
            await sender.setParameters(parameters)
        await pc.setLocalDescription(await pc.createOffer())
        await pc.wait_gathering_complete()
        offer = pc.localDescription
        assert offer is not None
        emit("OFFER", {"type": offer.type, "sdp": offer.sdp})
        answer = await trio.to_thread.run_sync(read_signal, "ANSWER")
        await pc.setRemoteDescription(RTCSessionDescription(answer))
        with trio.fail_after(30):
            await pc.wait_connection_state("connected")
        if not args.no_watchdog:
            await calibrate_watchdog(log)
            await trio.sleep(CALIBRATION_MARGIN)  # the receiver calibrates meanwhile
            nursery.start_soon(watchdog, log)
        nursery.start_soon(cpu_sampler, log)
        nursery.start_soon(bytes_sampler, pc, log)
        frames = log.data["frames"]
        onsets = log.data["onsets"]
        clock = time.monotonic
        if kind == "video":
            pattern = VideoPattern()
            interval = 1 / FPS
        else:
            tones = TonePattern()
            interval = AUDIO_FRAME_SECONDS
        count = int(args.duration / interval)
        begin = trio.current_time()
        for index in range(count):
            await trio.sleep_until(begin + index * interval)
            if index == 0 and args.announce_start:
                emit("STARTED", {"t": clock()})
            if kind == "video":
                frame = pattern.picture(index)
                frames.append([index, clock()])
            else:
                frame = tones.frame(index)
                moment = clock()
                frames.append([index, moment])
                if tones.is_onset(index):
                    onsets.append(moment)
            await source.send(frame)
        await trio.sleep(TAIL + 0.5)
        stats = sender.encode_stats
        if stats is not None:
            log.data["notes"]["encode"] = {
                "frames": stats.frames,
                "dropped": stats.dropped,
                "errors": stats.errors,
                "ms_per_frame": 1000 * stats.total_time / max(stats.frames, 1),
            }
        nursery.cancel_scope.cancel()


async def run_receiver(args: Any, log: PeerLog) -> None:
    kind = "audio" if args.codec == "opus" else "video"
    async with RTCPeerConnection() as pc, trio.open_nursery() as nursery:
        tracks: list[Any] = []
        arrived = trio.Event()

        def on_track(event: Any) -> None:
            tracks.append(event.track)
            arrived.set()

        pc.ontrack = on_track
        offer = await trio.to_thread.run_sync(read_signal, "OFFER")
        await pc.setRemoteDescription(RTCSessionDescription(offer))
        await pc.setLocalDescription(await pc.createAnswer())
        await pc.wait_gathering_complete()
        answer = pc.localDescription
        assert answer is not None
        emit("ANSWER", {"type": answer.type, "sdp": answer.sdp})
        with trio.fail_after(30):
            await arrived.wait()
            await pc.wait_connection_state("connected")
        if not args.no_watchdog:
            await calibrate_watchdog(log)
            nursery.start_soon(watchdog, log)
        nursery.start_soon(cpu_sampler, log)
        track = tracks[0]
        frames = log.data["frames"]
        clock = time.monotonic
        deadline: float | None = None
        loud = False
        with trio.move_on_after(args.duration + 30) as overall:
            while True:
                with trio.move_on_at(deadline if deadline is not None else float("inf")):
                    try:
                        frame = await track.recv()
                    except trio.EndOfChannel:
                        break
                if deadline is not None and trio.current_time() >= deadline:
                    break
                moment = clock()
                if deadline is None:
                    deadline = trio.current_time() + args.duration + TAIL
                if kind == "video":
                    frames.append([read_counter(frame), moment])
                else:
                    log.data["audio_frames"].append(moment)
                    # The onset is heard where its first loud sample plays: the frame's
                    # return plus that sample's offset (the codec's delay shows there).
                    onset = audio_onset(frame)
                    if onset is not None and not loud:
                        log.data["onsets"].append(moment + onset)
                    loud = onset is not None
        if overall.cancelled_caught and not frames and not log.data["audio_frames"]:
            raise RuntimeError("no frame arrived")
        report = await pc.getStats()
        for entry in report.values():
            if entry["type"] == "inbound-rtp":
                log.data["notes"]["inbound_rtp"] = {
                    key: value
                    for key, value in entry.items()
                    if isinstance(value, int | float) and not isinstance(value, bool)
                }
        log.data["notes"]["decoded_frames_dropped"] = getattr(track, "decoded_frames_dropped", None)
        nursery.cancel_scope.cancel()


def main() -> int:
    args = peer_arguments()
    log = PeerLog("trio_rtc", args.role, args.codec)
    try:
        trio.run(run_sender if args.role == "sender" else run_receiver, args, log)
    except BaseException as error:  # reported to the parent, then re-raised
        log.data["error"] = f"{type(error).__name__}: {error}"
        log.write(args.out)
        raise
    log.write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
