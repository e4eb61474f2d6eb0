"""Sending simulcast (RFC 8853): one picture source, several encodings, each on its own SSRC.

:func:`run_simulcast_sender` replaces :func:`~trio_rtc.media.driver.run_sender` for a video
sender whose negotiated section sends several rids (``addTransceiver(track, {"sendEncodings":
[{"rid": "l", "scaleResolutionDownBy": 4}, {"rid": "m", ...}, ...]})`` answered with
``a=simulcast:recv``). For every layer it runs an encoder at the encoding's
``scaleResolutionDownBy``, ``maxBitrate`` and ``maxFramerate`` and sends the layer's packets on
an SSRC of its own with the rid header extension (RFC 8852), its RTX stream tagged with
repaired-rid. The raw pictures of the sender's track (``track.frame_source``) are read once and
given to every layer, the newest winning when an encoder is behind.

Congestion control shares the bandwidth estimate among the layers, the smallest picture first
(see ``RtpTransport._share_layers``): a layer the estimate cannot feed is paused (it sends
nothing) and restarts with a key frame when the estimate allows. ``active: false`` in
``setParameters`` pauses a layer the same way. A key frame request (PLI/FIR) for one layer's
SSRC makes that layer's encoder send one.

Only raw pictures can be scaled: a track fed with encoded frames (``track.source.send``) is
not simulcast; its frames go out on the first layer.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any

import trio

from ..jsep.codecs import NegotiatedCodec, NegotiatedMedia
from ..rtp.codecs import DEFAULT_MAX_PAYLOAD_SIZE, packetize_rtp
from ..rtp.driver import RtpSender, RtpTransport
from .coding import CodecError, EncoderSettings, default_registry, max_video_bitrate

if TYPE_CHECKING:
    from .parameters import RTCRtpEncodingParameters
    from .rtp_objects import RTCRtpSender

__all__ = ["run_simulcast_sender"]

logger = logging.getLogger("trio_rtc.media")


class _Layer:
    """One simulcast encoding: its RTP sender, encoder state and RTP numbering."""

    def __init__(
        self, rid: str, rtp_sender: RtpSender, payload_type: int, keyframe_wanted: _Flag
    ) -> None:
        self.rid = rid
        self.rtp_sender = rtp_sender
        self.payload_type = payload_type
        self.sequence = secrets.randbelow(0x10000)
        #: Set by a PLI/FIR for this layer's SSRC (in the RTP task), and while (re)starting.
        self.keyframe_wanted = keyframe_wanted
        self.frames_sent = 0
        self.keyframes_sent = 0
        self.paused = False


class _Flag:
    """A key frame is wanted: set by the RTP task on PLI/FIR, cleared by the encoder task."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = True  # a layer starts with a key frame

    def set(self) -> None:
        self.value = True


def _encoding(sender: RTCRtpSender, rid: str) -> RTCRtpEncodingParameters | None:
    return next((e for e in sender._encodings if e.rid == rid), None)


async def run_simulcast_sender(
    sender: RTCRtpSender,
    rtp_transport: RtpTransport,
    mid: str,
    ssrc: int,
    negotiated: NegotiatedMedia,
    rids: tuple[str, ...],
    *,
    rtx_ssrc: int | None = None,
    max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Send ``sender``'s track as the simulcast layers ``rids`` of ``mid`` until the
    transceiver stops or the transport ends. The first layer uses ``ssrc`` and ``rtx_ssrc``;
    the others get random ones (RFC 8853 streams are named by rid, not by signaled SSRC)."""
    from .driver import _feedback, make_packetizer, sending_codec

    codec = sending_codec(negotiated)
    sender.set_negotiated(negotiated)
    feedback = _feedback(negotiated, codec)
    rtx_payload_types = {apt: pt for pt, apt in negotiated.rtx.items()}
    with_rtx = codec.payload_type in rtx_payload_types
    layers: list[_Layer] = []
    for index, rid in enumerate(rids):
        layer_ssrc = ssrc if index == 0 else secrets.randbits(32)
        layer_rtx = (rtx_ssrc if index == 0 else secrets.randbits(32)) if with_rtx else None
        wanted = _Flag()
        rtp_sender = rtp_transport.open_sender(
            mid,
            layer_ssrc,
            codec.clock_rate,
            on_keyframe_request=wanted.set,
            kind="video",
            nack="nack" in feedback,
            rtx_ssrc=layer_rtx,
            rtx_payload_types=rtx_payload_types,
            remb="goog-remb" in feedback,
            rid=rid,
        )
        layer = _Layer(rid, rtp_sender, codec.payload_type, wanted)
        layers.append(layer)
    _rank_layers(sender, layers)
    sender._attach_rtp(rtp_transport, layers[0].rtp_sender, mid)
    sender._rtp_layers = [layer.rtp_sender for layer in layers]
    sender._sending_codec = codec
    task_status.started()
    while not sender._stopping:
        track = sender.track
        scope = trio.CancelScope()
        sender._wakeup.add(scope)
        if track is not None:
            track._wakeup.add(scope)
        try:
            with scope:
                if track is None or track.frame_source is None or track.readyState != "live":
                    await trio.sleep_forever()  # until replaceTrack, or the transceiver stops
                assert track is not None
                await _send_layers(
                    sender, track, layers, codec, make_packetizer, max_payload_size, scope
                )
                await trio.sleep_forever()  # the source ended: wait for replaceTrack/stop
        finally:
            sender._wakeup.discard(scope)
            if track is not None:
                track._wakeup.discard(scope)
        if rtp_transport.state in ("closed", "failed"):
            return
        _rank_layers(sender, layers)  # parameters may have changed


def _rank_layers(sender: RTCRtpSender, layers: list[_Layer]) -> None:
    """Order the layers by picture size for the estimate's sharing, and give each its ceiling
    (``maxBitrate``, else the usual ceiling of its size for a 640x480 source scaled down)."""

    def scale(layer: _Layer) -> float:
        encoding = _encoding(sender, layer.rid)
        factor = encoding.scaleResolutionDownBy if encoding is not None else None
        return factor if factor is not None and factor >= 1 else 1.0

    for rank, layer in enumerate(sorted(layers, key=scale, reverse=True)):
        encoding = _encoding(sender, layer.rid)
        layer.rtp_sender.layer_rank = rank
        factor = scale(layer)
        ceiling = encoding.maxBitrate if encoding is not None else None
        layer.rtp_sender.layer_max_bitrate = ceiling or max_video_bitrate(
            int(1280 / factor), int(720 / factor)
        )


async def _send_layers(
    sender: RTCRtpSender,
    track: Any,
    layers: list[_Layer],
    codec: NegotiatedCodec,
    make_packetizer: Any,
    max_payload_size: int,
    scope: trio.CancelScope,
) -> None:
    """Read the track's raw pictures once and encode them for every layer until the source
    ends (returns) or ``scope`` is cancelled (new track, new parameters, stop)."""
    from .pipeline import (
        CodecStats,
        _blank_like,
        _codec_thread,
        _encode_in_thread,
        _Mailbox,
        _read_source,
        _scaled,
    )

    stats = CodecStats()
    sender.encode_stats = stats
    mailboxes = [_Mailbox(1, newest_wins=True, stats=CodecStats()) for _ in layers]
    producer = track.frame_source

    async def encode(layer: _Layer, mailbox: Any) -> None:
        from .driver import _Timeline

        packetizer = make_packetizer(codec)
        timeline = _Timeline(codec.clock_rate)
        try:
            encoder = default_registry.create_encoder(codec, EncoderSettings())
        except CodecError as exc:
            sender.encode_error = exc
            logger.warning("cannot encode simulcast layer %s: %s", layer.rid, exc)
            return
        worker = _codec_thread(f"trio_rtc simulcast {layer.rid}", "video")
        try:
            while True:
                try:
                    frame = await mailbox.get()
                except trio.EndOfChannel:
                    return
                encoding = _encoding(sender, layer.rid)
                target = layer.rtp_sender.target_bitrate
                if encoding is None or not encoding.active or target == 0:
                    layer.paused = True
                    layer.keyframe_wanted.set()  # resuming starts with a key frame
                    continue
                layer.paused = False
                if not track.enabled:
                    frame = _blank_like(frame)
                frame = _scaled(frame, encoding.scaleResolutionDownBy)
                ceiling = encoding.maxBitrate or max_video_bitrate(frame.width, frame.height)
                bitrate = ceiling if target is None else min(ceiling, target)
                encoder.set_target(bitrate=bitrate, framerate=encoding.maxFramerate)
                done = await _encode_in_thread(
                    encoder,
                    frame,
                    layer.keyframe_wanted.value,
                    worker,
                    stats,
                    f"simulcast layer {layer.rid}",
                )
                if done is None:
                    continue
                encoded, seconds = done
                for out in encoded:
                    if out.keyframe:
                        layer.keyframe_wanted.value = False
                    elif layer.keyframe_wanted.value:
                        continue  # the stream must (re)start at a key frame
                    stats.count(keyframe=out.keyframe, seconds=seconds, picture=frame)
                    timestamp = timeline.stamp(out, trio.current_time())
                    try:
                        packets = packetize_rtp(
                            packetizer,
                            out.data,
                            sequence_number=layer.sequence,
                            timestamp=timestamp,
                            payload_type=layer.payload_type,
                            ssrc=layer.rtp_sender.ssrc,
                            keyframe=out.keyframe,
                            max_payload_size=max_payload_size,
                        )
                    except ValueError as exc:
                        logger.warning("simulcast layer %s dropped a frame: %s", layer.rid, exc)
                        continue
                    layer.sequence = (layer.sequence + len(packets)) & 0xFFFF
                    try:
                        await layer.rtp_sender.send_packets(packets, keyframe=out.keyframe)
                    except Exception:
                        scope.cancel()  # the RTP transport ended
                        return
                    layer.frames_sent += 1
                    sender.frames_sent += 1
                    if out.keyframe:
                        layer.keyframes_sent += 1
                        sender.keyframes_sent += 1
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await worker.run(encoder.close)
                finally:
                    worker.close()

    async with trio.open_nursery() as nursery:
        for layer, mailbox in zip(layers, mailboxes, strict=True):
            nursery.start_soon(encode, layer, mailbox, name=f"trio_rtc.media.simulcast {layer.rid}")
        await _read_source(producer, *mailboxes)
