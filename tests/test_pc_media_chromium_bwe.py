"""Congestion control against headless Chromium, both ways, behind a link limit.

Video flows both ways (Chromium's fake camera to us, our test pattern to Chromium) over the
loopback interface of the browser's network namespace, rate-limited with ``tc … tbf``. Both
send-side estimates must settle under the limit: Chromium's only moves with our transport-wide
feedback, ours only with Chromium's. The limit is removed afterwards (the browser is shared by
the session).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
from pc_helpers import make_pc
from pc_interop_helpers import open_trio_peer
from peers.chromium import ChromiumBrowser, chromium_loopback
from test_pc_media_chromium import CAMERA, CODECS, negotiate

from trio_rtc.media.sources import TestPatternTrack
from trio_rtc.pc.media import RTCTrackEvent

pytestmark = pytest.mark.interop

__all__ = ["chromium_loopback"]

LIMIT = 1_000_000  # bits/s, on loopback: both directions share it


@contextmanager
def rate_limited(browser: ChromiumBrowser, bits_per_second: int) -> Iterator[None]:
    def tc(*args: str) -> None:
        subprocess.run(browser.namespace.command(["tc", *args]), check=True, capture_output=True)

    tc("qdisc", "add", "dev", "lo", "root", "tbf", "rate", f"{bits_per_second}bit",
       "burst", "16kb", "latency", "100ms")  # fmt: skip
    try:
        yield
    finally:
        tc("qdisc", "del", "dev", "lo", "root")


async def test_both_estimates_follow_a_link_limit(chromium_loopback: ChromiumBrowser) -> None:
    browser = chromium_loopback
    with trio.fail_after(60):
        async with browser.open_peer(page="media.html") as page:
            with browser.namespace.sockets():
                async with make_pc(0) as pc, open_trio_peer(pc) as ours:
                    pc.addTrack(TestPatternTrack(640, 480, 30))  # type: ignore[arg-type]
                    tracks: list[RTCTrackEvent] = []
                    pc.ontrack = tracks.append

                    async def camera() -> None:
                        await page.request("get_user_media", constraints={"video": CAMERA["video"]})
                        await page.request("add_tracks", codecs={"video": CODECS["vp8"]})

                    await negotiate(ours, page, before_answer=camera)
                    await pc.wait_until(lambda: bool(tracks))
                    with rate_limited(browser, LIMIT):
                        # Both estimates settle within about 8 s; a loaded machine may take
                        # longer, so look each second for up to 20 s.
                        await trio.sleep(8)
                        for _ in range(12):
                            theirs: dict[str, Any] = await page.request("stats")
                            report = await pc.getStats()
                            settled = [
                                s["availableOutgoingBitrate"]
                                for s in report.values()
                                if s["type"] == "candidate-pair" and "availableOutgoingBitrate" in s
                            ]
                            if (theirs.get("availableOutgoingBitrate") or LIMIT) < LIMIT and all(
                                e < LIMIT for e in settled
                            ):
                                break
                            await trio.sleep(1)
                    ours_estimate = [
                        s["availableOutgoingBitrate"]
                        for s in report.values()
                        if s["type"] == "candidate-pair" and "availableOutgoingBitrate" in s
                    ]
                    rtp = pc._media.rtp
                    assert rtp is not None
                    feedback = (
                        rtp.counters.twcc_feedback_sent,
                        rtp.counters.twcc_feedback_received,
                    )
    chromium_estimate = theirs.get("availableOutgoingBitrate")
    print(f"estimates under {LIMIT} bit/s: chromium {chromium_estimate}, ours {ours_estimate}; "
          f"TWCC feedback sent/received {feedback}")  # fmt: skip
    assert feedback[0] > 0 and feedback[1] > 0
    assert chromium_estimate is not None and chromium_estimate < LIMIT, theirs
    [estimate] = ours_estimate
    assert estimate < LIMIT
