"""A peer connection's identity state (webrtc-identity §7 and the RTCPeerConnection extensions
of §8): the configured IdP, the cached assertion, the ``peerIdentity`` promise and the target
peer identity, and the two procedures that call providers — requesting an assertion and
validating the peer's. The peer connection owns one :class:`PeerIdentity` and calls it from
createOffer/createAnswer, getIdentityAssertion and setRemoteDescription.

Every provider call is bounded by the registry's timeout and by :data:`MAX_ASSERTION_LENGTH`;
whatever a peer or a provider gets wrong ends as an ``idp*error`` event and a rejected promise,
never as an exception escaping into the connection's tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

import trio

from ..dtls.certificate import certificate_fingerprint
from ..events import Event
from ..exceptions import InvalidModificationError, InvalidStateError, OperationError, RTCError
from ..exceptions import SdpSyntaxError as DomSyntaxError
from ..sdp import Fingerprint, SessionDescription
from .assertion import (
    MAX_ASSERTION_LENGTH,
    BadIdentityAssertion,
    check_fingerprints_covered,
    check_identity_name,
    encode_contents,
    encode_identity_attribute,
    identity_attribute_untrusted,
    parse_contents_untrusted,
    parse_identity_attribute_untrusted,
    sdp_fingerprints,
)
from .provider import (
    IdentityProviderError,
    IdentityProviderRegistry,
    RTCIdentityAssertion,
    RTCIdentityAssertionResult,
    RTCIdentityProviderDetails,
    RTCIdentityProviderOptions,
    RTCIdentityValidationResult,
    check_protocol,
)

__all__ = ["IdentityPromise", "PeerIdentity", "RTCIdentityErrorEvent", "RTCIdentityEvent"]

logger = logging.getLogger("trio_rtc.identity")

_OPTION_KEYS = frozenset({"protocol", "usernameHint", "peerIdentity"})


class RTCIdentityEvent(Event):
    """``identityresult``: an identity assertion was generated; ``assertion`` is the
    ``a=identity`` value (base64 JSON)."""

    def __init__(self, type: str, assertion: str) -> None:
        super().__init__(type)
        self.assertion = assertion


class RTCIdentityErrorEvent(Event):
    """``idpassertionerror`` / ``idpvalidationerror``: ``idp`` and ``protocol`` name the IdP
    (empty when a peer's ``a=identity`` could not even be read), ``loginUrl`` is set for
    ``idp-need-login``; ``error`` is the RTCError or OperationError the promise got."""

    def __init__(
        self,
        type: str,
        *,
        idp: str,
        protocol: str,
        loginUrl: str | None = None,
        error: Exception | None = None,
    ) -> None:
        super().__init__(type)
        self.idp = idp
        self.protocol = protocol
        self.loginUrl = loginUrl
        self.error = error


class IdentityPromise:
    """The ``peerIdentity`` promise: ``await`` it for the :class:`RTCIdentityAssertion`; it
    raises the validation error if it was rejected. ``done()`` and ``result()`` look without
    waiting."""

    def __init__(self) -> None:
        self._settled = trio.Event()
        self._value: RTCIdentityAssertion | None = None
        self._error: Exception | None = None

    def done(self) -> bool:
        return self._settled.is_set()

    def resolved(self) -> bool:
        """Settled with an identity (not rejected)."""
        return self._settled.is_set() and self._error is None

    def result(self) -> RTCIdentityAssertion:
        """The identity, or the rejection raised; InvalidStateError while pending."""
        if not self._settled.is_set():
            raise InvalidStateError("peerIdentity is still pending")
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value

    async def wait(self) -> RTCIdentityAssertion:
        await self._settled.wait()
        return self.result()

    def __await__(self) -> Generator[Any, None, RTCIdentityAssertion]:
        return self.wait().__await__()

    def _resolve(self, value: RTCIdentityAssertion) -> None:
        if not self._settled.is_set():
            self._value = value
            self._settled.set()

    def _reject(self, error: Exception) -> None:
        if not self._settled.is_set():
            self._error = error
            self._settled.set()

    def __repr__(self) -> str:
        if not self.done():
            return "<IdentityPromise pending>"
        return f"<IdentityPromise {self._value if self._error is None else repr(self._error)}>"


def _provider_error(exc: BaseException, action: str, idp: RTCIdentityProviderDetails) -> RTCError:
    where = f"IdP {idp.domain!r} (protocol {idp.protocol!r})"
    if isinstance(exc, IdentityProviderError):
        error = RTCError(f"{where} failed to {action}: {exc}", errorDetail=exc.errorDetail)
    else:
        error = RTCError(
            f"{where} raised while asked to {action}: {exc!r}", errorDetail="idp-execution-failure"
        )
    error.__cause__ = exc
    return error


class PeerIdentity:
    """The identity half of one peer connection. ``dispatch`` fires events on the connection;
    ``remote_certificates`` gives the DER certificates the DTLS handshake saw (empty before)."""

    def __init__(
        self,
        registry: IdentityProviderRegistry,
        dispatch: Callable[[Event], object],
        *,
        configured_peer_identity: str | None = None,
        remote_certificates: Callable[[], Sequence[bytes]] = lambda: (),
    ) -> None:
        self.registry = registry
        self._dispatch = dispatch
        self._remote_certificates = remote_certificates
        self.provider: tuple[str, RTCIdentityProviderOptions] | None = None
        #: The ``a=identity`` value of our last assertion, kept for later offers and answers.
        self.assertion: str | None = None
        self.idpLoginUrl: str | None = None
        self.idpErrorInfo: str | None = None
        #: webrtc-identity's "target peer identity": fixed once set.
        self.target: str | None = configured_peer_identity
        self._configured = configured_peer_identity
        self.promise = IdentityPromise()
        self._asserted: frozenset[tuple[str, str]] = frozenset()
        self._validated: tuple[str, frozenset[tuple[str, str]]] | None = None
        self._generate_lock = trio.Lock()
        self._validate_lock = trio.Lock()
        self._provider_version = 0
        #: Malformed ``a=identity`` attributes dropped, and validations that failed.
        self.malformed = 0
        self.failures = 0

    # --- configuration ------------------------------------------------------------------------

    def set_provider(self, domain: str, options: Mapping[str, Any]) -> None:
        """``setIdentityProvider(domain, options)`` (webrtc-identity §8, after the closed check)."""
        unknown = set(options) - _OPTION_KEYS
        if unknown:
            raise TypeError(
                f"RTCIdentityProviderOptions has no member(s) {sorted(unknown)}; "
                f"expected some of {sorted(_OPTION_KEYS)}"
            )
        protocol = options.get("protocol") or "default"
        if isinstance(protocol, str) and ("/" in protocol or "\\" in protocol):
            raise DomSyntaxError(f"IdP protocol {protocol!r} must not contain '/' or '\\'")
        for key in ("usernameHint", "peerIdentity"):
            value = options.get(key)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{key} must be a string, not {value!r}")
        if not isinstance(domain, str):
            raise TypeError(f"setIdentityProvider() takes a domain string, not {domain!r}")
        try:
            check_protocol(protocol)
        except ValueError as exc:
            raise DomSyntaxError(str(exc)) from None
        self.registry.lookup(domain, protocol)  # an unknown IdP fails here, naming it
        new = (
            domain.lower(),
            RTCIdentityProviderOptions(
                protocol=protocol,
                usernameHint=options.get("usernameHint"),
                peerIdentity=options.get("peerIdentity"),
            ),
        )
        if new != self.provider:
            self.provider = new
            self.assertion = None
            self._provider_version += 1

    def check_configuration(self, peer_identity: str | None) -> None:
        """The identity step of "set a configuration": peerIdentity cannot change."""
        if peer_identity is not None and self.target is not None and peer_identity != self.target:
            raise InvalidModificationError(
                f"peerIdentity cannot change: the target peer identity is {self.target!r}, "
                f"not {peer_identity!r}"
            )

    # --- requesting an assertion (webrtc-identity §7.3) -----------------------------------------

    async def request(self, fingerprints: Sequence[Fingerprint]) -> str:
        """The ``a=identity`` value binding ``fingerprints`` (cached after the first success).
        Raises RTCError ``idp-*`` after firing ``idpassertionerror``."""
        if self.provider is None:
            raise InvalidStateError(
                "no identity provider is set: call setIdentityProvider(domain) first"
            )
        async with self._generate_lock:
            if self.assertion is not None:
                return self.assertion
            domain, options = self.provider
            version = self._provider_version
            if options.peerIdentity is None and self._configured is not None:
                options = RTCIdentityProviderOptions(
                    options.protocol, options.usernameHint, self._configured
                )
            idp = RTCIdentityProviderDetails(domain, options.protocol)
            try:
                result = await self._generate(idp, encode_contents(fingerprints), options)
            except RTCError as error:
                self._dispatch(
                    RTCIdentityErrorEvent(
                        "idpassertionerror",
                        idp=domain,
                        protocol=options.protocol,
                        loginUrl=self.idpLoginUrl,
                        error=error,
                    )
                )
                raise
            value = encode_identity_attribute(result)
            if version == self._provider_version:
                self.assertion = value
            self._dispatch(RTCIdentityEvent("identityresult", value))
            return value

    async def _generate(
        self, idp: RTCIdentityProviderDetails, contents: str, options: RTCIdentityProviderOptions
    ) -> RTCIdentityAssertionResult:
        provider = self.registry.lookup(idp.domain, idp.protocol)
        self.idpLoginUrl = self.idpErrorInfo = None
        result: object = None
        try:
            with trio.move_on_after(self.registry.timeout) as scope:
                result = await provider.generate_assertion(contents, self.registry.origin, options)
        except Exception as exc:
            if isinstance(exc, IdentityProviderError):
                self.idpLoginUrl, self.idpErrorInfo = exc.idpLoginUrl, exc.idpErrorInfo
            raise _provider_error(exc, "generate an assertion", idp) from exc
        if scope.cancelled_caught:
            raise RTCError(
                f"IdP {idp.domain!r} did not generate an assertion within "
                f"{self.registry.timeout:g} s",
                errorDetail="idp-timeout",
            )
        if not (
            isinstance(result, tuple)
            and len(result) == 2
            and isinstance(result[0], RTCIdentityProviderDetails)
            and isinstance(result[1], str)
            and 0 < len(result[1]) <= MAX_ASSERTION_LENGTH
        ):
            raise RTCError(
                f"IdP {idp.domain!r} returned {type(result).__name__}, not an "
                f"(RTCIdentityProviderDetails, assertion string of at most {MAX_ASSERTION_LENGTH} "
                "characters) pair",
                errorDetail="idp-bad-script-failure",
            )
        return RTCIdentityAssertionResult(result[0], result[1])

    # --- verifying the peer's assertion (webrtc-identity §7.5) -----------------------------------

    @property
    def blocking(self) -> bool:
        """Whether setRemoteDescription must wait for validation: a target peer identity."""
        return self.target is not None

    async def validate_remote(self, model: SessionDescription) -> RTCIdentityAssertion | None:
        """Validate the ``a=identity`` of a remote description, settle ``peerIdentity`` and fire
        the events. Returns the identity, or None when the description carries no assertion
        and none is required. Raises the validation error only when there is a target peer
        identity (setRemoteDescription then rejects); otherwise the error goes to
        ``peerIdentity`` and ``idpvalidationerror`` alone."""
        async with self._validate_lock:
            blocking = self.blocking
            idp: RTCIdentityProviderDetails | None = None
            try:
                value = identity_attribute_untrusted(model)
                if value is None:
                    if blocking and not self.promise.resolved():
                        raise OperationError(
                            f"the peer must prove identity {self.target!r}, but the remote "
                            "description carries no a=identity"
                        )
                    return None
                result = parse_identity_attribute_untrusted(value)
                idp = result.idp
                return self._accept(idp, await self._verify(result, model))
            except BadIdentityAssertion as exc:
                # Only the a=identity attribute itself raises this here: a peer's garbage.
                self.malformed += 1
                error: Exception = RTCError(
                    f"malformed a=identity in the remote description, dropped: {exc}",
                    errorDetail="sdp-syntax-error",
                )
            except OperationError as exc:
                error = exc
            self._fail(error, idp)
            if blocking:
                raise error
            return None

    async def _verify(
        self, result: RTCIdentityAssertionResult, model: SessionDescription
    ) -> RTCIdentityValidationResult:
        idp = result.idp
        fingerprints = sdp_fingerprints(model)
        if self._validated is not None and self._validated == (
            encode_identity_attribute(result),
            fingerprints,
        ):
            assert self.target is not None
            name = self.target
            return RTCIdentityValidationResult(name, "")
        provider = self.registry.lookup(idp.domain, idp.protocol)
        outcome: object = None
        try:
            with trio.move_on_after(self.registry.timeout) as scope:
                outcome = await provider.validate_assertion(result.assertion, self.registry.origin)
        except Exception as exc:
            raise _provider_error(exc, "validate an assertion", idp) from exc
        if scope.cancelled_caught:
            raise RTCError(
                f"IdP {idp.domain!r} did not validate the assertion within "
                f"{self.registry.timeout:g} s",
                errorDetail="idp-timeout",
            )
        if not (
            isinstance(outcome, tuple)
            and len(outcome) == 2
            and isinstance(outcome[0], str)
            and isinstance(outcome[1], str)
        ):
            raise RTCError(
                f"IdP {idp.domain!r} returned {type(outcome).__name__}, not an "
                "(identity, contents) pair of strings",
                errorDetail="idp-bad-script-failure",
            )
        identity, contents = outcome
        try:
            asserted = parse_contents_untrusted(contents)
            check_fingerprints_covered(asserted, fingerprints)
            self._check_handshake(asserted)
        except BadIdentityAssertion as exc:
            raise RTCError(
                f"IdP {idp.domain!r} validated the assertion, but {exc}",
                errorDetail="fingerprint-failure",
            ) from None
        try:
            third_party = self.registry.is_third_party(idp.domain, idp.protocol)
            name = check_identity_name(identity, idp.domain, third_party=third_party)
        except BadIdentityAssertion as exc:
            raise RTCError(str(exc), errorDetail="idp-token-invalid") from None
        if self.target is not None and name != self.target:
            raise OperationError(
                f"the peer proved identity {name!r}, but the target peer identity is {self.target!r}"
            )
        self._asserted = asserted
        self._validated = (encode_identity_attribute(result), fingerprints)
        return RTCIdentityValidationResult(name, contents)

    def _check_handshake(self, asserted: frozenset[tuple[str, str]]) -> None:
        """The certificate the DTLS handshake saw (if it ran) must be one the assertion binds."""
        for der in self._remote_certificates():
            algorithms = {a for a, _ in asserted}
            seen = {
                (a, certificate_fingerprint(der, a).value.upper())
                for a in algorithms
                if a in ("sha-1", "sha-224", "sha-256", "sha-384", "sha-512")
            }
            if not seen & asserted:
                raise BadIdentityAssertion(
                    "the certificate of the DTLS handshake is not bound by the identity assertion"
                )

    def check_handshake(self) -> RTCError | None:
        """Called when DTLS connects: an error if a validated identity does not bind the
        certificate the peer used (the DTLS layer's own fingerprint check makes this a second
        line of defence)."""
        if not self._asserted:
            return None
        try:
            self._check_handshake(self._asserted)
        except BadIdentityAssertion as exc:
            return RTCError(str(exc), errorDetail="fingerprint-failure")
        return None

    def _accept(
        self, idp: RTCIdentityProviderDetails, validation: RTCIdentityValidationResult
    ) -> RTCIdentityAssertion:
        if self.promise.resolved():
            return self.promise.result()
        identity = RTCIdentityAssertion(idp=idp.domain, name=validation.identity)
        self.target = identity.name
        if self.promise.done():
            # Rejected while a target peer identity was set: it stays rejected (§8.1).
            return identity
        self.promise._resolve(identity)
        self._dispatch(Event("peeridentity"))
        return identity

    def _fail(self, error: Exception, idp: RTCIdentityProviderDetails | None) -> None:
        self.failures += 1
        logger.info("identity validation failed: %s", error)
        if not self.promise.done():
            self.promise._reject(error)
            if self.target is None:
                self.promise = IdentityPromise()
        self._dispatch(
            RTCIdentityErrorEvent(
                "idpvalidationerror",
                idp=idp.domain if idp is not None else "",
                protocol=idp.protocol if idp is not None else "",
                error=error,
            )
        )
