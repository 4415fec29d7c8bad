"""RFC 4177 section 5.1's cost measured on a real BGP speaker (issue 15 item 4; pure): N provider-independent
prefixes injected at a routing site's primary exit and carried to the emulated core by FRR; what the core's
BGP holds and how long it takes to learn them and to forget them.

The prefixes are /48s from INJECTED (inside RFC 9637's documentation range, clear of every shipped
topology's space); they enter BGP as kernel routes redistributed by the exit, each a blackhole there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from ipaddress import IPv6Network
from typing import Any

INJECTED = IPv6Network("3fff:f00::/24")
CAPACITY = 2 ** (48 - INJECTED.prefixlen)


def prefixes(n: int) -> Iterator[IPv6Network]:
    """The first ``n`` /48s of INJECTED."""
    if n > CAPACITY:
        raise ValueError(f"{n} prefixes do not fit in {INJECTED} as /48s")
    base = int(INJECTED.network_address)
    for i in range(n):
        yield IPv6Network((base + (i << 80), 48))


def batch(n: int, verb: str) -> str:
    """An ``ip -batch`` file adding (``verb`` add) or deleting (del) the ``n`` prefixes as blackholes."""
    return "".join(f"route {verb} blackhole {p}\n" for p in prefixes(n))


def rib(summary: Mapping[str, Any]) -> tuple[int, int]:
    """(paths, bytes) of the IPv6 unicast BGP table, from ``show bgp summary json``. Its ``ribCount`` counts
    paths, not prefixes: a prefix heard from two neighbours counts twice (Figure 1's core hears each of the
    site's prefixes from both ISPs), so it is no count of what the core knows."""
    s = summary.get("ipv6Unicast") or {}
    return int(s.get("ribCount", 0)), int(s.get("ribMemory", 0))


def held(statistics: Mapping[str, Any]) -> int:
    """Prefixes in the IPv6 unicast BGP table, each once however many neighbours sent it, from
    ``show bgp ipv6 unicast statistics json`` (its ``totalPrefixes``)."""
    tables = statistics.get("ipv6Unicast") or []
    return sum(int(t.get("totalPrefixes", 0)) for t in tables)


def zebra_routes(summary: Mapping[str, Any], kind: str) -> int:
    """How many routes of ``kind`` (kernel, connected, ebgp, ...) zebra's RIB holds, from
    ``show ipv6 route summary json``: where a prefix the kernel has but BGP lacks was lost."""
    return sum(int(r.get("rib", 0)) for r in summary.get("routes") or [] if r.get("type") == kind)


# What zebra logs when the kernel's route messages outran its netlink socket (FRR's zebra(8), -s option).
NETLINK_TROUBLE = re.compile(r"overrun|No buffer space|ENOBUFS|netlink.*(error|fail)", re.IGNORECASE)


def netlink_trouble(log: str, limit: int = 5) -> list[str]:
    """The first ``limit`` lines of a zebra log that say it lost or failed kernel messages."""
    return [line.strip() for line in log.splitlines() if NETLINK_TROUBLE.search(line)][:limit]


def row(n: int, learn_s: float, forget_s: float | None, base: Mapping[str, int], loaded: Mapping[str, int],
        forget_curve: Sequence[Sequence[float]] = (), stuck: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One injection's figures; ``base`` and ``loaded``: the core's counters before and once it holds every
    prefix (``routes``: prefixes, ``paths``, ``rib_bytes``, ``bgpd_kb``, ``zebra_kb``); ``forget_s`` None: the
    withdrawal stalled, and ``forget_curve`` ([s, routes] at the core) and ``stuck`` (what the exit still
    held) say where."""
    grew = {k: loaded[k] - base[k] for k in ("routes", "paths", "rib_bytes", "bgpd_kb", "zebra_kb")}
    return {"prefixes": n, "learn_s": round(learn_s, 3),
            "forget_s": None if forget_s is None else round(forget_s, 3),
            "forget_curve": [list(c) for c in forget_curve], "stuck": None if stuck is None else dict(stuck),
            "learn_per_s": round(n / learn_s) if learn_s > 0 else None, "base": dict(base), "loaded": dict(loaded),
            "grew": grew, "rib_bytes_per_prefix": round(grew["rib_bytes"] / n, 1),
            "rss_bytes_per_prefix": round((grew["bgpd_kb"] + grew["zebra_kb"]) * 1024 / n, 1)}


def markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| PI prefixes injected | learned by the core in s | prefixes/s | forgotten in s | BGP paths per "
             "prefix when learned | BGP table bytes per prefix | bgpd+zebra resident bytes per prefix | "
             "core bgpd / zebra resident MB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lo = r["loaded"]
        forgot = r["forget_s"]
        if forgot is None:
            left = r["forget_curve"][-1] if r.get("forget_curve") else None
            forgot = (f"stalled: {left[1]:,.0f} routes left after {left[0]:.0f} s" if left else "stalled")
        lines.append(f"| {r['prefixes']:,} | {r['learn_s']} | {r['learn_per_s'] or '—'} | {forgot} | "
                     f"{r['grew']['paths'] / r['prefixes']:.2f} | {r['rib_bytes_per_prefix']} | "
                     f"{r['rss_bytes_per_prefix']} | "
                     f"{lo['bgpd_kb'] / 1024:.1f} / {lo['zebra_kb'] / 1024:.1f} |")
    return "\n".join(lines) + "\n"
