"""WebRTC identity (W3C "Identity for WebRTC 1.0", RFC 8827 §7): identity providers, the
``a=identity`` assertion that binds DTLS fingerprints to a user, and a peer connection's
``peerIdentity``. See ``docs/identity.md``.

- :class:`RTCIdentityProvider` is the interface an IdP implements in Python;
  :class:`IdentityProviderRegistry` maps (domain, protocol) to one (``default_registry`` is
  what a peer connection uses unless given ``identity_providers=``).
- :class:`JwtIdentityProvider` is a deployable IdP: JWTs signed with Ed25519 or P-256,
  validated against a JWKS. :class:`InsecureIdentityProvider` is for tests.
"""

from __future__ import annotations

from .assertion import MAX_ASSERTION_LENGTH, MAX_IDENTITY_ATTRIBUTE_LENGTH, BadIdentityAssertion
from .jwt import JwtIdentityProvider, load_jwks, public_jwk
from .provider import (
    DEFAULT_IDP_TIMEOUT,
    IdentityProviderError,
    IdentityProviderRegistry,
    RTCIdentityAssertion,
    RTCIdentityAssertionResult,
    RTCIdentityProvider,
    RTCIdentityProviderDetails,
    RTCIdentityProviderOptions,
    RTCIdentityValidationResult,
    default_registry,
)
from .session import IdentityPromise, PeerIdentity, RTCIdentityErrorEvent, RTCIdentityEvent
from .testing import InsecureIdentityProvider

__all__ = [
    "DEFAULT_IDP_TIMEOUT",
    "MAX_ASSERTION_LENGTH",
    "MAX_IDENTITY_ATTRIBUTE_LENGTH",
    "BadIdentityAssertion",
    "IdentityPromise",
    "IdentityProviderError",
    "IdentityProviderRegistry",
    "InsecureIdentityProvider",
    "JwtIdentityProvider",
    "PeerIdentity",
    "RTCIdentityAssertion",
    "RTCIdentityAssertionResult",
    "RTCIdentityErrorEvent",
    "RTCIdentityEvent",
    "RTCIdentityProvider",
    "RTCIdentityProviderDetails",
    "RTCIdentityProviderOptions",
    "RTCIdentityValidationResult",
    "default_registry",
    "load_jwks",
    "public_jwk",
]
