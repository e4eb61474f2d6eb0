"""Per-epoch record state: protection, sequence numbers, replay windows and datagram packing."""

from __future__ import annotations

import attrs

from .crypto import RecordProtection
from .records import (
    DTLS_1_2,
    MAX_SEQUENCE_NUMBER,
    RECORD_HEADER,
    RECORD_HEADER_LENGTH,
    DtlsError,
    Record,
    ReplayWindow,
    encode_record,
)

__all__ = ["DtlsStats", "FlightEntry", "RecordLayer", "pack_datagrams"]


@attrs.frozen
class FlightEntry:
    """One item of a flight: a handshake message or a ChangeCipherSpec, with its epoch. The
    records are made anew at each (re)transmission so that every copy gets a fresh sequence
    number (RFC 6347 §4.2.4)."""

    content_type: int
    epoch: int
    msg_type: int = 0
    message_seq: int = 0
    body: bytes = b""


@attrs.define
class DtlsStats:
    """Counters of what the connection did with peer input; drops never raise."""

    datagrams_received: int = 0
    records_received: int = 0
    #: Datagrams whose record headers did not parse.
    malformed_dropped: int = 0
    #: Records that failed AEAD authentication.
    auth_failed_dropped: int = 0
    #: Records seen before (anti-replay window) or too old for it.
    replay_dropped: int = 0
    #: Records of an epoch we have no keys for, or no longer accept for their content type.
    epoch_dropped: int = 0
    #: Handshake or alert records that were well-formed records but bad content.
    content_dropped: int = 0
    datagrams_sent: int = 0
    records_sent: int = 0
    flight_retransmissions: int = 0


class _ReadState:
    __slots__ = ("protection", "window")

    def __init__(self, protection: RecordProtection | None) -> None:
        self.protection = protection
        self.window = ReplayWindow()


class RecordLayer:
    """Epoch 0 is plaintext; epoch 1 is protected once the key block is known (RFC 6347 §4.1).

    Both read epochs stay open during and after the handshake: a retransmitted epoch-0 flight
    from the peer must still reach the handshake layer so that we can answer it.
    """

    def __init__(self, stats: DtlsStats) -> None:
        self.stats = stats
        self._read: dict[int, _ReadState] = {0: _ReadState(None)}
        self._write: dict[int, RecordProtection | None] = {0: None}
        self._write_seq: dict[int, int] = {0: 0}
        self.write_epoch = 0

    def has_read_epoch(self, epoch: int) -> bool:
        return epoch in self._read

    def install(self, epoch: int, *, read: RecordProtection, write: RecordProtection) -> None:
        self._read[epoch] = _ReadState(read)
        self._write[epoch] = write
        self._write_seq[epoch] = 0
        self.write_epoch = epoch

    def overhead(self, epoch: int) -> int:
        protection = self._write[epoch]
        return RECORD_HEADER_LENGTH + (protection.overhead if protection is not None else 0)

    def open(self, record: Record) -> bytes | None:
        """The plaintext of an authentic, fresh record, or None (counted) to drop it."""
        state = self._read.get(record.epoch)
        if state is None:
            self.stats.epoch_dropped += 1
            return None
        if state.protection is None:
            # Epoch 0 is unauthenticated: a replay window would only let one forged record with
            # a huge sequence number shut out the genuine handshake, so duplicates are left to
            # the handshake layer's message_seq instead.
            return record.fragment
        if not state.window.is_fresh(record.sequence_number):
            self.stats.replay_dropped += 1
            return None
        plaintext = state.protection.open(
            record.content_type,
            record.version,
            record.epoch,
            record.sequence_number,
            record.fragment,
        )
        if plaintext is None:
            self.stats.auth_failed_dropped += 1
            return None
        state.window.mark(record.sequence_number)
        return plaintext

    def open_application_datagram(self, data: bytes) -> bytes | None:
        """The common case of the data path, in one step: ``data`` is exactly one fresh,
        authentic application-data record of a protected epoch (AES-GCM). Returns its
        plaintext, or None when the datagram is anything else *or would be dropped*; the caller
        then takes the general path, which sorts it out and counts the drop. Nothing changes
        unless the plaintext is returned."""
        if len(data) < 37 or data[0] != 23:
            return None
        _, version, epoch, seq_high, seq_low, length = RECORD_HEADER.unpack_from(data, 0)
        if length != len(data) - RECORD_HEADER_LENGTH or version != DTLS_1_2:
            return None
        state = self._read.get(epoch)
        if state is None or state.protection is None:
            return None
        sequence_number = (seq_high << 32) | seq_low
        window = state.window
        if not window.is_fresh(sequence_number):
            return None
        plaintext = state.protection.open_gcm_record(data)
        if plaintext is None:
            return None
        window.mark(sequence_number)
        return plaintext

    def seal(self, content_type: int, epoch: int, plaintext: bytes) -> bytes:
        """One encoded record; each call uses the next sequence number of ``epoch``."""
        seq = self._write_seq[epoch]
        if seq > MAX_SEQUENCE_NUMBER:
            # RFC 6347 §4.1: sequence numbers must not wrap; 2^48 records never happen in WebRTC.
            raise DtlsError("record sequence number space exhausted", alert=80)
        self._write_seq[epoch] = seq + 1
        protection = self._write[epoch]
        self.stats.records_sent += 1
        if protection is not None:
            return protection.seal_record(content_type, epoch, seq, plaintext)
        fragment = (
            plaintext
            if protection is None
            else protection.seal(content_type, DTLS_1_2, epoch, seq, plaintext)
        )
        return encode_record(content_type, epoch, seq, fragment)


def pack_datagrams(records: list[bytes], mtu: int) -> list[bytes]:
    """Put consecutive records together in datagrams of at most ``mtu`` bytes (a record larger
    than the MTU travels alone)."""
    datagrams: list[bytes] = []
    current = b""
    for record in records:
        if current and len(current) + len(record) > mtu:
            datagrams.append(current)
            current = b""
        current += record
    if current:
        datagrams.append(current)
    return datagrams
