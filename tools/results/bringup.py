"""Bring-up and teardown against the lab's size (issue 15; pure): per size, the whole and each step's time
(p50 over repeats), the memory the lab held, and a plot of where the time goes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

from multi6lab.results.analysis import percentile

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def summarise(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per size (``label``, in the order first seen): the median of each timing over its repeats and the
    largest memory figures."""
    out = []
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = [r for r in rows if r["label"] == label]
        steps = list(dict.fromkeys(s for r in mine for s in r["steps"]))
        out.append({
            "label": label, "repeats": len(mine), "nodes": mine[0]["nodes"], "links": mine[0]["links"],
            "up_s": round(percentile([r["up_s"] for r in mine], 50), 2),
            "up_max_s": round(max(r["up_s"] for r in mine), 2),
            "down_s": round(percentile([r["down_s"] for r in mine], 50), 2),
            "steps": {s: round(percentile([r["steps"].get(s, 0.0) for r in mine], 50), 2) for s in steps},
            "memory_mb": round(max(r["memory_kb"] for r in mine) / 1024, 1),
            "left_mb": round(max(r["left_kb"] for r in mine) / 1024, 1),
            "ovs_rss_mb": round(max(r["ovs_rss_kb"] for r in mine) / 1024, 1),
            "controller_rss_mb": round(max(r["controller_rss_kb"] for r in mine) / 1024, 1),
            "hold_s": max(r.get("hold_s", 0.0) for r in mine), "hold_timeouts": held_timeouts(mine)})
    return out


def held_timeouts(rows: Sequence[Mapping[str, Any]]) -> int | None:
    """The most heartbeat timeouts any repeat saw while held after ready (None: not held)."""
    counts = [r["hold_timeouts"] for r in rows if r.get("hold_timeouts") is not None]
    return max(counts) if counts else None


def markdown(stats: Sequence[Mapping[str, Any]], failed: Mapping[str, str] | None = None) -> str:
    lines = ["| lab | nodes | links | ready p50 (max) s | teardown p50 s | slowest step p50 | memory held MB | "
             "ovs-vswitchd MB | controllers MB | left after teardown MB | heartbeat timeouts while held (max) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in stats:
        name, secs = max(s["steps"].items(), key=lambda kv: kv[1]) if s["steps"] else ("—", 0.0)
        lines.append(f"| {s['label']} | {s['nodes']} | {s['links']} | {s['up_s']} ({s['up_max_s']}) | "
                     f"{s['down_s']} | {name} {secs} s | {s['memory_mb']} | {s['ovs_rss_mb']} | "
                     f"{s['controller_rss_mb']} | {s['left_mb']} | {held(s)} |")
    for label, why in (failed or {}).items():
        lines.append(f"| {label} | lab gave up: {why} | | | | | | | | | |")
    return "\n".join(lines) + "\n"


def held(s: Mapping[str, Any]) -> str:
    return "—" if s.get("hold_timeouts") is None else f"{s['hold_timeouts']} in {s['hold_s']:g} s"


def draw(path: Path, stats: Sequence[Mapping[str, Any]], title: str) -> None:
    """Stacked bars: each size's bring-up split into its steps, with its teardown beside."""
    steps = list(dict.fromkeys(k for s in stats for k in s["steps"] if k != "teardown"))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    xs = range(len(stats))
    bottom = [0.0] * len(stats)
    for step in steps:
        ys = [s["steps"].get(step, 0.0) for s in stats]
        ax.bar(xs, ys, bottom=bottom, label=step, width=0.6)
        bottom = [b + y for b, y in zip(bottom, ys, strict=True)]
    ax.plot(xs, [s["down_s"] for s in stats], "k_", markersize=30, label="teardown")
    ax.set_xticks(list(xs), [f"{s['label']}\n{s['nodes']} nodes" for s in stats])
    ax.set_ylabel("seconds (p50 over repeats)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
