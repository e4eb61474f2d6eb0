"""Data channels end to end between two trio_rtc peer connections over UDP on 127.0.0.1:
10,000 messages, 8 MiB checked by sha256, both offerer roles, trickle and not, renegotiation
adding a channel, and an ICE restart in the middle of a transfer."""

from __future__ import annotations

import hashlib
import os

import pytest
import trio
import trio.testing
from pc_helpers import connect, negotiate, pc_pair

from trio_rtc import RTCDataChannel, RTCPeerConnection

CHUNK = 64 * 1024


async def open_channel(
    offerer: RTCPeerConnection,
    answerer: RTCPeerConnection,
    nursery: trio.Nursery,
    *,
    trickled: bool = True,
    label: str = "data",
) -> tuple[RTCDataChannel, RTCDataChannel]:
    remote: list[RTCDataChannel] = []
    answerer.ondatachannel = lambda event: remote.append(event.channel)
    channel = offerer.createDataChannel(label)
    await connect(offerer, answerer, nursery, trickled=trickled)
    await channel.wait_open()
    await answerer.wait_until(lambda: bool(remote))
    return channel, remote[0]


async def send_bytes(channel: RTCDataChannel, payload: bytes) -> None:
    for offset in range(0, len(payload), CHUNK):
        await channel.send_message(payload[offset : offset + CHUNK])


async def receive_bytes(channel: RTCDataChannel, size: int) -> bytes:
    parts: list[bytes] = []
    received = 0
    while received < size:
        message = await channel.receive()
        assert isinstance(message, bytes)
        parts.append(message)
        received += len(message)
    return b"".join(parts)


@pytest.mark.parametrize("trickled", [True, False], ids=["trickle", "non-trickle"])
@pytest.mark.parametrize("first_offers", [True, False], ids=["a-offers", "b-offers"])
async def test_ten_thousand_messages_and_8_mib(trickled: bool, first_offers: bool) -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        offerer, answerer = (a, b) if first_offers else (b, a)
        with trio.fail_after(60):
            local, remote = await open_channel(offerer, answerer, nursery, trickled=trickled)

            async def send_messages() -> None:
                for i in range(10_000):
                    await local.send_message(f"message {i}")

            async with trio.open_nursery() as transfer:
                transfer.start_soon(send_messages)
                for i in range(10_000):
                    assert await remote.receive() == f"message {i}"

            # 8 MiB the other way, checked by sha256.
            payload = os.urandom(8 * 1024 * 1024)
            async with trio.open_nursery() as transfer:
                transfer.start_soon(send_bytes, remote, payload)
                received = await receive_bytes(local, len(payload))
            assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
        nursery.cancel_scope.cancel()


async def test_renegotiation_adding_a_channel() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        with trio.fail_after(20):
            first_a, first_b = await open_channel(a, b, nursery)
            # b renegotiates (now b is the offerer) while a adds a channel.
            got: list[RTCDataChannel] = []
            b.ondatachannel = lambda event: got.append(event.channel)
            second_a = a.createDataChannel("second", negotiated=True, id=100)
            second_b = b.createDataChannel("second", negotiated=True, id=100)
            third_a = a.createDataChannel("third")
            await negotiate(b, a, trickled=True)
            assert a.signalingState == "stable" and b.signalingState == "stable"
            await second_a.wait_open()
            await second_b.wait_open()
            await third_a.wait_open()
            await b.wait_until(lambda: bool(got))
            third_b = got[0]
            for sender, receiver in (
                (first_a, first_b),
                (second_a, second_b),
                (second_b, second_a),
                (third_a, third_b),
            ):
                await sender.send_message(f"via {sender.label}")
                assert await receiver.receive() == f"via {sender.label}"
            assert third_b.label == "third" and third_b.id == third_a.id
        nursery.cancel_scope.cancel()


async def test_ice_restart_mid_transfer_loses_nothing() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        with trio.fail_after(30):
            local, remote = await open_channel(a, b, nursery)
            ice = a.ice_transport
            assert ice is not None
            old_ufrag = ice.getLocalParameters().usernameFragment
            payload = os.urandom(4 * 1024 * 1024)
            restarted = trio.Event()
            restarting = False
            progress: list[int] = []

            async def restart() -> None:
                events: list[str] = []
                a.addEventListener("negotiationneeded", lambda e: events.append(e.type))
                a.restartIce()
                # As an application would: renegotiate when negotiationneeded fires.
                await a.wait_until(lambda: bool(events))
                await negotiate(a, b, trickled=True)
                await a.wait_until(lambda: a.iceConnectionState in ("connected", "completed"))
                progress.append(received_bytes)
                restarted.set()

            parts: list[bytes] = []
            received_bytes = 0
            async with trio.open_nursery() as transfer:
                transfer.start_soon(send_bytes, local, payload)
                while received_bytes < len(payload):
                    message = await remote.receive()
                    assert isinstance(message, bytes)
                    parts.append(message)
                    received_bytes += len(message)
                    if received_bytes > len(payload) // 4 and not restarting:
                        # A quarter went through: restart ICE from a, mid-transfer.
                        restarting = True
                        transfer.start_soon(restart)
            received = b"".join(parts)
            await restarted.wait()
            assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
            assert progress[0] < len(payload), "the restart finished after the transfer"
            assert ice.getLocalParameters().usernameFragment != old_ufrag
            # The new generation selects its own pair (the old one carried data meanwhile).
            await ice.wait_until(lambda: ice.selected_pair in ice.agent.pairs)
            ice_b = b.ice_transport
            assert ice_b is not None
            assert [c.type for c in ice_b.agent.remote_candidates] == ["host"]
            await a.wait_connection_state("connected")
            # Data still flows on the new pair.
            await local.send_message(b"after restart")
            assert await remote.receive() == b"after restart"
        nursery.cancel_scope.cancel()


async def test_ice_restart_started_by_the_answerer() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        with trio.fail_after(20):
            local, remote = await open_channel(a, b, nursery)
            ice_a, ice_b = a.ice_transport, b.ice_transport
            assert ice_a is not None and ice_b is not None
            old_a = ice_a.getLocalParameters().usernameFragment
            old_b = ice_b.getLocalParameters().usernameFragment
            b.restartIce()
            await b.setLocalDescription()
            assert b.localDescription is not None
            await a.setRemoteDescription(b.localDescription)
            # Let b's new candidates reach a before a answers: they must wait for the new
            # generation instead of joining the old one.
            await b.wait_until(lambda: b.iceGatheringState == "complete")
            await trio.testing.wait_all_tasks_blocked()
            await a.setLocalDescription()
            assert a.localDescription is not None
            await b.setRemoteDescription(a.localDescription)
            # Both sides have new credentials; the peer that answered the restart too.
            assert ice_a.getLocalParameters().usernameFragment != old_a
            assert ice_b.getLocalParameters().usernameFragment != old_b
            await ice_a.wait_until(lambda: ice_a.selected_pair in ice_a.agent.pairs)
            # a answered the restart: b's new candidates, trickled while a had not answered yet,
            # were kept for the new generation (not learned as peer-reflexive).
            await ice_a.wait_until(
                lambda: any(c.type == "host" for c in ice_a.agent.remote_candidates)
            )
            await local.send_message("after the answerer's restart")
            assert await remote.receive() == "after the answerer's restart"
            assert a.connectionState == "connected" and b.connectionState == "connected"
        nursery.cancel_scope.cancel()


async def test_close_shuts_the_association_down_and_delivers_what_was_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``close()`` right after a burst of sends: the association is closed gracefully (SHUTDOWN,
    not ABORT), so the peer gets every message and its channel closes without an error; ours
    closes without events, as webrtc-pc says."""
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        with trio.fail_after(30):
            local, remote = await open_channel(a, b, nursery)
            ours: list[str] = []
            local.onclose = lambda event: ours.append("close")
            errors: list[object] = []
            remote.onerror = errors.append
            for i in range(200):
                local.send(f"message {i}" * 20)
            await a.close()
            assert local.readyState == "closed" and a.connectionState == "closed"
            received = []
            with trio.move_on_after(5):
                while len(received) < 200:
                    received.append(await remote.receive())
            await b.wait_until(lambda: remote.readyState == "closed")
            sctp = b.sctp
        nursery.cancel_scope.cancel()
    assert received == [f"message {i}" * 20 for i in range(200)]
    assert errors == [] and ours == []
    assert sctp is not None and sctp.crashed is None
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []
