"""Media through RTCPeerConnection against a real aiortc peer (a subprocess): aiortc sends its
generated audio (Opus) and video (VP8), our pc answers with recvonly transceivers, fires
``track`` and delivers the encoded frames; the frames decode with PyAV (the test's own).

The other way, our VP8 (PyAV-encoded here) and Opus reach aiortc's decoders; a renegotiation
adds then removes aiortc's track; ``replaceTrack`` swaps our picture size without an offer;
and a transceiver stopped on either side rejects its m-section (aiortc 1.16 rejects nothing
by itself: its harness does what JSEP says, see ``peers/aiortc_pc_peer.py``)."""

from __future__ import annotations

import fractions
import functools
from collections.abc import Callable
from typing import Any

import av
import pytest
import trio
from pc_helpers import make_pc
from pc_interop_helpers import InteropPeer, connect, open_trio_peer
from peers.aiortc_pc_harness import AiortcPeer, open_aiortc_peer

from trio_rtc import RTCPeerConnection
from trio_rtc.media import MediaStreamTrack, OutgoingFrame
from trio_rtc.pc.media import RTCTrackEvent


@pytest.mark.interop
@pytest.mark.parametrize("kind", ["audio", "video"])
async def test_aiortc_sends_media_to_our_pc(kind: str) -> None:
    with trio.fail_after(40):
        async with (
            make_pc(0) as pc,
            open_trio_peer(pc, trickle=True) as ours,
            open_aiortc_peer(trickle=True) as theirs,
        ):
            tracks: list[RTCTrackEvent] = []
            states: list[str] = []
            pc.ontrack = tracks.append
            pc.onsignalingstatechange = lambda _e: states.append(pc.signalingState)
            await theirs.add_track(kind)
            await connect(theirs, ours, trickle=True)
            assert pc.connectionState == "connected"
            # One track event, after the signaling state reached stable (webrtc-pc §4.4.1.5).
            [event] = tracks
            assert event.track.kind == kind and event.receiver.track is event.track
            assert event.transceiver.receiver is event.receiver
            assert event.transceiver.currentDirection == "recvonly"
            assert [t.kind for t in pc.getTransceivers()] == [kind]
            [theirs_transceiver] = await theirs.transceivers()
            assert theirs_transceiver["currentDirection"] == "sendonly"
            frames: list[Any] = []
            async for frame in event.track.encoded_frames():
                frames.append(frame)
                if len(frames) == 25:
                    break
            codec = "opus" if kind == "audio" else "vp8"
            decoder = av.CodecContext.create(codec, "r")
            decoded = 0
            for frame in frames:
                for picture in decoder.decode(av.Packet(frame.data)):
                    decoded += 1
                    if kind == "video":
                        assert (picture.width, picture.height) == (640, 480)
            assert decoded >= 20
            stats = pc.ice_transport.stats if pc.ice_transport is not None else None
            assert stats is not None and stats.datagrams_dropped_rtp == 0


# --- our media to aiortc, renegotiation, replaceTrack, stopping (issue 11) -------------------


def vp8_encoder(width: int, height: int) -> av.VideoCodecContext:
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    return encoder


async def send_vp8(
    track: MediaStreamTrack,
    *,
    width: int,
    height: int,
    count: int | None = None,
    shade: int = 0,
    interval: float = 1 / 60,
) -> None:
    """Encode ``count`` pictures (forever with None) of ``width``×``height`` with PyAV and feed
    them to ``track``'s source, a keyframe whenever the peer asks for one."""
    source = track.source
    assert source is not None
    encoder = vp8_encoder(width, height)
    index = 0
    while count is None or index < count:
        picture = av.VideoFrame(width, height, "yuv420p")
        for plane in picture.planes:
            plane.update(bytes([(shade + index * 3) % 256]) * (plane.line_size * plane.height))
        picture.pts = index
        if source.keyframe_requested.is_set():
            picture.pict_type = av.video.frame.PictureType.I
        for packet in encoder.encode(picture):
            await source.send(
                OutgoingFrame(bytes(packet), keyframe=bool(packet.is_keyframe), duration=1 / 30)
            )
        index += 1
        await trio.sleep(interval)


async def send_opus(track: MediaStreamTrack, *, count: int | None = None) -> None:
    """20 ms Opus frames (a quiet tone) encoded by PyAV, paced at 10 ms."""
    source = track.source
    assert source is not None
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    index = 0
    while count is None or index < count:
        samples = av.AudioFrame(format="s16", layout="stereo", samples=960)
        samples.sample_rate = 48000
        samples.planes[0].update(bytes(range(256)) * 15)
        samples.pts = index * 960
        for packet in encoder.encode(samples):
            await source.send(OutgoingFrame(bytes(packet), duration=0.02))
        index += 1
        await trio.sleep(0.01)


async def wait_received(
    theirs: AiortcPeer, predicate: Callable[[list[dict[str, Any]]], bool], *, what: str
) -> list[dict[str, Any]]:
    """Poll aiortc's decoded-frame counts until ``predicate`` holds (10 s at most)."""
    received: list[dict[str, Any]] = []
    with trio.move_on_after(10):
        while True:
            received = await theirs.media_received()
            if predicate(received):
                return received
            await trio.sleep(0.1)
    raise AssertionError(f"aiortc did not get {what}: {received}")


def by_kind(received: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [info] = [r for r in received if r["kind"] == kind]
    return info


async def renegotiate(offerer: InteropPeer, answerer: InteropPeer) -> None:
    """An offer/answer round on a connected pair (the candidates are known already)."""
    offer = await offerer.create_offer()
    await answerer.set_remote(offer)
    await offerer.set_remote(await answerer.create_answer())


async def sending_reaches_aiortc(
    pc: RTCPeerConnection,
    theirs: Any,
    nursery: trio.Nursery,
    video: MediaStreamTrack,
    audio: MediaStreamTrack,
    width: int,
    height: int,
) -> list[dict[str, Any]]:
    """Our two sendonly transceivers (video, audio) against aiortc's recvonly ones: send VP8
    and Opus until aiortc's decoders got 50 pictures of our size and 25 audio frames."""
    assert [(t.kind, t.currentDirection) for t in pc.getTransceivers()] == [
        ("video", "sendonly"),
        ("audio", "sendonly"),
    ]
    assert {t["currentDirection"] for t in await theirs.transceivers()} == {"recvonly"}
    nursery.start_soon(functools.partial(send_vp8, video, width=width, height=height))
    nursery.start_soon(send_opus, audio)
    received = await wait_received(
        theirs,
        lambda r: (
            len(r) == 2
            and by_kind(r, "video")["sizes"].get(f"{width}x{height}", 0) >= 50
            and by_kind(r, "audio")["frames"] >= 25
        ),
        what="50 pictures and 25 audio frames",
    )
    assert set(by_kind(received, "video")["sizes"]) == {f"{width}x{height}"}
    return received


@pytest.mark.interop
async def test_our_media_reaches_aiortc() -> None:
    width, height = 320, 240
    with trio.fail_after(30):
        async with (
            make_pc(0) as pc,
            open_trio_peer(pc, trickle=True) as ours,
            open_aiortc_peer(trickle=True) as theirs,
            trio.open_nursery() as nursery,
        ):
            video = MediaStreamTrack("video", "camera")
            audio = MediaStreamTrack("audio", "microphone")
            await theirs.receive_media()
            pc.addTrack(video)
            pc.addTrack(audio)
            await connect(ours, theirs, trickle=True)
            # aiortc's transceivers only receive (the ones a remote offer makes are recvonly).
            received = await sending_reaches_aiortc(
                pc, theirs, nursery, video, audio, width, height
            )
            assert by_kind(received, "audio")["samples"] >= 25 * 960
            assert not any(r["error"] or r["ended"] for r in received)
            nursery.cancel_scope.cancel()


@pytest.mark.interop
async def test_renegotiation_adds_then_removes_a_track() -> None:
    with trio.fail_after(30):
        async with (
            make_pc(0) as pc,
            open_trio_peer(pc, trickle=True) as ours,
            open_aiortc_peer(trickle=True) as theirs,
        ):
            tracks: list[RTCTrackEvent] = []
            pc.ontrack = tracks.append
            await theirs.create_channel("chat")
            await connect(theirs, ours, trickle=True)
            await ours.wait_channel("chat")
            assert pc.getTransceivers() == [] and tracks == []
            # aiortc adds a video track and offers again: we get `track`, then frames.
            await theirs.add_track("video")
            await renegotiate(theirs, ours)
            assert pc.signalingState == "stable"
            [event] = tracks
            [transceiver] = pc.getTransceivers()
            assert event.transceiver is transceiver and transceiver.currentDirection == "recvonly"
            track = event.track
            mutes: list[str] = []
            track.onmute = lambda e: mutes.append(e.type)
            track.onended = lambda e: mutes.append(e.type)
            frames = 0
            async for _frame in track.encoded_frames():
                frames += 1
                if frames == 10:
                    break
            assert not track.muted and track.readyState == "live"
            # aiortc removes it (the direction change of removeTrack) and offers again.
            mid = transceiver.mid
            assert mid is not None
            assert (await theirs.remove_track(mid))["direction"] == "recvonly"
            await renegotiate(theirs, ours)
            # webrtc-pc §4.4.1.5 "process the removal of a remote track": the track is not
            # ended, and the transceiver stays, now inactive.
            assert pc.getTransceivers() == [transceiver]
            assert transceiver.currentDirection == "inactive"
            assert track.readyState == "live" and "ended" not in mutes
            with trio.fail_after(5):  # the mute task may run just after the negotiation
                await track.wait_until(lambda: track.muted)
            assert track.muted and mutes == ["mute"]
            assert tracks == [event]
            [theirs_transceiver] = await theirs.transceivers()
            assert theirs_transceiver["currentDirection"] == "inactive"
            # The channel carries on.
            await theirs.send("chat", "still here")
            assert await ours.receive("chat") == "still here"


@pytest.mark.interop
async def test_replace_track_without_renegotiation() -> None:
    with trio.fail_after(30):
        async with (
            make_pc(0) as pc,
            open_trio_peer(pc, trickle=True) as ours,
            open_aiortc_peer(trickle=True) as theirs,
            trio.open_nursery() as nursery,
        ):
            first = MediaStreamTrack("video", "first camera")
            second = MediaStreamTrack("video", "second camera")
            sender = pc.addTrack(first)
            await theirs.receive_media()
            await connect(ours, theirs, trickle=True)
            needed: list[str] = []
            states: list[str] = []
            pc.onnegotiationneeded = lambda e: needed.append(e.type)
            pc.onsignalingstatechange = lambda e: states.append(pc.signalingState)
            with trio.CancelScope() as first_feed:
                nursery.start_soon(
                    functools.partial(send_vp8, first, width=320, height=240), name="first"
                )
                await wait_received(
                    theirs,
                    lambda r: len(r) == 1 and r[0]["sizes"].get("320x240", 0) >= 20,
                    what="20 pictures of the first track",
                )
            await sender.replaceTrack(second)
            assert sender.track is second
            first_feed.cancel()
            nursery.start_soon(functools.partial(send_vp8, second, width=160, height=120, shade=90))
            [received] = await wait_received(
                theirs,
                lambda r: r[0]["sizes"].get("160x120", 0) >= 20,
                what="20 pictures of the replacing track",
            )
            # The same remote track, now with the new picture size; no offer/answer happened.
            assert received["last"] == "160x120" and not received["ended"]
            assert pc.signalingState == "stable" and states == [] and needed == []
            [theirs_transceiver] = await theirs.transceivers()
            assert theirs_transceiver["currentDirection"] == "recvonly"
            nursery.cancel_scope.cancel()


def port_of(sdp: str, mid: str) -> int:
    """The m= line port of the m-section ``mid`` in ``sdp``."""
    port = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            port = int(line.split(" ")[1])
        elif line == f"a=mid:{mid}":
            assert port is not None
            return port
    raise AssertionError(f"no m-section with mid {mid}")


async def read_frames(track: MediaStreamTrack, count: int) -> None:
    frames = 0
    async for _frame in track.encoded_frames():
        frames += 1
        if frames == count:
            return
    raise AssertionError(f"{track} ended after {frames} frames")


@pytest.mark.interop
async def test_transceiver_stopped_from_each_side() -> None:
    with trio.fail_after(30):
        async with (
            make_pc(0) as pc,
            open_trio_peer(pc, trickle=True) as ours,
            open_aiortc_peer(trickle=True) as theirs,
            trio.open_nursery() as nursery,
        ):
            # mid 0: aiortc's audio to us; mid 1: our video to aiortc; mid 2: a data channel.
            audio = pc.addTransceiver("audio", {"direction": "recvonly"})
            camera = MediaStreamTrack("video", "camera")
            pc.addTrack(camera)
            await ours.create_channel("chat")
            tracks: list[RTCTrackEvent] = []
            pc.ontrack = tracks.append
            await theirs.add_track("audio")
            await theirs.receive_media()
            await connect(ours, theirs, trickle=True)
            video = pc.getTransceivers()[1]
            assert [(t.mid, t.currentDirection) for t in (audio, video)] == [
                ("0", "recvonly"),
                ("1", "sendonly"),
            ]
            [event] = tracks
            assert event.transceiver is audio
            await read_frames(audio.receiver.track, 10)
            nursery.start_soon(functools.partial(send_vp8, camera, width=160, height=120))
            await wait_received(
                theirs, lambda r: len(r) == 1 and r[0]["frames"] >= 10, what="10 pictures"
            )

            # We stop the video transceiver: our offer rejects its m-section, aiortc stops its.
            needed: list[str] = []
            pc.onnegotiationneeded = lambda e: needed.append(e.type)
            video.stop()
            assert video.direction == "stopped" and video.currentDirection == "sendonly"
            await pc.wait_until(lambda: bool(needed))
            offer = await ours.create_offer()
            assert port_of(offer["sdp"], "1") == 0 and port_of(offer["sdp"], "0") != 0
            assert await theirs.set_remote_rejecting(offer) == ["1"]
            await ours.set_remote(await theirs.create_answer_rejecting())
            assert video.currentDirection == "stopped"
            assert video.receiver.track.readyState == "ended"
            assert audio.currentDirection == "recvonly"
            by_mid = {t["mid"]: t for t in await theirs.media_transceivers()}
            assert by_mid["1"]["stopped"] and by_mid["1"]["receiverTrack"] == "ended"
            assert not by_mid["0"]["stopped"] and by_mid["0"]["currentDirection"] == "sendonly"
            [received] = await theirs.media_received()
            assert received["mid"] == "1" and received["ended"]
            # aiortc's audio still reaches us.
            await read_frames(audio.receiver.track, 10)

            # aiortc stops its audio transceiver (the BUNDLE tag's): its offer rejects mid 0
            # and we stop ours: currentDirection "stopped", the receiver's track ended.
            ended: list[str] = []
            audio.receiver.track.onended = lambda e: ended.append(e.type)
            await theirs.stop_transceiver("0")
            offer = await theirs.create_offer_rejecting()
            assert port_of(offer["sdp"], "0") == 0
            await ours.set_remote(offer)
            answer = await ours.create_answer()
            assert port_of(answer["sdp"], "0") == port_of(answer["sdp"], "1") == 0
            assert sorted(await theirs.set_remote_rejecting(answer)) == ["0", "1"]
            assert pc.signalingState == "stable"
            assert audio.currentDirection == "stopped"
            assert audio.receiver.track.readyState == "ended" and ended == ["ended"]
            assert tracks == [event]
            # The data channel carries on over the remaining m-section, the new BUNDLE tag.
            await theirs.send("chat", "from aiortc")
            assert await ours.receive("chat") == "from aiortc"
            await ours.send("chat", "from trio")
            assert await theirs.receive("chat") == "from trio"
            nursery.cancel_scope.cancel()


async def relay(source: InteropPeer, sink: InteropPeer) -> None:
    async for candidate in source.candidates():
        await sink.add_candidate(candidate)


async def connect_with(
    offerer: InteropPeer, answerer: InteropPeer, *, before_answer: Callable[[], object]
) -> None:
    """``connect`` (trickling) with ``before_answer`` called between the answerer's
    setRemoteDescription and createAnswer, where an application adds its tracks."""
    offer = await offerer.create_offer()
    await answerer.set_remote(offer)
    before_answer()
    answer = await answerer.create_answer()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(relay, offerer, answerer)
        await offerer.set_remote(answer)
        nursery.start_soon(relay, answerer, offerer)
        await offerer.wait_state("connected")
        await answerer.wait_state("connected")


@pytest.mark.interop
async def test_our_media_reaches_aiortc_which_offers() -> None:
    width, height = 320, 240
    with trio.fail_after(30):
        async with (
            make_pc(0) as pc,
            open_trio_peer(pc, trickle=True) as ours,
            open_aiortc_peer(trickle=True) as theirs,
            trio.open_nursery() as nursery,
        ):
            video = MediaStreamTrack("video", "camera")
            audio = MediaStreamTrack("audio", "microphone")
            await theirs.receive_media()
            # aiortc offers to receive; we answer with our tracks on its transceivers.
            await theirs.add_transceiver("video", "recvonly")
            await theirs.add_transceiver("audio", "recvonly")

            def add_tracks() -> None:
                pc.addTrack(video)
                pc.addTrack(audio)

            await connect_with(theirs, ours, before_answer=add_tracks)
            received = await sending_reaches_aiortc(
                pc, theirs, nursery, video, audio, width, height
            )
            assert not any(r["error"] or r["ended"] for r in received)
            nursery.cancel_scope.cancel()


@pytest.mark.interop
@pytest.mark.parametrize("kind", ["audio", "video"])
async def test_aiortc_answers_our_offer_with_its_media(kind: str) -> None:
    with trio.fail_after(30):
        async with (
            make_pc(0) as pc,
            open_trio_peer(pc, trickle=True) as ours,
            open_aiortc_peer(trickle=True) as theirs,
        ):
            tracks: list[RTCTrackEvent] = []
            pc.ontrack = tracks.append
            pc.addTransceiver(kind, {"direction": "recvonly"})
            offer = await ours.create_offer()
            await theirs.set_remote(offer)
            await theirs.add_track(kind)  # aiortc puts its track on the offered transceiver
            answer = await theirs.create_answer()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(relay, ours, theirs)
                await ours.set_remote(answer)
                nursery.start_soon(relay, theirs, ours)
                await ours.wait_state("connected")
                await theirs.wait_state("connected")
                nursery.cancel_scope.cancel()
            [event] = tracks
            assert event.transceiver.currentDirection == "recvonly"
            frames: list[Any] = []
            async for frame in event.track.encoded_frames():
                frames.append(frame)
                if len(frames) == 25:
                    break
            decoder = av.CodecContext.create("opus" if kind == "audio" else "vp8", "r")
            decoded = sum(len(decoder.decode(av.Packet(f.data))) for f in frames)
            assert decoded >= 20
