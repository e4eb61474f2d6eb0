"""Two full stacks (ICE + DTLS + SCTP) wired by hand, as a peer connection will wire them, and
the first tests over them: channels open both ways, for both DTLS roles, in band and negotiated.

``sctp_pair`` is shared by the other ``test_datachannel*`` and ``test_sctp_transport*`` modules.
It runs over real UDP on 127.0.0.1, or over the virtual network when ``addresses`` are given
(then the caller installs a ``VirtualNetwork`` and usually a MockClock).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import trio
from dtls_sim import certs
from ice_helpers import connect_pair

from trio_rtc.datachannel import RTCDataChannel, RTCDataChannelEvent
from trio_rtc.dtls.driver import RTCDtlsTransport
from trio_rtc.events import Event
from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport
from trio_rtc.sctp.transport import RTCSctpTransport


@attrs.define
class Stack:
    ice_a: RTCIceTransport
    ice_b: RTCIceTransport
    dtls_a: RTCDtlsTransport
    dtls_b: RTCDtlsTransport
    sctp_a: RTCSctpTransport
    sctp_b: RTCSctpTransport
    nursery: trio.Nursery

    async def start(self) -> None:
        await self.nursery.start(self.sctp_a.run)
        await self.nursery.start(self.sctp_b.run)

    async def connected(self) -> None:
        await self.sctp_a.wait_until(lambda: self.sctp_a.state != "connecting")
        await self.sctp_b.wait_until(lambda: self.sctp_b.state != "connecting")
        assert self.sctp_a.state == self.sctp_b.state == "connected"


@contextlib.asynccontextmanager
async def sctp_pair(
    *,
    a_is_dtls_client: bool = True,
    addresses: tuple[str, str] = ("127.0.0.1", "127.0.0.1"),
    start: bool = True,
    **sctp_options: Any,
) -> AsyncIterator[Stack]:
    """ICE connected, DTLS connected, SCTP transports created (and running if ``start``)."""
    virtual = addresses[0] != "127.0.0.1"
    cert_a, cert_b = certs()
    async with (
        RTCIceTransport(
            options=IceTransportOptions(interfaces=[addresses[0]], mdns=not virtual)
        ) as ice_a,
        RTCIceTransport(
            options=IceTransportOptions(interfaces=[addresses[1]], mdns=not virtual)
        ) as ice_b,
        trio.open_nursery() as nursery,
    ):
        await connect_pair(ice_a, ice_b, trickle=True)
        dtls_a = RTCDtlsTransport(
            ice_a, cert_a, is_client=a_is_dtls_client, remote_fingerprints=cert_b.getFingerprints()
        )
        dtls_b = RTCDtlsTransport(
            ice_b,
            cert_b,
            is_client=not a_is_dtls_client,
            remote_fingerprints=cert_a.getFingerprints(),
        )
        for dtls, ice in ((dtls_a, ice_a), (dtls_b, ice_b)):
            nursery.start_soon(_run_dtls, dtls, ice)
        await dtls_a.wait_connected()
        await dtls_b.wait_connected()
        stack = Stack(
            ice_a,
            ice_b,
            dtls_a,
            dtls_b,
            RTCSctpTransport(
                dtls_a, stream_factory=RTCDataChannel.for_remote_stream, **sctp_options
            ),
            RTCSctpTransport(
                dtls_b, stream_factory=RTCDataChannel.for_remote_stream, **sctp_options
            ),
            nursery,
        )
        if start:
            await stack.start()
        yield stack
        nursery.cancel_scope.cancel()


async def _run_dtls(dtls: RTCDtlsTransport, ice: RTCIceTransport) -> None:
    await dtls.run(receive_channel=ice.dtls_receive_channel, send=ice.send)


def remote_channels(transport: RTCSctpTransport) -> list[RTCDataChannel]:
    """Collects the channels the peer opens (the ``datachannel`` event)."""
    channels: list[RTCDataChannel] = []

    def on_datachannel(event: RTCDataChannelEvent) -> None:
        channels.append(event.channel)

    transport.addEventListener("datachannel", on_datachannel)
    return channels


def recorder(channel: RTCDataChannel, *types: str) -> list[tuple[str, str]]:
    """(event type, readyState at dispatch) for every event of ``types``."""
    seen: list[tuple[str, str]] = []

    def record(event: Event) -> None:
        seen.append((event.type, channel.readyState))

    for event_type in types:
        channel.addEventListener(event_type, record)
    return seen


@pytest.mark.parametrize("a_is_dtls_client", [True, False], ids=["a-client", "a-server"])
async def test_in_band_channels_open_both_ways(a_is_dtls_client: bool) -> None:
    with trio.fail_after(10):
        async with sctp_pair(a_is_dtls_client=a_is_dtls_client, start=False) as stack:
            at_a = remote_channels(stack.sctp_a)
            at_b = remote_channels(stack.sctp_b)
            states: list[str] = []
            stack.sctp_a.onstatechange = lambda event: states.append(stack.sctp_a.state)
            # Created before the association exists, as pc.createDataChannel may be.
            early = RTCDataChannel("early", protocol="chat")
            stack.sctp_a.add_channel(early)
            assert early.readyState == "connecting" and early.id is None
            assert stack.sctp_a.maxChannels is None
            events = recorder(early, "open")
            await stack.start()
            await stack.connected()
            assert states == ["connected"]
            assert stack.sctp_a.maxChannels == 65535
            assert stack.sctp_a.transport is stack.dtls_a
            await early.wait_open()
            assert events == [("open", "open")]
            # Stream id parity by DTLS role (RFC 8832 §6): client even, server odd.
            assert early.id is not None and early.id % 2 == (0 if a_is_dtls_client else 1)
            # One created after the association is up, from the other side.
            late = RTCDataChannel("late", ordered=False, maxRetransmits=3, priority="high")
            stack.sctp_b.add_channel(late)
            assert late.id is not None and late.id % 2 == (1 if a_is_dtls_client else 0)
            assert late.readyState == "connecting"  # open fires from the driver, not in add
            await late.wait_open()
            await stack.sctp_a.wait_until(lambda: len(at_a) == 1)
            await stack.sctp_b.wait_until(lambda: len(at_b) == 1)
            [remote_early] = at_b
            [remote_late] = at_a
            assert (remote_early.label, remote_early.protocol, remote_early.id) == (
                "early",
                "chat",
                early.id,
            )
            assert remote_early.readyState == "open" and remote_early.ordered
            assert remote_late.label == "late" and not remote_late.ordered
            assert remote_late.maxRetransmits == 3 and remote_late.maxPacketLifetime is None
            assert remote_late.priority == "high" and not remote_late.negotiated
            early.send("hello")
            assert await remote_early.receive() == "hello"
            remote_early.send(b"back")
            assert await early.receive() == b"back"
            late.send("unordered")
            assert await remote_late.receive() == "unordered"


async def test_remote_channel_fires_datachannel_then_open() -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            seen: list[tuple[str, str]] = []

            def on_datachannel(event: RTCDataChannelEvent) -> None:
                seen.append(("datachannel", event.channel.readyState))
                event.channel.onopen = lambda e: seen.append(("open", e.target.readyState))

            stack.sctp_b.ondatachannel = on_datachannel
            stack.sctp_a.add_channel(RTCDataChannel("x"))
            await stack.sctp_b.wait_until(lambda: len(seen) == 2)
            assert seen == [("datachannel", "open"), ("open", "open")]


async def test_negotiated_channels_need_no_dcep() -> None:
    with trio.fail_after(10):
        async with sctp_pair(start=False) as stack:
            at_b = remote_channels(stack.sctp_b)
            a = RTCDataChannel("n", negotiated=True, id=7)
            b = RTCDataChannel("n", negotiated=True, id=7)
            stack.sctp_a.add_channel(a)
            stack.sctp_b.add_channel(b)
            await stack.start()
            await a.wait_open()
            await b.wait_open()
            a.send("over a pre-agreed stream")
            assert await b.receive() == "over a pre-agreed stream"
            assert a.id == b.id == 7 and a.negotiated
            # A second negotiated channel once connected, any parity.
            a2 = RTCDataChannel("m", negotiated=True, id=8)
            b2 = RTCDataChannel("m", negotiated=True, id=8)
            stack.sctp_b.add_channel(b2)
            stack.sctp_a.add_channel(a2)
            await a2.wait_open()
            await b2.wait_open()
            b2.send(b"\x01\x02")
            assert await a2.receive() == b"\x01\x02"
            assert at_b == []  # no datachannel event for negotiated channels
