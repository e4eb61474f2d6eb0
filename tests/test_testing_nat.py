"""NAT boxes on the virtual network (RFC 4787) and the in-process STUN/TURN servers: each NAT
type maps and filters as the RFC defines, and two peer connections connect or fail as those
behaviours predict; symmetric NATs on both sides need TURN, and connect through it."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_rtc.stun import Attr, Method, StunMessage, parse_message_untrusted
from trio_rtc.testing import (
    ADDRESS_RESTRICTED,
    FULL_CONE,
    PORT_RESTRICTED,
    SYMMETRIC,
    Filtering,
    Mapping,
    Nat,
    NatBehavior,
    Scenario,
    StunServer,
    Topology,
    VirtualNetwork,
    run_session,
)
from trio_rtc.udp import open_udp_endpoint

HOST = ("10.0.0.2", 5000)
R1 = ("203.0.113.1", 1000)
R1_OTHER_PORT = ("203.0.113.1", 2000)
R2 = ("203.0.113.2", 1000)


def nat(behavior: NatBehavior) -> Nat:
    return Nat("198.51.100.9", "10.0.0.0/24", behavior)


@pytest.mark.parametrize(
    ("mapping", "same_for_other_port", "same_for_other_ip"),
    [
        (Mapping.ENDPOINT_INDEPENDENT, True, True),
        (Mapping.ADDRESS_DEPENDENT, True, False),
        (Mapping.ADDRESS_AND_PORT_DEPENDENT, False, False),
    ],
)
def test_mapping_behaviour(
    mapping: Mapping, same_for_other_port: bool, same_for_other_ip: bool
) -> None:
    box = nat(NatBehavior(mapping, Filtering.ENDPOINT_INDEPENDENT))
    first = box.translate_outbound(HOST, R1, 0.0)
    assert first == ("198.51.100.9", 20000)
    assert box.translate_outbound(HOST, R1, 1.0) == first
    assert (box.translate_outbound(HOST, R1_OTHER_PORT, 2.0) == first) is same_for_other_port
    assert (box.translate_outbound(HOST, R2, 3.0) == first) is same_for_other_ip


@pytest.mark.parametrize(
    ("filtering", "admits"),
    [
        (Filtering.ENDPOINT_INDEPENDENT, {R1, R1_OTHER_PORT, R2}),
        (Filtering.ADDRESS_DEPENDENT, {R1, R1_OTHER_PORT}),
        (Filtering.ADDRESS_AND_PORT_DEPENDENT, {R1}),
    ],
)
def test_filtering_behaviour(filtering: Filtering, admits: set[tuple[str, int]]) -> None:
    box = nat(NatBehavior(Mapping.ENDPOINT_INDEPENDENT, filtering))
    _, port = box.translate_outbound(HOST, R1, 0.0)
    for remote in (R1, R1_OTHER_PORT, R2):
        expected = HOST if remote in admits else None
        assert box.translate_inbound(port, remote, 1.0) == expected, remote
    assert box.translate_inbound(port + 1, R1, 1.0) is None  # no mapping on that port
    assert box.stats.filtered == 3 - len(admits) + 1


def test_mapping_expires_without_outbound_traffic() -> None:
    box = nat(NatBehavior(Mapping.ENDPOINT_INDEPENDENT, Filtering.ENDPOINT_INDEPENDENT, timeout=30))
    _, port = box.translate_outbound(HOST, R1, 0.0)
    assert box.translate_inbound(port, R1, 29.0) == HOST  # inbound does not refresh
    assert box.translate_inbound(port, R1, 31.0) is None
    assert box.stats.mappings_expired == 1
    assert box.translate_outbound(HOST, R1, 32.0) == ("198.51.100.9", port + 1)


def test_nat_rejects_a_public_address_inside_its_realm() -> None:
    with pytest.raises(ValueError, match="inside"):
        Nat("10.0.0.1", "10.0.0.0/24", FULL_CONE)


async def binding(endpoint_ip: str, servers: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The mapped addresses STUN servers report for one endpoint."""
    endpoint = await open_udp_endpoint(endpoint_ip)
    mapped = []
    for server in servers:
        request = StunMessage.request(Method.BINDING)
        endpoint.send_nowait(request.encode(), server)
        data, _ = (await endpoint.recv_batch(1))[0]
        address = parse_message_untrusted(data).get_address(Attr.XOR_MAPPED_ADDRESS)
        assert address is not None
        mapped.append(address)
    return mapped


@pytest.mark.parametrize(
    ("behavior", "same"), [(PORT_RESTRICTED, True), (SYMMETRIC, False)], ids=["eim", "apdm"]
)
async def test_stun_server_sees_the_nat_mapping(
    autojump_clock: trio.testing.MockClock, behavior: NatBehavior, same: bool
) -> None:
    async with VirtualNetwork(seed=1) as net:
        box = net.add_nat(Nat("198.51.100.1", "10.0.1.0/24", behavior))
        async with StunServer("203.0.113.100") as one, StunServer("203.0.113.101") as two:
            first, second = await binding("10.0.1.2", [one.address, two.address])
    assert first[0] == second[0] == "198.51.100.1"
    assert (first == second) is same
    assert box.stats.translated_out == 2


async def test_private_addresses_are_unreachable_from_outside(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with VirtualNetwork(seed=1) as net:
        net.add_nat(Nat("198.51.100.1", "10.0.1.0/24", FULL_CONE))
        inside = await open_udp_endpoint("10.0.1.2", 4000)
        neighbour = await open_udp_endpoint("10.0.1.3")
        outside = await open_udp_endpoint("203.0.113.5")
        outside.send_nowait(b"direct", inside.local_address)
        neighbour.send_nowait(b"same realm", inside.local_address)
        await trio.sleep(0.1)
        assert [data for data, _ in inside.recv_batch_nowait()] == [b"same realm"]
        assert net.stats.dropped_nat == 1


def test_overlapping_realms_are_refused() -> None:
    net = VirtualNetwork()
    net.add_nat(Nat("198.51.100.1", "10.0.0.0/16", FULL_CONE))
    with pytest.raises(ValueError, match="overlaps"):
        net.add_nat(Nat("198.51.100.2", "10.0.1.0/24", FULL_CONE))


NO_NAT = None
# RFC 4787 predictions for two peers that each learn a server-reflexive candidate from STUN:
# hole punching works unless one side's mapping changes per destination (symmetric) while the
# other side's filter only admits the exact (IP, port) it has sent to.
CASES = [
    (FULL_CONE, FULL_CONE, True),
    (ADDRESS_RESTRICTED, ADDRESS_RESTRICTED, True),
    (PORT_RESTRICTED, PORT_RESTRICTED, True),
    (FULL_CONE, SYMMETRIC, True),
    (ADDRESS_RESTRICTED, SYMMETRIC, True),
    (NO_NAT, SYMMETRIC, True),
    (PORT_RESTRICTED, SYMMETRIC, False),
    (SYMMETRIC, SYMMETRIC, False),
]
NAMES = {
    id(FULL_CONE): "full-cone",
    id(ADDRESS_RESTRICTED): "address-restricted",
    id(PORT_RESTRICTED): "port-restricted",
    id(SYMMETRIC): "symmetric",
    id(None): "public",
}


@pytest.mark.parametrize(
    ("nat_a", "nat_b", "connects"),
    CASES,
    ids=[f"{NAMES[id(a)]}-{NAMES[id(b)]}" for a, b, _ in CASES],
)
def test_nat_pairs_connect_as_rfc_4787_predicts(
    nat_a: NatBehavior | None, nat_b: NatBehavior | None, connects: bool
) -> None:
    scenario = Scenario("nat", topology=Topology(nat_a=nat_a, nat_b=nat_b))
    result = run_session(scenario, seed=3)
    assert result.connected is connects, result.error
    if not connects:
        assert result.error == "connection failed"
        assert result.network.dropped_nat > 0


def test_symmetric_nats_on_both_sides_connect_through_turn() -> None:
    topology = Topology(nat_a=SYMMETRIC, nat_b=SYMMETRIC, turn=True)
    result = run_session(Scenario("turn", topology=topology), seed=3)
    assert result.connected, result.error
    assert result.error == ""
    assert result.relayed > 0


def test_relay_only_policy_uses_the_turn_server() -> None:
    topology = Topology(turn=True, relay_only=True)
    result = run_session(Scenario("relay", topology=topology), seed=5)
    assert result.connected, result.error
    assert result.relayed > 0
