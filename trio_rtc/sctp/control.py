"""Handlers for every control chunk (everything but DATA), one function per chunk type.

Split from ``association.py`` to keep that file about the state machine's shape; the functions
work on the association's private state, which is why they take it as their first argument.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from .chunks import (
    CauseCode,
    ChunkType,
    ErrorCause,
    Parameter,
    ParameterType,
    RawChunk,
    SackChunk,
    SctpError,
    decode_abort_untrusted,
    decode_error_untrusted,
    decode_forward_tsn_untrusted,
    decode_heartbeat_untrusted,
    decode_init_untrusted,
    decode_reconfig_untrusted,
    decode_sack_untrusted,
    decode_shutdown_untrusted,
    encode_causes,
    encode_chunk,
    encode_heartbeat,
    encode_init,
    encode_reconfig,
)
from .events import AssociationAborted, AssociationClosed, StreamsReset
from .handshake import StateCookie, encode_unrecognized, peer_capabilities
from .reconfig import answer_requests
from .states import DATA_STATES, HEARTBEAT_INFO, AssociationState

if TYPE_CHECKING:
    from .association import SctpAssociation

__all__ = ["HANDLERS"]


def on_init(assoc: SctpAssociation, chunk: RawChunk, now: float) -> None:
    init = decode_init_untrusted(chunk)
    if init.initiate_tag == 0 or init.outbound_streams == 0 or init.inbound_streams == 0:
        raise SctpError("INIT with a zero tag or zero streams")
    # In every state we answer with our one tag (§5.2.1 for collisions). For a live
    # association (§5.2.2) that means we do not support restarts: over DTLS a restart is a
    # new DTLS session, hence a new association, and only a COOKIE ECHO matching both tags
    # (case D) is accepted later.
    capabilities, unrecognized = peer_capabilities(init)
    cookie = StateCookie(
        assoc.local_tag,
        init.initiate_tag,
        init.initial_tsn,
        init.a_rwnd,
        init.outbound_streams,
        init.inbound_streams,
        capabilities,
        now,
    )
    ack = assoc._init_chunk()
    ack.parameters.insert(0, Parameter(ParameterType.STATE_COOKIE, cookie.encode(assoc._secret)))
    ack.parameters.extend(encode_unrecognized(unrecognized))
    assoc._control.append((init.initiate_tag, encode_init(ChunkType.INIT_ACK, ack)))


def on_init_ack(assoc: SctpAssociation, chunk: RawChunk, now: float) -> None:
    if assoc.state is not AssociationState.COOKIE_WAIT:
        return  # §5.2.3: an unexpected INIT ACK is discarded.
    init = decode_init_untrusted(chunk)
    cookie = init.find(ParameterType.STATE_COOKIE)
    if cookie is None or init.initiate_tag == 0:
        raise SctpError("INIT ACK without a state cookie or with a zero tag")
    capabilities, _ = peer_capabilities(init)
    assoc._adopt_peer(
        init.initiate_tag,
        init.initial_tsn,
        init.a_rwnd,
        init.outbound_streams,
        init.inbound_streams,
        capabilities,
    )
    assoc._t1_chunk = encode_chunk(ChunkType.COOKIE_ECHO, 0, cookie.value)
    assoc._control.append((assoc.peer_tag, assoc._t1_chunk))
    assoc._t1_count = 0
    assoc._t1_rto = assoc.rto.rto_initial
    assoc._t1_at = now + assoc._t1_rto
    assoc.state = AssociationState.COOKIE_ECHOED


def on_cookie_echo(assoc: SctpAssociation, chunk: RawChunk, now: float) -> None:
    cookie = StateCookie.decode_untrusted(chunk.value, assoc._secret)
    if cookie.local_tag != assoc.local_tag:
        raise SctpError("state cookie for another association")
    if assoc.state in DATA_STATES or assoc.state is AssociationState.SHUTDOWN_ACK_SENT:
        # §5.2.4 case D: our COOKIE ACK was lost; say it again. Anything else would be a
        # restart, which WebRTC never does over one DTLS session.
        if cookie.peer_tag == assoc.peer_tag:
            assoc._control.append((assoc.peer_tag, encode_chunk(ChunkType.COOKIE_ACK)))
        return
    if now - cookie.created_at > assoc.cookie_lifetime:
        cause = ErrorCause(CauseCode.STALE_COOKIE, struct.pack("!I", 0))
        assoc._control.append(
            (cookie.peer_tag, encode_chunk(ChunkType.ERROR, 0, encode_causes([cause])))
        )
        return
    # CLOSED (we were passive), or COOKIE-WAIT / COOKIE-ECHOED during an INIT collision
    # (§5.2.4 cases B and D): the cookie carries the peer's parameters.
    if assoc.receiver is None:
        assoc._adopt_peer(
            cookie.peer_tag,
            cookie.peer_initial_tsn,
            cookie.peer_a_rwnd,
            cookie.peer_outbound_streams,
            cookie.peer_inbound_streams,
            cookie.capabilities,
        )
    elif cookie.peer_tag != assoc.peer_tag:
        return
    assoc._control.append((assoc.peer_tag, encode_chunk(ChunkType.COOKIE_ACK)))
    assoc._establish()


def on_cookie_ack(assoc: SctpAssociation, chunk: RawChunk, now: float) -> None:
    if assoc.state is AssociationState.COOKIE_ECHOED:
        assoc._establish()


def on_sack(assoc: SctpAssociation, chunk: RawChunk, now: float) -> None:
    sack = decode_sack_untrusted(chunk)
    if assoc.state not in DATA_STATES and assoc.state is not AssociationState.SHUTDOWN_ACK_SENT:
        return
    sender = assoc.sender
    if sender.on_sack(sack, now):
        assoc._error_count = 0
    assoc._after_ack()


def on_heartbeat(assoc: SctpAssociation, chunk: RawChunk, now: float) -> None:
    heartbeat = decode_heartbeat_untrusted(chunk)
    if assoc.peer_tag:
        assoc._control.append(
            (assoc.peer_tag, encode_heartbeat(ChunkType.HEARTBEAT_ACK, heartbeat.info))
        )


def on_heartbeat_ack(assoc: SctpAssociation, chunk: RawChunk, now: float) -> None:
    heartbeat = decode_heartbeat_untrusted(chunk)
    if len(heartbeat.info) != HEARTBEAT_INFO.size:
        return
    nonce, sent_at = HEARTBEAT_INFO.unpack(heartbeat.info)
    if assoc._heartbeat_outstanding and nonce == assoc._heartbeat_nonce:
        assoc._heartbeat_outstanding = False
        assoc._error_count = 0
        assoc.rto.measure(now - sent_at)


def on_abort(assoc: SctpAssociation, chunk: RawChunk, now: float) -> None:
    """The peer aborted (RFC 9260 §9.1). The event says whether every cause was User-Initiated
    Abort (cause 12, §3.3.10.12: the peer's application closed without a graceful shutdown)
    and its reason names the causes."""
    abort = decode_abort_untrusted(chunk)
    causes = abort.causes
    user_initiated = bool(causes) and all(
        cause.code == CauseCode.USER_INITIATED_ABORT for cause in causes
    )
    reason = "; ".join(_describe_cause(cause) for cause in causes)
    assoc._control.clear()
    assoc._terminate(
        AssociationAborted(reason or "aborted by peer", by_peer=True, user_initiated=user_initiated)
    )


def _describe_cause(cause: ErrorCause) -> str:
    """One error cause of a peer's ABORT for the event's reason (its text cut at 64 bytes)."""
    if cause.code == CauseCode.USER_INITIATED_ABORT:
        name = "User-Initiated Abort"
    else:
        name = f"cause {cause.code}"
    text = cause.value[:64].decode("utf-8", "replace")
    return f"{name}: {text}" if text else name


def on_error(assoc: SctpAssociation, chunk: RawChunk, now: float) -> None:
    decode_error_untrusted(chunk)
    assoc.stats.errors_received += 1


def on_shutdown(assoc: SctpAssociation, chunk: RawChunk, now: float) -> None:
    shutdown = decode_shutdown_untrusted(chunk)
    if assoc.state not in DATA_STATES:
        return
    # The SHUTDOWN's cumulative TSN acknowledges like a SACK without gaps (§9.2).
    assoc.sender.on_sack(
        SackChunk(shutdown.cumulative_tsn_ack, assoc.sender.peer_rwnd + assoc.sender.flight_size),
        now,
    )
    if assoc.state is AssociationState.SHUTDOWN_SENT:
        # Both sides shut down at once: answer with SHUTDOWN ACK (§9.2).
        assoc.state = AssociationState.SHUTDOWN_ACK_SENT
        assoc._start_t2()
        return
    if assoc.state is not AssociationState.SHUTDOWN_RECEIVED:
        assoc.state = AssociationState.SHUTDOWN_RECEIVED
    assoc._after_ack()


def on_shutdown_ack(assoc: SctpAssociation, chunk: RawChunk, now: float) -> None:
    if assoc.state in (AssociationState.SHUTDOWN_SENT, AssociationState.SHUTDOWN_ACK_SENT):
        assoc._control.append((assoc.peer_tag, encode_chunk(ChunkType.SHUTDOWN_COMPLETE)))
        assoc._terminate(AssociationClosed())


def on_shutdown_complete(assoc: SctpAssociation, chunk: RawChunk, now: float) -> None:
    if assoc.state is AssociationState.SHUTDOWN_ACK_SENT:
        assoc._terminate(AssociationClosed())


def on_forward_tsn(assoc: SctpAssociation, chunk: RawChunk, now: float) -> None:
    forward = decode_forward_tsn_untrusted(chunk)
    if assoc.receiver is None or assoc.state not in DATA_STATES:
        return
    assoc.receiver.forward_tsn(forward.new_cumulative_tsn, forward.streams)
    # RFC 3758 §3.6: answer a FORWARD TSN with a SACK.
    assoc._sack_needed = True


def on_reconfig(assoc: SctpAssociation, chunk: RawChunk, now: float) -> None:
    reconfig = decode_reconfig_untrusted(chunk)
    if assoc.receiver is None or assoc.state not in DATA_STATES:
        return
    responses, performed = answer_requests(assoc.reconfig, assoc.receiver, reconfig.parameters)
    if responses:
        assoc._control.append((assoc.peer_tag, encode_reconfig(responses)))
    if performed:
        # RFC 6525 §5.1.2: sequence numbers restart only now, and messages queued meanwhile
        # on these streams (held back so that none arrives before the request) go out.
        assoc.sender.reset_stream_sequences(performed)
        assoc._release_paused(performed)
        assoc._events.append(StreamsReset(tuple(performed), incoming=False))
    if assoc.reconfig.refused:
        refused = assoc.reconfig.refused
        assoc.reconfig.refused = []
        assoc._release_paused(refused)
    if assoc.reconfig.pending and assoc.reconfig.outstanding is None:
        assoc._sack_needed = assoc._sack_needed  # the next datagrams_to_send sends it


HANDLERS: dict[int, Callable[[SctpAssociation, RawChunk, float], None]] = {
    ChunkType.INIT_ACK: on_init_ack,
    ChunkType.SACK: on_sack,
    ChunkType.HEARTBEAT: on_heartbeat,
    ChunkType.HEARTBEAT_ACK: on_heartbeat_ack,
    ChunkType.ABORT: on_abort,
    ChunkType.SHUTDOWN: on_shutdown,
    ChunkType.SHUTDOWN_ACK: on_shutdown_ack,
    ChunkType.ERROR: on_error,
    ChunkType.COOKIE_ECHO: on_cookie_echo,
    ChunkType.COOKIE_ACK: on_cookie_ack,
    ChunkType.SHUTDOWN_COMPLETE: on_shutdown_complete,
    ChunkType.FORWARD_TSN: on_forward_tsn,
    ChunkType.RECONFIG: on_reconfig,
}
