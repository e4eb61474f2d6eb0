"""aiortc (a full ICE agent through aioice, PyPI, in a subprocess) against a trio_rtc peer
connection that is ICE-lite, on 127.0.0.1, in both offerer roles, with and without trickle.

aiortc reads our session-level ``a=ice-lite``: as answerer it takes the controlling role (its
``ice_controlling = iceLite`` of the offer), as offerer it is controlling anyway; either way it
nominates a pair with USE-CANDIDATE (regular nomination), which is what selects our pair."""

from __future__ import annotations

import pytest
import trio
from pc_helpers import make_pc
from pc_interop_helpers import MIB, TrioPeer, connect, open_trio_peer, transfer
from peers.aiortc_pc_harness import AiortcPeer, open_aiortc_peer

from trio_rtc.sdp import parse_sdp_untrusted

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("trio_offers", [True, False], ids=["trio-offers", "aiortc-offers"])
@pytest.mark.parametrize("trickle", [True, False], ids=["trickle", "complete"])
async def test_aiortc_against_trio_lite(trio_offers: bool, trickle: bool) -> None:
    with trio.fail_after(30):
        async with (
            make_pc(0, ice_lite=True) as pc,
            open_trio_peer(pc, trickle=trickle, echo=not trio_offers) as ours,
            open_aiortc_peer(trickle=trickle, echo=trio_offers) as theirs,
        ):
            offerer: TrioPeer | AiortcPeer = ours if trio_offers else theirs
            answerer: TrioPeer | AiortcPeer = theirs if trio_offers else ours
            await offerer.create_channel("chat")
            seconds = await connect(offerer, answerer, trickle=trickle)
            await offerer.wait_channel("chat")
            await answerer.wait_channel("chat")
            for message in ["hello", b"\x00binary", "x" * 70000]:
                await offerer.send("chat", message)
                assert await offerer.receive("chat") == message
            await answerer.set_echo("chat", False)
            rate = await transfer(theirs, ours, "chat", MIB)

            local, remote = pc.localDescription, pc.remoteDescription
            assert local is not None and remote is not None
            assert parse_sdp_untrusted(local.sdp).ice_lite
            assert not parse_sdp_untrusted(remote.sdp).ice_lite
            ice = pc.ice_transport
            assert ice is not None
            with trio.fail_after(10):
                await ice.wait_for(state="completed")  # aiortc nominated a pair
            agent = ice.agent
            assert ice.role == "controlled"
            selected = agent.selected_pair
            assert selected is not None and selected.nominated
            stats = agent.stats
            assert stats.checks_sent == 0 and stats.consent_requests_sent == 0
            assert stats.role_conflicts == 0
            print(
                f"offer to connected {seconds * 1000:.0f} ms; 1 MiB aiortc->trio {rate:.1f} MB/s;"
                f" {stats.requests_received} checks answered, none sent"
            )
