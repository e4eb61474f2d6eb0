"""Association behaviour core to core: INIT collision, partial reliability, stream reset and
reuse, shutdown and abort, zero checksum negotiation, unordered delivery."""

from __future__ import annotations

import random

import pytest
from test_sctp_harness import Pair

from trio_rtc.exceptions import InvalidStateError
from trio_rtc.sctp.association import SctpAssociation
from trio_rtc.sctp.chunks import ChunkType, decode_chunks_untrusted, verify_packet_untrusted
from trio_rtc.sctp.events import (
    AssociationAborted,
    AssociationClosed,
    AssociationEstablished,
    BufferedAmountChanged,
    MessageReceived,
    StreamsReset,
)
from trio_rtc.sctp.states import AssociationState


def messages(pair: Pair, core: SctpAssociation, stream_id: int | None = None) -> list[bytes]:
    return [
        e.data
        for e in pair.of(core, MessageReceived)
        if isinstance(e, MessageReceived) and (stream_id is None or e.stream_id == stream_id)
    ]


@pytest.mark.parametrize("loss", [0.0, 0.3])
def test_init_collision_both_sides_connect(loss: float) -> None:
    pair = Pair(seed=5, loss=loss, duplicate=0.1 if loss else 0.0, reorder=0.3 if loss else 0.0)
    pair.connect(both=True)
    assert pair.a.state is pair.b.state is AssociationState.ESTABLISHED
    assert pair.a.peer_tag == pair.b.local_tag and pair.b.peer_tag == pair.a.local_tag
    pair.a.send_message(0, 51, b"from a", now=pair.now)
    pair.b.send_message(1, 51, b"from b", now=pair.now)
    pair.run(lambda: bool(messages(pair, pair.a)) and bool(messages(pair, pair.b)))
    assert messages(pair, pair.b) == [b"from a"] and messages(pair, pair.a) == [b"from b"]
    for core in (pair.a, pair.b):
        assert len(pair.of(core, AssociationEstablished)) == 1


def test_zero_checksum_negotiated_and_used() -> None:
    pair = Pair()
    pair.connect()
    (event,) = pair.of(pair.a, AssociationEstablished)
    assert isinstance(event, AssociationEstablished) and event.zero_checksum
    pair.a.send_message(0, 53, b"x" * 10, now=pair.now)
    (packet,) = pair.a.datagrams_to_send(pair.now)
    assert packet[8:12] == b"\x00\x00\x00\x00"
    pair.b.receive_datagram(packet, pair.now)
    assert pair.b.next_event() == MessageReceived(0, 53, b"x" * 10)


def test_zero_checksum_off_when_one_side_declines() -> None:
    pair = Pair(server={"zero_checksum": False})
    pair.connect()
    pair.a.send_message(0, 53, b"x", now=pair.now)
    (packet,) = pair.a.datagrams_to_send(pair.now)
    assert packet[8:12] != b"\x00\x00\x00\x00"
    verify_packet_untrusted(packet, accept_zero_checksum=False)
    # A receiver that did not announce RFC 9653 drops zero-checksum packets.
    pair.b.receive_datagram(packet[:8] + b"\x00" * 4 + packet[12:], pair.now)
    assert pair.b.stats.malformed_packets == 1


def test_unordered_and_many_streams() -> None:
    pair = Pair(seed=9, loss=0.1, reorder=0.5)
    pair.connect()
    expected: dict[int, list[bytes]] = {}
    for index in range(300):
        stream = index % 7
        payload = f"{index}".encode() * (1 + index % 50)
        expected.setdefault(stream, []).append(payload)
        pair.a.send_message(stream, 53, payload, ordered=stream != 3, now=pair.now)
    pair.run(lambda: len(messages(pair, pair.b)) == 300)
    for stream, payloads in expected.items():
        got = messages(pair, pair.b, stream)
        if stream == 3:
            assert sorted(got) == sorted(payloads)
        else:
            assert got == payloads


def test_buffered_amount_events_reach_zero() -> None:
    pair = Pair()
    pair.connect()
    pair.a.send_message(4, 53, b"z" * 50_000, now=pair.now)
    assert pair.a.buffered_amount(4) == 50_000
    pair.run(lambda: bool(messages(pair, pair.b)))
    changes = [
        e for e in pair.of(pair.a, BufferedAmountChanged) if isinstance(e, BufferedAmountChanged)
    ]
    assert changes and changes[-1].buffered_amount == 0 and pair.a.buffered_amount(4) == 0


# -- partial reliability ---------------------------------------------------------------------


def test_lifetime_expired_messages_are_skipped_with_forward_tsn() -> None:
    pair = Pair()
    pair.connect()
    blackhole = True
    pair.filter = lambda source, packet: not (blackhole and source is pair.a)
    for index in range(5):
        pair.a.send_message(2, 53, b"stale %d" % index, max_packet_lifetime=0.5, now=pair.now)
    start = pair.now
    pair.run(lambda: pair.now > start + 1.0)
    blackhole = False
    pair.a.send_message(2, 53, b"fresh", now=pair.now)
    pair.run(lambda: bool(messages(pair, pair.b)))
    pair.run(lambda: not pair.a.has_pending_data(), max_time=pair.now + 30)
    assert messages(pair, pair.b) == [b"fresh"]
    assert pair.a.stats.abandoned_messages == 5


@pytest.mark.parametrize("ordered", [True, False])
def test_max_retransmits_drops_only_what_it_should(ordered: bool) -> None:
    pair = Pair(seed=11, loss=0.25, reorder=0.2, duplicate=0.05)
    pair.connect()
    sent: list[bytes] = []
    reliable: list[bytes] = []
    rng = random.Random(3)
    for index in range(400):
        payload = b"%05d" % index + rng.randbytes(rng.choice((10, 900, 3000)))
        sent.append(payload)
        pair.a.send_message(1, 53, payload, ordered=ordered, max_retransmits=0, now=pair.now)
        if index % 10 == 0:
            reliable.append(payload)
            pair.a.send_message(2, 53, payload, now=pair.now)
    pair.run(lambda: not pair.a.has_pending_data(), max_time=pair.now + 600)
    got = messages(pair, pair.b, 1)
    assert messages(pair, pair.b, 2) == reliable
    assert set(got) <= set(sent) and len(got) == len(set(got))
    if ordered:
        assert got == [p for p in sent if p in set(got)]
    missing = len(sent) - len(got)
    assert 0 < missing <= pair.a.stats.abandoned_messages


def test_no_loss_means_no_partial_reliability_drops() -> None:
    pair = Pair(seed=1)
    pair.connect()
    payloads = [bytes([i % 256]) * (1 + i * 37 % 5000) for i in range(200)]
    for payload in payloads:
        pair.a.send_message(
            1, 53, payload, max_retransmits=0, max_packet_lifetime=5.0, now=pair.now
        )
    pair.run(lambda: len(messages(pair, pair.b)) == len(payloads))
    assert messages(pair, pair.b) == payloads and pair.a.stats.abandoned_messages == 0


# -- stream reset ----------------------------------------------------------------------------


def test_stream_reset_and_reuse() -> None:
    pair = Pair()
    pair.connect()
    for index in range(3):
        pair.a.send_message(6, 51, b"before %d" % index, now=pair.now)
    pair.run(lambda: len(messages(pair, pair.b)) == 3)
    pair.a.reset_streams([6])
    pair.run(lambda: bool(pair.of(pair.a, StreamsReset)) and bool(pair.of(pair.b, StreamsReset)))
    assert pair.of(pair.b, StreamsReset) == [StreamsReset((6,), incoming=True)]
    assert pair.of(pair.a, StreamsReset) == [StreamsReset((6,), incoming=False)]
    # The id is reused: sequence numbers start again at 0 on both sides.
    pair.a.send_message(6, 51, b"after", now=pair.now)
    pair.run(lambda: len(messages(pair, pair.b)) == 4)
    assert messages(pair, pair.b)[-1] == b"after"


def test_stream_reset_waits_for_data_in_flight() -> None:
    pair = Pair(seed=4, loss=0.2, reorder=0.3, duplicate=0.05)
    pair.connect()
    order: list[object] = []

    def on_event(core: SctpAssociation, event: object) -> None:
        if core is pair.b and isinstance(event, MessageReceived | StreamsReset):
            order.append(event.data if isinstance(event, MessageReceived) else "reset")

    pair.on_event = on_event
    old = [b"old %d " % i * 300 for i in range(60)]
    for payload in old:
        pair.a.send_message(8, 53, payload, now=pair.now)
    pair.a.reset_streams([8])
    pair.pump()
    new = [b"new %d" % i for i in range(20)]
    for payload in new:
        pair.a.send_message(8, 53, payload, now=pair.now)
    pair.run(lambda: len(order) == len(old) + len(new) + 1, max_time=pair.now + 600)
    assert order == [*old, "reset", *new]


def test_reset_both_directions_like_a_data_channel_close() -> None:
    pair = Pair()
    pair.connect()

    closing: dict[int, set[int]] = {id(pair.a): {10}, id(pair.b): set()}

    def on_event(core: SctpAssociation, event: object) -> None:
        # RFC 8831 §6.7: on an incoming reset, reset the outgoing side too (once).
        if isinstance(event, StreamsReset) and event.incoming:
            todo = [s for s in event.stream_ids if s not in closing[id(core)]]
            closing[id(core)].update(todo)
            if todo:
                core.reset_streams(todo)

    pair.on_event = on_event
    pair.a.send_message(10, 51, b"hi", now=pair.now)
    pair.b.send_message(10, 51, b"yo", now=pair.now)
    pair.run(lambda: bool(messages(pair, pair.a)) and bool(messages(pair, pair.b)))
    pair.a.reset_streams([10])
    pair.run(
        lambda: len(pair.of(pair.a, StreamsReset)) == 2 and len(pair.of(pair.b, StreamsReset)) == 2
    )
    pair.run(lambda: pair.now > 60)
    assert len(pair.of(pair.a, StreamsReset)) == len(pair.of(pair.b, StreamsReset)) == 2
    pair.b.send_message(10, 51, b"again", now=pair.now)
    pair.run(lambda: len(messages(pair, pair.a)) == 2)


# -- shutdown and abort ----------------------------------------------------------------------


def test_graceful_shutdown_delivers_queued_data_first() -> None:
    pair = Pair(seed=2, loss=0.1)
    pair.connect()
    payload = bytes(range(256)) * 1000
    pair.a.send_message(0, 53, payload, now=pair.now)
    pair.a.shutdown()
    pair.run(
        lambda: (
            bool(pair.of(pair.a, AssociationClosed)) and bool(pair.of(pair.b, AssociationClosed))
        )
    )
    assert messages(pair, pair.b) == [payload]
    assert pair.a.state is pair.b.state is AssociationState.CLOSED
    with pytest.raises(InvalidStateError):
        pair.a.send_message(0, 53, b"late", now=pair.now)


def test_abort_reaches_peer() -> None:
    pair = Pair()
    pair.connect()
    pair.a.abort("bye")
    pair.run(lambda: bool(pair.of(pair.b, AssociationAborted)))
    (event,) = pair.of(pair.b, AssociationAborted)
    assert isinstance(event, AssociationAborted) and event.by_peer and "bye" in event.reason
    assert pair.a.get_timer() is None and pair.b.get_timer() is None


def test_unreachable_peer_aborts_after_retransmissions() -> None:
    pair = Pair()
    pair.connect()
    pair.filter = lambda source, packet: False
    pair.a.send_message(0, 53, b"into the void", now=pair.now)
    pair.run(lambda: bool(pair.of(pair.a, AssociationAborted)), max_time=10_000)
    (event,) = pair.of(pair.a, AssociationAborted)
    assert isinstance(event, AssociationAborted) and not event.by_peer


def test_handshake_gives_up() -> None:
    pair = Pair()
    pair.filter = lambda source, packet: False
    pair.a.connect(pair.now)
    pair.run(lambda: bool(pair.of(pair.a, AssociationAborted)), max_time=10_000)
    assert pair.a.state is AssociationState.CLOSED


def test_heartbeat_keeps_idle_association_alive() -> None:
    pair = Pair()
    pair.connect()
    pair.run(lambda: pair.now > 200)
    assert (
        pair.a.state is AssociationState.ESTABLISHED
        and pair.b.state is AssociationState.ESTABLISHED
    )


def test_message_size_and_stream_limits() -> None:
    core = SctpAssociation(is_client=True, max_message_size=1000, receive_window=4000)
    with pytest.raises(ValueError, match="exceeds"):
        core.send_message(0, 53, b"x" * 1001, now=0.0)
    with pytest.raises(ValueError, match="empty"):
        core.send_message(0, 53, b"", now=0.0)
    with pytest.raises(ValueError, match="stream id"):
        core.send_message(70000, 53, b"x", now=0.0)


def test_large_messages_up_to_max_message_size() -> None:
    pair = Pair(seed=8, loss=0.05, reorder=0.2)
    pair.connect()
    big = random.Random(1).randbytes(262144)
    pair.a.send_message(0, 53, big, now=pair.now)
    pair.a.send_message(0, 53, big[::-1], ordered=False, now=pair.now)
    pair.run(lambda: len(messages(pair, pair.b)) == 2)
    assert sorted(messages(pair, pair.b)) == sorted([big, big[::-1]])


def test_receive_window_bounds_memory_when_application_stalls() -> None:
    pair = Pair(server={"receive_window": 300_000, "max_message_size": 100_000})
    pair.connect()
    taken = pair.b.next_event

    def hold() -> None:
        return None

    pair.b.next_event = hold  # type: ignore[method-assign]
    for _ in range(50):
        pair.a.send_message(0, 53, b"m" * 50_000, now=pair.now)
    start = pair.now
    pair.run(lambda: pair.now > start + 30)
    receiver = pair.b.receiver
    assert receiver is not None
    assert receiver.buffered <= 300_000 + 100_000
    pair.b.next_event = taken  # type: ignore[method-assign]
    pair.run(lambda: len(messages(pair, pair.b)) == 50, max_time=pair.now + 600)


def test_peer_ignoring_our_window_cannot_grow_memory() -> None:
    """A hostile peer sends out-of-order DATA (never the next TSN) far past our window."""
    from trio_rtc.sctp.chunks import DataChunk, encode_data, encode_packet

    pair = Pair(server={"receive_window": 200_000, "max_message_size": 100_000})
    pair.connect()
    core = pair.b
    receiver = core.receiver
    assert receiver is not None
    base = receiver.cumulative_tsn + 2  # leave a hole at cumulative + 1 forever
    for index in range(2000):
        chunk = DataChunk(0x02, (base + index) & 0xFFFFFFFF, 1, 0, 53, b"\xee" * 1100)
        packet = encode_packet(5000, 5000, core.local_tag, [encode_data(chunk)])
        core.receive_datagram(packet, pair.now)
    assert receiver.buffered <= 200_000
    assert core.stats.data_chunks_dropped > 1000
    assert core.state is AssociationState.ESTABLISHED


@pytest.mark.parametrize("seed", range(6))
def test_mixed_traffic_resets_and_loss(seed: int) -> None:
    """Random mixes of reliable, unreliable and unordered messages with stream resets in the
    middle: reliable ordered streams arrive intact, nothing crashes, nothing deadlocks."""
    rng = random.Random(seed)
    pair = Pair(seed=seed, loss=rng.choice((0.0, 0.05, 0.15)), reorder=0.2, duplicate=0.05)
    pair.connect(both=seed % 2 == 1)
    reliable: dict[int, list[bytes]] = {}
    for round_index in range(40):
        for _ in range(rng.randrange(1, 6)):
            stream = rng.randrange(0, 6)
            payload = b"%d:%d:" % (round_index, stream) + rng.randbytes(rng.choice((5, 700, 4000)))
            if stream < 3:
                reliable.setdefault(stream, []).append(payload)
                pair.a.send_message(stream, 53, payload, now=pair.now)
            else:
                pair.a.send_message(
                    stream,
                    53,
                    payload,
                    ordered=stream != 5,
                    max_retransmits=rng.choice((0, 1, None)) if stream == 3 else None,
                    max_packet_lifetime=0.05 if stream == 4 else None,
                    now=pair.now,
                )
        if rng.random() < 0.2:
            pair.a.reset_streams([rng.randrange(0, 6)])
        step_end = pair.now + rng.choice((0.001, 0.02, 0.2))
        pair.run(lambda end=step_end: pair.now >= end, max_time=pair.now + 60)  # type: ignore[misc]
    pair.run(lambda: not pair.a.has_pending_data(), max_time=pair.now + 3600)
    for stream, payloads in reliable.items():
        assert messages(pair, pair.b, stream) == payloads
    assert pair.a.state is pair.b.state is AssociationState.ESTABLISHED


@pytest.mark.parametrize("seed", range(4))
def test_both_sides_send_and_reset_then_shut_down(seed: int) -> None:
    rng = random.Random(seed)
    pair = Pair(seed=seed, loss=(0.0, 0.05, 0.2, 0.1)[seed], reorder=0.3, duplicate=0.05)
    pair.connect(both=seed % 2 == 0)
    reliable: dict[tuple[bytes, int], list[bytes]] = {}
    for round_index in range(30):
        for core, tag in ((pair.a, b"A"), (pair.b, b"B")):
            for _ in range(rng.randrange(0, 4)):
                stream = rng.randrange(0, 5)
                payload = (
                    tag
                    + b"%d:%d:" % (round_index, stream)
                    + rng.randbytes(rng.choice((5, 1200, 9000)))
                )
                if stream < 3:
                    reliable.setdefault((tag, stream), []).append(payload)
                    core.send_message(stream, 53, payload, now=pair.now)
                else:
                    core.send_message(
                        stream,
                        53,
                        payload,
                        ordered=False,
                        max_retransmits=0,
                        max_packet_lifetime=0.03,
                        now=pair.now,
                    )
            if rng.random() < 0.15:
                core.reset_streams([rng.randrange(0, 5)])
        step_end = pair.now + rng.choice((0.001, 0.05, 0.3))
        pair.run(lambda end=step_end: pair.now >= end, max_time=pair.now + 60)  # type: ignore[misc]
    pair.run(
        lambda: not pair.a.has_pending_data() and not pair.b.has_pending_data(),
        max_time=pair.now + 3600,
    )
    for (tag, stream), payloads in reliable.items():
        destination = pair.b if tag == b"A" else pair.a
        got = [m for m in messages(pair, destination, stream) if m[:1] == tag]
        assert got == payloads
    pair.a.shutdown()
    pair.run(
        lambda: pair.a.state is AssociationState.CLOSED and pair.b.state is AssociationState.CLOSED,
        max_time=pair.now + 3600,
    )
    assert pair.of(pair.a, AssociationClosed) and pair.of(pair.b, AssociationClosed)


def test_init_ack_travels_alone_in_a_collision() -> None:
    """Issue 16, finding 2: when both ends send INIT at once, the INIT ACK went out bundled with
    the COOKIE ECHO; stacks on usrsctp drop such a packet (RFC 9260 §6.10: INIT, INIT ACK and
    SHUTDOWN COMPLETE travel alone) and setup waited a second for T1-cookie. Here ``a`` takes
    ``b``'s INIT and then ``b``'s INIT ACK before it sends anything, so it has an INIT ACK and a
    COOKIE ECHO to send at once."""
    pair = Pair()
    a, b = pair.a, pair.b
    a.connect(0.0)
    b.connect(0.0)
    [a_init] = a.datagrams_to_send(0.0)
    [b_init] = b.datagrams_to_send(0.0)
    b.receive_datagram(a_init, 0.0)
    [b_init_ack] = b.datagrams_to_send(0.0)
    a.receive_datagram(b_init, 0.0)
    a.receive_datagram(b_init_ack, 0.0)
    packets = a.datagrams_to_send(0.0)
    kinds = [[chunk.type for chunk in decode_chunks_untrusted(p)] for p in packets]
    assert [ChunkType.INIT_ACK] in kinds and [ChunkType.COOKIE_ECHO] in kinds, kinds
    alone = {ChunkType.INIT, ChunkType.INIT_ACK, ChunkType.SHUTDOWN_COMPLETE}
    assert all(len(k) == 1 for k in kinds if alone & set(k)), kinds
    for packet in packets:
        b.receive_datagram(packet, 0.0)
    pair.run(pair.established)
    assert a.state is b.state is AssociationState.ESTABLISHED
