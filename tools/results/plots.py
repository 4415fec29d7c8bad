"""Timeline plots, one picture per direction: the whole trial as arrivals per 10 ms (an outage is a drop to
zero), and a zoom on the fault where each receive gap is drawn at its true length. Each is written as PNG (for
the README and image viewers) and SVG (for the HTML report)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

BIN_MS = 10.0


def _draw(full: Any, zoom: Any, series: list[dict[str, Any]], zoom_ms: tuple[float, float]) -> None:
    """One direction on a pair of axes: arrivals per bin over the whole trial, receive gaps around the fault."""
    restore = None
    for i, s in enumerate(series):
        t = s["t"]
        if not t:
            continue
        label = f"trial {s.get('trial', i + 1)}" if len(series) <= 10 else None
        lo, hi = min(t), max(t)
        edges = [lo + k * BIN_MS for k in range(int((hi - lo) / BIN_MS) + 2)]
        counts = [0] * len(edges)
        for x in t:
            counts[int((x - lo) / BIN_MS)] += 1
        full.step(edges, counts, where="post", linewidth=0.9, alpha=0.7, label=label)
        pts = [(b, b - a) for a, b in itertools.pairwise(t) if zoom_ms[0] <= b <= zoom_ms[1]]
        if pts:
            zoom.vlines([p[0] for p in pts], 0, [p[1] for p in pts], linewidth=1.2, alpha=0.7,
                        color=f"C{i % 10}")
        restore = s.get("restore_ms", restore)
    for ax in (full, zoom):
        ax.axvline(0, color="#c0392b", linestyle="--", linewidth=1.2, label="fault")
        if restore is not None and (ax is full or zoom_ms[0] <= restore <= zoom_ms[1]):
            ax.axvline(restore, color="#27ae60", linestyle="--", linewidth=1.2, label="restore")
        ax.set_xlabel("time since the fault (ms)")
        ax.grid(True, alpha=0.25)
    full.set_ylabel(f"probes received per {BIN_MS:g} ms")
    full.legend(fontsize=7, ncol=2, loc="lower left")
    zoom.set_xlim(*zoom_ms)
    zoom.set_ylabel("receive gap ending here (ms)")


def _save(fig: Any, title: str, out: Path, png: bool = True) -> None:
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    if png:
        fig.savefig(out)
    fig.savefig(out.with_suffix(".svg"))  # sharp text at any zoom, for the HTML report
    plt.close(fig)


def timeline(series: list[dict[str, Any]], title: str, out: Path, zoom_ms: tuple[float, float] = (-30, 120)) -> None:
    """``series``: per trial, ``t`` (arrival times, ms from the fault) and ``restore_ms``."""
    fig, (full, zoom) = plt.subplots(1, 2, figsize=(11, 4), dpi=110, gridspec_kw={"width_ratios": [3, 2]})
    _draw(full, zoom, series, zoom_ms)
    zoom.set_title("around the fault", fontsize=9)
    _save(fig, title, out)


def trial_timeline(directions: dict[str, dict[str, Any]], title: str, out: Path,
                   zoom_ms: tuple[float, float] = (-30, 120)) -> None:
    """One trial, every direction (a row each), as SVG only: the picture a trial's row in the report opens."""
    fig, axes = plt.subplots(len(directions), 2, figsize=(11, 3.2 * len(directions)), dpi=110, squeeze=False,
                             gridspec_kw={"width_ratios": [3, 2]})
    for (name, s), (full, zoom) in zip(directions.items(), axes, strict=True):
        _draw(full, zoom, [s], zoom_ms)
        zoom.set_title(f"{name}, around the fault", fontsize=9)
        full.set_title(name, fontsize=9)
    _save(fig, title, out, png=False)


def scale_chart(points: list[Any], out: Path) -> None:
    """The scale model (results.scale_model): DFZ entries and updates a day against multihomed sites, PI routing
    against the edge approaches, and what id-loc's mapping service takes on instead. Log-log, PNG and SVG."""
    n = [p.sites for p in points]
    fig, (table, churn) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=110)
    table.loglog(n, [p.pi_table for p in points], "o-", label="DFZ entries in every DFZ router, PI routing")
    table.loglog(n, [p.edge_table for p in points], "s--", label="... edge approaches")
    table.loglog(n, [p.mapping_records for p in points], "^:",
                 label="mapping records in total (id-loc; split across servers)")
    table.set(xlabel="multihomed sites", ylabel="entries / records", title="State")
    churn.loglog(n, [p.pi_updates_per_day for p in points], "o-",
                 label="updates/day each DFZ router handles, PI routing")
    churn.loglog(n, [p.edge_updates_per_day for p in points], "s--", label="... edge approaches")
    churn.loglog(n, [p.mapping_queries_per_s * 86_400 for p in points], "^:",
                 label="mapping queries/day in total (id-loc)")
    churn.set(xlabel="multihomed sites", ylabel="per day", title="Churn and lookups")
    for ax in (table, churn):
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("RFC 4177 section 5.1: the cost of N multihomed sites (model; inputs in scale-model.json)")
    fig.tight_layout()
    fig.savefig(out)
    fig.savefig(out.with_suffix(".svg"))
    plt.close(fig)
