"""Mistakes users make get an error that says what is wrong where it is made: trio_rtc used
under asyncio, a misspelt ``on*`` handler attribute, a state that ``wait_for`` would wait for
forever."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from pc_helpers import connect, make_pc, pc_pair

from trio_rtc import RTCDataChannel, RTCPeerConnection
from trio_rtc.events import Event, EventTarget, RefuseUnknownHandlers, on_event
from trio_rtc.exceptions import InvalidStateError

# --- asyncio -------------------------------------------------------------------------------

ASYNCIO_ENTRY_POINTS: dict[str, Callable[[], Awaitable[object]]] = {
    "async with RTCPeerConnection()": lambda: RTCPeerConnection().__aenter__(),
    "RTCPeerConnection.createOffer()": lambda: RTCPeerConnection().createOffer(),
    "RTCPeerConnection.setRemoteDescription()": lambda: RTCPeerConnection().setRemoteDescription(
        {"type": "offer", "sdp": ""}
    ),
    "RTCPeerConnection.close()": lambda: RTCPeerConnection().close(),
    "RTCPeerConnection.getStats()": lambda: RTCPeerConnection().getStats(),
    "RTCPeerConnection.generateCertificate()": lambda: RTCPeerConnection.generateCertificate(),
    "RTCPeerConnection.wait_for()": lambda: RTCPeerConnection().wait_for(
        connectionState="connected"
    ),
    "RTCDataChannel.wait_open()": lambda: RTCDataChannel("chat").wait_open(),
    "RTCDataChannel.send_message()": lambda: RTCDataChannel("chat").send_message("hi"),
    "RTCDataChannel.receive()": lambda: RTCDataChannel("chat").receive(),
}


@pytest.mark.parametrize("what", sorted(ASYNCIO_ENTRY_POINTS))
def test_under_asyncio_the_error_says_to_use_trio(what: str) -> None:
    async def main() -> None:
        await ASYNCIO_ENTRY_POINTS[what]()

    with pytest.raises(RuntimeError) as caught:
        asyncio.run(main())
    message = str(caught.value)
    assert message.startswith(f"{what} needs Trio, but this code runs under asyncio.")
    assert "trio.run(main)" in message and "trio-asyncio" in message
    assert "RunContext" not in message


def test_a_user_program_under_asyncio_fails_at_its_first_line_of_trio_rtc() -> None:
    async def main() -> None:
        async with RTCPeerConnection() as pc:
            pc.createDataChannel("chat")

    with pytest.raises(RuntimeError, match=r"^async with RTCPeerConnection\(\) needs Trio"):
        asyncio.run(main())


def test_outside_any_event_loop_the_error_says_so() -> None:
    coroutine = RTCPeerConnection().createOffer()
    with pytest.raises(RuntimeError, match="needs Trio, but no Trio run is active"):
        coroutine.send(None)


# --- on* attributes ----------------------------------------------------------------------------


async def test_a_misspelt_handler_attribute_is_refused_with_the_nearest_name() -> None:
    pc = RTCPeerConnection()
    with pytest.raises(AttributeError) as caught:
        pc.ondatachanel = print  # type: ignore[attr-defined]
    message = str(caught.value)
    assert "RTCPeerConnection has no event handler attribute 'ondatachanel'" in message
    assert "did you mean 'ondatachannel'?" in message
    assert caught.value.name == "ondatachanel"
    assert "ondatachanel" not in vars(pc)

    channel = RTCDataChannel("chat")
    with pytest.raises(AttributeError, match="did you mean 'onmessage'"):
        channel.onmesage = print  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="'onnothinglikeit': its on\\* attributes are"):
        channel.onnothinglikeit = print  # type: ignore[attr-defined]


async def test_known_handlers_and_other_attributes_are_set_as_before() -> None:
    pc = RTCPeerConnection()
    pc.ondatachannel = print
    assert pc.ondatachannel is print
    pc.ondatachannel = None
    # Only "on" plus lowercase letters is a handler name: other attributes are the user's.
    pc.user_data = {"room": 1}  # type: ignore[attr-defined]
    pc.only_audio = True  # type: ignore[attr-defined]
    pc.onAir = True  # type: ignore[attr-defined]
    channel = RTCDataChannel("chat")
    channel.onmessage = print
    channel.send_high_water = 1 << 16
    assert channel.send_high_water == 1 << 16


async def test_a_subclass_may_declare_handler_attributes_of_its_own() -> None:
    class MyConnection(RTCPeerConnection):
        onping = on_event[Event]("ping")
        onpong: Callable[[Any], None] | None = None
        onlog: Callable[[str], None]  # declared by annotation only

    pc = MyConnection()
    seen: list[str] = []
    pc.onping = lambda event: seen.append(event.type)
    pc.onpong = print
    pc.onlog = print
    pc.dispatchEvent(Event("ping"))
    assert seen == ["ping"]
    with pytest.raises(AttributeError, match="did you mean 'onping'") as caught:
        pc.onpingg = print  # type: ignore[attr-defined]
    assert "onlog" in str(caught.value)


def test_event_targets_without_the_guard_are_unchanged() -> None:
    class Plain(EventTarget):
        pass

    class Guarded(RefuseUnknownHandlers, EventTarget):
        onping = on_event[Event]("ping")

    Plain().onanything = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="its on\\* attributes are onping"):
        Guarded().onanything = 1  # type: ignore[attr-defined]


# --- wait_for ------------------------------------------------------------------------------------


async def test_wait_for_refuses_a_state_the_attribute_never_takes() -> None:
    pc = RTCPeerConnection()
    with pytest.raises(
        ValueError, match=r"connectionState is never 'conected'; did you mean 'connected'"
    ):
        await pc.wait_for(connectionState="conected")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="never 'open'"):
        await pc.wait_for(iceGatheringState=("complete", "open"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"takes exactly one of connectionState"):
        await pc.wait_for()  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"takes exactly one of"):
        await pc.wait_for(connectionState="new", signalingState="stable")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="did you mean 'open'"):
        await RTCDataChannel("chat").wait_for(readyState="opened")  # type: ignore[arg-type]


async def test_wait_for_returns_at_once_when_the_state_is_there() -> None:
    pc = RTCPeerConnection()
    with trio.testing.assert_checkpoints():
        assert await pc.wait_for(connectionState=("new", "connecting")) == "new"
    assert await pc.wait_for(signalingState="stable") == "stable"
    assert await pc.wait_for(iceGatheringState="new") == "new"
    assert await pc.wait_for(iceConnectionState="new") == "new"


async def test_wait_for_raises_when_the_connection_closes_first() -> None:
    async with make_pc() as pc:
        result: list[object] = []

        async def waiter() -> None:
            with pytest.raises(InvalidStateError) as caught:
                await pc.wait_for(connectionState="connected")
            result.append(str(caught.value))

        async def closed() -> None:
            result.append(await pc.wait_for(connectionState="closed"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            nursery.start_soon(closed)
            await trio.testing.wait_all_tasks_blocked()
            await pc.close()
    assert "closed" in result
    assert (
        "RTCPeerConnection.connectionState is 'closed' and the RTCPeerConnection has ended: "
        "it will never be 'connected'" in result
    )


async def test_channel_wait_for_raises_once_the_channel_closed() -> None:
    channel = RTCDataChannel("chat")
    channel.close()
    assert await channel.wait_for(readyState="closed") == "closed"
    with pytest.raises(InvalidStateError, match="readyState is 'closed'"):
        await channel.wait_for(readyState="open")


async def test_one_waiting_scheme_across_the_stack_and_the_old_names() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        channel = a.createDataChannel("chat")
        with trio.fail_after(20):
            await connect(a, b, nursery)
            assert await a.wait_for(connectionState=("connected", "failed")) == "connected"
            assert await b.wait_connection_state("connected") == "connected"
            assert await a.wait_for(iceConnectionState=("connected", "completed")) in (
                "connected",
                "completed",
            )
            assert await a.wait_for(signalingState="stable") == "stable"
            ice = a.ice_transport
            dtls = a.dtls_transport
            assert ice is not None and dtls is not None
            assert await ice.wait_for(state=("connected", "completed")) in (
                "connected",
                "completed",
            )
            assert await ice.wait_for_state("connected", "completed") in ("connected", "completed")
            assert await ice.wait_for(gatheringState="complete") == "complete"
            assert await a.wait_for(iceGatheringState="complete") == "complete"
            assert await dtls.wait_for(state="connected") == "connected"
            assert await channel.wait_for(readyState="open") == "open"
            sctp = a.sctp
            assert sctp is not None
            assert await sctp.wait_for(state="connected") == "connected"
        nursery.cancel_scope.cancel()
