"""Trace events as a qlog document (qlog 0.3 JSON, the format qvis and other qlog viewers open).

Where qlog's main schema has an event for the same thing it is used with qlog's field names
(``recovery:metrics_updated`` for SCTP's cwnd/ssthresh/RTT, ``recovery:loss_timer_updated`` for
T3-rtx, ``connectivity:connection_state_updated`` for the peer connection's state); every other
event keeps its own name as ``<layer>:<name>`` (``ice:pair_selected``, ``dtls:flight_sent``,
``sctp:forward_tsn_sent`` ...) with its data unchanged. Times are milliseconds relative to the
trace's ``common_fields.reference_time`` (the first event, in trio-clock milliseconds).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .events import SCHEMA_VERSION, TraceEvent

__all__ = ["QLOG_VERSION", "qlog_document", "qlog_event"]

QLOG_VERSION = "0.3"


def _ms(seconds: object) -> object:
    return seconds * 1000.0 if isinstance(seconds, int | float) else seconds


def qlog_event(event: TraceEvent, reference: float) -> dict[str, Any]:
    """One qlog event: ``time`` (ms since ``reference``), ``name`` (``category:type``), data."""
    data: dict[str, Any] = dict(event.data)
    name = f"{event.layer}:{event.name}"
    if event.layer == "sctp" and event.name == "metrics":
        name = "recovery:metrics_updated"
        data = {
            "congestion_window": data.get("cwnd"),
            "ssthresh": data.get("ssthresh"),
            "smoothed_rtt": _ms(data.get("srtt")),
            "bytes_in_flight": data.get("flight_size"),
            **{k: v for k, v in data.items() if k not in ("cwnd", "ssthresh", "flight_size")},
        }
        data["rto"] = _ms(data.get("rto"))
        data.pop("srtt", None)
    elif event.layer == "sctp" and event.name == "t3_expired":
        name = "recovery:loss_timer_updated"
        data = {"timer_type": "t3-rtx", "event_type": "expired", **data}
    elif event.layer == "pc" and event.name == "connection_state":
        name = "connectivity:connection_state_updated"
        data = {"old": data.get("previous"), "new": data.get("state")}
    return {"time": (event.time - reference) * 1000.0, "name": name, "data": data}


def qlog_document(events: Iterable[TraceEvent], *, title: str = "trio_rtc trace") -> dict[str, Any]:
    """A qlog 0.3 JSON document with one trace per peer connection in ``events``."""
    by_pc: dict[str, list[TraceEvent]] = {}
    for event in events:
        by_pc.setdefault(event.pc, []).append(event)
    traces = []
    for pc, pc_events in by_pc.items():
        reference = pc_events[0].time
        traces.append(
            {
                "title": f"trio_rtc {pc}",
                "vantage_point": {"type": "unknown", "name": f"trio_rtc {pc}"},
                "common_fields": {
                    "group_id": pc,
                    "protocol_type": ["WEBRTC"],
                    "time_format": "relative",
                    "reference_time": reference * 1000.0,
                },
                "events": [qlog_event(event, reference) for event in pc_events],
            }
        )
    return {
        "qlog_version": QLOG_VERSION,
        "qlog_format": "JSON",
        "title": title,
        "description": f"trio_rtc trace, event schema {SCHEMA_VERSION} (docs/tracing.md)",
        "traces": traces,
    }
