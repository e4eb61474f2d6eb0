"""Server mode: every ICE transport of a process on one shared UDP port (issue 14).

A server that talks to thousands of peers wants one UDP port, not one per peer connection: one
firewall rule, one port to announce, one socket to read. ``async with open_shared_udp(host, port)
as server:`` binds that socket (one per listed local address) and runs its reader task in the
block's own nursery; peer connections built with ``RTCConfiguration(shared_udp=server)`` then
gather a host candidate on the shared port instead of opening sockets of their own. Leaving the
block closes the port; a peer connection still using it loses its endpoint (its ICE transport
sees the endpoint closed, as if its socket had been closed).

Each ICE transport gets a :class:`MuxEndpoint`: a virtual :class:`~trio_rtc.udp.UdpEndpoint`
whose receive queue the shared reader fills and whose sends go out on the shared socket, so the
transport's reader and sender run unmodified. Which endpoint a datagram belongs to is decided by
:class:`MuxRouter`, a sans-IO table (the approach of pion's UDPMux and of str0m servers):

* A STUN Binding **request** names its target in USERNAME, ``<local ufrag>:<remote ufrag>``
  (RFC 8445 §7.2.2): it goes to the endpoint that registered that local ufrag (its transport
  registers the ufrag of every ICE generation, so ICE restarts keep working). Its
  MESSAGE-INTEGRITY is checked there, by the owning transport's agent, not here.
* A STUN **response** goes to the endpoint that sent the request with that transaction ID.
* Everything else (DTLS, SRTP, STUN indications) goes by **source address**, and only to an
  endpoint whose agent has authenticated that address: an address is bound to an endpoint when
  its transport sends a Binding success response there (the agent answers only checks whose
  integrity it verified) or sends data there (the transport sends data only on a pair whose check
  an authenticated response confirmed). A datagram from any other address is dropped and counted,
  so a peer cannot reach another peer's connection by sending from an unchecked address, and a
  valid check cannot take over an address already bound to another live connection.

Every table is bounded: per endpoint a few ufrags and addresses (the oldest is forgotten first);
outstanding transactions globally (the oldest, long timed out, are forgotten first). Closing an
endpoint removes all of its entries.

An ICE-lite connection (``RTCConfiguration(ice_lite=True)``) needs nothing else here: it sends
no requests, but its agent answers authenticated checks, which binds the peer's address.

This is an opt-in mode for servers with a known address. The peers of a shared port must not
themselves share one socket between several connections to the same server port (two
connections with the same address pair cannot be told apart once checks are over).
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import struct
from collections.abc import AsyncIterator, Hashable, Sequence
from typing import Generic, TypeVar

import attrs
import trio

from ..udp import Address, UdpEndpoint, open_udp_endpoint

__all__ = [
    "MuxEndpoint",
    "MuxRouter",
    "MuxStats",
    "SharedUdp",
    "local_ufrag_untrusted",
    "open_shared_udp",
]

#: A server socket serves many peers: ask for larger kernel buffers than a per-pc socket's.
SHARED_BUFFER = 16 << 20
#: Datagrams queued for one endpoint before further ones are dropped (UDP semantics).
ENDPOINT_QUEUE_DEPTH = 1024
#: Datagrams one wake-up of the shared reader drains before it lets the endpoints run.
READ_BATCH = 256

_MAGIC_COOKIE = b"\x21\x12\xa4\x42"
_BINDING_REQUEST = 0x0001
_BINDING_SUCCESS = 0x0101
_ATTR_USERNAME = 0x0006
_HEADER = struct.Struct("!HH4s12s")
_ATTRIBUTE = struct.Struct("!HH")


def local_ufrag_untrusted(data: bytes | bytearray | memoryview) -> str | None:
    """The local ufrag a STUN Binding request is addressed to: the part of its USERNAME before
    the colon. None for anything that is not a well-formed Binding request with a USERNAME.

    Only the header and the attribute framing are read; integrity is the owning agent's job."""
    if len(data) < 20:
        return None
    message_type, length, cookie, _tid = _HEADER.unpack_from(data)
    if message_type != _BINDING_REQUEST or cookie != _MAGIC_COOKIE or length + 20 > len(data):
        return None
    offset, end = 20, 20 + length
    while offset + 4 <= end:
        attribute, size = _ATTRIBUTE.unpack_from(data, offset)
        offset += 4
        if offset + size > end:
            return None
        if attribute == _ATTR_USERNAME:
            username = bytes(data[offset : offset + size])
            local, colon, _remote = username.partition(b":")
            if not colon or not local:
                return None
            try:
                return local.decode()
            except UnicodeDecodeError:
                return None
        offset += (size + 3) & ~3
    return None


@attrs.define
class MuxStats:
    """Counters of one shared socket's router. Drops are counted here, never raised."""

    datagrams_routed: int = 0
    #: Binding requests naming a local ufrag no endpoint registered (or no USERNAME at all).
    dropped_unknown_ufrag: int = 0
    #: STUN responses whose transaction no endpoint sent.
    dropped_unknown_transaction: int = 0
    #: Other datagrams from an address no endpoint has authenticated.
    dropped_unknown_source: int = 0
    #: Datagrams dropped because the endpoint's queue was full.
    dropped_overflow: int = 0
    #: Authenticated addresses not bound because another live endpoint holds them.
    bind_conflicts: int = 0
    addresses_bound: int = 0
    #: Table entries forgotten to keep the tables bounded.
    evictions: int = 0


Owner = TypeVar("Owner", bound=Hashable)


class _Entries:
    """What one owner holds in the router's tables, for removal and per-owner bounds."""

    __slots__ = ("addresses", "ufrags")

    def __init__(self) -> None:
        self.ufrags: collections.deque[str] = collections.deque()
        self.addresses: dict[Address, None] = {}


class MuxRouter(Generic[Owner]):
    """The sans-IO routing table of one shared socket: which owner (endpoint) a datagram from
    the network belongs to, learned from what the owners send. See the module docstring."""

    def __init__(
        self,
        *,
        max_ufrags_per_owner: int = 4,
        max_addresses_per_owner: int = 16,
        max_transactions: int = 65536,
    ) -> None:
        self.max_ufrags_per_owner = max_ufrags_per_owner
        self.max_addresses_per_owner = max_addresses_per_owner
        self.max_transactions = max_transactions
        self.stats = MuxStats()
        self._owners: dict[Owner, _Entries] = {}
        self._by_ufrag: dict[str, Owner] = {}
        self._by_address: dict[Address, Owner] = {}
        self._by_transaction: dict[bytes, Owner] = {}

    def __len__(self) -> int:
        return len(self._owners)

    @property
    def table_sizes(self) -> tuple[int, int, int]:
        """(ufrags, addresses, transactions) currently held, for tests and monitoring."""
        return len(self._by_ufrag), len(self._by_address), len(self._by_transaction)

    def owner_for_ufrag(self, ufrag: str) -> Owner | None:
        return self._by_ufrag.get(ufrag)

    def owner_for_address(self, address: Address) -> Owner | None:
        return self._by_address.get(address)

    def add_owner(self, owner: Owner) -> None:
        self._owners.setdefault(owner, _Entries())

    def remove_owner(self, owner: Owner) -> None:
        """Forget everything ``owner`` registered or bound (its transactions go lazily)."""
        entries = self._owners.pop(owner, None)
        if entries is None:
            return
        for ufrag in entries.ufrags:
            if self._by_ufrag.get(ufrag) is owner:
                del self._by_ufrag[ufrag]
        for address in entries.addresses:
            if self._by_address.get(address) is owner:
                del self._by_address[address]

    def add_ufrag(self, owner: Owner, ufrag: str) -> None:
        """Route Binding requests for local ufrag ``ufrag`` to ``owner``. The first owner to
        register a ufrag keeps it (ufrags are random; a collision is refused, not stolen)."""
        entries = self._owners.get(owner)
        if entries is None or ufrag in entries.ufrags:
            return
        if self._by_ufrag.setdefault(ufrag, owner) is not owner:
            return
        entries.ufrags.append(ufrag)
        if len(entries.ufrags) > self.max_ufrags_per_owner:
            old = entries.ufrags.popleft()
            if self._by_ufrag.get(old) is owner:
                del self._by_ufrag[old]
            self.stats.evictions += 1

    def route_untrusted(self, data: bytes, source: Address) -> Owner | None:
        """The owner of a datagram received from ``source``, or None (dropped and counted)."""
        stats = self.stats
        if data and data[0] < 4 and len(data) >= 20:
            # STUN (RFC 7983: first byte 0..3). The class bits: C1 is 0x0100, C0 is 0x0010.
            message_class = ((data[0] & 0x01) << 1) | ((data[1] & 0x10) >> 4)
            if message_class == 0:
                ufrag = local_ufrag_untrusted(data)
                owner = self._by_ufrag.get(ufrag) if ufrag is not None else None
                if owner is None:
                    stats.dropped_unknown_ufrag += 1
                    return None
                stats.datagrams_routed += 1
                return owner
            if message_class >= 2:
                owner = self._by_transaction.pop(data[8:20], None)
                if owner is None or owner not in self._owners:
                    stats.dropped_unknown_transaction += 1
                    return None
                stats.datagrams_routed += 1
                return owner
        owner = self._by_address.get(source)
        if owner is None:
            stats.dropped_unknown_source += 1
            return None
        stats.datagrams_routed += 1
        return owner

    def on_send(
        self, owner: Owner, data: bytes | bytearray | memoryview, destination: Address
    ) -> None:
        """Learn from a datagram ``owner`` sends to ``destination`` (see the module docstring)."""
        if not data:
            return
        if data[0] >= 4:
            # Data goes only to an address the owner's agent authenticated.
            if self._by_address.get(destination) is not owner:
                self._bind(owner, destination)
            return
        if len(data) < 20:
            return
        message_type = (data[0] << 8) | data[1]
        if message_type & 0x0110 == 0:
            # A request: its response comes back with the same transaction ID.
            transactions = self._by_transaction
            transactions[bytes(data[8:20])] = owner
            if len(transactions) > self.max_transactions:
                del transactions[next(iter(transactions))]
                self.stats.evictions += 1
        elif message_type == _BINDING_SUCCESS:
            # The agent answers only a check whose MESSAGE-INTEGRITY it verified.
            self._bind(owner, destination)

    def _bind(self, owner: Owner, address: Address) -> None:
        current = self._by_address.get(address)
        if current is owner:
            return
        if current is not None and current in self._owners:
            self.stats.bind_conflicts += 1
            return
        entries = self._owners.get(owner)
        if entries is None:
            return
        self._by_address[address] = owner
        entries.addresses[address] = None
        self.stats.addresses_bound += 1
        if len(entries.addresses) > self.max_addresses_per_owner:
            old = next(iter(entries.addresses))
            del entries.addresses[old]
            if self._by_address.get(old) is owner:
                del self._by_address[old]
            self.stats.evictions += 1


class MuxEndpoint(UdpEndpoint):
    """One ICE transport's view of a shared socket: a :class:`~trio_rtc.udp.UdpEndpoint` whose
    receive queue the shared reader fills and whose sends go out on the shared socket."""

    def __init__(self, shared: _SharedSocket) -> None:
        super().__init__()
        self._shared = shared
        self._queue: collections.deque[tuple[bytes, Address]] = collections.deque()
        self._lot = trio.lowlevel.ParkingLot()
        self._closed = False

    @property
    def local_address(self) -> Address:
        return self._shared.endpoint.local_address

    @property
    def family(self) -> int:
        return self._shared.endpoint.family

    @property
    def receive_buffer_size(self) -> int:
        return self._shared.endpoint.receive_buffer_size

    @property
    def send_buffer_size(self) -> int:
        return self._shared.endpoint.send_buffer_size

    @property
    def closed(self) -> bool:
        return self._closed

    def add_local_ufrag(self, ufrag: str) -> None:
        """Route Binding requests for ``ufrag`` here (called for each ICE generation)."""
        if not self._closed:
            self._shared.router.add_ufrag(self, ufrag)

    async def wait_readable(self) -> None:
        if not self._closed and not self._queue:
            await self._lot.park()
        else:
            await trio.lowlevel.checkpoint()
        if self._closed:
            raise trio.ClosedResourceError("the shared UDP endpoint is closed")

    def recv_batch_nowait(self, max_count: int = 64) -> list[tuple[bytes, Address]]:
        if self._closed:
            raise trio.ClosedResourceError("the shared UDP endpoint is closed")
        queue = self._queue
        if len(queue) <= max_count:
            batch = list(queue)
            queue.clear()
        else:
            batch = [queue.popleft() for _ in range(max_count)]
        stats = self.stats
        stats.datagrams_received += len(batch)
        stats.bytes_received += sum(len(data) for data, _ in batch)
        return batch

    def _push(self, data: bytes, source: Address) -> bool:
        """Queue a datagram; True if the queue was empty (the owner needs a wake-up)."""
        queue = self._queue
        if len(queue) >= ENDPOINT_QUEUE_DEPTH:
            self.stats.receive_drops += 1
            self._shared.router.stats.dropped_overflow += 1
            return False
        queue.append((data, source))
        return len(queue) == 1

    def _wake(self) -> None:
        if self._lot:
            self._lot.unpark_all()

    def send_nowait(self, data: bytes | bytearray | memoryview, address: Address) -> bool:
        if self._closed:
            raise trio.ClosedResourceError("the shared UDP endpoint is closed")
        if not self._shared.endpoint.send_nowait(data, address):
            self.stats.send_drops += 1
            return False
        # After the send: nothing can arrive in between (no checkpoint), and a datagram that was
        # refused (a bad address) teaches the router nothing.
        self._shared.router.on_send(self, data, address)
        self.stats.datagrams_sent += 1
        self.stats.bytes_sent += len(data)
        return True

    def send_many_nowait(self, datagrams: list[bytes], address: Address) -> tuple[int, int]:
        if self._closed:
            raise trio.ClosedResourceError("the shared UDP endpoint is closed")
        sent, size = self._shared.endpoint.send_many_nowait(datagrams, address)
        on_send = self._shared.router.on_send
        for data in datagrams:
            on_send(self, data, address)
        stats = self.stats
        stats.send_drops += len(datagrams) - sent
        stats.datagrams_sent += sent
        stats.bytes_sent += size
        return sent, size

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._shared.remove(self)
        self._lot.unpark_all()

    def __repr__(self) -> str:
        host, port = self.local_address
        state = "closed" if self._closed else "open"
        return f"<MuxEndpoint {host}:{port} {state}>"


class _SharedSocket:
    """One bound socket, its router and the endpoints it feeds."""

    def __init__(self, endpoint: UdpEndpoint, router: MuxRouter[MuxEndpoint]) -> None:
        self.endpoint = endpoint
        self.router = router
        self.endpoints: set[MuxEndpoint] = set()

    def remove(self, endpoint: MuxEndpoint) -> None:
        self.endpoints.discard(endpoint)
        self.router.remove_owner(endpoint)

    async def read(self) -> None:
        """The reader task: wait once, drain, route, wake the endpoints that got something."""
        endpoint = self.endpoint
        route = self.router.route_untrusted
        try:
            while True:
                await endpoint.wait_readable()
                woken: list[MuxEndpoint] = []
                for data, source in endpoint.recv_batch_nowait(READ_BATCH):
                    owner = route(data, source)
                    if owner is not None and owner._push(data, source):
                        woken.append(owner)
                for owner in woken:
                    owner._wake()
        except trio.ClosedResourceError:
            return


class SharedUdp:
    """The server object of :func:`open_shared_udp`: pass it as
    ``RTCConfiguration(shared_udp=server)`` (or ``IceTransportOptions(shared_udp=server)``)."""

    def __init__(self, sockets: list[_SharedSocket]) -> None:
        self._sockets = sockets
        self._closed = False

    @property
    def local_addresses(self) -> list[Address]:
        """The bound ``(ip, port)`` of each shared socket: the host candidates of every pc."""
        return [shared.endpoint.local_address for shared in self._sockets]

    @property
    def hosts(self) -> list[str]:
        return [address[0] for address in self.local_addresses]

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def endpoint_count(self) -> int:
        """Endpoints (one per ICE transport and local address) currently open."""
        return sum(len(shared.endpoints) for shared in self._sockets)

    @property
    def stats(self) -> list[MuxStats]:
        """The router's counters, one per shared socket (in ``local_addresses`` order)."""
        return [shared.router.stats for shared in self._sockets]

    def routers(self) -> list[MuxRouter[MuxEndpoint]]:
        return [shared.router for shared in self._sockets]

    async def open_endpoint(self, host: str, local_ufrag: str) -> MuxEndpoint:
        """A new endpoint on the shared socket bound to ``host``, receiving the Binding
        requests for ``local_ufrag`` (more with :meth:`MuxEndpoint.add_local_ufrag`)."""
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise OSError(f"the shared UDP port on {host} is closed")
        for shared in self._sockets:
            if shared.endpoint.local_address[0] == host:
                endpoint = MuxEndpoint(shared)
                shared.endpoints.add(endpoint)
                shared.router.add_owner(endpoint)
                shared.router.add_ufrag(endpoint, local_ufrag)
                return endpoint
        raise OSError(f"no shared UDP socket on {host}; shared: {self.hosts}")

    def close(self) -> None:
        """Close every endpoint and socket. Idempotent; leaving the ``async with`` does it."""
        self._closed = True
        for shared in self._sockets:
            for endpoint in list(shared.endpoints):
                endpoint.close()
            shared.endpoint.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self.endpoint_count} endpoints"
        return f"<SharedUdp {self.local_addresses} {state}>"


def _check_host(host: str) -> None:
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        raise ValueError(f"shared UDP host {host!r} is not a numeric IP address") from None
    if address.is_unspecified:
        raise ValueError(
            f"shared UDP host {host!r} is a wildcard address; list the addresses peers reach "
            "the server at (they become the host candidates)"
        )


@contextlib.asynccontextmanager
async def open_shared_udp(
    hosts: str | Sequence[str],
    port: int = 0,
    *,
    receive_buffer: int = SHARED_BUFFER,
    send_buffer: int = SHARED_BUFFER,
    max_transactions: int = 65536,
) -> AsyncIterator[SharedUdp]:
    """Bind one shared UDP socket on each of ``hosts`` (numeric addresses, no wildcard) at
    ``port`` (0: a free port each) and run their reader tasks until the block ends.

    ``async with open_shared_udp("203.0.113.5", 3478) as server:`` then
    ``RTCPeerConnection(RTCConfiguration(shared_udp=server))`` for each peer. Leaving the block
    closes the sockets; peer connections should be closed first (a pc still open loses its
    endpoint). Binding errors raise :class:`OSError` here, before any pc uses the port."""
    host_list = [hosts] if isinstance(hosts, str) else list(hosts)
    if not host_list:
        raise ValueError("open_shared_udp needs at least one local address")
    for host in host_list:
        _check_host(host)
    sockets: list[_SharedSocket] = []
    server = SharedUdp(sockets)
    try:
        for host in host_list:
            endpoint = await open_udp_endpoint(
                host, port, receive_buffer=receive_buffer, send_buffer=send_buffer
            )
            sockets.append(_SharedSocket(endpoint, MuxRouter(max_transactions=max_transactions)))
        async with trio.open_nursery() as nursery:
            for shared in sockets:
                nursery.start_soon(shared.read, name=f"trio_rtc.shared_udp {shared.endpoint}")
            try:
                yield server
            finally:
                server.close()  # the readers see their socket closed and return
                nursery.cancel_scope.cancel()
    finally:
        server.close()
