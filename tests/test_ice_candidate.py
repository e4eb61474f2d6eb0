import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_rtc.ice.candidate import (
    TYPE_PREFERENCE,
    Candidate,
    CandidateError,
    candidate_foundation,
    candidate_priority,
    pair_priority,
    parse_address_untrusted,
)

CHROMIUM_SRFLX = (
    "candidate:842163049 1 udp 1677729535 1.2.3.4 50000 typ srflx raddr 0.0.0.0 rport 0 "
    "generation 0 ufrag EsAw network-id 1 network-cost 10"
)
FIREFOX_MDNS = (
    "candidate:0 1 UDP 2122252543 a0b1c2d3-e4f5-4a6b-8c7d-0e1f2a3b4c5d.local 54321 typ host"
)
CHROMIUM_TCP = "candidate:3 1 tcp 1518280447 192.168.1.2 9 typ host tcptype active generation 0"


def test_chromium_srflx() -> None:
    c = Candidate.from_sdp(CHROMIUM_SRFLX)
    assert c == Candidate(
        foundation="842163049",
        component=1,
        transport="udp",
        priority=1677729535,
        host="1.2.3.4",
        port=50000,
        type="srflx",
        related_address="0.0.0.0",
        related_port=0,
        generation=0,
        ufrag="EsAw",
        network_id=1,
        network_cost=10,
    )
    assert c.to_sdp() == CHROMIUM_SRFLX
    assert c.family == socket.AF_INET
    assert not c.is_mdns


def test_firefox_mdns_host_with_upper_case_transport() -> None:
    c = Candidate.from_sdp("a=" + FIREFOX_MDNS + "\r\n")
    assert c.transport == "udp"
    assert c.host == "a0b1c2d3-e4f5-4a6b-8c7d-0e1f2a3b4c5d.local"
    assert c.is_mdns
    assert c.family is None
    assert c.to_sdp() == FIREFOX_MDNS.replace("UDP", "udp")


def test_tcp_active_and_bare_value() -> None:
    c = Candidate.from_sdp(CHROMIUM_TCP.removeprefix("candidate:"))
    assert (c.transport, c.port, c.tcptype, c.generation) == ("tcp", 9, "active", 0)
    assert c.to_sdp() == CHROMIUM_TCP


def test_ipv6_is_normalised_and_unknown_extensions_kept_in_order() -> None:
    c = Candidate.from_sdp(
        "candidate:a+/B 2 udp 100 2001:DB8:0:0::1 1 typ relay raddr [2001:db8::2] rport 7 "
        "zeta 1 alpha x"
    )
    assert c.host == "2001:db8::1"
    assert c.family == socket.AF_INET6
    assert c.related_address == "2001:db8::2"
    assert c.extensions == (("zeta", "1"), ("alpha", "x"))
    assert Candidate.from_sdp(c.to_sdp()) == c


def test_unknown_transport_and_type_are_kept_lower_cased() -> None:
    c = Candidate.from_sdp("candidate:1 1 DCCP 5 10.0.0.1 3 typ Custom")
    assert (c.transport, c.type) == ("dccp", "custom")


def test_runs_of_spaces_are_tolerated() -> None:
    c = Candidate.from_sdp("candidate:1  1 udp 5 10.0.0.1 3  typ host")
    assert c.port == 3


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "at least 8 fields"),
        ("candidate:1 1 udp 5 10.0.0.1 3 type host", "expected 'typ'"),
        ("candidate:1 0 udp 5 10.0.0.1 3 typ host", "component"),
        ("candidate:1 257 udp 5 10.0.0.1 3 typ host", "component"),
        ("candidate:1 1 udp 0 10.0.0.1 3 typ host", "priority"),
        ("candidate:1 1 udp 2147483648 10.0.0.1 3 typ host", "priority"),
        ("candidate:1 1 udp -5 10.0.0.1 3 typ host", "priority"),
        ("candidate:1 1 udp 5 10.0.0.1 65536 typ host", "port"),
        ("candidate:1 1 udp 5 10.0.0.1 ３ typ host", "port"),
        ("candidate:" + "a" * 33 + " 1 udp 5 10.0.0.1 3 typ host", "foundation"),
        ("candidate:a-b 1 udp 5 10.0.0.1 3 typ host", "foundation"),
        ("candidate:1 1 u/p 5 10.0.0.1 3 typ host", "transport"),
        ("candidate:1 1 udp 5 bad[host 3 typ host", "connection address"),
        ("candidate:1 1 udp 5 10.0.0.1 3 typ host generation", "has no value"),
        ("candidate:1 1 udp 5 10.0.0.1 3 typ host generation x", "generation"),
        ("candidate:1 1 udp 5 10.0.0.1 3 typ host generation 1 generation 2", "twice"),
        ("candidate:1 1 tcp 5 10.0.0.1 3 typ host tcptype sideways", "tcptype"),
        ("candidate:1 1 udp 5 10.0.0.1 3 typ srflx rport 1 raddr 1.2.3.4", "right after"),
        ("candidate:1 1 udp 5 10.0.0.1 3 typ host x\x01 1", "token"),
        ("candidate:1 1 udp 5 10.0.0.1 3 typ host x é", "visible ASCII"),
        ("candidate:1 1 udp 5 10.0.0.1 3 typ host " + "x 1 " * 2000, "longer than"),
    ],
)
def test_rejections_say_what_was_wrong(text: str, complaint: str) -> None:
    with pytest.raises(CandidateError, match=complaint):
        Candidate.from_sdp(text)


@given(st.text(max_size=300))
def test_fuzz_any_text(text: str) -> None:
    try:
        c = Candidate.from_sdp(text)
    except CandidateError:
        return
    assert Candidate.from_sdp(c.to_sdp()) == c


_fields = st.fixed_dictionaries(
    {
        "foundation": st.text("abcXYZ019+/", min_size=1, max_size=32),
        "component": st.integers(1, 256),
        "transport": st.sampled_from(["udp", "tcp", "dccp"]),
        "priority": st.integers(1, 2**31 - 1),
        "host": st.one_of(st.ip_addresses().map(str), st.uuids().map(lambda u: f"{u}.local")),
        "port": st.integers(0, 65535),
        "type": st.sampled_from(["host", "srflx", "prflx", "relay", "other"]),
        "related_address": st.none() | st.ip_addresses().map(str),
        "related_port": st.none() | st.integers(0, 65535),
        "tcptype": st.none() | st.sampled_from(["active", "passive", "so"]),
        "generation": st.none() | st.integers(0, 2**32 - 1),
        "ufrag": st.none() | st.text("abcXYZ+/019", min_size=4, max_size=8),
        "network_id": st.none() | st.integers(0, 100),
        "network_cost": st.none() | st.integers(0, 999),
        "extensions": st.lists(
            st.tuples(st.sampled_from(["x-a", "foo", "b.c"]), st.text("ab:=1", min_size=1)),
            max_size=3,
        ).map(tuple),
    }
)


@given(_fields)
def test_round_trip(fields: dict[str, object]) -> None:
    c = Candidate(**fields)  # type: ignore[arg-type]
    assert Candidate.from_sdp(c.to_sdp()) == c
    assert Candidate.from_sdp("a=" + c.to_sdp()) == c


def test_priority_formula() -> None:
    # RFC 8445 §5.1.2.1 with the recommended type preferences.
    assert candidate_priority("host") == (126 << 24) + (65535 << 8) + 255 == 2130706431
    assert candidate_priority("srflx", 0, 2) == (100 << 24) + 254
    assert candidate_priority("relay", 65535, 256) == 65535 << 8
    order = sorted(TYPE_PREFERENCE, key=candidate_priority, reverse=True)
    assert order == ["host", "prflx", "srflx", "relay"]
    for bad in (("nope", 1, 1), ("host", 65536, 1), ("host", 1, 0), ("host", 1, 257)):
        with pytest.raises(ValueError):
            candidate_priority(*bad)


def test_foundation_depends_on_type_base_ip_server_transport() -> None:
    f = candidate_foundation("host", "udp", "10.0.0.1")
    assert f == candidate_foundation("host", "UDP", "10.0.0.1")
    assert len(f) <= 8
    assert Candidate.from_sdp(f"candidate:{f} 1 udp 1 10.0.0.1 1 typ host").foundation == f
    others = {
        candidate_foundation("srflx", "udp", "10.0.0.1", "198.51.100.1"),
        candidate_foundation("srflx", "udp", "10.0.0.1", "198.51.100.2"),
        candidate_foundation("host", "tcp", "10.0.0.1"),
        candidate_foundation("host", "udp", "10.0.0.2"),
        f,
    }
    assert len(others) == 5
    assert candidate_foundation("host", "udp", "2001:DB8::1") == candidate_foundation(
        "host", "udp", "2001:db8:0::1"
    )


def test_pair_priority() -> None:
    # RFC 8445 §6.1.2.3: the same pair seen from either side has the same priority except for
    # the tie-breaking last bit, which favours the controlling side's higher candidate.
    g, d = 2130706431, 1694498815
    assert pair_priority(g, d) == (d << 32) + 2 * g + 1
    assert pair_priority(d, g) == (d << 32) + 2 * g
    assert pair_priority(5, 5) == (5 << 32) + 10


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        ("[::1]", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("[FE80:0::1%3]", "fe80::1"),
        ("2001:db8:0:0:0:0:0:1", "2001:db8::1"),
        ("host.local", None),
        ("01.2.3.4", None),
        ("", None),
        ("1" * 100, None),
    ],
)
def test_parse_address_untrusted(text: str, expected: str | None) -> None:
    assert parse_address_untrusted(text) == expected


@given(st.text(max_size=80))
def test_fuzz_parse_address(text: str) -> None:
    result = parse_address_untrusted(text)
    assert result is None or parse_address_untrusted(result) == result


_PIECES = CHROMIUM_SRFLX.split(" ") + FIREFOX_MDNS.split(" ") + CHROMIUM_TCP.split(" ")


@given(
    st.lists(
        st.sampled_from(_PIECES) | st.text(max_size=6) | st.integers(-1, 2**33).map(str),
        max_size=24,
    )
)
def test_fuzz_shuffled_real_fields(pieces: list[str]) -> None:
    try:
        c = Candidate.from_sdp(" ".join(pieces))
    except CandidateError:
        return
    assert Candidate.from_sdp(c.to_sdp()) == c
