"""Helpers shared by the ICE tests: in-process signalling between two transports."""

from __future__ import annotations

from trio_rtc.ice.transport import RTCIceTransport


async def connect_pair(
    a: RTCIceTransport, b: RTCIceTransport, *, trickle: bool, a_role: str = "controlling"
) -> None:
    """Signal between two running transports in-process, the way a pc would."""
    b_role = "controlled" if a_role == "controlling" else "controlling"
    if trickle:
        a.onicecandidate = lambda e: b.state != "closed" and b.addRemoteCandidate(e.candidate)
        b.onicecandidate = lambda e: a.state != "closed" and a.addRemoteCandidate(e.candidate)
        a.start(b.getLocalParameters(), a_role)
        b.start(a.getLocalParameters(), b_role)
        a.gather()
        b.gather()
    else:
        a.gather()
        b.gather()
        await a.wait_gathering_complete()
        await b.wait_gathering_complete()
        for candidate in a.getLocalCandidates():
            b.addRemoteCandidate(candidate)
        b.addRemoteCandidate(None)
        for candidate in b.getLocalCandidates():
            a.addRemoteCandidate(candidate)
        a.addRemoteCandidate(None)
        a.start(b.getLocalParameters(), a_role)
        b.start(a.getLocalParameters(), b_role)
    await a.wait_for_state("connected", "completed")
    await b.wait_for_state("connected", "completed")


async def exchange_data(a: RTCIceTransport, b: RTCIceTransport) -> None:
    # First bytes in the DTLS range (RFC 7983), so the receivers route them to the DTLS channel.
    for i in range(20):
        assert a.send(bytes([22]) + b"a->b %d" % i)
        assert b.send(bytes([23]) + b"b->a %d" % i)
    got_b = [await b.dtls_receive_channel.receive() for _ in range(20)]
    got_a = [await a.dtls_receive_channel.receive() for _ in range(20)]
    assert got_b == [bytes([22]) + b"a->b %d" % i for i in range(20)]
    assert got_a == [bytes([23]) + b"b->a %d" % i for i in range(20)]
