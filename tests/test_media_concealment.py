"""Concealment frames (shape, timeline, fade) and what PyAV's Opus decoders can conceal."""

from __future__ import annotations

import array
from fractions import Fraction

import av
import pytest

from trio_rtc.media.concealment import (
    AudioConcealer,
    opus_plc_packet,
    opus_plc_supported,
)


def decoded(fmt: str, layout: str, rate: int, samples: int, value: float) -> av.AudioFrame:
    frame = av.AudioFrame(format=fmt, layout=layout, samples=samples)
    channels = frame.layout.nb_channels
    typecode = "h" if fmt.startswith("s16") else "f"
    planes = channels if frame.format.is_planar else 1
    per_plane = samples if frame.format.is_planar else samples * channels
    for plane in range(planes):
        frame.planes[plane].update(array.array(typecode, [value] * per_plane).tobytes())
    frame.sample_rate = rate
    frame.pts = 4800
    frame.time_base = Fraction(1, rate)
    return frame


def values(frame: av.AudioFrame, plane: int = 0) -> list[float]:
    typecode = "h" if frame.format.name.startswith("s16") else "f"
    data = array.array(typecode)
    count = frame.samples * (1 if frame.format.is_planar else frame.layout.nb_channels)
    data.frombytes(bytes(frame.planes[plane])[: count * data.itemsize])
    return list(data)


@pytest.mark.parametrize(
    ("fmt", "layout", "rate", "value"),
    [
        ("s16", "mono", 48_000, 10_000),
        ("s16", "stereo", 48_000, -8_000),
        ("fltp", "mono", 48_000, 0.5),
        ("fltp", "stereo", 48_000, 0.25),
        ("s16", "mono", 8_000, 1_000),
    ],
)
def test_concealment_frames_match_the_stream_and_fade_to_silence(
    fmt: str, layout: str, rate: int, value: float
) -> None:
    concealer = AudioConcealer()
    frame_samples = rate // 50
    concealer.observe(decoded(fmt, layout, rate, frame_samples, value))
    first = concealer.conceal(frame_samples)
    second = concealer.conceal(frame_samples)
    for out, pts in ((first, 4800 + frame_samples), (second, 4800 + 2 * frame_samples)):
        assert out.samples == frame_samples
        assert out.sample_rate == rate
        assert out.layout.name == layout
        assert out.format.name == fmt
        assert out.time_base == Fraction(1, rate)
        assert out.pts == pts
    fade = round(0.03 * rate)
    planes = first.layout.nb_channels if first.format.is_planar else 1
    for plane in range(planes):
        head = values(first, plane)
        assert head[0] == pytest.approx(value)
        # Linear fade: halfway through the fade, half the level.
        step = 1 if first.format.is_planar else first.layout.nb_channels
        assert head[(fade // 2) * step] == pytest.approx(value / 2, rel=0.01)
        tail = values(second, plane)
        assert all(v == 0 for v in tail[(fade - frame_samples) * step :])
        assert any(v != 0 for v in tail[: (fade - frame_samples) * step])


def test_a_new_decoded_frame_restarts_the_fade() -> None:
    concealer = AudioConcealer()
    concealer.observe(decoded("s16", "mono", 48_000, 960, 1000))
    concealer.conceal(960)
    concealer.conceal(960)
    assert set(values(concealer.conceal(960))) == {0}
    concealer.observe(decoded("s16", "mono", 48_000, 960, 2000))
    assert values(concealer.conceal(960))[0] == 2000


def test_without_a_decoded_frame_concealment_is_silence_of_the_given_shape() -> None:
    concealer = AudioConcealer()
    with pytest.raises(ValueError):
        concealer.conceal(960)
    out = concealer.conceal(960, sample_rate=48_000, layout="stereo", format="s16", pts=0)
    assert (out.samples, out.layout.name, out.format.name, out.pts) == (960, "stereo", "s16", 0)
    assert set(values(out)) == {0}
    with pytest.raises(ValueError):
        concealer.conceal(0)


def test_opus_plc_packet_keeps_the_toc_and_drops_the_frames() -> None:
    assert opus_plc_packet(bytes([0xFB, 1, 2, 3])) == bytes([0xF8])
    with pytest.raises(ValueError):
        opus_plc_packet(b"")


def test_libopus_conceals_a_toc_only_packet_and_native_opus_does_not() -> None:
    assert opus_plc_supported("libopus")
    assert not opus_plc_supported("opus")
    assert not opus_plc_supported("no-such-decoder")
