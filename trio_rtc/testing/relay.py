"""A NAT-like relay that applies :class:`LinkConditions` to real UDP traffic on loopback.

This kernel has no ``tc netem``, so end-to-end tests that want real sockets *and* loss, delay or
reordering put this relay between the peers::

    async with UdpRelay(target=server.local_address, conditions=LinkConditions(loss=0.1)) as relay:
        client.send_nowait(b"ping", relay.address)   # reaches the server from relay's port

Each client source address gets its own outward socket (like an endpoint-dependent NAT mapping),
so the target's replies come back through the same mapping to the right client. Only datagrams
from the target are accepted on an outward socket (address-dependent filtering); others are
counted in :attr:`UdpRelay.filtered` and dropped.

It runs on the real clock; under ``MockClock`` use :class:`VirtualNetwork` instead.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from typing import Literal

import trio

from trio_rtc._lifetime import AsyncLifetime
from trio_rtc.udp import Address, SocketUdpEndpoint, bind_socket_endpoint

from .virtual_network import LinkConditions, NetworkStats, _DelayLine, _LinkState, _plan_delivery

__all__ = ["UdpRelay"]

Direction = Literal["both", "forward", "reverse"]

_BATCH = 256


class _Mapping:
    """One client's outward socket and the task reading it."""

    __slots__ = ("client", "outward")

    def __init__(self, client: Address, outward: SocketUdpEndpoint) -> None:
        self.client = client
        self.outward = outward


_Forward = tuple[_LinkState, SocketUdpEndpoint, Address, bytes]


class UdpRelay(AsyncLifetime):
    """``async with UdpRelay(target=(ip, port), conditions=...) as relay:`` — see module doc.

    *conditions* apply client -> target ("forward"), *reverse_conditions* target -> client
    ("reverse"; default: the same as *conditions*). *host*/*port* is where the relay listens
    (:attr:`address`). Outward sockets bind to the loopback address of the target's family. At
    most *max_clients* mappings are made; datagrams from further clients are dropped and counted
    in :attr:`rejected`.
    """

    def __init__(
        self,
        target: Address,
        *,
        conditions: LinkConditions | None = None,
        reverse_conditions: LinkConditions | None = None,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        max_clients: int = 64,
    ) -> None:
        forward = conditions if conditions is not None else LinkConditions()
        self.target = target
        self.forward_stats = NetworkStats()
        self.reverse_stats = NetworkStats()
        self.filtered = 0
        self.rejected = 0
        self._forward_link = _LinkState(forward)
        self._reverse_link = _LinkState(
            reverse_conditions if reverse_conditions is not None else forward
        )
        self._blocked_forward = False
        self._blocked_reverse = False
        self._rng = random.Random(seed)
        self._host = host
        self._port = port
        self._max_clients = max_clients
        self._outward_host = "::1" if ":" in target[0] else "127.0.0.1"
        self._listener: SocketUdpEndpoint | None = None
        self._mappings: dict[Address, _Mapping] = {}
        self._nursery: trio.Nursery | None = None
        self._delay_line: _DelayLine[_Forward] = _DelayLine(self._release)

    @property
    def address(self) -> Address:
        """Where clients send to reach the target."""
        if self._listener is None:
            raise RuntimeError("the relay is not running (use `async with`)")
        return self._listener.local_address

    @property
    def mappings(self) -> dict[Address, Address]:
        """Client address -> the relay's outward address the target sees for it."""
        return {client: m.outward.local_address for client, m in self._mappings.items()}

    def set_conditions(self, conditions: LinkConditions, *, direction: Direction = "both") -> None:
        """Change the impairment of new datagrams in *direction*."""
        if direction in ("both", "forward"):
            self._forward_link.conditions = conditions
        if direction in ("both", "reverse"):
            self._reverse_link.conditions = conditions

    def block(self, direction: Direction = "both") -> None:
        """Drop every datagram in *direction*, in flight included (a vanished peer)."""
        if direction in ("both", "forward"):
            self._blocked_forward = True
        if direction in ("both", "reverse"):
            self._blocked_reverse = True

    def unblock(self, direction: Direction = "both") -> None:
        if direction in ("both", "forward"):
            self._blocked_forward = False
        if direction in ("both", "reverse"):
            self._blocked_reverse = False

    # -- lifetime ------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        if self._lifetime is not None:
            raise RuntimeError("this UdpRelay is already running")
        listener = self._listener = bind_socket_endpoint(self._host, self._port)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._delay_line.run)
                nursery.start_soon(self._pump_listener, listener)
                try:
                    yield
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            for mapping in self._mappings.values():
                mapping.outward.close()
            self._mappings.clear()
            listener.close()

    # -- forwarding ----------------------------------------------------------------------------

    async def _pump_listener(self, listener: SocketUdpEndpoint) -> None:
        target = self.target
        while True:
            await listener.wait_readable()
            for data, client in listener.recv_batch_nowait(_BATCH):
                mapping = self._mappings.get(client)
                if mapping is None:
                    mapping = self._open_mapping(client)
                    if mapping is None:
                        continue
                if self._blocked_forward:
                    self.forward_stats.sent += 1
                    self.forward_stats.dropped_blocked += 1
                    continue
                self._impair(self._forward_link, self.forward_stats, mapping.outward, target, data)

    def _open_mapping(self, client: Address) -> _Mapping | None:
        if len(self._mappings) >= self._max_clients:
            self.rejected += 1
            return None
        assert self._nursery is not None
        mapping = _Mapping(client, bind_socket_endpoint(self._outward_host, 0))
        self._mappings[client] = mapping
        self._nursery.start_soon(self._pump_outward, mapping)
        return mapping

    async def _pump_outward(self, mapping: _Mapping) -> None:
        listener = self._listener
        assert listener is not None
        target = self.target
        outward = mapping.outward
        while True:
            await outward.wait_readable()
            for data, source in outward.recv_batch_nowait(_BATCH):
                if source != target:
                    self.filtered += 1
                    continue
                if self._blocked_reverse:
                    self.reverse_stats.sent += 1
                    self.reverse_stats.dropped_blocked += 1
                    continue
                self._impair(self._reverse_link, self.reverse_stats, listener, mapping.client, data)

    def _impair(
        self,
        link: _LinkState,
        stats: NetworkStats,
        via: SocketUdpEndpoint,
        destination: Address,
        data: bytes,
    ) -> None:
        stats.sent += 1
        now = trio.current_time()
        for arrival in _plan_delivery(link, self._rng, now, len(data), stats):
            if arrival <= now:
                self._send(stats, via, destination, data)
            else:
                link.in_flight += 1
                self._delay_line.push(arrival, (link, via, destination, data))

    def _release(self, item: _Forward) -> None:
        link, via, destination, data = item
        link.in_flight -= 1
        forward = link is self._forward_link
        stats = self.forward_stats if forward else self.reverse_stats
        if self._blocked_forward if forward else self._blocked_reverse:
            stats.dropped_blocked += 1
            return
        self._send(stats, via, destination, data)

    @staticmethod
    def _send(
        stats: NetworkStats, via: SocketUdpEndpoint, destination: Address, data: bytes
    ) -> None:
        if via.closed:
            stats.dropped_no_endpoint += 1
        elif via.send_nowait(data, destination):
            stats.delivered += 1
        else:
            # The kernel refused it (full buffer, nobody listening with IP_RECVERR…).
            stats.dropped_receive_buffer += 1
