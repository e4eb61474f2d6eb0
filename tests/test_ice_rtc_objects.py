"""The W3C value objects: RTCIceCandidate (attributes, toJSON, constructor rules),
RTCIceParameters, RTCIceServer, and the ICE server URL grammar."""

from __future__ import annotations

import pytest

from trio_rtc.ice.rtc import RTCIceCandidate, RTCIceParameters, RTCIceServer
from trio_rtc.ice.transport import _parse_server_url

CHROME = (
    "candidate:842163049 1 udp 1677729535 198.51.100.7 50000 typ srflx raddr 10.0.0.2 "
    "rport 40000 generation 0 ufrag EsAw network-id 1 network-cost 10"
)


def test_browser_to_json_dict_round_trips() -> None:
    init = {"candidate": CHROME, "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "EsAw"}
    candidate = RTCIceCandidate(init)
    assert candidate.toJSON() == init
    assert candidate.foundation == "842163049"
    assert candidate.component == "rtp"
    assert candidate.priority == 1677729535
    assert candidate.address == "198.51.100.7"
    assert candidate.protocol == "udp"
    assert candidate.port == 50000
    assert candidate.type == "srflx"
    assert candidate.relatedAddress == "10.0.0.2"
    assert candidate.relatedPort == 40000
    assert candidate.tcpType is None
    assert RTCIceCandidate(**init) == candidate  # keyword form


def test_username_fragment_comes_from_the_candidate_when_not_given() -> None:
    candidate = RTCIceCandidate(candidate=CHROME, sdpMid="0")
    assert candidate.usernameFragment == "EsAw"


def test_end_of_candidates_and_unparseable_text_leave_attributes_null() -> None:
    end = RTCIceCandidate({"candidate": "", "sdpMid": "0"})
    assert end.candidate == "" and end.address is None and end.type is None
    odd = RTCIceCandidate({"candidate": "candidate:garbage", "sdpMLineIndex": 1})
    assert odd.address is None and odd.toJSON()["sdpMLineIndex"] == 1


def test_constructor_errors_name_the_problem() -> None:
    with pytest.raises(TypeError, match="sdpMid or sdpMLineIndex"):
        RTCIceCandidate({"candidate": CHROME})
    with pytest.raises(TypeError, match="no member"):
        RTCIceCandidate({"candidate": CHROME, "sdpMid": "0", "bogus": 1})
    with pytest.raises(TypeError, match="unsigned short"):
        RTCIceCandidate({"candidate": CHROME, "sdpMLineIndex": -1})


def test_parameters_and_servers_coerce_from_dicts() -> None:
    params = RTCIceParameters.coerce({"usernameFragment": "abcd", "password": "x" * 22})
    assert params.usernameFragment == "abcd" and not params.iceLite
    with pytest.raises(TypeError, match="password"):
        RTCIceParameters.coerce({"usernameFragment": "abcd"})
    server = RTCIceServer.coerce({"urls": "stun:127.0.0.1:3478"})
    assert server.urls == ("stun:127.0.0.1:3478",)
    many = RTCIceServer.coerce({"urls": ["turn:a", "turn:b"], "username": "u", "credential": "p"})
    assert many.urls == ("turn:a", "turn:b") and many.username == "u"
    with pytest.raises(TypeError, match="urls"):
        RTCIceServer.coerce({"username": "u"})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("stun:stun.example.org", ("stun", "stun.example.org", 3478)),
        ("stun:127.0.0.1:19302", ("stun", "127.0.0.1", 19302)),
        ("stun:[::1]:3478", ("stun", "::1", 3478)),
        ("turn:host?transport=udp", ("turn", "host", 3478)),
        ("turns:host", ("turns", "host", 5349)),
        ("STUN:Host:1", ("stun", "Host", 1)),
    ],
)
def test_server_urls(url: str, expected: tuple[str, str, int]) -> None:
    assert _parse_server_url(url) == expected


@pytest.mark.parametrize("url", ["http://x", "stun:", "stun:host:99999", "stun:host:abc", "x"])
def test_bad_server_urls(url: str) -> None:
    with pytest.raises(TypeError):
        _parse_server_url(url)


def test_ice_server_urls_may_be_one_string_as_the_spec_allows() -> None:
    assert RTCIceServer(urls="stun:stun.example.org").urls == ("stun:stun.example.org",)
    assert RTCIceServer(urls=["stun:a.example", "turn:b.example"]).urls == (
        "stun:a.example",
        "turn:b.example",
    )
    with pytest.raises(TypeError, match="URL string"):
        RTCIceServer(urls=[])


@pytest.mark.parametrize("ending", ["\r\n", "\n", "\r"])
def test_the_sdp_line_ending_is_tolerated(ending: str) -> None:
    candidate = RTCIceCandidate({"candidate": "a=" + CHROME + ending, "sdpMid": "0"})
    assert candidate.candidate == CHROME
    assert candidate.type == "srflx" and candidate.port == 50000


@pytest.mark.parametrize("inside", ["\r\n", "\n", "\x00"])
def test_a_line_break_inside_is_not_a_candidate_line(inside: str) -> None:
    text = CHROME.replace(" generation", inside + "generation")
    candidate = RTCIceCandidate({"candidate": text, "sdpMid": "0"})
    # Not parsed: addIceCandidate refuses it (OperationError) instead of putting a line
    # break into the remote description.
    assert candidate.type is None and candidate.address is None
