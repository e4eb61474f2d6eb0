"""A peer that vanishes, under MockClock on trio_rtc's virtual network: the connection goes
``disconnected`` when consent responses stop for 5 s and ``failed`` at 30 s (RFC 7675, the
W3C state tables), with iceconnectionstatechange before connectionstatechange each time."""

from __future__ import annotations

import trio
import trio.testing
from pc_helpers import certificate, connect

from trio_rtc import RTCPeerConnection
from trio_rtc.ice.transport import IceTransportOptions
from trio_rtc.testing import LinkConditions, VirtualNetwork

A, B = "198.51.100.1", "198.51.100.2"


def make(index: int, address: str) -> RTCPeerConnection:
    return RTCPeerConnection(
        {"certificates": [certificate(index)]},
        ice_options=IceTransportOptions(interfaces=[address], mdns=False),
    )


async def test_vanished_peer_goes_disconnected_then_failed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with VirtualNetwork(seed=4, conditions=LinkConditions(delay=0.01)) as net:
        async with make(0, A) as a, make(1, B) as b, trio.open_nursery() as nursery:
            channel = a.createDataChannel("x")
            with trio.fail_after(10):
                await connect(a, b, nursery)
                await channel.wait_open()
            await trio.sleep(10)  # consent keeps a healthy connection connected
            assert a.connectionState == "connected"
            changes: list[tuple[str, str, float]] = []
            a.onconnectionstatechange = lambda e: changes.append(
                ("connection", a.connectionState, trio.current_time())
            )
            a.oniceconnectionstatechange = lambda e: changes.append(
                ("ice", a.iceConnectionState, trio.current_time())
            )
            net.block(A, B)
            net.block(B, A)
            ice = a.ice_transport
            assert ice is not None and ice.selected_pair is not None
            last = ice.selected_pair.last_response_received
            assert last is not None
            with trio.fail_after(60):
                await a.wait_connection_state("failed")
            assert [(kind, state) for kind, state, _ in changes] == [
                ("ice", "disconnected"),
                ("connection", "disconnected"),
                ("ice", "failed"),
                ("connection", "failed"),
            ]
            disconnected_at, failed_at = changes[1][2], changes[3][2]
            assert 5.0 - 1e-6 <= disconnected_at - last <= 5.3
            assert 30.0 - 1e-6 <= failed_at - last <= 30.3
            nursery.cancel_scope.cancel()
        assert a.connectionState == "closed"
