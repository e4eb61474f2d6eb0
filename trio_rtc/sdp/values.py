"""Value parsers shared by the session and media levels of the SDP parser.

Each raises :class:`Invalid` with what was expected; the parser adds the line number. Tokens are
separated by whitespace as ``str.split()`` sees it, and the serialiser joins them with one space,
so that re-parsing canonical text gives the same values.
"""

from __future__ import annotations

import re

from trio_rtc.sdp.model import (
    Bandwidth,
    Connection,
    Direction,
    Extmap,
    Fingerprint,
    Group,
    MsidSemantic,
    Origin,
    Setup,
)

__all__ = [
    "Invalid",
    "parse_bandwidth",
    "parse_connection",
    "parse_extmap",
    "parse_fingerprint",
    "parse_group",
    "parse_int",
    "parse_msid_semantic",
    "parse_origin",
    "parse_setup",
    "require_flag",
    "require_token",
    "require_tokens",
    "require_value",
    "show",
    "split_attribute",
]

# RFC 8866 §9: token-char = %x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 / %x41-5A / %x5E-7E
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
# Numbers in SDP are small; a 20-digit cap keeps int() cheap and covers 64-bit session ids.
_MAX_DIGITS = 20


class Invalid(Exception):
    """A line could not be parsed; the message says what was expected."""


def show(text: str, limit: int = 60) -> str:
    """``text`` quoted for an error message, cut to ``limit`` characters."""
    if len(text) > limit:
        return repr(text[:limit]) + "…"
    return repr(text)


def parse_int(token: str, what: str, maximum: int, minimum: int = 0) -> int:
    """A decimal number made of ASCII digits only (``int()`` would also take ``+1``, ``1_0`` or
    other scripts' digits), between ``minimum`` and ``maximum``."""
    if not (token.isascii() and token.isdigit()) or len(token) > _MAX_DIGITS:
        raise Invalid(f"expected {what} (a decimal number), got {show(token)}")
    number = int(token)
    if not minimum <= number <= maximum:
        raise Invalid(f"{what} {number} is out of range; expected {minimum} to {maximum}")
    return number


def require_value(name: str, value: str | None, shape: str) -> str:
    """The value of ``a=name:value``, which must be present and not blank."""
    if value is None or not value.strip():
        raise Invalid(f"expected a={name}:{shape}")
    return value


def require_token(name: str, value: str | None, what: str) -> str:
    """A value that is exactly one whitespace-free token (ufrag, pwd, mid …)."""
    tokens = require_value(name, value, f"<{what}>").split()
    if len(tokens) != 1:
        raise Invalid(f"expected a={name}:<{what}> with no spaces, got {show(value or '')}")
    return tokens[0]


def require_tokens(name: str, value: str | None, shape: str) -> list[str]:
    """A value made of one or more whitespace-separated tokens."""
    return require_value(name, value, shape).split()


def require_flag(name: str, value: str | None) -> None:
    """A property attribute (``a=rtcp-mux``) takes no value."""
    if value is not None:
        raise Invalid(f"expected a={name} with no value, got a={name}:{show(value)}")


def split_attribute(text: str) -> tuple[str, str | None]:
    """``name[:value]`` of an ``a=`` line (RFC 8866 §5.13); the name must be a token."""
    name, colon, value = text.partition(":")
    if not _TOKEN.fullmatch(name):
        raise Invalid(f"expected a=<attribute name>[:<value>], got a={show(text)}")
    return name, (value if colon else None)


def parse_origin(value: str) -> Origin:
    tokens = value.split()
    if len(tokens) != 6:
        raise Invalid(
            "expected o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>, "
            f"got o={show(value)}"
        )
    return Origin(
        username=tokens[0],
        session_id=parse_int(tokens[1], "a session id", 10**_MAX_DIGITS),
        session_version=parse_int(tokens[2], "a session version", 10**_MAX_DIGITS),
        net_type=tokens[3],
        addr_type=tokens[4],
        address=tokens[5],
    )


def parse_connection(value: str) -> Connection:
    tokens = value.split()
    if len(tokens) != 3:
        raise Invalid(f"expected c=<nettype> <addrtype> <address>, got c={show(value)}")
    return Connection(net_type=tokens[0], addr_type=tokens[1], address=tokens[2])


def parse_bandwidth(value: str) -> Bandwidth:
    kind, colon, amount = value.partition(":")
    if not colon or not _TOKEN.fullmatch(kind):
        raise Invalid(f"expected b=<bwtype>:<bandwidth>, got b={show(value)}")
    return Bandwidth(kind, parse_int(amount, "a bandwidth", 10**_MAX_DIGITS))


def parse_fingerprint(value: str | None) -> Fingerprint:
    tokens = require_tokens("fingerprint", value, "<hash function> <fingerprint>")
    if len(tokens) != 2:
        raise Invalid(
            f"expected a=fingerprint:<hash function> <fingerprint>, got {show(value or '')}"
        )
    return Fingerprint(tokens[0], tokens[1])


def parse_setup(value: str | None) -> Setup:
    role = require_token("setup", value, "actpass|active|passive|holdconn").lower()
    for setup in Setup:
        if setup.value == role:
            return setup
    raise Invalid(f"expected a=setup:actpass, active, passive or holdconn, got {show(role)}")


def parse_group(value: str | None) -> Group:
    tokens = require_tokens("group", value, "<semantics> <mid> …")
    return Group(tokens[0], tuple(tokens[1:]))


def parse_msid_semantic(value: str | None) -> MsidSemantic:
    tokens = require_tokens("msid-semantic", value, "<semantic> [<id> …]")
    return MsidSemantic(tokens[0], tuple(tokens[1:]))


_DIRECTIONS = {d.value: d for d in Direction}


def parse_extmap(value: str | None) -> Extmap:
    parts = require_value("extmap", value, "<id>[/<direction>] <uri>").split(None, 2)
    if len(parts) < 2:
        raise Invalid(f"expected a=extmap:<id>[/<direction>] <uri>, got {show(value or '')}")
    ident, slash, direction_text = parts[0].partition("/")
    direction = None
    if slash:
        direction = _DIRECTIONS.get(direction_text)
        if direction is None:
            raise Invalid(
                "expected an extmap direction of sendrecv, sendonly, recvonly or inactive, "
                f"got {show(direction_text)}"
            )
    # RFC 8285 §5 allows 1-14 and 1-255 (and 4096-4351 in offers, RFC 5285); the range check
    # that matters is JSEP's, so any 16-bit id is kept here.
    return Extmap(
        id=parse_int(ident, "an extmap id", 65535),
        uri=parts[1],
        direction=direction,
        attributes=parts[2] if len(parts) == 3 else None,
    )
