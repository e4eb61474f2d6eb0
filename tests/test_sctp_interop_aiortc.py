"""Interop: our association and DCEP manager against aiortc's RTCSctpTransport.

aiortc's transport expects an RTCDtlsTransport; a small fake exposing the four members it uses
(``state``, ``_role``, ``_register_data_receiver``, ``_send_data``) carries its packets to our
core in memory. Both sides send INIT, as WebRTC endpoints do (RFC 8841 §9.3), so this also
exercises the INIT collision against a stack nobody here wrote. The run happens on an asyncio
loop inside the test, since aiortc is asyncio-only.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from trio_rtc.sctp.association import SctpAssociation
from trio_rtc.sctp.dcep import (
    ChannelClosed,
    ChannelMessage,
    ChannelOpened,
    DataChannelParameters,
    DcepChannelManager,
    DcepEvent,
)
from trio_rtc.sctp.events import AssociationEstablished

pytestmark = pytest.mark.interop


class FakeDtlsTransport:
    """What aiortc's RTCSctpTransport touches on its RTCDtlsTransport."""

    def __init__(self, deliver: Any) -> None:
        self.state = "connected"
        self._role = "server"  # aiortc is the DTLS server, so our core is the client
        self._deliver = deliver
        self.receiver: Any = None

    def _register_data_receiver(self, receiver: Any) -> None:
        self.receiver = receiver

    def _unregister_data_receiver(self, receiver: Any) -> None:
        self.receiver = None

    async def _send_data(self, data: bytes) -> None:
        self._deliver(data)


class OurSide:
    """A tiny asyncio driver for our pure core (the real one is trio; this is a test)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.core = SctpAssociation(is_client=True, rng=random.Random(5))
        self.manager = DcepChannelManager(self.core, is_client=True)
        self.events: list[DcepEvent] = []
        self.established = asyncio.Event()
        self.wake = asyncio.Event()
        self.progress = asyncio.Event()
        self.stopped = False
        self.dtls: FakeDtlsTransport = FakeDtlsTransport(self.from_aiortc)

    def from_aiortc(self, data: bytes) -> None:
        self.core.receive_datagram(data, self.loop.time())
        self.wake.set()
        self.progress.set()

    async def run(self) -> None:
        while not self.stopped:
            now = self.loop.time()
            deadline = self.core.get_timer()
            if deadline is not None and deadline <= now:
                self.core.handle_timer(now)
            while (event := self.core.next_event()) is not None:
                if isinstance(event, AssociationEstablished):
                    self.established.set()
                self.events.extend(self.manager.handle_event(event, now=now))
            for packet in self.core.datagrams_to_send(now):
                receiver = self.dtls.receiver
                if receiver is not None:
                    await receiver._handle_data(packet)
            self.progress.set()
            if self.wake.is_set():
                self.wake.clear()
                continue
            deadline = self.core.get_timer()
            timeout = None if deadline is None else max(0.0, deadline - self.loop.time())
            try:
                async with asyncio.timeout(timeout):
                    await self.wake.wait()
            except TimeoutError:
                pass
            self.wake.clear()

    async def wait_for(self, predicate: Any) -> None:
        """Wait until ``predicate()`` holds; callers bound the wait with asyncio.timeout."""
        while not predicate():
            self.progress.clear()
            await self.progress.wait()

    def messages(self, stream_id: int) -> list[str | bytes]:
        return [
            e.data
            for e in self.events
            if isinstance(e, ChannelMessage) and e.stream_id == stream_id
        ]


async def _scenario() -> None:
    from aiortc.rtcsctptransport import RTCSctpTransport

    loop = asyncio.get_running_loop()
    ours = OurSide(loop)
    theirs = RTCSctpTransport(ours.dtls, port=5000)  # type: ignore[arg-type]
    their_channels: list[Any] = []

    def on_datachannel(channel: Any) -> None:
        their_channels.append(channel)
        channel.on("message", channel.send)  # echo

    theirs.on("datachannel", on_datachannel)

    driver = asyncio.ensure_future(ours.run())
    try:
        async with asyncio.timeout(60):
            await _exchange(ours, theirs, their_channels, loop)
    finally:
        await theirs.stop()
        ours.stopped = True
        ours.wake.set()
        await driver


async def _exchange(
    ours: OurSide, theirs: Any, their_channels: list[Any], loop: asyncio.AbstractEventLoop
) -> None:
    from aiortc.rtcdatachannel import RTCDataChannel, RTCDataChannelParameters
    from aiortc.rtcsctptransport import RTCSctpCapabilities

    ours.core.connect(loop.time())
    ours.wake.set()
    await theirs.start(RTCSctpCapabilities(maxMessageSize=262144), 5000)
    await ours.established.wait()
    await ours.wait_for(lambda: theirs.state == "connected")

    # We open a channel in band; aiortc answers and echoes everything.
    stream_id = ours.manager.allocate_stream_id()
    ours.manager.open_channel(DataChannelParameters(stream_id, label="echo"), now=loop.time())
    rng = random.Random(9)
    sent: list[str | bytes] = ["hello", ""]
    for _ in range(64):
        sent.append(rng.randbytes(rng.choice((1, 100, 1200, 16384, 60000))))
    for item in sent:
        ours.manager.send(stream_id, item, now=loop.time())
    ours.wake.set()
    await ours.wait_for(lambda: len(ours.messages(stream_id)) == len(sent))
    echoed = ours.messages(stream_id)
    assert echoed == sent
    assert their_channels and their_channels[0].label == "echo"

    # aiortc opens a channel towards us (odd id: it is the DTLS server).
    theirs_channel = RTCDataChannel(theirs, RTCDataChannelParameters(label="from-aiortc"))
    await ours.wait_for(lambda: any(isinstance(e, ChannelOpened) for e in ours.events))
    opened = next(e for e in ours.events if isinstance(e, ChannelOpened))
    assert opened.parameters.label == "from-aiortc" and opened.parameters.stream_id % 2 == 1
    await ours.wait_for(lambda: theirs_channel.readyState == "open")
    theirs_channel.send("ping from aiortc")
    await ours.wait_for(lambda: ours.messages(opened.parameters.stream_id) == ["ping from aiortc"])

    # Closing resets both directions (RFC 8831 §6.7) and aiortc sees its channel close.
    ours.manager.close_channel(stream_id)
    ours.wake.set()
    await ours.wait_for(lambda: any(isinstance(e, ChannelClosed) for e in ours.events))
    await ours.wait_for(lambda: their_channels[0].readyState == "closed")
    assert ours.core.stats.malformed_packets == 0


def test_association_interoperates_with_aiortc() -> None:
    """INIT collision (both send INIT), DCEP both ways, echo of 66 messages up to 60 kB, close."""
    asyncio.run(_scenario())
