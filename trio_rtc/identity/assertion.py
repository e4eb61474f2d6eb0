"""The wire side of WebRTC identity (RFC 8827 §7.4, §7.6), pure: the ``contents`` an assertion
binds (the DTLS fingerprints), the ``a=identity`` value that carries an assertion in SDP, and
the checks a relying party makes on what its IdP validated.

Everything a peer sends goes through a ``*_untrusted`` function that either returns a value or
raises :class:`BadIdentityAssertion`; sizes are bounded before anything is decoded.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from typing import Any

from ..sdp import Fingerprint, SessionDescription
from .provider import (
    RTCIdentityAssertionResult,
    RTCIdentityProviderDetails,
    check_domain,
    check_protocol,
)

__all__ = [
    "MAX_ASSERTION_LENGTH",
    "MAX_IDENTITY_ATTRIBUTE_LENGTH",
    "BadIdentityAssertion",
    "check_fingerprints_covered",
    "check_identity_name",
    "encode_contents",
    "encode_identity_attribute",
    "has_identity_attribute",
    "identity_attribute_untrusted",
    "parse_contents_untrusted",
    "parse_identity_attribute_untrusted",
    "sdp_fingerprints",
]

#: The longest assertion string a provider may produce or a peer may send.
MAX_ASSERTION_LENGTH = 8192
#: The longest ``a=identity`` value accepted (base64 of the JSON around an assertion).
MAX_IDENTITY_ATTRIBUTE_LENGTH = 16384
# A peer's contents carry one entry per certificate fingerprint; more than this is abuse.
_MAX_FINGERPRINTS = 16


class BadIdentityAssertion(Exception):
    """An identity assertion or its contents could not be used; the message says why."""


# --- contents: what the assertion binds --------------------------------------------------------


def encode_contents(fingerprints: Iterable[Fingerprint]) -> str:
    """The ``contents`` string for our certificate's fingerprints (RFC 8827 §7.4):
    ``{"fingerprint": [{"algorithm": "sha-256", "digest": "AB:CD:…"}, …]}``."""
    entries = [{"algorithm": f.algorithm.lower(), "digest": f.value.upper()} for f in fingerprints]
    return json.dumps({"fingerprint": entries}, separators=(",", ":"))


def _json_untrusted(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadIdentityAssertion(f"{what} is not JSON: {exc}") from None


def parse_contents_untrusted(contents: object) -> frozenset[tuple[str, str]]:
    """The (algorithm, DIGEST) pairs a validated ``contents`` string binds."""
    if not isinstance(contents, str) or len(contents) > MAX_ASSERTION_LENGTH:
        raise BadIdentityAssertion("the validated contents are not a string of bounded length")
    value = _json_untrusted(contents, "the validated contents")
    entries = value.get("fingerprint") if isinstance(value, dict) else None
    if not isinstance(entries, list) or not entries or len(entries) > _MAX_FINGERPRINTS:
        raise BadIdentityAssertion(
            "the validated contents carry no 'fingerprint' list (RFC 8827 §7.4)"
        )
    pairs: set[tuple[str, str]] = set()
    for entry in entries:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("algorithm"), str)
            and isinstance(entry.get("digest"), str)
        ):
            raise BadIdentityAssertion(
                "each asserted fingerprint must be an object with 'algorithm' and 'digest'"
            )
        pairs.add((entry["algorithm"].lower(), entry["digest"].upper()))
    return frozenset(pairs)


def sdp_fingerprints(model: SessionDescription) -> frozenset[tuple[str, str]]:
    """Every ``a=fingerprint`` of a description, session and media level, normalised."""
    found = list(model.fingerprints)
    for media in model.media:
        found.extend(media.fingerprints)
    return frozenset((f.algorithm.lower(), f.value.upper()) for f in found)


def check_fingerprints_covered(
    asserted: frozenset[tuple[str, str]], fingerprints: frozenset[tuple[str, str]]
) -> None:
    """webrtc-identity §7.5: every fingerprint of the description is covered by the assertion."""
    if not fingerprints:
        raise BadIdentityAssertion("the description has no a=fingerprint to bind an identity to")
    missing = fingerprints - asserted
    if missing:
        shown = ", ".join(f"{a} {d}" for a, d in sorted(missing))
        raise BadIdentityAssertion(
            f"the identity assertion does not cover the description's fingerprint(s) {shown}"
        )


def check_identity_name(name: object, idp_domain: str, *, third_party: bool) -> str:
    """RFC 8827 §7.6: an identity is ``user@domain``; an authoritative IdP may only assert
    names in its own domain (a port in the IdP's domain is not part of it)."""
    if not isinstance(name, str) or len(name) > 512:
        raise BadIdentityAssertion("the IdP returned no identity string")
    user, at, domain = name.rpartition("@")
    if not at or not user or not domain:
        raise BadIdentityAssertion(f"identity {name!r} is not of the form user@domain")
    if third_party:
        return name
    try:
        asserted = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise BadIdentityAssertion(f"identity {name!r} has an invalid domain") from None
    if asserted != idp_domain.split(":", 1)[0].lower():
        raise BadIdentityAssertion(
            f"identity {name!r} is not in the domain of IdP {idp_domain!r}, and that IdP is "
            "not registered as a third-party IdP"
        )
    return name


# --- a=identity ----------------------------------------------------------------------------------


def encode_identity_attribute(result: RTCIdentityAssertionResult) -> str:
    """The ``a=identity`` value: base64 of ``{"idp": {"domain", "protocol"}, "assertion"}``."""
    document = {
        "idp": {"domain": result.idp.domain, "protocol": result.idp.protocol},
        "assertion": result.assertion,
    }
    return base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode("ascii")


def parse_identity_attribute_untrusted(value: str | None) -> RTCIdentityAssertionResult:
    """Decode a peer's ``a=identity`` value (RFC 8827 §7.4.1: the base64 token, optionally
    followed by extensions, which are ignored)."""
    if not value:
        raise BadIdentityAssertion("a=identity has no value")
    if len(value) > MAX_IDENTITY_ATTRIBUTE_LENGTH:
        raise BadIdentityAssertion(
            f"a=identity is {len(value)} characters long; at most "
            f"{MAX_IDENTITY_ATTRIBUTE_LENGTH} are accepted"
        )
    token = value.split(" ", 1)[0]
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raise BadIdentityAssertion("a=identity is not base64") from None
    document = _json_untrusted(raw, "a=identity")
    if not isinstance(document, dict):
        raise BadIdentityAssertion("a=identity does not hold a JSON object")
    idp = document.get("idp")
    assertion = document.get("assertion")
    if not isinstance(idp, dict) or not isinstance(assertion, str):
        raise BadIdentityAssertion("a=identity lacks 'idp' or a string 'assertion'")
    if len(assertion) > MAX_ASSERTION_LENGTH:
        raise BadIdentityAssertion(
            f"the assertion is {len(assertion)} characters long; at most {MAX_ASSERTION_LENGTH}"
        )
    protocol = idp.get("protocol", "default")
    try:
        details = RTCIdentityProviderDetails(
            check_domain(idp.get("domain")), check_protocol(protocol)
        )
    except ValueError as exc:
        raise BadIdentityAssertion(f"a=identity names an invalid IdP: {exc}") from None
    return RTCIdentityAssertionResult(details, assertion)


def identity_attribute_untrusted(model: SessionDescription) -> str | None:
    """The session-level ``a=identity`` value, None if there is none (RFC 8827 §7.4.1: it is a
    session-level attribute; more than one is malformed)."""
    values = [a.value for a in model.attributes if a.name.lower() == "identity"]
    if not values:
        return None
    if len(values) > 1:
        raise BadIdentityAssertion(
            f"the description has {len(values)} a=identity lines; one is allowed"
        )
    return values[0] or ""


def has_identity_attribute(model: SessionDescription) -> bool:
    return any(a.name.lower() == "identity" for a in model.attributes)
