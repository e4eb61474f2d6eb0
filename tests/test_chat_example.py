"""The chat example (``examples/chat.py``) as a user runs it: processes joining one relay room.

Peers decide their perfect-negotiation roles themselves, so they connect whoever starts first;
what goes wrong (no relay, a peer that never connects, two peers forced into one role) is one
line on stderr and an exit status, never a traceback or a silent hang.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio.lowlevel
from test_example_browser_echo import Output

from trio_rtc.signaling import SignalingServer, open_signaling, serve_signaling

CHAT = Path(__file__).resolve().parent.parent / "examples" / "chat.py"
TIMEOUT = 30.0


def chat_command(url: str, name: str, *extra: str) -> list[str]:
    return [sys.executable, "-u", str(CHAT), "join", url, "--name", name, *extra]


async def run_chat(url: str, name: str, *extra: str) -> subprocess.CompletedProcess[bytes]:
    command = chat_command(url, name, "--interface", "127.0.0.1", *extra)
    return await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)


def scripted(name: str) -> list[str]:
    return ["--send", f"hello from {name}", "--expect", "1"]


@pytest.mark.parametrize("order", ["one-then-other", "together"])
async def test_two_peers_connect_whoever_starts_first(order: str) -> None:
    outputs: dict[str, str] = {}
    pipes: list[trio.abc.ReceiveStream] = []
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server: SignalingServer = await nursery.start(serve_signaling)
            url = server.url("chat")

            async def run(name: str) -> None:
                done = await run_chat(url, name, *scripted(name))
                outputs[name] = done.stdout.decode()
                assert done.returncode == 0, (name, done.stdout, done.stderr)

            async with trio.open_nursery() as peers:
                if order == "together":
                    peers.start_soon(run, "alice")
                    peers.start_soon(run, "bob")
                else:
                    # Alice is alone in the room and says so; then Bob joins.
                    process = await trio.lowlevel.open_process(
                        chat_command(url, "alice", "--interface", "127.0.0.1", *scripted("alice")),
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                    )
                    assert process.stdout is not None and process.stderr is not None
                    pipes += [process.stdout, process.stderr]
                    alice, alice_errors = Output(), Output()
                    peers.start_soon(alice.read, process.stdout)
                    peers.start_soon(alice_errors.read, process.stderr)
                    try:
                        await alice.wait_line(lambda line: "waiting for another peer" in line)
                        await run("bob")
                        assert await process.wait() == 0, alice_errors.lines
                    finally:
                        with trio.CancelScope(shield=True):
                            if process.returncode is None:
                                process.kill()
                            await process.wait()
                    outputs["alice"] = "\n".join(alice.lines)
            # The readers saw the end of their pipes before the nursery above let them finish.
            for pipe in pipes:
                await pipe.aclose()
            nursery.cancel_scope.cancel()
    assert "bob: hello from bob" in outputs["alice"], outputs
    assert "alice: hello from alice" in outputs["bob"], outputs
    for name in ("alice", "bob"):
        assert f"[{name}] connected in" in outputs[name], outputs
    roles = {name: "the polite one" in outputs[name] for name in outputs}
    assert sorted(roles.values()) == [False, True], outputs


async def test_a_peer_that_left_before_anyone_came_does_not_confuse_the_next_ones() -> None:
    """The relay forgets what a peer sent while alone once it leaves, so a stale greeting (or
    offer) is never taken for a live peer."""
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server: SignalingServer = await nursery.start(serve_signaling)
            url = server.url("chat")
            async with open_signaling(url) as ghost:
                await ghost.send({"hello": "ffffffffffffffff", "polite": None})
                await ghost.send({"description": {"type": "offer", "sdp": "v=0"}})
            await trio.sleep(0.05)
            assert server.rooms == {}
            async with trio.open_nursery() as peers:
                results: dict[str, subprocess.CompletedProcess[bytes]] = {}

                async def run(name: str) -> None:
                    results[name] = await run_chat(url, name, *scripted(name))

                peers.start_soon(run, "alice")
                peers.start_soon(run, "bob")
            nursery.cancel_scope.cancel()
    for name, other in (("alice", "bob"), ("bob", "alice")):
        assert results[name].returncode == 0, results[name]
        assert f"{other}: hello from {other}" in results[name].stdout.decode()


async def test_no_relay_is_one_line_and_status_2() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        done = await run_chat(f"ws://127.0.0.1:{port}/room", "alice")
    errors = done.stderr.decode()
    assert done.returncode == 2, errors
    assert errors.count("\n") == 1, errors
    assert "Traceback" not in errors
    assert errors.startswith(f"chat: cannot reach the signalling relay at ws://127.0.0.1:{port}/")
    assert "Connection refused" in errors


async def test_both_forced_polite_is_a_clear_message() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server: SignalingServer = await nursery.start(serve_signaling)
            url = server.url("chat")
            results: dict[str, subprocess.CompletedProcess[bytes]] = {}

            async def run(name: str) -> None:
                results[name] = await run_chat(url, name, "--polite")

            async with trio.open_nursery() as peers:
                peers.start_soon(run, "alice")
                peers.start_soon(run, "bob")
            nursery.cancel_scope.cancel()
    for name, done in results.items():
        assert done.returncode == 1, done
        errors = done.stderr.decode()
        assert errors == f"[{name}] both peers were started with --polite; restart one without it\n"


async def test_a_peer_that_never_connects_is_reported_within_the_timeout() -> None:
    """A peer answers the greeting through the relay but never negotiates: the chat says so
    after ``--connect-timeout`` instead of hanging."""
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server: SignalingServer = await nursery.start(serve_signaling)
            url = server.url("chat")
            async with open_signaling(url) as mute:
                await mute.send({"hello": "0000000000000000", "polite": None})
                start = trio.current_time()
                done = await run_chat(url, "alice", "--connect-timeout", "1")
                elapsed = trio.current_time() - start
            nursery.cancel_scope.cancel()
    errors = done.stderr.decode()
    assert done.returncode == 1, errors
    assert "Traceback" not in errors
    assert errors.startswith("[alice] the peer answered through the relay, but no connection")
    assert "within 1 s" in errors
    assert elapsed < 10
