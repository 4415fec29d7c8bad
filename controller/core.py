"""The controller's core, pure, as Faucet's Valve is: typed events in, typed outputs out, its state in one object.

One :class:`Core` holds everything one controller process decides for the sites it runs: which exits are
usable (:mod:`.liveness`), what each id-loc edge knows of far sites (:mod:`.pairs`, :mod:`.mapclient`,
:mod:`.contacts`), the router's neighbour discovery (:mod:`.neighbours`), the transport trigger's watch
(:mod:`.transport`), and what each switch holds. Its methods are the events a controller meets (a switch
connects and says what it holds, a port changes, a packet comes up, time passes) and each takes the time as an
argument; what they decide comes back from :meth:`Core.take` as data: rule and group changes per switch
(:class:`Install`), packets to send (:class:`PacketOut`, :class:`Release`) and events to log (:class:`Log`).

The os-ken shell (:mod:`.app`) only decodes OpenFlow into these calls and encodes the outputs; it reads the
clock and holds the sockets. So every decision here runs in a unit test without a switch or a framework.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from multi6lab.controller import packets
from multi6lab.controller.contacts import Contacts, Effects, Held
from multi6lab.controller.liveness import Liveness
from multi6lab.controller.mapclient import MappingClient
from multi6lab.controller.neighbours import Neighbour, Resolver
from multi6lab.controller.pairs import Edge, Message, edge_of
from multi6lab.controller.policy import (
    P_PLAIN,
    P_UPGRADED,
    Changes,
    Group,
    Rule,
    RuleSet,
    SitePolicy,
    desired,
    diff,
    exit_toward,
)
from multi6lab.controller.transport import RetransmitWatch
from multi6lab.topologies import knot
from multi6lab.topologies.addressing import GATEWAY_LL, edge_address
from multi6lab.topologies.npt import Translator, Untranslatable
from multi6lab.topologies.plan import Brief, SitePlan
from multi6lab.vocabulary import RULE_CHANGING_EVENTS, Event, Trigger

DNS_CLIENT_PORT = 53053  # the edge's source port toward the mapping service
ECHO_ID = 0x6D36  # the heartbeat echoes' identifier; what proves a reply is the token in its data
ECHO_TOKEN = 16  # bytes from secrets in each heartbeat echo, which its reply must return
ICMP_ERRORS_PER_SECOND = 100
POLICY_CACHE = 256
MAX_TRANSLATED = 1024  # exact translations a per-address site keeps (the oldest goes first): its exits' rules
RA_VALID = 1800

HeldRule = tuple[int, tuple[tuple[str, Any], ...]]  # (priority, match) of a rule read back from a switch


# -- what the core decides ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Log:
    """An event for the controller's log (the shell stamps it with the time it writes it, unless ``t`` is in
    ``fields``)."""

    event: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Install:
    """Rule and group changes for one switch, then a barrier: ``cause`` and ``push`` name the decision in the
    log; ``count`` is the number of changes the log reports."""

    dpid: int
    changes: Changes
    cause: str
    count: int
    push: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PacketOut:
    """A packet the controller built, sent out of ``port`` of switch ``dpid``; ``exit`` names the exit whose
    probe or message it is (a failed send is logged against it)."""

    dpid: int
    port: int
    data: bytes
    exit: str | None = None


@dataclass(frozen=True)
class Release:
    """A packet held at the controller, put back through its switch's table as if it had just arrived on
    ``in_port``."""

    dpid: int
    in_port: int
    data: bytes


@dataclass(frozen=True)
class FlushLater:
    """Call :meth:`Core.flush` once the events already queued have been handled. The translations and the
    neighbours a burst of new addresses asks for then leave in one push: each push computes the whole policy,
    so one per address made a burst cost O(N) each (RFC 6296 3.5's per-address rules, issue 32's measurement)."""


FLUSH_LATER = FlushLater()


@dataclass(frozen=True)
class CountRequest:
    """Ask switch ``dpid`` for its rules' packet counts; :meth:`Core.counts` takes the answer. How the controller
    tells that a learnt address stopped sending: an idle timeout on the switch would also expire the backup
    exit's rules, which carry nothing until the primary fails."""

    dpid: int


Decision = Log | Install | PacketOut | Release | FlushLater | CountRequest  # what the core hands the shell


@dataclass
class Pending:
    """A switch that connected and is saying what it holds; reconciled once both answers are complete."""

    rules: set[HeldRule] = field(default_factory=set)
    groups: set[int] = field(default_factory=set)
    waiting: set[str] = field(default_factory=lambda: {"flows", "groups"})


class Core:
    """Every decision of one controller process, for the sites of ``brief`` it runs (``sites``: all when None).

    Each site's state is its own even when a process runs several: its edge, its mapping client, its
    contacts and its resolver are per site, and nothing of one site's is looked up through another's."""

    def __init__(self, brief: Brief, sites: Iterable[str] | None, now: float, mapping_keys: dict[str, str],
                 token: Callable[[int], bytes] = secrets.token_bytes):
        # Its brief holds its own sites' plans and nothing of any other site's (topologies.plan.Brief).
        self.brief = brief
        chosen = None if sites is None else set(sites)
        own = [sp for sp in brief.sites if chosen is None or sp.site.name in chosen]
        self.own = {sp.site.name for sp in own if sp.site.approach.profile.controlled}
        self.sites = {sp.site.name: SitePolicy.of(sp) for sp in own}
        self.token = token
        self.liveness = Liveness(brief, now, self.own)
        # Each id-loc site's edge decides alone, from the messages that reach its own exits, about the far
        # sites the mapping service told it of.
        self.edges: dict[str, Edge] = {sp.site.name: edge_of(brief, sp.site.name) for sp in own
                                       if sp.site.approach.profile.edges_map}
        self.mapping_server = brief.mapping_server
        self.mapping = {name: MappingClient(name, mapping_keys[name], brief.mapping_ttl_s) for name in self.edges
                        if name in mapping_keys and self.mapping_server is not None}
        # Whom each id-loc site talks to: learned from the packets its switches send up, nothing from the plan.
        self.contacts = {name: Contacts() for name in self.edges}
        # The router's neighbour discovery, for translated addresses the plan does not list.
        self.resolvers = {name: Resolver(tuple(pol.subnets()), {h.port for h in pol.plan.hosts})
                          for name, pol in self.sites.items() if pol.translators}
        # What waits for the next flush's push: the causes, and the packets to put back after it.
        self.flushing: set[str] = set()
        self.unflushed: list[Release | PacketOut] = []
        # nptv6 beyond /48 (RFC 6296 3.5): the addresses beyond the plan's whose translations the exits hold,
        # the translation_learned lines waiting for the flush (and when each address was met), and each
        # address's last sign of use with the packet counts that showed it.
        self.translated: dict[str, dict[IPv6Address, int]] = {name: {} for name, pol in self.sites.items()
                                                               if pol.per_address}  # address -> its group slot
        self.learnt: list[tuple[float, Log]] = []
        self.active: dict[str, dict[IPv6Address, float]] = {name: {} for name in self.translated}
        self.seen: dict[str, dict[IPv6Address, dict[tuple[int, HeldRule], int]]] = {
            name: {} for name in self.translated}
        # The transport trigger's view of each site's outbound TCP flows (the fabric copies their segments).
        self.transport = {name: RetransmitWatch() for name, pol in self.sites.items()
                          if Trigger.TRANSPORT in pol.plan.site.triggers}
        self.exit_by_name = {e.name: e for sp in own for e in sp.exits}
        # What each exit's packets carry as source: any address of its locator /64s (icmp trigger's check).
        self.exit_sources = {e.name: pol.sends_from(e.name) for pol in self.sites.values() for e in pol.plan.exits}
        self.connected: set[int] = set()
        self.pending: dict[int, Pending] = {}
        self.installed: dict[int, RuleSet] = {}
        self.policies: dict[Hashable, RuleSet] = {}  # by (usable exits, active pairs, icmp holds, ...)
        self.pushes = 0  # numbers each push, so a barrier reply names the decision it completes
        self.seq = 0  # the heartbeat echoes' sequence number
        self.icmp_budget: dict[str, float] = defaultdict(float)
        self.counters: dict[str, int] = defaultdict(int)
        self.out: list[Decision] = []
        self.log(Event.CONTROLLER_START, topology=brief.topology, sites=sorted(self.own))

    def take(self) -> list[Decision]:
        """What the calls since the last take decided, in order."""
        out, self.out = self.out, []
        return out

    def log(self, event: str, **fields: Any) -> None:
        self.out.append(Log(event, fields))

    # -- connection and reconciliation ----------------------------------------------------------------
    def switch_connected(self, dpid: int) -> bool:
        """A switch said hello: False for one that is not this process's (logged; the shell leaves it be)."""
        if self.where(dpid) is None:
            self.log(Event.UNKNOWN_SWITCH, dpid=dpid)
            return False
        self.connected.add(dpid)
        self.pending[dpid] = Pending()
        self.log(Event.SWITCH_CONNECTED, dpid=dpid, switch=self.name(dpid))
        return True

    def flows_held(self, dpid: int, rules: Iterable[HeldRule], more: bool, now: float) -> None:
        """Part of a switch's answer about the rules it holds (with this controller's cookie)."""
        st = self.pending.get(dpid)
        if st is None:
            return
        st.rules.update(rules)
        if not more:
            st.waiting.discard("flows")
            self._maybe_reconcile(dpid, now)

    def groups_held(self, dpid: int, group_ids: Iterable[int], more: bool, now: float) -> None:
        """Part of a switch's answer about the groups it holds."""
        st = self.pending.get(dpid)
        if st is None:
            return
        st.groups.update(group_ids)
        if not more:
            st.waiting.discard("groups")
            self._maybe_reconcile(dpid, now)

    def _maybe_reconcile(self, dpid: int, now: float) -> None:
        """Both answers are in: (re)add every desired rule (an ADD with an existing match replaces it without a
        gap), delete only what should not exist, and note what the switch holds from now on."""
        st = self.pending[dpid]
        if st.waiting:
            return
        del self.pending[dpid]
        kept = self._read_back(dpid, st.rules, now)
        want = self._desired(now).for_dpid(dpid)
        have_rules = {(r.priority, r.match) for r in want.rules}
        stale = [(prio, m) for prio, m in st.rules if (prio, m) not in have_rules]
        want_gids = {g.group_id for g in want.groups}
        changes = Changes(add_groups=tuple(g for g in sorted(want.groups) if g.group_id not in st.groups),
                          modify_groups=tuple(g for g in sorted(want.groups) if g.group_id in st.groups),
                          add_rules=tuple(sorted(want.rules)),
                          delete_rules=tuple(Rule(dpid, prio, m) for prio, m in stale),
                          delete_groups=tuple(Group(dpid, gid, "ff", ()) for gid in sorted(st.groups - want_gids)))
        self.installed[dpid] = want
        self.out.append(Install(dpid, changes, "reconcile", len(want.rules) + len(want.groups),
                                extra={"stale": len(stale)}))
        self._send_ras(dpid)
        where = self.where(dpid)
        if where is not None and where[1] != "fabric" and where[0].site.name in self.mapping:
            self._register(where[0].site.name, now)  # an exit can carry the registration now (again, after a restart)
        if kept is not None and where is not None:
            self._contact(where[0], kept, now)

    def _read_back(self, dpid: int, held: set[HeldRule], now: float) -> Effects | None:
        """What an id-loc exit's flow table says its site had found plain, and upgraded, before this controller
        started: those sessions' connection-tracking marks are still in the data plane, and keep them plain only
        if the rules that read the marks stay."""
        where = self.where(dpid)
        contacts = self.contacts.get(where[0].site.name) if where is not None and where[1] != "fabric" else None
        if contacts is None:
            return None

        def sources(priority: int) -> list[IPv6Network]:
            masked = [dict(m)["ipv6_src"] for prio, m in held
                      if prio == priority and isinstance(dict(m).get("ipv6_src"), tuple)]
            return sorted({IPv6Network((a, bin(int(IPv6Address(mask))).count("1"))) for a, mask in masked})

        return contacts.recovered(sources(P_PLAIN), sources(P_UPGRADED), now)

    # -- pushing changes ---------------------------------------------------------------------------------
    def _push(self, cause: str, now: float) -> None:
        """Each reconciled switch gets the difference between what it holds and what the policy wants now."""
        want = self._desired(now)
        self.pushes += 1
        for dpid in list(self.installed):
            target = want.for_dpid(dpid)
            ch = diff(self.installed[dpid], target)
            if not len(ch):
                continue
            self.installed[dpid] = target
            self.out.append(Install(dpid, ch, cause, len(ch), self.pushes))

    def _desired(self, now: float) -> RuleSet:
        """The policy for the current state. States recur (every trial fails the same exit), and computing
        the policy costs ~3 ms of Python on a busy machine, all of it before the first FlowMod leaves: each
        state's policy is computed once."""
        pairs = {k: v for edge in self.edges.values() for k, v in edge.active().items()}
        records = {(site, far): r for site, edge in self.edges.items() for far, r in edge.records.items()}
        usable, avoid = self.liveness.usable(), self.liveness.avoided(now)
        learned = {site: dict(r.learned) for site, r in self.resolvers.items()}
        far = {k: v for site, c in self.contacts.items() for k, v in c.far_subnets(site).items()}
        plain = {site: frozenset(c.plain) for site, c in self.contacts.items()}
        upgraded = {site: frozenset(c.upgraded) for site, c in self.contacts.items()}
        slots = {(site, far): i for site, edge in self.edges.items() for far, i in edge.slots.items()}
        translated = {site: frozenset(t.items()) for site, t in self.translated.items()}
        key = (frozenset(usable.items()), frozenset(pairs.items()), frozenset(slots.items()),
               frozenset(translated.items()),
               frozenset((k, frozenset(v)) for k, v in avoid.items()), frozenset(records.items()),
               frozenset((k, frozenset(v.items())) for k, v in learned.items()), frozenset(far.items()),
               frozenset(plain.items()), frozenset(upgraded.items()))
        if key not in self.policies:
            if len(self.policies) >= POLICY_CACHE:  # icmp holds name destinations: keep the cache bounded
                self.policies.clear()
            self.policies[key] = desired(self.brief, usable, pairs, avoid, self.own, records, learned, far, plain,
                                         upgraded, slots, self.translated)
        return self.policies[key]

    # -- port status (link trigger) -------------------------------------------------------------------------
    def port_status(self, dpid: int, port: int, up: bool, now: float) -> None:
        """A port of a switch went up or down (the shell reads state and config bits, never the reason)."""
        events = self.liveness.port_status(dpid, port, up, now)
        where = self.where(dpid)
        edge = self.edges.get(where[0].site.name) if where else None
        if where and edge and where[1] != "fabric" and where[0].exit(where[1]).outside_port == port:
            events += edge.link(where[1], up, now)
        # The locator update leaves before this site's own push: the fast-failover groups have already
        # moved the outbound traffic, and the far site's inbound traffic waits on this message alone.
        self._send_pair_messages(now)
        self._after(events, now)

    def _after(self, events: list[dict[str, Any]], now: float) -> None:
        """Act on liveness events: push rules, re-advertise prefixes; then write the events down."""
        changed = any(e["event"] in RULE_CHANGING_EVENTS for e in events)
        # Only source-routing hosts see a path change in RAs (a deprecated prefix); nobody else needs one.
        moved = {e.get("site") for e in events if e["event"] in (Event.PATH_DEAD, Event.PATH_ALIVE)}
        if changed:
            self._push("liveness", now)
        for e in events:
            self.log(e.pop("event"), **e)
        for sp in (p.plan for p in self.sites.values()):
            if sp.site.name in moved and sp.site.approach.profile.per_isp_addresses:
                self._send_ras(sp.fabric_dpid)

    # -- packet-in ------------------------------------------------------------------------------------------
    def packet_in(self, dpid: int, in_port: int, data: bytes, now: float) -> None:
        """A packet a switch sent up: a heartbeat reply, an ICMPv6 error, a TCP segment's copy, the mapping
        service's answer, a far edge's message, neighbour discovery, or a packet waiting for a decision."""
        where = self.where(dpid)
        if where is None:
            return
        sp, role = where
        token = packets.echo_token(data, sp.exit(role).address.ip) if role != "fabric" else None
        if token is not None:
            self._after(self.liveness.echo_reply(role, token, now), now)
            if self.liveness.forged:
                self.counters["forged_echo_replies"] = self.liveness.forged
            return
        quote = packets.unreachable_quote(data) if role != "fabric" else None
        if quote is not None:  # icmp trigger: the ISP behind this exit cannot reach a destination
            # RFC 5927's first check: the error must quote a packet this exit sent, from one of its own
            # locators; anyone can forge an error, but not one about a packet that left through another exit.
            if not any(quote[0] in p for p in self.exit_sources.get(role, ())):
                self.counters["icmp_error_not_ours"] += 1
                return
            self._after(self.liveness.icmp_unreachable(role, str(quote[1]), now), now)
            return
        watch = self.transport.get(sp.site.name) if role == "fabric" else None
        if watch is not None and (tcp := packets.read_tcp(data)) is not None:
            self._segment(sp, watch, tcp, now)  # a copy: the rule forwarded the segment itself
            return
        udp = packets.read_udp(data) if role != "fabric" else None
        if udp is not None and udp.dst == edge_address(sp.exit(role).delegation):  # the edge's own traffic
            if udp.sport == knot.DNS_PORT:
                self._mapping_answer(sp, udp, now)
                return
            message = packets.read_pair_message(data)
            if message is not None:
                self._pair_message(sp, role, message, now)
                return
        pkt = packets.parse(data)
        contacts = self.contacts.get(sp.site.name)
        own = self.resolvers.get(sp.site.name)
        if pkt.kind == "ns" and pkt.src is not None:
            self._answer_ns(dpid, sp, role, in_port, pkt)
        elif pkt.kind == "rs" and role == "fabric":
            self._send_ra(dpid, sp, in_port)
        elif pkt.kind == "na" and role == "fabric":
            self._neighbour_advert(dpid, sp, in_port, pkt, now)
        elif pkt.kind not in ("ipv6", "echo_reply") or pkt.src is None or pkt.dst is None:  # echo replies: data here
            self.counters["dropped_packet_in"] += 1
        elif role == "fabric" and own is not None and any(pkt.dst in s for s in own.subnets):
            self._resolve(dpid, sp, pkt, data, now)  # one of the site's own addresses, not resolved yet
        elif role != "fabric" and sp.site.name in self.translated:
            self._translate(dpid, sp, role, in_port, pkt, data, now)
        elif contacts is not None and (role == "fabric" or in_port == sp.exit(role).inside_port):
            self._contact(sp, contacts.toward(pkt.dst, Held(data, dpid, in_port, now),
                                              self.edges[sp.site.name].records, now), now)
        elif contacts is not None:
            self._contact(sp, contacts.arrived(pkt.src, Held(data, dpid, in_port, now),
                                               self.edges[sp.site.name].records, now), now)
        elif role == "fabric":
            self._stale_source(dpid, sp, in_port, pkt, data, now)
        else:
            self.counters["dropped_packet_in"] += 1

    def _translate(self, dpid: int, sp: SitePlan, role: str, in_port: int, pkt: packets.Parsed, data: bytes,
                   now: float) -> None:
        """nptv6 beyond /48: an address whose exits have no translation yet, met leaving (its identity) or
        arriving (its locator through this exit). Its exact translations go to every exit at the next
        :meth:`flush` (with every other address learnt by then), the oldest beyond MAX_TRANSLATED giving way,
        and the packet goes back through the exit's table after them, now translated."""
        pol, e = self.sites[sp.site.name], sp.exit(role)
        assert pkt.src is not None and pkt.dst is not None
        try:
            if in_port == e.inside_port and any(pkt.src in s for s in pol.subnets()):
                ident = pkt.src
            elif in_port == e.outside_port and any(pkt.dst in pol.locator_subnet(s, e.name) for s in pol.subnets()):
                ident = pol.translators[e.name].to_inside(pkt.dst)
            else:
                self.counters["dropped_packet_in"] += 1
                return
            for tr in pol.translators.values():  # every exit will hold its translation: each must exist
                tr.to_outside(ident)
        except Untranslatable:  # RFC 6296 3.6: an identifier of 0xFFFF words only has no translation
            self.counters["untranslatable"] += 1
            return
        known = self.translated[sp.site.name]
        if ident not in known:
            if len(known) >= MAX_TRANSLATED:
                self._forget(sp.site.name, next(iter(known)))  # the oldest gives way, and its slot
            self.active[sp.site.name][ident] = now
            taken = set(known.values())
            known[ident] = next(i for i in range(MAX_TRANSLATED + 1) if i not in taken)
            # States before this one do not recur (translations only accumulate): caching them would hold a
            # thousand addresses' rule sets each, for nothing.
            self.policies.clear()
            self.learnt.append((now, Log(Event.TRANSLATION_LEARNED, {"site": sp.site.name, "address": str(ident),
                                                                     "exit": role, "translated": len(known)})))
        elif "translation" not in self.flushing:  # known and pushed: its rules were on their way when it came up
            self.out.append(Release(dpid, in_port, data))
            return
        self._after_flush("translation", [Release(dpid, in_port, data)])

    def _after_flush(self, cause: str, then: list[Release | PacketOut]) -> None:
        """Push for ``cause`` at the next :meth:`flush` (asked for once a batch), and send ``then`` after it."""
        if not self.flushing:
            self.out.append(FLUSH_LATER)
        self.flushing.add(cause)
        self.unflushed += then

    def _forget(self, site: str, ident: IPv6Address) -> None:
        del self.translated[site][ident]
        self.active[site].pop(ident, None)
        self.seen[site].pop(ident, None)

    def poll_interval(self) -> float | None:
        """How often the shell calls :meth:`poll`: a quarter of the shortest ``translation_idle_s`` of the sites
        whose exits translate address by address; None where there is none."""
        idle = [self.sites[site].plan.site.translation_idle for site in self.translated]
        return min(idle) / 4 if idle else None

    def poll(self, now: float) -> None:
        """Ask each exit of a site that has learnt translations for its rules' packet counts."""
        for site, known in self.translated.items():
            if known:
                self.out += [CountRequest(e.dpid) for e in self.sites[site].plan.exits if e.dpid in self.installed]

    def counts(self, dpid: int, rows: Iterable[tuple[HeldRule, int]], more: bool, now: float) -> None:
        """Part of an exit's answer to a :class:`CountRequest`: each rule with its packet count. A learnt address
        whose rules (either way, at this exit) counted a packet since the last answer is in use now; once the
        whole answer is in, an address unused for its site's ``translation_idle_s`` is forgotten and its rules
        leave every exit (a later packet of it is learnt again)."""
        where = self.where(dpid)
        if where is None or where[0].site.name not in self.translated or where[1] == "fabric":
            return
        sp, role = where
        site, tr = sp.site.name, self.sites[sp.site.name].translators[role]
        known, active, seen = self.translated[site], self.active[site], self.seen[site]
        for rule, count in rows:
            ident = _learnt(dict(rule[1]), tr, known)
            if ident is not None and seen.setdefault(ident, {}).get((dpid, rule), 0) != count:
                seen[ident][(dpid, rule)] = count
                active[ident] = now
        if more:
            return
        idle = sp.site.translation_idle
        gone = [(a, now - active.get(a, now)) for a in known if now - active.get(a, now) >= idle]
        for a, unused in gone:
            self._forget(site, a)
            self.log(Event.TRANSLATION_EXPIRED, site=site, address=str(a), unused_s=round(unused, 3))
        if gone:
            self.counters["translations_expired"] += len(gone)
            self._push("idle", now)

    def flush(self, now: float) -> None:
        """What was learnt since the last flush (translations, neighbours) goes to the switches in one push; then
        the packets that waited for it go on (after the rules, on the same connection)."""
        if not self.flushing:
            return
        self._push("+".join(sorted(self.flushing)), now)
        for met, line in self.learnt:
            line.fields.update(batch=len(self.learnt), waited_ms=round((now - met) * 1000, 3))
        self.out += [line for _, line in self.learnt]
        self.out += self.unflushed
        self.flushing, self.unflushed, self.learnt = set(), [], []

    def _segment(self, sp: SitePlan, watch: RetransmitWatch, tcp: packets.Tcp, now: float) -> None:
        """transport trigger: a TCP flow that keeps repeating a segment keeps its destination away from the
        exit it took; that destination's flows start afresh on the next."""
        if not watch.segment((str(tcp.src), str(tcp.dst), tcp.sport, tcp.dport), tcp.seq, tcp.length, tcp.flags):
            return
        usable = self.liveness.usable()
        live = [e for e in sp.exits if usable.get(e.name, True)]
        e = exit_toward(sp, live, self.liveness.avoided(now), str(tcp.dst))
        if e is not None:
            watch.forget(str(tcp.dst))
            self._after(self.liveness.transport_stalled(e.name, str(tcp.dst), now), now)

    def _pair_message(self, sp: SitePlan, role: str, m: packets.PairMessage, now: float) -> None:
        """A far edge's message reached exit ``role``: hand it to this site's edge, send what it answers."""
        edge = self.edges.get(sp.site.name)
        far = edge.sender(m.src) if edge is not None else None  # from what this site's own edge learned
        if edge is None or m.dst != edge_address(sp.exit(role).delegation):
            self.counters["foreign_pair_message"] += 1
            return
        if far is None:  # an edge this one does not know yet calls: find out whose it is (its packets follow)
            self.counters["foreign_pair_message"] += 1
            self._contact(sp, self.contacts[sp.site.name].arrived(m.src, None, edge.records, now), now)
            return
        down = tuple(e[1] for a in m.down if (e := edge.sender(a)) is not None and e[0] == far[0])
        message = Message(far[0], sp.site.name, far[1], role, m.nonce, m.ask, m.reports, down, m.heard_ms)
        self._after(edge.received(message, now), now)
        self._send_pair_messages(now)
        if edge.unproven:
            for name, n in (("refused_locator_updates", sum(e.refused for e in self.edges.values())),
                            ("unproven_pair_messages", sum(e.unproven for e in self.edges.values())),
                            ("rate_limited_pair_messages", sum(e.limited for e in self.edges.values()))):
                self.counters[name] = n

    # -- the mapping service ---------------------------------------------------------------------------------
    def _register(self, site: str, now: float) -> None:
        sp = self.sites[site].plan
        self.mapping[site].register([(e.name, e.delegation) for e in sp.exits], now)
        self._send_mapping(now)

    def _mapping_answer(self, sp: SitePlan, udp: packets.Udp, now: float) -> None:
        """The mapping service answered one of this site's queries or updates."""
        client = self.mapping.get(sp.site.name)
        if client is None or udp.src != self.mapping_server:
            self.counters["foreign_dns"] += 1
            return
        events = client.received(udp.payload, now)
        if client.dropped:
            self.counters["mapping_dropped"] = sum(c.dropped for c in self.mapping.values())
        contacts = self.contacts[sp.site.name]
        for e in events:
            if e["event"] == Event.MAPPING_RESOLVED:
                self.edges[sp.site.name].learn(client.records[e["peer"]])  # it probes that site from now on
                self._contact(sp, contacts.resolved(IPv6Address(e["address"]), self.edges[sp.site.name].records), now)
            elif e["event"] == Event.MAPPING_UNKNOWN:
                self._contact(sp, contacts.unknown(IPv6Address(e["address"]), e["tree"], now), now)
        self._after(events, now)
        self._send_pair_messages(now)
        self._send_mapping(now)

    def _contact(self, sp: SitePlan, effects: Effects, now: float) -> None:
        """Act on what the site's contacts decided: look up, push the rules, then put held packets back through
        the table of the switch that sent each up (with its original in_port)."""
        site = sp.site.name
        effects.dropped += self.contacts[site].expire(now)
        client = self.mapping.get(site)
        if client is None:  # a site running without id-loc support: nobody to ask
            effects = self.contacts[site].without_service(effects, now)
        if client is not None:
            for address, tree in effects.want:
                client.want(address, now, tree)
            for address in effects.forget:
                client.forget(address)
        if effects.changed:
            self._push("contact", now)
        for h in effects.release:
            if h.dpid in self.connected:
                self.out.append(Release(h.dpid, h.in_port, h.data))
        if effects.release:
            self.log(Event.CONTACT_RELEASED, site=site, packets=len(effects.release),
                     waited_ms=round((now - min(h.t for h in effects.release)) * 1000, 3))
        if effects.dropped:
            self.counters["contact_dropped"] += effects.dropped
        if effects.want:
            self._send_mapping(now)

    def _send_mapping(self, now: float) -> None:
        """The mapping clients' queries and updates that are due, each try through the next usable exit."""
        server = self.mapping_server
        for site, client in self.mapping.items():
            assert server is not None  # a site has a mapping client only where the brief names the server
            out, events = client.poll(now)
            for e in events:
                self.log(e.pop("event"), **e)
            sp = self.sites[site].plan
            edge = self.edges[site]
            ready = [e for e in sp.exits if e.name not in edge.down and e.dpid in self.installed]
            # First through an exit the edge's traffic uses now: the pair protocol found it working.
            active = {c.active.src_exit for c in edge.contexts.values() if c.exploring_since is None}
            ready.sort(key=lambda e: e.name not in active)
            for o in out:
                if not ready:
                    continue  # no exit yet: the retransmission will find one
                x = ready[(o.tries - 1) % len(ready)]
                data = packets.udp_packet(x.mac, x.isp_mac, edge_address(x.delegation), server,
                                          DNS_CLIENT_PORT, knot.DNS_PORT, o.wire)
                self.out.append(PacketOut(x.dpid, x.outside_port, data, x.name))

    # -- neighbour discovery, router advertisements, ICMPv6 -------------------------------------------------
    def _answer_ns(self, dpid: int, sp: SitePlan, role: str, in_port: int, pkt: packets.Parsed) -> None:
        if role == "fabric" and pkt.target == GATEWAY_LL:
            mac = sp.gateway_mac
        elif role != "fabric" and pkt.target == sp.exit(role).address.ip:
            mac = sp.exit(role).mac
        else:
            return
        assert pkt.target is not None
        dst = pkt.src if pkt.src is not None and not pkt.src.is_unspecified else packets.ALL_NODES
        self.out.append(PacketOut(dpid, in_port, packets.neighbor_advert(mac, pkt.target, pkt.eth_src, dst)))

    def _resolve(self, dpid: int, sp: SitePlan, pkt: packets.Parsed, data: bytes, now: float) -> None:
        """A translated packet for an address the fabric cannot deliver: hold it and ask the hosts who has it."""
        resolver = self.resolvers[sp.site.name]
        assert pkt.dst is not None
        for addr in resolver.expire(now):
            self.log(Event.NEIGHBOUR_FAILED, site=sp.site.name, address=str(addr))
        verdict = resolver.miss(pkt.dst, data, now)
        if isinstance(verdict, Neighbour):  # learned, its rule not yet in the fabric: send this one there
            self.out.append(PacketOut(dpid, verdict.port, packets.readdressed(data, sp.gateway_mac, verdict.mac)))
            return
        if not verdict:
            return
        for h in sp.hosts:
            self.out.append(PacketOut(dpid, h.port, packets.neighbor_solicit(sp.gateway_mac, GATEWAY_LL, pkt.dst)))
        self.log(Event.NEIGHBOUR_SOLICIT, site=sp.site.name, address=str(pkt.dst))

    def _neighbour_advert(self, dpid: int, sp: SitePlan, in_port: int, pkt: packets.Parsed, now: float) -> None:
        """A host answered the router's solicitation: deliver to it from now on, and send what was held."""
        resolver = self.resolvers.get(sp.site.name)
        if resolver is None or pkt.target is None or pkt.hop_limit != 255:  # RFC 4861 7.1.2: on-link only
            self.counters["dropped_packet_in"] += 1
            return
        held = resolver.advert(pkt.target, pkt.eth_src, in_port)
        if held is None:
            self.counters["unsolicited_na"] += 1
            return
        self.log(Event.NEIGHBOUR_LEARNED, site=sp.site.name, address=str(pkt.target), mac=pkt.eth_src, port=in_port,
                 held=len(held))
        # A burst of new addresses is a burst of answers too: their rules leave in one push.
        self._after_flush("neighbour", [PacketOut(dpid, in_port, packets.readdressed(data, sp.gateway_mac, pkt.eth_src))
                                        for data in held])

    def _stale_source(self, dpid: int, sp: SitePlan, in_port: int, pkt: packets.Parsed, data: bytes,
                      now: float) -> None:
        """source-routing: a packet from a prefix whose path is dead gets ICMPv6 1/5 (RFC 8678 section 5.3)."""
        pol = self.sites[sp.site.name]
        if pkt.src is None or not pol.owns_source(pkt.src):
            self.counters["spoofed"] += 1
            return
        key = str(pkt.src)
        if now < self.icmp_budget[key]:
            return
        self.icmp_budget[key] = now + 1.0 / ICMP_ERRORS_PER_SECOND
        self.out.append(PacketOut(dpid, in_port, packets.source_policy_failed(sp.gateway_mac, GATEWAY_LL, pkt.eth_src,
                                                                              data)))
        self.log(Event.ICMP_SOURCE_POLICY, site=sp.site.name, src=key, dst=str(pkt.dst))

    def _ra_prefixes(self, sp: SitePlan) -> list[tuple[IPv6Network, int, int]]:
        usable = self.liveness.usable()
        return [(prefix, RA_VALID, RA_VALID if key == "identity" or usable.get(key, True) else 0)
                for key, prefix in sp.prefixes.items()]

    def _send_ra(self, dpid: int, sp: SitePlan, port: int) -> None:
        self.out.append(PacketOut(dpid, port, packets.router_advert(sp.gateway_mac, GATEWAY_LL, self._ra_prefixes(sp))))

    def _send_ras(self, dpid: int) -> None:
        where = self.where(dpid)
        if where is None or dpid not in self.connected or where[1] != "fabric":
            return
        for h in where[0].hosts:
            self._send_ra(dpid, where[0], h.port)

    def advertise(self) -> None:
        """The periodic router advertisements, on every connected fabric."""
        for dpid in sorted(self.connected):
            self._send_ras(dpid)

    # -- time passing ------------------------------------------------------------------------------------
    def probing(self) -> bool:
        """Whether time matters to this process: heartbeats to send, edges to keep, or holds that expire."""
        holds = any({Trigger.ICMP, Trigger.TRANSPORT} & set(pol.plan.site.triggers) for pol in self.sites.values())
        return bool(self.liveness.heartbeat_paths() or self.edges or holds)

    def interval(self) -> float:
        """How often :meth:`probe` is due: the shortest heartbeat or edge interval (1 s with neither)."""
        return min([p.interval for p in self.liveness.heartbeat_paths()]
                   + [edge.interval for edge in self.edges.values()], default=1.0)

    def probe(self, now: float) -> None:
        """One echo request per heartbeat path (a fresh token each, noted as sent), then the edges' messages
        and the mapping clients' queries that are due."""
        self.seq += 1
        for p in self.liveness.heartbeat_paths():
            if p.dpid not in self.installed:
                continue
            e = self.exit_by_name[p.exit]
            token = self.token(ECHO_TOKEN)
            data = packets.echo_request(e.mac, e.isp_mac, e.address.ip, e.beacon, ECHO_ID, self.seq, token)
            self.out.append(PacketOut(p.dpid, e.outside_port, data, p.exit))
            self.liveness.echo_sent(p.exit, token, now)
        self._send_pair_messages(now)
        self._send_mapping(now)

    def next_deadline(self) -> float | None:
        """The earliest moment a silence, a hold or a retransmission is due to be judged."""
        deadlines = [d for d in (self.liveness.next_deadline(), *(e.next_deadline() for e in self.edges.values()),
                                 *(c.next_deadline() for c in self.mapping.values())) if d is not None]
        return min(deadlines, default=None)

    def tick(self, now: float) -> None:
        """Judge what is due at ``now``: heartbeats' silences, holds ending, the edges' probes and timers."""
        self._after(self.liveness.tick(now) + [e for edge in self.edges.values() for e in edge.tick(now)], now)
        self._send_pair_messages(now)
        self._send_mapping(now)

    def _send_pair_messages(self, now: float) -> None:
        """The id-loc edges' messages that are due, each out of its exit's uplink."""
        for edge in self.edges.values():
            for m in edge.due(now):
                x = self.exit_by_name[m.src_exit]
                if x.dpid not in self.installed:
                    continue
                wire = packets.PairMessage(edge_address(x.delegation),
                                           edge.address(edge.records[m.dst_site], m.dst_exit),
                                           m.nonce, m.ask, m.reports,
                                           tuple(edge_address(self.exit_by_name[d].delegation) for d in m.down),
                                           m.heard_ms)
                self.out.append(PacketOut(x.dpid, x.outside_port, packets.pair_message(x.mac, x.isp_mac, wire),
                                          m.src_exit))

    # -- helpers ---------------------------------------------------------------------------------------------
    def where(self, dpid: int) -> tuple[SitePlan, str] | None:
        """The site and role of one of this process's switches; None for a switch of another site's."""
        where = self.brief.site_by_dpid(dpid)
        return where if where is not None and where[0].site.name in self.own else None

    def site(self, dpid: int) -> str | None:
        where = self.where(dpid)
        return where[0].site.name if where is not None else None

    def name(self, dpid: int) -> str:
        return next((name for name, d in self.brief.switches if d == dpid), f"dpid {dpid}")


def _learnt(match: dict[str, Any], tr: Translator, known: Mapping[IPv6Address, int]) -> IPv6Address | None:
    """The learnt address an exit's rule translates (by its exact source leaving, or its locator arriving)."""
    for field_name, inward in (("ipv6_src", False), ("ipv6_dst", True)):
        value = match.get(field_name)
        if not isinstance(value, str):
            continue  # a masked match: a subnet's rule
        try:
            a = IPv6Address(value)
            ident = tr.to_inside(a) if inward else a
        except (ValueError, Untranslatable):
            continue
        if ident in known:
            return ident
    return None

