"""Model -> a pure description of the network to build (the Topo): nodes, links, addresses, commands.

Like a Mininet ``Topo`` it is plain data, and like ipmininet it renders each node's configuration (addresses,
static routes, sysctls, BCP 38 filters) as text, so all of it is tested without root. The emulator only runs
what this module says; the controller reads the same plan to know ports, MACs and addresses.

Routing is deliberately static and aggregated (RFC 4177 5.3): ISPs route their whole PA prefix, the core
routes each ISP's PA toward it, and a customer's delegation points at the site exit's link address. When an
exit link fails, nothing in the routing system repairs it; the site must rehome. The exception is a site of
the ``routing`` approach (RFC 4177 5.1): its exits are routers, and BGP (:mod:`multi6lab.topologies.frr`) carries its
provider-independent prefix; the PA aggregates stay static, since they never move.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Interface, IPv6Network
from typing import Literal, Protocol

from multi6lab.topologies.addressing import (
    GATEWAY_LL,
    eui64,
    exit_mac,
    first64,
    gateway_mac,
    home_address,
    home_agent_address,
    host_prefixes,
    intf_mac,
    nth_address,
)
from multi6lab.topologies.model import NodeKind, Site, Topology
from multi6lab.topologies.npt import Translator

Role = Literal["host", "router", "switch"]
NO_DPID = 0  # datapath ids start at 1; an exit that is a router has none
ROLE: dict[NodeKind, Role] = {
    "core": "router", "isp": "router", "remote": "host", "host": "host", "exit": "switch", "fabric": "switch",
}


@dataclass(frozen=True)
class Intf:
    node: str
    name: str  # Linux name, node-ethN
    port: int
    mac: str
    addrs: tuple[IPv6Interface, ...] = ()


@dataclass(frozen=True)
class LinkPlan:
    a: Intf
    b: Intf
    bw: float | None
    delay_ms: float | None
    loss_pct: float | None
    jitter_ms: float | None = None

    @property
    def label(self) -> str:
        """How errors and reports name it: both ends."""
        return f"{self.a.node}:eth{self.a.port}--{self.b.node}:eth{self.b.port}"


@dataclass(frozen=True)
class Route:
    """A static route (``ip -6 route``): to ``prefix`` via a next hop and/or out of a device, or unreachable."""

    prefix: IPv6Network
    via: IPv6Address | None = None
    dev: str | None = None
    unreachable: bool = False
    src: IPv6Address | None = None  # the source address the node prefers toward ``prefix``


@dataclass(frozen=True)
class SourceFilter:
    """BCP 38 on an ISP's customer interface: packets sourced outside ``allowed`` are dropped and counted."""

    intf: str
    allowed: tuple[IPv6Network, ...]

    @property
    def counter(self) -> str:
        """The nftables counter of this interface's drops."""
        return "bcp38_" + self.intf.replace("-", "_")


@dataclass(frozen=True)
class AddrLabel:
    """One line of a host's RFC 6724 policy table (``ip addrlabel``)."""

    prefix: IPv6Network
    dev: str
    label: int


@dataclass(frozen=True)
class NodeConfig:
    """How a host or router is configured, as data; :mod:`multi6lab.topologies.shell` renders it."""

    sysctls: tuple[tuple[str, str], ...] = ()  # (key, value), in order
    offload_off: tuple[str, ...] = ()  # interfaces whose tx checksum offload is turned off (netdev datapath)
    addresses: tuple[tuple[str, IPv6Interface], ...] = ()  # (interface, address)
    routes: tuple[Route, ...] = ()
    filters: tuple[SourceFilter, ...] = ()
    labels: tuple[AddrLabel, ...] = ()
    neighbours: tuple[tuple[str, IPv6Address], ...] = ()  # (interface, link peer) resolved once at bring-up
    mptcp: bool = False  # accepts MPTCP subflows (set once the network is ready)
    mptcp_endpoints: tuple[str, tuple[IPv6Address, ...]] | None = None  # (device, one subflow per address)
    loopback: tuple[IPv6Interface, ...] = ()  # mobility: a host's home address, the home agent's own
    bindings: bool = False  # mobility: its agent keeps tunnels toward peers (mobile nodes, correspondents)


@dataclass(frozen=True)
class NodePlan:
    name: str
    kind: NodeKind
    role: Role
    dpid: int | None  # switches only
    config: NodeConfig = NodeConfig()  # hosts and routers
    standalone: bool = False  # a plain learning switch with no controller (the fabric of a routing site)


@dataclass(frozen=True)
class ExitPlan:
    """What the controller needs to run one site exit."""

    name: str
    isp: str
    delegation: IPv6Network
    dpid: int  # NO_DPID: a BGP router (routing approach), not a switch of the controller's
    inside_port: int  # toward the fabric
    outside_port: int  # toward the ISP
    fabric_port: int  # the fabric's port toward this exit
    mac: str  # the exit's MAC on the ISP link
    address: IPv6Interface  # the exit's address on the ISP link (answered by the controller)
    isp_mac: str
    isp_address: IPv6Address
    isp_intf: str  # the ISP router's interface toward this exit
    beacon: IPv6Address  # heartbeat target beyond the ISP router


@dataclass(frozen=True)
class HostPlan:
    """A site's host and every address it is known by, each derived once, here.

    ``addresses`` are what it configures, keyed like :func:`addressing.host_prefixes`; ``locators`` are how the
    world sees it through each exit (RFC 6296's translation of its identity on a translating site, its own
    address from that ISP on a site whose hosts hold one per ISP); ``home`` is a mobility site's host's home
    address (RFC 6275)."""

    name: str
    port: int  # on the fabric
    mac: str
    addresses: dict[str, IPv6Address] = field(compare=False)  # keyed like addressing.host_prefixes
    home: IPv6Address | None = None
    locators: dict[str, IPv6Address] = field(default_factory=dict, compare=False)  # by exit

    @property
    def identity(self) -> IPv6Address | None:
        """Its address in the site's identity prefix (nptv6, id-loc): what its own packets carry inside."""
        return self.addresses.get("identity")

    @property
    def pi(self) -> IPv6Address | None:
        """Its provider-independent address (routing)."""
        return self.addresses.get("pi")


@dataclass(frozen=True)
class SitePlan:
    site: Site
    index: int
    fabric_dpid: int
    gateway_mac: str
    prefixes: dict[str, IPv6Network] = field(compare=False)
    exits: tuple[ExitPlan, ...] = ()
    hosts: tuple[HostPlan, ...] = ()

    def exit(self, name: str) -> ExitPlan:
        return next(e for e in self.exits if e.name == name)


@dataclass(frozen=True)
class Plan:
    topology: Topology
    nodes: tuple[NodePlan, ...]
    links: tuple[LinkPlan, ...]
    sites: tuple[SitePlan, ...]

    def node(self, name: str) -> NodePlan:
        return next(n for n in self.nodes if n.name == name)

    def intf(self, node: str, port: int) -> Intf:
        for lk in self.links:
            for i in (lk.a, lk.b):
                if i.node == node and i.port == port:
                    return i
        raise KeyError(f"{node}:eth{port}")

    def intfs(self, node: str) -> list[Intf]:
        return [i for lk in self.links for i in (lk.a, lk.b) if i.node == node]

    def peer(self, node: str, port: int) -> Intf:
        for lk in self.links:
            if lk.a.node == node and lk.a.port == port:
                return lk.b
            if lk.b.node == node and lk.b.port == port:
                return lk.a
        raise KeyError(f"{node}:eth{port}")

    def address(self, node: str) -> IPv6Address:
        """The first global address of a router or remote host (what probes and pings aim at)."""
        return next(a.ip for i in self.intfs(node) for a in i.addrs)

    def site_by_dpid(self, dpid: int) -> tuple[SitePlan, str] | None:
        return site_by_dpid(self.sites, dpid)

    def reached_at(self, node: str, peer: str) -> tuple[IPv6Address, ...]:
        """How ``peer`` addresses ``node``, most preferred first (RFC 6724's order): a remote or router by its
        address; a site's host by its identity when both are id-loc sites' hosts (their edges map locators),
        by its PI address on a routing site, by its home address on a mobility site, otherwise by its address
        through each exit, the primary first."""
        sp = next((s for s in self.sites if node in s.site.hosts), None)
        if sp is None:
            return (self.address(node),)
        h = next(h for h in sp.hosts if h.name == node)
        far = next((s for s in self.sites if peer in s.site.hosts), None)
        if h.identity is not None and far is not None and sp.site.approach.profile.edges_map \
                and far.site.approach.profile.edges_map:
            return (h.identity,)
        if h.pi is not None:
            return (h.pi,)
        if h.home is not None:
            return (h.home,)
        return tuple(h.locators[e.name] for e in sp.exits)

    @property
    def switches(self) -> list[NodePlan]:
        return [n for n in self.nodes if n.role == "switch"]

    def brief(self, sites: Collection[str]) -> Brief:
        """What the controller process of ``sites`` is given: their plans, their switches' names, where the
        mapping service answers. Nothing of another site (a unit test reads it for one)."""
        own = tuple(sp for sp in self.sites if sp.site.name in sites)
        dpids = {sp.fabric_dpid for sp in own} | {e.dpid for sp in own for e in sp.exits}
        m = self.topology.mapping
        return Brief(self.topology.name, own,
                     tuple((n.name, n.dpid) for n in self.switches if n.dpid is not None and n.dpid in dpids),
                     None if m is None else self.address(m.server), 0 if m is None else m.ttl_s)


@dataclass(frozen=True)
class Brief:
    """One controller process's part of the plan: its own sites' plans (their exits with their ISPs' next hops,
    delegations, identity, hosts), its switches' names, and the mapping service's address and TTL. Whatever it
    knows of another site comes from the mapping service or the locator-pair protocol, as between two
    organisations that share nothing but the Internet."""

    topology: str  # its name, for the logs
    sites: tuple[SitePlan, ...]
    switches: tuple[tuple[str, int], ...]  # (name, datapath id)
    mapping_server: IPv6Address | None = None
    mapping_ttl_s: int = 0

    def site_by_dpid(self, dpid: int) -> tuple[SitePlan, str] | None:
        return site_by_dpid(self.sites, dpid)


class Sites(Protocol):
    """A :class:`Plan` or a :class:`Brief`: what the controller's pure decisions read (their ``sites``)."""

    @property
    def sites(self) -> tuple[SitePlan, ...]: ...


def site_by_dpid(sites: Iterable[SitePlan], dpid: int) -> tuple[SitePlan, str] | None:
    """The site a switch of the controller's belongs to, and ``"fabric"`` or the exit's name.

    A routing site has none: BGP runs its exits and its fabric is a plain learning switch."""
    for sp in sites:
        if sp.site.approach.profile.bgp:
            continue
        if sp.fabric_dpid == dpid:
            return sp, "fabric"
        for e in sp.exits:
            if e.dpid == dpid:
                return sp, e.name
    return None


def roles(topo: Topology) -> dict[str, Role]:
    """Each node's role: by its kind, except that the exits of a routing site are BGP routers."""
    routers = {e.name for s in topo.sites if s.approach.profile.bgp for e in s.exits}
    return {n: "router" if n in routers else ROLE[k] for n, k in topo.kinds.items()}


def build(topo: Topology) -> Plan:
    """The whole plan for ``topo``; pure and deterministic."""
    index = {name: i + 1 for i, name in enumerate(topo.kinds)}
    role = roles(topo)
    dpids = {n: i + 1 for i, n in enumerate(n for n in topo.kinds if role[n] == "switch")}
    standalone = {s.fabric for s in topo.sites if s.approach.profile.bgp}
    addrs = _number_links(topo)
    links = tuple(
        LinkPlan(_intf(lk.a.node, lk.a.port, index, addrs), _intf(lk.b.node, lk.b.port, index, addrs),
                 lk.bw, lk.delay_ms, lk.loss_pct, lk.jitter_ms)
        for lk in topo.links)
    partial = Plan(topo, (), links, ())
    sites = tuple(_site_plan(topo, partial, s, i + 1, dpids) for i, s in enumerate(topo.sites))
    partial = Plan(topo, (), links, sites)
    routes = _routes(topo, partial)
    nodes = tuple(
        NodePlan(n, k, role[n], dpids.get(n),
                 NodeConfig() if role[n] == "switch" else _config(partial, n, k, routes.get(n, []), role),
                 n in standalone)
        for n, k in topo.kinds.items())
    return Plan(topo, nodes, links, sites)


def _mptcp(plan: Plan, name: str, kind: NodeKind) -> tuple[bool, tuple[str, tuple[IPv6Address, ...]] | None]:
    """MPTCP (RFC 4177 5.5): every host and remote accepts subflows; a host of an mptcp site announces one
    subflow endpoint per ISP address (which exist only once RAs have been processed)."""
    if kind not in ("host", "remote") or not any(sp.site.approach.profile.subflows for sp in plan.sites):
        return False, None
    sp = next((s for s in plan.sites if name in s.site.hosts), None)
    if sp is None or not sp.site.approach.profile.subflows:
        return True, None
    h = next(h for h in sp.hosts if h.name == name)
    return True, (plan.intfs(name)[0].name, tuple(h.addresses.values()))


def _intf(node: str, port: int, index: dict[str, int],
          addrs: dict[tuple[str, int], tuple[IPv6Interface, ...]]) -> Intf:
    return Intf(node, f"{node}-eth{port}", port, intf_mac(index[node], port), addrs.get((node, port), ()))


def _number_links(topo: Topology) -> dict[tuple[str, int], tuple[IPv6Interface, ...]]:
    """Addresses of router/remote interfaces: each link gets a /64 from whoever numbers it."""
    pools: dict[str, deque[IPv6Network]] = {}

    def pool(owner: str, prefix: IPv6Network) -> IPv6Network:
        if owner not in pools:
            pools[owner] = deque(prefix.subnets(new_prefix=64) if prefix.prefixlen < 64 else [prefix])
        if not pools[owner]:
            raise ValueError(f"{owner}: no /64 left in {prefix} to number another link")
        return pools[owner].popleft()

    isps = {i.name: i for i in topo.isps}
    cores = {c.name: c for c in topo.cores}
    remotes = {r.name: r for r in topo.remotes}
    # A routing site's exits share its fabric's subnet (the PI /64): ::1, ::2, ... in preference order.
    inside = {e.name: nth_address(first64(s.pi), i + 1)
              for s in topo.sites if s.approach.profile.bgp and s.pi for i, e in enumerate(s.exits)}
    out: dict[tuple[str, int], tuple[IPv6Interface, ...]] = {}
    for lk in topo.links:
        ka, kb = topo.kinds[lk.a.node], topo.kinds[lk.b.node]
        a, b = lk.a, lk.b
        for end, kind in ((a, ka), (b, kb)):
            if kind == "exit" and end.node in inside and "fabric" in (ka, kb):
                out[(end.node, end.port)] = (inside[end.node],)
        if "remote" in (ka, kb):
            r, rtr = (a, b) if ka == "remote" else (b, a)
            net = remotes[r.node].prefix
            out[(rtr.node, rtr.port)] = (nth_address(net, 1),)
            out[(r.node, r.port)] = (nth_address(net, 2),)
        elif "isp" in (ka, kb):
            first, second = (a, b) if ka == "isp" else (b, a)
            net = pool(first.node, isps[first.node].infra)
            out[(first.node, first.port)] = (nth_address(net, 1),)
            out[(second.node, second.port)] = (nth_address(net, 2),)
        elif ka == kb == "core":
            net = pool(a.node, cores[a.node].prefix)
            out[(a.node, a.port)] = (nth_address(net, 1),)
            out[(b.node, b.port)] = (nth_address(net, 2),)
    return out


def _site_plan(topo: Topology, plan: Plan, site: Site, index: int, dpids: dict[str, int]) -> SitePlan:
    prefixes = host_prefixes(site)
    exits = []
    for ei, e in enumerate(site.exits):
        links = topo.links_of(e.name)
        up = next(lk for lk in links if topo.kinds[lk.other(e.name).node] == "isp")
        down = next(lk for lk in links if topo.kinds[lk.other(e.name).node] == "fabric")
        isp_if = plan.intf(up.other(e.name).node, up.other(e.name).port)
        own = plan.intf(e.name, up.end(e.name).port)
        routed = site.approach.profile.bgp  # a real router answers for its own MAC
        exits.append(ExitPlan(
            name=e.name, isp=e.isp, delegation=e.delegation, dpid=dpids.get(e.name, NO_DPID),
            inside_port=down.end(e.name).port, outside_port=up.end(e.name).port,
            fabric_port=down.other(e.name).port, mac=own.mac if routed else exit_mac(index, ei + 1),
            address=own.addrs[0],
            isp_mac=isp_if.mac, isp_address=isp_if.addrs[0].ip, isp_intf=isp_if.name,
            beacon=_beacon(topo, plan, e.isp)))
    hosts = []
    for h in site.hosts:
        lk = topo.links_of(h)[0]
        mac = plan.intf(h, lk.end(h).port).mac
        home = home_address(site, topo.home_agent, mac) if site.approach.profile.home_address else None
        addresses = {k: eui64(p, mac) for k, p in prefixes.items()}
        if site.approach.profile.translates and site.identity is not None:
            locators = {e.name: Translator(site.identity, e.delegation).to_outside(addresses["identity"])
                        for e in site.exits}
        else:
            locators = {e.name: addresses[e.name] for e in site.exits if e.name in addresses}
        hosts.append(HostPlan(h, lk.other(h).port, mac, addresses, home, locators))
    return SitePlan(site, index, dpids[site.fabric], gateway_mac(index), prefixes, tuple(exits), tuple(hosts))


def _beacon(topo: Topology, plan: Plan, isp: str) -> IPv6Address:
    """A heartbeat target one hop beyond the ISP router, so a silent failure inside the ISP is seen."""
    for lk in topo.links_of(isp):
        other = lk.other(isp)
        if topo.kinds[other.node] in ("core", "isp", "remote"):
            return plan.intf(other.node, other.port).addrs[0].ip
    raise ValueError(f"ISP {isp} has no link beyond itself to aim heartbeats at")


DEFAULT = IPv6Network("::/0")


def _routes(topo: Topology, plan: Plan) -> dict[str, list[Route]]:
    """Static routes of every router and remote host."""
    routers = [n for n, k in topo.kinds.items() if k in ("core", "isp")]
    originated: dict[str, list[IPv6Network]] = {n: [] for n in routers}
    for i in topo.isps:
        originated[i.name].append(i.prefix)
    for c in topo.cores:
        originated[c.name].append(c.prefix)
    for r in topo.remotes:
        rtr = topo.links_of(r.name)[0].other(r.name).node
        originated[rtr].append(r.prefix)
    ha = topo.home_agent
    ha_link: tuple[str, Route] | None = None
    if ha is not None:  # its router routes the home prefix to it; every other router toward that router
        rtr = topo.links_of(ha.node)[0].other(ha.node).node
        originated[rtr].append(ha.home)
        peer = plan.intfs(ha.node)[0]
        dev = plan.peer(ha.node, peer.port).name
        ha_link = (rtr, Route(ha.home, peer.addrs[0].ip, dev))
    adj = router_adjacency(plan)
    routes: dict[str, list[Route]] = {n: [] for n in topo.kinds}
    for src in routers:
        first_hop = first_hops(src, adj)
        for dst, hop in sorted(first_hop.items()):
            _peer, dev, via = hop
            for p in originated[dst]:
                routes[src].append(Route(p, via, dev))
        for p in originated[src]:
            if topo.kinds[src] == "isp" or p in [c.prefix for c in topo.cores]:
                routes[src].append(Route(p, unreachable=True))
    if ha_link is not None:
        routes[ha_link[0]].append(ha_link[1])
    for sp in plan.sites:
        for e in sp.exits:
            routes[e.isp].append(Route(e.delegation, e.address.ip, e.isp_intf))
        if sp.site.approach.profile.bgp and sp.site.pi:
            # BGP brings each exit its default route; the PI aggregate must never follow it back out.
            for e in sp.exits:
                routes[e.name].append(Route(sp.site.pi, unreachable=True))
            gateway = plan.intf(sp.exits[0].name, sp.exits[0].inside_port).addrs[0].ip
            for h in sp.hosts:
                routes[h.name].append(Route(DEFAULT, gateway, plan.intfs(h.name)[0].name))
    for r in topo.remotes:
        dev = plan.intfs(r.name)[0].name
        routes[r.name].append(Route(DEFAULT, nth_address(r.prefix, 1).ip, dev))
    if ha is not None:  # a home address without a binding goes nowhere (never back to the core)
        routes[ha.node].append(Route(ha.home, unreachable=True))
    for sp in plan.sites:
        if sp.site.approach.profile.home_address and ha is not None:
            for h in sp.hosts:  # sessions toward the remotes start from the home address
                dev = plan.intfs(h.name)[0].name
                routes[h.name] += [Route(r.prefix, GATEWAY_LL, dev, src=h.home) for r in topo.remotes
                                   if r.name != ha.node]
    return routes


Adjacency = dict[str, list[tuple[str, str, IPv6Address]]]


def router_adjacency(plan: Plan) -> Adjacency:
    """Core and ISP routers: neighbour -> (my interface, neighbour's address), in declaration order."""
    adj: Adjacency = {n: [] for n, k in plan.topology.kinds.items() if k in ("core", "isp")}
    for lk in plan.links:
        if lk.a.node in adj and lk.b.node in adj:
            adj[lk.a.node].append((lk.b.node, lk.a.name, lk.b.addrs[0].ip))
            adj[lk.b.node].append((lk.a.node, lk.b.name, lk.a.addrs[0].ip))
    return adj


def first_hops(src: str, adj: Adjacency) -> dict[str, tuple[str, str, IPv6Address]]:
    """Breadth-first shortest paths: for every other router, the first hop from ``src``."""
    Hop = tuple[str, str, IPv6Address]
    hops: dict[str, Hop] = {}
    queue: deque[tuple[str, Hop | None]] = deque([(src, None)])
    seen = {src}
    while queue:
        node, hop = queue.popleft()
        for nb in adj[node]:
            if nb[0] in seen:
                continue
            seen.add(nb[0])
            h = hop or nb
            hops[nb[0]] = h
            queue.append((nb[0], h))
    return hops


def _config(plan: Plan, name: str, kind: NodeKind, routes: list[Route], role: dict[str, Role]) -> NodeConfig:
    """How one host or router is configured once its links are up."""
    intfs = plan.intfs(name)
    static = _static_host_addresses(plan, name)
    sysctls: list[tuple[str, str]] = []
    if kind in ("core", "isp", "exit"):
        # keep_addr_on_down: a link going down would flush its addresses and BGP sessions never come back.
        sysctls += [("net.ipv6.conf.all.forwarding", "1"), ("net.ipv6.conf.all.keep_addr_on_down", "1")]
    elif kind == "remote":  # a remote's link may be cut (mapping_outage): it must come back as it was
        sysctls.append(("net.ipv6.conf.all.keep_addr_on_down", "1"))
    for i in intfs:
        # Addresses are unique by construction; DAD would only hold a re-enabled link-local address
        # tentative for ~1.6 s, during which Linux sends no neighbor solicitations (measured here).
        sysctls.append((f"net.ipv6.conf.{i.name}.accept_dad", "0"))
        if kind == "host":
            slaac = "0" if static else "1"
            sysctls += [(f"net.ipv6.conf.{i.name}.{knob}", value) for knob, value in
                        (("use_tempaddr", "0"), ("addr_gen_mode", "0"), ("accept_ra", slaac), ("autoconf", slaac))]
    mptcp, endpoints = _mptcp(plan, name, kind)
    loopback, forwards, bindings = _mobility(plan, name, kind)
    if forwards:
        sysctls.append(("net.ipv6.conf.all.forwarding", "1"))
    return NodeConfig(
        sysctls=tuple(sysctls),
        # veth tx checksum offload leaves checksums unfinished on the OVS netdev datapath (docs/architecture.md).
        offload_off=tuple(i.name for i in intfs),
        addresses=tuple((i.name, a) for i in intfs for a in (*i.addrs, *static)),
        routes=tuple(routes), filters=tuple(_bcp38(plan, name)) if kind == "isp" else (),
        labels=tuple(_address_policy(plan, name, intfs[0].name)) if kind == "host" else (),
        neighbours=_neighbours(plan, name, role),
        mptcp=mptcp, mptcp_endpoints=endpoints, loopback=loopback, bindings=bindings)


def _mobility(plan: Plan, name: str, kind: NodeKind) -> tuple[tuple[IPv6Interface, ...], bool, bool]:
    """Mobile IPv6 (RFC 4177 5.2): the addresses a node holds on its loopback, whether it forwards, and whether
    its agent keeps tunnels in the bindings table.

    A host of a mobility site holds its home address on the loopback (it belongs to no link of the site). The
    home agent holds its own address in the home prefix; it forwards what its hosts tunnel to it (toward
    their correspondents) and what correspondents send to a home address (into a tunnel), and its bindings
    are plain routes of its main table. Under route optimisation every other remote may be a correspondent,
    whose bindings, like a mobile node's, apply to every packet but the agent's own."""
    topo = plan.topology
    sp = next((s for s in plan.sites if name in s.site.hosts), None)
    ha = topo.home_agent
    if sp is not None and sp.site.approach.profile.home_address:
        h = next(h for h in sp.hosts if h.name == name)
        return ((IPv6Interface(f"{h.home}/128"),) if ha else (), False, True)
    mobile = [s.site for s in plan.sites if s.site.approach.profile.home_address]
    if not mobile or kind != "remote":
        return (), False, False
    if ha is not None and name == ha.node:
        return (IPv6Interface(f"{home_agent_address(ha)}/128"),), True, False
    return (), False, any(s.mobility.route_optimisation for s in mobile)


def _neighbours(plan: Plan, name: str, role: dict[str, Role]) -> tuple[tuple[str, IPv6Address], ...]:
    """Each numbered link peer that is a Linux node (router, remote, routing exit), to resolve once the network
    is up. A real router's neighbour entries for its peers are long-lived; in a fresh lab the first packet across
    a never-used link waited for neighbour discovery, and on the core's link to a remote about half the runs
    lost the burst behind it and delivered its first packet a second late (measured)."""
    out = []
    for i in plan.intfs(name):
        peer = plan.peer(name, i.port)
        if i.addrs and peer.addrs and role[peer.node] != "switch":
            out.append((i.name, peer.addrs[0].ip))
    return tuple(out)


def _static_host_addresses(plan: Plan, name: str) -> tuple[IPv6Interface, ...]:
    """A routing site's hosts are numbered statically in the PI /64 (no router advertises it to them)."""
    for sp in plan.sites:
        if sp.site.approach.profile.bgp and name in sp.site.hosts:
            h = next(h for h in sp.hosts if h.name == name)
            return tuple(IPv6Interface(f"{a}/64") for a in h.addresses.values())
    return ()


def _address_policy(plan: Plan, host: str, dev: str) -> list[AddrLabel]:
    """The site's source address selection policy (RFC 6724 policy table, as RFC 7078 distributes it).

    A host holding one address per ISP would otherwise break the tie between them arbitrarily. Giving every
    prefix but the primary exit's its own label makes rule 6 (matching label: ::/0 has label 1) prefer the
    primary exit's address; rule 3 (avoid deprecated) still moves new sessions off it when its path dies.
    """
    sp = next((s for s in plan.sites if host in s.site.hosts), None)
    if sp is None or len(sp.exits) == 1 or any(e.name not in sp.prefixes for e in sp.exits):
        return []  # one prefix per ISP only in source-routing and mptcp; a translating site's are its subnets
    return [AddrLabel(sp.prefixes[e.name], dev, 100 + i) for i, e in enumerate(sp.exits) if i > 0]


def _bcp38(plan: Plan, isp_name: str) -> list[SourceFilter]:
    """What each customer interface of an ISP accepts as a source (BCP 38), when the ISP filters at all."""
    if not plan.topology.isp(isp_name).ingress_filter:
        return []
    out = []
    for sp in plan.sites:
        for e in sp.exits:
            if e.isp == isp_name:
                # A routing site's PI prefix is announced to this ISP and so accepted from it too.
                pi = [sp.site.pi] if sp.site.approach.profile.bgp and sp.site.pi else []
                out.append(SourceFilter(e.isp_intf, (e.delegation, e.address.network, *pi)))
    return out


__all__ = ["GATEWAY_LL", "AddrLabel", "ExitPlan", "HostPlan", "Intf", "LinkPlan", "NodeConfig", "NodePlan", "Plan",
           "Route", "SitePlan", "SourceFilter", "build"]
