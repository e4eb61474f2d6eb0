"""The README's demo command keeps working (a short run, checked for its key lines)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_loopback_demo_runs() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "loopback_demo.py"),
            "--mib",
            "1",
            "--messages",
            "500",
            "--seconds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "data channel open on both sides in" in out
    assert "DTLS 1.2" in out
    assert "transfer: 1 MiB in" in out and "sha256 verified" in out
    assert "small messages: 500 x 100 B" in out

    # Media: 1 s of VP8 at 30 fps and Opus in 20 ms frames, encoded and decoded with PyAV.
    assert "media: VP8 640x480 at 30 fps + Opus 48 kHz for 1 s" in out
    video = re.search(
        r"video: (\d+) frames sent \([\d,]+ kbit/s\), (\d+) received, (\d+) decoded at 640x480$",
        out,
        re.MULTILINE,
    )
    assert video, out
    sent, received, decoded = map(int, video.groups())
    # On a loaded machine the pattern, like a camera, skips the pictures of slots it was late for.
    assert 25 <= sent <= 30
    # Loopback loses nothing, but a loaded machine may make the receiver drop a late frame.
    assert sent - 3 <= decoded <= received <= sent
    latency = re.search(
        r"glass-to-glass \(capture -> decoded\): median ([\d.]+) ms, p95 ([\d.]+)", out
    )
    assert latency, out
    assert 0 < float(latency[1]) <= float(latency[2])
    audio = re.search(r"audio: (\d+) Opus frames sent, (\d+) received, ([\d.]+) s decoded", out)
    assert audio, out
    # 50 frames of tone; Opus keeps its last frame as lookahead when the track ends.
    assert 49 <= int(audio[1]) <= 50 and 45 <= int(audio[2]) <= int(audio[1]), out
    assert float(audio[3]) >= 0.9
    pings = re.search(r"data channel meanwhile: (\d+)/(\d+) pings echoed", out)
    assert pings, out
    assert int(pings[1]) == int(pings[2]) >= 5
