"""Seeded simulations repeat: the same seed gives the same datagrams at the same times.

What is identical, bit for bit, between two runs of one seeded session: every datagram's
delivery time, source and destination; the bytes of every STUN, TURN and ChannelData datagram
and of DTLS records outside the handshake's signature-bearing flights in size; the metrics. What
is not: the bytes of DTLS records (the ECDHE keys and ECDSA nonces come from OpenSSL, which no
Python seed reaches) and, by a byte or two, the length of the two handshake flights that carry
an ECDSA signature. The tests check exactly that boundary, so a regression on either side shows.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import trio
import trio.testing

from trio_rtc.testing import (
    PORT_RESTRICTED,
    BulkTransfer,
    BurstLoss,
    CapturedDatagram,
    LinkConditions,
    Scenario,
    SessionResult,
    Topology,
    VirtualNetwork,
    run_session,
    simulate,
)
from trio_rtc.testing import scenario as scenario_module
from trio_rtc.udp import open_udp_endpoint

DTLS_HANDSHAKE = 22

SCENARIO = Scenario(
    "determinism",
    workload=BulkTransfer(size=60_000),
    conditions=LinkConditions(delay=0.02, jitter=0.01, loss=0.03, reorder=0.05, duplicate=0.02),
    topology=Topology(nat_a=PORT_RESTRICTED),
    capture=True,
)


def captured_session(seed: int) -> tuple[SessionResult, list[CapturedDatagram]]:
    result = run_session(SCENARIO, seed)
    assert result.capture is not None
    return result, result.capture


def is_dtls(item: CapturedDatagram) -> bool:
    return 20 <= item.data[0] <= 63


def test_same_seed_same_session() -> None:
    first, log_one = captured_session(11)
    second, log_two = captured_session(11)
    assert first.connected and not first.error, first.error
    assert first.metrics["goodput"] > 0
    assert len(log_one) == len(log_two) > 100
    assert first.network.dropped_loss > 0 and first.network.duplicated > 0
    # Timing, addressing and every number the experiment reports are identical.
    assert [(d.time, d.source, d.destination) for d in log_one] == [
        (d.time, d.source, d.destination) for d in log_two
    ]
    assert first.metrics == second.metrics
    assert first.network == second.network
    assert first.connect_time == second.connect_time
    assert first.virtual_time == second.virtual_time
    # Every datagram outside DTLS (STUN checks, consent, TURN) is byte-identical.
    plain = [(a.data, b.data) for a, b in zip(log_one, log_two, strict=True) if not is_dtls(a)]
    assert len(plain) > 10
    assert all(a == b for a, b in plain)
    # DTLS: same record framing everywhere except the ECDSA-signed handshake flights.
    varying = [
        a
        for a, b in zip(log_one, log_two, strict=True)
        if is_dtls(a) and len(a.data) != len(b.data)
    ]
    assert all(item.data[0] == DTLS_HANDSHAKE for item in varying)
    assert len(varying) <= 4


def test_other_seed_other_session() -> None:
    _, log_one = captured_session(11)
    _, log_two = captured_session(12)
    assert [(d.time, d.source) for d in log_one] != [(d.time, d.source) for d in log_two]


async def exchange(seed: int, conditions: LinkConditions) -> str:
    """Two plain endpoints trading 300 datagrams over an impaired network: the capture digest."""
    async with VirtualNetwork(seed=seed, conditions=conditions, capture=True) as net:
        a = await open_udp_endpoint("198.51.100.1", 1000)
        b = await open_udp_endpoint("198.51.100.2", 2000)
        for index in range(300):
            a.send_nowait(index.to_bytes(2, "big") * 50, b.local_address)
            b.send_nowait(index.to_bytes(2, "big"), a.local_address)
            await trio.sleep(0.001)
        await trio.sleep(1)
        return net.capture_digest()


def test_network_capture_is_byte_identical() -> None:
    """Each exchange in its own trio.run, as run_session does: capture times are trio times."""
    conditions = LinkConditions(
        delay=0.03,
        jitter=0.02,
        reorder=0.1,
        duplicate=0.05,
        rate=50_000,
        burst=BurstLoss.from_rate(0.1, 3),
    )

    def run(seed: int) -> str:
        clock = trio.testing.MockClock(autojump_threshold=0)
        return trio.run(exchange, seed, conditions, clock=clock)

    one = run(5)
    assert one == run(5)
    assert one != run(6)


async def test_simulate_inside_a_test_run(autojump_clock: trio.testing.MockClock) -> None:
    """simulate() runs in the caller's trio run (here pytest-trio's, with its MockClock)."""
    result = await simulate(attrs.evolve(SCENARIO, workload=scenario_module.connect_only), 1)
    assert result.connected, result.error
    assert result.digest is not None and result.capture


async def test_burst_loss_matches_the_gilbert_model(
    autojump_clock: trio.testing.MockClock,
) -> None:
    burst = BurstLoss.from_rate(0.2, 4.0)
    assert abs(burst.mean_loss - 0.2) < 1e-12
    async with VirtualNetwork(seed=3, conditions=LinkConditions(burst=burst)) as net:
        a = await open_udp_endpoint("198.51.100.1")
        b = net.open_endpoint("198.51.100.2", 7, receive_buffer=1 << 26)
        total = 40_000
        for index in range(total):
            a.send_nowait(index.to_bytes(4, "big"), b.local_address)
        received = {int.from_bytes(d, "big") for d, _ in b.recv_batch_nowait(total)}
    lost = [index not in received for index in range(total)]
    bursts = [run for run in _runs(lost) if run]
    assert abs(sum(lost) / total - 0.2) < 0.02
    assert abs(sum(bursts) / len(bursts) - 4.0) < 0.4
    assert net.stats.dropped_loss == sum(lost)


def _runs(flags: list[bool]) -> list[int]:
    """Lengths of the runs of True."""
    runs, current = [], 0
    for flag in flags:
        if flag:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    if current:
        runs.append(current)
    return runs


def test_same_seed_same_traces(tmp_path: Path) -> None:
    """The structured traces of two runs of one seed are byte-identical, except for the pc id,
    which the trace module makes from the process id and a process-wide counter."""

    traced = attrs.evolve(SCENARIO, workload=BulkTransfer(size=20_000), capture=False)
    texts = []
    for run in ("one", "two"):
        run_session(attrs.evolve(traced, trace_dir=str(tmp_path / run)), 11)
        texts.append(
            [
                PC_ID.sub("PC", (tmp_path / run / f"determinism-11-{peer}.jsonl").read_text())
                for peer in "ab"
            ]
        )
    assert texts[0] == texts[1]
    assert all(text.count("\n") > 20 for text in texts[0])


PC_ID = re.compile(r"pc-\d+-\d+")
