"""Seeded experiments: two peer connections on a virtual network, N sessions, one table.

A :class:`Scenario` says what the network looks like (a :class:`Topology` of NAT boxes and
STUN/TURN servers, and the :class:`~trio_rtc.testing.LinkConditions` of its links) and what
the peers do once connected (a *workload*: an async function of a :class:`Session` that
records numbers in ``session.metrics``). :func:`run_session` runs one seed in its own
``trio.run`` under ``trio.testing.MockClock(autojump_threshold=0)``, so simulated minutes take
milliseconds of wall time; :func:`run_many` runs many seeds, in worker processes if asked, and
returns :class:`Results` that print as markdown or CSV.

Addresses: the servers live on ``203.0.113.100`` (STUN and TURN on port 3478); peer *a* is
``198.51.100.1`` and *b* ``198.51.100.2``, or, behind a NAT, ``10.0.1.2`` and ``10.0.2.2``
with the NATs' public addresses ``198.51.100.1`` and ``198.51.100.2``. Conditions apply to every
link (the servers' included); ``reverse_conditions`` replaces them for what *b* sends.

Reproducibility: the network draws from ``random.Random(seed)`` and trio's scheduler is put in
its deterministic mode seeded with the same seed for the run (see :func:`deterministic_trio`),
so the order of tasks woken at one instant repeats too. What trio_rtc draws from the operating
system (ICE credentials, STUN transaction ids, DTLS randoms, SCTP tags, the consent-check
jitter) is seeded by :func:`~trio_rtc.testing.entropy.seeded_entropy` unless
``Scenario.seed_entropy`` is off; the DTLS key exchange and signatures are not (they come from
OpenSSL), so encrypted bytes differ between runs. ``docs/research.md`` says what stays
identical.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import trio
import trio.testing

from trio_rtc.dtls.certificate import RTCCertificate
from trio_rtc.ice.transport import IceTransportOptions
from trio_rtc.peerconnection import RTCPeerConnection

from .entropy import seeded_entropy
from .nat import Nat, NatBehavior
from .servers import StunServer, TurnServer
from .virtual_network import CapturedDatagram, LinkConditions, NetworkStats, VirtualNetwork

__all__ = [
    "BulkTransfer",
    "Results",
    "Scenario",
    "Session",
    "SessionResult",
    "Topology",
    "connect_only",
    "deterministic_trio",
    "run_many",
    "run_session",
    "simulate",
]

SERVER_IP = "203.0.113.100"
PUBLIC_IPS = ("198.51.100.1", "198.51.100.2")
PRIVATE_NETWORKS = ("10.0.1.0/24", "10.0.2.0/24")
PRIVATE_IPS = ("10.0.1.2", "10.0.2.2")
TURN_USERNAME = "sim"
TURN_PASSWORD = "sim-password"

# A stream id far from the ones createDataChannel picks, for the negotiated bulk channel.
_BULK_STREAM = 1000

Workload = Callable[["Session"], Awaitable[None]]


@attrs.define(frozen=True)
class Topology:
    """Who sits behind what. ``None`` puts a peer directly on the public network."""

    nat_a: NatBehavior | None = None
    nat_b: NatBehavior | None = None
    stun: bool = True
    """A STUN server the peers use (``iceServers``), for server-reflexive candidates."""
    turn: bool = False
    """A TURN server the peers use (its Binding answers replace the STUN server's)."""
    relay_only: bool = False
    """``iceTransportPolicy: "relay"`` on both peers (needs ``turn``)."""


@attrs.define
class Session:
    """What a workload gets: two connected peers and the network under them."""

    seed: int
    network: VirtualNetwork
    a: RTCPeerConnection
    b: RTCPeerConnection
    nursery: trio.Nursery
    metrics: dict[str, float] = attrs.Factory(dict)
    """Numbers the workload reports; they become columns of the results table."""


async def connect_only(session: Session) -> None:
    """The empty workload: the results then say whether and how fast the peers connected."""


@attrs.define(frozen=True)
class BulkTransfer:
    """Send *size* bytes from *a* to *b* on one reliable, ordered data channel, in messages of
    *message_size*; record ``goodput`` (bytes/s of virtual time, first send to last byte) and
    ``transfer_time``."""

    size: int = 1 << 20
    message_size: int = 1200

    async def __call__(self, session: Session) -> None:
        # Negotiated (no DCEP round trip, no ondatachannel race): both ends exist at once.
        channel = session.a.createDataChannel("bulk", negotiated=True, id=_BULK_STREAM)
        incoming = session.b.createDataChannel("bulk", negotiated=True, id=_BULK_STREAM)
        await channel.wait_open()
        await incoming.wait_open()
        payload = bytes(self.message_size)
        count = max(1, -(-self.size // self.message_size))
        started = trio.current_time()
        done = trio.Event()

        async def receive() -> None:
            received = 0
            while received < count * self.message_size:
                received += len(await incoming.receive())
            done.set()

        session.nursery.start_soon(receive)
        for _ in range(count):
            await channel.send_message(payload)
        await done.wait()
        elapsed = trio.current_time() - started
        session.metrics["transfer_time"] = elapsed
        session.metrics["goodput"] = count * self.message_size / elapsed if elapsed else math.inf


@attrs.define(frozen=True)
class Scenario:
    """One experimental condition. Make variants with ``attrs.evolve(scenario, ...)``."""

    name: str
    workload: Workload = connect_only
    """An async function of :class:`Session`; a module-level function or a picklable object
    when :func:`run_many` uses processes."""
    conditions: LinkConditions = attrs.Factory(LinkConditions)
    reverse_conditions: LinkConditions | None = None
    topology: Topology = attrs.Factory(Topology)
    time_limit: float = 120.0
    """Virtual seconds a session may take, connection included, before it counts as failed."""
    connect_timeout: float = 40.0
    """Virtual seconds to reach ``connected`` (ICE gives up after about 30 s of silence)."""
    capture: bool = False
    """Keep every datagram (see ``VirtualNetwork(capture=True)``); the result has its digest."""
    trace_dir: str | None = None
    """Write each peer's structured trace to ``<trace_dir>/<name>-<seed>-<a|b>.jsonl`` (see
    ``docs/tracing.md``); None leaves tracing to ``trio_rtc.trace.tracing()`` or the
    environment."""
    seed_entropy: bool = True
    """Draw trio_rtc's identifiers and nonces from the seed too (:func:`seeded_entropy`)."""
    parameters: dict[str, float] = attrs.Factory(dict)
    """Free-form numbers copied into every result row (the x axis of a sweep)."""


@attrs.define
class SessionResult:
    scenario: str
    seed: int
    connected: bool
    error: str
    connect_time: float
    """Virtual seconds from the offer to both peers ``connected`` (nan if they never were)."""
    virtual_time: float
    wall_time: float
    parameters: dict[str, float]
    metrics: dict[str, float]
    network: NetworkStats
    digest: str | None = None
    """``VirtualNetwork.capture_digest()`` when the scenario captures."""
    capture: list[CapturedDatagram] | None = None
    """Every delivered datagram, when the scenario captures."""
    relayed: int = 0
    """Datagrams the TURN server relayed to a peer (0 without one)."""

    def row(self) -> dict[str, object]:
        """A flat dict: the columns of the results table."""
        row: dict[str, object] = {
            "scenario": self.scenario,
            "seed": self.seed,
            **self.parameters,
            "connected": self.connected,
            "connect_time": self.connect_time,
            **self.metrics,
            "sent": self.network.sent,
            "dropped": self.network.dropped,
            "relayed": self.relayed,
            "virtual_time": self.virtual_time,
            "wall_time": self.wall_time,
            "error": self.error,
        }
        if self.digest is not None:
            row["digest"] = self.digest
        return row


class Results(list[SessionResult]):
    """The results of many sessions, one per row."""

    def rows(self) -> list[dict[str, object]]:
        return [result.row() for result in self]

    def columns(self) -> list[str]:
        names: dict[str, None] = {}
        for row in self.rows():
            names.update(dict.fromkeys(row))
        return list(names)

    def to_csv(self, path: str | None = None) -> str:
        """The table as CSV text, also written to *path* if given."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.columns(), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        text = out.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8") as file:
                file.write(text)
        return text

    def to_markdown(self, columns: Sequence[str] | None = None) -> str:
        names = list(columns) if columns is not None else self.columns()
        lines = ["| " + " | ".join(names) + " |", "|" + " --- |" * len(names)]
        for row in self.rows():
            lines.append("| " + " | ".join(_cell(row.get(name, "")) for name in names) + " |")
        return "\n".join(lines) + "\n"

    def mean(self, metric: str) -> float:
        """Mean of a metric over the sessions that have it (nan if none)."""
        values = [r.metrics[metric] for r in self if metric in r.metrics]
        return statistics.fmean(values) if values else math.nan

    def success_rate(self) -> float:
        return sum(r.connected and not r.error for r in self) / len(self) if self else math.nan


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@contextlib.contextmanager
def deterministic_trio(seed: int) -> Iterator[None]:
    """Make trio's scheduler order tasks woken together by a seeded shuffle (for one run).

    trio reverses each batch of runnable tasks at random to shake out ordering bugs; that is
    the one source of randomness left in a MockClock run. trio exposes a deterministic mode for
    Hypothesis; this switches it on (a private trio attribute: checked, and a no-op if absent)
    and restores it afterwards.
    """
    run_module: Any = getattr(trio, "_core", None)
    run_module = getattr(run_module, "_run", None)
    if run_module is None or not hasattr(run_module, "_ALLOW_DETERMINISTIC_SCHEDULING"):
        yield
        return
    previous = run_module._ALLOW_DETERMINISTIC_SCHEDULING
    state = run_module._r.getstate()
    run_module._ALLOW_DETERMINISTIC_SCHEDULING = True
    run_module._r.seed(seed)
    try:
        yield
    finally:
        run_module._ALLOW_DETERMINISTIC_SCHEDULING = previous
        run_module._r.setstate(state)


_CERTIFICATES: list[RTCCertificate] = []


def _certificate(index: int) -> RTCCertificate:
    # Made once per process: key generation would otherwise dominate short sessions.
    while len(_CERTIFICATES) <= index:
        _CERTIFICATES.append(RTCCertificate.generate_sync())
    return _CERTIFICATES[index]


def _ice_servers(scenario: Scenario, stun: StunServer | None, turn: TurnServer | None) -> Any:
    servers: list[dict[str, str]] = []
    if turn is not None:
        servers.append({"urls": turn.url, "username": TURN_USERNAME, "credential": TURN_PASSWORD})
    elif stun is not None:
        servers.append({"urls": stun.url})
    return servers


def _trace_option(scenario: Scenario, seed: int, peer: str) -> dict[str, Any]:
    if scenario.trace_dir is None:
        return {}
    directory = Path(scenario.trace_dir)
    directory.mkdir(parents=True, exist_ok=True)
    name = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in scenario.name)
    return {"trace": str(directory / f"{name}-{seed}-{peer}.jsonl")}


async def simulate(scenario: Scenario, seed: int) -> SessionResult:
    """Run one session inside the current trio run (which should use a ``MockClock``)."""
    topology = scenario.topology
    started_wall = time.perf_counter()
    started = trio.current_time()
    net = VirtualNetwork(seed=seed, conditions=scenario.conditions, capture=scenario.capture)
    hosts = list(PUBLIC_IPS)
    for index, behavior in enumerate((topology.nat_a, topology.nat_b)):
        if behavior is not None:
            net.add_nat(Nat(PUBLIC_IPS[index], PRIVATE_NETWORKS[index], behavior))
            hosts[index] = PRIVATE_IPS[index]
    if scenario.reverse_conditions is not None:
        net.set_conditions(scenario.reverse_conditions, src=PUBLIC_IPS[1])
    metrics: dict[str, float] = {}
    error = ""
    connected = False
    connect_time = math.nan
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(net)
        stun = turn = None
        if topology.turn:
            turn = await stack.enter_async_context(
                TurnServer(SERVER_IP, username=TURN_USERNAME, password=TURN_PASSWORD)
            )
        elif topology.stun:
            stun = await stack.enter_async_context(StunServer(SERVER_IP))
        config: dict[str, Any] = {"iceServers": _ice_servers(scenario, stun, turn)}
        if topology.relay_only:
            config["iceTransportPolicy"] = "relay"
        a, b = (
            RTCPeerConnection(
                {**config, "certificates": [_certificate(index)]},
                ice_options=IceTransportOptions(interfaces=[hosts[index]], mdns=False),
                **_trace_option(scenario, seed, "ab"[index]),
            )
            for index in range(2)
        )
        with trio.move_on_after(scenario.time_limit) as limit:
            try:
                async with a, b, trio.open_nursery() as nursery:
                    a.createDataChannel("signal")
                    offered = trio.current_time()
                    try:
                        with trio.fail_after(scenario.connect_timeout):
                            await _negotiate(a, b)
                            await a.wait_connection_state("connected", "failed")
                            await b.wait_connection_state("connected", "failed")
                    except trio.TooSlowError:
                        error = "connect timeout"
                    if not error and "failed" in (a.connectionState, b.connectionState):
                        error = "connection failed"
                    if not error:
                        connected = True
                        connect_time = trio.current_time() - offered
                        await scenario.workload(Session(seed, net, a, b, nursery, metrics))
                    nursery.cancel_scope.cancel()
            except Exception as exc:  # a failed session is a row, not a crash
                error = error or _describe(exc)
        if limit.cancelled_caught:
            error = error or "time limit"
        relayed = 0 if turn is None else turn.stats.relayed_to_peers
    return SessionResult(
        scenario=scenario.name,
        seed=seed,
        connected=connected,
        error=error,
        connect_time=connect_time,
        virtual_time=trio.current_time() - started,
        wall_time=time.perf_counter() - started_wall,
        parameters=dict(scenario.parameters),
        metrics=metrics,
        network=net.stats,
        digest=net.capture_digest() if scenario.capture else None,
        capture=net.captured,
        relayed=relayed,
    )


def _describe(exc: BaseException) -> str:
    """``Type: message`` of the exception, through nurseries' one-exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


async def _negotiate(a: RTCPeerConnection, b: RTCPeerConnection) -> None:
    """Offer/answer with every candidate in the descriptions (no trickle): simple and ordered."""
    await a.setLocalDescription(await a.createOffer())
    await a.wait_gathering_complete()
    assert a.localDescription is not None
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await b.wait_gathering_complete()
    assert b.localDescription is not None
    await a.setRemoteDescription(b.localDescription)


def run_session(scenario: Scenario, seed: int) -> SessionResult:
    """One seeded session in its own ``trio.run`` under ``MockClock(autojump_threshold=0)``."""
    # Made before the entropy is seeded: the first session of a process must not draw more.
    _certificate(1)
    entropy = seeded_entropy(seed) if scenario.seed_entropy else contextlib.nullcontext()
    with deterministic_trio(seed), entropy:
        return trio.run(
            simulate, scenario, seed, clock=trio.testing.MockClock(autojump_threshold=0)
        )


def _run_session_args(args: tuple[Scenario, int]) -> SessionResult:
    return run_session(*args)


def run_many(
    scenario: Scenario | Iterable[Scenario], seeds: Iterable[int], *, parallel: int = 1
) -> Results:
    """Run every scenario with every seed; ``parallel`` > 1 uses that many worker processes
    (scenarios and workloads must then pickle: module-level functions, attrs classes)."""
    scenarios = [scenario] if isinstance(scenario, Scenario) else list(scenario)
    jobs = [(s, seed) for s in scenarios for seed in seeds]
    if parallel <= 1:
        return Results(run_session(s, seed) for s, seed in jobs)
    with ProcessPoolExecutor(max_workers=parallel) as pool:
        return Results(pool.map(_run_session_args, jobs, chunksize=max(1, len(jobs) // 64)))
