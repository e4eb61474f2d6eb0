"""One-shot multicast DNS (RFC 6762) resolution of the ``<uuid>.local`` names browsers put in
host candidates to hide local addresses.

Two layers:

- pure: :func:`build_query` and :func:`parse_response_untrusted` (bytes in, bytes or addresses
  out; the parser raises only :class:`MdnsError`);
- trio: :class:`MdnsResolver`, which sends the query from an ephemeral port. RFC 6762 §5.1 calls
  this a one-shot query, and every responder must answer it by unicast to the source address and
  port (RFC 6762 §6.7), so resolving needs no privileged port and coexists with a system
  responder (avahi, mDNSResponder). Chromium's responder, which announces the ``<uuid>.local``
  names of its WebRTC candidates, ignores §6.7 and answers only by multicast to the group, so
  while a query runs the resolver also listens on the group: a socket bound to the group address
  itself (not the wildcard, so no unicast meant for the system responder is taken) with
  ``SO_REUSEADDR``/``SO_REUSEPORT`` beside that responder, joined on the query's interface. That
  listener is best effort; where it cannot be opened, unicast answers still work.
"""

from __future__ import annotations

import collections
import ipaddress
import logging
import secrets
import socket
import struct

import attrs
import trio

from .interfaces import list_interface_addresses

__all__ = [
    "MDNS_GROUP_V4",
    "MDNS_GROUP_V6",
    "MDNS_PORT",
    "QTYPE_A",
    "QTYPE_AAAA",
    "MdnsError",
    "MdnsResolver",
    "build_query",
    "parse_response_untrusted",
]

logger = logging.getLogger(__name__)

MDNS_GROUP_V4 = "224.0.0.251"
MDNS_GROUP_V6 = "ff02::fb"
MDNS_PORT = 5353
QTYPE_A = 1
QTYPE_AAAA = 28
_CLASS_IN = 1
# RFC 6762 §5.4: the top bit of the question class asks for a unicast answer ("QU");
# §10.2: in a record's class the same bit is the cache-flush flag, not part of the class.
_UNICAST_RESPONSE_BIT = 0x8000
_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")
_QR_BIT = 0x8000
_MAX_NAME_LENGTH = 255
# Compression pointers may chain; a real message needs a handful. The bound, together with the
# 255-byte name limit, makes every name decode finish quickly whatever the packet says.
_MAX_POINTER_HOPS = 32
_MAX_ADDRESSES = 16
_RECEIVE_SIZE = 9000


class MdnsError(Exception):
    """A name that cannot be queried, or an mDNS packet that is malformed."""


def _encode_name(name: str) -> tuple[bytes, ...]:
    """The labels of ``name`` (UTF-8, RFC 6762 §16), checked against RFC 1035 §2.3.4 limits."""
    stripped = name[:-1] if name.endswith(".") else name
    if not stripped:
        raise MdnsError("empty name")
    try:
        labels = tuple(label.encode("utf-8") for label in stripped.split("."))
    except UnicodeEncodeError:
        raise MdnsError(f"name {name!r} is not encodable as UTF-8") from None
    if any(not 0 < len(label) <= 63 for label in labels):
        raise MdnsError(f"name {name!r} has an empty label or one longer than 63 bytes")
    if sum(len(label) + 1 for label in labels) + 1 > _MAX_NAME_LENGTH:
        raise MdnsError(f"name {name!r} is longer than 255 bytes")
    return labels


def build_query(
    name: str, *, qtype: int, transaction_id: int = 0, unicast_response: bool = True
) -> bytes:
    """A DNS query message with one question for ``name`` of type ``qtype`` (A=1, AAAA=28)."""
    if not 0 <= qtype <= 0xFFFF or not 0 <= transaction_id <= 0xFFFF:
        raise MdnsError("qtype and transaction_id must fit in 16 bits")
    labels = _encode_name(name)
    qname = b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"
    qclass = _CLASS_IN | (_UNICAST_RESPONSE_BIT if unicast_response else 0)
    return _HEADER.pack(transaction_id, 0, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, qclass)


def _read_name(data: bytes, offset: int) -> tuple[tuple[bytes, ...], int]:
    """Decode the name at ``offset``; return its lower-cased labels and the offset after it."""
    labels: list[bytes] = []
    length = 1
    end: int | None = None
    hops = 0
    while True:
        if offset >= len(data):
            raise MdnsError("name runs past the end of the packet")
        size = data[offset]
        if size & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise MdnsError("truncated compression pointer")
            hops += 1
            if hops > _MAX_POINTER_HOPS:
                raise MdnsError("too many compression pointers (loop?)")
            if end is None:
                end = offset + 2
            offset = ((size & 0x3F) << 8) | data[offset + 1]
            continue
        if size & 0xC0:
            raise MdnsError(f"unsupported label type 0x{size & 0xC0:02x}")
        if size == 0:
            return tuple(labels), (offset + 1 if end is None else end)
        label = data[offset + 1 : offset + 1 + size]
        if len(label) != size:
            raise MdnsError("label runs past the end of the packet")
        length += size + 1
        if length > _MAX_NAME_LENGTH:
            raise MdnsError("name longer than 255 bytes")
        # DNS names compare case-insensitively in ASCII only (RFC 4343); bytes.lower does that.
        labels.append(label.lower())
        offset += 1 + size


def parse_response_untrusted(data: bytes, name: str) -> list[str]:
    """The IPv4/IPv6 addresses that A/AAAA records in ``data`` give for ``name``.

    Answer and additional sections are used (authority records are skipped). Messages that are not
    responses, or that RFC 6762 §18.3 and §18.11 say to ignore (non-zero opcode or response code),
    give an empty list. Raises :class:`MdnsError` for a malformed packet.
    """
    wanted = tuple(label.lower() for label in _encode_name(name))
    if len(data) < _HEADER.size:
        raise MdnsError("packet shorter than a DNS header")
    _, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    if not flags & _QR_BIT or (flags >> 11) & 0xF or flags & 0xF:
        return []
    offset = _HEADER.size
    for _ in range(qdcount):
        _, offset = _read_name(data, offset)
        offset += 4
        if offset > len(data):
            raise MdnsError("question runs past the end of the packet")
    found: list[str] = []
    for index in range(ancount + nscount + arcount):
        owner, offset = _read_name(data, offset)
        if offset + _RR_FIXED.size > len(data):
            raise MdnsError("resource record header runs past the end of the packet")
        rtype, rclass, _ttl, rdlength = _RR_FIXED.unpack_from(data, offset)
        offset += _RR_FIXED.size
        rdata = data[offset : offset + rdlength]
        if len(rdata) != rdlength:
            raise MdnsError("resource record data runs past the end of the packet")
        offset += rdlength
        in_authority = ancount <= index < ancount + nscount
        if in_authority or owner != wanted or rclass & ~_UNICAST_RESPONSE_BIT != _CLASS_IN:
            continue
        if rtype == QTYPE_A and rdlength == 4:
            address = str(ipaddress.IPv4Address(rdata))
        elif rtype == QTYPE_AAAA and rdlength == 16:
            address = str(ipaddress.IPv6Address(rdata))
        else:
            continue
        if address not in found and len(found) < _MAX_ADDRESSES:
            found.append(address)
    return found


@attrs.define
class _PendingQuery:
    done: trio.Event = attrs.Factory(trio.Event)
    finished: bool = False
    result: str | None = None


class MdnsResolver:
    """Resolve ``.local`` names with one-shot mDNS queries; never raises for network trouble.

    ``interface_address`` picks the interface the query leaves from: an IPv4 address sends to
    224.0.0.251 through that interface (``IP_MULTICAST_IF``), an IPv6 address (a link-local one may
    carry ``%scope``) sends to ff02::fb through its interface. ``None`` sends both, through the
    interfaces the routing table picks. ``multicast_ttl`` is 255 as RFC 6762 §11 asks; the group is
    link-local (224.0.0.0/24, ff02::/16), so routers never forward it whatever the TTL.
    """

    def __init__(
        self,
        *,
        timeout: float = 2.0,
        interface_address: str | None = None,
        cache_size: int = 256,
        cache_lifetime: float = 120.0,
        attempts: int = 3,
        multicast_ttl: int = 255,
    ) -> None:
        if not timeout > 0 or attempts < 1 or cache_size < 0:
            raise ValueError("timeout must be positive, attempts at least 1, cache_size >= 0")
        self.timeout = timeout
        self.interface_address = interface_address
        self.cache_size = cache_size
        self.cache_lifetime = cache_lifetime
        self.attempts = attempts
        self.multicast_ttl = multicast_ttl
        self._cache: collections.OrderedDict[str, tuple[str, float]] = collections.OrderedDict()
        self._pending: dict[str, _PendingQuery] = {}

    async def resolve(self, name: str) -> str | None:
        """The address ``name`` answers with (IPv4 preferred), or ``None`` after the timeout."""
        key = name.lower().rstrip(".")
        if not key.endswith(".local"):
            logger.debug("not resolving %r: mDNS names end in .local", name)
            return None
        try:
            _encode_name(key)
        except MdnsError as exc:
            logger.debug("not resolving %r: %s", name, exc)
            return None
        cached = self._cache.get(key)
        if cached is not None:
            if cached[1] > trio.current_time():
                self._cache.move_to_end(key)
                return cached[0]
            del self._cache[key]
        while True:
            pending = self._pending.get(key)
            if pending is None:
                return await self._lead_query(key)
            await pending.done.wait()
            if pending.finished:
                return pending.result
            # The task running that query was cancelled; the next waiter takes over.

    async def _lead_query(self, key: str) -> str | None:
        pending = _PendingQuery()
        self._pending[key] = pending
        try:
            result = await self._query(key)
            pending.result = result
            pending.finished = True
        finally:
            del self._pending[key]
            pending.done.set()
        if result is not None and self.cache_size:
            self._cache[key] = (result, trio.current_time() + self.cache_lifetime)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result

    def _open_sockets(self) -> list[tuple[trio.socket.SocketType, tuple[object, ...]]]:
        """Sockets to query from, each with the group address it sends to."""
        opened: list[tuple[trio.socket.SocketType, tuple[object, ...]]] = []
        configured = self.interface_address
        want_v4 = configured is None or ":" not in configured
        want_v6 = configured is None or ":" in configured
        try:
            if want_v4:
                sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                opened.append((sock, (MDNS_GROUP_V4, MDNS_PORT)))
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, self.multicast_ttl)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
                if configured is not None:
                    sock.setsockopt(
                        socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(configured)
                    )
            if want_v6 and socket.has_ipv6:
                scope = 0
                if configured is not None:
                    address, _, zone = configured.partition("%")
                    scope = _interface_index(address, zone)
                sock = trio.socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
                opened.append((sock, (MDNS_GROUP_V6, MDNS_PORT, 0, scope)))
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                hops = self.multicast_ttl
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
                if scope:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, scope)
        except BaseException:
            for sock, _ in opened:
                sock.close()
            raise
        return opened

    async def _query(self, key: str) -> str | None:
        try:
            opened = self._open_sockets()
        except (OSError, ValueError) as exc:
            logger.debug("mDNS query for %s: cannot open a socket: %s", key, exc)
            return None
        transaction_id = secrets.randbits(16)
        queries = [
            build_query(key, qtype=qtype, transaction_id=transaction_id)
            for qtype in (QTYPE_A, QTYPE_AAAA)
        ]
        answers: list[str] = []
        listeners: list[trio.socket.SocketType] = []
        try:
            with trio.move_on_after(self.timeout):
                for _, group in opened:
                    listener = await self._open_group_listener(group)
                    if listener is not None:
                        listeners.append(listener)
                async with trio.open_nursery() as nursery:
                    for sock in [sock for sock, _ in opened] + listeners:
                        nursery.start_soon(
                            self._receive, sock, key, transaction_id, answers, nursery.cancel_scope
                        )
                    interval = self.timeout / self.attempts
                    for attempt in range(self.attempts):
                        if attempt:
                            await trio.sleep(interval)
                        for sock, group in opened:
                            for query in queries:
                                await _send(sock, query, group, key)
                    await trio.sleep_forever()
        finally:
            for sock, _ in opened:
                sock.close()
            for sock in listeners:
                sock.close()
        if not answers:
            logger.debug("mDNS query for %s: no answer within %.3g s", key, self.timeout)
            return None
        return answers[0]

    async def _open_group_listener(
        self, group: tuple[object, ...]
    ) -> trio.socket.SocketType | None:
        """A socket that receives the multicast answers sent to ``group`` (see the module doc),
        or None where the system does not allow one (port 5353 held exclusively, no such
        interface …)."""
        family = socket.AF_INET6 if ":" in str(group[0]) else socket.AF_INET
        sock = trio.socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET:
                interface = self.interface_address or "0.0.0.0"
                membership = socket.inet_aton(MDNS_GROUP_V4) + socket.inet_aton(interface)
                await sock.bind((MDNS_GROUP_V4, MDNS_PORT))
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
            else:
                scope = group[3]
                assert isinstance(scope, int)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                await sock.bind((MDNS_GROUP_V6, MDNS_PORT, 0, scope))
                membership = socket.inet_pton(family, MDNS_GROUP_V6) + struct.pack("@I", scope)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, membership)
        except OSError as exc:
            logger.debug("mDNS: not listening on %s for multicast answers: %s", group[0], exc)
            sock.close()
            return None
        except BaseException:
            sock.close()
            raise
        return sock

    async def _receive(
        self,
        sock: trio.socket.SocketType,
        key: str,
        transaction_id: int,
        answers: list[str],
        done: trio.CancelScope,
    ) -> None:
        while True:
            try:
                data, source = await sock.recvfrom(_RECEIVE_SIZE)
            except OSError as exc:
                # For example ICMP port unreachable reported on the socket; keep listening.
                logger.debug("mDNS query for %s: receive failed: %s", key, exc)
                await trio.sleep(self.timeout / self.attempts / 4)
                continue
            # RFC 6762 §6.7: legacy/one-shot answers come from port 5353 and echo our query ID;
            # a multicast-style response (ID 0) is accepted too. Anything else is not for us.
            if source[1] != MDNS_PORT or data[:2] not in (
                transaction_id.to_bytes(2, "big"),
                b"\0\0",
            ):
                continue
            try:
                addresses = parse_response_untrusted(data, key)
            except MdnsError as exc:
                logger.debug("mDNS query for %s: dropped malformed answer: %s", key, exc)
                continue
            if addresses:
                addresses.sort(key=lambda address: ":" in address)
                answers.append(addresses[0])
                done.cancel()
                return


async def _send(
    sock: trio.socket.SocketType, query: bytes, group: tuple[object, ...], key: str
) -> None:
    try:
        await sock.sendto(query, group)
    except OSError as exc:
        # No route, no multicast-capable interface, network down: the query just gets no answer.
        logger.debug("mDNS query for %s: send to %s failed: %s", key, group[0], exc)


def _interface_index(address: str, zone: str) -> int:
    """The interface index an IPv6 query should leave from: the zone if given, else the owner."""
    if zone:
        return int(zone) if zone.isascii() and zone.isdigit() else socket.if_nametoindex(zone)
    target = str(ipaddress.IPv6Address(address))
    for entry in list_interface_addresses():
        if entry.family == socket.AF_INET6 and entry.address == target:
            return socket.if_nametoindex(entry.interface) if entry.interface else 0
    raise ValueError(f"no local interface has the address {address}")
