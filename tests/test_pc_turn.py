"""RTCPeerConnection with iceTransportPolicy "relay": every candidate it offers is a relay
candidate from a real coturn, and a data channel still works through the relay."""

from __future__ import annotations

import random
import ssl
from pathlib import Path
from typing import Any

import pytest
import trio
from peers.coturn import CoturnServer, run_coturn

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


@pytest.mark.parametrize("transport", ["tcp", "tls"])
async def test_relay_policy_over_tcp_and_tls_carries_a_transfer(
    tmp_path: Path, transport: str
) -> None:
    """iceTransportPolicy "relay" with a turn:?transport=tcp or a turns: server (its
    certificate trusted through ``IceTransportOptions.turn_tls_context``): 2 MiB cross the data
    channel intact, every packet through the TCP or TLS connection to the server."""
    async with run_coturn(tmp_path, tls=transport == "tls") as coturn:
        host, port = coturn.turn_address
        if transport == "tls":
            assert coturn.tls_address is not None and coturn.certificate_path is not None
            url = f"turns:{host}:{coturn.tls_address[1]}"
            trust = ssl.create_default_context(cafile=str(coturn.certificate_path))
        else:
            url = f"turn:{host}:{port}?transport=tcp"
            trust = None
        relay_config = {
            "iceTransportPolicy": "relay",
            "iceServers": [
                {"urls": url, "username": coturn.username, "credential": coturn.password}
            ],
        }
        options = IceTransportOptions(interfaces=["127.0.0.1"], turn_tls_context=trust)
        loopback = IceTransportOptions(interfaces=["127.0.0.1"])
        blob = random.Random(9).randbytes(2 << 20)
        with trio.fail_after(30):
            async with (
                RTCPeerConnection(relay_config, ice_options=options) as a,
                RTCPeerConnection(ice_options=loopback) as b,
            ):
                arrivals, arrived = trio.open_memory_channel[RTCDataChannel](1)
                b.ondatachannel = lambda event: arrivals.send_nowait(event.channel)
                channel = a.createDataChannel("via-turn")
                await a.setLocalDescription(await a.createOffer())
                await a.wait_gathering_complete()
                assert a.localDescription is not None
                assert "typ relay" in a.localDescription.sdp
                assert "typ host" not in a.localDescription.sdp
                await b.setRemoteDescription(a.localDescription)
                await b.setLocalDescription(await b.createAnswer())
                await b.wait_gathering_complete()
                assert b.localDescription is not None
                await a.setRemoteDescription(b.localDescription)
                await channel.wait_open()
                incoming = await arrived.receive()

                async def send_all() -> None:
                    for offset in range(0, len(blob), 16384):
                        await channel.send_message(blob[offset : offset + 16384])

                received = bytearray()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(send_all)
                    while len(received) < len(blob):
                        received += await incoming.receive()
                assert bytes(received) == blob
                pair = a.ice_transport.getSelectedCandidatePair() if a.ice_transport else None
                assert pair is not None and pair.local.type == "relay"
                assert pair.local.relayProtocol == transport
