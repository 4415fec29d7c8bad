"""The controller's core, driven as the os-ken shell drives it: OpenFlow's events in (a switch connects and says
what it holds, a port changes, a packet comes up, time passes), rule changes, packets and log events out. The
rules a core installs are walked with FakeNet, so each decision is checked by where packets go."""

from __future__ import annotations

from ipaddress import IPv6Address as A
from ipaddress import IPv6Network
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    IPv6,
)
from scapy.layers.l2 import Ether

from multi6lab.controller import packets
from multi6lab.controller.core import FLUSH_LATER, Core, Decision, Install, Log, PacketOut, Release
from multi6lab.controller.policy import Rule, RuleSet, apply
from multi6lab.topologies import knot, loader
from multi6lab.topologies.addressing import GATEWAY_LL, edge_address
from multi6lab.topologies.plan import Plan, build
from multi6lab.vocabulary import Event
from tests.unit.fakenet import FakeNet

ROOT = Path(__file__).resolve().parents[2]
R = "3fff:ff:100::2"


def plan(name: str, **replace: str) -> Plan:
    text = (ROOT / "topologies" / f"{name}.yaml").read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    return build(loader.loads(text))


def events(out: list[Decision]) -> list[str]:
    return [o.event for o in out if isinstance(o, Log)]


def connect(core: Core, dpid: int, held: list[Any] | None = None, groups: list[int] | None = None,
            now: float = 1.0) -> list[Decision]:
    """A switch connects and answers, in two parts each, what rules and groups it holds."""
    assert core.switch_connected(dpid)
    held = held or []
    core.flows_held(dpid, held[:1], True, now)
    core.flows_held(dpid, held[1:], False, now)
    core.groups_held(dpid, groups or [], False, now)
    return core.take()


def up(core: Core, p: Plan) -> dict[int, RuleSet]:
    """Every switch of the site connected with nothing held: what each was told to hold."""
    tables: dict[int, RuleSet] = {}
    for n in p.switches:
        if n.dpid is not None and core.where(n.dpid) is not None:
            for o in connect(core, n.dpid):
                if isinstance(o, Install):
                    tables[o.dpid] = apply(tables.get(o.dpid, RuleSet()), o.changes)
    return tables


def installed(core: Core) -> RuleSet:
    return RuleSet(frozenset(r for rs in core.installed.values() for r in rs.rules),
                   frozenset(g for rs in core.installed.values() for g in rs.groups))


@pytest.fixture
def fig1() -> Plan:
    return plan("figure1")


def core_of(p: Plan, now: float = 0.0, **kw: Any) -> Core:
    return Core(p.brief({sp.site.name for sp in p.sites}), None, now, kw.pop("keys", {}), **kw)


def test_a_core_starts_by_saying_so_and_refuses_a_switch_that_is_not_its_own(fig1: Plan) -> None:
    core = core_of(fig1)
    assert events(core.take()) == [Event.CONTROLLER_START]
    assert not core.switch_connected(999)
    assert events(core.take()) == [Event.UNKNOWN_SWITCH] and core.connected == set()


def test_reconciliation_installs_what_is_desired_and_deletes_only_what_is_stale(fig1: Plan) -> None:
    core = core_of(fig1)
    core.take()
    exa = fig1.node("exa").dpid
    assert exa is not None
    stale = (7, (("eth_type", 0x86DD), ("ipv6_dst", "2001:db8::1")))
    out = connect(core, exa, held=[stale], groups=[4242])
    (inst,) = [o for o in out if isinstance(o, Install)]
    want = core.installed[exa]
    assert inst.cause == "reconcile" and inst.count == len(want.rules) + len(want.groups)
    assert set(inst.changes.add_rules) == set(want.rules) and want.rules
    assert inst.changes.delete_rules == (Rule(exa, 7, stale[1]),)
    assert [g.group_id for g in inst.changes.delete_groups] == [4242] and inst.extra == {"stale": 1}
    assert Event.SWITCH_CONNECTED in events(out)


def test_a_switch_answering_in_parts_is_reconciled_once_both_answers_are_complete(fig1: Plan) -> None:
    core = core_of(fig1)
    exa = fig1.node("exa").dpid
    assert exa is not None and core.switch_connected(exa)
    core.flows_held(exa, [], False, 1.0)
    assert exa not in core.installed  # the groups are still to come
    core.groups_held(exa, [], False, 1.0)
    assert exa in core.installed


def test_a_fabric_is_told_its_prefixes_when_it_connects(fig1: Plan) -> None:
    core = core_of(fig1)
    sw = fig1.sites[0].fabric_dpid
    ras = [o for o in connect(core, sw) if isinstance(o, PacketOut)]
    assert [o.port for o in ras] == [h.port for h in fig1.sites[0].hosts]
    assert ICMPv6ND_RS not in Ether(ras[0].data) and Ether(ras[0].data)[IPv6].src == str(GATEWAY_LL)


def test_an_exit_uplink_going_down_moves_the_site_to_the_other_exit(fig1: Plan) -> None:
    core = core_of(fig1)
    tables = up(core, fig1)
    net = FakeNet(fig1, installed(core))
    assert net.send("h1", str(fig1.sites[0].hosts[0].addresses["identity"]), R).node == "ispa"
    exa = fig1.sites[0].exit("exa")
    core.port_status(exa.dpid, exa.outside_port, False, 2.0)
    out = core.take()
    pushed = [o for o in out if isinstance(o, Install)]
    assert pushed and {o.cause for o in pushed} == {"liveness"}
    assert Event.PORT_DOWN in events(out) and Event.PATH_DEAD in events(out)
    for o in pushed:
        tables[o.dpid] = apply(tables[o.dpid], o.changes)
    assert tables == {d: rs for d, rs in core.installed.items()}
    down = {("exa", exa.outside_port)}
    assert FakeNet(fig1, installed(core), down).send("h1", str(fig1.sites[0].hosts[0].addresses["identity"]),
                                                      R).node == "ispb"


def test_heartbeats_carry_tokens_and_only_a_reply_with_one_counts(fig1: Plan) -> None:
    tokens = iter(bytes([i]) * 16 for i in range(1, 100))
    p = plan("figure1", **{"triggers: [link, heartbeat]": "triggers: [heartbeat]"})
    core = core_of(p, token=lambda n: next(tokens))
    up(core, p)
    assert core.probing() and core.interval() == pytest.approx(0.01)
    core.probe(3.0)
    echoes = [o for o in core.take() if isinstance(o, PacketOut)]
    assert {o.exit for o in echoes} == {"exa", "exb"}
    exa = p.sites[0].exit("exa")
    sent = next(o for o in echoes if o.exit == "exa")
    token = packets.echo_token(_reply_to(sent.data), exa.address.ip)
    assert token is not None and len(token) == 16
    core.packet_in(exa.dpid, exa.outside_port, _reply_to(sent.data), 3.001)
    core.packet_in(exa.dpid, exa.outside_port, _reply_to(sent.data, token=b"\x00" * 16), 3.002)
    assert core.liveness.forged == 1 and core.counters["forged_echo_replies"] == 1
    for k in range(1, 4):  # exb's beacon never answers: after three echoes its silence has a deadline
        core.probe(3.0 + k * 0.01)
    deadline = core.next_deadline()
    assert deadline is not None
    core.take()
    core.tick(deadline + 0.001)
    out = core.take()
    assert Event.PATH_DEAD in events(out) and [o.cause for o in out if isinstance(o, Install)]


def _reply_to(request: bytes, token: bytes | None = None) -> bytes:
    """The beacon's reply to a heartbeat echo (or a forger's, with another token)."""
    req = Ether(request)
    data = bytes(req[IPv6].payload)[8:] if token is None else token
    return bytes(Ether(src=req.dst, dst=req.src) / IPv6(src=req[IPv6].dst, dst=req[IPv6].src)
                 / ICMPv6EchoReply(id=0x6D36, seq=1, data=data))


def test_the_router_answers_a_solicitation_for_its_link_local_address_and_a_host_s_router_solicitation(
        fig1: Plan) -> None:
    core = core_of(fig1)
    up(core, fig1)
    sw, h1 = fig1.sites[0].fabric_dpid, fig1.sites[0].hosts[0]
    ns = bytes(Ether(src=h1.mac, dst="33:33:ff:00:00:01") / IPv6(src="fe80::9", dst="ff02::1:ff00:1", hlim=255)
               / ICMPv6ND_NS(tgt=str(GATEWAY_LL)))
    core.packet_in(sw, h1.port, ns, 4.0)
    (na,) = core.take()
    assert isinstance(na, PacketOut) and na.port == h1.port and Ether(na.data).src == fig1.sites[0].gateway_mac
    rs = bytes(Ether(src=h1.mac, dst="33:33:00:00:00:02") / IPv6(src="fe80::9", dst="ff02::2", hlim=255)
               / ICMPv6ND_RS())
    core.packet_in(sw, h1.port, rs, 4.1)
    (ra,) = core.take()
    assert isinstance(ra, PacketOut) and ra.port == h1.port


def test_a_packet_the_core_cannot_read_is_counted_not_raised(fig1: Plan) -> None:
    core = core_of(fig1)
    up(core, fig1)
    core.packet_in(fig1.sites[0].fabric_dpid, 1, b"\x00" * 20, 5.0)
    assert core.take() == [] and core.counters["dropped_packet_in"] == 1


def test_a_stale_source_gets_icmp_source_policy_failed_at_most_100_a_second() -> None:
    p = plan("three-isps")
    core = core_of(p)
    up(core, p)
    sp = p.sites[0]
    first = sp.exits[0]
    core.port_status(first.dpid, first.outside_port, False, 6.0)
    core.take()
    h = sp.hosts[0]
    stale = bytes(Ether(src=h.mac, dst=sp.gateway_mac) / IPv6(src=str(h.addresses[first.name]), dst=R))
    core.packet_in(sp.fabric_dpid, h.port, stale, 6.1)
    core.packet_in(sp.fabric_dpid, h.port, stale, 6.105)  # within 10 ms of the first: no second error
    core.packet_in(sp.fabric_dpid, h.port, stale, 6.12)
    out = core.take()
    assert [o.port for o in out if isinstance(o, PacketOut)] == [h.port, h.port]
    assert events(out).count(Event.ICMP_SOURCE_POLICY) == 2
    spoofed = bytes(Ether(src=h.mac, dst=sp.gateway_mac) / IPv6(src="2001:db8::66", dst=R))
    core.packet_in(sp.fabric_dpid, h.port, spoofed, 6.2)
    assert core.take() == [] and core.counters["spoofed"] == 1


def test_an_id_loc_site_holds_a_packet_to_a_far_identity_and_asks_the_mapping_service() -> None:
    p = plan("two-sites", **{"approach: nptv6": "approach: id-loc"})
    core = Core(p.brief({"s1"}), {"s1"}, 0.0, {"s1": "c2VjcmV0c2VjcmV0c2VjcmV0"})
    up(core, p)
    registered = core.take()
    sp = next(s for s in p.sites if s.site.name == "s1")
    far = next(s for s in p.sites if s.site.name == "s2").hosts[0].addresses["identity"]
    h = sp.hosts[0]
    pkt = bytes(Ether(src=h.mac, dst=sp.gateway_mac) / IPv6(src=str(h.addresses["identity"]), dst=str(far)))
    core.packet_in(sp.fabric_dpid, h.port, pkt, 7.0)
    out = core.take()
    queries = [o for o in out if isinstance(o, PacketOut)]
    assert queries and all(packets.read_udp(o.data).dport == 53 for o in queries)  # type: ignore[union-attr]
    assert not [o for o in out if isinstance(o, Release)]  # held until the answer
    assert registered == [] or all(not isinstance(o, Release) for o in registered)


class Wire:
    """Two id-loc sites' cores and a mapping server, joined by a network that carries every packet the cores
    send one way in ``delay`` seconds: DNS to the server and back, the edges' messages to the far exit that
    owns their destination, heartbeat echoes back from their beacon. Each core knows only its own brief."""

    def __init__(self, plan: Plan, delay: float = 0.002):
        from tests.unit.test_mapclient import Server

        self.keys = knot.new_secrets(knot.mapped_sites(plan))
        self.server, self.plan, self.delay = Server(plan, self.keys), plan, delay
        self.cores = {s: Core(plan.brief({s}), {s}, 0.0, {s: self.keys[s]}, token=_counter()) for s in ("s1", "s2")}
        self.flight: list[tuple[float, Core, int, int, bytes]] = []
        self.out: list[tuple[str, Decision]] = []
        self.t = 0.0
        self.next_probe = 0.0
        for core in self.cores.values():  # every switch connects, holding nothing
            for n in plan.switches:
                if n.dpid is not None and core.switch_connected(n.dpid):
                    core.flows_held(n.dpid, [], False, 0.0)
                    core.groups_held(n.dpid, [], False, 0.0)
                core.out = [o for o in core.out if not (isinstance(o, Log) and o.event == Event.UNKNOWN_SWITCH)]
        self.collect()

    def exit_of(self, address: A) -> tuple[Core, Any] | None:
        for core in self.cores.values():
            for x in core.exit_by_name.values():
                if edge_address(x.delegation) == address or x.address.ip == address:
                    return core, x
        return None

    def collect(self) -> None:
        for name, core in self.cores.items():
            for o in core.take():
                self.out.append((name, o))
                if isinstance(o, PacketOut) and o.exit is not None:
                    self.carry(core, o)

    def carry(self, core: Core, o: PacketOut) -> None:
        x = core.exit_by_name[o.exit]  # type: ignore[index]
        ip = Ether(o.data)[IPv6]
        udp = packets.read_udp(o.data)
        arrive = self.t + self.delay
        if udp is not None and udp.dport == knot.DNS_PORT:
            answer = self.server.handle(udp.payload)
            if answer is not None:
                back = packets.udp_packet(x.isp_mac, x.mac, udp.dst, udp.src, knot.DNS_PORT, udp.sport, answer)
                self.flight.append((arrive + self.delay, core, x.dpid, x.outside_port, back))
        elif udp is not None:
            far = self.exit_of(A(ip.dst))
            if far is not None:
                self.flight.append((arrive, far[0], far[1].dpid, far[1].outside_port, o.data))
        elif ICMPv6EchoRequest in Ether(o.data):
            self.flight.append((arrive + self.delay, core, x.dpid, x.outside_port, _reply_to(o.data)))

    def run(self, until: float, step: float = 0.001) -> None:
        while self.t < until:
            self.t = round(self.t + step, 6)
            for arrive, core, dpid, port, data in [f for f in self.flight if f[0] <= self.t]:
                self.flight.remove((arrive, core, dpid, port, data))
                core.packet_in(dpid, port, data, self.t)
            for core in self.cores.values():
                if self.t >= self.next_probe:
                    core.probe(self.t)
                deadline = core.next_deadline()
                if deadline is not None and deadline <= self.t:
                    core.tick(self.t)
            if self.t >= self.next_probe:
                self.next_probe = self.t + min(c.interval() for c in self.cores.values())
            self.collect()

    def events(self, site: str, event: str) -> list[dict[str, Any]]:
        return [o.fields for s, o in self.out if s == site and isinstance(o, Log) and o.event == event]


def _counter() -> Any:
    n = iter(range(1, 1 << 30))
    return lambda size: next(n).to_bytes(size, "big")


def test_two_id_loc_cores_register_look_each_other_up_release_what_they_held_and_bring_their_pairs_up() -> None:
    p = plan("two-sites", **{"approach: nptv6": "approach: id-loc"})
    w = Wire(p)
    w.run(0.05)
    assert w.events("s1", Event.MAPPING_REGISTERED) and w.events("s2", Event.MAPPING_REGISTERED)
    s1 = next(s for s in p.sites if s.site.name == "s1")
    h1, h2 = s1.hosts[0], next(s for s in p.sites if s.site.name == "s2").hosts[0]
    first = bytes(Ether(src=h1.mac, dst=s1.gateway_mac)
                  / IPv6(src=str(h1.addresses["identity"]), dst=str(h2.addresses["identity"])))
    w.cores["s1"].packet_in(s1.fabric_dpid, h1.port, first, w.t)
    w.collect()
    assert not [o for s, o in w.out if isinstance(o, Release)]  # held: s1 does not know s2 yet
    w.run(0.5)
    assert [e["peer"] for e in w.events("s1", Event.MAPPING_RESOLVED)] == ["s2"]
    (released,) = [o for s, o in w.out if isinstance(o, Release)]
    assert released == Release(s1.fabric_dpid, h1.port, first)
    assert w.events("s1", Event.CONTACT_RELEASED)[0]["packets"] == 1
    assert w.events("s1", Event.PAIR_UP) and w.events("s2", Event.PAIR_UP)  # s2 learned s1 from its messages
    # Through the rules s1's core installed, h1's packet leaves translated to a locator of the active pair.
    out = FakeNet(p, installed(w.cores["s1"])).send("h1", str(h1.addresses["identity"]),
                                                    str(h2.addresses["identity"]))
    assert out.kind == "delivered" and out.node in ("ispa", "ispb", "ispc", "ispd")
    assert A(out.pkt["ipv6_dst"]) != h2.addresses["identity"]  # the far identity became a locator


def test_a_forged_pair_message_from_an_unknown_edge_moves_nothing_and_is_counted() -> None:
    p = plan("two-sites", **{"approach: nptv6": "approach: id-loc"})
    w = Wire(p)
    w.run(0.05)
    core = w.cores["s1"]
    x = next(iter(core.exit_by_name.values()))
    forged = packets.pair_message(x.isp_mac, x.mac, packets.PairMessage(A("3fff:bad::1"), edge_address(x.delegation),
                                                                         7, True))
    core.packet_in(x.dpid, x.outside_port, forged, w.t)
    w.collect()
    assert core.counters["foreign_pair_message"] == 1 and not w.events("s1", Event.PAIR_SELECTED)


def test_an_address_the_plan_does_not_list_is_solicited_learned_and_its_held_packets_delivered(fig1: Plan) -> None:
    core = core_of(fig1)
    up(core, fig1)
    sp, h1 = fig1.sites[0], fig1.sites[0].hosts[0]
    new = A("fd00:5::beef")
    inbound = bytes(Ether(src=sp.exits[0].mac, dst=sp.gateway_mac) / IPv6(src=R, dst=str(new)))
    core.packet_in(sp.fabric_dpid, 1, inbound, 8.0)  # translated by the exit, undeliverable by the fabric
    out = core.take()
    asked = [o for o in out if isinstance(o, PacketOut)]
    assert [o.port for o in asked] == [h.port for h in sp.hosts] and ICMPv6ND_NS in Ether(asked[0].data)
    assert events(out) == [Event.NEIGHBOUR_SOLICIT]
    na = bytes(Ether(src=h1.mac, dst=sp.gateway_mac) / IPv6(src=str(new), dst=str(GATEWAY_LL), hlim=255)
               / ICMPv6ND_NA(tgt=str(new), S=1) / ICMPv6NDOptDstLLAddr(lladdr=h1.mac))
    core.packet_in(sp.fabric_dpid, h1.port, na, 8.01)
    assert FLUSH_LATER in core.out and not [o for o in core.out if isinstance(o, Install | PacketOut)]
    core.flush(8.011)  # with whatever else the queued events learnt
    out = core.take()
    assert [o.cause for o in out if isinstance(o, Install)] == ["neighbour"]
    (held,) = [o for o in out if isinstance(o, PacketOut)]
    assert held.port == h1.port and Ether(held.data).dst == h1.mac and Ether(held.data)[IPv6].dst == str(new)
    assert FakeNet(fig1, installed(core)).inject("sw", 1, ipv6_src=R, ipv6_dst=str(new),
                                                 eth_dst=sp.gateway_mac).node == "h1"
    core.packet_in(sp.fabric_dpid, h1.port, na, 8.02)  # nobody asked this time
    assert core.counters["unsolicited_na"] == 1


def test_an_isp_s_unreachable_error_about_this_exit_s_packet_keeps_that_destination_off_it() -> None:
    p = plan("figure1", **{"triggers: [link, heartbeat]": "triggers: [icmp, link]"})
    core = core_of(p)
    up(core, p)
    sp = p.sites[0]
    exa = sp.exit("exa")
    ours = str(next(iter(core.exit_sources["exa"])).network_address + 7)

    def error(src: str) -> bytes:
        return bytes(Ether(src=exa.isp_mac, dst=exa.mac) / IPv6(src=str(exa.isp_address), dst=str(exa.address.ip))
                     / ICMPv6DestUnreach(code=0) / IPv6(src=src, dst=R) / UDP(sport=5, dport=6))

    core.packet_in(exa.dpid, exa.outside_port, error("2001:db8::9"), 9.0)  # not a packet this exit sent
    assert core.take() == [] and core.counters["icmp_error_not_ours"] == 1
    core.packet_in(exa.dpid, exa.outside_port, error(ours), 9.1)
    out = core.take()
    assert Event.DEST_DEAD in events(out) and [o.cause for o in out if isinstance(o, Install)]
    identity = str(sp.hosts[0].addresses["identity"])
    assert FakeNet(p, installed(core)).send("h1", identity, R).node == "ispb"


def test_a_tcp_flow_repeating_a_segment_moves_its_destination_to_the_next_exit() -> None:
    p = plan("figure1", **{"triggers: [link, heartbeat]": "triggers: [transport, link]"})
    core = core_of(p)
    up(core, p)
    sp, h1 = p.sites[0], p.sites[0].hosts[0]
    seg = bytes(Ether(src=h1.mac, dst=sp.gateway_mac) / IPv6(src=str(h1.addresses["identity"]), dst=R)
                / TCP(sport=4000, dport=80, seq=100, flags="A") / (b"x" * 10))
    for k in range(3):  # sent, then sent again twice with nothing new between
        core.packet_in(sp.fabric_dpid, h1.port, seg, 10.0 + k)
    out = core.take()
    assert Event.DEST_DEAD in events(out)
    assert FakeNet(p, installed(core)).send("h1", str(h1.addresses["identity"]), R).node == "ispb"


def test_routers_advertise_every_connected_fabric_periodically(fig1: Plan) -> None:
    core = core_of(fig1)
    up(core, fig1)
    core.advertise()
    assert [o.port for o in core.take() if isinstance(o, PacketOut)] == [h.port for h in fig1.sites[0].hosts]


def test_a_dns_answer_from_anyone_but_the_mapping_server_is_counted_and_ignored() -> None:
    p = plan("two-sites", **{"approach: nptv6": "approach: id-loc"})
    w = Wire(p)
    core = w.cores["s1"]
    x = next(iter(core.exit_by_name.values()))
    fake = packets.udp_packet(x.isp_mac, x.mac, A("3fff:bad::53"), edge_address(x.delegation), knot.DNS_PORT,
                              53053, b"\x00" * 12)
    core.packet_in(x.dpid, x.outside_port, fake, 1.0)
    assert core.take() == [] and core.counters["foreign_dns"] == 1


def test_a_packet_from_a_plain_host_waits_for_the_lookup_that_finds_no_site_then_goes_on() -> None:
    """RFC 4177 6.3.5: a source the mapping service has no record of is plain, and is talked to as nptv6 does."""
    p = plan("two-sites", **{"approach: nptv6": "approach: id-loc"})
    w = Wire(p)
    w.run(0.05)
    s1 = next(s for s in p.sites if s.site.name == "s1")
    x = s1.exits[0]
    plain, to = str(p.address("map")), str(s1.hosts[0].locators[x.name])
    pkt = bytes(Ether(src=x.isp_mac, dst=x.mac) / IPv6(src=plain, dst=to))
    w.cores["s1"].packet_in(x.dpid, x.outside_port, pkt, w.t)
    w.run(0.3)
    (unknown,) = w.events("s1", Event.MAPPING_UNKNOWN)  # asked about the source's /64
    assert A(plain) in IPv6Network(f"{unknown['address']}/64")
    assert [o for s, o in w.out if isinstance(o, Release)] == [Release(x.dpid, x.outside_port, pkt)]
    assert any(A(plain) in n for n in w.cores["s1"].contacts["s1"].plain)
