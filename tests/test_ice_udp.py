"""Two trio_rtc ICE transports connect over real UDP on this machine."""

from __future__ import annotations

import socket

import pytest
import trio
from ice_helpers import connect_pair, exchange_data

from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


FAMILIES = ["127.0.0.1", pytest.param("::1", id="ipv6")]


@pytest.mark.parametrize("address", FAMILIES)
@pytest.mark.parametrize("trickle", [True, False], ids=["trickle", "non-trickle"])
@pytest.mark.parametrize("a_role", ["controlling", "controlled"])
async def test_two_agents_connect_over_udp(address: str, trickle: bool, a_role: str) -> None:
    if address == "::1" and not _has_ipv6_loopback():
        pytest.fail("IPv6 loopback is required for this test")
    opts = IceTransportOptions(interfaces=[address])
    with trio.fail_after(10):
        async with RTCIceTransport(options=opts) as a, RTCIceTransport(options=opts) as b:
            await connect_pair(a, b, trickle=trickle, a_role=a_role)
            assert a.role == a_role
            pair_a = a.getSelectedCandidatePair()
            pair_b = b.getSelectedCandidatePair()
            assert pair_a is not None and pair_b is not None
            assert pair_a.local.address == address
            assert pair_a.remote.port == pair_b.local.port
            await exchange_data(a, b)
        assert a.state == "closed" and b.state == "closed"
