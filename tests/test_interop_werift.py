"""trio_rtc's RTCPeerConnection against werift (npm 0.24, TypeScript: its own ICE, DTLS and SCTP; loopback only with
``iceAdditionalHostAddresses``), on 127.0.0.1.

The peer is a Node script started by the test (``peers/node/harness.py``, docs/interop.md);
the checks are shared with the other Node stack (``peers/node/checks.py``). Both offerer
roles, trickled and complete descriptions; channels opened by each side; text and binary
messages from 1 byte to 70,000 (fragmented) echoed; one 256 KiB message echoed and compared by
SHA-256 (werift advertises 64 KiB by default; the peer script raises it to 256 KiB, trio_rtc's own limit; a 1 MiB message is over it, so 1 MiB crosses as 16 KiB messages each
way, checked by SHA-256 on both ends); a pre-negotiated channel; close from each side; both
sides sending INIT at once. Setup times are printed (``pytest -s``).
"""

from __future__ import annotations

import pytest
from peers.node.checks import channels_both_ways, init_collision, negotiated_channel
from peers.node.harness import Stack

from trio_rtc.sctp.association import AssociationState

pytestmark = pytest.mark.interop

STACK: Stack = "werift"


@pytest.mark.parametrize("trio_offers", [True, False], ids=["trio-offers", "werift-offers"])
@pytest.mark.parametrize("trickle", [True, False], ids=["trickle", "complete"])
async def test_channels_both_ways_and_transfer(trio_offers: bool, trickle: bool) -> None:
    await channels_both_ways(STACK, trio_offers=trio_offers, trickle=trickle, large_message=262144)


@pytest.mark.parametrize("trio_offers", [True, False], ids=["trio-offers", "werift-offers"])
async def test_negotiated_channel(trio_offers: bool) -> None:
    await negotiated_channel(STACK, trio_offers=trio_offers)


@pytest.mark.parametrize("trio_offers", [True, False], ids=["trio-offers", "werift-offers"])
async def test_init_collision(trio_offers: bool) -> None:
    """werift sends INIT only as the offerer (it answers the other side's INIT otherwise), so
    when it offers, its INIT and trio_rtc's cross (RFC 9260 §5.2.1); when trio_rtc offers,
    only trio_rtc's INIT is sent. One association results either way."""
    seen = await init_collision(STACK, trio_offers=trio_offers)
    if trio_offers:
        assert seen == [], seen
    else:
        assert AssociationState.COOKIE_WAIT in seen, seen
