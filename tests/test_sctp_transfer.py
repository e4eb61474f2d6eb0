"""Bulk transfer core-to-core under fake time: 8 MiB over 0 %, 5 % and 20 % loss with
reordering and duplication; every byte arrives in order and the sha256 matches."""

from __future__ import annotations

import hashlib
import random

import pytest
from test_sctp_harness import Pair

from trio_rtc.sctp.association import SctpAssociation
from trio_rtc.sctp.events import MessageReceived, SctpEvent

TOTAL = 8 * 1024 * 1024


class BulkSender:
    """Feeds random-size messages while the send buffer is under a limit (backpressure)."""

    def __init__(self, core: SctpAssociation, seed: int, *, stream_id: int = 1) -> None:
        self.core = core
        self.rng = random.Random(seed)
        self.stream_id = stream_id
        self.sent = 0
        self.digest = hashlib.sha256()
        self.sizes: list[int] = []

    def feed(self, now: float) -> None:
        while self.sent < TOTAL and self.core.buffered_total < 1 << 20:
            size = min(
                self.rng.choice((1, 100, 1171, 1172, 1173, 16384, 65536, 262144)), TOTAL - self.sent
            )
            payload = random.Random(self.sent).randbytes(size)
            self.core.send_message(self.stream_id, 53, payload, now=now)
            self.digest.update(payload)
            self.sizes.append(size)
            self.sent += size


class BulkReceiver:
    def __init__(self) -> None:
        self.received = 0
        self.digest = hashlib.sha256()
        self.sizes: list[int] = []

    def on_message(self, event: MessageReceived) -> None:
        self.received += len(event.data)
        self.digest.update(event.data)
        self.sizes.append(len(event.data))


@pytest.mark.parametrize(
    ("loss", "seed"),
    [(0.0, 1), (0.05, 2), (0.20, 3)],
)
def test_8_mib_arrive_in_order(loss: float, seed: int) -> None:
    receiver = BulkReceiver()

    def on_event(core: SctpAssociation, event: SctpEvent) -> None:
        if core is pair.b and isinstance(event, MessageReceived):
            receiver.on_message(event)

    pair = Pair(
        seed=seed,
        loss=loss,
        duplicate=0.02 if loss else 0.0,
        reorder=0.1 if loss else 0.0,
        on_event=on_event,
    )
    pair.connect()
    sender = BulkSender(pair.a, seed)

    def done() -> bool:
        sender.feed(pair.now)
        return receiver.received >= TOTAL

    pair.run(done, max_time=36000)
    assert receiver.sizes == sender.sizes
    assert receiver.digest.hexdigest() == sender.digest.hexdigest()
    assert pair.a.stats.malformed_packets == pair.b.stats.malformed_packets == 0
    if loss:
        assert pair.a.stats.retransmitted_chunks > 0


def test_both_directions_at_once_with_loss() -> None:
    """SACKs ride with DATA both ways; full-size chunks must still go out next to a SACK."""
    totals = {1: 0, 2: 0}
    digests = {1: hashlib.sha256(), 2: hashlib.sha256()}

    def on_event(core: SctpAssociation, event: SctpEvent) -> None:
        if isinstance(event, MessageReceived):
            totals[event.stream_id] += len(event.data)
            digests[event.stream_id].update(event.data)

    pair = Pair(seed=12, loss=0.05, reorder=0.1, duplicate=0.02, on_event=on_event)
    pair.connect()
    expected = {1: hashlib.sha256(), 2: hashlib.sha256()}
    size = 2 * 1024 * 1024
    for stream_id, core in ((1, pair.a), (2, pair.b)):
        rng = random.Random(stream_id)
        sent = 0
        while sent < size:
            payload = rng.randbytes(min(rng.choice((100, 1172, 5000, 40000)), size - sent))
            core.send_message(stream_id, 53, payload, now=pair.now)
            expected[stream_id].update(payload)
            sent += len(payload)
    pair.run(lambda: totals[1] == size and totals[2] == size, max_time=3600)
    assert digests[1].digest() == expected[1].digest()
    assert digests[2].digest() == expected[2].digest()
