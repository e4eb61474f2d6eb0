"""Soak: two peer connections on trio_rtc's virtual network with loss and reordering, mixed
data-channel traffic, channels opened and closed continuously and ICE restarts, for minutes or
hours of real time. RSS, file descriptors and trio tasks are sampled as it runs; the verdict says
whether they stayed flat and whether every reliable byte arrived intact and in order.

    python benchmarks/soak.py                          # 2 minutes, a sample every 10 s
    python benchmarks/soak.py --minutes 60 --sample-every 60 --json soak.json

Traffic, all of it paced (``--rate-scale`` multiplies every rate; see ``RATES``):

* ``reliable``: ordered, reliable, a → b, 48 KB/s of messages from 1 byte to 64 KiB;
* ``reliable-back``: the same b → a at 16 KB/s;
* ``unordered``: reliable but unordered, a → b, 24 KB/s; each message carries its sequence
  number and the receiver puts them back in order before hashing;
* ``partial-rexmit``: unordered, ``maxRetransmits=0``, a → b, 16 KB/s;
* ``partial-lifetime``: ordered, ``maxPacketLifetime`` ``--lifetime-ms`` (2000), a → b, 16 KB/s;
* churn: ``--churners`` loops that each open a channel (alternately from a and from b), send
  20 messages on it, close it and wait until the other side has read it to its end;
* an ICE restart every ``--restart-every`` seconds, alternately started by a and by b, each a
  full offer/answer with trickled candidates while the traffic goes on.

Checks: every reliable channel's bytes are hashed with sha256 as they are sent and again as they
are received in order (the unordered one after putting its messages back in order); each churn
channel likewise. Partially reliable messages carry their sequence number and a payload derived
from it: every one that arrives must be intact, and on the ordered one in increasing order.

Flatness: the sample taken after ``--warmup`` seconds is compared with the last one: fds must
be equal, tasks equal within ``--task-margin`` (a sample can catch a short-lived library task)
and RSS must not have grown by more than ``--rss-margin`` MiB. Samples are
taken between ICE restarts (a restart's gathering is a short-lived task), after ``gc.collect()``.
After the run both peer connections close and the task count must be back to what it was before
they opened. The ``channels`` column counts the RTCDataChannel objects alive in the process: with
churn it must stay near the number of open channels (it climbs if closed channels are kept).

The virtual network is driven by trio's clock, which here is the real one: delays, losses and
timers happen in real time, so the run costs what the same traffic costs for real, minus the
kernel.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import hashlib
import json
import math
import os
import random
import struct
import sys
import time
from typing import Any

import trio

from trio_rtc import RTCCertificate, RTCDataChannel, RTCPeerConnection
from trio_rtc.exceptions import InvalidStateError, OperationError
from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport
from trio_rtc.pc.data import MAX_CLOSED_CHANNELS
from trio_rtc.pc.events import RTCPeerConnectionIceEvent
from trio_rtc.testing import LinkConditions, VirtualNetwork

ADDRESSES = ("198.51.100.1", "198.51.100.2")
MAIN_CHANNELS = ("reliable", "reliable-back", "unordered", "partial-rexmit", "partial-lifetime")
#: Bytes/s of each main channel at --rate-scale 1: 120 KB/s in all, below what SCTP carries at
#: 5 % loss and 10 ms each way (about 170 KB/s measured here), so queues stay short and the
#: churn channels are not held behind a backlog; --rate-scale 2 saturates the link.
RATES = {
    "reliable": 48_000,
    "reliable-back": 16_000,
    "unordered": 24_000,
    "partial-rexmit": 16_000,
    "partial-lifetime": 16_000,
}
#: Messages on each churn channel, and their largest size.
CHURN_MESSAGES = 20
CHURN_MAX_SIZE = 4096
#: A churn channel that does not open, deliver and close within this many seconds is a stall.
CHURN_TIMEOUT = 60.0
#: Seconds allowed at the end for what was sent to arrive, and for an ICE restart to complete.
DRAIN_TIMEOUT = 60.0
RESTART_TIMEOUT = 60.0
_SEQ = struct.Struct("!Q")


def rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        resident = int(statm.read().split()[1])
    return resident * os.sysconf("SC_PAGE_SIZE") // 1024


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def task_count() -> int:
    """Every task of this trio run (the tree under the root task)."""
    root = trio.lowlevel.current_root_task()
    assert root is not None
    count = 0
    stack = [root]
    while stack:
        task = stack.pop()
        count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count


def live_channels() -> int:
    """RTCDataChannel objects alive in the process (closed ones nobody needs should not be)."""
    return sum(1 for obj in gc.get_objects() if type(obj) is RTCDataChannel)


def message_size(rng: random.Random) -> int:
    """Mostly small messages, some a few packets long, a few that fragment into dozens."""
    roll = rng.random()
    if roll < 0.7:
        return rng.randint(1, 1200)
    if roll < 0.95:
        return rng.randint(1201, 16 * 1024)
    return rng.randint(16 * 1024 + 1, 64 * 1024)


def numbered_payload(seq: int, size: int) -> bytes:
    """A message that proves its own integrity: its sequence number, then bytes derived from
    it (a partially reliable message is checked on its own: there is no stream to hash)."""
    seed = hashlib.sha256(_SEQ.pack(seq)).digest()
    body = (seed * (size // len(seed) + 1))[: max(0, size - _SEQ.size)]
    return _SEQ.pack(seq) + body


def check_numbered(message: bytes) -> int | None:
    """The sequence number of an intact numbered message, None if it is damaged."""
    if len(message) < _SEQ.size:
        return None
    (seq,) = _SEQ.unpack_from(message)
    return seq if numbered_payload(seq, len(message)) == message else None


class Flow:
    """One direction of one channel: what was sent and what arrived."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent_messages = 0
        self.sent_bytes = 0
        self.received_messages = 0
        self.received_bytes = 0
        self.sent_hash = hashlib.sha256()
        self.received_hash = hashlib.sha256()
        #: Partially reliable flows: messages that arrived damaged or out of order.
        self.bad = 0
        self.last_seq = -1

    def sent(self, data: bytes) -> None:
        self.sent_messages += 1
        self.sent_bytes += len(data)
        self.sent_hash.update(data)

    def received(self, data: bytes) -> None:
        self.received_messages += 1
        self.received_bytes += len(data)
        self.received_hash.update(data)


class Pacer:
    """Sends at ``rate`` bytes/s on average, without bursts to catch up after a stall."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.next_at = trio.current_time()

    async def after(self, size: int) -> None:
        self.next_at += size / self.rate
        now = trio.current_time()
        if self.next_at > now:
            await trio.sleep(self.next_at - now)
        else:
            self.next_at = max(self.next_at, now - 1.0)


class Peer:
    """One peer connection and what the soak knows about its channels."""

    def __init__(self, name: str, pc: RTCPeerConnection) -> None:
        self.name = name
        self.pc = pc
        self.main: dict[str, RTCDataChannel] = {}
        self.churn_send, self.churn_receive = trio.open_memory_channel[RTCDataChannel](64)
        pc.ondatachannel = self._on_datachannel

    def _on_datachannel(self, event: Any) -> None:
        channel: RTCDataChannel = event.channel
        if channel.label in MAIN_CHANNELS:
            self.main[channel.label] = channel
        else:
            self.churn_send.send_nowait(channel)


def _has_every_channel(peer: Peer) -> bool:
    return len(peer.main) == len(MAIN_CHANNELS)


def _is_closed(channel: RTCDataChannel) -> bool:
    return channel.readyState == "closed"


def _uses_new_pair(transport: RTCIceTransport) -> bool:
    """The ICE generation started by the last restart has selected a pair of its own."""
    return transport.selected_pair in transport.agent.pairs


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.flows = {name: Flow(name) for name in MAIN_CHANNELS}
        self.churn = Flow("churn")
        self.churn_opened = 0
        self.churn_verified = 0
        self.churn_mismatches = 0
        self.churn_stalls = 0
        self.expected_churn: dict[str, bytes] = {}
        self.churn_done: dict[str, trio.Event] = {}
        self.restarts = 0
        self.restart_failures = 0
        self.restarting = False
        self.quiet = trio.Event()
        self.quiet.set()
        self.candidates_retried = 0
        self.candidates_dropped = 0
        self.samples: list[dict[str, float]] = []
        self.started_at = 0.0
        self.net: VirtualNetwork | None = None
        self.peers: tuple[Peer, ...] = ()
        self.errors: list[str] = []

    # --- set-up --------------------------------------------------------------------------------

    def make_pc(self, index: int, certificate: RTCCertificate) -> RTCPeerConnection:
        return RTCPeerConnection(
            {"certificates": [certificate]},
            ice_options=IceTransportOptions(interfaces=[ADDRESSES[index]], mdns=False),
        )

    def trickle(self, source: Peer, target: Peer, nursery: trio.Nursery) -> None:
        """Forward ``source``'s candidates to ``target`` in order, as a signalling server
        would. One that arrives before the description of its ICE generation is retried for a
        while (a real application queues it the same way)."""
        send, receive = trio.open_memory_channel[Any](1000)

        def on_candidate(event: RTCPeerConnectionIceEvent) -> None:
            if event.candidate is not None:
                with contextlib.suppress(trio.WouldBlock):
                    send.send_nowait(event.candidate.toJSON())

        async def forward() -> None:
            async for init in receive:
                await target.pc.wait_until(lambda: target.pc.remoteDescription is not None)
                for attempt in range(100):
                    try:
                        await target.pc.addIceCandidate(init)
                        break
                    except OperationError:
                        if attempt == 0:
                            self.candidates_retried += 1
                        await trio.sleep(0.05)
                    except InvalidStateError:
                        return
                else:
                    self.candidates_dropped += 1

        source.pc.addEventListener("icecandidate", on_candidate)
        nursery.start_soon(forward)

    async def negotiate(self, offerer: Peer, answerer: Peer) -> None:
        await offerer.pc.setLocalDescription(await offerer.pc.createOffer())
        assert offerer.pc.localDescription is not None
        await answerer.pc.setRemoteDescription(offerer.pc.localDescription)
        await answerer.pc.setLocalDescription(await answerer.pc.createAnswer())
        assert answerer.pc.localDescription is not None
        await offerer.pc.setRemoteDescription(answerer.pc.localDescription)

    async def open_main_channels(self, a: Peer, b: Peer, nursery: trio.Nursery) -> None:
        a.main["reliable"] = a.pc.createDataChannel("reliable")
        a.main["unordered"] = a.pc.createDataChannel("unordered", ordered=False)
        a.main["partial-rexmit"] = a.pc.createDataChannel(
            "partial-rexmit", ordered=False, maxRetransmits=0
        )
        a.main["partial-lifetime"] = a.pc.createDataChannel(
            "partial-lifetime", maxPacketLifetime=self.args.lifetime_ms
        )
        b.main["reliable-back"] = b.pc.createDataChannel("reliable-back")
        self.trickle(a, b, nursery)
        self.trickle(b, a, nursery)
        await self.negotiate(a, b)
        await a.pc.wait_connection_state("connected")
        await b.pc.wait_connection_state("connected")
        # reliable-back was created on b before the offer: it opens once negotiated (a second
        # round, with b offering, also exercises renegotiation of an established pc).
        await self.negotiate(b, a)
        for peer in (a, b):
            await peer.pc.wait_until(functools.partial(_has_every_channel, peer))
            for channel in peer.main.values():
                await channel.wait_open()

    # --- traffic -------------------------------------------------------------------------------

    async def send_reliable(self, channel: RTCDataChannel, flow: Flow, rate: float) -> None:
        rng = random.Random(f"{self.args.seed}-{flow.name}")
        pacer = Pacer(rate)
        while True:
            data = rng.randbytes(message_size(rng))
            await channel.send_message(data)
            flow.sent(data)
            await pacer.after(len(data))

    async def receive_reliable(self, channel: RTCDataChannel, flow: Flow) -> None:
        while True:
            data = await channel.receive()
            assert isinstance(data, bytes)
            flow.received(data)

    async def send_numbered(self, channel: RTCDataChannel, flow: Flow, rate: float) -> None:
        rng = random.Random(f"{self.args.seed}-{flow.name}")
        pacer = Pacer(rate)
        seq = 0
        while True:
            data = numbered_payload(seq, max(_SEQ.size, message_size(rng)))
            await channel.send_message(data)
            flow.sent(data)
            seq += 1
            await pacer.after(len(data))

    async def receive_unordered(self, channel: RTCDataChannel, flow: Flow) -> None:
        """Puts the reliable unordered messages back in order (a bounded reorder buffer: the
        gaps fill as retransmissions arrive) and hashes them as the sender did."""
        waiting: dict[int, bytes] = {}
        expected = 0
        while True:
            data = await channel.receive()
            assert isinstance(data, bytes)
            seq = check_numbered(data)
            if seq is None or seq < expected or seq in waiting:
                flow.bad += 1
                continue
            waiting[seq] = data
            while expected in waiting:
                flow.received(waiting.pop(expected))
                expected += 1

    async def receive_partial(self, channel: RTCDataChannel, flow: Flow, ordered: bool) -> None:
        while True:
            data = await channel.receive()
            assert isinstance(data, bytes)
            seq = check_numbered(data)
            if seq is None or (ordered and seq <= flow.last_seq):
                flow.bad += 1
                continue
            flow.last_seq = max(flow.last_seq, seq)
            flow.received_messages += 1
            flow.received_bytes += len(data)

    async def churner(self, index: int, a: Peer, b: Peer) -> None:
        rng = random.Random(f"{self.args.seed}-churn-{index}")
        count = 0
        while True:
            opener = a if count % 2 == 0 else b
            label = f"churn-{index}-{count}"
            count += 1
            channel = opener.pc.createDataChannel(label)
            self.churn_opened += 1
            try:
                with trio.move_on_after(CHURN_TIMEOUT) as scope:
                    await channel.wait_open()
                    digest = hashlib.sha256()
                    for _ in range(CHURN_MESSAGES):
                        data = rng.randbytes(rng.randint(1, CHURN_MAX_SIZE))
                        await channel.send_message(data)
                        digest.update(data)
                        self.churn.sent(data)
                    self.expected_churn[label] = digest.digest()
                    done = self.churn_done[label] = trio.Event()
                    await channel.aclose()
                    await done.wait()
            finally:
                # Cancelled (the run ends) or stalled: the channel does not outlive its loop.
                if channel.readyState in ("connecting", "open"):
                    channel.close()
            if scope.cancelled_caught:
                self.churn_stalls += 1
                self.expected_churn.pop(label, None)
                self.churn_done.pop(label, None)
            await trio.sleep(rng.uniform(0.0, self.args.churn_pause))

    async def churn_reader(self, peer: Peer) -> None:
        """Reads every churn channel the other side opens to its end, then checks its hash."""
        async for channel in peer.churn_receive:
            digest = hashlib.sha256()
            with trio.move_on_after(CHURN_TIMEOUT):
                with contextlib.suppress(trio.EndOfChannel, trio.BrokenResourceError):
                    while True:
                        data = await channel.receive()
                        assert isinstance(data, bytes)
                        digest.update(data)
                        self.churn.received(data)
                await channel.wait_until(functools.partial(_is_closed, channel))
            expected = self.expected_churn.pop(channel.label, None)
            if expected is not None:
                if expected == digest.digest():
                    self.churn_verified += 1
                else:
                    self.churn_mismatches += 1
            done = self.churn_done.pop(channel.label, None)
            if done is not None:
                done.set()

    async def restarter(self, a: Peer, b: Peer) -> None:
        while True:
            await trio.sleep(self.args.restart_every)
            offerer, answerer = (a, b) if self.restarts % 2 == 0 else (b, a)
            self.restarting = True
            self.quiet = trio.Event()
            try:
                with trio.move_on_after(RESTART_TIMEOUT) as scope:
                    ice = offerer.pc.ice_transport
                    assert ice is not None
                    old = ice.getLocalParameters().usernameFragment
                    offerer.pc.restartIce()
                    await self.negotiate(offerer, answerer)
                    assert ice.getLocalParameters().usernameFragment != old
                    # Done once the new generation has selected a pair of its own, on both sides.
                    for peer in (offerer, answerer):
                        transport = peer.pc.ice_transport
                        assert transport is not None
                        await transport.wait_until(functools.partial(_uses_new_pair, transport))
                if scope.cancelled_caught:
                    self.restart_failures += 1
                else:
                    self.restarts += 1
            finally:
                self.restarting = False
                self.quiet.set()

    # --- sampling ------------------------------------------------------------------------------

    def totals(self) -> tuple[int, int]:
        flows = [*self.flows.values(), self.churn]
        return (
            sum(f.received_messages for f in flows),
            sum(f.received_bytes for f in flows),
        )

    async def sample(self) -> dict[str, float]:
        await self.quiet.wait()
        gc.collect()
        messages, moved = self.totals()
        net = self.net
        row = {
            "t": round(trio.current_time() - self.started_at, 1),
            "rss_kib": rss_kib(),
            "blocks": sys.getallocatedblocks(),
            "fds": fd_count(),
            "tasks": task_count(),
            "channels": live_channels(),
            "messages": messages,
            "mib": round(moved / 2**20, 2),
            "restarts": self.restarts,
            "churned": self.churn_verified,
            "net_sent": net.stats.sent if net is not None else 0,
            "net_dropped": net.stats.dropped if net is not None else 0,
            "cpu_s": round(time.process_time(), 1),
            "buffered_kib": sum(c.bufferedAmount for p in self.peers for c in p.main.values())
            // 1024,
        }
        self.samples.append(row)
        return row

    def print_row(self, row: dict[str, float]) -> None:
        print(
            f"{row['t']:>8.0f} {row['rss_kib'] / 1024:>8.1f} {row['blocks']:>9} {row['fds']:>4}"
            f" {row['tasks']:>5} {row['channels']:>8} {row['messages']:>9} {row['mib']:>9.1f} {row['restarts']:>8}"
            f" {row['churned']:>7} {row['net_dropped']:>8} {row['cpu_s']:>7.1f}"
            f" {row['buffered_kib']:>8}",
            flush=True,
        )

    async def sampler(self) -> None:
        print(
            f"{'t (s)':>8} {'RSS MiB':>8} {'py blocks':>9} {'fds':>4} {'tasks':>5} {'channels':>8}"
            f" {'messages':>9} {'MiB recv':>9} {'restarts':>8} {'churned':>7}"
            f" {'net drop':>8} {'cpu s':>7} {'buf KiB':>8}",
            flush=True,
        )
        while True:
            await trio.sleep_until(
                self.started_at + self.args.sample_every * (len(self.samples) + 1)
            )
            self.print_row(await self.sample())

    # --- the run -------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        args = self.args
        scale = args.rate_scale
        conditions = LinkConditions(
            loss=args.loss,
            delay=args.delay,
            jitter=args.delay / 2,
            reorder=args.reorder,
            reorder_delay=args.delay * 2,
        )
        certificates = [await RTCCertificate.generate() for _ in range(2)]
        tasks_before = task_count()
        fds_before = fd_count()
        async with VirtualNetwork(seed=args.seed, conditions=conditions) as net:
            self.net = net
            async with (
                self.make_pc(0, certificates[0]) as pc_a,
                self.make_pc(1, certificates[1]) as pc_b,
                trio.open_nursery() as nursery,
            ):
                a, b = Peer("a", pc_a), Peer("b", pc_b)
                self.peers = (a, b)
                with trio.fail_after(60):
                    await self.open_main_channels(a, b, nursery)
                self.started_at = trio.current_time()
                flows = self.flows
                async with trio.open_nursery() as traffic:
                    senders = trio.CancelScope()

                    async def sending() -> None:
                        with senders:
                            async with trio.open_nursery() as inner:
                                ma, mb = a.main, b.main
                                inner.start_soon(
                                    self.send_reliable,
                                    ma["reliable"],
                                    flows["reliable"],
                                    RATES["reliable"] * scale,
                                )
                                inner.start_soon(
                                    self.send_reliable,
                                    mb["reliable-back"],
                                    flows["reliable-back"],
                                    RATES["reliable-back"] * scale,
                                )
                                inner.start_soon(
                                    self.send_numbered,
                                    ma["unordered"],
                                    flows["unordered"],
                                    RATES["unordered"] * scale,
                                )
                                for name in ("partial-rexmit", "partial-lifetime"):
                                    inner.start_soon(
                                        self.send_numbered,
                                        ma[name],
                                        flows[name],
                                        RATES[name] * scale,
                                    )
                                for index in range(args.churners):
                                    inner.start_soon(self.churner, index, a, b)
                                inner.start_soon(self.restarter, a, b)

                    traffic.start_soon(self.receive_reliable, b.main["reliable"], flows["reliable"])
                    traffic.start_soon(
                        self.receive_reliable, a.main["reliable-back"], flows["reliable-back"]
                    )
                    traffic.start_soon(
                        self.receive_unordered, b.main["unordered"], flows["unordered"]
                    )
                    traffic.start_soon(
                        self.receive_partial,
                        b.main["partial-rexmit"],
                        flows["partial-rexmit"],
                        False,
                    )
                    traffic.start_soon(
                        self.receive_partial,
                        b.main["partial-lifetime"],
                        flows["partial-lifetime"],
                        True,
                    )
                    traffic.start_soon(self.churn_reader, a)
                    traffic.start_soon(self.churn_reader, b)
                    traffic.start_soon(sending)
                    with trio.move_on_after(args.minutes * 60):
                        await self.sampler()
                    # Stop sending (between restarts), then let what was sent arrive.
                    await self.quiet.wait()
                    senders.cancel()
                    drained = await self.drain()
                    final = await self.sample()
                    traffic.cancel_scope.cancel()
                states = (pc_a.connectionState, pc_b.connectionState)
                nursery.cancel_scope.cancel()
            self.net = None
        gc.collect()
        tasks_after = task_count()
        fds_after = fd_count()
        return self.verdict(
            drained, final, states, tasks_before, tasks_after, fds_before, fds_after
        )

    async def drain(self) -> bool:
        reliable = [self.flows[n] for n in ("reliable", "reliable-back", "unordered")]
        for _ in range(int(DRAIN_TIMEOUT * 10)):
            if all(f.received_bytes >= f.sent_bytes for f in reliable) and not self.expected_churn:
                # Partially reliable messages still in flight: give them the network's delay.
                await trio.sleep(1.0)
                return True
            await trio.sleep(0.1)
        return False

    def verdict(
        self,
        drained: bool,
        final: dict[str, float],
        states: tuple[str, str],
        tasks_before: int,
        tasks_after: int,
        fds_before: int,
        fds_after: int,
    ) -> dict[str, Any]:
        args = self.args
        # The periodic samples (the final one is taken after the senders stopped).
        periodic = self.samples[:-1] or self.samples
        warm = next((s for s in periodic if s["t"] >= args.warmup), periodic[0])
        last = periodic[-1]
        after = [s for s in periodic if s["t"] >= warm["t"]]
        slope = _slope([s["t"] for s in after], [s["rss_kib"] for s in after])
        hashes = {}
        for name in ("reliable", "reliable-back", "unordered"):
            flow = self.flows[name]
            hashes[name] = {
                "sent_bytes": flow.sent_bytes,
                "received_bytes": flow.received_bytes,
                "messages": flow.received_messages,
                "match": flow.sent_hash.digest() == flow.received_hash.digest(),
            }
        partial = {
            name: {
                "sent": self.flows[name].sent_messages,
                "delivered": self.flows[name].received_messages,
                "bad": self.flows[name].bad,
            }
            for name in ("partial-rexmit", "partial-lifetime")
        }
        rss_growth = (last["rss_kib"] - warm["rss_kib"]) / 1024
        checks = {
            "drained": drained,
            "sha256_all_match": all(h["match"] for h in hashes.values()),
            "unordered_no_bad": self.flows["unordered"].bad == 0,
            "partial_intact": all(p["bad"] == 0 for p in partial.values()),
            "churn_all_match": self.churn_mismatches == 0 and self.churn_verified > 0,
            "churn_no_stall": self.churn_stalls == 0,
            "restarts_done": self.restarts > 0 or args.minutes * 60 < 2 * args.restart_every,
            "restarts_no_failure": self.restart_failures == 0,
            "stayed_connected": states == ("connected", "connected"),
            "fds_flat": last["fds"] == warm["fds"],
            "tasks_flat": last["tasks"] <= warm["tasks"] + args.task_margin,
            "rss_flat": rss_growth <= args.rss_margin,
            # Each churner has at most one channel open (or closing) on each side at a time,
            # and each connection lists its last MAX_CLOSED_CHANNELS closed ones for getStats.
            "channels_flat": last["channels"]
            <= warm["channels"] + 4 * args.churners + 2 * MAX_CLOSED_CHANNELS,
            "no_task_left": tasks_after == tasks_before,
            "no_fd_left": fds_after == fds_before,
        }
        return {
            "ok": all(checks.values()),
            "checks": checks,
            "warmup_sample": warm,
            "last_sample": last,
            "final_sample": final,
            "rss_growth_mib": round(rss_growth, 2),
            "rss_slope_mib_per_hour": round(slope * 3600 / 1024, 2),
            "reliable": hashes,
            "partial": partial,
            "churn": {
                "opened": self.churn_opened,
                "verified": self.churn_verified,
                "mismatches": self.churn_mismatches,
                "stalls": self.churn_stalls,
                "bytes": self.churn.received_bytes,
            },
            "restarts": self.restarts,
            "restart_failures": self.restart_failures,
            "candidates_retried": self.candidates_retried,
            "candidates_dropped": self.candidates_dropped,
            "connection_states": list(states),
            "tasks": {"before": tasks_before, "after": tasks_after},
            "fds": {"before": fds_before, "after": fds_after},
            "samples": self.samples,
            "options": vars(args),
        }


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 with fewer than two points)."""
    if len(xs) < 2:
        return 0.0
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var


def print_verdict(report: dict[str, Any]) -> None:
    print()
    for name, flow in report["reliable"].items():
        print(
            f"{name:>16}: {flow['messages']} messages, {flow['received_bytes'] / 2**20:.1f} of"
            f" {flow['sent_bytes'] / 2**20:.1f} MiB, sha256 {'match' if flow['match'] else 'MISMATCH'}"
        )
    for name, flow in report["partial"].items():
        share = flow["delivered"] / flow["sent"] if flow["sent"] else math.nan
        print(
            f"{name:>16}: {flow['delivered']} of {flow['sent']} delivered ({share:.1%}),"
            f" {flow['bad']} damaged or out of order"
        )
    churn = report["churn"]
    print(
        f"{'churn':>16}: {churn['verified']} channels opened, filled, closed and verified"
        f" ({churn['opened']} opened, {churn['mismatches']} mismatches, {churn['stalls']} stalls)"
    )
    print(
        f"{'ICE restarts':>16}: {report['restarts']} ({report['restart_failures']} failed);"
        f" candidates retried {report['candidates_retried']}, dropped {report['candidates_dropped']}"
    )
    warm, final = report["warmup_sample"], report["last_sample"]
    print(
        f"{'flatness':>16}: from t={warm['t']:.0f} s to t={final['t']:.0f} s RSS"
        f" {warm['rss_kib'] / 1024:.1f} -> {final['rss_kib'] / 1024:.1f} MiB"
        f" ({report['rss_growth_mib']:+.2f}, slope {report['rss_slope_mib_per_hour']:+.2f} MiB/h),"
        f" fds {warm['fds']} -> {final['fds']}, tasks {warm['tasks']} -> {final['tasks']},"
        f" live channels {warm['channels']} -> {final['channels']};"
        f" after close tasks {report['tasks']['before']} -> {report['tasks']['after']}"
    )
    failed = [name for name, ok in report["checks"].items() if not ok]
    print(f"{'verdict':>16}: {'PASS' if report['ok'] else 'FAIL: ' + ', '.join(failed)}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="length of the run (2)")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds (10)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds before the reference sample"
    )
    parser.add_argument("--loss", type=float, default=0.05, help="loss each way (0.05)")
    parser.add_argument("--reorder", type=float, default=0.05, help="reordering each way (0.05)")
    parser.add_argument("--delay", type=float, default=0.01, help="one-way delay in s (0.01)")
    parser.add_argument("--restart-every", type=float, default=30.0, help="seconds (30)")
    parser.add_argument("--churners", type=int, default=2, help="parallel churn loops (2)")
    parser.add_argument("--churn-pause", type=float, default=0.2, help="max pause, s (0.2)")
    parser.add_argument("--rate-scale", type=float, default=1.0, help="multiplies every rate")
    parser.add_argument("--rss-margin", type=float, default=8.0, help="MiB of growth allowed (8)")
    parser.add_argument(
        "--task-margin",
        type=int,
        default=1,
        help="tasks the last sample may have above the reference one: a sample can catch a"
        " short-lived library task (1)",
    )
    parser.add_argument(
        "--lifetime-ms", type=int, default=2000, help="maxPacketLifetime of partial-lifetime"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=str, default=None, help="write the report here")
    args = parser.parse_args(argv)
    if args.warmup is None:
        # A quarter of the run, at most 5 minutes: start-up allocations (caches, the first
        # restart's generations) are done by then.
        args.warmup = min(300.0, args.minutes * 60 / 4)
    return args


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    return await Soak(args).run()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"soak: {args.minutes:g} min, loss {args.loss:.0%}, reorder {args.reorder:.0%},"
        f" delay {args.delay * 1000:.0f} ms, restart every {args.restart_every:g} s,"
        f" {args.churners} churners, rates x{args.rate_scale:g}",
        flush=True,
    )
    report = trio.run(_main, args)
    print_verdict(report)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=1)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
