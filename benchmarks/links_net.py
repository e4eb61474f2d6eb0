"""The impaired link of ``bench_links.py``: three network namespaces and the kernel's shaping.

::

    sender ns                 middle ns                          receiver ns
    link0 10.213.0.1 ==veth== to-snd  [links_bridge.py]  to-rcv ==veth== link0 10.213.0.2
                                      delay, burst loss   tbf (rate)      nft (random loss,
                                                                           delivered counter)

- **Rate**: ``tc qdisc ... tbf`` on the middle namespace's egress towards the receiver, i.e.
  a router's queue on the media direction. It is not on the sender's own interface: there a
  full queue pushes back into the sending socket (its buffer fills, ``sendto`` blocks or
  fails), which no real network does to a browser. Changed on the fly with ``tc qdisc change``.
- **Random loss**: an ``nft`` rule ``meta l4proto udp numgen random mod 1000 < N drop`` on the
  input hook of the receiver namespace (silent loss; on the output hook the sender would see
  ``EPERM``). It is followed by a named counter ``delivered``: the UDP bytes (IP length) that
  reached the receiver, what the link utilisation is made of.
- **Delay and burst loss**: ``links_bridge.py`` (this kernel has no ``tc netem``).

IPv6 is disabled in the three namespaces, so each peer has exactly one host candidate and the
two stacks see the same single path. Transmit checksum offload is off on the peers' interfaces:
a veth frame otherwise carries only a partial UDP checksum, which the packet socket of the bridge
copies as it is and the receiving kernel then rejects.

Every namespace is named ``linkbench-<pid>-<role>``; :func:`remove_stale` deletes those of a
run whose process is gone (a ``kill -9``), and ends the processes left in them;
:meth:`Link.destroy` deletes those of this one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from typing import Any

PREFIX = "linkbench"
SENDER_ADDRESS = "10.213.0.1"
RECEIVER_ADDRESS = "10.213.0.2"
PEER_INTERFACE = "link0"
MIDDLE_TO_SENDER = "to-snd"
MIDDLE_TO_RECEIVER = "to-rcv"
NFT_TABLE = "linkbench"
#: Bytes the tbf bucket holds: two full-size frames, so the link never sends a long line-rate
#: burst after an idle moment.
TBF_BURST = 3028


class LinkError(Exception):
    pass


def missing_tools() -> list[str]:
    """What this machine lacks to build the link (empty: nothing)."""
    missing = [tool for tool in ("ip", "tc", "nft", "ethtool") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root (network namespaces)")
    return missing


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        raise LinkError(f"{' '.join(command)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def remove_stale() -> list[str]:
    """Delete the namespaces of earlier runs whose process no longer exists."""
    removed = []
    for line in _run("ip", "netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        if len(parts) != 3 or parts[0] != PREFIX or not parts[1].isdigit():
            continue
        try:
            os.kill(int(parts[1]), 0)
        except ProcessLookupError:
            # Its peers and bridge may still be running in there (they end on their own only
            # after their media); they were started by that run and are ended with it.
            pids = subprocess.run(
                ["ip", "netns", "pids", name], capture_output=True, text=True, timeout=20
            ).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)
            removed.append(name)
        except PermissionError:
            pass
    return removed


class Link:
    """The three namespaces (``create``/``destroy``) and the knobs of the link between them."""

    def __init__(self) -> None:
        tag = f"{PREFIX}-{os.getpid()}"
        self.sender = f"{tag}-snd"
        self.middle = f"{tag}-mid"
        self.receiver = f"{tag}-rcv"
        self.created: list[str] = []
        self.rate: float | None = None
        self.queue_ms = 200.0

    def create(self) -> None:
        for namespace in (self.sender, self.middle, self.receiver):
            _run("ip", "netns", "add", namespace)
            self.created.append(namespace)
            self.exec_ok(namespace, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            self.exec_ok(namespace, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
            self.exec_ok(namespace, "ip", "link", "set", "lo", "up")
        for peer, middle_side, address in (
            (self.sender, MIDDLE_TO_SENDER, SENDER_ADDRESS),
            (self.receiver, MIDDLE_TO_RECEIVER, RECEIVER_ADDRESS),
        ):
            _run(
                "ip", "link", "add", PEER_INTERFACE, "netns", peer, "type", "veth",
                "peer", "name", middle_side, "netns", self.middle,
            )  # fmt: skip
            self.exec_ok(peer, "ip", "addr", "add", f"{address}/24", "dev", PEER_INTERFACE)
            self.exec_ok(peer, "ethtool", "-K", PEER_INTERFACE, "tx", "off")
            self.exec_ok(peer, "ip", "link", "set", PEER_INTERFACE, "up")
            self.exec_ok(self.middle, "ip", "link", "set", middle_side, "up")

    def destroy(self) -> None:
        """Delete the namespaces (their veth pairs go with them). Kill their processes first."""
        for namespace in reversed(self.created):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=20)
        self.created.clear()

    def exec_ok(self, namespace: str, *command: str) -> str:
        return _run("ip", "netns", "exec", namespace, *command)

    def command(self, namespace: str, *command: str) -> list[str]:
        """The argv that runs *command* inside *namespace* (``ip netns exec`` execs it: the
        process id is the command's own)."""
        return ["ip", "netns", "exec", namespace, *command]

    # -- rate --------------------------------------------------------------------------------

    def set_rate(self, bits_per_second: float, *, queue_ms: float | None = None) -> None:
        """Install (or change, keeping the queued packets) the tbf bottleneck."""
        if queue_ms is not None:
            self.queue_ms = queue_ms
        verb = "replace" if self.rate is None else "change"
        self.exec_ok(
            self.middle, "tc", "qdisc", verb, "dev", MIDDLE_TO_RECEIVER, "root", "tbf",
            "rate", f"{int(bits_per_second)}bit", "burst", str(TBF_BURST),
            "latency", f"{self.queue_ms:g}ms",
        )  # fmt: skip
        self.rate = bits_per_second

    def clear_rate(self) -> None:
        subprocess.run(
            self.command(self.middle, "tc", "qdisc", "del", "dev", MIDDLE_TO_RECEIVER, "root"),
            capture_output=True,
            timeout=20,
        )
        self.rate = None

    def qdisc_stats(self) -> dict[str, Any]:
        out = json.loads(
            self.exec_ok(self.middle, "tc", "-s", "-j", "qdisc", "show", "dev", MIDDLE_TO_RECEIVER)
        )
        for entry in out:
            if entry.get("kind") == "tbf":
                return {key: entry.get(key) for key in ("bytes", "packets", "drops", "overlimits")}
        return {}

    # -- random loss and the delivered counter -----------------------------------------------

    def set_receiver_filter(self, loss: float) -> None:
        """(Re)create the receiver's nft table: drop UDP at random with probability *loss*,
        then count what is delivered."""
        subprocess.run(
            self.command(self.receiver, "nft", "delete", "table", "inet", NFT_TABLE),
            capture_output=True,
            timeout=20,
        )
        per_mille = round(loss * 1000)
        drop = (
            f"meta l4proto udp numgen random mod 1000 < {per_mille} counter name dropped drop\n"
            if per_mille
            else ""
        )
        ruleset = (
            f"table inet {NFT_TABLE} {{\n"
            "  counter dropped { }\n"
            "  counter delivered { }\n"
            "  chain input {\n"
            "    type filter hook input priority 0; policy accept;\n"
            f"    {drop}"
            "    meta l4proto udp counter name delivered\n"
            "  }\n"
            "}\n"
        )
        done = subprocess.run(
            self.command(self.receiver, "nft", "-f", "-"),
            input=ruleset,
            capture_output=True,
            text=True,
            timeout=20,
        )
        if done.returncode != 0:
            raise LinkError(f"nft: {done.stderr.strip()}")

    def receiver_counters(self) -> dict[str, int]:
        """``delivered_bytes``, ``delivered_packets``, ``dropped_packets`` so far."""
        out = json.loads(self.exec_ok(self.receiver, "nft", "-j", "list", "counters"))
        counters: dict[str, int] = {}
        for entry in out.get("nftables", []):
            counter = entry.get("counter")
            if counter and counter.get("table") == NFT_TABLE:
                counters[f"{counter['name']}_bytes"] = counter["bytes"]
                counters[f"{counter['name']}_packets"] = counter["packets"]
        return counters
