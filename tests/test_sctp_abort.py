"""A peer's ABORT (RFC 9260 §9.1) ends our channels with an error, whatever its cause, as
browsers show it (Chromium fires ``sctp-failure`` for every ABORT): ``error`` with
``sctp-failure``, then ``close``; ``async for`` yields what had arrived, then raises
``trio.BrokenResourceError``. The core tells a User-Initiated Abort (§3.3.10.12: the peer's
application closed without a graceful shutdown) from a failure, and the error's message names
it. Tested on the core, on two SCTP transports, with two peer connections over UDP where one
leaves its ``async with`` without ``close()`` (its ABORT arrives with DTLS's close_notify: the
ABORT must still be read, not lost behind DTLS ending), and against node-datachannel, whose
``close()`` sends libdatachannel's (usrsctp's) User-Initiated Abort."""

from __future__ import annotations

import logging

import pytest
import trio
from pc_helpers import connect, make_pc
from pc_interop_helpers import connect as connect_interop
from pc_interop_helpers import open_trio_peer
from peers.node.harness import open_node_peer
from test_datachannel_stack import sctp_pair
from test_sctp_harness import Pair

from trio_rtc.datachannel import RTCDataChannel
from trio_rtc.events import Event, RTCErrorEvent
from trio_rtc.sctp.association import SctpAssociation
from trio_rtc.sctp.chunks import (
    CauseCode,
    ChunkType,
    ErrorCause,
    encode_causes,
    encode_chunk,
    encode_packet,
)
from trio_rtc.sctp.events import AssociationAborted
from trio_rtc.sctp.states import AssociationState


def abort_packet(sender: SctpAssociation, causes: list[ErrorCause]) -> bytes:
    """An ABORT from ``sender`` to its peer carrying ``causes`` (crafted, not sent by it)."""
    chunk = encode_chunk(ChunkType.ABORT, 0, encode_causes(causes))
    return encode_packet(
        sender.local_port, sender.remote_port, sender.peer_tag, [chunk], zero_checksum=False
    )


def aborted(pair: Pair, core: SctpAssociation) -> AssociationAborted:
    (event,) = pair.of(core, AssociationAborted)
    assert isinstance(event, AssociationAborted)
    return event


# --- the core -------------------------------------------------------------------------------------


def test_our_abort_is_user_initiated_at_the_peer() -> None:
    pair = Pair()
    pair.connect()
    pair.a.abort("closed by the application")
    pair.run(lambda: bool(pair.of(pair.b, AssociationAborted)))
    event = aborted(pair, pair.b)
    assert event.by_peer and event.user_initiated
    assert event.reason == "User-Initiated Abort: closed by the application"
    assert pair.b.state is AssociationState.CLOSED
    # Our own abort is no peer's decision.
    assert not aborted(pair, pair.a).user_initiated


@pytest.mark.parametrize(
    ("causes", "reason"),
    [
        ([], "aborted by peer"),
        ([ErrorCause(CauseCode.PROTOCOL_VIOLATION, b"bad")], "cause 13: bad"),
        (
            [
                ErrorCause(CauseCode.USER_INITIATED_ABORT, b"bye"),
                ErrorCause(CauseCode.PROTOCOL_VIOLATION),
            ],
            "User-Initiated Abort: bye; cause 13",
        ),
    ],
    ids=["no-cause", "protocol-violation", "user-initiated-and-more"],
)
def test_any_other_abort_is_not_user_initiated(causes: list[ErrorCause], reason: str) -> None:
    pair = Pair()
    pair.connect()
    pair.b.receive_datagram(abort_packet(pair.a, causes), pair.now)
    pair.pump()
    event = aborted(pair, pair.b)
    assert event.by_peer and not event.user_initiated
    assert event.reason == reason
    assert pair.b.state is AssociationState.CLOSED


def test_a_failing_association_aborts_its_peer_with_an_error() -> None:
    pair = Pair(client={"heartbeat_interval": None}, server={"heartbeat_interval": None})
    pair.connect()
    pair.filter = lambda source, packet: source is not pair.a or packet[12] == ChunkType.ABORT
    pair.a.send_message(0, 53, b"never acknowledged", now=pair.now)
    pair.run(lambda: bool(pair.of(pair.b, AssociationAborted)), max_time=10_000)
    event = aborted(pair, pair.b)
    assert event.by_peer and not event.user_initiated
    assert "too many retransmissions" in event.reason


# --- two SCTP transports ---------------------------------------------------------------------------


async def arrived(channel: RTCDataChannel, count: int) -> None:
    """Wait until ``count`` messages reached the channel's inbox (none is read here)."""
    while channel.messages_received < count:  # noqa: ASYNC110 (a counter, nothing to wait on)
        await trio.sleep(0.005)


def record(channel: RTCDataChannel) -> list[str]:
    """The channel's ``error`` (with its errorDetail) and ``close`` events, in order."""
    seen: list[str] = []

    def on_error(event: RTCErrorEvent) -> None:
        seen.append(f"error {event.error.errorDetail}")

    def on_close(event: Event) -> None:
        seen.append("close")

    channel.addEventListener("error", on_error)
    channel.addEventListener("close", on_close)
    return seen


def messages_of_errors(channel: RTCDataChannel) -> list[str]:
    """The messages of the channel's ``error`` events, in order."""
    messages: list[str] = []
    channel.addEventListener("error", lambda event: messages.append(str(event.error)))
    return messages


async def test_user_initiated_abort_is_an_error_that_names_it() -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            a = RTCDataChannel("x", negotiated=True, id=0)
            b = RTCDataChannel("x", negotiated=True, id=0)
            stack.sctp_a.add_channel(a)
            stack.sctp_b.add_channel(b)
            await a.wait_open()
            await b.wait_open()
            seen = record(b)
            errors = messages_of_errors(b)
            states: list[str] = []
            stack.sctp_b.onstatechange = lambda event: states.append(stack.sctp_b.state)
            a.send("last words")
            await arrived(b, 1)  # in b's inbox, not read yet
            stack.sctp_a.stop()  # ABORT with User-Initiated Abort, as leaving a pc's block does
            received: list[str | bytes] = []
            with pytest.raises(trio.BrokenResourceError):
                async for message in b:
                    received.append(message)
            assert received == ["last words"]  # what had arrived is still read first
            assert b.readyState == "closed"
            assert seen == ["error sctp-failure", "close"]
            assert len(errors) == 1 and "User-Initiated Abort" in errors[0]
            assert stack.sctp_b.state == "closed" and states == ["closed"]


async def test_an_abort_for_a_failure_fires_error_then_close() -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            a = RTCDataChannel("x", negotiated=True, id=0)
            b = RTCDataChannel("x", negotiated=True, id=0)
            stack.sctp_a.add_channel(a)
            stack.sctp_b.add_channel(b)
            await b.wait_open()
            seen = record(b)
            # What a peer sends when it gives up on us (RFC 9260 §9.1 with Protocol Violation).
            stack.sctp_a.association._fail("peer unreachable (heartbeats unanswered)")
            stack.sctp_a._request_flush()
            with pytest.raises(trio.BrokenResourceError):
                async for _message in b:
                    pass
            assert seen == ["error sctp-failure", "close"]
            assert stack.sctp_b.state == "closed"


# --- two peer connections over UDP ---------------------------------------------------------------


async def test_peer_leaving_its_async_with_is_seen_as_its_abort(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client leaves its ``async with`` without ``close()``: its ABORT (User-Initiated
    Abort) and DTLS close_notify arrive together. The server reads the ABORT (not only DTLS
    ending): its channel gets the error naming it, ``async for`` yields the message that had
    arrived, then raises BrokenResourceError, and nothing is logged at ERROR."""
    caplog.set_level(logging.DEBUG, logger="trio_rtc")
    remote: list[RTCDataChannel] = []
    with trio.fail_after(20):
        async with make_pc(1) as server, trio.open_nursery() as nursery:
            server.ondatachannel = lambda event: remote.append(event.channel)
            async with make_pc(0) as client:
                channel = client.createDataChannel("chat")
                await connect(client, server, nursery)
                await channel.wait_open()
                await server.wait_until(lambda: bool(remote))
                theirs = remote[0]
                seen = record(theirs)
                errors = messages_of_errors(theirs)
                await channel.send_message("hello")
                await arrived(theirs, 1)
                # Leaving the block: no close(), no channel.close().
            received: list[str | bytes] = []
            with pytest.raises(trio.BrokenResourceError):
                async for message in theirs:
                    received.append(message)
            assert received == ["hello"]
            assert theirs.readyState == "closed"
            assert seen == ["error sctp-failure", "close"]
            assert len(errors) == 1 and "User-Initiated Abort" in errors[0], errors
            sctp = server.sctp
            assert sctp is not None
            await sctp.wait_for(state="closed")
            nursery.cancel_scope.cancel()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- libdatachannel (node-datachannel) closing its connection ------------------------------------


@pytest.mark.interop
async def test_libdatachannel_close_is_seen_as_its_abort(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """node-datachannel's ``pc.close()`` (libdatachannel over usrsctp) aborts the association
    with User-Initiated Abort: our channel, which it opened, gets the error naming it and
    closes; ``async for`` yields what had arrived first."""

    caplog.set_level(logging.DEBUG, logger="trio_rtc")
    with trio.fail_after(40):
        async with make_pc(0) as pc, open_trio_peer(pc) as ours:
            async with open_node_peer("node-datachannel") as theirs:
                await theirs.create_channel("chat")
                await connect_interop(theirs, ours, trickle=True)
                channel = await ours.wait_channel("chat")
                seen = record(channel)
                errors = messages_of_errors(channel)
                await theirs.send("chat", "hello")
                await arrived(channel, 1)
                # Leaving the block ends the script, which closes its peer connection.
            received: list[str | bytes] = []
            with pytest.raises(trio.BrokenResourceError):
                async for message in channel:
                    received.append(message)
            assert received == ["hello"]
            assert seen == ["error sctp-failure", "close"]
            assert len(errors) == 1 and "User-Initiated Abort" in errors[0], errors
            sctp = pc.sctp
            assert sctp is not None
            await sctp.wait_for(state="closed")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
