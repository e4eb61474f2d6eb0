"""RTCRtpSender, RTCRtpReceiver and RTCRtpTransceiver (webrtc-pc §5.2, §5.3, §5.4).

These hold the W3C state and rules. Media moves through the driver-side tasks of
:mod:`trio_rtc.media.driver` (``run_sender``/``run_receiver``), which the peer connection will
start in its nursery once a section is negotiated; until they run, a sender holds its track and
parameters and a receiver's track stays muted. The methods in snake_case under "for the peer
connection" are that seam (mid, transport, negotiated codecs, stop negotiated).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import trio

from ..exceptions import InvalidStateError
from ..jsep.codecs import (
    NegotiatedCodec,
    NegotiatedMedia,
    RTCRtpCapabilities,
    RTCRtpCodecCapability,
    check_codec_preferences,
    get_capabilities,
)
from ..sdp.media import MAX_RID_LENGTH, is_rid_id
from ..stats import RTCStatsReport
from .dtmf import RTCDTMFSender
from .frames import FrameTrackLike
from .parameters import (
    RTCRtpEncodingParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
    _check_encoding,
    check_send_parameters,
    codec_parameters,
)
from .tracks import MediaStreamTrack, _Wakeup, as_media_track

if TYPE_CHECKING:
    from ..rtp.driver import RtpSender, RtpTransport
    from .pipeline import CodecStats

__all__ = [
    "RTCRtpContributingSource",
    "RTCRtpReceiver",
    "RTCRtpSender",
    "RTCRtpSynchronizationSource",
    "RTCRtpTransceiver",
    "RTCRtpTransceiverDirection",
    "send_encodings",
]

RTCRtpTransceiverDirection = str  # "sendrecv" | "sendonly" | "recvonly" | "inactive" | "stopped"
_SETTABLE_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
#: webrtc-pc §5.3.2: contributing/synchronization sources are kept for 10 seconds.
SOURCE_LIFETIME_MS = 10_000
#: webrtc-pc §5.3 jitterBufferTarget: 0..4000 ms.
MAX_JITTER_BUFFER_TARGET = 4000.0


#: webrtc-pc §5.1 addTransceiver "maxN": the most encodings (simulcast streams) a sender of
#: the kind takes; longer sendEncodings are truncated, as the spec says. Audio has no simulcast.
MAX_SEND_ENCODINGS = {"audio": 1, "video": 4}
_ENCODING_MEMBERS = frozenset(attrs.fields_dict(RTCRtpEncodingParameters))


def _encoding_of(item: object) -> RTCRtpEncodingParameters:
    if isinstance(item, RTCRtpEncodingParameters):
        return attrs.evolve(item)
    if isinstance(item, Mapping):
        unknown = sorted(str(k) for k in item if k not in _ENCODING_MEMBERS)
        if unknown:
            raise TypeError(
                f"RTCRtpEncodingParameters has no member(s) {unknown}; "
                f"expected some of {sorted(_ENCODING_MEMBERS)}"
            )
        return RTCRtpEncodingParameters(**item)
    raise TypeError(f"sendEncodings holds RTCRtpEncodingParameters or dicts, not {item!r}")


def send_encodings(
    kind: str, sendEncodings: Sequence[RTCRtpEncodingParameters | Mapping[str, Any]] | None
) -> list[RTCRtpEncodingParameters]:
    """The [[SendEncodings]] of a new sender: webrtc-pc §5.1 addTransceiver's checks of
    ``sendEncodings`` (dicts or RTCRtpEncodingParameters), in the spec's order.

    TypeError: a rid that is not an RFC 8851 §10 rid-id (letters, digits, ``-``, ``_``; at most
    255 characters here), rids on some encodings but not all, a repeated rid, an unknown
    member. RangeError (``ValueError``, as for setParameters): ``scaleResolutionDownBy`` below
    1.0, ``maxFramerate`` below 0. Then: the video-only members are removed for audio; more
    than :data:`MAX_SEND_ENCODINGS` encodings are truncated; video encodings without any
    ``scaleResolutionDownBy`` get 2^(n - index - 1) (4:2:1 for three), missing ones 1.0; a lone
    encoding loses its rid (simulcast needs two)."""
    items: object = sendEncodings if sendEncodings is not None else ()
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
        raise TypeError(f"sendEncodings must be a sequence of encodings, not {sendEncodings!r}")
    encodings = [_encoding_of(item) for item in items]
    rids = [e.rid for e in encodings if e.rid is not None]
    for rid in rids:
        if not isinstance(rid, str) or not is_rid_id(rid):
            raise TypeError(
                f"sendEncodings rid {rid!r} is not an RFC 8851 rid-id: 1 to {MAX_RID_LENGTH} "
                "ASCII letters, digits, '-' or '_'"
            )
    if rids and len(rids) != len(encodings):
        raise TypeError(
            f"sendEncodings: {len(rids)} of {len(encodings)} encodings have a rid; with "
            "simulcast every encoding needs one"
        )
    repeated = sorted({rid for rid in rids if rids.count(rid) > 1})
    if repeated:
        raise TypeError(f"sendEncodings: rid {repeated[0]!r} is used by more than one encoding")
    if kind == "audio":
        for encoding in encodings:
            encoding.maxFramerate = encoding.scaleResolutionDownBy = None
    for encoding in encodings:
        _check_encoding(kind, encoding)
    encodings = encodings[: MAX_SEND_ENCODINGS.get(kind, 1)] or [RTCRtpEncodingParameters()]
    if kind == "video":
        unscaled = all(e.scaleResolutionDownBy is None for e in encodings)
        for index, encoding in enumerate(encodings):
            if unscaled:
                encoding.scaleResolutionDownBy = float(2 ** (len(encodings) - index - 1))
            elif encoding.scaleResolutionDownBy is None:
                encoding.scaleResolutionDownBy = 1.0
    if len(encodings) == 1:
        encodings[0].rid = None
    return encodings


def _capabilities(kind: str) -> RTCRtpCapabilities | None:
    # webrtc-pc §5.2 getCapabilities(): null for a kind the UA does not know.
    if kind not in ("audio", "video"):
        return None
    return get_capabilities(kind)


def _now_ms() -> float:
    return time.time() * 1000.0


class RTCRtpSender:
    """Sends one track (webrtc-pc §5.2). ``track`` may be None (a ``recvonly`` transceiver, or
    after ``replaceTrack(None)``). An audio sender has an RTCDTMFSender in ``dtmf``.
    """

    def __init__(
        self,
        trackOrKind: MediaStreamTrack | str,
        *,
        sendEncodings: Sequence[RTCRtpEncodingParameters | Mapping[str, Any]] | None = None,
        streams: Sequence[Any] = (),
    ) -> None:
        if isinstance(trackOrKind, MediaStreamTrack):
            self._track: MediaStreamTrack | None = trackOrKind
            self._kind = trackOrKind.kind
        elif trackOrKind in ("audio", "video"):
            self._track = None
            self._kind = trackOrKind
        else:
            raise TypeError(f"a sender needs a track or 'audio'/'video', not {trackOrKind!r}")
        self._encodings = send_encodings(self._kind, sendEncodings)
        self._stream_ids = [getattr(s, "id", s) for s in streams]
        self._transport: Any = None
        self._negotiated: NegotiatedMedia | None = None
        self._last_returned: RTCRtpSendParameters | None = None
        self._stopping = False
        self._wakeup = _Wakeup()
        self._rtp_sender: RtpSender | None = None
        #: Simulcast: the RTP sender of every layer (the first is ``_rtp_sender``).
        self._rtp_layers: list[RtpSender] = []
        self._degradation_preference = "balanced"
        #: The encoder's frame rate/resolution adaptation (``qualityLimitation*`` stats),
        #: once run_encoder runs.
        self.adaptation: Any = None
        self._rtp_transport: RtpTransport | None = None
        self._mid: str | None = None
        #: Set by the RTCRtpTransceiver that made this sender (DTMF reads its direction).
        self._transceiver: RTCRtpTransceiver | None = None
        self._dtmf = RTCDTMFSender(self) if self._kind == "audio" else None
        #: Frames taken from the source and sent (the sender's own counters).
        self.frames_sent = 0
        self.keyframes_sent = 0
        self.frames_dropped = 0
        #: The codec run_sender sends with (its payload type is the outbound-rtp codecId's).
        self._sending_codec: NegotiatedCodec | None = None
        #: The encoder's counters while a track fed by raw frames is sent (None otherwise).
        self.encode_stats: CodecStats | None = None
        #: Why the track's raw frames cannot be encoded (no encoder for the codec), if so.
        self.encode_error: Exception | None = None

    def __repr__(self) -> str:
        return f"<RTCRtpSender {self._kind} track={self._track!r}>"

    # --- W3C ----------------------------------------------------------------------------------

    @property
    def track(self) -> MediaStreamTrack | None:
        return self._track

    @property
    def transport(self) -> Any:
        """The RTCDtlsTransport media goes over, or None before negotiation (webrtc-pc §5.2)."""
        return self._transport

    @property
    def dtmf(self) -> RTCDTMFSender | None:
        """The RTCDTMFSender of an audio sender, None for video (webrtc-pc §5.2)."""
        return self._dtmf

    @staticmethod
    def getCapabilities(kind: str) -> RTCRtpCapabilities | None:
        return _capabilities(kind)

    async def replaceTrack(self, withTrack: MediaStreamTrack | FrameTrackLike | None) -> None:
        """Send ``withTrack`` instead, without renegotiation (webrtc-pc §5.2 replaceTrack())."""
        if withTrack is not None:
            media_track = as_media_track(withTrack)
            if media_track is None:
                raise TypeError(
                    "replaceTrack() takes a MediaStreamTrack, a frame track (kind and async "
                    f"recv() returning av frames) or None, not {withTrack!r}"
                )
            withTrack = media_track
        if withTrack is not None and withTrack.kind != self._kind:
            raise TypeError(
                f"replaceTrack() needs a {self._kind} track for this {self._kind} sender, "
                f"not a {withTrack.kind} one"
            )
        if self._stopping:
            raise InvalidStateError("the transceiver of this sender is stopped")
        await trio.lowlevel.checkpoint()
        if self._stopping:  # stopped while we yielded
            raise InvalidStateError("the transceiver of this sender is stopped")
        self._track = withTrack
        self._wakeup.wake()  # the sending task switches to the new track's source

    def getParameters(self) -> RTCRtpSendParameters:
        """webrtc-pc §5.2 getParameters(): a copy with a fresh ``transactionId``, remembered as
        [[LastReturnedParameters]] until the current task yields (the spec queues a task that
        clears it), so a later ``setParameters`` must be given these."""
        codecs, extensions, rtcp = codec_parameters(self._negotiated)
        if self._rtp_transport is not None:
            rtcp = attrs.evolve(rtcp, cname=self._rtp_transport.cname)
        parameters = RTCRtpSendParameters(
            headerExtensions=extensions,
            rtcp=rtcp,
            codecs=codecs,
            transactionId=secrets.token_hex(8),
            encodings=[attrs.evolve(e) for e in self._encodings],
            degradationPreference=self._degradation_preference,
        )
        self._last_returned = attrs.evolve(
            parameters, encodings=[attrs.evolve(e) for e in parameters.encodings]
        )
        transaction = parameters.transactionId
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass  # outside trio: no task queue to emulate; it stays until setParameters
        else:
            token.run_sync_soon(self._forget_parameters, transaction)
        return parameters

    def _forget_parameters(self, transaction: str) -> None:
        last = self._last_returned
        if last is not None and last.transactionId == transaction:
            self._last_returned = None

    async def setParameters(self, parameters: RTCRtpSendParameters) -> None:
        """webrtc-pc §5.2 setParameters(): InvalidStateError when the transceiver is stopping
        or there is no [[LastReturnedParameters]] (getParameters() was not called in this turn
        of the task); InvalidModificationError for a changed transactionId, encoding count, rid
        or read-only member. ``active=False`` stops sending; ``maxBitrate``, ``maxFramerate``
        and ``scaleResolutionDownBy`` are kept for whoever encodes (the source's producer)."""
        if self._stopping:
            raise InvalidStateError("the transceiver of this sender is stopped")
        last = self._last_returned
        if last is None:
            raise InvalidStateError(
                "setParameters() needs the parameters of a getParameters() call made in the "
                "same turn of the task (webrtc-pc §5.2 [[LastReturnedParameters]])"
            )
        check_send_parameters(self._kind, parameters, last)
        self._last_returned = None
        self._encodings = [attrs.evolve(e) for e in parameters.encodings]
        self._degradation_preference = parameters.degradationPreference
        self._wakeup.wake()
        await trio.lowlevel.checkpoint()

    async def getStats(self) -> RTCStatsReport:
        """An ``outbound-rtp`` entry for this sender (webrtc-stats §8.4): the RTP transport's
        counters once ``run_sender`` attached it, this sender's frame counts always."""
        await trio.lowlevel.checkpoint()
        stats: dict[str, Any] = {
            "type": "outbound-rtp",
            "timestamp": _now_ms(),
            "kind": self._kind,
            "mid": self._mid,
            "framesSent": self.frames_sent,
            "keyFramesEncoded": self.keyframes_sent,
            "framesDropped": self.frames_dropped,
            "active": bool(self._encodings and self._encodings[0].active),
        }
        rtp = self._rtp_sender
        if rtp is not None:
            s = rtp.statistics
            stats.update(
                ssrc=rtp.ssrc,
                packetsSent=s.packets_sent,
                bytesSent=s.octets_sent,
                roundTripTime=s.round_trip_time,
                pliCount=rtp.keyframe_requests,
                packetsDropped=rtp.packets_dropped,
            )
        stats_id = f"OT{self._mid}_{rtp.ssrc if rtp else 0}"
        stats["id"] = stats_id
        return RTCStatsReport({stats_id: stats})

    # --- trio_rtc additions -------------------------------------------------------------------

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def stream_ids(self) -> list[str]:
        return list(self._stream_ids)

    @property
    def encodings(self) -> list[RTCRtpEncodingParameters]:
        """The current encodings (copies; change them with setParameters)."""
        return [attrs.evolve(e) for e in self._encodings]

    # --- for the peer connection and run_sender ---------------------------------------------

    def set_transport(self, transport: Any) -> None:
        self._transport = transport

    def set_negotiated(self, negotiated: NegotiatedMedia | None) -> None:
        self._negotiated = negotiated

    @property
    def simulcast_rids(self) -> tuple[str, ...]:
        """The rids of the encodings, which only simulcast (several encodings) has."""
        return tuple(e.rid for e in self._encodings if e.rid is not None)

    def keep_simulcast_rids(self, rids: Sequence[str]) -> None:
        """An applied answer negotiated the simulcast streams ``rids`` (webrtc-pc §4.4.1.5 "set
        the description", [[SendEncodings]] longer than one): the other encodings are removed;
        if none is left, only the first stays, without its rid. The encoding count changes, so
        an earlier getParameters() result can no longer be set."""
        current = self.simulcast_rids
        if len(self._encodings) < 2 or tuple(rids) == current:
            return
        wanted = set(rids)
        kept = [e for e in self._encodings if e.rid in wanted]
        self._encodings = kept or [attrs.evolve(self._encodings[0], rid=None)]
        self._last_returned = None
        self._wakeup.wake()

    def _attach_rtp(self, transport: RtpTransport, rtp_sender: RtpSender, mid: str) -> None:
        self._rtp_transport = transport
        self._rtp_sender = rtp_sender
        self._mid = mid

    def _keyframe_requested(self) -> None:
        """The peer sent PLI/FIR (called in the RTP task, must not block)."""
        track = self._track
        if track is not None and track.source is not None:
            track.source.keyframe_requested.set()

    def _stop(self) -> None:
        self._stopping = True
        self._wakeup.wake()


@attrs.frozen
class RTCRtpContributingSource:
    """webrtc-pc §5.3.1: ``timestamp`` is wall-clock ms of the last frame delivered from this
    source, ``audioLevel`` 0..1 (linear) when the RFC 6464 extension is present."""

    source: int
    timestamp: float
    rtpTimestamp: int
    audioLevel: float | None = None


@attrs.frozen
class RTCRtpSynchronizationSource(RTCRtpContributingSource):
    """webrtc-pc §5.3.1: the same members, for the SSRC of the stream."""


_S = TypeVar("_S", bound=RTCRtpContributingSource)


@attrs.define
class InboundFrameCounts:
    """What run_receiver made of one remote SSRC: complete frames assembled (``received``),
    those the track accepted (``delivered``) and the keyframes among them, and the payload
    type of the last frame."""

    payload_type: int
    received: int = 0
    delivered: int = 0
    keyframes_delivered: int = 0


class RTCRtpReceiver:
    """Receives one m-section's media (webrtc-pc §5.3). Its ``track`` is a remote
    MediaStreamTrack made with it: muted until media arrives, ended when the transceiver
    stops or the transport ends."""

    def __init__(self, kind: str, *, track_id: str | None = None) -> None:
        if kind not in ("audio", "video"):
            raise TypeError(f"kind must be 'audio' or 'video', not {kind!r}")
        self._kind = kind
        self._track = MediaStreamTrack(kind, f"remote {kind}", remote=True, id=track_id)
        self._transport: Any = None
        self._negotiated: NegotiatedMedia | None = None
        self._jitter_buffer_target: float | None = None
        self._ssrcs: dict[int, RTCRtpSynchronizationSource] = {}
        self._csrcs: dict[int, RTCRtpContributingSource] = {}
        self._rtp_transport: RtpTransport | None = None
        self._mid: str | None = None
        self._wakeup = _Wakeup()
        self._stopped = False
        #: Packets run_receiver could not use: a payload type without a depacketizer, or a
        #: malformed RED (RFC 2198) payload.
        self.packets_unhandled = 0
        #: Per remote SSRC, the audio frames run_receiver recovered from the redundancy of RED
        #: packets because their own packet was lost.
        self.red_frames_recovered: dict[int, int] = {}
        #: Per remote SSRC, frames run_receiver assembled and delivered (inbound-rtp stats).
        self.frame_counts: dict[int, InboundFrameCounts] = {}
        #: Keyframe requests (PLI) run_receiver handed to the RTP task for this mid.
        self.keyframe_requests_sent = 0
        #: Per remote SSRC: (jitterBufferDelay seconds, jitterBufferEmittedCount) of its
        #: frame assembler (the video jitter buffer).
        self._jitter_buffer: dict[int, tuple[float, int]] = {}
        #: The decoder's counters once the track is read with ``recv()`` (None before).
        self.decode_stats: CodecStats | None = None
        #: Simulcast (RFC 8853): one remote track per negotiated rid, and the rid whose
        #: frames ``track`` carries.
        self._layers: dict[str, MediaStreamTrack] = {}
        self._selected_rid: str | None = None

    def __repr__(self) -> str:
        return f"<RTCRtpReceiver {self._kind} track={self._track.id}>"

    # --- simulcast (a trio_rtc addition: browsers do not receive simulcast, SFUs do) ----------

    def layer_tracks(self) -> dict[str, MediaStreamTrack]:
        """When the peer sends simulcast (RFC 8853), one remote track per rid we accepted, in
        the peer's order; each can be read (``recv()``, ``recv_encoded()``) on its own. Empty
        without simulcast. ``track`` carries the :attr:`selected_layer`."""
        return dict(self._layers)

    @property
    def selected_layer(self) -> str | None:
        """The rid whose frames :attr:`track` carries (the first negotiated one unless
        :meth:`select_layer` chose another); None without simulcast."""
        return self._selected_rid

    def select_layer(self, rid: str) -> None:
        """Make :attr:`track` carry simulcast layer ``rid`` from its next key frame on (one
        is asked for)."""
        if rid not in self._layers:
            known = ", ".join(self._layers) or "none (the peer sends no simulcast)"
            raise ValueError(f"no simulcast layer {rid!r}; the layers are {known}")
        if rid != self._selected_rid:
            self._selected_rid = rid
            self._track.request_keyframe()

    def _set_layers(self, rids: Sequence[str]) -> None:
        for rid in rids:
            if rid not in self._layers:
                self._layers[rid] = MediaStreamTrack(
                    self._kind, f"remote {self._kind} {rid}", remote=True
                )
        for rid in [r for r in self._layers if r not in rids]:
            self._layers.pop(rid)._end(fire=True)
        if self._selected_rid not in self._layers:
            self._selected_rid = next(iter(rids), None)

    @property
    def track(self) -> MediaStreamTrack:
        return self._track

    @property
    def transport(self) -> Any:
        return self._transport

    @staticmethod
    def getCapabilities(kind: str) -> RTCRtpCapabilities | None:
        return _capabilities(kind)

    def getParameters(self) -> RTCRtpReceiveParameters:
        codecs, extensions, rtcp = codec_parameters(self._negotiated)
        return RTCRtpReceiveParameters(headerExtensions=extensions, rtcp=rtcp, codecs=codecs)

    @property
    def jitterBufferTarget(self) -> float | None:
        """webrtc-pc §5.3: the application's wish for the jitter buffer's delay, in ms (None:
        the UA decides). Audio: the playout buffer's delay never goes below it. Video frames
        are decoded as soon as they are complete (and repaired), so it does not delay them."""
        return self._jitter_buffer_target

    @jitterBufferTarget.setter
    def jitterBufferTarget(self, value: float | None) -> None:
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"jitterBufferTarget must be a number of ms or None, not {value!r}")
            if not 0 <= value <= MAX_JITTER_BUFFER_TARGET:
                # RangeError in the spec; trio_rtc.exceptions has none, ValueError is Python's.
                raise ValueError(
                    f"RangeError: jitterBufferTarget must be within 0..4000 ms, not {value!r}"
                )
            value = float(value)
        self._jitter_buffer_target = value

    def getSynchronizationSources(self) -> list[RTCRtpSynchronizationSource]:
        return self._recent(self._ssrcs)

    def sender_time(self, rtp_timestamp: int) -> float | None:
        """Lip sync: the sender's wall-clock time (Unix seconds) of a received frame's RTP
        ``timestamp``, from the latest RTCP sender report of the stream that carries it
        (RFC 3550 §6.4.1); None before the first report. Frames of two tracks from one sender
        play in sync when their ``sender_time`` values line up."""
        transport = self._rtp_transport
        if transport is None:
            return None
        for ssrc in sorted(self._ssrcs, key=lambda s: self._ssrcs[s].timestamp, reverse=True):
            statistics = transport.inbound.get(ssrc)
            if statistics is not None:
                return statistics.rtp_to_sender_seconds(rtp_timestamp)
        return None

    def getContributingSources(self) -> list[RTCRtpContributingSource]:
        return self._recent(self._csrcs)

    def _recent(self, sources: dict[int, _S]) -> list[_S]:
        # §5.3.2: only sources whose last frame was delivered in the last 10 seconds.
        horizon = _now_ms() - SOURCE_LIFETIME_MS
        for key in [k for k, s in sources.items() if s.timestamp < horizon]:
            del sources[key]
        return sorted(sources.values(), key=lambda s: -s.timestamp)

    async def getStats(self) -> RTCStatsReport:
        """``inbound-rtp`` entries (webrtc-stats §8.2) for the SSRCs of this receiver's mid."""
        await trio.lowlevel.checkpoint()
        report: dict[str, dict[str, Any]] = {}
        track = self._track
        rtp = self._rtp_transport
        if rtp is not None and self._mid is not None:
            snapshot = rtp.stats()
            for ssrc, s in snapshot["inbound"].items():
                if s["mid"] != self._mid:
                    continue
                stats_id = f"IT{self._mid}_{ssrc}"
                report[stats_id] = {
                    "type": "inbound-rtp",
                    "id": stats_id,
                    "timestamp": _now_ms(),
                    "kind": self._kind,
                    "mid": self._mid,
                    "ssrc": ssrc,
                    "trackIdentifier": track.id,
                    "packetsReceived": s["packets_received"],
                    "bytesReceived": s["bytes_received"],
                    "packetsLost": s["packets_lost"],
                    "jitter": s["jitter"],
                    "framesReceived": track.frames_received,
                    "framesDropped": track.frames_dropped,
                    "jitterBufferTarget": self._jitter_buffer_target,
                }
        return RTCStatsReport(report)

    # --- for the peer connection and run_receiver -------------------------------------------

    @property
    def kind(self) -> str:
        return self._kind

    def set_transport(self, transport: Any) -> None:
        self._transport = transport

    def set_negotiated(self, negotiated: NegotiatedMedia | None) -> None:
        self._negotiated = negotiated

    def _attach_rtp(self, transport: RtpTransport, mid: str) -> None:
        self._rtp_transport = transport
        self._mid = mid

    def _saw_frame(
        self, ssrc: int, csrcs: Sequence[int], rtp_timestamp: int, audio_level: float | None
    ) -> None:
        """A frame of ``ssrc`` was delivered to the track (webrtc-pc §5.3.2: the sources are
        updated as frames are delivered, not as packets arrive)."""
        now = _now_ms()
        self._ssrcs[ssrc] = RTCRtpSynchronizationSource(ssrc, now, rtp_timestamp, audio_level)
        for csrc in csrcs:
            # RFC 6465 mixer-to-client levels are not read: a CSRC has no level here.
            self._csrcs[csrc] = RTCRtpContributingSource(csrc, now, rtp_timestamp)

    def _count_frame(self, ssrc: int, payload_type: int, keyframe: bool, delivered: bool) -> None:
        counts = self.frame_counts.get(ssrc)
        if counts is None:
            counts = self.frame_counts[ssrc] = InboundFrameCounts(payload_type)
        counts.payload_type = payload_type
        counts.received += 1
        if delivered:
            counts.delivered += 1
            counts.keyframes_delivered += int(keyframe)

    def _stop(self) -> None:
        # webrtc-pc §5.4 "stop sending and receiving": the receiver's track is ended, and as
        # its source (the remote stream) ended rather than stop() being called, `ended` fires.
        self._stopped = True
        self._track._end(fire=True)
        self._wakeup.wake()


class RTCRtpTransceiver:
    """A sender and a receiver sharing one m-section (webrtc-pc §5.4).

    ``on_negotiation_needed``: what the peer connection gives to hear that a change needs an
    offer/answer (direction changed, stopped). ``mid`` and ``currentDirection`` are set by the
    pc as descriptions are applied (:meth:`set_mid`, :meth:`set_current_direction`)."""

    def __init__(
        self,
        trackOrKind: MediaStreamTrack | str,
        *,
        direction: str = "sendrecv",
        sendEncodings: Sequence[RTCRtpEncodingParameters | Mapping[str, Any]] | None = None,
        streams: Sequence[Any] = (),
        on_negotiation_needed: Callable[[], object] | None = None,
    ) -> None:
        if direction not in _SETTABLE_DIRECTIONS:
            raise TypeError(
                f"direction must be one of {', '.join(_SETTABLE_DIRECTIONS)}, not {direction!r}"
            )
        self._sender = RTCRtpSender(trackOrKind, sendEncodings=sendEncodings, streams=streams)
        self._receiver = RTCRtpReceiver(self._sender.kind)
        self._sender._transceiver = self
        self._direction = direction
        self._current_direction: str | None = None
        self._mid: str | None = None
        self._stopping = False
        self._stopped = False
        self._codec_preferences: list[RTCRtpCodecCapability] = []
        #: Called after setCodecPreferences() (the pc copies them to its JSEP record; they
        #: take effect at the next negotiation and, as webrtc-pc §5.4 says, fire nothing).
        self.on_codec_preferences: Callable[[], object] | None = None
        self._on_negotiation_needed = on_negotiation_needed

    def __repr__(self) -> str:
        return f"<RTCRtpTransceiver {self.kind} mid={self._mid} {self.direction}>"

    @property
    def mid(self) -> str | None:
        return self._mid

    @property
    def sender(self) -> RTCRtpSender:
        return self._sender

    @property
    def receiver(self) -> RTCRtpReceiver:
        return self._receiver

    @property
    def direction(self) -> str:
        """[[Direction]]; "stopped" once stop() was called (as browsers report it)."""
        return "stopped" if self._stopping else self._direction

    @direction.setter
    def direction(self, value: str) -> None:
        # webrtc-pc §5.4 direction setter: an enum value (WebIDL TypeError otherwise, and
        # "stopped" may only be reached through stop()), refused once stopping.
        if value == "stopped" or value not in _SETTABLE_DIRECTIONS:
            raise TypeError(
                f"direction must be one of {', '.join(_SETTABLE_DIRECTIONS)} "
                f"(use stop() to stop), not {value!r}"
            )
        if self._stopping:
            raise InvalidStateError("this transceiver is stopped; its direction cannot change")
        if value == self._direction:
            return
        self._direction = value
        self._negotiation_needed()

    @property
    def currentDirection(self) -> str | None:
        """The direction last negotiated; None before, "stopped" once stopped."""
        return "stopped" if self._stopped else self._current_direction

    def stop(self) -> None:
        """webrtc-pc §5.4 stop(): the sender stops sending, the receiver's track ends, the
        next offer rejects the m-section. Idempotent."""
        if self._stopping:
            return
        self._sender._stop()
        self._receiver._stop()
        self._stopping = True
        self._negotiation_needed()

    def setCodecPreferences(self, codecs: Sequence[RTCRtpCodecCapability]) -> None:
        """webrtc-pc §5.4 setCodecPreferences(): an empty list resets to the defaults; every
        entry must be one of getCapabilities(kind) (InvalidModificationError otherwise)."""
        items: object = codecs
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            raise TypeError(f"setCodecPreferences() takes a sequence of codecs, not {codecs!r}")
        for codec in codecs:
            if not isinstance(codec, RTCRtpCodecCapability):
                raise TypeError(f"codec preferences are RTCRtpCodecCapability, not {codec!r}")
        self._codec_preferences = check_codec_preferences(codecs, get_capabilities(self.kind))
        if self.on_codec_preferences is not None:
            self.on_codec_preferences()  # the pc's next offer or answer uses them

    # --- trio_rtc additions and the seam for the peer connection -----------------------------

    @property
    def kind(self) -> str:
        return self._sender.kind

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def codec_preferences(self) -> list[RTCRtpCodecCapability]:
        return list(self._codec_preferences)

    def set_mid(self, mid: str | None) -> None:
        self._mid = mid

    def set_current_direction(self, direction: str | None) -> None:
        self._current_direction = direction

    def set_stopped(self) -> None:
        """An applied description rejected the m-section (webrtc-pc §5.4 "stop the
        RTCRtpTransceiver"): stopping becomes stopped."""
        if not self._stopping:
            self._sender._stop()
            self._receiver._stop()
            self._stopping = True
        self._stopped = True

    def _negotiation_needed(self) -> None:
        if self._on_negotiation_needed is not None:
            self._on_negotiation_needed()
