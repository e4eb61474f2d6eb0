"""Shared fixtures. The third-party peers themselves live in ``tests/peers`` (docs/interop.md)."""

import os
from collections.abc import AsyncIterator
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
