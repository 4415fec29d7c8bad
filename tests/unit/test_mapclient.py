"""The mapping service's zone and the sites' client: registration, lookups, the cache, forged and lost answers.

The server here is a small DNS server over the rendered zone (dnspython's zone, answering with wildcard
synthesis and signing with the sites' keys), on a scripted network with a delay per message. What Knot itself
enforces (which names and types a key may update) is checked against the real Knot in
tests/integration/test_mapping_service.py.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Callable
from ipaddress import IPv6Address, IPv6Network

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rrset
import dns.tsigkeyring
import dns.update
import dns.zone
import pytest

from multi6lab.controller.mapclient import RETRY_MAX_S, RETRY_S, MappingClient
from multi6lab.controller.mapping import MappingService
from multi6lab.controller.pairs import edge_of
from multi6lab.controller.policy import TO_CONTROLLER, desired
from multi6lab.topologies import knot, loader
from multi6lab.topologies.addressing import edge_address
from multi6lab.topologies.plan import Plan, build
from multi6lab.vocabulary import Approach, Event
from tests.unit.test_idloc import ROOT, two_sites

DELAY = 0.004  # one way, client <-> server


class Server:
    """The registry's zone, as the sites update it, answering signed queries with signed answers."""

    def __init__(self, plan: Plan, keys: dict[str, str]):
        self.zone = dns.zone.from_text(knot.zone(plan), origin=knot.ZONE, relativize=False)
        self.keyring = dns.tsigkeyring.from_text({knot.site_owner(s): (knot.KEY_ALGORITHM, k) for s, k in keys.items()})
        self.up = True

    def handle(self, wire: bytes) -> bytes | None:
        if not self.up:
            return None
        m = dns.message.from_wire(wire, keyring=self.keyring)
        r = dns.message.make_response(m)
        if isinstance(m, dns.update.UpdateMessage):
            for rr in m.update:
                if rr.deleting == dns.rdataclass.ANY:
                    node = self.zone.get_node(rr.name)
                    if node is not None:
                        node.delete_rdataset(dns.rdataclass.IN, rr.rdtype)
                else:
                    rds = self.zone.find_rdataset(rr.name, rr.rdtype, create=True)
                    rds.update_ttl(rr.ttl)
                    for rd in rr:
                        rds.add(rd)
            return r.to_wire()
        q = m.question[0]
        node, name = self.zone.get_node(q.name), q.name
        while node is None and len(name) > len(dns.name.from_text(knot.ZONE)):
            name = name.parent()
            if self.zone.get_node(name) is not None:
                break
            node = self.zone.get_node(dns.name.Name((b"*", *name.labels)))
        if node is None:
            r.set_rcode(dns.rcode.NXDOMAIN)
            return r.to_wire()
        rds = node.get_rdataset(dns.rdataclass.IN, q.rdtype)
        if rds is not None:
            r.answer.append(dns.rrset.from_rdata_list(q.name, rds.ttl, list(rds)))
        return r.to_wire()


class World:
    """Every id-loc site's client and the server, with messages in flight for DELAY each way."""

    def __init__(self, plan: Plan, drop: Callable[[bytes], bool] = lambda w: False, delay: float = DELAY):
        self.plan = plan
        self.delay = delay
        self.keys = knot.new_secrets(knot.mapped_sites(plan))
        self.server = Server(plan, self.keys)
        self.clients = {s: MappingClient(s, k, plan.topology.mapping.ttl_s,
                                          random.Random(i).getrandbits)  # type: ignore[union-attr]
                        for i, (s, k) in enumerate(self.keys.items())}
        self.t = 0.0
        self.flight: list[tuple[float, str, bytes, bool]] = []  # (arrives, site, wire, to the server)
        self.events: list[dict] = []
        self.drop = drop
        self.tries: list[int] = []

    def register_all(self) -> None:
        for sp in self.plan.sites:
            self.clients[sp.site.name].register([(e.name, e.delegation) for e in sp.exits], self.t)

    def run(self, until: float, step: float = 0.001) -> None:
        while self.t < until:
            self.t = round(self.t + step, 6)
            for site, c in self.clients.items():
                out, ev = c.poll(self.t)
                self.events += ev
                for o in out:
                    self.tries.append(o.tries)
                    if not self.drop(o.wire):
                        self.flight.append((self.t + self.delay, site, o.wire, True))
            due = [f for f in self.flight if f[0] <= self.t]
            self.flight = [f for f in self.flight if f[0] > self.t]
            for _, site, wire, to_server in due:
                if to_server:
                    answer = self.server.handle(wire)
                    if answer is not None:
                        self.flight.append((self.t + self.delay, site, answer, False))
                else:
                    self.events += self.clients[site].received(wire, self.t)

    def named(self, event: str, **fields: object) -> list[dict]:
        return [e for e in self.events if e["event"] == event and all(e.get(k) == v for k, v in fields.items())]


def host_of(plan: Plan, site: str) -> IPv6Address:
    return next(sp for sp in plan.sites if sp.site.name == site).hosts[0].addresses["identity"]


# -- the zone ------------------------------------------------------------------------------------------------
def test_zone_names_each_identity_by_a_wildcard_and_lists_identity_and_delegations() -> None:
    plan = two_sites()
    zone = dns.zone.from_text(knot.zone(plan), origin=knot.ZONE, relativize=False)  # Knot's syntax is RFC 1035's
    ptr = zone.find_rdataset(knot.prefix_wildcard(IPv6Network("fd00:2::/48")), "PTR")
    assert [r.target.to_text() for r in ptr] == ["s2.site.map.multi6lab."]
    assert knot.prefix_wildcard(IPv6Network("fd00:2::/48")) == "*.0.0.0.0.2.0.0.0.0.0.d.f.id.map.multi6lab."
    apl = zone.find_rdataset(knot.delegated_owner("s1"), "APL")
    assert [f"{i.address}/{i.prefix}" for r in apl for i in r.items] == ["3fff:a:1::/48", "3fff:b:1::/48"]
    assert zone.get_node(knot.site_owner("s1")) is None  # the site writes its own records
    loc = zone.find_rdataset(knot.prefix_wildcard(IPv6Network("3fff:b:1::/48"), knot.LOCATOR_TREE), "PTR")
    assert [r.target.to_text() for r in loc] == ["s1.site.map.multi6lab."]  # who a locator was delegated to


def test_knot_lets_each_key_update_only_lp_and_l64_at_or_below_its_own_name() -> None:
    plan = two_sites()
    conf = knot.config(plan, ROOT / "state", {"s1": "c2VjcmV0", "s2": "b3RoZXI="})
    block = conf[conf.index("  - id: update-s1"):conf.index("  - id: update-s2")]
    assert "key: s1.site.map.multi6lab." in block and "update-owner: key" in block
    assert "update-owner-match: sub-or-equal" in block and "update-type: [LP, L64]" in block
    assert f"listen: {knot.server_address(plan)}@53" in conf


def test_names_read_back() -> None:
    assert knot.site_of("s2.site.map.multi6lab.") == "s2"
    assert knot.site_of("x.s2.site.map.multi6lab.") is None and knot.site_of("s2.site.example.") is None
    assert knot.exit_of("s2", "s2ec.s2.site.map.multi6lab.") == "s2ec"
    assert knot.exit_of("s2", "s1ea.s1.site.map.multi6lab.") is None
    assert knot.l64(IPv6Network("3fff:c:2::/48")) == "3fff:000c:0002:0000"


def test_two_id_loc_sites_need_a_mapping_service_and_nibble_identities() -> None:
    text = (ROOT / "topologies" / "two-sites.yaml").read_text().replace("approach: nptv6", "approach: id-loc")
    with pytest.raises(loader.InputError, match="mapping service"):
        loader.loads(text.replace("mapping: {server: map, ttl_s: 5}", ""))
    with pytest.raises(loader.InputError, match="is not a remote"):
        loader.loads(text.replace("mapping: {server: map,", "mapping: {server: core,"))
    with pytest.raises(loader.InputError, match="must end on a nibble"):
        loader.loads(text.replace('"fd00:2::/48"', '"fd00:2::/50"').replace("3fff:c:2::/48", "3fff:c:2::/50")
                     .replace("3fff:d:2::/48", "3fff:d:2::/50"))


# -- lookups ---------------------------------------------------------------------------------------------------
def test_a_lookup_returns_what_the_far_site_registered_in_three_round_trips() -> None:
    w = World(two_sites())
    w.register_all()
    w.run(0.05)
    assert len(w.named(Event.MAPPING_REGISTERED)) == 2
    w.clients["s1"].want(host_of(w.plan, "s2"), w.t)
    w.run(0.1)
    (ev,) = w.named(Event.MAPPING_RESOLVED, site="s1")
    expected = next(r for r in MappingService.of(w.plan).records if r.site == "s2")
    assert w.clients["s1"].records == {"s2": expected}
    assert ev["lookup_ms"] == pytest.approx(3 * 2 * DELAY * 1000, abs=3.5)
    assert ev["ttl_s"] == w.plan.topology.mapping.ttl_s  # type: ignore[union-attr]


def test_a_record_is_used_until_its_ttl_and_kept_while_the_service_is_unreachable() -> None:
    plan = two_sites()
    plan = dataclasses.replace(plan, topology=dataclasses.replace(
        plan.topology, mapping=dataclasses.replace(plan.topology.mapping, ttl_s=2)))  # type: ignore[arg-type]
    w = World(plan)
    w.register_all()
    w.run(0.05)
    w.clients["s1"].want(host_of(plan, "s2"), w.t)
    w.run(0.2)
    assert len(w.named(Event.MAPPING_RESOLVED, site="s1")) == 1
    w.run(2.0)
    assert len(w.named(Event.MAPPING_RESOLVED, site="s1")) == 1  # cached for the TTL: no query
    w.run(2.2)
    assert len(w.named(Event.MAPPING_RESOLVED, site="s1")) == 2  # asked again once it ran out
    w.server.up = False
    w.run(8.0)
    assert "s2" in w.clients["s1"].records  # served stale while nobody answers
    retries = w.named(Event.MAPPING_RETRY, site="s1")
    gaps = [round(b["t"] - a["t"], 3) for a, b in itertools.pairwise(retries)]
    assert gaps[:3] == [RETRY_S * 2, RETRY_S * 4, RETRY_MAX_S] and max(gaps) == RETRY_MAX_S
    w.server.up = True
    w.run(11.0)
    assert len(w.named(Event.MAPPING_RESOLVED, site="s1")) == 3


def test_retries_leave_through_the_next_exit() -> None:
    w = World(two_sites(), drop=lambda wire: True)
    w.clients["s1"].want(host_of(w.plan, "s2"), 0.0)
    w.run(2.0)
    assert w.tries[:4] == [1, 2, 3, 4]  # the controller picks exit (tries - 1) mod n


def test_an_address_no_site_holds_is_asked_again_later() -> None:
    w = World(two_sites())
    w.clients["s1"].want(IPv6Address("fd00:9::1"), 0.0)
    w.run(0.05)
    (ev,) = w.named(Event.MAPPING_UNKNOWN)
    assert "no site holds fd00:9::1" in ev["reason"] and not w.clients["s1"].records
    ttl = w.plan.topology.mapping.ttl_s  # type: ignore[union-attr]
    assert w.clients["s1"].wanted[IPv6Address("fd00:9::1")] == pytest.approx(ev["t"] + ttl)  # negative caching


def test_a_locator_names_the_site_it_was_delegated_to() -> None:
    """A packet from an unknown locator: the registry's loc tree says whose it is, and the record follows."""
    w = World(two_sites())
    w.register_all()
    w.run(0.05)
    sender = IPv6Address("3fff:d:2::6d:ff:fe00:1234")  # in s2's delegation from ISP D
    w.clients["s1"].want(sender, w.t, knot.LOCATOR_TREE)
    w.run(0.2)
    (ev,) = w.named(Event.MAPPING_RESOLVED, address=str(sender))
    assert ev["peer"] == "s2" and ev["tree"] == knot.LOCATOR_TREE and "s2" in w.clients["s1"].records
    stranger = IPv6Address("3fff:ff:100::2")  # a plain remote: no site holds it
    w.clients["s1"].want(stranger, w.t, knot.LOCATOR_TREE)
    w.run(w.t + 0.1)
    (no,) = w.named(Event.MAPPING_UNKNOWN, address=str(stranger))
    assert no["tree"] == knot.LOCATOR_TREE and "no site holds" in no["reason"]
    assert stranger in w.clients["s1"].wanted  # asked again after the negative TTL ...
    w.clients["s1"].forget(stranger)
    assert stranger not in w.clients["s1"].wanted  # ... unless the controller no longer cares


def test_a_site_that_has_not_registered_yet_is_found_once_it_has() -> None:
    w = World(two_sites())
    w.clients["s1"].want(host_of(w.plan, "s2"), 0.0)
    w.run(0.05)
    assert "has no locators" in w.named(Event.MAPPING_UNKNOWN)[0]["reason"]
    w.register_all()
    w.run(1.2)
    assert "s2" in w.clients["s1"].records


def test_the_same_registration_asked_again_in_flight_keeps_the_update_whose_answer_is_coming() -> None:
    """Each exit switch that connects asks to register: a second ask must not discard the first's answer."""
    w = World(two_sites())
    sp1 = w.plan.sites[0]
    exits = [(e.name, e.delegation) for e in sp1.exits]
    w.clients["s1"].register(exits, w.t)
    w.run(DELAY)  # the update is at the server; its answer is on the way back
    w.clients["s1"].register(exits, w.t)
    w.run(0.05)
    (ev,) = w.named(Event.MAPPING_REGISTERED, site="s1")
    assert ev["tries"] == 1 and len(w.tries) == 1 and not w.named(Event.MAPPING_RETRY)
    assert w.clients["s1"].dropped == 0  # the answer matched the update in flight
    w.clients["s1"].register(exits[:1], w.t)  # fewer exits: a new update, answered on its own
    w.clients["s1"].register(exits, w.t)  # and back: replaces that one in flight
    w.run(0.1)
    assert len(w.named(Event.MAPPING_REGISTERED, site="s1")) == 2 and len(w.tries) == 3
    assert w.clients["s1"].dropped == 1  # the answer to the replaced update


def test_locators_outside_the_delegations_are_refused_and_the_old_record_kept() -> None:
    w = World(two_sites())
    w.register_all()
    w.run(0.05)
    w.clients["s1"].want(host_of(w.plan, "s2"), w.t)
    w.run(0.2)
    before = w.clients["s1"].records["s2"]
    # s2 (or whoever holds its key) claims ISP A's space for itself.
    w.clients["s2"].register([("s2ec", IPv6Network("3fff:a:1::/48"))], w.t)
    w.clients["s1"].wanted[host_of(w.plan, "s2")] = w.t
    w.run(0.4)
    (ev,) = w.named(Event.MAPPING_REFUSED, site="s1")
    assert "3fff:a:1::/48" in ev["reason"] and "no ISP" in ev["reason"]
    assert w.clients["s1"].records["s2"] == before


def test_forged_and_unsigned_answers_are_dropped() -> None:
    w = World(two_sites())
    w.register_all()
    w.run(0.05)
    c = w.clients["s1"]
    c.want(host_of(w.plan, "s2"), w.t)
    out, _ = c.poll(w.t)
    query = dns.message.from_wire(out[0].wire, keyring=c.keyring)
    forged = dns.message.Message(query.id)  # right id and question, but unsigned
    forged.flags |= dns.flags.QR
    forged.question = list(query.question)
    forged.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "PTR", "s1.site.map.multi6lab."))
    wrong_key = dns.tsigkeyring.from_text({knot.site_owner("s1"): (knot.KEY_ALGORITHM, "d3Jvbmc=")})
    signed_wrong = dns.message.make_response(query)
    signed_wrong.use_tsig(wrong_key, keyname=knot.site_owner("s1"))
    for wire in (forged.to_wire(), signed_wrong.to_wire(), b"\x00" * 40, out[0].wire[:2] + b"junk" * 8):
        assert c.received(wire, w.t) == []
    assert c.dropped == 4 and not c.records


def test_a_locator_the_far_site_gives_up_leaves_the_edges_candidates() -> None:
    w = World(two_sites())
    w.register_all()
    w.run(0.05)
    w.clients["s1"].want(host_of(w.plan, "s2"), w.t)
    w.run(0.2)
    edge = edge_of(w.plan, "s1", w.clients["s1"].records.values())
    assert {p.dst_exit for p in edge.contexts["s2"].candidates} == {"s2ec", "s2ed"}
    sp2 = w.plan.sites[1]
    w.clients["s2"].register([(e.name, e.delegation) for e in sp2.exits if e.name != "s2ec"], w.t)  # left ISP C
    w.clients["s1"].wanted[host_of(w.plan, "s2")] = w.t + 0.05
    w.run(0.4)
    record = w.clients["s1"].records["s2"]
    assert [loc.exit for loc in record.locators] == ["s2ed"]
    assert edge.learn(record) and not edge.learn(record)
    c = edge.contexts["s2"]
    assert {p.dst_exit for p in c.candidates} == {"s2ed"} and c.active.dst_exit == "s2ed"


def test_sites_without_id_loc_register_nothing() -> None:
    plan = build(loader.load(ROOT / "topologies" / "two-sites.yaml"))
    assert all(sp.site.approach != Approach.ID_LOC for sp in plan.sites) and knot.mapped_sites(plan) == []


def test_each_id_loc_exit_hands_the_mapping_service_s_answers_to_its_controller() -> None:
    plan = two_sites()
    rules = desired(plan, {}).rules
    for sp in plan.sites:
        for e in sp.exits:
            want = {("in_port", e.outside_port), ("ip_proto", 17), ("udp_src", knot.DNS_PORT),
                    ("ipv6_dst", str(edge_address(e.delegation)))}
            assert any(r.dpid == e.dpid and want <= set(r.match) and r.actions == (TO_CONTROLLER,) for r in rules)


def test_random_bytes_behind_a_query_s_id_are_dropped_and_counted() -> None:
    import random

    c = MappingClient("s1", knot.new_secrets(["s1"])["s1"], 5, random.Random(1).getrandbits)
    c.want(IPv6Address("fd00:2::1"), 0.0)
    out, _ = c.poll(0.0)
    rng = random.Random(3)
    for _ in range(500):  # the id of a query in flight, then anything
        assert c.received(out[0].wire[:2] + rng.randbytes(rng.randrange(0, 300)), 0.1) == []
    assert c.dropped == 500 and c.pending  # the query still waits for its real answer


def test_across_a_long_path_the_retry_waits_for_the_measured_round_trip_not_a_fixed_quarter_second() -> None:
    """RFC 6298 for the mapping client: before any answer the first try waits RETRY_S (250 ms); across a 300 ms
    round trip that first registration is sent twice, its timeout backs off, the next query's answer is a
    sample, and from then on no query is sent before its answer could have come back."""
    from multi6lab.controller.mapclient import RETRY_S

    w = World(two_sites(), delay=0.15)
    w.register_all()
    w.run(0.7)
    assert len(w.named(Event.MAPPING_REGISTERED)) == 2
    assert {e["tries"] for e in w.named(Event.MAPPING_RETRY)} == {2}  # the registrations, once each
    before = len(w.named(Event.MAPPING_RETRY))
    c = w.clients["s1"]
    assert c.rtt.srtt is None and c.rtt.rto == 2 * RETRY_S  # backed off: no answer was a sample (Karn)
    c.want(host_of(w.plan, "s2"), w.t)
    w.run(w.t + 2.5)
    assert [e["site"] for e in w.named(Event.MAPPING_RESOLVED)] == ["s1"]
    assert len(w.named(Event.MAPPING_RETRY)) == before  # the lookup's three round trips: never asked twice
    assert c.rtt.srtt == pytest.approx(0.3, abs=0.002) and c.rtt.rto > 0.3


def test_on_a_short_path_the_first_retry_stays_at_a_quarter_second() -> None:
    from multi6lab.controller.mapclient import RETRY_S, RoundTrip

    rt = RoundTrip()
    for _ in range(20):
        rt.sample(0.008)
    assert rt.rto == RETRY_S  # a LAN's round trip does not shorten it below the floor
    rt.timed_out()
    rt.timed_out()
    assert rt.rto == 4 * RETRY_S
    rt.sample(0.008)
    assert rt.rto == RETRY_S
