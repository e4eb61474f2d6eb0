"""STUN attribute types and their value codecs (RFC 8489 §14, RFC 8445 §16, RFC 8656 §18).

Every known attribute type maps to one Python value type (see ``docs/stun.md``); unknown
attributes stay raw ``bytes``. Decoders read straight out of the whole datagram (``data``,
``start``, ``length``) so that the per-packet path slices only what it keeps.
"""

from __future__ import annotations

import enum
import socket
import struct
from collections.abc import Callable

MAGIC_COOKIE: int = 0x2112A442
MAGIC_COOKIE_BYTES = MAGIC_COOKIE.to_bytes(4, "big")

Address = tuple[str, int]
"""(ip string, port). IPv6 is compressed text without brackets or scope id."""


class StunError(Exception):
    """The one error of the STUN codec: a malformed packet, or a value that cannot be encoded."""


class Attr(enum.IntEnum):
    """STUN attribute types (IANA "STUN Attributes" registry)."""

    MAPPED_ADDRESS = 0x0001
    USERNAME = 0x0006
    MESSAGE_INTEGRITY = 0x0008
    ERROR_CODE = 0x0009
    UNKNOWN_ATTRIBUTES = 0x000A
    CHANNEL_NUMBER = 0x000C
    LIFETIME = 0x000D
    XOR_PEER_ADDRESS = 0x0012
    DATA = 0x0013
    REALM = 0x0014
    NONCE = 0x0015
    XOR_RELAYED_ADDRESS = 0x0016
    REQUESTED_ADDRESS_FAMILY = 0x0017
    EVEN_PORT = 0x0018
    REQUESTED_TRANSPORT = 0x0019
    DONT_FRAGMENT = 0x001A
    MESSAGE_INTEGRITY_SHA256 = 0x001C
    PASSWORD_ALGORITHM = 0x001D
    USERHASH = 0x001E
    XOR_MAPPED_ADDRESS = 0x0020
    RESERVATION_TOKEN = 0x0022
    PRIORITY = 0x0024
    USE_CANDIDATE = 0x0025
    CONNECTION_ID = 0x002A
    ADDITIONAL_ADDRESS_FAMILY = 0x8000
    ADDRESS_ERROR_CODE = 0x8001
    PASSWORD_ALGORITHMS = 0x8002
    ALTERNATE_DOMAIN = 0x8003
    ICMP = 0x8004
    SOFTWARE = 0x8022
    ALTERNATE_SERVER = 0x8023
    TRANSACTION_TRANSMIT_COUNTER = 0x8025
    CACHE_TIMEOUT = 0x8027
    FINGERPRINT = 0x8028
    ICE_CONTROLLED = 0x8029
    ICE_CONTROLLING = 0x802A
    RESPONSE_ORIGIN = 0x802B
    OTHER_ADDRESS = 0x802C


# Address families as carried in address attributes and REQUESTED-ADDRESS-FAMILY.
FAMILY_IPV4 = 0x01
FAMILY_IPV6 = 0x02

# Upper bounds on encode, RFC 8489 §14.3 (USERNAME < 509 bytes), §14.9 (REALM), §14.10 (NONCE),
# §14.14 (SOFTWARE), §14.8 (reason phrase): fewer than 128 characters, at most 763 bytes.
# ALTERNATE-DOMAIN (RFC 8489 §14.16) names a host: at most 255 bytes, as a DNS name.
MAX_USERNAME_BYTES = 508
MAX_TEXT_CHARS = 127
MAX_TEXT_BYTES = 763
MAX_DOMAIN_BYTES = 255

MAX_ATTRIBUTES = 128
"""Attributes walked per message, beyond which the message is rejected (bounds per-packet work)."""
MAX_PASSWORD_ALGORITHMS = 16
"""Entries accepted in PASSWORD-ALGORITHMS (two algorithms are registered)."""

_U8 = struct.Struct("!B")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")
_FAMILY_PORT = struct.Struct("!xBH")
_CLASS_NUMBER = struct.Struct("!xxBB")
_ALGORITHM = struct.Struct("!HH")
_ICMP = struct.Struct("!xxHI")
_COUNTER = struct.Struct("!xxBB")

Decoder = Callable[[bytes, int, int, bytes], object]
Encoder = Callable[[object, bytes], bytes]


def _bad(what: str) -> StunError:
    return StunError(what)


# --- addresses (RFC 8489 §14.1, §14.2) ------------------------------------------------------


def _read_address(data: bytes, start: int, length: int, tid: bytes, xor: bool) -> Address:
    if length < 4:
        raise _bad("address attribute shorter than 4 bytes")
    family, port = _FAMILY_PORT.unpack_from(data, start)
    if family == FAMILY_IPV4:
        if length != 8:
            raise _bad("IPv4 address attribute is not 8 bytes")
        ip = _U32.unpack_from(data, start + 4)[0]
        if xor:
            port ^= MAGIC_COOKIE >> 16
            ip ^= MAGIC_COOKIE
        return socket.inet_ntop(socket.AF_INET, _U32.pack(ip)), port
    if family == FAMILY_IPV6:
        if length != 20:
            raise _bad("IPv6 address attribute is not 20 bytes")
        packed = data[start + 4 : start + 20]
        if xor:
            port ^= MAGIC_COOKIE >> 16
            mask = int.from_bytes(MAGIC_COOKIE_BYTES + tid, "big")
            packed = (int.from_bytes(packed, "big") ^ mask).to_bytes(16, "big")
        return socket.inet_ntop(socket.AF_INET6, packed), port
    raise _bad(f"unknown address family {family:#x}")


def _pack_address(value: object, tid: bytes, xor: bool) -> bytes:
    if not (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    ):
        raise _bad(f"an address must be (ip: str, port: int), got {value!r}")
    host, port = value
    if not 0 <= port <= 0xFFFF:
        raise _bad(f"port {port} out of range 0-65535")
    try:
        if ":" in host:
            family = FAMILY_IPV6
            # A scope id ("fe80::1%eth0", as sockets report link-local peers) means nothing on
            # the wire: drop it.
            packed = socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
        else:
            family = FAMILY_IPV4
            packed = socket.inet_pton(socket.AF_INET, host)
    except (OSError, ValueError) as exc:
        raise _bad(f"not an IP address literal: {host!r}") from exc
    if xor:
        port ^= MAGIC_COOKIE >> 16
        mask = MAGIC_COOKIE_BYTES + tid if family == FAMILY_IPV6 else MAGIC_COOKIE_BYTES
        packed = (int.from_bytes(packed, "big") ^ int.from_bytes(mask, "big")).to_bytes(
            len(packed), "big"
        )
    return _FAMILY_PORT.pack(family, port) + packed


def _dec_address(data: bytes, start: int, length: int, tid: bytes) -> object:
    return _read_address(data, start, length, tid, False)


def _dec_xor_address(data: bytes, start: int, length: int, tid: bytes) -> object:
    return _read_address(data, start, length, tid, True)


def _enc_address(value: object, tid: bytes) -> bytes:
    return _pack_address(value, tid, False)


def _enc_xor_address(value: object, tid: bytes) -> bytes:
    return _pack_address(value, tid, True)


# --- text ------------------------------------------------------------------------------------


def _dec_text(data: bytes, start: int, length: int, tid: bytes) -> object:
    try:
        return data[start : start + length].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad("text attribute is not valid UTF-8") from exc


def _encode_utf8(value: object) -> bytes:
    if not isinstance(value, str):
        raise _bad(f"a text attribute must be str, got {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _bad("text attribute cannot be encoded as UTF-8") from exc


def _enc_username(value: object, tid: bytes) -> bytes:
    encoded = _encode_utf8(value)
    if len(encoded) > MAX_USERNAME_BYTES:
        raise _bad(f"USERNAME is {len(encoded)} bytes, the limit is {MAX_USERNAME_BYTES}")
    return encoded


def _enc_text(value: object, tid: bytes) -> bytes:
    encoded = _encode_utf8(value)
    assert isinstance(value, str)
    if len(value) > MAX_TEXT_CHARS or len(encoded) > MAX_TEXT_BYTES:
        raise _bad(f"text attribute longer than {MAX_TEXT_CHARS} characters")
    return encoded


def _enc_domain(value: object, tid: bytes) -> bytes:
    encoded = _encode_utf8(value)
    if len(encoded) > MAX_DOMAIN_BYTES:
        raise _bad(f"ALTERNATE-DOMAIN longer than {MAX_DOMAIN_BYTES} bytes")
    return encoded


# --- integers ----------------------------------------------------------------------------------


def _check_int(value: object, limit: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise _bad(f"{what} must be an int in 0..{limit}, got {value!r}")
    return value


def _dec_u32(data: bytes, start: int, length: int, tid: bytes) -> object:
    if length != 4:
        raise _bad("32-bit attribute is not 4 bytes")
    return _U32.unpack_from(data, start)[0]


def _enc_u32(value: object, tid: bytes) -> bytes:
    return _U32.pack(_check_int(value, 0xFFFFFFFF, "a 32-bit attribute"))


def _dec_u64(data: bytes, start: int, length: int, tid: bytes) -> object:
    if length != 8:
        raise _bad("64-bit attribute is not 8 bytes")
    return _U64.unpack_from(data, start)[0]


def _enc_u64(value: object, tid: bytes) -> bytes:
    return _U64.pack(_check_int(value, 0xFFFFFFFFFFFFFFFF, "a 64-bit attribute"))


def _dec_u16_rffu(data: bytes, start: int, length: int, tid: bytes) -> object:
    # CHANNEL-NUMBER (RFC 8656 §18.1): a 16-bit number then 16 RFFU bits, ignored on receipt.
    if length != 4:
        raise _bad("CHANNEL-NUMBER is not 4 bytes")
    return _U16.unpack_from(data, start)[0]


def _enc_u16_rffu(value: object, tid: bytes) -> bytes:
    return _U16.pack(_check_int(value, 0xFFFF, "CHANNEL-NUMBER")) + b"\x00\x00"


def _dec_u8_rffu(data: bytes, start: int, length: int, tid: bytes) -> object:
    # REQUESTED-TRANSPORT, REQUESTED/ADDITIONAL-ADDRESS-FAMILY: one byte, then 24 RFFU bits.
    if length != 4:
        raise _bad("one-byte attribute is not 4 bytes long")
    return data[start]


def _enc_u8_rffu(value: object, tid: bytes) -> bytes:
    return _U8.pack(_check_int(value, 0xFF, "a one-byte attribute")) + b"\x00\x00\x00"


# --- flags and small structures ---------------------------------------------------------------


def _dec_flag(data: bytes, start: int, length: int, tid: bytes) -> object:
    if length != 0:
        raise _bad("flag attribute carries a value")
    return None


def _enc_flag(value: object, tid: bytes) -> bytes:
    if value is not None:
        raise _bad(f"a flag attribute takes None, got {value!r}")
    return b""


def _dec_even_port(data: bytes, start: int, length: int, tid: bytes) -> object:
    # RFC 8656 §18.7: one byte, the top bit is R (reserve the next port too).
    if length != 1:
        raise _bad("EVEN-PORT is not 1 byte")
    return bool(data[start] & 0x80)


def _enc_even_port(value: object, tid: bytes) -> bytes:
    if not isinstance(value, bool):
        raise _bad(f"EVEN-PORT takes a bool, got {value!r}")
    return b"\x80" if value else b"\x00"


def _read_error(data: bytes, start: int, length: int) -> tuple[int, str]:
    # RFC 8489 §14.8: 21 reserved bits, class (3 bits, 3..6), number (0..99), reason phrase.
    if length < 4:
        raise _bad("error code attribute shorter than 4 bytes")
    klass, number = _CLASS_NUMBER.unpack_from(data, start)
    klass &= 0x07
    if not 3 <= klass <= 6 or number > 99:
        raise _bad(f"error code class {klass} number {number} out of range")
    try:
        reason = data[start + 4 : start + length].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad("error reason phrase is not valid UTF-8") from exc
    return klass * 100 + number, reason


def _pack_error(code: object, reason: object) -> bytes:
    if not isinstance(code, int) or isinstance(code, bool) or not 300 <= code <= 699:
        raise _bad(f"error code must be an int in 300..699, got {code!r}")
    encoded = _enc_text(reason, b"")
    return _CLASS_NUMBER.pack(code // 100, code % 100) + encoded


def _dec_error_code(data: bytes, start: int, length: int, tid: bytes) -> object:
    return _read_error(data, start, length)


def _enc_error_code(value: object, tid: bytes) -> bytes:
    if not (isinstance(value, tuple) and len(value) == 2):
        raise _bad(f"ERROR-CODE takes (code, reason), got {value!r}")
    return _pack_error(value[0], value[1])


def _dec_address_error_code(data: bytes, start: int, length: int, tid: bytes) -> object:
    # RFC 8656 §18.12: like ERROR-CODE, but the first byte names the address family.
    if length < 4:
        raise _bad("ADDRESS-ERROR-CODE shorter than 4 bytes")
    code, reason = _read_error(data, start, length)
    return data[start], code, reason


def _enc_address_error_code(value: object, tid: bytes) -> bytes:
    if not (isinstance(value, tuple) and len(value) == 3):
        raise _bad(f"ADDRESS-ERROR-CODE takes (family, code, reason), got {value!r}")
    family = _check_int(value[0], 0xFF, "address family")
    return _U8.pack(family) + _pack_error(value[1], value[2])[1:]


def _dec_unknown_attributes(data: bytes, start: int, length: int, tid: bytes) -> object:
    # A request carries at most MAX_ATTRIBUTES attributes, so a longer list is not an answer to
    # ours; refusing it keeps a 64 KiB datagram from becoming a 32 768-element list.
    if length % 2:
        raise _bad("UNKNOWN-ATTRIBUTES has an odd length")
    if length > 2 * MAX_ATTRIBUTES:
        raise _bad("UNKNOWN-ATTRIBUTES lists too many types")
    return list(struct.unpack_from(f"!{length // 2}H", data, start))


def _enc_unknown_attributes(value: object, tid: bytes) -> bytes:
    if not isinstance(value, list | tuple):
        raise _bad(f"UNKNOWN-ATTRIBUTES takes a list of ints, got {value!r}")
    return b"".join(_U16.pack(_check_int(v, 0xFFFF, "an attribute type")) for v in value)


def _read_algorithm(data: bytes, pos: int, end: int) -> tuple[tuple[int, bytes], int]:
    if end - pos < 4:
        raise _bad("password algorithm entry truncated")
    algorithm, params_length = _ALGORITHM.unpack_from(data, pos)
    params_end = pos + 4 + params_length
    if params_end > end:
        raise _bad("password algorithm parameters overrun the attribute")
    return (algorithm, data[pos + 4 : params_end]), pos + 4 + ((params_length + 3) & ~3)


def _pack_algorithm(value: object) -> bytes:
    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], bytes)):
        raise _bad(f"a password algorithm is (number, params: bytes), got {value!r}")
    algorithm = _check_int(value[0], 0xFFFF, "password algorithm")
    params: bytes = value[1]
    if len(params) > 0xFFFF:
        raise _bad("password algorithm parameters too long")
    return _ALGORITHM.pack(algorithm, len(params)) + params + b"\x00" * (-len(params) & 3)


def _dec_password_algorithm(data: bytes, start: int, length: int, tid: bytes) -> object:
    # RFC 8489 §14.12: algorithm (16 bits), parameters length (16 bits), parameters, padding.
    entry, _ = _read_algorithm(data, start, start + length)
    return entry


def _enc_password_algorithm(value: object, tid: bytes) -> bytes:
    return _pack_algorithm(value)


def _dec_password_algorithms(data: bytes, start: int, length: int, tid: bytes) -> object:
    # RFC 8489 §14.11: a list of PASSWORD-ALGORITHM entries, each padded to 4 bytes.
    # The list is bounded by the attribute length (each entry takes at least 4 bytes).
    end = start + length
    entries: list[tuple[int, bytes]] = []
    pos = start
    while pos < end:
        if len(entries) >= MAX_PASSWORD_ALGORITHMS:
            raise _bad("PASSWORD-ALGORITHMS lists too many algorithms")
        entry, pos = _read_algorithm(data, pos, end)
        entries.append(entry)
    return entries


def _enc_password_algorithms(value: object, tid: bytes) -> bytes:
    if not isinstance(value, list | tuple):
        raise _bad(f"PASSWORD-ALGORITHMS takes a list, got {value!r}")
    return b"".join(_pack_algorithm(v) for v in value)


def _dec_icmp(data: bytes, start: int, length: int, tid: bytes) -> object:
    # RFC 8656 §18.13: 16 reserved bits, a 7-bit ICMP type and a 9-bit ICMP code (as drawn in
    # the RFC's figure), then 32 bits of error data.
    if length != 8:
        raise _bad("ICMP attribute is not 8 bytes")
    type_code, error_data = _ICMP.unpack_from(data, start)
    return (type_code >> 9) & 0x7F, type_code & 0x1FF, error_data


def _enc_icmp(value: object, tid: bytes) -> bytes:
    if not (isinstance(value, tuple) and len(value) == 3):
        raise _bad(f"ICMP takes (type, code, error_data), got {value!r}")
    icmp_type = _check_int(value[0], 0x7F, "ICMP type")
    icmp_code = _check_int(value[1], 0x1FF, "ICMP code")
    return _ICMP.pack(icmp_type << 9 | icmp_code, _check_int(value[2], 0xFFFFFFFF, "error data"))


def _dec_transmit_counter(data: bytes, start: int, length: int, tid: bytes) -> object:
    # RFC 7982 §3: 16 reserved bits, Req (requests sent), Resp (responses sent).
    if length != 4:
        raise _bad("TRANSACTION-TRANSMIT-COUNTER is not 4 bytes")
    return _COUNTER.unpack_from(data, start)


def _enc_transmit_counter(value: object, tid: bytes) -> bytes:
    if not (isinstance(value, tuple) and len(value) == 2):
        raise _bad(f"TRANSACTION-TRANSMIT-COUNTER takes (req, resp), got {value!r}")
    return _COUNTER.pack(
        _check_int(value[0], 0xFF, "request count"), _check_int(value[1], 0xFF, "response count")
    )


def _dec_bytes(data: bytes, start: int, length: int, tid: bytes) -> object:
    return data[start : start + length]


def _enc_bytes(value: object, tid: bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise _bad(f"a raw attribute takes bytes, got {type(value).__name__}")


_CODECS: dict[Attr, tuple[Decoder, Encoder]] = {
    Attr.MAPPED_ADDRESS: (_dec_address, _enc_address),
    Attr.ALTERNATE_SERVER: (_dec_address, _enc_address),
    Attr.RESPONSE_ORIGIN: (_dec_address, _enc_address),
    Attr.OTHER_ADDRESS: (_dec_address, _enc_address),
    Attr.XOR_MAPPED_ADDRESS: (_dec_xor_address, _enc_xor_address),
    Attr.XOR_PEER_ADDRESS: (_dec_xor_address, _enc_xor_address),
    Attr.XOR_RELAYED_ADDRESS: (_dec_xor_address, _enc_xor_address),
    Attr.USERNAME: (_dec_text, _enc_username),
    Attr.REALM: (_dec_text, _enc_text),
    Attr.NONCE: (_dec_text, _enc_text),
    Attr.SOFTWARE: (_dec_text, _enc_text),
    Attr.ALTERNATE_DOMAIN: (_dec_text, _enc_domain),
    Attr.PRIORITY: (_dec_u32, _enc_u32),
    Attr.LIFETIME: (_dec_u32, _enc_u32),
    Attr.CACHE_TIMEOUT: (_dec_u32, _enc_u32),
    Attr.CONNECTION_ID: (_dec_u32, _enc_u32),
    Attr.FINGERPRINT: (_dec_u32, _enc_u32),
    Attr.ICE_CONTROLLED: (_dec_u64, _enc_u64),
    Attr.ICE_CONTROLLING: (_dec_u64, _enc_u64),
    Attr.CHANNEL_NUMBER: (_dec_u16_rffu, _enc_u16_rffu),
    Attr.REQUESTED_TRANSPORT: (_dec_u8_rffu, _enc_u8_rffu),
    Attr.REQUESTED_ADDRESS_FAMILY: (_dec_u8_rffu, _enc_u8_rffu),
    Attr.ADDITIONAL_ADDRESS_FAMILY: (_dec_u8_rffu, _enc_u8_rffu),
    Attr.USE_CANDIDATE: (_dec_flag, _enc_flag),
    Attr.DONT_FRAGMENT: (_dec_flag, _enc_flag),
    Attr.EVEN_PORT: (_dec_even_port, _enc_even_port),
    Attr.ERROR_CODE: (_dec_error_code, _enc_error_code),
    Attr.ADDRESS_ERROR_CODE: (_dec_address_error_code, _enc_address_error_code),
    Attr.UNKNOWN_ATTRIBUTES: (_dec_unknown_attributes, _enc_unknown_attributes),
    Attr.PASSWORD_ALGORITHM: (_dec_password_algorithm, _enc_password_algorithm),
    Attr.PASSWORD_ALGORITHMS: (_dec_password_algorithms, _enc_password_algorithms),
    Attr.ICMP: (_dec_icmp, _enc_icmp),
    Attr.TRANSACTION_TRANSMIT_COUNTER: (_dec_transmit_counter, _enc_transmit_counter),
    Attr.DATA: (_dec_bytes, _enc_bytes),
    Attr.RESERVATION_TOKEN: (_dec_bytes, _enc_bytes),
    Attr.MESSAGE_INTEGRITY: (_dec_bytes, _enc_bytes),
    Attr.MESSAGE_INTEGRITY_SHA256: (_dec_bytes, _enc_bytes),
    Attr.USERHASH: (_dec_bytes, _enc_bytes),
}

# Per-packet lookup table: raw type -> (the Attr member used as dict key, decoder).
DECODERS: dict[int, tuple[Attr, Decoder]] = {int(a): (a, c[0]) for a, c in _CODECS.items()}
ENCODERS: dict[int, Encoder] = {int(a): c[1] for a, c in _CODECS.items()}


def encode_value(attr_type: int, value: object, transaction_id: bytes) -> bytes:
    """The value bytes (unpadded) of one attribute; unknown types take raw ``bytes``."""
    encoder = ENCODERS.get(attr_type, _enc_bytes)
    return encoder(value, transaction_id)


def is_comprehension_required(attr_type: int) -> bool:
    """RFC 8489 §14: types 0x0000-0x7FFF must be understood or the request is rejected (420)."""
    return attr_type < 0x8000
