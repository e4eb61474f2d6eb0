"""``RTCIceTransport``: the W3C ICE transport, and the trio driver of the ICE agent core.

The transport owns the UDP sockets of one ICE session. Each socket has a reader task that waits
for readability once and then drains every queued datagram, sorting them by their first byte
(RFC 7983): STUN (0–3) goes to the agent core; DTLS (20–63) and RTP/RTCP (128–191) go, one
*batch* (a list) per drained burst, to the memory channels the DTLS and SRTP layers read (see
:mod:`trio_rtc._channels`). The transport's own task sleeps until the core's next deadline.
Datagrams of the layers above leave on the selected pair through :meth:`RTCIceTransport.send_many`
(a non-blocking socket write from the calling task: the socket, not the core, is shared).

Run it inside a nursery (``await nursery.start(transport.run)``, which is what a peer connection
does) or on its own with ``async with RTCIceTransport(...) as transport:``. Leaving the block,
``stop()`` or cancelling the nursery closes every socket and ends in state ``closed``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, Literal, Protocol, cast, get_args, overload

import attrs
import trio

from .._channels import Batch, BatchReceiveChannel, ended_batch_channel
from .._lifetime import AsyncLifetime
from ..events import Event, EventTarget, HandlerQueue, on_event
from ..exceptions import InvalidStateError
from ..turn.driver import (
    TurnAllocation,
    TurnAllocationError,
    TurnTransport,
    open_turn_allocation,
)
from ..udp import UdpEndpoint, open_udp_endpoint
from .agent import LITE_DISCONNECTED_TIMEOUT, MAX_REMOTE_CANDIDATES, IceAgent, IceStats
from .candidate import Candidate, CandidateError
from .interfaces import usable_host_addresses
from .mdns import MdnsResolver
from .mux import MuxEndpoint, SharedUdp
from .pairs import (
    Address,
    CandidatePair,
    GatheringStateChanged,
    LocalCandidateGathered,
    RoleChanged,
    SelectedPairChanged,
    ServerError,
    StateChanged,
)
from .rtc import RTCIceCandidate, RTCIceCandidatePair, RTCIceParameters, RTCIceServer

__all__ = [
    "IceCandidateErrorEvent",
    "IceCandidateEvent",
    "IceTransportOptions",
    "RTCIceGathererState",
    "RTCIceTransport",
    "RTCIceTransportState",
    "TransportStats",
]

logger = logging.getLogger("trio_rtc.ice")

#: ``RTCIceTransport.state`` (webrtc-pc §5.6.2).
RTCIceTransportState = Literal[
    "new", "checking", "connected", "completed", "disconnected", "failed", "closed"
]
#: ``RTCIceTransport.gatheringState`` (webrtc-pc §5.6.1).
RTCIceGathererState = Literal["new", "gathering", "complete"]
_STATE_VALUES: dict[str, tuple[str, ...]] = {
    "state": get_args(RTCIceTransportState),
    "gatheringState": get_args(RTCIceGathererState),
}

#: Batches queued for the DTLS/SRTP layers before further ones are dropped (UDP semantics).
CHANNEL_DEPTH = 256
#: Datagrams a socket reader hands on per wake-up at most. Larger bursts mean fewer wake-ups and
#: fewer SACKs per byte (16 KiB transfer: 13.8 ms of CPU per MiB at 64, 9.6 at 256), while a
#: burst of 256 still keeps each task's step near a couple of milliseconds.
READ_BATCH = 256

#: Seconds an interface scan is reused by the transports gathering after it in the same network
#: namespace: a server opening many connections at once scans once (a scan lists the interfaces
#: and test-binds each address, ~100 µs), while an address that appears is seen a second later.
HOST_SCAN_TTL = 1.0
_host_scans: dict[tuple[int, bool | None, bool], tuple[float, list[str]]] = {}


def _network_namespace() -> int:
    """The calling thread's network namespace (tests and tools switch it per thread)."""
    try:
        return os.stat("/proc/thread-self/ns/net").st_ino
    except OSError:
        return 0


def _host_addresses(include_loopback: bool | None, ipv6: bool) -> list[str]:
    """Addresses to gather host candidates on, from a recent scan when there is one."""
    key = (_network_namespace(), include_loopback, ipv6)
    now = time.monotonic()
    scan = _host_scans.get(key)
    if scan is None or now - scan[0] >= HOST_SCAN_TTL:
        # Link-local IPv6 addresses bind with their scope ("fe80::1%2").
        hosts = [
            entry.address + (f"%{entry.scope_id}" if entry.scope_id else "")
            for entry in usable_host_addresses(include_loopback=include_loopback, ipv6=ipv6)
        ]
        if len(_host_scans) >= 64:
            _host_scans.clear()  # many namespaces over a process's life: start again
        scan = _host_scans[key] = (now, hosts)
    return list(scan[1])


class IceCandidateEvent(Event):
    """``icecandidate``: ``candidate`` is an RTCIceCandidate, or None at the end of gathering."""

    def __init__(self, candidate: RTCIceCandidate | None) -> None:
        super().__init__("icecandidate")
        self.candidate = candidate


class IceCandidateErrorEvent(Event):
    """``icecandidateerror`` (webrtc-pc §4.8.3): a STUN/TURN server failed us."""

    def __init__(self, error: ServerError) -> None:
        super().__init__("icecandidateerror")
        self.address: str | None = error.address
        self.port: int | None = error.port
        self.url = error.url
        self.errorCode = error.error_code
        self.errorText = error.error_text


class DatagramSender(Protocol):
    """What the transport sends through: a UDP endpoint, or a TURN allocation's relay."""

    @property
    def closed(self) -> bool: ...

    def send_nowait(self, data: bytes | bytearray | memoryview, address: Address) -> bool: ...

    def send_many_nowait(self, datagrams: list[bytes], address: Address) -> tuple[int, int]: ...

    def close(self) -> None: ...


class _RelaySender:
    """Sends from a relay candidate: through the TURN allocation (RFC 8656 Send indication or
    ChannelData; the TURN client asks for the permission itself)."""

    def __init__(self, allocation: TurnAllocation) -> None:
        self._allocation = allocation
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def send_nowait(self, data: bytes | bytearray | memoryview, address: Address) -> bool:
        if self._closed:
            raise trio.ClosedResourceError("the TURN allocation is closed")
        self._allocation.send_to(address, bytes(data))
        return True

    def send_many_nowait(self, datagrams: list[bytes], address: Address) -> tuple[int, int]:
        for data in datagrams:
            self.send_nowait(data, address)
        return len(datagrams), sum(map(len, datagrams))

    def close(self) -> None:
        self._closed = True


@attrs.define
class IceTransportOptions:
    """Knobs that are not in the spec, for applications, tests and research.

    ``interfaces``: explicit local IP addresses to gather on (None: every usable interface, see
    :func:`trio_rtc.ice.interfaces.usable_host_addresses`); ``include_loopback``: use loopback
    even when other interfaces exist; ``mdns_interface``: IPv4 address whose interface sends
    mDNS queries for remote ``.local`` candidates (None: the system default); ``mdns_timeout``
    bounds one resolution (Chromium's responder can take seconds to answer; connectivity does not
    wait for it, since the peer's checks reveal a peer-reflexive candidate); timings go to the
    agent core (see :class:`trio_rtc.ice.agent.IceAgent`). ``shared_udp``: gather on the
    shared sockets of :func:`trio_rtc.ice.mux.open_shared_udp` instead of opening sockets
    (server mode, docs/server-mode.md; ``interfaces`` and ``ipv6`` are then ignored).
    ``ice_lite``: be an ICE-lite agent (RFC 8445 §2.5, docs/server-mode.md): host candidates
    only, always controlled, no checks of its own; it refuses ``iceServers``, ``relay_only`` and
    a lite peer. A peer connection sets it (and ``relay_only``, ``shared_udp``) from its
    RTCConfiguration. ``lite_disconnected_timeout`` replaces ``disconnected_timeout`` for a lite
    agent, whose evidence is the peer's checks (see
    :data:`trio_rtc.ice.agent.LITE_DISCONNECTED_TIMEOUT`). ``turn_tls_context``: the trust a
    ``turns:`` server's certificate is checked with (None: the system's trusted roots; a
    private CA's context for a server it signed).
    """

    interfaces: Sequence[str] | None = None
    #: gather only relay candidates (iceTransportPolicy "relay"); needs a turn: server
    relay_only: bool = False
    include_loopback: bool | None = None
    ipv6: bool = True
    mdns: bool = True
    mdns_interface: str | None = None
    mdns_timeout: float = 5.0
    ta: float = 0.05
    nomination_delay: float = 0.5
    consent_interval: float = 1.0
    disconnected_timeout: float = 5.0
    consent_timeout: float = 30.0
    shared_udp: SharedUdp | None = None
    ice_lite: bool = False
    lite_disconnected_timeout: float = LITE_DISCONNECTED_TIMEOUT
    turn_tls_context: ssl.SSLContext | None = None


@attrs.define
class TransportStats:
    """Data-path counters kept by the driver (the agent's own are in ``agent``)."""

    agent: IceStats
    datagrams_dropped_untrusted: int = 0
    datagrams_dropped_unknown: int = 0
    datagrams_dropped_overflow: int = 0
    datagrams_dropped_no_pair: int = 0
    #: RTP/RTCP datagrams that arrived with no RTP consumer attached (no media negotiated).
    datagrams_dropped_rtp: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    packets_sent: int = 0
    packets_received: int = 0


class RTCIceTransport(EventTarget, AsyncLifetime):
    """The W3C ``RTCIceTransport`` (webrtc-pc §5.6 and the webrtc-ice extension's ``gather``,
    ``start``, ``addRemoteCandidate`` and ``stop``), driven by trio."""

    onstatechange = on_event[Event]("statechange")
    ongatheringstatechange = on_event[Event]("gatheringstatechange")
    onselectedcandidatepairchange = on_event[Event]("selectedcandidatepairchange")
    onicecandidate = on_event[IceCandidateEvent]("icecandidate")
    onicecandidateerror = on_event[IceCandidateErrorEvent]("icecandidateerror")

    def __init__(
        self,
        *,
        iceServers: Sequence[RTCIceServer | Mapping[str, Any]] = (),
        controlling: bool = True,
        options: IceTransportOptions | None = None,
        dtls_channel: trio.MemorySendChannel[Batch | None] | None = None,
        deliver_rtp: bool = True,
    ) -> None:
        """``dtls_channel``: where batches of received DTLS datagrams go (the DTLS task's inbox,
        wired by the peer connection); without it the transport keeps its own channel, read
        through :attr:`dtls_receive_channel`. ``deliver_rtp``: queue RTP/RTCP on
        :attr:`rtp_receive_channel`; when False (no media consumer) they are counted in
        ``stats.datagrams_dropped_rtp`` and dropped."""
        self.options = options or IceTransportOptions()
        self._ice_servers = [RTCIceServer.coerce(s) for s in iceServers]
        for server in self._ice_servers:
            for url in server.urls:
                _parse_server_url(url)  # raise on bad URLs now, not in a task later
        opts = self.options
        if opts.ice_lite:
            _check_lite_options(opts, self._ice_servers)
        self._agent = IceAgent(
            controlling=controlling and not opts.ice_lite,
            ta=opts.ta,
            nomination_delay=opts.nomination_delay,
            consent_interval=opts.consent_interval,
            disconnected_timeout=(
                opts.lite_disconnected_timeout if opts.ice_lite else opts.disconnected_timeout
            ),
            consent_timeout=opts.consent_timeout,
            lite=opts.ice_lite,
        )
        self.stats = TransportStats(agent=self._agent.stats)
        self._role_known = False
        self._started = False
        self._state = "new"
        self._gathering_state = "new"
        self._endpoints: dict[Address, DatagramSender] = {}
        self._nursery: trio.Nursery | None = None
        self._cancel_scope: trio.CancelScope | None = None
        self._timer_scope: trio.CancelScope | None = None
        self._gather_requested = False
        self._send_endpoint: DatagramSender | None = None
        self._send_address: Address | None = None
        self._mdns: MdnsResolver | None = None
        #: Remote mDNS names being resolved now (a task each), at most MAX_REMOTE_CANDIDATES.
        self._resolving = 0
        self._selected: RTCIceCandidatePair | None = None
        #: Times the selected pair changed (the stats' ``selectedCandidatePairChanges``).
        self.selected_pair_changes = 0
        self._selected_core: CandidatePair | None = None
        # Channels of our own only for what no layer above takes (a peer connection gives the
        # DTLS inbox and takes RTP later): each is a trio channel pair a connection would carry
        # unused for its whole life.
        self._dtls_receive: BatchReceiveChannel[bytes] | None = None
        self._rtp_receive: BatchReceiveChannel[bytes] | None = None
        if dtls_channel is None:
            dtls_channel, receive = trio.open_memory_channel[Batch | None](CHANNEL_DEPTH)
            self._dtls_receive = BatchReceiveChannel(receive)
        self._dtls_send: trio.MemorySendChannel[Batch | None] = dtls_channel
        self._rtp_send: trio.MemorySendChannel[Batch | None] | None = None
        if deliver_rtp:
            self._rtp_send, receive = trio.open_memory_channel[Batch | None](CHANNEL_DEPTH)
            self._rtp_receive = BatchReceiveChannel(receive)

    @property
    def dtls_receive_channel(self) -> BatchReceiveChannel[bytes]:
        """Received DTLS datagrams one at a time, when no ``dtls_channel`` was given (with one,
        an ended channel: the datagrams go there)."""
        if self._dtls_receive is None:
            self._dtls_receive = ended_batch_channel()
        return self._dtls_receive

    @property
    def rtp_receive_channel(self) -> BatchReceiveChannel[bytes]:
        """Received RTP/RTCP datagrams one at a time, when ``deliver_rtp`` (else an ended
        channel)."""
        if self._rtp_receive is None:
            self._rtp_receive = ended_batch_channel()
        return self._rtp_receive

    # --- W3C attributes ---------------------------------------------------------------------

    @property
    def role(self) -> str:
        if not self._role_known:
            return "unknown"
        return "controlling" if self._agent.controlling else "controlled"

    @property
    def component(self) -> str:
        return "rtp"

    @property
    def state(self) -> RTCIceTransportState:
        # The agent keeps its states as plain strings; they are the spec's.
        return cast(RTCIceTransportState, self._state)

    @property
    def gatheringState(self) -> RTCIceGathererState:
        return cast(RTCIceGathererState, self._gathering_state)

    def getLocalCandidates(self) -> list[RTCIceCandidate]:
        ufrag = self._agent.local_ufrag
        return [
            RTCIceCandidate.from_candidate(c, sdpMid=None, usernameFragment=ufrag)
            for c in self._agent.local_candidates
            if c.type != "prflx"
        ]

    def getRemoteCandidates(self) -> list[RTCIceCandidate]:
        return [
            RTCIceCandidate.from_candidate(c, usernameFragment=self._agent.remote_ufrag)
            for c in self._agent.remote_candidates
        ]

    def getSelectedCandidatePair(self) -> RTCIceCandidatePair | None:
        return self._selected

    def getLocalParameters(self) -> RTCIceParameters:
        # iceLite says what we are, so that a peer given these parameters knows (webrtc-ice).
        return RTCIceParameters(
            self._agent.local_ufrag, self._agent.local_pwd, self.options.ice_lite
        )

    def getRemoteParameters(self) -> RTCIceParameters | None:
        ufrag, pwd = self._agent.remote_ufrag, self._agent.remote_pwd
        if ufrag is None or pwd is None:
            return None
        return RTCIceParameters(ufrag, pwd)

    # --- webrtc-ice methods -----------------------------------------------------------------

    def gather(self, options: Mapping[str, Any] | None = None) -> None:
        """Start gathering local candidates; ``icecandidate`` events report them."""
        nursery = self._require_running("gather()")
        if self._gather_requested:
            return
        self._start_soon(nursery, self._gather)
        self._gather_requested = True

    def start(
        self,
        remoteParameters: RTCIceParameters | Mapping[str, Any],
        role: str = "controlled",
    ) -> None:
        """Begin connectivity checks with the peer's credentials, in ``role``."""
        if self._state == "closed":
            raise InvalidStateError("the RTCIceTransport is closed; create a new one")
        if role not in ("controlling", "controlled"):
            raise TypeError(f"role must be 'controlling' or 'controlled', not {role!r}")
        params = RTCIceParameters.coerce(remoteParameters)
        if self.options.ice_lite:
            if params.iceLite:
                raise ValueError(
                    "start(): both sides are ICE-lite; an ICE-lite transport needs a full peer "
                    "to run the connectivity checks (RFC 8445 §2.5)"
                )
            if role == "controlling":
                raise ValueError(
                    "start(): an ICE-lite transport is always 'controlled' (RFC 8445 §6.1.1); "
                    "the full peer is controlling"
                )
        current = self._agent.remote_ufrag
        if current is not None and current != params.usernameFragment:
            # New remote credentials: the peer restarted ICE (RFC 8445 §9).
            self._agent.restart(trio.current_time())
        self._agent.set_role(role == "controlling")
        self._role_known = True
        self._agent.set_remote_credentials(
            params.usernameFragment,
            params.password,
            remote_lite=params.iceLite,
            now=trio.current_time(),
        )
        self._started = True
        self._pump()

    def addRemoteCandidate(
        self,
        remoteCandidate: RTCIceCandidate | Mapping[str, Any] | str | None,
    ) -> None:
        """Add a remote candidate; ``None`` or an empty candidate means end-of-candidates."""
        if self._state == "closed":
            raise InvalidStateError("the RTCIceTransport is closed")
        rtc = _coerce_candidate(remoteCandidate)
        if rtc is None or not rtc.candidate:
            self._agent.add_remote_candidate(None, trio.current_time())
            self._pump()
            return
        parsed = rtc.parsed
        if parsed is None:
            raise TypeError(f"cannot parse remote candidate {rtc.candidate!r}")
        if parsed.is_mdns:
            # A lite agent pairs nothing with signalled candidates (the peer's checks reveal its
            # addresses), so it never looks a name up.
            if self.options.mdns and self._nursery is not None and not self.options.ice_lite:
                if self._resolving >= MAX_REMOTE_CANDIDATES:
                    # An agent that keeps 100 remote candidates has no use for more lookups.
                    self._agent.stats.remote_candidates_dropped += 1
                    return
                self._resolving += 1
                self._start_soon(self._nursery, self._resolve_and_add, parsed)
            return
        self._agent.add_remote_candidate(parsed, trio.current_time())
        self._pump()

    def stop(self) -> None:
        """Stop ICE: close every socket; state becomes ``closed``. Idempotent."""
        self._nursery = None
        if self._state != "closed":
            self._agent.close()
            self._pump()
        for endpoint in self._endpoints.values():
            endpoint.close()
        for channel in (self._dtls_send, self._rtp_send):
            if channel is not None:
                # The layer above learns that this transport ended (the channel may have other
                # senders, so the marker, not the close, is what it sees).
                with contextlib.suppress(
                    trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError
                ):
                    channel.send_nowait(None)
                channel.close()
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()

    # --- trio-native additions --------------------------------------------------------------

    def restart(self, *, ufrag: str | None = None, pwd: str | None = None) -> RTCIceParameters:
        """ICE restart: new local credentials and a new gathering; the current pair keeps
        carrying data until a new one is selected. Returns the new local parameters."""
        if self._state == "closed":
            raise InvalidStateError("the RTCIceTransport is closed")
        self._agent.restart(trio.current_time(), ufrag=ufrag, pwd=pwd)
        self._pump()
        return self.getLocalParameters()

    def set_ice_servers(self, iceServers: Sequence[RTCIceServer | Mapping[str, Any]]) -> None:
        """Replace the STUN/TURN servers (``setConfiguration``). They apply from the next gathering
        on — an ICE restart — as webrtc-pc §4.4.1.6 says; current candidates are kept."""
        servers = [RTCIceServer.coerce(s) for s in iceServers]
        for server in servers:
            for url in server.urls:
                _parse_server_url(url)
        if self.options.ice_lite:
            _check_lite_options(self.options, servers)
        self._ice_servers = servers
        if self._nursery is not None and self._gather_requested:
            self._start_soon(self._nursery, self._refresh_stun_servers)

    async def _refresh_stun_servers(self) -> None:
        self._agent.stun_servers = await self._resolve_stun_servers()

    def send(self, data: bytes | bytearray | memoryview) -> bool:
        """Send one datagram (DTLS or RTP/RTCP) on the selected pair. Returns False when it was
        dropped (no usable pair yet, consent lost, or the socket refused it): UDP semantics."""
        endpoint = self._send_endpoint
        address = self._send_address
        if endpoint is None or address is None:
            self.stats.datagrams_dropped_no_pair += 1
            return False
        try:
            sent = endpoint.send_nowait(data, address)
        except trio.ClosedResourceError:
            # Stopped: a layer above may still say goodbye (DTLS close_notify) while unwinding.
            self._send_endpoint = self._send_address = None
            return False
        if sent:
            self.stats.packets_sent += 1
            self.stats.bytes_sent += len(data)
        return sent

    def send_many(self, datagrams: list[bytes]) -> int:
        """:meth:`send` for a burst: every datagram on the selected pair, with the checks done
        once. Returns how many were sent."""
        endpoint = self._send_endpoint
        address = self._send_address
        if endpoint is None or address is None:
            self.stats.datagrams_dropped_no_pair += len(datagrams)
            return 0
        try:
            sent, size = endpoint.send_many_nowait(datagrams, address)
        except trio.ClosedResourceError:
            self._send_endpoint = self._send_address = None
            return 0
        stats = self.stats
        stats.packets_sent += sent
        stats.bytes_sent += size
        return sent

    def set_rtp_channel(self, channel: trio.MemorySendChannel[Batch | None] | None) -> None:
        """Where batches of received RTP/RTCP datagrams go from now on: the RTP task's inbox,
        wired by the peer connection once media is negotiated (``None``: drop and count them,
        as before any media consumer exists). The previous channel is closed."""
        old, self._rtp_send = self._rtp_send, channel
        if old is not None and old is not channel:
            old.close()

    @property
    def selected_pair(self) -> CandidatePair | None:
        """The core's view of the pair data goes on (addresses, state and statistics): the
        nominated pair, or before nomination completes the best valid one (what
        ``getSelectedCandidatePair()`` describes). ``agent.selected_pair`` is the nominated one."""
        return self._selected_core

    @property
    def agent(self) -> IceAgent:
        """The sans-IO core, for inspection (stats, pairs). Do not drive it directly."""
        return self._agent

    @overload
    async def wait_for(
        self, *, state: RTCIceTransportState | Collection[RTCIceTransportState]
    ) -> RTCIceTransportState: ...
    @overload
    async def wait_for(
        self, *, gatheringState: RTCIceGathererState | Collection[RTCIceGathererState]
    ) -> RTCIceGathererState: ...
    async def wait_for(
        self,
        *,
        state: str | Collection[str] | None = None,
        gatheringState: str | Collection[str] | None = None,
    ) -> str:
        """Wait until ``state`` or ``gatheringState`` has a value, or one of several, and
        return it: ``await ice.wait_for(state=("connected", "completed"))``. ValueError for a
        value it never takes; InvalidStateError if the transport closes first (unless
        ``"closed"`` is wanted)."""
        conditions: dict[str, object] = {"state": state, "gatheringState": gatheringState}
        valid = _STATE_VALUES["gatheringState" if state is None else "state"]
        value: str = await self._wait_for_value(conditions, valid, lambda: self._state == "closed")
        return value

    async def wait_for_state(self, *states: str) -> str:
        """The older spelling of ``wait_for(state=states)``."""
        value: str = await self._wait_for_value(
            {"state": states}, _STATE_VALUES["state"], lambda: self._state == "closed"
        )
        return value

    async def wait_gathering_complete(self) -> None:
        await self.wait_until(lambda: self._gathering_state == "complete")

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[RTCIceTransport]:
        if self._state == "closed" or self._cancel_scope is not None:
            raise InvalidStateError("an RTCIceTransport runs once; create a new one")
        async with trio.open_nursery() as nursery:
            await nursery.start(self.run)
            try:
                yield self
            finally:
                self.stop()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the transport's tasks until ``stop()`` or cancellation; then close everything."""
        if self._state == "closed" or self._cancel_scope is not None:
            raise InvalidStateError("an RTCIceTransport runs once; create a new one")
        try:
            async with trio.open_nursery() as nursery:
                self._cancel_scope = nursery.cancel_scope
                self._nursery = nursery
                if self._handler_queue is None:
                    # Used on its own: async event handlers get a queue of the transport's own.
                    self._handler_queue = HandlerQueue(name="ice")
                    await nursery.start(self._handler_queue.run)
                task_status.started()
                # The status keeps the nursery start() made (about 1 KiB); this frame lives as
                # long as the connection.
                del task_status
                # This task is the timer task too: one task fewer per connection.
                await self._timer_loop()
        finally:
            self._nursery = None
            self.stop()

    # --- internals --------------------------------------------------------------------------

    @staticmethod
    def _start_soon(
        nursery: trio.Nursery, function: Callable[..., Awaitable[object]], *args: object
    ) -> None:
        try:
            nursery.start_soon(function, *args)
        except RuntimeError:
            # The nursery is exiting (we are being cancelled or stopped).
            if trio.current_effective_deadline() == -math.inf:
                # The caller is in the same cancelled scope (its `async with` is unwinding, the
                # run task got there first): it sees Cancelled at its next checkpoint, which an
                # InvalidStateError raised here would hide.
                return
            raise InvalidStateError("the RTCIceTransport is shutting down") from None

    def _require_running(self, what: str) -> trio.Nursery:
        if self._state == "closed":
            raise InvalidStateError(f"{what}: the RTCIceTransport is closed")
        if self._nursery is None:
            raise InvalidStateError(
                f"{what} needs a running transport: use 'async with RTCIceTransport(...)' "
                "or 'await nursery.start(transport.run)'"
            )
        return self._nursery

    async def _gather(self) -> None:
        agent = self._agent
        agent.start_gathering(trio.current_time())
        self._pump()
        agent.stun_servers = await self._resolve_stun_servers()
        opts = self.options
        shared = opts.shared_udp
        if shared is not None:
            hosts = shared.hosts
        elif opts.interfaces is not None:
            hosts = list(opts.interfaces)
        else:
            hosts = _host_addresses(opts.include_loopback, opts.ipv6)
        rank: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 0}
        for host in [] if opts.relay_only else hosts:
            try:
                endpoint = await (
                    open_udp_endpoint(host, 0)
                    if shared is None
                    else shared.open_endpoint(host, agent.local_ufrag)
                )
            except OSError as exc:
                logger.warning("cannot gather on %s: %s", host, exc)
                continue
            if self._state == "closed":
                endpoint.close()  # stopped while the socket was being opened
                return
            base = endpoint.local_address
            self._endpoints[base] = endpoint
            # RFC 8421 §4: interleave the families, IPv6 first; earlier interfaces first.
            family_rank = rank[endpoint.family]
            rank[endpoint.family] += 1
            preference = 65535 - 2 * family_rank - (1 if endpoint.family == socket.AF_INET else 0)
            agent.add_host_address(
                base, local_preference=max(preference, 0), now=trio.current_time()
            )
            assert self._nursery is not None
            self._nursery.start_soon(self._reader, endpoint)
            self._pump()
        # Relay candidates: one TURN allocation per turn: server and address family both we
        # and the server have, from our first usable address of that family (RFC 8445
        # §5.1.1.2); an IPv6 one asks for an IPv6 relayed address (RFC 8656 §7.1).
        # nursery.start waits for each allocation or its failure.
        first_host = {
            socket.AF_INET: next((h for h in hosts if ":" not in h), None),
            socket.AF_INET6: next((h for h in hosts if ":" in h), None),
        }
        turn = await self._resolve_turn_servers()
        if turn and self._nursery is not None:
            for index, server in enumerate(turn):
                family = socket.AF_INET6 if ":" in server.address[0] else socket.AF_INET
                local_host = first_host[family]
                if local_host is None:
                    continue
                # RFC 8445 §5.1.2.1: among relay candidates, UDP to the server before TCP
                # before TLS (the order browsers use), then the configured order, IPv6 before
                # IPv4 (RFC 8421).
                preference = (
                    _RELAY_PREFERENCE[server.transport]
                    - 2 * index
                    - (1 if family == socket.AF_INET else 0)
                )
                await self._nursery.start(self._relay, server, local_host, preference)
        agent.finish_host_gathering(trio.current_time())
        self._pump()

    async def _resolve_turn_servers(self) -> list[_TurnServer]:
        """Every turn: / turns: server, one entry per address family it resolves to (its first
        address of each), with how it is reached (RFC 7065)."""
        servers: list[_TurnServer] = []
        for server in self._ice_servers:
            for url in server.urls:
                scheme, host, port = _parse_server_url(url)
                if scheme not in ("turn", "turns"):
                    continue
                if server.username is None or server.credential is None:
                    continue
                transport = _turn_transport(url)
                if transport is None:
                    logger.warning("ignoring TURN server %s: unknown transport", url)
                    continue
                try:
                    infos = await trio.socket.getaddrinfo(
                        host,
                        port,
                        type=socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM,
                    )
                except OSError as exc:
                    logger.warning("cannot resolve TURN server %s: %s", url, exc)
                    continue
                seen: set[int] = set()
                for family, _type, _proto, _name, sockaddr in infos:
                    if family not in (socket.AF_INET, socket.AF_INET6) or family in seen:
                        continue
                    seen.add(family)
                    address = (str(sockaddr[0]), int(sockaddr[1]))
                    servers.append(
                        _TurnServer(
                            address, url, host, transport, server.username, server.credential
                        )
                    )
        return servers

    async def _resolve_stun_servers(self) -> list[Address]:
        servers: list[Address] = []
        for server in self._ice_servers:
            for url in server.urls:
                scheme, host, port = _parse_server_url(url)
                if scheme != "stun":
                    # A TURN server reached over UDP also answers Binding requests (RFC 8656
                    # §3): browsers ask it for a server-reflexive candidate too. Not one reached
                    # over TCP or TLS, whose UDP port may well be closed.
                    if scheme != "turn" or _turn_transport(url) != "udp":
                        continue
                try:
                    infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
                except OSError as exc:
                    logger.warning("cannot resolve ICE server %s: %s", url, exc)
                    continue
                for family, _type, _proto, _name, sockaddr in infos:
                    if family in (socket.AF_INET, socket.AF_INET6):
                        address = (str(sockaddr[0]), int(sockaddr[1]))
                        if address not in servers:
                            servers.append(address)
        return servers

    async def _reader(self, endpoint: UdpEndpoint) -> None:
        base = endpoint.local_address
        try:
            while True:
                await endpoint.wait_readable()
                self._deliver(base, endpoint.recv_batch_nowait(READ_BATCH))
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return

    def _deliver(self, base: Address, batch: list[tuple[bytes, Address]]) -> None:
        """Sort a batch of datagrams received on ``base`` (a socket, or a relay)."""
        agent = self._agent
        stats = self.stats
        stun = False
        now = 0.0
        dtls: Batch = []
        rtp: Batch = []
        size = 0
        for data, source in batch:
            first = data[0] if data else 255
            if first < 4:
                if not stun:
                    now = trio.current_time()
                    stun = True
                agent.receive_datagram(data, base, source, now)
                continue
            if not agent.is_trusted_source(source):
                stats.datagrams_dropped_untrusted += 1
                continue
            # RFC 7983 demultiplexing by the first byte.
            if 20 <= first <= 63:
                dtls.append(data)
            elif 128 <= first <= 191:
                rtp.append(data)
            else:
                stats.datagrams_dropped_unknown += 1
                continue
            size += len(data)
        if stun:
            self._pump()
        if dtls:
            self._hand_over(self._dtls_send, dtls)
        if rtp:
            if self._rtp_send is None:
                stats.datagrams_dropped_rtp += len(rtp)
                size -= sum(map(len, rtp))
            else:
                self._hand_over(self._rtp_send, rtp)
        stats.bytes_received += size

    def _hand_over(self, channel: trio.MemorySendChannel[Batch | None], batch: Batch) -> None:
        """One ``send_nowait`` for the whole batch; a full or closed channel drops it (UDP)."""
        try:
            channel.send_nowait(batch)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self.stats.datagrams_dropped_overflow += len(batch)
            self.stats.bytes_received -= sum(map(len, batch))
            return
        self.stats.packets_received += len(batch)

    async def _relay(
        self,
        server: _TurnServer,
        local_host: str,
        preference: int,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Hold one TURN allocation for the transport's lifetime; its relayed address is a
        relay candidate. A failed allocation is reported as icecandidateerror; one that ends
        later (its TCP or TLS connection lost, a refresh refused) takes the candidate's sends
        with it."""
        url = server.url
        started = False
        try:
            async with open_turn_allocation(
                server.address,
                server.username,
                server.credential,
                local_host=local_host,
                transport=server.transport,
                server_name=server.host,
                ssl_context=self.options.turn_tls_context,
                address_family=6 if ":" in server.address[0] else None,
                # ChannelData (4 bytes of header) instead of Send indications (36) for every
                # peer address the relay sends to, as browsers' TURN clients do.
                bind_channels=True,
            ) as allocation:
                base = allocation.relayed_address
                sender = _RelaySender(allocation)
                self._endpoints[base] = sender
                self._agent.add_relay_address(
                    base,
                    mapped=allocation.mapped_address,
                    server=url,
                    local_preference=preference,
                    now=trio.current_time(),
                )
                self._pump()
                started = True
                task_status.started()
                try:
                    while True:
                        peer, data = await allocation.receive()
                        self._deliver(base, [(data, peer)])
                finally:
                    sender.close()
        except (TurnAllocationError, OSError, trio.BrokenResourceError) as exc:
            if started:
                logger.warning("TURN allocation on %s ended: %s", url, exc)
                return
            code = getattr(exc, "code", None)
            self.dispatchEvent(
                IceCandidateErrorEvent(
                    ServerError(
                        address=local_host,
                        port=0,
                        url=url,
                        error_code=code if isinstance(code, int) else 701,
                        error_text=f"TURN allocation failed: {exc}",
                    )
                )
            )
            task_status.started()

    async def _timer_loop(self) -> None:
        agent = self._agent
        while True:
            deadline = agent.get_timer()
            with trio.CancelScope(deadline=math.inf if deadline is None else deadline) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            agent.handle_timer(trio.current_time())
            self._pump()

    async def _resolve_and_add(self, candidate: Candidate) -> None:
        try:
            if self._mdns is None:
                self._mdns = MdnsResolver(
                    timeout=self.options.mdns_timeout,
                    interface_address=self.options.mdns_interface,
                )
            address = await self._mdns.resolve(candidate.host)
        finally:
            self._resolving -= 1
        if address is None:
            logger.info("ignoring remote candidate %s: the name did not resolve", candidate.host)
            return
        if self._state == "closed":
            return
        resolved = attrs.evolve(candidate, host=address)
        self._agent.add_remote_candidate(resolved, trio.current_time())
        self._pump()

    def _pump(self) -> None:
        """Send what the core produced, turn its events into W3C events, re-arm the timer."""
        agent = self._agent
        for data, base, destination in agent.datagrams_to_send(trio.current_time()):
            endpoint = self._endpoints.get(base)
            if endpoint is not None and not endpoint.closed:
                try:
                    endpoint.send_nowait(data, destination)
                except (trio.ClosedResourceError, ValueError):
                    pass
        # webrtc-pc §5.6: the selected pair is the one packets are sent on, which before
        # nomination completes is the best valid pair (RFC 8445 §12). Updated before the state
        # events so a `statechange` handler already sees it.
        data_pair = agent.data_pair
        if data_pair is not None and data_pair is not self._selected_core:
            self._selected_core = data_pair
            self.selected_pair_changes += 1
            self._selected = RTCIceCandidatePair(
                RTCIceCandidate.from_candidate(data_pair.local),
                RTCIceCandidate.from_candidate(data_pair.remote),
            )
            self.dispatchEvent(Event("selectedcandidatepairchange"))
        while (event := agent.next_event()) is not None:
            if isinstance(event, LocalCandidateGathered):
                rtc = RTCIceCandidate.from_candidate(event.candidate, usernameFragment=event.ufrag)
                self.dispatchEvent(IceCandidateEvent(rtc))
            elif isinstance(event, GatheringStateChanged):
                if event.state == "gathering":
                    # A new ICE generation: shared sockets route its checks by its ufrag.
                    for endpoint in self._endpoints.values():
                        if isinstance(endpoint, MuxEndpoint):
                            endpoint.add_local_ufrag(event.ufrag)
                if event.ufrag == agent.local_ufrag and event.state != self._gathering_state:
                    self._gathering_state = event.state
                    self.dispatchEvent(Event("gatheringstatechange"))
                    if event.state == "complete":
                        self.dispatchEvent(IceCandidateEvent(None))
            elif isinstance(event, StateChanged):
                self._state = event.state
                self.dispatchEvent(Event("statechange"))
            elif isinstance(event, SelectedPairChanged):
                pass  # nomination: the data pair above already follows it
            elif isinstance(event, RoleChanged):
                self._role_known = True
            elif isinstance(event, ServerError):
                self.dispatchEvent(IceCandidateErrorEvent(event))
        pair = agent.data_pair
        if pair is None:
            self._send_endpoint = self._send_address = None
        else:
            self._send_endpoint = self._endpoints.get(pair.base)
            self._send_address = pair.remote_address
        if self._timer_scope is not None:
            deadline = agent.get_timer()
            self._timer_scope.deadline = math.inf if deadline is None else deadline


def _check_lite_options(options: IceTransportOptions, servers: Sequence[RTCIceServer]) -> None:
    """An ICE-lite agent uses host candidates only (RFC 8445 §2.5): refuse what contradicts it."""
    if options.relay_only:
        raise ValueError(
            "ice_lite cannot be combined with relay_only (iceTransportPolicy 'relay'): an "
            "ICE-lite agent gathers host candidates only (RFC 8445 §2.5)"
        )
    if servers:
        raise ValueError(
            "ice_lite cannot be combined with iceServers: an ICE-lite agent gathers host "
            "candidates only (RFC 8445 §2.5), so STUN/TURN servers would never be used"
        )


def _coerce_candidate(
    value: RTCIceCandidate | Mapping[str, Any] | str | Candidate | None,
) -> RTCIceCandidate | None:
    if value is None or isinstance(value, RTCIceCandidate):
        return value
    if isinstance(value, Candidate):
        return RTCIceCandidate.from_candidate(value)
    if isinstance(value, str):
        if value and not value.removeprefix("a=").startswith("candidate:"):
            raise TypeError(f"not a candidate attribute: {value!r}")
        try:
            return RTCIceCandidate.from_candidate(Candidate.from_sdp(value)) if value else None
        except CandidateError as exc:
            raise TypeError(f"cannot parse remote candidate {value!r}: {exc}") from None
    init = dict(value)
    if init.get("sdpMid") is None and init.get("sdpMLineIndex") is None:
        init["sdpMid"] = "0"  # a bare transport has no m-sections; any mid will do
    return RTCIceCandidate(init)


@attrs.frozen
class _TurnServer:
    address: Address
    url: str
    #: The URL's host: what a turns: server's certificate must name.
    host: str
    transport: TurnTransport
    username: str
    credential: str


#: Local preference of a relay candidate by how its server is reached, before the index of
#: the server in the configuration is taken off.
_RELAY_PREFERENCE: dict[str, int] = {"udp": 65535, "tcp": 32767, "tls": 16383}


def _turn_transport(url: str) -> TurnTransport | None:
    """How a turn:/turns: URL reaches its server (RFC 7065): ``turns:`` is TLS over TCP,
    ``?transport=tcp`` TCP, ``?transport=udp`` or nothing UDP. None for anything else."""
    scheme = url.partition(":")[0].lower()
    query = url.partition("?")[2].lower()
    transport = "udp"
    for part in query.split("&") if query else ():
        key, _, value = part.partition("=")
        if key == "transport":
            transport = value
    if transport not in ("udp", "tcp"):
        return None
    if scheme == "turns":
        # TLS runs over TCP; turns: with transport=udp would be DTLS, which no browser offers.
        return "tls" if transport == "tcp" or "transport=" not in query else None
    return "tcp" if transport == "tcp" else "udp"


def _parse_server_url(url: str) -> tuple[str, str, int]:
    """``stun:host[:port]`` / ``turn:host[:port][?transport=udp]`` (RFC 7064, RFC 7065)."""
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in ("stun", "stuns", "turn", "turns"):
        raise TypeError(f"ICE server URL {url!r} must start with stun:, stuns:, turn: or turns:")
    rest = rest.split("?", 1)[0]
    default_port = 5349 if scheme.endswith("s") else 3478
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_text = rest.partition(":")
    if not host:
        raise TypeError(f"ICE server URL {url!r} has no host")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise TypeError(f"ICE server URL {url!r} has a bad port {port_text!r}") from None
    if not 0 < port < 65536:
        raise TypeError(f"ICE server URL {url!r} has a port out of range")
    return scheme, host, port


@contextlib.asynccontextmanager
async def open_ice_transport(
    *, controlling: bool = True, options: IceTransportOptions | None = None, **kwargs: Any
) -> AsyncIterator[RTCIceTransport]:
    """``async with open_ice_transport(...) as transport:`` — the same as using the transport
    itself as a context manager, for symmetry with trio's ``open_*`` functions."""
    async with RTCIceTransport(controlling=controlling, options=options, **kwargs) as transport:
        yield transport
