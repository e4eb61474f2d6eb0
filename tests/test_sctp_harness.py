"""A core-to-core harness under fake time, and its own sanity tests.

Two :class:`SctpAssociation` cores exchange packets through a simulated link with seeded loss,
reordering (random extra delay) and duplication. When nothing is in flight the clock jumps to the
earliest core timer, so a run takes as much wall time as the protocol work, not the simulated time.
Other ``test_sctp_*`` modules import :class:`Pair` from here.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable

from trio_rtc.sctp.association import SctpAssociation
from trio_rtc.sctp.events import AssociationEstablished, SctpEvent


class Pair:
    def __init__(
        self,
        *,
        seed: int = 0,
        loss: float = 0.0,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        delay: float = 0.01,
        client: dict[str, object] | None = None,
        server: dict[str, object] | None = None,
        on_event: Callable[[SctpAssociation, SctpEvent], None] | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.loss = loss
        self.duplicate = duplicate
        self.reorder = reorder
        self.delay = delay
        self.a = SctpAssociation(
            is_client=True,
            rng=random.Random(seed * 7 + 1),
            **(client or {}),  # type: ignore[arg-type]
        )
        self.b = SctpAssociation(
            is_client=False,
            rng=random.Random(seed * 7 + 2),
            **(server or {}),  # type: ignore[arg-type]
        )
        self.now = 0.0
        self._queue: list[tuple[float, int, int, bytes]] = []
        self._sequence = 0
        self.events: dict[int, list[SctpEvent]] = {id(self.a): [], id(self.b): []}
        self.on_event = on_event
        self.sent_packets = 0
        self.filter: Callable[[SctpAssociation, bytes], bool] | None = None

    def peer(self, core: SctpAssociation) -> SctpAssociation:
        return self.b if core is self.a else self.a

    def _transmit(self, source: SctpAssociation) -> None:
        rng = self.rng
        destination = 0 if source is self.b else 1
        for packet in source.datagrams_to_send(self.now):
            self.sent_packets += 1
            assert len(packet) <= source.mtu
            if self.filter is not None and not self.filter(source, packet):
                continue
            if self.loss and rng.random() < self.loss:
                continue
            copies = 2 if self.duplicate and rng.random() < self.duplicate else 1
            for _ in range(copies):
                extra = (
                    rng.random() * self.delay * 3
                    if self.reorder and rng.random() < self.reorder
                    else 0.0
                )
                self._sequence += 1
                heapq.heappush(
                    self._queue,
                    (self.now + self.delay + extra, self._sequence, destination, packet),
                )

    def _drain_events(self) -> None:
        for core in (self.a, self.b):
            while (event := core.next_event()) is not None:
                self.events[id(core)].append(event)
                if self.on_event is not None:
                    self.on_event(core, event)

    def pump(self) -> None:
        self._drain_events()
        self._transmit(self.a)
        self._transmit(self.b)
        self._drain_events()

    def run(self, until: Callable[[], bool], *, max_time: float = 600.0) -> None:
        while True:
            self.pump()
            if until():
                return
            # ``until`` may have queued messages (an application reacting to events).
            self.pump()
            candidates = [t for t in (self.a.get_timer(), self.b.get_timer()) if t is not None]
            if self._queue:
                candidates.append(self._queue[0][0])
            if not candidates:
                raise AssertionError("deadlock: nothing in flight and no timer")
            self.now = max(self.now, min(candidates))
            if self.now > max_time:
                raise AssertionError(f"not done after {max_time} simulated seconds")
            while self._queue and self._queue[0][0] <= self.now:
                _, _, destination, packet = heapq.heappop(self._queue)
                (self.b if destination else self.a).receive_datagram(packet, self.now)
            for core in (self.a, self.b):
                deadline = core.get_timer()
                if deadline is not None and deadline <= self.now:
                    core.handle_timer(self.now)

    def established(self) -> bool:
        return any(isinstance(e, AssociationEstablished) for e in self.events[id(self.a)]) and any(
            isinstance(e, AssociationEstablished) for e in self.events[id(self.b)]
        )

    def connect(self, *, both: bool = False) -> None:
        self.a.connect(self.now)
        if both:
            self.b.connect(self.now)
        self.run(self.established, max_time=self.now + 120)

    def of(self, core: SctpAssociation, kind: type[SctpEvent]) -> list[SctpEvent]:
        return [e for e in self.events[id(core)] if isinstance(e, kind)]


def test_handshake_and_one_message() -> None:
    from trio_rtc.sctp.events import MessageReceived

    pair = Pair()
    pair.connect()
    pair.a.send_message(1, 53, b"hello", now=pair.now)
    pair.run(lambda: bool(pair.of(pair.b, MessageReceived)))
    assert pair.of(pair.b, MessageReceived) == [MessageReceived(1, 53, b"hello")]
