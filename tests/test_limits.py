"""Every limit of docs/limits.md at its edge: hitting it gives the error that names it or a
counted drop, never unbounded growth. One test per limit, through the public surface where it
is cheap and through the sans-IO core otherwise. Limits already tested at their edge elsewhere
are listed in docs/limits.md with the test that covers them."""

from __future__ import annotations

import random
import struct
from collections import deque

import pytest
import trio
import trio.testing
from pc_helpers import certificate, connect
from test_datachannel_stack import remote_channels, sctp_pair
from test_jsep_core import CANDIDATE, LOCAL_A, sample, session
from test_sctp_dcep import Channels

from trio_rtc import RTCPeerConnection
from trio_rtc.datachannel import MAX_SEND_QUEUE, RTCDataChannel
from trio_rtc.dtls.handshake import (
    MAX_FRAGMENT_RANGES,
    MAX_HANDSHAKE_MESSAGE_LENGTH,
    HandshakeFragment,
    Reassembler,
    handshake_fragments_untrusted,
)
from trio_rtc.dtls.records import MAX_FRAGMENT_LENGTH, DtlsError, records_untrusted
from trio_rtc.events import HandlerQueue
from trio_rtc.exceptions import OperationError, SdpSyntaxError
from trio_rtc.ice.agent import MAX_PAIRS, MAX_REMOTE_CANDIDATES, IceAgent
from trio_rtc.ice.candidate import (
    MAX_CANDIDATE_LENGTH,
    Candidate,
    CandidateError,
    pair_priority,
)
from trio_rtc.ice.transport import IceTransportOptions
from trio_rtc.jsep.session import MAX_EARLY_CANDIDATES, MAX_RECORDED_CANDIDATES
from trio_rtc.rtp.keyframes import MAX_SSRCS, KeyframeRequester
from trio_rtc.rtp.nack import MAX_GAP, NackGenerator
from trio_rtc.rtp.pacer import MAX_QUEUE_PACKETS, Pacer, PacketKind
from trio_rtc.rtp.packet import MAX_CSRCS, RtpPacket
from trio_rtc.sctp.chunks import FLAG_BEGIN, FLAG_END
from trio_rtc.sctp.dcep import (
    MAX_OPEN_CHANNELS,
    ChannelClosed,
    ChannelOpened,
    DataChannelParameters,
)
from trio_rtc.sctp.reassembly import Receiver, ReceiveResult
from trio_rtc.sdp.parse import (
    MAX_LINE_LENGTH,
    MAX_MEDIA_SECTIONS,
    MAX_SDP_LENGTH,
    SdpParseError,
    parse_sdp_untrusted,
)
from trio_rtc.stun.attributes import MAX_ATTRIBUTES, MAX_PASSWORD_ALGORITHMS, Attr, StunError
from trio_rtc.stun.message import parse_message_untrusted
from trio_rtc.testing import LinkConditions, VirtualNetwork

ADDRESSES = ("198.51.100.1", "198.51.100.2")
SDP_HEAD = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"


def remote_host(index: int) -> Candidate:
    return Candidate(f"f{index}", 1, "udp", 1000 + index, "10.0.9.1", 1000 + index, "host")


# --- candidates and pairs (ICE) ------------------------------------------------------------------


def test_remote_candidates_per_generation_are_capped_and_counted() -> None:
    agent = IceAgent(controlling=True, rng=random.Random(1))
    agent.add_host_address(("10.0.0.1", 5000), now=0.0)
    for index in range(MAX_REMOTE_CANDIDATES + 25):
        agent.add_remote_candidate(remote_host(index), 0.0)
    assert len(agent.remote_candidates) == MAX_REMOTE_CANDIDATES
    assert agent.stats.remote_candidates_dropped == 25


def test_check_list_is_capped_at_max_pairs_keeping_the_best() -> None:
    agent = IceAgent(controlling=True, rng=random.Random(1))
    # Three local bases x 100 remote candidates would be 300 pairs.
    for port in (5000, 5001, 5002):
        agent.add_host_address(("10.0.0.1", port), now=0.0)
    for index in range(MAX_REMOTE_CANDIDATES):
        agent.add_remote_candidate(remote_host(index), 0.0)
    assert len(agent.pairs) == MAX_PAIRS
    # RFC 8445 §6.1.2.5: the pairs kept are the highest-priority ones of all 300.
    every = sorted(
        (
            pair_priority(local.priority, remote.priority)
            for local in agent.local_candidates
            for remote in agent.remote_candidates
        ),
        reverse=True,
    )
    assert len(every) == 3 * MAX_REMOTE_CANDIDATES
    assert sorted((p.priority for p in agent.pairs), reverse=True) == every[:MAX_PAIRS]
    # Every pair not formed or pruned for a better one is counted.
    assert agent.stats.pairs_dropped == 3 * MAX_REMOTE_CANDIDATES - MAX_PAIRS


def test_candidate_line_length_is_refused_by_name() -> None:
    text = "candidate:1 1 udp 1 10.0.0.1 9 typ host" + " x" * MAX_CANDIDATE_LENGTH
    with pytest.raises(CandidateError, match=f"longer than {MAX_CANDIDATE_LENGTH}"):
        Candidate.from_sdp(text)


def test_early_candidates_wait_in_a_bounded_list() -> None:
    core = session()
    core.set_remote_description("offer", sample("chromium_offer_audio_video_data.sdp"))
    index = core.locate_remote_candidate("1", None, None)
    for port in range(MAX_EARLY_CANDIDATES + 50):
        core.add_remote_candidate(CANDIDATE.replace("9000", str(10_000 + port)), index)
    # The generation has not started (no answer yet): the candidates wait for it, up to the cap.
    assert len(core._early_candidates) == MAX_EARLY_CANDIDATES
    assert core.early_candidates_dropped == 50


def test_trickled_candidates_recorded_in_the_remote_description_are_bounded() -> None:
    core = session()
    core.set_remote_description("offer", sample("chromium_offer_audio_video_data.sdp"))
    core.set_local_description("answer", core.create_answer(LOCAL_A))
    index = core.locate_remote_candidate("1", None, None)
    assert index is not None
    for port in range(5000):
        core.add_remote_candidate(CANDIDATE.replace("9000", str(10_000 + port)), index)
    remote = core.remote_description
    assert remote is not None
    assert len(remote.model.media[index].candidates) == MAX_RECORDED_CANDIDATES
    assert core.candidates_not_recorded == 5000 - MAX_RECORDED_CANDIDATES


# --- STUN ----------------------------------------------------------------------------------------


def test_stun_attribute_count_is_refused_by_name() -> None:
    count = MAX_ATTRIBUTES + 1
    header = struct.pack("!HHI12s", 0x0001, 4 * count, 0x2112A442, b"\x01" * 12)
    with pytest.raises(StunError, match=f"more than {MAX_ATTRIBUTES} attributes"):
        parse_message_untrusted(header + struct.pack("!HH", 0x8FFF, 0) * count)


def test_stun_password_algorithms_are_capped() -> None:
    count = MAX_PASSWORD_ALGORITHMS + 1
    body = (
        struct.pack("!HH", Attr.PASSWORD_ALGORITHMS, 4 * count) + struct.pack("!HH", 1, 0) * count
    )
    header = struct.pack("!HHI12s", 0x0001, len(body), 0x2112A442, b"\x01" * 12)
    with pytest.raises(StunError, match="too many algorithms"):
        parse_message_untrusted(header + body)


# --- DTLS ----------------------------------------------------------------------------------------


def test_dtls_record_length_is_refused() -> None:
    length = MAX_FRAGMENT_LENGTH + 1
    header = struct.pack("!BHHHIH", 23, 0xFEFD, 1, 0, 1, length)
    with pytest.raises(DtlsError, match="exceeds the limit"):
        records_untrusted(header + bytes(length))


def test_dtls_handshake_message_length_is_refused() -> None:
    fragment = HandshakeFragment(1, MAX_HANDSHAKE_MESSAGE_LENGTH + 1, 0, 0, b"x")
    with pytest.raises(DtlsError, match="exceeds the limit"):
        handshake_fragments_untrusted(fragment.encode())


def test_dtls_handshake_fragment_ranges_are_capped() -> None:
    reassembler = Reassembler()
    length = 4 * (MAX_FRAGMENT_RANGES + 1)
    with pytest.raises(DtlsError, match="too many pieces"):
        # Disjoint one-byte fragments, each leaving a gap: a message that never completes.
        for index in range(MAX_FRAGMENT_RANGES + 1):
            fragment = HandshakeFragment(1, length, 0, 4 * index, b"x")
            reassembler.add_untrusted(fragment, 0)
    # The partial message was forgotten: a retransmission starts it again.
    assert reassembler.pop_message() is None
    assert not reassembler._partial


# --- SDP -----------------------------------------------------------------------------------------


def test_sdp_size_is_refused_by_name() -> None:
    text = SDP_HEAD + ("a=x-pad:" + "y" * 1000 + "\r\n") * (MAX_SDP_LENGTH // 1000)
    with pytest.raises(SdpParseError, match=f"at most {MAX_SDP_LENGTH} accepted"):
        parse_sdp_untrusted(text)


def test_sdp_line_length_is_refused_by_name() -> None:
    with pytest.raises(SdpParseError, match=f"at most {MAX_LINE_LENGTH}"):
        parse_sdp_untrusted(SDP_HEAD + "a=x-long:" + "z" * MAX_LINE_LENGTH + "\r\n")


def test_sdp_media_sections_are_refused_by_name() -> None:
    section = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    with pytest.raises(SdpParseError, match=f"more than {MAX_MEDIA_SECTIONS} m-sections"):
        parse_sdp_untrusted(SDP_HEAD + section * (MAX_MEDIA_SECTIONS + 1))


def test_sdp_numbers_longer_than_20_digits_are_refused() -> None:
    # 20 digits fit (a 64-bit session id); 21 are refused before int() sees them.
    with pytest.raises(SdpParseError, match="expected a bandwidth"):
        parse_sdp_untrusted(
            SDP_HEAD + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nb=AS:" + "1" * 21 + "\r\n"
        )
    head = SDP_HEAD.replace("o=- 1 1", "o=- " + "1" * 20 + " 1")
    assert parse_sdp_untrusted(head).origin.session_id == int("1" * 20)


async def test_oversized_remote_description_is_a_syntax_error_on_the_pc() -> None:
    options = IceTransportOptions(interfaces=["127.0.0.1"], mdns=False)
    async with RTCPeerConnection({"certificates": [certificate(0)]}, ice_options=options) as pc:
        text = SDP_HEAD + ("a=x-pad:" + "y" * 1000 + "\r\n") * (MAX_SDP_LENGTH // 1000)
        with pytest.raises(SdpSyntaxError, match=str(MAX_SDP_LENGTH)):
            await pc.setRemoteDescription({"type": "offer", "sdp": text})
        assert pc.signalingState == "stable"


# --- SCTP: channels, buffered bytes, message size, reassembly memory ------------------------------


async def test_no_free_stream_id_raises_operation_error() -> None:
    async with VirtualNetwork(seed=1), sctp_pair(addresses=ADDRESSES, streams=8) as stack:
        await stack.connected()
        transport = stack.sctp_a
        assert transport.maxChannels == 8
        channels = [RTCDataChannel(f"c{i}") for i in range(4)]
        for channel in channels:
            transport.add_channel(channel)
        assert sorted(channel.id for channel in channels) == [0, 2, 4, 6]  # type: ignore[type-var]
        with pytest.raises(OperationError, match="no free stream id"):
            transport.add_channel(RTCDataChannel("one too many"))
        with pytest.raises(OperationError, match="not below maxChannels"):
            transport.add_channel(RTCDataChannel("beyond", negotiated=True, id=8))


def test_channels_a_peer_opens_past_max_open_channels_are_refused_and_counted() -> None:
    """The peer keeps opening channels (its own stack has no such bound): every OPEN past
    MAX_OPEN_CHANNELS open channels — ours count too — is refused by resetting its stream, so
    the peer sees that channel close; nothing is kept for it and the refusal is counted."""
    channels = Channels()
    pair = channels.pair
    ours = channels.managers[id(pair.a)]
    theirs = channels.managers[id(pair.b)]
    theirs.max_open_channels = 2 * MAX_OPEN_CHANNELS
    own = ours.allocate_stream_id()
    ours.open_channel(DataChannelParameters(own, label="ours"), now=pair.now)
    opened_by_peer: list[int] = []
    for index in range(MAX_OPEN_CHANNELS + 1):
        stream_id = theirs.allocate_stream_id()
        theirs.open_channel(DataChannelParameters(stream_id, label=f"c{index}"), now=pair.now)
        opened_by_peer.append(stream_id)
    pair.run(lambda: ours.channels_refused == 2)
    refused = opened_by_peer[-2:]
    assert len(ours.channels) == MAX_OPEN_CHANNELS
    assert len(channels.of(pair.a, ChannelOpened)) == MAX_OPEN_CHANNELS - 1
    assert not any(stream_id in ours.channels for stream_id in refused)
    # The peer sees the two channels past the limit close, and only those.
    pair.run(lambda: len(channels.of(pair.b, ChannelClosed)) == 2)
    closed_at_peer = channels.of(pair.b, ChannelClosed)
    assert {e.stream_id for e in closed_at_peer if isinstance(e, ChannelClosed)} == set(refused)
    # Nothing is left of the refusals once the peer answered our resets (an answer "in
    # progress" is asked again a retransmission timeout later).
    pair.run(lambda: not ours._refusing)
    # A message the peer sends on a refused stream (it may send before any answer) is dropped.
    dropped = ours.dropped_messages
    assert dropped == 2  # the two OPENs
    pair.b.send_message(refused[0], 51, b"anyone?", now=pair.now)
    pair.run(lambda: ours.dropped_messages == dropped + 1)
    # Room again once a channel closes: the peer's next OPEN is taken.
    ours.close_channel(own)
    pair.run(lambda: len(channels.of(pair.a, ChannelClosed)) == 1)
    stream_id = theirs.allocate_stream_id()
    theirs.open_channel(DataChannelParameters(stream_id, label="again"), now=pair.now)
    pair.run(lambda: stream_id in ours.channels)
    assert ours.channels_refused == 2


async def test_create_data_channel_past_max_open_channels_raises_operation_error() -> None:
    options = IceTransportOptions(interfaces=["127.0.0.1"], mdns=False)
    async with RTCPeerConnection({"certificates": [certificate(0)]}, ice_options=options) as pc:
        channels = [pc.createDataChannel(f"c{i}") for i in range(MAX_OPEN_CHANNELS)]
        with pytest.raises(OperationError, match=f"MAX_OPEN_CHANNELS = {MAX_OPEN_CHANNELS}"):
            pc.createDataChannel("one too many")
        channels[0].close()  # never negotiated: closed at once, and its place is free
        pc.createDataChannel("in its place")


async def test_open_channel_limit_end_to_end() -> None:
    """Both halves of the limit on two transports (with the limit lowered to 2): the peer's
    third OPEN closes on the peer and is counted in stats; our own third channel is refused by
    name."""
    async with VirtualNetwork(seed=1), sctp_pair(addresses=ADDRESSES) as stack:
        await stack.connected()
        stack.sctp_b._dcep.max_open_channels = 2
        at_b = remote_channels(stack.sctp_b)
        channels = [RTCDataChannel(f"c{i}") for i in range(3)]
        for channel in channels:
            stack.sctp_a.add_channel(channel)
        events: list[str] = []
        channels[2].addEventListener("error", lambda event: events.append("error"))
        channels[2].addEventListener("close", lambda event: events.append("close"))
        with trio.fail_after(10):
            await channels[2].wait_for(readyState="closed")
        assert events == ["close"]  # closed by the peer, not failed
        assert [c.label for c in at_b] == ["c0", "c1"]
        assert [c.readyState for c in channels[:2]] == ["open", "open"]
        stats = stack.sctp_b.stats()
        assert stack.sctp_b._dcep.channels_refused == 1
        assert stats["dcep_messages_dropped"] == 1
        with pytest.raises(OperationError, match="MAX_OPEN_CHANNELS = 2"):
            stack.sctp_b.add_channel(RTCDataChannel("ours"))


async def test_send_queue_over_max_send_queue_raises_operation_error() -> None:
    async with VirtualNetwork(seed=1), sctp_pair(addresses=ADDRESSES) as stack:
        await stack.connected()
        channel = RTCDataChannel("bulk")
        stack.sctp_a.add_channel(channel)
        await channel.wait_open()
        chunk = bytes(64 * 1024)
        # send() never waits: the whole queue builds before the transport task runs.
        for _ in range(MAX_SEND_QUEUE // len(chunk)):
            channel.send(chunk)
        assert channel.bufferedAmount == MAX_SEND_QUEUE
        with pytest.raises(OperationError, match="send queue is full"):
            channel.send(b"x")
        assert channel.bufferedAmount == MAX_SEND_QUEUE
        assert channel.readyState == "open"


async def test_message_over_max_message_size_raises_type_error() -> None:
    async with VirtualNetwork(seed=1), sctp_pair(addresses=ADDRESSES) as stack:
        await stack.connected()
        channel = RTCDataChannel("big")
        stack.sctp_a.add_channel(channel)
        await channel.wait_open()
        limit = stack.sctp_a.maxMessageSize
        channel.send(bytes(limit))
        with pytest.raises(TypeError, match="exceeds maxMessageSize"):
            channel.send(bytes(limit + 1))


def receiver(*, window: int = 64 * 1024, max_message_size: int = 16 * 1024) -> Receiver:
    return Receiver(
        initial_tsn=1, receive_window=window, max_message_size=max_message_size, events=deque()
    )


def test_incoming_message_over_max_message_size_is_refused() -> None:
    core = receiver(max_message_size=1000)
    assert core.receive_data(FLAG_BEGIN, 1, 0, 0, 51, bytes(600)) == ReceiveResult.ACCEPTED
    # The association fails with "message larger than max-message-size" on this result.
    assert core.receive_data(FLAG_END, 2, 0, 0, 51, bytes(600)) == ReceiveResult.TOO_LARGE
    assert core.buffered == 0


def test_reassembly_memory_is_bounded_by_the_receive_window() -> None:
    window = 64 * 1024
    core = receiver(window=window)
    results = []
    # TSN 1 never arrives: every fragment after it must be held, up to the window.
    for tsn in range(2, 200):
        results.append(core.receive_data(FLAG_BEGIN, tsn, 0, 0, 51, bytes(1000)))
    assert ReceiveResult.DROPPED in results
    assert core.buffered <= window
    # The chunk that fills the hole is still taken (it unblocks delivery) ...
    assert core.receive_data(FLAG_BEGIN | FLAG_END, 1, 1, 0, 51, bytes(100)) == 0
    # ... but nothing beyond receive_window + max_message_size.
    assert core.buffered <= window + core.max_message_size


def test_reassembly_refuses_tsns_too_far_ahead() -> None:
    core = receiver(window=1 << 24)
    assert core.receive_data(FLAG_BEGIN | FLAG_END, 2 + 0xFFFF, 0, 0, 51, b"x") == 2
    assert core.buffered == 0


def test_reassembly_holds_a_bounded_number_of_tsns_out_of_order() -> None:
    core = receiver()  # 64 KiB window: at most max(1024, window // 64) TSNs above a gap
    held = [core.receive_data(FLAG_BEGIN, tsn, 0, 0, 51, b"x") for tsn in range(2, 2 + 2000)]
    # One-byte chunks fit the window many times over; the count of TSNs held is what stops them
    # (each costs far more than its byte in bookkeeping).
    assert held.count(ReceiveResult.ACCEPTED) == 1024
    assert held.count(ReceiveResult.DROPPED) == 2000 - 1024
    assert len(core.received_above) == 1024


# --- per-pc tasks --------------------------------------------------------------------------------


def count_tasks() -> int:
    root = trio.lowlevel.current_root_task()
    assert root is not None
    count = 0
    stack = [root]
    while stack:
        task = stack.pop()
        count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count


async def test_per_pc_tasks_do_not_grow_with_channels(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def make(index: int) -> RTCPeerConnection:
        return RTCPeerConnection(
            {"certificates": [certificate(index)]},
            ice_options=IceTransportOptions(interfaces=[ADDRESSES[index]], mdns=False),
        )

    conditions = LinkConditions(delay=0.01)
    async with VirtualNetwork(seed=2, conditions=conditions), make(0) as a, make(1) as b:
        async with trio.open_nursery() as nursery:
            remote: list[RTCDataChannel] = []
            b.ondatachannel = lambda event: remote.append(event.channel)
            first = a.createDataChannel("first")
            with trio.fail_after(30):
                await connect(a, b, nursery)
                await first.wait_open()
                await b.wait_until(lambda: len(remote) == 1)
            await trio.testing.wait_all_tasks_blocked()
            before = count_tasks()
            channels = [a.createDataChannel(f"c{i}") for i in range(50)]
            with trio.fail_after(30):
                for channel in channels:
                    await channel.wait_open()
                await b.wait_until(lambda: len(remote) == 1 + len(channels))
            await trio.testing.wait_all_tasks_blocked()
            assert count_tasks() == before
            nursery.cancel_scope.cancel()


async def test_async_handlers_beyond_the_backlog_are_dropped_and_counted() -> None:
    queue = HandlerQueue(max_running=2, max_pending=3)

    async def handler() -> None:
        await trio.sleep_forever()

    accepted = [queue.submit(handler(), "message") for _ in range(5)]
    assert accepted == [True, True, True, False, False]
    assert queue.dropped == 2 and queue.pending == 3
    async with trio.open_nursery() as nursery:
        await nursery.start(queue.run)
        await trio.testing.wait_all_tasks_blocked()
        # Two run (max_running), one waits; nothing more was started.
        assert queue.running == 2 and queue.pending == 1
        nursery.cancel_scope.cancel()


# --- RTP -----------------------------------------------------------------------------------------


def test_nack_gap_beyond_max_gap_asks_for_a_keyframe_instead() -> None:
    nack = NackGenerator()
    nack.receive_packet(0, 0.0)
    nack.receive_packet((MAX_GAP + 2) & 0xFFFF, 0.0)
    assert len(nack) == 0
    assert nack.counters.overflows == 1


def test_pacer_queue_is_capped_and_drops_are_counted() -> None:
    pacer: Pacer[int] = Pacer(1_000_000)
    count = MAX_QUEUE_PACKETS + 10
    pacer.enqueue_many(range(count), [1000] * count, PacketKind.VIDEO, 0.0)
    assert pacer.queued_packets == MAX_QUEUE_PACKETS
    assert pacer.counters.packets_dropped == 10


def test_rtp_packet_csrc_count_is_refused_by_name() -> None:
    packet = RtpPacket(96, 1, 0, 1234, csrcs=tuple(range(MAX_CSRCS + 1)))
    with pytest.raises(ValueError, match=f"at most {MAX_CSRCS}"):
        packet.serialize()


def test_keyframe_requests_remember_a_bounded_number_of_ssrcs() -> None:
    requester = KeyframeRequester()
    for ssrc in range(MAX_SSRCS * 3):
        requester.request_keyframe(ssrc, 0.0)
    assert len(requester._ssrcs) == MAX_SSRCS


def test_feedback_waiting_for_a_compound_is_capped_and_counted() -> None:
    from trio_rtc.rtp.reports import RtcpScheduler
    from trio_rtc.rtp.rtcp import PictureLossIndication

    scheduler = RtcpScheduler("cname", random.Random(1), receiver_ssrc=1)
    scheduler.start(0.0)
    # Without reduced-size RTCP and immediate feedback, feedback waits for the next report.
    for n in range(200):
        scheduler.send_feedback([PictureLossIndication(1, n)], 0.001)
    # (RFC 4585 lets one early compound go at once; the rest wait, the newest 64 of them.)
    assert scheduler.feedback_dropped >= 200 - 64 - 1


async def test_remote_candidates_kept_by_the_ice_transport_are_bounded() -> None:
    from trio_rtc.ice.transport import RTCIceTransport

    async with RTCIceTransport(options=IceTransportOptions(interfaces=["127.0.0.1"])) as ice:
        for index in range(3 * MAX_REMOTE_CANDIDATES):
            ice.addRemoteCandidate(
                {"candidate": f"candidate:{index} 1 udp 1 10.0.9.{index % 250} {10000 + index} "
                 "typ host", "sdpMid": "0"}
            )  # fmt: skip
        assert len(ice.getRemoteCandidates()) <= 2 * MAX_REMOTE_CANDIDATES
        assert ice.agent.stats.remote_candidates_dropped > 0


async def test_mdns_lookups_in_flight_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer trickling endless `.local` names gets at most MAX_REMOTE_CANDIDATES lookups (a
    task each) at once; the rest are dropped and counted. (Resolution is held open here, so
    nothing goes on the network.)"""
    from trio_rtc.ice import transport as transport_module
    from trio_rtc.ice.transport import RTCIceTransport

    async def never(self: object, name: str) -> None:
        await trio.sleep_forever()

    monkeypatch.setattr(transport_module.MdnsResolver, "resolve", never)
    options = IceTransportOptions(interfaces=["127.0.0.1"], mdns=True)
    async with RTCIceTransport(options=options) as ice:
        dropped = ice.agent.stats.remote_candidates_dropped
        for index in range(MAX_REMOTE_CANDIDATES + 30):
            ice.addRemoteCandidate(
                {"candidate": f"candidate:{index} 1 udp 1 {index:08x}-0000-4000-8000-"
                 f"000000000000.local {10000 + index} typ host", "sdpMid": "0"}
            )  # fmt: skip
        await trio.testing.wait_all_tasks_blocked()
        assert ice._resolving == MAX_REMOTE_CANDIDATES
        assert ice.agent.stats.remote_candidates_dropped == dropped + 30
