"""The comparison of approaches side by side (pure): a table and a bar chart from scenario summaries."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib

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
    text = f"{o['p50']:.1f} / {o['p95']:.1f}"
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
    parts = [f"out {_outage(m['outbound'])}", f"in {_outage(m['inbound'])}", tcp_text,
             f"new {ns['p50']:.0f} ms" if ns else "new —"]
    for d, steps in (m.get("steps") or {}).items():
        parts.append(f"{d[:-5] if d.endswith('bound') else d} repair "
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
                 "began. id-loc: each direction's repair by its edge, p50 of detection + decision + rule "
                 "installation ('—': that edge had nothing to repair).")
    return "\n".join(lines) + "\n"


def as_json(rows: list[str], faults: list[str], cells: dict[tuple[str, str], dict[str, Any]],
            origin: dict[str, Any] | None = None) -> dict[str, Any]:
    """The comparison's data; ``origin``: its provenance (lab.provenance), as each cell's summary has its own."""
    return {"rows": rows, "faults": faults, "provenance": origin,
            "cells": [{"row": r, "fault": f, "summary": cells[(r, f)]} for r in rows for f in faults
                      if (r, f) in cells]}


def chart(rows: list[str], faults: list[str], cells: dict[tuple[str, str], dict[str, Any]], out: Path,
          cap_ms: float = 1000.0) -> None:
    """Grouped bars of outage p95 per direction; a direction that never recovered is drawn hatched at the time
    its fault was restored (a lower bound on its outage), or at ``cap_ms`` when that is unknown."""
    width_per_fault = max(4.2, 0.8 * len(rows))  # room for every row's label
    fig, axes = plt.subplots(1, len(faults), figsize=(width_per_fault * len(faults), 5.4), dpi=110, sharey=True)
    axes = axes if len(faults) > 1 else [axes]
    width = 0.38
    for ax, f in zip(axes, faults, strict=True):
        for d, (direction, color) in enumerate((("outbound", "#2c7fb8"), ("inbound", "#f03b20"))):
            for i, r in enumerate(rows):
                s = cells.get((r, f))
                if s is None or "error" in s:
                    continue
                m = s["metrics"][direction]
                o = m["outage_ms"]
                value, hatch = (o["p95"], None) if o else (restore_ms(m) or cap_ms, "//")
                ax.bar(i + (d - 0.5) * width, max(value, 0.1), width, color=color if hatch is None else "white",
                       edgecolor=color, hatch=hatch, label=direction if i == 0 else None)
                ax.text(i + (d - 0.5) * width, max(value, 0.1) * 1.08, "n/r" if hatch else f"{value:.0f}",
                        ha="center", fontsize=7)
        ax.set_title(f, fontsize=10)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([r.replace(" × ", "\n") for r in rows], fontsize=7, rotation=35, ha="right",
                           rotation_mode="anchor")
        ax.set_yscale("log")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("outage p95 (ms, log scale)")
    axes[0].legend(fontsize=8)
    fig.suptitle("RFC 4177 approaches on the same faults (p95 over trials; hatched n/r: not recovered before "
                 "the fault was restored, drawn at that time)", fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
