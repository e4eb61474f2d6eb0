"""Decoded media between trio_rtc and a real aiortc peer (a subprocess), both ways.

- Our raw-frame tracks (the stamped test pattern in VP8 or H.264, a tone in Opus) are encoded
  here and decoded by aiortc, which reads our frame counter back from its pictures; aiortc's own
  generated tracks come the other way and our ``recv()`` decodes them. Both offerer roles.
- aiortc's ``MediaPlayer`` as a source of ours. Its tracks cannot be read from Trio as they are:
  their ``recv()`` awaits an ``asyncio.Queue`` filled from a thread through the asyncio loop,
  and pacing uses ``asyncio.sleep`` (aiortc's ``VideoStreamTrack``/``AudioStreamTrack`` too), so
  under Trio the first ``recv()`` fails (there is no running asyncio loop). Given to our
  ``addTrack`` anyway, the failure stays contained: the track ends, the player's thread is
  stopped, the connection carries on. What does work: the player running on an asyncio loop of
  its own in a thread, read through a small bridge; and an aiortc ``MediaStreamTrack`` subclass
  that waits with Trio, passed to ``addTrack`` as it is.
- Our ``MediaPlayer`` feeding aiortc: aiortc decodes the file's pictures (their counters) and
  sound.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest
import trio
from aiortc.contrib.media import MediaPlayer as AiortcMediaPlayer
from aiortc.mediastreams import MediaStreamError as AiortcMediaStreamError
from aiortc.mediastreams import MediaStreamTrack as AiortcMediaStreamTrack
from aiortc.mediastreams import VideoStreamTrack as AiortcVideoStreamTrack
from media_frames_helpers import (
    increasing_run,
    prefer_codec,
    write_test_file,
)
from pc_helpers import connect as connect_pcs
from pc_helpers import make_pc, pc_pair
from pc_interop_helpers import InteropPeer, connect, open_trio_peer
from peers.aiortc_pc_harness import AiortcPeer, open_aiortc_peer

from trio_rtc.media.asyncio_bridge import AsyncioBridge
from trio_rtc.media.player import MediaPlayer
from trio_rtc.media.sources import TestPatternTrack, ToneTrack
from trio_rtc.pc.media import RTCTrackEvent

pytestmark = pytest.mark.interop

WIDTH, HEIGHT = 320, 240


# --- talking to the aiortc peer ---------------------------------------------------------------


async def relay(source: InteropPeer, sink: InteropPeer) -> None:
    async for candidate in source.candidates():
        await sink.add_candidate(candidate)


async def connect_answering(
    offerer: InteropPeer, answerer: InteropPeer, *, before_answer: Callable[[], object]
) -> None:
    """Offer/answer with trickled candidates, ``before_answer`` called between the answerer's
    setRemoteDescription and createAnswer (where an answering application adds its tracks)."""
    await answerer.set_remote(await offerer.create_offer())
    before_answer()
    answer = await answerer.create_answer()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(relay, offerer, answerer)
        await offerer.set_remote(answer)
        nursery.start_soon(relay, answerer, offerer)
        await offerer.wait_state("connected")
        await answerer.wait_state("connected")
        nursery.cancel_scope.cancel()


async def aiortc_got(
    theirs: AiortcPeer,
    predicate: Callable[[dict[str, dict[str, Any]]], bool],
    *,
    what: str,
    seconds: float = 20,
) -> dict[str, dict[str, Any]]:
    """Poll aiortc's decoded media (``media_counters``, by kind) until ``predicate`` holds."""
    received: dict[str, dict[str, Any]] = {}
    with trio.move_on_after(seconds):
        while True:
            received = {r["kind"]: r for r in await theirs.request("media_counters")}
            if predicate(received):
                return received
            await trio.sleep(0.2)
    summary = {
        kind: {**info, "counters": info["counters"][-20:]} for kind, info in received.items()
    }
    raise AssertionError(f"aiortc did not decode {what}: {summary}")


def counted_pictures(minimum: int) -> Callable[[dict[str, dict[str, Any]]], bool]:
    """aiortc read at least ``minimum`` counters, ``minimum`` of them in an increasing run."""

    def enough(received: dict[str, dict[str, Any]]) -> bool:
        video = received.get("video")
        return video is not None and increasing_run(video["counters"]) >= minimum

    return enough


def with_audio(
    video: Callable[[dict[str, dict[str, Any]]], bool], frames: int
) -> Callable[[dict[str, dict[str, Any]]], bool]:
    return lambda r: video(r) and r.get("audio", {}).get("frames", 0) >= frames


def stats_of(stats: dict[str, Any], kind: str, rtp: str) -> dict[str, Any]:
    [entry] = [s for s in stats.values() if s["type"] == rtp and s["kind"] == kind]
    return dict(entry)


def codec_of(stats: dict[str, Any], entry: dict[str, Any]) -> str:
    return str(stats[entry["codecId"]]["mimeType"]).lower()


# --- (a) our test sources to aiortc, aiortc's tracks to our recv(), both offerer roles --------


@pytest.mark.parametrize("codec", ["VP8", "H264"])
@pytest.mark.parametrize("offerer", ["ours", "theirs"])
async def test_decoded_media_both_ways(offerer: str, codec: str) -> None:
    pattern = TestPatternTrack(WIDTH, HEIGHT, 30)
    tone = ToneTrack()
    with trio.fail_after(60):
        async with (
            make_pc(0) as pc,
            open_trio_peer(pc, trickle=True) as ours,
            open_aiortc_peer(trickle=True) as theirs,
        ):
            events: list[RTCTrackEvent] = []
            pc.ontrack = events.append
            await theirs.request("receive_media_counters")

            def add_ours() -> None:
                pc.addTrack(pattern)  # type: ignore[arg-type]
                pc.addTrack(tone)  # type: ignore[arg-type]
                [video] = [t for t in pc.getTransceivers() if t.receiver.track.kind == "video"]
                prefer_codec(video, "video", codec)

            if offerer == "ours":
                add_ours()
                await theirs.set_remote(await ours.create_offer())
                # aiortc puts its generated tracks on the transceivers our offer made.
                await theirs.add_track("video")
                await theirs.add_track("audio")
                answer = await theirs.create_answer()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(relay, ours, theirs)
                    await ours.set_remote(answer)
                    nursery.start_soon(relay, theirs, ours)
                    await ours.wait_state("connected")
                    await theirs.wait_state("connected")
                    nursery.cancel_scope.cancel()
            else:
                await theirs.add_track("video")
                await theirs.add_track("audio")
                await connect_answering(theirs, ours, before_answer=add_ours)
            assert sorted((t.kind, t.currentDirection) for t in pc.getTransceivers()) == [
                ("audio", "sendrecv"),
                ("video", "sendrecv"),
            ]

            # aiortc's generated tracks (a 640x480 picture, 8 kHz silence) through our decoders.
            remote = {e.track.kind: e.track for e in events}
            assert sorted(remote) == ["audio", "video"]
            pictures = [await remote["video"].recv() for _ in range(30)]
            sounds = [await remote["audio"].recv() for _ in range(30)]
            assert all(isinstance(p, av.VideoFrame) for p in pictures)
            assert {(p.width, p.height) for p in pictures} == {(640, 480)}
            pts = [p.pts for p in pictures]
            assert pts == sorted(pts) and len(set(pts)) == len(pts)
            assert all(isinstance(s, av.AudioFrame) and s.sample_rate == 48000 for s in sounds)
            assert [s.pts - sounds[0].pts for s in sounds] == [960 * i for i in range(30)]

            # Our stamped pattern and tone through aiortc's decoders: the counters it reads back
            # increase (a late encoder skips some, none comes back out of order in a run).
            received = await aiortc_got(
                theirs, with_audio(counted_pictures(30), 25), what="30 counted pictures + audio"
            )
            assert received["video"]["error"] is None and received["audio"]["error"] is None
            counters = received["video"]["counters"]
            assert max(counters) < pattern.frames_produced
            assert received["video"]["unreadable"] <= 3, received["video"]

            stats = await pc.getStats()
            outbound = stats_of(stats, "video", "outbound-rtp")
            assert codec_of(stats, outbound) == f"video/{codec}".lower()
            assert outbound["framesEncoded"] >= 30 and outbound["frameWidth"] == WIDTH
            assert "encodeErrors" not in outbound
            assert stats_of(stats, "audio", "outbound-rtp")["totalEncodeTime"] > 0
            inbound = stats_of(stats, "video", "inbound-rtp")
            assert codec_of(stats, inbound) == f"video/{codec}".lower()
            assert inbound["framesDecoded"] >= 30 and inbound["frameWidth"] == 640
            assert "decodeErrors" not in inbound


# --- (b) aiortc's MediaPlayer (and aiortc-written tracks) feeding our addTrack ---------------


def thread_names() -> list[str]:
    return sorted(t.name for t in threading.enumerate())


async def test_aiortc_media_player_tracks_fail_under_trio_and_the_failure_is_contained(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """aiortc's player (and its generated ``VideoStreamTrack``) are asyncio code: given to our
    ``addTrack`` directly their ``recv()`` fails under Trio (the player's on its first call,
    the generated track's once it has to wait for its second frame). Our sender takes that as
    the end of the track: ``ended`` fires, aiortc's player is stopped (its thread is gone), and
    the connection and its other tracks go on."""
    path = write_test_file(tmp_path / "clip.webm", seconds=2)
    # aiortc's player binds to the thread's current asyncio loop when it starts; give it one of
    # our own (never running, as under any Trio program) so nothing stray is left behind.
    stray = asyncio.new_event_loop()
    asyncio.set_event_loop(stray)
    caplog.set_level(logging.WARNING, logger="trio_rtc.media")
    try:
        # The plain facts first, without a peer connection.
        player = AiortcMediaPlayer(str(path))
        assert player.video is not None and player.audio is not None
        with pytest.raises(AttributeError, match="create_future"):
            await player.video.recv()  # asyncio.Queue.get() without a running asyncio loop
        assert "media-player" in thread_names()  # its decoding thread started all the same
        player.video.stop()
        player.audio.stop()
        assert "media-player" not in thread_names()
        generated = AiortcVideoStreamTrack()
        await generated.recv()  # the first frame comes without waiting
        with pytest.raises(RuntimeError, match="no running event loop"):
            await generated.recv()  # the second waits with asyncio.sleep
        generated.stop()

        # Now through our addTrack, next to a track that works.
        player = AiortcMediaPlayer(str(path))
        generated = AiortcVideoStreamTrack()
        async with pc_pair() as (a, b), trio.open_nursery() as nursery:
            events: list[RTCTrackEvent] = []
            b.ontrack = events.append
            senders = [a.addTrack(track) for track in (player.video, generated, ToneTrack())]  # type: ignore[arg-type]
            local = [s.track for s in senders]
            assert all(t is not None and t.frame_source is not None for t in local)
            ended = [trio.Event() for _ in local]
            for track, event in zip(local, ended, strict=True):
                assert track is not None
                track.onended = lambda _e, event=event: event.set()
            with trio.fail_after(30):
                await connect_pcs(a, b, nursery)
                await ended[0].wait()
                await ended[1].wait()
                await b.wait_until(lambda: len(events) == 3)
                sound = next(e.track for e in events if e.track.kind == "audio")
                frames = [await sound.recv() for _ in range(25)]  # the tone still flows
            assert not ended[2].is_set() and len(frames) == 25
            assert player.video.readyState == "ended"  # our track's end stopped it
            assert "media-player" not in thread_names()
            encoded = [s.encode_stats for s in senders[:2]]
            assert encoded[0] is not None and encoded[0].frames == 0
            assert encoded[1] is not None and encoded[1].frames <= 1
            nursery.cancel_scope.cancel()
        player.audio.stop()
        failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
        assert any("AttributeError" in m for m in failures), failures
        assert any("no running event loop" in m for m in failures), failures
    finally:
        stray.close()
        asyncio.set_event_loop_policy(None)


async def test_aiortc_media_player_on_its_own_asyncio_loop_feeds_our_pc(tmp_path: Path) -> None:
    """What does work with aiortc's player: made on the asyncio loop of an AsyncioBridge, its
    tracks read from Trio through ``bridge.track`` (each ``recv`` awaited in a worker thread).
    aiortc decodes the file's pictures (their stamped counters, in order) and its sound; when
    the file ends, aiortc's ``MediaStreamError`` ends our tracks."""
    path = write_test_file(tmp_path / "clip.webm", seconds=3)
    async with AsyncioBridge() as bridge:
        player = await bridge.run_sync(AiortcMediaPlayer, str(path))
        video, audio = bridge.track(player.video), bridge.track(player.audio)
        with trio.fail_after(60):
            async with (
                make_pc(0) as pc,
                open_trio_peer(pc, trickle=True) as ours,
                open_aiortc_peer(trickle=True) as theirs,
            ):
                await theirs.request("receive_media_counters")
                senders = [pc.addTrack(video), pc.addTrack(audio)]
                ended = [trio.Event(), trio.Event()]
                for sender, event in zip(senders, ended, strict=True):
                    assert sender.track is not None
                    sender.track.onended = lambda _e, event=event: event.set()
                await connect(ours, theirs, trickle=True)
                received = await aiortc_got(
                    theirs, with_audio(counted_pictures(45), 50), what="the file's frames"
                )
                counters = received["video"]["counters"]
                assert set(counters) <= set(range(90)), counters
                await ended[0].wait()
                await ended[1].wait()
                assert video.frames >= 60 and audio.frames >= 100  # of 90 and 150
                received = {r["kind"]: r for r in await theirs.request("media_counters")}
                assert increasing_run(received["video"]["counters"]) >= 45
                assert received["video"]["error"] is None
    assert "asyncio bridge" not in thread_names() and "media-player" not in thread_names()


class AiortcWrittenPattern(AiortcMediaStreamTrack):
    """A track written the aiortc way, on aiortc's ``MediaStreamTrack`` base (``kind``,
    ``recv``, ``readyState``, aiortc's ``MediaStreamError`` at the end, pts counted in the 90 kHz
    clock as ``VideoStreamTrack.next_timestamp`` does) but waiting with Trio, not asyncio."""

    kind = "video"

    def __init__(self, count: int) -> None:
        super().__init__()
        self._pattern = TestPatternTrack(WIDTH, HEIGHT, 30, realtime=False)
        self.count = count
        self.index = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live" or self.index == self.count:
            raise AiortcMediaStreamError
        now = trio.current_time()
        if self._start is None:
            self._start = now
        await trio.sleep_until(self._start + self.index / 30)
        frame = self._pattern.make_frame(self.index)
        frame.pts, frame.time_base = self.index * 3000, fractions.Fraction(1, 90000)
        self.index += 1
        return frame


async def test_an_aiortc_track_subclass_waiting_with_trio_feeds_aiortc() -> None:
    track = AiortcWrittenPattern(count=75)
    with trio.fail_after(60):
        async with (
            make_pc(0) as pc,
            open_trio_peer(pc, trickle=True) as ours,
            open_aiortc_peer(trickle=True) as theirs,
        ):
            await theirs.request("receive_media_counters")
            sender = pc.addTrack(track)  # type: ignore[arg-type]
            local = sender.track
            assert local is not None and local.id == track.id and local.frame_source is track
            ended = trio.Event()
            local.onended = lambda _e: ended.set()
            await connect(ours, theirs, trickle=True)
            await ended.wait()  # aiortc's MediaStreamError after 75 frames ends our track
            received = await aiortc_got(theirs, counted_pictures(40), what="40 counted pictures")
            assert set(received["video"]["counters"]) <= set(range(75))
            assert track.readyState == "ended"  # stopped once nothing reads it


# --- (c) our MediaPlayer feeding aiortc ---------------------------------------------------------


@pytest.mark.parametrize("suffix", [".webm", ".mp4"])
async def test_our_media_player_feeds_aiortc(tmp_path: Path, suffix: str) -> None:
    path = write_test_file(tmp_path / f"clip{suffix}", seconds=3)
    with trio.fail_after(60):
        async with (
            make_pc(0) as pc,
            open_trio_peer(pc, trickle=True) as ours,
            open_aiortc_peer(trickle=True) as theirs,
            MediaPlayer(str(path)) as player,
        ):
            assert player.video is not None and player.audio is not None
            await theirs.request("receive_media_counters")
            senders = [pc.addTrack(player.video), pc.addTrack(player.audio)]  # type: ignore[arg-type]
            ended = [trio.Event(), trio.Event()]
            for sender, event in zip(senders, ended, strict=True):
                assert sender.track is not None
                sender.track.onended = lambda _e, event=event: event.set()
            await connect(ours, theirs, trickle=True)
            received = await aiortc_got(
                theirs, with_audio(counted_pictures(45), 50), what="the file's frames"
            )
            assert set(received["video"]["counters"]) <= set(range(90))
            # The file ends: so do our tracks (and the player).
            await ended[0].wait()
            await ended[1].wait()
            received = {r["kind"]: r for r in await theirs.request("media_counters")}
            assert increasing_run(received["video"]["counters"]) >= 45
            assert received["audio"]["frames"] >= 100
            assert not any(r["error"] for r in received.values())
            stats = await pc.getStats()
            # (90 pictures; a busy machine's encoder skips some, newest first.)
            assert stats_of(stats, "video", "outbound-rtp")["framesEncoded"] >= 45
