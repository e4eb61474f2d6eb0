"""Exceptions with the names the W3C WebRTC spec and the DOM give them.

A JavaScript ``DOMException`` carries its kind in ``name``; here each kind is a Python class with
that name, all deriving from :class:`DOMException`, so ``except InvalidStateError`` reads like the
spec. Messages say what was wrong and what was expected.
"""

from __future__ import annotations

__all__ = [
    "DOMException",
    "InvalidAccessError",
    "InvalidCharacterError",
    "InvalidModificationError",
    "InvalidStateError",
    "NotSupportedError",
    "OperationError",
    "RTCError",
    "SdpSyntaxError",
]


class DOMException(Exception):
    """Base of every spec-named error. ``name`` is the DOMException name a browser would report."""

    name = "DOMException"


class InvalidStateError(DOMException):
    """The object is not in a state that allows the call (for example, it is closed)."""

    name = "InvalidStateError"


class InvalidAccessError(DOMException):
    """The call is not allowed with these arguments in this situation."""

    name = "InvalidAccessError"


class InvalidCharacterError(DOMException):
    """A string holds a character the call does not accept (for example, a DTMF tone)."""

    name = "InvalidCharacterError"


class InvalidModificationError(DOMException):
    """The change asked for is not allowed (for example, changing the certificates of a pc)."""

    name = "InvalidModificationError"


class NotSupportedError(DOMException):
    """The operation or value is valid in the spec but not supported here."""

    name = "NotSupportedError"


class OperationError(DOMException):
    """The operation failed for a reason that is specific to it."""

    name = "OperationError"


class SdpSyntaxError(DOMException):
    """A session description could not be parsed. Browsers report this as ``SyntaxError``; the
    Python class takes another name so that it does not shadow the built-in ``SyntaxError``."""

    name = "SyntaxError"


class RTCError(OperationError):
    """The spec's ``RTCError``: an ``OperationError`` with details about where it happened."""

    name = "OperationError"

    def __init__(
        self,
        message: str,
        *,
        errorDetail: str,
        sdpLineNumber: int | None = None,
        sctpCauseCode: int | None = None,
        receivedAlert: int | None = None,
        sentAlert: int | None = None,
    ) -> None:
        super().__init__(message)
        self.errorDetail = errorDetail
        self.sdpLineNumber = sdpLineNumber
        self.sctpCauseCode = sctpCauseCode
        self.receivedAlert = receivedAlert
        self.sentAlert = sentAlert
