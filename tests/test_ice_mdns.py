"""Remote mDNS (``<uuid>.local``) candidates, as browsers send them by default.

Run in a fresh network namespace (``unshare --net``; we are root) holding only ``lo`` with
multicast on, so no mDNS query can leave through a real interface. The responder is the
third-party ``zeroconf`` package announcing the name for 127.0.0.1. Run as a script, this file is
the namespace side and prints its results as JSON for the tests below.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import trio

from trio_rtc.ice.candidate import Candidate
from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport

pytestmark = pytest.mark.interop


async def _connect_hiding_a(name: str | None, *, limit: float) -> dict[str, Any]:
    """A signals its host candidate under an mDNS name (``name``); B must resolve it, or, when
    the name is unknown, still connect through the peer-reflexive candidate A's checks reveal."""
    opts = IceTransportOptions(
        interfaces=["127.0.0.1"], mdns_interface="127.0.0.1", mdns_timeout=1.0
    )
    hidden = name or f"{uuid.uuid4()}.local"
    result: dict[str, Any] = {}
    start = trio.current_time()
    with trio.fail_after(limit):
        async with RTCIceTransport(options=opts) as a, RTCIceTransport(options=opts) as b:
            a.start(b.getLocalParameters(), "controlling")
            b.start(a.getLocalParameters(), "controlled")
            a.gather()
            b.gather()
            await a.wait_gathering_complete()
            await b.wait_gathering_complete()
            for candidate in a.getLocalCandidates():
                assert candidate.parsed is not None
                masked: Candidate = attrs.evolve(candidate.parsed, host=hidden)
                b.addRemoteCandidate({"candidate": masked.to_sdp(), "sdpMid": "0"})
            b.addRemoteCandidate(None)
            for candidate in b.getLocalCandidates():
                a.addRemoteCandidate(candidate)
            a.addRemoteCandidate(None)
            await a.wait_for_state("connected", "completed")
            await b.wait_for_state("connected", "completed")
            result["seconds"] = trio.current_time() - start
            if name is not None:
                # Connectivity does not wait for mDNS: A's checks may reach B first and teach it
                # a peer-reflexive candidate, which the resolved host candidate then replaces.
                with trio.move_on_after(3):
                    # No event reports a replaced remote candidate, so poll.
                    while not any(c.type == "host" for c in b.agent.remote_candidates):  # noqa: ASYNC110
                        await trio.sleep(0.01)
            remote = b.selected_pair.remote  # type: ignore[union-attr]
            result["b_remote_type"] = remote.type
            result["b_remote_host"] = remote.host
            result["b_remote_types"] = sorted(c.type for c in b.agent.remote_candidates)
            assert a.send(bytes([23]) + b"over mdns")
            result["data"] = (await b.dtls_receive_channel.receive()).decode()
    return result


async def _scenarios(name: str) -> dict[str, Any]:
    return {
        "resolved": await _connect_hiding_a(name, limit=10),
        "unresolved": await _connect_hiding_a(None, limit=10),
    }


def _namespace_main() -> None:
    from zeroconf import IPVersion, ServiceInfo, Zeroconf

    name = f"{uuid.uuid4()}.local"
    zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    try:
        info = ServiceInfo(
            "_trtc._udp.local.",
            "ice._trtc._udp.local.",
            port=9,
            addresses=[bytes([127, 0, 0, 1])],
            server=name + ".",
        )
        zc.register_service(info, cooperating_responders=True)
        result = trio.run(_scenarios, name)
    finally:
        zc.close()
    print(json.dumps(result))


_NAMESPACE_SETUP = 'ip link set lo multicast on && ip link set lo up && exec "$0" "$1"'


@pytest.fixture(scope="module")
def results() -> Iterator[dict[str, Any]]:
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", _NAMESPACE_SETUP, sys.executable, __file__],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"namespace side failed (root needed):\n{done.stderr}"
    yield json.loads(done.stdout.strip().splitlines()[-1])


def test_remote_mdns_candidate_is_resolved(results: dict[str, Any]) -> None:
    resolved = results["resolved"]
    assert resolved["data"] == "\x17over mdns"
    # The .local name was resolved to the real address and used as a host candidate.
    assert resolved["b_remote_types"] == ["host"]
    assert resolved["b_remote_host"] == "127.0.0.1"


def test_unresolvable_mdns_candidate_is_ignored_and_prflx_connects(
    results: dict[str, Any],
) -> None:
    unresolved = results["unresolved"]
    assert unresolved["data"] == "\x17over mdns"
    # B never got a usable candidate for A; A's checks taught it a peer-reflexive one.
    assert unresolved["b_remote_type"] == "prflx"
    assert unresolved["b_remote_types"] == ["prflx"]


if __name__ == "__main__":
    _namespace_main()
