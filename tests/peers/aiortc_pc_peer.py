"""An aiortc RTCPeerConnection run as a subprocess and driven by JSON lines on stdin/stdout.

aiortc is asyncio-based, so the trio tests start this script (``aiortc_pc_harness.py``) and speak
the control protocol that the browser page ``web/peer.js`` speaks too (docs/interop.md): every
command line carries an ``id`` and is answered by ``{"type": "result", "id", "value"}`` or
``{"type": "error", "id", "error"}``; every other line is an event (``candidate``, ``state``,
``datachannel``, ``open``, ``close``, ``message``, ``transfer``, ``ignored``, ``log``). Beyond the
page's commands it has ``add_track`` (a generated audio or video track), ``add_transceiver`` (an audio/video m-section without a track) and
``transceivers``; for the media tests also ``receive_media``/``media_received`` (decode what
arrives and count it; ``receive_media_counters``/``media_counters`` also read the frame counter
of trio_rtc's test pattern from each picture), ``media_transceivers``, ``remove_track``,
``stop_transceiver`` and the
``set_remote_rejecting``/``create_offer_rejecting``/``create_answer_rejecting`` variants that
reject the m-sections of stopped transceivers as JSEP does and aiortc 1.16 does not (see each). The
configuration is one JSON object on the command line: ``trickle``, ``echo``, ``allow``
(networks besides loopback, only given inside a test-made network namespace), ``mdns``.

aiortc gathers every candidate inside setLocalDescription and writes them into the SDP. With
``trickle`` (the default) the description handed back has its candidate lines removed and the
candidates come as ``candidate`` events instead, in the ``candidate.toJSON()`` shape a browser
uses; without it they stay in the SDP (candidate events are still emitted, like a browser's).

Safety: aioice only binds 127.0.0.1 (its address enumeration is replaced: it leaves out loopback
when another interface exists), aiortc gets no STUN server (its default is a public one), remote
candidates outside the allowed networks are refused (``ignored``), datagrams from outside them are
dropped and sends to outside them are refused. ``.local`` names are resolved (multicast) only with
``mdns``, which the harness allows only inside a namespace of its own.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

MAX_LINE = 16 << 20
# Frame counters a media reader keeps for ``media_counters`` (the newest).
COUNTERS_KEPT = 2000
# Chunks of a send_bytes transfer wait below this much buffered data (aiortc buffers without
# limit, so the sender must pace itself).
HIGH_WATER = 1 << 20
LOW_WATER = 256 << 10

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
logger = logging.getLogger("aiortc_pc_peer")


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class Guard:
    """Which remote addresses this peer may talk to: loopback plus the configured networks."""

    def __init__(self, allow: list[str]) -> None:
        self.networks: list[Network] = [ipaddress.ip_network(n) for n in allow]

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        return address.is_loopback or any(address in n for n in self.networks)

    def install(self) -> None:
        """Patch aioice so that nothing reaches or leaves for a host outside the guard."""
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
        protocol = aioice.ice.StunProtocol
        received = protocol.datagram_received
        send_stun = protocol.send_stun
        send_data = protocol.send_data
        guard = self

        def guarded_received(self: Any, data: bytes | str, addr: tuple[Any, ...]) -> None:
            if guard.allows(str(addr[0])):
                received(self, data, addr)
            else:
                logger.warning("dropped a datagram from %s", addr)

        def guarded_send_stun(self: Any, message: Any, addr: tuple[str, int]) -> None:
            if guard.allows(str(addr[0])):
                send_stun(self, message, addr)
            else:
                logger.warning("refused to send STUN to %s", addr)

        async def guarded_send_data(self: Any, data: bytes, addr: tuple[str, int]) -> None:
            if guard.allows(str(addr[0])):
                await send_data(self, data, addr)
            else:
                logger.warning("refused to send data to %s", addr)

        protocol.datagram_received = guarded_received  # type: ignore[method-assign]
        protocol.send_stun = guarded_send_stun  # type: ignore[method-assign]
        protocol.send_data = guarded_send_data  # type: ignore[method-assign]


def channel_info(channel: RTCDataChannel) -> dict[str, Any]:
    return {
        "label": channel.label,
        "id": channel.id,
        "protocol": channel.protocol,
        "ordered": channel.ordered,
        "negotiated": channel.negotiated,
        "maxRetransmits": channel.maxRetransmits,
        "maxPacketLifeTime": channel.maxPacketLifeTime,
    }


class Channel:
    """A data channel addressed by its label, with its echo switch and an optional byte sink."""

    def __init__(self, channel: RTCDataChannel, echo: bool) -> None:
        self.channel = channel
        self.echo = echo
        self.sink_expected = 0
        self.sink_received = 0
        self.sink_hash: Any = None
        channel.on("open", lambda: emit({"type": "open", **channel_info(channel)}))
        channel.on("close", lambda: emit({"type": "close", "label": channel.label}))
        channel.on("message", self.on_message)

    def on_message(self, data: str | bytes) -> None:
        label = self.channel.label
        if self.sink_hash is not None and isinstance(data, bytes):
            if self.sink_received + len(data) > self.sink_expected:
                self.sink_hash = None
                emit(
                    {"type": "log", "level": "error", "text": f"{label}: more bytes than expected"}
                )
                return
            self.sink_hash.update(data)
            self.sink_received += len(data)
            if self.sink_received == self.sink_expected:
                digest = self.sink_hash.hexdigest()
                self.sink_hash = None
                emit(
                    {
                        "type": "transfer",
                        "label": label,
                        "bytes": self.sink_received,
                        "sha256": digest,
                    }
                )
            return
        if self.echo:
            self.channel.send(data)
        elif isinstance(data, str):
            emit({"type": "message", "label": label, "text": data})
        else:
            emit({"type": "message", "label": label, "binary": base64.b64encode(data).decode()})

    async def send_bytes(self, nbytes: int, chunk: int) -> dict[str, Any]:
        channel = self.channel
        data = os.urandom(nbytes)
        channel.bufferedAmountLowThreshold = LOW_WATER
        low = asyncio.Event()
        channel.on("bufferedamountlow", low.set)
        try:
            for offset in range(0, nbytes, chunk):
                while channel.bufferedAmount > HIGH_WATER:
                    low.clear()
                    await low.wait()
                channel.send(data[offset : offset + chunk])
        finally:
            channel.remove_listener("bufferedamountlow", low.set)
        return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": nbytes}


def noise_video_track() -> Any:
    """A 640x480 track of random pixels at aiortc's pace (30 fps). aiortc is imported where
    it is used in this script, so the class is made here."""
    from aiortc.mediastreams import VideoStreamTrack

    class Noise(VideoStreamTrack):  # type: ignore[misc]
        async def recv(self) -> Any:
            frame = await super().recv()
            for plane in frame.planes:
                plane.update(os.urandom(plane.buffer_size))
            return frame

    return Noise()


def split_candidates(sdp: str) -> tuple[str, list[dict[str, Any]]]:
    """The SDP without candidate lines, and its candidates as ``candidate.toJSON()`` dicts.

    Only the first m-section's candidates are listed: aiortc bundles everything on one transport,
    and a browser trickles the bundle's candidates once, for the first mid, the same way.
    """
    kept: list[str] = []
    candidates: list[dict[str, Any]] = []
    mline_index = -1
    ufrag: str | None = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            mline_index += 1
        elif line.startswith("a=ice-ufrag:"):
            ufrag = line[len("a=ice-ufrag:") :]
        if line.startswith("a=candidate:"):
            if mline_index == 0:
                candidates.append({"candidate": line[2:], "sdpMLineIndex": 0})
            continue
        if line == "a=end-of-candidates":
            continue
        kept.append(line)
    for candidate in candidates:
        candidate["sdpMid"] = _first_mid(sdp)
        candidate["usernameFragment"] = ufrag
    return "\r\n".join(kept) + "\r\n", candidates


def _first_mid(sdp: str) -> str | None:
    seen_m = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            if seen_m:
                return None
            seen_m = True
        elif seen_m and line.startswith("a=mid:"):
            return line[len("a=mid:") :]
    return None


class MediaReader:
    """Reads one remote track of aiortc (``await track.recv()``: aiortc's own depacketizer,
    jitter buffer and decoder) and counts the decoded frames: video by picture size, audio by
    samples."""

    def __init__(self, mid: str | None, track: Any) -> None:
        self.mid = mid
        self.track = track
        self.frames = 0
        self.sizes: dict[str, int] = {}
        self.samples = 0
        self.last: str | None = None
        self.ended = False
        self.error: str | None = None
        # With ``receive_media_counters``: the frame counters read from the decoded pictures
        # (trio_rtc's test pattern stamp), the newest COUNTERS_KEPT, and the pictures without one.
        self.counters: list[int] | None = None
        self.unreadable = 0

    async def run(self) -> None:
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                frame = await self.track.recv()
                self.frames += 1
                if self.track.kind == "video":
                    size = f"{frame.width}x{frame.height}"
                    self.sizes[size] = self.sizes.get(size, 0) + 1
                    self.last = size
                    if self.counters is not None:
                        self.read_counter(frame)
                else:
                    self.samples += frame.samples
        except MediaStreamError:
            self.ended = True
        except Exception as exc:  # reported to the test rather than lost in the event loop
            self.error = f"{type(exc).__name__}: {exc}"

    def read_counter(self, frame: Any) -> None:
        from trio_rtc.media.sources import read_frame_counter

        counter = read_frame_counter(frame)
        if counter is None:
            self.unreadable += 1
            return
        assert self.counters is not None
        self.counters.append(counter)
        del self.counters[:-COUNTERS_KEPT]

    def info(self) -> dict[str, Any]:
        return {
            "mid": self.mid,
            "kind": self.track.kind,
            "frames": self.frames,
            "sizes": dict(self.sizes),
            "last": self.last,
            "samples": self.samples,
            "ended": self.ended,
            "readyState": self.track.readyState,
            "error": self.error,
        }


def sdp_sections(sdp: str) -> tuple[list[str], list[list[str]]]:
    """The session lines and each m-section's lines of ``sdp``."""
    session: list[str] = []
    sections: list[list[str]] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append([])
        (sections[-1] if sections else session).append(line)
    return session, sections


def section_mid(section: list[str]) -> str | None:
    return next((x[len("a=mid:") :] for x in section if x.startswith("a=mid:")), None)


def join_sdp(session: list[str], sections: list[list[str]]) -> str:
    return "\r\n".join(session + [line for section in sections for line in section]) + "\r\n"


def reject_mids(sdp: str, mids: set[str]) -> str:
    """``sdp`` with the m-sections of ``mids`` rejected as JSEP §5.2.2/§5.3.1 has a peer do
    for a stopped transceiver (port 0, out of the BUNDLE group); aiortc 1.16 keeps them open."""
    session, sections = sdp_sections(sdp)
    for section in sections:
        if section_mid(section) in mids:
            kind, _port, rest = section[0].split(" ", 2)
            section[0] = f"{kind} 0 {rest}"
    for index, line in enumerate(session):
        if line.startswith("a=group:BUNDLE "):
            kept = [m for m in line.split(" ")[1:] if m not in mids]
            session[index] = " ".join(["a=group:BUNDLE", *kept])
    return join_sdp(session, sections)


TRANSPORT_ATTRIBUTES = ("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:", "a=setup:")


def rejected_mids(sdp: str) -> tuple[str, set[str]]:
    """The mids of ``sdp``'s rejected m-sections (port 0), and ``sdp`` made acceptable to
    aiortc 1.16, which refuses a section without ICE credentials (a browser leaves them out of
    a rejected one): those sections get the transport attributes of the first accepted one."""
    session, sections = sdp_sections(sdp)
    rejected = {
        mid
        for section in sections
        if section[0].split(" ")[1] == "0" and (mid := section_mid(section)) is not None
    }
    accepted = next((x for x in sections if section_mid(x) not in rejected), [])
    transport = [x for x in accepted if x.startswith(TRANSPORT_ATTRIBUTES)]
    for section in sections:
        if section_mid(section) in rejected:
            section[1:] = [
                *(x for x in section[1:] if not x.startswith(TRANSPORT_ATTRIBUTES)),
                *transport,
            ]
    return join_sdp(session, sections), rejected


class Peer:
    def __init__(self, config: dict[str, Any]) -> None:
        self.trickle = bool(config.get("trickle", True))
        self.echo = bool(config.get("echo", False))
        self.mdns = bool(config.get("mdns", False))
        self.guard = Guard([str(n) for n in config.get("allow", [])])
        self.guard.install()
        # An explicit empty list: without it aiortc would gather from a public STUN server.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channels: dict[str, Channel] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        for event in (
            "connectionstatechange",
            "iceconnectionstatechange",
            "icegatheringstatechange",
            "signalingstatechange",
        ):
            self.pc.on(event, self._state_reporter(event))
        self.pc.on("datachannel", self.on_datachannel)
        self.receiving_media = False
        self.reading_counters = False
        self.readers: list[MediaReader] = []
        # Mids whose m-sections are rejected (stopped here, or port 0 from the remote).
        self.rejected: set[str] = set()

    def _state_reporter(self, event: str) -> Callable[[], None]:
        return lambda: emit({"type": "state", "event": event, **self.states()})

    def states(self) -> dict[str, str]:
        return {
            "connectionState": self.pc.connectionState,
            "iceConnectionState": self.pc.iceConnectionState,
            "iceGatheringState": self.pc.iceGatheringState,
            "signalingState": self.pc.signalingState,
        }

    def on_datachannel(self, channel: RTCDataChannel) -> None:
        self.adopt(channel, self.echo)
        emit({"type": "datachannel", **channel_info(channel)})
        # aiortc may have opened the channel before announcing it; say so like a browser would.
        if channel.readyState == "open":
            emit({"type": "open", **channel_info(channel)})

    def adopt(self, channel: RTCDataChannel, echo: bool) -> Channel:
        if channel.label in self.channels:
            raise ValueError(f"the test addresses channels by label; {channel.label} is taken")
        entry = Channel(channel, echo)
        self.channels[channel.label] = entry
        return entry

    def channel(self, label: str) -> Channel:
        entry = self.channels.get(label)
        if entry is None:
            raise ValueError(f"no data channel labelled {label}")
        return entry

    def candidate_allowed(self, line: str) -> str | None:
        """Why the candidate ``line`` (``candidate:…``) is refused, or None if it may be used."""
        try:
            parsed = candidate_from_sdp(line.split(":", 1)[1])
        except (AssertionError, IndexError, ValueError) as exc:
            return f"unparsable: {exc}"
        if parsed.protocol.lower() != "udp":
            return "not UDP (aioice only does UDP)"
        if parsed.ip.endswith(".local"):
            return None if self.mdns else "mDNS name and mdns is off"
        if not self.guard.allows(parsed.ip):
            return "address outside the allowed networks"
        return None

    def filter_sdp(self, sdp: str) -> str:
        kept = []
        for line in sdp.splitlines():
            if line.startswith("a=candidate:"):
                reason = self.candidate_allowed(line[2:])
                if reason is not None:
                    emit({"type": "ignored", "candidate": line[2:], "reason": reason})
                    continue
            kept.append(line)
        return "\r\n".join(kept) + "\r\n"

    async def local_description(self) -> dict[str, Any]:
        description = self.pc.localDescription
        stripped, candidates = split_candidates(description.sdp)
        for candidate in candidates:
            emit({"type": "candidate", "candidate": candidate})
        emit({"type": "candidate", "candidate": None})
        sdp = stripped if self.trickle else description.sdp
        return {"type": description.type, "sdp": sdp}

    # -- commands: each returns the JSON value of its result --------------------------------

    async def cmd_create_offer(self, message: dict[str, Any]) -> Any:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return await self.local_description()

    async def cmd_create_answer(self, message: dict[str, Any]) -> Any:
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return await self.local_description()

    async def cmd_set_remote(self, message: dict[str, Any]) -> Any:
        description = message["description"]
        sdp = self.filter_sdp(str(description["sdp"]))
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=description["type"]))
        return None

    async def cmd_add_candidate(self, message: dict[str, Any]) -> Any:
        init = message.get("candidate")
        if init is None or not init.get("candidate"):
            await self.pc.addIceCandidate(None)
            return None
        line = str(init["candidate"])
        reason = self.candidate_allowed(line)
        if reason is not None:
            emit({"type": "ignored", "candidate": line, "reason": reason})
            return None
        candidate = candidate_from_sdp(line.split(":", 1)[1])
        candidate.sdpMid = init.get("sdpMid")
        candidate.sdpMLineIndex = init.get("sdpMLineIndex")
        await self.pc.addIceCandidate(candidate)
        return None

    async def cmd_add_transceiver(self, message: dict[str, Any]) -> Any:
        """An audio or video transceiver without a track (it offers the m-section only)."""
        transceiver = self.pc.addTransceiver(
            str(message["media"]), direction=str(message.get("direction", "sendrecv"))
        )
        return {"kind": transceiver.kind, "direction": transceiver.direction}

    async def cmd_add_track(self, message: dict[str, Any]) -> Any:
        """aiortc's generated track (silence for audio, a blank picture for video), sent with
        ``addTrack``: the next offer or answer sends it. ``noise``: video of random pixels
        instead, which no encoder can squeeze below the bitrate it is given."""
        from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

        media = str(message["media"])
        track: Any
        if media == "audio":
            track = AudioStreamTrack()
        elif message.get("noise"):
            track = noise_video_track()
        else:
            track = VideoStreamTrack()
        sender = self.pc.addTrack(track)
        return {"kind": sender.track.kind if sender.track is not None else media}

    async def cmd_sender_bitrates(self, message: dict[str, Any]) -> Any:
        """The target bitrate of each video sender's encoder (bits/s; aiortc sets it from the
        REMB it receives, within its encoder's 250 kbit/s .. 1.5 Mbit/s), None before one."""
        rates = []
        for sender in self.pc.getSenders():
            encoder = getattr(sender, "_RTCRtpSender__encoder", None)
            rates.append(getattr(encoder, "target_bitrate", None))
        return rates

    async def cmd_transceivers(self, message: dict[str, Any]) -> Any:
        """The transceivers after negotiation: mid, kind, and the negotiated direction."""
        return [
            {"mid": t.mid, "kind": t.kind, "currentDirection": t.currentDirection}
            for t in self.pc.getTransceivers()
        ]

    # -- media commands (the media interop tests) --------------------------------------------

    def _transceiver(self, mid: str) -> Any:
        for transceiver in self.pc.getTransceivers():
            if transceiver.mid == mid:
                return transceiver
        raise ValueError(f"no transceiver with mid {mid!r}")

    def on_media_track(self, track: Any) -> None:
        if any(reader.track is track for reader in self.readers):
            return
        mid = next((t.mid for t in self.pc.getTransceivers() if t.receiver.track is track), None)
        reader = MediaReader(mid, track)
        if self.reading_counters:
            reader.counters = []
        self.readers.append(reader)
        task = asyncio.create_task(reader.run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def cmd_receive_media(self, message: dict[str, Any]) -> Any:
        """From now on every remote track (``track`` event) is read and its frames decoded by
        aiortc and counted (``media_received``)."""
        if not self.receiving_media:
            self.receiving_media = True
            self.pc.on("track", self.on_media_track)
            for transceiver in self.pc.getTransceivers():
                if transceiver.receiver.track is not None:
                    self.on_media_track(transceiver.receiver.track)
        return None

    async def cmd_media_received(self, message: dict[str, Any]) -> Any:
        """Per remote track read since ``receive_media``: mid, kind, decoded ``frames``, video
        ``sizes`` ({"WxH": frames}) and ``last`` size, audio ``samples``, ``ended``."""
        return [reader.info() for reader in self.readers]

    async def cmd_receive_media_counters(self, message: dict[str, Any]) -> Any:
        """``receive_media``, and the remote video tracks read from now on also read the frame
        counter trio_rtc's test pattern stamps into each picture (``media_counters``)."""
        self.reading_counters = True
        for reader in self.readers:
            if reader.counters is None:
                reader.counters = []
        return await self.cmd_receive_media(message)

    async def cmd_media_counters(self, message: dict[str, Any]) -> Any:
        """Per remote track read: mid, kind, decoded ``frames``, the stamped ``counters``
        read (the newest 2000, in the order decoded) and the pictures without a readable one
        (``unreadable``)."""
        return [
            {
                "mid": reader.mid,
                "kind": reader.track.kind,
                "frames": reader.frames,
                "counters": list(reader.counters or []),
                "unreadable": reader.unreadable,
                "error": reader.error,
            }
            for reader in self.readers
        ]

    async def cmd_media_transceivers(self, message: dict[str, Any]) -> Any:
        """``transceivers`` and more: direction, stopped, the receiver track's readyState."""
        return [
            {
                "mid": t.mid,
                "kind": t.kind,
                "direction": t.direction,
                "currentDirection": t.currentDirection,
                "stopped": t.stopped,
                "receiverTrack": (
                    t.receiver.track.readyState if t.receiver.track is not None else None
                ),
            }
            for t in self.pc.getTransceivers()
        ]

    async def cmd_remove_track(self, message: dict[str, Any]) -> Any:
        """webrtc-pc removeTrack's effect on the transceiver of ``mid``: sendrecv becomes recvonly,
        sendonly inactive, so the next offer stops sending. (aiortc 1.16 has no removeTrack, and
        its sender task fails on ``replaceTrack(None)``, so the track stays attached, unsent.)"""
        transceiver = self._transceiver(str(message["mid"]))
        transceiver.direction = {"sendrecv": "recvonly", "sendonly": "inactive"}.get(
            transceiver.direction, transceiver.direction
        )
        return {"direction": transceiver.direction}

    async def cmd_stop_transceiver(self, message: dict[str, Any]) -> Any:
        """``await transceiver.stop()`` for ``mid`` (its receiver track ends); the ``…_rejecting``
        commands then reject its m-section."""
        mid = str(message["mid"])
        await self._transceiver(mid).stop()
        self.rejected.add(mid)
        return None

    async def cmd_set_remote_rejecting(self, message: dict[str, Any]) -> Any:
        """``set_remote`` that also does what aiortc 1.16 leaves out for a rejected m-section
        (port 0): the description is made acceptable to it (see ``rejected_mids``), and the
        transceiver of every rejected section is stopped, as webrtc-pc §4.4.1.5 has
        setRemoteDescription do."""
        description = dict(message["description"])
        description["sdp"], rejected = rejected_mids(str(description["sdp"]))
        await self.cmd_set_remote({"description": description})
        for mid in sorted(rejected):
            transceiver = next((t for t in self.pc.getTransceivers() if t.mid == mid), None)
            if transceiver is not None and not transceiver.stopped:
                await transceiver.stop()
        self.rejected |= rejected
        return sorted(rejected)

    async def cmd_create_offer_rejecting(self, message: dict[str, Any]) -> Any:
        """``create_offer`` with the m-sections of stopped or rejected transceivers rejected
        (port 0, out of BUNDLE) as JSEP §5.2.2 wants: aiortc 1.16 offers them unchanged."""
        description = await self.cmd_create_offer(message)
        description["sdp"] = reject_mids(description["sdp"], self.rejected)
        return description

    async def cmd_create_answer_rejecting(self, message: dict[str, Any]) -> Any:
        """``create_answer`` with the m-sections of stopped or rejected transceivers rejected
        (JSEP §5.3.1)."""
        description = await self.cmd_create_answer(message)
        description["sdp"] = reject_mids(description["sdp"], self.rejected)
        return description

    async def cmd_create_channel(self, message: dict[str, Any]) -> Any:
        options = dict(message.get("options") or {})
        channel = self.pc.createDataChannel(str(message["label"]), **options)
        self.adopt(channel, bool(message.get("echo", False)))
        return channel_info(channel)

    async def cmd_send(self, message: dict[str, Any]) -> Any:
        entry = self.channel(str(message["label"]))
        if "text" in message:
            entry.channel.send(str(message["text"]))
        else:
            entry.channel.send(base64.b64decode(message["binary"]))
        return None

    async def cmd_set_echo(self, message: dict[str, Any]) -> Any:
        self.channel(str(message["label"])).echo = bool(message["echo"])
        return None

    async def cmd_close_channel(self, message: dict[str, Any]) -> Any:
        self.channel(str(message["label"])).channel.close()
        return None

    async def cmd_expect_bytes(self, message: dict[str, Any]) -> Any:
        entry = self.channel(str(message["label"]))
        entry.sink_expected = int(message["nbytes"])
        entry.sink_received = 0
        entry.sink_hash = hashlib.sha256()
        return None

    async def cmd_send_bytes(self, message: dict[str, Any]) -> Any:
        entry = self.channel(str(message["label"]))
        return await entry.send_bytes(int(message["nbytes"]), int(message.get("chunk", 16384)))

    async def cmd_states(self, message: dict[str, Any]) -> Any:
        return self.states()

    async def cmd_close(self, message: dict[str, Any]) -> Any:
        await self.pc.close()
        return None

    async def run_command(self, message: dict[str, Any]) -> None:
        handler: Callable[[dict[str, Any]], Awaitable[Any]] | None = getattr(
            self, f"cmd_{message.get('type')}", None
        )
        try:
            if handler is None:
                raise ValueError(f"unknown command {message.get('type')!r}")
            value = await handler(message)
        except Exception as exc:
            emit(
                {"type": "error", "id": message.get("id"), "error": f"{type(exc).__name__}: {exc}"}
            )
            return
        emit({"type": "result", "id": message.get("id"), "value": value})

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_LINE)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        emit({"type": "hello"})
        try:
            while line := await reader.readline():
                if not line.strip():
                    continue
                try:
                    message = json.loads(line)
                except ValueError as exc:
                    emit({"type": "log", "level": "error", "text": f"bad control line: {exc}"})
                    continue
                # Commands run concurrently, like the page's: a long transfer must not hold up
                # the candidates or messages the test sends meanwhile.
                task = asyncio.create_task(self.run_command(message))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        finally:
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await self.pc.close()
        emit({"type": "closed"})


def main() -> None:
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if config.get("debug") else logging.INFO,
        format="%(relativeCreated)6.0fms %(name)s %(levelname)s %(message)s",
    )
    asyncio.run(Peer(config).run())


if __name__ == "__main__":
    main()
