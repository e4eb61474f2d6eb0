"""Test sources and a sink for raw-frame tracks (the ``media`` extra: imports PyAV).

- :class:`TestPatternTrack` (alias :data:`VideoTestSource`): a moving test pattern with the frame
  counter stamped into the picture as large black and white blocks, so it survives a lossy
  encoder; :func:`read_frame_counter` reads it back from a decoded frame and
  :meth:`TestPatternTrack.produced_at` says when that frame was made (glass-to-glass latency).
- :class:`ToneTrack`: a sine tone, continuous or in bursts (audio latency: find the burst onset in
  what comes out, :func:`tone_onset`, and compare with :meth:`ToneTrack.burst_produced_at`).
- :class:`MediaBlackhole`: reads tracks and drops what they give, so that something consumes a
  track nobody else reads.

Both sources pace themselves in real time on Trio's clock (``trio.sleep_until``), so tests under
``trio.testing.MockClock`` run instantly; ``realtime=False`` produces frames as fast as they are
asked for (e.g. to write a test file). Frames are built with bytes operations, not per-pixel
Python loops: a 640x480 pattern frame takes well under a millisecond.
"""

from __future__ import annotations

import math
import time
from array import array
from collections import OrderedDict
from fractions import Fraction
from types import TracebackType
from typing import Any

import av
import trio

from .frames import FrameTrack, MediaStreamError
from .tracks import MediaStreamTrack

__all__ = [
    "VIDEO_CLOCK_RATE",
    "MediaBlackhole",
    "TestPatternTrack",
    "ToneTrack",
    "VideoTestSource",
    "read_frame_counter",
    "stamp_frame_counter",
    "tone_onset",
]

#: Video pts are counted in this clock (the RTP video clock), ``time_base = 1/90000``.
VIDEO_CLOCK_RATE = 90000
VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK_RATE)

# --- the frame counter stamp ---------------------------------------------------------------------
#
# Two rows of 18 cells across the top of the picture, each row 1/16 of the picture high and each
# cell 1/18 of it wide (35x30 pixels at 640x480: two macroblocks' worth of flat colour, which any
# encoder keeps even at a few hundred kbit/s). Row 0 is [white, 16 bits, black]; row 1 is
# [black, 16 bits, white]. The 32 bits are the 24-bit counter (most significant bit first) and
# a CRC-8 of it, so a misread is detected rather than returned. The guard cells give the reader
# the white and black levels of this very picture (its threshold), whatever the encoder did to
# the contrast. Everything is in fractions of the picture size, so a scaled copy still reads.

_COUNTER_BITS = 24
_CELLS = 18
_ROWS = 2
_ROW_FRACTION = 16  # each stamp row is height / 16 high
_WHITE = 235  # video-range luma
_BLACK = 16
_COUNTER_MASK = (1 << _COUNTER_BITS) - 1


def _crc8(value: int) -> int:
    """CRC-8 (polynomial 0x07) of the counter's three bytes."""
    crc = 0
    for byte in value.to_bytes(3, "big"):
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _stamp_cells(counter: int) -> list[list[bool]]:
    """The two rows of cells (True: white) for ``counter`` (taken modulo 2**24)."""
    counter &= _COUNTER_MASK
    word = (counter << 8) | _crc8(counter)
    bits = [bool(word >> (31 - i) & 1) for i in range(32)]
    return [[True, *bits[:16], False], [False, *bits[16:], True]]


def _cell_edges(size: int, count: int) -> list[int]:
    return [size * i // count for i in range(count + 1)]


def _stamp_rows(counter: int, width: int, height: int, line_size: int) -> list[bytes]:
    """The luma rows of the stamp band (``2 * height // 16`` rows, each ``line_size`` long)."""
    edges = _cell_edges(width, _CELLS)
    pad = b"\x80" * (line_size - width)
    white, black = bytes([_WHITE]), bytes([_BLACK])
    rows: list[bytes] = []
    row_edges = _cell_edges(height, _ROW_FRACTION)
    for row, cells in enumerate(_stamp_cells(counter)):
        line = (
            b"".join(
                (white if on else black) * (edges[i + 1] - edges[i]) for i, on in enumerate(cells)
            )
            + pad
        )
        rows.extend([line] * (row_edges[row + 1] - row_edges[row]))
    return rows


def _band_height(height: int) -> int:
    return _cell_edges(height, _ROW_FRACTION)[_ROWS]


def stamp_frame_counter(frame: av.VideoFrame, counter: int) -> None:
    """Stamp ``counter`` into the top of a ``yuv420p`` (or other 8-bit planar YUV) ``frame``.

    The luma of the top ``2 * height / 16`` rows is replaced by the blocks; the chroma there is
    left as it is (the reader only looks at luma)."""
    plane = frame.planes[0]
    band = _band_height(frame.height)
    rows = _stamp_rows(counter, frame.width, frame.height, plane.line_size)
    view = memoryview(plane).cast("B")
    view[: band * plane.line_size] = b"".join(rows[:band])


def read_frame_counter(frame: Any) -> int | None:
    """The counter :class:`TestPatternTrack` stamped into ``frame``, or None when the stamp
    cannot be read (another picture, too damaged, a failed CRC).

    ``frame`` is an ``av.VideoFrame`` of any pixel format and size (it is converted to grey
    first); the counter is 24 bits, so it wraps after 2**24 frames (6 days at 30 fps)."""
    if not isinstance(frame, av.VideoFrame) or frame.width < _CELLS or frame.height < 16:
        return None
    grey = frame if frame.format.name == "gray" else frame.reformat(format="gray")
    plane = grey.planes[0]
    data = memoryview(plane).cast("B")
    stride = plane.line_size
    width, height = grey.width, grey.height
    x_edges = _cell_edges(width, _CELLS)
    y_edges = _cell_edges(height, _ROW_FRACTION)
    levels: list[list[float]] = []
    for row in range(_ROWS):
        y0, y1 = y_edges[row], y_edges[row + 1]
        # The middle half of the cell, away from the ringing at its edges.
        ys = range(y0 + (y1 - y0) // 4, y1 - (y1 - y0) // 4 or y0 + 1)
        row_levels = []
        for cell in range(_CELLS):
            x0, x1 = x_edges[cell], x_edges[cell + 1]
            a, b = x0 + (x1 - x0) // 4, max(x1 - (x1 - x0) // 4, x0 + (x1 - x0) // 4 + 1)
            total = sum(sum(data[y * stride + a : y * stride + b]) for y in ys)
            row_levels.append(total / ((b - a) * len(ys)))
        levels.append(row_levels)
    white = (levels[0][0] + levels[1][-1]) / 2
    black = (levels[0][-1] + levels[1][0]) / 2
    if white - black < 48:
        return None
    threshold = (white + black) / 2
    bits = [level > threshold for level in levels[0][1:-1] + levels[1][1:-1]]
    word = 0
    for bit in bits:
        word = (word << 1) | bit
    counter = word >> 8
    if _crc8(counter) != word & 0xFF:
        return None
    return counter


class _ProducedTimes:
    """The ``time.monotonic()`` of the last ``limit`` items produced, by key."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._times: OrderedDict[int, float] = OrderedDict()

    def add(self, key: int, when: float) -> None:
        self._times[key] = when
        while len(self._times) > self._limit:
            self._times.popitem(last=False)

    def get(self, key: int) -> float | None:
        return self._times.get(key)


class TestPatternTrack(FrameTrack):
    """A moving ``yuv420p`` test pattern, ``width`` x ``height`` at ``framerate``, with the frame
    counter stamped in (see :func:`read_frame_counter`).

    Frame ``n`` (the counter, from 0) has ``pts = n * 90000 / framerate`` with
    ``time_base = 1/90000``. With ``realtime=True`` (the default) frame ``n`` is due ``n /
    framerate`` seconds after the first ``recv`` on Trio's clock, and ``recv`` sleeps until then;
    like a camera, a reader more than a frame late gets the frame of the current time slot (the
    counter skips the ones it missed). ``duration`` (seconds): the track ends after that much.

    :meth:`produced_at` gives the ``time.monotonic()`` at which frame ``counter`` was made (the
    last ``history`` frames are remembered): subtract it from when the decoded frame was read
    back for glass-to-glass latency. Per frame: a bytes-built pattern (bars scrolling left and
    right, chroma slowly cycling) plus the stamp, about 0.1 ms at 640x480."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        framerate: float = 30,
        *,
        realtime: bool = True,
        duration: float | None = None,
        history: int = 1024,
        label: str = "test pattern",
        id: str | None = None,
    ) -> None:
        super().__init__("video", label=label, id=id)
        if width < _CELLS * 2 or height < 32 or width % 2 or height % 2:
            raise ValueError(
                f"the pattern needs an even size of at least 36x32, not {width}x{height}"
            )
        if not framerate > 0:
            raise ValueError(f"framerate must be positive, not {framerate!r}")
        self.width = width
        self.height = height
        self.framerate = framerate
        self.realtime = realtime
        self.duration = duration
        self._period = 1 / framerate
        self._start: float | None = None
        self._next = 0
        self._produced = _ProducedTimes(history)
        # One period of the scrolling bars, twice, so any offset is a slice.
        ramp = bytes(_BLACK + (_WHITE - _BLACK) * ((x * 8 // width) % 2) for x in range(width))
        shades = bytes(
            int(60 + 120 * (0.5 + 0.5 * math.sin(2 * math.pi * x / width))) for x in range(width)
        )
        self._bars = ramp + ramp
        self._shades = shades + shades
        self.frames_produced = 0

    @property
    def frame_interval(self) -> float:
        return self._period

    def produced_at(self, counter: int) -> float | None:
        """``time.monotonic()`` when frame ``counter`` was produced, None if unknown/forgotten."""
        return self._produced.get(counter & _COUNTER_MASK)

    def make_frame(self, counter: int) -> av.VideoFrame:
        """Build frame ``counter`` (pattern, stamp, pts) without pacing or bookkeeping."""
        width, height = self.width, self.height
        frame = av.VideoFrame(width, height, "yuv420p")
        y_plane, u_plane, v_plane = frame.planes
        stride = y_plane.line_size
        band = _band_height(height)
        shift = (counter * 4) % width
        pad = b"\x80" * (stride - width)
        left = self._bars[shift : shift + width] + pad
        right = self._shades[width - shift : 2 * width - shift] + pad
        # Stripes of 32 rows alternate between the two rows moving in opposite directions.
        rows = _stamp_rows(counter, width, height, stride)[:band]
        stripe = 32
        for y in range(band, height, stripe):
            rows.extend([left if (y // stripe) % 2 else right] * min(stripe, height - y))
        y_plane.update(b"".join(rows))
        phase = 2 * math.pi * counter / (self.framerate * 4)
        for plane, value in (
            (u_plane, 128 + 40 * math.sin(phase)),
            (v_plane, 128 + 40 * math.cos(phase)),
        ):
            chroma_band = band // 2
            size = plane.line_size * plane.height
            neutral = b"\x80" * (plane.line_size * chroma_band)
            plane.update(neutral + bytes([int(value)]) * (size - len(neutral)))
        frame.pts = round(counter * VIDEO_CLOCK_RATE / self.framerate)
        frame.time_base = VIDEO_TIME_BASE
        return frame

    async def recv(self) -> av.VideoFrame:
        self._check_live()
        counter = self._next
        if self.duration is not None and counter >= self.duration * self.framerate - 1e-9:
            self.stop()
            raise MediaStreamError("the test pattern reached its duration")
        if self.realtime:
            now = trio.current_time()
            if self._start is None:
                self._start = now
            due = self._start + counter * self._period
            if now > due + self._period:
                # A camera does not wait for a late reader: this is the current time slot's frame.
                counter = int((now - self._start) / self._period)
                due = self._start + counter * self._period
            await trio.sleep_until(due)
            self._check_live()
        else:
            await trio.lowlevel.checkpoint()
        frame = self.make_frame(counter)
        self._produced.add(counter & _COUNTER_MASK, time.monotonic())
        self._next = counter + 1
        self.frames_produced += 1
        return frame


#: aiortc-style name of :class:`TestPatternTrack`.
VideoTestSource = TestPatternTrack


_LAYOUTS = {1: "mono", 2: "stereo"}


class ToneTrack(FrameTrack):
    """A sine tone as ``s16`` audio frames of ``samples_per_frame`` samples (20 ms at 48 kHz).

    ``pts`` counts samples (``time_base = 1/sample_rate``). With ``burst_every`` (seconds) the
    tone only sounds for the first ``burst_length`` seconds of every ``burst_every`` and there is
    silence in between: burst ``k`` starts at sample ``k * burst_every * sample_rate``, and
    :meth:`burst_produced_at` gives the ``time.monotonic()`` of that sample's production, to
    compare with when :func:`tone_onset` finds it in the received audio. ``amplitude`` is
    relative to full scale. Pacing (``realtime``) and ``duration`` as in
    :class:`TestPatternTrack`; audio is never skipped, a late reader just catches up."""

    __test__ = False

    def __init__(
        self,
        frequency: float = 440,
        sample_rate: int = 48000,
        channels: int = 1,
        samples_per_frame: int = 960,
        *,
        amplitude: float = 0.5,
        burst_every: float | None = None,
        burst_length: float = 0.1,
        realtime: bool = True,
        duration: float | None = None,
        label: str = "tone",
        id: str | None = None,
    ) -> None:
        super().__init__("audio", label=label, id=id)
        if channels not in _LAYOUTS:
            raise ValueError(f"channels must be 1 or 2, not {channels!r}")
        if sample_rate <= 0 or samples_per_frame <= 0:
            raise ValueError("sample_rate and samples_per_frame must be positive")
        if not 0 <= amplitude <= 1:
            raise ValueError(f"amplitude is a fraction of full scale, not {amplitude!r}")
        self.frequency = frequency
        self.sample_rate = sample_rate
        self.channels = channels
        self.samples_per_frame = samples_per_frame
        self.amplitude = amplitude
        self.realtime = realtime
        self.duration = duration
        self._burst_period: int | None = None
        self._burst_samples = 0
        if burst_every is not None:
            if not 0 < burst_length <= burst_every:
                raise ValueError("need 0 < burst_length <= burst_every")
            self._burst_period = round(burst_every * sample_rate)
            self._burst_samples = round(burst_length * sample_rate)
        self._time_base = Fraction(1, sample_rate)
        self._start: float | None = None
        self._sample = 0
        self._bursts = _ProducedTimes(1024)

    def burst_produced_at(self, index: int) -> float | None:
        """``time.monotonic()`` at which burst ``index`` (from 0) started being produced."""
        return self._bursts.get(index)

    def make_frame(self, first_sample: int) -> av.AudioFrame:
        """The frame starting at sample ``first_sample`` (no pacing or bookkeeping)."""
        count = self.samples_per_frame
        step = 2 * math.pi * self.frequency / self.sample_rate
        scale = 32767 * self.amplitude
        samples = array("h", bytes(2 * count))
        period = self._burst_period
        for i in range(count):
            n = first_sample + i
            if period is None or n % period < self._burst_samples:
                samples[i] = int(scale * math.sin(step * n))
        if self.channels == 2:
            both = array("h", bytes(4 * count))
            both[0::2] = samples
            both[1::2] = samples
            samples = both
        frame = av.AudioFrame(format="s16", layout=_LAYOUTS[self.channels], samples=count)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = self.sample_rate
        frame.pts = first_sample
        frame.time_base = self._time_base
        return frame

    async def recv(self) -> av.AudioFrame:
        self._check_live()
        first = self._sample
        if self.duration is not None and first >= self.duration * self.sample_rate - 1e-9:
            self.stop()
            raise MediaStreamError("the tone reached its duration")
        if self.realtime:
            now = trio.current_time()
            if self._start is None:
                self._start = now
            await trio.sleep_until(self._start + first / self.sample_rate)
            self._check_live()
        else:
            await trio.lowlevel.checkpoint()
        frame = self.make_frame(first)
        produced = time.monotonic()
        period = self._burst_period
        if period is not None:
            # Bursts starting within this frame: first multiple of the period >= first.
            k = -(-first // period)
            while k * period < first + self.samples_per_frame:
                offset = k * period - first
                self._bursts.add(k, produced + offset / self.sample_rate)
                k += 1
        self._sample = first + self.samples_per_frame
        return frame


def tone_onset(frame: Any, threshold: float = 0.05) -> int | None:
    """The index of the first sample of ``frame`` (an ``av.AudioFrame``) whose magnitude on the
    first channel exceeds ``threshold`` (a fraction of full scale), or None. Any sample format is
    accepted (it is converted to ``s16`` first)."""
    if not isinstance(frame, av.AudioFrame):
        return None
    if frame.format.name != "s16" or frame.layout.nb_channels != 1:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=frame.sample_rate)
        converted = resampler.resample(frame)
        if not converted:
            return None
        frame = converted[0]
    samples = array("h")
    samples.frombytes(bytes(frame.planes[0])[: 2 * frame.samples])
    limit = threshold * 32768
    for i, value in enumerate(samples):
        if abs(value) > limit:
            return i
    return None


class MediaBlackhole:
    """Reads tracks and drops what they give (so that a track nobody else reads is consumed).

    Trio style, two ways::

        async with MediaBlackhole(track_a, track_b) as blackhole:
            ...  # the tracks are read in the blackhole's own tasks while this runs

        await MediaBlackhole(track_a, track_b).run()  # until every track ends

    Frame tracks are read with ``recv()``; a remote :class:`~trio_rtc.media.MediaStreamTrack`
    with ``recv_encoded()`` (dropping encoded frames needs no decoder). ``frames_received``
    counts what was dropped, per track id. :meth:`addTrack` before starting (aiortc's name)."""

    def __init__(self, *tracks: Any) -> None:
        self._tracks: list[Any] = []
        self.frames_received: dict[str, int] = {}
        self._nursery: trio.Nursery | None = None
        self._cm: Any = None
        for track in tracks:
            self.addTrack(track)

    def addTrack(self, track: Any) -> None:
        """Consume ``track`` too (starts reading it at once when already running)."""
        if track in self._tracks:
            return
        self._tracks.append(track)
        self.frames_received.setdefault(str(track.id), 0)
        if self._nursery is not None:
            self._nursery.start_soon(self._consume, track)

    async def _consume(self, track: Any) -> None:
        encoded = isinstance(track, MediaStreamTrack) and track.remote
        key = str(track.id)
        while True:
            try:
                if encoded:
                    await track.recv_encoded()
                else:
                    await track.recv()
            except trio.EndOfChannel:
                return
            self.frames_received[key] += 1

    async def run(self) -> None:
        """Read every track until each has ended."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                for track in self._tracks:
                    nursery.start_soon(self._consume, track)
            finally:
                self._nursery = None

    async def __aenter__(self) -> MediaBlackhole:
        if self._cm is not None:
            raise RuntimeError("this MediaBlackhole is already running")
        self._cm = trio.open_nursery()
        nursery = await self._cm.__aenter__()
        self._nursery = nursery
        for track in self._tracks:
            nursery.start_soon(self._consume, track)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        cm, self._cm = self._cm, None
        assert self._nursery is not None and cm is not None
        self._nursery.cancel_scope.cancel()
        self._nursery = None
        return bool(await cm.__aexit__(exc_type, exc, tb))
