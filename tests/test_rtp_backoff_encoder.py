"""The video encoder follows a congestion back-off at once (issue 13, scenario c).

libvpx takes a new rate only by reopening (a keyframe), so a rise waits for the reopen
interval; a large fall must not: after a 3 -> 1 Mbit/s step the estimate fell in two cuts
100 ms apart, the second one waited a second in the encoder and the bottleneck overflowed.
``_REOPEN_INTERVAL`` is set far out so that no test depends on how fast this machine encodes.
"""

from __future__ import annotations

from typing import Any

import av
import pytest

from trio_rtc.jsep.codecs import NegotiatedCodec
from trio_rtc.media import av_codecs
from trio_rtc.media.coding import EncoderSettings


def picture(index: int) -> Any:
    frame = av.VideoFrame(320, 240, "yuv420p")
    for plane in frame.planes:
        plane.update(bytes((index * 7 + i) % 251 for i in range(plane.buffer_size)))
    frame.pts = index * 3000
    frame.time_base = av_codecs._VIDEO_TIME_BASE
    return frame


@pytest.fixture
def encoder(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(av_codecs, "_REOPEN_INTERVAL", 1e9)
    encoder = av_codecs.Vp8Encoder(NegotiatedCodec(96, "VP8", 90000), EncoderSettings())
    encoder.set_target(bitrate=1_000_000)
    yield encoder
    encoder.close()


def test_a_large_fall_reopens_at_once_with_a_keyframe(encoder: Any) -> None:
    frames = [encoder.encode(picture(i)) for i in range(3)]
    assert frames[0][0].keyframe and not frames[2][0].keyframe
    encoder.set_target(bitrate=600_000)
    (after,) = encoder.encode(picture(3))
    assert after.keyframe
    assert encoder._bitrate == 600_000


def test_a_small_fall_or_a_rise_waits(encoder: Any) -> None:
    for i in range(3):
        encoder.encode(picture(i))
    encoder.set_target(bitrate=900_000)  # within 15 %: not worth a keyframe
    assert not encoder.encode(picture(3))[0].keyframe
    encoder.set_target(bitrate=2_000_000)  # a rise: only once the interval has passed
    assert not encoder.encode(picture(4))[0].keyframe
    assert encoder._bitrate == 1_000_000


def test_a_change_beyond_6_percent_reopens_once_the_interval_has_passed(
    encoder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        encoder.encode(picture(i))
    monkeypatch.setattr(av_codecs, "_REOPEN_INTERVAL", 0.0)
    encoder.set_target(bitrate=1_040_000)  # within 6 %: not worth a keyframe
    assert not encoder.encode(picture(3))[0].keyframe
    assert encoder._bitrate == 1_000_000
    encoder.set_target(bitrate=1_080_000)  # 8 % up, and the interval has passed
    assert encoder.encode(picture(4))[0].keyframe
    assert encoder._bitrate == 1_080_000
    encoder.set_target(bitrate=1_000_000)  # 7.4 % down: the same rule
    assert encoder.encode(picture(5))[0].keyframe
    assert encoder._bitrate == 1_000_000
