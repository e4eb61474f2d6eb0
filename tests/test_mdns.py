"""mDNS: the pure query builder and response parser, and the trio resolver against zeroconf.

Every test that sends a packet runs in a fresh network namespace (``unshare --net``, we are root)
that holds only ``lo`` and an empty bridge: multicast cannot leave this machine through a real
interface because the namespace has none. The responder is the third-party ``zeroconf`` package.
Run as a script (``python tests/test_mdns.py``) this file is that namespace side: it runs the
scenarios and prints their results as JSON for the tests below to check.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from trio_rtc.ice import mdns
from trio_rtc.ice.mdns import (
    QTYPE_A,
    QTYPE_AAAA,
    MdnsError,
    MdnsResolver,
    build_query,
    parse_response_untrusted,
)

NAME = "0b6a1c3e-4f5d-4e6f-8a9b-0c1d2e3f4a5b.local"


def encode(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"


def record(owner: bytes, rtype: int, rdata: bytes, rclass: int = 0x8001) -> bytes:
    return owner + struct.pack("!HHIH", rtype, rclass, 120, len(rdata)) + rdata


def message(
    answers: list[bytes],
    authority: Sequence[bytes] = (),
    additional: Sequence[bytes] = (),
    question: bytes = b"",
    flags: int = 0x8400,
) -> bytes:
    header = struct.pack(
        "!HHHHHH", 0, flags, 1 if question else 0, len(answers), len(authority), len(additional)
    )
    return header + question + b"".join([*answers, *authority, *additional])


# --- pure part ---------------------------------------------------------------------------------


def test_build_query_bytes() -> None:
    query = build_query("ab.local.", qtype=QTYPE_A, transaction_id=0x1234)
    assert query == (
        b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        b"\x02ab\x05local\x00\x00\x01\x80\x01"  # QU bit set in the class (RFC 6762 §5.4)
    )
    plain = build_query("ab.local", qtype=QTYPE_AAAA, unicast_response=False)
    assert plain.endswith(b"\x00\x00\x1c\x00\x01")


@pytest.mark.parametrize("name", ["", ".", "a..local", "x" * 64 + ".local", "a." * 130 + "local"])
def test_build_query_rejects_bad_names(name: str) -> None:
    with pytest.raises(MdnsError):
        build_query(name, qtype=QTYPE_A)


def test_parse_answer_and_additional_with_compression_and_case() -> None:
    question = encode(NAME) + b"\x00\x01\x80\x01"
    pointer = b"\xc0\x0c"  # the question's name, right after the 12-byte header
    data = message(
        [record(pointer, QTYPE_A, bytes([192, 0, 2, 7]))],
        authority=[record(pointer, QTYPE_A, bytes([192, 0, 2, 99]))],
        additional=[
            record(encode(NAME.upper()), QTYPE_AAAA, socket.inet_pton(socket.AF_INET6, "fd00::7")),
            record(encode("other.local"), QTYPE_A, bytes([192, 0, 2, 8])),
            record(pointer, 16, b"\x03txt"),  # TXT: not an address
            record(pointer, QTYPE_A, bytes([192, 0, 2, 7])),  # duplicate
            record(pointer, QTYPE_A, bytes([192, 0, 2, 9]), rclass=3),  # class CH
        ],
        question=question,
    )
    assert parse_response_untrusted(data, NAME) == ["192.0.2.7", "fd00::7"]
    assert parse_response_untrusted(data, NAME.upper() + ".") == ["192.0.2.7", "fd00::7"]
    assert parse_response_untrusted(data, "other.local") == ["192.0.2.8"]


def test_parse_ignores_queries_and_error_codes() -> None:
    answer = [record(encode(NAME), QTYPE_A, bytes([192, 0, 2, 7]))]
    assert parse_response_untrusted(message(answer), NAME) == ["192.0.2.7"]
    assert parse_response_untrusted(message(answer, flags=0x0000), NAME) == []  # a query
    assert parse_response_untrusted(message(answer, flags=0x8403), NAME) == []  # NXDOMAIN
    assert parse_response_untrusted(message(answer, flags=0xA400), NAME) == []  # opcode 4


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b"\x00" * 11, "shorter than a DNS header"),
        (message([b"\xc0\xff"]), "runs past"),
        (message([b"\xc0"]), "truncated compression pointer"),
        (message([b"\xc0\x0c" + b"\x00" * 10]), "compression pointers"),  # points at itself
        (message([b"\x80x"]), "label type"),
        (message([b"\x05ab"]), "label runs past"),
        (message([b"\x3f" + b"a" * 63] * 5), "255"),
        (message([encode(NAME) + b"\x00\x01\x00"]), "record header"),
        (message([encode(NAME) + struct.pack("!HHIH", 1, 1, 0, 4) + b"\x01"]), "record data"),
        (struct.pack("!HHHHHH", 0, 0x8400, 1, 0, 0, 0) + encode(NAME) + b"\x00", "question"),
    ],
)
def test_parse_rejects_malformed(data: bytes, complaint: str) -> None:
    with pytest.raises(MdnsError, match=complaint):
        parse_response_untrusted(data, NAME)


def test_pointer_loop_between_two_names_is_bounded() -> None:
    # Two pointers that point at each other: the hop bound stops the walk.
    data = message([b"\xc0\x0e\xc0\x0c"])
    with pytest.raises(MdnsError, match="compression pointers"):
        parse_response_untrusted(data, NAME)


@given(st.binary(max_size=600))
def test_fuzz_any_bytes(data: bytes) -> None:
    try:
        result = parse_response_untrusted(data, NAME)
    except MdnsError:
        return
    assert all(isinstance(address, str) for address in result)


_VALID = message(
    [record(b"\xc0\x0c", QTYPE_A, bytes([192, 0, 2, 7]))],
    additional=[record(encode(NAME), QTYPE_AAAA, bytes(16))],
    question=encode(NAME) + b"\x00\x01\x80\x01",
)


@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), max_size=6))
def test_fuzz_mutated_response(mutations: list[tuple[int, int]]) -> None:
    data = bytearray(_VALID)
    for index, value in mutations:
        data[index] = value
    try:
        parse_response_untrusted(bytes(data), NAME)
    except MdnsError:
        pass


@given(st.text(max_size=80), st.integers(0, 0xFFFF))
def test_fuzz_build_query(name: str, transaction_id: int) -> None:
    try:
        query = build_query(name, qtype=QTYPE_A, transaction_id=transaction_id)
    except MdnsError:
        return
    labels, end = mdns._read_name(query, 12)
    assert end == len(query) - 4
    assert b".".join(labels) == name.rstrip(".").encode().lower()


# --- resolver logic without a network ------------------------------------------------------------


async def test_concurrent_resolves_share_one_query_and_answers_are_cached(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    calls: list[str] = []

    async def fake_query(self: MdnsResolver, key: str) -> str | None:
        calls.append(key)
        await trio.sleep(1)
        return "192.0.2.7" if key.startswith("known") else None

    monkeypatch.setattr(MdnsResolver, "_query", fake_query)
    resolver = MdnsResolver(cache_size=2)
    results: list[str | None] = []

    async def one(name: str) -> None:
        results.append(await resolver.resolve(name))

    async with trio.open_nursery() as nursery:
        for name in ("known.local", "KNOWN.local.", "known.local", "unknown.local"):
            nursery.start_soon(one, name)
    assert sorted(map(str, results)) == ["192.0.2.7"] * 3 + ["None"]
    assert sorted(calls) == ["known.local", "unknown.local"]
    assert await resolver.resolve("known.local") == "192.0.2.7"  # cached, no new query
    assert await resolver.resolve("unknown.local") is None  # misses are not cached
    assert len(calls) == 3
    for name in ("known1.local", "known2.local"):
        await resolver.resolve(name)
    assert list(resolver._cache) == ["known1.local", "known2.local"]  # bounded, LRU
    assert await resolver.resolve("not-mdns.example") is None
    assert await resolver.resolve("bad..local") is None
    assert len(calls) == 5


async def test_cancelled_leader_hands_the_query_to_a_waiter(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    calls = 0

    async def fake_query(self: MdnsResolver, key: str) -> str | None:
        nonlocal calls
        calls += 1
        await trio.sleep(1)
        return "192.0.2.7"

    monkeypatch.setattr(MdnsResolver, "_query", fake_query)
    resolver = MdnsResolver()
    got: list[str | None] = []
    leader = trio.CancelScope()

    async def lead() -> None:
        with leader:
            await resolver.resolve("x.local")

    async def follow() -> None:
        got.append(await resolver.resolve("x.local"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lead)
        await trio.sleep(0.1)
        nursery.start_soon(follow)
        await trio.sleep(0.1)
        leader.cancel()
    assert calls == 2  # the follower ran its own query after the leader was cancelled
    assert got == ["192.0.2.7"]
    assert resolver._pending == {}


# --- the network scenarios, run inside a private network namespace --------------------------------


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _scenarios(v4_name: str, v6_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    resolver = MdnsResolver(timeout=1.5, interface_address="127.0.0.1", multicast_ttl=1)
    start = trio.current_time()
    out["v4"] = await resolver.resolve(v4_name)
    out["v4_seconds"] = trio.current_time() - start
    start = trio.current_time()
    out["v4_again"] = await resolver.resolve(v4_name.upper())
    out["v4_again_seconds"] = trio.current_time() - start

    quick = MdnsResolver(timeout=0.4, interface_address="127.0.0.1", multicast_ttl=1)
    start = trio.current_time()
    out["unknown"] = await quick.resolve(f"{uuid.uuid4()}.local")
    out["unknown_seconds"] = trio.current_time() - start

    v6 = MdnsResolver(timeout=1.5, interface_address="fd00:1::1", multicast_ttl=1)
    out["v6"] = await v6.resolve(v6_name)

    # No default route here: sending fails, and resolve answers None instead of raising.
    out["no_route"] = await MdnsResolver(timeout=0.3).resolve(f"{uuid.uuid4()}.local")

    before = _fd_count()
    slow = MdnsResolver(timeout=5, interface_address="127.0.0.1", multicast_ttl=1)
    with trio.move_on_after(0.2) as scope:
        await slow.resolve(f"{uuid.uuid4()}.local")
    out["cancelled"] = scope.cancelled_caught
    out["fds_before_after"] = [before, _fd_count()]
    return out


def _namespace_main() -> None:
    # Imported here: zeroconf is a test-only dependency of the namespace side.
    from zeroconf import IPVersion, ServiceInfo, Zeroconf

    v4_name = f"{uuid.uuid4()}.local"
    v6_name = f"{uuid.uuid4()}.local"
    responders = [
        (
            Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only),
            v4_name,
            socket.inet_aton("127.0.0.5"),
        ),
        (
            Zeroconf(interfaces=[socket.if_nametoindex("b0")], ip_version=IPVersion.V6Only),
            v6_name,
            socket.inet_pton(socket.AF_INET6, "fd00:1::5"),
        ),
    ]
    try:
        for number, (zc, host, address) in enumerate(responders):
            info = ServiceInfo(
                "_trtc._udp.local.",
                f"test{number}._trtc._udp.local.",
                port=9,
                addresses=[address],
                server=host + ".",
            )
            # Fresh random names cannot collide, so the probing phase is skipped.
            zc.register_service(info, cooperating_responders=True)
        result = trio.run(_scenarios, v4_name, v6_name)
    finally:
        for zc, _, _ in responders:
            zc.close()
    print(json.dumps(result))


_NAMESPACE_SETUP = " && ".join(
    [
        "ip link set lo multicast on",
        "ip link set lo up",
        # An empty bridge: an IPv6 multicast-capable interface connected to nothing.
        "ip link add b0 type bridge",
        "ip link set b0 addrgenmode none",
        "ip link set b0 up",
        "ip addr add fd00:1::1/64 dev b0 nodad",
        'exec "$0" "$1"',
    ]
)


@pytest.fixture(scope="module")
def network_results() -> Iterator[dict[str, Any]]:
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", _NAMESPACE_SETUP, sys.executable, __file__],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"namespace side failed (root needed):\n{done.stderr}"
    yield json.loads(done.stdout.strip().splitlines()[-1])


def test_resolves_a_name_zeroconf_announces(network_results: dict[str, Any]) -> None:
    assert network_results["v4"] == "127.0.0.5"
    assert network_results["v4_seconds"] < 1.0


def test_second_resolve_comes_from_the_cache(network_results: dict[str, Any]) -> None:
    assert network_results["v4_again"] == "127.0.0.5"
    assert network_results["v4_again_seconds"] < 0.05


def test_ipv6_query_through_a_chosen_interface(network_results: dict[str, Any]) -> None:
    assert network_results["v6"] == "fd00:1::5"


def test_unknown_name_gives_none_within_the_timeout(network_results: dict[str, Any]) -> None:
    assert network_results["unknown"] is None
    assert 0.4 <= network_results["unknown_seconds"] < 2.0


def test_network_trouble_gives_none(network_results: dict[str, Any]) -> None:
    assert network_results["no_route"] is None


def test_cancellation_leaves_no_socket(network_results: dict[str, Any]) -> None:
    assert network_results["cancelled"] is True
    before, after = network_results["fds_before_after"]
    assert before == after


if __name__ == "__main__":
    _namespace_main()
