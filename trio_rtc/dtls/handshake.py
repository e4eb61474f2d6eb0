"""DTLS 1.2 handshake messages: encode, parse, fragment and reassemble (RFC 6347 §4.2, §4.3.2).

Parsers of peer bytes end in ``_untrusted`` and raise only :class:`DtlsError`.
"""

from __future__ import annotations

import enum
import struct

import attrs

from .records import DTLS_1_2, DtlsError

__all__ = [
    "HANDSHAKE_HEADER_LENGTH",
    "Certificate",
    "CertificateRequest",
    "CertificateVerify",
    "ClientHello",
    "ClientKeyExchange",
    "ExtensionType",
    "Finished",
    "HandshakeFragment",
    "HandshakeType",
    "HelloVerifyRequest",
    "Reassembler",
    "ServerHello",
    "ServerHelloDone",
    "ServerKeyExchange",
    "encode_handshake",
    "fragment_handshake",
    "handshake_fragments_untrusted",
]

HANDSHAKE_HEADER_LENGTH = 12
#: The largest handshake message we accept: a certificate chain of a few certificates. A peer
#: announcing more could make us reserve that much memory before sending any of it.
MAX_HANDSHAKE_MESSAGE_LENGTH = 1 << 16
#: Disjoint received pieces of one message we track before refusing more (see _PartialMessage).
MAX_FRAGMENT_RANGES = 256


class HandshakeType(enum.IntEnum):
    HELLO_REQUEST = 0
    CLIENT_HELLO = 1
    SERVER_HELLO = 2
    HELLO_VERIFY_REQUEST = 3
    CERTIFICATE = 11
    SERVER_KEY_EXCHANGE = 12
    CERTIFICATE_REQUEST = 13
    SERVER_HELLO_DONE = 14
    CERTIFICATE_VERIFY = 15
    CLIENT_KEY_EXCHANGE = 16
    FINISHED = 20


class ExtensionType(enum.IntEnum):
    SUPPORTED_GROUPS = 10
    EC_POINT_FORMATS = 11
    SIGNATURE_ALGORITHMS = 13
    USE_SRTP = 14
    EXTENDED_MASTER_SECRET = 23
    RENEGOTIATION_INFO = 0xFF01


class _Reader:
    """Bounds-checked reads of the TLS presentation language (RFC 5246 §4)."""

    __slots__ = ("data", "offset")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, n: int) -> bytes:
        if self.offset + n > len(self.data):
            raise DtlsError("handshake message is truncated")
        chunk = self.data[self.offset : self.offset + n]
        self.offset += n
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int, minimum: int = 0, maximum: int | None = None) -> bytes:
        length = self.uint(length_size)
        if length < minimum or (maximum is not None and length > maximum):
            raise DtlsError(f"vector length {length} outside {minimum}..{maximum}")
        return self.take(length)

    def uint16_list(self, length_size: int, minimum: int = 0) -> list[int]:
        raw = self.vector(length_size, minimum)
        if len(raw) % 2:
            raise DtlsError("list of 16-bit values has an odd length")
        return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]

    def at_end(self) -> bool:
        return self.offset == len(self.data)

    def finish(self) -> None:
        if self.offset != len(self.data):
            raise DtlsError("handshake message has trailing bytes")


def _vec(length_size: int, data: bytes) -> bytes:
    return len(data).to_bytes(length_size, "big") + data


def _u16_list(length_size: int, values: list[int] | tuple[int, ...]) -> bytes:
    return _vec(length_size, b"".join(struct.pack("!H", v) for v in values))


def _extensions_untrusted(reader: _Reader) -> dict[int, bytes]:
    """Extensions, if present; a repeated type is an error (RFC 5246 §7.4.1.4)."""
    if reader.at_end():
        return {}
    block = _Reader(reader.vector(2))
    extensions: dict[int, bytes] = {}
    while not block.at_end():
        ext_type = block.uint(2)
        body = block.vector(2)
        if ext_type in extensions:
            raise DtlsError(f"extension {ext_type} appears twice", alert=47)
        extensions[ext_type] = body
    return extensions


def _encode_extensions(extensions: dict[int, bytes]) -> bytes:
    return _vec(2, b"".join(struct.pack("!H", t) + _vec(2, body) for t, body in extensions.items()))


@attrs.frozen
class ClientHello:
    random: bytes
    session_id: bytes
    cookie: bytes
    cipher_suites: list[int]
    compression_methods: bytes
    extensions: dict[int, bytes]
    client_version: int = DTLS_1_2

    def encode(self) -> bytes:
        return (
            struct.pack("!H", self.client_version)
            + self.random
            + _vec(1, self.session_id)
            + _vec(1, self.cookie)
            + _u16_list(2, self.cipher_suites)
            + _vec(1, self.compression_methods)
            + _encode_extensions(self.extensions)
        )

    @classmethod
    def parse_untrusted(cls, body: bytes) -> ClientHello:
        r = _Reader(body)
        version = r.uint(2)
        random = r.take(32)
        session_id = r.vector(1, 0, 32)
        cookie = r.vector(1, 0, 255)
        suites = r.uint16_list(2, 2)
        compression = r.vector(1, 1)
        extensions = _extensions_untrusted(r)
        r.finish()
        return cls(random, session_id, cookie, suites, compression, extensions, version)


@attrs.frozen
class ServerHello:
    random: bytes
    session_id: bytes
    cipher_suite: int
    extensions: dict[int, bytes]
    compression_method: int = 0
    server_version: int = DTLS_1_2

    def encode(self) -> bytes:
        return (
            struct.pack("!H", self.server_version)
            + self.random
            + _vec(1, self.session_id)
            + struct.pack("!HB", self.cipher_suite, self.compression_method)
            + _encode_extensions(self.extensions)
        )

    @classmethod
    def parse_untrusted(cls, body: bytes) -> ServerHello:
        r = _Reader(body)
        version = r.uint(2)
        random = r.take(32)
        session_id = r.vector(1, 0, 32)
        suite = r.uint(2)
        compression = r.uint(1)
        extensions = _extensions_untrusted(r)
        r.finish()
        return cls(random, session_id, suite, extensions, compression, version)


@attrs.frozen
class HelloVerifyRequest:
    cookie: bytes
    #: RFC 6347 §4.2.1: DTLS 1.0 here whatever version will be negotiated.
    server_version: int = 0xFEFF

    def encode(self) -> bytes:
        return struct.pack("!H", self.server_version) + _vec(1, self.cookie)

    @classmethod
    def parse_untrusted(cls, body: bytes) -> HelloVerifyRequest:
        r = _Reader(body)
        version = r.uint(2)
        cookie = r.vector(1, 0, 255)
        r.finish()
        return cls(cookie, version)


@attrs.frozen
class Certificate:
    """The certificate chain, leaf first, each DER (RFC 5246 §7.4.2)."""

    certificates: list[bytes]

    def encode(self) -> bytes:
        return _vec(3, b"".join(_vec(3, der) for der in self.certificates))

    @classmethod
    def parse_untrusted(cls, body: bytes) -> Certificate:
        r = _Reader(body)
        chain = _Reader(r.vector(3))
        r.finish()
        certificates = []
        while not chain.at_end():
            certificates.append(chain.vector(3, 1))
        return cls(certificates)


@attrs.frozen
class ServerKeyExchange:
    """ECDHE parameters with a named curve and their signature (RFC 8422 §5.4)."""

    named_group: int
    public_key: bytes
    signature_scheme: int
    signature: bytes

    def params(self) -> bytes:
        return struct.pack("!BH", 3, self.named_group) + _vec(1, self.public_key)

    def encode(self) -> bytes:
        return self.params() + struct.pack("!H", self.signature_scheme) + _vec(2, self.signature)

    @classmethod
    def parse_untrusted(cls, body: bytes) -> ServerKeyExchange:
        r = _Reader(body)
        if r.uint(1) != 3:
            raise DtlsError("ServerKeyExchange: only named curves are supported", alert=40)
        group = r.uint(2)
        public = r.vector(1, 1)
        scheme = r.uint(2)
        signature = r.vector(2)
        r.finish()
        return cls(group, public, scheme, signature)


@attrs.frozen
class CertificateRequest:
    certificate_types: bytes
    signature_schemes: list[int]
    authorities: bytes = b""

    def encode(self) -> bytes:
        return (
            _vec(1, self.certificate_types)
            + _u16_list(2, self.signature_schemes)
            + _vec(2, self.authorities)
        )

    @classmethod
    def parse_untrusted(cls, body: bytes) -> CertificateRequest:
        r = _Reader(body)
        types = r.vector(1, 1)
        schemes = r.uint16_list(2, 2)
        authorities = r.vector(2)
        r.finish()
        return cls(types, schemes, authorities)


@attrs.frozen
class ServerHelloDone:
    def encode(self) -> bytes:
        return b""

    @classmethod
    def parse_untrusted(cls, body: bytes) -> ServerHelloDone:
        if body:
            raise DtlsError("ServerHelloDone must be empty")
        return cls()


@attrs.frozen
class ClientKeyExchange:
    public_key: bytes

    def encode(self) -> bytes:
        return _vec(1, self.public_key)

    @classmethod
    def parse_untrusted(cls, body: bytes) -> ClientKeyExchange:
        r = _Reader(body)
        public = r.vector(1, 1)
        r.finish()
        return cls(public)


@attrs.frozen
class CertificateVerify:
    signature_scheme: int
    signature: bytes

    def encode(self) -> bytes:
        return struct.pack("!H", self.signature_scheme) + _vec(2, self.signature)

    @classmethod
    def parse_untrusted(cls, body: bytes) -> CertificateVerify:
        r = _Reader(body)
        scheme = r.uint(2)
        signature = r.vector(2)
        r.finish()
        return cls(scheme, signature)


@attrs.frozen
class Finished:
    verify_data: bytes

    def encode(self) -> bytes:
        return self.verify_data

    @classmethod
    def parse_untrusted(cls, body: bytes) -> Finished:
        if len(body) != 12:
            raise DtlsError("Finished verify_data must be 12 bytes")
        return cls(body)


# --- extension bodies ---------------------------------------------------------------------------


def encode_u16_list_extension(values: list[int] | tuple[int, ...]) -> bytes:
    """supported_groups and signature_algorithms: a 16-bit-length list of 16-bit values."""
    return _u16_list(2, values)


def u16_list_extension_untrusted(body: bytes) -> list[int]:
    r = _Reader(body)
    values = r.uint16_list(2, 2)
    r.finish()
    return values


def encode_use_srtp(profiles: list[int] | tuple[int, ...], mki: bytes = b"") -> bytes:
    """RFC 5764 §4.1.1: UseSRTPData = profiles<2..2^16-1> + srtp_mki<0..255>."""
    return _u16_list(2, profiles) + _vec(1, mki)


def use_srtp_untrusted(body: bytes) -> tuple[list[int], bytes]:
    r = _Reader(body)
    profiles = r.uint16_list(2, 2)
    mki = r.vector(1)
    r.finish()
    return profiles, mki


def ec_point_formats_untrusted(body: bytes) -> bytes:
    r = _Reader(body)
    formats = r.vector(1, 1)
    r.finish()
    return formats


# --- handshake header, fragmentation and reassembly -------------------------------------------

_HEADER = struct.Struct("!B3sH3s3s")


@attrs.frozen
class HandshakeFragment:
    msg_type: int
    length: int
    message_seq: int
    fragment_offset: int
    body: bytes

    def encode(self) -> bytes:
        return (
            _HEADER.pack(
                self.msg_type,
                self.length.to_bytes(3, "big"),
                self.message_seq,
                self.fragment_offset.to_bytes(3, "big"),
                len(self.body).to_bytes(3, "big"),
            )
            + self.body
        )


def encode_handshake(msg_type: int, message_seq: int, body: bytes) -> bytes:
    """A whole message with its DTLS header: the form that enters the transcript hash, where
    fragment_offset is 0 and fragment_length equals length (RFC 6347 §4.2.6)."""
    return HandshakeFragment(msg_type, len(body), message_seq, 0, body).encode()


def handshake_fragments_untrusted(data: bytes) -> list[HandshakeFragment]:
    """The handshake fragments of one record's plaintext (a record may carry several)."""
    fragments = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < HANDSHAKE_HEADER_LENGTH:
            raise DtlsError("record ends inside a handshake header")
        msg_type, length_b, seq, frag_off_b, frag_len_b = _HEADER.unpack_from(data, offset)
        length = int.from_bytes(length_b, "big")
        frag_offset = int.from_bytes(frag_off_b, "big")
        frag_length = int.from_bytes(frag_len_b, "big")
        if length > MAX_HANDSHAKE_MESSAGE_LENGTH:
            raise DtlsError(f"handshake message of {length} bytes exceeds the limit")
        if frag_offset + frag_length > length:
            raise DtlsError("handshake fragment runs past the message length")
        start = offset + HANDSHAKE_HEADER_LENGTH
        if start + frag_length > len(data):
            raise DtlsError("handshake fragment runs past the record")
        fragments.append(
            HandshakeFragment(msg_type, length, seq, frag_offset, data[start : start + frag_length])
        )
        offset = start + frag_length
    return fragments


def fragment_handshake(
    msg_type: int, message_seq: int, body: bytes, max_fragment: int
) -> list[bytes]:
    """Encoded fragments whose bodies are at most ``max_fragment`` bytes (RFC 6347 §4.2.3)."""
    if len(body) <= max_fragment:
        return [encode_handshake(msg_type, message_seq, body)]
    return [
        HandshakeFragment(
            msg_type, len(body), message_seq, offset, body[offset : offset + max_fragment]
        ).encode()
        for offset in range(0, len(body), max_fragment)
    ]


class _PartialMessage:
    __slots__ = ("body", "epoch", "length", "msg_type", "ranges")

    def __init__(self, msg_type: int, length: int, epoch: int) -> None:
        self.msg_type = msg_type
        self.length = length
        self.epoch = epoch
        self.body = bytearray(length)
        self.ranges: list[tuple[int, int]] = []  # received [start, end) intervals, merged

    def add(self, offset: int, data: bytes) -> None:
        end = offset + len(data)
        self.body[offset:end] = data
        merged: list[tuple[int, int]] = []
        start = offset
        for a, b in self.ranges:
            if b < start or a > end:
                merged.append((a, b))
            else:
                start, end = min(a, start), max(b, end)
        merged.append((start, end))
        merged.sort()
        self.ranges = merged

    def complete(self) -> bool:
        return self.ranges == [(0, self.length)] or self.length == 0


class Reassembler:
    """Collects fragments of the next few handshake messages and yields whole ones in order.

    Only messages in the window ``[next_seq, next_seq + window)`` are buffered, so a peer cannot
    make us hold more than ``window`` messages of at most 64 KiB each (RFC 6347 §4.2.2 allows
    discarding messages that are too far ahead).
    """

    def __init__(self, window: int = 8) -> None:
        self.next_seq = 0
        self.window = window
        self._partial: dict[int, _PartialMessage] = {}

    def add_untrusted(self, fragment: HandshakeFragment, epoch: int) -> None:
        seq = fragment.message_seq
        if seq < self.next_seq or seq >= self.next_seq + self.window:
            return
        partial = self._partial.get(seq)
        if partial is None:
            partial = self._partial[seq] = _PartialMessage(
                fragment.msg_type, fragment.length, epoch
            )
        elif (partial.msg_type, partial.length, partial.epoch) != (
            fragment.msg_type,
            fragment.length,
            epoch,
        ):
            raise DtlsError("handshake fragments of one message disagree", alert=47)
        if len(partial.ranges) >= MAX_FRAGMENT_RANGES:
            # Thousands of tiny disjoint fragments would make every add cost more; real peers
            # fragment at the MTU and leave few gaps. Start over: a retransmission rebuilds it.
            del self._partial[seq]
            raise DtlsError("handshake message split into too many pieces")
        partial.add(fragment.fragment_offset, fragment.body)

    def pop_message(self) -> tuple[int, bytes, int] | None:
        """The next whole message in order as ``(msg_type, body, epoch)``, or None."""
        partial = self._partial.get(self.next_seq)
        if partial is None or not partial.complete():
            return None
        del self._partial[self.next_seq]
        self.next_seq += 1
        return partial.msg_type, bytes(partial.body), partial.epoch
