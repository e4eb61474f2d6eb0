"""Malformed descriptions: each error names the 1-based line and what was expected."""

from __future__ import annotations

import pytest

from trio_rtc.exceptions import DOMException, SdpSyntaxError
from trio_rtc.sdp import (
    MAX_LINE_LENGTH,
    MAX_MEDIA_SECTIONS,
    MAX_SDP_LENGTH,
    SdpParseError,
    parse_sdp,
)

HEAD = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
DATA = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"


def error_of(text: str) -> SdpParseError:
    with pytest.raises(SdpParseError) as info:
        parse_sdp(text)
    return info.value


def test_minimal_description_parses() -> None:
    d = parse_sdp(HEAD)
    assert d.media == [] and d.timing[0].start == 0
    assert d.serialize() == HEAD


def test_error_types_and_message() -> None:
    error = error_of("v=1\r\n")
    assert isinstance(error, SdpSyntaxError) and isinstance(error, DOMException)
    assert error.name == "SyntaxError"
    assert error.line_number == 1
    assert str(error) == "SDP line 1: expected v=0, got v='1'"
    assert error.reason == "expected v=0, got v='1'"


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("", 1, "expected v=0"),
        ("\r\n\r\n", 3, "expected v=0"),
        ("o=- 1 2 IN IP4 0.0.0.0\r\n", 1, "expected v=0"),
        ("v=0\r\n", 2, "expected an o= (origin) line"),
        ("v=0\r\ns=-\r\n", 2, "expected an o= (origin) line"),
        ("v=0\r\no=- 1 2 IN IP4\r\n", 2, "expected o=<username> <sess-id>"),
        ("v=0\r\no=- x 2 IN IP4 0.0.0.0\r\n", 2, "expected a session id"),
        ("v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\nt=0 0\r\n", 3, "expected an s= (session name)"),
        ("v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\n", 4, "expected a t= line"),
        ("v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\n" + DATA, 4, "expected a t= line"),
        (HEAD + "t=now\r\n", 5, "expected t=<start time> <stop time>"),
        (HEAD + "s=again\r\n", 5, "a second s= line"),
        (HEAD + "v=0\r\n", 5, "a second v= line"),
        (HEAD + "x=1\r\n", 5, "unknown line type 'x'"),
        (HEAD + "hello\r\n", 5, "expected <letter>=<value>"),
        (HEAD + "A=1\r\n", 5, "expected <letter>=<value>"),
        (HEAD + "=\r\n", 5, "expected <letter>=<value>"),
        (HEAD + "c=IN IP4\r\n", 5, "expected c=<nettype> <addrtype> <address>"),
        (HEAD + "b=AS\r\n", 5, "expected b=<bwtype>:<bandwidth>"),
        (HEAD + "b=AS:lots\r\n", 5, "expected a bandwidth"),
        ("v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nr=1\r\n", 4, "expected a t= line before"),
        (HEAD + "a=:x\r\n", 5, "expected a=<attribute name>"),
        (HEAD + "a= ice-lite\r\n", 5, "expected a=<attribute name>"),
        (HEAD + "a=ice-lite:yes\r\n", 5, "expected a=ice-lite with no value"),
        (HEAD + "a=ice-lite\r\na=ice-lite\r\n", 6, "a second a=ice-lite line"),
        (HEAD + "a=sendrecv\r\na=recvonly\r\n", 6, "a second direction attribute"),
        (HEAD + "a=group\r\n", 5, "expected a=group:<semantics>"),
        (HEAD + "a=setup:sometimes\r\n", 5, "expected a=setup:actpass, active, passive"),
        (HEAD + "a=fingerprint:sha-256\r\n", 5, "expected a=fingerprint:<hash function>"),
        (HEAD + "a=ice-ufrag:\r\n", 5, "expected a=ice-ufrag:<ufrag>"),
        (HEAD + "a=ice-pwd:two words\r\n", 5, "with no spaces"),
        (HEAD + "a=extmap:1/sideways urn:x\r\n", 5, "expected an extmap direction"),
        (HEAD + "a=extmap:one urn:x\r\n", 5, "expected an extmap id"),
        (HEAD + "a=extmap:1\r\n", 5, "expected a=extmap:<id>"),
        (HEAD + "a=msid-semantic:\r\n", 5, "expected a=msid-semantic:"),
        (HEAD + "a=mid:0\r\nm=audio\r\n", 6, "expected m=<media> <port> <proto> <fmt>"),
        (HEAD + "m=audio abc UDP/TLS/RTP/SAVPF 0\r\n", 5, "expected an m-line port"),
        (HEAD + "m=audio 70000 UDP/TLS/RTP/SAVPF 0\r\n", 5, "m-line port 70000 is out of range"),
        (HEAD + "m=audio 9/0 RTP/AVP 0\r\n", 5, "port count 0 is out of range"),
        (HEAD + "m=audio 9 UDP/TLS/RTP/SAVPF\r\n", 5, "at least one format"),
        (HEAD + "m=audio 9 RTP/AVP opus\r\n", 5, "expected an RTP payload type"),
        (HEAD + "m=audio 9 RTP/AVP 128\r\n", 5, "payload type in the m-line 128 is out"),
        (HEAD + "m=audio 9 RTP/AVP 0\r\nt=0 0\r\n", 6, "a t= line is not allowed in an m-section"),
        (HEAD + "m=audio 9 RTP/AVP 0\r\nc=IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\n", 7, "c= line"),
        (HEAD + "m=audio 9 RTP/AVP 0\r\na=mid:0\r\na=mid:1\r\n", 7, "a second a=mid line"),
        (HEAD + "m=audio 9 RTP/AVP 0\r\na=mid:\r\n", 6, "expected a=mid:<identification-tag>"),
        (HEAD + "m=audio 9 RTP/AVP 0\r\na=mid:a b\r\n", 6, "with no spaces"),
        (HEAD + "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n", 6, "expected a=rtpmap:<payload"),
        (HEAD + "m=audio 9 RTP/AVP 0\r\na=rtpmap:0\r\n", 6, "expected a=rtpmap:<payload"),
        (
            HEAD + "m=audio 9 RTP/AVP 0\r\na=rtpmap:x PCMU/8000\r\n",
            6,
            "expected a=rtpmap:<payload type 0-127>",
        ),
        (
            HEAD + "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/fast\r\n",
            6,
            "expected an rtpmap clock rate",
        ),
        (
            HEAD + "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000/x\r\n",
            6,
            "expected an rtpmap channel count",
        ),
        (HEAD + "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 /8000\r\n", 6, "expected a=rtpmap:"),
        (
            HEAD + "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 A/1\r\na=rtpmap:0 B/1\r\n",
            7,
            "a second a=rtpmap line for payload type 0",
        ),
        (HEAD + "m=audio 9 RTP/AVP 0\r\na=fmtp:0 a\r\na=fmtp:0 b\r\n", 7, "a second a=fmtp line"),
        (HEAD + "m=audio 9 RTP/AVP 0\r\na=fmtp:\r\n", 6, "expected a=fmtp:<payload type>"),
        (
            HEAD + "m=audio 9 RTP/AVP 0\r\na=rtcp-fb:0\r\n",
            6,
            "expected a=rtcp-fb:0 <feedback type>",
        ),
        (
            HEAD + "m=audio 9 RTP/AVP 0\r\na=rtcp-fb:*\r\n",
            6,
            "expected a=rtcp-fb:* <feedback type>",
        ),
        (HEAD + "m=audio 9 RTP/AVP 0\r\na=rtcp:x\r\n", 6, "expected an RTCP port"),
        (HEAD + "m=audio 9 RTP/AVP 0\r\na=rtcp:9 IN IP4\r\n", 6, "expected a=rtcp:<port>"),
        (HEAD + "m=audio 9 RTP/AVP 0\r\na=rtcp-mux:1\r\n", 6, "expected a=rtcp-mux with no value"),
        (HEAD + "m=audio 9 RTP/AVP 0\r\na=ssrc:1\r\n", 6, "expected a=ssrc:<ssrc> <attribute>"),
        (HEAD + "m=audio 9 RTP/AVP 0\r\na=ssrc:1 :x\r\n", 6, "expected a=ssrc:<ssrc> <attribute>"),
        (
            HEAD + "m=audio 9 RTP/AVP 0\r\na=ssrc:4294967296 cname:x\r\n",
            6,
            "SSRC 4294967296 is out of range",
        ),
        (HEAD + "m=audio 9 RTP/AVP 0\r\na=ssrc-group:FID 1 x\r\n", 6, "expected an SSRC"),
        (HEAD + "m=audio 9 RTP/AVP 0\r\na=msid:a b c\r\n", 6, "expected a=msid:<stream id>"),
        (HEAD + DATA + "a=sctp-port:65536\r\n", 6, "SCTP port 65536 is out of range"),
        (HEAD + DATA + "a=max-message-size:-1\r\n", 6, "expected a max-message-size"),
        (HEAD + DATA + "a=candidate: \r\n", 6, "expected a=candidate:<candidate>"),
        (HEAD + DATA + "a=sctp-port:١٢\r\n", 6, "expected an SCTP port"),
        (HEAD + DATA + "a=mid:0\rX\r\n", 6, "CR or NUL inside a line"),
        (HEAD + DATA + "a=mid:\x00\r\n", 6, "CR or NUL inside a line"),
    ],
)
def test_errors_name_the_line(text: str, line: int, expected: str) -> None:
    error = error_of(text)
    assert error.line_number == line, str(error)
    assert expected in error.reason, str(error)


def test_line_numbers_count_blank_lines_and_lf_endings() -> None:
    text = "v=0\n\no=- 1 2 IN IP4 0.0.0.0\ns=-\nt=0 0\n\nm=audio x RTP/AVP 0\n"
    assert error_of(text).line_number == 7


def test_size_limit() -> None:
    text = HEAD + ("a=x-pad:" + "y" * 1000 + "\r\n") * (MAX_SDP_LENGTH // 1000)
    error = error_of(text)
    assert error.line_number is None and "at most" in error.reason
    fits = HEAD + "a=x-pad:" + "y" * 8000 + "\r\n"
    fits += ("a=x-pad:" + "y" * 1000 + "\r\n") * ((MAX_SDP_LENGTH - len(fits)) // 1010)
    assert MAX_SDP_LENGTH - 1010 < len(fits) <= MAX_SDP_LENGTH
    assert parse_sdp(fits).serialize() == fits


def test_line_length_limit() -> None:
    ok = HEAD + "a=x-long:" + "z" * (MAX_LINE_LENGTH - 9) + "\r\n"
    assert parse_sdp(ok).attributes[0].value == "z" * (MAX_LINE_LENGTH - 9)
    error = error_of(HEAD + "a=x-long:" + "z" * MAX_LINE_LENGTH + "\r\n")
    assert error.line_number == 5 and "at most" in error.reason


def test_media_section_limit() -> None:
    section = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    assert len(parse_sdp(HEAD + section * MAX_MEDIA_SECTIONS).media) == MAX_MEDIA_SECTIONS
    error = error_of(HEAD + section * (MAX_MEDIA_SECTIONS + 1))
    assert error.line_number == 4 + MAX_MEDIA_SECTIONS + 1
    assert f"more than {MAX_MEDIA_SECTIONS} m-sections" in error.reason


def test_long_values_are_cut_in_messages() -> None:
    error = error_of(HEAD + "m=audio " + "9" * 5000 + " RTP/AVP 0\r\n")
    assert len(str(error)) < 200
