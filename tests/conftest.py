"""Shared fixtures. The third-party peers themselves live in ``tests/peers`` (docs/interop.md)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from peers.chromium import chromium_loopback, chromium_mdns  # noqa: F401 - session fixtures
from peers.coturn import CoturnServer, run_coturn


@pytest.fixture
async def coturn(tmp_path: Path) -> AsyncIterator[CoturnServer]:
    """A turnserver on 127.0.0.1 for this test only (~0.5 s to start); fails if not installed."""
    async with run_coturn(tmp_path) as server:
        yield server
