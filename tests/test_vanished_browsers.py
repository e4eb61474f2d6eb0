"""A browser that vanishes from the network, with the real clock: consent freshness (RFC 7675)
against headless Chromium and Firefox ESR.

The same windows as test_vanished_peer.py (``vanish_helpers.check_vanish``): trio_rtc's
``connectionState`` turns ``disconnected`` 5 s and ``failed`` 30 s after the last consent
response when the browser stops answering, and a browser that comes back after 10 s (before
``failed``) brings it back to ``connected``, with messages again each way (one sent by trio_rtc
and echoed by the page, one sent by the page).

How the browser vanishes: its UDP is dropped, not its process stopped. SIGSTOP of a browser stops
every page it holds, and one browser of each kind serves both scenarios here (stays away, comes
back), all four scenarios at once, so the file takes ~35 s (Firefox's start, 2-5 s when warm, up
to 30 s cold, delays only its own two). Each scenario's trio_rtc connection has its own UDP port,
and an ``nft`` set on the namespace's input hook drops every datagram from or to the ports put in
it (both directions of every pair cross that hook once on ``lo``, so the drop is silent: no ICMP,
no error on either side). Adding the ports is the vanishing, removing them the return; both wait
until the connection is settled (a pair nominated and a consent response since, see
``vanish_helpers.wait_consent_settled``). The browser keeps running meanwhile, so it also sees
its own checks go unanswered, as when a network path dies.

Where everything runs: one network namespace, the one Chromium starts in (``peers/chromium.py``,
mode ``loopback``: raw 127.0.0.1 candidates). Firefox gathers only when an interface besides
``lo`` has a default route (PEERS.md), so the test adds a veth pair with both ends inside
(10.78.0.1/24) and a default route into it before starting Firefox there. Both browsers, the page
servers, the control WebSockets and trio_rtc's sockets share that namespace, so one
``namespace.sockets()`` block covers every scenario running at once (those blocks are process-wide
and do not nest). Firefox opens its two pages (``web/peer.js``, the control protocol Chromium's
pages speak) from its command line.

Times are printed (``pytest -s``), the browsers' own connection states too.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from pc_helpers import make_pc
from pc_interop_helpers import TrioPeer, connect, open_trio_peer
from peers.chromium import BrowserPeer, ChromiumBrowser, NetworkNamespace
from peers.signaling import PageServer, open_service_nursery, serve_pages
from test_end_of_candidates_firefox import USER_JS
from vanish_helpers import CHANNEL, check_vanish, echo_once

pytestmark = pytest.mark.interop

FIREFOX = shutil.which("firefox-esr")
#: The veth Firefox needs (both ends inside the namespace; nothing outside has this network).
VETH_SETUP = [
    ["ip", "link", "add", "veth0", "type", "veth", "peer", "name", "veth1"],
    ["ip", "addr", "add", "10.78.0.1/24", "dev", "veth0"],
    ["ip", "link", "set", "veth0", "up"],
    ["ip", "link", "set", "veth1", "up"],
    ["ip", "route", "add", "default", "via", "10.78.0.254", "dev", "veth0"],
]
#: The nft table (family inet) of the drop rules; it exists only inside the namespace.
TABLE = "trio_rtc_vanish"
RULESET = f"""
table inet {TABLE} {{
    set gone {{ type inet_service; }}
    chain input {{
        type filter hook input priority 0; policy accept;
        udp sport @gone counter drop
        udp dport @gone counter drop
    }}
}}
"""
#: A cold Firefox takes 4-30 s here to load its first page (test_end_of_candidates_firefox.py).
FIREFOX_START = 60.0
LOG_TAIL = 16 * 1024
PAGE_CONFIG: dict[str, Any] = {"trickle": True, "echo": True, "configuration": {"iceServers": []}}


async def run_in(namespace: NetworkNamespace, argv: list[str], stdin: bytes = b"") -> None:
    done = await trio.run_process(
        namespace.command(argv), stdin=stdin, capture_stdout=True, capture_stderr=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)}: {done.stderr.decode().strip()}", pytrace=False)


class UdpDrop:
    """The nft set of local UDP ports whose datagrams the namespace drops, both ways."""

    def __init__(self, namespace: NetworkNamespace) -> None:
        self.namespace = namespace

    async def _element(self, verb: str, ports: list[int]) -> None:
        elements = ", ".join(str(port) for port in ports)
        await run_in(
            self.namespace, ["nft", verb, "element", "inet", TABLE, "gone", f"{{ {elements} }}"]
        )

    async def add(self, ports: list[int]) -> None:
        await self._element("add", ports)

    async def remove(self, ports: list[int]) -> None:
        await self._element("delete", ports)


@asynccontextmanager
async def firefox(
    namespace: NetworkNamespace, work_dir: Path, urls: list[str]
) -> AsyncIterator[Path]:
    """Firefox ESR headless in ``namespace``, one tab per URL; yields its log file (stdout and
    stderr, page console included). Stopped by its process group."""
    assert FIREFOX is not None, "firefox-esr is not installed (bash .ci/setup installs it)"
    profile = work_dir / "profile"
    profile.mkdir(parents=True)
    (profile / "user.js").write_text(USER_JS)
    log_path = work_dir / "firefox.log"
    with log_path.open("wb") as log_file:
        process = await trio.lowlevel.open_process(
            namespace.command(
                [FIREFOX, "--headless", "--no-remote", "--profile", str(profile), *urls]
            ),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield log_path
        except BaseException as exc:
            if isinstance(exc, Exception):
                tail = log_path.read_bytes()[-LOG_TAIL:].decode("utf-8", "replace")
                exc.add_note(f"firefox log (tail):\n{tail}")
            raise
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    os.killpg(process.pid, signal.SIGTERM)
                    with trio.move_on_after(10):
                        await process.wait()
                if process.returncode is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    await process.wait()


@asynccontextmanager
async def firefox_page(server: PageServer, token: str) -> AsyncIterator[BrowserPeer]:
    """The page of ``token`` once it connected back, configured like Chromium's pages."""
    peer = BrowserPeer(PAGE_CONFIG, timeout=15)
    peer.name = "firefox page"
    start = trio.current_time()
    with trio.fail_after(FIREFOX_START):
        ws, done = await server.wait_page(token)
    try:
        async with open_service_nursery() as nursery:
            peer._ws = ws
            nursery.start_soon(peer._read, ws)
            await peer.request("configure", config=PAGE_CONFIG)
            peer.page_seconds = trio.current_time() - start
            yield peer
    except BaseException as exc:
        if isinstance(exc, Exception):
            exc.add_note(peer.debug_text())
        raise
    finally:
        done.set()


async def vanish(
    browser: str,
    open_page: Callable[[], AbstractAsyncContextManager[BrowserPeer]],
    drop: UdpDrop,
    *,
    come_back: bool,
    results: dict[str, str],
) -> None:
    """Connect to a page (trio_rtc offers when the browser stays away, the page offers when it
    comes back), drop the connection's UDP, and check what trio_rtc's connection goes through."""
    trio_offers = not come_back
    name = f"{browser} {'comes back' if come_back else 'stays away'}"
    async with (
        open_page() as page,
        make_pc(0) as pc,
        open_trio_peer(pc) as ours,
    ):
        offerer: TrioPeer | BrowserPeer = ours if trio_offers else page
        answerer: TrioPeer | BrowserPeer = page if trio_offers else ours
        # The page echoes (it is configured to echo the channels trio_rtc opens, too).
        await offerer.create_channel(CHANNEL, echo=not trio_offers)
        with trio.fail_after(15):
            await connect(offerer, answerer, trickle=True)
            await ours.wait_channel(CHANNEL)
            await echo_once(ours, "before")
        ice = pc.ice_transport
        assert ice is not None
        ports = sorted({candidate.port for candidate in ice.agent.local_candidates})
        await check_vanish(
            pc,
            ours,
            name=name,
            vanish=functools.partial(drop.add, ports),
            come_back=functools.partial(drop.remove, ports) if come_back else None,
            results=results,
        )
        if come_back:
            with trio.fail_after(10):
                await page.send(CHANNEL, "from the page")
                assert await ours.receive(CHANNEL) == "from the page"
        results[name] += (
            f"; page ready after {page.page_seconds:.1f} s, its own states {page.state_history()}"
        )


async def test_vanished_browsers_disconnect_fail_or_recover(tmp_path: Path) -> None:
    """Chromium and Firefox, each staying away and coming back, all at once (module doc)."""
    assert FIREFOX is not None, "firefox-esr is not installed (bash .ci/setup installs it)"
    assert shutil.which("nft") is not None, "nft is not installed (apt-get install nftables)"
    results: dict[str, str] = {}
    chromium = await trio.to_thread.run_sync(
        ChromiumBrowser.launch, "loopback", tmp_path / "chromium"
    )
    try:
        namespace = chromium.namespace
        for argv in VETH_SETUP:
            await run_in(namespace, argv)
        await run_in(namespace, ["nft", "-f", "-"], RULESET.encode())
        drop = UdpDrop(namespace)
        with trio.fail_after(FIREFOX_START + 60), namespace.sockets():
            async with serve_pages(namespace.listen) as server:
                tokens, urls = zip(*(server.new_page() for _ in range(2)), strict=True)
                async with (
                    firefox(namespace, tmp_path / "firefox", list(urls)),
                    trio.open_nursery() as nursery,
                ):
                    for come_back, token in zip((False, True), tokens, strict=True):
                        nursery.start_soon(
                            functools.partial(
                                vanish,
                                "chromium",
                                functools.partial(chromium.open_peer, trickle=True, echo=True),
                                drop,
                                come_back=come_back,
                                results=results,
                            )
                        )
                        nursery.start_soon(
                            functools.partial(
                                vanish,
                                "firefox",
                                functools.partial(firefox_page, server, token),
                                drop,
                                come_back=come_back,
                                results=results,
                            )
                        )
    finally:
        chromium.close()
    for name, text in sorted(results.items()):
        print(f"{name}: {text}")
    assert len(results) == 4
