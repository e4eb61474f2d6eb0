"""The base install works without PyAV: ``pip install trio_rtc`` has no ``av``.

A fresh interpreter with ``av`` made unimportable (a meta-path finder that refuses it, as if the
``media`` extra were not installed) connects two peer connections over UDP on 127.0.0.1 and
sends encoded frames one way (the SFU/relay path); reading decoded frames raises an error that
says to install ``trio_rtc[media]``, and a track fed by raw frames cannot be encoded (the
sender says why) while the connection carries on."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import importlib.abc
    import sys

    class NoPyAV(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "av" or name.startswith("av."):
                raise ImportError("PyAV is blocked for this test")
            return None

    sys.meta_path.insert(0, NoPyAV())

    import trio
    from pc_helpers import connect, pc_pair

    from trio_rtc.media import (
        CodecUnavailableError, MediaStreamTrack, OutgoingFrame, VideoSource, default_registry,
    )

    # A VP8 keyframe's payload header is all the packetizer reads: bytes stand in for a frame.
    KEYFRAME = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x40, 0x01, 0xF0, 0x00]) + bytes(3000)
    DELTA = bytes([0x31, 0x02, 0x00]) + bytes(500)

    async def main():
        assert not default_registry.can_encode("VP8") and not default_registry.can_decode("opus")
        async with pc_pair() as (a, b), trio.open_nursery() as nursery:
            events = []
            b.ontrack = events.append
            encoded = MediaStreamTrack("video", "encoded")
            a.addTrack(encoded)
            raw = VideoSource()
            raw_sender = a.addTrack(raw.create_track("raw"))
            with trio.fail_after(30):
                await connect(a, b, nursery)
                await b.wait_until(lambda: len(events) == 2)

                async def feed():
                    for index in range(200):
                        data = KEYFRAME if index % 30 == 0 else DELTA
                        await encoded.source.send(
                            OutgoingFrame(data, keyframe=index % 30 == 0, duration=1 / 30)
                        )
                        await trio.sleep(0.005)

                nursery.start_soon(feed)
                track = events[0].track
                frames = [await track.recv_encoded() for _ in range(20)]
                assert all(f.codec == "video/VP8" for f in frames), frames
                assert frames[0].keyframe and len(frames[0].data) == len(KEYFRAME)
                other = events[1].track
                other._frames.append(frames[0])  # as if a frame had arrived
                try:
                    await other.recv()
                except CodecUnavailableError as exc:
                    assert "pip install 'trio_rtc[media]'" in str(exc), exc
                else:
                    raise AssertionError("recv() decoded without PyAV")
                await raw.send(object())
                await a.wait_until(lambda: raw_sender.encode_error is not None)
                assert "PyAV is not installed" in str(raw_sender.encode_error)
                assert a.connectionState == "connected"
            nursery.cancel_scope.cancel()
        assert "av" not in sys.modules
        print("ok")

    trio.run(main)
    """
)


def test_connections_and_encoded_media_work_without_pyav() -> None:
    tests = Path(__file__).parent
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=tests,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(tests), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip().endswith("ok")
