"""The thin os-ken shell: decode OpenFlow into the core's events, encode the core's outputs into OpenFlow.

Every decision lives in :mod:`~multi6lab.controller.core` (pure: typed events in, rule changes, packets and
log events out). This module holds what a framework must: the switches' connections, the clock, the locks
and loops of the os-ken application, and the event log file (one JSON event per line, monotonic time).

Reconnects and restarts reconcile (the core's ``switch_connected``, ``flows_held``, ``groups_held``): the
switch's own flow table (our cookie) and groups are read back, every desired rule is (re)added — an ADD with
an existing match replaces it without a gap — and only entries that should not exist are deleted. Traffic
keeps flowing through a controller restart.
"""

from __future__ import annotations

import json
import threading
import time
from ipaddress import ip_network
from typing import Any

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
from multi6lab.controller.core import Core, CountRequest, Decision, FlushLater, Install, Log, PacketOut, Release
from multi6lab.controller.policy import (
    COOKIE,
    OFPP_CONTROLLER,
    OFPP_IN_PORT,
    Action,
    CtCommit,
    CtLookup,
    DecTtl,
    Group,
    Output,
    Rule,
    SetField,
    SetPrefix,
    ToController,
    ToGroup,
)
from multi6lab.topologies.plan import Brief
from multi6lab.vocabulary import Event

# Filled by controller.launcher before the framework instantiates the app.
SETTINGS: dict[str, Any] = {"brief": None, "sites": None, "events": None, "ra_interval": 3.0, "mapping_keys": {}}


class EventHeartbeatTick(event.EventBase):  # type: ignore[misc]
    """Judge heartbeats in the app's own event queue, after every reply that arrived before it."""


class EventFlush(event.EventBase):  # type: ignore[misc]
    """The core's flush, queued behind every packet-in already read from the switches: a burst is one batch."""


class SiteExitController(BaseApp):  # type: ignore[misc]
    OFP_VERSIONS = (ofproto_v1_3.OFP_VERSION,)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        brief: Brief = SETTINGS["brief"]
        self.lock = threading.RLock()
        self.event_log = open(SETTINGS["events"], "a", buffering=1) if SETTINGS["events"] else None  # noqa: SIM115
        self.core = Core(brief, SETTINGS["sites"], time.monotonic(), SETTINGS["mapping_keys"])
        self.datapaths: dict[int, Any] = {}
        self.barriers: dict[int, tuple[float, int]] = {}  # xid -> (sent, push)
        self.count_requests: set[int] = set()  # xids of the flow-stats requests that ask for packet counts
        self._do(self.core.take())
        hub.spawn(self._heartbeat_loop)
        hub.spawn(self._ra_loop)
        if (every := self.core.poll_interval()) is not None:
            hub.spawn(self._poll_loop, every)

    # -- the core's outputs, encoded ------------------------------------------------------------------------
    def log(self, event: str, **fields: Any) -> None:
        rec = {"t": fields.pop("t", time.monotonic()), "event": event, **fields}
        line = json.dumps(rec, default=str)
        if self.event_log:
            self.event_log.write(line + "\n")
        else:
            self.logger.info(line)

    def _run(self, step: Any, *args: Any) -> None:
        """One core event under the lock, and what it decided sent."""
        with self.lock:
            step(*args)
            self._do(self.core.take())

    def _do(self, outputs: list[Decision]) -> None:
        """Send what the core decided. Every switch gets its rule changes first; barriers and their log lines
        follow, so the last switch's change is not delayed by the bookkeeping of the first."""
        barriers = []
        for o in outputs:
            if isinstance(o, Log):
                self.log(o.event, **o.fields)
                continue
            if isinstance(o, FlushLater):
                # From a greenlet of its own: os-ken's event queue holds 128 events, and a handler that put
                # into its own full queue (a burst of packet-ins fills it) would wait for itself forever.
                hub.spawn(self.send_event, self.name, EventFlush())
                continue
            dp = self.datapaths.get(o.dpid)
            if dp is None:
                continue
            if isinstance(o, CountRequest):
                self._count_request(dp)
                continue
            if isinstance(o, Install):
                self._install(dp, o)
                barriers.append((dp, o))
            elif isinstance(o, Release):
                p, of = dp.ofproto_parser, dp.ofproto
                dp.send_msg(p.OFPPacketOut(dp, buffer_id=of.OFP_NO_BUFFER, in_port=o.in_port,
                                           actions=[p.OFPActionOutput(of.OFPP_TABLE)], data=o.data))
            elif isinstance(o, PacketOut):
                try:
                    self._packet_out(dp, o.port, o.data)
                except Exception as exc:  # a switch that went away mid-send
                    if o.exit is None:
                        raise
                    self.log(Event.HEARTBEAT_ERROR, exit=o.exit, error=str(exc))
        for dp, o in barriers:
            self._barrier(dp, o.cause, o.count, push=o.push, **o.extra)

    def _install(self, dp: Any, o: Install) -> None:
        of, ch = dp.ofproto, o.changes
        for g in ch.add_groups:
            self._send_group(dp, g, of.OFPGC_ADD)
        for g in ch.modify_groups:
            self._send_group(dp, g, of.OFPGC_MODIFY)
        for r in ch.add_rules:
            self._send_rule(dp, r, of.OFPFC_ADD)
        for r in ch.delete_rules:
            self._send_rule(dp, r, of.OFPFC_DELETE_STRICT)
        for g in ch.delete_groups:
            dp.send_msg(dp.ofproto_parser.OFPGroupMod(dp, of.OFPGC_DELETE, of.OFPGT_ALL, g.group_id, []))

    def _barrier(self, dp: Any, cause: str, n: int, push: int = 0, **extra: Any) -> None:
        req = dp.ofproto_parser.OFPBarrierRequest(dp)
        dp.set_xid(req)
        self.barriers[req.xid] = (time.monotonic(), push)
        self.log(Event.RULES_SENT, dpid=dp.id, switch=self.core.name(dp.id), site=self.core.site(dp.id), cause=cause,
                 changes=n, push=push, **extra)
        dp.send_msg(req)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def on_barrier(self, ev: Any) -> None:
        sent = self.barriers.pop(ev.msg.xid, None)
        if sent is not None:
            dpid = ev.msg.datapath.id
            self.log(Event.BARRIER_OK, dpid=dpid, site=self.core.site(dpid), push=sent[1],
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

    def _packet_out(self, dp: Any, port: int, data: bytes) -> None:
        p, o = dp.ofproto_parser, dp.ofproto
        dp.send_msg(p.OFPPacketOut(dp, buffer_id=o.OFP_NO_BUFFER, in_port=o.OFPP_CONTROLLER,
                                   actions=[p.OFPActionOutput(port)], data=data))

    # -- OpenFlow in, decoded into the core's events ---------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def on_features(self, ev: Any) -> None:
        dp = ev.msg.datapath
        with self.lock:
            known = self.core.switch_connected(dp.id)
            if known:
                self.datapaths[dp.id] = dp
            self._do(self.core.take())
        if not known:
            return
        p, o = dp.ofproto_parser, dp.ofproto
        dp.send_msg(p.OFPSetConfig(dp, o.OFPC_FRAG_NORMAL, 0xFFFF))
        dp.send_msg(p.OFPPortDescStatsRequest(dp, 0))
        dp.send_msg(p.OFPFlowStatsRequest(dp, 0, o.OFPTT_ALL, o.OFPP_ANY, o.OFPG_ANY, COOKIE, 0xFFFFFFFFFFFFFFFF))
        dp.send_msg(p.OFPGroupDescStatsRequest(dp, 0))

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def on_port_desc(self, ev: Any) -> None:
        for port in ev.msg.body:
            self._port_state(ev.msg.datapath, port)

    def _count_request(self, dp: Any) -> None:
        p, o = dp.ofproto_parser, dp.ofproto
        req = p.OFPFlowStatsRequest(dp, 0, 0, o.OFPP_ANY, o.OFPG_ANY, COOKIE, 0xFFFFFFFFFFFFFFFF)
        dp.set_xid(req)
        self.count_requests.add(req.xid)
        dp.send_msg(req)

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def on_flow_stats(self, ev: Any) -> None:
        """What a switch holds: read back when it connects (reconciliation), or counted (:meth:`_poll_loop`)."""
        dp, msg = ev.msg.datapath, ev.msg
        more = bool(msg.flags & dp.ofproto.OFPMPF_REPLY_MORE)
        held = [(s.priority, tuple(sorted(s.match.items()))) for s in msg.body]
        if msg.xid in self.count_requests:
            if not more:
                self.count_requests.discard(msg.xid)
            self._run(self.core.counts, dp.id, list(zip(held, (s.packet_count for s in msg.body), strict=True)),
                      more, time.monotonic())
            return
        self._run(self.core.flows_held, dp.id, held, more, time.monotonic())

    @set_ev_cls(ofp_event.EventOFPGroupDescStatsReply, MAIN_DISPATCHER)
    def on_group_desc(self, ev: Any) -> None:
        dp = ev.msg.datapath
        self._run(self.core.groups_held, dp.id, [g.group_id for g in ev.msg.body],
                  bool(ev.msg.flags & dp.ofproto.OFPMPF_REPLY_MORE), time.monotonic())

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def on_port_status(self, ev: Any) -> None:
        self._port_state(ev.msg.datapath, ev.msg.desc)

    def _port_state(self, dp: Any, port: Any) -> None:
        o = dp.ofproto
        # OVS sends two PortStatus per event and the first has no down bits: decide on state/config only.
        up = not (port.state & o.OFPPS_LINK_DOWN) and not (port.config & o.OFPPC_PORT_DOWN)
        self._run(self.core.port_status, dp.id, port.port_no, up, time.monotonic())

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def on_packet_in(self, ev: Any) -> None:
        msg = ev.msg
        self._run(self.core.packet_in, msg.datapath.id, msg.match["in_port"], msg.data, time.monotonic())

    # -- time passing ----------------------------------------------------------------------------------------
    def _ra_loop(self) -> None:
        """Periodic RAs, and the drop counters (unparseable or spoofed packet-ins) whenever they change."""
        reported: dict[str, int] = {}
        while True:
            hub.sleep(SETTINGS["ra_interval"])
            if self.core.counters != reported:
                reported = dict(self.core.counters)
                self.log(Event.COUNTERS, **reported)
            try:
                self._run(self.core.advertise)
            except Exception as exc:  # a switch that went away mid-send
                self.log(Event.RA_ERROR, error=str(exc))

    def _poll_loop(self, every: float) -> None:
        """The exits' packet counts, every quarter of the shortest translation idle time (the core's poll)."""
        while True:
            hub.sleep(every)
            try:
                self._run(self.core.poll, time.monotonic())
            except Exception as exc:  # a switch that went away mid-send
                self.log(Event.POLL_ERROR, error=str(exc))

    def _heartbeat_loop(self) -> None:
        """Probe every interval, and wake for every deadline (a silence, an icmp or transport hold ending);
        judging happens in the event queue."""
        if not self.core.probing():
            return  # nothing to probe, and nothing that expires
        interval = self.core.interval()
        next_probe = time.monotonic()
        judged: float | None = None  # the deadline a tick was already posted for
        while True:
            now = time.monotonic()
            if now >= next_probe:
                self._run(self.core.probe, now)
                next_probe = max(next_probe + interval, now)  # fell behind: do not burst to catch up
            # Wake for the next probe, or exactly at the earliest detection deadline, whichever is first:
            # judging only on probe ticks would add up to one interval to every detection.
            with self.lock:
                deadline = self.core.next_deadline()
            if deadline == judged:
                deadline = None  # its tick is queued; do not post it again
            wake = next_probe if deadline is None else min(next_probe, deadline + 0.0002)
            delay = wake - time.monotonic()
            if delay > 0:
                hub.sleep(delay)
            if deadline is not None and time.monotonic() >= deadline:
                judged = deadline
                self.send_event(self.name, EventHeartbeatTick())

    @set_ev_cls(EventFlush)
    def on_flush(self, ev: EventFlush) -> None:
        self._run(self.core.flush, time.monotonic())

    @set_ev_cls(EventHeartbeatTick)
    def on_heartbeat_tick(self, ev: EventHeartbeatTick) -> None:
        self._run(self.core.tick, time.monotonic())
