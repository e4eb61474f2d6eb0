"""RE-CONFIG bookkeeping (RFC 6525): our outgoing SSN reset requests and the sequence numbers
of the peer's requests. Stream ids are queued while a request is in flight, because RFC 6525
§5.1.1 allows one outstanding request at a time."""

from __future__ import annotations

from .chunks import (
    IncomingResetRequest,
    OutgoingResetRequest,
    ParameterType,
    ReconfigParameter,
    ReconfigResponse,
    ReconfigResult,
)
from .reassembly import Receiver

__all__ = ["ReconfigState", "answer_requests"]

_MASK32 = 0xFFFFFFFF
# A request and its response fit one packet; stream ids beyond this go in the next request.
_MAX_STREAMS_PER_REQUEST = 256


class ReconfigState:
    def __init__(self, initial_tsn: int) -> None:
        # §5.1.1: the first request sequence number is the initial TSN.
        self.next_request_sequence = initial_tsn & _MASK32
        self.pending: list[int] = []
        self.outstanding: OutgoingResetRequest | None = None
        self.timer_at: float | None = None
        self._retransmit_due = False
        # Sequence numbers of the peer's requests (set when the association is established).
        self.peer_expected_sequence = 0
        self.last_responses: dict[int, ReconfigResponse] = {}
        # Stream ids of requests the peer refused (their paused messages go out unreset).
        self.refused: list[int] = []

    def queue_outgoing_reset(self, stream_ids: list[int]) -> None:
        # A stream in the outstanding request is queued again: that request covers only the
        # data sent before it, and the stream may carry a new channel since (its id reused).
        queued = set(self.pending)
        for stream_id in stream_ids:
            if stream_id not in queued:
                queued.add(stream_id)
                self.pending.append(stream_id)

    def resetting(self) -> set[int]:
        """Streams with a reset requested and not yet answered: their new messages wait."""
        streams = set(self.pending)
        if self.outstanding is not None:
            streams.update(self.outstanding.stream_ids)
        return streams

    def wants_to_send(self) -> bool:
        return (self.outstanding is None and bool(self.pending)) or self._retransmit_due

    def take_request(self, last_assigned_tsn: int) -> tuple[OutgoingResetRequest, list[int]]:
        """The request to send now, and the stream ids whose SSNs must be reset (new ones)."""
        self._retransmit_due = False
        if self.outstanding is not None:
            return self.outstanding, []
        streams = self.pending[:_MAX_STREAMS_PER_REQUEST]
        del self.pending[:_MAX_STREAMS_PER_REQUEST]
        self.outstanding = OutgoingResetRequest(
            self.next_request_sequence,
            (self.peer_expected_sequence - 1) & _MASK32,
            last_assigned_tsn & _MASK32,
            streams,
        )
        return self.outstanding, streams

    def on_timeout(self) -> None:
        self.timer_at = None
        if self.outstanding is not None:
            self._retransmit_due = True

    def on_response(self, response: ReconfigResponse) -> tuple[bool, list[int]]:
        """Returns (performed, stream ids) once the request finished, else (False, []).
        IN_PROGRESS keeps the request alive; a refusal finishes it unperformed."""
        request = self.outstanding
        if request is None or response.response_sequence != request.request_sequence:
            return False, []
        if response.result == ReconfigResult.IN_PROGRESS:
            return False, []
        self.outstanding = None
        self.timer_at = None
        self._retransmit_due = False
        self.next_request_sequence = (self.next_request_sequence + 1) & _MASK32
        if response.result in (
            ReconfigResult.SUCCESS_PERFORMED,
            ReconfigResult.SUCCESS_NOTHING_TO_DO,
        ):
            return True, request.stream_ids
        self.refused.extend(request.stream_ids)
        return False, []

    def classify_request(self, sequence: int) -> str:
        """'new', 'retransmission' (answer again) or 'bad' (RFC 6525 §5.2.1)."""
        if sequence == self.peer_expected_sequence:
            return "new"
        if sequence == (self.peer_expected_sequence - 1) & _MASK32:
            return "retransmission"
        return "bad"

    def record_response(self, response: ReconfigResponse) -> None:
        self.last_responses = {response.response_sequence: response}
        if response.response_sequence == self.peer_expected_sequence:
            self.peer_expected_sequence = (self.peer_expected_sequence + 1) & _MASK32


def answer_requests(
    state: ReconfigState,
    receiver: Receiver,
    parameters: list[ReconfigParameter],
) -> tuple[list[ReconfigResponse], list[int]]:
    """Handle a RE-CONFIG chunk's parameters (RFC 6525 §5.2).

    Returns the responses to send and the stream ids of our own request that the peer performed.
    """
    responses: list[ReconfigResponse] = []
    performed: list[int] = []
    for parameter in parameters:
        if isinstance(parameter, ReconfigResponse):
            done, stream_ids = state.on_response(parameter)
            if done:
                performed.extend(stream_ids)
            continue
        if isinstance(parameter, OutgoingResetRequest | IncomingResetRequest):
            sequence = parameter.request_sequence
        elif parameter.type in _DENIED_REQUESTS and len(parameter.value) >= 4:
            sequence = int.from_bytes(parameter.value[:4], "big")
        else:
            continue
        kind = state.classify_request(sequence)
        if kind == "bad":
            responses.append(ReconfigResponse(sequence, ReconfigResult.ERROR_BAD_SEQUENCE_NUMBER))
            continue
        if kind == "retransmission":
            previous = state.last_responses.get(sequence)
            result = previous.result if previous is not None else ReconfigResult.DENIED
            if result == ReconfigResult.IN_PROGRESS and sequence in receiver.performed_resets:
                result = ReconfigResult.SUCCESS_PERFORMED
            response = ReconfigResponse(sequence, result)
            state.last_responses = {sequence: response}
            responses.append(response)
            continue
        if isinstance(parameter, OutgoingResetRequest):
            done = receiver.request_reset(
                sequence, parameter.last_assigned_tsn, parameter.stream_ids
            )
            result = ReconfigResult.SUCCESS_PERFORMED if done else ReconfigResult.IN_PROGRESS
        else:
            # Incoming SSN reset, SSN/TSN reset and adding streams are not used by WebRTC data
            # channels; "Denied" is a valid answer (RFC 6525 §4.4).
            result = ReconfigResult.DENIED
        response = ReconfigResponse(sequence, result)
        state.record_response(response)
        responses.append(response)
    return responses, performed


_DENIED_REQUESTS = frozenset(
    {
        ParameterType.SSN_TSN_RESET,
        ParameterType.ADD_OUTGOING_STREAMS,
        ParameterType.ADD_INCOMING_STREAMS,
    }
)
