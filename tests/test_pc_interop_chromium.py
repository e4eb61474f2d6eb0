"""trio_rtc's RTCPeerConnection against headless Chromium (Debian ``chromium``).

The browser runs in a network namespace of its own (``peers/chromium.py``, docs/interop.md), one
per session and mode; each test opens a fresh page holding one RTCPeerConnection and controls it
over a trio-websocket. trio_rtc's sockets are created inside that namespace
(``browser.namespace.sockets()``) and gather on its 127.0.0.1 only.

- loopback mode: Chromium gathers raw 127.0.0.1 candidates; both offerer roles, trickle, text and
  binary messages, channels opened by each side, 1 MiB each way checked by SHA-256 on both ends.
- mDNS mode: Chromium's only host candidate is ``<uuid>.local`` (for 10.77.0.1, on a veth inside
  the namespace); trio_rtc's resolver asks for it by one-shot multicast through that veth.
"""

from __future__ import annotations

import os

import pytest
import trio
from pc_helpers import certificate, make_pc
from pc_interop_helpers import MIB, TrioPeer, connect, open_trio_peer, transfer
from peers.chromium import BrowserPeer, ChromiumBrowser, chromium_loopback, chromium_mdns

from trio_rtc import RTCPeerConnection
from trio_rtc.ice.transport import IceTransportOptions

pytestmark = pytest.mark.interop

# Session fixtures live in peers/chromium.py; naming them here registers them for this module.
__all__ = ["chromium_loopback", "chromium_mdns"]

# In mode mdns the namespace's only non-loopback address: the one Chromium hides behind .local.
MDNS_VETH_ADDRESS = "10.77.0.1"
# Chromium's mDNS responder sends at most one response a second, announcements and goodbyes of
# earlier pages' names included, and drops what it cannot send within 10 s
# (services/network/mdns_responder.cc). With pages opened and closed by earlier tests, the answer
# to a query can wait several seconds in that queue.
CHROMIUM_MDNS_DELAY = 10.0


async def exchange(sender: TrioPeer | BrowserPeer, label: str) -> None:
    """``sender`` sends text and binary on ``label``; the other side echoes each back."""
    messages: list[str | bytes] = ["hello", "ünïcödé ✓", "", os.urandom(1000), b""]
    # Larger than one SCTP packet: fragmented and reassembled on both sides.
    messages.append(os.urandom(70000))
    for message in messages:
        await sender.send(label, message)
        assert await sender.receive(label) == message


@pytest.mark.parametrize("trio_offers", [True, False], ids=["trio-offers", "chromium-offers"])
async def test_loopback_both_roles_trickle(
    chromium_loopback: ChromiumBrowser, trio_offers: bool
) -> None:
    browser = chromium_loopback
    with trio.fail_after(30):
        async with browser.open_peer(trickle=True, echo=trio_offers) as page:
            with browser.namespace.sockets():
                async with make_pc(0) as pc, open_trio_peer(pc, echo=not trio_offers) as ours:
                    offerer: TrioPeer | BrowserPeer = ours if trio_offers else page
                    answerer: TrioPeer | BrowserPeer = page if trio_offers else ours
                    await offerer.create_channel("first")
                    seconds = await connect(offerer, answerer, trickle=True)
                    await offerer.wait_channel("first")
                    await answerer.wait_channel("first")
                    # Trickle: no candidate travelled inside a description.
                    assert pc.remoteDescription is not None
                    remote_types = ours.remote_candidate_types()
                    assert remote_types and set(remote_types) <= {"host", "prflx"}
                    await exchange(offerer, "first")
                    assert page.state_history()[-2:] == ["connecting", "connected"]

                    await answerer.create_channel("second")
                    await answerer.wait_channel("second")
                    await offerer.wait_channel("second")
                    await offerer.set_echo("second", True)
                    await exchange(answerer, "second")

                    await offerer.set_echo("second", False)
                    up = await transfer(ours, page, "second", MIB)
                    down = await transfer(page, ours, "second", MIB)

                    await page.close_channel("first")
                    await ours.wait_channel_closed("first")
                    await page.wait_channel_closed("first")
                    await ours.close_channel("second")
                    await page.wait_channel_closed("second")
                    await ours.wait_channel_closed("second")
                    print(
                        f"page ready {page.page_seconds * 1000:.0f} ms; offer to connected "
                        f"{seconds * 1000:.0f} ms; 1 MiB trio->chromium {up:.1f} MB/s, "
                        f"chromium->trio {down:.1f} MB/s; remote candidates {remote_types}"
                    )


@pytest.mark.parametrize("trio_offers", [True, False], ids=["trio-offers", "chromium-offers"])
async def test_mdns_candidates(chromium_mdns: ChromiumBrowser, trio_offers: bool) -> None:
    browser = chromium_mdns
    options = IceTransportOptions(
        interfaces=["127.0.0.1"],
        mdns=True,
        mdns_interface=MDNS_VETH_ADDRESS,
        mdns_timeout=CHROMIUM_MDNS_DELAY,
    )
    with trio.fail_after(30):
        async with browser.open_peer(trickle=True, echo=trio_offers) as page:
            with browser.namespace.sockets():
                async with (
                    RTCPeerConnection(
                        {"certificates": [certificate(0)]}, ice_options=options
                    ) as pc,
                    open_trio_peer(pc, echo=not trio_offers) as ours,
                ):
                    offerer: TrioPeer | BrowserPeer = ours if trio_offers else page
                    answerer: TrioPeer | BrowserPeer = page if trio_offers else ours
                    await offerer.create_channel("chat")
                    seconds = await connect(offerer, answerer, trickle=True)
                    await offerer.wait_channel("chat")
                    await answerer.wait_channel("chat")
                    sent = [m["candidate"] for m in page.messages if m["type"] == "candidate"]
                    lines = [c["candidate"] for c in sent if c and c["candidate"]]
                    assert lines and all(".local " in line for line in lines), lines
                    await exchange(offerer, "chat")
                    await answerer.set_echo("chat", False)
                    rate = await transfer(page, ours, "chat", MIB)
                    ice = pc.ice_transport
                    assert ice is not None
                    agent = ice.agent
                    # Connectivity does not wait for the name: Chromium's first check (from
                    # 127.0.0.1) teaches ICE a peer-reflexive candidate at once, and the
                    # resolved host candidate (10.77.0.1, answered by Chromium's responder
                    # through the veth) joins when the answer arrives. No event reports
                    # it, so poll.
                    resolving = trio.current_time()
                    with trio.move_on_after(CHROMIUM_MDNS_DELAY):
                        while not any(c.type == "host" for c in agent.remote_candidates):  # noqa: ASYNC110
                            await trio.sleep(0.02)
                    resolved = trio.current_time() - resolving
                    remote = [(c.type, c.host) for c in agent.remote_candidates]
                    assert ("host", MDNS_VETH_ADDRESS) in remote, remote
                    selected = agent.selected_pair
                    assert selected is not None
                    print(
                        f"mDNS mode: offer to connected {seconds * 1000:.0f} ms, "
                        f"chromium->trio {rate:.1f} MB/s; name resolved {resolved:.1f} s after the "
                        f"transfer; remote candidates {remote}; selected remote "
                        f"{selected.remote.type} {selected.remote.host}"
                    )
