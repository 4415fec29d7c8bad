"""The pure plan: addresses, MACs, routes, filters and the controller's view, for the shipped topologies."""

from __future__ import annotations

from ipaddress import IPv6Address as A
from ipaddress import IPv6Network as N
from pathlib import Path

import pytest

from multi6lab.topologies import loader
from multi6lab.topologies.addressing import eui64, mac
from multi6lab.topologies.plan import AddrLabel, Plan, Route, SourceFilter, build

ROOT = Path(__file__).resolve().parents[2]


def plan(name: str) -> Plan:
    return build(loader.load(ROOT / "topologies" / f"{name}.yaml"))


def test_eui64_matches_linux_slaac() -> None:
    from ipaddress import IPv6Network as N
    # Linux forms fd00:5::6d:ff:fe00:800 from 02:6d:00:00:08:00 (seen on a real host in figure1).
    assert eui64(N("fd00:5::/64"), "02:6d:00:00:08:00") == A("fd00:5::6d:ff:fe00:800")
    with pytest.raises(ValueError):
        eui64(N("fd00:5::/48"), "02:6d:00:00:08:00")
    with pytest.raises(ValueError):
        mac(1, 2, 3)


def test_figure1_addresses_and_controller_view() -> None:
    p = plan("figure1")
    sp = p.sites[0]
    exa, exb = sp.exits
    assert (exa.dpid, exa.inside_port, exa.outside_port, exa.fabric_port) == (2, 1, 2, 2)
    assert exa.address.ip == A("3fff:a::2") and exa.isp_address == A("3fff:a::1")
    assert exa.isp_intf == "ispa-eth1"
    assert exa.beacon == A("3fff:a:0:1::2")  # the core's end of ispa's uplink: one hop beyond the ISP
    assert exb.beacon == A("3fff:b:0:1::2")
    h1 = sp.hosts[0]
    assert h1.addresses == {"identity": eui64(next(iter(sp.prefixes.values())), h1.mac)}
    assert p.address("r") == A("3fff:ff:100::2")
    assert len({i.mac for lk in p.links for i in (lk.a, lk.b)}) == 2 * len(p.links)  # every MAC unique


def test_source_routing_hosts_get_one_address_per_isp() -> None:
    sp = plan("three-isps").sites[0]
    assert set(sp.prefixes) == {"exa", "exb", "exc"}
    for h in sp.hosts:
        assert [a.exploded[:14] for a in h.addresses.values()] == ["3fff:000a:0005", "3fff:000b:0005",
                                                                  "3fff:000c:0005"]


def test_static_aggregated_routes() -> None:
    p = plan("figure1")
    core, ispa, r = (p.node(n).config.routes for n in ("core", "ispa", "r"))
    assert Route(N("3fff:a::/32"), A("3fff:a:0:1::1"), "core-eth1") in core  # the core routes the PA
    assert Route(N("3fff:a:5::/48"), A("3fff:a::2"), "ispa-eth1") in ispa  # delegation to the exit
    assert Route(N("3fff:a::/32"), unreachable=True) in ispa  # no loop when a customer link is down
    assert Route(N("3fff:b::/32"), A("3fff:a:0:1::2"), "ispa-eth0") in ispa
    assert r == (Route(N("::/0"), A("3fff:ff:100::1"), "r-eth0"),)
    assert not any(rt.prefix.subnet_of(N("3fff:b:5::/48")) for rt in ispa)  # ISP A knows nothing of B's customer


def test_two_sites_route_each_other_through_the_core() -> None:
    p = plan("two-sites")
    assert Route(N("3fff:c::/32"), A("3fff:a:0:1::2"), "ispa-eth0") in p.node("ispa").config.routes
    assert [sp.site.name for sp in p.sites] == ["s1", "s2"]
    assert {e.name for sp in p.sites for e in sp.exits} == {"s1ea", "s1eb", "s2ec", "s2ed"}


def test_bcp38_filter_on_customer_interface() -> None:
    (f,) = plan("figure1").node("ispa").config.filters
    assert f == SourceFilter("ispa-eth1", (N("3fff:a:5::/48"), N("3fff:a::/64")))
    assert f.counter == "bcp38_ispa_eth1"


def test_no_filter_when_disabled() -> None:
    text = (ROOT / "topologies" / "figure1.yaml").read_text().replace(
        'prefix: "3fff:a::/32"}', 'prefix: "3fff:a::/32", ingress_filter: false}')
    p = build(loader.loads(text))
    assert p.node("ispa").config.filters == () and len(p.node("ispb").config.filters) == 1


def test_hosts_autoconfigure_and_every_interface_drops_tx_offload() -> None:
    p = plan("figure1")
    h1 = dict(p.node("h1").config.sysctls)
    assert h1["net.ipv6.conf.h1-eth0.accept_ra"] == "1" and h1["net.ipv6.conf.h1-eth0.use_tempaddr"] == "0"
    for n in p.nodes:
        if n.role != "switch":
            names = [i.name for i in p.intfs(n.name)]
            assert list(n.config.offload_off) == names
            assert all(dict(n.config.sysctls)[f"net.ipv6.conf.{i}.accept_dad"] == "0" for i in names)  # no 1.6 s


def test_plan_lookups() -> None:
    p = plan("figure1")
    assert p.peer("exa", 2).node == "ispa"
    assert p.site_by_dpid(1) == (p.sites[0], "fabric")
    assert p.site_by_dpid(3) == (p.sites[0], "exb")
    assert p.site_by_dpid(99) is None
    with pytest.raises(KeyError):
        p.intf("exa", 9)
    with pytest.raises(KeyError):
        p.peer("exa", 9)


def test_mptcp_hosts_announce_a_subflow_endpoint_per_isp_once_ready() -> None:
    text = (ROOT / "topologies" / "figure1.yaml").read_text().replace("approach: nptv6", "approach: mptcp")
    p = build(loader.loads(text))
    h1 = p.sites[0].hosts[0]
    assert set(h1.addresses) == {"exa", "exb"}  # one address per ISP, as with source routing
    assert p.node("h1").config.mptcp_endpoints == ("h1-eth0", (h1.addresses["exa"], h1.addresses["exb"]))
    assert p.node("r").config.mptcp and p.node("r").config.mptcp_endpoints is None  # accepts, announces nothing
    assert not plan("figure1").node("h1").config.mptcp  # nothing MPTCP about nptv6


def test_hosts_prefer_the_primary_exits_prefix_by_rfc6724_labels() -> None:
    assert plan("three-isps").node("h2").config.labels == (AddrLabel(N("3fff:b:5::/64"), "h2-eth0", 101),
                                                           AddrLabel(N("3fff:c:5::/64"), "h2-eth0", 102))
    assert plan("figure1").node("h1").config.labels == ()  # nptv6: one address


def test_routers_and_remotes_resolve_their_link_peers_once_up() -> None:
    """Only Linux peers (an OVS exit answers through the controller); every numbered link of the core."""
    p = plan("figure1")
    assert p.node("core").config.neighbours == (("core-eth1", A("3fff:a:0:1::1")), ("core-eth2", A("3fff:b:0:1::1")),
                                                ("core-eth3", A("3fff:ff:100::2")))
    assert p.node("ispa").config.neighbours == (("ispa-eth0", A("3fff:a:0:1::2")),)  # not the switch exit
    assert p.node("h1").config.neighbours == ()


def _text_plan(name: str, old: str, new: str, triggers: str = "[link, heartbeat]") -> Plan:
    text = (ROOT / "topologies" / f"{name}.yaml").read_text().replace(old, new)
    return build(loader.loads(text.replace("[link, heartbeat]", triggers)))


def test_a_host_s_addresses_are_typed_in_the_plan_and_how_a_peer_reaches_it_is_the_plan_s_to_say() -> None:
    """One place says how a peer addresses a host: by identity between id-loc sites, by PI address on a routing
    site, by home address on a mobility site, otherwise by its address through each exit, the primary first."""
    from multi6lab.topologies.npt import Translator

    p = plan("figure1")
    sp = p.sites[0]
    (h1,) = sp.hosts
    assert h1.identity == h1.addresses["identity"] and h1.pi is None and h1.home is None
    assert h1.locators == {e.name: Translator(sp.site.identity, e.delegation).to_outside(h1.addresses["identity"])
                           for e in sp.exits}
    assert p.reached_at("h1", "r") == (h1.locators["exa"], h1.locators["exb"])
    assert p.reached_at("r", "h1") == (p.address("r"),)
    three = plan("three-isps")
    host = three.sites[0].hosts[0]
    assert three.reached_at(host.name, "r") == tuple(host.addresses[e.name] for e in three.sites[0].exits)
    routed = _text_plan("figure1", "approach: nptv6", "approach: routing", "[routing]")
    routing = routed.sites[0].hosts[0]
    assert routing.pi is not None and routed.reached_at("h1", "r") == (routing.pi,)
    mobile = _text_plan("figure1", "approach: nptv6", "approach: mobility")
    assert mobile.reached_at("h1", "r") == (mobile.sites[0].hosts[0].home,)
    idloc = _text_plan("two-sites", "approach: nptv6", "approach: id-loc")
    s1, s2 = (next(s for s in idloc.sites if s.site.name == n).hosts[0] for n in ("s1", "s2"))
    assert idloc.reached_at(s2.name, s1.name) == (s2.identity,)
    assert idloc.reached_at(s2.name, "map") == tuple(s2.locators.values())  # a plain host sees locators
    nptv6 = plan("two-sites")
    assert nptv6.reached_at(s2.name, s1.name) == tuple(nptv6.sites[1].hosts[0].locators.values())


@pytest.mark.parametrize("approach", ["routing", "source-routing", "nptv6", "id-loc", "mptcp", "mobility"])
def test_each_approach_s_profile_is_what_the_plan_gives_its_hosts(approach: str) -> None:
    """The profile declares each approach's facts once; the plan built for a site of that approach agrees."""
    from multi6lab.vocabulary import Approach

    name = "two-sites" if approach == "id-loc" else "figure1"
    p = _text_plan(name, "approach: nptv6", f"approach: {approach}", "[routing]" if approach == "routing"
                   else "[link, heartbeat]")
    prof = Approach(approach).profile
    sp = p.sites[0]
    h = sp.hosts[0]
    assert (h.identity is not None) == prof.translates
    assert (set(h.addresses) == {e.name for e in sp.exits}) == prof.per_isp_addresses
    assert (h.pi is not None) == prof.bgp != prof.controlled
    assert (h.home is not None) == prof.home_address
    assert set(h.locators) == (set() if prof.bgp else {e.name for e in sp.exits})
