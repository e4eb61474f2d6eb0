"""A trio driver for one :class:`TurnClient` over one UDP endpoint.

    async with open_turn_allocation(server, username, password) as allocation:
        allocation.relayed_address
        await allocation.create_permission(peer_ip)   # or bind_channel(peer)
        allocation.send_to(peer, b"data")
        peer, data = await allocation.receive()

One task owns the core: it waits for the endpoint to become readable or for the core's next
deadline, drains every queued datagram, fires timers and forwards what the core produced. User
calls run the core directly (the core never blocks) and move the task's deadline. Leaving the
block deallocates (Refresh with LIFETIME 0, bounded by ``close_timeout``) and closes the socket.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

from ..stun import Address
from ..udp import UdpEndpoint, open_udp_endpoint
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


class TurnAllocationError(Exception):
    """The allocation (or one permission or channel) failed; ``code`` is the STUN error code,
    None for a timeout."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"TURN error {code}: {reason}" if code is not None else reason)
        self.code = code
        self.reason = reason


class TurnAllocation:
    """A live allocation. Made by :func:`open_turn_allocation`."""

    def __init__(self, client: TurnClient, endpoint: UdpEndpoint, max_buffered: int) -> None:
        self.client = client
        self.endpoint = endpoint
        self.dropped_data = 0
        """Relayed datagrams dropped because ``receive()`` did not keep up."""
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
        """The next datagram a peer sent to the relayed address."""
        event = await self._data_receive.receive()
        return event.peer, event.data

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
            self.endpoint.send_many_nowait(datagrams, self.client.server)
        changed = False
        while (event := self.client.next_event()) is not None:
            if isinstance(event, DataReceived):
                try:
                    self._data_send.send_nowait(event)
                except trio.WouldBlock:
                    self.dropped_data += 1
            else:
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
) -> AsyncIterator[TurnAllocation]:
    """Allocate on ``server`` (UDP, long-term credentials); deallocate when the block is left.

    Raises :class:`TurnAllocationError` when the Allocate fails (401 for wrong credentials,
    None as the code after 39.5 s without an answer). ``local_host`` defaults to the wildcard
    address of the server's family.
    """
    host = local_host if local_host is not None else ("::" if ":" in server[0] else "0.0.0.0")
    with await open_udp_endpoint(host) as endpoint:
        client = TurnClient(server, username, password, lifetime=lifetime)
        allocation = TurnAllocation(client, endpoint, max_buffered)
        # Errors of the Allocate and of the user's block leave the nursery (and so any
        # exception group) before being raised, so callers can catch TurnAllocationError.
        error: Exception | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(allocation._run)
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
