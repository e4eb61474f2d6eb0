"""Local interface addresses, and the subset ICE gathers host candidates from.

Addresses come from the C library's ``getifaddrs(3)`` through ctypes (Linux and macOS share the
``struct ifaddrs`` layout; only ``struct sockaddr`` differs, see :func:`_sockaddr_family`). Where
``getifaddrs`` cannot be loaded we fall back to asking the kernel which source address it would use
towards a documentation address: ``connect`` on a UDP socket picks a route and a source address
without sending any packet.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import ipaddress
import logging
import socket
import sys

import attrs

__all__ = ["InterfaceAddress", "list_interface_addresses", "usable_host_addresses"]

logger = logging.getLogger(__name__)

_IFF_UP = 0x1
_IFF_LOOPBACK = 0x8
# BSD-derived systems start struct sockaddr with a length byte, then a one-byte family.
_SA_LEN_PREFIX = sys.platform == "darwin" or "bsd" in sys.platform
# Documentation addresses (RFC 5737, RFC 3849): routed like any remote address, owned by nobody.
_PROBE_V4 = "192.0.2.1"
_PROBE_V6 = "2001:db8::1"


@attrs.frozen
class InterfaceAddress:
    """One address configured on one local interface."""

    interface: str
    address: str
    family: int
    scope_id: int
    is_loopback: bool
    is_link_local: bool

    @property
    def bind_address(self) -> tuple[str, int] | tuple[str, int, int, int]:
        """The socket address to ``bind`` on an ephemeral port (link-local needs its scope)."""
        if self.family == socket.AF_INET6:
            return (self.address, 0, 0, self.scope_id)
        return (self.address, 0)


class _IfAddrs(ctypes.Structure):
    pass


_IfAddrs._fields_ = [
    ("ifa_next", ctypes.POINTER(_IfAddrs)),
    ("ifa_name", ctypes.c_char_p),
    ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.c_void_p),
    ("ifa_netmask", ctypes.c_void_p),
    ("ifa_dstaddr", ctypes.c_void_p),
    ("ifa_data", ctypes.c_void_p),
]


def _sockaddr_family(raw: bytes) -> int:
    if _SA_LEN_PREFIX:
        return raw[1]
    return int.from_bytes(raw[:2], sys.byteorder)


def _make(
    interface: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, scope: int, loopback: bool
) -> InterfaceAddress:
    is_v6 = ip.version == 6
    return InterfaceAddress(
        interface=interface,
        address=str(ip),
        family=socket.AF_INET6 if is_v6 else socket.AF_INET,
        # Only link-local IPv6 needs a scope to be bound or reached (RFC 4007 §6).
        scope_id=scope if is_v6 and ip.is_link_local else 0,
        is_loopback=loopback or ip.is_loopback,
        is_link_local=ip.is_link_local,
    )


@functools.cache
def _libc() -> ctypes.CDLL:
    # find_library runs `ldconfig -p` in a subprocess (~3 ms): look it up once per process.
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _getifaddrs_entries() -> list[InterfaceAddress] | None:
    """Every IPv4/IPv6 address of an up interface, or ``None`` when getifaddrs is unavailable."""
    try:
        libc = _libc()
        getifaddrs = libc.getifaddrs
        freeifaddrs = libc.freeifaddrs
    except (OSError, AttributeError):
        return None
    getifaddrs.argtypes = [ctypes.POINTER(ctypes.POINTER(_IfAddrs))]
    getifaddrs.restype = ctypes.c_int
    freeifaddrs.argtypes = [ctypes.POINTER(_IfAddrs)]
    freeifaddrs.restype = None

    head = ctypes.POINTER(_IfAddrs)()
    if getifaddrs(ctypes.byref(head)) != 0:
        logger.debug("getifaddrs failed: %s", errno.errorcode.get(ctypes.get_errno(), "?"))
        return None
    found: list[InterfaceAddress] = []
    try:
        node = head
        while node:
            entry = node.contents
            node = entry.ifa_next
            if not entry.ifa_addr or not entry.ifa_flags & _IFF_UP:
                continue
            name = (entry.ifa_name or b"").decode("utf-8", "replace")
            family = _sockaddr_family(ctypes.string_at(entry.ifa_addr, 2))
            loopback = bool(entry.ifa_flags & _IFF_LOOPBACK)
            if family == socket.AF_INET:
                raw = ctypes.string_at(entry.ifa_addr, 8)
                found.append(_make(name, ipaddress.IPv4Address(raw[4:8]), 0, loopback))
            elif family == socket.AF_INET6:
                # struct sockaddr_in6: family/len, port, flowinfo, address[16], scope_id.
                raw = ctypes.string_at(entry.ifa_addr, 28)
                scope = int.from_bytes(raw[24:28], sys.byteorder)
                found.append(_make(name, ipaddress.IPv6Address(raw[8:24]), scope, loopback))
    finally:
        freeifaddrs(head)
    return found


def _fallback_entries() -> list[InterfaceAddress]:
    """Default-route source addresses plus loopback, without knowing interface names."""
    found: list[InterfaceAddress] = []
    for family, probe, loopback in (
        (socket.AF_INET, _PROBE_V4, "127.0.0.1"),
        (socket.AF_INET6, _PROBE_V6, "::1"),
    ):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                # No datagram leaves: connect on UDP only selects a route and a source address.
                sock.connect((probe, 9))
                source = sock.getsockname()[0]
        except OSError:
            source = None
        if source is not None:
            ip = ipaddress.ip_address(source.split("%", 1)[0])
            if not ip.is_unspecified and not ip.is_loopback:
                found.append(_make("", ip, 0, False))
        found.append(_make("", ipaddress.ip_address(loopback), 0, True))
    return found


def _bindable(entry: InterfaceAddress) -> bool:
    # A tentative (duplicate address detection still running) or dadfailed IPv6 address is listed
    # by getifaddrs but refuses bind with EADDRNOTAVAIL; such an address cannot carry ICE traffic.
    try:
        with socket.socket(entry.family, socket.SOCK_DGRAM) as sock:
            sock.bind(entry.bind_address)
    except OSError:
        return False
    return True


def list_interface_addresses() -> list[InterfaceAddress]:
    """IPv4 and IPv6 addresses of the interfaces that are up, skipping any that cannot be bound."""
    entries = _getifaddrs_entries()
    if entries is None:
        entries = _fallback_entries()
    return [entry for entry in entries if _bindable(entry)]


def usable_host_addresses(
    *, include_loopback: bool | None = None, ipv6: bool = True, link_local: bool = False
) -> list[InterfaceAddress]:
    """The addresses ICE gathers host candidates from (RFC 8445 §5.1.1.1).

    Every IPv4 and IPv6 address of every up interface, except:

    - loopback, unless ``include_loopback`` is true, or it is ``None`` (the default) and nothing
      else is left: a peer on another machine can never reach 127.0.0.1, but two peers on a
      machine without a network can still talk over it;
    - IPv6 link-local (fe80::/10), unless ``link_local`` is true: reaching it needs a scope the
      remote peer cannot know, and RFC 8445 §5.1.1.1 advises against gathering it when other
      addresses exist. IPv4 link-local (169.254/16) is a real address on an unmanaged network and
      is kept;
    - IPv6 altogether when ``ipv6`` is false.
    """
    chosen: list[InterfaceAddress] = []
    loopback: list[InterfaceAddress] = []
    for entry in list_interface_addresses():
        if entry.family == socket.AF_INET6:
            if not ipv6 or (entry.is_link_local and not link_local):
                continue
        (loopback if entry.is_loopback else chosen).append(entry)
    if include_loopback or (include_loopback is None and not chosen):
        chosen.extend(loopback)
    return chosen
