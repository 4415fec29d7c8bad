"""The controller's decisions, as pure data: (plan, which exits are usable) -> every rule and group.

Nothing here talks OpenFlow; :mod:`multi6lab.controller.app` turns :class:`Rule` and :class:`Group` into FlowMods and
GroupMods, and :func:`diff` says which to send, so a reconnect or restart converges on exactly the desired
state with no stale or duplicate entries. Matches use os-ken's OFPMatch field names.

The site fabric is the hosts' router (gateway MAC, fe80::1); exits rewrite MACs, decrement the hop limit
and (nptv6) translate prefixes (RFC 6296). Approaches:

* ``source-routing`` (RFC 8678): the fabric sends a packet to the exit of the ISP that owns its source
  prefix. If that path is dead, packets still sourced from it go to the controller, which answers ICMPv6
  1/5 and deprecates the prefix in RAs (RFC 8475), so new sessions leave from a live prefix.
* ``nptv6`` (RFC 6296): hosts use identity addresses; the fabric sends them to the preferred live exit (or a
  select group across live exits, ``load-share``); each exit has a fast-failover group per host whose first
  bucket rewrites to that exit's locator and whose next buckets hand the packet back to the fabric, marked
  for another exit, so the data plane moves traffic before the controller hears of a link failure. Beneath
  the plan's hosts, every identity /64 is translated whole (a masked rewrite of the prefix: RFC 6296's
  adjustment sits in the subnet word for a /48), so any address in the site's subnets leaves and comes back;
  the fabric delivers those by the neighbours the controller resolves (:mod:`multi6lab.controller.neighbours`).
* ``id-loc`` (RFC 4177 5.4, 6): as nptv6 toward ordinary remotes; between two id-loc sites both edges also
  map the *remote* identity to the locator of the far exit of the active locator pair, outbound, and map
  both locators back to identities inbound, so hosts only ever see identities and sessions survive a pair
  change. Which pair is active comes from :mod:`multi6lab.controller.pairs`. Rules are per identity /64
  pair, and an edge knows of a far site only what reached it: a packet toward an identity (fc00::/7, never
  routed) whose site it has no record of, toward a far /64 it has no rules for, or from a source it cannot
  place, goes to the controller, which looks it up in the mapping service and installs the rules
  (:mod:`multi6lab.controller.contacts`); a source no site holds is an ordinary one ("plain", RFC 4177 6.3.5's
  fallback) from then on. A plain source's connections are committed to Open vSwitch's connection tracker
  with a mark, so that when it turns out to be a far site's locator after all (the site registered later),
  the sessions that ran in plain IPv6 stay plain and only new ones are mapped (``_upgraded_rules``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from multi6lab.controller.mapping import MappingService, Record
from multi6lab.controller.neighbours import Neighbour
from multi6lab.controller.packets import PAIR_PORT
from multi6lab.topologies.addressing import GATEWAY_LL, edge_address
from multi6lab.topologies.knot import DNS_PORT
from multi6lab.topologies.npt import Translator
from multi6lab.topologies.plan import ExitPlan, Plan, SitePlan, Sites
from multi6lab.vocabulary import ExitPolicy, Trigger

ETH_IPV6 = 0x86DD
ICMPV6 = 58
UDP = 17
TCP = 6
ICMP6_DEST_UNREACH = 1
ICMP6_ECHO_REPLY = 129
ICMP6_RS = 133
ICMP6_NS = 135
ICMP6_NA = 136
OFPP_IN_PORT = 0xFFFFFFF8
OFPP_CONTROLLER = 0xFFFFFFFD
MCAST = ("33:33:00:00:00:00", "ff:ff:00:00:00:00")
COOKIE = 0x6D36  # "m6": every rule we install carries it
IDENTITY_SPACE = IPv6Network("fc00::/7")  # id-loc identities are unique local addresses: never routed
MAX_FAR_SUBNETS = 64  # far /64s with rules, per far site (their group ids are numbered by arrival)
CT_ZONE = COOKIE  # the connection-tracking zone of every id-loc site's plain flows (tuples hold identities)
CT_TRACKED = 0x20  # ct_state's +trk bit
PLAIN_MARK = 1  # ct_mark of a connection that ran in plain IPv6

# Priorities, highest first.
P_CONTROL = 1000  # ND, RS, heartbeat replies to the controller
P_ANTISPOOF = 950  # packets from outside claiming a site source
P_MCAST = 900
P_HANDOFF_IDLOC = 860
P_HANDOFF = 850  # a packet an exit handed back to the fabric for another exit
P_HANDOFF_SUBNET = 840  # the same for an address the plan does not list (the whole /64)
P_UPGRADED = 780  # id-loc: from a source found plain and registered since, through the connection tracker
P_IDLOC = 750  # identity-to-identity between id-loc sites: more specific than the nptv6 rules
P_NEIGHBOUR = 745  # fabric: delivery to an address of the site (the plan's, or one it resolved), from anywhere
P_LOOKUP = 740  # id-loc: an identity without a record, or a far /64 without rules, to the controller
P_AVOID = 720  # icmp trigger: a destination an ISP said it cannot reach, steered to another exit
P_ICMP_ERROR = 710  # icmp trigger: an ISP's ICMPv6 unreachable, copied to the controller and delivered
P_PLAIN_OUT = 708  # id-loc: toward a plain (or upgraded) source: committed to the connection tracker
P_PLAIN = 706  # id-loc: a source the mapping service knows no site for, translated as nptv6 does
P_UNPLACED = 705  # id-loc: a source not yet placed (an id-loc site, or plain), to the controller
P_FORWARD = 700
P_SUBNET = 650  # nptv6 translation of a whole identity /64, beneath the plan's hosts
P_RESOLVE = 600  # fabric: a translated packet for an address nobody resolved yet, to the controller
P_DROP = 0  # table-miss: drop, counted in flow stats

Value = Any
Match = tuple[tuple[str, Value], ...]


# -- actions: what a rule or a bucket does, as typed data (the os-ken shell encodes each one) ------------------
@dataclass(frozen=True)
class Action:
    def __lt__(self, other: Action) -> bool:  # rules and groups sort; actions of different kinds must too
        return (type(self).__name__, repr(self)) < (type(other).__name__, repr(other))


@dataclass(frozen=True)
class Output(Action):
    port: int  # OFPP_IN_PORT: back out of the port it came in on


@dataclass(frozen=True)
class ToController(Action):
    """Send the whole packet to the controller (no buffering)."""


@dataclass(frozen=True)
class SetField(Action):
    field: str  # os-ken's OFPMatch field name: eth_src, eth_dst, ipv6_src, ipv6_dst
    value: str


@dataclass(frozen=True)
class SetPrefix(Action):
    """Rewrite the leading bits of an address to ``prefix``, keeping the rest (a masked set-field)."""

    field: str  # ipv6_src or ipv6_dst
    prefix: str  # "2001:db8:1::/64"


@dataclass(frozen=True)
class DecTtl(Action):
    """Decrement the IPv6 hop limit, as a router does."""


@dataclass(frozen=True)
class ToGroup(Action):
    group_id: int


@dataclass(frozen=True)
class CtCommit(Action):
    """Commit the packet's connection (as its addresses read now) to the connection tracker in ``zone`` with
    ct_mark ``mark``, and go on with the next action."""

    zone: int
    mark: int


@dataclass(frozen=True)
class CtLookup(Action):
    """Look the packet's connection up in ``zone`` and resubmit it to table ``table`` with ct_state (+trk) and
    the connection's ct_mark set; the rest of this rule's actions are not applied."""

    zone: int
    table: int = 0


TO_CONTROLLER = ToController()
DEC_TTL = DecTtl()


def match(**fields: Value) -> Match:
    return tuple(sorted(fields.items()))


def ipv6(**fields: Value) -> Match:
    return match(eth_type=ETH_IPV6, **fields)


def icmp6(type_: int, **fields: Value) -> Match:
    return match(eth_type=ETH_IPV6, ip_proto=ICMPV6, icmpv6_type=type_, **fields)


def net(prefix: IPv6Network) -> tuple[str, str]:
    return (str(prefix.network_address), str(prefix.netmask))


@dataclass(frozen=True, order=True)
class Rule:
    dpid: int
    priority: int
    match: Match
    actions: tuple[Action, ...] = ()

    @property
    def key(self) -> tuple[int, int, Match]:
        """What identifies a flow entry to the switch (a strict modify/delete)."""
        return (self.dpid, self.priority, self.match)


@dataclass(frozen=True, order=True)
class Bucket:
    actions: tuple[Action, ...]
    watch_port: int | None = None
    weight: int = 0


@dataclass(frozen=True, order=True)
class Group:
    dpid: int
    group_id: int
    kind: str  # "ff" (fast failover) or "select"
    buckets: tuple[Bucket, ...]


@dataclass(frozen=True)
class RuleSet:
    rules: frozenset[Rule] = frozenset()
    groups: frozenset[Group] = frozenset()

    def for_dpid(self, dpid: int) -> RuleSet:
        return RuleSet(frozenset(r for r in self.rules if r.dpid == dpid),
                       frozenset(g for g in self.groups if g.dpid == dpid))


@dataclass(frozen=True)
class Changes:
    """What to send, in a safe order: groups before the flows that use them, deletions last."""

    add_groups: tuple[Group, ...] = ()
    modify_groups: tuple[Group, ...] = ()
    add_rules: tuple[Rule, ...] = ()
    delete_rules: tuple[Rule, ...] = ()
    delete_groups: tuple[Group, ...] = ()

    def __len__(self) -> int:
        return sum(len(x) for x in (self.add_groups, self.modify_groups, self.add_rules,
                                    self.delete_rules, self.delete_groups))


def diff(installed: RuleSet, want: RuleSet) -> Changes:
    """Minimal changes turning ``installed`` into ``want`` (an ADD with an existing key replaces it)."""
    want_keys = {r.key for r in want.rules}
    have_groups = {(g.dpid, g.group_id): g for g in installed.groups}
    want_groups = {(g.dpid, g.group_id): g for g in want.groups}
    return Changes(
        add_groups=tuple(sorted(g for k, g in want_groups.items() if k not in have_groups)),
        modify_groups=tuple(sorted(g for k, g in want_groups.items() if k in have_groups and have_groups[k] != g)),
        add_rules=tuple(sorted(want.rules - installed.rules)),
        delete_rules=tuple(sorted(r for r in installed.rules if r.key not in want_keys)),
        delete_groups=tuple(sorted(g for k, g in have_groups.items() if k not in want_groups)),
    )


def apply(installed: RuleSet, changes: Changes) -> RuleSet:
    """The state a switch holds after ``changes`` (what a fake flow table does)."""
    rules = {r.key: r for r in installed.rules}
    for r in changes.add_rules:
        rules[r.key] = r
    for r in changes.delete_rules:
        rules.pop(r.key, None)
    groups = {(g.dpid, g.group_id): g for g in installed.groups}
    for g in (*changes.add_groups, *changes.modify_groups):
        groups[(g.dpid, g.group_id)] = g
    for g in changes.delete_groups:
        groups.pop((g.dpid, g.group_id), None)
    return RuleSet(frozenset(rules.values()), frozenset(groups.values()))


@dataclass(frozen=True)
class SitePolicy:
    """Derived facts about one site the rules and the controller both need."""

    plan: SitePlan
    translators: dict[str, Translator] = field(compare=False)  # exit -> identity<->locator (nptv6)

    @classmethod
    def of(cls, sp: SitePlan) -> SitePolicy:
        tr = {}
        if sp.site.approach.profile.translates and sp.site.identity is not None:
            tr = {e.name: Translator(sp.site.identity, e.delegation) for e in sp.exits}
        return cls(sp, tr)

    def subnets(self) -> list[IPv6Network]:
        """The identity /64s the site router advertises (nptv6, id-loc), subnet 0 first."""
        return [p for k, p in self.plan.prefixes.items() if k.startswith("identity")] if self.translators else []

    @property
    def per_address(self) -> bool:
        """RFC 6296 section 3.5: an identity longer than /48 is translated by adjusting a word of each address's
        interface identifier, which no masked set-field can do; its exits translate address by address."""
        identity = self.plan.site.identity
        return bool(self.translators) and identity is not None and identity.prefixlen > 48

    def locator_subnet(self, subnet: IPv6Network, exit_name: str) -> IPv6Network:
        """The /64 that identity /64 ``subnet`` becomes through ``exit_name``. With a /48 or shorter prefix RFC
        6296 adjusts only the subnet word, so the whole /64 maps to one /64, address for address; a longer one
        keeps the /64 too, but moves each address within it (``per_address``)."""
        return IPv6Network((self.translators[exit_name].to_outside(subnet.network_address), 64), strict=False)

    def sends_from(self, exit_name: str) -> list[IPv6Network]:
        """The prefixes the site's packets carry as source through ``exit_name``: each identity /64's locator
        /64 (nptv6, id-loc), or the prefix hosts autoconfigure from that ISP (source-routing, mptcp)."""
        if self.translators:
            return [self.locator_subnet(s, exit_name) for s in self.subnets()]
        return [self.plan.prefixes[exit_name]] if exit_name in self.plan.prefixes else []

    def owns_source(self, addr: IPv6Address) -> bool:
        return any(addr == a for h in self.plan.hosts for a in h.addresses.values())

    def site_prefixes(self) -> list[IPv6Network]:
        out = [e.delegation for e in self.plan.exits]
        if self.plan.site.identity is not None:
            out.append(self.plan.site.identity)
        return out


def group_id(host_index: int, exit_index: int) -> int:
    return (host_index + 1) * 256 + exit_index + 1


def subnet_group_id(subnet_index: int, exit_index: int) -> int:
    """Above every host's group (hosts < 127), below id-loc's (0x10000 on)."""
    return 0x8000 + subnet_index * 16 + exit_index + 1


Pairs = Mapping[tuple[str, str], tuple[str, str]]


Neighbours = Mapping[str, Mapping[IPv6Address, Neighbour]]
FarSubnets = Mapping[tuple[str, str], Sequence[IPv6Network]]


def desired(plan: Sites, alive: Mapping[str, bool], pairs: Pairs | None = None,
            avoid: Mapping[str, set[str]] | None = None, sites: Collection[str] | None = None,
            records: Mapping[tuple[str, str], Record] | None = None,
            neighbours: Neighbours | None = None, far_subnets: FarSubnets | None = None,
            plain: Mapping[str, Collection[IPv6Network]] | None = None,
            upgraded: Mapping[str, Collection[IPv6Network]] | None = None,
            far_index: Mapping[tuple[str, str], int] | None = None,
            translated: Mapping[str, Mapping[IPv6Address, int]] | None = None) -> RuleSet:
    """Every rule and group for the switches of ``sites`` (default: every site), given which exits are usable
    (missing = usable), between id-loc sites which directed locator pair is active (missing = the most
    preferred), which destinations the icmp trigger says to keep away from which exit, what each id-loc
    site learned from the mapping service about the others (``records``, by (site, far site); default: the
    registry's full contents) and which of their identity /64s it has rules for (``far_subnets``, in the
    order it met them; default: every subnet the far site advertises), which sources it found no site for
    (``plain``: /64s, by site) and which of those turned out to be a far site's locators since (``upgraded``),
    and which addresses beyond the plan's each site's controller resolved (``neighbours``, by site). Traffic
    toward or from what a site has not placed goes to its controller.

    ``plan`` may be a controller's :class:`~multi6lab.topologies.plan.Brief`: nothing here needs another site's
    plan. A far site is id-loc because the mapping service holds its record; its groups are numbered by
    ``far_index`` (the order the site's edge met the far sites; default: by name), not by its place in a plan.
    Only the defaults of ``records`` and ``far_subnets`` (for tests and tools) read the far sites from a whole
    :class:`~multi6lab.topologies.plan.Plan`."""
    rules: set[Rule] = set()
    groups: set[Group] = set()
    idloc = {sp.site.name: sp for sp in plan.sites if sp.site.approach.profile.edges_map}
    if records is None or far_subnets is None:
        if not isinstance(plan, Plan):
            raise ValueError("desired(): a brief has no far sites, so records and far_subnets must be given")
        mapping = MappingService.of(plan)
        records = {(a, r.site): r for a in idloc for r in mapping.records if r.site != a} if records is None \
            else records
        far_subnets = {(a, b): SitePolicy.of(idloc[b]).subnets() for a in idloc for b in idloc if a != b} \
            if far_subnets is None else far_subnets
    if far_index is None:
        far_index = {(a, b): i for a in idloc for i, b in enumerate(sorted(f for s, f in records if s == a))}
    for (a, b), record in sorted(records.items()):
        if a not in idloc or (sites is not None and a not in sites):
            continue
        src = idloc[a]
        x, y = (pairs or {}).get((a, b), (src.exits[0].name, record.locators[0].exit))
        if all(loc.exit != y for loc in record.locators):  # the pair's far locator left the record
            y = record.locators[0].exit
        met = far_subnets.get((a, b), ())
        rr, gg = _idloc_rules(SitePolicy.of(src), record, tuple(met)[:MAX_FAR_SUBNETS], src.exit(x), y,
                              far_index[(a, b)])
        rules |= rr
        groups |= gg
    for sp in plan.sites:
        if sp.site.approach.profile.bgp or (sites is not None and sp.site.name not in sites):
            continue  # BGP runs a routing site's exits, and its fabric is a plain learning switch
        pol = SitePolicy.of(sp)
        live = [e for e in sp.exits if alive.get(e.name, True)]
        rules |= set(_fabric_rules(pol, live, (neighbours or {}).get(sp.site.name, {})))
        rules |= set(_avoid_rules(pol, live, avoid or {}))
        if sp.site.approach.profile.edges_map:
            known = {b: r for (a, b), r in records.items() if a == sp.site.name}
            rules |= set(_placing_rules(pol, (plain or {}).get(sp.site.name, ()),
                                        (upgraded or {}).get(sp.site.name, ()), known))
        for e in sp.exits:
            r, g = _exit_rules(pol, e)
            rules |= set(r)
            groups |= set(g)
            if pol.per_address:
                r, g = _address_rules(pol, e, (translated or {}).get(sp.site.name, {}))
                rules |= set(r)
                groups |= set(g)
        if sp.site.exit_policy == ExitPolicy.LOAD_SHARE and pol.translators and live:
            weights = {e.name: e.weight for e in sp.site.exits}
            groups.add(Group(sp.fabric_dpid, 1, "select",
                             tuple(Bucket((Output(e.fabric_port),), weight=weights[e.name]) for e in live)))
    return RuleSet(frozenset(rules), frozenset(groups))


def _fabric_rules(pol: SitePolicy, live: list[ExitPlan], learned: Mapping[IPv6Address, Neighbour]) -> Iterable[Rule]:
    sp = pol.plan
    f = sp.fabric_dpid
    gw = sp.gateway_mac
    host_ports = [h.port for h in sp.hosts]
    yield Rule(f, P_DROP, match())
    yield Rule(f, P_CONTROL, icmp6(ICMP6_RS), (TO_CONTROLLER,))
    yield Rule(f, P_CONTROL, icmp6(ICMP6_NS, ipv6_nd_target=str(GATEWAY_LL)), (TO_CONTROLLER,))
    for h in sp.hosts:
        others = tuple(Output(p) for p in host_ports if p != h.port)
        yield Rule(f, P_MCAST, match(in_port=h.port, eth_dst=MCAST), others)
        # Delivery to a host: from another host or from an exit, by MAC.
        yield Rule(f, P_FORWARD, match(eth_dst=h.mac), (Output(h.port),))
    # An exit handed a packet back (fast failover): forward it to the exit it is now marked for.
    for src in sp.exits:
        for dst in sp.exits:
            if src is not dst:
                yield Rule(f, P_HANDOFF, match(in_port=src.fabric_port, eth_dst=dst.mac),
                           (Output(dst.fabric_port),))
    if pol.translators:
        yield from _router_rules(pol, learned)
    for h in sp.hosts:
        if pol.translators:
            if not live:
                continue  # no usable exit: the drop rule answers
            if sp.site.exit_policy == ExitPolicy.LOAD_SHARE:
                act: tuple[Action, ...] = (ToGroup(1),)
            else:
                act = (Output(live[0].fabric_port),)
            for s in pol.subnets():  # any address of the site's subnets: the exits translate the whole /64
                yield from _watched(sp, Rule(f, P_FORWARD, ipv6(in_port=h.port, eth_dst=gw, ipv6_src=net(s)), act))
        else:
            for e in sp.exits:
                act = (Output(e.fabric_port),) if e in live else (TO_CONTROLLER,)
                yield Rule(f, P_FORWARD, ipv6(in_port=h.port, eth_dst=gw, ipv6_src=str(h.addresses[e.name])), act)


def _router_rules(pol: SitePolicy, learned: Mapping[IPv6Address, Neighbour]) -> Iterable[Rule]:
    """The fabric as the router behind the translators: packets the exits translated for an address the plan
    does not list are delivered to the neighbour that owns it, or go to the controller to resolve it; the
    hosts' answers to its solicitations go to the controller too."""
    sp = pol.plan
    f, gw = sp.fabric_dpid, sp.gateway_mac
    yield Rule(f, P_CONTROL, icmp6(ICMP6_NA, eth_dst=gw), (TO_CONTROLLER,))
    for e in sp.exits:
        yield Rule(f, P_RESOLVE, ipv6(in_port=e.fabric_port, eth_dst=gw), (TO_CONTROLLER,))
    known = {a: Neighbour(h.mac, h.port) for h in sp.hosts for a in h.addresses.values()}
    for addr, n in sorted({**known, **learned}.items()):
        yield Rule(f, P_NEIGHBOUR, ipv6(eth_dst=gw, ipv6_dst=str(addr)),
                   (SetField("eth_src", gw), SetField("eth_dst", n.mac), Output(n.port)))


def _watched(sp: SitePlan, rule: Rule) -> Iterable[Rule]:
    """A fabric rule sending the site's traffic to an exit, and under the transport trigger its twin for TCP,
    one priority above, that also copies each segment to the controller (:mod:`.transport`)."""
    yield rule
    if Trigger.TRANSPORT in sp.site.triggers:
        yield Rule(rule.dpid, rule.priority + 1, match(**dict(rule.match), ip_proto=TCP),
                   (TO_CONTROLLER, *rule.actions))


def exit_toward(sp: SitePlan, live: list[ExitPlan], avoid: Mapping[str, set[str]], dst: str) -> ExitPlan | None:
    """The exit the fabric sends traffic to ``dst`` through (primary-backup): the first live one, unless an
    icmp or transport trigger keeps ``dst`` away from it, then the next live exit not kept away too (if none
    is, the first)."""
    if not live:
        return None
    if dst not in avoid.get(live[0].name, set()):
        return live[0]
    return next((e for e in live[1:] if dst not in avoid.get(e.name, set())), live[0])


def _avoid_rules(pol: SitePolicy, live: list[ExitPlan], avoid: Mapping[str, set[str]]) -> Iterable[Rule]:
    """icmp and transport triggers (nptv6, id-loc): traffic to a destination the primary exit's ISP cannot
    reach (or that a TCP flow through it shows stalled) leaves through the next live exit not kept from it."""
    sp = pol.plan
    if not pol.translators or not live or sp.site.exit_policy != ExitPolicy.PRIMARY_BACKUP:
        return
    for dst in sorted(avoid.get(live[0].name, set())):
        alt = exit_toward(sp, live, avoid, dst)
        if alt is None or alt is live[0]:
            continue
        for h in sp.hosts:
            for s in pol.subnets():
                yield from _watched(sp, Rule(sp.fabric_dpid, P_AVOID, ipv6(in_port=h.port, eth_dst=sp.gateway_mac,
                                                                           ipv6_src=net(s), ipv6_dst=dst),
                                             (Output(alt.fabric_port),)))


def _exit_rules(pol: SitePolicy, e: ExitPlan) -> tuple[list[Rule], list[Group]]:
    sp = pol.plan
    d = e.dpid
    out = [SetField("eth_src", e.mac), SetField("eth_dst", e.isp_mac), DEC_TTL]
    inward = [SetField("eth_src", sp.gateway_mac)]
    rules = [
        Rule(d, P_DROP, match()),
        Rule(d, P_CONTROL, icmp6(ICMP6_NS, in_port=e.outside_port, ipv6_nd_target=str(e.address.ip)),
             (TO_CONTROLLER,)),
        Rule(d, P_CONTROL, icmp6(ICMP6_ECHO_REPLY, in_port=e.outside_port, ipv6_dst=str(e.address.ip)),
             (TO_CONTROLLER,)),
    ]
    if sp.site.approach.profile.edges_map:  # the far edges' locator-pair messages, to this edge's address
        rules.append(Rule(d, P_CONTROL, ipv6(in_port=e.outside_port, ip_proto=UDP, udp_dst=PAIR_PORT,
                                             ipv6_dst=str(edge_address(e.delegation))), (TO_CONTROLLER,)))
        # ... and the mapping service's answers to this edge's queries and updates.
        rules.append(Rule(d, P_CONTROL, ipv6(in_port=e.outside_port, ip_proto=UDP, udp_src=DNS_PORT,
                                             ipv6_dst=str(edge_address(e.delegation))), (TO_CONTROLLER,)))
    # The site's own BCP 38, inbound: nobody outside may use a source from the site's prefixes.
    rules += [Rule(d, P_ANTISPOOF, ipv6(in_port=e.outside_port, ipv6_src=net(p))) for p in pol.site_prefixes()]
    groups = []
    for hi, h in enumerate(sp.hosts):
        loc = h.locators[e.name]
        inbound = [*inward, SetField("eth_dst", h.mac), DEC_TTL, Output(e.inside_port)]
        if pol.translators:
            ident = h.addresses["identity"]
            inbound = [SetField("ipv6_dst", str(ident)), *inbound]
            rewrite = (SetField("ipv6_src", str(loc)), *out, Output(e.outside_port))
            first, group = _failover(sp, e, group_id(hi, sp.exits.index(e)), rewrite)
            groups += [group] if group else []
            rules.append(Rule(d, P_FORWARD, ipv6(in_port=e.inside_port, eth_dst=sp.gateway_mac, ipv6_src=str(ident)),
                              first))
            # Handed over by another exit whose uplink failed: rewrite to this exit's locator, no further hand-off.
            rules.append(Rule(d, P_HANDOFF, ipv6(in_port=e.inside_port, eth_dst=e.mac, ipv6_src=str(ident)),
                              rewrite))
        else:
            src = h.addresses[e.name]
            rules.append(Rule(d, P_FORWARD, ipv6(in_port=e.inside_port, eth_dst=sp.gateway_mac, ipv6_src=str(src)),
                              (*out, Output(e.outside_port))))
        if not sp.site.approach.profile.edges_map:  # an id-loc site first places the source (_placing_rules)
            rules.append(Rule(d, P_FORWARD, ipv6(in_port=e.outside_port, ipv6_dst=str(loc)), tuple(inbound)))
        if Trigger.ICMP in sp.site.triggers and pol.translators:
            rules.append(Rule(d, P_ICMP_ERROR, icmp6(ICMP6_DEST_UNREACH, in_port=e.outside_port, ipv6_dst=str(loc)),
                              (TO_CONTROLLER, *inbound)))
    r, g = _subnet_rules(pol, e)
    return rules + r, groups + g


def address_group_id(slot: int, exit_index: int) -> int:
    """A translated address's fast-failover group: above id-loc's (0x10000 on) and every host's and subnet's."""
    return 0x800000 + slot * 16 + exit_index + 1


def _address_rules(pol: SitePolicy, e: ExitPlan, translated: Mapping[IPv6Address, int]
                   ) -> tuple[list[Rule], list[Group]]:
    """``per_address``: each address beyond the plan's hosts that the controller translated (it met the
    address's first packet, either way; by the slot it gave it), to and from its locator through exit ``e``,
    exactly, and with the link trigger through a fast-failover group as the plan's hosts are. Inbound, the
    fabric finds the host (``_router_rules``)."""
    sp = pol.plan
    tr = pol.translators[e.name]
    # What an address's rules depend on besides the address and its slot: fixed while a controller runs.
    fixed = (e, tr, sp.gateway_mac, Trigger.LINK in sp.site.triggers, tuple(o.mac for o in sp.exits),
             sp.exits.index(e))
    known = _ADDRESS_RULES.setdefault(fixed, {})
    if len(known) >= ADDRESS_RULES_KEPT:
        known.clear()
    rules: list[Rule] = []
    groups: list[Group] = []
    for ident, slot in sorted(translated.items()):
        entry = known.get((ident, slot))
        if entry is None:
            entry = known[(ident, slot)] = _one_address(sp, e, tr, ident, slot)
        rules += entry[0]
        groups += entry[1]
    return rules, groups


# Each translated address's rules, computed once per exit: a push recomputes the whole policy, and formatting
# and translating a thousand addresses each time cost 90 ms a push (issue 32's measurement).
_ADDRESS_RULES: dict[tuple[Any, ...], dict[tuple[IPv6Address, int], tuple[tuple[Rule, ...], tuple[Group, ...]]]] = {}
ADDRESS_RULES_KEPT = 8192  # an exit's entries (addresses x the slots they held) before they are computed afresh


def _one_address(sp: SitePlan, e: ExitPlan, tr: Translator, ident: IPv6Address, slot: int
                 ) -> tuple[tuple[Rule, ...], tuple[Group, ...]]:
    loc = str(tr.to_outside(ident))
    out = (SetField("eth_src", e.mac), SetField("eth_dst", e.isp_mac), DEC_TTL, Output(e.outside_port))
    rewrite = (SetField("ipv6_src", loc), *out)
    first, group = _failover(sp, e, address_group_id(slot, sp.exits.index(e)), rewrite)
    rules = (Rule(e.dpid, P_FORWARD, ipv6(in_port=e.inside_port, eth_dst=sp.gateway_mac, ipv6_src=str(ident)), first),
             Rule(e.dpid, P_HANDOFF, ipv6(in_port=e.inside_port, eth_dst=e.mac, ipv6_src=str(ident)), rewrite),
             Rule(e.dpid, P_FORWARD, ipv6(in_port=e.outside_port, ipv6_dst=loc),
                  (SetField("ipv6_dst", str(ident)), SetField("eth_src", e.mac), SetField("eth_dst", sp.gateway_mac),
                   DEC_TTL, Output(e.inside_port))))
    return rules, (group,) if group else ()


def _subnet_rules(pol: SitePolicy, e: ExitPlan) -> tuple[list[Rule], list[Group]]:
    """RFC 6296 proper: each identity /64 to and from its locator /64 through exit ``e``, whatever the address
    in it, beneath the plan's per-host rules. Inbound, the fabric finds the host (``_router_rules``). Where the
    exits translate ``per_address``, an address without rules goes to the controller either way instead."""
    sp = pol.plan
    rules: list[Rule] = []
    groups: list[Group] = []
    if pol.per_address:
        for s in pol.subnets():
            rules += [Rule(e.dpid, prio, ipv6(in_port=e.inside_port, eth_dst=dst, ipv6_src=net(s)), (TO_CONTROLLER,))
                      for prio, dst in ((P_SUBNET, sp.gateway_mac), (P_HANDOFF_SUBNET, e.mac))]
            rules.append(Rule(e.dpid, P_SUBNET, ipv6(in_port=e.outside_port,
                                                     ipv6_dst=net(pol.locator_subnet(s, e.name))), (TO_CONTROLLER,)))
        return rules, groups
    for si, s in enumerate(pol.subnets()):
        loc = pol.locator_subnet(s, e.name)
        rewrite, (first, group) = _leaving(pol, e, si, s)
        groups += [group] if group else []
        rules += [
            Rule(e.dpid, P_SUBNET, ipv6(in_port=e.inside_port, eth_dst=sp.gateway_mac, ipv6_src=net(s)), first),
            Rule(e.dpid, P_HANDOFF_SUBNET, ipv6(in_port=e.inside_port, eth_dst=e.mac, ipv6_src=net(s)), rewrite),
        ]
        if not sp.site.approach.profile.edges_map:  # an id-loc site first places the source (_placing_rules)
            rules.append(Rule(e.dpid, P_SUBNET, ipv6(in_port=e.outside_port, ipv6_dst=net(loc)),
                              (SetPrefix("ipv6_dst", str(s)), SetField("eth_src", e.mac),
                               SetField("eth_dst", sp.gateway_mac), DEC_TTL, Output(e.inside_port))))
    return rules, groups


def _leaving(pol: SitePolicy, e: ExitPlan, si: int, s: IPv6Network) -> tuple[tuple[Action, ...],
                                                                               tuple[tuple[Action, ...], Group | None]]:
    """How identity /64 ``s`` (the site's ``si``-th) leaves through exit ``e``: its rewrite to the locator /64,
    and what a rule does to apply it (the rewrite, or the subnet's fast-failover group)."""
    rewrite = (SetPrefix("ipv6_src", str(pol.locator_subnet(s, e.name))), SetField("eth_src", e.mac),
               SetField("eth_dst", e.isp_mac), DEC_TTL, Output(e.outside_port))
    return rewrite, _failover(pol.plan, e, subnet_group_id(si, pol.plan.exits.index(e)), rewrite)


def _idloc_rules(src: SitePolicy, dst: Record, far: Sequence[IPv6Network], x: ExitPlan, y: str,
                 dst_index: int) -> tuple[set[Rule], set[Group]]:
    """Rules for traffic from id-loc site ``src`` to the site the mapping record ``dst`` describes, on the
    directed pair (exit x, the far site's exit y), and for the return traffic as it arrives at ``src``'s exits
    through any of the far site's locators: one set per pair of identity /64s, own and ``far`` (the far ones
    the edge has met), each address part rewritten by a masked set-field. From the far site's locators, a /64
    without rules goes to the controller (toward its identity, ``_placing_rules`` sends it up)."""
    sp = src.plan
    gw = sp.gateway_mac
    rules: set[Rule] = set()
    groups: set[Group] = set()
    mine = src.subnets()
    for h in sp.hosts:
        for s in mine:
            rules.add(Rule(sp.fabric_dpid, P_IDLOC, ipv6(in_port=h.port, eth_dst=gw, ipv6_src=net(s),
                                                        ipv6_dst=net(dst.identity)), (Output(x.fabric_port),)))
    for ei, e in enumerate(sp.exits):
        for loc in dst.locators:
            rules.add(Rule(e.dpid, P_LOOKUP, ipv6(in_port=e.outside_port, ipv6_src=net(loc.prefix)), (TO_CONTROLLER,)))
        for si, s in enumerate(mine):
            here = str(src.locator_subnet(s, e.name))
            for fi, f in enumerate(far):
                rewrite = (SetPrefix("ipv6_src", here), SetPrefix("ipv6_dst", str(_far_locator(dst, f, y))),
                           SetField("eth_src", e.mac), SetField("eth_dst", e.isp_mac), DEC_TTL, Output(e.outside_port))
                gid = 0x10000 + ((dst_index * 256 + si) * 16 + ei) * MAX_FAR_SUBNETS + fi
                act, group = _failover(sp, e, gid, rewrite)
                groups |= {group} if group else set()
                m = dict(eth_dst=gw, ipv6_src=net(s), ipv6_dst=net(f))
                rules.add(Rule(e.dpid, P_IDLOC, ipv6(in_port=e.inside_port, **m), act))
                rules.add(Rule(e.dpid, P_HANDOFF_IDLOC, ipv6(in_port=e.inside_port, **{**m, "eth_dst": e.mac}),
                               rewrite))
                # Return traffic: whichever far exit the other edge chose, map both locators back; the fabric
                # delivers the identity to whichever host holds it.
                for fy in dst.locators:
                    rules.add(Rule(e.dpid, P_IDLOC, ipv6(in_port=e.outside_port,
                                                         ipv6_src=net(_far_locator(dst, f, fy.exit)),
                                                         ipv6_dst=net(src.locator_subnet(s, e.name))),
                                   (SetPrefix("ipv6_src", str(f)), SetPrefix("ipv6_dst", str(s)),
                                    SetField("eth_src", e.mac), SetField("eth_dst", gw), DEC_TTL,
                                    Output(e.inside_port))))
    return rules, groups


def _failover(sp: SitePlan, e: ExitPlan, gid: int, rewrite: tuple[Action, ...]) -> tuple[tuple[Action, ...],
                                                                                    Group | None]:
    """What a rule leaving through exit ``e`` does: ``rewrite`` at once or, with the link trigger, fast-failover
    group ``gid``, whose first bucket rewrites while e's uplink is up and whose next ones hand the packet back to
    the fabric marked for another exit, so the data plane moves before the controller hears of the failure."""
    if Trigger.LINK not in sp.site.triggers:
        return rewrite, None
    buckets = [Bucket(rewrite, watch_port=e.outside_port)]
    buckets += [Bucket((SetField("eth_dst", o.mac), Output(OFPP_IN_PORT)), watch_port=e.inside_port)
                for o in sp.exits if o is not e]
    return (ToGroup(gid),), Group(e.dpid, gid, "ff", tuple(buckets))


def _far_locator(record: Record, subnet: IPv6Network, exit_name: str) -> IPv6Network:
    """The locator /64 of the far identity /64 ``subnet`` through the far site's exit ``exit_name``."""
    return IPv6Network((record.locator(subnet.network_address, exit_name), 64))


def _placing_rules(pol: SitePolicy, plain: Collection[IPv6Network], upgraded: Collection[IPv6Network],
                   records: Mapping[str, Record]) -> Iterable[Rule]:
    """What an id-loc site cannot place yet goes to its controller: a packet toward an identity (never routed)
    of a site it has no record of, and one arriving from a source that is neither a far site it knows nor one
    it found plain. A plain source's packets are translated back as nptv6 does, and its connections, both ways,
    committed to the connection tracker marked as plain (in the identity's view: the same connection whichever
    exit carries it), so that they stay plain if the source turns out to be a far site's (``upgraded``)."""
    sp = pol.plan
    gw = sp.gateway_mac
    yield Rule(sp.fabric_dpid, P_LOOKUP, ipv6(eth_dst=gw, ipv6_dst=net(IDENTITY_SPACE)), (TO_CONTROLLER,))
    commit = CtCommit(CT_ZONE, PLAIN_MARK)
    for e in sp.exits:
        # An identity never leaves as a destination: whatever reaches an exit before its rules (a packet put
        # back an instant before the exit applied them) comes up again instead of leaking out untranslated.
        yield Rule(e.dpid, P_LOOKUP, ipv6(in_port=e.inside_port, eth_dst=gw, ipv6_dst=net(IDENTITY_SPACE)),
                   (TO_CONTROLLER,))
        inward = (SetField("eth_src", e.mac), SetField("eth_dst", gw), DEC_TTL, Output(e.inside_port))
        for si, s in enumerate(pol.subnets()):
            here = pol.locator_subnet(s, e.name)
            yield Rule(e.dpid, P_UNPLACED, ipv6(in_port=e.outside_port, ipv6_dst=net(here)), (TO_CONTROLLER,))
            for p in sorted(plain):
                yield Rule(e.dpid, P_PLAIN, ipv6(in_port=e.outside_port, ipv6_src=net(p), ipv6_dst=net(here)),
                           (SetPrefix("ipv6_dst", str(s)), commit, *inward))
            _, (leave, _) = _leaving(pol, e, si, s)
            for p in sorted({*plain, *upgraded}):  # a host's sessions toward a plain address stay plain
                yield Rule(e.dpid, P_PLAIN_OUT, ipv6(in_port=e.inside_port, eth_dst=gw, ipv6_src=net(s),
                                                     ipv6_dst=net(p)), (commit, *leave))
            for u in sorted(upgraded):
                yield from _upgraded_rules(e, s, here, u, records, inward)


def _upgraded_rules(e: ExitPlan, s: IPv6Network, here: IPv6Network, u: IPv6Network, records: Mapping[str, Record],
                    inward: tuple[Action, ...]) -> Iterable[Rule]:
    """A source /64 ``u`` found plain, now known as a far site's locator /64: its packets to identity /64 ``s``
    through exit ``e`` are translated to the identity and looked up in the connection tracker; a connection
    marked plain is delivered as it was, any other is mapped to the far site's identity like the rest of its
    traffic. Nothing on the wire tells the two apart (both come from the far locator), the tracker's state does."""
    found = next(((r, loc) for r in records.values() for loc in r.locators if u.subnet_of(loc.prefix)), None)
    if found is None:
        return
    record, loc = found
    far = IPv6Network((Translator(record.identity, loc.prefix).to_inside(u.network_address), 64))
    tracked = (CT_TRACKED, CT_TRACKED)
    yield Rule(e.dpid, P_UPGRADED, ipv6(in_port=e.outside_port, ipv6_src=net(u), ipv6_dst=net(here),
                                        ct_state=(0, CT_TRACKED)), (SetPrefix("ipv6_dst", str(s)), CtLookup(CT_ZONE)))
    yield Rule(e.dpid, P_UPGRADED, ipv6(in_port=e.outside_port, ipv6_src=net(u), ipv6_dst=net(s), ct_state=tracked,
                                        ct_mark=PLAIN_MARK), inward)
    yield Rule(e.dpid, P_UPGRADED - 1, ipv6(in_port=e.outside_port, ipv6_src=net(u), ipv6_dst=net(s),
                                            ct_state=tracked), (SetPrefix("ipv6_src", str(far)), *inward))
