"""What trio_rtc's connection must go through when its peer vanishes, with the real clock:
consent freshness (RFC 7675), shared by test_vanished_peer.py (Node and Python stacks) and
test_vanished_browsers.py (Chromium and Firefox).

:func:`check_vanish` takes a connected RTCPeerConnection and two callables that make the peer
vanish and come back (SIGSTOP/SIGCONT of its processes, or an nft rule dropping its UDP), and
checks the RFC's windows: ``disconnected`` 5 s and ``failed`` 30 s after the last consent
response; a peer that comes back before ``failed`` brings the connection back to ``connected``
and messages flow again. It writes what it measured into ``results`` (the tests print them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from pc_interop_helpers import TrioPeer

from trio_rtc import RTCPeerConnection

#: RFC 7675 as trio_rtc applies it: disconnected 5 s and failed 30 s after the last consent
#: response; the last one came at most one consent interval (<= 1.2 s) before the stop.
DISCONNECTED_WINDOW = (3.5, 6.5)
FAILED_WINDOW = (28.5, 32.5)
#: Measured from the last consent response instead: exactly what RFC 7675 and webrtc-pc ask.
#: (The low ends allow for floating-point rounding.)
SINCE_RESPONSE_DISCONNECTED = (4.99, 6.0)
SINCE_RESPONSE_FAILED = (29.99, 32.0)
#: When the returning peer comes back, seconds after it vanished: disconnected, far from failed.
COME_BACK_AFTER = 10.0
#: The label of the channel :func:`check_vanish` sends on (the remote end echoes).
CHANNEL = "chat"

Action = Callable[[], Awaitable[None]]


async def wait_connection_state(pc: RTCPeerConnection, state: str, seconds: float) -> None:
    with trio.move_on_after(seconds):
        await pc.wait_until(lambda: pc.connectionState == state)
    assert pc.connectionState == state, (
        f"connectionState {pc.connectionState} (ICE {pc.iceConnectionState}) after {seconds} s, "
        f"waited for {state}; {pc.ice_transport.agent.stats if pc.ice_transport else None}"
    )


def ice_state(pc: RTCPeerConnection) -> str:
    return str(pc.iceConnectionState)


def last_consent_response(pc: RTCPeerConnection) -> float:
    """When the pair consent freshness watches last got an answer (trio's clock)."""
    ice = pc.ice_transport
    assert ice is not None
    pair = ice.agent.data_pair or ice.agent.selected_pair
    assert pair is not None and pair.last_response_received is not None
    return float(pair.last_response_received)


async def echo_once(ours: TrioPeer, text: str) -> None:
    """``text`` to the peer, which echoes it: one message each way."""
    await ours.send(CHANNEL, text)
    assert await ours.receive(CHANNEL) == text


async def wait_consent_settled(pc: RTCPeerConnection) -> None:
    """Until a pair is nominated and a consent response came after the nomination.

    Data flows before nomination (RFC 8445 §12), so a peer may nominate just before it
    vanishes; trio_rtc, controlled, restarts its consent clock at a nomination that arrives as
    the peer's request, which would put ``disconnected`` up to one consent interval past 5 s
    after the last response. The windows are about a settled connection; a peer that vanishes
    before it nominated is test_vanished_peer.py's ICE-core test."""
    ice = pc.ice_transport
    assert ice is not None
    agent = ice.agent
    while agent.selected_pair is None:  # noqa: ASYNC110 - no event says it
        await trio.sleep(0.02)
    answered = agent.stats.consent_responses_received
    while agent.stats.consent_responses_received == answered:  # noqa: ASYNC110
        await trio.sleep(0.02)


async def check_vanish(
    pc: RTCPeerConnection,
    ours: TrioPeer,
    *,
    name: str,
    vanish: Action,
    come_back: Action | None,
    results: dict[str, str],
) -> None:
    """Make the peer of ``pc`` vanish (``vanish``), and with ``come_back`` bring it back
    :data:`COME_BACK_AFTER` seconds later; check trio_rtc's states in the RFC 7675 windows and,
    after the return, ``connected`` again with a message each way on :data:`CHANNEL` (echoed by
    the peer). ``results[name]`` says what was measured, written before the window checks so a
    failure message shows it."""
    with trio.fail_after(10):
        await wait_consent_settled(pc)
    await vanish()
    # From when the peer is gone (a signal sent, or a drop rule in place).
    stopped = trio.current_time()
    await wait_connection_state(pc, "disconnected", DISCONNECTED_WINDOW[1] + 1)
    disconnected = trio.current_time() - stopped
    last_response = last_consent_response(pc)
    since_response = trio.current_time() - last_response
    assert ice_state(pc) == "disconnected"
    if come_back is not None:
        await trio.sleep_until(stopped + COME_BACK_AFTER)
        await come_back()
        back = trio.current_time()
        await wait_connection_state(pc, "connected", 10)
        recovered = trio.current_time() - back
        with trio.fail_after(10):
            await echo_once(ours, "after")
        results[name] = (
            f"disconnected after {disconnected:.2f} s ({since_response:.2f} s after the "
            f"last consent response); back at {COME_BACK_AFTER:.0f} s, "
            f"connected again {recovered * 1000:.0f} ms later, messages flow"
        )
    else:
        await wait_connection_state(pc, "failed", FAILED_WINDOW[1] + 1)
        failed = trio.current_time() - stopped
        failed_since_response = trio.current_time() - last_response
        assert ice_state(pc) == "failed"
        results[name] = (
            f"disconnected after {disconnected:.2f} s, failed after {failed:.2f} s "
            f"({since_response:.2f} s and {failed_since_response:.2f} s after the last "
            "consent response)"
        )
        assert FAILED_WINDOW[0] <= failed <= FAILED_WINDOW[1], results[name]
        low, high = SINCE_RESPONSE_FAILED
        assert low <= failed_since_response <= high, results[name]
    assert DISCONNECTED_WINDOW[0] <= disconnected <= DISCONNECTED_WINDOW[1], results[name]
    low, high = SINCE_RESPONSE_DISCONNECTED
    assert low <= since_response <= high, results[name]
