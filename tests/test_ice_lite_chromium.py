"""Headless Chromium (a full ICE agent) against a trio_rtc peer connection that is ICE-lite
(``RTCConfiguration(ice_lite=True)``, RFC 8445 §2.5), with a data channel, in both offerer roles.

The browser runs in its own network namespace (``peers/chromium.py``), our pc's sockets are made
inside it. What shows that the browser took the controlling role against our ``a=ice-lite``:
the lite agent sent no check at all, yet its selected pair is nominated — which only a
USE-CANDIDATE from a controlling peer does — and no check of the browser claimed the controlled
role (that would have been answered 487 and counted as a role conflict).

In mode mdns Chromium's only candidate is a ``<uuid>.local`` name: the lite agent never looks it
up (it pairs nothing with signalled candidates); the browser's checks reveal its address.
"""

from __future__ import annotations

import pytest
import trio
from pc_helpers import make_pc
from pc_interop_helpers import MIB, TrioPeer, connect, open_trio_peer, transfer
from peers.chromium import BrowserPeer, ChromiumBrowser, chromium_loopback, chromium_mdns

from trio_rtc import RTCPeerConnection
from trio_rtc.sdp import parse_sdp_untrusted

pytestmark = pytest.mark.interop

# Session fixtures live in peers/chromium.py; naming them here registers them for this module.
__all__ = ["chromium_loopback", "chromium_mdns"]


async def echo_round(sender: TrioPeer | BrowserPeer, label: str) -> None:
    for message in ["hello", "ünïcödé ✓", b"\x00\x01binary", "x" * 70000]:
        await sender.send(label, message)
        assert await sender.receive(label) == message


async def check_lite_session(pc: RTCPeerConnection, page: BrowserPeer) -> str:
    """Our description says a=ice-lite at session level, Chromium's does not; Chromium is the
    controlling agent; the lite agent sent nothing but responses. Returns a summary line."""
    local, remote = pc.localDescription, pc.remoteDescription
    assert local is not None and remote is not None
    assert parse_sdp_untrusted(local.sdp).ice_lite
    assert "\r\na=ice-lite\r\n" in local.sdp.split("\r\nm=")[0] + "\r\n"
    assert not parse_sdp_untrusted(remote.sdp).ice_lite
    ice = pc.ice_transport
    assert ice is not None
    # Chromium nominates (SEMI_AGGRESSIVE nomination: USE-CANDIDATE on its selected, writable
    # connection when the remote is lite); wait for that check rather than for a fixed time.
    with trio.fail_after(10):
        await ice.wait_for(state="completed")
    agent = ice.agent
    assert ice.role == "controlled" and not agent.controlling
    selected = agent.selected_pair
    assert selected is not None and selected.nominated
    assert ice.selected_pair is selected
    stats = agent.stats
    assert stats.checks_sent == 0 and stats.consent_requests_sent == 0
    assert stats.role_conflicts == 0
    assert stats.requests_received > 0
    states = await page.states()
    assert states["iceConnectionState"] in ("connected", "completed")
    return (
        f"lite agent: {stats.requests_received} checks answered, {stats.checks_sent} sent; "
        f"selected {selected.local.host}:{selected.local.port} -> {selected.remote.type} "
        f"{selected.remote.host}:{selected.remote.port} (nominated by the browser); "
        f"browser iceConnectionState {states['iceConnectionState']}"
    )


@pytest.mark.parametrize("trio_offers", [True, False], ids=["trio-offers", "chromium-offers"])
async def test_chromium_against_trio_lite(
    chromium_loopback: ChromiumBrowser, trio_offers: bool
) -> None:
    browser = chromium_loopback
    with trio.fail_after(40):
        async with browser.open_peer(trickle=True, echo=trio_offers) as page:
            with browser.namespace.sockets():
                async with (
                    make_pc(0, ice_lite=True) as pc,
                    open_trio_peer(pc, echo=not trio_offers) as ours,
                ):
                    offerer: TrioPeer | BrowserPeer = ours if trio_offers else page
                    answerer: TrioPeer | BrowserPeer = page if trio_offers else ours
                    await offerer.create_channel("chat")
                    seconds = await connect(offerer, answerer, trickle=True)
                    await offerer.wait_channel("chat")
                    await answerer.wait_channel("chat")
                    await echo_round(offerer, "chat")
                    await answerer.set_echo("chat", False)
                    rate = await transfer(page, ours, "chat", MIB)
                    summary = await check_lite_session(pc, page)
                    assert page.state_history()[-2:] == ["connecting", "connected"]
                    print(
                        f"offer to connected {seconds * 1000:.0f} ms; 1 MiB chromium->trio "
                        f"{rate:.1f} MB/s; {summary}"
                    )


async def test_chromium_with_mdns_candidates_against_trio_lite(
    chromium_mdns: ChromiumBrowser,
) -> None:
    """The browser as every user has it (a ``.local`` host candidate only) offers to a lite
    server: the usual server-mode setup."""
    browser = chromium_mdns
    with trio.fail_after(40):
        async with browser.open_peer(trickle=True) as page:
            with browser.namespace.sockets():
                async with (
                    make_pc(0, ice_lite=True) as pc,
                    open_trio_peer(pc, echo=True) as ours,
                ):
                    await page.create_channel("chat")
                    seconds = await connect(page, ours, trickle=True)
                    await page.wait_channel("chat")
                    await ours.wait_channel("chat")
                    await echo_round(page, "chat")
                    sent = [m["candidate"] for m in page.messages if m["type"] == "candidate"]
                    lines = [c["candidate"] for c in sent if c and c["candidate"]]
                    assert lines and all(".local " in line for line in lines), lines
                    summary = await check_lite_session(pc, page)
                    ice = pc.ice_transport
                    assert ice is not None
                    # No lookup was made: the pairs come from the browser's checks.
                    selected = ice.agent.selected_pair
                    assert selected is not None and selected.remote.type == "prflx"
                    print(f"mDNS mode: offer to connected {seconds * 1000:.0f} ms; {summary}")
