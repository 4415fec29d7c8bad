"""Locator selection, measured (RFC 4177 6.3.2; pure): how a load-sharing site splits flows among its exits
against the weights it was given, and whether hosts follow the address selection policy they were given.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

Z95 = 1.959964  # the normal quantile of a two-sided 95 % interval


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a share of k in n (good near 0 and 1, where the normal one is not)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def split(arrivals: Iterable[Mapping[str, str]], exit_of: Mapping[str, str], weights: Mapping[str, int],
          sent: int) -> dict[str, Any]:
    """Each flow's exit, read off the source locator its datagrams arrived with (``exit_of``: locator ->
    exit), against each exit's expected share ``weight / sum of weights``. A flow whose datagrams arrived
    through two exits was not pinned to one (a select group must keep a flow on one bucket)."""
    seen: dict[int, set[str]] = defaultdict(set)
    for row in arrivals:
        seen[int(row["seq"])].add(exit_of.get(row["source"], "?"))
    pinned = {n: next(iter(e)) for n, e in seen.items() if len(e) == 1}
    counted = len(pinned)
    total = sum(weights.values())
    exits = {}
    for name, w in weights.items():
        k = sum(1 for e in pinned.values() if e == name)
        lo, hi = wilson(k, counted)
        expected = w / total
        exits[name] = {"weight": w, "flows": k, "share": round(k / counted, 4) if counted else None,
                       "share_ci": [round(lo, 4), round(hi, 4)], "expected": round(expected, 4),
                       "within": counted > 0 and lo <= expected <= hi}
    return {"sent": sent, "arrived": len(seen), "lost": sent - len(seen), "split_flows": len(seen) - counted,
            "foreign": sum(1 for e in pinned.values() if e not in weights), "exits": exits}


def policy(selections: Sequence[tuple[float, str]], t_fault: float, t_restore: float,
           preferred: str) -> dict[str, Any]:
    """What a host's kernel selected toward the remote (a new session's source) before a fault on the path of
    its ``preferred`` address, during it and after the restore: how many selections took the preferred
    address before (the policy says: all), how long after the fault the first one avoided it (the site's RA
    deprecating the prefix, then RFC 6724 rule 3), how many went back to it before the restore (none should),
    and how many took it again after."""
    before = [s for t, s in selections if t < t_fault]
    during = [(t, s) for t, s in selections if t_fault <= t < t_restore]
    after = [s for t, s in selections if t >= t_restore]
    moved = next((t for t, s in during if s != preferred), None)
    relapses = sum(1 for t, s in during if moved is not None and t > moved and s == preferred)
    k = sum(1 for s in before if s == preferred)
    return {"before": len(before), "before_preferred": k, "before_ci": [round(x, 4) for x in wilson(k, len(before))],
            "moved_ms": None if moved is None else round((moved - t_fault) * 1000, 1),
            "relapses": relapses, "during": len(during),
            "after": len(after), "after_preferred": sum(1 for s in after if s == preferred)}


def markdown(shares: Mapping[str, Mapping[str, Any]], choices: Mapping[str, Mapping[str, Any]]) -> str:
    """``shares``: :func:`split`'s result per protocol; ``choices``: :func:`policy`'s per host."""
    lines = ["| flows | exit | weight | expected share | flows through it | measured share [95 % interval] | "
             "expected within? |", "|---|---|---|---|---|---|---|"]
    for proto, sh in shares.items():
        for name, e in sh["exits"].items():
            lo, hi = e["share_ci"]
            share = "— (no flow arrived)" if e["share"] is None else f"{e['share']:.3f} [{lo:.3f}, {hi:.3f}]"
            lines.append(f"| {proto.upper()} | {name} | {e['weight']} | {e['expected']:.3f} | {e['flows']} | "
                         f"{share} | {'yes' if e['within'] else 'no'} |")
    lines.append("\n" + "; ".join(f"{proto.upper()}: {sh['sent']} flows sent, {sh['lost']} lost, "
                                  f"{sh['split_flows']} split over two exits" for proto, sh in shares.items()) + ".\n")
    lines += ["| host | selections before the fault | of them from the preferred prefix | first selection "
              "avoiding the failed prefix (ms after the fault) | back on it before the restore | after the restore "
              "from the preferred prefix |", "|---|---|---|---|---|---|"]
    for host, c in choices.items():
        moved = "never" if c["moved_ms"] is None else f"{c['moved_ms']}"
        lines.append(f"| {host} | {c['before']} | {c['before_preferred']} | {moved} | {c['relapses']} | "
                     f"{c['after_preferred']} of {c['after']} |")
    return "\n".join(lines) + "\n"


def draw(path: Path, shares: Mapping[str, Mapping[str, Any]], timelines: Mapping[str, Sequence[tuple[float, bool]]],
         fault_s: float) -> None:
    """Left, each exit's measured share of the flows per protocol (95 % interval) beside the share its weight
    asks for; right, per host, whether each selection took the preferred prefix, against time from the fault."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 2]})
    protos = list(shares)
    names = list(next(iter(shares.values()))["exits"]) if shares else []
    width = 0.8 / max(1, len(protos))
    for j, proto in enumerate(protos):
        for i, name in enumerate(names):
            e = shares[proto]["exits"][name]
            x, share = i - 0.4 + width * (j + 0.5), e["share"] or 0.0
            lo, hi = e["share_ci"]
            left.bar(x, share, width=width * 0.9, color=f"C{j}", alpha=0.75, label=proto.upper() if i == 0 else None)
            left.errorbar(x, share, yerr=[[share - lo], [hi - share]], color="black", capsize=3)
    for i, name in enumerate(names):
        expected = next(iter(shares.values()))["exits"][name]["expected"]
        left.plot([i - 0.45, i + 0.45], [expected] * 2, color="#c0392b", linewidth=2,
                  label="the weight's share" if i == 0 else None)
    weights = next(iter(shares.values()))["exits"] if shares else {}
    left.set_xticks(range(len(names)), [f"{n} (weight {weights[n]['weight']})" for n in names])
    left.set_ylim(0, 1.05)
    left.set_ylabel("share of flows")
    left.set_title("load-share: flows per exit")
    left.legend(fontsize=8)
    for k, (host, series) in enumerate(timelines.items()):
        right.step([t for t, _ in series], [k + (0.8 if p else 0.0) for _, p in series], where="post",
                   linewidth=1.2, label=host)
    right.axvspan(0, fault_s, color="#c0392b", alpha=0.12, label="preferred exit's uplink down")
    right.set_yticks([k + 0.4 for k in range(len(timelines))], list(timelines))
    right.set_xlabel("s from the fault (up: the preferred prefix selected; down: another)")
    right.set_title("RFC 6724 source selection on each host, every 10 ms")
    right.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
