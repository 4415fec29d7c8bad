"""Does a long run stay what it was at its start? Pure: resource samples and outages in, a verdict out.

A run samples what a leak would grow after every trial (rules and groups on the site's switches, processes in
the lab's namespaces, network namespaces on the machine, the controllers' and ovs-vswitchd's resident
memory, the controllers' open files). Over hundreds of failovers in one lab (``make soak``), each counter
must stay flat, and the outages of the last failovers must agree with those of the first: a controller that
slows down as its tables or caches grow shows up as a later p95, not as a crash.

Flat means: the median of the last window is within a tolerance of the median of the first window. Counters
must match exactly (a rule or a process more is a leak); memory may move by a few per cent (allocators and
caches settle), and its growth per 100 trials is given so a reader can judge a slow leak. Outages agree when
the 95 % intervals of the two windows' p95 overlap; with too few trials for an interval, the verdict says so
instead of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from multi6lab.results.analysis import percentile
from multi6lab.results.intervals import quantile_interval

WINDOW = 100  # failovers compared at each end of a soak (fewer in a shorter run: half of it)
MEMORY_TOLERANCE = 0.05  # a resident size may settle by this share without counting as growth
MEMORY_FLOOR_KB = 2048  # ... or by this much, for small processes
MEMORY = ("controller_rss_kb", "ovs_rss_kb")


def _median(xs: Sequence[float]) -> float:
    return percentile(xs, 50)


def _slope_per_100(ys: Sequence[float]) -> float:
    """Least-squares growth per 100 samples."""
    n = len(ys)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(ys) / n
    sxx = sum((i - mx) ** 2 for i in range(n))
    return 100 * sum((i - mx) * (y - my) for i, y in enumerate(ys)) / sxx


def _p95(xs: Sequence[float]) -> dict[str, Any]:
    if not xs:
        return {"p95": None, "p95_ci": [None, None], "n": 0}
    lo, hi = quantile_interval(xs, 0.95)
    return {"p95": round(percentile(xs, 95), 2), "p95_ci": [lo, hi], "n": len(xs)}


def verdict(samples: Sequence[Mapping[str, float]], outages: Mapping[str, Sequence[float | None]],
            window: int = WINDOW) -> dict[str, Any]:
    """``samples``: one mapping per trial, taken after it; ``outages``: per direction, each trial's outage
    (None: no value)."""
    if not samples:
        return {"trials": 0, "flat": None, "outages": {}}
    w = max(1, min(window, len(samples) // 2))
    first, last = samples[:w], samples[-w:]
    counters: dict[str, Any] = {}
    grew = []
    for key in sorted(set().union(*samples)):
        a = _median([s[key] for s in first if key in s])
        b = _median([s[key] for s in last if key in s])
        entry: dict[str, Any] = {"first": a, "last": b}
        if key in MEMORY:
            entry["growth_per_100_trials"] = round(_slope_per_100([s[key] for s in samples if key in s]), 1)
            flat = b - a <= max(MEMORY_TOLERANCE * a, MEMORY_FLOOR_KB)
        else:
            flat = b <= a
        entry["flat"] = flat
        if not flat:
            grew.append(key)
        counters[key] = entry
    return {"trials": len(samples), "window": w, "counters": counters, "flat": not grew, "grew": grew,
            "outages": {d: _compare(xs, w) for d, xs in outages.items()}}


def _compare(outages: Sequence[float | None], w: int) -> dict[str, Any]:
    """p95 of the first and the last ``w`` outages, and whether their 95 % intervals overlap."""
    first = _p95([x for x in outages[:w] if x is not None])
    last = _p95([x for x in outages[-w:] if x is not None])
    (a_lo, a_hi), (b_lo, b_hi) = first["p95_ci"], last["p95_ci"]
    agree = None if None in (a_lo, a_hi, b_lo, b_hi) else a_lo <= b_hi and b_lo <= a_hi  # None: too few trials
    return {"first": first, "last": last, "agree": agree}


def _ms(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def _p95_text(w: Mapping[str, Any]) -> str:
    """'10.4 ms [9.9, —]': the p95 of a window and its 95 % interval."""
    if w["p95"] is None:
        return "—"
    lo, hi = w["p95_ci"]
    return f"{w['p95']:.1f} ms [{_ms(lo)}, {_ms(hi)}]"


def describe(v: Mapping[str, Any]) -> str:
    """One paragraph for the terminal and the README."""
    if not v.get("trials"):
        return "no trials"
    c = v["counters"]
    parts = [f"{k} {e['first']:g} -> {e['last']:g}" + (" (grew)" if not e["flat"] else "")
             for k, e in c.items() if k not in MEMORY]
    mem = [f"{k} {e['first']:g} -> {e['last']:g} kB ({e['growth_per_100_trials']:+g} kB/100 trials)"
           for k, e in c.items() if k in MEMORY]
    said = {True: "agree", False: "DISAGREE", None: "too few trials for intervals"}
    out = [f"{d} outage p95 first {_p95_text(o['first'])}, last {_p95_text(o['last'])}: "
           + (said[o["agree"]] if o["first"]["n"] and o["last"]["n"] else "no outage values to compare")
           for d, o in v["outages"].items()]
    return (f"{v['trials']} trials, first and last {v['window']} compared: " + ", ".join(parts + mem)
            + f"; {'flat' if v['flat'] else 'NOT flat: ' + ', '.join(v['grew'])}. " + "; ".join(out) + ".")
