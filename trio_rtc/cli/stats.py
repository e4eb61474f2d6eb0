"""``stats``: a live session's ``getStats()`` report as a table, every few seconds.

By default the table holds what says how the connection is doing: the peer connection, the
transport, the candidate pair in use with its two candidates, and the data channels; ``--all``
shows every stats object (every pair checked, the certificates, media streams if any).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import trio

from ..datachannel import RTCDataChannel
from ..pc import RTCPeerConnection
from .session import printable, say

__all__ = ["StatsWatch", "selected_ids", "stats_table"]

#: The order of the types in the table.
TYPE_ORDER = (
    "peer-connection",
    "transport",
    "candidate-pair",
    "local-candidate",
    "remote-candidate",
    "data-channel",
    "certificate",
)


def selected_ids(report: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """The ids of the stats that describe the connection in use (see the module doc)."""
    chosen: set[str] = set()
    for stats_id, stats in report.items():
        kind = stats.get("type")
        if kind in ("peer-connection", "data-channel"):
            chosen.add(stats_id)
        elif kind == "transport":
            chosen.add(stats_id)
            pair_id = stats.get("selectedCandidatePairId")
            pair = report.get(pair_id) if isinstance(pair_id, str) else None
            if pair is not None:
                chosen.add(str(pair_id))
                for key in ("localCandidateId", "remoteCandidateId"):
                    if pair.get(key) in report:
                        chosen.add(str(pair[key]))
    return chosen


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    # Some values come from the peer (its candidates' addresses, its channel labels).
    return printable(value, 64)


def stats_table(report: Mapping[str, Mapping[str, Any]], ids: Iterable[str] | None = None) -> str:
    """The stats objects ``ids`` (default: all) as a table: one block per object, headed by its
    type and id, one line per member."""
    wanted = set(report) if ids is None else set(ids)

    def order(stats_id: str) -> tuple[int, str]:
        kind = str(report[stats_id].get("type"))
        rank = TYPE_ORDER.index(kind) if kind in TYPE_ORDER else len(TYPE_ORDER)
        return rank, stats_id

    rows: list[tuple[str, str]] = []
    for stats_id in sorted(wanted & set(report), key=order):
        stats = report[stats_id]
        rows.append((f"{stats.get('type')}", stats_id))
        for name, value in stats.items():
            if name in ("id", "type", "timestamp") or isinstance(value, dict | list):
                continue
            rows.append((f"  {name}", _value(value)))
    width = max((len(left) for left, _ in rows), default=0)
    lines: list[str] = []
    for left, right in rows:
        if not left.startswith(" ") and lines:
            lines.append("")
        lines.append(f"{left:<{width}}  {right}")
    return "\n".join(lines)


class StatsWatch:
    """The ``stats`` side: prints the table every ``interval`` seconds, ``count`` times (None:
    until interrupted)."""

    def __init__(self, *, interval: float, count: int | None, everything: bool) -> None:
        self.interval = interval
        self.count = count
        self.everything = everything

    async def __call__(self, pc: RTCPeerConnection, channel: RTCDataChannel) -> None:
        say("connected")
        async with trio.open_nursery() as nursery:

            async def drain() -> None:
                # A chat peer may talk to us: read (and drop) its lines so nothing piles up.
                async for _message in channel:
                    pass

            nursery.start_soon(drain)
            shown = 0
            while self.count is None or shown < self.count:
                report = await pc.getStats()
                ids = None if self.everything else selected_ids(report)
                print(stats_table(report, ids), flush=True)
                print(flush=True)
                shown += 1
                if self.count is None or shown < self.count:
                    await trio.sleep(self.interval)
            nursery.cancel_scope.cancel()
