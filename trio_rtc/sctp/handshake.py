"""INIT / INIT ACK parameters and the signed State Cookie (RFC 9260 §5.1, §5.1.3).

The cookie carries everything the passive side must remember about the peer's INIT, so that no
state is kept before the COOKIE ECHO proves the peer's address (RFC 9260 §5.1.3). It is signed
with HMAC-SHA256 under a per-association random secret.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

import attrs

from .chunks import (
    EDMID_DTLS,
    ChunkType,
    InitChunk,
    Parameter,
    ParameterType,
    SctpError,
    encode_parameter,
)

__all__ = ["PeerCapabilities", "StateCookie", "build_init_parameters", "peer_capabilities"]

_COOKIE = struct.Struct("!IIIIHHBd")
_MAC_SIZE = 16


@attrs.frozen
class PeerCapabilities:
    forward_tsn: bool
    reconfig: bool
    zero_checksum: bool


def build_init_parameters(*, zero_checksum: bool) -> list[Parameter]:
    """What we announce: FORWARD-TSN, RE-CONFIG and, over DTLS, RFC 9653 zero checksum."""
    parameters = [
        Parameter(ParameterType.FORWARD_TSN_SUPPORTED, b""),
        Parameter(
            ParameterType.SUPPORTED_EXTENSIONS,
            bytes([ChunkType.RECONFIG, ChunkType.FORWARD_TSN]),
        ),
    ]
    if zero_checksum:
        parameters.append(
            Parameter(ParameterType.ZERO_CHECKSUM_ACCEPTABLE, struct.pack("!I", EDMID_DTLS))
        )
    return parameters


def peer_capabilities(init: InitChunk) -> tuple[PeerCapabilities, list[Parameter]]:
    """Read the peer's INIT/INIT ACK parameters (RFC 9260 §3.2.1 for unknown ones).

    Returns the capabilities and the unrecognized parameters the peer asked us to report.
    """
    forward_tsn = reconfig = zero_checksum = False
    unrecognized: list[Parameter] = []
    for parameter in init.parameters:
        kind = parameter.type
        if kind == ParameterType.FORWARD_TSN_SUPPORTED:
            forward_tsn = True
        elif kind == ParameterType.SUPPORTED_EXTENSIONS:
            forward_tsn = forward_tsn or ChunkType.FORWARD_TSN in parameter.value
            reconfig = ChunkType.RECONFIG in parameter.value
        elif kind == ParameterType.ZERO_CHECKSUM_ACCEPTABLE:
            zero_checksum = (
                len(parameter.value) == 4 and struct.unpack("!I", parameter.value)[0] == EDMID_DTLS
            )
        elif kind in (
            ParameterType.STATE_COOKIE,
            ParameterType.COOKIE_PRESERVATIVE,
            ParameterType.ECN_CAPABLE,
            ParameterType.UNRECOGNIZED_PARAMETER,
        ):
            continue
        else:
            # The two high bits say what to do with an unknown parameter.
            action = kind >> 14
            if action in (1, 3):
                unrecognized.append(parameter)
            if action in (0, 1):
                break
    return PeerCapabilities(forward_tsn, reconfig, zero_checksum), unrecognized


def encode_unrecognized(parameters: list[Parameter]) -> list[Parameter]:
    """Wrap unknown parameters for the INIT ACK's Unrecognized Parameter (RFC 9260 §3.3.3)."""
    return [
        Parameter(ParameterType.UNRECOGNIZED_PARAMETER, encode_parameter(p.type, p.value))
        for p in parameters
    ]


@attrs.frozen
class StateCookie:
    local_tag: int
    peer_tag: int
    peer_initial_tsn: int
    peer_a_rwnd: int
    peer_outbound_streams: int
    peer_inbound_streams: int
    capabilities: PeerCapabilities
    created_at: float

    def encode(self, secret: bytes) -> bytes:
        flags = (
            self.capabilities.forward_tsn
            | self.capabilities.reconfig << 1
            | self.capabilities.zero_checksum << 2
        )
        body = _COOKIE.pack(
            self.local_tag,
            self.peer_tag,
            self.peer_initial_tsn,
            self.peer_a_rwnd,
            self.peer_outbound_streams,
            self.peer_inbound_streams,
            flags,
            self.created_at,
        )
        return body + hmac.new(secret, body, hashlib.sha256).digest()[:_MAC_SIZE]

    @classmethod
    def decode_untrusted(cls, data: bytes, secret: bytes) -> StateCookie:
        if len(data) != _COOKIE.size + _MAC_SIZE:
            raise SctpError("state cookie has the wrong size")
        body = data[: _COOKIE.size]
        mac = hmac.new(secret, body, hashlib.sha256).digest()[:_MAC_SIZE]
        if not hmac.compare_digest(mac, data[_COOKIE.size :]):
            raise SctpError("state cookie signature does not verify")
        local, peer, tsn, rwnd, outbound, inbound, flags, created = _COOKIE.unpack(body)
        capabilities = PeerCapabilities(bool(flags & 1), bool(flags & 2), bool(flags & 4))
        return cls(local, peer, tsn, rwnd, outbound, inbound, capabilities, created)
