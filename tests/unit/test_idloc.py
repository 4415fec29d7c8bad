"""id-loc: the edges' locator-pair protocol (scripted arrivals on a fake wire), and their rules (fake flow table)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from multi6lab.controller.mapping import MappingService
from multi6lab.controller.pairs import MAX_REPORTS, STANDBY_FACTOR, Edge, EventRecord, Message, edge_of
from multi6lab.controller.policy import SitePolicy, desired
from multi6lab.topologies import codec, loader
from multi6lab.topologies.addressing import edge_address
from multi6lab.topologies.plan import Plan, build
from tests.unit.fakenet import FakeNet

ROOT = Path(__file__).resolve().parents[2]
STEP_US = 500  # the wire's clock: every edge acts every 0.5 ms
DELAY_US = 500  # one-way delay of every message
TICK_US = 10_000  # each controller's loop: once per heartbeat interval ...
PHASE_US = {"s1": 0, "s2": 3_500}  # ... at a phase of its own


def two_sites(triggers: str = "[link, heartbeat]") -> Plan:
    text = (ROOT / "topologies" / "two-sites.yaml").read_text()
    text = text.replace("approach: nptv6", "approach: id-loc").replace("[link, heartbeat]", triggers)
    return build(loader.loads(text))


def edge(plan: Plan, site: str, seed: int | None = None) -> Edge:
    """``site``'s edge, once it has looked every other id-loc site up in a complete mapping service."""
    return edge_of(plan, site, [r for r in MappingService.of(plan).records if r.site != site],
                   random.Random(seed).getrandbits)


class Wire:
    """The two edges of ``two-sites``, each knowing only its own state, joined by a network that carries
    their messages after DELAY_US unless ``drop`` says the path is broken. A stopped edge neither sends nor
    hears (its controller is gone)."""

    def __init__(self, plan: Plan, delay_us: int = DELAY_US) -> None:
        self.edges: dict[str, Edge] = {n: edge(plan, n, seed=i) for i, n in enumerate(("s1", "s2"))}
        self.delay_us = delay_us
        self.us = 0
        self.flight: list[tuple[int, Message]] = []
        self.drop: Callable[[Message], bool] = lambda m: False
        self.stopped: set[str] = set()
        self.events: list[EventRecord] = []
        self.log: list[tuple[float, Message]] = []  # what was sent, and when

    @property
    def t(self) -> float:
        return self.us / 1e6

    def send(self, edge: Edge) -> None:
        for m in edge.due(self.t):
            self.log.append((self.t, m))
            if not self.drop(m):
                self.flight.append((self.us + self.delay_us, m))

    def run(self, until: float) -> None:
        """As the controller drives an edge: messages are handed over as they arrive (and answers leave at
        once), the send timeout is judged on time, and a loop ticks once per interval, each site's controller
        at its own phase."""
        while self.us < round(until * 1e6):
            self.us += STEP_US
            for name, edge in self.edges.items():
                if name in self.stopped:  # no controller: its switches' packet-ins go nowhere
                    self.flight = [f for f in self.flight if not (f[0] <= self.us and f[1].dst_site == name)]
                    continue
                for m in [m for at, m in self.flight if at <= self.us and m.dst_site == name]:
                    self.flight.remove(next(f for f in self.flight if f[1] is m))
                    self.events += edge.received(m, self.t)
                    self.send(edge)  # answers leave at once
                due = edge.next_deadline()
                if due is not None and self.t >= due:  # the controller's loop wakes for it
                    self.events += edge.tick(self.t)
                    self.send(edge)
                if self.us % TICK_US == PHASE_US[name]:
                    self.send(edge)

    def link(self, site: str, exit_name: str, up: bool) -> None:
        self.events += self.edges[site].link(exit_name, up, self.t)
        self.send(self.edges[site])

    def active(self) -> dict[tuple[str, str], tuple[str, str]]:
        return {**self.edges["s1"].active(), **self.edges["s2"].active()}

    def named(self, *names: str, since: float = 0.0, site: str | None = None) -> list[EventRecord]:
        return [e for e in self.events if e["event"] in names and e["t"] >= since
                and (site is None or e["src_site"] == site)]


PREFERRED = {("s1", "s2"): ("s1ea", "s2ec"), ("s2", "s1"): ("s2ec", "s1ea")}


def steady() -> Wire:
    w = Wire(two_sites())
    w.run(1.0)
    assert w.active() == PREFERRED
    return w


def test_a_working_network_brings_every_pair_up_and_keeps_the_preferred_ones() -> None:
    w = steady()
    r = w.edges["s1"].contexts["s2"]
    assert [p.key for p in r.candidates] == [("s1ea", "s2ec"), ("s1ea", "s2ed"), ("s1eb", "s2ec"), ("s1eb", "s2ed")]
    assert len(w.named("pair_up")) == 8  # every directed pair, learnt from the far edge's reports
    assert not w.named("pair_dead", "exploring", "pair_selected")
    # A keepalive on the active pair every interval, asking for an answer (an answer that falls due with a
    # keepalive is that keepalive); standby pairs every STANDBY_FACTOR intervals; every message carries reports.
    late = [m for t, m in w.log if t >= 0.5 and m.src_site == "s1"]
    assert 49 <= sum(m.pair == ("s1ea", "s2ec") and m.ask for m in late) <= 51
    assert sum(m.pair == ("s1ea", "s2ec") for m in late) <= 101
    assert 4 <= sum(m.pair == ("s1eb", "s2ed") for m in late) <= 6
    assert not any(m.ask for m in late if m.pair != ("s1ea", "s2ec")) and all(m.reports for m in late)
    # So every keepalive is reported back within a round trip: the evidence is never older than an interval.
    assert w.t - (r.active.confirmed_sent or 0.0) <= 0.010 + 2 * DELAY_US / 1e6


def test_a_silent_failure_of_both_directions_moves_both_edges_within_the_detection_time() -> None:
    w = steady()
    w.drop = lambda m: "s1ea" in m.pair  # ISP A black-holes everything, both ways
    w.run(1.2)
    assert w.active()[("s1", "s2")][0] != "s1ea" and w.active()[("s2", "s1")][1] != "s1ea"
    first = min(e["t"] for e in w.named("exploring", "pair_dead"))
    assert 1.0 + 0.02 <= first <= 1.0 + 0.0305  # 3 probes of 10 ms unanswered, not fewer
    moved = max(e["t"] for e in w.named("pair_selected") if e["t"] < 1.2)
    assert moved <= first + 0.015  # then an exploration round trip, or a pair known alive at once


def test_at_a_long_round_trip_keepalives_do_not_time_out_and_a_failure_is_found_a_round_trip_later() -> None:
    """40 ms each way (80 ms RTT) against a 30 ms detection time: a report cannot come back sooner than a round
    trip, so the send timeout counts the smoothed RTT on top. Nothing explores while the path works; a silent
    failure of both directions is found within the detection time plus that RTT."""
    w = Wire(two_sites(), delay_us=40_000)
    w.run(2.0)
    assert w.active() == PREFERRED and not w.named("exploring", "pair_selected", "pair_dead")
    rtt = w.edges["s1"].contexts["s2"].srtt
    assert 0.080 <= rtt <= 0.085
    w.drop = lambda m: "s1ea" in m.pair
    w.run(2.6)
    first = min(e["t"] for e in w.named("exploring"))
    assert 2.0 + 0.030 <= first <= 2.0 + 0.0305 + rtt + 0.011  # and one keepalive interval, at most


def test_a_controller_that_stalled_and_sent_nothing_does_not_explore() -> None:
    w = steady()
    s1 = w.edges["s1"]
    later = w.t + 0.05  # s1's controller sent nothing for 50 ms: its process or the machine stalled
    assert s1.tick(later) == []
    for i in range(3):  # once its probes go out and none is reported, the silence is the pair's
        s1.due(later + i * 0.01)
    assert [e["event"] for e in s1.tick(later + 0.021)] == ["exploring"]


def test_a_failure_of_one_direction_moves_only_that_direction() -> None:
    w = steady()
    w.drop = lambda m: m.src_site == "s1" and m.src_exit == "s1ea"  # s1 -> s2 through ISP A is lost
    w.run(1.5)
    assert w.active()[("s1", "s2")][0] == "s1eb"
    assert w.active()[("s2", "s1")] == ("s2ec", "s1ea")  # s2's traffic to s1 through ISP A still arrives
    assert not w.named("pair_selected", "pair_dead", site="s2")  # s2 may explore, but keeps its pair
    moved = w.named("pair_selected", site="s1")
    rtt = w.edges["s2"].contexts["s1"].srtt  # the send timeout waits a round trip more than the detection time
    assert 0.001 <= rtt <= 0.004
    assert [e["cause"] for e in moved] == ["explored"] and moved[0]["t"] <= 1.0 + 0.0305 + rtt + 0.002


def test_a_failure_of_the_other_direction_moves_only_the_far_edge() -> None:
    w = steady()
    w.drop = lambda m: m.src_site == "s2" and m.dst_exit == "s1ea"  # into s1 through ISP A is lost
    w.run(1.5)
    assert w.active()[("s1", "s2")] == ("s1ea", "s2ec")
    assert w.active()[("s2", "s1")][1] == "s1eb"
    assert not w.named("pair_selected", "pair_dead", site="s1")
    moved = w.named("pair_selected", site="s2")  # s2's keepalives went unanswered; its exploration found B
    rtt = w.edges["s2"].contexts["s1"].srtt  # the send timeout waits a round trip more than the detection time
    assert 0.001 <= rtt <= 0.004
    assert [e["cause"] for e in moved] == ["explored"] and moved[0]["t"] <= 1.0 + 0.0305 + rtt + 0.002


def test_an_uplink_down_moves_both_edges_at_once_through_a_locator_update() -> None:
    w = steady()
    w.drop = lambda m: "s1ea" in m.pair
    w.link("s1", "s1ea", up=False)
    assert w.active()[("s1", "s2")][0] == "s1eb"  # local evidence: at once
    assert w.edges["s1"].link("s1ea", up=False, now=w.t) == []  # OVS says it twice: the second says nothing
    assert w.edges["s1"].interval == 0.010
    assert w.named("pair_selected", site="s1")[0]["cause"] == "known alive"
    w.run(1.002)
    far = w.named("pair_selected", site="s2")  # the far edge heard that locator s1ea is down
    assert far and far[0]["t"] <= 1.0 + 2 * DELAY_US / 1e6 and w.active()[("s2", "s1")][1] == "s1eb"
    assert w.named("pair_dead", site="s2")[0]["cause"] == "locator down"
    # Restored: both come back to the preferred pairs after multiplier standby reports.
    w.drop = lambda m: False
    w.link("s1", "s1ea", up=True)
    w.run(2.0)
    assert w.active() == PREFERRED
    back = w.named("pair_selected", since=1.002)
    assert {e["cause"] for e in back} == {"preferred pair back"}
    assert min(e["t"] for e in back) >= 1.0 + 2 * STANDBY_FACTOR * 0.010  # not on the first report


def test_with_the_far_edge_stopped_an_edge_explores_but_keeps_its_pair() -> None:
    w = steady()
    w.stopped = {"s2"}
    w.run(3.0)
    assert w.edges["s1"].active() == {("s1", "s2"): ("s1ea", "s2ec")}  # silence is no evidence
    assert w.named("exploring", site="s1") and not w.named("pair_selected", "pair_dead", site="s1")
    # The edge keeps probing every pair, so the far edge's return is noticed at once.
    w.stopped = set()
    w.run(3.05)
    assert w.named("pair_confirmed", site="s1", since=3.0)


def test_a_far_edge_that_just_restarted_is_not_taken_at_its_first_word() -> None:
    # s1's controller restarts while s2 explores; the new s1 edge hears s2 through s1eb first (its switch for
    # s1ea is still reconnecting), so its first reports name only pairs through s1eb.
    w = steady()
    w.stopped = {"s1"}
    w.run(1.2)
    assert w.named("exploring", site="s2")
    w.edges["s1"] = edge(two_sites(), "s1", seed=7)
    w.stopped = set()
    w.drop = lambda m: m.dst_exit == "s1ea" and w.t < 1.215
    w.run(1.4)
    assert not w.named("pair_selected", site="s2")  # the active pair's absence meant nothing yet
    assert w.named("pair_confirmed", site="s2", since=1.2)
    assert w.active()[("s2", "s1")] == ("s2ec", "s1ea")


def test_reports_of_nonces_never_sent_prove_nothing_and_move_nothing() -> None:
    w = steady()
    s1 = w.edges["s1"]
    before = {p.key: p.confirmed_seq for p in s1.contexts["s2"].candidates}
    forged = Message("s2", "s1", "s2ed", "s1eb", nonce=7, reports=(1, 2, 3, 0xDEADBEEF))
    assert s1.received(forged, 1.0005) == []
    assert {p.key: p.confirmed_seq for p in s1.contexts["s2"].candidates} == before
    spoofed_update = Message("s2", "s1", "s2ed", "s1eb", nonce=8, reports=(0xDEADBEEF,), down=("s2ec",))
    assert s1.received(spoofed_update, 1.0005) == [] and s1.active() == {("s1", "s2"): ("s1ea", "s2ec")}
    assert s1.refused == 1
    assert s1.received(Message("nobody", "s1", "x", "s1ea", nonce=9), 1.0006) == []
    assert s1.received(Message("s2", "s3", "s2ec", "s1ea", nonce=9), 1.0007) == []


def test_a_flood_of_unproven_messages_on_both_edges_moves_nothing_and_answers_nothing() -> None:
    """Forgers on both sides send each edge 100 messages per pair each interval, claiming the far edge: every
    one asks for an answer, says a locator is down and reports guessed nonces. The keepalives carry on."""
    w = steady()
    answers_before = sum(1 for t, m in w.log if not m.ask)
    before = {n: (e.unproven, e.refused, e.limited) for n, e in w.edges.items()}  # the edges' own first meeting
    guess = random.Random(99)
    for _ in range(50):  # half a second
        for (src, dst), (a, b) in (("s2", "s1"), ("s2ec", "s1ea")), (("s1", "s2"), ("s1ea", "s2ec")):
            for _ in range(100):
                forged = Message(src, dst, a, b, guess.getrandbits(32), True,
                                 tuple(guess.getrandbits(32) for _ in range(8)), (a,))
                w.events += w.edges[dst].received(forged, w.t)
        w.run(w.t + 0.01)
    for name, far in (("s1", "s2"), ("s2", "s1")):
        e = w.edges[name]
        counts = (e.unproven, e.refused, e.limited)
        unproven, refused, limited = (now - then for now, then in zip(counts, before[name], strict=True))
        assert unproven == refused == 5000 and limited >= 5000 - 50 * 4 - 16
        assert e.contexts[far].active.confirmed_sent is not None and w.t - e.contexts[far].active.confirmed_sent < 0.03
    assert not w.named("pair_dead", "exploring", "pair_selected", since=1.0) and w.active() == PREFERRED
    # No forged message was answered: answers (messages that do not ask) went on at the rate of the real asks,
    # two edges over 50 intervals.
    answers = sum(1 for t, m in w.log if not m.ask) - answers_before
    assert answers <= 2 * 50 * 1.1  # about one per real keepalive (86 here; 186 when forged asks were answered)


def test_reports_are_few_and_an_unproven_nonce_never_displaces_a_proven_one() -> None:
    w = steady()
    s1, r = w.edges["s1"], w.edges["s1"].contexts["s2"]
    real = r.inbound[("s2ec", "s1ea")][0]
    s1.received(Message("s2", "s1", "s2ec", "s1ea", nonce=0xBAD, ask=True), w.t)
    assert r.inbound[("s2ec", "s1ea")][0] == real and not r.answer
    assert real in s1._reports_due(r, w.t - r.window) and 0xBAD not in s1._reports_due(r, w.t - r.window)
    # Too many reports prove nothing, even with a right one among them.
    ours = next(iter(r.sent))
    crowded = Message("s2", "s1", "s2ec", "s1ea", nonce=5, reports=(ours, *range(1, MAX_REPORTS + 1)), down=("s2ec",))
    assert s1.received(crowded, w.t) == [] and s1.active()[("s1", "s2")] == ("s1ea", "s2ec")
    assert all(len(m.reports) <= MAX_REPORTS for _, m in w.log)


def test_without_the_heartbeat_trigger_silence_is_never_judged() -> None:
    w = Wire(two_sites("[link]"))
    w.run(1.0)
    w.drop = lambda m: "s1ea" in m.pair
    w.run(2.0)
    assert not w.named("pair_dead", "exploring", "pair_selected")
    assert w.edges["s1"].next_deadline() is None


def identity(p: Plan, host: str) -> str:
    sp = next(s for s in p.sites if host in s.site.hosts)
    return str(next(h for h in sp.hosts if h.name == host).addresses["identity"])


def test_edges_map_both_identities_and_back() -> None:
    p = two_sites()
    s1, s2 = p.sites
    net = FakeNet(p, desired(p, {}))
    out = net.send("h1", identity(p, "h1"), identity(p, "h2"))
    assert out.kind == "delivered" and out.node == "ispa"
    assert out.pkt["ipv6_src"] == str(s1.hosts[0].locators["s1ea"])
    assert out.pkt["ipv6_dst"] == str(s2.hosts[0].locators["s2ec"])
    # What the core delivers to ISP C arrives at s2's exit and reaches h2 with both identities restored.
    back = net.inject("s2ec", 2, ipv6_src=out.pkt["ipv6_src"], ipv6_dst=out.pkt["ipv6_dst"])
    assert back.node == "h2" and back.pkt["ipv6_src"] == identity(p, "h1")
    assert back.pkt["ipv6_dst"] == identity(p, "h2")


def test_active_pair_decides_both_locators_and_failover_keeps_the_destination() -> None:
    p = two_sites()
    s2 = p.sites[1]
    moved = FakeNet(p, desired(p, {}, {("s1", "s2"): ("s1eb", "s2ed")}))
    out = moved.send("h1", identity(p, "h1"), identity(p, "h2"))
    assert out.node == "ispb" and out.pkt["ipv6_dst"] == str(s2.hosts[0].locators["s2ed"])
    ff = FakeNet(p, desired(p, {}), down={("s1ea", 2)})  # before the controller acts
    out = ff.send("h1", identity(p, "h1"), identity(p, "h2"))
    assert out.node == "ispb" and out.path == ["s1sw", "s1ea", "s1sw", "s1eb"]
    assert out.pkt["ipv6_dst"] == str(s2.hosts[0].locators["s2ec"])


def test_return_traffic_from_any_far_exit_is_mapped_back() -> None:
    p = two_sites()
    s1, s2 = p.sites
    net = FakeNet(p, desired(p, {}))
    for far in ("s2ec", "s2ed"):
        back = net.inject("s1eb", 2, ipv6_src=str(s2.hosts[0].locators[far]),
                          ipv6_dst=str(s1.hosts[0].locators["s1eb"]))
        assert back.node == "h1" and back.pkt["ipv6_src"] == identity(p, "h2")


def test_a_site_controller_computes_exactly_its_own_switches_rules() -> None:
    from multi6lab.controller.liveness import Liveness

    p = two_sites()
    whole = desired(p, {}, {("s1", "s2"): ("s1eb", "s2ed")})
    for sp in p.sites:
        own = desired(p, {}, {("s1", "s2"): ("s1eb", "s2ed")}, sites={sp.site.name})
        dpids = {sp.fabric_dpid, *(e.dpid for e in sp.exits)}
        assert own.rules and {r.dpid for r in own.rules} == dpids
        assert own.rules == {r for r in whole.rules if r.dpid in dpids}
        assert own.groups == {g for g in whole.groups if g.dpid in dpids}
    assert set(Liveness(p, 0.0, {"s2"}).usable()) == {"s2ec", "s2ed"}  # it watches only its own exits


def test_each_edge_knows_only_its_own_exits_and_the_far_sites_mapping_records() -> None:
    p = two_sites()
    s1 = edge(p, "s1")
    assert s1.exits == ("s1ea", "s1eb") and set(s1.contexts) == {"s2"}
    assert [(loc.exit, str(loc.prefix)) for loc in s1.records["s2"].locators] == [
        (e.name, str(e.delegation)) for e in p.sites[1].exits]


def test_one_report_without_the_active_pair_asks_again_and_only_a_second_moves() -> None:
    w = steady()
    w.stopped = {"s2"}  # s1 hears nothing for a while and explores
    w.run(1.04)  # long enough for the send timeout (3 probes unreported), and the far edge's silence
    s1 = w.edges["s1"]
    started = w.named("exploring", site="s1")[0]["t"]

    first = {m.pair: m.nonce for t, m in w.log if t == started and m.src_site == "s1" and m.ask}  # round one
    # The far edge's answer names the probe through s1eb only: the one through s1ea may still be on its way.
    assert s1.received(Message("s2", "s1", "s2ec", "s1eb", nonce=11, reports=(first[("s1eb", "s2ec")],)), w.t) == []
    again = s1.due(w.t)  # so it asks again at once, on every pair
    assert {m.pair for m in again if m.ask} == {p.key for p in s1.contexts["s2"].candidates}
    second = {m.pair: m.nonce for m in again}
    # The next report names the active pair's new probe: it was only late. Confirmed, nothing moved.
    ev = s1.received(Message("s2", "s1", "s2ec", "s1ea", nonce=12, reports=(second[("s1ea", "s2ec")],)), w.t)
    assert [e["event"] for e in ev] == ["pair_confirmed"] and s1.active()[("s1", "s2")] == ("s1ea", "s2ec")


def test_a_second_report_without_the_active_pair_moves_it() -> None:
    w = steady()
    w.stopped = {"s2"}
    w.run(1.04)  # long enough for the send timeout (3 probes unreported), and the far edge's silence
    s1 = w.edges["s1"]
    started = w.named("exploring", site="s1")[0]["t"]
    first = {m.pair: m.nonce for t, m in w.log if t == started and m.src_site == "s1" and m.ask}  # round one
    assert s1.received(Message("s2", "s1", "s2ec", "s1eb", nonce=11, reports=(first[("s1eb", "s2ec")],)), w.t) == []
    second = {m.pair: m.nonce for m in s1.due(w.t)}
    ev = s1.received(Message("s2", "s1", "s2ec", "s1eb", nonce=12, reports=(second[("s1eb", "s2ec")],)), w.t)
    assert [e["event"] for e in ev] == ["pair_selected"] and s1.active()[("s1", "s2")] == ("s1eb", "s2ec")


def test_a_controller_is_given_its_own_site_and_nothing_of_the_other(tmp_path: Path) -> None:
    """Each controller process gets its brief: its own site's plan, its switches, the mapping service. Nothing
    of the far site is in it (name, nodes, prefixes, addresses, MACs), and its decisions need nothing more: the
    rules from the brief, with what the mapping service and the pair protocol told it, equal the rules the
    whole plan would give."""
    plan = two_sites()
    s1, s2 = plan.sites
    brief = plan.brief(["s1"])
    text = codec.dumps(brief)
    far = [s2.site.name, s2.site.fabric, *s2.site.hosts, *(e.name for e in s2.exits),
           *(str(p) for p in s2.prefixes.values()), *(str(e.delegation) for e in s2.exits),
           *(str(a) for h in s2.hosts for a in h.addresses.values()), *(h.mac for h in s2.hosts),
           *(e.mac for e in s2.exits), *(str(e.address.ip) for e in s2.exits), s2.gateway_mac,
           str(edge_address(s2.exits[0].delegation))]
    assert [w for w in far if w in text] == []
    assert brief.sites == (s1,) and {n for n, _ in brief.switches} == {"s1sw", "s1ea", "s1eb"}
    assert codec.read_brief(codec.write(brief, tmp_path / "b.json")) == brief
    with pytest.raises(codec.CodecError, match="cannot read the brief: not a multi6lab brief"):
        codec.read_brief(codec.write(plan, tmp_path / "plan.json"))
    assert brief.mapping_server == plan.address("map") and brief.mapping_ttl_s == 5
    learned = {("s1", r.site): r for r in MappingService.of(plan).records if r.site == "s2"}
    met = {("s1", "s2"): SitePolicy.of(s2).subnets()}
    assert desired(brief, {}, records=learned, far_subnets=met, far_index={("s1", "s2"): 0}) == \
        desired(plan, {}, sites={"s1"}, records=learned, far_subnets=met)
    with pytest.raises(ValueError, match="a brief has no far sites"):
        desired(brief, {})


def test_each_edge_knows_only_the_far_edges_it_learned_itself() -> None:
    """With several sites in one controller process, each site's edge is its own: which far edge an address
    belongs to, where its messages go and how its far sites are numbered come from that edge's own records,
    never from a lookup another site of the process made."""
    plan = two_sites()
    s2 = plan.sites[1]
    learned, alone = edge(plan, "s1"), edge_of(plan, "s1")  # alone: the same site before any lookup
    at_c = edge_address(s2.exit("s2ec").delegation)
    assert learned.sender(at_c) == ("s2", "s2ec") and alone.sender(at_c) is None
    assert learned.address(learned.records["s2"], "s2ed") == edge_address(s2.exit("s2ed").delegation)
    assert learned.slots == {"s2": 0} and alone.slots == {}
    # A changed record (a locator deregistered) keeps the far site's number and forgets the old address.
    record = learned.records["s2"]
    assert learned.learn(dataclasses.replace(record, locators=record.locators[1:]))
    assert learned.sender(at_c) is None and learned.slots == {"s2": 0}
