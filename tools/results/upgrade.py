"""A peer that gains id-loc support mid-session (RFC 4177 6.3.5): what its live sessions saw (pure).

Read off one trial's probe logs and the controllers' events (:mod:`multi6lab.experiments.upgrade` runs it): how long
after the peer's edge came back with support each edge had upgraded the other, whether every UDP probe and
TCP session lived through it, and the round trips of plain traffic (which the edges send through Open
vSwitch's connection tracker) against the same hosts' id-loc traffic (which they do not).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from multi6lab.results import contact
from multi6lab.vocabulary import Event

LABELS = {
    "near_upgrade_ms": "near edge maps the peer: from the peer's restart (ms)",
    "far_upgrade_ms": "the peer's edge maps the near site: from its restart (ms)",
    "udp_lost": "UDP probes lost, both ways (count)",
    "udp_gap_ms": "longest gap between probes, either way (ms)",
    "plain_before_ms": "plain echo before the upgrade: commit only, p50 of the trial (ms)",
    "plain_after_ms": "plain echo after it: commit + lookup, p50 of the trial (ms)",
    "idloc_ms": "id-loc echo after it, same hosts and exits, no tracker (ms)",
    "identity_first_ms": "first echo to the peer's identity once upgraded (ms)",
}


def upgraded_at(events: Iterable[Mapping[str, Any]], site: str, peer: str, since: float) -> float | None:
    """When ``site``'s edge first resolved a record of ``peer`` at or after ``since``."""
    return min((e["t"] for e in events if e["event"] == Event.MAPPING_RESOLVED and e["site"] == site
                and e.get("peer") == peer and e["t"] >= since), default=None)


def udp(received: Sequence[Mapping[str, str]], sent: int) -> tuple[int, float | None]:
    """(probes lost, the longest gap between consecutive arrivals in ms) of one stream of ``sent`` probes."""
    seqs = {int(r["seq"]) for r in received}
    times = sorted(float(r["t_recv"]) for r in received)
    gap = max((b - a for a, b in itertools.pairwise(times)), default=None)
    return sent - len(seqs & set(range(sent))), None if gap is None else round(gap * 1000, 3)


def survived(client: Sequence[Mapping[str, str]], server: Sequence[Mapping[str, str]], after: float) -> bool:
    """A TCP session lived through the upgrade: its client saw no error, and its server received records sent
    after ``after``."""
    return not any(r["event"] == "error" for r in client) and any(float(r["t_sent"]) > after for r in server)


def summarise(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    out = contact.summarise(rows, LABELS)
    out["tcp_sessions"] = sum(r["tcp_sessions"] for r in rows)
    out["tcp_survived"] = sum(r["tcp_survived"] for r in rows)
    return out


def markdown(stats: Mapping[str, Any]) -> str:
    return (contact.markdown(stats, LABELS)
            + f"\nTCP sessions that lived through the upgrade: {stats['tcp_survived']} of {stats['tcp_sessions']}\n")
