"""Small STUN and TURN servers that run as trio tasks, for simulations and tests.

They open their sockets with :func:`trio_rtc.udp.open_udp_endpoint`, so inside a
:class:`~trio_rtc.testing.VirtualNetwork` they live on a virtual public address (and with no
network installed, on real loopback sockets). They implement what trio_rtc's own ICE agent and
TURN client use, no more:

* :class:`StunServer`: Binding requests answered with XOR-MAPPED-ADDRESS (RFC 8489), enough for
  server-reflexive candidates and for seeing how a NAT maps.
* :class:`TurnServer`: the same, plus UDP allocations with long-term credentials (RFC 8656):
  Allocate, Refresh, CreatePermission, ChannelBind, Send/Data indications and ChannelData, with
  allocation, permission (300 s) and channel (600 s) lifetimes. One relayed address per
  allocation, on ``relay_host``; no TCP, no IPv6 relaying of IPv4 peers, no quotas.

Neither is meant to face the Internet: use coturn for that.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import AsyncIterator

import attrs
import trio

from trio_rtc._lifetime import AsyncLifetime
from trio_rtc.stun import (
    Attr,
    MessageClass,
    Method,
    StunError,
    StunMessage,
    is_stun_untrusted,
    long_term_key,
    parse_message_untrusted,
)
from trio_rtc.turn.channel import (
    CHANNEL_MAX,
    CHANNEL_MIN,
    TurnError,
    encode_channel_data,
    is_channel_data_untrusted,
    parse_channel_data_untrusted,
)
from trio_rtc.udp import Address, UdpEndpoint, open_udp_endpoint

__all__ = ["StunServer", "TurnServer", "TurnServerStats"]

STUN_PORT = 3478
_UDP = 17  # REQUESTED-TRANSPORT for UDP (RFC 8656 §18.7)
_PERMISSION_LIFETIME = 300.0  # RFC 8656 §9
_CHANNEL_LIFETIME = 600.0  # RFC 8656 §12
_MAX_LIFETIME = 3600
# Answers kept so that a retransmitted request gets the same answer (RFC 8489 §6.3.1).
_RESPONSE_CACHE = 256


def _binding_response(request: StunMessage, source: Address) -> bytes:
    response = request.success_response()
    response.attributes[Attr.XOR_MAPPED_ADDRESS] = source
    return response.encode()


class StunServer(AsyncLifetime):
    """``async with StunServer("203.0.113.100") as stun:`` answers Binding requests on
    ``stun.address`` until the block ends. Use ``stun.url`` in ``iceServers``."""

    def __init__(self, host: str, port: int = STUN_PORT) -> None:
        self._host = host
        self._port = port
        self._endpoint: UdpEndpoint | None = None
        self.requests = 0

    @property
    def address(self) -> Address:
        if self._endpoint is None:
            raise RuntimeError("the server is not running")
        return self._endpoint.local_address

    @property
    def url(self) -> str:
        host, port = self.address
        return f"stun:[{host}]:{port}" if ":" in host else f"stun:{host}:{port}"

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        if self._lifetime is not None:
            raise RuntimeError("this StunServer is already running")
        endpoint = await open_udp_endpoint(self._host, self._port)
        self._endpoint = endpoint
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._serve, endpoint)
                try:
                    yield
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            endpoint.close()

    async def _serve(self, endpoint: UdpEndpoint) -> None:
        while True:
            await endpoint.wait_readable()
            for data, source in endpoint.recv_batch_nowait():
                if not is_stun_untrusted(data):
                    continue
                try:
                    message = parse_message_untrusted(data)
                except StunError:
                    continue
                if message.method == Method.BINDING and (
                    message.message_class is MessageClass.REQUEST
                ):
                    self.requests += 1
                    endpoint.send_nowait(_binding_response(message, source), source)


@attrs.define
class TurnServerStats:
    allocations: int = 0
    relayed_to_peers: int = 0
    relayed_to_clients: int = 0
    unauthenticated: int = 0
    dropped_no_permission: int = 0
    dropped_malformed: int = 0


@attrs.define(eq=False)
class _Allocation:
    client: Address
    relay: UdpEndpoint
    scope: trio.CancelScope
    permissions: dict[str, float] = attrs.Factory(dict)
    channels: dict[int, tuple[Address, float]] = attrs.Factory(dict)
    channel_of_peer: dict[Address, int] = attrs.Factory(dict)

    def permitted(self, ip: str, now: float) -> bool:
        expiry = self.permissions.get(ip)
        return expiry is not None and now < expiry


class TurnServer(AsyncLifetime):
    """``async with TurnServer("203.0.113.100", username="u", password="p") as turn:``; use
    ``turn.url`` with the same username and credential in ``iceServers``."""

    def __init__(
        self,
        host: str,
        port: int = STUN_PORT,
        *,
        username: str,
        password: str,
        realm: str = "trio-rtc.test",
        relay_host: str | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._relay_host = relay_host if relay_host is not None else host
        self.username = username
        self.realm = realm
        self._key = long_term_key(username, realm, password)
        # A fixed nonce: nothing to protect in a simulation, and it keeps runs reproducible.
        self._nonce = "trio-rtc-test-nonce"
        self._endpoint: UdpEndpoint | None = None
        self._nursery: trio.Nursery | None = None
        self._allocations: dict[Address, _Allocation] = {}
        self._answers: collections.OrderedDict[bytes, bytes] = collections.OrderedDict()
        self.stats = TurnServerStats()

    @property
    def address(self) -> Address:
        if self._endpoint is None:
            raise RuntimeError("the server is not running")
        return self._endpoint.local_address

    @property
    def url(self) -> str:
        host, port = self.address
        return f"turn:[{host}]:{port}" if ":" in host else f"turn:{host}:{port}"

    @property
    def relayed_addresses(self) -> list[Address]:
        return [allocation.relay.local_address for allocation in self._allocations.values()]

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        if self._lifetime is not None:
            raise RuntimeError("this TurnServer is already running")
        endpoint = await open_udp_endpoint(self._host, self._port)
        self._endpoint = endpoint
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._serve, endpoint)
                try:
                    yield
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            endpoint.close()
            for allocation in self._allocations.values():
                allocation.relay.close()
            self._allocations.clear()

    # -- the client side ----------------------------------------------------------------------

    async def _serve(self, endpoint: UdpEndpoint) -> None:
        while True:
            await endpoint.wait_readable()
            for data, source in endpoint.recv_batch_nowait():
                if is_channel_data_untrusted(data):
                    self._client_channel_data(data, source)
                    continue
                if not is_stun_untrusted(data):
                    self.stats.dropped_malformed += 1
                    continue
                try:
                    message = parse_message_untrusted(data)
                except StunError:
                    self.stats.dropped_malformed += 1
                    continue
                if message.message_class is MessageClass.REQUEST:
                    cached = self._answers.get(message.transaction_id)
                    answer = cached if cached is not None else await self._answer(message, source)
                    if answer is not None:
                        endpoint.send_nowait(answer, source)
                elif message.message_class is MessageClass.INDICATION:
                    self._client_send_indication(message, source)

    async def _answer(self, request: StunMessage, source: Address) -> bytes | None:
        if request.method == Method.BINDING:
            return _binding_response(request, source)
        error = self._authenticate(request)
        if error is not None:
            return error
        now = trio.current_time()
        method = request.method
        if method == Method.ALLOCATE:
            response = await self._allocate(request, source)
        elif method == Method.REFRESH:
            response = self._refresh(request, source)
        elif method == Method.CREATE_PERMISSION:
            response = self._create_permission(request, source, now)
        elif method == Method.CHANNEL_BIND:
            response = self._channel_bind(request, source, now)
        else:
            response = request.error_response(400, "Bad Request")
        answer = response.encode(key=self._key)
        self._answers[request.transaction_id] = answer
        if len(self._answers) > _RESPONSE_CACHE:
            self._answers.popitem(last=False)
        return answer

    def _authenticate(self, request: StunMessage) -> bytes | None:
        """An error answer (401, 438) for a request without valid long-term credentials."""
        if not (request.has(Attr.MESSAGE_INTEGRITY) or request.has(Attr.MESSAGE_INTEGRITY_SHA256)):
            return self._challenge(request, 401, "Unauthorized")
        if request.get_str(Attr.NONCE) != self._nonce:
            return self._challenge(request, 438, "Stale Nonce")
        if (
            request.get_str(Attr.USERNAME) != self.username
            or request.get_str(Attr.REALM) != self.realm
            or not request.check_integrity(self._key)
        ):
            self.stats.unauthenticated += 1
            return self._challenge(request, 401, "Unauthorized")
        return None

    def _challenge(self, request: StunMessage, code: int, reason: str) -> bytes:
        response = request.error_response(code, reason)
        response.attributes[Attr.REALM] = self.realm
        response.attributes[Attr.NONCE] = self._nonce
        return response.encode()

    async def _allocate(self, request: StunMessage, source: Address) -> StunMessage:
        if source in self._allocations:
            return request.error_response(437, "Allocation Mismatch")
        if request.get_int(Attr.REQUESTED_TRANSPORT) != _UDP:
            return request.error_response(442, "Unsupported Transport Protocol")
        if self._nursery is None:
            return request.error_response(508, "Insufficient Capacity")
        lifetime = self._lifetime_of(request, default=600)
        try:
            relay = await open_udp_endpoint(self._relay_host, 0)
        except OSError:
            return request.error_response(508, "Insufficient Capacity")
        allocation = _Allocation(
            source, relay, trio.CancelScope(deadline=trio.current_time() + lifetime)
        )
        self._allocations[source] = allocation
        self.stats.allocations += 1
        self._nursery.start_soon(self._relay_task, allocation)
        response = request.success_response()
        response.attributes[Attr.XOR_RELAYED_ADDRESS] = relay.local_address
        response.attributes[Attr.LIFETIME] = lifetime
        response.attributes[Attr.XOR_MAPPED_ADDRESS] = source
        return response

    def _lifetime_of(self, request: StunMessage, *, default: int) -> int:
        asked = request.get_int(Attr.LIFETIME)
        return min(_MAX_LIFETIME, default if asked is None else asked)

    def _refresh(self, request: StunMessage, source: Address) -> StunMessage:
        allocation = self._allocations.get(source)
        if allocation is None:
            return request.error_response(437, "Allocation Mismatch")
        lifetime = self._lifetime_of(request, default=600)
        if lifetime == 0:
            allocation.scope.cancel()
            self._close_allocation(allocation)
        else:
            allocation.scope.deadline = trio.current_time() + lifetime
        response = request.success_response()
        response.attributes[Attr.LIFETIME] = lifetime
        return response

    def _create_permission(self, request: StunMessage, source: Address, now: float) -> StunMessage:
        allocation = self._allocations.get(source)
        if allocation is None:
            return request.error_response(437, "Allocation Mismatch")
        peer = request.get_address(Attr.XOR_PEER_ADDRESS)
        if peer is None:
            return request.error_response(400, "Bad Request")
        allocation.permissions[peer[0]] = now + _PERMISSION_LIFETIME
        return request.success_response()

    def _channel_bind(self, request: StunMessage, source: Address, now: float) -> StunMessage:
        allocation = self._allocations.get(source)
        if allocation is None:
            return request.error_response(437, "Allocation Mismatch")
        number = request.get_int(Attr.CHANNEL_NUMBER)
        peer = request.get_address(Attr.XOR_PEER_ADDRESS)
        if peer is None or number is None or not CHANNEL_MIN <= number <= CHANNEL_MAX:
            return request.error_response(400, "Bad Request")
        bound = allocation.channels.get(number)
        # RFC 8656 §12.2: a number is bound to one peer and a peer to one number.
        if (bound is not None and bound[0] != peer) or allocation.channel_of_peer.get(
            peer, number
        ) != number:
            return request.error_response(400, "Bad Request")
        allocation.channels[number] = (peer, now + _CHANNEL_LIFETIME)
        allocation.channel_of_peer[peer] = number
        allocation.permissions[peer[0]] = now + _PERMISSION_LIFETIME
        return request.success_response()

    def _client_send_indication(self, message: StunMessage, source: Address) -> None:
        allocation = self._allocations.get(source)
        peer = message.get_address(Attr.XOR_PEER_ADDRESS)
        data = message.get_bytes(Attr.DATA)
        if message.method != Method.SEND or allocation is None or peer is None or data is None:
            self.stats.dropped_malformed += 1
            return
        self._to_peer(allocation, peer, data)

    def _client_channel_data(self, data: bytes, source: Address) -> None:
        allocation = self._allocations.get(source)
        try:
            number, payload = parse_channel_data_untrusted(data)
        except TurnError:
            self.stats.dropped_malformed += 1
            return
        channel = None if allocation is None else allocation.channels.get(number)
        if allocation is None or channel is None or trio.current_time() >= channel[1]:
            self.stats.dropped_malformed += 1
            return
        self._to_peer(allocation, channel[0], payload)

    def _to_peer(self, allocation: _Allocation, peer: Address, data: bytes) -> None:
        if not allocation.permitted(peer[0], trio.current_time()):
            self.stats.dropped_no_permission += 1
            return
        self.stats.relayed_to_peers += 1
        allocation.relay.send_nowait(data, peer)

    # -- the peer side ------------------------------------------------------------------------

    async def _relay_task(self, allocation: _Allocation) -> None:
        listen = self._endpoint
        assert listen is not None
        relay = allocation.relay
        try:
            with allocation.scope:
                while True:
                    await relay.wait_readable()
                    now = trio.current_time()
                    for data, peer in relay.recv_batch_nowait():
                        if not allocation.permitted(peer[0], now):
                            self.stats.dropped_no_permission += 1
                            continue
                        number = allocation.channel_of_peer.get(peer)
                        channel = None if number is None else allocation.channels.get(number)
                        if number is not None and channel is not None and now < channel[1]:
                            datagram = encode_channel_data(number, data)
                        else:
                            datagram = StunMessage.indication(
                                Method.DATA,
                                attributes={Attr.XOR_PEER_ADDRESS: peer, Attr.DATA: data},
                            ).encode()
                        self.stats.relayed_to_clients += 1
                        listen.send_nowait(datagram, allocation.client)
        except trio.ClosedResourceError:
            pass
        finally:
            self._close_allocation(allocation)

    def _close_allocation(self, allocation: _Allocation) -> None:
        if self._allocations.get(allocation.client) is allocation:
            del self._allocations[allocation.client]
        allocation.relay.close()
