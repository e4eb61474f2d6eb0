"""User code gets precise types: ``mypy --strict`` accepts a program that uses trio_rtc as
documented (``typing_samples/good.py``) and reports each mistake in ``typing_samples/bad.py``
(``send_message(123)``, ``ordered="yes"``, a misspelt state or handler attribute, a handler for
the wrong event, ``pc.sctp`` used without checking for None, ...).

mypy runs on the source tree (MYPYPATH, from the repository root), not on an installed copy,
with the project's mypy settings and a cache of its own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "typing_samples"
_ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")
_EXPECTED = re.compile(r"#\s*E:\s*(?P<text>.+?)\s*$")


def run_mypy(cache: Path, *files: Path) -> tuple[int, dict[tuple[str, int], list[str]]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(cache),
            "--show-error-codes",
            "--no-pretty",
            "--no-error-summary",
            *(str(f.relative_to(ROOT)) for f in files),
        ],
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode in (0, 1), f"mypy did not run:\n{done.stdout}\n{done.stderr}"
    errors: dict[tuple[str, int], list[str]] = {}
    for line in done.stdout.splitlines():
        match = _ERROR.match(line)
        if match:
            key = (Path(match["file"]).name, int(match["line"]))
            errors.setdefault(key, []).append(match["message"])
    return done.returncode, errors


def expected_errors(path: Path) -> dict[int, str]:
    expected: dict[int, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = _EXPECTED.search(line)
        if match:
            expected[number] = match["text"]
    return expected


def test_mypy_accepts_good_and_reports_every_mistake_in_bad(tmp_path: Path) -> None:
    good, bad = SAMPLES / "good.py", SAMPLES / "bad.py"
    status, errors = run_mypy(tmp_path / "mypy-cache", good, bad)
    assert status == 1, "mypy found no error at all in bad.py"

    unexpected_good = {line: m for (name, line), m in errors.items() if name == "good.py"}
    assert not unexpected_good, f"mypy rejects the documented usage in good.py: {unexpected_good}"

    expected = expected_errors(bad)
    assert len(expected) >= 15
    reported = {line: m for (name, line), m in errors.items() if name == "bad.py"}
    missing = {
        line: text
        for line, text in expected.items()
        if not any(text in message for message in reported.get(line, []))
    }
    assert not missing, f"mistakes mypy did not report (line: expected text): {missing}\n{reported}"
    extra = {line: m for line, m in reported.items() if line not in expected}
    assert not extra, f"errors on lines of bad.py that are not marked '# E:': {extra}"

    # The messages speak of the classes users know, not of the ones the package is built from.
    internal = ("Negotiation", "PeerConnectionBase", "DataChannels", "MediaSide", "JsepSession")
    leaked = [
        m for messages in reported.values() for m in messages if any(n in m for n in internal)
    ]
    assert not leaked, leaked
