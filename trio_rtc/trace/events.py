"""The trace event and its JSON-lines schema (version :data:`SCHEMA_VERSION`), without trio.

A trace is a stream of :class:`TraceEvent`: one per state change or protocol decision of a peer
connection's layers. Cores report ``(name, data)`` through a plain callable (their ``trace``
attribute, ``None`` when tracing is off); the peer connection's :class:`~trio_rtc.trace.Tracer`
adds the time, the pc id and the layer. ``docs/tracing.md`` documents every name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = [
    "EVENT_NAMES",
    "LAYERS",
    "SCHEMA_VERSION",
    "CoreTracer",
    "TraceEvent",
    "validate_record",
]

#: Bumped when a field changes meaning or disappears; new event names or new ``data`` keys do
#: not bump it (readers ignore what they do not know).
SCHEMA_VERSION = 1

#: What a core calls: ``trace(name, data)``. Set by the driver; ``None`` means tracing is off.
CoreTracer = Callable[[str, dict[str, Any]], None]

#: Every event name, per layer, with what its ``data`` holds (the documented schema).
EVENT_NAMES: dict[str, dict[str, str]] = {
    "pc": {
        "trace_started": "schema, pc: the first event of every trace",
        "connection_state": "state, previous",
        "ice_connection_state": "state, previous",
        "ice_gathering_state": "state, previous",
        "signaling_state": "state, previous",
        "trace_stopped": "dropped: events lost by slow live consumers",
    },
    "ice": {
        "state": "state, previous: the agent's RTCIceTransportState",
        "candidate_gathered": "type, protocol, address, port, priority",
        "pair_state": "pair, state: a check list pair went succeeded or failed",
        "nomination_started": "pair: the controlling agent sends USE-CANDIDATE",
        "pair_selected": "pair, rtt: the nominated pair now carries data",
        "consent_expired": "pair: RFC 7675 consent lost, the pair may no longer send",
        "role_switched": "controlling: after a 487 role conflict",
    },
    "dtls": {
        "state": "state, previous",
        "flight_sent": "messages (handshake message names), epochs, timeout (s), retransmissions",
        "flight_retransmitted": "as flight_sent; timeout null for a resend the peer's repeat caused",
        "message_received": "type (handshake message name), seq",
        "alert_sent": "level, description",
        "alert_received": "level, description",
    },
    "sctp": {
        "state": "state, previous: the association state (RFC 9260 names)",
        "metrics": "cwnd, ssthresh, rto, srtt, flight_size, in_fast_recovery, bytes_acked",
        "retransmitted": "chunks, fast_chunks: totals of retransmitted DATA chunks so far",
        "t3_expired": "rto: the retransmission timer fired",
        "sack_gap": "cumulative_tsn, gaps ([start, end] offsets), duplicates: a SACK we send",
        "forward_tsn_sent": "new_cumulative_tsn (RFC 3758)",
        "forward_tsn_received": "length",
        "stream_reset": "stream_ids, incoming (RFC 6525)",
        "abandoned": "messages: total of messages abandoned (partial reliability)",
    },
    "dcep": {
        "open_sent": "stream_id, label, protocol",
        "open_received": "stream_id, label, protocol",
        "ack_received": "stream_id",
    },
    "datachannel": {
        "state": "label, id, state",
    },
    "rtp": {
        "nack_sent": "ssrc, count: sequence numbers asked for again",
        "pli_sent": "ssrc: a key frame request (Picture Loss Indication)",
        "fir_sent": "ssrc: a key frame request (Full Intra Request)",
        "estimate": "bitrate: the send-side bandwidth estimate changed (bits/s)",
    },
}

LAYERS: tuple[str, ...] = tuple(EVENT_NAMES)


@attrs.frozen(slots=True)
class TraceEvent:
    """One event: ``time`` in trio-clock seconds, the pc id, the layer, the name, its data."""

    time: float
    pc: str
    layer: str
    name: str
    data: Mapping[str, Any] = attrs.field(factory=dict)

    def to_record(self) -> dict[str, Any]:
        """The JSON-lines record (schema :data:`SCHEMA_VERSION`)."""
        return {
            "v": SCHEMA_VERSION,
            "time": self.time,
            "pc": self.pc,
            "layer": self.layer,
            "name": self.name,
            "data": dict(self.data),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TraceEvent:
        validate_record(record)
        return cls(
            float(record["time"]),
            record["pc"],
            record["layer"],
            record["name"],
            dict(record["data"]),
        )


def validate_record(record: object) -> None:
    """Check one JSON-lines record against the documented schema; ValueError says what is
    wrong. Unknown names of a known layer are accepted (a newer writer may add names)."""
    if not isinstance(record, Mapping):
        raise ValueError(f"a trace record is a JSON object, not {type(record).__name__}")
    expected: dict[str, type | tuple[type, ...]] = {
        "v": int,
        "time": (int, float),
        "pc": str,
        "layer": str,
        "name": str,
        "data": Mapping,
    }
    for key, kind in expected.items():
        if key not in record:
            raise ValueError(f"trace record without {key!r}: {record!r}")
        if not isinstance(record[key], kind) or isinstance(record[key], bool):
            raise ValueError(f"trace record field {key!r} has the wrong type: {record[key]!r}")
    if record["v"] > SCHEMA_VERSION:
        raise ValueError(f"trace schema version {record['v']} is newer than {SCHEMA_VERSION}")
    if record["layer"] not in EVENT_NAMES:
        raise ValueError(f"unknown trace layer {record['layer']!r}; expected one of {LAYERS}")
