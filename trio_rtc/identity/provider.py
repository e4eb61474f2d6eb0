"""The identity-provider seam (W3C "Identity for WebRTC 1.0" §5-§6): the dictionaries an IdP
exchanges with a peer connection, the interface a Python IdP implements, and the registry that
maps an IdP's (domain, protocol) to the object that speaks for it.

A browser loads an IdP's JavaScript from ``https://<domain>/.well-known/idp-proxy/<protocol>``
and runs it in a sandbox. trio_rtc runs no JavaScript: an application registers a Python object
for each (domain, protocol) it uses or accepts, and that object is asked to generate and to
validate assertions, with the same arguments and results the JavaScript proxy would get.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple, Protocol, runtime_checkable

import attrs

from ..exceptions import RTCError

__all__ = [
    "DEFAULT_IDP_TIMEOUT",
    "IDP_ERROR_DETAILS",
    "IdentityProviderError",
    "IdentityProviderRegistry",
    "RTCIdentityAssertion",
    "RTCIdentityAssertionResult",
    "RTCIdentityProvider",
    "RTCIdentityProviderDetails",
    "RTCIdentityProviderOptions",
    "RTCIdentityValidationResult",
    "check_domain",
    "check_protocol",
    "default_registry",
]

#: The spec's "SHOULD limit the time that it allows for an IdP to 15 seconds" (§7.4).
DEFAULT_IDP_TIMEOUT = 15.0

#: RTCErrorDetailTypeIdp (webrtc-identity §9.6).
IDP_ERROR_DETAILS = frozenset(
    {
        "idp-bad-script-failure",
        "idp-execution-failure",
        "idp-load-failure",
        "idp-need-login",
        "idp-timeout",
        "idp-tls-failure",
        "idp-token-expired",
        "idp-token-invalid",
    }
)

# A DNS name with an optional port, as the IdP URI's authority (RFC 8827 §7.5).
_DOMAIN = re.compile(
    r"(?=.{1,253}(:|$))[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(?::[0-9]{1,5})?"
)
_MAX_PROTOCOL = 64


def check_domain(domain: object) -> str:
    """``domain`` lower-cased if it can name an IdP (a DNS name, optionally ``:port``; IDNs in
    their ASCII form), else ValueError naming it."""
    if not isinstance(domain, str) or not _DOMAIN.fullmatch(domain):
        raise ValueError(
            f"identity provider domain {domain!r} is not a DNS name (with optional :port)"
        )
    return domain.lower()


def check_protocol(protocol: object) -> str:
    """``protocol`` if it may be an IdP protocol: no '/' or '\\' (webrtc-identity §5.4), a
    printable token of at most 64 characters; else ValueError naming it."""
    if (
        not isinstance(protocol, str)
        or not protocol
        or len(protocol) > _MAX_PROTOCOL
        or "/" in protocol
        or "\\" in protocol
        or not protocol.isprintable()
        or " " in protocol
    ):
        raise ValueError(
            f"identity provider protocol {protocol!r} must be a non-empty token without "
            "'/', '\\' or spaces"
        )
    return protocol


@attrs.frozen
class RTCIdentityProviderDetails:
    """The spec's RTCIdentityProviderDetails: the IdP that can validate an assertion."""

    domain: str
    protocol: str = "default"


@attrs.frozen
class RTCIdentityProviderOptions:
    """The spec's RTCIdentityProviderOptions, as given to ``setIdentityProvider()`` (with
    ``peerIdentity`` filled from RTCConfiguration when the call left it out)."""

    protocol: str = "default"
    usernameHint: str | None = None
    peerIdentity: str | None = None


class RTCIdentityAssertionResult(NamedTuple):
    """What ``generate_assertion`` returns: ``(idp, assertion)``."""

    idp: RTCIdentityProviderDetails
    assertion: str


class RTCIdentityValidationResult(NamedTuple):
    """What ``validate_assertion`` returns: ``(identity, contents)``; ``contents`` must be the
    string given to ``generate_assertion``, unchanged."""

    identity: str
    contents: str


@attrs.frozen
class RTCIdentityAssertion:
    """The spec's RTCIdentityAssertion: the verified peer. ``idp`` is the IdP's domain, ``name``
    the identity (``user@domain``)."""

    idp: str
    name: str


@runtime_checkable
class RTCIdentityProvider(Protocol):
    """What an identity provider implements (the spec's RTCIdentityProvider dictionary).

    Both methods are called with a time limit (the registry's ``timeout``); raise
    :class:`IdentityProviderError` to report a specific ``idp-*`` failure. Any other exception
    counts as ``idp-execution-failure``.
    """

    async def generate_assertion(
        self, contents: str, origin: str, options: RTCIdentityProviderOptions
    ) -> RTCIdentityAssertionResult:
        """An assertion that binds ``contents`` (opaque: a JSON string of DTLS fingerprints)
        to the local user, and the IdP details that can validate it."""

    async def validate_assertion(self, assertion: str, origin: str) -> RTCIdentityValidationResult:
        """Check an assertion a peer sent; return the identity it proves and the ``contents``
        it binds. Raise if it does not verify."""


class IdentityProviderError(Exception):
    """Raised by an identity provider: ``errorDetail`` is one of the spec's ``idp-*`` values;
    ``idpLoginUrl`` (for ``idp-need-login``) and ``idpErrorInfo`` reach the application."""

    def __init__(
        self,
        message: str,
        *,
        errorDetail: str = "idp-execution-failure",
        idpLoginUrl: str | None = None,
        idpErrorInfo: str | None = None,
    ) -> None:
        if errorDetail not in IDP_ERROR_DETAILS:
            raise ValueError(
                f"errorDetail {errorDetail!r} is not an idp-* value; expected one of "
                f"{sorted(IDP_ERROR_DETAILS)}"
            )
        super().__init__(message)
        self.errorDetail = errorDetail
        self.idpLoginUrl = idpLoginUrl
        self.idpErrorInfo = idpErrorInfo


@attrs.frozen
class _Entry:
    provider: RTCIdentityProvider
    third_party: bool


class IdentityProviderRegistry:
    """Maps (domain, protocol) to an identity provider, as a browser maps them to the URI
    ``https://<domain>/.well-known/idp-proxy/<protocol>``.

    ``origin`` is what providers receive as the origin of the peer connection (a browser uses
    the page's origin); ``timeout`` bounds each provider call (the spec suggests 15 s).
    A provider registered with ``third_party=True`` may assert identities outside its own
    domain (RFC 8827 §7.1): register one only if you trust it for every domain.
    """

    def __init__(self, *, origin: str = "null", timeout: float = DEFAULT_IDP_TIMEOUT) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self.origin = origin
        self.timeout = timeout
        self._providers: dict[tuple[str, str], _Entry] = {}

    def register(
        self,
        domain: str,
        provider: RTCIdentityProvider,
        *,
        protocol: str = "default",
        third_party: bool = False,
    ) -> None:
        """Use ``provider`` for IdP ``domain`` with ``protocol`` (replacing any other)."""
        if not isinstance(provider, RTCIdentityProvider):
            raise TypeError(
                f"{provider!r} is not an identity provider: it needs async generate_assertion() "
                "and validate_assertion() methods"
            )
        key = (check_domain(domain), check_protocol(protocol))
        self._providers[key] = _Entry(provider, third_party)

    def unregister(self, domain: str, *, protocol: str = "default") -> None:
        self._providers.pop((domain.lower(), protocol), None)

    def lookup(self, domain: str, protocol: str = "default") -> RTCIdentityProvider:
        """The provider for (domain, protocol); RTCError ``idp-load-failure`` naming them if
        none is registered."""
        entry = self._providers.get((domain.lower(), protocol))
        if entry is None:
            known = ", ".join(f"{d} ({p})" for d, p in sorted(self._providers)) or "none"
            raise RTCError(
                f"no identity provider is registered for domain {domain!r} with protocol "
                f"{protocol!r} (registered: {known}); register one with "
                "IdentityProviderRegistry.register()",
                errorDetail="idp-load-failure",
            )
        return entry.provider

    def is_third_party(self, domain: str, protocol: str = "default") -> bool:
        entry = self._providers.get((domain.lower(), protocol))
        return entry is not None and entry.third_party

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(sorted(self._providers))

    def __len__(self) -> int:
        return len(self._providers)


#: The registry a peer connection uses unless it is given one (``identity_providers=``).
default_registry = IdentityProviderRegistry()
