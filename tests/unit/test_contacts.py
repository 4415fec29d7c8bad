"""An id-loc edge learns whom it talks to only from packets that reach it (controller.contacts), and its
switches send up exactly what it cannot place yet (policy, walked through the fake flow table)."""

from __future__ import annotations

from ipaddress import IPv6Address as A
from ipaddress import IPv6Network as N

from multi6lab.controller.contacts import HOLD_S, MAX_WAITING, QUEUE, Contacts, Held, sixty_four
from multi6lab.controller.mapping import MappingService
from multi6lab.controller.policy import MAX_FAR_SUBNETS, desired
from multi6lab.topologies.knot import IDENTITY_TREE, LOCATOR_TREE
from tests.unit.fakenet import FakeNet
from tests.unit.test_idloc import identity, two_sites

PLAN = two_sites()
RECORDS = {r.site: r for r in MappingService.of(PLAN).records if r.site != "s1"}  # what s1 may come to know
H2 = A(identity(PLAN, "h2"))
R = A("3fff:ff:100::2")


def pkt(n: int = 0) -> Held:
    return Held(bytes([n]), 1, 1)


def test_a_first_packet_toward_an_unknown_identity_waits_for_its_lookup() -> None:
    c = Contacts()
    first = c.toward(H2, pkt(0), {}, 0.0)
    assert first.want == [(H2, IDENTITY_TREE)] and not first.release and not first.changed
    assert c.toward(H2, pkt(1), {}, 0.01).want == []  # one lookup per address
    done = c.resolved(H2, RECORDS)
    assert done.changed and done.release == [pkt(0), pkt(1)]
    assert c.far_subnets("s1") == {("s1", "s2"): (N("fd00:2::/64"),)}


def test_a_known_site_s_new_subnet_gets_rules_at_once_and_its_packet_goes_on() -> None:
    c = Contacts()
    other = A("fd00:2:0:7::1")
    got = c.toward(other, pkt(), RECORDS, 0.0)
    assert got.changed and got.release == [pkt()] and not got.want
    again = c.toward(other, pkt(), RECORDS, 0.0)  # its rule was still on the way
    assert not again.changed and again.release == [pkt()]


def test_an_unknown_locator_is_looked_up_in_the_locator_tree_and_mapped_to_its_site() -> None:
    c = Contacts()
    src = PLAN.sites[1].hosts[0].locators["s2ed"]
    first = c.arrived(src, pkt(), {}, 0.0)
    asked = sixty_four(src).network_address  # one lookup per source /64
    assert first.want == [(asked, LOCATOR_TREE)]
    assert c.arrived(src + 1, pkt(1), {}, 0.0).want == []
    done = c.resolved(asked, RECORDS)
    assert done.release == [pkt(), pkt(1)] and c.far["s2"] == [N("fd00:2::/64")]  # the identity /64 behind it


def test_a_source_no_site_holds_is_plain_from_then_on() -> None:
    c = Contacts()
    c.arrived(R, pkt(), {}, 0.0)
    done = c.unknown(A("3fff:ff:100::"), LOCATOR_TREE, 0.02)
    assert done.changed and done.release == [pkt()] and N("3fff:ff:100::/64") in c.plain
    later = c.arrived(A("3fff:ff:100::9"), pkt(1), {}, 0.03)  # the same /64: no new lookup
    assert not later.want and later.release == [pkt(1)]


def test_a_plain_source_that_registers_later_is_mapped_to_its_site_from_then_on() -> None:
    c = Contacts()
    src = PLAN.sites[1].hosts[0].locators["s2ec"]
    c.arrived(src, pkt(), {}, 0.0)
    c.unknown(sixty_four(src).network_address, LOCATOR_TREE, 0.1)  # s2 had not registered yet
    assert sixty_four(src) in c.plain
    upgraded = c.resolved(sixty_four(src).network_address, RECORDS)  # asked again after the negative TTL
    assert upgraded.changed and sixty_four(src) not in c.plain  # its packets come up again, and ...
    assert c.arrived(src, pkt(1), RECORDS, 0.2).changed and c.far["s2"] == [N("fd00:2::/64")]  # ... are s2's


def test_a_record_that_came_for_another_lookup_places_what_waits_at_once() -> None:
    """The far edge's probes make this edge look up the far edge's own address; that record places the data
    packet held for its source's lookup, which need not be waited for."""
    c = Contacts()
    src = PLAN.sites[1].hosts[0].locators["s2ec"]
    c.arrived(src, pkt(), {}, 0.0)
    probe = A("3fff:c:2::1")  # the far edge's address: its locator-pair messages come from it
    assert c.arrived(probe, None, {}, 0.0).want == [(A("3fff:c:2::"), LOCATOR_TREE)]
    got = c.resolved(A("3fff:c:2::"), RECORDS)
    assert got.release == [pkt()] and not c.waiting and c.far["s2"] == [N("fd00:2::/64")]  # nothing made up


def test_an_identity_no_site_holds_is_unreachable_and_what_waited_is_dropped() -> None:
    c = Contacts()
    c.toward(A("fd00:9::1"), pkt(), {}, 0.0)
    assert c.unknown(A("fd00:9::1"), IDENTITY_TREE, 0.1).dropped == 1
    assert c.toward(R, pkt(), {}, 0.0).dropped == 1  # a routed address is the plain rules' business


def test_waiting_is_bounded_in_time_count_and_queue() -> None:
    c = Contacts()
    for i in range(QUEUE + 2):
        c.toward(H2, pkt(i), {}, 0.0)
    assert c.expire(HOLD_S - 0.1) == 0 and c.expire(HOLD_S) == QUEUE
    assert c.resolved(H2, RECORDS).release == []  # what expired is gone
    for i in range(MAX_WAITING + 5):
        c.toward(A(int(A("fd00:9::")) + i), pkt(), {}, 10.0)
    assert len(c.waiting) == MAX_WAITING


def test_a_far_site_has_at_most_max_far_subnets_and_the_rest_is_dropped() -> None:
    c = Contacts()
    for i in range(MAX_FAR_SUBNETS):
        assert c.toward(A(f"fd00:2:0:{i:x}::1"), pkt(), RECORDS, 0.0).changed
    over = c.toward(A(f"fd00:2:0:{MAX_FAR_SUBNETS:x}::1"), pkt(), RECORDS, 0.0)
    assert over.dropped == 1 and not over.release  # sent back up it would only come back


# -- what the switches send up ---------------------------------------------------------------------------
def test_a_cold_edge_sends_up_what_it_cannot_place_and_forwards_once_it_knows() -> None:
    s1, s2 = PLAN.sites
    h1, h2 = identity(PLAN, "h1"), identity(PLAN, "h2")
    cold = FakeNet(PLAN, desired(PLAN, {}, records={}, far_subnets={}, sites={"s1"}))
    out = cold.send("h1", h1, h2)
    assert out.kind == "controller" and out.where == "s1sw"  # no record: the fabric asks
    known = {("s1", "s2"): RECORDS["s2"]}
    met = FakeNet(PLAN, desired(PLAN, {}, records=known, far_subnets={}, sites={"s1"}))
    out = met.send("h1", h1, h2)
    assert out.kind == "controller" and out.where == "s1ea"  # a record, but no rules for that /64 yet
    from_far = str(s2.hosts[0].locators["s2ec"])
    to_me = str(s1.hosts[0].locators["s1ea"])
    assert met.inject("s1ea", 2, ipv6_src=from_far, ipv6_dst=to_me).where == "s1ea"  # ... either way
    ready = FakeNet(PLAN, desired(PLAN, {}, records=known, far_subnets={("s1", "s2"): [N("fd00:2::/64")]},
                                  sites={"s1"}))
    assert ready.send("h1", h1, h2).node == "ispa"
    back = ready.inject("s1ea", 2, ipv6_src=from_far, ipv6_dst=to_me)
    assert back.node == "h1" and back.pkt["ipv6_src"] == h2 and back.pkt["ipv6_dst"] == h1


def test_an_unplaced_source_goes_up_and_a_plain_one_is_translated_as_nptv6_does() -> None:
    s1 = PLAN.sites[0]
    to_me = str(s1.hosts[0].locators["s1ea"])
    net = FakeNet(PLAN, desired(PLAN, {}, sites={"s1"}))
    assert net.inject("s1ea", 2, ipv6_src=str(R), ipv6_dst=to_me).kind == "controller"
    plain = FakeNet(PLAN, desired(PLAN, {}, sites={"s1"}, plain={"s1": [N("3fff:ff:100::/64")]}))
    out = plain.inject("s1ea", 2, ipv6_src=str(R), ipv6_dst=to_me)
    assert out.node == "h1" and out.pkt["ipv6_src"] == str(R) and out.pkt["ipv6_dst"] == identity(PLAN, "h1")
    # Outbound to a routed address needs nothing: the site's own locator, at once.
    assert plain.send("h1", identity(PLAN, "h1"), str(R)).node == "ispa"


def test_the_plain_list_is_bounded_and_what_falls_out_is_no_longer_looked_up() -> None:
    from multi6lab.controller.contacts import MAX_PLAIN

    c = Contacts()
    for i in range(MAX_PLAIN + 2):
        gone = c.unknown(A(f"3fff:ff:{i:x}::"), LOCATOR_TREE, float(i)).forget
    assert len(c.plain) == MAX_PLAIN and gone == [A(f"3fff:ff:{1:x}::")] and N("3fff:ff::/64") not in c.plain


# -- a peer that gains support: its plain sessions stay plain, its new ones are mapped ------------------------
def test_a_plain_source_found_registered_later_is_upgraded_and_remembered() -> None:
    c = Contacts()
    src = PLAN.sites[1].hosts[0].locators["s2ec"]
    c.unknown(sixty_four(src).network_address, LOCATOR_TREE, 0.1)
    c.resolved(sixty_four(src).network_address, RECORDS)
    assert list(c.upgraded) == [sixty_four(src)]
    c.unknown(R, LOCATOR_TREE, 0.2)
    c.resolved(R, RECORDS)  # an answer that places no packet of R's (another site's record) upgrades nothing
    assert list(c.upgraded) == [sixty_four(src)]


def test_an_edge_without_a_mapping_service_finds_every_source_plain_and_no_identity() -> None:
    c = Contacts()
    got = c.without_service(c.arrived(R, pkt(), {}, 0.0), 0.0)
    assert got.changed and got.release == [pkt()] and not got.want and sixty_four(R) in c.plain
    assert c.without_service(c.toward(H2, pkt(1), {}, 0.0), 0.0).dropped == 1


def test_a_restarted_controller_takes_back_what_its_switches_hold_and_asks_again() -> None:
    c = Contacts()
    plain, up = N("3fff:ff:100::/64"), N("3fff:c:2::/64")
    got = c.recovered([plain], [up], 5.0)
    assert got.changed and got.want == [(plain.network_address, LOCATOR_TREE), (up.network_address, LOCATOR_TREE)]
    assert plain in c.plain and up in c.upgraded
    assert c.recovered([plain], [up], 5.0).want == []  # the second exit's table says the same


def test_sessions_that_ran_plain_stay_plain_after_the_upgrade_and_new_ones_are_mapped() -> None:
    """h2's site had not registered: s1 found its locator plain, and h1 talked to that locator. Once s2 is
    known, h1's old session still sees the locator it talked to; a new session from the same locator is s2's,
    mapped to h2's identity; h1's packets toward the locator still leave, committed, as plain."""
    s1, s2 = PLAN.sites
    h1, h2 = identity(PLAN, "h1"), identity(PLAN, "h2")
    far = str(s2.hosts[0].locators["s2ec"])
    u = sixty_four(A(far))
    to_me = str(s1.hosts[0].locators["s1ea"])
    before = FakeNet(PLAN, desired(PLAN, {}, records={}, far_subnets={}, sites={"s1"}, plain={"s1": [u]}))
    out = before.send("h1", h1, far, src_port=7, dst_port=40000)  # h1 opens a session to the locator
    assert out.node == "ispa" and out.pkt["ipv6_src"] == to_me
    back = before.inject("s1ea", 2, ipv6_src=far, ipv6_dst=to_me, src_port=40000, dst_port=7)
    assert back.node == "h1" and back.pkt["ipv6_src"] == far
    after = FakeNet(PLAN, desired(PLAN, {}, records={("s1", "s2"): RECORDS["s2"]}, far_subnets={}, sites={"s1"},
                                  upgraded={"s1": [u]}))
    after.conntrack = before.conntrack  # the data plane's connections outlive the rule change
    old = after.inject("s1ea", 2, ipv6_src=far, ipv6_dst=to_me, src_port=40000, dst_port=7)
    assert old.node == "h1" and (old.pkt["ipv6_src"], old.pkt["ipv6_dst"]) == (far, h1)
    new = after.inject("s1ea", 2, ipv6_src=far, ipv6_dst=to_me, src_port=40001, dst_port=7)
    assert new.node == "h1" and (new.pkt["ipv6_src"], new.pkt["ipv6_dst"]) == (h2, h1)
    onward = after.send("h1", h1, far, src_port=7, dst_port=40002)  # a new session to the locator: plain too
    assert onward.node == "ispa" and onward.pkt["ipv6_src"] == to_me
    reply = after.inject("s1ea", 2, ipv6_src=far, ipv6_dst=to_me, src_port=40002, dst_port=7)
    assert reply.pkt["ipv6_src"] == far
    # Without the marks (rules of the upgrade, an empty tracker) the old session's reply would be s2's.
    assert FakeNet(PLAN, after.rules).inject("s1ea", 2, ipv6_src=far, ipv6_dst=to_me, src_port=40000,
                                             dst_port=7).pkt["ipv6_src"] == h2


def test_a_record_brought_by_another_lookup_upgrades_a_plain_source_it_places() -> None:
    """The far edge's probes bring its site's record before the plain /64 is asked about again: the /64 is
    upgraded then, or the far locator's rules would take its live sessions' packets to be mapped."""
    c = Contacts()
    src = PLAN.sites[1].hosts[0].locators["s2ec"]
    c.unknown(sixty_four(src).network_address, LOCATOR_TREE, 0.1)
    got = c.resolved(A("3fff:c:2::"), RECORDS)  # the far edge's own address
    assert got.changed and not c.plain and list(c.upgraded) == [sixty_four(src)]
