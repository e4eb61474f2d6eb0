"""Interface enumeration, on this machine and inside fresh network namespaces we configure.

The namespace tests run a small Python program under ``unshare -n`` (we are root), so the
interfaces are exactly the ones the test creates: nothing in them is connected to anything.
"""

import json
import socket
import subprocess
import sys

import pytest

from trio_rtc.ice import interfaces
from trio_rtc.ice.interfaces import (
    InterfaceAddress,
    list_interface_addresses,
    usable_host_addresses,
)

_REPORT = """
import json
from trio_rtc.ice.interfaces import list_interface_addresses, usable_host_addresses
def show(entries):
    return [[e.interface, e.address, int(e.family), e.scope_id, e.is_loopback, e.is_link_local]
            for e in entries]
print(json.dumps({
    "all": show(list_interface_addresses()),
    "auto": show(usable_host_addresses()),
    "v4": show(usable_host_addresses(ipv6=False)),
    "lo": show(usable_host_addresses(include_loopback=True)),
    "nolo": show(usable_host_addresses(include_loopback=False)),
    "ll": show(usable_host_addresses(link_local=True)),
}))
"""


def run_in_netns(setup: list[str]) -> dict[str, list[list[object]]]:
    """Run _REPORT in a new network namespace after the given ``ip`` commands."""
    script = " && ".join(["ip link set lo up", *setup, 'exec "$0" -c "$1"'])
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", script, sys.executable, _REPORT],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"unshare -n failed (root needed): {done.stderr}"
    result: dict[str, list[list[object]]] = json.loads(done.stdout)
    return result


def addresses(rows: list[list[object]]) -> list[object]:
    return [row[1] for row in rows]


def test_namespace_with_only_loopback_falls_back_to_loopback() -> None:
    report = run_in_netns([])
    assert addresses(report["all"]) == ["127.0.0.1", "::1"]
    assert report["all"][0] == ["lo", "127.0.0.1", int(socket.AF_INET), 0, True, False]
    assert addresses(report["auto"]) == ["127.0.0.1", "::1"]
    assert addresses(report["v4"]) == ["127.0.0.1"]
    assert report["nolo"] == []


def test_namespace_with_a_bridge() -> None:
    report = run_in_netns(
        [
            "ip link add b0 type bridge",
            "ip link set b0 addrgenmode none",
            "ip link set b0 up",
            "ip addr add 198.51.100.7/24 dev b0",
            "ip addr add 169.254.3.4/16 dev b0",
            "ip addr add 2001:db8::7/64 dev b0 nodad",
            "ip addr add fe80::7/64 dev b0 nodad",
            # An interface that is down contributes nothing.
            "ip link add v0 type veth peer name v1",
            "ip addr add 203.0.113.9/24 dev v0",
        ]
    )
    index = next(row[3] for row in report["all"] if row[1] == "fe80::7")
    assert isinstance(index, int) and index > 1
    assert sorted(map(str, addresses(report["all"]))) == sorted(
        ["127.0.0.1", "::1", "198.51.100.7", "169.254.3.4", "2001:db8::7", "fe80::7"]
    )
    assert addresses(report["auto"]) == ["198.51.100.7", "169.254.3.4", "2001:db8::7"]
    assert addresses(report["nolo"]) == addresses(report["auto"])
    assert addresses(report["v4"]) == ["198.51.100.7", "169.254.3.4"]
    assert addresses(report["lo"]) == [*addresses(report["auto"]), "127.0.0.1", "::1"]
    assert addresses(report["ll"]) == ["198.51.100.7", "169.254.3.4", "2001:db8::7", "fe80::7"]
    link_local = next(row for row in report["ll"] if row[1] == "fe80::7")
    assert link_local == ["b0", "fe80::7", int(socket.AF_INET6), index, False, True]


def test_this_machine_has_loopback_and_names_match_the_kernel() -> None:
    entries = list_interface_addresses()
    names = {name for _, name in socket.if_nameindex()}
    assert {entry.interface for entry in entries} <= names
    assert any(e.address == "127.0.0.1" and e.is_loopback for e in entries)
    for entry in entries:
        assert "%" not in entry.address
        if entry.is_link_local and entry.family == socket.AF_INET6:
            assert entry.scope_id == socket.if_nametoindex(entry.interface)
        else:
            assert entry.scope_id == 0
    usable = usable_host_addresses()
    if any(not e.is_loopback for e in usable):
        assert all(not e.is_loopback for e in usable)
    assert all(not (e.family == socket.AF_INET6 and e.is_link_local) for e in usable)


def test_fallback_without_getifaddrs(monkeypatch: pytest.MonkeyPatch) -> None:
    real = {entry.address for entry in interfaces._getifaddrs_entries() or []}
    monkeypatch.setattr(interfaces, "_getifaddrs_entries", lambda: None)
    entries = list_interface_addresses()
    assert InterfaceAddress("", "127.0.0.1", socket.AF_INET, 0, True, False) in entries
    assert all(entry.interface == "" for entry in entries)
    # The source address chosen for the default route is one getifaddrs also knows about.
    assert {entry.address for entry in entries} <= real


def test_sockaddr_family_layouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interfaces, "_SA_LEN_PREFIX", True)
    assert interfaces._sockaddr_family(bytes([16, 2])) == 2
    monkeypatch.setattr(interfaces, "_SA_LEN_PREFIX", False)
    assert interfaces._sockaddr_family((10).to_bytes(2, sys.byteorder)) == 10


def test_bind_address_carries_the_scope() -> None:
    entry = InterfaceAddress("eth9", "fe80::1", socket.AF_INET6, 7, False, True)
    assert entry.bind_address == ("fe80::1", 0, 0, 7)
    v4 = InterfaceAddress("eth9", "10.0.0.1", socket.AF_INET, 0, False, False)
    assert v4.bind_address == ("10.0.0.1", 0)
