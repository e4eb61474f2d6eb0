"""The DTLS 1.2 record layer: record headers, the anti-replay window (RFC 6347 §4.1)."""

from __future__ import annotations

import enum
import struct

import attrs

__all__ = [
    "DTLS_1_0",
    "DTLS_1_2",
    "MAX_SEQUENCE_NUMBER",
    "RECORD_HEADER",
    "RECORD_HEADER_LENGTH",
    "ContentType",
    "DtlsError",
    "Record",
    "ReplayWindow",
    "encode_record",
    "records_untrusted",
]

DTLS_1_0 = 0xFEFF
DTLS_1_2 = 0xFEFD
RECORD_HEADER_LENGTH = 13
MAX_SEQUENCE_NUMBER = (1 << 48) - 1
#: RFC 6347 §4.1: a record fragment is at most 2^14 bytes of plaintext plus 2048 of expansion.
MAX_FRAGMENT_LENGTH = (1 << 14) + 2048

#: type, version, epoch, sequence number (16 + 32 bits), length.
RECORD_HEADER = _HEADER = struct.Struct("!BHHHIH")


class DtlsError(Exception):
    """Bytes from the peer that do not parse or break a rule; the connection drops them or, in a
    handshake message, fails with the alert in ``alert`` (RFC 5246 §7.2.2)."""

    def __init__(self, message: str, alert: int = 50) -> None:  # 50 = decode_error
        super().__init__(message)
        self.alert = alert


class ContentType(enum.IntEnum):
    CHANGE_CIPHER_SPEC = 20
    ALERT = 21
    HANDSHAKE = 22
    APPLICATION_DATA = 23


@attrs.frozen
class Record:
    content_type: int
    version: int
    epoch: int
    sequence_number: int
    fragment: bytes


def records_untrusted(data: bytes) -> list[Record]:
    """Split a datagram into records (RFC 6347 §4.1: a datagram may hold several).

    Raises DtlsError when a header is cut short, has an unknown content type or version, or
    announces more bytes than remain; records before the bad one are not returned either, since
    the caller drops the whole datagram.
    """
    records: list[Record] = []
    offset = 0
    view = memoryview(data)
    while offset < len(data):
        if len(data) - offset < RECORD_HEADER_LENGTH:
            raise DtlsError("datagram ends inside a record header")
        content_type, version, epoch, seq_high, seq_low, length = _HEADER.unpack_from(data, offset)
        if content_type not in (20, 21, 22, 23):
            raise DtlsError(f"unknown record content type {content_type}")
        if version not in (DTLS_1_0, DTLS_1_2):
            raise DtlsError(f"unsupported record version {version:#06x}")
        if length > MAX_FRAGMENT_LENGTH:
            raise DtlsError(f"record length {length} exceeds the limit")
        start = offset + RECORD_HEADER_LENGTH
        end = start + length
        if end > len(data):
            raise DtlsError("record length runs past the end of the datagram")
        sequence_number = (seq_high << 32) | seq_low
        records.append(
            Record(content_type, version, epoch, sequence_number, bytes(view[start:end]))
        )
        offset = end
    return records


def encode_record(content_type: int, epoch: int, sequence_number: int, fragment: bytes) -> bytes:
    return (
        _HEADER.pack(
            content_type,
            DTLS_1_2,
            epoch,
            sequence_number >> 32,
            sequence_number & 0xFFFFFFFF,
            len(fragment),
        )
        + fragment
    )


class ReplayWindow:
    """A 64-record sliding window of received sequence numbers (RFC 6347 §4.1.2.6).

    ``is_fresh`` is checked before a record is decrypted and ``mark`` only after it
    authenticated, so a forged record cannot move the window.
    """

    SIZE = 64
    __slots__ = ("_bits", "_highest")

    def __init__(self) -> None:
        self._highest = -1
        self._bits = 0  # bit i set: (highest - i) was received

    def is_fresh(self, sequence_number: int) -> bool:
        if sequence_number > self._highest:
            return True
        offset = self._highest - sequence_number
        if offset >= self.SIZE:
            return False
        return not (self._bits >> offset) & 1

    def mark(self, sequence_number: int) -> None:
        if sequence_number > self._highest:
            shift = sequence_number - self._highest
            self._bits = (
                ((self._bits << shift) | 1) & ((1 << self.SIZE) - 1) if shift < self.SIZE else 1
            )
            self._highest = sequence_number
        else:
            self._bits |= 1 << (self._highest - sequence_number)
