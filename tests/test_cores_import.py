"""The sans-IO cores import without trio, and ``import trio_rtc`` alone stays light.

ARCHITECTURE.md: a core "imports nothing from trio", and importing a core "never imports the pc
or trio". Each check runs in a fresh interpreter with ``trio`` (and ``trio_websocket``) blocked in
``sys.modules``, so a module that pulls trio in fails to import; the failure names the chain of
``trio_rtc`` modules that led there.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest

import trio_rtc
import trio_rtc.turn

CORES = [
    "trio_rtc.stun",
    "trio_rtc.stun.message",
    "trio_rtc.stun.transaction",
    "trio_rtc.ice",
    "trio_rtc.ice.agent",
    "trio_rtc.ice.candidate",
    "trio_rtc.ice.pairs",
    "trio_rtc.ice.session",
    "trio_rtc.ice.gathering",
    "trio_rtc.ice.rtc",
    "trio_rtc.turn",
    "trio_rtc.turn.client",
    "trio_rtc.dtls",
    "trio_rtc.dtls.connection",
    "trio_rtc.dtls.certificate",
    "trio_rtc.sctp",
    "trio_rtc.sctp.association",
    "trio_rtc.sctp.dcep",
    "trio_rtc.sctp.streams",
    "trio_rtc.rtp.packet",
    "trio_rtc.rtp.extensions",
    "trio_rtc.rtp.sequence",
    "trio_rtc.rtp.srtp",
    "trio_rtc.rtp.rtcp",
    "trio_rtc.rtp.rtcp_feedback",
    "trio_rtc.rtp.ntp",
    "trio_rtc.rtp.stats",
    "trio_rtc.rtp.reports",
    "trio_rtc.rtp.demux",
    "trio_rtc.rtp.codecs",
    "trio_rtc.rtp.twcc",
    "trio_rtc.rtp.repair",
    "trio_rtc.rtp.nack",
    "trio_rtc.rtp.keyframes",
    "trio_rtc.rtp.gcc",
    "trio_rtc.rtp.pacer",
    "trio_rtc.rtp.jitter",
    "trio_rtc.rtp.red",
    "trio_rtc.jsep.codecs",
    "trio_rtc.jsep.h264",
    "trio_rtc.sdp",
    "trio_rtc.jsep",
    "trio_rtc.configuration",
    "trio_rtc.exceptions",
    "trio_rtc.sessiondescription",
]

# Run in a fresh interpreter: block trio, import each module, and report {module: error} as JSON.
# A failed import leaves nothing behind in sys.modules, so one module's failure cannot hide or
# cause another's: each one that needs trio fails on its own import chain.
_CHILD = textwrap.dedent(
    """
    import json, sys, traceback
    sys.modules["trio"] = None
    sys.modules["trio_websocket"] = None
    failures = {}
    for name in sys.argv[1:]:
        try:
            __import__(name)
        except BaseException as exc:
            chain = [
                f"{frame.filename.rpartition('trio_rtc')[2].lstrip('/')}:{frame.lineno}"
                for frame in traceback.extract_tb(exc.__traceback__)
                if "trio_rtc" in frame.filename and frame.name == "<module>"
            ]
            failures[name] = f"{type(exc).__name__}: {exc} (via {' -> '.join(chain)})"
    print(json.dumps(failures))
    """
)


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_core_imports_with_trio_blocked() -> None:
    result = _run(_CHILD, *CORES)
    assert result.returncode == 0, result.stderr
    failures = json.loads(result.stdout)
    assert failures == {}, "\n".join(f"{name}: {error}" for name, error in failures.items())


def test_the_check_notices_a_module_that_needs_trio() -> None:
    result = _run(_CHILD, "trio_rtc.dtls.driver")
    failures = json.loads(result.stdout)
    assert "trio_rtc.dtls.driver" in failures
    assert "dtls/driver.py" in failures["trio_rtc.dtls.driver"]


def test_import_trio_rtc_does_not_import_trio_or_the_pc() -> None:
    code = textwrap.dedent(
        """
        import sys
        import trio_rtc
        loaded = sorted(m for m in ("trio", "trio_websocket", "trio_rtc.pc") if m in sys.modules)
        assert not loaded, f"import trio_rtc loaded {loaded}"
        from trio_rtc import RTCPeerConnection
        assert trio_rtc.RTCPeerConnection is RTCPeerConnection
        assert RTCPeerConnection.__module__ == "trio_rtc.pc.connection"
        assert "trio" in sys.modules
        """
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr


def test_every_public_name_resolves_lazily() -> None:
    for name in trio_rtc.__all__:
        value = getattr(trio_rtc, name)
        # Classes by their own name; the state aliases are Literal types, which have none.
        assert value.__name__ == name or typing.get_origin(value) is typing.Literal
        assert name in dir(trio_rtc)
    for name in trio_rtc.turn.__all__:
        assert getattr(trio_rtc.turn, name) is not None
    assert set(trio_rtc.turn.__all__) <= set(dir(trio_rtc.turn))


def test_a_wrong_name_raises_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="RTCPeerConection"):
        trio_rtc.RTCPeerConection  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(ImportError, match="RTCPeerConection"):
        from trio_rtc import RTCPeerConection  # type: ignore[attr-defined]  # noqa: F401
    with pytest.raises(AttributeError, match="open_turn"):
        trio_rtc.turn.open_turn  # type: ignore[attr-defined]  # noqa: B018


def test_lazy_table_matches_the_type_checking_imports() -> None:
    """``_LAZY`` (what runs) and the ``if TYPE_CHECKING:`` imports (what mypy sees) agree."""
    tree = ast.parse(Path(trio_rtc.__file__).read_text(encoding="utf-8"))
    [block] = [
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    ]
    seen = {
        alias.name: "." * node.level + (node.module or "")
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert seen == trio_rtc._LAZY
    assert sorted(seen) == sorted(trio_rtc.__all__)
