"""Parsing SDP text from a peer into the model (RFC 8866 §5, §9).

The text is untrusted: whatever it holds, :func:`parse_sdp_untrusted` returns a
:class:`~trio_rtc.sdp.model.SessionDescription` or raises :class:`SdpParseError` (a
:class:`~trio_rtc.exceptions.SdpSyntaxError`) naming the 1-based line and what was expected.
Size limits bound what a peer can make us allocate.

Lines may end in CRLF or LF; blank lines are skipped. ``v=``, ``o=`` and ``s=`` must be the first
three lines, in the order RFC 8866 §5 gives; the other session-level lines may come in any order
before the first ``m=``, and the lines of an m-section in any order after it (browsers differ:
Firefox sorts its attributes by name). A line type RFC 8866 does not define is an error, as §5
allows ("MUST completely ignore or reject").
"""

from __future__ import annotations

from trio_rtc.exceptions import SdpSyntaxError
from trio_rtc.sdp.media import MediaBuilder
from trio_rtc.sdp.model import Layout, LineKey, SessionDescription, Timing
from trio_rtc.sdp.serialize import Line, media_lines, session_lines
from trio_rtc.sdp.session import SessionBuilder
from trio_rtc.sdp.values import Invalid, parse_int, parse_origin, show

__all__ = [
    "MAX_LINE_LENGTH",
    "MAX_MEDIA_SECTIONS",
    "MAX_SDP_LENGTH",
    "SdpParseError",
    "parse_sdp",
    "parse_sdp_untrusted",
]

#: Longest description accepted, in characters. Real offers are a few KiB; 256 KiB leaves room
#: for hundreds of m-sections with candidates.
MAX_SDP_LENGTH = 256 * 1024
#: Longest line accepted, in characters (a BUNDLE group of 256 mids fits comfortably).
MAX_LINE_LENGTH = 8 * 1024
#: Most m-sections accepted in one description.
MAX_MEDIA_SECTIONS = 256

_SESSION_TYPES = frozenset("iuepcbzka")
_MEDIA_TYPES = frozenset("icbka")
_ALL_TYPES = frozenset("vosiuepcbtrzkam")
_HEADER = {"v": "v=0", "o": "an o= (origin) line", "s": "an s= (session name) line"}


class SdpParseError(SdpSyntaxError):
    """A description could not be parsed.

    ``line_number`` is 1-based, counting every line of the input including blank ones (None when
    the problem is not on one line, such as the size limit); ``reason`` is the message without
    the line prefix.
    """

    def __init__(self, reason: str, line_number: int | None = None) -> None:
        prefix = "" if line_number is None else f"SDP line {line_number}: "
        super().__init__(prefix + reason)
        self.reason = reason
        self.line_number = line_number


def _make_layout(keys: list[LineKey], texts: list[str], lines: list[Line]) -> Layout | None:
    """The section's layout, or None when the text is exactly what the serialiser writes (our
    own descriptions, another trio_rtc's): such a layout would restore nothing, and every
    applied description would keep its lines twice over (a few KiB per peer connection)."""
    if len(lines) == len(keys) and all(
        key == line[0] and text == line[1]
        for key, text, line in zip(keys, texts, lines, strict=True)
    ):
        return None
    canonical = dict(lines)
    return Layout(
        positions={key: index for index, key in enumerate(keys)},
        canonical=tuple(canonical[key] for key in keys),
        original=tuple(texts),
    )


def _duplicate(key: LineKey) -> str:
    name = str(key[0])
    if name == "direction":
        label = "direction attribute (sendrecv, sendonly, recvonly, inactive)"
    elif len(name) == 1:
        label = f"{name}= line"
    else:
        label = f"a={name} line"
    return f"a second {label}; expected at most one"


class _Parser:
    """Feeds lines to the session builder, then to one media builder per m-section, and records
    each section's layout when it ends."""

    def __init__(self) -> None:
        self.expect = "v"
        self.description: SessionDescription | None = None
        self.session: SessionBuilder | None = None
        self.media: MediaBuilder | None = None
        self.keys: list[LineKey] = []
        self.texts: list[str] = []
        self.seen: set[LineKey] = set()
        self.last_timing: int | None = None

    def feed(self, kind: str, value: str, text: str) -> None:
        if self.expect:
            key = self._header(kind, value)
        elif kind == "m":
            self._close_section()
            assert self.description is not None
            if len(self.description.media) >= MAX_MEDIA_SECTIONS:
                raise Invalid(f"more than {MAX_MEDIA_SECTIONS} m-sections")
            self.media = MediaBuilder.from_mline(value)
            key = ("m",)
        elif self.media is not None:
            if kind not in _MEDIA_TYPES:
                raise Invalid(
                    f"a {kind}= line is not allowed in an m-section; expected i=, c=, b=, k= or a="
                )
            key = self.media.line(kind, value)
        else:
            key = self._session_line(kind, value)
        if key in self.seen:
            raise Invalid(_duplicate(key))
        self.seen.add(key)
        self.keys.append(key)
        self.texts.append(text)

    def _header(self, kind: str, value: str) -> LineKey:
        if kind != self.expect:
            raise Invalid(
                f"expected {_HEADER[self.expect]}, got a {kind}= line "
                "(RFC 8866 §5: a description starts with v=, o=, s=)"
            )
        if kind == "v":
            if value != "0":
                raise Invalid(f"expected v=0, got v={show(value)}")
            self.expect = "o"
        elif kind == "o":
            self.description = SessionDescription(origin=parse_origin(value), timing=[])
            self.session = SessionBuilder(self.description)
            self.expect = "s"
        else:
            assert self.description is not None
            self.description.session_name = value
            self.expect = ""
        return (kind,)

    def _session_line(self, kind: str, value: str) -> LineKey:
        assert self.session is not None and self.description is not None
        timing = self.description.timing
        if kind == "t":
            tokens = value.split()
            if len(tokens) != 2:
                raise Invalid(f"expected t=<start time> <stop time>, got t={show(value)}")
            start = parse_int(tokens[0], "a start time", 2**64)
            stop = parse_int(tokens[1], "a stop time", 2**64)
            self.last_timing = len(timing)
            timing.append(Timing(start, stop))
            return ("t", self.last_timing)
        if kind == "r":
            if self.last_timing is None:
                raise Invalid("expected a t= line before an r= line")
            t = timing[self.last_timing]
            timing[self.last_timing] = Timing(t.start, t.stop, (*t.repeats, value))
            return ("r", self.last_timing, len(t.repeats))
        if kind in _SESSION_TYPES:
            return self.session.line(kind, value)
        if kind in _ALL_TYPES:
            raise Invalid(f"a second {kind}= line; expected one, at the start")
        raise Invalid(f"unknown line type {kind!r}; expected one of v o s i u e p c b t r z k a m")

    def _close_section(self) -> None:
        assert self.description is not None
        if self.media is not None:
            media = self.media.finish()
            media.layout = _make_layout(self.keys, self.texts, media_lines(media))
            self.description.media.append(media)
        else:
            if not self.description.timing:
                raise Invalid("expected a t= line in the session section (RFC 8866 §5.9)")
            lines = session_lines(self.description)
            self.description.layout = _make_layout(self.keys, self.texts, lines)
        self.keys, self.texts, self.seen = [], [], set()

    def finish(self) -> SessionDescription:
        if self.expect or self.description is None:
            raise Invalid(f"the description ended early; expected {_HEADER[self.expect]}")
        self._close_section()
        return self.description


def parse_sdp_untrusted(text: str) -> SessionDescription:
    """Parse a session description received from a peer.

    Raises :class:`SdpParseError` for anything that is not a well-formed description, and for
    input over :data:`MAX_SDP_LENGTH` characters, lines over :data:`MAX_LINE_LENGTH` or more
    than :data:`MAX_MEDIA_SECTIONS` m-sections.
    """
    if len(text) > MAX_SDP_LENGTH:
        raise SdpParseError(
            f"the description is {len(text)} characters long; at most {MAX_SDP_LENGTH} accepted"
        )
    parser = _Parser()
    number = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line:
            continue
        try:
            if len(line) > MAX_LINE_LENGTH:
                raise Invalid(f"a line of {len(line)} characters; at most {MAX_LINE_LENGTH}")
            if "\r" in line or "\0" in line:
                raise Invalid("CR or NUL inside a line; expected lines ended by CRLF or LF")
            if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
                raise Invalid(f"expected <letter>=<value>, got {show(line)}")
            parser.feed(line[0], line[2:], line)
        except Invalid as error:
            raise SdpParseError(str(error), number) from None
    try:
        return parser.finish()
    except Invalid as error:
        raise SdpParseError(str(error), max(number, 1)) from None


#: Same function as :func:`parse_sdp_untrusted`; the ``_untrusted`` spelling says at a call site
#: that the text came from a peer.
parse_sdp = parse_sdp_untrusted
