"""Media between two trio_rtc peers over the lossy UDP relay (see relay_helpers): what the
lossy audio and video tests share."""

from __future__ import annotations

from typing import Any

import trio
from pc_helpers import pc_pair
from relay_helpers import connected_through_relay

from trio_rtc.media import RTCRtpSender
from trio_rtc.media.sources import ToneTrack
from trio_rtc.pc.media import RTCTrackEvent
from trio_rtc.testing import LinkConditions


def by_type(report: Any, kind: str) -> list[dict[str, Any]]:
    return [s for s in report.values() if s["type"] == kind]


async def lossy_audio(*, red_first: bool, seed: int) -> tuple[dict[str, Any], int, str, list[int]]:
    """A tone from ``a`` to ``b``, 4 s at 10 % loss after 1 s on a clean path: ``b``'s
    inbound-rtp, the packets the relay dropped, ``a``'s audio m-line and the pts ``b`` read.
    With ``red_first``, ``a`` prefers RED over Opus, so both sides send Opus in RED."""
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        a.addTrack(ToneTrack())  # type: ignore[arg-type]
        if red_first:
            capabilities = RTCRtpSender.getCapabilities("audio")
            assert capabilities is not None
            red, opus = (
                next(c for c in capabilities.codecs if c.mimeType == mime)
                for mime in ("audio/red", "audio/opus")
            )
            a.getTransceivers()[0].setCodecPreferences([red, opus])
        events: list[RTCTrackEvent] = []
        b.ontrack = events.append
        with trio.fail_after(60):
            async with connected_through_relay(a, b, seed=seed) as relay:
                assert a.localDescription is not None
                [m_line] = [x for x in a.localDescription.sdp.splitlines() if x.startswith("m=")]
                await b.wait_until(lambda: bool(events))
                remote = events[0].track
                pts: list[int] = []

                async def listen() -> None:
                    async for frame in remote:
                        pts.append(frame.pts)

                nursery.start_soon(listen)
                await trio.sleep(1.0)
                relay.set_conditions(LinkConditions(loss=0.1, delay=0.02, jitter=0.01))
                await trio.sleep(4.0)
                [inbound] = by_type(await b.getStats(), "inbound-rtp")
                lost = relay.forward_stats.dropped_loss
        nursery.cancel_scope.cancel()
    return inbound, lost, m_line, pts
