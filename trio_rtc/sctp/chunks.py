"""SCTP packet and chunk codec (RFC 9260 §3, RFC 3758, RFC 6525, RFC 9653).

Everything that reads peer bytes is named ``*_untrusted`` and raises only :class:`SctpError`.
The DATA chunk is not decoded into an object here: the association reads it in place on its hot
path with :data:`DATA_HEADER` (see ``association.py``); :func:`decode_data_untrusted` exists for
tests and tooling.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterable

import attrs

from .crc32c import crc32c

__all__ = [
    "COMMON_HEADER",
    "DATA_HEADER",
    "AbortChunk",
    "ChunkType",
    "CookieEchoChunk",
    "DataChunk",
    "ErrorCause",
    "ErrorChunk",
    "ForwardTsnChunk",
    "HeartbeatChunk",
    "IncomingResetRequest",
    "InitChunk",
    "OutgoingResetRequest",
    "Parameter",
    "RawChunk",
    "ReconfigChunk",
    "ReconfigResponse",
    "SackChunk",
    "SctpError",
    "ShutdownChunk",
    "decode_chunks_untrusted",
    "decode_data_untrusted",
    "encode_chunk",
    "encode_packet",
    "verify_packet_untrusted",
]


class SctpError(Exception):
    """Malformed SCTP input from the network. Callers count it and drop the packet."""


class ChunkType(enum.IntEnum):
    DATA = 0
    INIT = 1
    INIT_ACK = 2
    SACK = 3
    HEARTBEAT = 4
    HEARTBEAT_ACK = 5
    ABORT = 6
    SHUTDOWN = 7
    SHUTDOWN_ACK = 8
    ERROR = 9
    COOKIE_ECHO = 10
    COOKIE_ACK = 11
    SHUTDOWN_COMPLETE = 14
    RECONFIG = 130
    FORWARD_TSN = 192


class ParameterType(enum.IntEnum):
    HEARTBEAT_INFO = 1
    STATE_COOKIE = 7
    UNRECOGNIZED_PARAMETER = 8
    COOKIE_PRESERVATIVE = 9
    OUTGOING_SSN_RESET = 13
    INCOMING_SSN_RESET = 14
    SSN_TSN_RESET = 15
    RECONFIG_RESPONSE = 16
    ADD_OUTGOING_STREAMS = 17
    ADD_INCOMING_STREAMS = 18
    ECN_CAPABLE = 0x8000
    ZERO_CHECKSUM_ACCEPTABLE = 0x8001  # RFC 9653 §3
    SUPPORTED_EXTENSIONS = 0x8008  # RFC 5061 §4.2.7
    FORWARD_TSN_SUPPORTED = 0xC000  # RFC 3758 §3.1


class CauseCode(enum.IntEnum):
    INVALID_STREAM_IDENTIFIER = 1
    MISSING_MANDATORY_PARAMETER = 2
    STALE_COOKIE = 3
    OUT_OF_RESOURCE = 4
    UNRECOGNIZED_CHUNK_TYPE = 6
    INVALID_MANDATORY_PARAMETER = 7
    UNRECOGNIZED_PARAMETERS = 8
    NO_USER_DATA = 9
    USER_INITIATED_ABORT = 12
    PROTOCOL_VIOLATION = 13


class ReconfigResult(enum.IntEnum):
    """RFC 6525 §4.4 result codes."""

    SUCCESS_NOTHING_TO_DO = 0
    SUCCESS_PERFORMED = 1
    DENIED = 2
    ERROR_WRONG_SSN = 3
    ERROR_REQUEST_ALREADY_IN_PROGRESS = 4
    ERROR_BAD_SEQUENCE_NUMBER = 5
    IN_PROGRESS = 6


# RFC 9653 §4: error detection method "SCTP over DTLS".
EDMID_DTLS = 1

# DATA chunk flags (RFC 9260 §3.3.1, RFC 7053 for I).
FLAG_END = 0x01
FLAG_BEGIN = 0x02
FLAG_UNORDERED = 0x04
FLAG_IMMEDIATE = 0x08
# ABORT / SHUTDOWN COMPLETE: the verification tag is the reflected one (RFC 9260 §3.3.7).
FLAG_T = 0x01

COMMON_HEADER = struct.Struct("!HHII")
COMMON_HEADER_SIZE = 12
CHUNK_HEADER = struct.Struct("!BBH")
# type, flags, length, TSN, stream id, stream sequence number, payload protocol identifier
DATA_HEADER = struct.Struct("!BBHIHHI")
DATA_HEADER_SIZE = 16
_INIT_FIXED = struct.Struct("!IIHHI")
_SACK_FIXED = struct.Struct("!IIHH")
_U32 = struct.Struct("!I")
_U16 = struct.Struct("!H")
_PARAM_HEADER = struct.Struct("!HH")
_CRC = struct.Struct("<I")


def _pad4(length: int) -> int:
    return (length + 3) & ~3


@attrs.define(slots=True)
class RawChunk:
    """A chunk as found in a packet: type, flags and value (the bytes after the 4-byte header)."""

    type: int
    flags: int
    value: bytes


@attrs.define(slots=True)
class Parameter:
    type: int
    value: bytes


@attrs.define(slots=True)
class ErrorCause:
    code: int
    value: bytes = b""


@attrs.define(slots=True)
class DataChunk:
    flags: int
    tsn: int
    stream_id: int
    stream_sequence: int
    ppid: int
    user_data: bytes


@attrs.define(slots=True)
class InitChunk:
    """INIT or INIT ACK (same fixed part, RFC 9260 §3.3.2 and §3.3.3)."""

    initiate_tag: int
    a_rwnd: int
    outbound_streams: int
    inbound_streams: int
    initial_tsn: int
    parameters: list[Parameter] = attrs.field(factory=list)

    def find(self, parameter_type: int) -> Parameter | None:
        for parameter in self.parameters:
            if parameter.type == parameter_type:
                return parameter
        return None


@attrs.define(slots=True)
class SackChunk:
    cumulative_tsn_ack: int
    a_rwnd: int
    # Gap Ack Blocks as (start, end) offsets from the cumulative TSN ack, inclusive.
    gap_blocks: list[tuple[int, int]] = attrs.field(factory=list)
    duplicate_tsns: list[int] = attrs.field(factory=list)


@attrs.define(slots=True)
class HeartbeatChunk:
    info: bytes


@attrs.define(slots=True)
class AbortChunk:
    reflected_tag: bool
    causes: list[ErrorCause] = attrs.field(factory=list)


@attrs.define(slots=True)
class ErrorChunk:
    causes: list[ErrorCause] = attrs.field(factory=list)


@attrs.define(slots=True)
class ShutdownChunk:
    cumulative_tsn_ack: int


@attrs.define(slots=True)
class CookieEchoChunk:
    cookie: bytes


@attrs.define(slots=True)
class ForwardTsnChunk:
    new_cumulative_tsn: int
    streams: list[tuple[int, int]] = attrs.field(factory=list)


@attrs.define(slots=True)
class OutgoingResetRequest:
    request_sequence: int
    response_sequence: int
    last_assigned_tsn: int
    stream_ids: list[int]


@attrs.define(slots=True)
class IncomingResetRequest:
    request_sequence: int
    stream_ids: list[int]


@attrs.define(slots=True)
class ReconfigResponse:
    response_sequence: int
    result: int
    sender_next_tsn: int | None = None
    receiver_next_tsn: int | None = None


ReconfigParameter = OutgoingResetRequest | IncomingResetRequest | ReconfigResponse | Parameter


@attrs.define(slots=True)
class ReconfigChunk:
    parameters: list[ReconfigParameter]


# ---------------------------------------------------------------------------------------------
# Packets


def verify_packet_untrusted(
    data: bytes, *, accept_zero_checksum: bool
) -> tuple[int, int, int, bool]:
    """Check the common header and checksum; return (source port, destination port, tag, zero).

    ``zero`` says the packet carried a zero checksum, accepted only when we announced RFC 9653
    support (the association refuses it on packets carrying INIT).
    """
    if len(data) < COMMON_HEADER_SIZE + 4:
        raise SctpError("packet shorter than the common header and one chunk header")
    # A packet whose last chunk lacks its padding is accepted (be liberal in what we accept).
    source_port, destination_port, tag, checksum_field = COMMON_HEADER.unpack_from(data)
    if checksum_field == 0 and accept_zero_checksum:
        return source_port, destination_port, tag, True
    # RFC 9260 Appendix A: the CRC is computed with the checksum field zeroed and is stored in
    # little-endian order (the reflected register written out byte by byte).
    expected = crc32c(data[:8] + b"\x00\x00\x00\x00" + data[12:])
    if _CRC.pack(expected) != data[8:12]:
        raise SctpError("bad CRC32c checksum")
    return source_port, destination_port, tag, False


def decode_chunks_untrusted(data: bytes, offset: int = COMMON_HEADER_SIZE) -> list[RawChunk]:
    """Split a packet's chunks (RFC 9260 §3.2); the last chunk may omit its padding."""
    chunks: list[RawChunk] = []
    end = len(data)
    while offset < end:
        if end - offset < 4:
            raise SctpError("truncated chunk header")
        chunk_type, flags, length = CHUNK_HEADER.unpack_from(data, offset)
        if length < 4 or offset + length > end:
            raise SctpError(f"bad chunk length {length}")
        chunks.append(RawChunk(chunk_type, flags, data[offset + 4 : offset + length]))
        offset += _pad4(length)
    return chunks


def encode_chunk(chunk_type: int, flags: int = 0, value: bytes = b"") -> bytes:
    length = 4 + len(value)
    return CHUNK_HEADER.pack(chunk_type, flags, length) + value + b"\x00" * (-length & 3)


def encode_packet(
    source_port: int,
    destination_port: int,
    tag: int,
    chunks: Iterable[bytes],
    *,
    zero_checksum: bool = False,
) -> bytes:
    body = b"".join(chunks)
    header = COMMON_HEADER.pack(source_port, destination_port, tag, 0)
    if zero_checksum:
        return header + body
    checksum = crc32c(header + body)
    return header[:8] + _CRC.pack(checksum) + body


# ---------------------------------------------------------------------------------------------
# TLV helpers


def decode_parameters_untrusted(data: bytes, offset: int = 0) -> list[Parameter]:
    parameters: list[Parameter] = []
    end = len(data)
    while offset < end:
        if end - offset < 4:
            raise SctpError("truncated parameter header")
        parameter_type, length = _PARAM_HEADER.unpack_from(data, offset)
        if length < 4 or offset + length > end:
            raise SctpError(f"bad parameter length {length}")
        parameters.append(Parameter(parameter_type, data[offset + 4 : offset + length]))
        offset += _pad4(length)
    return parameters


def encode_parameter(parameter_type: int, value: bytes = b"") -> bytes:
    length = 4 + len(value)
    return _PARAM_HEADER.pack(parameter_type, length) + value + b"\x00" * (-length & 3)


def decode_causes_untrusted(data: bytes) -> list[ErrorCause]:
    return [ErrorCause(p.type, p.value) for p in decode_parameters_untrusted(data)]


def encode_causes(causes: Iterable[ErrorCause]) -> bytes:
    return b"".join(encode_parameter(cause.code, cause.value) for cause in causes)


# ---------------------------------------------------------------------------------------------
# Chunk bodies


def decode_data_untrusted(chunk: RawChunk) -> DataChunk:
    value = chunk.value
    if len(value) < 12:
        raise SctpError("DATA chunk shorter than its header")
    tsn, stream_id, ssn, ppid = struct.unpack_from("!IHHI", value)
    return DataChunk(chunk.flags, tsn, stream_id, ssn, ppid, value[12:])


def encode_data(chunk: DataChunk) -> bytes:
    length = DATA_HEADER_SIZE + len(chunk.user_data)
    header = DATA_HEADER.pack(
        ChunkType.DATA,
        chunk.flags,
        length,
        chunk.tsn,
        chunk.stream_id,
        chunk.stream_sequence,
        chunk.ppid,
    )
    return header + chunk.user_data + b"\x00" * (-length & 3)


def decode_init_untrusted(chunk: RawChunk) -> InitChunk:
    value = chunk.value
    if len(value) < 16:
        raise SctpError("INIT chunk shorter than its fixed part")
    tag, a_rwnd, outbound, inbound, initial_tsn = _INIT_FIXED.unpack_from(value)
    return InitChunk(
        tag, a_rwnd, outbound, inbound, initial_tsn, decode_parameters_untrusted(value, 16)
    )


def encode_init(chunk_type: int, init: InitChunk) -> bytes:
    fixed = _INIT_FIXED.pack(
        init.initiate_tag,
        init.a_rwnd,
        init.outbound_streams,
        init.inbound_streams,
        init.initial_tsn,
    )
    params = b"".join(encode_parameter(p.type, p.value) for p in init.parameters)
    return encode_chunk(chunk_type, 0, fixed + params)


def decode_sack_untrusted(chunk: RawChunk) -> SackChunk:
    value = chunk.value
    if len(value) < 12:
        raise SctpError("SACK chunk shorter than its fixed part")
    cumulative, a_rwnd, gap_count, dup_count = _SACK_FIXED.unpack_from(value)
    if len(value) != 12 + 4 * gap_count + 4 * dup_count:
        raise SctpError("SACK length does not match its gap block and duplicate counts")
    gaps = struct.unpack_from(f"!{2 * gap_count}H", value, 12)
    duplicates = struct.unpack_from(f"!{dup_count}I", value, 12 + 4 * gap_count)
    return SackChunk(
        cumulative,
        a_rwnd,
        list(zip(gaps[0::2], gaps[1::2], strict=True)),
        list(duplicates),
    )


def encode_sack(sack: SackChunk) -> bytes:
    gaps = [offset for block in sack.gap_blocks for offset in block]
    value = _SACK_FIXED.pack(
        sack.cumulative_tsn_ack, sack.a_rwnd, len(sack.gap_blocks), len(sack.duplicate_tsns)
    )
    value += struct.pack(f"!{len(gaps)}H{len(sack.duplicate_tsns)}I", *gaps, *sack.duplicate_tsns)
    return encode_chunk(ChunkType.SACK, 0, value)


def decode_heartbeat_untrusted(chunk: RawChunk) -> HeartbeatChunk:
    parameters = decode_parameters_untrusted(chunk.value)
    if len(parameters) != 1 or parameters[0].type != ParameterType.HEARTBEAT_INFO:
        raise SctpError("HEARTBEAT must carry exactly one Heartbeat Info parameter")
    return HeartbeatChunk(parameters[0].value)


def encode_heartbeat(chunk_type: int, info: bytes) -> bytes:
    return encode_chunk(chunk_type, 0, encode_parameter(ParameterType.HEARTBEAT_INFO, info))


def decode_abort_untrusted(chunk: RawChunk) -> AbortChunk:
    return AbortChunk(bool(chunk.flags & FLAG_T), decode_causes_untrusted(chunk.value))


def decode_error_untrusted(chunk: RawChunk) -> ErrorChunk:
    return ErrorChunk(decode_causes_untrusted(chunk.value))


def decode_shutdown_untrusted(chunk: RawChunk) -> ShutdownChunk:
    if len(chunk.value) != 4:
        raise SctpError("SHUTDOWN chunk must be 8 bytes")
    return ShutdownChunk(_U32.unpack(chunk.value)[0])


def decode_forward_tsn_untrusted(chunk: RawChunk) -> ForwardTsnChunk:
    value = chunk.value
    if len(value) < 4 or len(value) & 3:
        raise SctpError("FORWARD TSN length must be 4 + 4n")
    count = (len(value) - 4) // 4
    fields = struct.unpack_from(f"!I{2 * count}H", value)
    return ForwardTsnChunk(fields[0], list(zip(fields[1::2], fields[2::2], strict=True)))


def encode_forward_tsn(chunk: ForwardTsnChunk) -> bytes:
    flat = [n for pair in chunk.streams for n in pair]
    value = struct.pack(f"!I{len(flat)}H", chunk.new_cumulative_tsn, *flat)
    return encode_chunk(ChunkType.FORWARD_TSN, 0, value)


def _stream_list_untrusted(value: bytes, offset: int) -> list[int]:
    if (len(value) - offset) & 1:
        raise SctpError("odd-length stream list")
    count = (len(value) - offset) // 2
    return list(struct.unpack_from(f"!{count}H", value, offset))


def decode_reconfig_untrusted(chunk: RawChunk) -> ReconfigChunk:
    parameters: list[ReconfigParameter] = []
    for parameter in decode_parameters_untrusted(chunk.value):
        value = parameter.value
        if parameter.type == ParameterType.OUTGOING_SSN_RESET:
            if len(value) < 12:
                raise SctpError("short Outgoing SSN Reset Request")
            request, response, last_tsn = struct.unpack_from("!III", value)
            streams = _stream_list_untrusted(value, 12)
            parameters.append(OutgoingResetRequest(request, response, last_tsn, streams))
        elif parameter.type == ParameterType.INCOMING_SSN_RESET:
            if len(value) < 4:
                raise SctpError("short Incoming SSN Reset Request")
            request = _U32.unpack_from(value)[0]
            parameters.append(IncomingResetRequest(request, _stream_list_untrusted(value, 4)))
        elif parameter.type == ParameterType.RECONFIG_RESPONSE:
            if len(value) == 8:
                response, result = struct.unpack("!II", value)
                parameters.append(ReconfigResponse(response, result))
            elif len(value) == 16:
                response, result, sender_next, receiver_next = struct.unpack("!IIII", value)
                parameters.append(ReconfigResponse(response, result, sender_next, receiver_next))
            else:
                raise SctpError("Re-configuration Response must be 12 or 20 bytes")
        else:
            parameters.append(parameter)
    if not parameters:
        raise SctpError("empty RE-CONFIG chunk")
    return ReconfigChunk(parameters)


def encode_reconfig(parameters: Iterable[ReconfigParameter]) -> bytes:
    encoded = []
    for parameter in parameters:
        if isinstance(parameter, OutgoingResetRequest):
            value = struct.pack(
                f"!III{len(parameter.stream_ids)}H",
                parameter.request_sequence,
                parameter.response_sequence,
                parameter.last_assigned_tsn,
                *parameter.stream_ids,
            )
            encoded.append(encode_parameter(ParameterType.OUTGOING_SSN_RESET, value))
        elif isinstance(parameter, IncomingResetRequest):
            value = struct.pack(
                f"!I{len(parameter.stream_ids)}H", parameter.request_sequence, *parameter.stream_ids
            )
            encoded.append(encode_parameter(ParameterType.INCOMING_SSN_RESET, value))
        elif isinstance(parameter, ReconfigResponse):
            if parameter.sender_next_tsn is None or parameter.receiver_next_tsn is None:
                value = struct.pack("!II", parameter.response_sequence, parameter.result)
            else:
                value = struct.pack(
                    "!IIII",
                    parameter.response_sequence,
                    parameter.result,
                    parameter.sender_next_tsn,
                    parameter.receiver_next_tsn,
                )
            encoded.append(encode_parameter(ParameterType.RECONFIG_RESPONSE, value))
        else:
            encoded.append(encode_parameter(parameter.type, parameter.value))
    return encode_chunk(ChunkType.RECONFIG, 0, b"".join(encoded))


def decode_chunk_body_untrusted(chunk: RawChunk) -> object:
    """Decode any known control chunk (used by the fuzz tests and tooling)."""
    decoder = _DECODERS.get(chunk.type)
    if decoder is None:
        return chunk
    return decoder(chunk)


_DECODERS: dict[int, Callable[[RawChunk], object]] = {
    ChunkType.DATA: decode_data_untrusted,
    ChunkType.INIT: decode_init_untrusted,
    ChunkType.INIT_ACK: decode_init_untrusted,
    ChunkType.SACK: decode_sack_untrusted,
    ChunkType.HEARTBEAT: decode_heartbeat_untrusted,
    ChunkType.HEARTBEAT_ACK: decode_heartbeat_untrusted,
    ChunkType.ABORT: decode_abort_untrusted,
    ChunkType.ERROR: decode_error_untrusted,
    ChunkType.SHUTDOWN: decode_shutdown_untrusted,
    ChunkType.FORWARD_TSN: decode_forward_tsn_untrusted,
    ChunkType.RECONFIG: decode_reconfig_untrusted,
}
