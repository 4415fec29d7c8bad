"""The routing approach's BGP (RFC 4177 5.1), rendered as FRR configuration from the plan (pure, like ipmininet).

When a site runs ``routing``, every core and ISP router and that site's exits speak BGP (FRR's zebra and bgpd,
and bfdd where the site asks for BFD). What each session carries:

* exit -> ISP: the site's provider-independent prefix. Backup exits prepend the site's AS once per place in the
  preference order, so the rest of the Internet prefers the primary ISP for inbound traffic.
* ISP -> exit: a default route only (``default-originate``); ISPs prefer customer routes (local-pref 200), as
  transit providers do, so an ISP delivers to its own customer rather than through the core.
* exit <-> exit: iBGP over the fabric with next-hop-self, so the primary exit learns the backup's default and
  repairs outbound traffic by itself when its own session dies.
* ISP <-> core, core <-> core, ISP <-> ISP: plain eBGP, which carries the PI prefix around the core.

The site's ``bgp`` settings (keepalive/hold, BFD) apply to its exit-ISP sessions, on both ends: those are the
sessions a fault can break. Everything else uses RFC 4271's 60/180 s. Two settings are fixed for every session
because they only decide how long a lab waits between trials, not how fast a failure is seen: the connect-retry
timer (1 s instead of 120 s: a session re-establishes soon after a fault is restored) and the minimum route
advertisement interval (0: announcements are not held back; withdrawals are never delayed by FRR anyway).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

from multi6lab.topologies.model import Bfd, Bgp
from multi6lab.topologies.plan import Plan, first_hops, router_adjacency
from multi6lab.vocabulary import Event

FRR_BIN = Path("/usr/lib/frr")
LOG_PRECISION = "log timestamp precision 6"  # microseconds: session changes are dated against the probes
DEFAULT_TIMERS = Bgp().timers  # RFC 4271's keepalive/hold, defined on the model
CUSTOMER_LOCAL_PREF = 200


@dataclass(frozen=True)
class Neighbor:
    address: IPv6Address
    asn: int
    name: str  # the peer's node name, for descriptions and readiness messages
    timers: tuple[int, int] = DEFAULT_TIMERS
    bfd_profile: str | None = None
    default_originate: bool = False  # an ISP toward its customer's exit
    customer: bool = False  # routes learned here get CUSTOMER_LOCAL_PREF
    prepend: int = 0  # times the exit prepends its AS toward this ISP
    next_hop_self: bool = False  # iBGP between exits


@dataclass(frozen=True)
class Router:
    name: str
    asn: int
    router_id: str
    neighbors: tuple[Neighbor, ...]
    networks: tuple[IPv6Network, ...] = ()
    bfd: tuple[tuple[str, Bfd], ...] = ()  # profiles: (name, settings)

    @property
    def daemons(self) -> tuple[str, ...]:
        return ("zebra", "bgpd", "bfdd") if self.bfd else ("zebra", "bgpd")


def routers(plan: Plan) -> dict[str, Router]:
    """Every BGP speaker of the plan, by node name; empty when no site runs the routing approach."""
    topo = plan.topology
    routing = [sp for sp in plan.sites if sp.site.approach.profile.bgp]
    if not routing:
        return {}
    asn = {c.name: c.asn for c in topo.cores} | {i.name: i.asn for i in topo.isps}
    for sp in routing:
        asn |= {e.name: sp.site.asn for e in sp.exits}
    neighbors: dict[str, list[Neighbor]] = {n: [] for n in asn}
    networks: dict[str, list[IPv6Network]] = {n: [] for n in asn}
    profiles: dict[str, list[tuple[str, Bfd]]] = {n: [] for n in asn}
    for lk in plan.links:  # eBGP between directly linked core and ISP routers
        a, b = lk.a, lk.b
        if topo.kinds[a.node] in ("core", "isp") and topo.kinds[b.node] in ("core", "isp"):
            neighbors[a.node].append(Neighbor(b.addrs[0].ip, asn[b.node], b.node))
            neighbors[b.node].append(Neighbor(a.addrs[0].ip, asn[a.node], a.node))
    for sp in routing:
        site = sp.site
        timers = (site.bgp.keepalive_s, site.bgp.hold_s)
        bfd = (f"site-{site.name}", site.bgp.bfd) if site.bgp.bfd else None
        profile = bfd[0] if bfd else None
        inside = {e.name: plan.intf(e.name, e.inside_port).addrs[0].ip for e in sp.exits}
        for place, e in enumerate(sp.exits):
            if site.pi:
                networks[e.name].append(site.pi)
            neighbors[e.name].append(Neighbor(e.isp_address, asn[e.isp], e.isp, timers, profile, prepend=place))
            neighbors[e.isp].append(Neighbor(e.address.ip, site.asn, e.name, timers, profile,
                                             default_originate=True, customer=True))
            neighbors[e.name] += [Neighbor(inside[o.name], site.asn, o.name, next_hop_self=True)
                                  for o in sp.exits if o.name != e.name]
            for node in (e.name, e.isp):
                if bfd and bfd not in profiles[node]:
                    profiles[node].append(bfd)
    index = {n: i + 1 for i, n in enumerate(topo.kinds)}
    return {n: Router(n, asn[n], f"10.255.{index[n] >> 8}.{index[n] & 0xFF}", tuple(neighbors[n]),
                      tuple(networks[n]), tuple(profiles[n]))
            for n in asn}


def configs(r: Router, directory: Path) -> dict[str, str]:
    """The configuration file of each daemon ``r`` runs, keyed by file name, logging into ``directory``."""
    out = {"zebra.conf": f"hostname {r.name}\nlog file {directory / 'zebra.log'} informational\n"
                         f"{LOG_PRECISION}\n"}
    out["bgpd.conf"] = bgpd_conf(r, directory)
    if r.bfd:
        out["bfdd.conf"] = bfdd_conf(r, directory)
    return out


def bgpd_conf(r: Router, directory: Path) -> str:
    lines = [f"hostname {r.name}", f"log file {directory / 'bgpd.log'} informational", LOG_PRECISION, "!",
             f"router bgp {r.asn}", f" bgp router-id {r.router_id}",
             " no bgp ebgp-requires-policy",  # the lab's policies are the route-maps below
             " no bgp network import-check",  # the PI aggregate is announced whatever the RIB holds
             " no bgp default ipv4-unicast", " bgp log-neighbor-changes"]
    for n in r.neighbors:
        lines += [f" neighbor {n.address} remote-as {n.asn}", f" neighbor {n.address} description {n.name}",
                  f" neighbor {n.address} timers connect 1", f" neighbor {n.address} advertisement-interval 0"]
        if n.timers != DEFAULT_TIMERS:
            lines.append(f" neighbor {n.address} timers {n.timers[0]} {n.timers[1]}")
        if n.bfd_profile:
            lines.append(f" neighbor {n.address} bfd profile {n.bfd_profile}")
    lines.append(" address-family ipv6 unicast")
    lines += [f"  network {p}" for p in r.networks]
    for n in r.neighbors:
        lines.append(f"  neighbor {n.address} activate")
        if n.default_originate:
            lines.append(f"  neighbor {n.address} default-originate")
        if n.customer:
            lines.append(f"  neighbor {n.address} route-map CUSTOMER in")
        if n.prepend:
            lines.append(f"  neighbor {n.address} route-map PREPEND{n.prepend} out")
        if n.next_hop_self:
            lines.append(f"  neighbor {n.address} next-hop-self")
    lines += [" exit-address-family", "!"]
    if any(n.customer for n in r.neighbors):
        lines += ["route-map CUSTOMER permit 10", f" set local-preference {CUSTOMER_LOCAL_PREF}", "!"]
    for k in sorted({n.prepend for n in r.neighbors if n.prepend}):
        lines += [f"route-map PREPEND{k} permit 10", f" set as-path prepend {' '.join([str(r.asn)] * k)}", "!"]
    return "\n".join(lines) + "\n"


def bfdd_conf(r: Router, directory: Path) -> str:
    lines = [f"hostname {r.name}", f"log file {directory / 'bfdd.log'} informational", LOG_PRECISION, "!",
             "bfd"]
    for name, b in r.bfd:
        lines += [f" profile {name}", f"  detect-multiplier {b.multiplier}", f"  receive-interval {b.interval_ms}",
                  f"  transmit-interval {b.interval_ms}", " exit"]
    lines += ["exit", "!"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RouteCheck:
    """In steady state, ``node`` forwards ``prefix`` out of ``dev`` (read from the kernel: what packets use).

    The interface, not the next hop: BGP installs a directly connected peer's link-local address."""

    node: str
    prefix: IPv6Network
    dev: str

    def holds(self, ip_route_output: str) -> bool:
        return f" dev {self.dev} " in ip_route_output.replace("\n", " ") + " "


def steady_routes(plan: Plan) -> list[RouteCheck]:
    """What a routing site's preferred state looks like: its primary exit sends out through its own ISP, that
    ISP delivers the PI prefix to it, and every core router sends the PI prefix toward that ISP."""
    out = []
    adj = router_adjacency(plan)
    for sp in plan.sites:
        if sp.site.approach.profile.controlled or sp.site.pi is None:
            continue
        primary = sp.exits[0]
        out += [RouteCheck(primary.name, IPv6Network("::/0"), f"{primary.name}-eth{primary.outside_port}"),
                RouteCheck(primary.isp, sp.site.pi, primary.isp_intf)]
        for core in plan.topology.cores:
            hop = first_hops(core.name, adj).get(primary.isp)
            if hop is not None:
                out.append(RouteCheck(core.name, sp.site.pi, hop[1]))
    return out


@dataclass(frozen=True)
class PathCheck:
    """In steady state, ``node``'s BGP table holds a path for ``prefix`` learned from each AS in ``via``: every
    ISP that carries a routing site and is ``node``'s neighbour has announced it (the backup paths included,
    which arrive after the sessions are Established)."""

    node: str
    prefix: IPv6Network
    via: frozenset[int]

    def missing(self, route_json: dict[str, Any]) -> set[int]:
        """The neighbour ASes ``show bgp ipv6 unicast PREFIX json`` shows no path from."""
        first = set()
        for path in route_json.get("paths") or []:
            hops = str((path.get("aspath") or {}).get("string", "")).split()
            if hops and hops[0].isdigit():
                first.add(int(hops[0]))
        return set(self.via) - first


def expected_paths(plan: Plan) -> list[PathCheck]:
    """Every core router's paths for each routing site's PI prefix: one from each neighbouring ISP that has one
    of the site's exits as a customer."""
    topo = plan.topology
    asn = {i.name: i.asn for i in topo.isps}
    out = []
    for sp in plan.sites:
        if sp.site.approach.profile.controlled or sp.site.pi is None:
            continue
        carriers = {e.isp for e in sp.exits}
        for core in topo.cores:
            neighbours = {lk.other(core.name).node for lk in topo.links_of(core.name)}
            via = frozenset(asn[i] for i in carriers & neighbours)
            if via:
                out.append(PathCheck(core.name, sp.site.pi, via))
    return out


def established(summary: dict[str, Any]) -> set[str]:
    """Peers in state Established, from ``show bgp summary json``."""
    peers = (summary.get("ipv6Unicast") or {}).get("peers") or {}
    return {addr for addr, p in peers.items() if p.get("state") == "Established"}


ADJCHANGE = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)(\.\d+)? .*%ADJCHANGE: neighbor (\S+?)\((\w+)\)"
                       r".* (Up|Down)\b(.*)$")


def session_events(log: str, router: str, exits: set[str], wall_to_mono: float) -> list[dict[str, Any]]:
    """Session changes of the exit-ISP sessions logged by ``router``'s bgpd, as events on the probes' clock.

    FRR dates its log in local wall-clock time; ``wall_to_mono`` is what to add to a Unix time to get
    ``time.monotonic()``. An event names the exit whose session changed, whichever end logged it.
    """
    out = []
    for line in log.splitlines():
        m = ADJCHANGE.match(line)
        if m is None:
            continue
        stamp, frac, _address, peer, state, why = m.groups()
        exit_name = peer if peer in exits else router if router in exits else None
        if exit_name is None or (router in exits and peer in exits):  # iBGP between exits: not a path
            continue
        t = time.mktime(time.strptime(stamp, "%Y/%m/%d %H:%M:%S")) + float(frac or 0) + wall_to_mono
        out.append({"t": t, "event": Event.SESSION_DOWN if state == "Down" else Event.SESSION_UP, "exit": exit_name,
                    "router": router, "peer": peer, "why": why.strip()})
    return out


# zebra's netlink receive buffer (its -s). With the default, a burst of kernel route changes (100,000 deletions
# in one 'ip -batch', multi6lab frr-scale) overran it and zebra never heard of thousands of them.
ZEBRA_NETLINK_BUFFER = 64 * 1024 * 1024


def argv(daemon: str, directory: Path) -> list[str]:
    """How to start one daemon of one node: daemonized, no TCP vty, every socket and file in ``directory``
    (nodes share the file system, so nothing may use FRR's default paths)."""
    cmd = [str(FRR_BIN / daemon), "-d", "-P", "0", "--vty_socket", str(directory), "-z",
           str(directory / "zserv.api"), "-i", str(directory / f"{daemon}.pid"), "-f",
           str(directory / f"{daemon}.conf")]
    if daemon == "bfdd":
        cmd += ["--bfdctl", str(directory / "bfdd.sock")]
    if daemon == "zebra":
        cmd += ["-s", str(ZEBRA_NETLINK_BUFFER)]
    return cmd


def vtysh(directory: Path, command: str) -> list[str]:
    return ["vtysh", "--vty_socket", str(directory), "-c", command]


def vtysh_configure(directory: Path, lines: list[str]) -> list[str]:
    """Change a running daemon's configuration: each line as typed after ``configure terminal``."""
    return ["vtysh", "--vty_socket", str(directory), "-c", "configure terminal", *(a for ln in lines
                                                                                     for a in ("-c", ln))]
