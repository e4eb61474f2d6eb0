"""Writing the SDP model out as text (RFC 8866 §5, CRLF line endings).

Every section is first turned into a list of ``(key, text)`` lines in canonical order, the order
Chromium writes. A section that came from :func:`~trio_rtc.sdp.parse.parse_sdp_untrusted` carries a
:class:`~trio_rtc.sdp.model.Layout`; :func:`arrange` then puts the lines back in the parsed order
and restores the parsed text of every line whose canonical text did not change, and slots new
lines in after their canonical predecessor.
"""

from __future__ import annotations

from trio_rtc.sdp.model import (
    Attribute,
    Codec,
    Connection,
    Extmap,
    Layout,
    LineKey,
    MediaDescription,
    Rid,
    SessionDescription,
    Simulcast,
    SimulcastFormat,
)

__all__ = ["arrange", "media_lines", "serialize_sdp", "session_lines"]

Line = tuple[LineKey, str]


def serialize_sdp(description: SessionDescription, *, keep_layout: bool = True) -> str:
    """The SDP text of ``description``, each line ended by CRLF.

    With ``keep_layout`` (the default) a parsed description keeps the order and text of its
    source lines; without it everything is written in canonical form.

    Raises ``ValueError`` if a value would break the line structure (contains CR, LF or NUL) or
    an m-section has no formats, so that a model built from user input cannot inject lines.
    """
    out = arrange(session_lines(description), description.layout if keep_layout else None)
    for media in description.media:
        if not media.formats:
            raise ValueError(f"m-section {media.kind!r} (mid {media.mid!r}) has no formats")
        out.extend(arrange(media_lines(media), media.layout if keep_layout else None))
    for text in out:
        if "\r" in text or "\n" in text or "\0" in text:
            raise ValueError(f"SDP line contains CR, LF or NUL: {text!r}")
    out.append("")
    return "\r\n".join(out)


def arrange(lines: list[Line], layout: Layout | None) -> list[str]:
    """Order ``lines`` as ``layout`` says (see the module docstring)."""
    if layout is None:
        return [text for _, text in lines]
    head: list[str] = []
    placed: list[tuple[int, list[str]]] = []
    followers = head
    for key, text in lines:
        position = layout.positions.get(key)
        if position is None:
            followers.append(text)
            continue
        if layout.canonical[position] == text:
            text = layout.original[position]
        followers = [text]
        placed.append((position, followers))
    placed.sort(key=lambda item: item[0])
    result = head
    for _, group in placed:
        result.extend(group)
    return result


def _connection(c: Connection) -> str:
    return f"c={c.net_type} {c.addr_type} {c.address}"


def _extmap(e: Extmap) -> str:
    head = f"a=extmap:{e.id}" if e.direction is None else f"a=extmap:{e.id}/{e.direction.value}"
    tail = "" if e.attributes is None else f" {e.attributes}"
    return f"{head} {e.uri}{tail}"


def _attribute(a: Attribute) -> str:
    return f"a={a.name}" if a.value is None else f"a={a.name}:{a.value}"


def _rid(rid: Rid) -> str:
    items = [f"pt={','.join(str(pt) for pt in rid.payload_types)}"] if rid.payload_types else []
    items.extend(name if value is None else f"{name}={value}" for name, value in rid.restrictions)
    text = f"a=rid:{rid.id} {rid.direction.value}"
    return f"{text} {';'.join(items)}" if items else text


def _simulcast_list(streams: tuple[tuple[SimulcastFormat, ...], ...]) -> str:
    return ";".join(
        ",".join(("~" if f.paused else "") + f.rid for f in alternatives)
        for alternatives in streams
    )


def _simulcast(s: Simulcast) -> str:
    parts = []
    if s.send:
        parts.append(f"send {_simulcast_list(s.send)}")
    if s.recv:
        parts.append(f"recv {_simulcast_list(s.recv)}")
    return "a=simulcast:" + " ".join(parts)


def _codec_lines(codec: Codec) -> list[Line]:
    pt = codec.payload_type
    lines: list[Line] = []
    if codec.name is not None and codec.clock_rate is not None:
        rtpmap = f"a=rtpmap:{pt} {codec.name}/{codec.clock_rate}"
        if codec.channels is not None:
            rtpmap += f"/{codec.channels}"
        lines.append((("rtpmap", pt), rtpmap))
    for index, feedback in enumerate(codec.rtcp_fb):
        lines.append((("rtcp-fb", pt, index), f"a=rtcp-fb:{pt} {feedback}"))
    if codec.fmtp is not None:
        fmtp = f"a=fmtp:{pt}" if codec.fmtp == "" else f"a=fmtp:{pt} {codec.fmtp}"
        lines.append((("fmtp", pt), fmtp))
    return lines


def session_lines(d: SessionDescription) -> list[Line]:
    """The session-level lines of ``d`` in canonical order (RFC 8866 §5 grammar order)."""
    o = d.origin
    lines: list[Line] = [
        (("v",), "v=0"),
        (
            ("o",),
            f"o={o.username} {o.session_id} {o.session_version} "
            f"{o.net_type} {o.addr_type} {o.address}",
        ),
        (("s",), f"s={d.session_name}"),
    ]
    if d.information is not None:
        lines.append((("i",), f"i={d.information}"))
    if d.uri is not None:
        lines.append((("u",), f"u={d.uri}"))
    lines.extend((("e", i), f"e={email}") for i, email in enumerate(d.emails))
    lines.extend((("p", i), f"p={phone}") for i, phone in enumerate(d.phones))
    if d.connection is not None:
        lines.append((("c",), _connection(d.connection)))
    lines.extend((("b", i), f"b={b.type}:{b.value}") for i, b in enumerate(d.bandwidths))
    for i, timing in enumerate(d.timing):
        lines.append((("t", i), f"t={timing.start} {timing.stop}"))
        lines.extend((("r", i, j), f"r={r}") for j, r in enumerate(timing.repeats))
    if d.time_zones is not None:
        lines.append((("z",), f"z={d.time_zones}"))
    if d.encryption_key is not None:
        lines.append((("k",), f"k={d.encryption_key}"))
    for i, group in enumerate(d.groups):
        text = f"a=group:{group.semantics}" + "".join(f" {mid}" for mid in group.mids)
        lines.append((("group", i), text))
    if d.extmap_allow_mixed:
        lines.append((("extmap-allow-mixed",), "a=extmap-allow-mixed"))
    if d.msid_semantic is not None:
        ms = d.msid_semantic
        text = f"a=msid-semantic:{ms.semantic}" + "".join(f" {i}" for i in ms.identifiers)
        lines.append((("msid-semantic",), text))
    if d.ice_lite:
        lines.append((("ice-lite",), "a=ice-lite"))
    lines.extend(_transport_lines(d.ice_ufrag, d.ice_pwd, d.ice_options))
    lines.extend(
        (("fingerprint", i), f"a=fingerprint:{f.algorithm} {f.value}")
        for i, f in enumerate(d.fingerprints)
    )
    if d.setup is not None:
        lines.append((("setup",), f"a=setup:{d.setup.value}"))
    if d.direction is not None:
        lines.append((("direction",), f"a={d.direction.value}"))
    lines.extend((("extmap", i), _extmap(e)) for i, e in enumerate(d.extmaps))
    if d.end_of_candidates:
        lines.append((("end-of-candidates",), "a=end-of-candidates"))
    lines.extend((("a", i), _attribute(a)) for i, a in enumerate(d.attributes))
    return lines


def _transport_lines(ufrag: str | None, pwd: str | None, options: list[str]) -> list[Line]:
    lines: list[Line] = []
    if ufrag is not None:
        lines.append((("ice-ufrag",), f"a=ice-ufrag:{ufrag}"))
    if pwd is not None:
        lines.append((("ice-pwd",), f"a=ice-pwd:{pwd}"))
    if options:
        lines.append((("ice-options",), "a=ice-options:" + " ".join(options)))
    return lines


def media_lines(m: MediaDescription) -> list[Line]:
    """The lines of one m-section in canonical order (Chromium's order; unknown attributes
    last)."""
    port = f"{m.port}" if m.port_count is None else f"{m.port}/{m.port_count}"
    lines: list[Line] = [(("m",), f"m={m.kind} {port} {m.protocol} " + " ".join(m.formats))]
    if m.information is not None:
        lines.append((("i",), f"i={m.information}"))
    if m.connection is not None:
        lines.append((("c",), _connection(m.connection)))
    lines.extend((("b", i), f"b={b.type}:{b.value}") for i, b in enumerate(m.bandwidths))
    if m.encryption_key is not None:
        lines.append((("k",), f"k={m.encryption_key}"))
    if m.rtcp is not None:
        text = f"a=rtcp:{m.rtcp.port}"
        if m.rtcp.connection is not None:
            c = m.rtcp.connection
            text += f" {c.net_type} {c.addr_type} {c.address}"
        lines.append((("rtcp",), text))
    lines.extend((("candidate", i), f"a=candidate:{c}") for i, c in enumerate(m.candidates))
    if m.end_of_candidates:
        lines.append((("end-of-candidates",), "a=end-of-candidates"))
    lines.extend(_transport_lines(m.ice_ufrag, m.ice_pwd, m.ice_options))
    lines.extend(
        (("fingerprint", i), f"a=fingerprint:{f.algorithm} {f.value}")
        for i, f in enumerate(m.fingerprints)
    )
    if m.setup is not None:
        lines.append((("setup",), f"a=setup:{m.setup.value}"))
    if m.mid is not None:
        lines.append((("mid",), f"a=mid:{m.mid}"))
    if m.bundle_only:
        lines.append((("bundle-only",), "a=bundle-only"))
    lines.extend((("extmap", i), _extmap(e)) for i, e in enumerate(m.extmaps))
    if m.extmap_allow_mixed:
        lines.append((("extmap-allow-mixed",), "a=extmap-allow-mixed"))
    if m.direction is not None:
        lines.append((("direction",), f"a={m.direction.value}"))
    for i, msid in enumerate(m.msids):
        text = f"a=msid:{msid.stream_id}"
        if msid.track_id is not None:
            text += f" {msid.track_id}"
        lines.append((("msid", i), text))
    for flag, name in (
        (m.rtcp_mux, "rtcp-mux"),
        (m.rtcp_mux_only, "rtcp-mux-only"),
        (m.rtcp_rsize, "rtcp-rsize"),
    ):
        if flag:
            lines.append(((name,), f"a={name}"))
    lines.extend(_all_codec_lines(m))
    lines.extend(
        (("rtcp-fb", "*", i), f"a=rtcp-fb:* {fb}") for i, fb in enumerate(m.rtcp_fb_wildcard)
    )
    for i, group in enumerate(m.ssrc_groups):
        text = f"a=ssrc-group:{group.semantics}" + "".join(f" {s}" for s in group.ssrcs)
        lines.append((("ssrc-group", i), text))
    for i, ssrc in enumerate(m.ssrcs):
        text = f"a=ssrc:{ssrc.ssrc} {ssrc.attribute}"
        if ssrc.value is not None:
            text += f":{ssrc.value}"
        lines.append((("ssrc", i), text))
    lines.extend((("rid", i), _rid(rid)) for i, rid in enumerate(m.rids))
    if m.simulcast is not None:
        lines.append((("simulcast",), _simulcast(m.simulcast)))
    if m.sctp_port is not None:
        lines.append((("sctp-port",), f"a=sctp-port:{m.sctp_port}"))
    if m.max_message_size is not None:
        lines.append((("max-message-size",), f"a=max-message-size:{m.max_message_size}"))
    lines.extend((("a", i), _attribute(a)) for i, a in enumerate(m.attributes))
    return lines


def _all_codec_lines(m: MediaDescription) -> list[Line]:
    """Codec lines in m-line order, then codecs for payload types the m-line does not list."""
    lines: list[Line] = []
    done: set[int] = set()
    for fmt in m.formats:
        if fmt.isascii() and fmt.isdigit() and len(fmt) <= 3:
            pt = int(fmt)
            codec = m.codecs.get(pt)
            if codec is not None and pt not in done:
                done.add(pt)
                lines.extend(_codec_lines(codec))
    for pt, codec in m.codecs.items():
        if pt not in done:
            lines.extend(_codec_lines(codec))
    return lines
