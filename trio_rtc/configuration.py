"""``RTCConfiguration``: the dictionary a peer connection is built with (webrtc-pc §4.2.1).

An :class:`RTCConfiguration` can be built directly or from a dict with the spec's keys;
:meth:`RTCConfiguration.coerce` validates it the way the spec's "set a configuration" algorithm
does (webrtc-pc §4.4.1.6), so that a bad configuration fails in the constructor with a message
that names the problem, not later inside a task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .dtls.certificate import RTCCertificate
from .exceptions import InvalidAccessError, InvalidModificationError, NotSupportedError
from .exceptions import SdpSyntaxError as _DomSyntaxError
from .ice.rtc import RTCIceServer

if TYPE_CHECKING:
    from .ice.mux import SharedUdp

__all__ = ["RTCConfiguration"]

_KEYS = frozenset(
    {
        "iceServers",
        "iceTransportPolicy",
        "bundlePolicy",
        "rtcpMuxPolicy",
        "certificates",
        "iceCandidatePoolSize",
        "peerIdentity",
        # trio_rtc extensions (snake_case): server mode, docs/server-mode.md.
        "shared_udp",
        "ice_lite",
    }
)
_ICE_TRANSPORT_POLICIES = ("all", "relay")
_BUNDLE_POLICIES = ("balanced", "max-compat", "max-bundle")


@attrs.frozen
class RTCConfiguration:
    """The spec's RTCConfiguration. ``certificates`` empty means "generate one when the peer
    connection opens" (an ECDSA P-256 certificate, as browsers do)."""

    iceServers: tuple[RTCIceServer, ...] = ()
    iceTransportPolicy: str = "all"
    bundlePolicy: str = "balanced"
    rtcpMuxPolicy: str = "require"
    certificates: tuple[RTCCertificate, ...] = ()
    iceCandidatePoolSize: int = 0
    #: webrtc-identity §8.2: the target peer identity; the connection is not established
    #: unless the peer proves it (see docs/identity.md).
    peerIdentity: str | None = None
    #: trio_rtc extension: gather on the shared UDP port of
    #: :func:`trio_rtc.ice.mux.open_shared_udp` instead of sockets of this connection's own
    #: (server mode, see docs/server-mode.md).
    shared_udp: SharedUdp | None = None
    #: trio_rtc extension: be an ICE-lite agent (RFC 8445 §2.5) for a server with a public
    #: address: our descriptions say ``a=ice-lite``, the agent gathers host candidates only,
    #: is always controlled and sends no checks of its own (docs/server-mode.md). Cannot be
    #: combined with ``iceServers`` or ``iceTransportPolicy: "relay"``; a lite peer is refused.
    ice_lite: bool = False

    @classmethod
    def coerce(
        cls, value: RTCConfiguration | Mapping[str, Any] | None, *, now_ms: float | None = None
    ) -> RTCConfiguration:
        """Build and validate a configuration from an instance, a dict, or None (defaults);
        ``now_ms`` as for :meth:`validate`."""
        if value is None:
            config = cls()
        elif isinstance(value, RTCConfiguration):
            config = value
        elif isinstance(value, Mapping):
            unknown = set(value) - _KEYS
            if unknown:
                raise TypeError(
                    f"RTCConfiguration has no member(s) {sorted(unknown)}; "
                    f"expected some of {sorted(_KEYS)}"
                )
            servers = value.get("iceServers") or ()
            if isinstance(servers, Mapping | str):
                raise TypeError("iceServers must be a list of RTCIceServer dicts")
            certificates = value.get("certificates") or ()
            config = cls(
                iceServers=tuple(_coerce_server(s) for s in servers),
                iceTransportPolicy=value.get("iceTransportPolicy", "all"),
                bundlePolicy=value.get("bundlePolicy", "balanced"),
                rtcpMuxPolicy=value.get("rtcpMuxPolicy", "require"),
                certificates=tuple(certificates),
                iceCandidatePoolSize=value.get("iceCandidatePoolSize", 0),
                peerIdentity=value.get("peerIdentity"),
                shared_udp=value.get("shared_udp"),
                ice_lite=value.get("ice_lite", False),
            )
        else:
            raise TypeError(
                f"configuration must be an RTCConfiguration, a dict or None, not "
                f"{type(value).__name__}"
            )
        config.validate(now_ms=now_ms)
        return config

    def validate(self, *, now_ms: float | None = None) -> None:
        """Raise the spec's error for the first invalid member (webrtc-pc §4.4.1.6).
        Certificates must not have expired at ``now_ms``, the wall-clock time in milliseconds
        since the epoch (default: now; see :func:`trio_rtc.dtls.certificate.wall_clock_ms`)."""
        if self.iceTransportPolicy not in _ICE_TRANSPORT_POLICIES:
            raise TypeError(
                f"iceTransportPolicy must be one of {list(_ICE_TRANSPORT_POLICIES)}, "
                f"not {self.iceTransportPolicy!r}"
            )
        if self.bundlePolicy not in _BUNDLE_POLICIES:
            raise TypeError(
                f"bundlePolicy must be one of {list(_BUNDLE_POLICIES)}, not {self.bundlePolicy!r}"
            )
        if self.rtcpMuxPolicy == "negotiate":
            # webrtc-pc §4.2.4: "negotiate" is at risk; user agents may refuse it.
            raise NotSupportedError("rtcpMuxPolicy 'negotiate' is not supported; use 'require'")
        if self.rtcpMuxPolicy != "require":
            raise TypeError(f"rtcpMuxPolicy must be 'require', not {self.rtcpMuxPolicy!r}")
        size = self.iceCandidatePoolSize
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= 255:
            raise TypeError(f"iceCandidatePoolSize must be an integer 0..255, not {size!r}")
        for certificate in self.certificates:
            if not isinstance(certificate, RTCCertificate):
                raise TypeError(f"certificates must be RTCCertificate objects, not {certificate!r}")
            if certificate.is_expired(now_ms):
                raise InvalidAccessError(
                    f"certificate {certificate!r} has expired; generate a new one with "
                    "RTCPeerConnection.generateCertificate()"
                )
        for server in self.iceServers:
            _validate_server(server)
        if self.peerIdentity is not None and (
            not isinstance(self.peerIdentity, str) or "@" not in self.peerIdentity
        ):
            raise TypeError(
                f"peerIdentity must be an identity string such as 'bob@example.org', not "
                f"{self.peerIdentity!r}"
            )
        if self.shared_udp is not None:
            from .ice.mux import SharedUdp  # the configuration itself stays free of trio

            if not isinstance(self.shared_udp, SharedUdp):
                raise TypeError(
                    "shared_udp must be the object 'async with open_shared_udp(...)' gives, "
                    f"not {self.shared_udp!r}"
                )
            if self.shared_udp.closed:
                raise InvalidAccessError("shared_udp: the open_shared_udp block has ended")
        if not isinstance(self.ice_lite, bool):
            raise TypeError(f"ice_lite must be True or False, not {self.ice_lite!r}")
        if self.ice_lite:
            self._validate_lite()

    def _validate_lite(self) -> None:
        """RFC 8445 §2.5: an ICE-lite agent gathers host candidates only, so the members that
        ask for other candidates cannot work with it."""
        if self.iceTransportPolicy == "relay":
            raise InvalidAccessError(
                "ice_lite cannot be combined with iceTransportPolicy 'relay': an ICE-lite agent "
                "gathers host candidates only (RFC 8445 §2.5); use 'all' or turn ice_lite off"
            )
        if self.iceServers:
            raise InvalidAccessError(
                "ice_lite cannot be combined with iceServers: an ICE-lite agent gathers host "
                "candidates only (RFC 8445 §2.5), so STUN/TURN servers would never be used; "
                "leave iceServers empty or turn ice_lite off"
            )

    def check_update(self, new: RTCConfiguration, *, local_description_set: bool) -> None:
        """The restrictions of ``setConfiguration`` (webrtc-pc §4.4.1.6 steps 3-7)."""
        if new.certificates and new.certificates != self.certificates:
            raise InvalidModificationError(
                "certificates cannot change after construction; leave them out or pass the same"
            )
        if new.bundlePolicy != self.bundlePolicy:
            raise InvalidModificationError(
                f"bundlePolicy cannot change ({self.bundlePolicy!r} -> {new.bundlePolicy!r})"
            )
        if new.rtcpMuxPolicy != self.rtcpMuxPolicy:
            raise InvalidModificationError(
                f"rtcpMuxPolicy cannot change ({self.rtcpMuxPolicy!r} -> {new.rtcpMuxPolicy!r})"
            )
        if new.shared_udp is not None and new.shared_udp is not self.shared_udp:
            raise InvalidModificationError(
                "shared_udp cannot change after construction; leave it out or pass the same"
            )
        if new.ice_lite and not self.ice_lite:
            raise InvalidModificationError(
                "ice_lite cannot be turned on after construction; create a new connection"
            )
        if self.ice_lite:
            # Leaving ice_lite out keeps it (it is fixed at construction), but what the new
            # configuration asks for must still suit a lite agent.
            attrs.evolve(new, ice_lite=True)._validate_lite()
        if local_description_set and new.iceCandidatePoolSize != self.iceCandidatePoolSize:
            raise InvalidModificationError(
                "iceCandidatePoolSize cannot change once a local description is set"
            )

    def to_dict(self) -> dict[str, Any]:
        """The dictionary ``getConfiguration()`` returns, with the spec's keys."""
        return {
            "iceServers": [
                {
                    "urls": list(s.urls),
                    **({"username": s.username} if s.username is not None else {}),
                    **({"credential": s.credential} if s.credential is not None else {}),
                }
                for s in self.iceServers
            ],
            "iceTransportPolicy": self.iceTransportPolicy,
            "bundlePolicy": self.bundlePolicy,
            "rtcpMuxPolicy": self.rtcpMuxPolicy,
            "certificates": list(self.certificates),
            "iceCandidatePoolSize": self.iceCandidatePoolSize,
            **({"peerIdentity": self.peerIdentity} if self.peerIdentity is not None else {}),
            **({"shared_udp": self.shared_udp} if self.shared_udp is not None else {}),
            **({"ice_lite": True} if self.ice_lite else {}),
        }


def _coerce_server(value: RTCIceServer | Mapping[str, Any]) -> RTCIceServer:
    if isinstance(value, RTCIceServer):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"each iceServers entry must be a dict with 'urls', not {value!r}")
    unknown = set(value) - {"urls", "username", "credential"}
    if unknown:
        raise TypeError(
            f"RTCIceServer has no member(s) {sorted(unknown)}; expected urls, username, credential"
        )
    return RTCIceServer.coerce(value)


def _validate_server(server: RTCIceServer) -> None:
    """webrtc-pc §4.4.1.6 "validate an ICE server": scheme, syntax, TURN credentials."""
    for url in server.urls:
        scheme, sep, rest = url.partition(":")
        scheme = scheme.lower()
        if not sep or not rest or " " in url:
            raise _DomSyntaxError(f"ICE server URL {url!r} cannot be parsed")
        if scheme not in ("stun", "stuns", "turn", "turns"):
            raise NotSupportedError(
                f"ICE server URL {url!r} has scheme {scheme!r}; expected stun, stuns, turn, turns"
            )
        host_port = rest.split("?", 1)[0]
        if not host_port or host_port.startswith(":"):
            raise _DomSyntaxError(f"ICE server URL {url!r} has no host")
        if scheme in ("stun", "stuns") and "?" in rest:
            raise _DomSyntaxError(f"a {scheme}: URL takes no query: {url!r}")
        if scheme in ("turn", "turns") and (server.username is None or server.credential is None):
            raise InvalidAccessError(f"TURN server {url!r} needs a username and a credential")
