"""The interface scan behind host candidates is shared by transports gathering together."""

from __future__ import annotations

import pytest

import trio_rtc.ice.transport as transport
from trio_rtc.ice.interfaces import InterfaceAddress


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool | None, bool]]:
    calls: list[tuple[bool | None, bool]] = []

    def scan(*, include_loopback: bool | None = None, ipv6: bool = True) -> list[InterfaceAddress]:
        calls.append((include_loopback, ipv6))
        return [
            InterfaceAddress("lo", "127.0.0.1", 2, 0, True, False),
            InterfaceAddress("eth0", "fe80::1", 10, 3, False, True),
        ]

    monkeypatch.setattr(transport, "usable_host_addresses", scan)
    monkeypatch.setattr(transport, "_host_scans", {})
    return calls


def test_transports_gathering_together_scan_once(scans: list[tuple[bool | None, bool]]) -> None:
    first = transport._host_addresses(None, True)
    assert first == ["127.0.0.1", "fe80::1%3"]
    first.append("changed by the caller")
    assert transport._host_addresses(None, True) == ["127.0.0.1", "fe80::1%3"]
    assert scans == [(None, True)]
    # Other options are another scan.
    transport._host_addresses(True, False)
    assert scans == [(None, True), (True, False)]


def test_a_scan_expires(
    scans: list[tuple[bool | None, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(transport.time, "monotonic", lambda: now[0])
    transport._host_addresses(None, True)
    now[0] += transport.HOST_SCAN_TTL * 0.9
    transport._host_addresses(None, True)
    assert len(scans) == 1
    now[0] += transport.HOST_SCAN_TTL * 0.2
    transport._host_addresses(None, True)
    assert len(scans) == 2


def test_each_network_namespace_scans_its_own(
    scans: list[tuple[bool | None, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = [1]
    monkeypatch.setattr(transport, "_network_namespace", lambda: namespace[0])
    transport._host_addresses(None, True)
    namespace[0] = 2
    transport._host_addresses(None, True)
    namespace[0] = 1
    transport._host_addresses(None, True)
    assert len(scans) == 2


def test_the_real_namespace_is_read() -> None:
    assert transport._network_namespace() == transport._network_namespace()
