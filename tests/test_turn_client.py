"""TurnClient core with hand-made server answers and a fake clock; ChannelData framing + fuzz."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from trio_rtc.stun import (
    Attr,
    MessageClass,
    Method,
    StunMessage,
    long_term_key,
    parse_message_untrusted,
)
from trio_rtc.testing import LinkConditions, VirtualNetwork
from trio_rtc.turn import (
    Allocated,
    AllocationClosed,
    AllocationFailed,
    AllocationRefreshed,
    ChannelBound,
    DataReceived,
    PermissionCreated,
    PermissionFailed,
    StreamFramer,
    TurnClient,
    TurnError,
    TurnEvent,
    TurnState,
    TurnUsageError,
    encode_channel_data,
    is_channel_data_untrusted,
    open_turn_allocation,
    parse_channel_data_untrusted,
)
from trio_rtc.udp import UdpEndpoint, open_udp_endpoint

SERVER = ("192.0.2.1", 3478)
USER, PASSWORD, REALM = "alice", "secret", "example.org"
KEY = long_term_key(USER, REALM, PASSWORD)
RELAYED = ("192.0.2.1", 50000)
MAPPED = ("198.51.100.7", 40000)
PEER = ("203.0.113.5", 6000)


def sent(client: TurnClient) -> list[StunMessage]:
    return [parse_message_untrusted(d) for d in client.datagrams_to_send(0.0)]


def one_request(client: TurnClient, method: Method) -> StunMessage:
    messages = sent(client)
    assert len(messages) == 1
    (message,) = messages
    assert message.method == method and message.message_class is MessageClass.REQUEST
    return message


def events(client: TurnClient) -> list[TurnEvent]:
    out = []
    while (event := client.next_event()) is not None:
        out.append(event)
    return out


def answer(client: TurnClient, response: StunMessage, now: float, key: bytes | None = KEY) -> None:
    client.receive_datagram(response.encode(key=key), SERVER, now)


def unauthorized(request: StunMessage, nonce: str = "n1") -> StunMessage:
    response = request.error_response(401, "Unauthorized")
    response.attributes[Attr.REALM] = REALM
    response.attributes[Attr.NONCE] = nonce
    return response


def allocated_client(lifetime: int = 600, **kwargs: int) -> TurnClient:
    client = TurnClient(SERVER, USER, PASSWORD, **kwargs)
    client.allocate(0.0)
    first = one_request(client, Method.ALLOCATE)
    answer(client, unauthorized(first), 0.01, key=None)
    second = one_request(client, Method.ALLOCATE)
    success = second.success_response()
    success.attributes[Attr.XOR_RELAYED_ADDRESS] = RELAYED
    success.attributes[Attr.XOR_MAPPED_ADDRESS] = MAPPED
    success.attributes[Attr.LIFETIME] = lifetime
    answer(client, success, 0.02)
    assert events(client) == [Allocated(RELAYED, MAPPED, lifetime)]
    return client


def test_allocate_401_then_success() -> None:
    client = TurnClient(SERVER, USER, PASSWORD)
    client.allocate(0.0)
    first = one_request(client, Method.ALLOCATE)
    assert first.get_int(Attr.REQUESTED_TRANSPORT) == 17
    assert not first.has(Attr.USERNAME) and not first.has(Attr.MESSAGE_INTEGRITY)
    assert client.get_timer() == pytest.approx(0.5)  # RFC 8489 retransmission

    answer(client, unauthorized(first), 0.01, key=None)
    second = one_request(client, Method.ALLOCATE)
    assert second.transaction_id != first.transaction_id
    assert second.get_str(Attr.USERNAME) == USER
    assert second.get_str(Attr.REALM) == REALM
    assert second.get_str(Attr.NONCE) == "n1"
    assert second.get_int(Attr.REQUESTED_TRANSPORT) == 17
    assert second.check_integrity(KEY)

    success = second.success_response()
    success.attributes[Attr.XOR_RELAYED_ADDRESS] = RELAYED
    success.attributes[Attr.XOR_MAPPED_ADDRESS] = MAPPED
    success.attributes[Attr.LIFETIME] = 600
    answer(client, success, 0.02)
    assert events(client) == [Allocated(RELAYED, MAPPED, 600)]
    assert client.state is TurnState.ALLOCATED
    assert client.relayed_address == RELAYED and client.mapped_address == MAPPED
    # Refresh 60 s before the 600 s lifetime runs out.
    assert client.get_timer() == pytest.approx(0.02 + 540)


def test_wrong_credentials_fail_with_401() -> None:
    client = TurnClient(SERVER, USER, "wrong")
    client.allocate(0.0)
    answer(client, unauthorized(one_request(client, Method.ALLOCATE)), 0.01, key=None)
    second = one_request(client, Method.ALLOCATE)
    answer(client, unauthorized(second, "n2"), 0.02, key=None)
    assert events(client) == [AllocationFailed(401, "Unauthorized")]
    assert client.state is TurnState.FAILED
    assert client.get_timer() is None


def test_quota_error_is_a_failure_event() -> None:
    client = TurnClient(SERVER, USER, PASSWORD)
    client.allocate(0.0)
    answer(client, unauthorized(one_request(client, Method.ALLOCATE)), 0.01, key=None)
    second = one_request(client, Method.ALLOCATE)
    answer(client, second.error_response(486, "Allocation Quota Reached"), 0.02)
    assert events(client) == [AllocationFailed(486, "Allocation Quota Reached")]


def test_unauthenticated_or_unmatched_answers_are_dropped() -> None:
    client = TurnClient(SERVER, USER, PASSWORD)
    client.allocate(0.0)
    answer(client, unauthorized(one_request(client, Method.ALLOCATE)), 0.01, key=None)
    second = one_request(client, Method.ALLOCATE)
    forged = second.error_response(486, "Allocation Quota Reached")
    answer(client, forged, 0.02, key=b"not the key")
    answer(client, forged, 0.02, key=None)
    stray = StunMessage.request(Method.ALLOCATE).success_response()
    answer(client, stray, 0.02)
    client.receive_datagram(second.error_response(486, "x").encode(key=KEY), ("10.0.0.1", 1), 0.02)
    client.receive_datagram(b"\x00\x01garbage", SERVER, 0.02)
    assert events(client) == []
    assert client.state is TurnState.ALLOCATING
    assert client.stats.bad_integrity == 2
    assert client.stats.unmatched == 1
    assert client.stats.wrong_source == 1
    assert client.stats.malformed == 1


def test_allocate_times_out() -> None:
    client = TurnClient(SERVER, USER, PASSWORD)
    client.allocate(0.0)
    sends = len(client.datagrams_to_send(0.0))
    while (deadline := client.get_timer()) is not None:
        client.handle_timer(deadline)
        sends += len(client.datagrams_to_send(0.0))
        last = deadline
    assert sends == 7 and last == pytest.approx(39.5)
    (failed,) = events(client)
    assert isinstance(failed, AllocationFailed) and failed.code is None


def test_refresh_with_stale_nonce() -> None:
    client = allocated_client()
    client.handle_timer(540.02)
    refresh = one_request(client, Method.REFRESH)
    assert refresh.check_integrity(KEY) and refresh.get_str(Attr.NONCE) == "n1"
    stale = refresh.error_response(438, "Stale Nonce")
    stale.attributes[Attr.NONCE] = "n2"
    answer(client, stale, 540.03, key=None)
    retry = one_request(client, Method.REFRESH)
    assert retry.get_str(Attr.NONCE) == "n2" and retry.check_integrity(KEY)
    success = retry.success_response()
    success.attributes[Attr.LIFETIME] = 600
    answer(client, success, 540.04)
    assert events(client) == [AllocationRefreshed(600)]
    assert client.get_timer() == pytest.approx(1080.04)


def test_short_lifetime_refreshes_at_half() -> None:
    client = allocated_client(lifetime=60)
    assert client.get_timer() == pytest.approx(30.02)
    client.handle_timer(29.0)
    assert client.datagrams_to_send(0.0) == []
    deadline = client.get_timer()
    assert deadline is not None
    client.handle_timer(deadline)
    one_request(client, Method.REFRESH)


def test_refresh_error_fails_the_allocation() -> None:
    client = allocated_client()
    client.refresh(1.0)
    refresh = one_request(client, Method.REFRESH)
    answer(client, refresh.error_response(437, "Allocation Mismatch"), 1.1)
    assert events(client) == [AllocationFailed(437, "Allocation Mismatch")]


def test_permission_send_indication_and_data_indication() -> None:
    client = allocated_client()
    client.send_to(PEER, b"early", 1.0)  # asks for the permission and sends anyway
    messages = sent(client)
    assert [m.method for m in messages] == [Method.CREATE_PERMISSION, Method.SEND]
    request, send = messages
    assert request.get_address(Attr.XOR_PEER_ADDRESS) == (PEER[0], 0)
    assert send.message_class is MessageClass.INDICATION
    assert send.get_address(Attr.XOR_PEER_ADDRESS) == PEER
    assert send.get_bytes(Attr.DATA) == b"early"
    answer(client, request.success_response(), 1.1)
    assert events(client) == [PermissionCreated(PEER[0])]

    data = StunMessage.indication(
        Method.DATA, attributes={Attr.XOR_PEER_ADDRESS: PEER, Attr.DATA: b"hi"}
    )
    client.receive_datagram(data.encode(), SERVER, 2.0)
    other = StunMessage.indication(
        Method.DATA, attributes={Attr.XOR_PEER_ADDRESS: ("203.0.113.99", 1), Attr.DATA: b"x"}
    )
    client.receive_datagram(other.encode(), SERVER, 2.0)
    assert events(client) == [DataReceived(PEER, b"hi")]
    assert client.stats.no_permission == 1

    # Refreshed every 240 s, below the 300 s permission lifetime (RFC 8656 §9).
    client.handle_timer(241.1)
    refresh = [m for m in sent(client) if m.method == Method.CREATE_PERMISSION]
    assert len(refresh) == 1


def test_permission_failure_and_bounds() -> None:
    client = allocated_client(max_permissions=2)
    client.create_permission("203.0.113.1", 1.0)
    client.create_permission("203.0.113.2", 1.0)
    client.create_permission("203.0.113.2", 1.0)  # idempotent
    with pytest.raises(TurnUsageError):
        client.create_permission("203.0.113.3", 1.0)
    first, _ = sent(client)
    answer(client, first.error_response(403, "Forbidden IP"), 1.1)
    assert events(client) == [PermissionFailed("203.0.113.1", 403, "Forbidden IP")]
    client.create_permission("203.0.113.3", 1.2)  # room again


def test_channel_bind_channel_data_and_refresh() -> None:
    client = allocated_client()
    number = client.bind_channel(PEER, 1.0)
    assert number == 0x4000
    assert client.bind_channel(PEER, 1.0) == number
    bind = one_request(client, Method.CHANNEL_BIND)
    assert bind.get_int(Attr.CHANNEL_NUMBER) == number
    assert bind.get_address(Attr.XOR_PEER_ADDRESS) == PEER
    # Until bound, data goes in Send indications; ChannelData from it is not accepted yet.
    client.receive_datagram(encode_channel_data(number, b"early"), SERVER, 1.05)
    assert client.stats.unknown_channel == 1
    answer(client, bind.success_response(), 1.1)
    assert events(client) == [ChannelBound(PEER, number)]

    client.send_to(PEER, b"abcde", 2.0)
    (datagram,) = client.datagrams_to_send(0.0)
    assert datagram == b"\x40\x00\x00\x05abcde"
    client.receive_datagram(b"\x40\x00\x00\x03xyz\x00", SERVER, 2.1)  # padded: fine on UDP
    client.receive_datagram(b"\x40\x01\x00\x01z", SERVER, 2.1)  # unbound channel
    assert events(client) == [DataReceived(PEER, b"xyz")]
    assert client.stats.unknown_channel == 2

    # ChannelBind refreshes the channel (600 s) and the permission (300 s) it installs.
    client.handle_timer(241.1)
    assert [m.method for m in sent(client)] == [Method.CREATE_PERMISSION]
    client.handle_timer(541.1)
    assert Method.CHANNEL_BIND in [m.method for m in sent(client)]


def test_channel_bounds() -> None:
    client = allocated_client(max_channels=1)
    client.bind_channel(PEER, 1.0)
    with pytest.raises(TurnUsageError):
        client.bind_channel(("203.0.113.6", 1), 1.0)


def test_close_deallocates() -> None:
    client = allocated_client()
    client.close(5.0)
    refresh = one_request(client, Method.REFRESH)
    assert refresh.get_int(Attr.LIFETIME) == 0
    success = refresh.success_response()
    success.attributes[Attr.LIFETIME] = 0
    answer(client, success, 5.1)
    assert events(client) == [AllocationClosed()]
    assert client.state is TurnState.CLOSED
    assert client.get_timer() is None
    with pytest.raises(TurnUsageError):
        client.send_to(PEER, b"x", 6.0)


def test_usage_errors() -> None:
    client = TurnClient(SERVER, USER, PASSWORD)
    with pytest.raises(TurnUsageError):
        client.create_permission("203.0.113.1", 0.0)
    client.allocate(0.0)
    with pytest.raises(TurnUsageError):
        client.allocate(0.0)


# --- ChannelData framing ---------------------------------------------------------------------


def test_channel_data_framing() -> None:
    assert encode_channel_data(0x4001, b"abc") == b"\x40\x01\x00\x03abc"
    assert encode_channel_data(0x4001, b"abc", pad=True) == b"\x40\x01\x00\x03abc\x00"
    assert encode_channel_data(0x4FFF, b"") == b"\x4f\xff\x00\x00"
    for bad in (0x3FFF, 0x5000):
        with pytest.raises(ValueError):
            encode_channel_data(bad, b"")
    for data in (b"", b"\x40\x00\x00", b"\x50\x00\x00\x00", b"\x40\x00\x00\x05abcd"):
        with pytest.raises(TurnError):
            parse_channel_data_untrusted(data)
    assert not is_channel_data_untrusted(b"\x00\x01\x00\x00")
    assert is_channel_data_untrusted(b"\x40\x00\x00\x00")


@given(
    st.integers(0x4000, 0x4FFF),
    st.binary(max_size=300),
    st.booleans(),
)
def test_channel_data_round_trip(channel: int, payload: bytes, pad: bool) -> None:
    encoded = encode_channel_data(channel, payload, pad=pad)
    assert len(encoded) % 4 == 0 or not pad
    assert parse_channel_data_untrusted(encoded) == (channel, payload)
    assert parse_channel_data_untrusted(memoryview(encoded)) == (channel, payload)


@given(st.binary(max_size=200))
def test_channel_data_parse_fuzz(data: bytes) -> None:
    try:
        channel, payload = parse_channel_data_untrusted(data)
    except TurnError:
        return
    assert 0x4000 <= channel <= 0x4FFF
    assert payload == data[4 : 4 + len(payload)]


@given(st.lists(st.binary(max_size=120), max_size=8))
def test_client_never_raises_on_arbitrary_datagrams(datagrams: list[bytes]) -> None:
    client = allocated_client()
    client.bind_channel(PEER, 1.0)
    for data in datagrams:
        client.receive_datagram(data, SERVER, 2.0)
        client.receive_datagram(b"\x40\x00" + data, SERVER, 2.0)
    assert client.state is TurnState.ALLOCATED


@given(
    st.dictionaries(
        st.sampled_from(
            [Attr.XOR_RELAYED_ADDRESS, Attr.XOR_MAPPED_ADDRESS, Attr.LIFETIME, Attr.ERROR_CODE]
        ),
        st.none(),
    ),
    st.integers(0, 2**32 - 1),
    st.booleans(),
    st.sampled_from([None, KEY, b"other key"]),
)
def test_any_answer_to_allocate_ends_cleanly(
    present: dict[int, None], lifetime: int, error: bool, key: bytes | None
) -> None:
    client = TurnClient(SERVER, USER, PASSWORD)
    client.allocate(0.0)
    answer(client, unauthorized(one_request(client, Method.ALLOCATE)), 0.01, key=None)
    request = one_request(client, Method.ALLOCATE)
    response = request.error_response(500, "x") if error else request.success_response()
    values: dict[int, object] = {
        Attr.XOR_RELAYED_ADDRESS: RELAYED,
        Attr.XOR_MAPPED_ADDRESS: MAPPED,
        Attr.LIFETIME: lifetime,
        Attr.ERROR_CODE: (438, "Stale Nonce"),
    }
    for attr in present:
        response.attributes[attr] = values[attr]
    answer(client, response, 0.02, key=key)
    while (deadline := client.get_timer()) is not None and deadline < 100:
        client.handle_timer(deadline)
    client.datagrams_to_send(0.0)
    assert client.state in (TurnState.ALLOCATING, TurnState.ALLOCATED, TurnState.FAILED)
    for event in events(client):
        assert isinstance(event, Allocated | AllocationFailed)


# --- the trio driver over the virtual network, with a fake clock -------------------------------


async def fake_turn_server(endpoint: UdpEndpoint, log: list[tuple[float, int, int | None]]) -> None:
    """Answers Allocate (401 first), Refresh and CreatePermission; logs (time, method, LIFETIME)."""
    while True:
        for data, source in await endpoint.recv_batch():
            request = parse_message_untrusted(data)
            if request.message_class is not MessageClass.REQUEST:
                continue
            log.append((trio.current_time(), request.method, request.get_int(Attr.LIFETIME)))
            if not request.has(Attr.USERNAME):
                endpoint.send_nowait(unauthorized(request).encode(), source)
                continue
            assert request.check_integrity(KEY)
            response = request.success_response()
            if request.method == Method.ALLOCATE:
                response.attributes[Attr.XOR_RELAYED_ADDRESS] = RELAYED
                response.attributes[Attr.XOR_MAPPED_ADDRESS] = source
            if request.method in (Method.ALLOCATE, Method.REFRESH):
                requested = request.get_int(Attr.LIFETIME)
                response.attributes[Attr.LIFETIME] = 20 if requested is None else requested
            endpoint.send_nowait(response.encode(key=KEY), source)


async def test_driver_refreshes_on_time(autojump_clock: trio.testing.MockClock) -> None:
    server_host, client_host = "192.0.2.1", "192.0.2.2"
    log: list[tuple[float, int, int | None]] = []
    async with VirtualNetwork(conditions=LinkConditions(delay=0.1)), trio.open_nursery() as nursery:
        server = await open_udp_endpoint(server_host, 3478)
        nursery.start_soon(fake_turn_server, server, log)
        start = trio.current_time()
        async with open_turn_allocation(
            server.local_address, USER, PASSWORD, local_host=client_host
        ) as allocation:
            assert allocation.relayed_address == RELAYED
            assert allocation.mapped_address == (client_host, allocation.endpoint.local_address[1])
            assert trio.current_time() - start == pytest.approx(0.4)  # two round trips
            await allocation.create_permission(PEER[0])
            await trio.sleep(35)
        nursery.cancel_scope.cancel()
    methods = [(method, lifetime) for _, method, lifetime in log]
    assert methods[:3] == [(Method.ALLOCATE, None)] * 2 + [(Method.CREATE_PERMISSION, None)]
    refreshes = [
        t - start for t, method, lifetime in log if method == Method.REFRESH and lifetime is None
    ]
    # LIFETIME 20 s: sent at half (10 s) after each success is received (0.4, 10.6, 20.8 s),
    # logged by the server one 0.1 s link delay later.
    assert refreshes == pytest.approx([10.5, 20.7, 30.9], abs=1e-6)
    assert methods[-1] == (Method.REFRESH, 0)  # deallocation on leaving the block


def test_undrained_relayed_data_is_bounded() -> None:
    from trio_rtc.turn.client import MAX_QUEUED_DATA

    client = allocated_client()
    number = client.bind_channel(PEER, 1.0)
    bind = one_request(client, Method.CHANNEL_BIND)
    answer(client, bind.success_response(), 1.1)
    assert events(client) == [ChannelBound(PEER, number)]
    for i in range(MAX_QUEUED_DATA + 10):
        client.receive_datagram(encode_channel_data(number, i.to_bytes(4, "big")), SERVER, 2.0)
    assert client.stats.data_overflow == 10
    drained = events(client)
    assert len(drained) == MAX_QUEUED_DATA
    # Room again once drained.
    client.receive_datagram(encode_channel_data(number, b"more"), SERVER, 2.1)
    assert events(client) == [DataReceived(PEER, b"more")]


def test_reliable_transport_sends_a_request_once_and_pads_channel_data() -> None:
    """Over TCP or TLS (RFC 8489 §6.2.2) a request is not retransmitted: it fails after 39.5 s;
    ChannelData is padded to a multiple of 4 bytes (RFC 8656 §12.5)."""
    client = TurnClient(SERVER, USER, PASSWORD, reliable=True)
    client.allocate(0.0)
    assert len(client.datagrams_to_send(0.0)) == 1
    assert client.get_timer() == pytest.approx(39.5)
    client.handle_timer(20.0)
    assert client.datagrams_to_send(0.0) == []
    client.handle_timer(39.5)
    assert client.datagrams_to_send(0.0) == []
    (failed,) = events(client)
    assert isinstance(failed, AllocationFailed) and failed.code is None

    client = allocated_client(reliable=True)
    number = client.bind_channel(PEER, 1.0)
    answer(client, one_request(client, Method.CHANNEL_BIND).success_response(), 1.1)
    assert events(client) == [ChannelBound(PEER, number)]
    client.send_to(PEER, b"abcde", 2.0)
    assert client.datagrams_to_send(0.0) == [b"\x40\x00\x00\x05abcde\x00\x00\x00"]


def test_bind_channels_binds_on_the_first_send_and_falls_back_when_refused() -> None:
    """``bind_channels``: the first data to a peer goes as a Send indication and binds a
    channel (which installs the permission); once bound, ChannelData. A peer whose binding the
    server refuses keeps Send indications, with a permission, and is not asked for again."""
    client = allocated_client(bind_channels=True)
    client.send_to(PEER, b"first", 1.0)
    messages = sent(client)
    assert [(m.method, m.message_class) for m in messages] == [
        (Method.CHANNEL_BIND, MessageClass.REQUEST),
        (Method.SEND, MessageClass.INDICATION),
    ]
    bind = messages[0]
    answer(client, bind.success_response(), 1.1)
    assert events(client) == [ChannelBound(PEER, bind.get_int(Attr.CHANNEL_NUMBER))]
    client.send_to(PEER, b"abcde", 2.0)
    assert client.datagrams_to_send(0.0) == [b"\x40\x00\x00\x05abcde"]

    other = ("203.0.113.6", 7000)
    client.send_to(other, b"x", 3.0)
    refused = [m for m in sent(client) if m.method == Method.CHANNEL_BIND]
    assert len(refused) == 1
    answer(client, refused[0].error_response(403, "Forbidden"), 3.1)
    events(client)
    client.send_to(other, b"y", 4.0)
    again = sent(client)
    assert [(m.method, m.message_class) for m in again] == [
        (Method.CREATE_PERMISSION, MessageClass.REQUEST),
        (Method.SEND, MessageClass.INDICATION),
    ]


_stun_messages = st.builds(
    lambda method, payload: StunMessage.indication(
        method, attributes={Attr.DATA: payload, Attr.XOR_PEER_ADDRESS: PEER}
    ).encode(),
    st.sampled_from([Method.SEND, Method.DATA]),
    st.binary(max_size=300),
)
_channel_messages = st.builds(
    lambda channel, payload: encode_channel_data(channel, payload, pad=True),
    st.integers(0x4000, 0x4FFF),
    st.binary(max_size=300),
)


@given(
    st.lists(st.one_of(_stun_messages, _channel_messages), max_size=12),
    st.lists(st.integers(1, 64), min_size=1, max_size=20),
)
def test_stream_framer_cuts_any_split_of_a_stream_into_its_messages(
    messages: list[bytes], cuts: list[int]
) -> None:
    """However TCP cuts the stream, the framer gives back the messages (ChannelData without
    its padding) and holds nothing once they are all in."""
    stream = b"".join(messages)
    framer = StreamFramer()
    out: list[bytes] = []
    offset = 0
    index = 0
    while offset < len(stream):
        size = cuts[index % len(cuts)]
        out += framer.feed(stream[offset : offset + size])
        offset += size
        index += 1
    expected = [
        m[: 4 + int.from_bytes(m[2:4], "big")] if is_channel_data_untrusted(m) else m
        for m in messages
    ]
    assert out == expected and framer.pending == 0


@given(st.binary(max_size=2000))
def test_stream_framer_never_fails_but_with_turn_error(data: bytes) -> None:
    framer = StreamFramer()
    try:
        framer.feed(data)
    except TurnError:
        return
    # Whatever it holds is at most one incomplete message.
    assert framer.pending < 4 + 0xFFFF + 20


def test_stream_framer_refuses_what_cannot_be_resynchronised() -> None:
    for bad in (b"\x80\x00\x00\x00", b"\x50\x00\x00\x00", b"\x00\x01\x00\x05" + bytes(16)):
        with pytest.raises(TurnError):
            StreamFramer().feed(bad)


def test_ipv6_relayed_address_is_requested_only_when_asked() -> None:
    """REQUESTED-ADDRESS-FAMILY (RFC 8656 §7.1): 0x02 for an IPv6 relayed address; absent by
    default (the server gives IPv4), and kept on the authenticated retry."""
    client = TurnClient(SERVER, USER, PASSWORD, address_family=6)
    client.allocate(0.0)
    first = one_request(client, Method.ALLOCATE)
    assert first.get_int(Attr.REQUESTED_ADDRESS_FAMILY) == 0x02
    answer(client, unauthorized(first), 0.01, key=None)
    second = one_request(client, Method.ALLOCATE)
    assert second.get_int(Attr.REQUESTED_ADDRESS_FAMILY) == 0x02
    plain = TurnClient(SERVER, USER, PASSWORD)
    plain.allocate(0.0)
    assert Attr.REQUESTED_ADDRESS_FAMILY not in one_request(plain, Method.ALLOCATE).attributes
    with pytest.raises(ValueError):
        TurnClient(SERVER, USER, PASSWORD, address_family=5)  # type: ignore[arg-type]
