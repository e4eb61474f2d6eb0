"""Receiving simulcast from headless Chromium: its offer with three rids (RFC 8851/8853) is
answered, each layer arrives on its own SSRC, is routed by its rid and decodes at its own size
on the receiver's per-layer track; the receiver's own track follows the selected layer."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from pc_helpers import make_pc
from pc_interop_helpers import open_trio_peer
from peers.chromium import ChromiumBrowser, chromium_loopback
from test_pc_media_chromium import negotiate, section

from trio_rtc.pc.media import RTCTrackEvent

pytestmark = pytest.mark.interop

__all__ = ["chromium_loopback"]

ENCODINGS = [
    {"rid": "l", "scaleResolutionDownBy": 4, "maxBitrate": 150_000},
    {"rid": "m", "scaleResolutionDownBy": 2, "maxBitrate": 500_000},
    {"rid": "h", "maxBitrate": 1_500_000},
]


async def first_pictures(track: Any, count: int) -> list[tuple[int, int]]:
    sizes: list[tuple[int, int]] = []
    async for picture in track:
        sizes.append((picture.width, picture.height))
        if len(sizes) == count:
            break
    return sizes


async def test_chromium_simulcast_layers_each_decode(chromium_loopback: ChromiumBrowser) -> None:
    browser = chromium_loopback
    with trio.fail_after(60):
        async with browser.open_peer(page="media.html") as page:
            await page.request(
                "get_user_media", constraints={"video": {"width": 1280, "height": 720}}
            )
            await page.request("add_simulcast_video", encodings=ENCODINGS)
            with browser.namespace.sockets():
                async with make_pc(0) as pc, open_trio_peer(pc) as ours:
                    tracks: list[RTCTrackEvent] = []
                    pc.ontrack = tracks.append
                    answer = await negotiate(page, ours)
                    lines = section(answer["sdp"], "video")
                    assert "a=simulcast:recv l;m;h" in lines, lines
                    await pc.wait_until(lambda: bool(tracks))
                    receiver = tracks[0].receiver
                    layers = receiver.layer_tracks()
                    assert list(layers) == ["l", "m", "h"]
                    assert receiver.selected_layer == "l"
                    sizes: dict[str, list[tuple[int, int]]] = {}

                    async def read(rid: str) -> None:
                        sizes[rid] = await first_pictures(layers[rid], 10)

                    async with trio.open_nursery() as nursery:
                        for rid in layers:
                            nursery.start_soon(read, rid)
                        main = await first_pictures(receiver.track, 5)
                    receiver.select_layer("h")
                    switched: list[tuple[int, int]] = []
                    async for picture in receiver.track:
                        switched.append((picture.width, picture.height))
                        if switched[-1] == (1280, 720):
                            break
                    report = await pc.getStats()
            inbound = [s for s in report.values() if s["type"] == "inbound-rtp"]
    assert sizes["h"][-1] == (1280, 720), sizes
    assert sizes["m"][-1] == (640, 360), sizes
    assert sizes["l"][-1] == (320, 180), sizes
    assert set(main) == {(320, 180)}, main
    assert switched[-1] == (1280, 720)
    assert len(inbound) == 3  # one inbound-rtp per layer's SSRC
