"""Mutated real handshake traffic fed to fresh connections: nothing may escape receive_datagram."""

from __future__ import annotations

from dtls_sim import Link, pair
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_rtc.dtls import DtlsConnection
from trio_rtc.dtls.handshake import Reassembler

_TRAFFIC: dict[bool, list[bytes]] = {}


def fixed_random(n: int) -> bytes:
    """Same randoms and cookie secret in the recording and in each fuzzed run, so mutated
    traffic gets deep into the handshake (to the signatures and Finished checks)."""
    return b"\x42" * n


def fresh_pair() -> tuple[DtlsConnection, DtlsConnection]:
    return pair(server_use_cookies=True, random_bytes=fixed_random)


def traffic() -> dict[bool, list[bytes]]:
    """Datagrams of one full handshake plus data, keyed by whether the client sent them."""
    if not _TRAFFIC:
        client, server = fresh_pair()
        link = Link(client, server)
        link.handshake()
        client.send_application_data(b"data")
        server.send_application_data(b"data")
        client.close()
        link.run(lambda: False)
        _TRAFFIC.update(link.sent)
    return _TRAFFIC


mutation = st.tuples(
    st.sampled_from(["flip", "truncate", "splice", "duplicate", "none"]),
    st.integers(0, 3000),
    st.binary(min_size=1, max_size=8),
)


def mutate(datagram: bytes, how: tuple[str, int, bytes]) -> bytes:
    kind, position, noise = how
    if not datagram or kind == "none":
        return datagram
    position %= len(datagram)
    if kind == "flip":
        return (
            datagram[:position] + bytes([datagram[position] ^ noise[0]]) + datagram[position + 1 :]
        )
    if kind == "truncate":
        return datagram[:position]
    if kind == "splice":
        return datagram[:position] + noise + datagram[position + len(noise) :]
    return datagram + datagram[position:]


def feed(
    target: DtlsConnection, datagrams: list[bytes], mutations: list[tuple[str, int, bytes]]
) -> None:
    now = 0.0
    for i, datagram in enumerate(datagrams):
        target.receive_datagram(mutate(datagram, mutations[i % len(mutations)]), now)
        target.datagrams_to_send(now)
        while target.next_event() is not None:
            pass
        now += 0.4
        target.handle_timer(now)


@settings(max_examples=400, deadline=None)
@given(st.lists(mutation, min_size=1, max_size=12), st.booleans())
def test_mutated_handshake_traffic_never_raises(
    mutations: list[tuple[str, int, bytes]], to_client: bool
) -> None:
    client, server = fresh_pair()
    if to_client:
        client.start(0.0)
        feed(client, traffic()[False], mutations)
    else:
        feed(server, traffic()[True], mutations)


def test_many_tiny_fragments_are_capped() -> None:
    from trio_rtc.dtls.handshake import HandshakeFragment
    from trio_rtc.dtls.records import DtlsError

    reassembler = Reassembler()
    refused = 0
    for offset in range(0, 4000, 2):  # every other byte: all disjoint
        try:
            reassembler.add_untrusted(HandshakeFragment(11, 60000, 0, offset, b"x"), 0)
        except DtlsError:
            refused += 1
    assert refused > 0 and all(len(p.ranges) <= 256 for p in reassembler._partial.values())


def test_unmutated_traffic_goes_deep() -> None:
    """Replayed to fresh endpoints, the recording gets as far as the checks bound to the other
    side's fresh ECDHE key: the client to the server's Finished, the server to CertificateVerify."""
    client, server = fresh_pair()
    client.start(0.0)
    feed(client, traffic()[False], [("none", 0, b"\x00")])
    feed(server, traffic()[True], [("none", 0, b"\x00")])
    # The server's epoch-1 Finished does not authenticate under the client's keys: dropped.
    assert client._flow.step == "wait_finished" and client.stats.auth_failed_dropped > 0
    # The recorded CertificateVerify signs another transcript: decrypt_error.
    assert server.state == "failed" and server._flow.step == "wait_certificate_verify"
