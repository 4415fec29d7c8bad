"""RFC 4177 section 5.1's scale argument as numbers: what N multihomed sites cost the default-free zone (DFZ)
with PI routing, and what they cost the mapping service instead with the edge approaches. Pure.

The model is deliberately small, every input is a parameter with its default and where it comes from:

* PI routing: every multihomed site announces ``pi_prefixes`` prefixes of its own, carried by every DFZ
  router. The table grows by that; the update rate grows by the same per-prefix rate as today's table
  (calibration: ``base_updates_per_day / base_table``), plus, for every exit failure at a site, the
  withdrawal and re-announcement that every DFZ router hears (``failovers_per_site_day`` x
  ``updates_per_failover``).
* Edge approaches (nptv6, source routing, MPTCP, id-loc): a site's addresses are its ISPs' PA space, which
  the ISPs aggregate: the DFZ does not change with N. id-loc moves the cost into the mapping service: per site
  the records this project's zone holds (3 from the registry, 2 per locator), one registration per
  ``registrations_per_site_day``, and lookups by every site of each correspondent once a TTL (3 queries
  each, the lookup of docs/mapping-service.md).

* Calibrated on FRR (optional, ``multi6lab frr-scale``): the bytes a route costs a BGP speaker (bgpd and
  zebra resident memory) and the routes it learns a second turn the DFZ's entries and updates into what each
  router holds and how long a day it spends on updates, for a router like the emulated core.

It answers "how does each grow with N", not "what will the Internet look like": the failure and
correspondent rates are assumptions, stated as such, and the calibration is a single year's table. The two
sides are not the same kind of cost: a DFZ entry and update burden *every* router of the default-free zone,
while the mapping service's records and queries are a total that its servers share (and DNS delegates).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

DAY_S = 86_400


@dataclass(frozen=True)
class Inputs:
    base_table: int = 201_000  # IPv6 DFZ entries at the end of 2023 (calibration: docs/experiments/scale-model.md)
    base_updates_per_day: int = 100_000  # IPv6 BGP updates a day seen by one DFZ router, 2023 (same source)
    pi_prefixes: int = 1  # prefixes a PI-multihomed site announces (1: its /48; more with traffic engineering)
    failovers_per_site_day: float = 0.1  # exit failures a site sees a day (assumption)
    updates_per_failover: int = 2  # withdraw + re-announce a DFZ router hears per failure (no path hunting)
    locators: int = 2  # exits per site (id-loc: LP + L64 per locator)
    registrations_per_site_day: float = 1.0  # mapping updates a site sends a day (restarts, renumbering)
    correspondents: int = 100  # id-loc sites each site talks to at any time (assumption)
    ttl_s: int = 300  # how long an edge caches a record
    bytes_per_route: float = 0.0  # a BGP speaker's memory per route (0: not calibrated; frr-scale measures it)
    routes_per_s: float = 0.0  # routes a BGP speaker learns a second (0: not calibrated; frr-scale measures it)

    def problems(self) -> list[str]:
        ints = ("base_table", "base_updates_per_day", "pi_prefixes", "updates_per_failover", "locators",
                "correspondents", "ttl_s")
        out = [f"{k} must be 1 or more" for k in ints if getattr(self, k) < 1]
        out += [f"{k} must be 0 or more" for k in ("failovers_per_site_day", "registrations_per_site_day",
                                                   "bytes_per_route", "routes_per_s")
                if not getattr(self, k) >= 0 or not math.isfinite(getattr(self, k))]
        return out

    @property
    def calibrated(self) -> bool:
        return self.bytes_per_route > 0 and self.routes_per_s > 0


@dataclass(frozen=True)
class Point:
    sites: int
    pi_table: int
    pi_updates_per_day: float
    edge_table: int
    edge_updates_per_day: float
    mapping_records: int
    mapping_updates_per_day: float
    mapping_queries_per_s: float
    pi_memory_mb: float | None = None  # what each DFZ router's BGP holds (calibrated on FRR)
    pi_busy_s_per_day: float | None = None  # how long a day it spends taking in updates (calibrated on FRR)
    edge_memory_mb: float | None = None


def point(n: int, x: Inputs) -> Point:
    per_prefix = x.base_updates_per_day / x.base_table
    pi_new = n * x.pi_prefixes
    pi_table = x.base_table + pi_new
    pi_updates = x.base_updates_per_day + pi_new * per_prefix + n * x.failovers_per_site_day * x.updates_per_failover
    mb = x.bytes_per_route / 2**20
    return Point(
        sites=n,
        pi_table=pi_table,
        pi_updates_per_day=pi_updates,
        edge_table=x.base_table,
        edge_updates_per_day=float(x.base_updates_per_day),
        mapping_records=n * (3 + 2 * x.locators),
        mapping_updates_per_day=n * x.registrations_per_site_day,
        mapping_queries_per_s=n * x.correspondents * 3 / x.ttl_s,
        pi_memory_mb=round(pi_table * mb, 1) if x.calibrated else None,
        pi_busy_s_per_day=round(pi_updates / x.routes_per_s, 1) if x.calibrated else None,
        edge_memory_mb=round(x.base_table * mb, 1) if x.calibrated else None,
    )


def calibration(frr_scale: dict[str, Any]) -> dict[str, float]:
    """``bytes_per_route`` and ``routes_per_s`` from a ``multi6lab frr-scale`` run (its ``frr-scale.json``):
    the largest injection's, where the daemons' fixed memory weighs least."""
    rows = frr_scale.get("rows") or []
    if not rows:
        raise ValueError("the frr-scale results hold no injection")
    big = max(rows, key=lambda r: r["prefixes"])
    if not big.get("learn_per_s"):
        raise ValueError("the frr-scale results have no learning rate")
    return {"bytes_per_route": float(big["rss_bytes_per_prefix"]), "routes_per_s": float(big["learn_per_s"])}


def sweep(x: Inputs, low: int = 1_000, high: int = 10_000_000, per_decade: int = 4) -> list[Point]:
    """Points from ``low`` to ``high`` sites, evenly on a log scale."""
    decades = math.log10(high / low)
    steps = max(1, round(decades * per_decade))
    ns = sorted({round(low * 10 ** (decades * i / steps)) for i in range(steps + 1)})
    return [point(n, x) for n in ns]


def as_json(x: Inputs, points: list[Point]) -> dict[str, Any]:
    return {"inputs": asdict(x), "points": [asdict(p) for p in points]}


def table(points: list[Point]) -> str:
    """The sweep as a markdown table (decades only, so it stays short); calibrated, with each DFZ router's
    memory and update time."""
    calibrated = bool(points) and points[0].pi_memory_mb is not None
    head = ("| multihomed sites | entries in every DFZ router, PI | updates/day each DFZ router handles, PI | "
            "entries in every DFZ router, edge | mapping records in total | mapping queries/s in total |")
    if calibrated:
        head += " BGP memory each DFZ router, PI (edge) MB | time each DFZ router takes in updates, PI, s/day |"
    lines = [head, "|---" * head.count(" |") + "|"]
    for p in points:
        if math.log10(p.sites) % 1 == 0:
            row = (f"| {p.sites:,} | {p.pi_table:,} | {p.pi_updates_per_day:,.0f} | {p.edge_table:,} | "
                   f"{p.mapping_records:,} | {p.mapping_queries_per_s:,.0f} |")
            if calibrated:
                row += f" {p.pi_memory_mb:,} ({p.edge_memory_mb:,}) | {p.pi_busy_s_per_day:,} |"
            lines.append(row)
    return "\n".join(lines) + "\n"
