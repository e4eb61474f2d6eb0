"""Mistakes a user can make with trio_rtc that ``mypy --strict`` must report.

Checked (never run) by ``tests/test_user_typing.py``: each line that ends in an ``E:`` comment
must get a mypy error whose message contains the comment's text, and no other line may get one.
"""

from __future__ import annotations

from trio_rtc import RTCDataChannel, RTCPeerConnection
from trio_rtc.datachannel import MessageEvent
from trio_rtc.events import RTCDataChannelEvent


def on_message(event: MessageEvent) -> None:
    print(event.data)


def on_datachannel(event: RTCDataChannelEvent) -> None:
    print(event.channel.label)


async def mistakes(pc: RTCPeerConnection, channel: RTCDataChannel) -> None:
    await channel.send_message(123)  # E: Argument 1 to "send_message" of "RTCDataChannel"
    channel.send(["a", "list"])  # E: Argument 1 to "send" of "RTCDataChannel"
    pc.createDataChannel("chat", ordered="yes")  # E: Argument "ordered" to "createDataChannel"
    pc.createDataChannel("chat", {"ordered": "yes"})  # E: expected "RTCDataChannelInit | None"
    pc.createDataChannel("chat", reliable=True)  # E: Unexpected keyword argument "reliable"
    pc.createDataChannel("chat", priority="urgent")  # E: Argument "priority" to "createDataChannel"
    pc.createDataChannel(42)  # E: Argument 1 to "createDataChannel"
    await pc.wait_for(connectionState="conected")  # E: has incompatible type "Literal['conected']"
    await pc.wait_for(connectionState="connected", signalingState="stable")  # E: No overload
    await channel.wait_for(readyState="opened")  # E: Argument "readyState" to "wait_for"
    print(pc.connectionState == "conected")  # E: Non-overlapping equality check
    print(channel.readyState == "opened")  # E: Non-overlapping equality check
    pc.ondatachanel = on_datachannel  # E: "RTCPeerConnection" has no attribute "ondatachanel"
    channel.onmesage = on_message  # E: "RTCDataChannel" has no attribute "onmesage"
    channel.onmessage = on_datachannel  # E: Incompatible types in assignment
    pc.ondatachannel = on_message  # E: Incompatible types in assignment
    pc.ondatachannel = lambda event: print(event.chanel)  # E: has no attribute "chanel"
    channel.onmessage = "print"  # E: Incompatible types in assignment
    print(pc.sctp.maxMessageSize)  # E: Item "None" of "RTCSctpTransport | None"
    await pc.createOffer({"iceRestart": "yes"})  # E: to "createOffer" of "RTCPeerConnection"
    await pc.createOffer({"iceRestrat": True})  # E: expected "RTCOfferOptions | None"
    await pc.getStats("audio")  # E: Argument 1 to "getStats" of "RTCPeerConnection"
    created: int = pc.createDataChannel("chat")  # E: Incompatible types in assignment
    print(created)
