"""Sans-IO TURN client core (RFC 8656) to one server, long-term credentials, over UDP or (with
``reliable=True``) over a TCP or TLS connection whose framing the driver does.

The core never awaits, never reads a clock and never opens a socket. A driver feeds it:

- ``receive_datagram(data, source, now)``: every datagram from the server's address;
- ``handle_timer(now)``: once ``now >= get_timer()``;
- calls from the user: ``allocate``, ``create_permission``, ``bind_channel``, ``send_to``,
  ``close``;

and drains ``datagrams_to_send(now)`` (all to ``server``) and ``next_event()`` after each call.
See ``docs/turn.md``.
"""

from __future__ import annotations

import collections
import enum
from typing import Literal

import attrs

from ..stun import (
    Address,
    Attr,
    MessageClass,
    Method,
    RetransmissionSchedule,
    StunError,
    StunMessage,
    is_stun_untrusted,
    long_term_key,
    parse_message_untrusted,
)
from .channel import (
    CHANNEL_MAX,
    CHANNEL_MIN,
    TurnError,
    encode_channel_data,
    is_channel_data_untrusted,
    parse_channel_data_untrusted,
)
from .events import (
    Allocated,
    AllocationClosed,
    AllocationFailed,
    AllocationRefreshed,
    ChannelBindFailed,
    ChannelBound,
    DataReceived,
    PermissionCreated,
    PermissionFailed,
    TurnEvent,
)

__all__ = ["TurnClient", "TurnState", "TurnStats", "TurnUsageError"]

UDP_TRANSPORT = 17  # REQUESTED-TRANSPORT value: the IANA protocol number of UDP (RFC 8656 §18.7)
# RFC 8656 §9: a permission lives 300 s, a channel binding 600 s; refresh well before, so one
# lost refresh and its retransmissions still land in time.
PERMISSION_REFRESH = 240.0
CHANNEL_REFRESH = 540.0
# Refresh the allocation this long before it expires (RFC 8656 §8 leaves the margin to us);
# allocations shorter than twice the margin are refreshed at half their lifetime.
REFRESH_MARGIN = 60.0
# How many 438 Stale Nonce answers one request may get before the server is deemed broken.
MAX_STALE_NONCE_RETRIES = 3
#: Relayed-data events held for a caller that has not drained them (then dropped and counted).
MAX_QUEUED_DATA = 1024
#: RFC 8489 §6.2.2: over TCP or TLS a request is sent once and fails after Ti = 39.5 s.
RELIABLE_TRANSACTION_TIMEOUT = 39.5


class TurnUsageError(Exception):
    """The core was asked for something its state or limits do not allow."""


class TurnState(enum.Enum):
    NEW = "new"
    ALLOCATING = "allocating"
    ALLOCATED = "allocated"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


@attrs.define
class TurnStats:
    """Datagrams dropped, by reason (each one a counted, silent drop)."""

    malformed: int = 0
    wrong_source: int = 0
    unmatched: int = 0
    bad_integrity: int = 0
    unknown_channel: int = 0
    no_permission: int = 0
    #: relayed data dropped because the caller let more than MAX_QUEUED_DATA events pile up
    data_overflow: int = 0


class _Kind(enum.Enum):
    ALLOCATE = Method.ALLOCATE
    REFRESH = Method.REFRESH
    PERMISSION = Method.CREATE_PERMISSION
    CHANNEL = Method.CHANNEL_BIND


@attrs.define(eq=False)
class _Transaction:
    kind: _Kind
    attributes: dict[int, object]
    schedule: RetransmissionSchedule
    datagram: bytes
    authenticated: bool
    peer: Address | None = None
    channel: int | None = None
    lifetime: int | None = None
    stale_retries: int = 0


@attrs.define(eq=False)
class _Permission:
    installed: bool = False
    pending: bool = False
    refresh_at: float | None = None


@attrs.define(eq=False)
class _Channel:
    number: int
    peer: Address
    bound: bool = False
    pending: bool = False
    refresh_at: float | None = None


class TurnClient:
    """One TURN allocation on one server (RFC 8656), transport UDP."""

    def __init__(
        self,
        server: Address,
        username: str,
        password: str,
        *,
        lifetime: int | None = None,
        rto: float = 0.5,
        max_permissions: int = 64,
        max_channels: int = 64,
        reliable: bool = False,
        bind_channels: bool = False,
        address_family: Literal[4, 6] | None = None,
    ) -> None:
        """``reliable``: the messages travel over TCP or TLS (RFC 8656 §3.1): requests are not
        retransmitted (they fail after 39.5 s) and ChannelData is padded to 4 bytes (§12.5).
        ``bind_channels``: the first ``send_to`` a peer also binds a channel to it (while
        channel numbers last), so later data goes as 4-byte-header ChannelData instead of
        36-byte Send indications, as browsers' TURN clients do. ``address_family``: 6 asks for
        an IPv6 relayed address (REQUESTED-ADDRESS-FAMILY, RFC 8656 §7.1); the server's default
        (None, or 4) is IPv4."""
        if address_family not in (None, 4, 6):
            raise ValueError(f"address_family must be 4, 6 or None, not {address_family!r}")
        if not 0 < max_channels <= CHANNEL_MAX - CHANNEL_MIN + 1:
            raise ValueError(f"max_channels must be 1-4096, got {max_channels}")
        self.server: Address = (server[0], server[1])
        self.username = username
        self._password = password
        self._requested_lifetime = lifetime
        self._rto = rto
        self.max_permissions = max_permissions
        self.max_channels = max_channels
        self.reliable = reliable
        self.bind_channels = bind_channels
        self.address_family = address_family
        #: Peers whose automatic ChannelBind failed: they keep Send indications (at most
        #: ``max_channels`` remembered, the oldest forgotten first).
        self._channel_refused: dict[Address, None] = {}
        self.state = TurnState.NEW
        self.stats = TurnStats()
        self.relayed_address: Address | None = None
        self.mapped_address: Address | None = None
        self.lifetime: int | None = None
        self.realm: str | None = None
        self._nonce: str | None = None
        self._key: bytes | None = None
        self._transactions: dict[bytes, _Transaction] = {}
        self._permissions: dict[str, _Permission] = {}
        self._channels_by_peer: dict[Address, _Channel] = {}
        self._channels_by_number: dict[int, _Channel] = {}
        self._next_channel = CHANNEL_MIN
        self._refresh_at: float | None = None
        self._expires_at: float | None = None
        self._outgoing: list[bytes] = []
        self._events: collections.deque[TurnEvent] = collections.deque()
        self._queued_data = 0

    # --- outputs -------------------------------------------------------------------------------

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Every datagram produced since the last call, all destined to ``server``."""
        out, self._outgoing = self._outgoing, []
        return out

    def next_event(self) -> TurnEvent | None:
        event = self._events.popleft() if self._events else None
        if isinstance(event, DataReceived):
            self._queued_data -= 1
        return event

    def _queue_data(self, event: DataReceived) -> None:
        # A peer decides how much data arrives; a caller that does not drain events must not
        # let it grow memory without bound (UDP semantics: drop and count).
        if self._queued_data >= MAX_QUEUED_DATA:
            self.stats.data_overflow += 1
            return
        self._queued_data += 1
        self._events.append(event)

    def get_timer(self) -> float | None:
        deadlines: list[float] = []
        for txn in self._transactions.values():
            if txn.schedule.get_timer is not None:
                deadlines.append(txn.schedule.get_timer)
        if self.state is TurnState.ALLOCATED:
            if self._refresh_at is not None:
                deadlines.append(self._refresh_at)
            for permission in self._permissions.values():
                if permission.refresh_at is not None:
                    deadlines.append(permission.refresh_at)
            for channel in self._channels_by_number.values():
                if channel.refresh_at is not None:
                    deadlines.append(channel.refresh_at)
        return min(deadlines) if deadlines else None

    def has_permission(self, peer_ip: str) -> bool:
        """True once the server confirmed a permission for ``peer_ip``."""
        permission = self._permissions.get(peer_ip)
        return permission is not None and permission.installed

    def channel_for(self, peer: Address) -> int | None:
        """The channel number bound (confirmed by the server) to ``peer``, else None."""
        channel = self._channels_by_peer.get((peer[0], peer[1]))
        return channel.number if channel is not None and channel.bound else None

    # --- user calls ------------------------------------------------------------------------------

    def allocate(self, now: float) -> None:
        """Start the Allocate transaction; the first try carries no credentials (RFC 8656 §7.1)."""
        if self.state is not TurnState.NEW:
            raise TurnUsageError(f"allocate() in state {self.state.value}")
        self.state = TurnState.ALLOCATING
        attributes: dict[int, object] = {Attr.REQUESTED_TRANSPORT: UDP_TRANSPORT}
        if self.address_family == 6:
            attributes[Attr.REQUESTED_ADDRESS_FAMILY] = 0x02
        if self._requested_lifetime is not None:
            attributes[Attr.LIFETIME] = self._requested_lifetime
        self._start(_Kind.ALLOCATE, attributes, now)

    def create_permission(self, peer_ip: str, now: float) -> None:
        """Install (then keep refreshing) a permission for ``peer_ip`` (RFC 8656 §9)."""
        self._require_allocated("create_permission")
        if peer_ip in self._permissions:
            return
        if len(self._permissions) >= self.max_permissions:
            raise TurnUsageError(f"already {self.max_permissions} permissions")
        permission = _Permission(pending=True)
        self._permissions[peer_ip] = permission
        self._start(_Kind.PERMISSION, {Attr.XOR_PEER_ADDRESS: (peer_ip, 0)}, now, peer=(peer_ip, 0))

    def bind_channel(self, peer: Address, now: float) -> int:
        """Bind a channel to ``peer`` (RFC 8656 §11); returns its number. Idempotent per peer."""
        self._require_allocated("bind_channel")
        peer = (peer[0], peer[1])
        existing = self._channels_by_peer.get(peer)
        if existing is not None:
            return existing.number
        if len(self._channels_by_number) >= self.max_channels:
            raise TurnUsageError(f"already {self.max_channels} channels")
        number = self._free_channel_number()
        channel = _Channel(number, peer, pending=True)
        self._channels_by_peer[peer] = channel
        self._channels_by_number[number] = channel
        self._send_channel_bind(channel, now)
        return number

    def send_to(self, peer: Address, payload: bytes, now: float) -> None:
        """Relay ``payload`` to ``peer``: ChannelData once a channel is bound, else a Send
        indication. A permission for the peer's IP is requested when missing; data sent before
        the server installs it is dropped by the server, as UDP would."""
        self._require_allocated("send_to")
        peer = (peer[0], peer[1])
        channel = self._channels_by_peer.get(peer)
        if channel is not None and channel.bound:
            self._outgoing.append(encode_channel_data(channel.number, payload, pad=self.reliable))
            return
        if (
            channel is None
            and self.bind_channels
            and len(self._channels_by_number) < self.max_channels
            and peer not in self._channel_refused
        ):
            # A ChannelBind installs the permission too (RFC 8656 §12.1).
            self.bind_channel(peer, now)
        elif peer[0] not in self._permissions and len(self._permissions) < self.max_permissions:
            self.create_permission(peer[0], now)
        # RFC 8656 §10.1: a Send indication carries no integrity (indications cannot be
        # authenticated); the server relays it only to peers with a permission.
        indication = StunMessage.indication(
            Method.SEND, attributes={Attr.XOR_PEER_ADDRESS: peer, Attr.DATA: bytes(payload)}
        )
        self._outgoing.append(indication.encode())

    def refresh(self, now: float) -> None:
        """Refresh the allocation now (the timer does it before expiry; RFC 8656 §7.2)."""
        self._require_allocated("refresh")
        if any(txn.kind is _Kind.REFRESH for txn in self._transactions.values()):
            return
        self._refresh_at = None
        attributes: dict[int, object] = {}
        if self._requested_lifetime is not None:
            attributes[Attr.LIFETIME] = self._requested_lifetime
        self._start(_Kind.REFRESH, attributes, now)

    def close(self, now: float) -> None:
        """Deallocate: Refresh with LIFETIME 0 (RFC 8656 §7.2); AllocationClosed follows."""
        if self.state in (TurnState.CLOSING, TurnState.CLOSED, TurnState.FAILED):
            return
        if self.state is not TurnState.ALLOCATED:
            # Nothing allocated yet (or the Allocate is in flight): just stop.
            self._transactions.clear()
            self._finish(TurnState.CLOSED, AllocationClosed())
            return
        self._transactions.clear()
        self.state = TurnState.CLOSING
        self._start(_Kind.REFRESH, {Attr.LIFETIME: 0}, now, lifetime=0)

    # --- inputs --------------------------------------------------------------------------------

    def receive_datagram(
        self, data: bytes | bytearray | memoryview, source: Address, now: float
    ) -> None:
        """One datagram received from ``source``; anything not from the server is dropped."""
        if (source[0], source[1]) != self.server:
            self.stats.wrong_source += 1
            return
        if is_channel_data_untrusted(data):
            self._receive_channel_data(data)
            return
        if not is_stun_untrusted(data):
            self.stats.malformed += 1
            return
        try:
            message = parse_message_untrusted(data)
        except StunError:
            self.stats.malformed += 1
            return
        if message.message_class is MessageClass.INDICATION:
            self._receive_indication(message)
        elif message.message_class in (MessageClass.SUCCESS, MessageClass.ERROR):
            self._receive_response(message, now)
        else:
            self.stats.unmatched += 1

    def connection_lost(self, reason: str) -> None:
        """The TCP or TLS connection to the server ended (RFC 8656 §3.1: the allocation goes
        with it): AllocationFailed, or AllocationClosed while deallocating."""
        if self.state is TurnState.CLOSING:
            self._finish(TurnState.CLOSED, AllocationClosed())
        elif self.state not in (TurnState.CLOSED, TurnState.FAILED):
            self._finish(TurnState.FAILED, AllocationFailed(None, reason))

    def handle_timer(self, now: float) -> None:
        for tid, txn in list(self._transactions.items()):
            # A failure handled earlier in this loop may have ended the allocation.
            if tid not in self._transactions or not txn.schedule.is_due(now):
                continue
            if txn.schedule.on_timeout(now):
                self._outgoing.append(txn.datagram)
            elif txn.schedule.failed:
                del self._transactions[tid]
                self._transaction_failed(txn, None, "no response from the TURN server", now)
        if self.state is not TurnState.ALLOCATED:
            return
        if self._expires_at is not None and now >= self._expires_at:
            self._finish(TurnState.FAILED, AllocationFailed(None, "allocation expired"))
            return
        if self._refresh_at is not None and now >= self._refresh_at:
            self.refresh(now)
        for ip, permission in self._permissions.items():
            if permission.refresh_at is not None and now >= permission.refresh_at:
                permission.refresh_at = None
                permission.pending = True
                self._start(_Kind.PERMISSION, {Attr.XOR_PEER_ADDRESS: (ip, 0)}, now, peer=(ip, 0))
        for channel in self._channels_by_number.values():
            if channel.refresh_at is not None and now >= channel.refresh_at:
                channel.refresh_at = None
                self._send_channel_bind(channel, now)

    # --- internals -----------------------------------------------------------------------------

    def _require_allocated(self, what: str) -> None:
        if self.state is not TurnState.ALLOCATED:
            raise TurnUsageError(f"{what}() needs an allocation; state is {self.state.value}")

    def _free_channel_number(self) -> int:
        span = CHANNEL_MAX - CHANNEL_MIN + 1
        for _ in range(span):
            number = self._next_channel
            self._next_channel = CHANNEL_MIN + (number - CHANNEL_MIN + 1) % span
            if number not in self._channels_by_number:
                return number
        raise TurnUsageError("no free channel number")

    def _send_channel_bind(self, channel: _Channel, now: float) -> None:
        channel.pending = True
        self._start(
            _Kind.CHANNEL,
            {Attr.CHANNEL_NUMBER: channel.number, Attr.XOR_PEER_ADDRESS: channel.peer},
            now,
            peer=channel.peer,
            channel=channel.number,
        )

    def _encode(self, method: int, tid: bytes | None, attributes: dict[int, object]) -> StunMessage:
        message = StunMessage.request(method, tid, dict(attributes))
        if self._key is not None and self.realm is not None and self._nonce is not None:
            message.attributes[Attr.USERNAME] = self.username
            message.attributes[Attr.REALM] = self.realm
            message.attributes[Attr.NONCE] = self._nonce
        return message

    def _start(
        self,
        kind: _Kind,
        attributes: dict[int, object],
        now: float,
        *,
        peer: Address | None = None,
        channel: int | None = None,
        lifetime: int | None = None,
        stale_retries: int = 0,
    ) -> None:
        message = self._encode(kind.value, None, attributes)
        datagram = message.encode(key=self._key)
        self._transactions[message.transaction_id] = _Transaction(
            kind,
            attributes,
            RetransmissionSchedule(now, rto=RELIABLE_TRANSACTION_TIMEOUT, rc=1, rm=1)
            if self.reliable
            else RetransmissionSchedule(now, rto=self._rto),
            datagram,
            self._key is not None,
            peer,
            channel,
            lifetime,
            stale_retries,
        )
        self._outgoing.append(datagram)

    def _retry(self, txn: _Transaction, now: float, *, stale_retries: int) -> None:
        # A new transaction id: the server may cache the answer to the old one (RFC 8489 §6.3).
        self._start(
            txn.kind,
            txn.attributes,
            now,
            peer=txn.peer,
            channel=txn.channel,
            lifetime=txn.lifetime,
            stale_retries=stale_retries,
        )

    def _receive_channel_data(self, data: bytes | bytearray | memoryview) -> None:
        try:
            number, payload = parse_channel_data_untrusted(data)
        except TurnError:
            self.stats.malformed += 1
            return
        channel = self._channels_by_number.get(number)
        if channel is None or not channel.bound:
            self.stats.unknown_channel += 1
            return
        self._queue_data(DataReceived(channel.peer, payload))

    def _receive_indication(self, message: StunMessage) -> None:
        if message.method != Method.DATA or self.state is not TurnState.ALLOCATED:
            self.stats.unmatched += 1
            return
        peer = message.get_address(Attr.XOR_PEER_ADDRESS)
        payload = message.get_bytes(Attr.DATA)
        if peer is None or payload is None:
            self.stats.malformed += 1
            return
        # The server only relays from permitted peers (RFC 8656 §10.3); check anyway, so a
        # spoofed indication cannot claim a peer we never talked to.
        if peer[0] not in self._permissions:
            self.stats.no_permission += 1
            return
        self._queue_data(DataReceived(peer, payload))

    def _receive_response(self, message: StunMessage, now: float) -> None:
        txn = self._transactions.get(message.transaction_id)
        if txn is None or message.method != txn.kind.value:
            self.stats.unmatched += 1
            return
        error = message.error_code
        if message.message_class is MessageClass.ERROR and error is None:
            self.stats.malformed += 1
            return
        code = error[0] if error is not None else None
        # RFC 8489 §9.2.5: 401 and 438 cannot carry integrity under a key the client does not
        # have yet (or whose nonce expired); every other answer to an authenticated request must.
        if code in (401, 438):
            realm = message.get_str(Attr.REALM)
            nonce = message.get_str(Attr.NONCE)
            retry_401 = code == 401 and not txn.authenticated
            retry_438 = code == 438 and txn.stale_retries < MAX_STALE_NONCE_RETRIES
            if (retry_401 or retry_438) and nonce is not None and (realm or self.realm):
                del self._transactions[message.transaction_id]
                self._nonce = nonce
                if realm is not None and (realm != self.realm or self._key is None):
                    self.realm = realm
                    self._key = long_term_key(self.username, realm, self._password)
                self._retry(txn, now, stale_retries=txn.stale_retries + (code == 438))
                return
        elif txn.authenticated and (self._key is None or not message.check_integrity(self._key)):
            self.stats.bad_integrity += 1
            return
        del self._transactions[message.transaction_id]
        txn.schedule.complete()
        if error is not None:
            self._transaction_failed(txn, error[0], error[1], now)
        else:
            self._transaction_succeeded(txn, message, now)

    def _transaction_succeeded(self, txn: _Transaction, message: StunMessage, now: float) -> None:
        if txn.kind is _Kind.ALLOCATE:
            relayed = message.get_address(Attr.XOR_RELAYED_ADDRESS)
            if relayed is None:
                self._finish(
                    TurnState.FAILED, AllocationFailed(None, "no XOR-RELAYED-ADDRESS in success")
                )
                return
            self.relayed_address = relayed
            self.mapped_address = message.get_address(Attr.XOR_MAPPED_ADDRESS)
            self.state = TurnState.ALLOCATED
            self._set_lifetime(message.get_int(Attr.LIFETIME), now)
            self._events.append(Allocated(relayed, self.mapped_address, self.lifetime or 0))
        elif txn.kind is _Kind.REFRESH:
            if txn.lifetime == 0:
                self._finish(TurnState.CLOSED, AllocationClosed())
            else:
                self._set_lifetime(message.get_int(Attr.LIFETIME), now)
                self._events.append(AllocationRefreshed(self.lifetime or 0))
        elif txn.kind is _Kind.PERMISSION and txn.peer is not None:
            self._permission_installed(txn.peer[0], now)
        elif txn.kind is _Kind.CHANNEL and txn.channel is not None:
            channel = self._channels_by_number.get(txn.channel)
            if channel is None:
                return
            first = not channel.bound
            channel.bound, channel.pending = True, False
            channel.refresh_at = now + CHANNEL_REFRESH
            # RFC 8656 §11.2: a ChannelBind also installs or refreshes the peer's permission.
            self._permission_installed(channel.peer[0], now, quiet=True)
            if first:
                self._events.append(ChannelBound(channel.peer, channel.number))

    def _permission_installed(self, ip: str, now: float, *, quiet: bool = False) -> None:
        permission = self._permissions.get(ip)
        if permission is None:
            if len(self._permissions) >= self.max_permissions:
                return
            permission = self._permissions[ip] = _Permission()
        first = not permission.installed
        permission.installed, permission.pending = True, False
        permission.refresh_at = now + PERMISSION_REFRESH
        if first and not quiet:
            self._events.append(PermissionCreated(ip))

    def _transaction_failed(
        self, txn: _Transaction, code: int | None, reason: str, now: float
    ) -> None:
        if txn.kind is _Kind.ALLOCATE:
            self._finish(TurnState.FAILED, AllocationFailed(code, reason))
        elif txn.kind is _Kind.REFRESH:
            if txn.lifetime == 0:
                # Deallocation is best effort: the allocation times out on the server anyway.
                self._finish(TurnState.CLOSED, AllocationClosed())
            else:
                self._finish(TurnState.FAILED, AllocationFailed(code, reason))
        elif txn.kind is _Kind.PERMISSION and txn.peer is not None:
            self._permissions.pop(txn.peer[0], None)
            self._events.append(PermissionFailed(txn.peer[0], code, reason))
        elif txn.kind is _Kind.CHANNEL and txn.channel is not None and txn.peer is not None:
            channel = self._channels_by_number.pop(txn.channel, None)
            if channel is not None:
                self._channels_by_peer.pop(channel.peer, None)
            if self.bind_channels:
                refused = self._channel_refused
                refused[txn.peer] = None
                if len(refused) > self.max_channels:
                    del refused[next(iter(refused))]
            self._events.append(ChannelBindFailed(txn.peer, txn.channel, code, reason))

    def _set_lifetime(self, lifetime: int | None, now: float) -> None:
        # RFC 8656 §7.3: the success response carries LIFETIME; 600 s is the default.
        value = 600 if lifetime is None else lifetime
        self.lifetime = value
        self._expires_at = now + value
        margin = REFRESH_MARGIN if value > 2 * REFRESH_MARGIN else value / 2
        self._refresh_at = now + value - margin

    def _finish(self, state: TurnState, event: TurnEvent) -> None:
        self.state = state
        self._transactions.clear()
        self._refresh_at = self._expires_at = None
        self._permissions.clear()
        self._channels_by_peer.clear()
        self._channels_by_number.clear()
        self._events.append(event)
