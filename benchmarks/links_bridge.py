"""The userspace half of the impaired link: an Ethernet bridge with a delay line and burst loss.

    ip netns exec MIDDLE python links_bridge.py --sender-side IF --receiver-side IF
                                                [--delay SECONDS] --out LOG.json

``bench_links.py`` starts one per (scenario, stack) in the middle network namespace, between the
sender's and the receiver's veth pairs. This kernel has no ``tc netem``, so the delay has to be
done in userspace; doing it at layer 2 keeps the bridge invisible to both stacks: the peers sit in
one subnet, ARP and ICE see each other's real addresses, and no SDP is rewritten (a UDP relay
would be a NAT in the path and turn every pair into a peer-reflexive one).

Each side is an ``AF_PACKET`` socket bound to one interface. Frames that arrive on one side are
written, after ``--delay``, to the other; the kernel then runs them through that interface's
qdisc (``bench_links`` puts the ``tbf`` bottleneck on the receiver side, so the bridge sees what
the sender offers before the bottleneck trims it). The packet socket also shows our own
transmissions (``PACKET_OUTGOING``), which are skipped, or every frame would loop forever.

Burst loss: the parent writes ``{"bursts": [[t0, t1], ...]}`` (``time.monotonic()`` instants) on
stdin; IPv4 UDP frames from the sender side that arrive inside a burst are dropped, the same
packets the ``nft`` random-loss rule would drop. ``{"quit": true}`` (or end of stdin, or
SIGTERM) writes the log and exits. The log has, for every IPv4 UDP frame from the sender side,
its arrival time and IP length: the sending bitrate, measured on the wire before the bottleneck,
whatever the stack counts in its own statistics.

Standard library only: it runs in the middle namespace, which needs nothing else.
"""

from __future__ import annotations

import argparse
import errno
import heapq
import json
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

ETH_P_ALL = 0x0003
ETHERTYPE_IPV4 = b"\x08\x00"
IPPROTO_UDP = 17
ETHERNET_HEADER = 14


def is_ipv4_udp(frame: bytes) -> bool:
    return (
        len(frame) >= ETHERNET_HEADER + 20
        and frame[12:14] == ETHERTYPE_IPV4
        and frame[ETHERNET_HEADER + 9] == IPPROTO_UDP
    )


class Bridge:
    """Two packet sockets, a delay line between them, a log of what the sender side offers."""

    def __init__(self, sender_side: str, receiver_side: str, delay: float) -> None:
        self.delay = delay
        self.sockets = {
            "forward": _packet_socket(sender_side),  # sender -> receiver: read here
            "reverse": _packet_socket(receiver_side),
        }
        self.bursts: list[tuple[float, float]] = []
        self.offered: list[tuple[float, int]] = []  # (arrival, IP bytes), IPv4 UDP only
        self.counts = {
            "forwarded": 0,
            "reverse_forwarded": 0,
            "dropped_burst": 0,
            "dropped_queue": 0,
            "send_errors": 0,
        }
        self._line: list[tuple[float, int, socket.socket, bytes]] = []
        self._line_order = 0
        self._wake = threading.Condition()
        self._stopping = False

    def start(self) -> None:
        for direction in ("forward", "reverse"):
            threading.Thread(target=self._pump, args=(direction,), daemon=True).start()
        if self.delay > 0:
            threading.Thread(target=self._release, daemon=True).start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()

    def _in_burst(self, moment: float) -> bool:
        return any(start <= moment < end for start, end in self.bursts)

    def _pump(self, direction: str) -> None:
        source = self.sockets[direction]
        destination = self.sockets["reverse" if direction == "forward" else "forward"]
        forward = direction == "forward"
        while True:
            try:
                frame, address = source.recvfrom(65536)
            except OSError:
                return
            if address[2] == socket.PACKET_OUTGOING:
                continue
            moment = time.monotonic()
            if forward and is_ipv4_udp(frame):
                self.offered.append((moment, len(frame) - ETHERNET_HEADER))
                if self.bursts and self._in_burst(moment):
                    self.counts["dropped_burst"] += 1
                    continue
            self.counts["forwarded" if forward else "reverse_forwarded"] += 1
            if self.delay <= 0:
                self._send(destination, frame)
                continue
            with self._wake:
                self._line_order += 1
                heapq.heappush(
                    self._line, (moment + self.delay, self._line_order, destination, frame)
                )
                self._wake.notify()

    def _release(self) -> None:
        while True:
            with self._wake:
                while not self._stopping:
                    if self._line:
                        wait = self._line[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._wake.wait(wait)
                    else:
                        self._wake.wait()
                if self._stopping:
                    return
                _, _, destination, frame = heapq.heappop(self._line)
            self._send(destination, frame)

    def _send(self, destination: socket.socket, frame: bytes) -> None:
        try:
            destination.send(frame)
        except BlockingIOError:
            self.counts["dropped_queue"] += 1
        except OSError as error:
            # ENOBUFS: the receiver side's qdisc (the tbf bottleneck) is full and dropped it.
            if error.errno == errno.ENOBUFS:
                self.counts["dropped_queue"] += 1
            else:
                self.counts["send_errors"] += 1

    def log(self) -> dict[str, Any]:
        return {
            "delay": self.delay,
            "bursts": self.bursts,
            "offered": list(self.offered),
            "counts": self.counts,
        }


def _packet_socket(interface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((interface, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return sock


def main() -> int:
    parser = argparse.ArgumentParser(description="userspace Ethernet bridge with delay and bursts")
    parser.add_argument("--sender-side", required=True, help="interface towards the sender")
    parser.add_argument("--receiver-side", required=True, help="interface towards the receiver")
    parser.add_argument("--delay", type=float, default=0.0, help="one-way delay, both ways (s)")
    parser.add_argument("--out", required=True, help="where the log goes on exit")
    args = parser.parse_args()
    bridge = Bridge(args.sender_side, args.receiver_side, args.delay)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())

    def control() -> None:
        for line in sys.stdin:
            command = json.loads(line)
            if "bursts" in command:
                bridge.bursts = [(float(start), float(end)) for start, end in command["bursts"]]
            if command.get("quit"):
                break
        done.set()

    bridge.start()
    threading.Thread(target=control, daemon=True).start()
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    done.wait()
    bridge.stop()
    Path(args.out).write_text(json.dumps(bridge.log()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
