"""Media objects (issue 11, part 1): tracks, streams, RTCRtpSender/Receiver/Transceiver, and the
tasks that move encoded frames through an RtpTransport. See ``docs/media.md``.

Encoded media only: nothing here imports PyAV; raw-frame sources and sinks come later.
"""

from __future__ import annotations

from .driver import (
    KEYFRAME_REQUEST_INTERVAL,
    make_depacketizer,
    make_packetizer,
    run_receiver,
    run_sender,
    sending_codec,
)
from .parameters import (
    RTCRtcpParameters,
    RTCRtpCodecParameters,
    RTCRtpEncodingParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from .rtp_objects import (
    RTCRtpContributingSource,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpSynchronizationSource,
    RTCRtpTransceiver,
)
from .tracks import (
    EncodedSource,
    KeyframeRequest,
    MediaStream,
    MediaStreamTrack,
    MediaStreamTrackEvent,
    OutgoingFrame,
)

__all__ = [
    "KEYFRAME_REQUEST_INTERVAL",
    "EncodedSource",
    "KeyframeRequest",
    "MediaStream",
    "MediaStreamTrack",
    "MediaStreamTrackEvent",
    "OutgoingFrame",
    "RTCRtcpParameters",
    "RTCRtpCodecParameters",
    "RTCRtpContributingSource",
    "RTCRtpEncodingParameters",
    "RTCRtpHeaderExtensionParameters",
    "RTCRtpReceiveParameters",
    "RTCRtpReceiver",
    "RTCRtpSendParameters",
    "RTCRtpSender",
    "RTCRtpSynchronizationSource",
    "RTCRtpTransceiver",
    "make_depacketizer",
    "make_packetizer",
    "run_receiver",
    "run_sender",
    "sending_codec",
]
