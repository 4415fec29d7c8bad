"""A fake data plane: walks one packet through a RuleSet the way OVS would (tests only).

It answers the question the controller's policy must get right: "a packet from host h with source S to D
leaves through exit X, rewritten to L" — or goes to the controller, or is dropped. Its connection tracker
is one table of committed connections (either direction, by addresses, protocol and ports) and their marks,
shared by every switch as Open vSwitch's datapath shares one; a lookup resubmits the packet to the same
switch's table with ct_state +trk (and +est when the connection is known) and the connection's ct_mark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from multi6lab.controller.policy import (
    CT_TRACKED,
    OFPP_IN_PORT,
    Action,
    CtCommit,
    CtLookup,
    DecTtl,
    Output,
    Rule,
    RuleSet,
    SetField,
    SetPrefix,
    ToController,
    ToGroup,
)
from multi6lab.topologies.plan import Plan


@dataclass
class Outcome:
    kind: str  # "delivered", "controller", "dropped", "lost" (output to a down port)
    node: str = ""  # delivered to this node (router or host)
    pkt: dict[str, Any] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)  # switches traversed
    where: str = ""  # switch where it ended (controller/dropped/lost)


def _matches(rule: Rule, pkt: dict[str, Any]) -> bool:
    for k, v in rule.match:
        have = pkt.get(k)
        if have is None:
            return False
        if isinstance(v, tuple):
            value, mask = v
            if isinstance(value, int):
                a, b, m = int(have), value, mask
            elif k.startswith("eth"):
                a = int(str(have).replace(":", ""), 16)
                b, m = int(value.replace(":", ""), 16), int(mask.replace(":", ""), 16)
            else:
                a, b, m = int(IPv6Address(have)), int(IPv6Address(value)), int(IPv6Address(mask))
            if a & m != b & m:
                return False
        elif str(have) != str(v):
            return False
    return True


class FakeNet:
    def __init__(self, plan: Plan, rules: RuleSet, down: set[tuple[str, int]] | None = None):
        self.plan = plan
        self.rules = rules
        self.down = down or set()  # (switch name, port) whose link is down
        self.names = {n.dpid: n.name for n in plan.switches}
        self.dpids = {n.name: n.dpid for n in plan.switches}
        self.copies: list[str] = []  # switches that sent a copy of a packet to the controller
        self.conntrack: dict[tuple[Any, ...], int] = {}  # committed connection -> its ct_mark

    def send(self, host: str, src: str, dst: str, **extra: Any) -> Outcome:
        """A packet from ``host`` to the site router (gateway MAC) with the given addresses."""
        sp = next(s for s in self.plan.sites if host in s.site.hosts)
        hp = next(h for h in sp.hosts if h.name == host)
        pkt = {"eth_src": hp.mac, "eth_dst": sp.gateway_mac, "eth_type": 0x86DD, "ipv6_src": src,
               "ipv6_dst": dst, "ip_proto": 17, "hop": 64, "ct_state": 0, **extra}
        return self.walk(sp.site.fabric, hp.port, pkt)

    def inject(self, switch: str, port: int, **pkt: Any) -> Outcome:
        base = {"eth_type": 0x86DD, "ip_proto": 17, "hop": 64, "ct_state": 0}
        return self.walk(switch, port, {**base, **pkt})

    def walk(self, switch: str, in_port: int, pkt: dict[str, Any]) -> Outcome:
        path: list[str] = []
        for _ in range(16):
            path.append(switch)
            pkt = {**pkt, "in_port": in_port}
            rule = self._lookup(switch, pkt)
            if rule is None or not rule.actions:
                return Outcome("dropped", pkt=pkt, path=path, where=switch)
            result = self._apply(switch, in_port, pkt, rule.actions)
            if isinstance(result, dict):  # the connection tracker resubmitted it to this switch's table
                pkt = result
                continue
            if isinstance(result, Outcome):
                result.path = path
                return result
            pkt, out_port = result
            if (switch, out_port) in self.down:
                return Outcome("lost", pkt=pkt, path=path, where=switch)
            peer = self.plan.peer(switch, out_port)
            if peer.node in self.dpids:  # a link between bridges: the next one tracks afresh
                switch, in_port = peer.node, peer.port
                pkt = {**{k: v for k, v in pkt.items() if k != "ct_mark"}, "ct_state": 0}
                continue
            return Outcome("delivered", node=peer.node, pkt=pkt, path=path)
        raise AssertionError(f"forwarding loop: {path}")

    def _lookup(self, switch: str, pkt: dict[str, Any]) -> Rule | None:
        dpid = self.dpids[switch]
        candidates = [r for r in self.rules.rules if r.dpid == dpid and _matches(r, pkt)]
        return max(candidates, key=lambda r: r.priority, default=None)

    def _apply(self, switch: str, in_port: int, pkt: dict[str, Any],
               actions: tuple[Action, ...]) -> Outcome | tuple[dict[str, Any], int] | dict[str, Any]:
        pkt = dict(pkt)
        for i, a in enumerate(actions):
            if isinstance(a, CtCommit):
                self.conntrack[_connection(a.zone, pkt)] = a.mark
                continue
            if isinstance(a, CtLookup):
                mark = self.conntrack.get(_connection(a.zone, pkt))
                est = 0x02 if mark is not None else 0x01  # +est or +new
                return {**pkt, "ct_state": CT_TRACKED | est, "ct_mark": mark or 0}
            if isinstance(a, SetField):
                pkt[a.field] = a.value
            elif isinstance(a, SetPrefix):  # the masked set-field: the prefix's bits, the address's rest
                p = IPv6Network(a.prefix)
                keep = int(IPv6Address(pkt[a.field])) & ~int(p.netmask) & (2**128 - 1)
                pkt[a.field] = str(IPv6Address(keep | int(p.network_address)))
            elif isinstance(a, DecTtl):
                pkt["hop"] -= 1
            elif isinstance(a, ToController):
                if i == len(actions) - 1:
                    return Outcome("controller", pkt=pkt, where=switch)
                self.copies.append(switch)  # a copy to the controller; the packet goes on
            elif isinstance(a, Output):
                return pkt, in_port if a.port == OFPP_IN_PORT else a.port
            elif isinstance(a, ToGroup):
                g = next(g for g in self.rules.groups if g.dpid == self.dpids[switch] and g.group_id == a.group_id)
                live = [b for b in g.buckets if b.watch_port is None or (switch, b.watch_port) not in self.down]
                if not live:
                    return Outcome("dropped", pkt=pkt, where=switch)
                return self._apply(switch, in_port, pkt, live[0].actions)
        return Outcome("dropped", pkt=pkt, where=switch)


def _connection(zone: int, pkt: dict[str, Any]) -> tuple[Any, ...]:
    """A connection as the tracker knows it: the same whichever direction the packet goes."""
    ends = frozenset({(pkt["ipv6_src"], pkt.get("src_port")), (pkt["ipv6_dst"], pkt.get("dst_port"))})
    return (zone, pkt.get("ip_proto"), ends)
