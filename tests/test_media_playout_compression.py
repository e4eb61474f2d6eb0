"""The decoder side of the playout buffer's time compression: a frame merged away is still
decoded (the decoder's state runs on) and cross-fades into the next one, so the application
gets frames of one length on an unbroken timeline while the delay comes down."""

from __future__ import annotations

import array
import itertools
import math
from fractions import Fraction
from typing import Any

import av
import pytest
import trio
import trio.testing
from test_media_concealment import values as samples_of

import trio_rtc.media.pipeline as pipeline
from trio_rtc.media import CodecRegistry, MediaStreamTrack
from trio_rtc.media.codec_thread import INLINE_WINDOW, CodecThread
from trio_rtc.media.concealment import crossfade
from trio_rtc.rtp.codecs import EncodedFrame

RATE = 48_000
FRAME = 960
PERIOD = FRAME / RATE


def sound(values: list[float], fmt: str = "s16", layout: str = "mono") -> av.AudioFrame:
    frame = av.AudioFrame(format=fmt, layout=layout, samples=len(values))
    channels = frame.layout.nb_channels
    typecode = "h" if fmt.startswith("s16") else "f"
    if typecode == "h":
        values = [round(v) for v in values]
    if frame.format.is_planar:
        for plane in range(channels):
            frame.planes[plane].update(array.array(typecode, values).tobytes())
    else:
        interleaved = [v for v in values for _ in range(channels)]
        frame.planes[0].update(array.array(typecode, interleaved).tobytes())
    frame.sample_rate = RATE
    frame.pts = 1234
    frame.time_base = Fraction(1, RATE)
    return frame


@pytest.mark.parametrize(
    ("fmt", "layout"), [("s16", "mono"), ("s16", "stereo"), ("fltp", "stereo")]
)
def test_crossfade_starts_on_the_first_frame_and_ends_on_the_second(fmt: str, layout: str) -> None:
    scale = 1.0 if fmt == "fltp" else 10_000.0
    leaving = sound([scale * 0.5] * FRAME, fmt, layout)
    entering = sound([-scale * 0.5] * FRAME, fmt, layout)
    entering.pts = 99
    out = crossfade(leaving, entering)
    assert (out.samples, out.format.name, out.layout.name) == (FRAME, fmt, layout)
    assert out.pts == 99 and out.time_base == Fraction(1, RATE)
    values = samples_of(out)
    step = 2 if layout == "stereo" and not out.format.is_planar else 1
    first, last = values[0], values[-1]
    assert first == pytest.approx(scale * 0.5)
    assert last == pytest.approx(-scale * 0.5, abs=scale * 0.01)
    mono = values[::step]
    assert all(a >= b for a, b in itertools.pairwise(mono))  # a ramp, no step


def test_a_tone_whose_period_divides_the_frame_passes_unchanged() -> None:
    tone = [round(8000 * math.sin(2 * math.pi * 1000 * i / RATE)) for i in range(2 * FRAME)]
    out = crossfade(sound(tone[:FRAME]), sound(tone[FRAME:]))
    assert samples_of(out) == pytest.approx(tone[FRAME:], abs=1)


def test_frames_of_another_shape_are_not_blended() -> None:
    entering = sound([1.0] * FRAME)
    assert crossfade(sound([2.0] * (FRAME // 2)), entering) is entering
    assert crossfade(sound([2.0] * FRAME, "s16", "stereo"), entering) is entering


class _ValueDecoder:
    """Decodes a frame to FRAME samples of its sequence number (and remembers it)."""

    kind = "audio"
    mime_type = "audio/opus"

    def __init__(self, seen: list[int]) -> None:
        self._seen = seen

    def decode(self, frame: EncodedFrame) -> list[Any]:
        self._seen.append(frame.first_sequence_number)
        return [sound([float(frame.first_sequence_number)] * FRAME)]

    def close(self) -> None:
        pass


def test_merged_frames_are_decoded_and_the_timeline_stays_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A start-up stall raises the playout delay; on the clean path after it the delay comes
    back down by merges. Every packet is decoded, every frame handed out is FRAME samples long
    and the pts run on by FRAME, and a merged frame blends into its successor."""
    seen: list[int] = []
    registry = CodecRegistry(builtins=False)
    registry.register_decoder("opus", lambda codec: _ValueDecoder(seen))

    def inline_codec_thread(name: str, kind: str) -> CodecThread:
        # Every call inline: under MockClock, time jumps while a worker thread works.
        worker = CodecThread(name, inline_below=math.inf)
        worker._short_calls = INLINE_WINDOW
        return worker

    monkeypatch.setattr(pipeline, "_codec_thread", inline_codec_thread)
    count = 400
    got: list[av.AudioFrame] = []
    stats = pipeline.CodecStats()

    async def main() -> None:
        track = MediaStreamTrack("audio", remote=True)
        track._decoding = track._decoder_running = True
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: pipeline.run_decoder(track, registry=registry, stats=stats))

            async def read() -> None:
                while True:
                    got.append(await track.recv())

            nursery.start_soon(read)
            begin = trio.current_time()
            stall_end = begin + PERIOD + 0.1
            for i in range(count):
                arrival = max(begin + i * PERIOD, stall_end + i * 0.001) if i else begin
                await trio.sleep_until(arrival)
                track._deliver(
                    EncodedFrame(
                        b"x", i * FRAME, True, i, i, codec="audio/opus", arrival_time=arrival
                    )
                )
            await trio.sleep(1.0)
            nursery.cancel_scope.cancel()

    clock = trio.testing.MockClock(autojump_threshold=0)
    trio.run(main, clock=clock)
    assert seen == list(range(count))
    jitter = stats.jitter_buffer
    assert jitter is not None and jitter.removed_samples_for_acceleration >= 2 * FRAME
    merges = jitter.removed_samples_for_acceleration // FRAME
    assert len(got) == count - merges
    assert {frame.samples for frame in got} == {FRAME}
    assert [frame.pts for frame in got] == [i * FRAME for i in range(len(got))]
    blended = [frame for frame in got if len(set(samples_of(frame))) > 1]
    assert len(blended) == merges
    for frame in blended:
        values = samples_of(frame)
        assert values[-1] == pytest.approx(values[0] + 1, abs=0.01)
