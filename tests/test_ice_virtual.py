"""ICE over the in-memory virtual network, with trio's MockClock driving time.

The real RTCIceTransport driver and agent run unmodified; only the sockets are virtual."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from ice_helpers import connect_pair

from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport
from trio_rtc.stun import Attr, Method, StunMessage
from trio_rtc.testing import LinkConditions, VirtualNetwork
from trio_rtc.udp import open_udp_endpoint

A, B = "198.51.100.1", "198.51.100.2"


def options(address: str) -> IceTransportOptions:
    return IceTransportOptions(interfaces=[address], mdns=False)


async def wait_state(transport: RTCIceTransport, *states: str) -> float:
    await transport.wait_for_state(*states)
    return trio.current_time()


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("trickle", [True, False], ids=["trickle", "non-trickle"])
async def test_connects_through_30_percent_loss(
    autojump_clock: trio.testing.MockClock, seed: int, trickle: bool
) -> None:
    async with VirtualNetwork(seed=seed, conditions=LinkConditions(loss=0.3, delay=0.02)) as net:
        async with (
            RTCIceTransport(options=options(A)) as a,
            RTCIceTransport(options=options(B)) as b,
        ):
            with trio.fail_after(60):
                await connect_pair(a, b, trickle=trickle)
            # Data flows on the selected pair (through the same 30 % loss).
            delivered = 0
            for i in range(200):
                a.send(bytes([23]) + i.to_bytes(2, "big"))
            with trio.move_on_after(1):
                while True:
                    await b.dtls_receive_channel.receive()
                    delivered += 1
            assert 100 < delivered < 190
        assert net.stats.dropped > 0


async def test_consent_loss_disconnected_then_failed_then_restart_recovers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with VirtualNetwork(seed=1, conditions=LinkConditions(delay=0.01)) as net:
        async with (
            RTCIceTransport(options=options(A)) as a,
            RTCIceTransport(options=options(B)) as b,
        ):
            with trio.fail_after(10):
                await connect_pair(a, b, trickle=True)
            # Let consent run for a while: nothing changes on a healthy path.
            await trio.sleep(20)
            assert a.state in ("connected", "completed")
            assert a.agent.stats.consent_responses_received >= 15

            # The peer vanishes: everything between the hosts is dropped from now on.
            net.block(A, B)
            net.block(B, A)
            last_response = a.selected_pair.last_response_received  # type: ignore[union-attr]
            assert last_response is not None
            with trio.fail_after(60):
                disconnected_at = await wait_state(a, "disconnected")
                failed_at = await wait_state(a, "failed")
            # RFC 7675 / W3C: disconnected ~5 s after the last consent response, failed at 30 s.
            assert 5.0 - 1e-9 <= disconnected_at - last_response <= 5.3
            assert 30.0 - 1e-9 <= failed_at - last_response <= 30.3
            assert not a.send(bytes([23]) + b"after consent expired")

            # The path returns and an ICE restart (new credentials both sides) recovers.
            net.unblock(A, B)
            net.unblock(B, A)
            new_a = a.restart()
            new_b = b.restart()
            a.start(new_b, "controlling")
            b.start(new_a, "controlled")
            with trio.fail_after(10):
                await a.wait_for_state("connected", "completed")
                await b.wait_for_state("connected", "completed")
            assert a.getLocalParameters() == new_a
            assert a.send(bytes([23]) + b"back")
            assert await b.dtls_receive_channel.receive() == bytes([23]) + b"back"


async def test_restart_keeps_data_flowing_until_new_pair(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with VirtualNetwork(seed=2, conditions=LinkConditions(delay=0.05)) as _net:
        async with (
            RTCIceTransport(options=options(A)) as a,
            RTCIceTransport(options=options(B)) as b,
        ):
            with trio.fail_after(10):
                await connect_pair(a, b, trickle=True)
            old_pair = a.selected_pair
            new_a = a.restart()
            # During the restart the old pair still carries data.
            assert a.state in ("connected", "completed")
            assert a.send(bytes([23]) + b"during")
            assert await b.dtls_receive_channel.receive() == bytes([23]) + b"during"
            new_b = b.restart()
            b.start(new_a, "controlled")
            a.start(new_b, "controlling")
            with trio.fail_after(10):
                await a.wait_until(lambda: a.selected_pair is not old_pair)
            assert a.agent.local_ufrag == new_a.usernameFragment
            assert a.send(bytes([23]) + b"after")
            assert await b.dtls_receive_channel.receive() == bytes([23]) + b"after"


async def test_garbage_and_bad_integrity_are_dropped_and_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with VirtualNetwork(seed=3) as _net:
        async with (
            RTCIceTransport(options=options(A)) as a,
            RTCIceTransport(options=options(B)) as b,
        ):
            with trio.fail_after(10):
                await connect_pair(a, b, trickle=True)
            target = a.selected_pair.base  # type: ignore[union-attr]
            attacker = await open_udp_endpoint("198.51.100.66", 0)
            with attacker:
                stats = a.agent.stats
                # Malformed STUN-looking packets (first byte 0..3) and random junk.
                for i in range(200):
                    attacker.send_nowait(bytes([i % 4]) + bytes(range(i % 50)), target)
                # A well-formed Binding request with the right ufrag but a wrong password.
                request = StunMessage.request(Method.BINDING)
                request.attributes[Attr.USERNAME] = f"{a.agent.local_ufrag}:{b.agent.local_ufrag}"
                request.attributes[Attr.ICE_CONTROLLED] = 1
                attacker.send_nowait(request.encode(key=b"not the password"), target)
                # Unknown ufrag.
                request.attributes[Attr.USERNAME] = "nobody:else"
                attacker.send_nowait(request.encode(key=b"x"), target)
                # Data from an address that never authenticated.
                attacker.send_nowait(bytes([23]) + b"spoofed dtls", target)
                await trio.sleep(1)
                assert stats.stun_malformed >= 190
                assert stats.stun_bad_integrity == 1
                assert stats.stun_bad_username >= 1
                assert a.stats.datagrams_dropped_untrusted == 1
                assert attacker.recv_batch_nowait() == []  # nothing answered the attacker
            # The connection is unaffected.
            assert a.state in ("connected", "completed")
            assert a.send(bytes([23]) + b"still fine")
            assert await b.dtls_receive_channel.receive() == bytes([23]) + b"still fine"
