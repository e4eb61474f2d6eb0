"""The README's demo command keeps working (a short run, checked for its key lines)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_loopback_demo_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "loopback_demo.py"), "--messages", "500"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "ICE connected in" in done.stdout
    assert "DTLS connected in" in done.stdout
    assert "transfer: 500/500 records" in done.stdout
