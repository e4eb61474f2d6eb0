"""Headless Chromium (Debian ``chromium``) as a WebRTC test peer, in a network namespace of its own.

One browser per pytest session and mode (fixtures ``chromium_loopback`` and ``chromium_mdns``), a
fresh page per test::

    async def test_x(chromium_loopback: ChromiumBrowser) -> None:
        async with chromium_loopback.open_peer(trickle=True) as browser_peer:
            offer = await browser_peer.create_offer()  # a PeerControl (signaling.py)
            ...

Why a namespace: without ``--disable-features=WebRtcHideLocalIpsWithMdns`` Chromium names its
host candidates ``<uuid>.local`` and announces them by multicast (224.0.0.251:5353) on every
interface with a default route, so in the machine's own namespace it would multicast out of the
real interface. The browser is therefore started by ``unshare --net`` in a namespace that holds
nothing the outside world can reach:

- mode ``loopback`` (flags ``--disable-features=WebRtcHideLocalIpsWithMdns
  --allow-loopback-in-peer-connection --use-fake-ui-for-media-stream``): only ``lo``; Chromium
  gathers exactly 127.0.0.1 (the fake media permission is what lets it use a non-default-route
  interface such as loopback at all; without it there are no candidates in such a namespace).
- mode ``mdns`` (no feature flag): ``lo`` plus a veth pair whose both ends stay inside, with
  10.77.0.1/24 and a default route into it; Chromium gathers one ``<uuid>.local`` candidate for
  10.77.0.1 and announces it on that veth, where nothing listens but the namespace's own peers.

Everything that talks to the browser joins its namespace: the page server and the DevTools
connection (sockets created inside, ``namespace.socket()``), subprocess peers
(``namespace.command``), and the peer under test: ``with browser.namespace.sockets():`` around
the code that creates its sockets makes every socket created meanwhile live in the namespace.

The page (``web/peer.js``) is served over HTTP on 127.0.0.1 by the test and connects back over a
trio-websocket control channel; DevTools (``--remote-debugging-port``, in the namespace) is used
only to open and close pages.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import trio
import trio_websocket

from peers.signaling import (
    DEFAULT_TIMEOUT,
    PeerControl,
    PeerError,
    open_service_nursery,
    serve_pages,
)

CHROMIUM = "/usr/bin/chromium"
BASE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    # Console messages and page errors also reach chromium.log (attached to failures), which
    # matters when a page fails before its control WebSocket is up.
    "--enable-logging=stderr",
    "--v=0",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]
LOOPBACK_FLAGS = [
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--allow-loopback-in-peer-connection",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
MDNS_FLAGS = ["--allow-loopback-in-peer-connection"]
# The veth address that mode mdns hides behind <uuid>.local; nothing outside the namespace has it.
MDNS_NETWORK = "10.77.0.0/24"
NAMESPACE_SETUP = {
    "loopback": "ip link set lo up",
    "mdns": (
        "ip link set lo up"
        " && ip link add veth0 type veth peer name veth1"
        " && ip addr add 10.77.0.1/24 dev veth0"
        " && ip link set veth0 up && ip link set veth1 up"
        " && ip route add default via 10.77.0.254 dev veth0"
    ),
}
CLONE_NEWNET = 0x40000000
LOG_TAIL = 16 * 1024
DEVTOOLS_TIMEOUT = 10.0

Mode = Literal["loopback", "mdns"]


class ChromiumError(Exception):
    """Chromium is missing, did not start, or its DevTools endpoint misbehaved."""


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({path}): {os.strerror(errno)}")
    finally:
        os.close(fd)


@dataclass(frozen=True)
class NetworkNamespace:
    """A network namespace held by a process (the browser): ``/proc/<pid>/ns/net``."""

    path: str
    # Networks besides loopback that exist inside (and only inside) the namespace.
    allowed_networks: tuple[str, ...] = ()

    def listen(self) -> socket.socket:
        """A TCP socket listening on the namespace's 127.0.0.1 (an ephemeral port)."""
        sock = self.socket()
        try:
            sock.bind(("127.0.0.1", 0))
            sock.listen(16)
        except BaseException:
            sock.close()
            raise
        return sock

    def connect(self, port: int) -> socket.socket:
        """A TCP socket connected to the namespace's 127.0.0.1:port (blocking, 5 s at most)."""
        sock = self.socket()
        try:
            sock.settimeout(5)
            sock.connect(("127.0.0.1", port))
        except BaseException:
            sock.close()
            raise
        return sock

    def socket(
        self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
    ) -> socket.socket:
        """A new socket that lives in the namespace (see :meth:`_inside`)."""
        with self._inside():
            return socket.socket(family, type, proto)

    @contextmanager
    def _inside(self) -> Iterator[None]:
        """The calling thread enters the namespace for the block, which must be synchronous and
        short (a socket(2) call): nothing else runs meanwhile (no await, no thread is started),
        so no other socket, thread or process can end up there by accident."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            _setns(self.path)
            try:
                yield
            finally:
                _setns(f"/proc/self/fd/{home}")
        finally:
            os.close(home)

    @contextmanager
    def sockets(self) -> Iterator[None]:
        """Every socket this process creates during the block lives in the namespace.

        For the peer under test, whose code opens its own sockets: ``socket.socket.__init__``
        is wrapped for the block so that socket(2) runs inside the namespace (``socket.socket``,
        ``trio.socket.socket`` and everything built on them; sockets wrapping an existing fd are
        left alone). Types and ``isinstance`` are unchanged. Other threads creating sockets
        meanwhile are caught too, which is what a test wants.
        """
        original = socket.socket.__init__
        if getattr(original, "_netns_wrapped", False):
            raise RuntimeError("sockets() blocks do not nest")
        namespace = self

        def __init__(
            sock: socket.socket,
            family: int = -1,
            type: int = -1,
            proto: int = -1,
            fileno: int | None = None,
        ) -> None:
            if fileno is not None:
                original(sock, family, type, proto, fileno)
                return
            with namespace._inside():
                original(sock, family, type, proto, fileno)

        __init__._netns_wrapped = True  # type: ignore[attr-defined]
        socket.socket.__init__ = __init__  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            socket.socket.__init__ = original  # type: ignore[method-assign]

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["nsenter", f"--net={self.path}", "--", *argv]


class BrowserPeer(PeerControl):
    """A page's RTCPeerConnection, controlled over its WebSocket (see signaling.PeerControl)."""

    def __init__(self, config: dict[str, Any], *, timeout: float) -> None:
        super().__init__("chromium page", config, timeout=timeout)
        self._ws: trio_websocket.WebSocketConnection | None = None
        self.page_seconds = 0.0

    async def _send_raw(self, message: dict[str, Any]) -> None:
        if self._ws is None:
            raise PeerError("the page is not connected")
        try:
            await self._ws.send_message(json.dumps(message))
        except trio_websocket.ConnectionClosed as exc:
            raise PeerError(f"the page's control WebSocket closed: {exc}") from exc

    async def _read(self, ws: trio_websocket.WebSocketConnection) -> None:
        try:
            while True:
                text = await ws.get_message()
                try:
                    message = json.loads(text)
                except ValueError:
                    message = {"type": "log", "level": "error", "text": f"not JSON: {text!r}"}
                if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                    message = {"type": "log", "level": "error", "text": f"bad event: {text!r}"}
                self._record(message)
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            self._transport_ended()


class DevTools:
    """Just enough of the Chrome DevTools Protocol to open and close pages."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        call_id = self.next_id
        await self.ws.send_message(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await self.ws.get_message())
            if reply.get("id") != call_id:
                continue  # an event; none is subscribed, but ignore them anyway
            if "error" in reply:
                raise ChromiumError(f"DevTools {method}: {reply['error']}")
            return dict(reply.get("result", {}))


@dataclass
class ChromiumBrowser:
    """A running headless Chromium (one per session and mode); ``close()`` stops it by pid."""

    mode: Mode
    process: subprocess.Popen[bytes]
    work_dir: Path
    namespace: NetworkNamespace
    devtools_port: int
    devtools_path: str
    launch_seconds: float

    @classmethod
    def launch(cls, mode: Mode, work_dir: Path, *, timeout: float = 30.0) -> ChromiumBrowser:
        if not os.access(CHROMIUM, os.X_OK):
            raise ChromiumError(f"{CHROMIUM} not found: apt-get install chromium (.ci/setup)")
        for tool in ("unshare", "nsenter", "ip"):
            if shutil.which(tool) is None:
                raise ChromiumError(f"{tool} not found (util-linux, iproute2)")
        work_dir.mkdir(parents=True, exist_ok=True)
        profile = work_dir / "profile"
        profile.mkdir()
        flags = [*BASE_FLAGS, f"--user-data-dir={profile}"]
        flags += LOOPBACK_FLAGS if mode == "loopback" else MDNS_FLAGS
        command = [
            "unshare",
            "--net",
            "--",
            "sh",
            "-c",
            NAMESPACE_SETUP[mode] + ' && exec "$0" "$@"',
            CHROMIUM,
            *flags,
            "about:blank",
        ]
        env = dict(os.environ, XDG_CONFIG_HOME=str(work_dir), XDG_CACHE_HOME=str(work_dir))
        start = time.monotonic()
        with open(work_dir / "chromium.log", "wb") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        browser = cls(
            mode=mode,
            process=process,
            work_dir=work_dir,
            namespace=NetworkNamespace(
                f"/proc/{process.pid}/ns/net",
                (MDNS_NETWORK,) if mode == "mdns" else (),
            ),
            devtools_port=0,
            devtools_path="",
            launch_seconds=0.0,
        )
        try:
            # Chromium writes the DevTools port and browser endpoint path here once it listens.
            active_port = profile / "DevToolsActivePort"
            deadline = start + timeout
            while True:
                if process.poll() is not None:
                    raise ChromiumError(f"chromium exited with status {process.returncode}")
                lines = active_port.read_text().split() if active_port.exists() else []
                if len(lines) == 2:
                    break
                if time.monotonic() > deadline:
                    raise ChromiumError(f"chromium did not open DevTools within {timeout} s")
                time.sleep(0.02)
        except BaseException as exc:
            browser.close()
            if isinstance(exc, Exception):
                exc.add_note(browser.log_tail())
            raise
        browser.devtools_port = int(lines[0])
        browser.devtools_path = lines[1]
        browser.launch_seconds = time.monotonic() - start
        return browser

    def log_tail(self) -> str:
        try:
            data = (self.work_dir / "chromium.log").read_bytes()[-LOG_TAIL:]
        except OSError as exc:
            return f"<no chromium log: {exc}>"
        # dbus complaints are expected in a container; keep them out of failure notes.
        kept = [line for line in data.decode("utf-8", "replace").splitlines() if "dbus" not in line]
        return "chromium log (tail):\n" + "\n".join(kept)

    def close(self) -> None:
        """Stop the browser and every process it started (its own process group), then check
        that none is left; remove its profile."""
        pid = self.process.pid
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        # The renderers and zygotes share the browser's process group (start_new_session).
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        deadline = time.monotonic() + 5
        while self.processes_left() and time.monotonic() < deadline:
            time.sleep(0.02)
        shutil.rmtree(self.work_dir / "profile", ignore_errors=True)

    def processes_left(self) -> list[int]:
        """Live (not zombie) processes still in the browser's process group.

        Orphaned children become zombies of pid 1 until it reaps them (here about a second);
        a zombie holds no socket and runs no code, so it does not count.
        """
        left = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # Fields after the parenthesised command: state, ppid, pgrp, ...
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == self.process.pid and fields[0] != "Z":
                left.append(int(entry))
        return left

    @asynccontextmanager
    async def _devtools(self) -> AsyncIterator[DevTools]:
        sock = await trio.to_thread.run_sync(self.namespace.connect, self.devtools_port)
        sock.settimeout(None)
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
        async with open_service_nursery() as nursery:
            ws = await trio_websocket.wrap_client_stream(
                nursery, stream, f"127.0.0.1:{self.devtools_port}", self.devtools_path
            )
            try:
                yield DevTools(ws)
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    await ws.aclose()

    async def devtools_call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools call on a connection of its own, shielded from cancellation and bounded
        in time: opening and closing pages must not be torn in half by the test's cancellation
        (trio-websocket's reader task would die with the caller's scope)."""
        result: dict[str, Any] = {}
        with trio.CancelScope(shield=True), trio.fail_after(DEVTOOLS_TIMEOUT):
            async with self._devtools() as devtools:
                result = await devtools.call(method, **params)
        return result

    async def _close_page(self, target_id: str) -> None:
        """Close a page and wait until the browser no longer lists it (closeTarget answers
        before the page is gone)."""
        await self.devtools_call("Target.closeTarget", targetId=target_id)
        with trio.CancelScope(shield=True), trio.move_on_after(DEVTOOLS_TIMEOUT):
            while True:
                targets = await self.devtools_call("Target.getTargets")
                if all(t["targetId"] != target_id for t in targets["targetInfos"]):
                    return
                await trio.sleep(0.01)

    async def pages(self) -> list[str]:
        """URLs of the pages open in the browser (the start page ``about:blank`` included)."""
        targets = await self.devtools_call("Target.getTargets")
        return [str(t["url"]) for t in targets["targetInfos"] if t["type"] == "page"]

    @asynccontextmanager
    async def open_peer(
        self,
        *,
        trickle: bool = True,
        echo: bool = False,
        ice_servers: list[dict[str, Any]] | None = None,
        configuration: dict[str, Any] | None = None,
        wait_seconds: float = DEFAULT_TIMEOUT,
        page: str = "peer.html",
    ) -> AsyncIterator[BrowserPeer]:
        """A fresh page holding one RTCPeerConnection, closed when the block ends.

        ``trickle=False`` makes create_offer/create_answer wait for gathering to complete, so
        the description carries every candidate; ``echo`` makes the channels the remote opens
        send every message back. ``ice_servers`` is RTCConfiguration.iceServers (servers must
        run inside ``self.namespace``); ``configuration`` adds other RTCConfiguration members
        (``bundlePolicy``, ``iceTransportPolicy``, …). ``page`` is the file of ``web/`` to open
        (``media.html``: ``peer.js`` plus the media commands of ``media.js``).
        """
        if self.process.poll() is not None:
            raise ChromiumError(
                f"the {self.mode} browser exited (status {self.process.returncode}) earlier in "
                f"the session\n{self.log_tail()}"
            )
        config = {
            "trickle": trickle,
            "echo": echo,
            "configuration": {**(configuration or {}), "iceServers": ice_servers or []},
        }
        peer = BrowserPeer(config, timeout=wait_seconds)
        start = trio.current_time()
        try:
            async with (
                serve_pages(self.namespace.listen) as server,
                open_service_nursery() as nursery,
            ):
                token, url = server.new_page(page)
                # Shielded: a page that exists must be known by id, to be closed below.
                target = await self.devtools_call("Target.createTarget", url=url)
                done: trio.Event | None = None
                try:
                    with trio.fail_after(wait_seconds):
                        ws, done = await server.wait_page(token)
                    peer._ws = ws
                    nursery.start_soon(peer._read, ws)
                    await peer.request("configure", config=config)
                    peer.page_seconds = trio.current_time() - start
                    yield peer
                finally:
                    # Also when the page never connected: no page outlives its test.
                    await self._close_page(str(target["targetId"]))
                    if done is not None:
                        done.set()
        except BaseException as exc:
            if isinstance(exc, Exception):
                exc.add_note(peer.debug_text())
                exc.add_note(self.log_tail())
            raise


def _browser_fixture(
    mode: Mode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChromiumBrowser]:
    browser = ChromiumBrowser.launch(mode, tmp_path_factory.mktemp(f"chromium-{mode}"))
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="session")
def chromium_loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromiumBrowser]:
    """Chromium gathering raw 127.0.0.1 candidates, for the whole session (~0.5 s to start)."""
    yield from _browser_fixture("loopback", tmp_path_factory)


@pytest.fixture(scope="session")
def chromium_mdns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromiumBrowser]:
    """Chromium as every user has it: one ``<uuid>.local`` host candidate (see module doc)."""
    yield from _browser_fixture("mdns", tmp_path_factory)
