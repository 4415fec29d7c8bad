"""An ISP outage that hits N sites at once (issue 15; pure): each site's outage, pooled over sites and trials
per N, with intervals, a table and a curve of p50 and p95 against N."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

from multi6lab.results.analysis import summary, with_interval

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def summarise(rows: Sequence[Mapping[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per N (``rows``: one per site and trial, with ``n``, ``outage_ms`` and ``reason``): the outage's p50 and
    p95 with their 95 % intervals over every site of every trial, the slowest site's outage per trial (what
    the last site to rehome waited), and how many site-trials did not recover."""
    out: dict[int, dict[str, Any]] = {}
    for n in sorted({int(r["n"]) for r in rows}):
        mine = [r for r in rows if int(r["n"]) == n]
        trials = sorted({int(r["trial"]) for r in mine})
        worst = []
        for t in trials:
            outs = [r["outage_ms"] for r in mine if int(r["trial"]) == t]
            worst.append(None if any(o is None for o in outs) else max(outs))
        out[n] = {"site_trials": len(mine), "trials": len(trials),
                  "outage_ms": summary([r["outage_ms"] for r in mine], [r.get("reason") for r in mine]),
                  "slowest_site_ms": summary(worst),
                  "not_recovered": sum(1 for r in mine if r["outage_ms"] is None)}
    return out


def markdown(stats: Mapping[int, Mapping[str, Any]], failed: Mapping[int, str] | None = None) -> str:
    """The table; ``failed``: the site counts whose lab gave up, and why (after the trials it finished)."""
    lines = ["| sites hit | site-trials | outage p50 [95 % interval] ms | p95 [95 % interval] ms | max ms | "
             "slowest site per trial, p50 ms | not recovered |", "|---|---|---|---|---|---|---|"]
    for n in sorted({*stats, *(failed or {})}):
        s = stats.get(n)
        if s is not None:
            o, w = s["outage_ms"], s["slowest_site_ms"]
            lines.append(f"| {n} | {s['site_trials']} | {with_interval(o, 'p50')} | {with_interval(o, 'p95')} | "
                         f"{o['max'] if o else '—'} | {w['p50'] if w else '—'} | {s['not_recovered']} |")
        if n in (failed or {}):
            lines.append(f"| {n} | lab gave up: {(failed or {})[n]} | | | | | |")
    return "\n".join(lines) + "\n"


def draw(path: Path, stats: Mapping[int, Mapping[str, Any]], title: str) -> None:
    """p50 and p95 of the outage against the number of sites the outage hits, with their intervals."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ns = [n for n, s in stats.items() if s["outage_ms"]]
    for key, colour in (("p50", "C0"), ("p95", "C3")):
        ys = [stats[n]["outage_ms"][key] for n in ns]
        lo = [y - (stats[n]["outage_ms"][f"{key}_ci"][0] if stats[n]["outage_ms"][f"{key}_ci"][0] is not None
                   else y) for n, y in zip(ns, ys, strict=True)]
        hi = [(stats[n]["outage_ms"][f"{key}_ci"][1] if stats[n]["outage_ms"][f"{key}_ci"][1] is not None else y) - y
              for n, y in zip(ns, ys, strict=True)]
        ax.errorbar(ns, ys, yerr=[lo, hi], marker="o", capsize=3, color=colour, label=f"outage {key}")
    ax.set_xlabel("sites the ISP outage hits at once")
    ax.set_ylabel("ms")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
