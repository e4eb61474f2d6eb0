"""The tasks that move encoded media between the W3C objects and an RtpTransport.

One task per direction per transceiver, started by the peer connection in its nursery once a
section is negotiated (not wired yet; see docs/media.md):

- :func:`run_sender` takes frames from the sender's current track's :class:`EncodedSource`,
  packetizes them for the negotiated codec, stamps them in the codec's clock and hands each
  frame's packets to the RTP task with ``send_packets`` (which waits when the RTP task is
  behind, so backpressure reaches ``source.send``). Keyframe requests (PLI/FIR) go to the source.
- :func:`run_receiver` reads the mid's packet batches, assembles frames per SSRC with a
  :class:`~trio_rtc.rtp.codecs.FrameAssembler`, hands complete frames to the remote track and
  asks for a keyframe (rate-limited) when the assembler or the track needs one.

Both return when their transceiver stops (or the transport ends) and leave nothing running.
"""

from __future__ import annotations

import functools
import logging
import math
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from ..jsep.codecs import NegotiatedCodec, NegotiatedMedia, red_payload_types
from ..rtp.codecs import (
    DEFAULT_MAX_PAYLOAD_SIZE,
    Av1Depacketizer,
    Av1Packetizer,
    Depacketizer,
    EncodedFrame,
    FrameAssembler,
    G711Depacketizer,
    G711Packetizer,
    H264Depacketizer,
    H264Packetizer,
    OpusDepacketizer,
    OpusPacketizer,
    Packetizer,
    Vp8Depacketizer,
    Vp8Packetizer,
    Vp9Depacketizer,
    Vp9Packetizer,
    frame_hold,
    packetize_rtp,
)
from ..rtp.driver import RtpTransport
from ..rtp.errors import RtpError
from ..rtp.extensions import URI_AUDIO_LEVEL, decode_audio_level_untrusted
from ..rtp.packet import RtpPacket
from ..rtp.red import RedDecoder, RedEncoder
from .rtp_objects import RTCRtpReceiver, RTCRtpSender
from .tracks import EncodedSource, MediaStreamTrack, OutgoingFrame

__all__ = [
    "KEYFRAME_REQUEST_INTERVAL",
    "make_depacketizer",
    "make_packetizer",
    "run_receiver",
    "run_sender",
    "sending_codec",
    "sending_red",
]

logger = logging.getLogger("trio_rtc.media")

#: Seconds between two keyframe requests of one receiver: a PLI per lost packet would ask
#: the encoder for a burst of keyframes, each costlier than the loss it repairs.
KEYFRAME_REQUEST_INTERVAL = 0.5


def _packetization_mode(codec: NegotiatedCodec) -> int:
    return 1 if codec.parameters.get("packetization-mode", "0") == "1" else 0


_PACKETIZERS: dict[str, Callable[[NegotiatedCodec], Packetizer]] = {
    "vp8": lambda c: Vp8Packetizer(secrets.randbelow(0x8000)),
    "vp9": lambda c: Vp9Packetizer(secrets.randbelow(0x8000)),
    "h264": lambda c: H264Packetizer(_packetization_mode(c)),
    "av1": lambda c: Av1Packetizer(),
    "opus": lambda c: OpusPacketizer(),
    "pcmu": lambda c: G711Packetizer(),
    "pcma": lambda c: G711Packetizer(),
}
_DEPACKETIZERS: dict[str, Callable[[NegotiatedCodec], Depacketizer]] = {
    "vp8": lambda c: Vp8Depacketizer(),
    "vp9": lambda c: Vp9Depacketizer(),
    "h264": lambda c: H264Depacketizer(),
    "av1": lambda c: Av1Depacketizer(),
    "opus": lambda c: OpusDepacketizer(),
    "pcmu": lambda c: G711Depacketizer(),
    "pcma": lambda c: G711Depacketizer(),
}


def make_packetizer(codec: NegotiatedCodec) -> Packetizer | None:
    """The packetizer of a negotiated codec, None for one we cannot send (RTX, DTMF, …)."""
    factory = _PACKETIZERS.get(codec.name.lower())
    return factory(codec) if factory is not None else None


def make_depacketizer(codec: NegotiatedCodec) -> Depacketizer | None:
    factory = _DEPACKETIZERS.get(codec.name.lower())
    return factory(codec) if factory is not None else None


def _feedback(negotiated: NegotiatedMedia, codec: NegotiatedCodec | None) -> set[str]:
    """The ``a=rtcp-fb`` values of ``codec`` (RFC 4585 §4.2), or of every media codec of the
    section when None (a receiver does not know in advance which one the peer sends)."""
    codecs = [codec] if codec is not None else negotiated.media_codecs
    return {value for c in codecs for value in c.rtcp_feedback}


def _frame_hold(rtp_transport: RtpTransport) -> float:
    """The frame hold for the transport's round-trip time (see ``frame_hold``)."""
    return frame_hold(rtp_transport.round_trip_time)


def sending_codec(negotiated: NegotiatedMedia) -> NegotiatedCodec:
    """The codec we send: the first media codec of the section that we can packetize (the
    answerer's preference order, RFC 3264 §6.1)."""
    usable = [c for c in negotiated.media_codecs if c.name.lower() in _PACKETIZERS]
    for codec in usable:
        # VP9 profile 2 is 10-bit: the built-in encoder makes profile 0 (8-bit), so it sends
        # a profile 0 payload type when the section has one.
        if codec.name.lower() == "vp9" and codec.parameters.get("profile-id", "0") != "0":
            continue
        return codec
    if usable:
        return usable[0]
    names = ", ".join(c.rtpmap for c in negotiated.codecs) or "none"
    raise ValueError(f"no codec this side can send was negotiated (the section has {names})")


def sending_red(negotiated: NegotiatedMedia, codec: NegotiatedCodec) -> int | None:
    """The RED (RFC 2198) payload type to send ``codec``'s frames in, or None to send them as
    they are.

    RED is sent only for Opus, and only when the section lists a RED whose fmtp names nothing
    but ``codec`` (``111/111``) *before* it: as libwebrtc does, the order of the negotiated
    codecs says which to send, so a peer (or our ``setCodecPreferences``) that puts RED first
    asks for it, and the default order (Opus first, as Chromium and we offer) sends plain Opus.
    Each frame then carries a copy of the one before (distance 1), which roughly doubles the
    audio bitrate."""
    if codec.name.lower() != "opus":
        return None
    for listed in negotiated.media_codecs:
        if listed.payload_type == codec.payload_type:
            return None
        named = red_payload_types(listed)
        if named is not None and set(named) == {codec.payload_type}:
            return listed.payload_type
    return None


class _Timeline:
    """RTP timestamps of one outgoing stream: a random start (RFC 3550 §5.1) plus the frame's
    own timestamp, or the previous one's end, or the time since the first frame."""

    __slots__ = ("_clock_rate", "_next", "_offset", "_start")

    def __init__(self, clock_rate: int) -> None:
        self._clock_rate = clock_rate
        self._offset = secrets.randbits(32)
        self._next: int | None = None
        self._start: float | None = None

    def stamp(self, frame: OutgoingFrame, now: float) -> int:
        if self._start is None:
            self._start = now
        if frame.timestamp is not None:
            relative = frame.timestamp
        elif self._next is not None:
            relative = self._next
        else:
            relative = round((now - self._start) * self._clock_rate)
        if frame.duration is not None:
            self._next = relative + round(frame.duration * self._clock_rate)
        else:
            self._next = None
        return (self._offset + relative) & 0xFFFF_FFFF

    def position(self, now: float) -> int:
        """Where a frame without timing of its own would start now (a DTMF event starts there)."""
        if self._start is None:
            self._start = now
        relative = self._next
        if relative is None:
            relative = round((now - self._start) * self._clock_rate)
        return (self._offset + relative) & 0xFFFF_FFFF


async def _next_frame(
    sender: RTCRtpSender, deadline: float = math.inf
) -> tuple[OutgoingFrame | None, EncodedSource | None]:
    """The next frame of the sender's current track, or (None, source) when something about
    the sender changed (new track, parameters, stop, track ended) or ``deadline`` passed and
    the caller re-reads it."""
    track = sender.track
    source = track.source if track is not None else None
    scope = trio.CancelScope(deadline=deadline)
    sender._wakeup.add(scope)
    if track is not None:
        track._wakeup.add(scope)
    try:
        with scope:
            if source is None or track is None or track.readyState == "ended":
                await trio.sleep_forever()
            assert source is not None
            try:
                return await source.receive_frame(), source
            except trio.EndOfChannel:
                await trio.sleep_forever()  # the source ended: wait for replaceTrack/stop
        return None, source
    finally:
        sender._wakeup.discard(scope)
        if track is not None:
            track._wakeup.discard(scope)


async def run_sender(
    sender: RTCRtpSender,
    rtp_transport: RtpTransport,
    mid: str,
    ssrc: int,
    negotiated: NegotiatedMedia,
    *,
    rtx_ssrc: int | None = None,
    max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Send ``sender``'s track as SSRC ``ssrc`` of ``mid`` until the transceiver stops or the
    transport ends. Frames are sent as they come; a video stream starts, and restarts after a
    new track, a disabled spell or an inactive encoding, at a keyframe (others are dropped and
    a keyframe is asked of the source), because frames before it reference frames the peer
    never got.

    Loss repair follows the sending codec's ``a=rtcp-fb`` lines: with ``nack`` the RTP task
    keeps a history and resends what the peer NACKs, over RTX (``rtx_ssrc``, the section's
    RTX payload type for the codec) when negotiated."""
    codec = sending_codec(negotiated)
    packetizer = make_packetizer(codec)
    assert packetizer is not None
    sender.set_negotiated(negotiated)
    feedback = _feedback(negotiated, codec)
    rtx_payload_types = {apt: pt for pt, apt in negotiated.rtx.items()}
    rtp_sender = rtp_transport.open_sender(
        mid,
        ssrc,
        codec.clock_rate,
        on_keyframe_request=sender._keyframe_requested,
        kind=sender.kind,
        nack="nack" in feedback,
        rtx_ssrc=rtx_ssrc if codec.payload_type in rtx_payload_types else None,
        rtx_payload_types=rtx_payload_types,
        remb="goog-remb" in feedback,
    )
    sender._attach_rtp(rtp_transport, rtp_sender, mid)
    sender._sending_codec = codec
    timeline = _Timeline(codec.clock_rate)
    sequence = secrets.randbelow(0x10000)
    payload_type = codec.payload_type
    audio = sender.kind == "audio"
    red_payload_type = sending_red(negotiated, codec)
    red = RedEncoder(1, max_payload_size=max_payload_size) if red_payload_type is not None else None
    talkspurt = True  # RFC 3551 §4.1: the marker flags the first audio packet after silence
    need_keyframe = not audio
    current: EncodedSource | None = None
    dtmf = sender._dtmf  # webrtc-pc §7: its tones go out on this stream, between frames
    sending_mime = f"{sender.kind}/{codec.name}".lower()
    async with trio.open_nursery() as nursery:
        encoders = _EncoderTasks(nursery, sender, codec)
        transcoders = _Transcoders(codec)
        task_status.started()
        try:
            while not sender._stopping:
                encoders.sync(sender.track)
                if dtmf is not None:
                    now = trio.current_time()
                    tones = dtmf._poll(now, ssrc, sequence, timeline.position, codec.clock_rate)
                    if tones:
                        sequence = (sequence + len(tones)) & 0xFFFF
                        if red is not None:
                            red.reset()  # a redundant block is the packet just before it
                        try:
                            await rtp_sender.send_packets(tones)
                        except Exception:
                            return
                frame, source = await _next_frame(sender, dtmf._deadline if dtmf else math.inf)
                if source is not current:
                    current = source
                    # A new source: its first frame must be a keyframe (asked for below if it
                    # is not).
                    need_keyframe = not audio
                    talkspurt = True
                if frame is None:
                    continue
                assert source is not None
                if frame.codec is not None and frame.codec.lower() != sending_mime:
                    # A relayed frame in another codec: decode and re-encode it.
                    frames = await transcoders.transcode(frame, source)
                else:
                    frames = [frame]
                for frame in frames:
                    track = sender.track
                    active = bool(sender._encodings) and sender._encodings[0].active
                    # A track fed by raw frames sends black/silence while disabled (its encoder
                    # makes them); an encoded-only track sends nothing.
                    muted = track is not None and not track.enabled and track.frame_source is None
                    if track is None or muted or not active:
                        sender.frames_dropped += 1
                        source.frames_dropped += 1
                        need_keyframe = not audio
                        talkspurt = True
                        continue
                    if dtmf is not None and dtmf._playing:
                        # A tone replaces the audio (as browsers do); its time passes on the
                        # timeline.
                        timeline.stamp(frame, trio.current_time())
                        sender.frames_dropped += 1
                        talkspurt = True
                        continue
                    if need_keyframe and not frame.keyframe:
                        sender.frames_dropped += 1
                        source.frames_dropped += 1
                        if not source.keyframe_requested.is_set():
                            source.keyframe_requested.set()
                        continue
                    need_keyframe = False
                    timestamp = timeline.stamp(frame, trio.current_time())
                    try:
                        packets = packetize_rtp(
                            packetizer,
                            frame.data,
                            sequence_number=sequence,
                            timestamp=timestamp,
                            payload_type=payload_type,
                            ssrc=ssrc,
                            keyframe=frame.keyframe,
                            max_payload_size=max_payload_size,
                            marker=True if audio and talkspurt else None,
                        )
                    except ValueError as exc:
                        # The producer's frame (too large for Opus, empty, malformed for the
                        # format): drop it and say why once per stream; the stream carries on.
                        sender.frames_dropped += 1
                        source.frames_dropped += 1
                        if sender.frames_dropped == 1:
                            logger.warning("sender of mid %s dropped a frame: %s", mid, exc)
                        continue
                    if red is not None and red_payload_type is not None:
                        # RFC 2198: the header stays the Opus frame's; the payload gains a copy
                        # of the previous frame, none after a pause (it would be stale).
                        if talkspurt:
                            red.reset()
                        packets = [
                            attrs.evolve(
                                p,
                                payload_type=red_payload_type,
                                payload=red.encode(p.payload_type, p.timestamp, p.payload),
                            )
                            for p in packets
                        ]
                    sequence = (sequence + len(packets)) & 0xFFFF
                    talkspurt = False
                    try:
                        await rtp_sender.send_packets(
                            packets, keyframe=frame.keyframe and not audio
                        )
                    except Exception:
                        return  # the RTP transport ended: nothing will carry media any more
                    sender.frames_sent += 1
                    if frame.keyframe and not audio:
                        sender.keyframes_sent += 1
        finally:
            nursery.cancel_scope.cancel()
            await transcoders.aclose()


class _EncoderTasks:
    """The encoder task of the sender's current track when that track is fed by raw frames
    (``track.frame_source``): started when the track becomes the sender's, cancelled when it
    no longer is (replaceTrack, stop)."""

    def __init__(self, nursery: trio.Nursery, sender: RTCRtpSender, codec: NegotiatedCodec) -> None:
        self._nursery = nursery
        self._sender = sender
        self._codec = codec
        self._track: MediaStreamTrack | None = None
        self._scope: trio.CancelScope | None = None

    def sync(self, track: MediaStreamTrack | None) -> None:
        if track is self._track:
            return
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None
        self._track = track
        if track is None or track.frame_source is None or track.readyState != "live":
            return
        scope = self._scope = trio.CancelScope()
        self._nursery.start_soon(self._run, track, scope, name=f"trio_rtc.media.encode {track.id}")

    async def _run(self, track: MediaStreamTrack, scope: trio.CancelScope) -> None:
        from .pipeline import run_encoder  # the codecs load only when raw frames are sent

        with scope:
            await run_encoder(track, track.frame_source, self._codec, sender=self._sender)


class _Transcoders:
    """Transcoders of a sender by the MIME type of the frames it is given."""

    def __init__(self, codec: NegotiatedCodec) -> None:
        self._codec = codec
        self._by_mime: dict[str, Any] = {}
        self._failed: set[str] = set()

    async def transcode(self, frame: OutgoingFrame, source: EncodedSource) -> list[OutgoingFrame]:
        from .coding import CodecError
        from .pipeline import Transcoder

        mime = frame.codec or ""
        if mime in self._failed:
            return []
        transcoder = self._by_mime.get(mime)
        if transcoder is None:
            try:
                transcoder = self._by_mime[mime] = Transcoder(mime, self._codec)
            except CodecError as exc:
                self._failed.add(mime)
                logger.warning("cannot send %s frames as %s: %s", mime, self._codec.rtpmap, exc)
                return []
        out: list[OutgoingFrame] = await transcoder.transcode(
            frame, keyframe=source.keyframe_requested.is_set()
        )
        if transcoder.need_keyframe:
            transcoder.need_keyframe = False
            source.keyframe_requested.set()  # the origin must restart the decoder we feed
        return out

    async def aclose(self) -> None:
        for transcoder in self._by_mime.values():
            await transcoder.aclose()
        self._by_mime.clear()


def _audio_level(packet: RtpPacket, level_id: int | None) -> float | None:
    if level_id is None:
        return None
    raw = packet.extensions.get(level_id)
    if raw is None:
        return None
    try:
        level = decode_audio_level_untrusted(raw).level
    except RtpError:
        return None
    # webrtc-pc §5.3.1 audioLevel: 10^(-level/20) from RFC 6464's -dBov, 127 meaning silence.
    return 0.0 if level == 127 else 10 ** (-level / 20)


class _RedUnwrapper:
    """The RED (RFC 2198) payload types of a section, each with the payload types its fmtp
    names, and a :class:`RedDecoder` per remote SSRC: a RED packet becomes one packet per frame
    it delivers (recovered ones first, then the primary), numbered and stamped as that frame's
    own packet was, so the frame assembler sees the stream as if it had been sent plain."""

    __slots__ = ("_decoders", "_named")

    def __init__(self, negotiated: NegotiatedMedia) -> None:
        self._named = {
            c.payload_type: named
            for c in negotiated.media_codecs
            if (named := red_payload_types(c)) is not None
        }
        self._decoders: dict[int, RedDecoder] = {}

    def unwrap(self, batch: Sequence[RtpPacket], receiver: RTCRtpReceiver) -> list[RtpPacket]:
        if not self._named:
            return list(batch)
        out: list[RtpPacket] = []
        for packet in batch:
            named = self._named.get(packet.payload_type)
            if named is None:
                out.append(packet)
                continue
            if not packet.payload:
                # Padding: no frame, but its sequence number was not lost.
                out.append(attrs.evolve(packet, payload_type=named[0]))
                continue
            decoder = self._decoders.get(packet.ssrc)
            if decoder is None:
                decoder = self._decoders[packet.ssrc] = RedDecoder()
            try:
                frames = decoder.receive(packet.sequence_number, packet.timestamp, packet.payload)
            except RtpError:
                receiver.packets_unhandled += 1
                continue
            for frame in frames:
                if frame.payload_type not in named:
                    # A block of a format the fmtp did not announce: nothing says how to read it.
                    if not frame.recovered:
                        receiver.packets_unhandled += 1
                    continue
                if frame.recovered:
                    recovered = receiver.red_frames_recovered
                    recovered[packet.ssrc] = recovered.get(packet.ssrc, 0) + 1
                out.append(
                    attrs.evolve(
                        packet,
                        payload_type=frame.payload_type,
                        sequence_number=frame.sequence_number,
                        timestamp=frame.timestamp,
                        payload=frame.data,
                        marker=packet.marker and not frame.recovered,
                    )
                )
        return out


class _Stream:
    """The assembler of one remote SSRC, for its current payload type; with simulcast, the
    stream's rid and whether the receiver's track takes its frames."""

    __slots__ = ("assembler", "forwarding", "mime_type", "payload_type", "rid")

    def __init__(self, payload_type: int, assembler: FrameAssembler, rid: str | None) -> None:
        self.payload_type = payload_type
        self.assembler = assembler
        self.mime_type: str | None = None
        self.rid = rid
        self.forwarding = False


async def run_receiver(
    receiver: RTCRtpReceiver,
    rtp_transport: RtpTransport,
    mid: str,
    negotiated: NegotiatedMedia,
    *,
    keyframe_interval: float = KEYFRAME_REQUEST_INTERVAL,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Receive ``mid`` into ``receiver.track`` until the transceiver stops or the transport
    ends; the track then ends (its readers see the end of their iteration)."""
    receiver.set_negotiated(negotiated)
    codecs = {c.payload_type: c for c in negotiated.media_codecs}
    first = next(iter(codecs.values()), None)
    channel = rtp_transport.open_receiver(
        mid,
        clock_rate=first.clock_rate if first is not None else 90_000,
        # NACK where the section allows it; audio is not repaired that way (a resent 20 ms
        # frame would arrive after its playout time).
        nack=negotiated.kind == "video" and "nack" in _feedback(negotiated, None),
        rtx=negotiated.rtx,
        # RFC 5104 §4.3.1: FIR for a peer that takes it and not PLI (RFC 4585 §6.3.1).
        fir="ccm fir" in _feedback(negotiated, None)
        and "nack pli" not in _feedback(negotiated, None),
        # A peer without transport-cc learns the link from our REMB (goog-remb).
        remb="goog-remb" in _feedback(negotiated, None),
    )
    receiver._attach_rtp(rtp_transport, mid)
    level_id = next((i for i, uri in negotiated.extmap.items() if uri == URI_AUDIO_LEVEL), None)
    red = _RedUnwrapper(negotiated)
    track = receiver.track
    streams: dict[int, _Stream] = {}
    last_request = -float("inf")
    pending_request = False

    def ask_keyframe() -> None:
        nonlocal last_request, pending_request
        now = trio.current_time()
        if now - last_request >= keyframe_interval:
            last_request = now
            pending_request = False
            if rtp_transport.request_keyframe(mid):
                receiver.keyframe_requests_sent += 1
        else:
            pending_request = True  # sent with the next batch after the interval

    track._keyframe_hook = ask_keyframe
    # Video with NACK: a frame behind a gap waits for the retransmission (about an RTT)
    # before the gap is given up; without repair nothing is worth waiting for.
    hold = negotiated.kind == "video" and "nack" in _feedback(negotiated, None)
    max_wait = 0.0

    def deliver(
        ssrc: int,
        stream: _Stream,
        frames: list[EncodedFrame],
        now: float,
        csrcs: Sequence[int],
        level: float | None,
    ) -> bool:
        """Hand assembled frames to the track; True when a key frame should be asked for."""
        want = False
        layer = receiver._layers.get(stream.rid) if stream.rid is not None else None
        for frame in frames:
            frame = attrs.evolve(frame, codec=stream.mime_type, arrival_time=now)
            if layer is not None:
                # Simulcast: every layer has its own track; the receiver's track follows the
                # selected one, switching at a key frame (frames of two encodings do not mix).
                if layer._deliver(frame):
                    want = True
                if stream.rid != receiver._selected_rid:
                    stream.forwarding = False
                    receiver._count_frame(ssrc, stream.payload_type, frame.keyframe, False)
                    continue
                if not stream.forwarding:
                    if not frame.keyframe:
                        want = True
                        receiver._count_frame(ssrc, stream.payload_type, frame.keyframe, False)
                        continue
                    stream.forwarding = True
            before = track.frames_received
            if track._deliver(frame):
                want = True
            receiver._count_frame(
                ssrc, stream.payload_type, frame.keyframe, track.frames_received > before
            )
            receiver._saw_frame(ssrc, csrcs, frame.timestamp, level)
        receiver._jitter_buffer[ssrc] = (
            stream.assembler.jitter_buffer_delay,
            stream.assembler.jitter_buffer_emitted_count,
        )
        return want

    async with trio.open_nursery() as nursery:

        def start_decoding() -> None:
            if not track._decoder_running:
                track._decoder_running = True
                nursery.start_soon(_decode, track, receiver, name=f"trio_rtc.media.decode {mid}")

        track._decode_starter = start_decoding
        if track.decoding:
            start_decoding()  # recv() was called before the section was negotiated

        def sync_layers() -> None:
            """The simulcast layers of the section (renegotiation may change them)."""
            section = rtp_transport.demuxer.sections.get(mid)
            rids = section.rids if section is not None else ()
            if tuple(receiver._layers) == rids:
                return
            receiver._set_layers(rids)
            for layer in receiver._layers.values():
                if layer._decode_starter is None and layer.readyState == "live":
                    layer._keyframe_hook = ask_keyframe
                    layer._decode_starter = functools.partial(start_layer_decoding, layer)

        def start_layer_decoding(layer: MediaStreamTrack) -> None:
            if not layer._decoder_running:
                layer._decoder_running = True
                nursery.start_soon(
                    _decode_layer, layer, name=f"trio_rtc.media.decode {mid} {layer.label}"
                )

        sync_layers()
        task_status.started()
        try:
            with channel:
                while not receiver._stopped and track.readyState == "live":
                    scope = trio.CancelScope()
                    receiver._wakeup.add(scope)
                    track._wakeup.add(scope)
                    batches: list[list[RtpPacket]] = []
                    try:
                        with scope:
                            if pending_request:
                                scope.deadline = last_request + keyframe_interval
                            for waiting in streams.values():
                                due = waiting.assembler.get_timer()
                                if due is not None:
                                    scope.deadline = min(scope.deadline, due)
                            batches.append(await channel.receive())
                    finally:
                        receiver._wakeup.discard(scope)
                        track._wakeup.discard(scope)
                    while True:
                        try:
                            batches.append(channel.receive_nowait())
                        except trio.WouldBlock:
                            break
                    want_keyframe = pending_request
                    now = trio.current_time()
                    sync_layers()
                    if hold:
                        max_wait = _frame_hold(rtp_transport)
                    for batch in batches:
                        for packet in red.unwrap(batch, receiver):
                            pt = packet.payload_type
                            stream = streams.get(packet.ssrc)
                            if stream is None or stream.payload_type != pt:
                                codec = codecs.get(pt)
                                depacketizer = make_depacketizer(codec) if codec else None
                                if codec is None or depacketizer is None:
                                    receiver.packets_unhandled += 1
                                    continue
                                binding = rtp_transport.demuxer.binding(packet.ssrc)
                                stream = streams[packet.ssrc] = _Stream(
                                    pt,
                                    FrameAssembler(
                                        depacketizer, max_wait=max_wait if hold else 0.0
                                    ),
                                    binding.rid if binding is not None else None,
                                )
                                stream.mime_type = f"{negotiated.kind}/{codec.name}"
                            elif hold and stream.assembler.max_wait != max_wait:
                                stream.assembler.set_max_wait(max_wait)
                            frames = stream.assembler.receive_packet(packet, now)
                            if frames and deliver(
                                packet.ssrc,
                                stream,
                                frames,
                                now,
                                packet.csrcs,
                                _audio_level(packet, level_id),
                            ):
                                want_keyframe = True
                            if stream.assembler.keyframe_needed:
                                want_keyframe = True
                            if frames and 2 * len(track._frames) >= track._max_queue:
                                # A burst: many frames in one batch (packets held up on the
                                # path and let go together, or a sender pushing frames faster
                                # than real time). The bounded queue is for a reader that is
                                # slow, not for one that has not had its turn: let it drain
                                # the queue before the rest of the batch (a full video queue
                                # is dropped whole and costs a key frame).
                                await trio.lowlevel.checkpoint()
                    for ssrc, held in streams.items():
                        # Frames held behind a gap that repair did not fill in time.
                        due = held.assembler.get_timer()
                        if due is not None and due <= now:
                            frames = held.assembler.handle_timer(now)
                            if frames and deliver(ssrc, held, frames, now, (), None):
                                want_keyframe = True
                            if held.assembler.keyframe_needed:
                                want_keyframe = True
                    if want_keyframe:
                        ask_keyframe()
        except trio.EndOfChannel:
            pass  # the RTP transport ended
        finally:
            track._keyframe_hook = None
            track._decode_starter = None
            track._end(fire=True)
            for layer in receiver._layers.values():
                layer._keyframe_hook = None
                layer._decode_starter = None
                layer._end(fire=True)


async def _decode_layer(track: MediaStreamTrack) -> None:
    from .pipeline import run_decoder

    await run_decoder(track)


async def _decode(track: MediaStreamTrack, receiver: RTCRtpReceiver) -> None:
    from .pipeline import run_decoder  # the codecs load only when decoded frames are read

    await run_decoder(track, receiver=receiver)
