"""The layers together over real UDP: DTLS (our own, on `cryptography`) runs on the records the
ICE transport sorts out of its sockets, and its datagrams go out through the selected pair."""

from __future__ import annotations

import trio
from ice_helpers import connect_pair

from trio_rtc.dtls.certificate import RTCCertificate
from trio_rtc.dtls.driver import RTCDtlsTransport
from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport


async def test_dtls_over_ice_on_loopback() -> None:
    opts = IceTransportOptions(interfaces=["127.0.0.1"])
    cert_a = await RTCCertificate.generate()
    cert_b = await RTCCertificate.generate()
    with trio.fail_after(10):
        async with (
            RTCIceTransport(options=opts) as ice_a,
            RTCIceTransport(options=opts) as ice_b,
            trio.open_nursery() as nursery,
        ):
            await connect_pair(ice_a, ice_b, trickle=True)
            dtls_a = RTCDtlsTransport(
                ice_a, cert_a, is_client=True, remote_fingerprints=cert_b.getFingerprints()
            )
            dtls_b = RTCDtlsTransport(
                ice_b, cert_b, is_client=False, remote_fingerprints=cert_a.getFingerprints()
            )
            nursery.start_soon(
                lambda: dtls_a.run(receive_channel=ice_a.dtls_receive_channel, send=ice_a.send)
            )
            nursery.start_soon(
                lambda: dtls_b.run(receive_channel=ice_b.dtls_receive_channel, send=ice_b.send)
            )
            await dtls_a.wait_connected()
            await dtls_b.wait_connected()
            assert dtls_a.iceTransport is ice_a
            assert dtls_a.srtp_keys is not None and dtls_b.srtp_keys is not None
            assert dtls_a.srtp_keys.local_key == dtls_b.srtp_keys.remote_key
            assert dtls_b.getRemoteCertificates() == [cert_a.der]

            for i in range(100):
                await dtls_a.send_application_data(b"message %d" % i)
            received = [await dtls_b.application_data_receive_channel.receive() for _ in range(100)]
            assert received == [b"message %d" % i for i in range(100)]
            dtls_a.close()
            await dtls_b.wait_until(lambda: dtls_b.state == "closed")
            nursery.cancel_scope.cancel()


async def test_a_dropped_client_hello_is_resent_after_tens_of_milliseconds() -> None:
    """Issue 16, finding 3: the first flight's timer starts from the round trip ICE measured
    (3 x RTT, at least 50 ms) instead of a fixed second, so a peer that drops our ClientHello
    (some do, before their own ICE says connected) costs tens of milliseconds."""
    opts = IceTransportOptions(interfaces=["127.0.0.1"])
    cert_a = await RTCCertificate.generate()
    cert_b = await RTCCertificate.generate()
    with trio.fail_after(10):
        async with (
            RTCIceTransport(options=opts) as ice_a,
            RTCIceTransport(options=opts) as ice_b,
            trio.open_nursery() as nursery,
        ):
            await connect_pair(ice_a, ice_b, trickle=True)
            dtls_a = RTCDtlsTransport(
                ice_a, cert_a, is_client=True, remote_fingerprints=cert_b.getFingerprints()
            )
            dtls_b = RTCDtlsTransport(
                ice_b, cert_b, is_client=False, remote_fingerprints=cert_a.getFingerprints()
            )
            dropped: list[bytes] = []

            def send_dropping_the_first(data: bytes) -> bool:
                if not dropped:
                    dropped.append(data)  # the ClientHello never leaves
                    return True
                return ice_a.send(data)

            nursery.start_soon(
                lambda: dtls_a.run(
                    receive_channel=ice_a.dtls_receive_channel, send=send_dropping_the_first
                )
            )
            nursery.start_soon(
                lambda: dtls_b.run(receive_channel=ice_b.dtls_receive_channel, send=ice_b.send)
            )
            await dtls_a.wait_connected()
            await dtls_b.wait_connected()
            assert dropped and dropped[0][0] == 22  # a handshake record
            # The timer that resent it: 3 x the loopback RTT, floored at 50 ms (not 1 s).
            assert 0.05 <= dtls_a.core.initial_retransmit_timeout <= 0.06
            nursery.cancel_scope.cancel()
