"""trio_rtc loopback demo: two peers in one process connect over real UDP on 127.0.0.1.

1. ICE: both transports gather host candidates, trickle them to each other, run connectivity
   checks and select a pair (RFC 8445).
2. DTLS 1.2 (our own, on `cryptography`): a handshake over the selected pair, with fingerprint
   verification and SRTP keys derived (RFC 6347, RFC 5764).
3. Data: N encrypted records one way, timed.

Run:  .venv/bin/python examples/loopback_demo.py [--messages N] [--size BYTES] [--ipv6]

The SCTP data channel and media layers arrive in later milestones; this demo grows with them.
"""

from __future__ import annotations

import argparse

import trio
import trio.lowlevel

from trio_rtc.dtls.certificate import RTCCertificate
from trio_rtc.dtls.crypto import CipherSuite, SrtpProfile
from trio_rtc.dtls.driver import RTCDtlsTransport
from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport


async def main(messages: int, size: int, address: str) -> None:
    options = IceTransportOptions(interfaces=[address])
    cert_a, cert_b = await RTCCertificate.generate(), await RTCCertificate.generate()
    async with (
        RTCIceTransport(options=options) as ice_a,
        RTCIceTransport(options=options) as ice_b,
        trio.open_nursery() as nursery,
    ):
        start = trio.current_time()
        # Signalling is in-process here: each candidate goes straight to the other side.
        ice_a.onicecandidate = lambda event: ice_b.addRemoteCandidate(event.candidate)
        ice_b.onicecandidate = lambda event: ice_a.addRemoteCandidate(event.candidate)
        ice_a.start(ice_b.getLocalParameters(), "controlling")
        ice_b.start(ice_a.getLocalParameters(), "controlled")
        ice_a.gather()
        ice_b.gather()
        await ice_a.wait_for_state("connected", "completed")
        await ice_b.wait_for_state("connected", "completed")
        ice_time = trio.current_time() - start
        pair = ice_a.getSelectedCandidatePair()
        assert pair is not None
        print(
            f"ICE connected in {ice_time * 1000:.1f} ms: "
            f"{pair.local.address}:{pair.local.port} <-> {pair.remote.address}:{pair.remote.port}"
        )

        dtls_a = RTCDtlsTransport(
            ice_a, cert_a, is_client=True, remote_fingerprints=cert_b.getFingerprints()
        )
        dtls_b = RTCDtlsTransport(
            ice_b, cert_b, is_client=False, remote_fingerprints=cert_a.getFingerprints()
        )
        dtls_start = trio.current_time()
        nursery.start_soon(
            lambda: dtls_a.run(receive_channel=ice_a.dtls_receive_channel, send=ice_a.send)
        )
        nursery.start_soon(
            lambda: dtls_b.run(receive_channel=ice_b.dtls_receive_channel, send=ice_b.send)
        )
        await dtls_a.wait_connected()
        await dtls_b.wait_connected()
        done = trio.current_time()
        complete = dtls_a.handshake_complete
        assert complete is not None
        print(
            f"DTLS connected in {(done - dtls_start) * 1000:.1f} ms "
            f"({CipherSuite(complete.cipher_suite).name}, "
            f"SRTP {SrtpProfile(complete.srtp_profile).name if complete.srtp_profile else 'none'})"
        )
        print(f"setup total: {(done - start) * 1000:.1f} ms")

        payload = b"x" * size
        received = 0

        async def receive_all() -> None:
            nonlocal received
            while received < messages:
                await dtls_b.application_data_receive_channel.receive()
                received += 1

        transfer_start = trio.current_time()
        with trio.move_on_after(30):
            async with trio.open_nursery() as transfer:
                transfer.start_soon(receive_all)
                for sent in range(messages):
                    await dtls_a.send_application_data(payload)
                    # Pace to the receiver: DTLS is datagram-based, a burst beyond the
                    # socket and channel buffers would be dropped (SCTP adds flow control).
                    if sent - received > 256:
                        await trio.lowlevel.checkpoint()
        elapsed = trio.current_time() - transfer_start
        print(
            f"transfer: {received}/{messages} records of {size} bytes in {elapsed:.3f} s = "
            f"{received / elapsed:,.0f} records/s, {received * size / elapsed / 1e6:.1f} MB/s"
        )
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--ipv6", action="store_true", help="use ::1 instead of 127.0.0.1")
    args = parser.parse_args()
    trio.run(main, args.messages, args.size, "::1" if args.ipv6 else "127.0.0.1")
