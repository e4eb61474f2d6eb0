"""The docs site builds: ``mkdocs build --strict`` over docs/ and mkdocs.yml, with the API
reference generated from the docstrings (docs/api.md). Strict mode turns MkDocs' warnings
(a broken #anchor, a docstring mkdocstrings cannot place, an unknown module) into a failure; a
link from one page to a page that does not exist is only an INFO line for MkDocs (links to files
beside docs/, such as ../benchmarks/README.md, are fine on GitHub), so it is checked here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MISSING = re.compile(r"Doc file '([^']+)' contains a link '([^']+)', but the target .*not found")


def test_the_docs_site_builds_in_strict_mode(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    broken = [
        f"{page} -> {target}"
        for page, target in MISSING.findall(log)
        if not target.startswith("../")
    ]
    assert not broken, f"links to pages that do not exist: {broken}"
    api = (site / "api" / "index.html").read_text()
    # The reference really came from the docstrings, inherited methods included.
    for anchor in (
        "trio_rtc.pc.negotiation.Negotiation.createOffer",
        "trio_rtc.pc.RTCPeerConnection.createDataChannel",
        "trio_rtc.datachannel.RTCDataChannel.send_message",
        "trio_rtc.signaling.negotiate_over",
        "trio_rtc.testing.VirtualNetwork",
    ):
        assert f'id="{anchor}"' in api, anchor
    assert ":meth:" not in api and ":class:" not in api
    assert (site / "mdn-mapping" / "index.html").is_file()


def test_every_logger_is_documented() -> None:
    """docs/logging.md lists every logger the package makes, so a new one cannot go unnoticed."""
    names = set()
    for source in (ROOT / "trio_rtc").rglob("*.py"):
        text = source.read_text()
        names.update(re.findall(r"""getLogger\(["']([\w.]+)["']\)""", text))
        if "getLogger(__name__)" in text:
            module = source.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
            names.add(module.removesuffix(".__init__"))
    assert names
    page = (ROOT / "docs" / "logging.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in page)
    assert not missing, f"loggers missing from docs/logging.md: {missing}"
