"""How closely the lab's links keep the delay they are configured with (pure): ``multi6lab delay-accuracy``.

A stream of 1 kHz probes crosses one delayed link (figure 1's remote link, ``delay_ms`` each way), alone and
beside a TCP bulk flow on the same path. Each probe's one-way transit comes from the probes' own stamps (kernel
receive time at the remote, send time at the host, one monotonic clock for every namespace). The path's own
transit, measured the same way with no delay, is taken off: what is left is the delay the link added. The goal
is the accuracy of netem: every probe delayed within 1 ms of the configured delay at p99, and no reordering
(a fixed delay never reorders).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from multi6lab.results.analysis import percentile

GOAL_MS = 1.0


def one_way_ms(rows: Sequence[Mapping[str, str]]) -> list[float]:
    """Each probe's transit in ms, from a probe receiver's rows (t_sent, t_recv)."""
    return [(float(r["t_recv"]) - float(r["t_sent"])) * 1000 for r in rows]


def reordered(rows: Sequence[Mapping[str, str]]) -> int:
    """Probes that arrived after one sent later than them (rows in arrival order)."""
    out, highest = 0, -1
    for r in rows:
        seq = int(r["seq"])
        if seq < highest:
            out += 1
        highest = max(highest, seq)
    return out


def cell(delay_ms: float, transit: Sequence[float], base: Sequence[float], sent: int, reorders: int) -> dict[str, Any]:
    """One configured delay under one load: the delay achieved (transit less the path's own median) at p50 and
    p99, its error against the configuration, the jitter it added (p99 - p50 beyond the path's own), loss and
    reordering."""
    own = percentile(base, 50)
    added = [t - own for t in transit]
    p50, p99 = percentile(added, 50), percentile(added, 99)
    return {"delay_ms": delay_ms, "probes": len(transit), "lost": sent - len(transit), "reordered": reorders,
            "achieved_p50_ms": round(p50, 3), "achieved_p99_ms": round(p99, 3),
            "error_p50_ms": round(p50 - delay_ms, 3), "error_p99_ms": round(p99 - delay_ms, 3),
            "jitter_added_ms": round((p99 - p50) - (percentile(base, 99) - own), 3),
            "meets_goal": abs(p99 - delay_ms) <= GOAL_MS and abs(p50 - delay_ms) <= GOAL_MS and reorders == 0}


def summarise(measured: Mapping[str, Any], bulk_mbit: float
              ) -> tuple[list[dict[str, Any]], dict[str, list[float]], dict[float, Any]]:
    """From what ``experiments.delayaccuracy.measure`` read (by "DELAY/alone", "DELAY/bulk", "DELAY/line"): a cell per
    configured delay and load, each against the path's own transit under the same load; those transits; and
    the delay line's own account per delay."""
    base = {load: one_way_ms(measured[f"0/{load}"][0]) for load in ("alone", "bulk")}
    cells, line = [], {}
    for key, value in measured.items():
        delay, load = float(key.split("/")[0]), key.split("/")[1]
        if load == "line":
            if value:
                line[delay] = value
        elif delay:
            rows, sent = value
            cells.append({**cell(delay, one_way_ms(rows), base[load], sent, reordered(rows)),
                          "load": f"TCP bulk flow, {bulk_mbit:g} Mbit/s" if load == "bulk" else "probes alone"})
    return cells, base, line


def markdown(cells: Sequence[Mapping[str, Any]], mechanism: str | None, base: Mapping[str, Sequence[float]]) -> str:
    """The table; ``base``: the path's own one-way transits with no delay, by load ("alone", "bulk")."""
    own = "; ".join(f"{load} p50 {percentile(b, 50):.3f} ms, p99 {percentile(b, 99):.3f} ms"
                    for load, b in base.items())
    lines = [f"Delay: {mechanism or 'none (no link was delayed)'}. The path's own one-way transit with no delay "
             f"({own}) is taken off below, under the same load.", "",
             "| configured ms | load | probes | achieved p50 ms | achieved p99 ms | error p99 ms | jitter added ms "
             "| reordered | lost | within 1 ms at p99 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        lines.append(f"| {c['delay_ms']:g} | {c['load']} | {c['probes']} | {c['achieved_p50_ms']:.3f} | "
                     f"{c['achieved_p99_ms']:.3f} | {c['error_p99_ms']:+.3f} | {c['jitter_added_ms']:.3f} | "
                     f"{c['reordered']} | {c['lost']} | {'yes' if c['meets_goal'] else 'no'} |")
    return "\n".join(lines) + "\n"


def line_table(line: Mapping[float, Sequence[Mapping[str, Any]]]) -> str:
    """The delay line's own account per configured delay (both loads, every daemon of the lab): how late its
    verdicts left after each packet was due, and how long the kernel held a packet before the daemon read it
    (the daemon counts the hold from the kernel's receive stamp, so this lag is not added to the delay)."""
    if not line:
        return ""
    rows = ["", "The delay line's own account (its verdict daemons, both loads):", "",
            "| configured ms | packets held | verdict late p50 / p99 / max ms | read after the kernel's stamp p99 ms |",
            "|---|---|---|---|"]
    for delay, daemons in sorted(line.items()):
        late = " / ".join(f"{max(d.get(f'late_ms_{k}', 0.0) for d in daemons):.3f}" for k in ("p50", "p99", "max"))
        lag = [d["read_lag_ms_p99"] for d in daemons if "read_lag_ms_p99" in d]
        rows.append(f"| {delay:g} | {sum(d.get('released', 0) for d in daemons)} | {late} | "
                    f"{f'{max(lag):.3f}' if lag else 'not stamped by the kernel'} |")
    return "\n".join(rows) + "\n"
