"""Private network namespaces whose UDP the kernel drops at random, for tests of loss repair
against third-party peers.

A namespace is made with ``ip netns add`` under a unique name and deleted when the block ends
(normally, by an error or by cancellation); it has only ``lo``, so nothing in it can reach the
machine's networks. Loss is an ``nft`` rule on the namespace's input hook (PEERS.md, "Impaired
networks"): every datagram between two peers inside the namespace crosses that hook once, so a
rule dropping one UDP datagram in ten is 10 % loss in each direction, silent to the sender.

Needs root, ``ip`` (iproute2) and ``nft`` (nftables); without them the test fails with a message
saying what is missing rather than being skipped.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import trio
from peers.chromium import NetworkNamespace

#: The nft table (family inet) holding the loss rule; it exists only inside the namespace.
TABLE = "trio_rtc_impair"
CHAIN = "input"


def require_tools() -> None:
    """Fail the test, saying why, when namespaces or nft rules cannot be made here."""
    missing = [tool for tool in ("ip", "nft", "nsenter") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: the lossy-namespace tests need iproute2, nftables "
            "and util-linux (apt-get install iproute2 nftables util-linux)",
            pytrace=False,
        )
    if os.geteuid() != 0:
        pytest.fail("the lossy-namespace tests must run as root (ip netns add)", pytrace=False)


@dataclass(frozen=True)
class LossyNamespace:
    """A namespace made by :func:`lossy_namespace`; ``namespace`` puts sockets and commands in it."""

    name: str

    @property
    def namespace(self) -> NetworkNamespace:
        return NetworkNamespace(f"/run/netns/{self.name}")

    def _argv(self, nft: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, "nft", *nft]

    async def _nft(self, *argv: str) -> str:
        done = await trio.run_process(self._argv(list(argv)), capture_stdout=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"nft {' '.join(argv)} failed ({done.returncode})")
        return bytes(done.stdout).decode()

    async def set_udp_loss(self, percent: int) -> None:
        """Drop ``percent`` % of the UDP datagrams arriving in the namespace (0: none)."""
        if not 0 <= percent <= 100:
            raise ValueError(f"loss must be 0..100 %, not {percent}")
        await self._nft("flush", "chain", "inet", TABLE, CHAIN)
        if percent == 100:
            await self._nft("add", "rule", "inet", TABLE, CHAIN, "meta l4proto udp counter drop")
        elif percent > 0:
            rule = f"meta l4proto udp numgen random mod 100 < {percent} counter drop"
            await self._nft("add", "rule", "inet", TABLE, CHAIN, rule)

    async def udp_dropped(self) -> int:
        """Datagrams the current loss rule has dropped (since the last :meth:`set_udp_loss`)."""
        listing = json.loads(await self._nft("-j", "list", "chain", "inet", TABLE, CHAIN))
        dropped = 0
        for item in listing["nftables"]:
            for expression in item.get("rule", {}).get("expr", []):
                if "counter" in expression:
                    dropped += int(expression["counter"]["packets"])
        return dropped


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")


@contextmanager
def lossy_namespace(tag: str) -> Iterator[LossyNamespace]:
    """A fresh namespace with ``lo`` up and an empty input chain (no loss yet)."""
    require_tools()
    made = LossyNamespace(f"trio-rtc-{tag}-{os.getpid()}-{secrets.token_hex(3)}")
    _run(["ip", "netns", "add", made.name])
    try:
        _run(["ip", "-n", made.name, "link", "set", "lo", "up"])
        chain = "{ type filter hook input priority 0; policy accept; }"
        _run(["ip", "netns", "exec", made.name, "nft", "add", "table", "inet", TABLE])
        _run(["ip", "netns", "exec", made.name, "nft", "add", "chain", "inet", TABLE, CHAIN, chain])
        yield made
    finally:
        _run(["ip", "netns", "delete", made.name])
