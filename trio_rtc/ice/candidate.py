"""ICE candidates: the model, the SDP ``candidate`` attribute, priorities and foundations.

Pure code: no sockets, no clocks. The grammar is RFC 8839 §5.1; priorities and foundations are
RFC 8445 §5.1.2 and §5.1.1.3; pair priority is RFC 8445 §6.1.2.3.

The parser is strict where strictness protects us (numbers are ASCII digits within their ranges,
names are RFC 3261 tokens, values are visible ASCII, the input is bounded) and tolerant where
browsers differ from each other: the transport is case-insensitive ("UDP" from Firefox, "udp" from
Chromium), runs of spaces are accepted, and the line may come with or without ``a=``/``candidate:``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket

import attrs

__all__ = [
    "MAX_CANDIDATE_LENGTH",
    "TYPE_PREFERENCE",
    "Candidate",
    "CandidateError",
    "candidate_foundation",
    "candidate_priority",
    "pair_priority",
    "parse_address_untrusted",
]


class CandidateError(ValueError):
    """Text that is not a valid ``candidate`` attribute; the message says what was wrong."""


# RFC 8445 §5.1.2.2 recommends 126 for host, 110 for peer-reflexive, 100 for server-reflexive
# and 0 for relayed candidates.
TYPE_PREFERENCE: dict[str, int] = {"host": 126, "prflx": 110, "srflx": 100, "relay": 0}

# A candidate line is a few dozen bytes; browsers stay far below 1 KiB. The bound keeps a hostile
# peer from making us split and scan megabytes per candidate.
MAX_CANDIDATE_LENGTH = 4096

_MAX_PRIORITY = 2**31 - 1
_MAX_COMPONENT = 256
_MAX_UINT32 = 2**32 - 1

# ice-char = ALPHA / DIGIT / "+" / "/"   (RFC 8839 §5.1)
_FOUNDATION_RE = re.compile(r"[A-Za-z0-9+/]{1,32}\Z")
# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")  (RFC 3261)
_TOKEN_RE = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+\Z")
# VCHAR = %x21-7E; extension-att-value = *VCHAR, but a value of zero length cannot be told apart
# from a missing one once the line is split on spaces, so we ask for at least one character.
_VCHAR_RE = re.compile(r"[\x21-\x7e]+\Z")
_DIGITS_RE = re.compile(r"[0-9]{1,10}\Z")
# A host name label per RFC 1123; mDNS names from browsers are "<uuid>.local".
_HOSTNAME_RE = re.compile(
    r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
    r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?\Z"
)

_TCP_TYPES = frozenset({"active", "passive", "so"})
# Extension attributes that get a field of their own, in the order to_sdp writes them.
_KNOWN_EXTENSIONS = ("tcptype", "generation", "ufrag", "network-id", "network-cost")


def parse_address_untrusted(host: str) -> str | None:
    """Return ``host`` as a normalised IP literal, or ``None`` when it is not an IP address.

    Brackets (``[::1]``) and an IPv6 zone (``fe80::1%eth0``) are removed: a zone names one of *our*
    interfaces and means nothing in a candidate sent to or received from a peer. IPv6 comes back
    in compressed form, so equal addresses compare equal as strings.
    """
    if len(host) > 64:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _parse_uint(field: str, what: str, low: int, high: int) -> int:
    if _DIGITS_RE.match(field) is None:
        raise CandidateError(f"{what} must be a decimal number, got {field!r}")
    value = int(field)
    if not low <= value <= high:
        raise CandidateError(f"{what} must be in {low}..{high}, got {value}")
    return value


def _parse_connection_address(field: str, what: str) -> str:
    """An RFC 4566 connection-address as ICE uses it: an IP literal or a host name (mDNS)."""
    address = parse_address_untrusted(field)
    if address is not None:
        return address
    if len(field) <= 253 and _HOSTNAME_RE.match(field) is not None:
        return field.rstrip(".")
    raise CandidateError(f"{what} must be an IP address or a host name, got {field!r}")


@attrs.frozen(slots=True)
class Candidate:
    """One ICE candidate as carried by the SDP ``candidate`` attribute (RFC 8839 §5.1)."""

    foundation: str
    component: int
    transport: str
    priority: int
    host: str
    port: int
    type: str
    related_address: str | None = None
    related_port: int | None = None
    tcptype: str | None = None
    generation: int | None = None
    ufrag: str | None = None
    network_id: int | None = None
    network_cost: int | None = None
    extensions: tuple[tuple[str, str], ...] = ()
    #: For a candidate we gathered through a STUN or TURN server (srflx, relay): that server's
    #: URL as configured. Local knowledge only: never written to SDP, never compared.
    server_url: str | None = attrs.field(default=None, eq=False, repr=False)

    @classmethod
    def from_sdp(cls, text: str) -> Candidate:
        """Parse ``a=candidate:...``, ``candidate:...`` or the bare attribute value.

        Raises :class:`CandidateError` (and nothing else) for any text that is not a candidate.
        """
        if len(text) > MAX_CANDIDATE_LENGTH:
            raise CandidateError(f"candidate longer than {MAX_CANDIDATE_LENGTH} characters")
        # Only the line ending an SDP line may carry is stripped; any other white space is an error
        # below because it is not VCHAR.
        value = text.strip("\r\n ")
        lowered = value[:12].lower()
        if lowered.startswith("a=candidate:"):
            value = value[12:]
        elif lowered.startswith("candidate:"):
            value = value[10:]
        fields = [f for f in value.split(" ") if f]
        if len(fields) < 8:
            raise CandidateError(
                f"candidate needs at least 8 fields (foundation component transport priority "
                f"address port typ type), got {len(fields)}"
            )
        foundation, component, transport, priority, address, port, typ, cand_type = fields[:8]
        if _FOUNDATION_RE.match(foundation) is None:
            raise CandidateError(f"foundation must be 1 to 32 ice-chars, got {foundation!r}")
        if _TOKEN_RE.match(transport) is None:
            raise CandidateError(f"transport must be a token, got {transport!r}")
        if typ.lower() != "typ":
            raise CandidateError(f"expected 'typ' after the port, got {typ!r}")
        if _TOKEN_RE.match(cand_type) is None:
            raise CandidateError(f"candidate type must be a token, got {cand_type!r}")

        related_address: str | None = None
        related_port: int | None = None
        rest = fields[8:]
        index = 0
        # rel-addr and rel-port come right after the type, in that order (RFC 8839 §5.1 grammar).
        if index + 1 < len(rest) and rest[index].lower() == "raddr":
            related_address = _parse_connection_address(rest[index + 1], "raddr")
            index += 2
        if index + 1 < len(rest) and rest[index].lower() == "rport":
            related_port = _parse_uint(rest[index + 1], "rport", 0, 65535)
            index += 2
        if (len(rest) - index) % 2:
            raise CandidateError(f"extension {rest[-1]!r} has no value")

        known: dict[str, str] = {}
        extensions: list[tuple[str, str]] = []
        for name, ext_value in zip(rest[index::2], rest[index + 1 :: 2], strict=True):
            if _TOKEN_RE.match(name) is None:
                raise CandidateError(f"extension name must be a token, got {name!r}")
            if _VCHAR_RE.match(ext_value) is None:
                raise CandidateError(f"extension {name!r} value must be visible ASCII")
            if name.lower() in ("raddr", "rport"):
                raise CandidateError(f"{name!r} must come right after the candidate type")
            if name in _KNOWN_EXTENSIONS:
                if name in known:
                    raise CandidateError(f"extension {name!r} appears twice")
                known[name] = ext_value
            else:
                extensions.append((name, ext_value))

        tcptype = known.get("tcptype")
        if tcptype is not None:
            tcptype = tcptype.lower()
            if tcptype not in _TCP_TYPES:
                raise CandidateError(f"tcptype must be active, passive or so, got {tcptype!r}")

        def optional_uint(name: str) -> int | None:
            raw = known.get(name)
            return None if raw is None else _parse_uint(raw, name, 0, _MAX_UINT32)

        return cls(
            foundation=foundation,
            component=_parse_uint(component, "component", 1, _MAX_COMPONENT),
            transport=transport.lower(),
            priority=_parse_uint(priority, "priority", 1, _MAX_PRIORITY),
            host=_parse_connection_address(address, "connection address"),
            port=_parse_uint(port, "port", 0, 65535),
            type=cand_type.lower(),
            related_address=related_address,
            related_port=related_port,
            tcptype=tcptype,
            generation=optional_uint("generation"),
            ufrag=known.get("ufrag"),
            network_id=optional_uint("network-id"),
            network_cost=optional_uint("network-cost"),
            extensions=tuple(extensions),
        )

    def to_sdp(self) -> str:
        """The ``candidate:...`` attribute (without ``a=``) that :meth:`from_sdp` reads back."""
        parts = [
            f"candidate:{self.foundation} {self.component} {self.transport} {self.priority}",
            f"{self.host} {self.port} typ {self.type}",
        ]
        if self.related_address is not None:
            parts.append(f"raddr {self.related_address}")
        if self.related_port is not None:
            parts.append(f"rport {self.related_port}")
        known = (
            self.tcptype,
            self.generation,
            self.ufrag,
            self.network_id,
            self.network_cost,
        )
        for name, value in zip(_KNOWN_EXTENSIONS, known, strict=True):
            if value is not None:
                parts.append(f"{name} {value}")
        for name, ext_value in self.extensions:
            parts.append(f"{name} {ext_value}")
        return " ".join(parts)

    @property
    def is_mdns(self) -> bool:
        """True when the address is an mDNS name (RFC 8445 privacy: ``<uuid>.local``)."""
        return self.host.lower().endswith(".local")

    @property
    def family(self) -> int | None:
        """``socket.AF_INET``/``AF_INET6`` for an IP literal, ``None`` for a host name."""
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            return None
        return socket.AF_INET if address.version == 4 else socket.AF_INET6


def candidate_priority(
    candidate_type: str, local_preference: int = 65535, component: int = 1
) -> int:
    """RFC 8445 §5.1.2.1: ``2^24 * type preference + 2^8 * local preference + (256 - component)``.

    ``local_preference`` (0..65535) orders candidates of one type, for example one per interface
    or per address family (RFC 8421 for multihomed and dual-stack hosts).
    """
    try:
        type_preference = TYPE_PREFERENCE[candidate_type]
    except KeyError:
        raise ValueError(
            f"candidate type must be one of {sorted(TYPE_PREFERENCE)}, got {candidate_type!r}"
        ) from None
    if not 0 <= local_preference <= 65535:
        raise ValueError(f"local preference must be in 0..65535, got {local_preference}")
    if not 1 <= component <= _MAX_COMPONENT:
        raise ValueError(f"component must be in 1..256, got {component}")
    return (type_preference << 24) + (local_preference << 8) + (256 - component)


def candidate_foundation(
    candidate_type: str, transport: str, base_address: str, server: str | None = None
) -> str:
    """RFC 8445 §5.1.1.3: equal for candidates of one type, base IP, server and transport.

    The port is deliberately not an input: candidates that differ only in port share a foundation,
    which is what lets the frozen-pair algorithm (RFC 8445 §6.1.2.6) unfreeze them together. The
    result is eight hex digits of a SHA-256 digest, so it is stable across processes and runs.
    """
    base = parse_address_untrusted(base_address) or base_address.lower()
    server_key = "" if server is None else (parse_address_untrusted(server) or server.lower())
    key = "\x00".join((candidate_type.lower(), transport.lower(), base, server_key))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def pair_priority(controlling_priority: int, controlled_priority: int) -> int:
    """RFC 8445 §6.1.2.3: ``2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0)``, G from the controlling side."""
    low = min(controlling_priority, controlled_priority)
    high = max(controlling_priority, controlled_priority)
    return (low << 32) + 2 * high + (1 if controlling_priority > controlled_priority else 0)
