"""What first packets between id-loc sites waited (pure): read off the controllers' events, summarised."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from multi6lab.results.analysis import summary, with_interval
from multi6lab.vocabulary import Event

LABELS = {
    "cold_rtt_ms": "first echo, neither edge knows the other (ms)",
    "warm_rtt_ms": "next echo, everything known (ms)",
    "near_wait_ms": "held at the near edge: identity lookup + rules (ms)",
    "far_wait_ms": "held at the far edge: locator lookup + rules (ms)",
    "plain_rtt_ms": "a plain host's first echo (ms)",
    "plain_wait_ms": "held for the lookup that finds no site (ms)",
}


def waits(events: Iterable[Mapping[str, Any]], start: float, end: float) -> dict[str, float]:
    """Per site, how long the first packet it held in [start, end) waited before it went on."""
    out: dict[str, float] = {}
    for e in sorted((e for e in events if e["event"] == Event.CONTACT_RELEASED and start <= e["t"] < end),
                    key=lambda e: e["t"]):
        out.setdefault(e["site"], float(e["waited_ms"]))
    return out


def summarise(rows: Sequence[Mapping[str, Any]], labels: Mapping[str, str] = LABELS) -> dict[str, Any]:
    """p50/p95 (with their 95 % intervals) and max of every column over the trials; lost echoes counted."""
    return {k: summary([r[k] for r in rows]) for k in labels}


def markdown(stats: Mapping[str, Any], labels: Mapping[str, str] = LABELS) -> str:
    lines = ["| what | p50 [95 % interval] | p95 [95 % interval] | max | no value |", "|---|---|---|---|---|"]
    for k, label in labels.items():
        s = stats.get(k)
        if s is None:
            lines.append(f"| {label} | — | — | — | all |")
            continue
        lines.append(f"| {label} | {with_interval(s, 'p50')} | {with_interval(s, 'p95')} | {s['max']} | "
                     f"{s.get('not_recovered', 0)} |")
    return "\n".join(lines) + "\n"

