"""The command line, run as users run it: ``python -m trio_rtc`` in separate processes.

Files go between a ``receive`` and a ``send`` process through a ``relay`` process on 127.0.0.1
(every interface ICE finds, as users get it) and through copy-paste tokens piped from one
process's stdout to the other's stdin. Each transfer is checked by SHA-256 against the source
file; resumption is checked by killing (SIGKILL) the sender or the receiver mid-way and starting
it again, and counting what the second run moved.

``TRIO_RTC_CLI_TRANSFER_MIB`` sets the size of the plain relay transfer (default 1024: the 1 GiB
of the issue's done-criterion; the test prints the throughput both sides measured).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from trio_rtc.cli import build_parser, main
from trio_rtc.cli.progress import ProgressBar, format_bytes
from trio_rtc.cli.session import CommandError, printable, without_candidates
from trio_rtc.cli.stats import selected_ids, stats_table
from trio_rtc.cli.token import TokenError, decode_token_untrusted, encode_token
from trio_rtc.cli.transfer import _safe_name

ROOT = Path(__file__).resolve().parent.parent
TRANSFER_MIB = int(os.environ.get("TRIO_RTC_CLI_TRANSFER_MIB", "1024"))
SUMMARY = re.compile(r"(sent|received) ([\d.]+) (MiB|GiB|KiB|B) in ([\d.]+) s \(([\d.]+) MiB/s\)")


# --- pure parts -------------------------------------------------------------------------------


def test_token_round_trip_and_bad_tokens() -> None:
    sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" + "a=candidate:x\r\n" * 20
    token = encode_token("offer", sdp)
    assert token.startswith("trtc1.") and "\n" not in token and len(token) < len(sdp)
    assert decode_token_untrusted(token) == ("offer", sdp)
    # Terminals wrap long lines: line breaks and spaces inside a token do not matter.
    wrapped = "\n".join(token[i : i + 20] for i in range(0, len(token), 20))
    assert decode_token_untrusted(f"  {wrapped}\n") == ("offer", sdp)
    for bad, why in [
        ("hello", "starts with"),
        (token[:-8], "cut short"),
        ("trtc1.!!!!", "base64"),
        ("trtc1." + encode_token("offer", sdp)[6:].upper(), "."),
        (encode_token("pranswer", sdp), "no offer or answer"),
        (encode_token("offer", "not sdp"), "no offer or answer"),
    ]:
        with pytest.raises(TokenError, match=why):
            decode_token_untrusted(bad)


def test_the_answering_side_applies_the_offer_without_its_candidates() -> None:
    offer = "v=0\r\nm=application 9\r\na=candidate:1 1 udp 1 192.0.2.1 5000 typ host\r\n"
    offer += "a=end-of-candidates\r\na=mid:0\r\n"
    assert without_candidates(offer) == "v=0\r\nm=application 9\r\na=mid:0\r\n"


def test_token_rejects_a_zip_bomb() -> None:
    import base64
    import zlib

    bomb = zlib.compress(b"offer\nv=0" + b"a" * (10 << 20))
    token = "trtc1." + base64.urlsafe_b64encode(bomb).decode().rstrip("=")
    with pytest.raises(TokenError, match="larger than"):
        decode_token_untrusted(token)


def test_progress_bar_on_a_pipe_writes_a_line_per_tenth(tmp_path: Path) -> None:
    with open(tmp_path / "log", "w+") as stream:
        bar = ProgressBar(100 << 20, start=20 << 20, label="send", stream=stream)
        for done in range(20 << 20, (100 << 20) + 1, 1 << 20):
            bar.update(done)
        bar.finish()
        stream.seek(0)
        lines = stream.read().splitlines()
    assert len(lines) == 8  # 30 %, 40 %, ... 100 %: the resumed first fifth is not repeated
    assert lines[-1].startswith("send [") and "100.0% 100.0 MiB/100.0 MiB" in lines[-1]
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(3 << 30) == "3.0 GiB"


def test_progress_bar_on_a_terminal_redraws_one_line() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    bar = ProgressBar(10 << 20, label="receive", stream=terminal)
    bar.update(5 << 20)
    bar.update(6 << 20)  # within 0.1 s of the last draw: not drawn
    bar.finish()
    draws = terminal.getvalue().split("\r")[1:]
    assert len(draws) == 2 and draws[-1].endswith("\n") and "\n" not in draws[0]
    assert "50.0%" in draws[0] and "60.0%" in draws[1] and draws[1].startswith("receive [#")


def test_peer_text_is_made_safe() -> None:
    assert printable("hi\x1b[2J\x07 there\u202e") == "hi\\x1b[2J\\x07 there\\u202e"
    assert printable("a" * 300).endswith("...") and len(printable("a" * 300)) == 200
    assert _safe_name("../../etc/passwd") == "passwd"
    assert _safe_name("C:\\Users\\x\\file.txt") == "file.txt"
    for bad in ("", "..", "/", "a\x1bb", 7):
        with pytest.raises(CommandError):
            _safe_name(bad)


def test_stats_table_shows_the_pair_in_use() -> None:
    report = {
        "T": {"id": "T", "type": "transport", "timestamp": 1.0, "selectedCandidatePairId": "P"},
        "P": {
            "id": "P",
            "type": "candidate-pair",
            "localCandidateId": "L",
            "remoteCandidateId": "R",
            "currentRoundTripTime": 0.000123456,
        },
        "Q": {"id": "Q", "type": "candidate-pair", "state": "failed"},
        "L": {"id": "L", "type": "local-candidate", "address": "192.0.2.1", "port": 5000},
        "R": {"id": "R", "type": "remote-candidate", "address": "192.0.2.2", "port": 6000},
        "C": {"id": "C", "type": "certificate", "base64Certificate": "x" * 500},
    }
    ids = selected_ids(report)
    assert ids == {"T", "P", "L", "R"}
    table = stats_table(report, ids)
    assert table.index("transport") < table.index("candidate-pair") < table.index("192.0.2.2")
    assert "0.000123456" in table and "failed" not in table and "timestamp" not in table
    assert "x" * 100 not in stats_table(report)  # long values are cut


def test_parser_and_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["send", "f", "--relay", "ws://h:1/r", "--ice-server", "x"])
    assert args.command == "send" and args.ice_server == ["x"]
    assert main(["send", str(tmp_path / "missing")]) == 1
    assert "is not a file" in capsys.readouterr().err
    (tmp_path / "f").write_bytes(b"x")
    assert main(["send", str(tmp_path / "f"), "--relay", "http://host/room"]) == 1
    assert "ws:// URL" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0


# --- real processes ---------------------------------------------------------------------------


class Processes:
    """Every process a test starts, killed at the end whatever happened."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[subprocess.Popen[str]] = []

    def start(
        self, name: str, *args: str | Path, stdin: bool = False, stdout: bool = False
    ) -> subprocess.Popen[str]:
        """``python -m trio_rtc ARGS``; stderr goes to ``NAME.err`` (see :meth:`err`)."""
        process = subprocess.Popen(
            [sys.executable, "-m", "trio_rtc", *map(str, args)],
            cwd=self.directory,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=open(self.directory / f"{name}.err", "w"),
            text=True,
        )
        self.started.append(process)
        return process

    def err(self, name: str) -> str:
        return (self.directory / f"{name}.err").read_text()

    def wait(self, name: str, process: subprocess.Popen[str], timeout: float = 120) -> str:
        """Wait for a clean exit; its stderr."""
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(f"{name} still running:\n{self.err(name)[-3000:]}") from None
        assert code == 0, f"{name} exited {code}:\n{self.err(name)[-3000:]}"
        return self.err(name)

    def relay(self) -> str:
        """Start a relay on a free port of 127.0.0.1; its URL prefix (append a room)."""
        process = self.start("relay", "relay", "--port", "0", stdout=True)
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"(ws://\S+/)<room>", line)
        assert match, f"relay printed {line!r}:\n{self.err('relay')}"
        return match.group(1)

    def close(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.close()


def make_file(path: Path, size: int) -> str:
    """A file of ``size`` bytes that no two blocks repeat in; its sha256."""
    seed = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with open(path, "wb") as file:
        written = 0
        index = 0
        while written < size:
            block = (index.to_bytes(8, "big") + seed[8:])[: size - written]
            file.write(block)
            digest.update(block)
            written += len(block)
            index += 1
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def moved(stderr: str, verb: str) -> tuple[float, float, float]:
    """(MiB, seconds, MiB/s) from a ``sent ...``/``received ...`` summary line."""
    match = next(m for m in SUMMARY.finditer(stderr) if m.group(1) == verb)
    scale = {"B": 1 / (1 << 20), "KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[match.group(3)]
    return float(match.group(2)) * scale, float(match.group(4)), float(match.group(5))


def wait_for_size(
    path: Path, size: int, process: subprocess.Popen[str], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size >= size):
        assert process.poll() is None, "the process ended before the file grew"
        assert time.monotonic() < deadline, f"{path} did not reach {size} bytes"
        time.sleep(0.005)


def test_send_receive_through_the_relay(processes: Processes, tmp_path: Path) -> None:
    """The done-criterion: a 1 GiB file (``TRIO_RTC_CLI_TRANSFER_MIB``) between two processes,
    with a progress bar, the throughput and the SHA-256 check at the end."""
    size = TRANSFER_MIB << 20
    source = tmp_path / "big.bin"
    digest = make_file(source, size)
    room = processes.relay() + "big"
    (tmp_path / "in").mkdir()
    copy = tmp_path / "in" / "big.bin"
    try:
        receiver = processes.start("receive", "receive", "-o", "in", "--relay", room)
        sender = processes.start("send", "send", source, "--relay", room)
        sent = processes.wait("send", sender, timeout=300)
        received = processes.wait("receive", receiver)
        assert sha256_of(copy) == digest
    finally:
        # Two files of a GiB each would stay in pytest's kept temporary directories.
        source.unlink()
        copy.unlink(missing_ok=True)
    assert not (tmp_path / "in" / "big.bin.part").exists()
    assert f"sha256 {digest} (verified by the receiver)" in sent
    assert f"sha256 {digest} (matches the sender's)" in received
    # Not a terminal: the bar is written as a line per tenth of the way.
    for output, label in ((sent, "send ["), (received, "receive [")):
        bars = [line for line in output.splitlines() if line.startswith(label)]
        assert 5 <= len(bars) <= 10 and "100.0%" in bars[-1], bars
    mib, seconds, rate = moved(sent, "sent")
    assert mib == TRANSFER_MIB
    print(f"\n{TRANSFER_MIB} MiB sent in {seconds:.2f} s: {rate:.1f} MiB/s (sender)")
    print(f"receiver: {moved(received, 'received')[2]:.1f} MiB/s")


@pytest.mark.parametrize("killed", ["send", "receive"])
def test_resume_after_a_killed_process(processes: Processes, tmp_path: Path, killed: str) -> None:
    """SIGKILL one side once the receiver holds a fifth of the file; start it again: the
    transfer goes on from the receiver's partial file (prefix hash checked) to a good copy."""
    size = 64 << 20
    source = tmp_path / "data.bin"
    digest = make_file(source, size)
    room = processes.relay() + "resume"
    (tmp_path / "in").mkdir()
    part = tmp_path / "in" / "data.bin.part"
    receiver = processes.start("receive", "receive", "-o", "in", "--relay", room)
    sender = processes.start("send", "send", source, "--relay", room)
    wait_for_size(part, size // 5, sender)
    victim = sender if killed == "send" else receiver
    victim.kill()
    victim.wait()
    kept = part.stat().st_size
    assert size // 5 <= kept < size
    if killed == "send":
        sender = processes.start("send2", "send", source, "--relay", room)
        sent, received = processes.wait("send2", sender), processes.wait("receive", receiver)
    else:
        receiver = processes.start("receive2", "receive", "-o", "in", "--relay", room)
        received, sent = processes.wait("receive2", receiver), processes.wait("send", sender)
    assert sha256_of(tmp_path / "in" / "data.bin") == digest
    assert "resuming at" in sent and "resuming at" in received
    assert f"sha256 {digest} (verified by the receiver)" in sent
    mib, _, _ = moved(sent, "sent")
    assert mib <= (size - kept) / (1 << 20) + 0.1, "the second run sent what the receiver had"


def test_a_different_file_of_the_same_name_starts_over(
    processes: Processes, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "same.bin.part").write_bytes(b"not the start of that file")
    source = tmp_path / "same.bin"
    digest = make_file(source, 3 << 20)
    room = processes.relay() + "other"
    receiver = processes.start("receive", "receive", "-o", "in", "--relay", room)
    sent = processes.wait("send", processes.start("send", "send", source, "--relay", room))
    processes.wait("receive", receiver)
    assert "differs from this file: starting over" in sent
    assert sha256_of(tmp_path / "in" / "same.bin") == digest


def test_receiver_refuses_to_replace_a_file(processes: Processes, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.bin").write_bytes(b"keep me")
    make_file(tmp_path / "x.bin", 1000)
    room = processes.relay() + "refuse"
    receiver = processes.start("receive", "receive", "-o", "in", "--relay", room)
    sender = processes.start("send", "send", "x.bin", "--relay", room)
    assert sender.wait(60) == 1 and receiver.wait(60) == 1
    assert "refused the file: x.bin exists" in processes.err("send")
    assert "--force replaces it" in processes.err("receive")
    assert (tmp_path / "in" / "x.bin").read_bytes() == b"keep me"


def exchange_tokens(
    offerer: subprocess.Popen[str], answerer: subprocess.Popen[str], *, delay: float = 0.0
) -> None:
    """What two people do with copy-paste: offer token over, answer token back (``delay``
    seconds later: people are slow)."""
    assert offerer.stdout and offerer.stdin and answerer.stdout and answerer.stdin
    offer = offerer.stdout.readline()
    assert offer.startswith("trtc1."), offer
    answerer.stdin.write(offer)
    answerer.stdin.flush()
    answer = answerer.stdout.readline()
    assert answer.startswith("trtc1."), answer
    assert decode_token_untrusted(answer)[0] == "answer"
    time.sleep(delay)
    # Pasted wrapped over several lines, after a line of junk.
    pasted = "junk\n" + "\n".join(answer[i : i + 60] for i in range(0, len(answer), 60))
    offerer.stdin.write(pasted + "\n")
    offerer.stdin.flush()


def test_send_receive_with_tokens(processes: Processes, tmp_path: Path) -> None:
    source = tmp_path / "t.bin"
    digest = make_file(source, 16 << 20)
    (tmp_path / "in").mkdir()
    sender = processes.start("send", "send", source, stdin=True, stdout=True)
    receiver = processes.start("receive", "receive", "-o", "in/t.copy", stdin=True, stdout=True)
    # Longer than the answering side's DTLS client would keep retrying had its ICE connected
    # early (see trio_rtc.cli.session.without_candidates).
    exchange_tokens(sender, receiver, delay=8.0)
    processes.wait("send", sender)
    received = processes.wait("receive", receiver)
    assert f"sha256 {digest} (matches the sender's)" in received
    assert sha256_of(tmp_path / "in" / "t.copy") == digest
    assert "not a token" in processes.err("send")  # the junk line, answered with a hint


def read_until(stream: IO[str], text: str, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)
        if text in line:
            return
    raise AssertionError(f"{text!r} never came; got {lines}")


def test_chat_through_the_relay_and_stats_with_tokens(processes: Processes) -> None:
    room = processes.relay() + "chat"
    alice = processes.start(
        "alice", "chat", "--name", "alice", "--relay", room, stdin=True, stdout=True
    )
    bob = processes.start("bob", "chat", "--name", "bob", "--relay", room, stdin=True, stdout=True)
    assert alice.stdin and alice.stdout and bob.stdin and bob.stdout
    alice.stdin.write("hello bob\n")
    alice.stdin.flush()
    seen_by_bob: list[str] = []
    read_until(bob.stdout, "alice: hello bob", seen_by_bob)
    bob.stdin.write("hi alice\n")
    bob.stdin.flush()
    seen_by_alice: list[str] = []
    read_until(alice.stdout, "bob: hi alice", seen_by_alice)
    bob.stdin.close()  # Ctrl-D: bob leaves, alice waits for someone to come back
    processes.wait("bob", bob)
    alice.stdin.close()
    processes.wait("alice", alice)

    # stats as the offering side of a token exchange, a chat peer answering.
    stats = processes.start(
        "stats", "stats", "--count", "2", "--interval", "0.2", stdin=True, stdout=True
    )
    peer = processes.start("peer", "chat", "--answer", stdin=True, stdout=True)
    exchange_tokens(stats, peer)
    processes.wait("stats", stats)
    assert stats.stdout is not None
    table = stats.stdout.read()
    assert table.count("peer-connection") == 2
    for member in ("selectedCandidatePairId", "currentRoundTripTime", "dataChannelsOpened"):
        assert member in table
    assert "local-candidate" in table and "remote-candidate" in table
    assert peer.stdin is not None
    peer.stdin.close()
    peer.wait(30)


def test_builtin_bench(processes: Processes) -> None:
    bench = processes.start("bench", "bench", "--builtin", "--mib", "8", stdout=True)
    processes.wait("bench", bench)
    assert bench.stdout is not None
    out = bench.stdout.read()
    assert "setup" in out and "MiB/s" in out and "round trip" in out


def test_bench_in_a_checkout_runs_the_side_by_side_benchmark(processes: Processes) -> None:
    from trio_rtc.cli.bench import checkout_benchmark

    assert checkout_benchmark() == ROOT / "benchmarks" / "run.py"
    args = ("--quick", "--rounds", "1", "--only", "setup", "--stacks", "trio_rtc")
    bench = processes.start("bench", "bench", *args, stdout=True)
    processes.wait("bench", bench)
    assert bench.stdout is not None
    assert "setup: 2 pcs created -> channel open on both" in bench.stdout.read()
