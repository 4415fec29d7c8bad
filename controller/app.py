"""The thin os-ken shell: decode OpenFlow events, ask the pure policy, send what it says.

Decisions live in :mod:`~multi6lab.controller.policy` (rules), :mod:`~multi6lab.controller.liveness` (which exits
are usable), :mod:`~multi6lab.controller.pairs` (id-loc locator pairs) and :mod:`~multi6lab.controller.packets`
(ND, RA, ICMPv6). This module
only converts between those and OpenFlow messages, keeps what each switch holds, and writes one JSON event
per line with a monotonic timestamp.

Reconnects and restarts reconcile: the switch's own flow table (our cookie) and groups are read back, every
desired rule is (re)added — an ADD with an existing match replaces it without a gap — and only entries that
should not exist are deleted. Traffic keeps flowing through a controller restart.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Hashable
from ipaddress import ip_address, ip_network
from typing import Any

from multi6lab.controller import packets
from multi6lab.controller.compat import (
    CONFIG_DISPATCHER,
    MAIN_DISPATCHER,
    BaseApp,
    conntrack,
    event,
    hub,
    masked_set_field,
    ofp_event,
    ofproto_v1_3,
    set_ev_cls,
)
from multi6lab.controller.contacts import Contacts, Effects, Held
from multi6lab.controller.liveness import Liveness
from multi6lab.controller.mapclient import MappingClient
from multi6lab.controller.neighbours import Neighbour, Resolver
from multi6lab.controller.pairs import Edge, Message, edge_of
from multi6lab.controller.policy import (
    COOKIE,
    OFPP_CONTROLLER,
    OFPP_IN_PORT,
    P_PLAIN,
    P_UPGRADED,
    Action,
    CtCommit,
    CtLookup,
    DecTtl,
    Group,
    Output,
    Rule,
    RuleSet,
    SetField,
    SetPrefix,
    SitePolicy,
    ToController,
    ToGroup,
    desired,
    diff,
    exit_toward,
)
from multi6lab.controller.transport import RetransmitWatch
from multi6lab.topologies import knot
from multi6lab.topologies.addressing import GATEWAY_LL, edge_address
from multi6lab.topologies.plan import Brief
from multi6lab.vocabulary import HOST_CHOOSES, RULE_CHANGING_EVENTS, Approach, Event, Trigger

# Filled by controller.launcher before the framework instantiates the app.
SETTINGS: dict[str, Any] = {"brief": None, "sites": None, "events": None, "ra_interval": 3.0, "mapping_keys": {}}
DNS_CLIENT_PORT = 53053  # the edge's source port toward the mapping service
ECHO_ID = 0x6D36  # the heartbeat echoes' identifier; what proves a reply is the token in its data
ECHO_TOKEN = 16  # bytes from secrets in each heartbeat echo, which its reply must return
ICMP_ERRORS_PER_SECOND = 100
POLICY_CACHE = 256
RA_VALID = 1800


class EventHeartbeatTick(event.EventBase):  # type: ignore[misc]
    """Judge heartbeats in the app's own event queue, after every reply that arrived before it."""


class SiteExitController(BaseApp):  # type: ignore[misc]
    OFP_VERSIONS = (ofproto_v1_3.OFP_VERSION,)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Its brief holds its own sites' plans and nothing of any other site's (topologies.plan.Brief).
        self.brief: Brief = SETTINGS["brief"]
        # The sites this process runs: one (a site's own controller), or a few (a large lab's, to spare Python
        # start-ups). Each site's decisions, and what it learned of far sites, stay its own either way.
        own = [sp for sp in self.brief.sites if SETTINGS["sites"] is None or sp.site.name in SETTINGS["sites"]]
        self.own = {sp.site.name for sp in own if sp.site.approach != Approach.ROUTING}
        self.sites = {sp.site.name: SitePolicy.of(sp) for sp in own}
        self.lock = threading.RLock()
        self.event_log = open(SETTINGS["events"], "a", buffering=1) if SETTINGS["events"] else None  # noqa: SIM115
        self.liveness = Liveness(self.brief, time.monotonic(), self.own)
        # Each id-loc site's edge decides alone, from the messages that reach its own exits, about the far
        # sites the mapping service told it of.
        self.edges: dict[str, Edge] = {sp.site.name: edge_of(self.brief, sp.site.name) for sp in own
                                       if sp.site.approach == Approach.ID_LOC}
        self.mapping_server = self.brief.mapping_server
        self.mapping: dict[str, MappingClient] = {}
        keys = SETTINGS["mapping_keys"]
        for name in self.edges:
            if name in keys and self.mapping_server is not None:
                self.mapping[name] = MappingClient(name, keys[name], self.brief.mapping_ttl_s)
        # Whom each id-loc site talks to: learned from the packets its switches send up, nothing from the plan.
        self.contacts = {name: Contacts() for name in self.edges}
        # The router's neighbour discovery, for translated addresses the plan does not list.
        self.resolvers = {name: Resolver(tuple(pol.subnets()), {h.port for h in pol.plan.hosts})
                          for name, pol in self.sites.items() if pol.translators}
        # The transport trigger's view of each site's outbound TCP flows (the fabric copies their segments).
        self.transport = {name: RetransmitWatch() for name, pol in self.sites.items()
                          if Trigger.TRANSPORT in pol.plan.site.triggers}
        self.exit_by_name = {e.name: e for sp in own for e in sp.exits}
        # What each exit's packets carry as source: any address of its locator /64s (icmp trigger's check).
        self.exit_sources = {e.name: pol.sends_from(e.name) for pol in self.sites.values() for e in pol.plan.exits}
        self.datapaths: dict[int, Any] = {}
        self.installed: dict[int, RuleSet] = {}
        self.policies: dict[Hashable, RuleSet] = {}  # by (usable exits, active pairs, icmp holds)
        self.pending: dict[int, dict[str, Any]] = {}
        self.barriers: dict[int, tuple[float, int]] = {}  # xid -> (sent, push)
        self.pushes = 0  # numbers each push, so a barrier reply names the decision it completes
        self.icmp_budget: dict[str, float] = defaultdict(float)
        self.counters: dict[str, int] = defaultdict(int)
        self.log(Event.CONTROLLER_START, topology=self.brief.topology, sites=sorted(self.own))
        hub.spawn(self._heartbeat_loop)
        hub.spawn(self._ra_loop)

    # -- events out -------------------------------------------------------------------------------------
    def log(self, event: str, **fields: Any) -> None:
        rec = {"t": fields.pop("t", time.monotonic()), "event": event, **fields}
        line = json.dumps(rec, default=str)
        if self.event_log:
            self.event_log.write(line + "\n")
        else:
            self.logger.info(line)

    # -- connection and reconciliation ----------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def on_features(self, ev: Any) -> None:
        dp = ev.msg.datapath
        if self._where(dp.id) is None:
            self.log(Event.UNKNOWN_SWITCH, dpid=dp.id)
            return
        p, o = dp.ofproto_parser, dp.ofproto
        with self.lock:
            self.datapaths[dp.id] = dp
            self.pending[dp.id] = {"rules": set(), "groups": set(), "waiting": {"flows", "groups"}}
        self.log(Event.SWITCH_CONNECTED, dpid=dp.id, switch=self._name(dp.id))
        dp.send_msg(p.OFPSetConfig(dp, o.OFPC_FRAG_NORMAL, 0xFFFF))
        dp.send_msg(p.OFPPortDescStatsRequest(dp, 0))
        dp.send_msg(p.OFPFlowStatsRequest(dp, 0, o.OFPTT_ALL, o.OFPP_ANY, o.OFPG_ANY, COOKIE, 0xFFFFFFFFFFFFFFFF))
        dp.send_msg(p.OFPGroupDescStatsRequest(dp, 0))

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def on_port_desc(self, ev: Any) -> None:
        dp = ev.msg.datapath
        for port in ev.msg.body:
            self._port_state(dp, port)

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def on_flow_stats(self, ev: Any) -> None:
        dp = ev.msg.datapath
        with self.lock:
            st = self.pending.get(dp.id)
            if st is None:
                return
            for s in ev.msg.body:
                st["rules"].add((s.priority, tuple(sorted(s.match.items()))))
            if not ev.msg.flags & dp.ofproto.OFPMPF_REPLY_MORE:
                st["waiting"].discard("flows")
                self._maybe_reconcile(dp)

    @set_ev_cls(ofp_event.EventOFPGroupDescStatsReply, MAIN_DISPATCHER)
    def on_group_desc(self, ev: Any) -> None:
        dp = ev.msg.datapath
        with self.lock:
            st = self.pending.get(dp.id)
            if st is None:
                return
            st["groups"] |= {g.group_id for g in ev.msg.body}
            if not ev.msg.flags & dp.ofproto.OFPMPF_REPLY_MORE:
                st["waiting"].discard("groups")
                self._maybe_reconcile(dp)

    def _maybe_reconcile(self, dp: Any) -> None:
        st = self.pending[dp.id]
        if st["waiting"]:
            return
        del self.pending[dp.id]
        kept = self._read_back(dp.id, st["rules"])
        want = self._desired().for_dpid(dp.id)
        have_rules = {(r.priority, r.match) for r in want.rules}
        stale = [(prio, m) for prio, m in st["rules"] if (prio, m) not in have_rules]
        want_gids = {g.group_id for g in want.groups}
        o = dp.ofproto
        for g in sorted(want.groups):
            self._send_group(dp, g, o.OFPGC_MODIFY if g.group_id in st["groups"] else o.OFPGC_ADD)
        for r in sorted(want.rules):
            self._send_rule(dp, r, o.OFPFC_ADD)
        for prio, m in stale:
            self._send_rule(dp, Rule(dp.id, prio, m), o.OFPFC_DELETE_STRICT)
        for gid in st["groups"] - want_gids:
            dp.send_msg(dp.ofproto_parser.OFPGroupMod(dp, o.OFPGC_DELETE, o.OFPGT_ALL, gid, []))
        self.installed[dp.id] = want
        self._barrier(dp, "reconcile", len(want.rules) + len(want.groups), stale=len(stale))
        self._send_ras(dp.id)
        where = self._where(dp.id)
        if where is not None and where[1] != "fabric" and where[0].site.name in self.mapping:
            self._register(where[0].site.name)  # an exit can carry the registration now (again, after a restart)
        if kept is not None and where is not None:
            self._contact(where[0], kept)

    def _read_back(self, dpid: int, held: set[tuple[int, Any]]) -> Effects | None:
        """What an id-loc exit's flow table says its site had found plain, and upgraded, before this controller
        started: those sessions' connection-tracking marks are still in the data plane, and keep them plain only
        if the rules that read the marks stay."""
        where = self._where(dpid)
        contacts = self.contacts.get(where[0].site.name) if where is not None and where[1] != "fabric" else None
        if contacts is None:
            return None

        def sources(priority: int) -> list[Any]:
            masked = [dict(m)["ipv6_src"] for prio, m in held
                      if prio == priority and isinstance(dict(m).get("ipv6_src"), tuple)]
            return sorted({ip_network((a, bin(int(ip_address(mask))).count("1"))) for a, mask in masked})

        return contacts.recovered(sources(P_PLAIN), sources(P_UPGRADED), time.monotonic())

    # -- pushing changes ---------------------------------------------------------------------------------
    def _push(self, cause: str) -> None:
        """Send each connected switch the difference between what it holds and what the policy wants now.

        Every switch gets its messages first; barriers and log lines follow, so the last switch's change
        is not delayed by the bookkeeping of the first.
        """
        want = self._desired()
        sent = []
        self.pushes += 1
        for dpid, dp in list(self.datapaths.items()):
            if dpid not in self.installed:
                continue  # still reconciling; it will get the current state
            target = want.for_dpid(dpid)
            ch = diff(self.installed[dpid], target)
            if not len(ch):
                continue
            o = dp.ofproto
            for g in ch.add_groups:
                self._send_group(dp, g, o.OFPGC_ADD)
            for g in ch.modify_groups:
                self._send_group(dp, g, o.OFPGC_MODIFY)
            for r in ch.add_rules:
                self._send_rule(dp, r, o.OFPFC_ADD)
            for r in ch.delete_rules:
                self._send_rule(dp, r, o.OFPFC_DELETE_STRICT)
            for g in ch.delete_groups:
                dp.send_msg(dp.ofproto_parser.OFPGroupMod(dp, o.OFPGC_DELETE, o.OFPGT_ALL, g.group_id, []))
            self.installed[dpid] = target
            sent.append((dp, len(ch)))
        for dp, n in sent:
            self._barrier(dp, cause, n, push=self.pushes)

    def _desired(self) -> RuleSet:
        """The policy for the current state. States recur (every trial fails the same exit), and computing
        the policy costs ~3 ms of Python on a busy machine, all of it before the first FlowMod leaves: each
        state's policy is computed once."""
        pairs = {k: v for edge in self.edges.values() for k, v in edge.active().items()}
        records = {(site, far): r for site, edge in self.edges.items() for far, r in edge.records.items()}
        usable, avoid = self.liveness.usable(), self.liveness.avoided(time.monotonic())
        learned = {site: dict(r.learned) for site, r in self.resolvers.items()}
        far = {k: v for site, c in self.contacts.items() for k, v in c.far_subnets(site).items()}
        plain = {site: frozenset(c.plain) for site, c in self.contacts.items()}
        upgraded = {site: frozenset(c.upgraded) for site, c in self.contacts.items()}
        slots = {(site, far): i for site, edge in self.edges.items() for far, i in edge.slots.items()}
        key = (frozenset(usable.items()), frozenset(pairs.items()), frozenset(slots.items()),
               frozenset((k, frozenset(v)) for k, v in avoid.items()), frozenset(records.items()),
               frozenset((k, frozenset(v.items())) for k, v in learned.items()), frozenset(far.items()),
               frozenset(plain.items()), frozenset(upgraded.items()))
        if key not in self.policies:
            if len(self.policies) >= POLICY_CACHE:  # icmp holds name destinations: keep the cache bounded
                self.policies.clear()
            self.policies[key] = desired(self.brief, usable, pairs, avoid, self.own, records, learned, far, plain,
                                         upgraded, slots)
        return self.policies[key]

    def _barrier(self, dp: Any, cause: str, n: int, push: int = 0, **extra: Any) -> None:
        req = dp.ofproto_parser.OFPBarrierRequest(dp)
        dp.set_xid(req)
        self.barriers[req.xid] = (time.monotonic(), push)
        self.log(Event.RULES_SENT, dpid=dp.id, switch=self._name(dp.id), site=self._site(dp.id), cause=cause,
                 changes=n, push=push, **extra)
        dp.send_msg(req)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def on_barrier(self, ev: Any) -> None:
        sent = self.barriers.pop(ev.msg.xid, None)
        if sent is not None:
            dpid = ev.msg.datapath.id
            self.log(Event.BARRIER_OK, dpid=dpid, site=self._site(dpid), push=sent[1],
                     rtt_ms=round((time.monotonic() - sent[0]) * 1000, 3))

    def _send_rule(self, dp: Any, r: Rule, command: int) -> None:
        p, o = dp.ofproto_parser, dp.ofproto
        inst = [p.OFPInstructionActions(o.OFPIT_APPLY_ACTIONS, self._actions(dp, r.actions))] if r.actions else []
        dp.send_msg(p.OFPFlowMod(dp, cookie=COOKIE, command=command, priority=r.priority,
                                 match=p.OFPMatch(**dict(r.match)), instructions=inst,
                                 out_port=o.OFPP_ANY, out_group=o.OFPG_ANY))

    def _send_group(self, dp: Any, g: Group, command: int) -> None:
        p, o = dp.ofproto_parser, dp.ofproto
        kind = {"ff": o.OFPGT_FF, "select": o.OFPGT_SELECT}[g.kind]
        buckets = [p.OFPBucket(weight=b.weight, watch_port=b.watch_port if b.watch_port is not None else o.OFPP_ANY,
                               watch_group=o.OFPG_ANY, actions=self._actions(dp, b.actions)) for b in g.buckets]
        dp.send_msg(p.OFPGroupMod(dp, command, kind, g.group_id, buckets))

    @staticmethod
    def _actions(dp: Any, actions: tuple[Action, ...]) -> list[Any]:
        p, o = dp.ofproto_parser, dp.ofproto
        out = []
        for a in actions:
            if isinstance(a, Output):
                out.append(p.OFPActionOutput(o.OFPP_IN_PORT if a.port == OFPP_IN_PORT else a.port))
            elif isinstance(a, ToController):
                out.append(p.OFPActionOutput(OFPP_CONTROLLER, o.OFPCML_NO_BUFFER))
            elif isinstance(a, SetField):
                out.append(p.OFPActionSetField(**{a.field: a.value}))
            elif isinstance(a, SetPrefix):  # Open vSwitch's masked set-field (NXAST_REG_LOAD2)
                net = ip_network(a.prefix)
                out.append(masked_set_field(p, a.field, str(net.network_address), str(net.netmask)))
            elif isinstance(a, DecTtl):
                out.append(p.OFPActionDecNwTtl())
            elif isinstance(a, ToGroup):
                out.append(p.OFPActionGroup(a.group_id))
            elif isinstance(a, CtCommit):
                out.append(conntrack(p, a.zone, mark=a.mark))
            elif isinstance(a, CtLookup):
                out.append(conntrack(p, a.zone, table=a.table))
            else:
                raise ValueError(f"unknown action {a!r}")
        return out

    # -- port status (link trigger) -------------------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def on_port_status(self, ev: Any) -> None:
        self._port_state(ev.msg.datapath, ev.msg.desc)

    def _port_state(self, dp: Any, port: Any) -> None:
        o = dp.ofproto
        # OVS sends two PortStatus per event and the first has no down bits: decide on state/config only.
        up = not (port.state & o.OFPPS_LINK_DOWN) and not (port.config & o.OFPPC_PORT_DOWN)
        now = time.monotonic()
        with self.lock:
            events = self.liveness.port_status(dp.id, port.port_no, up, now)
            where = self._where(dp.id)
            edge = self.edges.get(where[0].site.name) if where else None
            if where and edge and where[1] != "fabric" and where[0].exit(where[1]).outside_port == port.port_no:
                events += edge.link(where[1], up, now)
            # The locator update leaves before this site's own push: the fast-failover groups have already
            # moved the outbound traffic, and the far site's inbound traffic waits on this message alone.
            self._send_pair_messages(now)
            self._after(events)

    def _after(self, events: list[dict[str, Any]]) -> None:
        """Act on liveness events: probe, push rules, re-advertise prefixes; then write the events down."""
        changed = any(e["event"] in RULE_CHANGING_EVENTS for e in events)
        # Only source-routing hosts see a path change in RAs (a deprecated prefix); nobody else needs one.
        moved = {e.get("site") for e in events if e["event"] in (Event.PATH_DEAD, Event.PATH_ALIVE)}
        if changed:
            self._push("liveness")
        for e in events:
            self.log(e.pop("event"), **e)
        for sp in (p.plan for p in self.sites.values()):
            if sp.site.name in moved and sp.site.approach in HOST_CHOOSES:
                self._send_ras(sp.fabric_dpid)

    # -- packet-in ------------------------------------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def on_packet_in(self, ev: Any) -> None:
        msg = ev.msg
        dp = msg.datapath
        where = self._where(dp.id)
        if where is None:
            return
        sp, role = where
        in_port = msg.match["in_port"]
        token = packets.echo_token(msg.data, sp.exit(role).address.ip) if role != "fabric" else None
        if token is not None:
            with self.lock:
                self._after(self.liveness.echo_reply(role, token, time.monotonic()))
                if self.liveness.forged:
                    self.counters["forged_echo_replies"] = self.liveness.forged
            return
        quote = packets.unreachable_quote(msg.data) if role != "fabric" else None
        if quote is not None:  # icmp trigger: the ISP behind this exit cannot reach a destination
            # RFC 5927's first check: the error must quote a packet this exit sent, from one of its own
            # locators; anyone can forge an error, but not one about a packet that left through another exit.
            if not any(quote[0] in p for p in self.exit_sources.get(role, ())):
                self.counters["icmp_error_not_ours"] += 1
                return
            with self.lock:
                self._after(self.liveness.icmp_unreachable(role, str(quote[1]), time.monotonic()))
            return
        watch = self.transport.get(sp.site.name) if role == "fabric" else None
        if watch is not None and (tcp := packets.read_tcp(msg.data)) is not None:
            self._segment(sp, watch, tcp)  # a copy: the rule forwarded the segment itself
            return
        udp = packets.read_udp(msg.data) if role != "fabric" else None
        mine = udp is not None and udp.dst == edge_address(sp.exit(role).delegation)  # the edge's own traffic
        if mine and udp.sport == knot.DNS_PORT:  # type: ignore[union-attr]
            self._mapping_answer(sp, udp)
            return
        message = packets.read_pair_message(msg.data) if mine else None
        if message is not None:
            self._pair_message(sp, role, message)
            return
        pkt = packets.parse(msg.data)
        contacts = self.contacts.get(sp.site.name)
        own = self.resolvers.get(sp.site.name)
        if pkt.kind == "ns" and pkt.src is not None:
            self._answer_ns(dp, sp, role, in_port, pkt)
        elif pkt.kind == "rs" and role == "fabric":
            self._send_ra(dp, sp, in_port)
        elif pkt.kind == "na" and role == "fabric":
            self._neighbour_advert(dp, sp, in_port, pkt)
        elif pkt.kind not in ("ipv6", "echo_reply") or pkt.src is None or pkt.dst is None:  # echo replies: data here
            self.counters["dropped_packet_in"] += 1
        elif role == "fabric" and own is not None and any(pkt.dst in s for s in own.subnets):
            self._resolve(dp, sp, pkt, msg.data)  # one of the site's own addresses, not resolved yet
        elif contacts is not None and (role == "fabric" or in_port == sp.exit(role).inside_port):
            self._contact(sp, contacts.toward(pkt.dst, Held(msg.data, dp.id, in_port, time.monotonic()),
                                              self.edges[sp.site.name].records, time.monotonic()))
        elif contacts is not None:
            self._contact(sp, contacts.arrived(pkt.src, Held(msg.data, dp.id, in_port, time.monotonic()),
                                               self.edges[sp.site.name].records, time.monotonic()))
        elif role == "fabric":
            self._stale_source(dp, sp, in_port, pkt, msg.data)
        else:
            self.counters["dropped_packet_in"] += 1

    def _segment(self, sp: Any, watch: RetransmitWatch, tcp: packets.Tcp) -> None:
        """transport trigger: a TCP flow that keeps repeating a segment keeps its destination away from the
        exit it took; that destination's flows start afresh on the next."""
        if not watch.segment((str(tcp.src), str(tcp.dst), tcp.sport, tcp.dport), tcp.seq, tcp.length, tcp.flags):
            return
        now = time.monotonic()
        with self.lock:
            usable = self.liveness.usable()
            live = [e for e in sp.exits if usable.get(e.name, True)]
            e = exit_toward(sp, live, self.liveness.avoided(now), str(tcp.dst))
            if e is not None:
                watch.forget(str(tcp.dst))
                self._after(self.liveness.transport_stalled(e.name, str(tcp.dst), now))

    def _pair_message(self, sp: Any, role: str, m: packets.PairMessage) -> None:
        """A far edge's message reached exit ``role``: hand it to this site's edge, send what it answers."""
        edge = self.edges.get(sp.site.name)
        far = edge.sender(m.src) if edge is not None else None  # from what this site's own edge learned
        if edge is None or m.dst != edge_address(sp.exit(role).delegation):
            self.counters["foreign_pair_message"] += 1
            return
        if far is None:  # an edge this one does not know yet calls: find out whose it is (its packets follow)
            self.counters["foreign_pair_message"] += 1
            self._contact(sp, self.contacts[sp.site.name].arrived(m.src, None, edge.records, time.monotonic()))
            return
        down = tuple(e[1] for a in m.down if (e := edge.sender(a)) is not None and e[0] == far[0])
        message = Message(far[0], sp.site.name, far[1], role, m.nonce, m.ask, m.reports, down, m.heard_ms)
        now = time.monotonic()
        with self.lock:
            self._after(edge.received(message, now))
            self._send_pair_messages(now)
            if edge.unproven:
                for name, n in (("refused_locator_updates", sum(e.refused for e in self.edges.values())),
                                ("unproven_pair_messages", sum(e.unproven for e in self.edges.values())),
                                ("rate_limited_pair_messages", sum(e.limited for e in self.edges.values()))):
                    self.counters[name] = n

    # -- the mapping service ---------------------------------------------------------------------------------
    def _register(self, site: str) -> None:
        sp = self.sites[site].plan
        self.mapping[site].register([(e.name, e.delegation) for e in sp.exits], time.monotonic())
        self._send_mapping(time.monotonic())

    def _mapping_answer(self, sp: Any, udp: packets.Udp) -> None:
        """The mapping service answered one of this site's queries or updates."""
        client = self.mapping.get(sp.site.name)
        if client is None or udp.src != self.mapping_server:
            self.counters["foreign_dns"] += 1
            return
        now = time.monotonic()
        with self.lock:
            events = client.received(udp.payload, now)
            if client.dropped:
                self.counters["mapping_dropped"] = sum(c.dropped for c in self.mapping.values())
            contacts = self.contacts[sp.site.name]
            for e in events:
                if e["event"] == Event.MAPPING_RESOLVED:
                    self.edges[sp.site.name].learn(client.records[e["peer"]])  # it probes that site from now on
                    self._contact(sp, contacts.resolved(ip_address(e["address"]), self.edges[sp.site.name].records))
                elif e["event"] == Event.MAPPING_UNKNOWN:
                    self._contact(sp, contacts.unknown(ip_address(e["address"]), e["tree"], now))
            self._after(events)
            self._send_pair_messages(now)
            self._send_mapping(now)

    def _contact(self, sp: Any, effects: Effects) -> None:
        """Act on what the site's contacts decided: look up, push the rules, then put held packets back through
        the table of the switch that sent each up (with its original in_port)."""
        site = sp.site.name
        now = time.monotonic()
        with self.lock:
            effects.dropped += self.contacts[site].expire(now)
            client = self.mapping.get(site)
            if client is None:  # a site running without id-loc support: nobody to ask
                effects = self.contacts[site].without_service(effects, now)
            for address, tree in effects.want if client is not None else ():
                client.want(address, now, tree)
            for address in effects.forget if client is not None else ():
                client.forget(address)
            if effects.changed:
                self._push("contact")
        for h in effects.release:
            dp = self.datapaths.get(h.dpid)
            if dp is not None:
                p, o = dp.ofproto_parser, dp.ofproto
                dp.send_msg(p.OFPPacketOut(dp, buffer_id=o.OFP_NO_BUFFER, in_port=h.in_port,
                                           actions=[p.OFPActionOutput(o.OFPP_TABLE)], data=h.data))
        if effects.release:
            self.log(Event.CONTACT_RELEASED, site=site, packets=len(effects.release),
                     waited_ms=round((now - min(h.t for h in effects.release)) * 1000, 3))
        if effects.dropped:
            self.counters["contact_dropped"] += effects.dropped
        if effects.want:
            self._send_mapping(now)

    def _send_mapping(self, now: float) -> None:
        """The mapping clients' queries and updates that are due, each try through the next usable exit."""
        for site, client in self.mapping.items():
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
                data = packets.udp_packet(x.mac, x.isp_mac, edge_address(x.delegation), self.mapping_server,
                                          DNS_CLIENT_PORT, knot.DNS_PORT, o.wire)
                try:
                    self._packet_out(self.datapaths[x.dpid], x.outside_port, data)
                except Exception as exc:
                    self.log(Event.HEARTBEAT_ERROR, exit=x.name, error=str(exc))

    def _answer_ns(self, dp: Any, sp: Any, role: str, in_port: int, pkt: packets.Parsed) -> None:
        if role == "fabric" and pkt.target == GATEWAY_LL:
            mac = sp.gateway_mac
        elif role != "fabric" and pkt.target == sp.exit(role).address.ip:
            mac = sp.exit(role).mac
        else:
            return
        dst = pkt.src if pkt.src is not None and not pkt.src.is_unspecified else packets.ALL_NODES
        self._packet_out(dp, in_port, packets.neighbor_advert(mac, pkt.target, pkt.eth_src, dst))

    def _resolve(self, dp: Any, sp: Any, pkt: packets.Parsed, data: bytes) -> None:
        """A translated packet for an address the fabric cannot deliver: hold it and ask the hosts who has it."""
        resolver = self.resolvers.get(sp.site.name)
        if resolver is None or pkt.dst is None:
            self.counters["dropped_packet_in"] += 1
            return
        now = time.monotonic()
        with self.lock:
            for addr in resolver.expire(now):
                self.log(Event.NEIGHBOUR_FAILED, site=sp.site.name, address=str(addr))
            verdict = resolver.miss(pkt.dst, data, now)
        if isinstance(verdict, Neighbour):  # learned, its rule not yet in the fabric: send this one there
            self._packet_out(dp, verdict.port, packets.readdressed(data, sp.gateway_mac, verdict.mac))
            return
        if not verdict:
            return
        for h in sp.hosts:
            self._packet_out(dp, h.port, packets.neighbor_solicit(sp.gateway_mac, GATEWAY_LL, pkt.dst))
        self.log(Event.NEIGHBOUR_SOLICIT, site=sp.site.name, address=str(pkt.dst))

    def _neighbour_advert(self, dp: Any, sp: Any, in_port: int, pkt: packets.Parsed) -> None:
        """A host answered the router's solicitation: deliver to it from now on, and send what was held."""
        resolver = self.resolvers.get(sp.site.name)
        if resolver is None or pkt.target is None or pkt.hop_limit != 255:  # RFC 4861 7.1.2: on-link only
            self.counters["dropped_packet_in"] += 1
            return
        with self.lock:
            held = resolver.advert(pkt.target, pkt.eth_src, in_port)
            if held is None:
                self.counters["unsolicited_na"] += 1
                return
            self._push("neighbour")
        self.log(Event.NEIGHBOUR_LEARNED, site=sp.site.name, address=str(pkt.target), mac=pkt.eth_src, port=in_port,
                 held=len(held))
        for data in held:
            self._packet_out(dp, in_port, packets.readdressed(data, sp.gateway_mac, pkt.eth_src))

    def _stale_source(self, dp: Any, sp: Any, in_port: int, pkt: packets.Parsed, data: bytes) -> None:
        """source-routing: a packet from a prefix whose path is dead gets ICMPv6 1/5 (RFC 8678 section 5.3)."""
        pol = self.sites[sp.site.name]
        if pkt.src is None or not pol.owns_source(pkt.src):
            self.counters["spoofed"] += 1
            return
        now = time.monotonic()
        key = str(pkt.src)
        if now < self.icmp_budget[key]:
            return
        self.icmp_budget[key] = now + 1.0 / ICMP_ERRORS_PER_SECOND
        self._packet_out(dp, in_port, packets.source_policy_failed(sp.gateway_mac, GATEWAY_LL, pkt.eth_src, data))
        self.log(Event.ICMP_SOURCE_POLICY, site=sp.site.name, src=key, dst=str(pkt.dst))

    def _packet_out(self, dp: Any, port: int, data: bytes) -> None:
        p, o = dp.ofproto_parser, dp.ofproto
        dp.send_msg(p.OFPPacketOut(dp, buffer_id=o.OFP_NO_BUFFER, in_port=o.OFPP_CONTROLLER,
                                   actions=[p.OFPActionOutput(port)], data=data))

    # -- router advertisements -------------------------------------------------------------------------------
    def _ra_prefixes(self, sp: Any) -> list[tuple[Any, int, int]]:
        usable = self.liveness.usable()
        out = []
        for key, prefix in sp.prefixes.items():
            preferred = RA_VALID if key == "identity" or usable.get(key, True) else 0
            out.append((prefix, RA_VALID, preferred))
        return out

    def _send_ra(self, dp: Any, sp: Any, port: int) -> None:
        self._packet_out(dp, port, packets.router_advert(sp.gateway_mac, GATEWAY_LL, self._ra_prefixes(sp)))

    def _send_ras(self, dpid: int) -> None:
        where = self._where(dpid)
        dp = self.datapaths.get(dpid)
        if where is None or dp is None or where[1] != "fabric":
            return
        for h in where[0].hosts:
            self._send_ra(dp, where[0], h.port)

    def _ra_loop(self) -> None:
        """Periodic RAs, and the drop counters (unparseable or spoofed packet-ins) whenever they change."""
        reported: dict[str, int] = {}
        while True:
            hub.sleep(SETTINGS["ra_interval"])
            if self.counters != reported:
                reported = dict(self.counters)
                self.log(Event.COUNTERS, **reported)
            for dpid in list(self.datapaths):
                try:
                    self._send_ras(dpid)
                except Exception as exc:  # a switch that went away mid-send
                    self.log(Event.RA_ERROR, dpid=dpid, error=str(exc))

    # -- heartbeats ------------------------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        """Send one echo request per heartbeat path every interval, and wake for every deadline (a silence, an
        icmp or transport hold ending); judging happens in the event queue."""
        paths = self.liveness.heartbeat_paths()
        holds = any({Trigger.ICMP, Trigger.TRANSPORT} & set(pol.plan.site.triggers) for pol in self.sites.values())
        if not paths and not self.edges and not holds:
            return  # nothing to probe, and nothing that expires
        probes = []
        for p in paths:
            where = self._where(p.dpid)
            assert where is not None
            probes.append((p, where[0].exit(p.exit)))
        # With no probes to send (only icmp or transport holds), the loop just wakes for their deadlines.
        interval = min([p.interval for p in paths] + [edge.interval for edge in self.edges.values()], default=1.0)
        next_probe = time.monotonic()
        seq = 0
        judged: float | None = None  # the deadline a tick was already posted for
        while True:
            now = time.monotonic()
            if now >= next_probe:
                seq += 1
                for p, e in probes:
                    dp = self.datapaths.get(p.dpid)
                    if dp is None or p.dpid not in self.installed:
                        continue
                    # A fresh token per echo; noted under the lock, so its reply cannot be judged first.
                    token = secrets.token_bytes(ECHO_TOKEN)
                    data = packets.echo_request(e.mac, e.isp_mac, e.address.ip, e.beacon, ECHO_ID, seq, token)
                    with self.lock:
                        try:
                            self._packet_out(dp, e.outside_port, data)
                        except Exception as exc:
                            self.log(Event.HEARTBEAT_ERROR, exit=p.exit, error=str(exc))
                        else:
                            self.liveness.echo_sent(p.exit, token, now)
                with self.lock:
                    self._send_pair_messages(now)
                    self._send_mapping(now)
                next_probe = max(next_probe + interval, now)  # fell behind: do not burst to catch up
            # Wake for the next probe, or exactly at the earliest detection deadline, whichever is first:
            # judging only on probe ticks would add up to one interval to every detection.
            deadlines = [d for d in (self.liveness.next_deadline(), *(e.next_deadline() for e in self.edges.values()),
                                     *(c.next_deadline() for c in self.mapping.values())) if d is not None]
            deadline = min(deadlines, default=None)
            if deadline == judged:
                deadline = None  # its tick is queued; do not post it again
            wake = next_probe if deadline is None else min(next_probe, deadline + 0.0002)
            delay = wake - time.monotonic()
            if delay > 0:
                hub.sleep(delay)
            if deadline is not None and time.monotonic() >= deadline:
                judged = deadline
                self.send_event(self.name, EventHeartbeatTick())

    @set_ev_cls(EventHeartbeatTick)
    def on_heartbeat_tick(self, ev: EventHeartbeatTick) -> None:
        now = time.monotonic()
        with self.lock:
            self._after(self.liveness.tick(now) + [e for edge in self.edges.values() for e in edge.tick(now)])
            self._send_pair_messages(now)
            self._send_mapping(now)

    def _send_pair_messages(self, now: float) -> None:
        """The id-loc edges' messages that are due, each out of its exit's uplink; caller holds the lock."""
        for edge in self.edges.values():
            for m in edge.due(now):
                x = self.exit_by_name[m.src_exit]
                dp = self.datapaths.get(x.dpid)
                if dp is None or x.dpid not in self.installed:
                    continue
                wire = packets.PairMessage(edge_address(x.delegation),
                                           edge.address(edge.records[m.dst_site], m.dst_exit),
                                           m.nonce, m.ask, m.reports,
                                           tuple(edge_address(self.exit_by_name[d].delegation) for d in m.down),
                                           m.heard_ms)
                try:
                    self._packet_out(dp, x.outside_port, packets.pair_message(x.mac, x.isp_mac, wire))
                except Exception as exc:
                    self.log(Event.HEARTBEAT_ERROR, exit=m.src_exit, error=str(exc))

    # -- helpers ---------------------------------------------------------------------------------------------
    def _where(self, dpid: int) -> tuple[Any, str] | None:
        """The site and role of one of this process's switches; None for a switch of another site's."""
        where = self.brief.site_by_dpid(dpid)
        return where if where is not None and where[0].site.name in self.own else None

    def _site(self, dpid: int) -> str | None:
        where = self._where(dpid)
        return where[0].site.name if where is not None else None

    def _name(self, dpid: int) -> str:
        return next((name for name, d in self.brief.switches if d == dpid), f"dpid {dpid}")
