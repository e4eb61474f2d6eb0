"""A second ``async with`` on a running object is refused, and the first block still exits
cleanly (trio_rtc._lifetime.AsyncLifetime)."""

from __future__ import annotations

import pytest
import trio.lowlevel

from trio_rtc import InvalidStateError, RTCPeerConnection
from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport
from trio_rtc.testing import UdpRelay, VirtualNetwork


async def test_peer_connection_and_ice_transport_refuse_a_second_entry() -> None:
    options = IceTransportOptions(interfaces=["127.0.0.1"])
    async with RTCPeerConnection(ice_options=options) as pc:
        with pytest.raises(InvalidStateError):
            async with pc:
                pass
        assert pc.connectionState == "new"
    assert pc.connectionState == "closed"
    async with RTCIceTransport(options=options) as transport:
        with pytest.raises(InvalidStateError):
            async with transport:
                pass
        transport.gather()
        await transport.wait_gathering_complete()
    assert transport.state == "closed"


async def test_network_and_relay_refuse_a_second_entry() -> None:
    async with VirtualNetwork() as net:
        with pytest.raises(RuntimeError, match="already running"):
            async with net:
                pass
    async with UdpRelay(target=("127.0.0.1", 9)) as relay:
        with pytest.raises(RuntimeError, match="already running"):
            async with relay:
                pass
        with trio.fail_after(1):
            await trio.lowlevel.checkpoint()
