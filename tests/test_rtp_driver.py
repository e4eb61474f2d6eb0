"""The RTP/SRTP task over real ICE + DTLS stacks: UDP on 127.0.0.1 for the data path, the
virtual network under MockClock for everything that depends on time (RTCP reports)."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing
from dtls_sim import certs
from ice_helpers import connect_pair

from trio_rtc.dtls.crypto import SRTP_PROFILES, SrtpKeys, SrtpProfile
from trio_rtc.dtls.driver import RTCDtlsTransport
from trio_rtc.exceptions import RTCError
from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport
from trio_rtc.rtp.demux import MediaSection, RtpDemuxer
from trio_rtc.rtp.driver import RtpReceiverChannel, RtpTransport
from trio_rtc.rtp.extensions import URI_MID, ExtensionMap
from trio_rtc.rtp.packet import RtpPacket
from trio_rtc.rtp.srtp import SrtpSession
from trio_rtc.testing import LinkConditions, VirtualNetwork

AUDIO_PT = 111
MID_ID = 1
SECTION = MediaSection("0", payload_types={AUDIO_PT}, mid_extension_id=MID_ID)
EXTMAP = ExtensionMap({MID_ID: URI_MID})
SSRC_A, SSRC_B = 0x1111_1111, 0x2222_2222
LOOPBACK = ("127.0.0.1", "127.0.0.1")
VIRTUAL = ("198.51.100.1", "198.51.100.2")


@attrs.define
class Pair:
    ice_a: RTCIceTransport
    ice_b: RTCIceTransport
    dtls_a: RTCDtlsTransport
    dtls_b: RTCDtlsTransport
    rtp_a: RtpTransport
    rtp_b: RtpTransport
    nursery: trio.Nursery


@contextlib.asynccontextmanager
async def rtp_pair(
    *,
    addresses: tuple[str, str] = LOOPBACK,
    dtls_options: dict[str, Any] | None = None,
    wait: bool = True,
    **rtp_options: Any,
) -> AsyncIterator[Pair]:
    """Two ICE + DTLS + RTP stacks, wired as a peer connection wires them."""
    virtual = addresses[0] != "127.0.0.1"
    cert_a, cert_b = certs()
    options = dtls_options or {}
    async with (
        RTCIceTransport(
            options=IceTransportOptions(interfaces=[addresses[0]], mdns=not virtual)
        ) as ice_a,
        RTCIceTransport(
            options=IceTransportOptions(interfaces=[addresses[1]], mdns=not virtual)
        ) as ice_b,
        trio.open_nursery() as nursery,
    ):
        await connect_pair(ice_a, ice_b, trickle=True)
        dtls_a = RTCDtlsTransport(
            ice_a, cert_a, is_client=True, remote_fingerprints=cert_b.getFingerprints(), **options
        )
        dtls_b = RTCDtlsTransport(
            ice_b, cert_b, is_client=False, remote_fingerprints=cert_a.getFingerprints(), **options
        )
        rtp_a = RtpTransport(dtls_a, ice_a, sections=[SECTION], extension_map=EXTMAP, **rtp_options)
        rtp_b = RtpTransport(dtls_b, ice_b, sections=[SECTION], extension_map=EXTMAP, **rtp_options)
        for dtls, ice, rtp in ((dtls_a, ice_a, rtp_a), (dtls_b, ice_b, rtp_b)):
            ice.set_rtp_channel(rtp.inbox_send_channel())
            nursery.start_soon(_run_dtls, dtls, ice)
            await nursery.start(rtp.run)
        if wait:
            await rtp_a.wait_until(lambda: rtp_a.state != "new")
            await rtp_b.wait_until(lambda: rtp_b.state != "new")
        yield Pair(ice_a, ice_b, dtls_a, dtls_b, rtp_a, rtp_b, nursery)
        nursery.cancel_scope.cancel()


async def _run_dtls(dtls: RTCDtlsTransport, ice: RTCIceTransport) -> None:
    await dtls.run(receive_channel=ice.dtls_receive_channel, send_many=ice.send_many)


def audio(ssrc: int, seq: int, timestamp: int = 0) -> RtpPacket:
    return RtpPacket(AUDIO_PT, seq & 0xFFFF, timestamp, ssrc, payload=b"audio %d" % seq)


async def receive(channel: RtpReceiverChannel, count: int) -> list[RtpPacket]:
    got: list[RtpPacket] = []
    while len(got) < count:
        got.extend(await channel.receive())
    return got


async def wait_received(rtp: RtpTransport, count: int) -> None:
    await rtp.wait_until(lambda: rtp.counters.packets_received == count)


def task_count() -> int:
    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(child) for n in task.child_nurseries for child in n.child_tasks)

    return walk(trio.lowlevel.current_root_task())  # type: ignore[arg-type]


# --- the data path on loopback ------------------------------------------------------------------


async def test_500_packets_arrive_in_order_with_their_payloads() -> None:
    with trio.fail_after(10):
        async with rtp_pair() as pair:
            assert pair.rtp_a.state == pair.rtp_b.state == "connected"
            channel = pair.rtp_b.open_receiver("0", clock_rate=48000)
            sender = pair.rtp_a.open_sender("0", SSRC_A, 48000)
            for start in range(0, 500, 50):
                await sender.send_packets(
                    [audio(SSRC_A, i, i * 960) for i in range(start, start + 50)]
                )
            got = await receive(channel, 500)
            assert [p.sequence_number for p in got] == list(range(500))
            assert [p.payload for p in got] == [b"audio %d" % i for i in range(500)]
            # The mid extension was written by the sender and read by the demultiplexer.
            assert all(p.extensions == {MID_ID: b"0"} for p in got)
            stats = pair.rtp_b.stats()
            assert stats["srtp"]["rtp_unprotected"] == 500
            assert stats["demux"]["packets_routed"] == 500
            assert stats["inbound"][SSRC_A]["packets_received"] == 500 - 1  # A.1 probation
            assert pair.rtp_a.stats()["outbound"][SSRC_A]["packets_sent"] == 500
            assert pair.rtp_a.stats()["srtp"]["rtp_protected"] == 500


async def test_both_directions_at_once() -> None:
    with trio.fail_after(10):
        async with rtp_pair() as pair:
            at_a = pair.rtp_a.open_receiver("0", clock_rate=48000)
            at_b = pair.rtp_b.open_receiver("0", clock_rate=48000)
            send_a = pair.rtp_a.open_sender("0", SSRC_A, 48000)
            send_b = pair.rtp_b.open_sender("0", SSRC_B, 48000)
            got: dict[str, list[RtpPacket]] = {}

            async def pump(sender: Any, ssrc: int) -> None:
                for start in range(0, 500, 25):
                    await sender.send_packets([audio(ssrc, i) for i in range(start, start + 25)])
                    await trio.lowlevel.checkpoint()

            async def collect(name: str, channel: RtpReceiverChannel) -> None:
                got[name] = await receive(channel, 500)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump, send_a, SSRC_A)
                nursery.start_soon(pump, send_b, SSRC_B)
                nursery.start_soon(collect, "a", at_a)
                nursery.start_soon(collect, "b", at_b)
            assert [(p.ssrc, p.sequence_number) for p in got["b"]] == [
                (SSRC_A, i) for i in range(500)
            ]
            assert [(p.ssrc, p.sequence_number) for p in got["a"]] == [
                (SSRC_B, i) for i in range(500)
            ]


async def test_renegotiation_adds_a_section() -> None:
    video = MediaSection("1", payload_types={96}, mid_extension_id=MID_ID)
    with trio.fail_after(10):
        async with rtp_pair() as pair:
            for rtp in (pair.rtp_a, pair.rtp_b):
                rtp.configure([SECTION, video])
            audio_b = pair.rtp_b.open_receiver("0", clock_rate=48000)
            video_b = pair.rtp_b.open_receiver("1")
            send_audio = pair.rtp_a.open_sender("0", SSRC_A, 48000)
            send_video = pair.rtp_a.open_sender("1", 0x3333_3333, 90000)
            await send_video.send_packets([RtpPacket(96, i, 0, 0x3333_3333) for i in range(4)])
            await send_audio.send_packets([audio(SSRC_A, i) for i in range(4)])
            assert [p.ssrc for p in await receive(video_b, 4)] == [0x3333_3333] * 4
            assert [p.extensions for p in await receive(audio_b, 4)] == [{MID_ID: b"0"}] * 4
            assert pair.rtp_b.stats()["inbound"][0x3333_3333]["mid"] == "1"


@pytest.mark.parametrize("reduced_size", [False, True], ids=["compound", "rsize"])
async def test_pli_reaches_the_senders_keyframe_callback(reduced_size: bool) -> None:
    with trio.fail_after(10):
        async with rtp_pair(reduced_size=reduced_size) as pair:
            requests = trio.Event()
            sender = pair.rtp_a.open_sender("0", SSRC_A, 90000, on_keyframe_request=requests.set)
            channel = pair.rtp_b.open_receiver("0")
            await sender.send_packets([audio(SSRC_A, i) for i in range(3)])
            await receive(channel, 3)
            assert pair.rtp_b.request_keyframe("0")
            await requests.wait()
            assert sender.keyframe_requests == 1
            assert pair.rtp_b.counters.keyframe_requests_sent == 1


async def test_fir_for_a_peer_without_pli() -> None:
    """A receiver opened with ``fir=True`` (the peer negotiated ``ccm fir`` only) asks with a
    FIR (RFC 5104 §4.3.1); the sender's callback fires once for it and once for the next
    request, which carries a new sequence number."""
    with trio.fail_after(10):
        async with rtp_pair() as pair:
            requests: list[float] = []
            sender = pair.rtp_a.open_sender(
                "0", SSRC_A, 90000, on_keyframe_request=lambda: requests.append(1)
            )
            sender.keyframes.hold_off = 0.0
            channel = pair.rtp_b.open_receiver("0", fir=True)
            await sender.send_packets([audio(SSRC_A, i) for i in range(3)])
            await receive(channel, 3)
            assert pair.rtp_b.request_keyframe("0")
            await sender.transport.wait_until(lambda: sender.fir_received == 1)
            pair.rtp_b.keyframe_requester.min_interval = 0.0
            assert pair.rtp_b.request_keyframe("0")
            await sender.transport.wait_until(lambda: sender.fir_received == 2)
            assert (sender.pli_received, len(requests)) == (0, 2)
            assert pair.rtp_b.counters.fir_sent == 2


async def test_garbage_replays_and_tampering_are_dropped_and_counted() -> None:
    with trio.fail_after(10):
        async with rtp_pair() as pair:
            channel = pair.rtp_b.open_receiver("0", clock_rate=48000)
            sender = pair.rtp_a.open_sender("0", SSRC_A, 48000)
            sent: list[bytes] = []
            withhold = False
            send_many = pair.ice_a.send_many

            def recording(datagrams: list[bytes]) -> int:
                sent.extend(datagrams)
                return 0 if withhold else send_many(datagrams)

            pair.ice_a.send_many = recording  # type: ignore[method-assign]
            await sender.send_packets([audio(SSRC_A, i) for i in range(10)])
            await receive(channel, 10)
            withhold = True  # 10 and 11 leave A's task but not A's socket: B has not seen them
            await sender.send_packets([audio(SSRC_A, 10), audio(SSRC_A, 11)])
            await pair.rtp_a.wait_until(lambda: len(sent) == 12)
            withhold = False
            rng = random.Random(5)
            ten, eleven = sent[10], sent[11]
            injected = [
                sent[3],  # a replay
                ten[:-1] + bytes([ten[-1] ^ 1]),  # a tampered tag
                eleven[:20] + bytes([eleven[20] ^ 0x80]) + eleven[21:],  # a tampered payload
                bytes([0x80, AUDIO_PT]) + rng.randbytes(60),  # garbage in the RTP range
                bytes([0x80, 200]) + rng.randbytes(40),  # garbage in the RTCP range (RFC 5761)
                bytes([0x80, AUDIO_PT, 0]),  # too short for SRTP
                ten,  # the genuine ones still pass after their forgeries
                eleven,
            ]
            for datagram in injected:
                assert pair.ice_a.send(datagram)
            await sender.send_packets([audio(SSRC_A, i) for i in range(12, 110)])
            got = await receive(channel, 100)
            assert [p.sequence_number for p in got] == list(range(10, 110))
            srtp = pair.rtp_b.stats()["srtp"]
            assert srtp["dropped_replay"] == 1
            assert srtp["dropped_auth"] == 4  # the two forgeries and the two garbage datagrams
            assert srtp["dropped_malformed"] == 1
            assert pair.rtp_b.state == "connected" and pair.rtp_b.crashed is None


async def test_a_slow_receiver_loses_the_oldest_batches_never_blocks_the_task() -> None:
    with trio.fail_after(10):
        async with rtp_pair() as pair:
            channel = pair.rtp_b.open_receiver("0", depth=2)
            sender = pair.rtp_a.open_sender("0", SSRC_A, 90000)
            for i in range(10):
                await sender.send_packets([audio(SSRC_A, i)])
                # Let each batch arrive on its own wake-up of B's task.
                await wait_received(pair.rtp_b, i + 1)
            got = [p.sequence_number for p in channel.receive_nowait() + channel.receive_nowait()]
            assert got == [8, 9]
            assert pair.rtp_b.stats()["receivers"]["0"]["dropped"] == 8


# --- time: RTCP on the virtual network under MockClock ------------------------------------------


async def test_sender_reports_give_lip_sync_and_receiver_reports_give_rtt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    delay = 0.02
    async with VirtualNetwork(seed=1, conditions=LinkConditions(delay=delay)):
        with trio.fail_after(120):
            async with rtp_pair(addresses=VIRTUAL, minimum_interval=1.0) as pair:
                channel = pair.rtp_b.open_receiver("0", clock_rate=48000)
                sender = pair.rtp_a.open_sender("0", SSRC_A, 48000)
                t0 = trio.current_time()
                sent_at: dict[int, float] = {}
                for i in range(300):  # 6 s of 20 ms audio frames
                    now = trio.current_time()
                    timestamp = round((now - t0) * 48000)
                    sent_at[timestamp] = now
                    await sender.send_packets([audio(SSRC_A, i, timestamp)])
                    with contextlib.suppress(trio.WouldBlock):
                        channel.receive_nowait()
                    await trio.sleep_until(t0 + (i + 1) * 0.02)
                scheduler_a = pair.rtp_a.scheduler
                assert scheduler_a is not None
                stats_b = pair.rtp_b.inbound[SSRC_A]
                assert stats_b.last_sender_report_at is not None
                # Lip-sync: B maps A's RTP timestamps to A's wallclock (RFC 3550 §6.4.1).
                for timestamp, at in list(sent_at.items())[::50]:
                    wallclock = stats_b.rtp_to_sender_seconds(timestamp)
                    assert wallclock is not None
                    assert wallclock == pytest.approx(scheduler_a.wallclock_offset + at, abs=0.002)
                # RTT: B's report blocks echo A's SRs (LSR/DLSR).
                rtt = sender.statistics.round_trip_time
                assert rtt is not None and rtt == pytest.approx(2 * delay, abs=0.005)
                assert pair.rtp_a.counters.rtcp_received >= 2
                assert pair.rtp_b.counters.rtcp_received >= 2


async def test_bye_ends_the_remote_ssrc(autojump_clock: trio.testing.MockClock) -> None:
    async with VirtualNetwork(seed=2, conditions=LinkConditions(delay=0.01)):
        with trio.fail_after(60):
            async with rtp_pair(addresses=VIRTUAL) as pair:
                channel = pair.rtp_b.open_receiver("0")
                sender = pair.rtp_a.open_sender("0", SSRC_A, 90000)
                await sender.send_packets([audio(SSRC_A, i) for i in range(5)])
                await receive(channel, 5)
                assert SSRC_A in pair.rtp_b.inbound
                pair.rtp_a.close(b"done")
                await pair.rtp_b.wait_until(lambda: pair.rtp_b.counters.byes_received == 1)
                assert SSRC_A not in pair.rtp_b.inbound
                assert pair.rtp_a.state == "closed"


# --- keys, failures, cancellation -------------------------------------------------------------


class _DtlsNeverConnects:
    state = "connecting"
    srtp_keys = None

    async def wait_connected(self) -> None:
        await trio.sleep_forever()


async def test_packets_before_the_keys_are_dropped_and_counted() -> None:
    # Received datagrams are held for the keys (test_datagrams_before_the_keys_are_held_...);
    # keys that never come drop them when the transport ends. What our senders hand over
    # before the keys is dropped at once.
    rtp = RtpTransport(_DtlsNeverConnects(), None, sections=[SECTION])
    async with trio.open_nursery() as nursery:
        await nursery.start(rtp.run)
        inbox = rtp.inbox_send_channel()
        inbox.send_nowait([b"\x80" * 40, b"\x80" * 50])
        sender = rtp.open_sender("0", SSRC_A, 90000)
        sender.send_packets_nowait([audio(SSRC_A, 1)])
        await trio.testing.wait_all_tasks_blocked()
        assert rtp.held_datagrams == 2
        assert rtp.counters.dropped_before_keys == 1
        assert sender.packets_dropped == 1
        assert rtp.state == "new"
        nursery.cancel_scope.cancel()
    assert rtp.stats()["state"] == "closed"
    assert rtp.counters.dropped_before_keys == 3
    assert rtp.held_datagrams == 0


class _DtlsConnectsLater:
    """A DTLS transport whose keys come when the test says so (as when our last flight was
    lost and the peer, connected already, sends media meanwhile)."""

    def __init__(self) -> None:
        self.state = "connecting"
        self.srtp_keys: SrtpKeys | None = None
        self._connected = trio.Event()

    def connect(self, keys: SrtpKeys) -> None:
        self.state, self.srtp_keys = "connected", keys
        self._connected.set()

    async def wait_connected(self) -> None:
        await self._connected.wait()


def _srtp_keys() -> tuple[SrtpKeys, SrtpKeys]:
    """(ours, the peer's): the two directions' keys, mirrored."""
    profile = SrtpProfile.SRTP_AES128_CM_HMAC_SHA1_80
    info = SRTP_PROFILES[profile]
    rng = random.Random(7)
    k1, k2 = rng.randbytes(info.key_length), rng.randbytes(info.key_length)
    s1, s2 = rng.randbytes(info.salt_length), rng.randbytes(info.salt_length)
    return SrtpKeys(profile, k1, s1, k2, s2), SrtpKeys(profile, k2, s2, k1, s1)


def _protected(peer: SrtpSession, first: int, count: int) -> list[bytes]:
    datagrams = []
    for seq in range(first, first + count):
        packet = audio(SSRC_A, seq, timestamp=seq * 960)
        packet.extensions[MID_ID] = b"0"
        datagrams.append(peer.protect_rtp(packet.serialize()))
    return datagrams


async def test_datagrams_before_the_keys_are_held_and_handled_when_they_come(
    autojump_clock: trio.testing.MockClock,
) -> None:
    dtls = _DtlsConnectsLater()
    ours, theirs = _srtp_keys()
    peer = SrtpSession(theirs)
    rtp = RtpTransport(dtls, None, sections=[SECTION], extension_map=EXTMAP)
    async with trio.open_nursery() as nursery:
        await nursery.start(rtp.run)
        channel = rtp.open_receiver("0")
        inbox = rtp.inbox_send_channel()
        # 3 s before the keys: the first burst is too old by then, the two later ones are kept.
        inbox.send_nowait(_protected(peer, 0, 5))
        await trio.sleep(2.5)
        inbox.send_nowait(_protected(peer, 5, 10))
        await trio.sleep(0.3)
        inbox.send_nowait(_protected(peer, 15, 10))
        await trio.sleep(0.2)
        assert rtp.held_datagrams == 20  # the first 5 were 2.5 s old: dropped
        assert rtp.counters.dropped_before_keys == 5
        dtls.connect(ours)
        got = await receive(channel, 20)
        assert [p.sequence_number for p in got] == list(range(5, 25))
        assert [p.payload for p in got] == [b"audio %d" % i for i in range(5, 25)]
        assert rtp.counters.held_before_keys == 20
        assert rtp.counters.packets_received == 20
        assert rtp.held_datagrams == 0 and rtp.state == "connected"
        # And after the keys, straight through.
        inbox.send_nowait(_protected(peer, 25, 3))
        got = await receive(channel, 3)
        assert [p.sequence_number for p in got] == [25, 26, 27]
        nursery.cancel_scope.cancel()


async def test_the_hold_before_the_keys_is_bounded() -> None:
    from trio_rtc.rtp.driver import EARLY_HOLD_BYTES, EARLY_HOLD_DATAGRAMS

    rtp = RtpTransport(_DtlsNeverConnects(), None, sections=[SECTION])
    async with trio.open_nursery() as nursery:
        await nursery.start(rtp.run)
        inbox = rtp.inbox_send_channel()
        # A peer that floods before the handshake ends costs at most the hold.
        for _ in range(EARLY_HOLD_DATAGRAMS // 100 + 2):
            inbox.send_nowait([b"\x80" * 60] * 100)
        await trio.testing.wait_all_tasks_blocked()
        assert rtp.held_datagrams == EARLY_HOLD_DATAGRAMS
        assert rtp.counters.dropped_before_keys == 200 + 100 * (EARLY_HOLD_DATAGRAMS // 100) - (
            EARLY_HOLD_DATAGRAMS
        )
        nursery.cancel_scope.cancel()
    big = RtpTransport(_DtlsNeverConnects(), None, sections=[SECTION])
    async with trio.open_nursery() as nursery:
        await nursery.start(big.run)
        big.inbox_send_channel().send_nowait([b"\x80" * 1500] * 400)
        await trio.testing.wait_all_tasks_blocked()
        assert big.held_datagrams == EARLY_HOLD_BYTES // 1500
        nursery.cancel_scope.cancel()


async def test_dtls_without_use_srtp_fails_visibly() -> None:
    with trio.fail_after(10):
        async with rtp_pair(dtls_options={"srtp_profiles": ()}) as pair:
            assert pair.dtls_a.state == "connected" and pair.dtls_a.srtp_keys is None
            assert pair.rtp_a.state == "failed"
            assert pair.rtp_a.error is not None and "use_srtp" in str(pair.rtp_a.error)
            channel = pair.rtp_a.open_receiver("0")
            with pytest.raises(trio.EndOfChannel):
                await channel.receive()


async def test_a_crash_fails_the_transport_visibly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(self: RtpDemuxer, packet: RtpPacket) -> None:
        raise RuntimeError("bug in the demultiplexer")

    with trio.fail_after(10):
        async with rtp_pair() as pair:
            channel = pair.rtp_b.open_receiver("0")
            errors: list[Any] = []
            pair.rtp_b.onerror = errors.append
            monkeypatch.setattr(RtpDemuxer, "route_rtp", boom)
            sender = pair.rtp_a.open_sender("0", SSRC_A, 90000)
            with caplog.at_level(logging.ERROR, logger="trio_rtc.rtp"):
                await sender.send_packets([audio(SSRC_A, 1)])
                await pair.rtp_b.wait_until(lambda: pair.rtp_b.state == "failed")
                with pytest.raises(trio.EndOfChannel):
                    await channel.receive()
            assert isinstance(pair.rtp_b.crashed, RuntimeError)
            assert len(errors) == 1 and isinstance(errors[0].error, RTCError)
            assert len([r for r in caplog.records if "crashed" in r.getMessage()]) == 1
            # The other side is untouched; a second run is refused.
            assert pair.rtp_a.state == "connected" and pair.rtp_a.crashed is None


async def test_cancellation_at_random_points_leaves_no_task() -> None:
    rng = random.Random(11)
    await trio.lowlevel.checkpoint()
    before = task_count()
    for i in range(12):
        # Half of the points fall in the set-up (ICE, DTLS, keys), half in the traffic.
        with trio.move_on_after(rng.uniform(0.0, 0.3 if i % 2 else 0.04)):
            async with rtp_pair() as pair:
                channel = pair.rtp_b.open_receiver("0")
                sender = pair.rtp_a.open_sender("0", SSRC_A, 90000)
                for i in range(1000):
                    sender.send_packets_nowait([audio(SSRC_A, i)])
                    if i % 50 == 0:
                        pair.rtp_b.request_keyframe("0")
                    await trio.sleep(0.001)
                    with contextlib.suppress(trio.WouldBlock):
                        channel.receive_nowait()
        await trio.lowlevel.checkpoint()
        assert task_count() == before
