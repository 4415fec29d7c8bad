"""What Mobile IPv6's triangle costs (RFC 4177 5.2; pure): the links a host's packets cross to a correspondent
and back, directly or through the home agent, and the round-trip times measured on each path.

Three paths from a mobile host to its correspondent: ``direct`` (plain IPv6 from the care-of address, what
any of the other approaches does), ``home agent`` (bidirectional tunnelling: every packet through the
agent both ways) and ``route optimisation`` (a tunnel straight to the correspondent, once it holds a
binding). The link counts come from the plan; the times from pings (``ping`` prints one ``time=`` per echo).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from multi6lab.results.analysis import summary, with_interval
from multi6lab.topologies.plan import Plan

PATHS = ("direct", "home agent", "route optimisation")
_TIME = re.compile(r"time=([0-9.]+) ms")


def hops(plan: Plan, a: str, b: str) -> int:
    """Links on the shortest path between nodes ``a`` and ``b`` (every node and switch of the plan counts)."""
    adj: dict[str, set[str]] = {}
    for lk in plan.links:
        adj.setdefault(lk.a.node, set()).add(lk.b.node)
        adj.setdefault(lk.b.node, set()).add(lk.a.node)
    seen, queue = {a: 0}, deque([a])
    while queue:
        n = queue.popleft()
        if n == b:
            return seen[n]
        for m in sorted(adj.get(n, ())):
            if m not in seen:
                seen[m] = seen[n] + 1
                queue.append(m)
    raise ValueError(f"no path between {a} and {b}")


def round_trip_links(plan: Plan, host: str, remote: str, home_agent: str) -> dict[str, int]:
    """Links one echo and its reply cross on each path: through the home agent both ways, or not at all."""
    direct = hops(plan, host, remote)
    via = hops(plan, host, home_agent) + hops(plan, home_agent, remote)
    return {"direct": 2 * direct, "home agent": 2 * via, "route optimisation": 2 * direct}


def ping_times(output: str) -> list[float]:
    """The round-trip time of every echo answered, in milliseconds, from ``ping``'s output."""
    return [float(m) for m in _TIME.findall(output)]


def summarise(times: Mapping[str, Sequence[float]], sent: Mapping[str, int],
              links: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """Per path: the links, the echoes sent and answered, and the round trip's p50/p95 with 95 % intervals."""
    return {p: {"links": links[p], "sent": sent[p], "answered": len(times[p]),
                "rtt_ms": summary(list(times[p]), keys=("p50", "p95", "max"), digits=3)}
            for p in PATHS if p in times}


def markdown(stats: Mapping[str, Mapping[str, Any]]) -> str:
    base = stats.get("direct")
    lines = ["| path | links per round trip | echoes answered | RTT p50 [95 % interval] ms | "
             "p95 [95 % interval] ms | p50 over direct |", "|---|---|---|---|---|---|"]
    for p in PATHS:
        s = stats.get(p)
        if s is None:
            continue
        r = s["rtt_ms"]
        extra = (f"+{r['p50'] - base['rtt_ms']['p50']:.3f} ms" if base and r and base["rtt_ms"] and p != "direct"
                 else "—")
        lines.append(f"| {p} | {s['links']} | {s['answered']}/{s['sent']} | {with_interval(r, 'p50')} | "
                     f"{with_interval(r, 'p95')} | {extra} |")
    return "\n".join(lines) + "\n"
