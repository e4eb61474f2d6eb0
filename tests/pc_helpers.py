"""In-process signalling between two peer connections for the pc tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import trio

from trio_rtc import RTCCertificate
from trio_rtc.ice.transport import IceTransportOptions
from trio_rtc.pc.events import RTCPeerConnectionIceEvent
from trio_rtc.peerconnection import RTCPeerConnection

OPTIONS = IceTransportOptions(interfaces=["127.0.0.1"], mdns=False)
_CERTIFICATES: list[RTCCertificate] = []


def certificate(index: int) -> RTCCertificate:
    """Pre-generated certificates, so tests do not pay for key generation every time."""
    while len(_CERTIFICATES) <= index:
        _CERTIFICATES.append(RTCCertificate.generate_sync())
    return _CERTIFICATES[index]


def make_pc(index: int = 0, **config: Any) -> RTCPeerConnection:
    return RTCPeerConnection({"certificates": [certificate(index)], **config}, ice_options=OPTIONS)


@contextlib.asynccontextmanager
async def pc_pair(**config: Any) -> AsyncIterator[tuple[RTCPeerConnection, RTCPeerConnection]]:
    async with make_pc(0, **config) as a, make_pc(1, **config) as b:
        yield a, b


def trickle(source: RTCPeerConnection, target: RTCPeerConnection, nursery: trio.Nursery) -> None:
    """Forward ``source``'s candidates to ``target`` as a signalling channel would: in order,
    each once ``target`` has a remote description."""
    send, receive = trio.open_memory_channel[Any](1000)

    def on_candidate(event: RTCPeerConnectionIceEvent) -> None:
        if event.candidate is not None:
            send.send_nowait(event.candidate.toJSON())

    async def forward() -> None:
        async for init in receive:
            await target.wait_until(lambda: target.remoteDescription is not None)
            if target.signalingState == "closed":
                return
            await target.addIceCandidate(init)

    source.addEventListener("icecandidate", on_candidate)
    nursery.start_soon(forward)


async def negotiate(
    offerer: RTCPeerConnection, answerer: RTCPeerConnection, *, trickled: bool
) -> None:
    """One offer/answer round. Without trickle, each side waits for gathering to complete and
    sends its description with every candidate in it."""
    await offerer.setLocalDescription(await offerer.createOffer())
    if not trickled:
        await offerer.wait_gathering_complete()
    offer = offerer.localDescription
    assert offer is not None
    await answerer.setRemoteDescription(offer)
    await answerer.setLocalDescription(await answerer.createAnswer())
    if not trickled:
        await answerer.wait_gathering_complete()
    answer = answerer.localDescription
    assert answer is not None
    await offerer.setRemoteDescription(answer)


async def connect(
    offerer: RTCPeerConnection,
    answerer: RTCPeerConnection,
    nursery: trio.Nursery,
    *,
    trickled: bool = True,
) -> None:
    if trickled:
        trickle(offerer, answerer, nursery)
        trickle(answerer, offerer, nursery)
    await negotiate(offerer, answerer, trickled=trickled)
    await offerer.wait_connection_state("connected")
    await answerer.wait_connection_state("connected")
