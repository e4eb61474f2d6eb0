"""The dictionaries of ``getParameters()``/``setParameters()`` (webrtc-pc §5.2.1-§5.2.5).

Mutable attrs classes with the spec's member names, so the usual pattern reads as in a browser::

    params = sender.getParameters()
    params.encodings[0].maxBitrate = 300_000
    await sender.setParameters(params)
"""

from __future__ import annotations

import math

import attrs

from ..exceptions import InvalidModificationError
from ..jsep.codecs import NegotiatedMedia

__all__ = [
    "RTCRtcpParameters",
    "RTCRtpCodecParameters",
    "RTCRtpEncodingParameters",
    "RTCRtpHeaderExtensionParameters",
    "RTCRtpReceiveParameters",
    "RTCRtpSendParameters",
    "check_send_parameters",
    "codec_parameters",
]


@attrs.define
class RTCRtpEncodingParameters:
    """One encoding (webrtc-pc §5.2.2 ``RTCRtpEncodingParameters``). ``rid`` is read-only
    after ``addTransceiver``; the rest may change through ``setParameters``."""

    rid: str | None = None
    active: bool = True
    maxBitrate: int | None = None
    maxFramerate: float | None = None
    scaleResolutionDownBy: float | None = None


@attrs.frozen
class RTCRtpCodecParameters:
    """A negotiated codec (webrtc-pc §5.2.5 ``RTCRtpCodecParameters``)."""

    payloadType: int
    mimeType: str
    clockRate: int
    channels: int | None = None
    sdpFmtpLine: str | None = None


@attrs.frozen
class RTCRtpHeaderExtensionParameters:
    uri: str
    id: int
    encrypted: bool = False


@attrs.frozen
class RTCRtcpParameters:
    cname: str | None = None
    reducedSize: bool = False


@attrs.define
class RTCRtpReceiveParameters:
    """webrtc-pc §5.2.1 ``RTCRtpParameters`` as a receiver reports them."""

    headerExtensions: list[RTCRtpHeaderExtensionParameters] = attrs.Factory(list)
    rtcp: RTCRtcpParameters = attrs.Factory(RTCRtcpParameters)
    codecs: list[RTCRtpCodecParameters] = attrs.Factory(list)


@attrs.define
class RTCRtpSendParameters(RTCRtpReceiveParameters):
    """webrtc-pc §5.2.1 ``RTCRtpSendParameters``: adds ``transactionId`` and ``encodings``."""

    transactionId: str = ""
    encodings: list[RTCRtpEncodingParameters] = attrs.Factory(list)
    #: webrtc-extensions §6: what to give up first when the bandwidth is short for the
    #: picture: "maintain-framerate", "maintain-resolution" or "balanced".
    degradationPreference: str = "balanced"


def codec_parameters(
    negotiated: NegotiatedMedia | None,
) -> tuple[list[RTCRtpCodecParameters], list[RTCRtpHeaderExtensionParameters], RTCRtcpParameters]:
    """The codecs, header extensions and RTCP flags of a negotiated section, as the spec's
    dictionaries (empty before negotiation)."""
    if negotiated is None or negotiated.rejected:
        return [], [], RTCRtcpParameters()
    codecs = [
        RTCRtpCodecParameters(
            c.payload_type,
            f"{negotiated.kind}/{c.name}",
            c.clock_rate,
            c.channels,
            c.to_sdp().fmtp,
        )
        for c in negotiated.codecs
    ]
    extensions = [RTCRtpHeaderExtensionParameters(e.uri, e.id) for e in negotiated.extmaps]
    return codecs, extensions, RTCRtcpParameters(reducedSize=negotiated.rtcp_rsize)


def _check_encoding(kind: str, encoding: RTCRtpEncodingParameters) -> None:
    if not isinstance(encoding, RTCRtpEncodingParameters):
        raise TypeError(f"encodings hold RTCRtpEncodingParameters, not {encoding!r}")
    if not isinstance(encoding.active, bool):
        raise TypeError(f"active must be a bool, not {encoding.active!r}")
    bitrate = encoding.maxBitrate
    if bitrate is not None and (
        isinstance(bitrate, bool) or not isinstance(bitrate, int) or not 0 <= bitrate < 2**32
    ):
        # WebIDL unsigned long.
        raise TypeError(f"maxBitrate must be an integer in 0..2**32-1 or None, not {bitrate!r}")
    if kind == "audio":
        return  # §5.2 setParameters: the video-only members are ignored for audio
    for name in ("maxFramerate", "scaleResolutionDownBy"):
        value = getattr(encoding, name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise TypeError(f"{name} must be a finite number or None, not {value!r}")
    # These two are RangeErrors in webrtc-pc §5.2; trio_rtc.exceptions has no RangeError, and
    # ValueError is Python's name for the same thing.
    framerate = encoding.maxFramerate
    if framerate is not None and framerate < 0:
        raise ValueError(f"RangeError: maxFramerate must be >= 0, not {framerate!r}")
    scale = encoding.scaleResolutionDownBy
    if scale is not None and scale < 1.0:
        raise ValueError(f"RangeError: scaleResolutionDownBy must be >= 1.0, not {scale!r}")


#: webrtc-extensions RTCDegradationPreference.
DEGRADATION_PREFERENCES = ("maintain-framerate", "maintain-resolution", "balanced")


def check_send_parameters(
    kind: str, parameters: RTCRtpSendParameters, last: RTCRtpSendParameters
) -> None:
    """webrtc-pc §5.2 setParameters() steps against [[LastReturnedParameters]] ``last``:
    InvalidModificationError for a stale transactionId, a different number of encodings, a
    changed rid or a changed read-only member; TypeError/ValueError (RangeError) for values."""
    if not isinstance(parameters, RTCRtpSendParameters):
        raise TypeError(f"setParameters() takes RTCRtpSendParameters, not {parameters!r}")
    if parameters.transactionId != last.transactionId:
        raise InvalidModificationError(
            f"transactionId {parameters.transactionId!r} is not the one the last getParameters() "
            f"returned ({last.transactionId!r}); call getParameters() again and modify that"
        )
    if len(parameters.encodings) != len(last.encodings):
        raise InvalidModificationError(
            f"setParameters() cannot change the number of encodings ({len(last.encodings)} to "
            f"{len(parameters.encodings)}); that takes a new transceiver"
        )
    for new, old in zip(parameters.encodings, last.encodings, strict=True):
        _check_encoding(kind, new)
        if new.rid != old.rid:
            raise InvalidModificationError(
                f"the rid of an encoding is read-only ({old.rid!r} changed to {new.rid!r})"
            )
    if parameters.degradationPreference not in DEGRADATION_PREFERENCES:
        raise TypeError(
            f"degradationPreference must be one of {', '.join(DEGRADATION_PREFERENCES)}, "
            f"not {parameters.degradationPreference!r}"
        )
    for name in ("codecs", "headerExtensions", "rtcp"):
        if getattr(parameters, name) != getattr(last, name):
            raise InvalidModificationError(
                f"{name} is read-only in setParameters(); expected it as getParameters() "
                "returned it"
            )
