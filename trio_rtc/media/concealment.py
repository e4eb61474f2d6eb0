"""Audio concealment for the samples the jitter buffer could not play (lost or inserted frames).

:class:`AudioConcealer` follows the decoded audio of one stream: :meth:`AudioConcealer.observe`
each decoded ``av.AudioFrame``, and :meth:`AudioConcealer.conceal` makes the frames that stand
in for missing samples. Concealment repeats the tail of the last decoded audio with a linear fade
to silence over :data:`~trio_rtc.rtp.jitter.CONCEALMENT_FADE_SECONDS` (30 ms, counted across
consecutive concealments), then silence. The frames match the last decoded one in sample rate,
layout and format, with ``pts`` continuing its timeline in ``1/sample_rate`` units.

What FFmpeg's Opus decoders can do through PyAV (measured with PyAV 18.1 / FFmpeg 8, and read
from FFmpeg's ``libopusdec.c``):

- In-band FEC (rebuilding a lost packet from the LBRR data in the next one): **not reachable**.
  ``libopus`` calls ``opus_multistream_decode(..., decode_fec=0)`` unconditionally and has no
  option for it (its only private option is ``apply_phase_inv``, about stereo phase inversion);
  FFmpeg's native ``opus`` decoder does not decode LBRR at all (its SILK decoder reports LBRR as
  a missing feature). So :attr:`~trio_rtc.rtp.jitter.Concealment.fec_from` cannot be used with
  PyAV; only a direct libopus binding could.
- Packet loss concealment: ``decode(None)``, ``av.Packet()`` and ``av.Packet(b"")`` are a flush
  (end of stream), not a lost packet: the context then refuses every packet with ``EOFError``
  until ``flush_buffers()``, which resets the decoder state. But libopus runs its own PLC for
  any frame of at most one byte, and FFmpeg passes a one-byte packet through: a TOC byte alone
  (frame count code 0, RFC 6716 §3.1/§3.2.1) conceals one frame of the TOC's duration and keeps
  the decoder state, so the next real packet continues smoothly. :func:`opus_plc_packet` makes
  that packet. FFmpeg's native ``opus`` decoder outputs silence for it instead (after the last
  frame's overlap), so this works with ``libopus`` only (:func:`opus_plc_supported` checks).

``av`` is imported lazily: it is the optional ``media`` extra.
"""

from __future__ import annotations

import array
import functools
import math
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ..rtp.jitter import CONCEALMENT_FADE_SECONDS

if TYPE_CHECKING:
    import av

__all__ = ["AudioConcealer", "crossfade", "opus_plc_packet", "opus_plc_supported"]

# array typecodes of the sample formats concealment can synthesize.
_TYPECODES = {"s16": "h", "s32": "i", "flt": "f", "dbl": "d", "u8": "B"}


class AudioConcealer:
    """Makes concealment frames for one audio stream (see the module docstring).

    ``fade_seconds`` is the fade to silence; ``tail_seconds`` how much of the last decoded audio
    is repeated (a period of the repetition).
    """

    def __init__(
        self,
        *,
        fade_seconds: float = CONCEALMENT_FADE_SECONDS,
        tail_seconds: float = 0.01,
    ) -> None:
        if fade_seconds < 0 or tail_seconds <= 0:
            raise ValueError("fade_seconds must be >= 0 and tail_seconds > 0")
        self.fade_seconds = fade_seconds
        self.tail_seconds = tail_seconds
        self._last: av.AudioFrame | None = None
        self._tail: list[array.array[Any]] = []  # per channel, the last samples
        self._run = 0  # samples concealed since the last decoded frame
        self._next_pts: int | None = None

    def observe(self, frame: av.AudioFrame) -> None:
        """Remember a decoded frame: the next concealment repeats its tail and follows its pts."""
        self._last = frame
        self._tail = []
        self._run = 0
        self._next_pts = None
        pts, time_base, rate = frame.pts, frame.time_base, frame.sample_rate
        if pts is not None and time_base is not None and rate:
            if time_base.numerator == 1 and time_base.denominator == rate:
                # The usual case (pts counts samples): no Fraction arithmetic, which costs more
                # than the rest of this method on every decoded frame.
                self._next_pts = pts + frame.samples
            else:
                end = Fraction(pts) * time_base + Fraction(frame.samples, rate)
                self._next_pts = round(end * rate)

    def conceal(
        self,
        samples: int,
        *,
        sample_rate: int | None = None,
        layout: str | None = None,
        format: str | None = None,
        pts: int | None = None,
    ) -> av.AudioFrame:
        """An ``av.AudioFrame`` of ``samples`` concealment samples.

        Rate, layout and format default to the last observed frame's; with no frame observed yet
        they must be given (the frame is then silence). ``pts`` (in ``1/sample_rate``) defaults to
        the continuation of the last observed or concealed frame.
        """
        import av

        if samples <= 0:
            raise ValueError(f"samples must be positive, not {samples}")
        last = self._last
        if last is not None:
            sample_rate = sample_rate or last.sample_rate
            layout = layout or last.layout.name
            format = format or last.format.name
        if sample_rate is None or layout is None or format is None:
            raise ValueError("no frame observed yet: give sample_rate, layout and format")
        frame = av.AudioFrame(format=format, layout=layout, samples=samples)
        frame.sample_rate = sample_rate
        frame.time_base = Fraction(1, sample_rate)
        if pts is None:
            pts = self._next_pts
        frame.pts = pts
        self._next_pts = None if pts is None else pts + samples
        channels = frame.layout.nb_channels
        planar = frame.format.is_planar
        typecode = _TYPECODES.get(frame.format.name.removesuffix("p"))
        if typecode is None:
            raise ValueError(f"cannot synthesize samples in format {format!r}")
        source = self._tail_of(last, frame) if last is not None else []
        fade = round(self.fade_seconds * sample_rate)
        silence = 128 if typecode == "B" else 0
        channel_data: list[array.array[Any]] = []
        for channel in range(channels):
            data = array.array(typecode, [silence]) * samples
            tail = source[channel] if channel < len(source) else None
            if tail:
                period = len(tail)
                for i in range(min(samples, max(0, fade - self._run))):
                    gain = 1.0 - (self._run + i) / fade
                    value = (tail[(self._run + i) % period] - silence) * gain + silence
                    data[i] = value if typecode in "fd" else round(value)
            channel_data.append(data)
        self._run += samples
        if planar:
            for channel, data in enumerate(channel_data):
                frame.planes[channel].update(data.tobytes())
        else:
            packed = array.array(typecode, [silence]) * (samples * channels)
            for channel, data in enumerate(channel_data):
                packed[channel::channels] = data
            frame.planes[0].update(packed.tobytes())
        return frame

    def _tail_of(self, last: av.AudioFrame, like: av.AudioFrame) -> list[array.array[Any]]:
        if self._tail:
            return self._tail
        if (
            last.format.name != like.format.name
            or last.layout.nb_channels != like.layout.nb_channels
            or last.samples == 0
        ):
            return []  # asked for another shape: no tail to repeat, silence
        typecode = _TYPECODES.get(last.format.name.removesuffix("p"))
        if typecode is None:
            return []
        channels = last.layout.nb_channels
        count = max(1, min(last.samples, round(self.tail_seconds * last.sample_rate)))
        size = array.array(typecode).itemsize
        tails: list[array.array[Any]] = []
        if last.format.is_planar:
            for channel in range(channels):
                data = array.array(typecode)
                data.frombytes(bytes(last.planes[channel])[: last.samples * size])
                tails.append(data[-count:])
        else:
            data = array.array(typecode)
            data.frombytes(bytes(last.planes[0])[: last.samples * channels * size])
            tails = [data[channel::channels][-count:] for channel in range(channels)]
        self._tail = tails
        return tails


def crossfade(leaving: av.AudioFrame, entering: av.AudioFrame) -> av.AudioFrame:
    """Two consecutive frames played in the time of the second: the playout buffer's time
    compression by a frame (:attr:`~trio_rtc.rtp.jitter.PlayoutFrame.merge`).

    Output sample ``j`` of ``n`` (the second frame's length) is
    ``leaving[j] * (n - j) / n + entering[j] * j / n``: it starts where the first frame starts,
    so it joins what was played before it, and ends on the second frame's last sample, so what
    plays next follows without a step. A signal that repeats with a period dividing the frame
    length (a 1 kHz tone in 20 ms frames, steady silence) passes unchanged; anything else is
    blended over the frame, never cut (a plain drop of a frame clicks). The result has the
    second frame's format, ``pts`` and ``time_base``; when the two frames differ in shape, or
    the format is not one of the plain sample formats, the second frame comes back as it is."""
    import av

    length = entering.samples
    name = entering.format.name
    typecode = _TYPECODES.get(name.removesuffix("p"))
    channels = entering.layout.nb_channels
    if (
        typecode is None
        or length == 0
        or leaving.samples < length
        or leaving.format.name != name
        or leaving.layout.nb_channels != channels
    ):
        return entering
    planar = entering.format.is_planar
    size = array.array(typecode).itemsize
    count = length if planar else length * channels
    stride = 1 if planar else channels
    integer = typecode not in "fd"
    out = av.AudioFrame(format=name, layout=entering.layout.name, samples=length)
    out.sample_rate = entering.sample_rate
    out.pts = entering.pts
    if entering.time_base is not None:
        out.time_base = entering.time_base
    for index in range(len(entering.planes) if planar else 1):
        first: array.array[Any] = array.array(typecode)
        first.frombytes(bytes(leaving.planes[index])[: count * size])
        mixed: array.array[Any] = array.array(typecode)
        mixed.frombytes(bytes(entering.planes[index])[: count * size])
        for position in range(count):
            weight = (position // stride) / length
            value = first[position] * (1.0 - weight) + mixed[position] * weight
            mixed[position] = round(value) if integer else value
        out.planes[index].update(mixed.tobytes())
    return out


def opus_plc_packet(last_packet: bytes) -> bytes:
    """A one-byte Opus packet that makes libopus conceal one frame (see the module docstring):
    the TOC byte of the last received packet with frame count code 0 and no frame data, so the
    concealed duration and mode are the last packet's frame's."""
    if not last_packet:
        raise ValueError("need the last received Opus packet")
    return bytes([last_packet[0] & 0xFC])


@functools.cache
def opus_plc_supported(decoder: str = "libopus") -> bool:
    """Whether PyAV's ``decoder`` ("libopus" or "opus") conceals a lost frame when given
    :func:`opus_plc_packet` (it continues the signal instead of producing silence). Measured once
    by encoding a tone; False when the decoder (or the libopus encoder) is not available."""
    import av

    rate, frame_samples = 48_000, 960
    try:
        encoder: Any = av.CodecContext.create("libopus", "w")
        encoder.sample_rate = rate
        encoder.layout = "mono"
        encoder.format = "s16"
        encoder.time_base = Fraction(1, rate)
        encoder.bit_rate = 32_000
        encoder.options = {"application": "lowdelay", "frame_duration": "20"}
        encoder.open()
        packets: list[bytes] = []
        for index in range(12):
            tone = array.array(
                "h",
                (
                    round(8000 * math.sin(2 * math.pi * 440 * (index * frame_samples + i) / rate))
                    for i in range(frame_samples)
                ),
            )
            chunk = av.AudioFrame(format="s16", layout="mono", samples=frame_samples)
            chunk.planes[0].update(tone.tobytes())
            chunk.sample_rate = rate
            chunk.pts = index * frame_samples
            chunk.time_base = Fraction(1, rate)
            packets += [bytes(packet) for packet in encoder.encode(chunk)]
        context: Any = av.CodecContext.create(decoder, "r")
        context.sample_rate = rate
        context.layout = "mono"
        context.open()
        for packet in packets[:-1]:
            context.decode(av.Packet(packet))
        plc = av.Packet(opus_plc_packet(packets[-2]))
        context.decode(plc)  # the first one still carries the last frame's overlap
        concealed = context.decode(av.Packet(opus_plc_packet(packets[-2])))
    except (av.FFmpegError, ValueError, EOFError):
        return False
    peak = 0.0
    for out in concealed:
        name = out.format.name
        typecode = _TYPECODES.get(name.removesuffix("p"), "h")
        data = array.array(typecode)
        size = data.itemsize
        data.frombytes(bytes(out.planes[0])[: out.samples * size])
        scale = 1.0 if typecode in "fd" else 1 / 32768
        peak = max(peak, max((abs(value) * scale for value in data), default=0.0))
    return peak > 0.01
