"""Two RTCPeerConnections on 127.0.0.1 whose every datagram crosses a :class:`UdpRelay`.

The offerer knows the answerer only by the relay's address; the answerer learns the offerer's
(the relay's outward socket) from its connectivity checks. Conditions (loss, delay, rate) are
set on the relay once both are connected, so setup itself is not what is measured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from trio_rtc import RTCPeerConnection
from trio_rtc.testing import UdpRelay


def without_candidates(sdp: str) -> str:
    return "".join(
        line
        for line in sdp.splitlines(keepends=True)
        if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    )


def udp_host_candidate(sdp: str) -> tuple[str, int]:
    """The first UDP host candidate line on 127.0.0.1 (without ``a=``) and its port."""
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            fields = line[2:].split()
            if fields[2].lower() == "udp" and fields[7] == "host" and fields[4] == "127.0.0.1":
                return line[2:], int(fields[5])
    raise AssertionError(f"no UDP host candidate on 127.0.0.1 in\n{sdp}")


@asynccontextmanager
async def connected_through_relay(
    a: RTCPeerConnection, b: RTCPeerConnection, *, seed: int
) -> AsyncIterator[UdpRelay]:
    """Negotiate ``a`` (offerer) with ``b`` with the path through a relay; yields the relay
    once both are connected (the caller adds tracks and channels before)."""
    await a.setLocalDescription()
    await a.wait_gathering_complete()
    assert a.localDescription is not None
    await b.setRemoteDescription(
        {"type": "offer", "sdp": without_candidates(a.localDescription.sdp)}
    )
    await b.setLocalDescription()
    await b.wait_gathering_complete()
    assert b.localDescription is not None
    answer = b.localDescription.sdp
    candidate, port = udp_host_candidate(answer)
    async with UdpRelay(target=("127.0.0.1", port), seed=seed) as relay:
        await a.setRemoteDescription({"type": "answer", "sdp": without_candidates(answer)})
        host, relay_port = relay.address[:2]
        fields = candidate.split()
        fields[4], fields[5] = host, str(relay_port)
        mid = a.getTransceivers()[0].mid if a.getTransceivers() else "0"
        await a.addIceCandidate({"candidate": " ".join(fields), "sdpMid": mid})
        await a.wait_connection_state("connected")
        await b.wait_connection_state("connected")
        assert list(relay.mappings) != []  # the path is the relay's
        yield relay
