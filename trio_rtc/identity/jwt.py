"""An identity provider a deployment can use: assertions are JSON Web Tokens (RFC 7519) signed
with a key the application holds (Ed25519 "EdDSA", RFC 8037, or P-256 "ES256", RFC 7518 §3.4),
validated against a JSON Web Key Set (RFC 7517) the application supplies.

The signing side lives where the user's identity is known (your login service, or the client
after it logged in and was handed a key); the validating side needs only the public JWKS.
Only the two algorithms above are accepted, chosen by the key (never by the token's header), so
"alg: none" and algorithm confusion cannot happen.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

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

__all__ = ["JwtIdentityProvider", "load_jwks", "public_jwk"]

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _alg(key: PublicKey | PrivateKey) -> str:
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise TypeError(f"unsupported EC curve {key.curve.name}; use P-256 or Ed25519")


def public_jwk(key: PublicKey | PrivateKey, kid: str) -> dict[str, str]:
    """The public JWK of an Ed25519 or P-256 key (a private key gives its public half)."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        key = key.public_key()
    if isinstance(key, ed25519.Ed25519PublicKey):
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw), "kid": kid, "alg": "EdDSA"}
    _alg(key)
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
        "kid": kid,
        "alg": "ES256",
    }


def load_jwks(jwks: Mapping[str, Any]) -> dict[str, PublicKey]:
    """The Ed25519 and P-256 keys of a JWKS (``{"keys": [...]}``) by ``kid``; other keys are
    skipped. ValueError naming the problem for a malformed set."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise ValueError("a JWKS is a mapping with a 'keys' list")
    found: dict[str, PublicKey] = {}
    for jwk in keys:
        if not isinstance(jwk, Mapping):
            raise ValueError(f"JWKS entry {jwk!r} is not an object")
        kid = jwk.get("kid", "")
        if not isinstance(kid, str):
            raise ValueError(f"JWKS entry kid {kid!r} is not a string")
        try:
            if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
                found[kid] = ed25519.Ed25519PublicKey.from_public_bytes(_unb64url(jwk["x"]))
            elif jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
                x = int.from_bytes(_unb64url(jwk["x"]), "big")
                y = int.from_bytes(_unb64url(jwk["y"]), "big")
                found[kid] = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        except (KeyError, ValueError) as exc:
            raise ValueError(f"JWKS entry {kid!r} is malformed: {exc}") from None
    if not found:
        raise ValueError("the JWKS holds no Ed25519 or P-256 key")
    return found


def _sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _verify(key: PublicKey, signature: bytes, data: bytes) -> None:
    if isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(signature, data)
        return
    if len(signature) != 64:
        raise InvalidSignature("an ES256 signature is 64 bytes")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    key.verify(der, data, ec.ECDSA(hashes.SHA256()))


def _invalid(message: str) -> IdentityProviderError:
    return IdentityProviderError(message, errorDetail="idp-token-invalid")


class JwtIdentityProvider:
    """Identity assertions as signed JWTs for IdP ``domain`` (the token's ``iss``).

    - ``signing_key`` (an Ed25519 or P-256 private key) and ``key_id`` make assertions for
      ``identity`` (else the ``usernameHint`` given to ``setIdentityProvider``); without a
      key this provider only validates.
    - ``jwks`` (a JWKS mapping) holds the public keys that validate; by default the signing
      key's own public key.
    - Tokens live ``lifetime`` seconds; ``leeway`` allows for clock skew; ``clock`` gives the
      wall-clock time in seconds (injectable for tests).
    """

    def __init__(
        self,
        domain: str,
        *,
        signing_key: PrivateKey | None = None,
        key_id: str = "",
        identity: str | None = None,
        jwks: Mapping[str, Any] | None = None,
        protocol: str = "default",
        lifetime: float = 300.0,
        leeway: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.details = RTCIdentityProviderDetails(check_domain(domain), check_protocol(protocol))
        if signing_key is not None:
            _alg(signing_key)
        self._signing_key = signing_key
        self._key_id = key_id
        self.identity = identity
        if jwks is not None:
            self._keys = load_jwks(jwks)
        elif signing_key is not None:
            self._keys = load_jwks({"keys": [public_jwk(signing_key, key_id)]})
        else:
            raise ValueError("JwtIdentityProvider needs a signing_key, a jwks, or both")
        self._lifetime = lifetime
        self._leeway = leeway
        self._clock = clock

    async def generate_assertion(
        self, contents: str, origin: str, options: RTCIdentityProviderOptions
    ) -> RTCIdentityAssertionResult:
        key = self._signing_key
        if key is None:
            raise IdentityProviderError(
                f"IdP {self.details.domain!r} has no signing key here: it only validates"
            )
        identity = self.identity or options.usernameHint
        if not identity:
            raise IdentityProviderError(
                f"IdP {self.details.domain!r} does not know who is logged in: give the provider "
                "an identity or setIdentityProvider(..., {'usernameHint': ...})",
                errorDetail="idp-need-login",
            )
        now = int(self._clock())
        header = {"alg": _alg(key), "typ": "JWT", "kid": self._key_id}
        claims: dict[str, Any] = {
            "iss": self.details.domain,
            "sub": identity,
            "iat": now,
            "exp": now + int(self._lifetime),
            "origin": origin,
            "contents": contents,
        }
        if options.peerIdentity is not None:
            claims["peer"] = options.peerIdentity
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        token = signing_input + "." + _b64url(_sign(key, signing_input.encode("ascii")))
        return RTCIdentityAssertionResult(self.details, token)

    async def validate_assertion(self, assertion: str, origin: str) -> RTCIdentityValidationResult:
        if len(assertion) > MAX_ASSERTION_LENGTH:
            raise _invalid("the token is too long")
        parts = assertion.split(".")
        if len(parts) != 3:
            raise _invalid("the assertion is not a compact JWT (header.claims.signature)")
        try:
            header = json.loads(_unb64url(parts[0]))
            claims = json.loads(_unb64url(parts[1]))
            signature = _unb64url(parts[2])
        except (ValueError, RecursionError):
            raise _invalid("the JWT does not decode") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise _invalid("the JWT header or claims are not objects")
        kid = header.get("kid", "")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise _invalid(f"the JWT is signed with unknown key id {kid!r}")
        if header.get("alg") != _alg(key):
            raise _invalid(f"the JWT's alg {header.get('alg')!r} does not fit key {kid!r}")
        try:
            _verify(key, signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
        except InvalidSignature:
            raise _invalid("the JWT signature does not verify") from None
        if claims.get("iss") != self.details.domain:
            raise _invalid(
                f"the JWT was issued by {claims.get('iss')!r}, not {self.details.domain!r}"
            )
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise _invalid("the JWT lacks numeric exp and iat")
        now = self._clock()
        if exp + self._leeway < now:
            raise IdentityProviderError(
                "the identity token has expired", errorDetail="idp-token-expired"
            )
        if iat - self._leeway > now:
            raise _invalid("the JWT was issued in the future")
        subject, contents = claims.get("sub"), claims.get("contents")
        if not isinstance(subject, str) or not isinstance(contents, str):
            raise _invalid("the JWT lacks string sub and contents claims")
        return RTCIdentityValidationResult(subject, contents)
