"""Memory per connected peer connection (issue 14): what a connection keeps once connected.

Structural checks, no timings: the handshake state that only the handshake needed is gone,
what can be shared is shared, what is rarely used is made when used, and the number of objects
the garbage collector tracks per connected pc stays under a bound (a gen-2 collection's pause
grows with it, and a 1,000-pc process pays it on every one).
"""

from __future__ import annotations

import contextlib
import gc
import random
from collections.abc import AsyncIterator
from pathlib import Path

import trio
import trio.testing
from pc_helpers import OPTIONS, connect, pc_pair

from trio_rtc import RTCDataChannel, RTCPeerConnection
from trio_rtc.dtls.connection import DtlsConnection
from trio_rtc.dtls.handshake_flow import HandshakeFlow
from trio_rtc.events import HandlerQueue
from trio_rtc.ice.agent import IceAgent
from trio_rtc.jsep import Description, JsepSession
from trio_rtc.sctp.association import SctpAssociation
from trio_rtc.sdp import parse_sdp_untrusted

SAMPLES = Path(__file__).parent / "sdp_samples"

#: Objects the collector tracks per connected pc (a pair with one open channel, counted per pc,
#: loopback only as the helpers connect). Measured at 431; 522 before issue 14. The bound leaves
#: the drivers room to change and still catches a return of most of what was removed.
MAX_TRACKED_OBJECTS_PER_PC = 480


async def open_channel(
    a: RTCPeerConnection, b: RTCPeerConnection, nursery: trio.Nursery
) -> tuple[RTCDataChannel, RTCDataChannel]:
    announced: list[RTCDataChannel] = []
    b.ondatachannel = lambda event: announced.append(event.channel)
    channel = a.createDataChannel("memory")
    with trio.fail_after(20):
        await connect(a, b, nursery, trickled=False)
        await channel.wait_open()
        await b.wait_until(lambda: bool(announced))
        await announced[0].wait_open()
    return channel, announced[0]


@contextlib.asynccontextmanager
async def connected_pair() -> AsyncIterator[
    tuple[RTCPeerConnection, RTCPeerConnection, RTCDataChannel, RTCDataChannel]
]:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        local, remote = await open_channel(a, b, nursery)
        await trio.testing.wait_all_tasks_blocked()
        yield a, b, local, remote
        nursery.cancel_scope.cancel()


async def test_dtls_keeps_no_handshake_state_once_connected() -> None:
    async with connected_pair() as (a, b, _, _):
        for pc in (a, b):
            dtls = pc.dtls_transport
            assert dtls is not None and dtls.state == "connected"
            flow = dtls.core._flow
            # Every handshake message, the ephemeral key and the peer's offers are gone ...
            assert flow.transcript == []
            assert flow.key_share is None
            assert flow.peer_signature_schemes is None
            assert flow._client_extensions == {}
            # ... and what the connection still serves works: the peer's certificate, keying
            # material (the SRTP exporter), and the record layer.
            assert dtls.getRemoteCertificates()
            assert len(dtls.export_keying_material("EXTRACTOR-test", 16)) == 16
        assert a.dtls_transport is not None and b.dtls_transport is not None
        assert a.dtls_transport.export_keying_material(
            "EXTRACTOR-test", 32
        ) == b.dtls_transport.export_keying_material("EXTRACTOR-test", 32)


async def test_the_per_connection_cores_have_no_instance_dict() -> None:
    async with connected_pair() as (a, _, _, _):
        assert a.dtls_transport is not None
        for core in (a.dtls_transport.core, a.dtls_transport.core._flow, a._jsep):
            assert not hasattr(core, "__dict__"), type(core)
        sctp = a.sctp
        assert sctp is not None
        # The association keeps a __dict__ slot for attributes beyond its own, made only if
        # one is set.
        assert "__dict__" in SctpAssociation.__slots__
        assert not vars(sctp.association)
    assert DtlsConnection.__slots__ and HandshakeFlow.__slots__ and JsepSession.__slots__


async def test_pcs_without_a_certificate_share_one() -> None:
    async with (
        RTCPeerConnection(ice_options=OPTIONS) as a,
        RTCPeerConnection(ice_options=OPTIONS) as b,
        trio.open_nursery() as nursery,
    ):
        await open_channel(a, b, nursery)
        assert a.certificate is not None
        assert a.certificate is b.certificate
        nursery.cancel_scope.cancel()


async def test_default_random_generators_are_shared() -> None:
    async with connected_pair() as (a, b, _, _):
        assert a.sctp is not None and b.sctp is not None
        assert a.sctp.association._rng is b.sctp.association._rng
        assert a.ice_transport is not None and b.ice_transport is not None
        assert a.ice_transport.agent._rng is b.ice_transport.agent._rng
    seeded = random.Random(1)
    assert IceAgent(controlling=True, rng=seeded)._rng is seeded


async def test_connected_descriptions_are_kept_as_text() -> None:
    async with connected_pair() as (a, b, _, _):
        for pc in (a, b):
            jsep = pc._jsep
            assert jsep.current_local is not None and jsep.current_remote is not None
            assert jsep.current_local.is_compact and jsep.current_remote.is_compact
            local = pc.localDescription
            remote = pc.remoteDescription
            assert local is not None and remote is not None
            # Reading them parses them for the read only.
            assert jsep.current_local.is_compact and jsep.current_remote.is_compact
            assert "a=candidate:" in local.sdp
            assert jsep.current_remote.model.media[0].candidates
        # Each side's view of the other's description is what the other wrote.
        assert a.remoteDescription is not None and b.localDescription is not None
        assert a.remoteDescription.sdp == b.localDescription.sdp
        # A description applied while connected (a renegotiation) is kept as text as well.
        offer = await a.createOffer()
        await a.setLocalDescription(offer)
        await b.setRemoteDescription(offer)
        await b.setLocalDescription(await b.createAnswer())
        answer = b.localDescription
        assert answer is not None
        await a.setRemoteDescription(answer)
        for pc in (a, b):
            assert pc.signalingState == "stable"
            assert pc._jsep.current_local is not None and pc._jsep.current_local.is_compact
            assert pc._jsep.current_remote is not None and pc._jsep.current_remote.is_compact


def test_a_compact_description_parses_back_to_the_same_model() -> None:
    checked = 0
    for path in sorted(SAMPLES.glob("*.sdp")):
        text = path.read_text()
        try:
            parse_sdp_untrusted(text)
        except Exception:
            continue  # the samples of malformed descriptions
        for with_candidates in (False, True):
            model = parse_sdp_untrusted(text)
            if with_candidates:
                for media in model.media:
                    media.candidates.append("1 1 udp 2130706431 192.0.2.1 9999 typ host")
                    media.end_of_candidates = True
            expected = model.serialize()
            description = Description("offer", model)
            description.compact()
            assert description.is_compact
            assert description.sdp() == expected, path.name
            assert description.model == parse_sdp_untrusted(expected), path.name
            assert description.model.serialize() == expected, path.name
            checked += 1
    assert checked >= 20


def test_a_description_that_cannot_be_written_stays_parsed() -> None:
    """A trickled candidate ending in CRLF passes the candidate parser but cannot be written
    into SDP: compacting keeps the model rather than raising in the middle of an operation."""
    model = parse_sdp_untrusted((SAMPLES / "aiortc_offer_data.sdp").read_text())
    model.media[0].candidates.append("1 1 udp 1 192.0.2.1 5 typ host\r\n")
    description = Description("offer", model)
    description.compact()
    assert not description.is_compact and description.model is model


def test_our_own_sdp_keeps_no_layout() -> None:
    """A layout restores a peer's own line order and spelling; our canonical text needs none."""
    for path in sorted(SAMPLES.glob("*.sdp")):
        try:
            model = parse_sdp_untrusted(path.read_text())
        except Exception:
            continue
        canonical = parse_sdp_untrusted(model.serialize(keep_layout=False))
        assert canonical.layout is None, path.name
        assert all(m.layout is None for m in canonical.media), path.name


async def test_idle_channels_and_queues_hold_no_buffers() -> None:
    async with connected_pair() as (a, b, local, remote):
        for channel in (local, remote):
            assert channel._inbox is None
            assert channel._inbox_waiters is None and channel._room_waiters is None
        for pc in (a, b):
            queue = pc._handler_queue
            assert queue is not None and queue._pending is None
        # The events task keeps no nursery of its own.
        found = []
        todo = [trio.lowlevel.current_root_task()]
        while todo:
            task = todo.pop()
            if task.name == "trio_rtc.events":
                found.append(task)
            for nursery in task.child_nurseries:
                todo.extend(nursery.child_tasks)
        assert len(found) == 2
        assert all(not task.child_nurseries for task in found)
        # Messages read with receive() make the inbox; it works as before.
        local.send(b"one")
        with trio.fail_after(10):
            assert await remote.receive() == b"one"


async def test_async_handlers_still_run_in_the_connection_queue() -> None:
    async with connected_pair() as (_, b, local, remote):
        got: list[object] = []

        async def on_message(event: object) -> None:
            await trio.lowlevel.checkpoint()
            got.append(getattr(event, "data", None))

        remote.onmessage = on_message
        local.send(b"x")
        with trio.fail_after(10):
            await remote.wait_until(lambda: remote.messages_received == 1)
            while not got:  # noqa: ASYNC110
                await trio.sleep(0.01)
        assert got == [b"x"]
        queue = b._handler_queue
        assert queue is not None and queue.completed == 1
    assert isinstance(queue, HandlerQueue) and queue.closed


async def test_tracked_objects_per_connected_pc_stay_bounded() -> None:
    pairs = 4
    async with contextlib.AsyncExitStack() as stack:
        # One pair first: imports, caches and the shared certificate are not per pc.
        await stack.enter_async_context(connected_pair())
        gc.collect()
        before = len(gc.get_objects())
        for _ in range(pairs):
            await stack.enter_async_context(connected_pair())
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        per_pc = (len(gc.get_objects()) - before) / (2 * pairs)
    print(f"tracked objects per connected pc: {per_pc:.0f}")
    assert per_pc <= MAX_TRACKED_OBJECTS_PER_PC, per_pc


def _frame_locals(task: trio.lowlevel.Task) -> list[object]:
    """Every local of every frame of ``task``'s await chain (and the values of dict locals)."""
    found: list[object] = []
    coro: object = task.coro
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        for value in frame.f_locals.values():
            found.append(value)
            if isinstance(value, dict):
                found.extend(value.values())
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return found


async def test_long_lived_tasks_let_go_of_their_start_status() -> None:
    """A trio task status keeps the temporary nursery ``nursery.start()`` made (a Nursery, its
    cancel scope and their sets); a task that lives as long as the connection must not keep it."""
    async with connected_pair():
        tasks = []
        todo = [trio.lowlevel.current_root_task()]
        while todo:
            task = todo.pop()
            if task.name in ("trio_rtc.pc", "trio_rtc.events", "trio_rtc.ice"):
                tasks.append(task)
            for nursery in task.child_nurseries:
                todo.extend(nursery.child_tasks)
        assert sorted(t.name for t in tasks) == sorted(
            ["trio_rtc.events", "trio_rtc.ice", "trio_rtc.pc"] * 2
        )
        for task in tasks:
            for value in _frame_locals(task):
                assert type(value).__name__ != "_TaskStatus", task.name
                held = getattr(value, "_status", None)
                assert held is None or type(held).__name__ != "_TaskStatus", task.name
