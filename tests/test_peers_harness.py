"""The interop harness itself works: two aioice peers connect through it, coturn answers STUN.

These tests check the harness in ``tests/peers`` against real third-party software only, so that
an interop failure with trio_rtc later can be blamed on trio_rtc, not on the harness.
"""

import os
import socket
import struct
from pathlib import Path

import pytest
import trio
from peers.aioice_harness import AioicePeer, AioicePeerError
from peers.coturn import CoturnServer, run_coturn

pytestmark = pytest.mark.interop

MAGIC_COOKIE = 0x2112A442


async def connect_pair(controlling: AioicePeer, controlled: AioicePeer) -> None:
    a = await controlling.local_description()
    b = await controlled.local_description()
    await controlling.set_remote(b.ufrag, b.pwd, b.candidates)
    await controlled.set_remote(a.ufrag, a.pwd, a.candidates)
    with trio.fail_after(8):
        await controlling.wait_connected()
        await controlled.wait_connected()


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
async def test_two_aioice_peers_connect_and_echo(family: str) -> None:
    loopback = "127.0.0.1" if family == "ipv4" else "::1"
    async with (
        AioicePeer(role="controlling", family=family, echo=False) as sender,  # type: ignore[arg-type]
        AioicePeer(role="controlled", family=family) as echoer,  # type: ignore[arg-type]
    ):
        description = await sender.local_description()
        assert description.candidates
        for line in description.candidates:
            assert line.startswith("candidate:")
            assert f" {loopback} " in line
            assert " typ host" in line

        await connect_pair(sender, echoer)
        selected = await echoer.wait_connected()
        assert f" {loopback} " in selected.local and f" {loopback} " in selected.remote

        payloads = [b"\x80echo %d" % i for i in range(5)]
        for payload in payloads:
            await sender.send(payload)
        echoed = await sender.wait_received(len(payloads))
        assert echoed.count == len(payloads)
        assert sorted(echoed.recent) == sorted(payloads)
        assert (await echoer.received()).count == len(payloads)

        await sender.close()
        await echoer.close()
    assert sender.returncode == 0 and echoer.returncode == 0


async def test_trickled_candidates_and_refused_non_loopback() -> None:
    async with (
        AioicePeer(role="controlling", echo=False) as sender,
        AioicePeer(role="controlled") as echoer,
    ):
        a = await sender.local_description()
        b = await echoer.local_description()
        await sender.set_remote(b.ufrag, b.pwd, b.candidates)
        # The controlled side learns the candidates one by one after the credentials, and is
        # offered addresses it must never send to: another host and an mDNS name.
        await echoer.set_remote(a.ufrag, a.pwd, [], end_of_candidates=False)
        await echoer.add_candidate("candidate:1 1 udp 2130706431 192.0.2.1 9 typ host")
        await echoer.add_candidate("candidate:2 1 udp 2130706431 x.local 9 typ host")
        for line in a.candidates:
            await echoer.add_candidate(line)
        await echoer.end_of_candidates()
        with trio.fail_after(8):
            await sender.wait_connected()
            await echoer.wait_connected()
        assert [m["candidate"].split()[4] for m in echoer.ignored()] == ["192.0.2.1", "x.local"]

        await sender.send(b"\x80trickled")
        assert (await sender.wait_received(1)).recent == [b"\x80trickled"]


async def test_aioice_failure_is_reported() -> None:
    async with AioicePeer(role="controlling", family="ipv4") as peer:
        await peer.local_description()
        # An IPv6 candidate cannot pair with IPv4 host candidates (RFC 8445 section 6.1.2.2), so
        # the check list is empty and ICE fails at end-of-candidates, without ~30 s of retries.
        await peer.set_remote("abcd", "x" * 22, ["candidate:1 1 udp 2130706431 ::1 9 typ host"])
        with trio.fail_after(5), pytest.raises(AioicePeerError, match="ICE failed"):
            await peer.wait_connected()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_leaving_the_block_by_cancellation_kills_the_peer() -> None:
    fds = open_fds()
    peer = AioicePeer(role="controlled")
    with trio.CancelScope() as scope:
        async with peer:
            await peer.local_description()
            scope.cancel()
            await trio.sleep_forever()
    # Killed and reaped (a return code exists, so no zombie), and its pipes are closed.
    assert peer.returncode is not None
    assert open_fds() == fds


async def test_an_error_in_the_block_carries_the_peer_log() -> None:
    peer = AioicePeer(role="controlled")
    with pytest.raises(ValueError) as caught:
        async with peer:
            await peer.local_description()
            raise ValueError("the test failed")
    notes = "\n".join(caught.value.__notes__)
    assert '"type": "local"' in notes and "aioice peer stderr:" in notes
    assert peer.returncode is not None


def xor_mapped_address(response: bytes, transaction_id: bytes) -> tuple[str, int]:
    """Hand parsing of a Binding success response (RFC 8489 sections 5, 14.2)."""
    message_type, length, cookie = struct.unpack_from("!HHI", response)
    assert message_type == 0x0101 and cookie == MAGIC_COOKIE
    assert response[8:20] == transaction_id
    offset = 20
    while offset < 20 + length:
        attr_type, attr_length = struct.unpack_from("!HH", response, offset)
        if attr_type == 0x0020:
            family, xport = struct.unpack_from("!xBH", response, offset + 4)
            assert family == 0x01
            xaddress = struct.unpack_from("!I", response, offset + 8)[0]
            address = socket.inet_ntoa(struct.pack("!I", xaddress ^ MAGIC_COOKIE))
            return address, xport ^ (MAGIC_COOKIE >> 16)
        offset += 4 + attr_length + (-attr_length % 4)
    raise AssertionError("no XOR-MAPPED-ADDRESS in the response")


async def test_coturn_answers_binding_request(coturn: CoturnServer) -> None:
    transaction_id = os.urandom(12)
    request = struct.pack("!HHI", 0x0001, 0, MAGIC_COOKIE) + transaction_id
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await sock.bind(("127.0.0.1", 0))
        with trio.fail_after(3):
            while True:
                await sock.sendto(request, coturn.stun_address)
                with trio.move_on_after(0.2):
                    response = await sock.recv(2048)
                    break
        assert xor_mapped_address(response, transaction_id) == sock.getsockname()


async def test_coturn_stops_on_cancellation(tmp_path: Path) -> None:
    fds = open_fds()
    with trio.CancelScope() as scope:
        async with run_coturn(tmp_path) as server:
            pid = server.pid
            scope.cancel()
            await trio.sleep_forever()
    # Reaped by the context manager, so nothing answers to that pid any more.
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert open_fds() == fds
    assert "Relay ports initialization done" in server.read_log()


async def test_aioice_turn_allocation_and_relayed_connection(coturn: CoturnServer) -> None:
    async with (
        AioicePeer(
            role="controlling",
            echo=False,
            turn_server=coturn.turn_address,
            turn_username=coturn.username,
            turn_password=coturn.password,
            transport_policy="relay",
        ) as relayed,
        AioicePeer(role="controlled") as echoer,
    ):
        a = await relayed.local_description()
        # With the relay policy the only candidate is the allocation coturn made (RFC 8656).
        assert len(a.candidates) == 1 and " typ relay " in a.candidates[0]
        relay_port = int(a.candidates[0].split()[5])
        assert coturn.relay_ports[0] <= relay_port <= coturn.relay_ports[1]

        await connect_pair(relayed, echoer)
        assert " typ relay " in (await relayed.wait_connected()).local
        await relayed.send(b"\x80via turn")
        assert (await relayed.wait_received(1)).recent == [b"\x80via turn"]
