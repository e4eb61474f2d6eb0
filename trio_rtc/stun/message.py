"""STUN messages: build, parse, authenticate (RFC 8489, with RFC 8445 and RFC 8656 attributes).

Pure functions over bytes. ``parse_message_untrusted`` is the only entry point for peer input; it
raises :class:`StunError` on anything malformed and never anything else. The work it does is
bounded by the datagram length and by :data:`MAX_ATTRIBUTES`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import struct
import unicodedata
import zlib

import attrs

from .attributes import (
    DECODERS,
    MAGIC_COOKIE,
    MAX_ATTRIBUTES,
    Address,
    Attr,
    StunError,
    encode_value,
    is_comprehension_required,
)

__all__ = [
    "FINGERPRINT_XOR",
    "HEADER_LENGTH",
    "MAGIC_COOKIE",
    "MAX_ATTRIBUTES",
    "Address",
    "Attr",
    "MessageClass",
    "Method",
    "StunError",
    "StunMessage",
    "is_stun_untrusted",
    "long_term_key",
    "make_transaction_id",
    "parse_message_untrusted",
]

HEADER_LENGTH = 20
FINGERPRINT_XOR = 0x5354554E

_HEADER = struct.Struct("!HHI")
_TYPE_LENGTH = struct.Struct("!HH")
_FINGERPRINT_ATTR = struct.Struct("!HHI")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")

_MI = int(Attr.MESSAGE_INTEGRITY)
_MI_SHA256 = int(Attr.MESSAGE_INTEGRITY_SHA256)
_FINGERPRINT = int(Attr.FINGERPRINT)
# Computed by encode() from the key and the bytes, never taken from ``attributes``.
_COMPUTED = frozenset((_MI, _MI_SHA256, _FINGERPRINT))


class MessageClass(enum.IntEnum):
    REQUEST = 0
    INDICATION = 1
    SUCCESS = 2
    ERROR = 3


class Method(enum.IntEnum):
    BINDING = 0x001
    ALLOCATE = 0x003
    REFRESH = 0x004
    SEND = 0x006
    DATA = 0x007
    CREATE_PERMISSION = 0x008
    CHANNEL_BIND = 0x009
    # RFC 6062 (TURN over TCP).
    CONNECT = 0x00A
    CONNECTION_BIND = 0x00B
    CONNECTION_ATTEMPT = 0x00C


_METHODS: dict[int, int] = {int(m): m for m in Method}
_CLASSES = (MessageClass.REQUEST, MessageClass.INDICATION, MessageClass.SUCCESS, MessageClass.ERROR)


def make_transaction_id() -> bytes:
    """96 random bits from a CSPRNG, as RFC 8489 §6 asks."""
    return secrets.token_bytes(12)


def _message_type(method: int, message_class: int) -> int:
    # RFC 8489 §5: the class bits C1 C0 sit at bits 8 and 4 of the 14-bit type,
    # interleaved with the 12 method bits M11..M7 | M6..M4 | M3..M0.
    if not 0 <= method <= 0xFFF:
        raise StunError(f"method {method:#x} does not fit in 12 bits")
    if not 0 <= message_class <= 3:
        raise StunError(f"message class {message_class} is not 0-3")
    return (
        (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((message_class & 1) << 4)
        | ((message_class & 2) << 7)
    )


@attrs.define(eq=False)
class StunMessage:
    """One STUN message. ``attributes`` maps attribute type to decoded value, in wire order."""

    method: int
    message_class: MessageClass
    transaction_id: bytes = attrs.field(factory=make_transaction_id)
    attributes: dict[int, object] = attrs.field(factory=dict)
    # Set by parse_message_untrusted only: the received bytes and where the integrity
    # attributes start, so check_integrity can rebuild the exact HMAC input (RFC 8489 §14.5).
    _raw: bytes | None = attrs.field(default=None, init=False, repr=False)
    _mi_offset: int = attrs.field(default=-1, init=False, repr=False)
    _mi_sha256_offset: int = attrs.field(default=-1, init=False, repr=False)

    @classmethod
    def request(
        cls,
        method: int,
        transaction_id: bytes | None = None,
        attributes: dict[int, object] | None = None,
    ) -> StunMessage:
        return cls(
            method,
            MessageClass.REQUEST,
            make_transaction_id() if transaction_id is None else transaction_id,
            {} if attributes is None else attributes,
        )

    @classmethod
    def indication(
        cls,
        method: int,
        transaction_id: bytes | None = None,
        attributes: dict[int, object] | None = None,
    ) -> StunMessage:
        return cls(
            method,
            MessageClass.INDICATION,
            make_transaction_id() if transaction_id is None else transaction_id,
            {} if attributes is None else attributes,
        )

    def success_response(self) -> StunMessage:
        return StunMessage(self.method, MessageClass.SUCCESS, self.transaction_id, {})

    def error_response(self, code: int, reason: str) -> StunMessage:
        return StunMessage(
            self.method, MessageClass.ERROR, self.transaction_id, {Attr.ERROR_CODE: (code, reason)}
        )

    # --- typed accessors: None when absent or of another type, never an exception ----------

    def has(self, attr: int) -> bool:
        return attr in self.attributes

    def get_address(self, attr: int) -> Address | None:
        value = self.attributes.get(attr)
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            return value
        return None

    def get_int(self, attr: int) -> int | None:
        value = self.attributes.get(attr)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return None

    def get_str(self, attr: int) -> str | None:
        value = self.attributes.get(attr)
        return value if isinstance(value, str) else None

    def get_bytes(self, attr: int) -> bytes | None:
        value = self.attributes.get(attr)
        return value if isinstance(value, bytes) else None

    @property
    def error_code(self) -> tuple[int, str] | None:
        value = self.attributes.get(Attr.ERROR_CODE)
        if (
            isinstance(value, tuple)
            and len(value) == 2
            and isinstance(value[0], int)
            and isinstance(value[1], str)
        ):
            return value[0], value[1]
        return None

    def unknown_comprehension_required(self) -> list[int]:
        """Attribute types 0x0000-0x7FFF this codec does not know (for a 420 response's
        UNKNOWN-ATTRIBUTES, RFC 8489 §6.3.1.1)."""
        return [
            int(t) for t in self.attributes if t not in DECODERS and is_comprehension_required(t)
        ]

    # --- wire --------------------------------------------------------------------------------

    def encode(
        self, *, key: bytes | None = None, sha256: bool = False, fingerprint: bool = True
    ) -> bytes:
        """The message on the wire. MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT are computed here
        (from ``key`` and the bytes), never copied from ``attributes``."""
        tid = self.transaction_id
        if not isinstance(tid, bytes) or len(tid) != 12:
            raise StunError("a transaction id is 12 bytes")
        message_type = _message_type(self.method, self.message_class)
        parts: list[bytes] = []
        for attr_type, value in self.attributes.items():
            if attr_type in _COMPUTED:
                continue
            if not 0 <= attr_type <= 0xFFFF:
                raise StunError(f"attribute type {attr_type:#x} does not fit in 16 bits")
            encoded = encode_value(attr_type, value, tid)
            length = len(encoded)
            if length > 0xFFFF:
                raise StunError(f"attribute {attr_type:#x} value longer than 65535 bytes")
            parts.append(_TYPE_LENGTH.pack(attr_type, length))
            parts.append(encoded)
            if length & 3:
                parts.append(b"\x00" * (-length & 3))
        body = b"".join(parts)
        trailer = (0 if key is None else (36 if sha256 else 24)) + (8 if fingerprint else 0)
        if len(body) + trailer > 0xFFFF:
            raise StunError("message longer than 65535 bytes after the header")
        cookie_tid = _U32.pack(MAGIC_COOKIE) + tid
        if key is not None:
            # RFC 8489 §14.5/§14.6: the HMAC covers the header with its length already counting
            # the integrity attribute (but not a FINGERPRINT that follows), then the attributes.
            attr_type, digest_name, digest_size = (
                (_MI_SHA256, "sha256", 32) if sha256 else (_MI, "sha1", 20)
            )
            head = _TYPE_LENGTH.pack(message_type, len(body) + 4 + digest_size) + cookie_tid
            digest = hmac.digest(key, head + body, digest_name)
            body += _TYPE_LENGTH.pack(attr_type, digest_size) + digest
        if fingerprint:
            # RFC 8489 §14.7: CRC-32 of everything before FINGERPRINT, length counting it.
            head = _TYPE_LENGTH.pack(message_type, len(body) + 8) + cookie_tid
            crc = zlib.crc32(body, zlib.crc32(head)) ^ FINGERPRINT_XOR
            return head + body + _FINGERPRINT_ATTR.pack(_FINGERPRINT, 4, crc)
        return _TYPE_LENGTH.pack(message_type, len(body)) + cookie_tid + body

    def check_integrity(self, key: bytes) -> bool:
        """Verify MESSAGE-INTEGRITY-SHA256 if present, else MESSAGE-INTEGRITY, against ``key``.

        Only a parsed message can be checked (the HMAC covers the received bytes); False when
        the message was built locally or carries neither attribute.
        """
        raw = self._raw
        if raw is None:
            return False
        if self._mi_sha256_offset >= 0:
            offset, digest_name = self._mi_sha256_offset, "sha256"
        elif self._mi_offset >= 0:
            offset, digest_name = self._mi_offset, "sha1"
        else:
            return False
        value_length = _TYPE_LENGTH.unpack_from(raw, offset)[1]
        # RFC 8489 §14.5: the length field is rewritten to end right after this attribute.
        length = offset - HEADER_LENGTH + 4 + value_length
        expected = hmac.digest(key, raw[:2] + _U16.pack(length) + raw[4:offset], digest_name)
        received = raw[offset + 4 : offset + 4 + value_length]
        # RFC 8489 §14.6: MESSAGE-INTEGRITY-SHA256 may be truncated to its first 16+ bytes.
        return hmac.compare_digest(expected[:value_length], received)


def is_stun_untrusted(data: bytes | bytearray | memoryview) -> bool:
    """Cheap prefilter (RFC 8489 §5, RFC 7983): could this datagram be a STUN message?"""
    if len(data) < HEADER_LENGTH:
        return False
    message_type, length, cookie = _HEADER.unpack_from(data, 0)
    return (
        message_type < 0x4000
        and cookie == MAGIC_COOKIE
        and not length & 3
        and length == len(data) - HEADER_LENGTH
    )


def parse_message_untrusted(data: bytes | bytearray | memoryview) -> StunMessage:
    """Parse one STUN message (a whole datagram). Raises :class:`StunError` if malformed.

    A present FINGERPRINT is verified here. Attributes after MESSAGE-INTEGRITY other than
    MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are ignored (RFC 8489 §14.5), as is anything after
    MESSAGE-INTEGRITY-SHA256 except FINGERPRINT (§14.6) and anything after FINGERPRINT (§14.7).
    A repeated attribute keeps its first value. Integrity is checked later, with the key, by
    :meth:`StunMessage.check_integrity`.
    """
    raw = data if type(data) is bytes else bytes(data)
    size = len(raw)
    if size < HEADER_LENGTH:
        raise StunError("shorter than a STUN header")
    message_type, length, cookie = _HEADER.unpack_from(raw, 0)
    if message_type & 0xC000:
        raise StunError("the first two bits are not zero")
    if cookie != MAGIC_COOKIE:
        raise StunError("wrong magic cookie")
    if length & 3:
        raise StunError("message length is not a multiple of 4")
    if length + HEADER_LENGTH != size:
        raise StunError("message length does not match the datagram")
    tid = raw[8:20]
    method = (
        (message_type & 0x000F) | ((message_type >> 1) & 0x0070) | ((message_type >> 2) & 0x0F80)
    )
    message = StunMessage(
        _METHODS.get(method, method),
        _CLASSES[((message_type >> 4) & 1) | ((message_type >> 7) & 2)],
        tid,
        {},
    )
    attributes = message.attributes
    mi_offset = -1
    mi_sha256_offset = -1
    fingerprint_seen = False
    count = 0
    pos = HEADER_LENGTH
    # pos and size are multiples of 4, so every loop turn has a whole 4-byte attribute header.
    while pos < size:
        count += 1
        if count > MAX_ATTRIBUTES:
            raise StunError(f"more than {MAX_ATTRIBUTES} attributes")
        attr_type, attr_length = _TYPE_LENGTH.unpack_from(raw, pos)
        start = pos + 4
        if start + attr_length > size:
            raise StunError(f"attribute {attr_type:#06x} overruns the message")
        next_pos = start + ((attr_length + 3) & ~3)
        if fingerprint_seen:
            pass
        elif attr_type == _FINGERPRINT:
            if attr_length != 4:
                raise StunError("FINGERPRINT is not 4 bytes")
            _verify_fingerprint(raw, message_type, pos)
            attributes[Attr.FINGERPRINT] = _U32.unpack_from(raw, start)[0]
            fingerprint_seen = True
        elif mi_sha256_offset >= 0:
            pass
        elif attr_type == _MI_SHA256:
            # RFC 8489 §14.6: 16 to 32 bytes, a multiple of 4.
            if not 16 <= attr_length <= 32 or attr_length & 3:
                raise StunError("MESSAGE-INTEGRITY-SHA256 has a bad length")
            attributes[Attr.MESSAGE_INTEGRITY_SHA256] = raw[start : start + attr_length]
            mi_sha256_offset = pos
        elif mi_offset >= 0:
            pass
        elif attr_type == _MI:
            if attr_length != 20:
                raise StunError("MESSAGE-INTEGRITY is not 20 bytes")
            attributes[Attr.MESSAGE_INTEGRITY] = raw[start : start + 20]
            mi_offset = pos
        elif attr_type not in attributes:
            codec = DECODERS.get(attr_type)
            if codec is None:
                attributes[attr_type] = raw[start : start + attr_length]
            else:
                attributes[codec[0]] = codec[1](raw, start, attr_length, tid)
        pos = next_pos
    message._raw = raw
    message._mi_offset = mi_offset
    message._mi_sha256_offset = mi_sha256_offset
    return message


def _verify_fingerprint(raw: bytes, message_type: int, offset: int) -> None:
    view = memoryview(raw)
    if offset + 8 == len(raw):
        crc = zlib.crc32(view[:offset])
    else:
        # Attributes follow FINGERPRINT (they are ignored): the CRC was computed with the
        # length field ending at FINGERPRINT.
        head = _TYPE_LENGTH.pack(message_type, offset + 8 - HEADER_LENGTH)
        crc = zlib.crc32(view[4:offset], zlib.crc32(head))
    if crc ^ FINGERPRINT_XOR != _U32.unpack_from(raw, offset + 4)[0]:
        raise StunError("FINGERPRINT does not match")


def long_term_key(username: str, realm: str, password: str) -> bytes:
    """RFC 8489 §9.2.2: MD5(username ":" OpaqueString(realm) ":" OpaqueString(password)).

    OpaqueString (RFC 8265 §4.2) is applied as NFC normalisation, which is all it changes for
    printable input.
    """
    text = ":".join(unicodedata.normalize("NFC", s) for s in (username, realm, password))
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).digest()
