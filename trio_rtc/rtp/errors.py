"""The one error type of the RTP family of parsers (RTP, RTCP, SRTP, header extensions).

Following the ``*_untrusted`` habit (STYLE.md): every function that reads bytes from a peer raises
:class:`RtpError` for anything malformed and nothing else, so a driver turns exactly this exception
into a counted drop. It subclasses ``ValueError`` so that code catching "bad value" keeps working;
mistakes in *our own* input (building a packet with a 9-bit payload type) raise plain
``ValueError`` instead, which a driver must not swallow.
"""

from __future__ import annotations

__all__ = ["RtpError"]


class RtpError(ValueError):
    """Bytes from the network are not a well-formed RTP, RTCP or SRTP packet or element."""
