"""Messages the peer acknowledged are freed by reference counting, not left to the cyclic
collector: a stream of small messages otherwise spent a quarter of its CPU in gen-2 passes."""

from __future__ import annotations

import gc

from test_sctp_harness import Pair

from trio_rtc.sctp.events import MessageReceived


def test_acknowledged_messages_leave_no_cyclic_garbage() -> None:
    pair = Pair(seed=5, loss=0.05)
    pair.connect()
    gc.collect()
    gc.disable()
    try:
        # One-chunk and many-chunk messages, reliable and partially reliable, over a lossy
        # link (retransmissions, and abandoned messages when maxRetransmits=0 runs out).
        for index in range(300):
            size = (40, 1300, 5000)[index % 3]
            pair.a.send_message(
                1,
                53,
                bytes(size),
                now=pair.now,
                max_retransmits=0 if index % 4 == 0 else None,
            )
        pair.run(lambda: not pair.a.has_pending_data())
        received = pair.of(pair.b, MessageReceived)
        assert len(received) >= 200
        pair.events.clear()
        del received
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_one_chunk_messages_reuse_the_chunk_objects_of_acknowledged_ones() -> None:
    """A steady stream of small messages allocates no chunk object per message: the objects of
    acknowledged one-chunk messages come back as spares (bounded per process), reset to their
    initial state with their payload let go, and carry the next messages."""
    from trio_rtc.sctp import sender as sender_module
    from trio_rtc.sctp.sender import OutboundChunk

    def chunk_objects() -> int:
        return sum(1 for obj in gc.get_objects() if type(obj) is OutboundChunk)

    pair = Pair(seed=7, loss=0.0)
    pair.connect()
    for round_number in range(2):
        for index in range(400):
            pair.a.send_message(1, 51, b"%d" % index, now=pair.now)
        pair.run(lambda: not pair.a.has_pending_data())
        if round_number == 0:
            gc.collect()
            before = chunk_objects()
            spares = list(sender_module._spare_chunks)
            assert len(spares) >= 400
            assert all(chunk.wire == b"" and not chunk.acked for chunk in spares)
    gc.collect()
    assert chunk_objects() <= before
    received = [e.data for e in pair.of(pair.b, MessageReceived)]
    assert received == [b"%d" % i for i in range(400)] * 2
    assert len(sender_module._spare_chunks) <= sender_module.SPARE_CHUNKS
