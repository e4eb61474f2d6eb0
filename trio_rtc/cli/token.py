"""Copy-paste tokens: a session description as one line of text, for two machines with no
signalling server between them.

A token is ``trtc1.`` followed by the URL-safe base64 (unpadded) of the zlib-compressed
description, ``"<type>\\n<sdp>"``. The description is taken after ICE gathering completed, so it
carries every candidate and nothing needs to trickle afterwards. A token is as trustworthy as the
path it was pasted through: it holds the DTLS fingerprint the other side will check.
"""

from __future__ import annotations

import base64
import binascii
import zlib

__all__ = ["MAX_TOKEN_SDP", "TOKEN_PREFIX", "TokenError", "decode_token_untrusted", "encode_token"]

TOKEN_PREFIX = "trtc1."
#: The largest description a token may expand to (a zip bomb pasted in stays harmless).
MAX_TOKEN_SDP = 64 * 1024


class TokenError(ValueError):
    """The text is not a complete, well-formed token."""


def encode_token(type: str, sdp: str) -> str:
    compressed = zlib.compress(f"{type}\n{sdp}".encode(), 9)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(compressed).decode("ascii").rstrip("=")


def decode_token_untrusted(text: str) -> tuple[str, str]:
    """``(type, sdp)`` from a pasted token; whitespace and line breaks inside it are ignored
    (terminals and mail programs wrap long lines). Raises :class:`TokenError`."""
    compact = "".join(text.split())
    if not compact.startswith(TOKEN_PREFIX):
        raise TokenError(f"a token starts with {TOKEN_PREFIX!r}")
    body = compact[len(TOKEN_PREFIX) :]
    try:
        compressed = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TokenError(f"not base64: {exc}") from None
    decompressor = zlib.decompressobj()
    try:
        data = decompressor.decompress(compressed, MAX_TOKEN_SDP + 1)
    except zlib.error as exc:
        raise TokenError(f"not a compressed description: {exc}") from None
    if len(data) > MAX_TOKEN_SDP:
        raise TokenError(f"the description is larger than {MAX_TOKEN_SDP} bytes")
    if not decompressor.eof:
        raise TokenError("the token is cut short")
    try:
        type, _, sdp = data.decode().partition("\n")
    except UnicodeDecodeError:
        raise TokenError("the description is not UTF-8") from None
    if type not in ("offer", "answer") or not sdp.startswith("v=0"):
        raise TokenError("the token holds no offer or answer")
    return type, sdp
