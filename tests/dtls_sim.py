"""A fake-time, lossy, reordering link between two DTLS cores (test helper)."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Any

from trio_rtc.dtls import DtlsConnection, DtlsEvent, RTCCertificate

_CERTS: list[RTCCertificate] = []


def certs() -> tuple[RTCCertificate, RTCCertificate]:
    while len(_CERTS) < 2:
        _CERTS.append(RTCCertificate.generate_sync())
    return _CERTS[0], _CERTS[1]


def pair(**kwargs: Any) -> tuple[DtlsConnection, DtlsConnection]:
    a, b = certs()
    client_kwargs = {k[7:]: v for k, v in kwargs.items() if k.startswith("client_")}
    server_kwargs = {k[7:]: v for k, v in kwargs.items() if k.startswith("server_")}
    common = {k: v for k, v in kwargs.items() if not k.startswith(("client_", "server_"))}
    client = DtlsConnection(
        is_client=True,
        certificate=a,
        remote_fingerprints=b.getFingerprints(),
        **common,
        **client_kwargs,
    )
    server = DtlsConnection(
        is_client=False,
        certificate=b,
        remote_fingerprints=a.getFingerprints(),
        **common,
        **server_kwargs,
    )
    return client, server


class Link:
    """Delivers datagrams between two cores with loss, random extra delay and a wire tap."""

    def __init__(
        self,
        client: DtlsConnection,
        server: DtlsConnection,
        *,
        loss: float = 0.0,
        reorder: float = 0.0,
        seed: int = 0,
        tap: Callable[[DtlsConnection, bytes], bytes | None] | None = None,
    ) -> None:
        self.client, self.server = client, server
        self.loss, self.reorder = loss, reorder
        self.rng = random.Random(seed)
        self.tap = tap
        self.now = 0.0
        self._queue: list[tuple[float, int, int, bytes]] = []
        self._counter = 0
        self.events: dict[bool, list[DtlsEvent]] = {True: [], False: []}
        self.sent: dict[bool, list[bytes]] = {True: [], False: []}

    def _collect(self) -> None:
        for src, dst in ((self.client, self.server), (self.server, self.client)):
            for datagram in src.datagrams_to_send(self.now):
                self.sent[src.is_client].append(datagram)
                if self.tap is not None:
                    tapped = self.tap(src, datagram)
                    if tapped is None:
                        continue
                    datagram = tapped
                if self.rng.random() < self.loss:
                    continue
                delay = 0.005
                if self.rng.random() < self.reorder:
                    delay += self.rng.random() * 0.1
                self._counter += 1
                heapq.heappush(
                    self._queue, (self.now + delay, self._counter, int(dst.is_client), datagram)
                )
            while (event := src.next_event()) is not None:
                self.events[src.is_client].append(event)

    def run(self, until: Callable[[], bool], limit: float = 600.0) -> float:
        """Advance fake time until ``until()`` or nothing is left to do; returns the time."""
        while self.now <= limit:
            self._collect()
            if until():
                return self.now
            deadlines = [
                t for t in (self.client.get_timer(), self.server.get_timer()) if t is not None
            ]
            if self._queue:
                deadlines.append(self._queue[0][0])
            if not deadlines:
                return self.now
            self.now = max(self.now, min(deadlines))
            while self._queue and self._queue[0][0] <= self.now:
                _, _, to_client, datagram = heapq.heappop(self._queue)
                (self.client if to_client else self.server).receive_datagram(datagram, self.now)
            self.client.handle_timer(self.now)
            self.server.handle_timer(self.now)
        return self.now

    def handshake(self, limit: float = 600.0) -> float:
        self.client.start(self.now)
        self.server.start(self.now)
        return self.run(
            lambda: self.client.state != "connecting" and self.server.state != "connecting", limit
        )
