"""The client side: a JSON message channel over a WebSocket, and :func:`negotiate_over`, which
runs the W3C "perfect negotiation" pattern for one peer connection over such a channel.

Messages are ``{"description": {"type", "sdp"}}`` and ``{"candidate": <candidate.toJSON()> |
null}``, the shapes browsers' signalling code commonly uses, so a page can be the other side;
end-of-candidates is sent once, as ``null``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import trio
import trio_websocket

from ..exceptions import DOMException
from ..pc import RTCPeerConnection, RTCPeerConnectionIceEvent
from .server import MAX_MESSAGE_SIZE

__all__ = ["SignalingChannel", "SignalingError", "negotiate_over", "open_signaling"]

logger = logging.getLogger("trio_rtc.signaling")

#: Remote candidates held while their description has not arrived yet.
MAX_EARLY_CANDIDATES = 256


class SignalingError(trio_websocket.HandshakeError):
    """:func:`open_signaling` could not reach the relay, or the relay refused the connection.

    The message says which URL and why, in one line a program can print as it is. It is a
    ``trio_websocket.HandshakeError``, so code that caught that before still catches it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _describe_open_failure(url: str, exc: trio_websocket.HandshakeError) -> str:
    if isinstance(exc, trio_websocket.ConnectionRejected):
        body = (exc.body or b"").decode("utf-8", "replace").strip()
        reason = f"{exc.status_code} {body}".strip()
        return f"the signalling relay at {url} refused the connection: {reason}"
    if isinstance(exc, trio_websocket.ConnectionTimeout):
        return f"the signalling relay at {url} did not answer in time"
    reasons: list[str] = []
    cause = exc.__cause__
    # trio.open_tcp_stream says "all attempts to connect ... failed" and keeps each attempt's
    # OSError (connection refused, no route, ...) in the group it chains from.
    attempts = cause.__cause__ if cause is not None else None
    if isinstance(attempts, BaseExceptionGroup):
        for attempt in attempts.exceptions:
            text = attempt.strerror if isinstance(attempt, OSError) else None
            reason = text or str(attempt)
            if reason not in reasons:
                reasons.append(reason)
    elif cause is not None:
        reasons.append(str(cause))
    why = f" ({', '.join(reasons)})" if reasons else ""
    return (
        f"cannot reach the signalling relay at {url}{why}: is a relay running there? "
        "(trio_rtc.signaling.serve_signaling runs one)"
    )


class SignalingChannel:
    """JSON objects over one WebSocket connection."""

    def __init__(self, connection: trio_websocket.WebSocketConnection) -> None:
        self.connection = connection

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send_message(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        """The next JSON object; messages that are not JSON objects are skipped."""
        while True:
            text = await self.connection.get_message()
            try:
                message = json.loads(text)
            except ValueError:
                logger.warning("ignoring a signalling message that is not JSON")
                continue
            if isinstance(message, dict):
                return message

    def __aiter__(self) -> SignalingChannel:
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            return await self.receive()
        except trio_websocket.ConnectionClosed:
            raise StopAsyncIteration from None


@contextlib.asynccontextmanager
async def open_signaling(url: str) -> AsyncIterator[SignalingChannel]:
    """``async with open_signaling("ws://127.0.0.1:8765/room") as channel:``

    Raises :class:`SignalingError` when the relay cannot be reached or refuses the connection
    (``ValueError`` for a URL that is not ``ws://`` or ``wss://``)."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            ws = await stack.enter_async_context(
                trio_websocket.open_websocket_url(url, max_message_size=MAX_MESSAGE_SIZE)
            )
        except trio_websocket.HandshakeError as exc:
            raise SignalingError(_describe_open_failure(url, exc)) from exc
        yield SignalingChannel(ws)


async def negotiate_over(
    pc: RTCPeerConnection,
    channel: SignalingChannel,
    *,
    polite: bool,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Keep ``pc`` negotiated with the peer at the other end of ``channel`` until the channel
    closes: send an offer on ``negotiationneeded``, answer offers, trickle candidates both ways.
    Exactly one of the two peers must be ``polite`` (it yields when both offer at once).

    Start it with ``await nursery.start(...)`` before creating data channels: it reports started
    once it listens for ``negotiationneeded``, so that no such event is missed."""
    making_offer = False
    ignore_offer = False
    waiting: list[Any] = []
    # One outbox, one sender: messages leave in the order they were queued, so a description is
    # always sent before the candidates that follow it.
    outbox_send, outbox_receive = trio.open_memory_channel[dict[str, Any]](math.inf)

    def queue_local_description() -> None:
        description = pc.localDescription
        if description is not None:
            outbox_send.send_nowait({"description": description.toJSON()})

    async def on_negotiation_needed(_event: object) -> None:
        nonlocal making_offer
        try:
            making_offer = True
            await pc.setLocalDescription()
            queue_local_description()
        except DOMException as exc:
            logger.warning("could not make an offer: %s", exc)
        finally:
            making_offer = False

    def on_candidate(event: RTCPeerConnectionIceEvent) -> None:
        candidate = event.candidate
        if candidate is not None and not candidate.candidate:
            # The per-m-section end marker (candidate ""): Firefox's ICE tries to parse it when
            # it arrives with an sdpMid and logs "Couldn't parse trickle candidate". The null
            # that follows says end-of-candidates for every m-section, and every browser takes
            # it (addIceCandidate(null) or {}), so only that one is sent.
            return
        outbox_send.send_nowait({"candidate": candidate.toJSON() if candidate else None})

    async def send_all() -> None:
        with contextlib.suppress(trio_websocket.ConnectionClosed):
            async for message in outbox_receive:
                await channel.send(message)

    pc.addEventListener("negotiationneeded", on_negotiation_needed)
    pc.addEventListener("icecandidate", on_candidate)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_all)
            task_status.started()
            async for message in channel:
                if "description" in message:
                    description = message["description"]
                    offer = isinstance(description, dict) and description.get("type") == "offer"
                    collision = offer and (making_offer or pc.signalingState != "stable")
                    ignore_offer = not polite and collision
                    if ignore_offer:
                        continue
                    await pc.setRemoteDescription(description)
                    if offer:
                        await pc.setLocalDescription()
                        queue_local_description()
                    early, waiting = waiting, []
                    for candidate in early:
                        await pc.addIceCandidate(candidate)
                elif "candidate" in message:
                    if pc.remoteDescription is None and not ignore_offer:
                        # Overtook its description on the way (a peer whose signalling does not
                        # keep order): hold it until the description arrives.
                        if len(waiting) < MAX_EARLY_CANDIDATES:
                            waiting.append(message["candidate"])
                        continue
                    try:
                        await pc.addIceCandidate(message["candidate"])
                    except DOMException:
                        if not ignore_offer:
                            raise
            nursery.cancel_scope.cancel()
    finally:
        pc.removeEventListener("negotiationneeded", on_negotiation_needed)
        pc.removeEventListener("icecandidate", on_candidate)
