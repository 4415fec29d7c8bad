"""A lab's Mobile IPv6 agents (:mod:`multi6lab.mobility.agent`): which node runs which role with which
arguments (pure, from the plan), and what their events say about the lab's state.

Each host of a mobility site runs a mobile node; the home agent's remote runs the home agent; every other
remote runs a correspondent when a site uses route optimisation. Each host shares a fresh random key with the
home agent per run, kept in the run's ``keys/`` folder as the id-loc sites' mapping keys are.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

from multi6lab.topologies.addressing import first64, home_agent_address
from multi6lab.topologies.plan import HostPlan, Plan, SitePlan
from multi6lab.vocabulary import Event

AGENT = [sys.executable, "-m", "multi6lab.mobility.agent"]


@dataclass(frozen=True)
class MobileHost:
    """What the lab needs to know of one mobile node."""

    host: str
    site: str
    home: IPv6Address
    addresses: tuple[IPv6Address, ...]  # one through each exit, the site's first exit's first
    route_optimisation: bool

    @property
    def preferred(self) -> IPv6Address:
        """Its care-of address when all is well."""
        return self.addresses[0]


def mobility_sites(plan: Plan) -> list[SitePlan]:
    return [sp for sp in plan.sites if sp.site.approach.profile.home_address]


def mobile_hosts(plan: Plan) -> list[MobileHost]:
    return [MobileHost(h.name, sp.site.name, _home(h),
                       tuple(h.addresses[e.name] for e in sp.exits), sp.site.mobility.route_optimisation)
            for sp in mobility_sites(plan) for h in sp.hosts]


def _home(h: HostPlan) -> IPv6Address:
    assert h.home is not None, f"{h.name} is a mobility site's host: its plan gives it a home address"
    return h.home


def correspondents(plan: Plan) -> list[str]:
    """The remotes a mobile node talks to (every remote but the home agent's)."""
    ha = plan.topology.home_agent
    return [r.name for r in plan.topology.remotes if ha is None or r.name != ha.node]


def events_path(workdir: Path, node: str) -> Path:
    return workdir / f"mobility-{node}.events.jsonl"


def new_keys(plan: Plan) -> dict[str, str]:
    """A fresh secret per mobile host, shared with the home agent (hex)."""
    return {m.host: os.urandom(20).hex() for m in mobile_hosts(plan)} if plan.topology.home_agent else {}


def agents(plan: Plan, workdir: Path, keys: Mapping[str, str]) -> dict[str, list[str]]:
    """Each node's agent command line; the key files named here are written by :func:`write_keys`."""
    sites = mobility_sites(plan)
    if not sites:
        return {}
    ha = plan.topology.home_agent
    peers = [str(plan.address(r)) for r in correspondents(plan)]
    ro = [sp for sp in sites if sp.site.mobility.route_optimisation]
    lifetime = min((sp.site.mobility.binding_lifetime_s for sp in ro), default=420)
    out: dict[str, list[str]] = {}
    for sp in sites:
        prefixes = ",".join(str(first64(e.delegation)) for e in sp.exits)
        for h in sp.hosts:
            dev = plan.intfs(h.name)[0].name
            argv = [*AGENT, "mobile-node", "--dev", dev, "--node", h.name, "--events",
                    str(events_path(workdir, h.name)), "--home", str(_home(h)),
                    "--prefixes", prefixes,
                    "--correspondents", ",".join(peers),
                    "--binding-lifetime", str(sp.site.mobility.binding_lifetime_s)]
            if ha is not None:
                argv += ["--home-agent", str(home_agent_address(ha)), "--key-file", str(key_path(workdir, h.name))]
            if sp.site.mobility.route_optimisation:
                argv.append("--route-optimisation")
            out[h.name] = argv
    if ha is not None:
        out[ha.node] = [*AGENT, "home-agent", "--dev", plan.intfs(ha.node)[0].name, "--node", ha.node,
                        "--events", str(events_path(workdir, ha.node)), "--address", str(home_agent_address(ha)),
                        "--home", str(ha.home), "--keys", str(workdir / "keys" / "mobility-home-agent.json")]
    if ro:
        for r in correspondents(plan):
            out[r] = [*AGENT, "correspondent", "--dev", plan.intfs(r)[0].name, "--node", r, "--events",
                      str(events_path(workdir, r)), "--address", str(plan.address(r)),
                      "--binding-lifetime", str(lifetime)]
    return out


def key_path(workdir: Path, host: str) -> Path:
    return workdir / "keys" / f"mobility-{host}.key"


def write_keys(plan: Plan, workdir: Path, keys: Mapping[str, str]) -> None:
    """Each host's key in its own file, and the home agent's table of them (home address -> key)."""
    if not keys:
        return
    d = workdir / "keys"
    d.mkdir(exist_ok=True, mode=0o700)
    homes = {m.host: m.home for m in mobile_hosts(plan)}
    for host, secret in keys.items():
        path = key_path(workdir, host)
        path.touch(mode=0o600)
        path.write_text(secret + "\n")
    table = d / "mobility-home-agent.json"
    table.touch(mode=0o600)
    table.write_text(json.dumps({str(homes[h]): k for h, k in keys.items()}))


def ready_problem(plan: Plan, events: Iterable[Mapping[str, Any]]) -> str | None:
    """What keeps the mobile nodes from their steady state, or None. Steady: each uses its preferred care-of
    address (its home address when that is an exit address) and every binding it needs was acknowledged after
    it moved there: the home agent's, and with route optimisation the correspondents' (with a home agent) or
    fresh tokens for its other addresses (without one: what a failover's update will need)."""
    hosts = mobile_hosts(plan)
    if not hosts:
        return None
    with_agent = plan.topology.home_agent is not None
    peers = {str(plan.address(r)) for r in correspondents(plan)}
    state: dict[str, dict[str, Any]] = {m.host: {"moved": None, "acks": set(), "bound": set(), "tested": set()}
                                        for m in hosts}
    for e in events:
        s = state.get(str(e.get("node")))
        if s is None:
            continue
        ev = e["event"]
        if ev == Event.MOBILITY_MOVED:
            s.update(moved=e["care_of"], acks=set(), bound=set())
        elif ev == Event.MOBILITY_REGISTERED:
            s["acks"].add(e["care_of"])
        elif ev == Event.MOBILITY_BOUND and e.get("role") == "mobile_node" and e.get("lifetime_s"):
            s["bound"].add((e["correspondent"], e["care_of"]))
        elif ev == Event.MOBILITY_TESTED:
            s["tested"].add((e["correspondent"], e["address"]))
    for m in hosts:
        s = state[m.host]
        want = str(m.preferred if with_agent else m.home)
        if s["moved"] != want:
            return f"{m.host}'s mobile node is not on its care-of address {want} (it is on {s['moved']})"
        if with_agent and want not in s["acks"]:
            return f"{m.host}'s home agent has not acknowledged care-of address {want}"
        if m.route_optimisation and with_agent and not {(p, want) for p in peers} <= s["bound"]:
            return f"{m.host} is not yet bound at every correspondent with care-of address {want}"
        if m.route_optimisation and not with_agent and not {(p, str(a)) for p in peers
                                                             for a in m.addresses} <= s["tested"]:
            return f"{m.host} does not hold a keygen token for each of its addresses from every correspondent"
    return None
