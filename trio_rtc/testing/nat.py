"""NAT boxes for the virtual network, with the behaviours RFC 4787 names.

A :class:`Nat` owns one public IP and a private realm (an IP network such as ``10.0.1.0/24``).
Added to a :class:`~trio_rtc.testing.VirtualNetwork` with :meth:`VirtualNetwork.add_nat`, it
rewrites the source of every datagram a host in the realm sends outside it, and lets datagrams
addressed to its public IP in (rewritten to the private host) only when its filtering allows.

Two independent behaviours (RFC 4787 §4.1 and §5):

* **mapping**: which outbound datagrams share one public port. Endpoint-independent mapping
  reuses the port for every remote; address-dependent mapping makes a new one per remote IP;
  address-and-port-dependent mapping one per remote (IP, port).
* **filtering**: which inbound datagrams a mapping lets in. Endpoint-independent filtering
  lets anyone in; address-dependent filtering only IPs the host has sent to through the
  mapping; address-and-port-dependent filtering only (IP, port) pairs it has sent to.

The classic names are presets: :data:`FULL_CONE` (EIM + EIF), :data:`ADDRESS_RESTRICTED`
(EIM + ADF), :data:`PORT_RESTRICTED` (EIM + APDF) and :data:`SYMMETRIC` (APDM + APDF).

A mapping expires :attr:`NatBehavior.timeout` seconds after the last outbound datagram that
used it (RFC 4787 REQ-5 asks for at least 2 minutes, REQ-6 for outbound refresh; inbound
traffic does not refresh here). Public ports are handed out in order from
:attr:`NatBehavior.first_port`, never reused, so simulations stay reproducible.

The box is pure: no trio, no clock; the network passes ``now``.
"""

from __future__ import annotations

import enum
import ipaddress

import attrs

__all__ = [
    "ADDRESS_RESTRICTED",
    "FULL_CONE",
    "PORT_RESTRICTED",
    "SYMMETRIC",
    "Filtering",
    "Mapping",
    "Nat",
    "NatBehavior",
    "NatStats",
]

Address = tuple[str, int]


class Mapping(enum.Enum):
    """RFC 4787 §4.1 mapping behaviour."""

    ENDPOINT_INDEPENDENT = "endpoint-independent"
    ADDRESS_DEPENDENT = "address-dependent"
    ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"


class Filtering(enum.Enum):
    """RFC 4787 §5 filtering behaviour."""

    ENDPOINT_INDEPENDENT = "endpoint-independent"
    ADDRESS_DEPENDENT = "address-dependent"
    ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"


def _check_timeout(_instance: object, _attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0.0:
        raise ValueError(f"timeout must be > 0 seconds, got {value}")


def _check_port(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= 65535:
        raise ValueError(f"first_port must be a UDP port, got {value}")


@attrs.define(frozen=True)
class NatBehavior:
    """How a NAT maps and filters; see the module docstring and the presets."""

    mapping: Mapping
    filtering: Filtering
    timeout: float = attrs.field(default=120.0, validator=_check_timeout)
    """Seconds without outbound traffic after which a mapping is removed."""
    first_port: int = attrs.field(default=20000, validator=_check_port)
    """First public port handed out."""


FULL_CONE = NatBehavior(Mapping.ENDPOINT_INDEPENDENT, Filtering.ENDPOINT_INDEPENDENT)
ADDRESS_RESTRICTED = NatBehavior(Mapping.ENDPOINT_INDEPENDENT, Filtering.ADDRESS_DEPENDENT)
PORT_RESTRICTED = NatBehavior(Mapping.ENDPOINT_INDEPENDENT, Filtering.ADDRESS_AND_PORT_DEPENDENT)
SYMMETRIC = NatBehavior(Mapping.ADDRESS_AND_PORT_DEPENDENT, Filtering.ADDRESS_AND_PORT_DEPENDENT)


@attrs.define
class NatStats:
    mappings_created: int = 0
    mappings_expired: int = 0
    translated_out: int = 0
    translated_in: int = 0
    filtered: int = 0
    """Inbound datagrams dropped: no mapping on that port, or the filter refused the sender."""


@attrs.define(eq=False)
class _Binding:
    private: Address
    public_port: int
    last_outbound: float
    # Who the host has sent to through this mapping (what the filters consult).
    remote_ips: set[str] = attrs.Factory(set)
    remotes: set[Address] = attrs.Factory(set)


class Nat:
    """One NAT box: ``Nat("203.0.113.1", "10.0.1.0/24", SYMMETRIC)``."""

    def __init__(self, public_ip: str, private_network: str, behavior: NatBehavior) -> None:
        self.public_ip = str(ipaddress.ip_address(public_ip))
        self.private_network = ipaddress.ip_network(private_network)
        if ipaddress.ip_address(self.public_ip) in self.private_network:
            raise ValueError(f"public IP {public_ip} lies inside the private {private_network}")
        self.behavior = behavior
        self.stats = NatStats()
        self._by_key: dict[tuple[Address, str | None, int | None], _Binding] = {}
        self._by_port: dict[int, _Binding] = {}
        self._next_port = behavior.first_port

    def __repr__(self) -> str:
        behavior = self.behavior
        return (
            f"<Nat {self.public_ip} <- {self.private_network} mapping={behavior.mapping.value}"
            f" filtering={behavior.filtering.value}>"
        )

    def contains(self, ip: str) -> bool:
        """Whether *ip* is a host of this NAT's private realm."""
        try:
            return ipaddress.ip_address(ip) in self.private_network
        except ValueError:
            return False

    @property
    def mappings(self) -> dict[Address, Address]:
        """Live mappings, ``public (ip, port) -> private (ip, port)`` (expired ones may linger
        until the next datagram that would use them)."""
        return {(self.public_ip, port): b.private for port, b in self._by_port.items()}

    def translate_outbound(self, private: Address, remote: Address, now: float) -> Address:
        """The public source address of a datagram from *private* to *remote*."""
        mapping = self.behavior.mapping
        if mapping is Mapping.ENDPOINT_INDEPENDENT:
            key: tuple[Address, str | None, int | None] = (private, None, None)
        elif mapping is Mapping.ADDRESS_DEPENDENT:
            key = (private, remote[0], None)
        else:
            key = (private, remote[0], remote[1])
        binding = self._by_key.get(key)
        if binding is not None and self._expired(binding, now):
            self._remove(key, binding)
            binding = None
        if binding is None:
            binding = _Binding(private, self._allocate_port(), now)
            self._by_key[key] = binding
            self._by_port[binding.public_port] = binding
            self.stats.mappings_created += 1
        binding.last_outbound = now
        binding.remote_ips.add(remote[0])
        binding.remotes.add(remote)
        self.stats.translated_out += 1
        return (self.public_ip, binding.public_port)

    def translate_inbound(self, public_port: int, remote: Address, now: float) -> Address | None:
        """The private destination of a datagram from *remote* to our *public_port*, or None
        when no live mapping exists or the filter refuses it."""
        binding = self._by_port.get(public_port)
        if binding is None or self._expired(binding, now):
            if binding is not None:
                self._remove_binding(binding)
            self.stats.filtered += 1
            return None
        filtering = self.behavior.filtering
        if (filtering is Filtering.ADDRESS_DEPENDENT and remote[0] not in binding.remote_ips) or (
            filtering is Filtering.ADDRESS_AND_PORT_DEPENDENT and remote not in binding.remotes
        ):
            self.stats.filtered += 1
            return None
        self.stats.translated_in += 1
        return binding.private

    def _expired(self, binding: _Binding, now: float) -> bool:
        return now - binding.last_outbound > self.behavior.timeout

    def _allocate_port(self) -> int:
        port = self._next_port
        if port > 65535:
            raise OSError(f"NAT {self.public_ip} ran out of public ports")
        self._next_port += 1
        return port

    def _remove(self, key: tuple[Address, str | None, int | None], binding: _Binding) -> None:
        del self._by_key[key]
        del self._by_port[binding.public_port]
        self.stats.mappings_expired += 1

    def _remove_binding(self, binding: _Binding) -> None:
        for key, candidate in self._by_key.items():
            if candidate is binding:
                self._remove(key, binding)
                return
