"""The README's demo command keeps working (a short run, checked for its key lines)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_loopback_demo_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "loopback_demo.py"), "--mib", "1", "--messages", "500"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "data channel open on both sides in" in done.stdout
    assert "DTLS 1.2" in done.stdout
    assert "transfer: 1 MiB in" in done.stdout and "sha256 verified" in done.stdout
    assert "small messages: 500 x 100 B" in done.stdout
