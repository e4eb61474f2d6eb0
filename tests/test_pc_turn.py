"""RTCPeerConnection with iceTransportPolicy "relay": every candidate it offers is a relay
candidate from a real coturn, and a data channel still works through the relay."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from peers.coturn import CoturnServer

from trio_rtc import RTCDataChannel, RTCPeerConnection
from trio_rtc.ice.transport import IceTransportOptions

pytestmark = pytest.mark.interop


async def test_relay_policy_connects_through_turn(coturn: CoturnServer) -> None:
    host, port = coturn.turn_address
    relay_config = {
        "iceTransportPolicy": "relay",
        "iceServers": [
            {
                "urls": f"turn:{host}:{port}",
                "username": coturn.username,
                "credential": coturn.password,
            }
        ],
    }
    loopback = IceTransportOptions(interfaces=["127.0.0.1"])
    offered: list[str] = []
    with trio.fail_after(15):
        async with (
            RTCPeerConnection(relay_config, ice_options=loopback) as a,
            RTCPeerConnection(ice_options=loopback) as b,
        ):

            async def trickle(target: RTCPeerConnection, event: Any) -> None:
                if target is b and event.candidate is not None and event.candidate.candidate:
                    offered.append(event.candidate.type)
                await target.addIceCandidate(event.candidate)

            a.onicecandidate = lambda event: trickle(b, event)
            b.onicecandidate = lambda event: trickle(a, event)
            arrivals, arrived = trio.open_memory_channel[RTCDataChannel](1)
            b.ondatachannel = lambda event: arrivals.send_nowait(event.channel)
            channel = a.createDataChannel("via-turn")
            await a.setLocalDescription(await a.createOffer())
            assert a.localDescription is not None
            await b.setRemoteDescription(a.localDescription)
            await b.setLocalDescription(await b.createAnswer())
            assert b.localDescription is not None
            await a.setRemoteDescription(b.localDescription)
            await channel.wait_open()
            incoming = await arrived.receive()
            channel.send("through the relay")
            assert await incoming.receive() == "through the relay"
            assert a.getConfiguration()["iceTransportPolicy"] == "relay"
            assert offered and set(offered) == {"relay"}
            pair = a.ice_transport.getSelectedCandidatePair() if a.ice_transport else None
            assert pair is not None and pair.local.type == "relay"
