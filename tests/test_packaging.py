"""Both install ways work: ``pip install trio_rtc`` (no PyAV) and ``pip install 'trio_rtc[media]'``.

The wheel is built from this checkout, installed into a fresh virtualenv with its dependencies
(from the package index pip is configured with), and used there: the base install connects two
peer connections and carries encoded media (the script of ``test_without_pyav``, here without
any blocking: PyAV is simply not installed), then the ``media`` extra adds PyAV and the codecs.

The sdist and the wheel come from ``python -m build`` (as a release would make them) and pass
``twine check --strict``; the sdist carries what the README links to (docs/, examples/,
benchmarks/) and the tests with the peers they start; the version has one source
(``trio_rtc.__version__``). The editable install of the checkout is visible to mypy from outside
the repository (it was not: setuptools' import hook is invisible to static tools).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_without_pyav import SCRIPT

import trio_rtc

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str | Path, cwd: Path | None = None, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(sdist, wheel) from ``python -m build`` of this checkout."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, ROOT, timeout=600)
    [sdist] = out.glob("trio_rtc-*.tar.gz")
    [wheel] = out.glob("trio_rtc-*.whl")
    yield sdist, wheel


def test_sdist_and_wheel_are_complete_and_pass_twine(built: tuple[Path, Path]) -> None:
    sdist, wheel = built
    run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel)
    version = trio_rtc.__version__
    assert sdist.name == f"trio_rtc-{version}.tar.gz"
    assert wheel.name.startswith(f"trio_rtc-{version}-")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for required in (
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "pyproject.toml",
        "docs/getting-started.md",
        "docs/cli.md",
        "examples/chat.py",
        "examples/browser_echo/index.html",
        "benchmarks/run.py",
        "tests/conftest.py",
        "tests/test_cli.py",
        "tests/peers/aiortc_pc_peer.py",
        "tests/peers/web/peer.js",
        "trio_rtc/py.typed",
        "trio_rtc/cli/__init__.py",
        "trio_rtc/__main__.py",
    ):
        assert required in names, f"{required} is not in the sdist"
    # Every page the README links to is there.
    readme = (ROOT / "README.md").read_text()
    for link in re.findall(r"\]\(((?:docs|examples|benchmarks)/[^)#]+)", readme):
        assert link in names, f"README links to {link}, which the sdist lacks"
    junk = [n for n in names if "__pycache__" in n or "node_modules" in n or ".mypy_cache" in n]
    assert not junk, junk[:5]

    with zipfile.ZipFile(wheel) as archive:
        wheel_names = set(archive.namelist())
        info = f"trio_rtc-{version}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert f"{info}/licenses/LICENSE" in wheel_names
    assert not any(n.startswith(("tests/", "docs/", "benchmarks/")) for n in wheel_names)
    assert f"Version: {version}" in metadata
    assert "License-Expression: BSD-3-Clause" in metadata
    assert "Classifier: Typing :: Typed" in metadata and "Classifier: Framework :: Trio" in metadata
    summary = next(line for line in metadata.splitlines() if line.startswith("Summary:"))
    assert "SRTP" in summary and "data channels" in summary
    assert "trio-rtc = trio_rtc.cli:main" in entry_points


def test_mypy_finds_the_editable_install(tmp_path: Path) -> None:
    """Type-checking code outside the repository against the installed trio_rtc works."""
    (tmp_path / "user.py").write_text(
        "from trio_rtc import RTCPeerConnection\n"
        "from trio_rtc.cli import main\n"
        "def make() -> RTCPeerConnection:\n"
        "    return RTCPeerConnection()\n"
        "code: int = main(['--version'])\n"
    )
    out = run(sys.executable, "-m", "mypy", "--strict", "--no-incremental", "user.py", cwd=tmp_path)
    assert "Success" in out


def test_base_and_media_installs(tmp_path: Path, built: tuple[Path, Path]) -> None:
    _, wheel = built
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(archive.read(n).decode() for n in names if n.endswith("/METADATA"))
    assert "trio_rtc/py.typed" in names
    assert {"trio_rtc/media/av_codecs.py", "trio_rtc/media/player.py"} <= names
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: av")]
    assert requires and all('extra == "media"' in r or 'extra == "dev"' in r for r in requires)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run(*pip, wheel)
    tests = Path(__file__).parent
    # The script blocks `av` itself; here that is moot (it is not installed at all).
    done = subprocess.run(
        [str(python), "-c", SCRIPT],
        cwd=tests,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(tests), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
    absent = run(python, "-c", "import importlib.util; print(importlib.util.find_spec('av'))")
    assert absent.strip() == "None"
    # The command line is installed, and without a checkout `bench` measures trio_rtc alone.
    assert run(venv / "bin" / "trio-rtc", "--version").strip() == f"trio_rtc {trio_rtc.__version__}"
    bench = run(python, "-m", "trio_rtc", "bench", "--mib", "4", cwd=tmp_path)
    assert "MiB/s" in bench and "round trip" in bench

    run(*pip, f"{wheel}[media]")
    check = (
        "from trio_rtc.jsep.codecs import NegotiatedCodec\n"
        "from trio_rtc.media import default_registry\n"
        "import av\n"
        "encoder = default_registry.create_encoder(NegotiatedCodec(96, 'VP8', 90000))\n"
        "[frame] = encoder.encode(av.VideoFrame(64, 48, 'yuv420p'))\n"
        "assert frame.keyframe and frame.data\n"
        "print('media ok')\n"
    )
    assert run(python, "-c", check).strip() == "media ok"
