"""SCTP throughput against random loss, next to the Mathis et al. bound for its RTT.

Mathis, Semke, Mahdavi and Ott (1997) showed that a TCP-like congestion control (halve the
window on a loss, grow it by one segment per round trip) cannot do better, on a path with round
trip time RTT and independent loss rate p, than

    throughput <= MSS / RTT * C / sqrt(p),    C = sqrt(3/2) ~ 1.22

SCTP (RFC 9260 §7) uses the same rules, so a reliable, ordered data channel should sit at or
below the curve, approaching its shape as p grows and the transfer is long enough to leave
slow start behind. This script runs N seeded sessions per loss rate on trio_rtc's virtual
network (real ICE, DTLS and SCTP, simulated time), writes every session to a CSV file, prints
a summary table and, if matplotlib is installed, draws ``sctp_vs_loss.png``.

    python examples/research/sctp_vs_loss.py --sessions 20 --size 1000000
    python examples/research/sctp_vs_loss.py --sessions 2 --size 50000 --losses 0.02,0.05

Every number is reproducible from the seeds: run it twice and the CSV is the same apart from
the wall-time column.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

from trio_rtc.testing import BulkTransfer, LinkConditions, Results, Scenario, run_many

# Application bytes per SCTP packet: a 1024-byte message is one DATA chunk, and two do not fit
# in one 1200-byte packet, so every packet carries exactly one (the "MSS" of the bound).
MESSAGE_SIZE = 1024
MATHIS_C = math.sqrt(1.5)


def mathis_bound(mss: float, rtt: float, loss: float) -> float:
    """Bytes/s: the Mathis et al. (1997) ceiling for a TCP-like flow."""
    return mss / rtt * MATHIS_C / math.sqrt(loss)


def scenarios(losses: list[float], rtt: float, size: int) -> list[Scenario]:
    return [
        Scenario(
            f"loss={loss:g}",
            workload=BulkTransfer(size=size, message_size=MESSAGE_SIZE),
            # Half the RTT each way; loss on both directions, as the bound assumes.
            conditions=LinkConditions(delay=rtt / 2, loss=loss),
            time_limit=3600.0,
            parameters={"loss": loss, "rtt": rtt},
        )
        for loss in losses
    ]


def summarize(results: Results, losses: list[float], rtt: float) -> list[dict[str, float]]:
    rows = []
    for loss in losses:
        goodputs = [
            r.metrics["goodput"]
            for r in results
            if r.parameters["loss"] == loss and "goodput" in r.metrics
        ]
        rows.append(
            {
                "loss": loss,
                "sessions": len(goodputs),
                "mean": statistics.fmean(goodputs) if goodputs else math.nan,
                "stdev": statistics.stdev(goodputs) if len(goodputs) > 1 else 0.0,
                "mathis": mathis_bound(MESSAGE_SIZE, rtt, loss),
            }
        )
    return rows


def plot(rows: list[dict[str, float]], rtt: float, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    losses = [row["loss"] for row in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(
        losses,
        [row["mean"] / 1000 for row in rows],
        yerr=[row["stdev"] / 1000 for row in rows],
        fmt="o",
        label="trio_rtc SCTP (mean ± sd)",
    )
    curve = [losses[0] * (losses[-1] / losses[0]) ** (i / 50) for i in range(51)]
    ax.plot(
        curve,
        [mathis_bound(MESSAGE_SIZE, rtt, p) / 1000 for p in curve],
        label="Mathis bound MSS/RTT·1.22/√p",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("loss rate p")
    ax.set_ylabel("goodput (kB/s)")
    ax.set_title(f"Reliable data channel, RTT {rtt * 1000:g} ms")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20, help="seeds per loss rate")
    parser.add_argument("--size", type=int, default=1_000_000, help="bytes per transfer")
    parser.add_argument("--rtt", type=float, default=0.05, help="round-trip time, seconds")
    parser.add_argument("--losses", default="0.005,0.01,0.02,0.05,0.1")
    parser.add_argument("--parallel", type=int, default=1, help="worker processes")
    parser.add_argument("--out", type=Path, default=Path("."), help="directory for the outputs")
    args = parser.parse_args(argv)
    losses = [float(value) for value in args.losses.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    results = run_many(
        scenarios(losses, args.rtt, args.size), range(args.sessions), parallel=args.parallel
    )
    wall = time.perf_counter() - started
    results.to_csv(str(args.out / "sctp_vs_loss.csv"))
    rows = summarize(results, losses, args.rtt)

    print(f"{len(results)} sessions in {wall:.1f} s wall time; {args.size} bytes each")
    print("| loss | sessions | goodput kB/s (mean ± sd) | Mathis bound kB/s | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['loss']:g} | {row['sessions']:.0f} "
            f"| {row['mean'] / 1000:.1f} ± {row['stdev'] / 1000:.1f} "
            f"| {row['mathis'] / 1000:.1f} | {row['mean'] / row['mathis']:.2f} |"
        )
    failed = [r for r in results if r.error]
    if failed:
        print(f"{len(failed)} sessions failed, e.g. seed {failed[0].seed}: {failed[0].error}")
    if plot(rows, args.rtt, args.out / "sctp_vs_loss.png"):
        print(f"plot: {args.out / 'sctp_vs_loss.png'}")
    else:
        print("plot: skipped (install matplotlib to draw sctp_vs_loss.png)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
