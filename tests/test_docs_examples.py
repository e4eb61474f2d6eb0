"""Every complete program in docs/ (a ```python block that calls ``trio.run``) runs as written,
in a fresh interpreter, and exits cleanly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def programs() -> list[tuple[str, str]]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for index, block in enumerate(BLOCK.findall(page.read_text())):
            if "trio.run(" in block:
                found.append((f"{page.name}#{index}", block))
    return found


@pytest.mark.parametrize(("name", "code"), programs(), ids=[name for name, _ in programs()])
def test_documented_program_runs(name: str, code: str) -> None:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, f"{name} failed:\n{done.stderr[-3000:]}"
