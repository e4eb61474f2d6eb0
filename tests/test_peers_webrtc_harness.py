"""The WebRTC peer harness works: headless Chromium and aiortc connect to each other through it.

Neither peer was written here, so these tests judge the harness alone (``tests/peers/chromium.py``,
``web/peer.js``, ``aiortc_pc_peer.py``, ``signaling.py``); the trio_rtc interop tests then use the
same harness with trio_rtc's RTCPeerConnection on the other side.
"""

import os
import socket
import threading
from pathlib import Path

import pytest
import trio
from peers.aiortc_pc_harness import open_aiortc_peer
from peers.chromium import ChromiumBrowser, chromium_loopback, chromium_mdns
from peers.signaling import PeerControl, PeerError, connect_peers

pytestmark = pytest.mark.interop

# Session fixtures live in peers/chromium.py; naming them here registers them for this module.
__all__ = ["chromium_loopback", "chromium_mdns"]

MIB = 1 << 20


async def exchange_messages(sender: PeerControl, echoer: PeerControl, label: str) -> None:
    """``sender`` opened ``label`` without echo; ``echoer`` echoes it back."""
    await sender.send(label, "hello from the test")
    assert await sender.receive(label) == "hello from the test"
    await sender.send(label, "ünïcödé ✓")
    assert await sender.receive(label) == "ünïcödé ✓"
    payload = os.urandom(1000)
    await sender.send(label, payload)
    assert await sender.receive(label) == payload
    await sender.send(label, b"")
    assert await sender.receive(label) == b""


async def transfer(source: PeerControl, sink: PeerControl, label: str, nbytes: int) -> None:
    await sink.expect_bytes(label, nbytes)
    sent = await source.transfer_sha256(label, nbytes)
    received = await sink.received_sha256(label)
    assert sent == received


@pytest.mark.parametrize("browser_offers", [True, False], ids=["chromium-offers", "aiortc-offers"])
async def test_chromium_and_aiortc_connect_and_transfer(
    chromium_loopback: ChromiumBrowser, browser_offers: bool
) -> None:
    browser = chromium_loopback
    assert browser.launch_seconds < 20
    with trio.fail_after(25):
        async with (
            browser.open_peer(trickle=True, echo=not browser_offers) as page,
            open_aiortc_peer(namespace=browser.namespace, echo=browser_offers) as aiortc_peer,
        ):
            offerer, answerer = (page, aiortc_peer) if browser_offers else (aiortc_peer, page)
            start = trio.current_time()
            await offerer.create_channel("chat")
            await connect_peers(offerer, answerer, trickle=True)
            await offerer.wait_channel("chat")
            await answerer.wait_channel("chat")
            connected = trio.current_time() - start

            states = await page.states()
            assert states["connectionState"] == "connected"
            for peer in (page, aiortc_peer):
                assert peer.state_history()[-2:] == ["connecting", "connected"]
            # Chromium's candidates are all 127.0.0.1: aiortc refuses at most a TCP one.
            for ignored in aiortc_peer.ignored():
                assert ignored["reason"].startswith("not UDP"), ignored

            await exchange_messages(offerer, answerer, "chat")
            # 1 MiB each way on a second channel, opened by the answerer this time.
            await answerer.create_channel("bulk")
            await answerer.wait_channel("bulk")
            await offerer.wait_channel("bulk")
            await offerer.set_echo("bulk", False)
            await answerer.set_echo("bulk", False)
            await transfer(page, aiortc_peer, "bulk", MIB)
            await transfer(aiortc_peer, page, "bulk", MIB)
            # The browser closes one channel; the other stays usable.
            await page.close_channel("chat")
            await aiortc_peer.wait_channel_closed("chat")
            await page.wait_channel_closed("chat")
            await aiortc_peer.send("bulk", "still here")
            assert await page.receive("bulk") == "still here"
            print(
                f"chromium launch {browser.launch_seconds:.2f} s, page ready "
                f"{page.page_seconds:.2f} s, offer to channel open {connected:.2f} s"
            )


async def test_without_trickle_and_negotiated_channel(chromium_loopback: ChromiumBrowser) -> None:
    """Complete descriptions (candidates inside the SDP) and a pre-negotiated channel, closed
    from the aiortc side."""
    with trio.fail_after(20):
        async with (
            chromium_loopback.open_peer(trickle=False) as page,
            open_aiortc_peer(namespace=chromium_loopback.namespace, trickle=False) as aiortc_peer,
        ):
            await aiortc_peer.create_channel("neg", negotiated=True, id=7)
            await page.create_channel("neg", negotiated=True, id=7, echo=True)
            offer = await aiortc_peer.create_offer()
            assert "a=candidate:" in offer["sdp"] and " 127.0.0.1 " in offer["sdp"]
            await page.set_remote(offer)
            answer = await page.create_answer()
            assert "a=candidate:" in answer["sdp"]
            await aiortc_peer.set_remote(answer)
            await aiortc_peer.wait_state("connected")
            await page.wait_state("connected")
            opened = await aiortc_peer.wait_channel("neg")
            assert opened["negotiated"] and opened["id"] == 7
            await page.wait_channel("neg")
            await exchange_messages(aiortc_peer, page, "neg")
            await aiortc_peer.close_channel("neg")
            await page.wait_channel_closed("neg")
            await aiortc_peer.wait_channel_closed("neg")


async def test_chromium_mdns_candidates_reach_aiortc(chromium_mdns: ChromiumBrowser) -> None:
    """Chromium as users have it: only a ``<uuid>.local`` host candidate.

    aiortc asks for the name by mDNS inside the browser's namespace, but cannot read Chromium's
    answer (dnspython refuses the compressed name in its NSEC record, which RFC 6762 section
    18.14 allows), so it connects through the peer-reflexive candidate Chromium's first check
    reveals — as any peer that cannot resolve the name must.
    """
    with trio.fail_after(20):
        async with (
            chromium_mdns.open_peer() as page,
            open_aiortc_peer(namespace=chromium_mdns.namespace, mdns=True, echo=True) as aiortc,
        ):
            start = trio.current_time()
            await page.create_channel("chat")
            await connect_peers(page, aiortc, trickle=True)
            await page.wait_channel("chat")
            print(f"mDNS mode: offer to channel open {trio.current_time() - start:.2f} s")
            candidates = [c for c in page.messages if c["type"] == "candidate" and c["candidate"]]
            assert candidates
            for message in candidates:
                assert ".local " in message["candidate"]["candidate"], message
            await exchange_messages(page, aiortc, "chat")
            await page.set_echo("chat", False)
            await aiortc.set_echo("chat", False)
            await transfer(page, aiortc, "chat", MIB)


async def test_errors_are_reported_and_pages_are_fresh(chromium_loopback: ChromiumBrowser) -> None:
    async with chromium_loopback.open_peer() as page:
        with pytest.raises(PeerError, match="no data channel labelled missing"):
            await page.send("missing", "x")
        with pytest.raises(PeerError, match="set_remote failed"):
            await page.set_remote({"type": "answer", "sdp": "v=0\r\n"})
        # The page is still usable after failed commands.
        assert (await page.states())["signalingState"] == "stable"
    # RTCConfiguration reaches the page: with relay only and no TURN server, no candidate.
    async with chromium_loopback.open_peer(configuration={"iceTransportPolicy": "relay"}) as page:
        await page.create_channel("x")
        await page.create_offer()
        assert [c async for c in page.candidates()] == [None]
    async with open_aiortc_peer() as aiortc_peer:
        with pytest.raises(PeerError, match="no data channel"):
            await aiortc_peer.send("missing", b"x")
    assert aiortc_peer.returncode == 0


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def _netns_id() -> str:
    return os.readlink(f"/proc/self/task/{threading.get_native_id()}/ns/net")


async def test_browser_namespace_and_shutdown(tmp_path: Path) -> None:
    """The browser's namespace holds only loopback; ``sockets()`` puts the sockets created in
    the block there and leaves this thread where it was; closing leaves no process and no file
    descriptor."""
    fds = _fd_count()
    home = _netns_id()
    browser = await trio.to_thread.run_sync(ChromiumBrowser.launch, "loopback", tmp_path / "b")
    try:
        links = await trio.run_process(
            browser.namespace.command(["ip", "-o", "addr"]), capture_stdout=True
        )
        addresses = {line.split()[3] for line in links.stdout.decode().splitlines()}
        assert addresses == {"127.0.0.1/8", "::1/128"}
        with browser.namespace.sockets():
            inside = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            inside_trio = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            assert _netns_id() == home
            # DevTools listens only inside.
            stream = await trio.open_tcp_stream("127.0.0.1", browser.devtools_port)
            await stream.aclose()
        assert type(inside) is socket.socket
        with inside, inside_trio, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as outside:
            inside.bind(("127.0.0.1", 0))
            # The same port is free outside (another network stack) and taken for the trio
            # socket (the same one).
            outside.bind(inside.getsockname())
            with pytest.raises(OSError):
                await inside_trio.bind(inside.getsockname())
        async with browser.open_peer() as page:
            assert (await page.states())["connectionState"] == "new"
    finally:
        await trio.to_thread.run_sync(browser.close)
    assert browser.processes_left() == []
    assert browser.process.returncode is not None
    assert _fd_count() == fds


async def test_cancelled_page_opening_leaves_no_page(chromium_loopback: ChromiumBrowser) -> None:
    before = await chromium_loopback.pages()
    for delay in (0.0, 0.005, 0.02, 0.05, 0.1, 0.2, 0.4):
        with trio.move_on_after(delay):
            async with chromium_loopback.open_peer() as page:
                await page.create_channel("x")
                await page.create_offer()
                await trio.sleep_forever()
    assert await chromium_loopback.pages() == before


async def test_cancelled_aiortc_peer_is_reaped() -> None:
    fds = _fd_count()
    peers = []
    for delay in (0.0, 0.05, 0.4, 1.0):
        with trio.move_on_after(delay):
            async with open_aiortc_peer() as aiortc_peer:
                peers.append(aiortc_peer)
                await aiortc_peer.create_channel("x")
                await aiortc_peer.create_offer()
                await trio.sleep_forever()
    assert peers, "no peer got as far as its first command"
    assert all(p.returncode is not None for p in peers)
    assert _fd_count() == fds
