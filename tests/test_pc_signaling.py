"""The trio-websocket signalling helpers: two peer connections negotiate through the relay server
with perfect negotiation (including an offer collision), and the chat example runs as two
processes."""

from __future__ import annotations

import subprocess
import sys
from functools import partial
from pathlib import Path

import trio
from pc_helpers import make_pc

from trio_rtc import RTCDataChannel
from trio_rtc.signaling import SignalingServer, negotiate_over, open_signaling, serve_signaling

CHAT = Path(__file__).parent.parent / "examples" / "chat.py"


async def test_perfect_negotiation_through_the_server_with_collision() -> None:
    async with trio.open_nursery() as nursery:
        server: SignalingServer = await nursery.start(serve_signaling)
        async with (
            open_signaling(server.url("r1")) as channel_a,
            open_signaling(server.url("r1")) as channel_b,
            make_pc(0) as a,
            make_pc(1) as b,
        ):
            states: dict[str, list[str]] = {"a": [], "b": []}
            a.onsignalingstatechange = lambda e: states["a"].append(a.signalingState)
            b.onsignalingstatechange = lambda e: states["b"].append(b.signalingState)
            await nursery.start(partial(negotiate_over, a, channel_a, polite=False))
            await nursery.start(partial(negotiate_over, b, channel_b, polite=True))
            # Both create the same negotiated channel: both fire negotiationneeded and offer.
            chat_a = a.createDataChannel("chat", negotiated=True, id=0)
            chat_b = b.createDataChannel("chat", negotiated=True, id=0)
            extra: list[RTCDataChannel] = []
            b.ondatachannel = lambda event: extra.append(event.channel)
            with trio.fail_after(10):
                await chat_a.wait_open()
                await chat_b.wait_open()
                await chat_a.send_message("hi from a")
                assert await chat_b.receive() == "hi from a"
                await chat_b.send_message("hi from b")
                assert await chat_a.receive() == "hi from b"
                # A channel created later opens in band, without a new negotiation.
                a.createDataChannel("later")
                await b.wait_until(lambda: bool(extra))
            assert extra[0].label == "later"
            assert a.signalingState == "stable" and b.signalingState == "stable"
            # The collision happened and was resolved: both offered, the polite b rolled back
            # (implicitly, in setRemoteDescription) and answered; a ignored b's offer.
            assert states["a"] == ["have-local-offer", "stable"]
            assert states["b"] == ["have-local-offer", "stable", "have-remote-offer", "stable"]
        nursery.cancel_scope.cancel()


async def test_chat_example_between_two_processes() -> None:
    async with trio.open_nursery() as nursery:
        server: SignalingServer = await nursery.start(serve_signaling)
        url = server.url("chat")
        outputs: dict[str, str] = {}

        async def run(name: str, *extra: str) -> None:
            command = [sys.executable, str(CHAT), "join", url, "--name", name]
            command += ["--interface", "127.0.0.1", "--send", f"hello from {name}", "--expect", "1"]
            result = await trio.run_process(
                [*command, *extra],
                capture_stdout=True,
                stderr=subprocess.STDOUT,
            )
            outputs[name] = result.stdout.decode()

        with trio.fail_after(30):
            async with trio.open_nursery() as peers:
                peers.start_soon(run, "alice")
                peers.start_soon(run, "bob", "--polite")
        nursery.cancel_scope.cancel()
    assert "bob: hello from bob" in outputs["alice"], outputs
    assert "alice: hello from alice" in outputs["bob"], outputs
    assert "[alice] connected in" in outputs["alice"]
