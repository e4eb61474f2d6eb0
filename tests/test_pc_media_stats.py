"""``pc.getStats()`` with media (webrtc-stats §8): two RTCPeerConnections over real UDP on
127.0.0.1 exchange VP8 (both ways) and Opus (one way) encoded by PyAV, then each report holds
inbound-rtp, outbound-rtp, remote-inbound-rtp, remote-outbound-rtp, codec and media-source
entries whose values agree with each other and with the peer's, whose ids link up, and a track
selector picks one stream's stats (webrtc-pc §8.2)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from pc_helpers import connect, pc_pair
from test_pc_media import opus_frames, vp8_frames

from trio_rtc import RTCPeerConnection
from trio_rtc.exceptions import InvalidAccessError
from trio_rtc.media import MediaStream, MediaStreamTrack, OutgoingFrame
from trio_rtc.pc.media import RTCTrackEvent
from trio_rtc.rtp.codecs import EncodedFrame
from trio_rtc.stats import RTCStatsReport

FRAMES = 60


async def send_paced(
    track: MediaStreamTrack,
    frames: Iterator[OutgoingFrame],
    interval: float,
    enough: trio.Event,
    sent: dict[str, int],
) -> None:
    """Send in real time, at least FRAMES frames and on until ``enough``: RTCP report blocks
    are only sent about sources heard since the previous report, so the RTT needs the stream
    to flow while reports go both ways."""
    assert track.source is not None
    for frame in frames:
        await track.source.send(frame)
        sent[track.id] = sent.get(track.id, 0) + 1
        if sent[track.id] >= FRAMES and enough.is_set():
            return
        await trio.sleep(interval)
    raise AssertionError("the encoder ran out of frames before RTCP reports went both ways")


LAST_FRAMES: dict[str, EncodedFrame] = {}


async def drain(track: MediaStreamTrack, got: dict[str, int]) -> None:
    async for frame in track.encoded_frames():
        got[track.id] = got.get(track.id, 0) + 1
        LAST_FRAMES[track.id] = frame


def video(count: int) -> Iterator[OutgoingFrame]:
    for data, keyframe in vp8_frames(count):
        yield OutgoingFrame(data, keyframe=keyframe, duration=1 / 30)


def audio(count: int) -> Iterator[OutgoingFrame]:
    for data in opus_frames(count):
        yield OutgoingFrame(data, duration=0.02)


def reported(mine: RTCStatsReport, peer: RTCStatsReport) -> bool:
    """Each of ``mine``'s streams has its remote-inbound-rtp and the peer's copy of it its
    remote-outbound-rtp."""
    inbound = by_ssrc(peer, "inbound-rtp")
    outbound = by_ssrc(mine, "outbound-rtp")
    return bool(outbound) and all(
        "remoteId" in out and "remoteId" in inbound.get(ssrc, {}) for ssrc, out in outbound.items()
    )


def by_ssrc(report: RTCStatsReport, type: str) -> dict[int, dict[str, Any]]:
    return {s["ssrc"]: s for s in report.of_type(type)}


def settled(mine: RTCStatsReport, peer: RTCStatsReport) -> bool:
    """Every stream of ``mine`` was counted by the peer and has its remote counterpart (RTCP
    reports went both ways)."""
    outbound = by_ssrc(mine, "outbound-rtp")
    inbound = by_ssrc(peer, "inbound-rtp")
    return bool(outbound) and all(
        "remoteId" in out
        and ssrc in inbound
        and "remoteId" in inbound[ssrc]
        and inbound[ssrc]["packetsReceived"] == out["packetsSent"]
        for ssrc, out in outbound.items()
    )


def summary(*reports: RTCStatsReport) -> list[list[tuple[str, object]]]:
    """The counters ``settled`` looks at, for a failure message."""
    keys = ("id", "packetsSent", "packetsReceived", "packetsLost", "remoteId")
    return [
        [(s["id"], [s.get(k) for k in keys]) for s in r.values() if s["type"].endswith("-rtp")]
        for r in reports
    ]


def check_links(report: RTCStatsReport) -> None:
    """Every ``…Id`` member names an entry of the same report."""
    for key, stats in report.items():
        assert stats["id"] == key
        for name, value in stats.items():
            if name.endswith("Id") and isinstance(value, str):
                assert value in report, f"{key}.{name} = {value!r} is not in the report"


def check_streams(
    mine: RTCStatsReport,
    peer: RTCStatsReport,
    pc: RTCPeerConnection,
    sent: dict[str, int],
    read: dict[str, int],
) -> None:
    """``mine``'s outbound streams against ``peer``'s inbound ones, and their remote stats.
    ``sent``/``got``: frames the test sent into / read from each track, by track id."""
    now = time.time() * 1000.0
    inbound = by_ssrc(peer, "inbound-rtp")
    mids = {t.sender: t.mid for t in pc.getTransceivers()}
    senders = {s.track.kind: s for s in pc.getSenders() if s.track is not None}
    for ssrc, out in by_ssrc(mine, "outbound-rtp").items():
        kind = out["kind"]
        sender = senders[kind]
        assert out["mid"] == mids[sender]
        assert out["active"] is True and out["retransmittedPacketsSent"] == 0
        assert mine[out["transportId"]]["type"] == "transport"
        assert out["packetsSent"] > 0 and out["bytesSent"] > 0
        # At least the 12-byte fixed header per packet (plus the mid extension).
        assert out["headerBytesSent"] >= 12 * out["packetsSent"]
        codec = mine[out["codecId"]]
        assert codec["type"] == "codec" and codec["transportId"] == out["transportId"]
        assert codec["mimeType"] == ("video/VP8" if kind == "video" else "audio/opus")
        assert codec["clockRate"] == (90_000 if kind == "video" else 48_000)
        if kind == "audio":
            assert codec["channels"] == 2 and "useinbandfec=1" in codec["sdpFmtpLine"]
        source = mine[out["mediaSourceId"]]
        assert source["type"] == "media-source" and source["kind"] == kind
        assert sender.track is not None and source["trackIdentifier"] == sender.track.id
        if kind == "video":
            assert out["framesSent"] == source["frames"] == sent[sender.track.id]

        # The peer received exactly what we sent (loopback: no loss).
        got = inbound[ssrc]
        assert got["kind"] == kind and got["mid"] == out["mid"]
        assert got["packetsReceived"] == out["packetsSent"] and got["packetsLost"] == 0
        # bytesReceived leaves out the first packet (RFC 3550 A.1 probation).
        assert 0 < got["bytesReceived"] <= out["bytesSent"]
        assert got["headerBytesReceived"] >= 12 * (got["packetsReceived"] - 1)
        assert 0 <= got["jitter"] < 1
        assert now - 30_000 < got["lastPacketReceivedTimestamp"] <= now + 1000
        assert got["nackCount"] == got["firCount"] == 0 and got["pliCount"] >= 0
        peer_codec = peer[got["codecId"]]
        assert peer_codec["payloadType"] == codec["payloadType"]
        assert peer_codec["mimeType"] == codec["mimeType"]
        if kind == "video":
            assert got["framesReceived"] == got["framesDecoded"] == sent[sender.track.id]
            assert got["framesDecoded"] == read[got["trackIdentifier"]]
            assert got["keyFramesDecoded"] >= 1
        else:
            assert "framesReceived" not in got
        assert peer[got["transportId"]]["type"] == "transport"

        # What the peer's receiver reports about our stream, and what our SRs told the peer.
        remote_in = mine[out["remoteId"]]
        assert remote_in["type"] == "remote-inbound-rtp" and remote_in["localId"] == out["id"]
        assert remote_in["ssrc"] == ssrc and remote_in["codecId"] == out["codecId"]
        assert 0 <= remote_in["roundTripTime"] < 1
        assert remote_in["roundTripTimeMeasurements"] >= 1
        assert remote_in["totalRoundTripTime"] >= remote_in["roundTripTime"]
        assert 0 <= remote_in["fractionLost"] <= 1 and remote_in["jitter"] >= 0
        assert remote_in["packetsLost"] == 0
        remote_out = peer[got["remoteId"]]
        assert remote_out["type"] == "remote-outbound-rtp" and remote_out["localId"] == got["id"]
        assert remote_out["ssrc"] == ssrc and remote_out["kind"] == kind
        # The peer's own counts as of its last SR: no more than it has sent by now.
        assert 0 < remote_out["packetsSent"] <= out["packetsSent"]
        assert 0 < remote_out["bytesSent"] <= out["bytesSent"]
        assert remote_out["reportsSent"] >= 1
        # Both wall clocks are this machine's.
        assert abs(remote_out["remoteTimestamp"] - now) < 30_000
        assert remote_out["timestamp"] <= now + 1000


async def test_media_stats_both_ways() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        tracks: dict[RTCPeerConnection, list[RTCTrackEvent]] = {a: [], b: []}
        a.ontrack = tracks[a].append
        b.ontrack = tracks[b].append
        stream = MediaStream(id="stream-a")
        video_track = MediaStreamTrack("video", "camera")
        audio_track = MediaStreamTrack("audio", "microphone")
        a.addTrack(video_track, stream)
        a.addTrack(audio_track, stream)
        b_video = MediaStreamTrack("video", "b camera")
        b.addTrack(b_video)
        sent: dict[str, int] = {}
        got: dict[str, int] = {}
        with trio.fail_after(30):
            await connect(a, b, nursery)
            by_kind = {e.track.kind: e for e in tracks[b]}
            [back] = tracks[a]
            for event in (*tracks[a], *tracks[b]):
                nursery.start_soon(drain, event.track, got)
            # Real time: the first reports ~0.5 s after connecting, then ~1 s apart (video).
            enough = trio.Event()
            async with trio.open_nursery() as flows:
                flows.start_soon(send_paced, video_track, video(900), 1 / 30, enough, sent)
                flows.start_soon(send_paced, audio_track, audio(1500), 0.02, enough, sent)
                flows.start_soon(send_paced, b_video, video(900), 1 / 30, enough, sent)
                while True:
                    report_a, report_b = await a.getStats(), await b.getStats()
                    if reported(report_a, report_b) and reported(report_b, report_a):
                        break
                    await trio.sleep(0.1)
                enough.set()
        # Encoded frames say their codec and arrival; receivers map RTP time to the sender's
        # clock from its SRs (lip sync).
        for event in by_kind.values():
            last = LAST_FRAMES[event.track.id]
            assert last.codec == ("video/VP8" if event.track.kind == "video" else "audio/opus")
            assert last.arrival_time is not None and last.arrival_time <= trio.current_time()
            when = event.receiver.sender_time(last.timestamp)
            # The wall-clock moment the frame arrived (not now: a loaded machine may take
            # seconds to get here), against which its sender time must be close.
            arrived_wall = time.time() - (trio.current_time() - last.arrival_time)
            assert when is not None and abs(when - arrived_wall) < 2
        # The flow stopped: the counts settle once the last packets are in.
        with trio.move_on_after(10):
            while True:
                report_a, report_b = await a.getStats(), await b.getStats()
                if settled(report_a, report_b) and settled(report_b, report_a):
                    break
                await trio.sleep(0.1)
        assert settled(report_a, report_b) and settled(report_b, report_a), summary(
            report_a, report_b
        )
        await trio.sleep(0.2)  # the receivers' tasks hand the last frames to the tracks
        report_a, report_b = await a.getStats(), await b.getStats()
        assert min(sent.values()) >= FRAMES

        types = {s["type"] for s in report_a.values()}
        assert {
            "inbound-rtp",
            "outbound-rtp",
            "remote-inbound-rtp",
            "remote-outbound-rtp",
            "codec",
            "media-source",
            "transport",
        } <= types
        assert "media-playout" not in types  # nothing is played out here
        assert len(report_a.of_type("outbound-rtp")) == 2
        assert len(report_a.of_type("inbound-rtp")) == 1
        assert len(report_b.of_type("outbound-rtp")) == 1
        assert len(report_b.of_type("inbound-rtp")) == 2
        assert len(report_a.of_type("media-source")) == 2
        check_links(report_a)
        check_links(report_b)
        check_streams(report_a, report_b, a, sent, got)
        check_streams(report_b, report_a, b, sent, got)
        assert report_b.of_type("inbound-rtp")[0]["trackIdentifier"] in {
            e.track.id for e in tracks[b]
        }

        # A sender's track: its outbound-rtp and what that references, nothing else.
        selected = await a.getStats(video_track)
        [out] = selected.of_type("outbound-rtp")
        assert out["kind"] == "video" and out["id"] in report_a
        assert not selected.of_type("inbound-rtp")
        assert {s["type"] for s in selected.values()} >= {
            "outbound-rtp",
            "codec",
            "media-source",
            "remote-inbound-rtp",
            "transport",
            "candidate-pair",
        }
        assert "peer-connection" not in {s["type"] for s in selected.values()}
        [source] = selected.of_type("media-source")
        assert source["trackIdentifier"] == video_track.id
        check_links(selected)
        # A receiver's track: its inbound-rtp (and its remote-outbound-rtp, codec, transport).
        selected = await a.getStats(back.track)
        [got] = selected.of_type("inbound-rtp")
        assert got["trackIdentifier"] == back.track.id and got["kind"] == "video"
        assert not selected.of_type("outbound-rtp") and not selected.of_type("media-source")
        assert len(selected.of_type("remote-outbound-rtp")) == 1
        check_links(selected)
        # b's audio receiver, and the one on b for a's audio.
        selected = await b.getStats(by_kind["audio"].track)
        [got] = selected.of_type("inbound-rtp")
        assert got["kind"] == "audio"
        # Not this connection's: a track of the peer, a new track, something else.
        for foreign in (b_video, MediaStreamTrack("audio"), object()):
            with pytest.raises(InvalidAccessError):
                await a.getStats(foreign)
        nursery.cancel_scope.cancel()
