"""A trio driver for one :class:`TurnClient`, over UDP, TCP or TLS to the server.

    async with open_turn_allocation(server, username, password) as allocation:
        allocation.relayed_address
        await allocation.create_permission(peer_ip)   # or bind_channel(peer)
        allocation.send_to(peer, b"data")
        peer, data = await allocation.receive()

Over UDP one task owns the core: it waits for the endpoint to become readable or for the core's
next deadline, drains every queued datagram, fires timers and forwards what the core produced.
Over TCP or TLS (``transport="tcp"`` / ``"tls"``, RFC 8656 §3.1) three tasks share it: a reader
that cuts the stream into messages (:class:`~trio_rtc.turn.channel.StreamFramer`), a writer
that sends what the core produced (a bounded queue: what does not fit is dropped and counted,
as UDP would lose it) and a timer. User calls run the core directly (the core never blocks) and
move the timer's deadline. Leaving the block deallocates (Refresh with LIFETIME 0, bounded by
``close_timeout``) and closes the socket or connection. The relay itself is UDP whatever the
transport to the server (REQUESTED-TRANSPORT 17).
"""

from __future__ import annotations

import math
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal

import trio

from ..stun import Address
from ..udp import UdpEndpoint, open_udp_endpoint
from .channel import StreamFramer, TurnError
from .client import TurnClient
from .events import (
    Allocated,
    AllocationClosed,
    AllocationFailed,
    ChannelBindFailed,
    ChannelBound,
    DataReceived,
    PermissionCreated,
    PermissionFailed,
    TurnEvent,
)

__all__ = ["TurnAllocation", "TurnAllocationError", "open_turn_allocation"]

MAX_PENDING_EVENTS = 64
#: Messages queued for the writer of a TCP or TLS connection before more are dropped.
MAX_STREAM_QUEUE = 1024
#: Bytes read from a TCP or TLS connection at a time.
STREAM_READ_SIZE = 65536

TurnTransport = Literal["udp", "tcp", "tls"]


class TurnAllocationError(Exception):
    """The allocation (or one permission or channel) failed; ``code`` is the STUN error code,
    None for a timeout."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"TURN error {code}: {reason}" if code is not None else reason)
        self.code = code
        self.reason = reason


class TurnAllocation:
    """A live allocation. Made by :func:`open_turn_allocation`."""

    def __init__(
        self,
        client: TurnClient,
        endpoint: UdpEndpoint | None,
        max_buffered: int,
        transport: TurnTransport = "udp",
    ) -> None:
        self.client = client
        self.endpoint = endpoint
        self.transport: TurnTransport = transport
        """How the server is reached: ``"udp"``, ``"tcp"`` or ``"tls"``."""
        self.dropped_data = 0
        """Relayed datagrams dropped because ``receive()`` did not keep up."""
        self.dropped_sends = 0
        """Messages to the server dropped because its TCP or TLS connection did not keep up."""
        self._stream_send: trio.MemorySendChannel[bytes] | None = None
        self._data_send, self._data_receive = trio.open_memory_channel[DataReceived](max_buffered)
        self._events: list[TurnEvent] = []
        self._changed = trio.Event()
        self._sleep = trio.CancelScope()

    @property
    def relayed_address(self) -> Address:
        address = self.client.relayed_address
        if address is None:
            raise TurnAllocationError(None, "no allocation")
        return address

    @property
    def mapped_address(self) -> Address | None:
        return self.client.mapped_address

    def send_to(self, peer: Address, data: bytes) -> None:
        """Relay ``data`` to ``peer`` (never waits; UDP semantics)."""
        self.client.send_to(peer, data, trio.current_time())
        self._flush()

    async def receive(self) -> tuple[Address, bytes]:
        """The next datagram a peer sent to the relayed address. Raises
        :class:`TurnAllocationError` once the allocation ended (failed, expired, or its TCP or
        TLS connection closed)."""
        try:
            event = await self._data_receive.receive()
        except trio.EndOfChannel:
            raise TurnAllocationError(None, "the allocation ended") from None
        return event.peer, event.data

    def bind_channel_nowait(self, peer: Address) -> None:
        """Start binding a channel to ``peer`` without waiting for the answer (the data sent
        meanwhile goes in Send indications)."""
        self.client.bind_channel(peer, trio.current_time())
        self._flush()

    async def create_permission(self, peer_ip: str) -> None:
        """Install a permission for ``peer_ip`` and wait for the server to confirm it."""
        self.client.create_permission(peer_ip, trio.current_time())
        self._flush()
        if self.client.has_permission(peer_ip):
            return
        event = await self._wait_for(
            lambda e: isinstance(e, PermissionCreated | PermissionFailed) and e.peer_ip == peer_ip
        )
        if isinstance(event, PermissionFailed):
            raise TurnAllocationError(event.code, event.reason)

    async def bind_channel(self, peer: Address) -> int:
        """Bind a channel to ``peer`` and wait for the server to confirm it; returns its number."""
        number = self.client.bind_channel(peer, trio.current_time())
        self._flush()
        if self.client.channel_for(peer) is not None:
            return number
        event = await self._wait_for(
            lambda e: isinstance(e, ChannelBound | ChannelBindFailed) and e.channel == number
        )
        if isinstance(event, ChannelBindFailed):
            raise TurnAllocationError(event.code, event.reason)
        return number

    async def _wait_for(self, predicate: Callable[[TurnEvent], bool]) -> TurnEvent:
        while True:
            for index, event in enumerate(self._events):
                if predicate(event):
                    return self._events.pop(index)
                if isinstance(event, AllocationFailed):
                    raise TurnAllocationError(event.code, event.reason)
                if isinstance(event, AllocationClosed):
                    raise TurnAllocationError(None, "allocation closed")
            await self._changed.wait()

    def _flush(self) -> None:
        datagrams = self.client.datagrams_to_send(trio.current_time())
        if datagrams:
            if self.endpoint is not None:
                self.endpoint.send_many_nowait(datagrams, self.client.server)
            elif self._stream_send is not None:
                for message in datagrams:
                    try:
                        self._stream_send.send_nowait(message)
                    except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                        self.dropped_sends += 1
        changed = False
        while (event := self.client.next_event()) is not None:
            if isinstance(event, DataReceived):
                try:
                    self._data_send.send_nowait(event)
                except (trio.WouldBlock, trio.ClosedResourceError):
                    self.dropped_data += 1
            else:
                if isinstance(event, AllocationFailed | AllocationClosed):
                    # Nothing more will be relayed: receive() ends once it drained the rest.
                    self._data_send.close()
                self._events.append(event)
                # Events nobody waits for (refreshes, permissions send_to asked for) must not
                # pile up over a long-lived allocation: keep the most recent ones only.
                if len(self._events) > MAX_PENDING_EVENTS:
                    del self._events[0]
                changed = True
        if changed:
            self._changed.set()
            self._changed = trio.Event()
        deadline = self.client.get_timer()
        self._sleep.deadline = math.inf if deadline is None else deadline

    async def _release(self, patience: float) -> None:
        """Deallocate (Refresh with LIFETIME 0), waiting at most ``patience`` seconds for the answer."""
        with trio.move_on_after(patience, shield=True):
            self.client.close(trio.current_time())
            self._flush()
            try:
                await self._wait_for(lambda e: isinstance(e, AllocationClosed))
            except TurnAllocationError:
                pass  # already failed or closed: nothing left to release

    async def _run(self) -> None:
        assert self.endpoint is not None
        while True:
            deadline = self.client.get_timer()
            with trio.CancelScope(deadline=math.inf if deadline is None else deadline) as scope:
                self._sleep = scope
                await self.endpoint.wait_readable()
            now = trio.current_time()
            while batch := self.endpoint.recv_batch_nowait():
                for data, source in batch:
                    self.client.receive_datagram(data, source, now)
            deadline = self.client.get_timer()
            if deadline is not None and now >= deadline:
                self.client.handle_timer(now)
            self._flush()

    # --- over TCP or TLS ----------------------------------------------------------------------

    async def _read_stream(self, stream: trio.abc.ReceiveStream) -> None:
        framer = StreamFramer()
        reason = "the TURN server closed the connection"
        try:
            while data := await stream.receive_some(STREAM_READ_SIZE):
                now = trio.current_time()
                for message in framer.feed(data):
                    self.client.receive_datagram(message, self.client.server, now)
                self._flush()
        except TurnError as exc:
            reason = f"the TURN server sent a malformed stream: {exc}"
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            reason = f"the connection to the TURN server broke: {exc}"
        self.client.connection_lost(reason)
        self._flush()

    async def _write_stream(
        self, stream: trio.abc.SendStream, queue: trio.MemoryReceiveChannel[bytes]
    ) -> None:
        try:
            async for first in queue:
                batch = [first]
                while True:
                    try:
                        batch.append(queue.receive_nowait())
                    except trio.WouldBlock:
                        break
                await stream.send_all(b"".join(batch))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.client.connection_lost(f"the connection to the TURN server broke: {exc}")
            self._flush()

    async def _stream_timers(self) -> None:
        while True:
            deadline = self.client.get_timer()
            with trio.CancelScope(deadline=math.inf if deadline is None else deadline) as scope:
                self._sleep = scope
                await trio.sleep_forever()
            now = trio.current_time()
            deadline = self.client.get_timer()
            if deadline is not None and now >= deadline:
                self.client.handle_timer(now)
            self._flush()


async def _connect(
    transport: TurnTransport,
    server: Address,
    local_host: str | None,
    server_name: str | None,
    ssl_context: ssl.SSLContext | None,
) -> trio.abc.Stream:
    """The TCP connection to ``server`` (from ``local_host`` when given), wrapped in TLS for
    ``"tls"``: the certificate is checked against ``server_name`` (the URL's host) with
    ``ssl_context`` (default: the system's trusted roots), as a browser does."""
    tcp = await trio.open_tcp_stream(server[0], server[1], local_address=local_host)
    if transport == "tcp":
        return tcp
    context = ssl_context if ssl_context is not None else ssl.create_default_context()
    tls = trio.SSLStream(tcp, context, server_hostname=server_name or server[0])
    try:
        await tls.do_handshake()
    except BaseException:
        await trio.aclose_forcefully(tcp)
        raise
    return tls


@asynccontextmanager
async def open_turn_allocation(
    server: Address,
    username: str,
    password: str,
    *,
    local_host: str | None = None,
    lifetime: int | None = None,
    max_buffered: int = 256,
    close_timeout: float = 1.0,
    transport: TurnTransport = "udp",
    server_name: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    bind_channels: bool = False,
    address_family: Literal[4, 6] | None = None,
) -> AsyncIterator[TurnAllocation]:
    """Allocate on ``server`` (long-term credentials); deallocate when the block is left.

    ``transport``: how the server is reached, ``"udp"`` (``turn:``), ``"tcp"``
    (``turn:…?transport=tcp``) or ``"tls"`` (``turns:``; ``server_name`` is the host the
    certificate must name, ``ssl_context`` the trust to check it with). ``bind_channels`` and
    ``address_family`` (of the relayed address): see :class:`TurnClient`.

    Raises :class:`TurnAllocationError` when the Allocate fails (401 for wrong credentials,
    None as the code after 39.5 s without an answer), ``OSError`` when no TCP connection can be
    made, ``trio.BrokenResourceError`` when the TLS handshake fails (an untrusted certificate,
    say). ``local_host`` defaults to the wildcard address of the server's family (UDP) or to
    the system's choice (TCP, TLS).
    """
    if transport not in ("udp", "tcp", "tls"):
        raise ValueError(f"transport must be 'udp', 'tcp' or 'tls', not {transport!r}")
    if transport == "udp":
        host = local_host if local_host is not None else ("::" if ":" in server[0] else "0.0.0.0")
        with await open_udp_endpoint(host) as endpoint:
            client = TurnClient(
                server,
                username,
                password,
                lifetime=lifetime,
                bind_channels=bind_channels,
                address_family=address_family,
            )
            allocation = TurnAllocation(client, endpoint, max_buffered)
            async with _hold(allocation, allocation._run, close_timeout) as held:
                yield held
        return
    stream = await _connect(transport, server, local_host, server_name, ssl_context)
    try:
        client = TurnClient(
            server,
            username,
            password,
            lifetime=lifetime,
            reliable=True,
            bind_channels=bind_channels,
            address_family=address_family,
        )
        allocation = TurnAllocation(client, None, max_buffered, transport)
        queue_send, queue_receive = trio.open_memory_channel[bytes](MAX_STREAM_QUEUE)
        allocation._stream_send = queue_send

        async def run_stream() -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(allocation._read_stream, stream)
                nursery.start_soon(allocation._write_stream, stream, queue_receive)
                await allocation._stream_timers()

        async with _hold(allocation, run_stream, close_timeout) as held:
            yield held
    finally:
        await trio.aclose_forcefully(stream)


@asynccontextmanager
async def _hold(
    allocation: TurnAllocation,
    run: Callable[[], Awaitable[None]],
    close_timeout: float,
) -> AsyncIterator[TurnAllocation]:
    """Run the allocation's tasks, allocate, yield, deallocate."""
    client = allocation.client
    # Errors of the Allocate and of the user's block leave the nursery (and so any exception
    # group) before being raised, so callers can catch TurnAllocationError.
    error: Exception | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        try:
            client.allocate(trio.current_time())
            allocation._flush()
            await allocation._wait_for(lambda e: isinstance(e, Allocated))
            try:
                yield allocation
            finally:
                await allocation._release(close_timeout)
        except Exception as exc:
            error = exc
        nursery.cancel_scope.cancel()
    if error is not None:
        raise error
