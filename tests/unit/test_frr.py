"""The routing approach's plan and FRR configuration, rendered from figure1 with the site switched to routing."""

from __future__ import annotations

from ipaddress import IPv6Address as A
from ipaddress import IPv6Interface, IPv6Network
from ipaddress import IPv6Network as N
from pathlib import Path

import pytest

from multi6lab.scenarios import faults
from multi6lab.scenarios.model import LinkDown
from multi6lab.topologies import frr, loader
from multi6lab.topologies.plan import NO_DPID, Plan, Route, build

ROOT = Path(__file__).resolve().parents[2]
FIGURE1 = (ROOT / "topologies" / "figure1.yaml").read_text()
STATE = Path("/run/multi6lab/run1/frr/exa")


def routing_plan(bgp: str = "") -> Plan:
    text = FIGURE1.replace("approach: nptv6", "approach: routing").replace("[link, heartbeat]", "[routing]")
    if bgp:
        text = text.replace("    triggers: [routing]", f"    triggers: [routing]\n    bgp: {bgp}")
    return build(loader.loads(text))


@pytest.fixture(scope="module")
def plan() -> Plan:
    return routing_plan()


def test_exits_become_routers_and_the_fabric_a_plain_switch(plan: Plan) -> None:
    assert plan.node("exa").role == "router" and plan.node("exa").dpid is None
    sw = plan.node("sw")
    assert sw.role == "switch" and sw.standalone
    assert [n.name for n in plan.switches] == ["sw"]
    exa = plan.sites[0].exits[0]
    assert exa.dpid == NO_DPID and plan.site_by_dpid(NO_DPID) is None  # nothing for the controller
    assert exa.mac == plan.intf("exa", exa.outside_port).mac  # a router answers with its own MAC


def test_hosts_numbered_statically_in_the_pi_prefix(plan: Plan) -> None:
    h1 = plan.sites[0].hosts[0]
    assert h1.addresses == {"pi": A("3fff:5::6d:ff:fe00:800")}
    c = plan.node("h1").config
    assert dict(c.sysctls)["net.ipv6.conf.h1-eth0.accept_ra"] == "0"
    assert ("h1-eth0", IPv6Interface("3fff:5::6d:ff:fe00:800/64")) in c.addresses
    assert c.routes == (Route(IPv6Network("::/0"), A("3fff:5::1"), "h1-eth0"),)  # the primary exit
    assert c.labels == ()  # one address: nothing for RFC 6724 to choose


def test_exits_forward_and_never_send_the_pi_aggregate_back_out(plan: Plan) -> None:
    c = plan.node("exb").config
    assert dict(c.sysctls)["net.ipv6.conf.all.forwarding"] == "1"
    assert ("exb-eth1", IPv6Interface("3fff:5::2/64")) in c.addresses
    assert c.routes == (Route(IPv6Network("3fff:5::/48"), unreachable=True),)  # BGP brings the default route


def test_isp_accepts_the_customers_pi_source(plan: Plan) -> None:
    (f,) = plan.node("ispa").config.filters
    assert {IPv6Network("3fff:5::/48"), IPv6Network("3fff:a:5::/48")} <= set(f.allowed)


def test_who_speaks_bgp_and_to_whom(plan: Plan) -> None:
    rs = frr.routers(plan)
    assert sorted(rs) == ["core", "exa", "exb", "ispa", "ispb"]
    assert {n.name for n in rs["core"].neighbors} == {"ispa", "ispb"}
    ispa_to_exa = next(n for n in rs["ispa"].neighbors if n.name == "exa")
    assert ispa_to_exa.asn == 65000 and ispa_to_exa.default_originate and ispa_to_exa.customer
    exa = {n.name: n for n in rs["exa"].neighbors}
    assert exa["ispa"].address == A("3fff:a::1") and exa["ispa"].prepend == 0
    assert exa["exb"].next_hop_self and exa["exb"].asn == 65000 and exa["exb"].address == A("3fff:5::2")
    exb = {n.name: n for n in rs["exb"].neighbors}
    assert exb["ispb"].prepend == 1  # the backup exit makes its ISP's path longer
    assert rs["exa"].networks == (N("3fff:5::/48"),) and rs["core"].networks == ()
    assert rs["exa"].daemons == ("zebra", "bgpd")  # no BFD asked for


def test_no_bgp_without_a_routing_site() -> None:
    assert frr.routers(build(loader.loads(FIGURE1))) == {}


def test_bgpd_configuration(plan: Plan) -> None:
    exb = frr.bgpd_conf(frr.routers(plan)["exb"], STATE)
    for line in ("router bgp 65000", " no bgp ebgp-requires-policy", " no bgp network import-check",
                 " neighbor 3fff:b::1 remote-as 64502", " neighbor 3fff:b::1 timers connect 1",
                 "  network 3fff:5::/48", "  neighbor 3fff:b::1 route-map PREPEND1 out",
                 "  neighbor 3fff:5::1 next-hop-self", "route-map PREPEND1 permit 10",
                 " set as-path prepend 65000", f"log file {STATE}/bgpd.log informational"):
        assert line in exb.splitlines(), line
    assert " neighbor 3fff:b::1 timers 60 180" not in exb  # the defaults are not written out
    ispa = frr.bgpd_conf(frr.routers(plan)["ispa"], STATE).splitlines()
    assert "  neighbor 3fff:a::2 default-originate" in ispa and " set local-preference 200" in ispa
    # Every router has a distinct IPv4-form router id (IPv6-only nodes have no address to take one from).
    ids = [r.router_id for r in frr.routers(plan).values()]
    assert len(set(ids)) == len(ids)


def test_timers_and_bfd_apply_to_both_ends_of_the_exit_sessions_only() -> None:
    rs = frr.routers(routing_plan("{keepalive_s: 1, hold_s: 3, bfd: {interval_ms: 10, multiplier: 3}}"))
    exa, ispa, core = (frr.bgpd_conf(rs[n], STATE).splitlines() for n in ("exa", "ispa", "core"))
    assert " neighbor 3fff:a::1 timers 1 3" in exa and " neighbor 3fff:a::1 bfd profile site-site" in exa
    assert " neighbor 3fff:a::2 timers 1 3" in ispa and " neighbor 3fff:a::2 bfd profile site-site" in ispa
    assert not any("timers 1 3" in x or "bfd" in x for x in core)
    assert " neighbor 3fff:5::2 bfd profile site-site" not in exa  # iBGP across the fabric: not faulted
    assert rs["exa"].daemons == ("zebra", "bgpd", "bfdd") and rs["core"].daemons == ("zebra", "bgpd")
    bfdd = frr.bfdd_conf(rs["ispa"], STATE).splitlines()
    start = bfdd.index("bfd")
    assert bfdd[start:start + 6] == ["bfd", " profile site-site", "  detect-multiplier 3", "  receive-interval 10",
                                     "  transmit-interval 10", " exit"]
    assert set(frr.configs(rs["exa"], STATE)) == {"zebra.conf", "bgpd.conf", "bfdd.conf"}


def test_daemons_keep_every_path_in_the_nodes_directory() -> None:
    argv = frr.argv("bfdd", STATE)
    assert argv[0] == "/usr/lib/frr/bfdd" and "-d" in argv
    for flag, value in (("-P", "0"), ("--vty_socket", str(STATE)), ("-z", f"{STATE}/zserv.api"),
                        ("-i", f"{STATE}/bfdd.pid"), ("-f", f"{STATE}/bfdd.conf"), ("--bfdctl", f"{STATE}/bfdd.sock")):
        assert argv[argv.index(flag) + 1] == value
    assert "--bfdctl" not in frr.argv("bgpd", STATE) and "-s" not in frr.argv("bgpd", STATE)
    zebra = frr.argv("zebra", STATE)  # a netlink buffer that holds a 100,000-route burst (frr-scale)
    assert zebra[zebra.index("-s") + 1] == str(64 * 1024 * 1024)
    assert frr.vtysh(STATE, "show bgp summary json") == ["vtysh", "--vty_socket", str(STATE), "-c",
                                                          "show bgp summary json"]


def test_steady_state_is_read_from_the_kernel_by_interface(plan: Plan) -> None:
    checks = {(c.node, str(c.prefix)): c for c in frr.steady_routes(plan)}
    assert set(checks) == {("exa", "::/0"), ("ispa", "3fff:5::/48"), ("core", "3fff:5::/48")}
    core = checks[("core", "3fff:5::/48")]
    assert core.dev == "core-eth1"  # toward ispa
    assert core.holds("3fff:5::/48 nhid 17 via fe80::6d:ff:fe00:200 dev core-eth1 proto bgp metric 20")
    assert not core.holds("3fff:5::/48 nhid 18 via fe80::6d:ff:fe00:300 dev core-eth2 proto bgp metric 20")
    assert not core.holds("")


def test_established_peers_from_summary_json() -> None:
    summary = {"ipv6Unicast": {"peers": {"3fff:a::1": {"state": "Established"}, "3fff:5::2": {"state": "Active"}}}}
    assert frr.established(summary) == {"3fff:a::1"}
    assert frr.established({}) == set()


def test_link_down_at_a_router_exit_runs_in_its_namespace(plan: Plan) -> None:
    c = faults.compile_fault(plan, plan.sites[0], LinkDown(at=0.0, duration=1.0, exit="exa", end="exit"),
                             0, 2.0)
    assert c.actions[0] == faults.Action(0.0, "exa", "ip link set exa-eth2 down", "exa-eth2 down")


def test_session_changes_become_events_on_the_probes_clock() -> None:
    import time

    log = ("2026/11/28 11:12:19.250000 BGP: [PXVXG-TFNNT] %ADJCHANGE: neighbor 3fff:a::1(ispa) in vrf default "
           "Down BFD down received\n"
           "2026/11/28 11:12:19.260000 BGP: [PXVXG-TFNNT] %ADJCHANGE: neighbor 3fff:5::2(exb) in vrf default Down x\n"
           "2026/11/28 11:12:21 BGP: [N9HHH-F8H1M] %ADJCHANGE: neighbor 3fff:a::1(ispa) in vrf default Up\n"
           "2026/11/28 11:12:21.5 BGP: something else\n")
    wall = time.mktime(time.strptime("2026/11/28 11:12:19", "%Y/%m/%d %H:%M:%S"))
    events = frr.session_events(log, "exa", {"exa", "exb"}, wall_to_mono=100.0 - wall)
    assert [(e["event"], e["exit"], e["peer"]) for e in events] == [("session_down", "exa", "ispa"),
                                                                    ("session_up", "exa", "ispa")]
    assert events[0]["t"] == pytest.approx(100.25) and events[1]["t"] == pytest.approx(102.0)
    assert events[0]["why"] == "BFD down received"
    # The ISP's end of the same session is attributed to the exit too.
    isp_log = "2026/11/28 11:12:19.300000 BGP: [X] %ADJCHANGE: neighbor 3fff:a::2(exa) in vrf default Down y\n"
    assert frr.session_events(isp_log, "ispa", {"exa", "exb"}, 0.0)[0]["exit"] == "exa"


MIXED = ((ROOT / "topologies" / "two-sites.yaml").read_text()
         .replace('    identity: "fd00:1::/48"', '    identity: "fd00:1::/48"\n    pi: "3fff:100::/48"\n'
                  '    approach: routing\n    triggers: [routing]'))


def test_the_controller_leaves_a_routing_site_alone_beside_a_managed_one() -> None:
    from multi6lab.controller.policy import desired

    plan = build(loader.loads(MIXED))
    s1, s2 = plan.sites
    rules = desired(plan, {}).rules
    assert not any(r.dpid == s1.fabric_dpid for r in rules)  # a plain learning switch: no OpenFlow rules
    assert any(r.dpid == s2.fabric_dpid for r in rules) and any(r.dpid == s2.exits[0].dpid for r in rules)
    assert sorted(frr.routers(plan)) == ["core", "ispa", "ispb", "ispc", "ispd", "s1ea", "s1eb"]


def test_steady_state_includes_every_isps_path_at_the_core(plan: Plan) -> None:
    """Sessions can be Established before the backup path reaches the core: readiness waits for it too."""
    (check,) = frr.expected_paths(plan)
    assert (check.node, str(check.prefix), check.via) == ("core", "3fff:5::/48", frozenset({64501, 64502}))
    both = {"paths": [{"aspath": {"string": "64501 65000"}}, {"aspath": {"string": "64502 65000 65000"}}]}
    assert check.missing(both) == set()
    assert check.missing({"paths": [{"aspath": {"string": "64501 65000"}}]}) == {64502}
    assert check.missing({}) == {64501, 64502}
