"""trio_rtc loopback demo: two RTCPeerConnections in one process, over real UDP on 127.0.0.1.

1. Signalling in-process: offer, answer and trickled candidates go straight to the other side.
2. ICE (RFC 8445), DTLS 1.2 (our own, on `cryptography`) and SCTP come up; a data channel opens.
3. A bulk transfer (checked by SHA-256) and a burst of small messages, timed.

Run:  .venv/bin/python examples/loopback_demo.py [--mib N] [--messages N] [--ipv6]
"""

from __future__ import annotations

import argparse
import hashlib
import os

import trio

from trio_rtc import RTCDataChannel, RTCDataChannelEvent, RTCPeerConnection
from trio_rtc.dtls.crypto import CipherSuite
from trio_rtc.dtls.keys import NamedGroup
from trio_rtc.ice.transport import IceTransportOptions


async def connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    """Offer/answer with trickle ICE, in-process."""

    async def trickle(target: RTCPeerConnection, event: object) -> None:
        await target.addIceCandidate(getattr(event, "candidate", None))

    offerer.onicecandidate = lambda event: trickle(answerer, event)
    answerer.onicecandidate = lambda event: trickle(offerer, event)
    await offerer.setLocalDescription(await offerer.createOffer())
    assert offerer.localDescription is not None
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    assert answerer.localDescription is not None
    await offerer.setRemoteDescription(answerer.localDescription)


async def main(mib: int, messages: int, address: str) -> None:
    options = IceTransportOptions(interfaces=[address])
    async with (
        RTCPeerConnection(ice_options=options) as a,
        RTCPeerConnection(ice_options=options) as b,
    ):
        start = trio.current_time()
        incoming, arrived = trio.open_memory_channel[RTCDataChannel](1)

        def on_datachannel(event: RTCDataChannelEvent) -> None:
            incoming.send_nowait(event.channel)

        b.ondatachannel = on_datachannel
        sender = a.createDataChannel("demo")
        await connect(a, b)
        await sender.wait_open()
        receiver = await arrived.receive()
        await receiver.wait_open()
        setup = trio.current_time() - start

        pair = a.ice_transport.getSelectedCandidatePair() if a.ice_transport else None
        dtls = a.dtls_transport.handshake_complete if a.dtls_transport else None
        print(f"connected: data channel open on both sides in {setup * 1000:.1f} ms")
        if pair is not None:
            print(f"  ICE pair {pair.local.address}:{pair.local.port} <-> {pair.remote.port}")
        if dtls is not None:
            suite = CipherSuite(dtls.cipher_suite).name
            print(f"  DTLS 1.2 {suite}, key exchange {NamedGroup(dtls.key_exchange_group).name}")

        # Bulk: 64 KiB messages, with backpressure (send_message waits for buffer room).
        chunk = os.urandom(64 * 1024)
        total = mib * 1024 * 1024
        count = total // len(chunk)
        expected = hashlib.sha256(chunk * count).hexdigest()
        got = hashlib.sha256()

        async def drain(n: int) -> None:
            for _ in range(n):
                message = await receiver.receive()
                got.update(message if isinstance(message, bytes) else message.encode())

        t0 = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, count)
            for _ in range(count):
                await sender.send_message(chunk)
        elapsed = trio.current_time() - t0
        assert got.hexdigest() == expected, "transfer corrupted"
        print(
            f"transfer: {mib} MiB in {elapsed:.2f} s = {total / elapsed / 1e6:.1f} MB/s "
            "(sha256 verified)"
        )

        # Small messages: 100 bytes each.
        small = b"m" * 100
        t0 = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, messages)
            for _ in range(messages):
                await sender.send_message(small)
        elapsed = trio.current_time() - t0
        print(
            f"small messages: {messages} x 100 B in {elapsed:.2f} s = {messages / elapsed:,.0f}/s"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=16, help="bulk transfer size in MiB")
    parser.add_argument("--messages", type=int, default=20000, help="number of 100-byte messages")
    parser.add_argument("--ipv6", action="store_true", help="use ::1 instead of 127.0.0.1")
    args = parser.parse_args()
    trio.run(main, args.mib, args.messages, "::1" if args.ipv6 else "127.0.0.1")
