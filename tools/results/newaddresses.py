"""What a new address costs a site whose exits translate address by address (nptv6 beyond /48, RFC 6296 3.5;
pure): its first packet's wait for the controller, how many new addresses a second the controller takes in,
and the rules each address adds, at each number of addresses already translated."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from multi6lab.results.analysis import summary, with_interval
from multi6lab.vocabulary import Event


def learned_times(events: Iterable[Mapping[str, Any]], site: str, since: float) -> list[tuple[float, float]]:
    """Each address whose translation the site's controller installed at or after ``since``: when its first
    packet reached the controller and when its rules left (the controller batches a burst into one push, and
    says how long each waited), in order of the latter."""
    return sorted(((e["t"] - e.get("waited_ms", 0.0) / 1000, e["t"]) for e in events
                   if e["event"] == Event.TRANSLATION_LEARNED and e["site"] == site and e["t"] >= since),
                  key=lambda x: x[1])


def rate(learned: Sequence[tuple[float, float]]) -> float | None:
    """New addresses a second over a burst: how many were installed, over the time from the first one's
    packet reaching the controller to the last one's rules leaving it."""
    if not learned:
        return None
    span = max(t for _, t in learned) - min(met for met, _ in learned)
    return round(len(learned) / span, 1) if span > 0 else None


def summarise(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per number of addresses already translated: the first packet's extra round trip (first echo minus the
    next), the plain round trip, the burst's rate and the rules an address adds."""
    out = []
    for active in sorted({r["active"] for r in rows}):
        mine = [r for r in rows if r["active"] == active]
        out.append({"active": active, "probes": len(mine),
                    "first_extra_ms": summary([r["first_ms"] - r["next_ms"] if r["first_ms"] is not None
                                               and r["next_ms"] is not None else None for r in mine]),
                    "next_ms": summary([r["next_ms"] for r in mine]),
                    "rate_per_s": mine[0].get("rate_per_s"), "rules_per_address": mine[0].get("rules_per_address"),
                    "burst": mine[0].get("burst"), "taken": mine[0].get("taken")})
    return out


def markdown(stats: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| addresses translated | first packet's extra wait p50 / p95 ms [95 % interval] | round trip after "
             "it p50 ms | a burst: taken in of sent | new addresses a second (burst) | rules per address (each exit) |",
             "|---|---|---|---|---|---|"]
    for s in stats:
        extra = s["first_extra_ms"]
        taken = f"{s['taken']} of {s['burst']}" if s.get("burst") else "—"
        lines.append(f"| {s['active']:,} | " + (f"{with_interval(extra, 'p50')} / {with_interval(extra, 'p95')}"
                                                 if extra else "—")
                     + f" | {s['next_ms']['p50'] if s['next_ms'] else '—'} | {taken} | {s['rate_per_s'] or '—'} | "
                     f"{s['rules_per_address'] or '—'} |")
    return "\n".join(lines) + "\n"
