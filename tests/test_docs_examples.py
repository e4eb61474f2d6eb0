"""The docs run: every ```python block in docs/*.md and README.md is either a complete program,
which this test runs as written in a fresh interpreter and which must exit 0, or is marked as a
fragment by an HTML comment on the line just before its opening fence::

    <!-- fragment -->
    ```python
    channel.send("hello")
    ```

(``<!-- fragment: why -->`` may say why.) The comment is invisible on GitHub and in the docs site,
and ``ruff format`` still formats the block. An unmarked block that is not a complete program
fails here, so an incomplete example cannot pass for a runnable one. Complete programs talk over
loopback or in memory only: no outside server is reachable from CI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
FRAGMENT = re.compile(r"^\s*<!--\s*fragment(?::[^>]*)?\s*-->\s*$")
PYTHON = {"python", "py", "python3"}


class Block:
    def __init__(self, page: Path, line: int, language: str, fragment: bool, code: str) -> None:
        self.page = page
        self.line = line  # 1-based line of the opening fence
        self.language = language
        self.fragment = fragment
        self.code = code

    @property
    def name(self) -> str:
        return f"{self.page.name}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page (CommonMark fences, no nesting)."""
    lines = page.read_text().splitlines()
    found = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence = opening["fence"]
        info = opening["info"].strip()
        language = info.split()[0].lower() if info else ""
        fragment = index > 0 and FRAGMENT.match(lines[index - 1]) is not None
        end = index + 1
        while end < len(lines):
            closing = FENCE.match(lines[end])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            end += 1
        code = "\n".join(lines[index + 1 : end]) + "\n"
        found.append(Block(page, index + 1, language, fragment, code))
        index = end + 1
    return found


def python_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks(page) if block.language in PYTHON]


def programs() -> list[Block]:
    return [block for block in python_blocks() if not block.fragment]


def test_fragment_markers_sit_on_python_blocks() -> None:
    """A marker before anything but a Python block (a blank line in between, another language)
    is a mistake: the block it was meant for would be run, or the marker means nothing."""
    misplaced = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        marked = {block.line - 1 for block in blocks(page) if block.fragment}
        for number, line in enumerate(lines, start=1):
            if FRAGMENT.match(line) and number not in marked:
                misplaced.append(f"{page.name}:{number}")
        misplaced += [
            f"{block.name} ({block.language or 'no language'})"
            for block in blocks(page)
            if block.fragment and block.language not in PYTHON
        ]
    assert not misplaced, f"fragment markers not just before a ```python fence: {misplaced}"


def test_the_scan_finds_the_documented_programs() -> None:
    # Guards the parser itself: if it found nothing, every page would pass vacuously.
    assert len(programs()) >= 15
    assert any(block.fragment for block in python_blocks())


@pytest.mark.parametrize("block", programs(), ids=lambda block: block.name)
def test_documented_program_runs(block: Block, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", block.code],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
    )
    assert done.returncode == 0, (
        f"{block.name} is neither a complete program nor marked <!-- fragment -->; "
        f"it failed:\n{done.stderr[-3000:]}"
    )
