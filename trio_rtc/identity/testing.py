"""An identity provider for tests and examples: it asserts whatever identity it is told, signed
with an HMAC key held in this process, so a tampered assertion fails while two peer connections
in one program can prove identities to each other. It proves nothing to anyone else: never
accept it from a real peer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets

from .assertion import MAX_ASSERTION_LENGTH
from .provider import (
    IdentityProviderError,
    RTCIdentityAssertionResult,
    RTCIdentityProviderDetails,
    RTCIdentityProviderOptions,
    RTCIdentityValidationResult,
    check_domain,
    check_protocol,
)

__all__ = ["InsecureIdentityProvider"]


class InsecureIdentityProvider:
    """IdP ``domain`` for tests. The identity asserted is ``usernameHint`` (as given to
    ``setIdentityProvider``), else ``user@<domain>``. ``key`` is the shared HMAC key
    (random by default). ``generated`` and ``validated`` count the calls."""

    def __init__(self, domain: str, *, protocol: str = "default", key: bytes | None = None) -> None:
        self.details = RTCIdentityProviderDetails(check_domain(domain), check_protocol(protocol))
        self._key = key if key is not None else secrets.token_bytes(32)
        self.generated = 0
        self.validated = 0

    def _mac(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    async def generate_assertion(
        self, contents: str, origin: str, options: RTCIdentityProviderOptions
    ) -> RTCIdentityAssertionResult:
        self.generated += 1
        identity = options.usernameHint or f"user@{self.details.domain.split(':')[0]}"
        payload = json.dumps({"identity": identity, "contents": contents}).encode()
        assertion = base64.b64encode(payload).decode("ascii") + "." + self._mac(payload)
        return RTCIdentityAssertionResult(self.details, assertion)

    async def validate_assertion(self, assertion: str, origin: str) -> RTCIdentityValidationResult:
        self.validated += 1
        encoded, _, mac = assertion.partition(".")
        try:
            if len(assertion) > MAX_ASSERTION_LENGTH:
                raise ValueError("too long")
            payload = base64.b64decode(encoded, validate=True)
            document = json.loads(payload)
        except (ValueError, RecursionError):
            raise IdentityProviderError(
                "the test assertion does not decode", errorDetail="idp-token-invalid"
            ) from None
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise IdentityProviderError(
                "the test assertion's MAC does not verify (tampered?)",
                errorDetail="idp-token-invalid",
            )
        return RTCIdentityValidationResult(document["identity"], document["contents"])
