"""id-loc: locator-pair liveness and exploration (fake clock), and the edges' rules (fake flow table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from multi6lab.controller.pairs import STANDBY_FACTOR, PairTable
from multi6lab.controller.policy import SitePolicy, desired
from multi6lab.topologies import loader
from multi6lab.topologies.plan import Plan, build
from tests.unit.fakenet import FakeNet

ROOT = Path(__file__).resolve().parents[2]


def two_sites(triggers: str = "[link, heartbeat]") -> Plan:
    text = (ROOT / "topologies" / "two-sites.yaml").read_text()
    text = text.replace("approach: nptv6", "approach: id-loc").replace("[link, heartbeat]", triggers)
    return build(loader.loads(text))


def names(events: list[dict[str, object]]) -> list[object]:
    return [e["event"] for e in events]


def up(t: PairTable, now: float) -> None:
    """Every pair delivers a probe at ``now`` (the network came up)."""
    for r in t.routes.values():
        for p in r.candidates:
            t.seen(p.src_exit, p.dst_exit, now)


def test_candidates_in_preference_order_and_probing_rates() -> None:
    t = PairTable(two_sites())
    r = t.routes[("s1", "s2")]
    assert [p.key for p in r.candidates] == [("s1ea", "s2ec"), ("s1ea", "s2ed"), ("s1eb", "s2ec"), ("s1eb", "s2ed")]
    assert t.active() == {("s1", "s2"): ("s1ea", "s2ec"), ("s2", "s1"): ("s2ec", "s1ea")}
    assert set(t.due(0.0)) == {p.key for r in t.routes.values() for p in r.candidates}  # first round: all
    assert set(t.due(0.010)) == {("s1ea", "s2ec"), ("s2ec", "s1ea")}  # then the active pairs every interval
    assert len(t.due(0.010 * STANDBY_FACTOR)) == 8  # and the others every STANDBY_FACTOR intervals


def test_silent_failure_moves_to_a_disjoint_pair_at_once_and_explores_to_confirm_it() -> None:
    t = PairTable(two_sites())
    up(t, 1.000)
    assert t.tick(1.029) == []
    ev = t.tick(1.0305)
    # Both directions through ISP A die; each moves at once to the pair avoiding both of its exits.
    assert names(ev) == ["pair_dead", "exploring", "pair_selected"] * 2
    assert ev[0]["cause"] == "heartbeat" and ev[0]["exit"] == "s1ea"
    assert ev[2]["cause"] == "disjoint, known alive" and ev[2]["provisional"]
    assert t.active() == {("s1", "s2"): ("s1eb", "s2ed"), ("s2", "s1"): ("s2ed", "s1eb")}
    assert set(t.due(1.0306)) >= {("s1eb", "s2ec"), ("s1eb", "s2ed"), ("s1ea", "s2ed")}  # all candidates now
    assert t.tick(1.0400) == []  # no verdict on anything while the exploration runs
    conf = t.seen("s1eb", "s2ed", 1.0318)
    assert names(conf) == ["pair_confirmed"] and conf[0]["exploration_ms"] == pytest.approx(1.3)
    assert t.active()[("s1", "s2")] == ("s1eb", "s2ed")
    assert t.seen("s1eb", "s2ec", 1.0320) == []  # exploration over: a later arrival changes nothing


def test_silent_failure_follows_whichever_pair_the_exploration_finds_first() -> None:
    t = PairTable(two_sites())
    up(t, 1.000)
    t.tick(1.0305)
    sel = t.seen("s1eb", "s2ec", 1.0318)  # the guess (s1eb, s2ed) has not delivered yet; this one has
    assert names(sel) == ["pair_selected"] and sel[0]["exploration_ms"] == pytest.approx(1.3)
    assert t.active()[("s1", "s2")] == ("s1eb", "s2ec")


def test_silent_failure_without_fresh_evidence_waits_for_the_exploration() -> None:
    t = PairTable(two_sites())
    up(t, 1.000)
    for k in range(1, 41):  # only the active pairs keep delivering: standby evidence grows stale
        t.seen("s1ea", "s2ec", 1.0 + k * 0.01)
        t.seen("s2ec", "s1ea", 1.0 + k * 0.01)
    ev = t.tick(1.4305)
    assert names(ev) == ["pair_dead", "exploring", "pair_dead", "exploring"]
    assert t.active()[("s1", "s2")] == ("s1ea", "s2ec")  # still the dead pair until something delivers
    sel = t.seen("s1eb", "s2ec", 1.4318)
    assert names(sel) == ["pair_selected"] and t.active()[("s1", "s2")] == ("s1eb", "s2ec")


def test_link_trigger_moves_both_directions_at_once_to_pairs_known_alive() -> None:
    t = PairTable(two_sites())
    up(t, 1.0)
    ev = t.link("s1ea", up=False, now=1.2)
    assert names(ev) == ["pair_dead", "pair_selected", "pair_dead", "pair_selected"]
    assert ev[1]["cause"] == "known alive" and "exploration_ms" not in ev[1]  # nothing was explored
    assert t.active() == {("s1", "s2"): ("s1eb", "s2ec"), ("s2", "s1"): ("s2ec", "s1eb")}
    assert ("s1ea", "s2ed") not in t.due(1.2001)  # never probe through a down link
    assert t.tick(1.2002) == []  # the new pairs are judged from their selection, not by standby age
    assert names(t.tick(1.2305)) == ["pair_dead", "exploring", "pair_dead", "exploring"]


def test_link_trigger_without_fresh_evidence_explores() -> None:
    t = PairTable(two_sites())
    up(t, 1.0)
    ev = t.link("s1ea", up=False, now=5.0)  # standby evidence is 4 s old: stale
    assert names(ev) == ["pair_dead", "exploring", "pair_dead", "exploring"]
    t.seen("s1ea", "s2ed", 5.0002)  # a probe sent before the link went down, still in flight
    assert t.active()[("s1", "s2")] == ("s1ea", "s2ec")  # ... is not evidence: still exploring
    t.seen("s1eb", "s2ec", 5.0010)
    assert t.active()[("s1", "s2")] == ("s1eb", "s2ec")


def test_preferred_pair_comes_back_after_multiplier_probes() -> None:
    t = PairTable(two_sites())
    up(t, 1.0)
    t.link("s1ea", up=False, now=1.5)
    t.seen("s1eb", "s2ec", 1.501)
    t.link("s1ea", up=True, now=2.0)
    assert t.seen("s1ea", "s2ec", 2.1) == [] and t.seen("s1ea", "s2ec", 2.2) == []
    ev = t.seen("s1ea", "s2ec", 2.3)
    assert names(ev) == ["pair_selected"] and ev[0]["cause"] == "preferred pair back"


def test_no_heartbeat_trigger_no_verdicts() -> None:
    t = PairTable(two_sites("[link]"))
    up(t, 1.0)
    assert t.tick(5.0) == [] and t.next_deadline() is None


def identity(p: Plan, host: str) -> str:
    sp = next(s for s in p.sites if host in s.site.hosts)
    return str(next(h for h in sp.hosts if h.name == host).addresses["identity"])


def test_edges_map_both_identities_and_back() -> None:
    p = two_sites()
    s1, s2 = p.sites
    net = FakeNet(p, desired(p, {}))
    out = net.send("h1", identity(p, "h1"), identity(p, "h2"))
    assert out.kind == "delivered" and out.node == "ispa"
    assert out.pkt["ipv6_src"] == str(SitePolicy.of(s1).locator(s1.hosts[0], "s1ea"))
    assert out.pkt["ipv6_dst"] == str(SitePolicy.of(s2).locator(s2.hosts[0], "s2ec"))
    # What the core delivers to ISP C arrives at s2's exit and reaches h2 with both identities restored.
    back = net.inject("s2ec", 2, ipv6_src=out.pkt["ipv6_src"], ipv6_dst=out.pkt["ipv6_dst"])
    assert back.node == "h2" and back.pkt["ipv6_src"] == identity(p, "h1")
    assert back.pkt["ipv6_dst"] == identity(p, "h2")


def test_active_pair_decides_both_locators_and_failover_keeps_the_destination() -> None:
    p = two_sites()
    s2 = p.sites[1]
    moved = FakeNet(p, desired(p, {}, {("s1", "s2"): ("s1eb", "s2ed")}))
    out = moved.send("h1", identity(p, "h1"), identity(p, "h2"))
    assert out.node == "ispb" and out.pkt["ipv6_dst"] == str(SitePolicy.of(s2).locator(s2.hosts[0], "s2ed"))
    ff = FakeNet(p, desired(p, {}), down={("s1ea", 2)})  # before the controller acts
    out = ff.send("h1", identity(p, "h1"), identity(p, "h2"))
    assert out.node == "ispb" and out.path == ["s1sw", "s1ea", "s1sw", "s1eb"]
    assert out.pkt["ipv6_dst"] == str(SitePolicy.of(s2).locator(s2.hosts[0], "s2ec"))


def test_return_traffic_from_any_far_exit_is_mapped_back() -> None:
    p = two_sites()
    s1, s2 = p.sites
    net = FakeNet(p, desired(p, {}))
    for far in ("s2ec", "s2ed"):
        back = net.inject("s1eb", 2, ipv6_src=str(SitePolicy.of(s2).locator(s2.hosts[0], far)),
                          ipv6_dst=str(SitePolicy.of(s1).locator(s1.hosts[0], "s1eb")))
        assert back.node == "h1" and back.pkt["ipv6_src"] == identity(p, "h2")
