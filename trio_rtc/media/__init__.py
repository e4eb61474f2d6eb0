"""Media objects: tracks, streams, RTCRtpSender/Receiver/Transceiver, the tasks that move
encoded frames through an RtpTransport, and raw frames (``recv()``, :class:`VideoSource`,
:class:`AudioSource`, aiortc-style tracks) encoded and decoded in worker threads. See
``docs/media.md``.

Importing this package never imports PyAV: the codecs (``trio_rtc.media.av_codecs``, the
``media`` extra) load the first time a frame is encoded or decoded, and the helpers that need
PyAV (``player``, ``recorder``, ``relay``, ``sources``) are imported by name.
"""

from __future__ import annotations

from .coding import (
    CodecError,
    CodecRegistry,
    CodecUnavailableError,
    DecodeError,
    Decoder,
    Encoder,
    EncoderSettings,
    default_registry,
)
from .driver import (
    KEYFRAME_REQUEST_INTERVAL,
    make_depacketizer,
    make_packetizer,
    run_receiver,
    run_sender,
    sending_codec,
)
from .frames import AudioSource, FrameTrack, MediaStreamError, VideoSource
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
    "AudioSource",
    "CodecError",
    "CodecRegistry",
    "CodecUnavailableError",
    "DecodeError",
    "Decoder",
    "EncodedSource",
    "Encoder",
    "EncoderSettings",
    "FrameTrack",
    "KeyframeRequest",
    "MediaStream",
    "MediaStreamError",
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
    "VideoSource",
    "default_registry",
    "make_depacketizer",
    "make_packetizer",
    "run_receiver",
    "run_sender",
    "sending_codec",
]
