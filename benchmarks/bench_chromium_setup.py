"""Setup time against headless Chromium: trio_rtc ↔ Chromium in both offerer roles, beside
Chromium ↔ Chromium, on loopback.

What is timed, in every variant: from ``createOffer`` to a data channel open on both sides, with
candidates trickled as they are gathered (how browsers and most applications signal).

- ``chromium-pair``: two RTCPeerConnections inside one Chromium page, signalled inside the page
  (``local_pair_setup`` in ``tests/peers/web/peer.js``), timed with ``performance.now()``: the
  browser alone, with no signalling cost at all — the strictest reference.
- ``chromium-pages``: two Chromium pages signalled through this process, as the two variants
  below are (each offer, answer and candidate is a WebSocket round trip to a page).
- ``trio-offers`` / ``chromium-offers``: a default ``RTCPeerConnection()`` of trio_rtc in this
  process and one Chromium page; the page side pays the same WebSocket round trips as above,
  trio_rtc's side none.

The browser runs as the interop tests run it (``tests/peers/chromium.py``, mode ``loopback``): in
a network namespace of its own with only ``lo``, where it gathers 127.0.0.1; trio_rtc's sockets
are created in that namespace and, having nothing else, gather loopback too. Variants alternate
within each round (A B C D, A B C D, ...), each setup with fresh connections and fresh pages
opened before the clock starts. Medians and quartiles are printed, with the ratio of each variant
to the two Chromium references.

    .venv/bin/python benchmarks/bench_chromium_setup.py [--runs 9] [--json setup.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from pc_interop_helpers import InteropPeer, open_trio_peer  # noqa: E402
from peers.chromium import ChromiumBrowser  # noqa: E402

from trio_rtc import RTCPeerConnection  # noqa: E402

VARIANTS = ("chromium-pair", "chromium-pages", "trio-offers", "chromium-offers")
LABEL = "bench"


async def _relay(source: InteropPeer, sink: InteropPeer) -> None:
    async for candidate in source.candidates():
        await sink.add_candidate(candidate)


async def timed_setup(offerer: InteropPeer, answerer: InteropPeer) -> float:
    """Milliseconds from createOffer to the channel (made by the offerer) open on both sides."""
    await offerer.create_channel(LABEL)
    start = time.perf_counter()
    offer = await offerer.create_offer()
    await answerer.set_remote(offer)
    answer = await answerer.create_answer()
    async with trio.open_nursery() as nursery:
        # A candidate must not reach a peer before its remote description: relays start here.
        nursery.start_soon(_relay, offerer, answerer)
        await offerer.set_remote(answer)
        nursery.start_soon(_relay, answerer, offerer)
        await offerer.wait_channel(LABEL)
        await answerer.wait_channel(LABEL)
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return elapsed * 1000


async def chromium_pair(browser: ChromiumBrowser) -> float:
    async with browser.open_peer() as page:
        return float(await page.request("local_pair_setup"))


async def chromium_pages(browser: ChromiumBrowser) -> float:
    async with browser.open_peer() as offerer, browser.open_peer() as answerer:
        return await timed_setup(offerer, answerer)


async def with_trio(browser: ChromiumBrowser, *, trio_offers: bool) -> float:
    async with browser.open_peer() as page:
        with browser.namespace.sockets():
            async with RTCPeerConnection() as pc, open_trio_peer(pc) as ours:
                if trio_offers:
                    return await timed_setup(ours, page)
                return await timed_setup(page, ours)


def runners(browser: ChromiumBrowser) -> dict[str, Callable[[], Awaitable[float]]]:
    return {
        "chromium-pair": lambda: chromium_pair(browser),
        "chromium-pages": lambda: chromium_pages(browser),
        "trio-offers": lambda: with_trio(browser, trio_offers=True),
        "chromium-offers": lambda: with_trio(browser, trio_offers=False),
    }


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else [ordered[0]] * 3
    return {
        "median": statistics.median(ordered),
        "p25": quartiles[0],
        "p75": quartiles[2],
        "min": ordered[0],
        "max": ordered[-1],
    }


async def measure(runs: int, warmup: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-chromium-") as work:
        browser = ChromiumBrowser.launch("loopback", Path(work))
        try:
            run = runners(browser)
            times: dict[str, list[float]] = {name: [] for name in VARIANTS}
            for round_number in range(warmup + runs):
                for name in VARIANTS:
                    with trio.fail_after(60):
                        value = await run[name]()
                    if round_number >= warmup:
                        times[name].append(value)
                print(
                    f"round {round_number + 1}/{warmup + runs}"
                    + (" (warm-up)" if round_number < warmup else ""),
                    "  ".join(f"{name} {times[name][-1]:.1f}" for name in VARIANTS if times[name])
                    if round_number >= warmup
                    else "",
                    file=sys.stderr,
                )
            user_agent = await chromium_user_agent(browser)
        finally:
            browser.close()
    return {"runs": runs, "user_agent": user_agent, "times_ms": times}


async def chromium_user_agent(browser: ChromiumBrowser) -> str:
    async with browser.open_peer() as page:
        configured = await page.request("configure", config={"trickle": True})
        return str(configured["userAgent"])


def print_table(result: dict[str, Any]) -> None:
    times: dict[str, list[float]] = result["times_ms"]
    stats = {name: summary(values) for name, values in times.items()}
    pair = stats["chromium-pair"]["median"]
    pages = stats["chromium-pages"]["median"]
    print(f"{result['user_agent']}")
    print(
        f"medians of {result['runs']} runs, ms from createOffer to the channel open on both sides"
    )
    print(f"{'variant':<16} {'median':>8} {'p25':>8} {'p75':>8}  {'/ pair':>7} {'/ pages':>8}")
    for name in VARIANTS:
        s = stats[name]
        print(
            f"{name:<16} {s['median']:8.1f} {s['p25']:8.1f} {s['p75']:8.1f}"
            f"  {s['median'] / pair:7.2f} {s['median'] / pages:8.2f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=9, help="measured rounds (default 9)")
    parser.add_argument("--warmup", type=int, default=1, help="rounds not counted (default 1)")
    parser.add_argument("--json", type=Path, help="write every value here")
    args = parser.parse_args()
    result = trio.run(measure, args.runs, args.warmup)
    print_table(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
