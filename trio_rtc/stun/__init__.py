"""STUN codec (RFC 8489) with the ICE (RFC 8445) and TURN (RFC 8656) attributes.

Pure: bytes in, messages out, and back. See ``docs/stun.md``.
"""

from __future__ import annotations

from .message import (
    FINGERPRINT_XOR,
    HEADER_LENGTH,
    MAGIC_COOKIE,
    MAX_ATTRIBUTES,
    Address,
    Attr,
    MessageClass,
    Method,
    StunError,
    StunMessage,
    is_stun_untrusted,
    long_term_key,
    make_transaction_id,
    parse_message_untrusted,
)
from .transaction import RetransmissionSchedule

__all__ = [
    "FINGERPRINT_XOR",
    "HEADER_LENGTH",
    "MAGIC_COOKIE",
    "MAX_ATTRIBUTES",
    "Address",
    "Attr",
    "MessageClass",
    "Method",
    "RetransmissionSchedule",
    "StunError",
    "StunMessage",
    "is_stun_untrusted",
    "long_term_key",
    "make_transaction_id",
    "parse_message_untrusted",
]
