"""The comparison of approaches side by side (pure): a table and a bar chart from scenario summaries."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib

from multi6lab.results.analysis import shown

matplotlib.use("Agg")
import matplotlib.pyplot as plt

Cell = dict[str, Any]  # one scenario summary, keyed by row label and fault label


def restore_ms(m: dict[str, Any]) -> float | None:
    """When the fault of a direction that never recovered was restored (the cap on the wait), from its reason."""
    found = re.search(r"restore at \+(\d+) ms", m.get("reason") or "")
    return float(found.group(1)) if found else None


def _outage(m: dict[str, Any]) -> str:
    o = m["outage_ms"]
    if o is None:
        cap = restore_ms(m)
        return f"not recovered within {cap / 1000:.1f} s" if cap is not None else "not recovered"
    text = f"{shown(o, 'p50', '.1f')} / {shown(o, 'p95', '.1f')}"
    lo, hi = o.get("p95_ci") or [None, None]
    if lo is not None and "p95" not in o.get("censored", ()):
        text += f" [p95 {lo:.1f}–{hi:.1f}]" if hi is not None else f" [p95 ≥ {lo:.1f}]"
    return text + (f" ({o['not_recovered']} n/r)" if o.get("not_recovered") else "")


def cell_text(s: dict[str, Any]) -> str:
    if "error" in s:  # the cell's lab failed; its reason, shortened for a table
        return "failed: " + str(s["error"]).splitlines()[0][:100].replace("|", "/")
    m = s["metrics"]
    tcp = m.get("tcp_sessions")
    ns = m.get("new_session_ms")
    stall = (tcp or {}).get("stall_ms")
    tcp_text = f"TCP {tcp['survived']}/{tcp['total']}" if tcp else "TCP —"
    if stall:
        tcp_text += f", stall p50 {stall['p50']:.0f} ms"
    new = (f"new {shown(ns, 'p50', '.0f')}" + ("" if "p50" in ns.get("censored", ()) else " ms")
           + (f" ({ns['not_recovered']} n/r)" if ns.get("not_recovered") else "")) if ns else "new —"
    parts = [f"out {_outage(m['outbound'])}", f"in {_outage(m['inbound'])}", tcp_text, new]
    if rtt := m.get("rtt_ms"):
        parts.append(f"RTT {rtt['p50']:.1f} ms")
    short = {"outbound": "out", "inbound": "in"}
    flagged = {short[d]: c for d in short if (c := m[d].get("capture_disagreement_ms")) and c["flagged"]}
    if flagged:  # the probes and an independent capture read this cell differently: say so in the cell
        parts.append("capture disagrees: " + ", ".join(f"{d} up to {c['max']} ms in {c['flagged']} trials"
                                                       for d, c in flagged.items()))
    seen = {short[d]: w for d in short if (w := m[d].get("witness"))}
    if seen:  # the independent instrument (results.witness): how far it read this cell from the probes
        deltas = [f"{d} {w['difference_max_ms']} ms" for d, w in seen.items() if w["difference_max_ms"] is not None]
        if deltas:  # a direction neither instrument saw recover has no difference to give
            parts.append("witness Δ max " + ", ".join(deltas))
        for d, w in seen.items():
            if w["over_2ms"]:
                parts.append(f"{d} differs > 2 ms in {w['over_2ms']} trials: {w['explanation']}")
    if str(s.get("fault", "")).startswith("baseline"):  # nothing broke: this row's resolution
        res = [f"{short[d]} {r['p50']:.1f} / {r['p95']:.1f}" for d in short if (r := m[d].get("interarrival_p999_ms"))]
        parts.append("resolution (inter-arrival p99.9 p50 / p95 ms): " + ", ".join(res or ["—"]))
    for d, steps in (m.get("steps") or {}).items():
        parts.append(f"{short[d]} repair "
                     + " + ".join("—" if steps[k] is None else f"{steps[k]['p50']:.0f}"
                                  for k in ("detection_ms", "decision_ms", "install_ms")) + " ms")
    return "<br>".join(parts)


def markdown(rows: list[str], faults: list[str], cells: dict[tuple[str, str], dict[str, Any]]) -> str:
    lines = ["| approach × trigger | " + " | ".join(faults) + " |", "|---|" + "---|" * len(faults)]
    for r in rows:
        lines.append(f"| {r} | " + " | ".join(cell_text(cells[(r, f)]) if (r, f) in cells else "—"
                                               for f in faults) + " |")
    lines.append("")
    lines.append("Cells: outage p50 / p95 in ms per direction (out: site to remote, in: remote to site), "
                 "TCP sessions not reset and their longest stall (a session that only waited for the restore "
                 "survived with a stall of about the fault's length), new-session recovery p50. 'not "
                 "recovered within X s': the direction came back only when the fault was restored, X s after it "
                 "began. [p95 a–b]: its 95 % interval; [p95 ≥ a]: too few trials to bound it from above. "
                 "(k n/r): trials without a value. id-loc: each direction's repair by its edge, p50 of "
                 "detection + decision + rule installation ('—': that edge had nothing to repair). 'no fault': "
                 "nothing broken, so every outage must read 0; its probes' inter-arrival p99.9 is the resolution "
                 "the row's other cells can be read to.")
    return "\n".join(lines) + "\n"


RATIO_FROM_MS = 10.0  # below this round trip an outage in round trips says more about the clock than the path


def _brief(m: dict[str, Any], rtt: float | None, bound: float | None) -> str:
    """A direction's outage in a headline cell: p50 / p95 ms (censored percentiles as '> X'), or '—' when it
    never recovered; its p50 also as a multiple of the row's detection bound, and in round trips where the path
    has one worth counting."""
    o = m["outage_ms"]
    if o is None:
        return "—"
    text = f"{shown(o, 'p50', '.0f')} / {shown(o, 'p95', '.0f')}"
    if "p50" in o.get("censored", ()) or not o["p50"]:
        return text  # a censored p50 is no multiple of anything, and nothing lost is no multiple worth giving
    ratios = [f"{o['p50'] / bound:.1f}× bound"] if bound else []
    ratios += [f"{o['p50'] / rtt:.1f} RTT"] if rtt is not None and rtt >= RATIO_FROM_MS else []
    return text + (f" ({', '.join(ratios)})" if ratios else "")


def headline(rows: list[str], faults: list[str], cells: dict[tuple[str, str], dict[str, Any]]) -> str:
    """The comparison in brief, for the README: per cell the outage p50 / p95 (ms) out and in, and the TCP
    sessions kept; each p50 also as a multiple of the row's detection bound (how long its triggers may take to
    notice a silent failure, ``Scenario.detection_bound_ms``), and at a round trip of 10 ms or more in round
    trips."""
    lines = ["| approach × trigger | " + " | ".join(f for f in faults if not f.startswith("no fault")) + " |"]
    shown_faults = [f for f in faults if not f.startswith("no fault")]
    lines.append("|---|" + "---|" * len(shown_faults))
    for r in rows:
        texts = []
        for f in shown_faults:
            s = cells.get((r, f))
            if s is None or "error" in s:
                texts.append("failed" if s is not None else "—")
                continue
            m, bound = s["metrics"], s.get("detection_bound_ms")
            rtt = (m.get("rtt_ms") or {}).get("p50")
            tcp = m.get("tcp_sessions")
            texts.append(f"out {_brief(m['outbound'], rtt, bound)}<br>in {_brief(m['inbound'], rtt, bound)}"
                         + (f"<br>TCP {tcp['survived']}/{tcp['total']}" if tcp else ""))
        lines.append(f"| {r} | " + " | ".join(texts) + " |")
    return "\n".join(lines) + "\n"


def as_json(rows: list[str], faults: list[str], cells: dict[tuple[str, str], dict[str, Any]],
            origin: dict[str, Any] | None = None) -> dict[str, Any]:
    """The comparison's data; ``origin``: its provenance (lab.provenance), as each cell's summary has its own."""
    return {"rows": rows, "faults": faults, "provenance": origin,
            "cells": [{"row": r, "fault": f, "summary": cells[(r, f)]} for r in rows for f in faults
                      if (r, f) in cells]}


def common_cap(cells: dict[tuple[str, str], dict[str, Any]]) -> float:
    """Where the chart draws "not recovered": twice the largest p95 or restore time of any cell."""
    values = [o["p95"] for s in cells.values() if "error" not in s for d in ("outbound", "inbound")
              if (o := s["metrics"][d]["outage_ms"])]
    values += [r for s in cells.values() if "error" not in s for d in ("outbound", "inbound")
               if (r := restore_ms(s["metrics"][d])) is not None]
    return max(values, default=1000.0) * 2


def chart(rows: list[str], faults: list[str], cells: dict[tuple[str, str], dict[str, Any]], out: Path) -> None:
    """Grouped bars of outage p95 per direction, every fault on one axis, with the p95's 95 % interval as an
    error bar (an upward caret where the trials do not bound it from above). A direction that never recovered
    is drawn hatched at one common cap above every measured value and restore time, so no row's cap reads as
    a measurement."""
    cap = common_cap(cells)
    width_per_fault = max(4.2, 0.8 * len(rows))  # room for every row's label
    fig, axes = plt.subplots(1, len(faults), figsize=(width_per_fault * len(faults), 5.6), dpi=110, sharey=True)
    axes = axes if len(faults) > 1 else [axes]
    width = 0.38
    for ax, f in zip(axes, faults, strict=True):
        for d, (direction, color) in enumerate((("outbound", "#2c7fb8"), ("inbound", "#f03b20"))):
            for i, r in enumerate(rows):
                s = cells.get((r, f))
                if s is None or "error" in s:
                    continue
                o = s["metrics"][direction]["outage_ms"]
                x = i + (d - 0.5) * width
                if o is None or "p95" in o.get("censored", ()):  # p95 falls on a trial that never recovered
                    ax.bar(x, cap, width, color="white", edgecolor=color, hatch="//",
                           label=direction if i == 0 else None)
                    ax.text(x, cap * 1.08, "n/r" if o is None else shown(o, "p95"), ha="center", fontsize=7)
                    continue
                value = max(o["p95"], 0.5)
                ax.bar(x, value, width, color=color, edgecolor=color, label=direction if i == 0 else None)
                lo, hi = o.get("p95_ci") or [None, None]
                if lo is not None:
                    # Bars and whiskers share the axis floor of 0.5 ms, so a 0 ms p95 (a fault this row never
                    # noticed) draws as a stub with no whisker instead of a negative error length.
                    bottom, top = min(max(lo, 0.5), value), max(hi if hi is not None else value, value)
                    ax.errorbar(x, value, yerr=[[value - bottom], [top - value]], fmt="none", ecolor="black",
                                elinewidth=0.8, capsize=2)
                if hi is None:
                    ax.plot(x, value * 1.25, marker="^", color="black", markersize=3)
                label = f"{o['p95']:.0f}" + (f" ({o['not_recovered']} n/r)" if o.get("not_recovered") else "")
                ax.text(x, value * 1.6, label, ha="center", fontsize=7)
        ax.set_title(f, fontsize=10)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([r.replace(" × ", "\n") for r in rows], fontsize=7, rotation=35, ha="right",
                           rotation_mode="anchor")
        ax.set_yscale("log")
        ax.set_ylim(0.5, cap * 3)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("outage p95 (ms, log scale)")
    axes[0].legend(fontsize=8)
    fig.suptitle("RFC 4177 approaches on the same faults: outage p95 over trials with its 95 % interval (^: not "
                 "bounded above by this many trials); hatched n/r: not recovered before the fault was restored, "
                 "drawn at one common cap", fontsize=10, wrap=True)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    fig.savefig(out.with_suffix(".svg"))
    plt.close(fig)
