"""Shared fixtures. The third-party peers themselves live in ``tests/peers`` (docs/interop.md)."""

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from peers.chromium import chromium_loopback, chromium_mdns  # noqa: F401 - session fixtures
from peers.coturn import CoturnServer, run_coturn


@pytest.fixture
async def coturn(tmp_path: Path) -> AsyncIterator[CoturnServer]:
    """A turnserver on 127.0.0.1 for this test only (~0.5 s to start); fails if not installed."""
    async with run_coturn(tmp_path) as server:
        yield server


# CI runs must be reproducible: the same examples on every run (a failure there is a real bug that
# a local run found first). Local runs keep hypothesis's random exploration, which is how the
# fuzzers find new bugs; a failing example is then replayed from .hypothesis/ until fixed.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _no_real_time_scheduling_left() -> Iterator[None]:
    """Fail the test that leaves the test process's main thread real-time.

    SVT-AV1 opened as root switches the opening thread to SCHED_FIFO 99. Every process started
    afterwards (browsers, Node and aiortc peers) inherits it, and one spinning real-time peer
    starves the machine: a later test hangs far from the cause. Whatever opens SVT-AV1 must
    do it inside ``trio_rtc.media.av_codecs._ordinary_scheduling()``."""
    yield
    if not hasattr(os, "sched_getscheduler"):
        return
    policy = os.sched_getscheduler(0)
    if policy in (getattr(os, "SCHED_FIFO", -1), getattr(os, "SCHED_RR", -1)):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))  # the next tests run normally
        pytest.fail("this test left the process's main thread on a real-time scheduling policy")
