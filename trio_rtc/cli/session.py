"""How a CLI command gets a connected peer connection: through the signalling relay, or through
copy-paste tokens.

Both ways exchange complete descriptions (each side waits for ICE gathering to finish, so the
description carries every candidate; nothing trickles). Every session carries one data channel,
negotiated out of band as id 0, so either side may make the offer.

Over the relay a session is found, and found again, by ``hello`` messages: each process says
hello with a fresh random id when it joins the room and after it lost a connection; the side with
the larger id offers. A hello from an id it is not talking to makes a process drop its current
connection and start over with the newcomer, which is how a restarted sender or receiver picks up
where the lost one stopped (``send`` and ``receive`` resume from the receiver's partial file).
Descriptions are addressed ``from`` one id ``to`` another, so the relay's replay of what a
process that left said to an empty room is harmless.

With tokens there is one session: the offering side prints its description as a token and reads
the answer's token from stdin; the answering side reads the offer's token and prints its answer.
"""

from __future__ import annotations

import math
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import attrs
import trio
import trio_websocket

from ..configuration import RTCConfiguration
from ..datachannel import RTCDataChannel
from ..exceptions import InvalidStateError
from ..ice.transport import IceTransportOptions
from ..pc import RTCPeerConnection
from ..signaling import open_signaling
from .token import TokenError, decode_token_untrusted, encode_token

if TYPE_CHECKING:
    from trio._file_io import AsyncIOWrapper

__all__ = [
    "CommandError",
    "ConnectionLost",
    "Handler",
    "Link",
    "printable",
    "read_lines",
    "run_link",
    "say",
]

#: The data channel every CLI session carries (negotiated out of band: no DCEP round trip).
CHANNEL_ID = 0
CHANNEL_LABEL = "trio-rtc"
#: How long the answering side of a token exchange waits for its connection: a human carries
#: its answer back first. Until the channel opened, a failed ICE state does not end a session:
#: an agent whose own checks all failed still answers the peer's, and the triggered checks they
#: cause connect (RFC 8445 §7.3.1.4); this timeout does.
PASTE_SECONDS = 600.0
#: The longest a finished session waits for the peer to close the channel before it leaves.
GOODBYE_SECONDS = 5.0

#: What each side of a session is willing to talk to.
COMPATIBLE = {
    "send": {"receive"},
    "receive": {"send"},
    "chat": {"chat", "stats"},
    "stats": {"chat", "stats"},
}

Handler = Callable[[RTCPeerConnection, RTCDataChannel], Awaitable[None]]


class ConnectionLost(Exception):
    """The peer went away (its connection failed or closed) before the command finished."""


class CommandError(Exception):
    """The command cannot go on (the peer refused, broke the protocol, a check failed); the
    message says why. The CLI prints it and exits with status 1."""


def say(text: str) -> None:
    """A status line for the human: stderr, so that stdout carries only tokens and data."""
    print(text, file=sys.stderr, flush=True)


def printable(text: object, limit: int = 200) -> str:
    """Peer-supplied text made safe for a terminal: control characters (escape sequences could
    rewrite the screen) shown as ``\\xNN`` escapes, cut to ``limit`` characters."""
    shown = "".join(c if c.isprintable() or c == "\t" else repr(c)[1:-1] for c in str(text))
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def unwrap(exc: BaseException) -> BaseException:
    """The one exception inside nested single-member exception groups (trio's nurseries wrap
    what their children raise)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


_stdin: AsyncIOWrapper[TextIO] | None = None


async def read_lines() -> AsyncIOWrapper[TextIO]:
    """stdin, read in a worker thread (one wrapper for the process, so a token and the chat
    lines after it come from the same buffer)."""
    global _stdin
    await trio.lowlevel.checkpoint()
    if _stdin is None:
        _stdin = trio.wrap_file(sys.stdin)
    return _stdin


@attrs.define
class Link:
    """Where and how a command finds its peer."""

    #: ``send``, ``receive``, ``chat`` or ``stats``.
    role: str
    #: ``ws://host:port/room`` of a relay, or None for copy-paste tokens.
    relay: str | None = None
    #: Token mode: whether this side makes the offer.
    offerer: bool = True
    #: ``stun:``/``turn:`` URLs; the username and credential apply to the ``turn:`` ones.
    ice_servers: Sequence[str] = ()
    ice_username: str | None = None
    ice_credential: str | None = None
    interfaces: Sequence[str] | None = None
    #: Seconds a connection may take to open once both descriptions are set.
    connect_timeout: float = 30.0

    def configuration(self) -> RTCConfiguration:
        servers: list[dict[str, Any]] = []
        for url in self.ice_servers:
            server: dict[str, Any] = {"urls": url}
            if url.startswith(("turn:", "turns:")):
                server.update(username=self.ice_username, credential=self.ice_credential)
            servers.append(server)
        return RTCConfiguration.coerce({"iceServers": servers})

    def ice_options(self) -> IceTransportOptions:
        return IceTransportOptions(interfaces=self.interfaces)


Exchange = Callable[[RTCPeerConnection], Awaitable[None]]


async def _session(
    link: Link, exchange: Exchange, handler: Handler, *, exchange_wait: float = 0.0
) -> None:
    """One peer connection: exchange descriptions, wait for the channel, run ``handler``.
    Raises :class:`ConnectionLost` if the connection fails or the channel closes first."""
    async with RTCPeerConnection(link.configuration(), ice_options=link.ice_options()) as pc:
        channel = pc.createDataChannel(CHANNEL_LABEL, negotiated=True, id=CHANNEL_ID)
        await exchange(pc)
        lost: str | None = None
        with trio.CancelScope() as watched:

            def on_state(_event: object) -> None:
                nonlocal lost
                # Before the channel opened, "failed" may pass: see PASTE_SECONDS.
                ended = ("failed", "closed") if channel.readyState == "open" else ("closed",)
                if pc.connectionState in ended:
                    lost = f"the connection {pc.connectionState}"
                    watched.cancel()

            pc.addEventListener("connectionstatechange", on_state)
            try:
                with trio.fail_after(link.connect_timeout + exchange_wait):
                    await channel.wait_open()
                if pc.connectionState == "failed":
                    lost = "the connection failed"
                    watched.cancel()
                await handler(pc, channel)
            except trio.TooSlowError:
                lost = f"no connection within {link.connect_timeout + exchange_wait:g} s"
            except BaseException as exc:
                inner = unwrap(exc)
                if isinstance(inner, trio.EndOfChannel):
                    lost = "the peer closed the data channel"
                elif isinstance(inner, trio.BrokenResourceError):
                    lost = "the connection broke"
                elif isinstance(inner, InvalidStateError | ConnectionLost):
                    lost = str(inner) or "the data channel closed"
                elif isinstance(inner, CommandError):
                    # Our last word (a refusal, a failed check) reaches the peer first.
                    await _goodbye(pc, channel)
                    raise inner from None
                else:
                    raise
            finally:
                pc.removeEventListener("connectionstatechange", on_state)
        if lost is not None:
            raise ConnectionLost(lost)
        await _goodbye(pc, channel)


async def _goodbye(pc: RTCPeerConnection, channel: RTCDataChannel) -> None:
    """Leave so that the last messages sent (the receiver's verdict, a chat's last line) reach
    the peer and it sees the channel close rather than fail: closing the channel waits for the
    peer to reset its side too, which is after it received everything before the reset.
    (``pc.close()`` alone waits at most three round trips, which a loaded machine can miss.)"""
    with trio.move_on_after(GOODBYE_SECONDS):
        await channel.aclose()
    await pc.close()


# --- copy-paste tokens -----------------------------------------------------------------------


async def _read_token(expected: str) -> str:
    stdin = await read_lines()
    pasted = ""
    while True:
        line = await stdin.readline()
        if not line:
            raise ConnectionLost(f"stdin ended before the {expected} token")
        if line.strip().startswith("trtc"):
            pasted = ""
        pasted += line
        try:
            kind, sdp = decode_token_untrusted(pasted)
        except TokenError as exc:
            if "cut short" in str(exc) or "base64" in str(exc):
                continue
            say(f"not a token ({exc}); paste the {expected} token")
            pasted = ""
            continue
        if kind != expected:
            say(f"that is an {kind} token; paste the {expected} token")
            pasted = ""
            continue
        return sdp


async def _print_token(pc: RTCPeerConnection) -> None:
    await pc.wait_gathering_complete()
    description = pc.localDescription
    assert description is not None
    print(encode_token(description.type, description.sdp), flush=True)


def without_candidates(sdp: str) -> str:
    """The offer as the answering side of a token exchange applies it: without its candidates.

    The answering side starts connectivity checks as soon as it has both descriptions, while a
    human still carries its answer back. With the offer's candidates those checks reach the
    offering side, which answers them, so ICE connects there early and DTLS starts: the
    answering side is the DTLS client, and its ClientHello retransmissions (from a few times the
    round trip, doubling, six of them) are spent within seconds while the offering side cannot
    take them yet (it learns its DTLS role from the answer). Without the offer's candidates
    the answering side only answers: the offering side's checks, once it has the answer, give
    it the path (a peer-reflexive candidate, RFC 8445 §7.3.1.3) and DTLS starts when both are
    ready. The cost: the offering side must be able to reach the answering side (one network,
    a public address, or a relay candidate of the offering side); see docs/cli.md."""
    skipped = ("a=candidate:", "a=end-of-candidates")
    return "".join(line for line in sdp.splitlines(True) if not line.startswith(skipped))


async def _token_exchange(link: Link, pc: RTCPeerConnection) -> None:
    if link.offerer:
        await pc.setLocalDescription()
        say(
            "Give this offer token to the other side (it runs the matching command without --relay):"
        )
        await _print_token(pc)
        say("Paste the answer token it prints, then press Enter:")
        sdp = await _read_token("answer")
        await pc.setRemoteDescription({"type": "answer", "sdp": sdp})
        say("connecting ...")
    else:
        say("Paste the offer token from the other side, then press Enter:")
        sdp = await _read_token("offer")
        await pc.setRemoteDescription({"type": "offer", "sdp": without_candidates(sdp)})
        await pc.setLocalDescription()
        say("Give this answer token back to the other side:")
        await _print_token(pc)
        say("connecting ...")


# --- the relay ---------------------------------------------------------------------------------


@attrs.define(eq=False)
class _Relay:
    link: Link
    handler: Handler
    outbox: trio.MemorySendChannel[dict[str, Any]]
    nursery: trio.Nursery
    own: str = attrs.Factory(lambda: secrets.token_hex(8))
    peer: str | None = None
    scope: trio.CancelScope | None = None
    inbox: trio.MemorySendChannel[dict[str, Any]] | None = None
    finished: bool = False

    def hello(self) -> None:
        self.outbox.send_nowait({"hello": self.own, "role": self.link.role})

    def on_message(self, message: dict[str, Any]) -> None:
        if "hello" in message:
            peer, role = message.get("hello"), message.get("role")
            if not isinstance(peer, str) or role not in COMPATIBLE[self.link.role]:
                return
            if peer in (self.peer, self.own):
                return
            if self.scope is not None:
                say("another peer joined: starting over with it")
                self.scope.cancel()
            self.peer = peer
            inbox_send, inbox_receive = trio.open_memory_channel[dict[str, Any]](4)
            self.inbox = inbox_send
            self.scope = trio.CancelScope()
            # Say hello again: a newcomer that joined after our first hello has not seen it.
            self.hello()
            self.nursery.start_soon(self._run, self.scope, peer, inbox_receive)
        elif "description" in message:
            if message.get("to") != self.own or message.get("from") != self.peer:
                return
            description = message["description"]
            if isinstance(description, dict) and self.inbox is not None:
                try:
                    self.inbox.send_nowait(description)
                except trio.WouldBlock:
                    pass

    async def _run(
        self,
        scope: trio.CancelScope,
        peer: str,
        inbox: trio.MemoryReceiveChannel[dict[str, Any]],
    ) -> None:
        own = self.own
        offerer = own > peer

        async def exchange(pc: RTCPeerConnection) -> None:
            async def send_local() -> None:
                await pc.wait_gathering_complete()
                description = pc.localDescription
                assert description is not None
                self.outbox.send_nowait(
                    {"description": description.toJSON(), "from": own, "to": peer}
                )

            if offerer:
                await pc.setLocalDescription()
                await send_local()
                answer = await _next_description(inbox, "answer")
                await pc.setRemoteDescription(answer)
            else:
                offer = await _next_description(inbox, "offer")
                await pc.setRemoteDescription(offer)
                await pc.setLocalDescription()
                await send_local()

        with scope:
            try:
                say("peer found, connecting ...")
                await _session(self.link, exchange, self.handler)
            except ConnectionLost as exc:
                if self.scope is scope:
                    say(f"connection lost ({exc}); waiting for the peer to come back")
                    self.peer = self.scope = self.inbox = None
                    self.own = secrets.token_hex(8)
                    self.hello()
                return
            self.finished = True
            self.nursery.cancel_scope.cancel()


async def _next_description(
    inbox: trio.MemoryReceiveChannel[dict[str, Any]], kind: str
) -> dict[str, Any]:
    async for description in inbox:
        if description.get("type") == kind and isinstance(description.get("sdp"), str):
            return description
    raise ConnectionLost("the relay closed")


async def _relay_sessions(link: Link, handler: Handler) -> None:
    assert link.relay is not None
    try:
        async with open_signaling(link.relay) as signaling:
            say(f"waiting in {link.relay} for the other side ...")
            outbox_send, outbox_receive = trio.open_memory_channel[dict[str, Any]](math.inf)

            async def send_all() -> None:
                async for message in outbox_receive:
                    await signaling.send(message)

            async with trio.open_nursery() as nursery:
                relay = _Relay(link, handler, outbox_send, nursery)
                nursery.start_soon(send_all)
                relay.hello()
                async for message in signaling:
                    relay.on_message(message)
                if not relay.finished:
                    raise ConnectionLost("the relay closed the connection")
    except trio_websocket.HandshakeError as exc:
        raise ConnectionLost(str(exc)) from None
    except OSError as exc:
        raise ConnectionLost(f"cannot reach the relay at {link.relay}: {exc}") from None
    except BaseException as exc:
        inner = unwrap(exc)
        if isinstance(inner, trio_websocket.ConnectionClosed):
            raise ConnectionLost("the relay closed the connection") from None
        if inner is not exc and isinstance(inner, ConnectionLost | KeyboardInterrupt):
            raise inner from None
        raise


async def run_link(link: Link, handler: Handler) -> None:
    """Connect as ``link`` says and run ``handler`` with the connected peer connection and its
    open data channel; over a relay, again after each lost connection until it returns."""
    if link.relay is not None:
        await _relay_sessions(link, handler)
        return

    async def exchange(pc: RTCPeerConnection) -> None:
        await _token_exchange(link, pc)

    # The answering side starts its checks at once, while a human carries its token back.
    await _session(link, exchange, handler, exchange_wait=0.0 if link.offerer else PASTE_SECONDS)
