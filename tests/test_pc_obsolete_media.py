"""The obsolete media members of RTCPeerConnection (MDN's "Obsolete methods/events"):
addStream, removeStream, getStreamById, createDTMFSender, and the addstream/removestream
events, between two peer connections over UDP on 127.0.0.1."""

from __future__ import annotations

import pytest
import trio
from pc_helpers import connect, make_pc, negotiate, pc_pair

from trio_rtc.events import Event
from trio_rtc.exceptions import InvalidAccessError, InvalidStateError
from trio_rtc.media import MediaStream, MediaStreamTrack
from trio_rtc.media.dtmf import RTCDTMFSender
from trio_rtc.pc.connection import MediaStreamEvent


def camera_and_microphone(stream_id: str = "legacy") -> MediaStream:
    return MediaStream(
        [MediaStreamTrack("audio", "microphone"), MediaStreamTrack("video", "camera")],
        id=stream_id,
    )


async def test_add_stream_adds_each_track() -> None:
    async with make_pc() as pc:
        stream = camera_and_microphone()
        pc.addStream(stream)
        senders = pc.getSenders()
        assert [s.track for s in senders] == stream.getTracks()
        assert all(s.stream_ids == ["legacy"] for s in senders)
        pc.addStream(stream)  # twice: nothing more
        assert len(pc.getTransceivers()) == 2
        # A track that already has a sender is left alone.
        other = MediaStream([stream.getTracks()[0], MediaStreamTrack("audio", "second")])
        pc.addStream(other)
        assert len(pc.getTransceivers()) == 3
        assert pc.getStreamById("legacy") is stream
        assert pc.getStreamById("nope") is None
        with pytest.raises(TypeError):
            pc.addStream(stream.getTracks())  # type: ignore[arg-type]
    with pytest.raises(InvalidStateError):
        pc.addStream(camera_and_microphone("late"))
    with pytest.raises(InvalidStateError):
        pc.removeStream(stream)


async def test_remove_stream_removes_its_senders_tracks() -> None:
    async with make_pc() as pc:
        stream = camera_and_microphone()
        pc.addStream(stream)
        pc.removeStream(stream)
        assert [s.track for s in pc.getSenders()] == [None, None]
        assert [t.direction for t in pc.getTransceivers()] == ["recvonly", "recvonly"]
        assert pc.getStreamById("legacy") is None
        pc.removeStream(stream)  # not added any more: ignored
        pc.removeStream(MediaStream())


async def test_create_dtmf_sender() -> None:
    async with make_pc() as pc:
        stream = camera_and_microphone()
        pc.addStream(stream)
        [audio] = stream.getAudioTracks()
        [video] = stream.getVideoTracks()
        dtmf = pc.createDTMFSender(audio)
        assert isinstance(dtmf, RTCDTMFSender)
        assert dtmf is pc.getSenders()[0].dtmf
        assert pc.createDTMFSender(audio) is dtmf
        with pytest.raises(InvalidAccessError):
            pc.createDTMFSender(video)
        with pytest.raises(InvalidAccessError):
            pc.createDTMFSender(MediaStreamTrack("audio", "not sent"))
        with pytest.raises(TypeError):
            pc.createDTMFSender(stream)  # type: ignore[arg-type]
    with pytest.raises(InvalidStateError):
        pc.createDTMFSender(audio)


async def test_addstream_and_removestream_events() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        order: list[str] = []
        added: list[MediaStreamEvent] = []
        removed: list[MediaStreamEvent] = []

        def on_add(event: MediaStreamEvent) -> None:
            order.append("addstream")
            added.append(event)

        b.ontrack = lambda _e: order.append("track")
        b.onaddstream = on_add
        b.addEventListener("removestream", removed.append)
        stream = camera_and_microphone()
        a.addStream(stream)
        with trio.fail_after(30):
            await connect(a, b, nursery)
            # One addstream per new remote stream, after the track events.
            assert order == ["track", "track", "addstream"]
            [event] = added
            assert event.type == "addstream" and event.target is b
            remote = event.stream
            assert remote.id == "legacy"
            assert sorted(t.kind for t in remote.getTracks()) == ["audio", "video"]
            assert b.getStreamById("legacy") is remote
            # Renegotiating the same streams fires nothing new.
            await negotiate(a, b, trickled=True)
            assert len(added) == 1 and removed == []

            # The sender stops sending both tracks: the stream loses them, then goes.
            removetracks: list[Event] = []
            remote.addEventListener("removetrack", removetracks.append)
            a.removeStream(stream)
            await negotiate(a, b, trickled=True)
            assert len(removetracks) == 2
            [gone] = removed
            assert gone.type == "removestream" and gone.stream is remote
            assert remote.getTracks() == []
            assert b.getStreamById("legacy") is None

            # Sending again with a new stream of the same tracks: a new addstream.
            a.addStream(MediaStream(stream.getTracks(), id="again"))
            await negotiate(a, b, trickled=True)
            assert [e.stream.id for e in added] == ["legacy", "again"]
        nursery.cancel_scope.cancel()
