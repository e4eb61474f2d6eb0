"""What the components' memory channels carry: batches.

Every link between two component tasks is a ``trio`` memory channel whose items are *lists* of
datagrams (or records, or packets): the task that produces them drains its source (a socket, a
core) and hands the whole burst on with one ``send_nowait``; the task that consumes them takes
the first with ``await receive()`` and the rest with ``receive_nowait()``. A hop between tasks
costs a few microseconds here whatever the batch holds, so bulk transfers pay it per burst, not
per datagram.

A channel may have several senders (a lower layer delivering what it received, an upper layer
handing over what to send); the item's type says which: a plain ``list`` is received data,
:class:`Outgoing` is data to send. ``None`` says that the layer below ended (its transport closed
or failed): the channel itself stays open while other senders still hold clones of it.

:class:`BatchReceiveChannel` gives a standalone user (a test, a program using one transport on
its own) the same channel one item at a time, as a ``trio.abc.ReceiveChannel``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

import trio

__all__ = ["Batch", "BatchReceiveChannel", "Outgoing", "WakeTimer", "ended_batch_channel"]

T = TypeVar("T")

#: A batch of received datagrams; ``None`` marks the end of the layer below.
Batch = list[bytes]


class Outgoing(list[bytes]):
    """A batch of payloads for a layer to protect and send (SCTP packets for DTLS)."""

    __slots__ = ()


class BatchReceiveChannel(trio.abc.ReceiveChannel[T], Generic[T]):
    """A channel of batches (``list[T]``, ``None`` for the end) read one item at a time.

    ``receive()`` returns the next item and raises ``trio.EndOfChannel`` after the end marker
    (or once every sender closed); ``receive_batch()`` returns everything queued as one list.
    """

    def __init__(self, channel: trio.MemoryReceiveChannel[list[T] | None]) -> None:
        self._channel = channel
        self._items: deque[T] = deque()
        self._ended = False

    def _take(self, batch: list[T] | None) -> None:
        if batch is None:
            self._ended = True
        elif not self._ended:
            self._items.extend(batch)

    def receive_nowait(self) -> T:
        while not self._items and not self._ended:
            try:
                self._take(self._channel.receive_nowait())
            except trio.EndOfChannel:
                self._ended = True
        if self._items:
            return self._items.popleft()
        raise trio.EndOfChannel

    async def receive(self) -> T:
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._items and not self._ended:
            try:
                self._take(await self._channel.receive())
            except trio.EndOfChannel:
                self._ended = True
        if self._items:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return self._items.popleft()
        raise trio.EndOfChannel

    async def receive_batch(self) -> list[T]:
        """Everything queued (waiting for at least one item); EndOfChannel after the end."""
        first = await self.receive()
        items = [first, *self._items]
        self._items.clear()
        while not self._ended:
            try:
                self._take(self._channel.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        items.extend(self._items)
        self._items.clear()
        return items

    def take_queued(self) -> list[list[T] | None]:
        """Everything not read yet, without waiting, as batches in order (the end marker
        included): for handing a channel's backlog over to another consumer."""
        queued: list[list[T] | None] = []
        if self._items:
            queued.append(list(self._items))
            self._items.clear()
        while True:
            try:
                queued.append(self._channel.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return queued

    def close(self) -> None:
        self._channel.close()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()


def ended_batch_channel() -> BatchReceiveChannel[bytes]:
    """A channel that has ended: what a transport hands out for a stream a layer above took
    over (reading it raises ``trio.EndOfChannel``)."""
    send, receive = trio.open_memory_channel[Batch | None](0)
    send.close()
    return BatchReceiveChannel(receive)


class WakeTimer:
    """Wakes a component's task at its core's next deadline, so the task's loop waits on its
    inbox alone instead of entering a cancel scope for every wait (a scope costs about 3 µs;
    a data channel's round trip wakes the SCTP tasks three times).

    :meth:`run` is a child task of the component; it calls ``wake`` (which puts a marker on
    the component's inbox) when the armed deadline passes. :meth:`arm`, after each wake-up of
    the component, makes the timer fire no later than ``deadline``: an earlier deadline moves
    the timer (one assignment), a slightly later one is left for the next firing, which finds
    nothing due and re-arms — cores push their deadlines later far more often than earlier (a
    retransmission timer restarted by every acknowledgement). A deadline more than
    :data:`LATER_SLACK` later (or none) moves the timer too: an idle connection whose
    retransmission timer stopped would otherwise wake once for nothing after every message, and
    a timer firing in Trio is a Cancelled exception raised and caught (tens of microseconds,
    which thousands of quiet connections in one process pay every second).
    """

    __slots__ = ("_armed", "_scope", "_wake")

    #: Seconds a new deadline may lie beyond the armed one before the timer is moved later.
    LATER_SLACK = 1.0

    def __init__(self, wake: Callable[[], object]) -> None:
        self._wake = wake
        self._armed = math.inf
        self._scope: trio.CancelScope | None = None

    def arm(self, deadline: float | None) -> None:
        armed = self._armed
        if deadline is None:
            deadline = math.inf
        if deadline < armed or deadline - armed > self.LATER_SLACK:
            self._armed = deadline
            if self._scope is not None:
                self._scope.deadline = deadline

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        del task_status  # it keeps the nursery start() made; this task lives as long as ours
        while True:
            with trio.CancelScope(deadline=self._armed) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            self._armed = math.inf
            self._wake()
