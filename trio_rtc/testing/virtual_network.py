"""An in-memory UDP network with loss (random or bursty), delay, jitter, reordering, duplication,
a bottleneck and NAT boxes.

Installed for a trio run, it makes :func:`trio_rtc.udp.open_udp_endpoint` hand out virtual
endpoints, so the real drivers run unmodified over an impaired network. Everything is driven by
trio time (``trio.current_time`` and deadlines) and one seeded :class:`random.Random`, so a test
under ``trio.testing.MockClock(autojump_threshold=0)`` is exactly reproducible: the same seed and
the same sequence of sends give the same drops, delays and orders.

The impairment model (:class:`LinkConditions`, :func:`_plan_delivery`, :class:`_DelayLine`) is
shared with :class:`trio_rtc.testing.UdpRelay`, which applies it to real sockets.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import heapq
import ipaddress
import math
import random
import socket
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

import attrs
import trio

from trio_rtc._lifetime import AsyncLifetime
from trio_rtc.testing.nat import Nat
from trio_rtc.udp import (
    DEFAULT_BUFFER,
    Address,
    UdpEndpoint,
    reset_endpoint_factory,
    set_endpoint_factory,
)

__all__ = [
    "BurstLoss",
    "CapturedDatagram",
    "LinkConditions",
    "NetworkStats",
    "VirtualEndpoint",
    "VirtualNetwork",
]

_T = TypeVar("_T")

# Ephemeral range of RFC 6335 section 6, where port 0 picks from.
_EPHEMERAL_FIRST = 49152
_EPHEMERAL_LAST = 65535
# Charged per queued datagram on top of its length, like the kernel's per-skb overhead, so a
# flood of tiny datagrams still fills a receive buffer after a bounded number of entries.
_DATAGRAM_OVERHEAD = 256
# Largest UDP payloads (IPv4: 65535 - 20 - 8; IPv6 without jumbograms: 65535 - 8).
_MAX_PAYLOAD: dict[int, int] = {socket.AF_INET: 65507, socket.AF_INET6: 65527}
_ADDRESS_CACHE_LIMIT = 4096


def _check_probability(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be a probability in [0, 1], got {value}")


def _check_non_negative(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0.0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


def _check_rate(
    _instance: object, _attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and not value > 0.0:
        raise ValueError(f"rate must be a positive number of bytes/s or None, got {value}")


def _check_queue_limit(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"queue_limit must be >= 1, got {value}")


@attrs.define(frozen=True)
class BurstLoss:
    """Gilbert-Elliott loss: a two-state Markov chain advanced once per datagram.

    In the *good* state a datagram is lost with probability :attr:`loss_good`, in the *bad*
    state with :attr:`loss_bad`. The mean burst (bad-state run) lasts ``1 / exit_bad``
    datagrams, and the long-run share of datagrams sent in the bad state is
    ``enter_bad / (enter_bad + exit_bad)``; with the defaults (lossless good state, lossy bad
    state) that share is the loss rate (the "Gilbert" model).
    """

    enter_bad: float = attrs.field(validator=_check_probability)
    """Probability of moving from good to bad before a datagram (``p`` in the literature)."""
    exit_bad: float = attrs.field(validator=_check_probability)
    """Probability of moving from bad to good before a datagram (``r``)."""
    loss_bad: float = attrs.field(default=1.0, validator=_check_probability)
    loss_good: float = attrs.field(default=0.0, validator=_check_probability)

    @classmethod
    def from_rate(cls, loss: float, mean_burst: float) -> BurstLoss:
        """A Gilbert chain that loses *loss* of all datagrams in bursts of *mean_burst* on
        average (``loss_bad=1``, ``loss_good=0``)."""
        if not 0.0 <= loss < 1.0:
            raise ValueError(f"loss must be in [0, 1), got {loss}")
        if not mean_burst >= 1.0:
            raise ValueError(f"mean_burst must be >= 1 datagram, got {mean_burst}")
        exit_bad = 1.0 / mean_burst
        return cls(enter_bad=min(1.0, loss * exit_bad / (1.0 - loss)), exit_bad=exit_bad)

    @property
    def mean_loss(self) -> float:
        """The long-run loss rate of the chain."""
        total = self.enter_bad + self.exit_bad
        if total == 0.0:
            return self.loss_good
        bad_share = self.enter_bad / total
        return bad_share * self.loss_bad + (1.0 - bad_share) * self.loss_good


@attrs.define(frozen=True)
class LinkConditions:
    """How one direction of a link treats datagrams. The defaults are a perfect link."""

    loss: float = attrs.field(default=0.0, validator=_check_probability)
    """Probability that a datagram is dropped."""
    delay: float = attrs.field(default=0.0, validator=_check_non_negative)
    """One-way base latency in seconds."""
    jitter: float = attrs.field(default=0.0, validator=_check_non_negative)
    """Uniform extra delay in ``[0, jitter)``; reorders datagrams sent closer than that."""
    reorder: float = attrs.field(default=0.0, validator=_check_probability)
    """Probability that a datagram is held back an extra :attr:`reorder_delay`."""
    reorder_delay: float = attrs.field(default=0.02, validator=_check_non_negative)
    duplicate: float = attrs.field(default=0.0, validator=_check_probability)
    """Probability that a datagram is delivered twice (the copy draws its own jitter)."""
    rate: float | None = attrs.field(default=None, validator=_check_rate)
    """Bottleneck in bytes/s: each datagram waits for the ones before it to be serialised.
    ``None`` means infinitely fast."""
    queue_limit: int = attrs.field(default=1000, validator=_check_queue_limit)
    """Datagrams in flight on this link (src IP -> dst IP) before new ones are tail-dropped."""
    burst: BurstLoss | None = None
    """Bursty (Gilbert-Elliott) loss, applied before and independently of :attr:`loss`."""


@attrs.define
class NetworkStats:
    """What happened to the datagrams handed to a network (or to one direction of a relay)."""

    sent: int = 0
    delivered: int = 0
    duplicated: int = 0
    reordered: int = 0
    dropped_loss: int = 0
    dropped_blocked: int = 0
    dropped_queue_full: int = 0
    dropped_no_endpoint: int = 0
    dropped_receive_buffer: int = 0
    dropped_nat: int = 0
    """Filtered by a NAT box, or addressed to a private address from outside its realm."""

    @property
    def dropped(self) -> int:
        """All drops, whatever the cause."""
        return (
            self.dropped_loss
            + self.dropped_blocked
            + self.dropped_queue_full
            + self.dropped_no_endpoint
            + self.dropped_receive_buffer
            + self.dropped_nat
        )


@attrs.define
class _LinkState:
    """Mutable state of one direction of a link."""

    conditions: LinkConditions
    busy_until: float = -math.inf
    in_flight: int = 0
    bad: bool = False
    """State of the Gilbert-Elliott chain (:class:`BurstLoss`)."""


def _plan_delivery(
    link: _LinkState, rng: random.Random, now: float, size: int, stats: NetworkStats
) -> list[float]:
    """Decide the fate of one datagram: the times its copies arrive (``[]`` if dropped).

    Random numbers are drawn only for impairments that are switched on, so a perfect link
    consumes none and enabling one link's impairment does not disturb another's sequence.
    """
    conditions = link.conditions
    burst = conditions.burst
    if burst is not None:
        if link.bad:
            if burst.exit_bad and rng.random() < burst.exit_bad:
                link.bad = False
        elif burst.enter_bad and rng.random() < burst.enter_bad:
            link.bad = True
        lossy = burst.loss_bad if link.bad else burst.loss_good
        if lossy and rng.random() < lossy:
            stats.dropped_loss += 1
            return []
    if conditions.loss and rng.random() < conditions.loss:
        stats.dropped_loss += 1
        return []
    copies = 1
    if conditions.duplicate and rng.random() < conditions.duplicate:
        copies = 2
        stats.duplicated += 1
    departure = now
    if conditions.rate is not None:
        # The bottleneck serialises datagrams one after the other; the copy of a duplicated
        # datagram is made after it (as by a retransmitting link layer), so it costs nothing.
        departure = max(now, link.busy_until) + size / conditions.rate
    times: list[float] = []
    for _ in range(copies):
        if link.in_flight + len(times) >= conditions.queue_limit:
            stats.dropped_queue_full += 1
            continue
        arrival = departure + conditions.delay
        if conditions.jitter:
            arrival += rng.random() * conditions.jitter
        if conditions.reorder and rng.random() < conditions.reorder:
            arrival += conditions.reorder_delay
            stats.reordered += 1
        times.append(arrival)
    if times and conditions.rate is not None:
        link.busy_until = departure
    return times


class _DelayLine(Generic[_T]):
    """Items released at their due trio time by one task, in time order (FIFO among equals)."""

    def __init__(self, deliver: Callable[[_T], None]) -> None:
        self._deliver = deliver
        self._heap: list[tuple[float, int, _T]] = []
        self._sequence = 0
        self._sleep_scope: trio.CancelScope | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, when: float, item: _T) -> None:
        self._sequence += 1
        heapq.heappush(self._heap, (when, self._sequence, item))
        scope = self._sleep_scope
        if scope is not None and when < scope.deadline:
            scope.deadline = when

    async def run(self) -> None:
        heap = self._heap
        while True:
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                self._deliver(heapq.heappop(heap)[2])
            # A push of an earlier item moves this deadline forward (see push).
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as scope:
                self._sleep_scope = scope
                try:
                    await trio.sleep_forever()
                finally:
                    self._sleep_scope = None


class VirtualEndpoint(UdpEndpoint):
    """A UDP endpoint on a :class:`VirtualNetwork`. Made by ``open_udp_endpoint``."""

    def __init__(
        self,
        network: VirtualNetwork,
        address: Address,
        family: int,
        receive_buffer: int,
        send_buffer: int,
    ) -> None:
        super().__init__()
        self._network = network
        self._address = address
        self._family = family
        self._receive_buffer = receive_buffer
        self._send_buffer = send_buffer
        self._queue: collections.deque[tuple[bytes, Address]] = collections.deque()
        self._queued_bytes = 0
        self._closed = False
        self._waiters = trio.lowlevel.ParkingLot()

    @property
    def local_address(self) -> Address:
        return self._address

    @property
    def family(self) -> int:
        return self._family

    @property
    def receive_buffer_size(self) -> int:
        return self._receive_buffer

    @property
    def send_buffer_size(self) -> int:
        return self._send_buffer

    @property
    def closed(self) -> bool:
        return self._closed

    async def wait_readable(self) -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            raise trio.ClosedResourceError("UDP endpoint is closed")
        if self._queue:
            await trio.lowlevel.checkpoint()
        elif self._waiters:
            # As trio.lowlevel.wait_readable does for a socket: two readers is a driver bug.
            raise trio.BusyResourceError("another task is already waiting on this endpoint")
        else:
            await self._waiters.park()
        if self._closed:
            raise trio.ClosedResourceError("UDP endpoint is closed")

    def recv_batch_nowait(self, max_count: int = 64) -> list[tuple[bytes, Address]]:
        if self._closed:
            raise trio.ClosedResourceError("UDP endpoint is closed")
        queue = self._queue
        count = min(max_count, len(queue))
        batch = [queue.popleft() for _ in range(count)]
        size = sum(len(data) for data, _ in batch)
        self._queued_bytes -= size + count * _DATAGRAM_OVERHEAD
        self.stats.datagrams_received += count
        self.stats.bytes_received += size
        return batch

    def send_nowait(self, data: bytes | bytearray | memoryview, address: Address) -> bool:
        if self._closed:
            raise trio.ClosedResourceError("UDP endpoint is closed")
        host, port = address
        family, host = self._network._normalize(host)
        if family != self._family:
            raise ValueError(f"cannot send to {host!r} from {self._address} (address family)")
        if not 0 < port < 65536:
            raise ValueError(f"UDP port out of range: {port}")
        # Copied now: the caller may reuse its buffer as soon as we return, as with sendto.
        payload = bytes(data)
        if len(payload) > _MAX_PAYLOAD[family]:
            self.stats.send_drops += 1
            return False
        self.stats.datagrams_sent += 1
        self.stats.bytes_sent += len(payload)
        self._network._transmit(self._address, payload, (host, port))
        return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._queued_bytes = 0
        self._network._forget(self)
        self._waiters.unpark_all()

    def _enqueue(self, data: bytes, source: Address) -> bool:
        """Queue an arriving datagram; False if the receive buffer is full (or we are closed)."""
        cost = len(data) + _DATAGRAM_OVERHEAD
        if self._closed or self._queued_bytes + cost > self._receive_buffer:
            self.stats.receive_drops += 1
            return False
        self._queue.append((data, source))
        self._queued_bytes += cost
        if self._waiters:
            self._waiters.unpark_all()
        return True

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<VirtualEndpoint {self._address[0]}:{self._address[1]} {state}>"


_Delivery = tuple[_LinkState, Address, Address, bytes]


@attrs.define(frozen=True)
class CapturedDatagram:
    """One delivered datagram, as its receiver saw it (see ``VirtualNetwork(capture=True)``)."""

    time: float
    """Trio time of delivery into the receiver's queue."""
    source: Address
    """The source the receiver sees (a NAT's public address for a host behind it)."""
    destination: Address
    """The receiving endpoint (the private address for a host behind a NAT)."""
    data: bytes


class VirtualNetwork(AsyncLifetime):
    """An in-memory network: ``async with VirtualNetwork(seed=1) as net:``.

    Inside the block, :func:`trio_rtc.udp.open_udp_endpoint` returns endpoints on this network
    (for the current trio run), any IP string is a valid host, port 0 picks a free port per IP
    and sending to an address nobody is bound to drops silently. Leaving the block stops delivery,
    closes every endpoint made on the network and uninstalls it.

    Conditions are per direction between host IPs: :meth:`set_conditions` with *src* and/or *dst*
    overrides the default for the matching traffic (most specific wins: both, then src, then dst).
    """

    def __init__(
        self, *, seed: int = 0, conditions: LinkConditions | None = None, capture: bool = False
    ) -> None:
        self.stats = NetworkStats()
        self.captured: list[CapturedDatagram] | None = [] if capture else None
        """Every delivered datagram in delivery order, when made with ``capture=True``."""
        self._nats_by_public: dict[str, Nat] = {}
        self._nats: list[Nat] = []
        self._realm_cache: dict[str, Nat | None] = {}
        self._rng = random.Random(seed)
        self._conditions: dict[tuple[str | None, str | None], LinkConditions] = {
            (None, None): conditions if conditions is not None else LinkConditions()
        }
        self._links: dict[tuple[str, str], _LinkState] = {}
        self._blocked: set[tuple[str, str]] = set()
        self._endpoints: dict[Address, VirtualEndpoint] = {}
        self._next_port: dict[str, int] = {}
        self._addresses: dict[str, tuple[int, str]] = {}
        self._delay_line: _DelayLine[_Delivery] = _DelayLine(self._deliver)

    # -- configuration -------------------------------------------------------------------------

    @property
    def default_conditions(self) -> LinkConditions:
        return self._conditions[(None, None)]

    def set_conditions(
        self, conditions: LinkConditions, *, src: str | None = None, dst: str | None = None
    ) -> None:
        """Apply *conditions* to datagrams from IP *src* to IP *dst* (None matches any).

        Takes effect for datagrams sent from now on; those in flight keep their fate.
        """
        key = (
            None if src is None else self._normalize(src)[1],
            None if dst is None else self._normalize(dst)[1],
        )
        self._conditions[key] = conditions
        for (link_src, link_dst), link in self._links.items():
            link.conditions = self._conditions_for(link_src, link_dst)

    def block(self, src: str, dst: str) -> None:
        """Drop everything from IP *src* to IP *dst*, in flight included (a vanished peer)."""
        self._blocked.add((self._normalize(src)[1], self._normalize(dst)[1]))

    def unblock(self, src: str, dst: str) -> None:
        self._blocked.discard((self._normalize(src)[1], self._normalize(dst)[1]))

    def add_nat(self, nat: Nat) -> Nat:
        """Put *nat* in front of its private realm: hosts bound to IPs in
        ``nat.private_network`` reach the rest of the network through ``nat.public_ip`` (see
        :mod:`trio_rtc.testing.nat`). Conditions for their traffic are keyed by the public IP.
        """
        public = self._normalize(nat.public_ip)[1]
        if public in self._nats_by_public:
            raise ValueError(f"a NAT already owns {public}")
        for other in self._nats:
            if other.private_network.overlaps(nat.private_network):
                raise ValueError(f"{nat.private_network} overlaps {other.private_network}")
            if other.contains(public):
                raise ValueError(f"{public} lies inside the private {other.private_network}")
        self._nats_by_public[public] = nat
        self._nats.append(nat)
        self._realm_cache.clear()
        return nat

    def capture_digest(self) -> str:
        """SHA-256 over the captured log (times, addresses and bytes): equal digests mean
        byte-identical sessions."""
        if self.captured is None:
            raise RuntimeError("make the network with capture=True to take a digest")
        digest = hashlib.sha256()
        for item in self.captured:
            digest.update(
                f"{item.time!r} {item.source} {item.destination} {len(item.data)}\n".encode()
            )
            digest.update(item.data)
        return digest.hexdigest()

    @property
    def in_flight(self) -> int:
        """Datagrams (copies included) scheduled for a later delivery."""
        return len(self._delay_line)

    # -- lifetime ------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        if self._lifetime is not None:
            raise RuntimeError("this VirtualNetwork is already running")
        token = set_endpoint_factory(self.open_endpoint)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._delay_line.run)
                try:
                    yield
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            for endpoint in list(self._endpoints.values()):
                endpoint.close()
            reset_endpoint_factory(token)

    # -- endpoints -----------------------------------------------------------------------------

    def open_endpoint(
        self,
        host: str,
        port: int = 0,
        *,
        receive_buffer: int = DEFAULT_BUFFER,
        send_buffer: int = DEFAULT_BUFFER,
    ) -> VirtualEndpoint:
        """Bind a virtual endpoint (what ``open_udp_endpoint`` calls while installed)."""
        try:
            family, ip = self._normalize(host)
        except ValueError as exc:
            raise OSError(errno.EADDRNOTAVAIL, f"cannot bind UDP {host}:{port}: {exc}") from None
        where = f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}"
        if ipaddress.ip_address(ip).is_unspecified:
            # Nothing tells which IP a wildcard-bound endpoint would send from here.
            raise OSError(
                errno.EADDRNOTAVAIL,
                f"cannot bind UDP {where}: a virtual network needs an explicit host IP",
            )
        if not 0 <= port < 65536:
            raise OSError(errno.EINVAL, f"cannot bind UDP {where}: port out of range")
        if port == 0:
            port = self._free_port(ip, where)
        elif (ip, port) in self._endpoints:
            raise OSError(errno.EADDRINUSE, f"cannot bind UDP {where}: address already in use")
        endpoint = VirtualEndpoint(self, (ip, port), family, receive_buffer, send_buffer)
        self._endpoints[(ip, port)] = endpoint
        return endpoint

    def _free_port(self, ip: str, where: str) -> int:
        candidate = self._next_port.get(ip, _EPHEMERAL_FIRST)
        for _ in range(_EPHEMERAL_LAST - _EPHEMERAL_FIRST + 1):
            port = candidate
            candidate = candidate + 1 if candidate < _EPHEMERAL_LAST else _EPHEMERAL_FIRST
            if (ip, port) not in self._endpoints:
                self._next_port[ip] = candidate
                return port
        raise OSError(errno.EADDRINUSE, f"cannot bind UDP {where}: no free port left")

    def _forget(self, endpoint: VirtualEndpoint) -> None:
        if self._endpoints.get(endpoint.local_address) is endpoint:
            del self._endpoints[endpoint.local_address]

    # -- the data path -------------------------------------------------------------------------

    def _normalize(self, host: str) -> tuple[int, str]:
        """``(family, compressed text without scope)`` of a numeric IP; ValueError otherwise."""
        cached = self._addresses.get(host)
        if cached is not None:
            return cached
        if not isinstance(host, str):
            raise ValueError(f"not an IP address: {host!r}")
        try:
            parsed = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            raise ValueError(f"not a numeric IP address: {host!r}") from None
        result = (
            (socket.AF_INET6, str(parsed))
            if isinstance(parsed, ipaddress.IPv6Address)
            else (socket.AF_INET, str(parsed))
        )
        if len(self._addresses) >= _ADDRESS_CACHE_LIMIT:
            self._addresses.clear()
        self._addresses[host] = result
        return result

    def _conditions_for(self, src: str, dst: str) -> LinkConditions:
        conditions = self._conditions
        for key in ((src, dst), (src, None), (None, dst)):
            found = conditions.get(key)
            if found is not None:
                return found
        return conditions[(None, None)]

    def _realm_of(self, ip: str) -> Nat | None:
        """The NAT whose private realm holds *ip*, if any."""
        try:
            return self._realm_cache[ip]
        except KeyError:
            pass
        found = next((nat for nat in self._nats if nat.contains(ip)), None)
        if len(self._realm_cache) >= _ADDRESS_CACHE_LIMIT:
            self._realm_cache.clear()
        self._realm_cache[ip] = found
        return found

    def _transmit(self, source: Address, data: bytes, destination: Address) -> None:
        stats = self.stats
        stats.sent += 1
        if self._nats:
            nat = self._realm_of(source[0])
            if nat is not None and not nat.contains(destination[0]):
                source = nat.translate_outbound(source, destination, trio.current_time())
        key = (source[0], destination[0])
        if key in self._blocked:
            stats.dropped_blocked += 1
            return
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = _LinkState(self._conditions_for(*key))
        now = trio.current_time()
        for arrival in _plan_delivery(link, self._rng, now, len(data), stats):
            if arrival <= now:
                # Zero delay: straight into the receive queue, no task switch.
                self._arrive(source, destination, data)
            else:
                link.in_flight += 1
                self._delay_line.push(arrival, (link, source, destination, data))

    def _deliver(self, delivery: _Delivery) -> None:
        link, source, destination, data = delivery
        link.in_flight -= 1
        if (source[0], destination[0]) in self._blocked:
            self.stats.dropped_blocked += 1
            return
        self._arrive(source, destination, data)

    def _arrive(self, source: Address, destination: Address, data: bytes) -> None:
        if self._nats:
            nat = self._nats_by_public.get(destination[0])
            if nat is not None:
                private = nat.translate_inbound(destination[1], source, trio.current_time())
                if private is None:
                    self.stats.dropped_nat += 1
                    return
                destination = private
            else:
                realm = self._realm_of(destination[0])
                if realm is not None and not realm.contains(source[0]):
                    # A private address is not routable from outside its realm.
                    self.stats.dropped_nat += 1
                    return
        endpoint = self._endpoints.get(destination)
        if endpoint is None:
            self.stats.dropped_no_endpoint += 1
        elif endpoint._enqueue(data, source):
            self.stats.delivered += 1
            if self.captured is not None:
                self.captured.append(
                    CapturedDatagram(trio.current_time(), source, destination, data)
                )
        else:
            self.stats.dropped_receive_buffer += 1


def virtual_network(
    *,
    seed: int = 0,
    loss: float = 0.0,
    delay: float = 0.0,
    jitter: float = 0.0,
    reorder: float = 0.0,
    reorder_delay: float = 0.02,
    duplicate: float = 0.0,
    rate: float | None = None,
    queue_limit: int = 1000,
    burst: BurstLoss | None = None,
    capture: bool = False,
) -> VirtualNetwork:
    """Shorthand: ``async with virtual_network(seed=1, loss=0.1, delay=0.05) as net:``."""
    return VirtualNetwork(
        seed=seed,
        conditions=LinkConditions(
            loss=loss,
            delay=delay,
            jitter=jitter,
            reorder=reorder,
            reorder_delay=reorder_delay,
            duplicate=duplicate,
            rate=rate,
            queue_limit=queue_limit,
            burst=burst,
        ),
        capture=capture,
    )
