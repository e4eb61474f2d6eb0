"""WebRTC identity (webrtc-identity, RFC 8827 §7): the a=identity codec, the JWT provider, and
two real peer connections over UDP on 127.0.0.1 proving identities to each other — and every
way that can go wrong ending as the spec says."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import trio
import trio.testing
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from pc_helpers import OPTIONS, certificate, connect, trickle

from trio_rtc import RTCPeerConnection
from trio_rtc.events import Event
from trio_rtc.exceptions import (
    InvalidModificationError,
    InvalidStateError,
    OperationError,
    RTCError,
    SdpSyntaxError,
)
from trio_rtc.ice.transport import IceTransportOptions
from trio_rtc.identity import (
    BadIdentityAssertion,
    IdentityProviderError,
    IdentityProviderRegistry,
    InsecureIdentityProvider,
    JwtIdentityProvider,
    RTCIdentityAssertion,
    RTCIdentityAssertionResult,
    RTCIdentityErrorEvent,
    RTCIdentityEvent,
    RTCIdentityProviderDetails,
    RTCIdentityProviderOptions,
    RTCIdentityValidationResult,
    public_jwk,
)
from trio_rtc.identity.assertion import (
    MAX_IDENTITY_ATTRIBUTE_LENGTH,
    check_fingerprints_covered,
    check_identity_name,
    encode_contents,
    encode_identity_attribute,
    parse_contents_untrusted,
    parse_identity_attribute_untrusted,
)
from trio_rtc.sdp import Fingerprint
from trio_rtc.testing import VirtualNetwork

IDP = "idp.example"
ALICE = f"alice@{IDP}"
BOB = f"bob@{IDP}"
EVENTS = ("identityresult", "idpassertionerror", "idpvalidationerror", "peeridentity")


# --- the wire format (pure) ------------------------------------------------------------------


def test_identity_attribute_round_trips() -> None:
    result = RTCIdentityAssertionResult(RTCIdentityProviderDetails(IDP, "default"), "token")
    value = encode_identity_attribute(result)
    document = json.loads(base64.b64decode(value))
    assert document == {"idp": {"domain": IDP, "protocol": "default"}, "assertion": "token"}
    assert parse_identity_attribute_untrusted(value) == result
    # RFC 8827 §7.4.1: extensions after the token are ignored.
    assert parse_identity_attribute_untrusted(value + " ext=1; more") == result


def _b64(document: Any) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "!!!not base64!!!",
        base64.b64encode(b"not json").decode(),
        _b64([1, 2]),
        _b64({"idp": {"domain": IDP}}),
        _b64({"assertion": "x"}),
        _b64({"idp": {"domain": IDP, "protocol": "../evil"}, "assertion": "x"}),
        _b64({"idp": {"domain": "a b"}, "assertion": "x"}),
        _b64({"idp": {"domain": IDP}, "assertion": "x" * 9000}),
        base64.b64encode(b"[" * 5000 + b"]" * 5000).decode(),
        "A" * (MAX_IDENTITY_ATTRIBUTE_LENGTH + 4),
    ],
)
def test_malformed_identity_attribute_is_refused(value: str) -> None:
    with pytest.raises(BadIdentityAssertion):
        parse_identity_attribute_untrusted(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), json_values.map(_b64), json_values.map(json.dumps)))
def test_identity_parsers_take_any_input(value: str) -> None:
    """A peer's a=identity and an IdP's contents: a value or BadIdentityAssertion, nothing else."""
    for parse in (parse_identity_attribute_untrusted, parse_contents_untrusted):
        try:
            parse(value)
        except BadIdentityAssertion:
            pass


def test_contents_bind_fingerprints_and_names_must_match_the_idp() -> None:
    contents = encode_contents([Fingerprint("SHA-256", "ab:cd")])
    assert json.loads(contents) == {"fingerprint": [{"algorithm": "sha-256", "digest": "AB:CD"}]}
    asserted = parse_contents_untrusted(contents)
    check_fingerprints_covered(asserted, frozenset({("sha-256", "AB:CD")}))
    with pytest.raises(BadIdentityAssertion, match="does not cover"):
        check_fingerprints_covered(asserted, frozenset({("sha-256", "AB:CD"), ("sha-1", "EF")}))
    for bad in ("{}", '{"fingerprint": []}', '{"fingerprint": [{"digest": 1}]}', "[", 5):
        with pytest.raises(BadIdentityAssertion):
            parse_contents_untrusted(bad)
    assert check_identity_name(ALICE, IDP + ":8443", third_party=False) == ALICE
    for name in ("alice", "@idp.example", "alice@other.example", 3):
        with pytest.raises(BadIdentityAssertion):
            check_identity_name(name, IDP, third_party=False)
    assert check_identity_name("alice@other.example", IDP, third_party=True)


def test_registry_names_an_unknown_idp_and_refuses_non_providers() -> None:
    registry = IdentityProviderRegistry()
    registry.register(IDP, InsecureIdentityProvider(IDP))
    with pytest.raises(RTCError, match=r"'nobody.example'.*registered: idp.example") as caught:
        registry.lookup("nobody.example")
    assert caught.value.errorDetail == "idp-load-failure"
    with pytest.raises(TypeError, match="not an identity provider"):
        registry.register(IDP, object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="protocol"):
        registry.register(IDP, InsecureIdentityProvider(IDP), protocol="a/b")
    with pytest.raises(ValueError, match="errorDetail"):
        IdentityProviderError("x", errorDetail="bogus")


# --- the JWT provider -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", [ed25519.Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP256R1())]
)
async def test_jwt_provider_signs_and_validates(key: Any) -> None:
    now = [1_000_000.0]
    signer = JwtIdentityProvider(IDP, signing_key=key, key_id="k1", clock=lambda: now[0])
    verifier = JwtIdentityProvider(
        IDP, jwks={"keys": [public_jwk(key, "k1")]}, clock=lambda: now[0]
    )
    options = RTCIdentityProviderOptions(usernameHint=ALICE)
    result = await signer.generate_assertion('{"fingerprint":[]}', "https://app", options)
    assert result.idp == RTCIdentityProviderDetails(IDP, "default")
    validated = await verifier.validate_assertion(result.assertion, "https://app")
    assert validated == RTCIdentityValidationResult(ALICE, '{"fingerprint":[]}')

    header, claims, signature = result.assertion.split(".")
    forged = json.loads(base64.urlsafe_b64decode(claims + "=="))
    forged["sub"] = "mallory@idp.example"
    forged_claims = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    for token, detail in [
        (f"{header}.{forged_claims}.{signature}", "idp-token-invalid"),
        (f"{header}.{claims}", "idp-token-invalid"),
        ("x" * 9000, "idp-token-invalid"),
    ]:
        with pytest.raises(IdentityProviderError) as caught:
            await verifier.validate_assertion(token, "https://app")
        assert caught.value.errorDetail == detail
    now[0] += 3600
    with pytest.raises(IdentityProviderError) as caught:
        await verifier.validate_assertion(result.assertion, "https://app")
    assert caught.value.errorDetail == "idp-token-expired"

    other = JwtIdentityProvider(IDP, signing_key=ed25519.Ed25519PrivateKey.generate(), key_id="k2")
    with pytest.raises(IdentityProviderError, match="unknown key id 'k2'"):
        now[0] -= 3600
        token = (await other.generate_assertion("c", "o", options)).assertion
        await verifier.validate_assertion(token, "o")
    with pytest.raises(IdentityProviderError) as caught:
        await verifier.generate_assertion("c", "o", options)
    nobody = JwtIdentityProvider(IDP, signing_key=key)
    with pytest.raises(IdentityProviderError) as caught:
        await nobody.generate_assertion("c", "o", RTCIdentityProviderOptions())
    assert caught.value.errorDetail == "idp-need-login"


# --- two peer connections --------------------------------------------------------------------


def identity_pc(index: int, registry: IdentityProviderRegistry, **config: Any) -> RTCPeerConnection:
    return RTCPeerConnection(
        {"certificates": [certificate(index)], **config},
        ice_options=OPTIONS,
        identity_providers=registry,
    )


def record(pc: RTCPeerConnection) -> list[Event]:
    seen: list[Event] = []
    for name in EVENTS:
        pc.addEventListener(name, seen.append)
    return seen


def shared_registry() -> IdentityProviderRegistry:
    registry = IdentityProviderRegistry(origin="https://app.example")
    registry.register(IDP, InsecureIdentityProvider(IDP))
    return registry


def session_identity(sdp: str) -> str:
    """The a=identity value, checked to be at session level."""
    session = sdp.split("\r\nm=", 1)[0]
    values = [
        line[len("a=identity:") :]
        for line in session.split("\r\n")
        if line.startswith("a=identity:")
    ]
    assert len(values) == 1 and "a=identity" not in sdp.split("\r\nm=", 1)[1]
    return values[0]


async def test_two_peers_prove_their_identities_to_each_other() -> None:
    registry = shared_registry()
    async with identity_pc(0, registry) as a, identity_pc(1, registry) as b:
        a.setIdentityProvider(IDP, {"usernameHint": ALICE})
        b.setIdentityProvider(IDP, {"usernameHint": BOB})
        a_events, b_events = record(a), record(b)
        settled_when_fired: list[bool] = []
        a.onpeeridentity = lambda e: settled_when_fired.append(a.peerIdentity.done())
        a.createDataChannel("chat")
        async with trio.open_nursery() as nursery:
            await connect(a, b, nursery)
            with trio.fail_after(5):
                assert await a.peerIdentity == RTCIdentityAssertion(idp=IDP, name=BOB)
                assert await b.peerIdentity == RTCIdentityAssertion(idp=IDP, name=ALICE)
            nursery.cancel_scope.cancel()
        assert a.localDescription is not None and b.localDescription is not None
        offer_identity = session_identity(a.localDescription.sdp)
        assert session_identity(b.localDescription.sdp) != offer_identity
        assert await a.getIdentityAssertion() == offer_identity  # cached
        # The offerer generated before it offered and validated after the answer came back.
        assert [e.type for e in a_events] == ["identityresult", "peeridentity"]
        assert isinstance(a_events[0], RTCIdentityEvent) and a_events[0].assertion == offer_identity
        assert sorted(e.type for e in b_events) == ["identityresult", "peeridentity"]
        assert settled_when_fired == [True]
        assert a.identity.target == BOB and b.identity.malformed == 0
        assert a.connectionState == b.connectionState == "connected"


async def test_jwt_identity_between_two_peers() -> None:
    """The deployable provider: alice signs with her IdP's key; bob holds only the JWKS."""
    key = ed25519.Ed25519PrivateKey.generate()
    alice_side = IdentityProviderRegistry()
    alice_side.register(
        IDP, JwtIdentityProvider(IDP, signing_key=key, key_id="2026", identity=ALICE)
    )
    bob_side = IdentityProviderRegistry()
    bob_side.register(IDP, JwtIdentityProvider(IDP, jwks={"keys": [public_jwk(key, "2026")]}))
    async with identity_pc(0, alice_side) as a, identity_pc(1, bob_side, peerIdentity=ALICE) as b:
        a.setIdentityProvider(IDP)
        a.createDataChannel("chat")
        async with trio.open_nursery() as nursery:
            await connect(a, b, nursery)
            nursery.cancel_scope.cancel()
        assert b.peerIdentity.result() == RTCIdentityAssertion(IDP, ALICE)
        assert b.connectionState == "connected"


async def offer_with_identity(a: RTCPeerConnection) -> str:
    a.createDataChannel("chat")
    offer = await a.createOffer()
    await a.setLocalDescription(offer)
    return offer.sdp


async def test_tampered_assertion_rejects_peer_identity_and_leaves_a_new_promise() -> None:
    registry = shared_registry()
    async with identity_pc(0, registry) as a, identity_pc(1, registry) as b:
        a.setIdentityProvider(IDP, {"usernameHint": ALICE})
        sdp = await offer_with_identity(a)
        value = session_identity(sdp)
        document = json.loads(base64.b64decode(value))
        payload, mac = document["assertion"].split(".")
        claimed = json.loads(base64.b64decode(payload))
        claimed["identity"] = "mallory@idp.example"
        document["assertion"] = base64.b64encode(json.dumps(claimed).encode()).decode() + "." + mac
        tampered = sdp.replace(value, _b64(document))
        events = record(b)
        first = b.peerIdentity
        rejected_when_fired: list[bool] = []
        b.onidpvalidationerror = lambda e: rejected_when_fired.append(first.done())
        await b.setRemoteDescription({"type": "offer", "sdp": tampered})  # not blocked
        with trio.fail_after(5), pytest.raises(RTCError) as caught:
            await first
        assert caught.value.errorDetail == "idp-token-invalid"
        assert "MAC does not verify" in str(caught.value)
        assert [e.type for e in events] == ["idpvalidationerror"]
        error_event = events[0]
        assert isinstance(error_event, RTCIdentityErrorEvent)
        assert (error_event.idp, error_event.protocol) == (IDP, "default")
        assert rejected_when_fired == [True]
        assert b.peerIdentity is not first and not b.peerIdentity.done()
        assert b.signalingState == "have-remote-offer" and b.identity.failures == 1


async def test_fingerprint_mismatch_fails_validation() -> None:
    """An assertion made for one certificate, carried in a description with another."""
    registry = shared_registry()
    async with identity_pc(0, registry) as a, identity_pc(1, registry) as b:
        a.setIdentityProvider(IDP, {"usernameHint": ALICE})
        sdp = await offer_with_identity(a)
        ours = certificate(0).getFingerprints()[0].value
        other = certificate(2).getFingerprints()[0].value
        assert ours in sdp
        await b.setRemoteDescription({"type": "offer", "sdp": sdp.replace(ours, other)})
        with trio.fail_after(5), pytest.raises(RTCError) as caught:
            await b.peerIdentity
        assert caught.value.errorDetail == "fingerprint-failure"
        assert "does not cover" in str(caught.value)


class RaisingProvider:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def generate_assertion(
        self, contents: str, origin: str, options: RTCIdentityProviderOptions
    ) -> RTCIdentityAssertionResult:
        raise self.error

    async def validate_assertion(self, assertion: str, origin: str) -> RTCIdentityValidationResult:
        raise self.error


class HangingProvider:
    async def generate_assertion(
        self, contents: str, origin: str, options: RTCIdentityProviderOptions
    ) -> RTCIdentityAssertionResult:
        await trio.sleep_forever()
        raise AssertionError

    async def validate_assertion(self, assertion: str, origin: str) -> RTCIdentityValidationResult:
        await trio.sleep_forever()
        raise AssertionError


async def test_a_provider_that_raises_fails_generation_and_validation() -> None:
    registry = IdentityProviderRegistry()
    registry.register("broken.example", RaisingProvider(RuntimeError("IdP is down")))
    registry.register(
        "login.example",
        RaisingProvider(
            IdentityProviderError(
                "log in first",
                errorDetail="idp-need-login",
                idpLoginUrl="https://login.example/start",
                idpErrorInfo='{"reason": "no session"}',
            )
        ),
    )
    good = shared_registry()
    async with identity_pc(0, registry) as a:
        events = record(a)
        a.setIdentityProvider("broken.example")
        with pytest.raises(RTCError, match="IdP is down") as caught:
            await a.getIdentityAssertion()
        assert caught.value.errorDetail == "idp-execution-failure"
        assert isinstance(caught.value.__cause__, RuntimeError)
        with pytest.raises(RTCError, match="IdP is down"):
            await a.createOffer()
        assert [e.type for e in events] == ["idpassertionerror", "idpassertionerror"]
        assert isinstance(events[0], RTCIdentityErrorEvent) and events[0].idp == "broken.example"

        a.setIdentityProvider("login.example", {"protocol": "default"})
        with pytest.raises(RTCError) as caught:
            await a.getIdentityAssertion()
        assert caught.value.errorDetail == "idp-need-login"
        assert a.idpLoginUrl == "https://login.example/start"
        assert a.idpErrorInfo == '{"reason": "no session"}'
        assert isinstance(events[-1], RTCIdentityErrorEvent)
        assert events[-1].loginUrl == "https://login.example/start"

    # Validation by a provider that raises: only peerIdentity (no target identity) hears it.
    validating = IdentityProviderRegistry()
    validating.register(IDP, RaisingProvider(RuntimeError("cannot validate")))
    async with identity_pc(0, good) as a, identity_pc(1, validating) as b:
        a.setIdentityProvider(IDP, {"usernameHint": ALICE})
        await b.setRemoteDescription({"type": "offer", "sdp": await offer_with_identity(a)})
        with trio.fail_after(5), pytest.raises(RTCError, match="cannot validate") as caught:
            await b.peerIdentity
        assert caught.value.errorDetail == "idp-execution-failure"


async def test_a_provider_that_hangs_times_out(autojump_clock: trio.testing.MockClock) -> None:
    """Generation and validation are bounded by the registry's timeout (15 s by default, the
    spec's suggestion): idp-timeout, in virtual time."""
    hanging = IdentityProviderRegistry()
    hanging.register(IDP, HangingProvider())
    good = shared_registry()
    options = IceTransportOptions(interfaces=["198.51.100.1"], mdns=False)
    async with VirtualNetwork(seed=3):
        a = RTCPeerConnection(
            {"certificates": [certificate(0)]}, ice_options=options, identity_providers=hanging
        )
        async with a:
            a.setIdentityProvider(IDP)
            start = trio.current_time()
            with pytest.raises(RTCError) as caught:
                await a.getIdentityAssertion()
            assert caught.value.errorDetail == "idp-timeout"
            assert trio.current_time() - start == pytest.approx(15.0)

        offerer = RTCPeerConnection(
            {"certificates": [certificate(0)]}, ice_options=options, identity_providers=good
        )
        answerer = RTCPeerConnection(
            {"certificates": [certificate(1)], "peerIdentity": ALICE},
            ice_options=options,
            identity_providers=hanging,
        )
        async with offerer, answerer:
            offerer.setIdentityProvider(IDP, {"usernameHint": ALICE})
            sdp = await offer_with_identity(offerer)
            with pytest.raises(RTCError) as caught:
                await answerer.setRemoteDescription({"type": "offer", "sdp": sdp})
            assert caught.value.errorDetail == "idp-timeout"
            assert answerer.signalingState == "stable"


async def test_configured_peer_identity_must_be_proved() -> None:
    registry = shared_registry()
    # The wrong identity: setRemoteDescription rejects and nothing is applied.
    async with (
        identity_pc(0, registry) as a,
        identity_pc(1, registry, peerIdentity="mallory@idp.example") as b,
    ):
        a.setIdentityProvider(IDP, {"usernameHint": ALICE})
        events = record(b)
        promise = b.peerIdentity
        with pytest.raises(OperationError, match=r"proved identity 'alice@idp.example'"):
            await b.setRemoteDescription({"type": "offer", "sdp": await offer_with_identity(a)})
        assert b.signalingState == "stable" and b.remoteDescription is None
        assert b.connectionState == "new"
        assert [e.type for e in events] == ["idpvalidationerror"]
        # With a target peer identity the rejected promise stays (no new attempt).
        assert b.peerIdentity is promise and promise.done()
        with pytest.raises(OperationError):
            promise.result()
        with pytest.raises(InvalidModificationError, match="peerIdentity cannot change"):
            b.setConfiguration({"peerIdentity": ALICE})
        assert b.getConfiguration()["peerIdentity"] == "mallory@idp.example"

    # No assertion at all: rejected too. A later offer that proves the identity is applied,
    # while peerIdentity stays rejected (a target peer identity allows no new promise).
    async with identity_pc(0, registry) as a, identity_pc(1, registry, peerIdentity=ALICE) as b:
        with pytest.raises(OperationError, match="carries no a=identity"):
            await b.setRemoteDescription({"type": "offer", "sdp": await offer_with_identity(a)})
        await a.setLocalDescription({"type": "rollback", "sdp": ""})
        a.setIdentityProvider(IDP, {"usernameHint": ALICE})
        await b.setRemoteDescription({"type": "offer", "sdp": await offer_with_identity(a)})
        assert b.signalingState == "have-remote-offer"
        with pytest.raises(OperationError, match="carries no a=identity"):
            b.peerIdentity.result()

    # The right identity: validated before setRemoteDescription returns, then connected.
    async with identity_pc(0, registry) as a, identity_pc(1, registry, peerIdentity=ALICE) as b:
        a.setIdentityProvider(IDP, {"usernameHint": ALICE})
        a.createDataChannel("chat")
        async with trio.open_nursery() as nursery:
            trickle(a, b, nursery)
            trickle(b, a, nursery)
            await a.setLocalDescription(await a.createOffer())
            assert a.localDescription is not None
            await b.setRemoteDescription(a.localDescription)
            assert b.peerIdentity.done() and b.peerIdentity.result().name == ALICE
            await b.setLocalDescription(await b.createAnswer())
            assert b.localDescription is not None
            await a.setRemoteDescription(b.localDescription)
            with trio.fail_after(10):
                await b.wait_connection_state("connected")
            nursery.cancel_scope.cancel()


async def test_malformed_identity_attribute_is_dropped_and_counted() -> None:
    registry = shared_registry()
    async with identity_pc(0, registry) as a, identity_pc(1, registry) as b:
        sdp = await offer_with_identity(a)
        hostile = sdp.replace("\r\nm=", "\r\na=identity:!!!garbage!!!\r\nm=", 1)
        events = record(b)
        await b.setRemoteDescription({"type": "offer", "sdp": hostile})
        with trio.fail_after(5), pytest.raises(RTCError) as caught:
            await b.peerIdentity
        assert caught.value.errorDetail == "sdp-syntax-error"
        assert b.identity.malformed == 1
        assert len(events) == 1 and isinstance(events[0], RTCIdentityErrorEvent)
        assert events[0].idp == "" and b.signalingState == "have-remote-offer"
        # An IdP nobody registered: a validation error naming it, nothing more.
        unknown = RTCIdentityAssertionResult(RTCIdentityProviderDetails("evil.example"), "x")
        again = sdp.replace(
            "\r\nm=", f"\r\na=identity:{encode_identity_attribute(unknown)}\r\nm=", 1
        )
        await b.setRemoteDescription({"type": "rollback", "sdp": ""})
        await b.setRemoteDescription({"type": "offer", "sdp": again})
        with trio.fail_after(5), pytest.raises(RTCError, match=r"'evil.example'") as caught:
            await b.peerIdentity
        assert caught.value.errorDetail == "idp-load-failure"


async def test_set_identity_provider_checks_its_arguments() -> None:
    registry = shared_registry()
    pc = identity_pc(0, registry)
    with pytest.raises(RTCError, match=r"'unknown.example'") as caught:
        pc.setIdentityProvider("unknown.example")
    assert caught.value.errorDetail == "idp-load-failure"
    with pytest.raises(SdpSyntaxError, match="must not contain"):
        pc.setIdentityProvider(IDP, {"protocol": "a/b"})
    with pytest.raises(TypeError, match="no member"):
        pc.setIdentityProvider(IDP, {"username": ALICE})
    with pytest.raises(TypeError, match="peerIdentity must be"):
        identity_pc(0, registry, peerIdentity="no-at-sign")
    async with pc:
        with pytest.raises(InvalidStateError, match="setIdentityProvider"):
            await pc.getIdentityAssertion()
        # The older (domain, protocol, username) form.
        pc.setIdentityProvider(IDP, "default", ALICE)
        value = await pc.getIdentityAssertion()
        assert json.loads(base64.b64decode(value))["idp"] == {"domain": IDP, "protocol": "default"}
    with pytest.raises(InvalidStateError, match="closed"):
        pc.setIdentityProvider(IDP)
    with pytest.raises(InvalidStateError, match="closed"):
        await pc.getIdentityAssertion()
