"""A user program written against trio_rtc's typed surface: ``mypy --strict`` must accept it.

Checked (never run) by ``tests/test_user_typing.py``; ``bad.py`` beside it holds the mistakes
the types must catch.
"""

from __future__ import annotations

import trio

from trio_rtc import (
    RTCDataChannel,
    RTCDataChannelEvent,
    RTCErrorEvent,
    RTCPeerConnection,
    RTCPeerConnectionIceEvent,
    RTCSctpTransport,
)
from trio_rtc.datachannel import MessageEvent, RTCDataChannelInit, RTCDataChannelState
from trio_rtc.events import Event
from trio_rtc.pc import RTCPeerConnectionState, RTCSignalingState, RTCTrackEvent


async def exchange(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await offerer.wait_gathering_complete()
    assert offerer.localDescription is not None
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await answerer.wait_for(iceGatheringState="complete")
    assert answerer.localDescription is not None
    await offerer.setRemoteDescription(answerer.localDescription)


async def main() -> None:
    async with RTCPeerConnection() as a, RTCPeerConnection() as b:
        chat: RTCDataChannel = a.createDataChannel("chat")
        unordered = a.createDataChannel("lossy", ordered=False, maxRetransmits=0)
        options: RTCDataChannelInit = {"protocol": "json", "priority": "high"}
        bulk = a.createDataChannel("bulk", options, ordered=True)
        negotiated = b.createDataChannel("side", {"negotiated": True, "id": 7})

        received: list[str | bytes] = []

        def on_message(event: MessageEvent) -> None:
            received.append(event.data)

        async def on_datachannel(event: RTCDataChannelEvent) -> None:
            channel: RTCDataChannel = event.channel
            channel.onmessage = on_message
            channel.onerror = lambda error_event: print(error_event.error)

        def on_any(event: Event) -> None:
            print(event.type)

        b.ondatachannel = on_datachannel
        a.onicecandidate = lambda event: print(event.candidate)
        a.onconnectionstatechange = on_any
        a.ontrack = lambda event: print(event.track.kind)
        chat.onopen = on_any
        chat.onclose = None
        bulk.onerror = on_any  # a handler of a base event class fits any event

        def on_candidate(event: RTCPeerConnectionIceEvent) -> None:
            if event.candidate is not None:
                print(event.candidate.candidate)

        def on_track(event: RTCTrackEvent) -> None:
            print(event.receiver, event.streams)

        def on_error(event: RTCErrorEvent) -> None:
            print(event.error)

        b.onicecandidate = on_candidate
        b.ontrack = on_track
        unordered.onerror = on_error
        b.addEventListener("datachannel", on_datachannel)

        await exchange(a, b)
        await a.setLocalDescription(await a.createOffer({"iceRestart": True}))
        await a.setLocalDescription({"type": "rollback"})
        state: RTCPeerConnectionState = await a.wait_for(connectionState=("connected", "failed"))
        if state == "failed":
            return
        signaling: RTCSignalingState = await a.wait_for(signalingState="stable")
        print(signaling, a.iceConnectionState, a.iceGatheringState)
        await b.wait_connection_state("connected")  # the older spelling still works

        sctp: RTCSctpTransport | None = a.sctp
        if sctp is not None:
            print(sctp.maxMessageSize, sctp.state, await sctp.wait_for(state="connected"))

        ready: RTCDataChannelState = await chat.wait_for(readyState=("open", "closed"))
        if ready == "open":
            chat.send("text")
            chat.send(b"binary")
            await chat.send_message("hello")
            await chat.send_message(bytearray(b"world"))
            chat.bufferedAmountLowThreshold = 1024
            print(chat.label, chat.ordered, chat.maxRetransmits, chat.id, chat.priority)
        await negotiated.wait_open()
        async for message in negotiated:
            if isinstance(message, str):
                print(message.upper())
            break
        await chat.aclose()
        stats = await a.getStats()
        print(len(stats), received)


if __name__ == "__main__":
    trio.run(main)
