"""``send FILE`` and ``receive``: one file over the session's data channel, checked by SHA-256,
resumable.

The receiver keeps what arrived in ``NAME.part`` and renames it once the whole file arrived and
its SHA-256 matched. On every (re)connection it tells the sender how much it has and the SHA-256
of that prefix; the sender hashes the same prefix of its file and continues from there if they
agree, or starts over if they do not (a different file of the same name).

Messages on the channel (control as JSON text, content as binary)::

    sender   -> {"type": "file", "name": NAME, "size": BYTES}
    receiver -> {"type": "resume", "offset": BYTES, "sha256": HEX}  |  {"type": "refuse", "reason": TEXT}
    sender   -> {"type": "data", "offset": BYTES}, binary messages up to the end of the file,
                {"type": "end", "sha256": HEX of the whole file}
    receiver -> {"type": "done", "ok": BOOL, "sha256": HEX}

Disk and hash work runs in worker threads, a block (1 MiB) at a time, while the channel moves the
next ones: reading, hashing and the network overlap on two cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, TYPE_CHECKING, Any

import trio

from ..datachannel import RTCDataChannel
from ..pc import RTCPeerConnection
from .progress import ProgressBar, format_bytes
from .session import CommandError, printable, say

if TYPE_CHECKING:
    from hashlib import _Hash

__all__ = ["FileReceiver", "FileSender"]

#: Bytes read from or written to disk per worker-thread call.
BLOCK_SIZE = 1 << 20
#: Bytes per data channel message (every browser takes messages of this size).
MESSAGE_SIZE = 64 * 1024
#: Blocks queued between the disk and the channel, each way.
BLOCKS_IN_FLIGHT = 8
#: The longest control message accepted from the peer.
MAX_CONTROL = 4096


async def _control(channel: RTCDataChannel, *expected: str) -> dict[str, Any]:
    """The next message, which must be a JSON control message of one of the ``expected`` types."""
    message = await channel.receive()
    if not isinstance(message, str) or len(message) > MAX_CONTROL:
        raise CommandError("the peer sent data where a control message was expected")
    try:
        decoded = json.loads(message)
    except ValueError:
        raise CommandError("the peer sent a control message that is not JSON") from None
    if not isinstance(decoded, dict) or decoded.get("type") not in expected:
        raise CommandError(f"the peer sent {message[:80]!r}; expected one of {expected}")
    return decoded


def _hash_prefix(file: IO[bytes], length: int, hasher: _Hash) -> None:
    """Feed the first ``length`` bytes of ``file`` to ``hasher`` (in a worker thread)."""
    file.seek(0)
    left = length
    while left > 0:
        block = file.read(min(BLOCK_SIZE, left))
        if not block:
            raise CommandError("the file is shorter than the part to resume from")
        hasher.update(block)
        left -= len(block)


def _int_field(message: dict[str, Any], name: str) -> int:
    value = message.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CommandError(f"the peer sent a bad {name!r}: {value!r}")
    return value


def _summary(verb: str, count: int, seconds: float, digest: str) -> str:
    rate = count / seconds if seconds > 0 else 0.0
    return (
        f"{verb} {format_bytes(count)} in {seconds:.2f} s ({rate / (1 << 20):.1f} MiB/s); "
        f"sha256 {digest}"
    )


class FileSender:
    """The ``send`` side; one instance serves every (re)connection of the command."""

    def __init__(self, path: Path, *, progress: bool = True) -> None:
        self.path = path
        self.progress = progress
        self.size = path.stat().st_size

    async def __call__(self, pc: RTCPeerConnection, channel: RTCDataChannel) -> None:
        header = {"type": "file", "name": self.path.name, "size": self.size}
        await channel.send_message(json.dumps(header))
        reply = await _control(channel, "resume", "refuse")
        if reply["type"] == "refuse":
            reason = printable(reply.get("reason"))
            raise CommandError(f"the receiver refused the file: {reason}")
        offset = _int_field(reply, "offset")
        async with await trio.open_file(self.path, "rb") as file:
            hasher = hashlib.sha256()
            start = 0
            if 0 < offset <= self.size:
                await trio.to_thread.run_sync(_hash_prefix, file.wrapped, offset, hasher)
                if hasher.hexdigest() == reply.get("sha256"):
                    start = offset
                    say(f"resuming at {format_bytes(start)}")
                else:
                    say("the receiver's partial file differs from this file: starting over")
                    hasher = hashlib.sha256()
            await channel.send_message(json.dumps({"type": "data", "offset": start}))
            began = time.monotonic()
            await self._stream(channel, file.wrapped, start, hasher)
        digest = hasher.hexdigest()
        await channel.send_message(json.dumps({"type": "end", "sha256": digest}))
        done = await _control(channel, "done")
        seconds = time.monotonic() - began
        if not done.get("ok"):
            got = printable(done.get("sha256"))
            raise CommandError(f"the receiver's sha256 {got} is not {digest}")
        say(_summary("sent", self.size - start, seconds, digest) + " (verified by the receiver)")

    async def _stream(
        self, channel: RTCDataChannel, file: IO[bytes], start: int, hasher: _Hash
    ) -> None:
        size = self.size

        def read_block(position: int) -> bytes:
            block = file.read(min(BLOCK_SIZE, size - position))
            hasher.update(block)
            return block

        blocks_send, blocks_receive = trio.open_memory_channel[bytes](BLOCKS_IN_FLIGHT)

        async def read_all() -> None:
            async with blocks_send:
                file.seek(start)
                position = start
                while position < size:
                    block = await trio.to_thread.run_sync(read_block, position)
                    if not block:
                        raise CommandError(f"{self.path} shrank while it was being sent")
                    position += len(block)
                    await blocks_send.send(block)

        bar = ProgressBar(size, start=start, label="send") if self.progress else None
        sent = start
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_all)
            async with blocks_receive:
                async for block in blocks_receive:
                    for at in range(0, len(block), MESSAGE_SIZE):
                        await channel.send_message(block[at : at + MESSAGE_SIZE])
                    sent += len(block)
                    if bar is not None:
                        bar.update(sent - channel.bufferedAmount)
        if bar is not None:
            bar.update(sent)
            bar.finish()


def _safe_name(name: object) -> str:
    """The last path component of a name the peer proposed, or CommandError."""
    if not isinstance(name, str):
        raise CommandError("the sender gave no file name")
    base = PureWindowsPath(PurePosixPath(name).name).name
    if base in ("", ".", "..") or not base.isprintable():
        raise CommandError(f"the sender's file name {printable(name)!r} is not usable")
    return base


class FileReceiver:
    """The ``receive`` side; one instance serves every (re)connection of the command.

    ``output``: a directory to put the file in (under the sender's name) or the file's path."""

    def __init__(self, output: Path, *, force: bool = False, progress: bool = True) -> None:
        self.output = output
        self.force = force
        self.progress = progress
        self.received: Path | None = None
        #: (part file, its size, the hash of it) kept from a connection lost in this process,
        #: so that resuming does not read the part again.
        self._kept: tuple[Path, int, _Hash] | None = None
        #: How far the part file is hashed (its writer thread advances it with every block).
        self._hashed_to = 0

    def target_for(self, name: str) -> Path:
        return self.output / name if self.output.is_dir() else self.output

    async def __call__(self, pc: RTCPeerConnection, channel: RTCDataChannel) -> None:
        header = await _control(channel, "file")
        name = _safe_name(header.get("name"))
        size = _int_field(header, "size")
        target = self.target_for(name)
        part = target.with_name(target.name + ".part")
        if target.exists() and not self.force:
            reason = f"{target.name} exists on the receiving side"
            await channel.send_message(json.dumps({"type": "refuse", "reason": reason}))
            raise CommandError(f"{target} exists (--force replaces it)")
        say(f"receiving {name} ({format_bytes(size)}) into {target}")
        offset, hasher = await self._resume_point(part, size)
        resume = {"type": "resume", "offset": offset, "sha256": hasher.hexdigest()}
        await channel.send_message(json.dumps(resume))
        start = _int_field(await _control(channel, "data"), "offset")
        if start not in (0, offset):
            raise CommandError(f"the sender wants to start at {start}, not at 0 or {offset}")
        if start == 0:
            hasher = hashlib.sha256()
        elif offset:
            say(f"resuming at {format_bytes(start)}")
        began = time.monotonic()
        async with await trio.open_file(part, "r+b" if part.exists() else "w+b") as file:
            await file.truncate(start)
            await file.seek(start)
            try:
                end = await self._stream(channel, file.wrapped, start, size, hasher)
            finally:
                # Whatever reached the disk is a valid prefix for the next connection. No
                # worker thread runs now (the stream's nursery waited for it), so a plain tell()
                # is safe, and it works while this task is being cancelled.
                written = file.wrapped.tell()
                if written and written == self._hashed_to:
                    self._kept = (part, written, hasher.copy())
        seconds = time.monotonic() - began
        digest = hasher.hexdigest()
        ok = digest == end.get("sha256")
        await channel.send_message(json.dumps({"type": "done", "ok": ok, "sha256": digest}))
        self._kept = None
        if not ok:
            part.unlink()
            sender_digest = printable(end.get("sha256"))
            raise CommandError(f"sha256 mismatch: received {digest}, sender has {sender_digest}")
        os.replace(part, target)
        self.received = target
        say(_summary("received", size - start, seconds, digest) + " (matches the sender's)")

    async def _resume_point(self, part: Path, size: int) -> tuple[int, _Hash]:
        hasher = hashlib.sha256()
        if not await trio.Path(part).exists():
            return 0, hasher
        offset = (await trio.Path(part).stat()).st_size
        if offset == 0 or offset > size:
            return 0, hasher
        kept = self._kept
        if kept is not None and kept[0] == part and kept[1] == offset:
            return offset, kept[2].copy()
        async with await trio.open_file(part, "rb") as file:
            await trio.to_thread.run_sync(_hash_prefix, file.wrapped, offset, hasher)
        return offset, hasher

    async def _stream(
        self, channel: RTCDataChannel, file: IO[bytes], start: int, size: int, hasher: _Hash
    ) -> dict[str, Any]:
        """Write what arrives until the sender's ``end``; return that message."""
        self._hashed_to = start

        def write_block(parts: list[bytes]) -> None:
            block = b"".join(parts)
            file.write(block)
            file.flush()
            hasher.update(block)
            self._hashed_to += len(block)

        blocks_send, blocks_receive = trio.open_memory_channel[list[bytes]](BLOCKS_IN_FLIGHT)

        async def write_all() -> None:
            async with blocks_receive:
                async for parts in blocks_receive:
                    await trio.to_thread.run_sync(write_block, parts)

        bar = ProgressBar(size, start=start, label="receive") if self.progress else None
        received = start
        async with trio.open_nursery() as nursery:
            nursery.start_soon(write_all)
            async with blocks_send:
                parts: list[bytes] = []
                pending = 0
                while True:
                    message = await channel.receive()
                    if isinstance(message, str):
                        break
                    parts.append(message)
                    pending += len(message)
                    received += len(message)
                    if received > size:
                        raise CommandError("the sender sent more than the file's size")
                    if pending >= BLOCK_SIZE:
                        await blocks_send.send(parts)
                        parts, pending = [], 0
                        if bar is not None:
                            bar.update(received)
                if parts:
                    await blocks_send.send(parts)
        if bar is not None:
            bar.update(received)
            bar.finish()
        try:
            end = json.loads(message)
        except ValueError:
            end = None
        if not isinstance(end, dict) or end.get("type") != "end":
            raise CommandError(f"the sender sent {message[:80]!r} instead of its end message")
        if received != size:
            raise CommandError(f"the sender ended after {received} of {size} bytes")
        return end
