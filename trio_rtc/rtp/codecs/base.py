"""The common interface of the RTP packetizers and depacketizers.

A :class:`Packetizer` turns one encoded frame into RTP payloads; :func:`packetize_rtp` wraps those
payloads in :class:`~trio_rtc.rtp.packet.RtpPacket` objects. A :class:`Depacketizer` knows one
payload format: :meth:`Depacketizer.inspect_untrusted` reads what a single payload says about frame
boundaries, and :meth:`Depacketizer.assemble_untrusted` turns the payloads of one whole frame back
into the codec's bitstream. The frame assembler (:mod:`trio_rtc.rtp.codecs.assembler`) owns the
codec-independent part: ordering, loss, completeness and memory bounds.

Pure: no trio, no clock, no I/O. Methods that read payloads from the network raise
:class:`~trio_rtc.rtp.errors.RtpError` and nothing else; wrong arguments from our own side (a
frame too large for packetization-mode 0, a zero maximum payload size) raise ``ValueError``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import ClassVar, NamedTuple

import attrs

from ..packet import RtpPacket

__all__ = [
    "DEFAULT_MAX_PAYLOAD_SIZE",
    "DEFAULT_RTP_PACKET_SIZE",
    "HEADER_EXTENSION_ALLOWANCE",
    "RTP_HEADER_SIZE",
    "VIDEO_CLOCK_RATE",
    "Depacketizer",
    "EncodedFrame",
    "Packetizer",
    "PayloadInfo",
    "packetize_rtp",
    "split_evenly",
]

# The RTP packet budget before SRTP. 1200 bytes plus the 10-byte SRTP tag and the 2-byte RTX
# original sequence number still fit the 1280-byte IPv6 minimum MTU after the IP/UDP headers
# (and leave TURN channel framing some room), so no packet needs IP fragmentation anywhere.
DEFAULT_RTP_PACKET_SIZE = 1200
RTP_HEADER_SIZE = 12
# Room for RFC 8285 header extensions: the 4-byte block header plus MID, RID, abs-send-time,
# transport-cc, audio level and video orientation in the one-byte form, rounded up.
HEADER_EXTENSION_ALLOWANCE = 40
DEFAULT_MAX_PAYLOAD_SIZE = DEFAULT_RTP_PACKET_SIZE - RTP_HEADER_SIZE - HEADER_EXTENSION_ALLOWANCE
# Every video payload format here uses a 90 kHz RTP clock (RFC 7741 §4.1, RFC 6184 §5.1, ...).
VIDEO_CLOCK_RATE = 90_000


def _data_repr(data: bytes) -> str:
    return f"<{len(data)} bytes>"


@attrs.frozen(slots=True)
class EncodedFrame:
    """One frame (video) or one packet's worth of audio, as the decoder wants it.

    ``data`` is the codec's own bitstream: Annex B for H.264, a low-overhead OBU temporal unit for
    AV1, the raw frame for VP8/VP9, the Opus packet or the G.711 samples. ``first_sequence_number``
    and ``last_sequence_number`` are the 16-bit wire values of the packets that carried it.

    ``complete`` is False only for the loss reports that a
    :class:`~trio_rtc.rtp.codecs.assembler.FrameAssembler` emits when asked to
    (``emit_incomplete=True``): a frame that will never complete, with ``data`` empty because the
    bytes of a frame with holes are no use to a decoder. Its sequence numbers span the packets
    that did arrive, and ``keyframe`` says whether one of them showed it was a keyframe.
    """

    data: bytes = attrs.field(repr=_data_repr)
    timestamp: int
    keyframe: bool
    first_sequence_number: int
    last_sequence_number: int
    complete: bool = True
    #: The codec's MIME type ("video/VP8"), when the receiver knows it.
    codec: str | None = None
    #: When the frame's last packet arrived (trio's clock), when the receiver knows it.
    arrival_time: float | None = None


class PayloadInfo(NamedTuple):
    """What one payload says about the frame it belongs to (see :meth:`Depacketizer.inspect_untrusted`).

    ``starts_frame``: True when the payload format proves this packet begins a frame (VP8 S=1 with
    PID 0, VP9 B=1, an H.264 packet opening with an AUD or SPS, AV1 N=1), False when it proves the
    opposite (a continuation fragment), None when the format cannot tell (an H.264 slice, an AV1
    OBU) and only the previous packet can: the assembler then requires the packet before it to be
    present and to end the previous frame.

    ``ends_frame``: this packet is the last of its frame (the marker bit, or VP9's E bit).
    ``picture_id`` with ``picture_id_bits`` (7 or 15): VP8/VP9's PictureID, which lets the
    assembler tell a lost frame from a lost padding packet.
    """

    starts_frame: bool | None
    ends_frame: bool
    keyframe: bool
    picture_id: int | None = None
    picture_id_bits: int = 0


class Packetizer(abc.ABC):
    """Turns encoded frames into RTP payloads of one payload format.

    Packetizers may keep state across frames (VP8/VP9 count PictureIDs), so use one per stream.
    """

    #: The RTP clock rate of the format (RFC 3551 §4.5, RFC 7587 §4.1, 90 kHz for video).
    clock_rate: ClassVar[int]
    #: Video sets the RTP marker bit on the last packet of each frame; audio does not, because
    #: there the marker flags the first packet of a talkspurt (RFC 3551 §4.1).
    marker_on_last: ClassVar[bool] = True

    @abc.abstractmethod
    def packetize(
        self,
        frame: bytes,
        *,
        keyframe: bool = False,
        max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
    ) -> list[bytes]:
        """The payloads of ``frame``, in sending order, none longer than ``max_payload_size``.

        The last payload ends the frame. Raises ``ValueError`` when the frame cannot be carried
        (empty, malformed where the format needs to look inside, or too large for the mode).
        """


class Depacketizer(abc.ABC):
    """Reads the payloads of one payload format back into frames (driven by a frame assembler)."""

    clock_rate: ClassVar[int]

    @abc.abstractmethod
    def inspect_untrusted(self, payload: bytes, marker: bool) -> PayloadInfo:
        """Check one non-empty payload and say where it sits in its frame; raise RtpError."""

    @abc.abstractmethod
    def assemble_untrusted(self, payloads: Sequence[bytes]) -> bytes:
        """The frame carried by ``payloads`` (every packet of one frame, in order); raise RtpError."""


def packetize_rtp(
    packetizer: Packetizer,
    frame: bytes,
    *,
    sequence_number: int,
    timestamp: int,
    payload_type: int,
    ssrc: int,
    keyframe: bool = False,
    max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
    marker: bool | None = None,
) -> list[RtpPacket]:
    """RTP packets for one frame, numbered from ``sequence_number`` (wrapping at 2**16).

    ``marker=None`` applies the format's rule: video marks the frame's last packet, audio marks
    nothing. Pass ``marker=True`` for audio on the first packet of a talkspurt (RFC 3551 §4.1,
    RFC 7587 §4.1); any explicit value goes on the frame's last packet. The next frame's first
    sequence number is ``(sequence_number + len(result)) & 0xFFFF``. Header extensions are the
    caller's: ``max_payload_size`` must leave room for them.
    """
    payloads = packetizer.packetize(frame, keyframe=keyframe, max_payload_size=max_payload_size)
    last_marker = packetizer.marker_on_last if marker is None else marker
    last = len(payloads) - 1
    return [
        RtpPacket(
            payload_type,
            (sequence_number + index) & 0xFFFF,
            timestamp,
            ssrc,
            payload,
            last_marker and index == last,
        )
        for index, payload in enumerate(payloads)
    ]


def split_evenly(length: int, max_piece: int) -> list[int]:
    """Sizes of the fewest pieces of at most ``max_piece`` that add up to ``length``.

    The pieces differ by at most one byte: equal packets make the best use of the packet count
    and avoid a tiny last packet that costs a full header for a few bytes.
    """
    if max_piece < 1:
        raise ValueError(f"no room for payload data (max piece {max_piece} bytes)")
    if length <= 0:
        return []
    count = -(-length // max_piece)
    base, extra = divmod(length, count)
    return [base + 1] * extra + [base] * (count - extra)
