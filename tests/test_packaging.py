"""Both install ways work: ``pip install trio_rtc`` (no PyAV) and ``pip install 'trio_rtc[media]'``.

The wheel is built from this checkout, installed into a fresh virtualenv with its dependencies
(from the package index pip is configured with), and used there: the base install connects two
peer connections and carries encoded media (the script of ``test_without_pyav``, here without
any blocking: PyAV is simply not installed), then the ``media`` extra adds PyAV and the codecs.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from test_without_pyav import SCRIPT

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str | Path, cwd: Path | None = None, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_base_and_media_installs(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, ROOT)
    [wheel] = wheels.glob("trio_rtc-*.whl")
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
