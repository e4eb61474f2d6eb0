"""Hypothesis fuzzing of the SDP parser and a stability property over generated models.

* Any text gives a SessionDescription or an SdpParseError, never another exception.
* Whatever parses serialises back to its own text (CRLF endings, blank lines dropped), and its
  canonical form parses to an equal model.
* A generated model survives serialise -> parse -> serialise unchanged.
"""

from __future__ import annotations

import pathlib
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_rtc.sdp import (
    Attribute,
    Bandwidth,
    Codec,
    Connection,
    Direction,
    Extmap,
    Fingerprint,
    Group,
    MediaDescription,
    Msid,
    MsidSemantic,
    Origin,
    Rid,
    RidDirection,
    RtcpAddress,
    SdpParseError,
    SessionDescription,
    Setup,
    Simulcast,
    SimulcastFormat,
    Ssrc,
    SsrcGroup,
    Timing,
    parse_sdp,
)

SAMPLES = pathlib.Path(__file__).parent / "sdp_samples"
SAMPLE_LINES = [p.read_bytes().decode().split("\r\n")[:-1] for p in sorted(SAMPLES.glob("*.sdp"))]
ALL_LINES = sorted({line for lines in SAMPLE_LINES for line in lines})

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def normalised(text: str) -> str:
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    return "".join(line + "\r\n" for line in lines if line)


def check(text: str) -> None:
    try:
        description = parse_sdp(text)
    except SdpParseError as error:
        assert error.line_number is None or error.line_number >= 1
        return
    assert description.serialize() == normalised(text)
    canonical = description.serialize(keep_layout=False)
    again = parse_sdp(canonical)
    assert again == description
    assert again.serialize() == canonical


@FUZZ
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    check(text)


@FUZZ
@given(st.text(alphabet="vosctmab=:/ 0123456789\r\n-*;,~"))
def test_arbitrary_text_of_sdp_characters(text: str) -> None:
    check(text)


@st.composite
def mutated_samples(draw: st.DrawFn) -> str:
    lines = list(draw(st.sampled_from(SAMPLE_LINES)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(
            st.sampled_from(["delete", "duplicate", "swap", "char", "cut", "insert", "foreign"])
        )
        index = draw(st.integers(0, max(len(lines) - 1, 0)))
        if not lines:
            lines.append(draw(st.text(max_size=20)))
        elif op == "delete":
            del lines[index]
        elif op == "duplicate":
            lines.insert(index, lines[index])
        elif op == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        elif op == "char":
            line = lines[index]
            at = draw(st.integers(0, len(line)))
            char = draw(st.sampled_from(" :/=;,~*0123456789x\t\u00a0") | st.characters())
            lines[index] = line[:at] + char + line[at + 1 :]
        elif op == "cut":
            lines[index] = lines[index][: draw(st.integers(0, len(lines[index])))]
        elif op == "insert":
            lines.insert(index, draw(st.text(max_size=30)))
        else:
            lines.insert(index, draw(st.sampled_from(ALL_LINES)))
    ending = draw(st.sampled_from(["\r\n", "\n"]))
    return "".join(line + ending for line in lines)


@FUZZ
@given(mutated_samples())
def test_mutated_samples(text: str) -> None:
    check(text)


# -- generated models ----------------------------------------------------------------------

TOKEN_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`{|}~"
token = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12)
rid_id = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=6)
uri = st.text(alphabet=string.ascii_letters + string.digits + ":/.-_", min_size=1, max_size=30)
# Free text that fits on a line: anything but CR, LF and NUL.
line_text = st.text(st.characters(blacklist_characters="\r\n\x00"), max_size=25)
# Text that starts with a non-space, as the rest of "<first> <rest>" values does after parsing.
rest_text = line_text.filter(lambda s: s != "" and not s[0].isspace())
# A value that must not be blank (candidates).
raw_value = line_text.filter(lambda s: s.strip() != "")
number = st.integers(0, 2**40)
directions = st.none() | st.sampled_from(Direction)

connections = st.builds(Connection, address=token, net_type=token, addr_type=token)
bandwidths = st.builds(
    Bandwidth, type=st.text(string.ascii_letters + "-", min_size=1, max_size=5), value=number
)
fingerprints = st.builds(Fingerprint, algorithm=token, value=token)
extmaps = st.builds(
    Extmap,
    id=st.integers(0, 65535),
    uri=uri,
    direction=directions,
    attributes=st.none() | rest_text,
)
rid_restrictions = st.tuples(
    st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=8).filter(
        lambda name: name != "pt"
    ),
    st.none() | st.text(alphabet=[chr(c) for c in range(0x21, 0x7F) if c != 0x3B], max_size=8),
)
unknown_attributes = st.builds(
    Attribute,
    name=st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=8).map(lambda s: "x-" + s),
    value=st.none() | line_text,
)


@st.composite
def codecs(draw: st.DrawFn) -> dict[int, Codec]:
    result: dict[int, Codec] = {}
    for pt in draw(st.lists(st.integers(0, 127), unique=True, max_size=5)):
        has_rtpmap = draw(st.booleans())
        fmtp = draw(st.none() | st.just("") | rest_text)
        rtcp_fb = tuple(draw(st.lists(rest_text, max_size=3)))
        if not has_rtpmap and fmtp is None and not rtcp_fb:
            has_rtpmap = True
        result[pt] = Codec(
            payload_type=pt,
            name=draw(token.filter(lambda s: "/" not in s)) if has_rtpmap else None,
            clock_rate=draw(st.integers(0, 2**32)) if has_rtpmap else None,
            channels=draw(st.none() | st.integers(0, 255)) if has_rtpmap else None,
            fmtp=fmtp,
            rtcp_fb=rtcp_fb,
        )
    return result


@st.composite
def simulcast_list(draw: st.DrawFn) -> tuple[tuple[SimulcastFormat, ...], ...]:
    # RFC 8853 §5.1: a rid appears once; at most 8 (MAX_RIDS) per direction.
    rids = draw(st.lists(rid_id, unique=True, max_size=8))
    streams: list[tuple[SimulcastFormat, ...]] = []
    while rids:
        size = draw(st.integers(1, min(3, len(rids))))
        streams.append(tuple(SimulcastFormat(r, draw(st.booleans())) for r in rids[:size]))
        rids = rids[size:]
    return tuple(streams)


simulcasts = st.builds(Simulcast, send=simulcast_list(), recv=simulcast_list()).filter(
    lambda s: bool(s.send or s.recv)
)


@st.composite
def media_descriptions(draw: st.DrawFn) -> MediaDescription:
    rtp = draw(st.booleans())
    if rtp:
        protocol = draw(st.sampled_from(["UDP/TLS/RTP/SAVPF", "RTP/AVP", "TCP/RTP/AVPF"]))
        table = draw(codecs())
        extra = draw(st.lists(st.integers(0, 127).map(str), max_size=3))
        formats = [str(pt) for pt in table] + extra
        if not formats:
            formats = ["0"]
    else:
        protocol = draw(st.sampled_from(["UDP/DTLS/SCTP", "DTLS/SCTP", "TCP/DTLS/SCTP"]))
        table = {}
        formats = draw(st.lists(token, min_size=1, max_size=3))
    return MediaDescription(
        kind=draw(token),
        port=draw(st.integers(0, 65535)),
        protocol=protocol,
        formats=formats,
        port_count=draw(st.none() | st.integers(1, 65535)),
        information=draw(st.none() | line_text),
        connection=draw(st.none() | connections),
        bandwidths=draw(st.lists(bandwidths, max_size=2)),
        encryption_key=draw(st.none() | line_text),
        mid=draw(st.none() | token),
        direction=draw(directions),
        ice_ufrag=draw(st.none() | token),
        ice_pwd=draw(st.none() | token),
        ice_options=draw(st.lists(token, max_size=3)),
        fingerprints=draw(st.lists(fingerprints, max_size=2)),
        setup=draw(st.none() | st.sampled_from(Setup)),
        candidates=draw(st.lists(raw_value, max_size=3)),
        end_of_candidates=draw(st.booleans()),
        rtcp=draw(
            st.none()
            | st.builds(RtcpAddress, port=st.integers(0, 65535), connection=st.none() | connections)
        ),
        rtcp_mux=draw(st.booleans()),
        rtcp_mux_only=draw(st.booleans()),
        rtcp_rsize=draw(st.booleans()),
        codecs=table,
        rtcp_fb_wildcard=draw(st.lists(rest_text, max_size=2)) if rtp else [],
        extmaps=draw(st.lists(extmaps, max_size=3)),
        extmap_allow_mixed=draw(st.booleans()),
        msids=draw(
            st.lists(st.builds(Msid, stream_id=token, track_id=st.none() | token), max_size=2)
        ),
        ssrc_groups=draw(
            st.lists(
                st.builds(
                    SsrcGroup, semantics=token, ssrcs=st.lists(st.integers(0, 2**32 - 1)).map(tuple)
                ),
                max_size=2,
            )
        ),
        ssrcs=draw(
            st.lists(
                st.builds(
                    Ssrc,
                    ssrc=st.integers(0, 2**32 - 1),
                    attribute=token,
                    value=st.none() | line_text,
                ),
                max_size=3,
            )
        ),
        rids=draw(
            st.lists(
                st.builds(
                    Rid,
                    id=rid_id,
                    direction=st.sampled_from(RidDirection),
                    payload_types=st.lists(st.integers(0, 127), max_size=3).map(tuple),
                    restrictions=st.lists(rid_restrictions, max_size=3).map(tuple),
                ),
                max_size=3,
                unique_by=lambda r: (r.id, r.direction),
            )
        ),
        simulcast=draw(st.none() | simulcasts),
        sctp_port=draw(st.none() | st.integers(0, 65535)),
        max_message_size=draw(st.none() | number),
        bundle_only=draw(st.booleans()),
        attributes=draw(st.lists(unknown_attributes, max_size=3)),
    )


session_descriptions = st.builds(
    SessionDescription,
    origin=st.builds(
        Origin,
        session_id=number,
        session_version=number,
        username=token,
        net_type=token,
        addr_type=token,
        address=token,
    ),
    session_name=line_text,
    information=st.none() | line_text,
    uri=st.none() | line_text,
    emails=st.lists(line_text, max_size=2),
    phones=st.lists(line_text, max_size=2),
    connection=st.none() | connections,
    bandwidths=st.lists(bandwidths, max_size=2),
    timing=st.lists(
        st.builds(
            Timing, start=number, stop=number, repeats=st.lists(line_text, max_size=2).map(tuple)
        ),
        min_size=1,
        max_size=2,
    ),
    time_zones=st.none() | line_text,
    encryption_key=st.none() | line_text,
    groups=st.lists(
        st.builds(Group, semantics=token, mids=st.lists(token, max_size=3).map(tuple)), max_size=2
    ),
    extmap_allow_mixed=st.booleans(),
    msid_semantic=st.none()
    | st.builds(MsidSemantic, semantic=token, identifiers=st.lists(token, max_size=2).map(tuple)),
    ice_lite=st.booleans(),
    ice_ufrag=st.none() | token,
    ice_pwd=st.none() | token,
    ice_options=st.lists(token, max_size=2),
    fingerprints=st.lists(fingerprints, max_size=2),
    setup=st.none() | st.sampled_from(Setup),
    direction=directions,
    extmaps=st.lists(extmaps, max_size=2),
    end_of_candidates=st.booleans(),
    attributes=st.lists(unknown_attributes, max_size=3),
    media=st.lists(media_descriptions(), max_size=3),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session_descriptions)
def test_generated_models_are_stable(description: SessionDescription) -> None:
    text = description.serialize()
    parsed = parse_sdp(text)
    assert parsed == description
    assert parsed.serialize() == text
    assert parsed.serialize(keep_layout=False) == text
