"""Drive an aioice ICE agent (``aioice_peer.py``, a subprocess) from trio tests.

The harness is independent of trio_rtc: credentials and candidates go in and out as RFC 8839
``candidate:…`` strings, so any ICE agent under test can be connected to aioice::

    async with AioicePeer(role="controlled") as peer:
        theirs = await peer.local_description()
        ...  # give theirs.ufrag / theirs.pwd / theirs.candidates to the agent under test
        await peer.set_remote(ufrag, pwd, candidates)
        await peer.wait_connected()
        ...  # every datagram the agent sends is echoed back unchanged
        stats = await peer.received()

Leaving the block (normally, by an error or by cancellation) stops the subprocess, reaps it and
closes its pipes. When the block fails, the peer's stderr (aioice's log) is attached to the
exception as a note, so pytest prints it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import trio
import trio.lowlevel

PEER_SCRIPT = Path(__file__).with_name("aioice_peer.py")
# Keep the tail of the peer's stderr for failure notes; aioice logs a few lines per check.
STDERR_KEEP = 256 * 1024
MAX_LINE = 1 << 20
DEFAULT_TIMEOUT = 10.0


class AioicePeerError(Exception):
    """The aioice subprocess failed, exited early, or did not answer in time."""


@dataclass(frozen=True)
class IceDescription:
    """What an ICE agent tells its peer: RFC 8839 ufrag, pwd and ``candidate:…`` lines."""

    ufrag: str
    pwd: str
    candidates: list[str]
    ice_lite: bool = False


@dataclass(frozen=True)
class SelectedPair:
    local: str
    remote: str


@dataclass(frozen=True)
class ReceivedStats:
    count: int
    total_bytes: int
    recent: list[bytes]


class AioicePeer:
    """One aioice ``Connection`` in a subprocess; an async context manager.

    ``echo=True`` (default) sends every received datagram back unchanged; turn it off on one side
    when two echoing peers would otherwise bounce a datagram forever.
    """

    def __init__(
        self,
        *,
        role: Literal["controlling", "controlled"],
        family: Literal["ipv4", "ipv6"] = "ipv4",
        echo: bool = True,
        stun_server: tuple[str, int] | None = None,
        turn_server: tuple[str, int] | None = None,
        turn_username: str | None = None,
        turn_password: str | None = None,
        transport_policy: Literal["all", "relay"] = "all",
        ufrag: str | None = None,
        pwd: str | None = None,
        debug: bool = False,
        python: str = sys.executable,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.role = role
        # Every wait below gives up after this long with AioicePeerError (and the peer's log), so
        # a broken interop test fails instead of hanging CI; wrap calls in trio.fail_after for
        # tighter bounds.
        self.timeout = timeout
        self.config: dict[str, Any] = {
            "role": role,
            "family": family,
            "components": 1,
            "echo": echo,
            "stun_server": list(stun_server) if stun_server else None,
            "turn_server": list(turn_server) if turn_server else None,
            "turn_username": turn_username,
            "turn_password": turn_password,
            "transport_policy": transport_policy,
            "ufrag": ufrag,
            "pwd": pwd,
            "debug": debug,
        }
        self.python = python
        self.messages: list[dict[str, Any]] = []
        self.returncode: int | None = None
        self._process: trio.Process | None = None
        self._changed = trio.Event()
        self._stdout_done = False
        self._stderr = bytearray()
        self._cm: AbstractAsyncContextManager[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> AioicePeer:
        self._cm = self._run()
        await self._cm.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._cm is not None
        try:
            return await self._cm.__aexit__(exc_type, exc, tb)
        finally:
            # After the process is gone, so the note holds aioice's complete log.
            if isinstance(exc, Exception):
                exc.add_note(self.debug_text())

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[None]:
        command = [self.python, "-u", str(PEER_SCRIPT), json.dumps(self.config)]
        process = await trio.lowlevel.open_process(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._process = process
        body_error: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_stdout, process)
                nursery.start_soon(self._read_stderr, process)
                graceful = False
                try:
                    yield
                    graceful = True
                except BaseException as exc:
                    body_error = exc
                    raise
                finally:
                    with trio.CancelScope(shield=True):
                        await self._stop(process, graceful)
                        # The readers end at EOF once the process is gone; do not wait on a
                        # grandchild that might hold the pipes.
                        with trio.move_on_after(1):
                            while not self._stdout_done:
                                await self._wait_changed()
                        nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The nursery wraps what the caller's block raised; give the caller its own
            # exception back, so `pytest.raises` and `except` around the block work as written.
            if body_error is not None and list(group.exceptions) == [body_error]:
                raise body_error from None
            raise
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    process.kill()
                await process.wait()
                # Close our ends of the pipes, so no fd outlives the peer.
                for stream in (process.stdin, process.stdout, process.stderr):
                    if stream is not None:
                        await stream.aclose()
                self.returncode = process.returncode

    async def _stop(self, process: trio.Process, graceful: bool) -> None:
        if graceful and process.returncode is None:
            with trio.move_on_after(3):
                try:
                    await self._send({"type": "close"})
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                await process.wait()
        if process.returncode is None:
            process.kill()
        await process.wait()
        self.returncode = process.returncode

    async def close(self) -> None:
        """Close aioice cleanly and check that it said ``closed`` and exited with status 0."""
        process = self._require_process()
        await self._send({"type": "close"})
        await self.wait_message(lambda m: m["type"] == "closed")
        with trio.move_on_after(self.timeout):
            await process.wait()
        self.returncode = process.returncode
        if process.returncode != 0:
            raise AioicePeerError(f"aioice peer exited with status {process.returncode}")

    # -- I/O -------------------------------------------------------------------------------------

    async def _read_stdout(self, process: trio.Process) -> None:
        assert process.stdout is not None
        buffer = bytearray()
        try:
            while True:
                chunk = await process.stdout.receive_some(65536)
                if not chunk:
                    break
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0:
                    line = bytes(buffer[:end])
                    del buffer[: end + 1]
                    if line.strip():
                        self._record(line)
                if len(buffer) > MAX_LINE:
                    raise AioicePeerError("aioice peer wrote an overlong line")
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass
        finally:
            self._stdout_done = True
            self._notify()

    def _record(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            # A stray print in the peer: keep it for debugging, it is not protocol.
            message = {"type": "stdout", "text": line.decode("utf-8", "replace")}
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            message = {"type": "stdout", "text": line.decode("utf-8", "replace")}
        self.messages.append(message)
        self._notify()

    async def _read_stderr(self, process: trio.Process) -> None:
        assert process.stderr is not None
        try:
            while chunk := await process.stderr.receive_some(65536):
                self._stderr += chunk
                if len(self._stderr) > STDERR_KEEP:
                    del self._stderr[: len(self._stderr) - STDERR_KEEP]
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_changed(self) -> None:
        await self._changed.wait()

    def _require_process(self) -> trio.Process:
        if self._process is None:
            raise AioicePeerError("use AioicePeer as `async with AioicePeer(...) as peer:`")
        return self._process

    async def _send(self, message: dict[str, Any]) -> None:
        process = self._require_process()
        assert process.stdin is not None
        await process.stdin.send_all(json.dumps(message).encode() + b"\n")

    async def wait_message(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Wait for the first message (already received or future) that matches ``predicate``.

        Raises AioicePeerError if the peer exits without sending one, or after ``self.timeout``.
        """
        seen = 0
        with trio.move_on_after(self.timeout):
            while True:
                for message in self.messages[seen:]:
                    if predicate(message):
                        return message
                seen = len(self.messages)
                if self._stdout_done:
                    raise AioicePeerError(
                        "aioice peer exited (status "
                        f"{self._process.returncode if self._process else None}) "
                        "without the expected message"
                    )
                await self._wait_changed()
        raise AioicePeerError(f"aioice peer did not send the expected message in {self.timeout} s")

    def stderr_text(self) -> str:
        """aioice's log so far (the last STDERR_KEEP bytes)."""
        return self._stderr.decode("utf-8", "replace")

    def debug_text(self) -> str:
        lines = [f"aioice peer ({self.role}) config: {json.dumps(self.config)}"]
        lines += [f"  < {json.dumps(m)}" for m in self.messages]
        lines.append(f"aioice peer stderr:\n{self.stderr_text()}")
        return "\n".join(lines)

    # -- ICE -------------------------------------------------------------------------------------

    async def local_description(self) -> IceDescription:
        """aioice's credentials and gathered candidates (waits for gathering to finish)."""
        message = await self.wait_message(lambda m: m["type"] == "local")
        return IceDescription(
            ufrag=str(message["ufrag"]),
            pwd=str(message["pwd"]),
            candidates=[str(c) for c in message["candidates"]],
            ice_lite=bool(message.get("ice_lite", False)),
        )

    async def set_remote(
        self,
        ufrag: str,
        pwd: str,
        candidates: Sequence[str],
        *,
        ice_lite: bool = False,
        end_of_candidates: bool = True,
    ) -> None:
        """Give aioice the remote credentials and candidates; it starts connecting at once.

        Pass ``end_of_candidates=False`` to trickle more with ``add_candidate`` and finish with
        ``end_of_candidates()``; aioice reports failure only after end-of-candidates.
        """
        await self._send(
            {
                "type": "remote",
                "ufrag": ufrag,
                "pwd": pwd,
                "candidates": list(candidates),
                "ice_lite": ice_lite,
                "end_of_candidates": end_of_candidates,
            }
        )

    async def add_candidate(self, candidate: str) -> None:
        await self._send({"type": "candidate", "candidate": candidate})

    async def end_of_candidates(self) -> None:
        await self._send({"type": "end-of-candidates"})

    async def wait_connected(self) -> SelectedPair:
        """Wait until aioice nominated a pair; raise AioicePeerError if ICE failed."""
        message = await self.wait_message(lambda m: m["type"] in ("connected", "failed"))
        if message["type"] == "failed":
            raise AioicePeerError(f"aioice ICE failed: {message.get('error')}")
        selected = message.get("selected") or {}
        return SelectedPair(local=str(selected.get("local")), remote=str(selected.get("remote")))

    async def send(self, data: bytes) -> None:
        """Ask aioice to send one datagram to the remote peer over the selected pair."""
        await self._send({"type": "send", "data": data.hex()})

    async def received(self) -> ReceivedStats:
        """How many datagrams aioice received since connecting (and the latest payloads)."""
        before = len(self.messages)
        await self._send({"type": "stats"})
        # Answers arrive in order, so the first ``received`` after ``before`` answers this request.
        index = before
        with trio.move_on_after(self.timeout):
            while True:
                while index < len(self.messages):
                    message = self.messages[index]
                    index += 1
                    if message["type"] == "received":
                        return ReceivedStats(
                            count=int(message["count"]),
                            total_bytes=int(message["bytes"]),
                            recent=[bytes.fromhex(p) for p in message["recent"]],
                        )
                if self._stdout_done:
                    raise AioicePeerError("aioice peer exited before answering stats")
                await self._wait_changed()
        raise AioicePeerError(f"aioice peer did not answer stats in {self.timeout} s")

    async def wait_received(self, count: int, *, poll: float = 0.02) -> ReceivedStats:
        """Poll ``received`` until aioice has received at least ``count`` datagrams."""
        stats = ReceivedStats(0, 0, [])
        with trio.move_on_after(self.timeout):
            while True:
                stats = await self.received()
                if stats.count >= count:
                    return stats
                await trio.sleep(poll)
        raise AioicePeerError(
            f"aioice peer received {stats.count} datagrams, expected {count}, in {self.timeout} s"
        )

    def ignored(self) -> list[dict[str, Any]]:
        """Remote candidates the peer refused (not loopback, unparsable), with the reason."""
        return [m for m in self.messages if m["type"] == "ignored"]
