"""The structured trace (docs/tracing.md): events of two connected pcs, the JSON-lines schema,
the qlog document, live consumers, the env var, and ``trio-rtc trace summarize``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from pc_helpers import OPTIONS, certificate, connect

from trio_rtc.peerconnection import RTCPeerConnection
from trio_rtc.trace import (
    EVENT_NAMES,
    MemoryWriter,
    QlogWriter,
    TraceEvent,
    Tracer,
    tracing,
    validate_record,
)
from trio_rtc.trace.summarize import load_events, plot_series, summarize

ROOT = Path(__file__).resolve().parent.parent


def traced_pc(index: int, trace: Any = None) -> RTCPeerConnection:
    return RTCPeerConnection(
        {"certificates": [certificate(index)]}, ice_options=OPTIONS, trace=trace
    )


async def exchange(a: RTCPeerConnection, b: RTCPeerConnection) -> None:
    """Connect, open a channel, echo one message, close the channel."""
    async with trio.open_nursery() as nursery:
        channel = a.createDataChannel("chat")
        await connect(a, b, nursery)
        await channel.wait_open()
        received = trio.Event()
        remote: list[Any] = []

        def on_channel(event: Any) -> None:
            remote.append(event.channel)
            event.channel.addEventListener("message", lambda _e: received.set())

        b.addEventListener("datachannel", on_channel)
        channel.send(b"x" * 5000)
        with trio.fail_after(10):
            await received.wait()
        channel.close()
        with trio.fail_after(10):
            await channel.wait_for(readyState="closed")
        nursery.cancel_scope.cancel()


def names(events: list[TraceEvent], layer: str) -> list[str]:
    return [e.name for e in events if e.layer == layer]


def first(events: list[TraceEvent], layer: str, name: str, **data: Any) -> int:
    for index, event in enumerate(events):
        if event.layer == layer and event.name == name:
            if all(event.data.get(k) == v for k, v in data.items()):
                return index
    raise AssertionError(f"no {layer}:{name} {data} in {[(e.layer, e.name) for e in events]}")


async def test_two_pcs_trace_every_layer_in_order(tmp_path: Path) -> None:
    memory_a, memory_b = MemoryWriter(), MemoryWriter()
    path = tmp_path / "a.jsonl"
    qlog = tmp_path / "a.qlog"
    async with (
        traced_pc(0, [memory_a, QlogWriter(qlog)]) as a,
        traced_pc(1, memory_b) as b,
    ):
        assert a.tracer is not None and b.tracer is not None
        a.tracer.writers.append(_jsonl(path))
        await exchange(a, b)
    for events in (memory_a.events, memory_b.events):
        assert events[0].name == "trace_started"
        assert events[-1].name == "trace_stopped"
        times = [e.time for e in events]
        assert times == sorted(times)
        assert len({e.pc for e in events}) == 1
        # ICE: a candidate, checking, a valid pair, connected; then DTLS, SCTP, DCEP.
        gathered = first(events, "ice", "candidate_gathered", type="host")
        checking = first(events, "ice", "state", state="checking")
        succeeded = first(events, "ice", "pair_state", state="succeeded")
        ice_connected = first(events, "ice", "state", state="connected")
        assert gathered < ice_connected and checking < ice_connected
        assert succeeded <= ice_connected
        dtls_connecting = first(events, "dtls", "state", state="connecting")
        flight = first(events, "dtls", "flight_sent")
        dtls_connected = first(events, "dtls", "state", state="connected")
        assert ice_connected < dtls_connecting < flight < dtls_connected
        established = first(events, "sctp", "state", state="established")
        assert dtls_connected < established
        assert first(events, "sctp", "metrics") > 0
        assert first(events, "pc", "connection_state", state="connected") > dtls_connected
        assert first(events, "pc", "connection_state", state="closed") > established
        assert "stream_reset" in names(events, "sctp")
        assert first(events, "datachannel", "state", state="open") > established
        assert first(events, "datachannel", "state", state="closed") > first(
            events, "datachannel", "state", state="open"
        )
        for event in events:
            assert event.name in EVENT_NAMES[event.layer], (event.layer, event.name)
    assert "open_sent" in names(memory_a.events, "dcep")
    assert "ack_received" in names(memory_a.events, "dcep")
    assert "open_received" in names(memory_b.events, "dcep")
    # Both sides agree on who nominated: the controlling side started a nomination.
    nominations = names(memory_a.events, "ice") + names(memory_b.events, "ice")
    assert "nomination_started" in nominations and "pair_selected" in nominations

    # JSON lines: every line validates against the documented schema, in the writer's order.
    lines = path.read_text().splitlines()
    assert lines
    records = [json.loads(line) for line in lines]
    for record in records:
        validate_record(record)
        assert record["v"] == 1
    assert [r["name"] for r in records][-1] == "trace_stopped"

    # qlog: one JSON document with qlog's top-level fields and one trace for this pc.
    document = json.loads(qlog.read_text())
    assert document["qlog_version"] == "0.3"
    assert document["qlog_format"] == "JSON"
    assert isinstance(document["title"], str)
    (trace,) = document["traces"]
    assert trace["vantage_point"]["type"] in ("client", "server", "network", "unknown")
    assert trace["common_fields"]["time_format"] == "relative"
    qlog_names = {e["name"] for e in trace["events"]}
    assert "recovery:metrics_updated" in qlog_names
    assert "connectivity:connection_state_updated" in qlog_names
    assert "ice:pair_selected" in qlog_names or "ice:pair_state" in qlog_names
    for event in trace["events"]:
        assert isinstance(event["time"], float) and event["time"] >= 0
        assert ":" in event["name"] and isinstance(event["data"], dict)


async def run(argv: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    return await trio.to_thread.run_sync(partial(subprocess.run, argv, **options))


def _jsonl(path: Path) -> Any:
    from trio_rtc.trace import JsonLinesWriter

    return JsonLinesWriter(path)


async def test_live_consumer_sees_events() -> None:
    async with traced_pc(0) as a, traced_pc(1) as b:
        assert a.tracer is None  # off by default
        seen: list[TraceEvent] = []

        async def consume() -> None:
            async for event in a.trace():
                seen.append(event)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await trio.lowlevel.checkpoint()
            await exchange(a, b)
            await a.close()
    assert seen[-1].name == "trace_stopped"
    layers = {e.layer for e in seen}
    assert {"ice", "dtls", "sctp", "dcep", "datachannel", "pc"} <= layers


async def test_slow_consumer_drops_and_never_stalls() -> None:
    async with traced_pc(0) as a, traced_pc(1) as b:
        subscription = a.trace(max_buffer=4)  # never read: the buffer fills at once
        with trio.fail_after(20):
            await exchange(a, b)
        assert subscription.dropped > 0
        assert a.tracer is not None and a.tracer.dropped == subscription.dropped
        assert a.connectionState == "connected"
        subscription.close()


async def test_trace_off_installs_no_tracer() -> None:
    async with traced_pc(0) as a, traced_pc(1) as b:
        await exchange(a, b)
        for pc in (a, b):
            assert pc.tracer is None
            assert pc.ice_transport is not None and pc.ice_transport.agent.trace is None
            assert pc.dtls_transport is not None and pc.dtls_transport.core.trace is None
            assert pc.sctp is not None and pc.sctp.association.trace is None
            assert pc.sctp.trace_channels is None


async def test_tracing_block_and_environment(tmp_path: Path, monkeypatch: Any) -> None:
    directory = tmp_path / "traces"
    with tracing(str(directory) + os.sep):
        a, b = traced_pc(0), traced_pc(1)
    async with a, b:
        await exchange(a, b)
    files = sorted(directory.glob("*.jsonl"))
    assert len(files) == 2
    monkeypatch.setenv("TRIO_RTC_TRACE", str(tmp_path / "all.jsonl"))
    c, d = traced_pc(0), traced_pc(1)
    async with c, d:
        await exchange(c, d)
    records = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    assert len({r["pc"] for r in records}) == 2
    assert [r["name"] for r in records].count("trace_stopped") == 2


def test_tracer_outside_trio_and_schema_errors() -> None:
    tracer = Tracer([MemoryWriter()])
    tracer.emit("sctp", "state", {"state": "ESTABLISHED"})
    tracer.close()
    with pytest.raises(ValueError, match="layer"):
        validate_record({"v": 1, "time": 0.0, "pc": "p", "layer": "nope", "name": "x", "data": {}})
    with pytest.raises(ValueError, match="time"):
        validate_record({"v": 1, "pc": "p", "layer": "pc", "name": "x", "data": {}})


async def test_summarize_cli_and_plot_series(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    async with traced_pc(0, str(path)) as a, traced_pc(1) as b:
        await exchange(a, b)
    events = load_events(path)
    text = summarize(events)
    assert "dtls" in text and "connected" in text
    series = plot_series(events)
    assert series["cwnd"]
    done = await run(
        [sys.executable, "-m", "trio_rtc", "trace", "summarize", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "timeline" in done.stdout.lower()
    assert "ice" in done.stdout and "sctp" in done.stdout and "events" in done.stdout
    assert "state" in done.stdout
    plot = await run(
        [
            sys.executable,
            "-m",
            "trio_rtc",
            "trace",
            "plot",
            str(path),
            "-o",
            str(tmp_path / "p.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert plot.returncode == 1
        assert "trio_rtc[plot]" in plot.stderr
    else:
        assert plot.returncode == 0, plot.stderr
        assert (tmp_path / "p.png").stat().st_size > 0


def test_sctp_core_traces_loss_decisions() -> None:
    """Core to core with loss: retransmissions, T3, SACK gaps, FORWARD-TSN, cwnd cuts."""
    from test_sctp_harness import Pair

    pair = Pair(seed=11, loss=0.25, reorder=0.2)
    sender: list[tuple[str, dict[str, Any]]] = []
    receiver: list[tuple[str, dict[str, Any]]] = []
    pair.a.trace = lambda name, data: sender.append((name, data))
    pair.b.trace = lambda name, data: receiver.append((name, data))
    pair.connect()
    for index in range(300):
        payload = b"%05d" % index * 200
        pair.a.send_message(1, 53, payload, max_retransmits=0, now=pair.now)
        pair.a.send_message(2, 53, payload, now=pair.now)
    pair.run(lambda: not pair.a.has_pending_data(), max_time=pair.now + 600)
    sent = {name for name, _ in sender}
    assert {"state", "metrics", "retransmitted", "forward_tsn_sent", "abandoned"} <= sent
    assert "sack_gap" in {name for name, _ in receiver}
    assert "forward_tsn_received" in {name for name, _ in receiver}
    states = [data["state"] for name, data in sender if name == "state"]
    assert states[-1] == "established"
    cwnds = [data["cwnd"] for name, data in sender if name == "metrics"]
    assert min(cwnds[1:]) < max(cwnds)  # loss cut the window at least once
    for name, _ in sender + receiver:
        assert name in EVENT_NAMES["sctp"]
