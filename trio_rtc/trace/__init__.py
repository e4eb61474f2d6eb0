"""Structured trace of a peer connection: typed events, one per state change and protocol
decision, off by default. See ``docs/tracing.md``.

``RTCPeerConnection(config, trace="pc.jsonl")``, ``with trio_rtc.trace.tracing("traces/"):`` or
``TRIO_RTC_TRACE=traces/`` turn it on; ``async for event in pc.trace():`` consumes it live.
"""

from __future__ import annotations

from .events import EVENT_NAMES, LAYERS, SCHEMA_VERSION, CoreTracer, TraceEvent, validate_record
from .qlog import qlog_document
from .tracer import ENV_VAR, TraceOption, Tracer, TraceSubscription, make_tracer, tracing
from .writers import JsonLinesWriter, MemoryWriter, QlogWriter, TraceWriter, writer_for_path

__all__ = [
    "ENV_VAR",
    "EVENT_NAMES",
    "LAYERS",
    "SCHEMA_VERSION",
    "CoreTracer",
    "JsonLinesWriter",
    "MemoryWriter",
    "QlogWriter",
    "TraceEvent",
    "TraceOption",
    "TraceSubscription",
    "TraceWriter",
    "Tracer",
    "make_tracer",
    "qlog_document",
    "tracing",
    "validate_record",
    "writer_for_path",
]
