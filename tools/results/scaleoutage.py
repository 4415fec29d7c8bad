"""An ISP outage that hits N sites at once (issue 15; pure): each site's outage, pooled over sites and trials
per N, with intervals, a table and a curve of p50 and p95 against N; and several runs' curves on one plot."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

from multi6lab.results.analysis import Arrival, percentile, shown, summary, with_interval

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def transits(arrivals: Sequence[Arrival], t_fault: float, gap: tuple[float, float] | None
             ) -> tuple[float | None, float | None]:
    """How long probes spent between sender and receiver: the median before the fault, and the first probe that
    ended the outage (``gap``'s end). When that one took far longer than usual, the outage was a datapath that
    held packets (a stall), not one that took that long to choose the new path. ms."""
    before = [(a.t_recv - a.t_sent) * 1000 for a in arrivals if a.t_recv <= t_fault]
    back = next((a for a in arrivals if gap is not None and a.t_recv == gap[1]), None)
    return (round(percentile(before, 50), 3) if before else None,
            round((back.t_recv - back.t_sent) * 1000, 3) if back else None)


def summarise(rows: Sequence[Mapping[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per N (``rows``: one per site and trial, with ``n``, ``outage_ms`` and ``reason``): the outage's p50 and
    p95 with their 95 % intervals over every site of every trial, the slowest site's outage per trial (what
    the last site to rehome waited), and how many site-trials did not recover."""
    out: dict[int, dict[str, Any]] = {}
    for n in sorted({int(r["n"]) for r in rows}):
        mine = [r for r in rows if int(r["n"]) == n]
        trials = sorted({int(r["trial"]) for r in mine})
        worst, worst_above = [], []
        for t in trials:
            outs = [r for r in mine if int(r["trial"]) == t]
            never = [r.get("above_ms") for r in outs if r["outage_ms"] is None]
            worst.append(None if never else max(r["outage_ms"] for r in outs))
            worst_above.append(max((b for b in never if b is not None), default=None))
        out[n] = {"site_trials": len(mine), "trials": len(trials),
                  "outage_ms": summary([r["outage_ms"] for r in mine], [r.get("reason") for r in mine],
                                       above=[r.get("above_ms") for r in mine]),
                  "slowest_site_ms": summary(worst, above=worst_above),
                  "transit_ms": summary([r.get("transit_ms") for r in mine], keys=("p50",)),
                  "back_transit_ms": summary([r.get("back_transit_ms") for r in mine], keys=("p50", "p95")),
                  "not_recovered": sum(1 for r in mine if r["outage_ms"] is None)}
    return out


def markdown(stats: Mapping[int, Mapping[str, Any]], failed: Mapping[int, str] | None = None) -> str:
    """The table; ``failed``: the site counts whose lab gave up, and why (after the trials it finished)."""
    lines = ["| sites hit | site-trials | outage p50 [95 % interval] ms | p95 [95 % interval] ms | max ms | "
             "slowest site per trial, p50 ms | not recovered | first probe after the outage: in transit p50 ms "
             "(usual) |", "|---|---|---|---|---|---|---|---|"]
    for n in sorted({*stats, *(failed or {})}):
        s = stats.get(n)
        if s is not None:
            o, w = s["outage_ms"], s["slowest_site_ms"]
            lines.append(f"| {n} | {s['site_trials']} | {with_interval(o, 'p50')} | {with_interval(o, 'p95')} | "
                         f"{shown(o, 'max') if o else '—'} | {shown(w, 'p50') if w else '—'} | {s['not_recovered']} | "
                         f"{in_transit(s)} |")
        if n in (failed or {}):
            lines.append(f"| {n} | lab gave up: {(failed or {})[n]} | | | | | | |")
    return "\n".join(lines) + "\n"


def in_transit(s: Mapping[str, Any]) -> str:
    """The first probe after the outage's transit p50, and the usual one in brackets."""
    back, usual = s.get("back_transit_ms"), s.get("transit_ms")
    return f"{back['p50']} ({usual['p50']})" if back and usual else "—"


def with_errors(stats: Mapping[int, Mapping[str, Any]], ns: Sequence[int], key: str
                ) -> tuple[list[float], list[list[float]]]:
    """The outage's ``key`` percentile at each N, and how far its 95 % interval reaches below and above it (an
    open bound reaches nowhere)."""
    ys = [stats[n]["outage_ms"][key] for n in ns]
    cis = [stats[n]["outage_ms"][f"{key}_ci"] for n in ns]
    return ys, [[y - (c[0] if c[0] is not None else y) for y, c in zip(ys, cis, strict=True)],
                [(c[1] if c[1] is not None else y) - y for y, c in zip(ys, cis, strict=True)]]


def draw(path: Path, stats: Mapping[int, Mapping[str, Any]], title: str) -> None:
    """p50 and p95 of the outage against the number of sites the outage hits, with their intervals."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ns = [n for n, s in stats.items() if s["outage_ms"]]
    for key, colour in (("p50", "C0"), ("p95", "C3")):
        ys, yerr = with_errors(stats, ns, key)
        ax.errorbar(ns, ys, yerr=yerr, marker="o", capsize=3, color=colour, label=f"outage {key}")
    ax.set_xlabel("sites the ISP outage hits at once")
    ax.set_ylabel("ms")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def load_run(folder: Path) -> tuple[str, dict[int, dict[str, Any]], dict[int, str]]:
    """A ``multi6lab scale-outage`` run's label, its summary per N and the Ns whose lab gave up. ValueError names
    the file when the folder holds no such run."""
    path = folder / "scale-outage.json"
    try:
        doc = json.loads(path.read_text())
        return (str(doc["approach"]), {int(n): s for n, s in doc["summary"].items()},
                {int(n): str(why) for n, why in doc.get("failed", {}).items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a scale-outage run's results ({exc.__class__.__name__})") from None


def draw_runs(path: Path, runs: Sequence[tuple[str, Mapping[int, Mapping[str, Any]], Mapping[int, str]]],
              goal_ms: float | None = None) -> None:
    """Each run's p95 (solid, with its 95 % interval) and p50 (dashed) against N, one colour per run, on a scale
    that is linear to 10 ms and logarithmic above (the runs span milliseconds to a second); an N whose lab gave
    up is an x on the top edge; ``goal_ms`` a dotted line. The legend sits beside the plot, one line per run."""
    fig, ax = plt.subplots(figsize=(11, 4.8))
    ax.set_xticks(sorted({n for _, stats, failed in runs for n in (*stats, *failed)}))
    for i, (label, stats, failed) in enumerate(runs):
        colour = f"C{i}"
        ns = [n for n in sorted(stats) if stats[n]["outage_ms"]]
        p95, yerr = with_errors(stats, ns, "p95")
        ax.errorbar(ns, p95, yerr=yerr, marker="o", capsize=3, color=colour, label=label)
        ax.plot(ns, [stats[n]["outage_ms"]["p50"] for n in ns], "--", marker=".", color=colour, alpha=0.5)
        if failed:
            ax.plot(sorted(failed), [1.0] * len(failed), "x", color=colour, markersize=10, mew=2,
                    transform=ax.get_xaxis_transform(), clip_on=False)
    if goal_ms is not None:
        ax.axhline(goal_ms, color="k", linestyle=":", linewidth=1, label=f"goal: p95 <= {goal_ms:g} ms")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_xlabel("sites the ISP outage hits at once")
    ax.set_ylabel("outbound outage, ms")
    ax.set_ylim(bottom=0)
    ax.set_title("ISP outage hitting N sites: p95 (solid, 95 % interval), p50 (dashed); x: the lab gave up",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
