"""Sending simulcast between two trio_rtc peers: three encodings of one test pattern, each on
its own SSRC with its rid, decoded on the receiver's per-layer tracks at their own sizes; behind
a narrow link congestion control pauses the layers it cannot feed, the smallest kept."""

from __future__ import annotations

from typing import Any

import trio
from pc_helpers import pc_pair
from relay_helpers import connected_through_relay

from trio_rtc.media.sources import TestPatternTrack
from trio_rtc.pc.media import RTCTrackEvent
from trio_rtc.testing import LinkConditions

ENCODINGS = [
    {"rid": "l", "scaleResolutionDownBy": 4},
    {"rid": "m", "scaleResolutionDownBy": 2},
    {"rid": "h"},
]


async def sizes_of(track: Any, count: int) -> list[tuple[int, int]]:
    sizes: list[tuple[int, int]] = []
    async for picture in track:
        sizes.append((picture.width, picture.height))
        if len(sizes) == count:
            break
    return sizes


def outbound_by_rid(report: Any) -> dict[str, dict[str, Any]]:
    return {s["rid"]: s for s in report.values() if s["type"] == "outbound-rtp"}


async def test_three_layers_reach_the_receiver_and_follow_the_link() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        a.addTransceiver(
            TestPatternTrack(640, 480, 30),  # type: ignore[arg-type]
            {"direction": "sendonly", "sendEncodings": ENCODINGS},
        )
        events: list[RTCTrackEvent] = []
        b.ontrack = events.append
        with trio.fail_after(60):
            async with connected_through_relay(a, b, seed=29) as relay:
                assert b.remoteDescription is not None
                assert "a=simulcast:send l;m;h" in b.remoteDescription.sdp
                await b.wait_until(lambda: bool(events))
                receiver = events[0].receiver
                layers = receiver.layer_tracks()
                assert list(layers) == ["l", "m", "h"]
                sizes: dict[str, list[tuple[int, int]]] = {}

                async def read(rid: str) -> None:
                    sizes[rid] = await sizes_of(layers[rid], 10)

                async with trio.open_nursery() as readers:
                    for rid in layers:
                        readers.start_soon(read, rid)
                wide = outbound_by_rid(await a.getStats())
                relay.set_conditions(LinkConditions(rate=250_000 / 8, delay=0.01))
                await trio.sleep(6)
                narrow = outbound_by_rid(await a.getStats())
                inbound = [s for s in (await b.getStats()).values() if s["type"] == "inbound-rtp"]
        nursery.cancel_scope.cancel()
    assert sizes["l"][-1] == (160, 120), sizes
    assert sizes["m"][-1] == (320, 240), sizes
    assert sizes["h"][-1] == (640, 480), sizes
    assert len(inbound) == 3
    assert set(wide) == {"l", "m", "h"} and all(s["active"] for s in wide.values()), wide
    # 250 kbit/s feeds the smallest layer; the largest is paused.
    assert narrow["l"]["active"], narrow
    assert not narrow["h"]["active"], narrow
