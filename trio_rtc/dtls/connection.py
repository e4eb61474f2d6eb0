"""The DTLS 1.2 connection core (RFC 6347): records, flights, timers and alerts.

A :class:`DtlsConnection` never awaits, never reads a clock and never touches a socket: datagrams
and the current time go in through ``receive_datagram`` and ``handle_timer``; datagrams come
out of ``datagrams_to_send``, events out of ``next_event`` and the next deadline out of
``get_timer``. The client and server handshake rules live in :mod:`.handshake_flow`.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Sequence
from typing import Any, Literal

from ..exceptions import InvalidStateError
from .certificate import RTCCertificate, RTCDtlsFingerprint
from .crypto import (
    SRTP_PROFILES,
    CipherSuite,
    SrtpKeys,
    SrtpProfile,
    export_keying_material,
)
from .events import (
    ApplicationData,
    ConnectionClosed,
    ConnectionFailed,
    DtlsEvent,
    HandshakeComplete,
)
from .handshake import (
    HANDSHAKE_HEADER_LENGTH,
    HandshakeType,
    Reassembler,
    fragment_handshake,
    handshake_fragments_untrusted,
)
from .handshake_flow import HandshakeFlow
from .keys import NamedGroup
from .recordlayer import DtlsStats, FlightEntry, RecordLayer, pack_datagrams
from .records import ContentType, DtlsError, Record, records_untrusted

__all__ = [
    "DEFAULT_CIPHER_SUITES",
    "DEFAULT_GROUPS",
    "DEFAULT_SRTP_PROFILES",
    "ApplicationData",
    "ConnectionClosed",
    "ConnectionFailed",
    "DtlsConnection",
    "DtlsError",
    "DtlsEvent",
    "DtlsStats",
    "HandshakeComplete",
]

#: The highest handshake message_seq accepted from a peer. One DTLS 1.2 handshake numbers its
#: messages from 0 (1 after a HelloVerifyRequest) up to about 8 per side, and renegotiation is
#: refused, so anything far above is hostile or broken; accepting it would make our own numbers
#: (which follow the ClientHello's, RFC 6347 §4.2.2) overflow the 16-bit field.
MAX_MESSAGE_SEQ = 64

#: Preference order: AES-GCM has hardware support nearly everywhere; ChaCha20 for the rest.
DEFAULT_CIPHER_SUITES: tuple[int, ...] = (
    CipherSuite.ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CipherSuite.ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite.ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    CipherSuite.ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
)
DEFAULT_GROUPS: tuple[int, ...] = (NamedGroup.X25519, NamedGroup.SECP256R1, NamedGroup.SECP384R1)
DEFAULT_SRTP_PROFILES: tuple[int, ...] = (
    SrtpProfile.SRTP_AEAD_AES_128_GCM,
    SrtpProfile.SRTP_AEAD_AES_256_GCM,
    SrtpProfile.SRTP_AES128_CM_HMAC_SHA1_80,
)

#: Alert descriptions we send or name (RFC 5246 §7.2).
CLOSE_NOTIFY = 0
HANDSHAKE_FAILURE = 40
BAD_CERTIFICATE = 42
NO_RENEGOTIATION = 100

#: Epoch-1 records that arrive before we can decrypt them (reordered ahead of the message that
#: gives us the keys) are kept, up to this many, and replayed once the keys exist.
MAX_EARLY_RECORDS = 32
MAX_APPLICATION_DATA = 1 << 14

State = Literal["new", "connecting", "connected", "closed", "failed"]


class DtlsConnection:
    """One DTLS 1.2 association with one peer, in the client or server role."""

    # Slots, not a __dict__: one per peer connection, and past 30 attributes a __dict__
    # stops sharing its keys and costs over 1.5 KiB.
    __slots__ = (
        "_awaiting_fingerprints",
        "_early_application_data",
        "_early_records",
        "_events",
        "_events_read",
        "_flight",
        "_flow",
        "_last_reactive_retransmit",
        "_outgoing",
        "_retransmissions",
        "_send_seq",
        "_timeout",
        "_timer",
        "certificate",
        "cipher_suites",
        "groups",
        "handshake_complete",
        "initial_retransmit_timeout",
        "is_client",
        "max_retransmissions",
        "max_retransmit_timeout",
        "mtu",
        "random_bytes",
        "reassembler",
        "records",
        "remote_certificate_der",
        "remote_fingerprints",
        "require_extended_master_secret",
        "srtp_profiles",
        "state",
        "stats",
        "trace",
        "use_cookies",
    )

    def __init__(
        self,
        *,
        is_client: bool,
        certificate: RTCCertificate,
        remote_fingerprints: Sequence[RTCDtlsFingerprint],
        mtu: int = 1200,
        srtp_profiles: Sequence[int] = DEFAULT_SRTP_PROFILES,
        cipher_suites: Sequence[int] = DEFAULT_CIPHER_SUITES,
        groups: Sequence[int] = DEFAULT_GROUPS,
        use_cookies: bool = False,
        require_extended_master_secret: bool = False,
        initial_retransmit_timeout: float = 1.0,
        max_retransmit_timeout: float = 60.0,
        max_retransmissions: int = 6,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if mtu < 256:
            raise ValueError(
                f"mtu {mtu} is too small for DTLS handshake fragments; expected >= 256"
            )
        unknown = [s for s in cipher_suites if s not in DEFAULT_CIPHER_SUITES]
        if unknown or not cipher_suites:
            raise ValueError(
                f"cipher_suites must be a non-empty subset of {list(DEFAULT_CIPHER_SUITES)}"
            )
        if any(p not in SRTP_PROFILES for p in srtp_profiles):
            raise ValueError(f"srtp_profiles must be among {[int(p) for p in SRTP_PROFILES]}")
        if not groups or any(g not in DEFAULT_GROUPS for g in groups):
            raise ValueError(f"groups must be a non-empty subset of {list(DEFAULT_GROUPS)}")
        self.is_client = is_client
        self.certificate = certificate
        self.remote_fingerprints = list(remote_fingerprints)
        self.mtu = mtu
        self.srtp_profiles = tuple(srtp_profiles)
        self.cipher_suites = tuple(cipher_suites)
        self.groups = tuple(groups)
        self.use_cookies = use_cookies
        self.require_extended_master_secret = require_extended_master_secret
        self.initial_retransmit_timeout = initial_retransmit_timeout
        self.max_retransmit_timeout = max_retransmit_timeout
        self.max_retransmissions = max_retransmissions
        self.random_bytes = random_bytes

        self.state: State = "new"
        self.stats = DtlsStats()
        self.records = RecordLayer(self.stats)
        self.reassembler = Reassembler()
        self.remote_certificate_der: bytes | None = None
        self.handshake_complete: HandshakeComplete | None = None
        self._flow = HandshakeFlow(self)
        # A list read from _events_read on, cleared (which frees its storage) once read to the
        # end: an idle connection then holds no buffer, where a deque always keeps a 64-slot
        # block, and each event still costs O(1).
        self._events: list[DtlsEvent] = []
        self._events_read = 0
        self._outgoing: list[bytes] = []
        self._early_records: list[Record] = []
        self._early_application_data: list[bytes] = []
        self._flight: list[FlightEntry] = []
        self._send_seq = 0
        self._timer: float | None = None
        self._timeout = initial_retransmit_timeout
        self._retransmissions = 0
        self._last_reactive_retransmit = float("-inf")
        self._awaiting_fingerprints = False
        #: Structured trace (trio_rtc.trace): ``trace(name, data)`` at state changes, flights
        #: and alerts, set by the driver; None (the default) is tracing off.
        self.trace: Callable[[str, dict[str, Any]], None] | None = None

    # --- public verbs ------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Begin the handshake: a client sends its ClientHello, a server waits for one."""
        if self.state != "new":
            raise InvalidStateError(f"DTLS connection already started (state {self.state!r})")
        self._trace_state("connecting")
        self.state = "connecting"
        if self.is_client:
            self._guard(lambda: self._flow.client_start(now))

    def receive_datagram(self, data: bytes, now: float) -> None:
        """Feed one datagram from the peer; it may hold several records (RFC 6347 §4.1)."""
        stats = self.stats
        stats.datagrams_received += 1
        if self.state == "connected":
            # The data path: one application record per datagram, in one step.
            plaintext = self.records.open_application_datagram(data)
            if plaintext is not None:
                stats.records_received += 1
                self._events.append(ApplicationData(plaintext))
                return
        elif self.state in ("closed", "failed"):
            return
        if self.state == "new":
            if self.is_client:
                return
            # A server that was not started yet still answers the ClientHello it receives.
            self._trace_state("connecting")
            self.state = "connecting"
        try:
            records = records_untrusted(data)
        except DtlsError:
            self.stats.malformed_dropped += 1
            return
        peer_retransmitted = False
        for record in records:
            if self.state in ("closed", "failed"):
                break
            self.stats.records_received += 1
            peer_retransmitted |= self._receive_record(record, now)
        if peer_retransmitted and self.state in ("connecting", "connected") and self._flight:
            # RFC 6347 §4.2.4: a peer that repeats its last flight did not get ours; send it
            # again, but not more often than a quarter of the initial timer so that a flood of
            # replayed epoch-0 records cannot turn us into an amplifier.
            if now - self._last_reactive_retransmit >= self.initial_retransmit_timeout / 4:
                self._last_reactive_retransmit = now
                if self.trace is not None:
                    self._trace_flight("flight_retransmitted", timeout=None)
                self._transmit_flight()

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Everything queued for the peer; each datagram is at most ``mtu`` bytes unless an
        application record alone is larger."""
        del now
        datagrams, self._outgoing = self._outgoing, []
        self.stats.datagrams_sent += len(datagrams)
        return datagrams

    def get_timer(self) -> float | None:
        return self._timer

    def handle_timer(self, now: float) -> None:
        """Retransmit the current flight with exponential back-off (RFC 6347 §4.2.4.1); after
        ``max_retransmissions`` fruitless copies the handshake fails."""
        if self._timer is None or now < self._timer:
            return
        if self._retransmissions >= self.max_retransmissions:
            self._timer = None
            self._fail("handshake timed out: the peer never answered", None, send_alert=False)
            return
        self._retransmissions += 1
        self.stats.flight_retransmissions += 1
        self._timeout = min(self._timeout * 2, self.max_retransmit_timeout)
        self._timer = now + self._timeout
        if self.trace is not None:
            self._trace_flight("flight_retransmitted", timeout=self._timeout)
        self._transmit_flight()

    def next_event(self) -> DtlsEvent | None:
        events = self._events
        if not events:
            return None
        index = self._events_read
        event = events[index]
        index += 1
        if index == len(events):
            events.clear()
            index = 0
        self._events_read = index
        return event

    def send_application_data(self, data: bytes) -> None:
        if self.state != "connected":
            raise InvalidStateError(f"cannot send application data in state {self.state!r}")
        if len(data) > MAX_APPLICATION_DATA:
            raise ValueError(
                f"application data of {len(data)} bytes exceeds one record (16384 bytes)"
            )
        epoch = self.records.write_epoch
        self._outgoing.append(self.records.seal(ContentType.APPLICATION_DATA, epoch, bytes(data)))

    def send_application_data_many(self, payloads: list[bytes]) -> None:
        """:meth:`send_application_data` for each payload, in order (one record each)."""
        if self.state != "connected":
            raise InvalidStateError(f"cannot send application data in state {self.state!r}")
        records = self.records
        epoch = records.write_epoch
        seal = records.seal
        outgoing = self._outgoing
        for data in payloads:
            if len(data) > MAX_APPLICATION_DATA:
                raise ValueError(
                    f"application data of {len(data)} bytes exceeds one record (16384 bytes)"
                )
            outgoing.append(seal(ContentType.APPLICATION_DATA, epoch, bytes(data)))

    def close(self) -> None:
        """Queue close_notify and stop; further input is ignored."""
        if self.state in ("closed", "failed"):
            return
        if self.state != "new":
            self._send_alert(1, CLOSE_NOTIFY)
        self._trace_state("closed")
        self.state = "closed"
        self._timer = None

    def set_remote_fingerprints(self, fingerprints: Sequence[RTCDtlsFingerprint]) -> None:
        """Give the fingerprints from the remote SDP when they arrive after the handshake began.
        A handshake that finished without them completes (or fails) now."""
        self.remote_fingerprints = list(fingerprints)
        if self._awaiting_fingerprints and self.remote_certificate_der is not None:
            self._awaiting_fingerprints = False
            if self._check_fingerprint(self.remote_certificate_der) and self.handshake_complete:
                self._connected(self.handshake_complete)

    def export_keying_material(
        self, label: str, length: int, context: bytes | None = None
    ) -> bytes:
        """RFC 5705 keying material; only after the handshake completed."""
        if (
            self.handshake_complete is None
            or self._awaiting_fingerprints
            or self._flow.master_secret is None
        ):
            raise InvalidStateError("keying material is available only after the DTLS handshake")
        return export_keying_material(
            self._flow.suite_info().prf_hash,
            self._flow.master_secret,
            label=label.encode(),
            client_random=self._flow.client_random,
            server_random=self._flow.server_random,
            context=context,
            length=length,
        )

    # --- record input ------------------------------------------------------------------------

    def _receive_record(self, record: Record, now: float) -> bool:
        """Handle one record; True when it carried an old handshake message (a retransmission)."""
        if not self.records.has_read_epoch(record.epoch):
            if record.epoch == 1 and len(self._early_records) < MAX_EARLY_RECORDS:
                self._early_records.append(record)
            else:
                self.stats.epoch_dropped += 1
            return False
        plaintext = self.records.open(record)
        if plaintext is None:
            return False
        content_type = record.content_type
        if content_type == ContentType.APPLICATION_DATA:
            if record.epoch == 0:
                self.stats.epoch_dropped += 1
            elif self.state == "connected":
                self._events.append(ApplicationData(plaintext))
            elif (
                self.state == "connecting" and len(self._early_application_data) < MAX_EARLY_RECORDS
            ):
                # Authentic data that overtook the peer's Finished: deliver it once we are done.
                self._early_application_data.append(plaintext)
            else:
                self.stats.epoch_dropped += 1
            return False
        if content_type == ContentType.ALERT:
            self._receive_alert(plaintext, record.epoch)
            return False
        if content_type == ContentType.CHANGE_CIPHER_SPEC:
            # The epoch in each record header already says which keys apply, so the CCS itself
            # changes nothing here; it is only checked for form (RFC 5246 §7.1).
            if plaintext != b"\x01":
                self.stats.content_dropped += 1
            return False
        return self._receive_handshake(plaintext, record.epoch, now)

    def _receive_handshake(self, plaintext: bytes, epoch: int, now: float) -> bool:
        try:
            fragments = handshake_fragments_untrusted(plaintext)
        except DtlsError:
            self.stats.content_dropped += 1
            return False
        old = False
        for fragment in fragments:
            if fragment.message_seq > MAX_MESSAGE_SEQ:
                # A DTLS 1.2 handshake (no renegotiation here) uses a handful of message
                # numbers; counting on from a peer's 65535 would overflow the 16-bit field.
                self.stats.content_dropped += 1
                continue
            if self._flow.accepts_new_client_hello(fragment):
                # A server waiting for a ClientHello keeps no state from an earlier one (it may
                # have answered it with a stateless HelloVerifyRequest, RFC 6347 §4.2.1), so any
                # message_seq is taken as the start of the handshake.
                if fragment.message_seq != self.reassembler.next_seq:
                    self.reassembler = Reassembler()
                    self.reassembler.next_seq = fragment.message_seq
            elif fragment.message_seq < self.reassembler.next_seq:
                old = True
                continue
            elif self.state == "connected" and epoch == 0:
                # After the handshake only authenticated (epoch >= 1) messages may start anything.
                self.stats.epoch_dropped += 1
                continue
            try:
                self.reassembler.add_untrusted(fragment, epoch)
            except DtlsError:
                self.stats.content_dropped += 1
        self._guard(lambda: self._process_messages(now))
        return old

    def _process_messages(self, now: float) -> None:
        while self.state in ("connecting", "connected"):
            message = self.reassembler.pop_message()
            if message is None:
                return
            msg_type, body, epoch = message
            if self.trace is not None:
                seq = self.reassembler.next_seq - 1
                self.trace("message_received", {"type": _handshake_name(msg_type), "seq": seq})
            self._flow.handle_message(msg_type, self.reassembler.next_seq - 1, body, epoch, now)
        if self._early_records and self.records.has_read_epoch(1):
            # Records that came before their keys are replayed only here, after the loop, so
            # that a handshake step never runs inside another one.
            early, self._early_records = self._early_records, []
            for record in early:
                self._receive_record(record, now)

    def install_epoch_keys(self) -> None:
        """Called by the flow once the epoch-1 keys exist."""
        read, write = self._flow.record_protections()
        self.records.install(1, read=read, write=write)

    def _receive_alert(self, plaintext: bytes, epoch: int) -> None:
        if len(plaintext) != 2:
            self.stats.content_dropped += 1
            return
        level, description = plaintext
        if self.trace is not None:
            self.trace("alert_received", {"level": level, "description": description})
        if epoch == 0 and self.records.write_epoch > 0 and self.state == "connected":
            # An unauthenticated alert cannot end an established association.
            self.stats.epoch_dropped += 1
            return
        if description == CLOSE_NOTIFY:
            if self.state == "connected":
                self._send_alert(1, CLOSE_NOTIFY)
            self._trace_state("closed")
            self.state = "closed"
            self._timer = None
            self._events.append(ConnectionClosed())
        elif level == 2:
            self._trace_state("failed")
            self.state = "failed"
            self._timer = None
            self._events.append(
                ConnectionFailed(f"peer sent fatal alert {description}", description, True)
            )
        # Warning alerts (such as no_renegotiation) need no action.

    # --- output helpers used by the handshake flow --------------------------------------------

    def next_message_seq(self) -> int:
        seq = self._send_seq
        self._send_seq += 1
        return seq

    def set_message_seq(self, seq: int) -> None:
        self._send_seq = seq

    def send_flight(self, entries: list[FlightEntry], now: float, *, expect_reply: bool) -> None:
        """Make ``entries`` the current flight, send it and arm (or clear) the timer."""
        self._flight = entries
        self._retransmissions = 0
        self._timeout = self.initial_retransmit_timeout
        self._timer = now + self._timeout if expect_reply else None
        if self.trace is not None:
            self._trace_flight("flight_sent", timeout=self._timeout if expect_reply else None)
        self._transmit_flight()

    def send_once(self, entries: list[FlightEntry]) -> None:
        """Send without making it the current flight (a stateless HelloVerifyRequest)."""
        self._outgoing.extend(pack_datagrams(self._flight_records(entries), self.mtu))

    def stop_timer(self) -> None:
        self._timer = None

    def forget_flight(self) -> None:
        self._flight = []

    def _transmit_flight(self) -> None:
        try:
            records = self._flight_records(self._flight)
        except DtlsError as exc:
            self._fail(str(exc), exc.alert)
            return
        self._outgoing.extend(pack_datagrams(records, self.mtu))

    def _flight_records(self, entries: list[FlightEntry]) -> list[bytes]:
        records = []
        for entry in entries:
            if entry.content_type == ContentType.CHANGE_CIPHER_SPEC:
                records.append(
                    self.records.seal(ContentType.CHANGE_CIPHER_SPEC, entry.epoch, b"\x01")
                )
                continue
            room = self.mtu - self.records.overhead(entry.epoch) - HANDSHAKE_HEADER_LENGTH
            for fragment in fragment_handshake(entry.msg_type, entry.message_seq, entry.body, room):
                records.append(self.records.seal(ContentType.HANDSHAKE, entry.epoch, fragment))
        return records

    def _send_alert(self, level: int, description: int) -> None:
        epoch = self.records.write_epoch
        if self.trace is not None:
            self.trace("alert_sent", {"level": level, "description": description})
        self._outgoing.append(
            self.records.seal(ContentType.ALERT, epoch, struct.pack("!BB", level, description))
        )

    def _guard(self, action: Callable[[], None]) -> None:
        """Run a handshake step; a rule broken by the peer fails the connection with its alert."""
        try:
            action()
        except DtlsError as exc:
            self._fail(str(exc), exc.alert)

    def _fail(self, reason: str, alert: int | None, *, send_alert: bool = True) -> None:
        if self.state in ("closed", "failed"):
            return
        if alert is not None and send_alert:
            self._send_alert(2, alert)
        self._trace_state("failed", reason)
        self.state = "failed"
        self._timer = None
        self._flight = []
        self._events.append(ConnectionFailed(reason, alert, False))

    # --- peer authentication and completion ------------------------------------------------

    def _check_fingerprint(self, der: bytes) -> bool:
        if any(fp.matches(der) for fp in self.remote_fingerprints):
            return True
        self._fail("peer certificate does not match the remote fingerprint", BAD_CERTIFICATE)
        return False

    def authenticate_peer(self, der: bytes) -> None:
        """WebRTC authenticates by fingerprint, not by certificate chain (RFC 8827 §6.5)."""
        self.remote_certificate_der = der
        if not self.remote_fingerprints:
            self._awaiting_fingerprints = True
            return
        if not any(fp.matches(der) for fp in self.remote_fingerprints):
            raise DtlsError(
                "peer certificate does not match the remote fingerprint", alert=BAD_CERTIFICATE
            )

    def complete_handshake(self, event: HandshakeComplete) -> None:
        self.handshake_complete = event
        if self._awaiting_fingerprints:
            # Keys are ready but the peer is not authenticated yet: nothing is delivered until
            # set_remote_fingerprints() decides.
            return
        self._connected(event)

    def _connected(self, event: HandshakeComplete) -> None:
        self._trace_state("connected")
        self.state = "connected"
        self._events.append(event)
        early, self._early_application_data = self._early_application_data, []
        self._events.extend(ApplicationData(data) for data in early)

    def srtp_keys(self, profile: SrtpProfile) -> SrtpKeys:
        """RFC 5764 §4.2: client key, server key, client salt, server salt from the exporter."""
        info = SRTP_PROFILES[profile]
        k, s = info.key_length, info.salt_length
        material = self._export_for_srtp(2 * (k + s))
        client_key, server_key = material[:k], material[k : 2 * k]
        client_salt, server_salt = material[2 * k : 2 * k + s], material[2 * k + s :]
        if self.is_client:
            return SrtpKeys(profile, client_key, client_salt, server_key, server_salt)
        return SrtpKeys(profile, server_key, server_salt, client_key, client_salt)

    def _export_for_srtp(self, length: int) -> bytes:
        assert self._flow.master_secret is not None
        return export_keying_material(
            self._flow.suite_info().prf_hash,
            self._flow.master_secret,
            label=b"EXTRACTOR-dtls_srtp",
            client_random=self._flow.client_random,
            server_random=self._flow.server_random,
            context=None,
            length=length,
        )

    def refuse_renegotiation(self) -> None:
        self._send_alert(1, NO_RENEGOTIATION)

    # --- structured trace (trio_rtc.trace) ----------------------------------------------------

    def _trace_state(self, state: str, reason: str | None = None) -> None:
        if self.trace is not None and state != self.state:
            data: dict[str, Any] = {"state": state, "previous": self.state}
            if reason is not None:
                data["reason"] = reason
            self.trace("state", data)

    def _trace_flight(self, name: str, *, timeout: float | None) -> None:
        assert self.trace is not None
        messages = [
            _handshake_name(entry.msg_type)
            if entry.content_type != ContentType.CHANGE_CIPHER_SPEC
            else "change_cipher_spec"
            for entry in self._flight
        ]
        epochs = sorted({entry.epoch for entry in self._flight})
        self.trace(
            name,
            {
                "messages": messages,
                "epochs": epochs,
                "timeout": timeout,
                "retransmissions": self._retransmissions,
            },
        )


def _handshake_name(msg_type: int) -> str:
    try:
        return HandshakeType(msg_type).name.lower()
    except ValueError:
        return str(msg_type)
