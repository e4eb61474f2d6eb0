"""SCTP association core to core, in memory, no loss: MB/s and messages/s.

This measures only the pure core (both ends in one thread, packets handed over directly, zero
checksum as negotiated over DTLS unless ``--crc``). It is the ceiling for the full stack, which
adds DTLS, the drivers and the sockets.

    python benchmarks/sctp_core.py [--seconds 2] [--crc] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import time

from trio_rtc.sctp.association import SctpAssociation
from trio_rtc.sctp.events import AssociationEstablished, MessageReceived


def _pair(zero_checksum: bool) -> tuple[SctpAssociation, SctpAssociation]:
    a = SctpAssociation(is_client=True, rng=random.Random(1), zero_checksum=zero_checksum)
    b = SctpAssociation(is_client=False, rng=random.Random(2), zero_checksum=zero_checksum)
    a.connect(0.0)
    established = 0
    for _ in range(10):
        for source, destination in ((a, b), (b, a)):
            for packet in source.datagrams_to_send(0.0):
                destination.receive_datagram(packet, 0.0)
        for core in (a, b):
            while (event := core.next_event()) is not None:
                established += isinstance(event, AssociationEstablished)
    assert established == 2
    return a, b


def run(message_size: int, seconds: float, *, zero_checksum: bool) -> tuple[float, float]:
    """Returns (messages per second, megabytes per second) of delivered payload."""
    a, b = _pair(zero_checksum)
    payload = random.Random(0).randbytes(message_size)
    delivered = 0
    delivered_bytes = 0
    now = 0.0
    window = max(1 << 20, message_size * 4)
    start = time.perf_counter()
    deadline = start + seconds
    rounds = 0
    while True:
        rounds += 1
        if rounds % 16 == 0 and time.perf_counter() > deadline:
            break
        while a.buffered_total < window:
            a.send_message(1, 53, payload, now=now)
        for packet in a.datagrams_to_send(now):
            b.receive_datagram(packet, now)
        while (event := b.next_event()) is not None:
            if type(event) is MessageReceived:
                delivered += 1
                delivered_bytes += len(event.data)
        for packet in b.datagrams_to_send(now):
            a.receive_datagram(packet, now)
        while a.next_event() is not None:
            pass
        now += 0.001
    elapsed = time.perf_counter() - start
    return delivered / elapsed, delivered_bytes / elapsed / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--crc", action="store_true", help="CRC32c instead of zero checksum")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    zero = not args.crc
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    print(f"SCTP core to core, in memory, no loss, zero checksum={zero}")
    for size in (16384, 65536, 100):
        rate, megabytes = run(size, args.seconds, zero_checksum=zero)
        print(f"  {size:>6}-byte messages: {rate:>10,.0f} messages/s  {megabytes:>8.1f} MB/s")
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
