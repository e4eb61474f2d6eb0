"""The W3C surface of the media objects, without a network."""

from __future__ import annotations

import uuid

import pytest
import trio
import trio.lowlevel

from trio_rtc.exceptions import InvalidModificationError, InvalidStateError
from trio_rtc.jsep.codecs import RTCRtpCodecCapability, get_capabilities
from trio_rtc.media import (
    EncodedSource,
    MediaStream,
    MediaStreamTrack,
    OutgoingFrame,
    RTCRtpEncodingParameters,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpSendParameters,
    RTCRtpTransceiver,
)


def test_track_ids_kind_label_and_clone() -> None:
    track = MediaStreamTrack("video", "camera")
    assert uuid.UUID(track.id) and track.kind == "video" and track.label == "camera"
    assert track.readyState == "live" and track.enabled and not track.muted
    track.enabled = False
    twin = track.clone()
    assert twin.id != track.id and twin.kind == "video" and not twin.enabled
    assert twin.source is track.source
    with pytest.raises(TypeError):
        MediaStreamTrack("text")


def test_stop_ends_without_event_and_source_ends_with_last_track() -> None:
    source = EncodedSource("audio")
    track, twin = source.create_track(), source.create_track()
    fired: list[str] = []
    track.onended = lambda e: fired.append(e.type)
    track.stop()
    assert track.readyState == "ended" and fired == [] and not source.closed
    twin.stop()
    assert source.closed
    with pytest.raises(trio.BrokenResourceError):
        source.send_nowait(OutgoingFrame(b"x"))
    assert track.clone().readyState == "ended"


def test_source_close_fires_ended() -> None:
    source = EncodedSource("video")
    track = source.create_track()
    fired: list[str] = []
    track.addEventListener("ended", lambda e: fired.append(e.type))
    source.close()
    assert fired == ["ended"] and track.readyState == "ended"
    with pytest.raises(trio.ClosedResourceError):
        source.send_nowait(OutgoingFrame(b"x"))


async def test_source_backpressure_and_frame_checks() -> None:
    source = EncodedSource("video", max_queue=2)
    source.send_nowait(OutgoingFrame(b"a"))
    await source.send(OutgoingFrame(b"b"))
    with pytest.raises(trio.WouldBlock):
        source.send_nowait(OutgoingFrame(b"c"))
    with trio.move_on_after(0.05) as scope:
        await source.send(OutgoingFrame(b"c"))
    assert scope.cancelled_caught
    assert (await source.receive_frame()).data == b"a"
    with pytest.raises(ValueError):
        await source.send(OutgoingFrame(b""))
    with pytest.raises(TypeError):
        await source.send(b"raw bytes")
    source.keyframe_requested.set()
    source.send_nowait(OutgoingFrame(b"k", keyframe=True))
    assert not source.keyframe_requested.is_set() and source.keyframe_requested.count == 1


async def test_remote_track_mute_deliver_and_end() -> None:
    receiver = RTCRtpReceiver("audio")
    track = receiver.track
    assert track.remote and track.muted and track.source is None
    events: list[str] = []
    track.onunmute = lambda e: events.append(e.type)
    track.onended = lambda e: events.append(e.type)
    from trio_rtc.rtp.codecs import EncodedFrame

    for i in range(3):
        track._deliver(EncodedFrame(b"%d" % i, i * 960, True, i, i))
    assert [(await track.recv_encoded()).data for _ in range(2)] == [b"0", b"1"]
    receiver._stop()
    assert [f.data async for f in track.encoded_frames()] == [b"2"]
    with pytest.raises(trio.EndOfChannel):
        await track.recv_encoded()
    assert events == ["unmute", "ended"]


def test_stream_tracks_and_events() -> None:
    audio, video = MediaStreamTrack("audio"), MediaStreamTrack("video")
    stream = MediaStream([audio])
    assert uuid.UUID(stream.id) and stream.active
    events: list[tuple[str, str]] = []
    stream.onaddtrack = lambda e: events.append((e.type, e.track.id))
    stream.onremovetrack = lambda e: events.append((e.type, e.track.id))
    stream.addTrack(video)  # by the application: no event (mediacapture-main §3.1)
    assert events == []
    assert stream.getAudioTracks() == [audio] and stream.getVideoTracks() == [video]
    assert stream.getTrackById(video.id) is video and stream.getTrackById("x") is None
    copy = MediaStream(stream)
    assert copy.id != stream.id and copy.getTracks() == [audio, video]
    stream.removeTrack(video)
    assert stream.getTracks() == [audio] and events == []
    remote = MediaStreamTrack("video", remote=True)
    stream.add_remote_track(remote)
    stream.remove_remote_track(remote)
    assert events == [("addtrack", remote.id), ("removetrack", remote.id)]
    audio.stop()
    assert not stream.active
    assert all(t.id not in (audio.id,) for t in stream.clone().getTracks())


async def test_replace_track_kind_and_stopped() -> None:
    transceiver = RTCRtpTransceiver("video")
    sender = transceiver.sender
    assert sender.track is None and sender.transport is None and sender.dtmf is None
    video = MediaStreamTrack("video")
    await sender.replaceTrack(video)
    assert sender.track is video
    with pytest.raises(TypeError):
        await sender.replaceTrack(MediaStreamTrack("audio"))
    await sender.replaceTrack(None)
    assert sender.track is None
    transceiver.stop()
    with pytest.raises(InvalidStateError):
        await sender.replaceTrack(video)


async def test_set_parameters_transaction_rules() -> None:
    sender = RTCRtpSender(MediaStreamTrack("video"))
    with pytest.raises(InvalidStateError):  # no getParameters() yet
        await sender.setParameters(RTCRtpSendParameters())
    params = sender.getParameters()
    assert params.transactionId and params.encodings[0].active
    assert params.encodings[0].scaleResolutionDownBy == 1.0
    params.encodings[0].maxBitrate = 300_000
    params.encodings[0].maxFramerate = 15
    await sender.setParameters(params)
    assert sender.encodings[0].maxBitrate == 300_000
    with pytest.raises(InvalidStateError):  # [[LastReturnedParameters]] was cleared
        await sender.setParameters(params)

    stale = sender.getParameters()
    fresh = sender.getParameters()
    with pytest.raises(InvalidModificationError):
        await sender.setParameters(stale)
    fresh.encodings[0].rid = "hi"
    with pytest.raises(InvalidModificationError):
        await sender.setParameters(fresh)
    params = sender.getParameters()
    params.encodings.append(RTCRtpEncodingParameters())
    with pytest.raises(InvalidModificationError):
        await sender.setParameters(params)
    params = sender.getParameters()
    params.encodings[0].scaleResolutionDownBy = 0.5
    with pytest.raises(ValueError, match="RangeError"):
        await sender.setParameters(params)
    params = sender.getParameters()
    params.encodings[0].maxFramerate = -1
    with pytest.raises(ValueError, match="RangeError"):
        await sender.setParameters(params)

    # The spec queues a task that forgets the parameters: a yield in between makes them stale.
    params = sender.getParameters()
    await trio.lowlevel.checkpoint()
    await trio.lowlevel.checkpoint()
    with pytest.raises(InvalidStateError):
        await sender.setParameters(params)

    transceiver = RTCRtpTransceiver("audio")
    params = transceiver.sender.getParameters()
    transceiver.stop()
    with pytest.raises(InvalidStateError):
        await transceiver.sender.setParameters(params)


def test_direction_and_stop() -> None:
    needed: list[int] = []
    transceiver = RTCRtpTransceiver("audio", on_negotiation_needed=lambda: needed.append(1))
    assert transceiver.mid is None and transceiver.currentDirection is None
    assert transceiver.direction == "sendrecv"
    transceiver.direction = "sendrecv"
    assert needed == []
    transceiver.direction = "recvonly"
    assert transceiver.direction == "recvonly" and needed == [1]
    for bad in ("stopped", "bogus"):
        with pytest.raises(TypeError):
            transceiver.direction = bad
    with pytest.raises(TypeError):
        RTCRtpTransceiver("audio", direction="stopped")
    track = transceiver.receiver.track
    transceiver.stop()
    assert transceiver.direction == "stopped" and needed == [1, 1]
    assert track.readyState == "ended"
    with pytest.raises(InvalidStateError):
        transceiver.direction = "sendonly"
    transceiver.stop()
    assert needed == [1, 1]
    transceiver.set_stopped()
    assert transceiver.currentDirection == "stopped"


def test_set_codec_preferences() -> None:
    transceiver = RTCRtpTransceiver("video")
    vp8, *_ = get_capabilities("video").codecs
    transceiver.setCodecPreferences([vp8, vp8])
    assert transceiver.codec_preferences == [vp8]
    transceiver.setCodecPreferences([])
    assert transceiver.codec_preferences == []
    with pytest.raises(InvalidModificationError):
        transceiver.setCodecPreferences([RTCRtpCodecCapability("video/H265", 90000)])
    rtx = next(c for c in get_capabilities("video").codecs if c.name.lower() == "rtx")
    with pytest.raises(InvalidModificationError):
        transceiver.setCodecPreferences([rtx])
    opus = get_capabilities("audio").codecs[0]
    with pytest.raises(InvalidModificationError):
        transceiver.setCodecPreferences([opus])


def test_get_capabilities_and_receiver_parameters() -> None:
    video = RTCRtpSender.getCapabilities("video")
    assert video is not None and video.codecs[0].mimeType == "video/VP8"
    audio = RTCRtpReceiver.getCapabilities("audio")
    assert audio is not None and any(c.mimeType == "audio/opus" for c in audio.codecs)
    assert RTCRtpSender.getCapabilities("text") is None
    receiver = RTCRtpReceiver("video")
    assert receiver.getParameters().codecs == []
    assert receiver.getContributingSources() == []
    assert receiver.jitterBufferTarget is None
    receiver.jitterBufferTarget = 4000
    assert receiver.jitterBufferTarget == 4000.0
    with pytest.raises(ValueError, match="RangeError"):
        receiver.jitterBufferTarget = 4001
    with pytest.raises(ValueError, match="RangeError"):
        receiver.jitterBufferTarget = -1
    receiver.jitterBufferTarget = None
