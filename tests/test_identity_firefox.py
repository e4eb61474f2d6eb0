"""Identity interop with Firefox ESR, the one browser that ships webrtc-identity.

The test is the IdP: it serves ``https://localhost:<port>/.well-known/idp-proxy/default`` (a
small IdP proxy in JavaScript that Firefox runs in its IdP sandbox) and the page, over HTTPS
with a certificate from a throw-away CA that it installs into a fresh Firefox profile with
``certutil``. On the Python side the same IdP is a registered provider that reads and writes
the proxy's assertion format. Firefox offers with ``a=identity`` for alice, trio_rtc answers
with one for bob, and each side's ``peerIdentity`` must resolve to the other.
"""

from __future__ import annotations

import datetime
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pc_helpers import OPTIONS, certificate

from trio_rtc import RTCPeerConnection
from trio_rtc.identity import (
    IdentityProviderRegistry,
    RTCIdentityAssertion,
    RTCIdentityAssertionResult,
    RTCIdentityProviderDetails,
    RTCIdentityProviderOptions,
    RTCIdentityValidationResult,
)

pytestmark = pytest.mark.interop

FIREFOX = shutil.which("firefox-esr")
CERTUTIL = shutil.which("certutil")

# The IdP proxy Firefox loads into its sandbox (webrtc-identity §5.3): it asserts the
# usernameHint it is given. Unsigned: the test is about the binding, not about the IdP's crypto.
IDP_PROXY = """
rtcIdentityProvider.register({
  generateAssertion(contents, origin, options) {
    const assertion = JSON.stringify({identity: options.usernameHint, contents: contents});
    return Promise.resolve({idp: {domain: DOMAIN, protocol: "default"}, assertion: assertion});
  },
  validateAssertion(assertion, origin) {
    const parsed = JSON.parse(assertion);
    return Promise.resolve({identity: parsed.identity, contents: parsed.contents});
  }
});
"""

PAGE = """<!doctype html><meta charset="utf-8"><script>
const report = (result) => fetch("/result", {method: "POST", body: JSON.stringify(result)});
(async () => {
  try {
    const pc = new RTCPeerConnection();
    pc.setIdentityProvider(DOMAIN, {protocol: "default", usernameHint: "alice@localhost"});
    pc.createDataChannel("chat");
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const response = await fetch("/offer", {method: "POST", body: JSON.stringify(offer)});
    await pc.setRemoteDescription(await response.json());
    const identity = await pc.peerIdentity;
    report({ok: true, idp: identity.idp, name: identity.name, offer: offer.sdp});
  } catch (e) {
    report({ok: false, error: e.name + ": " + e.message});
  }
})();
</script>"""

# What PEERS.md lists for a quiet headless Firefox, and a little more for a fast first start.
USER_JS = """
user_pref("app.update.enabled", false);
user_pref("app.normandy.enabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.safebrowsing.downloads.enabled", false);
user_pref("browser.safebrowsing.update.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("services.settings.server", "http://127.0.0.1:9/");
user_pref("devtools.console.stdout.content", true);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.aboutwelcome.enabled", false);
user_pref("browser.startup.page", 0);
user_pref("extensions.update.enabled", false);
user_pref("extensions.getAddons.cache.enabled", false);
user_pref("browser.search.update", false);
user_pref("security.OCSP.enabled", 0);
user_pref("network.proxy.type", 0);
"""


class ProxyFormatProvider:
    """The Python half of the test IdP: the proxy's JSON assertions."""

    def __init__(self, domain: str) -> None:
        self.details = RTCIdentityProviderDetails(domain)

    async def generate_assertion(
        self, contents: str, origin: str, options: RTCIdentityProviderOptions
    ) -> RTCIdentityAssertionResult:
        document = {"identity": options.usernameHint, "contents": contents}
        return RTCIdentityAssertionResult(self.details, json.dumps(document))

    async def validate_assertion(self, assertion: str, origin: str) -> RTCIdentityValidationResult:
        document = json.loads(assertion)
        return RTCIdentityValidationResult(document["identity"], document["contents"])


def make_tls_files(directory: Path) -> None:
    """A CA for the profile to trust, and a localhost certificate it signs."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trio_rtc identity test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (directory / "leaf.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_profile(directory: Path, ca: Path) -> Path:
    profile = directory / "profile"
    profile.mkdir()
    assert CERTUTIL is not None
    database = f"sql:{profile}"
    subprocess.run([CERTUTIL, "-N", "-d", database, "--empty-password"], check=True)
    subprocess.run(
        [CERTUTIL, "-A", "-d", database, "-n", "trio_rtc test CA", "-t", "C,,", "-i", str(ca)],
        check=True,
    )
    (profile / "user.js").write_text(USER_JS)
    return profile


@pytest.fixture
def firefox_available() -> Iterator[None]:
    # .ci/setup installs both (apt-get install firefox-esr libnss3-tools).
    assert FIREFOX is not None, "firefox-esr is not installed (bash .ci/setup installs it)"
    assert CERTUTIL is not None, "certutil is not installed (apt-get install libnss3-tools)"
    yield


async def test_identities_both_ways_with_firefox(tmp_path: Path, firefox_available: None) -> None:
    make_tls_files(tmp_path)
    profile = make_profile(tmp_path, tmp_path / "ca.pem")
    token = trio.lowlevel.current_trio_token()
    results_send, results_receive = trio.open_memory_channel[dict[str, Any]](4)
    answer_box: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            domain = json.dumps(answer_box["domain"])
            if self.path == "/.well-known/idp-proxy/default":
                self._send(IDP_PROXY.replace("DOMAIN", domain).encode(), "application/javascript")
            else:
                self._send(PAGE.replace("DOMAIN", domain).encode(), "text/html")

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            if self.path == "/offer":
                answer = trio.from_thread.run(answer_box["answer"], body, trio_token=token)
                self._send(json.dumps(answer).encode(), "application/json")
            else:
                trio.from_thread.run(results_send.send, body, trio_token=token)
                self._send(b"{}", "application/json")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    domain = f"localhost:{server.server_address[1]}"
    answer_box["domain"] = domain
    thread = threading.Thread(target=server.serve_forever, name="idp-https", daemon=True)
    thread.start()

    registry = IdentityProviderRegistry(origin=f"https://{domain}")
    registry.register(domain, ProxyFormatProvider(domain))
    pc = RTCPeerConnection(
        {"certificates": [certificate(0)]}, ice_options=OPTIONS, identity_providers=registry
    )
    browser: trio.Process | None = None
    log_file = (tmp_path / "firefox.log").open("wb")
    try:
        async with pc:
            pc.setIdentityProvider(domain, {"usernameHint": "bob@localhost"})

            async def answer(offer: dict[str, Any]) -> dict[str, Any]:
                await pc.setRemoteDescription(offer)
                await pc.setLocalDescription(await pc.createAnswer())
                assert pc.localDescription is not None
                return {"type": "answer", "sdp": pc.localDescription.sdp}

            answer_box["answer"] = answer
            assert FIREFOX is not None
            page = f"https://{domain}/identity.html"
            browser = await trio.lowlevel.open_process(
                [FIREFOX, "--headless", "--no-remote", "--profile", str(profile), page],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            # A cold Firefox takes 15-30 s here to load the page and its IdP sandbox twice.
            with trio.fail_after(120):
                result = await results_receive.receive()
            assert result["ok"], f"Firefox: {result.get('error')}"
            assert (result["idp"], result["name"]) == (domain, "bob@localhost")
            assert "\r\na=identity:" in result["offer"].split("\r\nm=", 1)[0]
            with trio.fail_after(10):
                assert await pc.peerIdentity == RTCIdentityAssertion(domain, "alice@localhost")
            assert pc.identity.malformed == 0 and pc.identity.failures == 0
    finally:
        if browser is not None:
            with trio.CancelScope(shield=True):
                browser.terminate()
                with trio.move_on_after(10):
                    await browser.wait()
                if browser.returncode is None:
                    browser.kill()
                    await browser.wait()
        log_file.close()
        server.shutdown()
        server.server_close()
