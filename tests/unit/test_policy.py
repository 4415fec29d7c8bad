"""The controller's decisions, checked by walking packets through a fake flow table."""

from __future__ import annotations

from ipaddress import IPv6Address as A
from pathlib import Path

import pytest

from multi6lab.controller.policy import Output, RuleSet, SitePolicy, ToController, apply, desired, diff
from multi6lab.topologies import loader
from multi6lab.topologies.plan import Plan, build
from tests.unit.fakenet import FakeNet

ROOT = Path(__file__).resolve().parents[2]
R = "3fff:ff:100::2"


def plan(name: str, **replace: str) -> Plan:
    text = (ROOT / "topologies" / f"{name}.yaml").read_text()
    for old, new in replace.items():
        text = text.replace(old.replace("_", " "), new)
    return build(loader.loads(text))


@pytest.fixture
def fig1() -> Plan:
    return plan("figure1")


def h1_identity(p: Plan) -> str:
    return str(p.sites[0].hosts[0].addresses["identity"])


def locator(p: Plan, exit_name: str) -> str:
    sp = p.sites[0]
    return str(sp.hosts[0].locators[exit_name])


def test_nptv6_leaves_through_primary_rewritten_to_its_locator(fig1: Plan) -> None:
    out = FakeNet(fig1, desired(fig1, {})).send("h1", h1_identity(fig1), R)
    assert out.kind == "delivered" and out.node == "ispa"
    assert out.pkt["ipv6_src"] == locator(fig1, "exa")
    assert A(out.pkt["ipv6_src"]) in fig1.sites[0].exits[0].delegation
    assert out.pkt["eth_dst"] == fig1.sites[0].exits[0].isp_mac and out.pkt["hop"] == 63
    assert out.path == ["sw", "exa"]


def test_nptv6_inbound_is_translated_back_to_identity(fig1: Plan) -> None:
    net = FakeNet(fig1, desired(fig1, {}))
    out = net.inject("exa", 2, ipv6_src=R, ipv6_dst=locator(fig1, "exa"), eth_dst=fig1.sites[0].exits[0].mac)
    assert out.kind == "delivered" and out.node == "h1"
    assert out.pkt["ipv6_dst"] == h1_identity(fig1)
    assert out.pkt["eth_dst"] == fig1.sites[0].hosts[0].mac


def test_fast_failover_hands_traffic_to_the_other_exit_before_the_controller_acts(fig1: Plan) -> None:
    # Uplink of exa down, controller not yet told: the rules are still the all-alive ones.
    net = FakeNet(fig1, desired(fig1, {}), down={("exa", 2)})
    out = net.send("h1", h1_identity(fig1), R)
    assert out.kind == "delivered" and out.node == "ispb"
    assert out.pkt["ipv6_src"] == locator(fig1, "exb")
    assert out.path == ["sw", "exa", "sw", "exb"]


def test_controller_moves_the_fabric_to_the_live_exit(fig1: Plan) -> None:
    net = FakeNet(fig1, desired(fig1, {"exa": False}), down={("exa", 2)})
    out = net.send("h1", h1_identity(fig1), R)
    assert out.node == "ispb" and out.path == ["sw", "exb"]
    assert out.pkt["ipv6_src"] == locator(fig1, "exb")


def test_no_link_trigger_means_no_fast_failover_group() -> None:
    p = plan("figure1", **{"triggers: [link, heartbeat]": "triggers: [heartbeat]"})
    rules = desired(p, {})
    assert not rules.groups
    assert FakeNet(p, rules, down={("exa", 2)}).send("h1", h1_identity(p), R).kind == "lost"


def test_all_exits_dead_drops(fig1: Plan) -> None:
    out = FakeNet(fig1, desired(fig1, {"exa": False, "exb": False})).send("h1", h1_identity(fig1), R)
    assert out.kind == "dropped" and out.where == "sw"


def test_spoofed_sources_are_dropped_at_the_site(fig1: Plan) -> None:
    # Only the site's advertised identity /64s may leave: not a locator, another ISP's prefix, a subnet of the
    # identity prefix that is not advertised, or anyone else's address.
    net = FakeNet(fig1, desired(fig1, {}))
    for src in ("3fff:b:5::99", "fd00:5:0:1::1", "fd00:6::1", "2001:db8::1", locator(fig1, "exa")):
        out = net.send("h1", src, R)
        assert out.kind == "dropped", src


# -- RFC 6296 proper: every address of the site's subnets, not only the plan's hosts --------------------------
def test_an_address_the_plan_does_not_list_is_translated_as_rfc_6296_says(fig1: Plan) -> None:
    from multi6lab.topologies.npt import Translator

    sp = fig1.sites[0]
    new = "fd00:5::beef"  # a temporary address (RFC 8981), or one set by hand
    for down, via in ((set(), "exa"), ({("exa", 2)}, "exb")):  # and after the fast failover, the other prefix
        out = FakeNet(fig1, desired(fig1, {}), down=down).send("h1", new, R)
        assert out.kind == "delivered" and out.node == f"isp{via[-1]}"
        e = sp.exit(via)
        assert A(out.pkt["ipv6_src"]) == Translator(sp.site.identity, e.delegation).to_outside(A(new))  # independent
        assert out.pkt["eth_dst"] == e.isp_mac and out.pkt["hop"] == 63


def test_inbound_to_an_unlisted_address_is_resolved_then_delivered(fig1: Plan) -> None:
    from multi6lab.controller.neighbours import Neighbour

    sp = fig1.sites[0]
    new = A("fd00:5::beef")
    outside = str(SitePolicy.of(sp).translators["exa"].to_outside(new))
    before = FakeNet(fig1, desired(fig1, {})).inject("exa", 2, ipv6_src=R, ipv6_dst=outside, eth_dst=sp.exits[0].mac)
    assert before.kind == "controller" and before.where == "sw"  # translated; the router asks who has it
    assert before.pkt["ipv6_dst"] == str(new) and before.pkt["eth_dst"] == sp.gateway_mac
    h1 = sp.hosts[0]
    learned = {"site": {new: Neighbour(h1.mac, h1.port)}}
    after = FakeNet(fig1, desired(fig1, {}, neighbours=learned)).inject("exa", 2, ipv6_src=R, ipv6_dst=outside,
                                                                       eth_dst=sp.exits[0].mac)
    assert after.kind == "delivered" and after.node == "h1" and after.path == ["exa", "sw"]
    assert after.pkt["ipv6_dst"] == str(new) and after.pkt["eth_dst"] == h1.mac and after.pkt["hop"] == 63


def test_a_second_subnet_is_advertised_and_translated_both_ways() -> None:
    p = plan("figure1", **{'identity: "fd00:5::/48"': 'identity: "fd00:5::/48"\n    subnets: 2'})
    sp = p.sites[0]
    assert list(sp.prefixes) == ["identity", "identity-1"] and str(sp.prefixes["identity-1"]) == "fd00:5:0:1::/64"
    second = str(sp.hosts[0].addresses["identity-1"])
    net = FakeNet(p, desired(p, {}))
    out = net.send("h1", second, R)
    expect = SitePolicy.of(sp).translators["exa"].to_outside(A(second))
    assert out.kind == "delivered" and A(out.pkt["ipv6_src"]) == expect
    back = net.inject("exa", 2, ipv6_src=R, ipv6_dst=str(expect), eth_dst=sp.exits[0].mac)
    assert back.kind == "delivered" and back.node == "h1" and back.pkt["ipv6_dst"] == second  # the plan's host


def test_outside_packets_claiming_a_site_source_are_dropped(fig1: Plan) -> None:
    net = FakeNet(fig1, desired(fig1, {}))
    out = net.inject("exa", 2, ipv6_src=locator(fig1, "exb"), ipv6_dst=locator(fig1, "exa"))
    assert out.kind == "dropped"


def test_load_share_uses_a_select_group_over_live_exits() -> None:
    p = plan("figure1", **{"triggers: [link, heartbeat]": "triggers: [link, heartbeat]\n    exit_policy: load-share"})
    rules = desired(p, {})
    select = [g for g in rules.groups if g.kind == "select"]
    assert len(select) == 1 and len(select[0].buckets) == 2
    assert [b.weight for b in select[0].buckets] == [1, 1]  # equal shares unless the topology says otherwise
    one_dead = desired(p, {"exb": False})
    assert len(next(g for g in one_dead.groups if g.kind == "select").buckets) == 1


def test_load_share_weights_become_the_select_group_s_bucket_weights() -> None:
    p = plan("figure1", **{"triggers: [link, heartbeat]": "triggers: [link, heartbeat]\n    exit_policy: load-share",
                           'delegation: "3fff:a:5::/48"}': 'delegation: "3fff:a:5::/48", weight: 3}'})
    select = next(g for g in desired(p, {}).groups if g.kind == "select")
    assert [b.weight for b in select.buckets] == [3, 1]


@pytest.fixture
def three() -> Plan:
    return plan("three-isps")


def test_source_routing_picks_the_exit_of_the_source_prefix(three: Plan) -> None:
    net = FakeNet(three, desired(three, {}))
    for name in ("h1", "h2", "h3"):
        h = next(h for h in three.sites[0].hosts if h.name == name)
        for exit_name, isp in (("exa", "ispa"), ("exb", "ispb"), ("exc", "ispc")):
            out = net.send(name, str(h.addresses[exit_name]), R)
            assert out.kind == "delivered" and out.node == isp, (name, exit_name)
            assert out.pkt["ipv6_src"] == str(h.addresses[exit_name])  # no rewriting


def test_source_routing_dead_path_sends_stale_sources_to_the_controller(three: Plan) -> None:
    h = three.sites[0].hosts[0]
    net = FakeNet(three, desired(three, {"exa": False}))
    assert net.send("h1", str(h.addresses["exa"]), R).kind == "controller"  # -> ICMPv6 1/5
    assert net.send("h1", str(h.addresses["exb"]), R).node == "ispb"


def test_source_routing_inbound_reaches_the_host(three: Plan) -> None:
    h = three.sites[0].hosts[1]
    out = FakeNet(three, desired(three, {})).inject("exb", 2, ipv6_src=R, ipv6_dst=str(h.addresses["exb"]))
    assert out.kind == "delivered" and out.node == "h2"


def test_two_sites_each_have_their_own_rules() -> None:
    p = plan("two-sites")
    net = FakeNet(p, desired(p, {}))
    h2 = p.sites[1].hosts[0]
    out = net.send("h2", str(h2.addresses["identity"]), "3fff:a:1::1")
    assert out.node == "ispc" and A(out.pkt["ipv6_src"]) in p.sites[1].exits[0].delegation


def test_diff_is_minimal_and_apply_reaches_the_target(fig1: Plan) -> None:
    before = desired(fig1, {})
    after = desired(fig1, {"exa": False})
    ch = diff(before, after)
    assert len(ch) == 1 and len(ch.add_rules) == 1  # one fabric rule replaced (same key, new action)
    assert not ch.delete_rules
    assert apply(before, ch) == after
    assert len(diff(after, after)) == 0


def test_reconnect_from_empty_and_from_stale_converges(fig1: Plan) -> None:
    want = desired(fig1, {})
    assert apply(RuleSet(), diff(RuleSet(), want)) == want
    stale = desired(plan("figure1", **{"triggers: [link, heartbeat]": "triggers: [heartbeat]"}), {"exa": False})
    ch = diff(stale, want)
    assert apply(stale, ch) == want
    assert ch.add_groups and not ch.delete_groups


def test_rules_are_deterministic(fig1: Plan) -> None:
    assert desired(fig1, {}) == desired(plan("figure1"), {})


def test_icmp_trigger_steers_one_destination_to_the_other_exit() -> None:
    p = plan("figure1", **{"triggers: [link, heartbeat]": "triggers: [link, icmp]"})
    net = FakeNet(p, desired(p, {}, avoid={"exa": {R}}))
    assert net.send("h1", h1_identity(p), R).node == "ispb"  # R avoided through exa
    assert net.send("h1", h1_identity(p), "3fff:ff:1::9").node == "ispa"  # everything else stays
    # The ISP's ICMPv6 error reaches the controller and the host alike.
    net = FakeNet(p, desired(p, {}))
    err = net.inject("exa", 2, ipv6_src="3fff:a::1", ipv6_dst=locator(p, "exa"), ip_proto=58, icmpv6_type=1)
    assert err.kind == "delivered" and err.node == "h1" and net.copies == ["exa"]
    rule = next(r for r in desired(p, {}).rules if r.priority == 710 and r.dpid == 2)
    assert rule.actions[0] == ToController() and rule.actions[-1] == Output(1)


def test_every_action_encodes_to_an_openflow_action() -> None:
    """The os-ken shell turns each typed action into its OpenFlow 1.3 action, and refuses anything else."""
    from types import SimpleNamespace

    from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

    from multi6lab.controller.app import SiteExitController
    from multi6lab.controller.policy import DEC_TTL, OFPP_IN_PORT, TO_CONTROLLER, Action, SetField, SetPrefix, ToGroup

    dp = SimpleNamespace(ofproto=ofproto_v1_3, ofproto_parser=ofproto_v1_3_parser)
    out = SiteExitController._actions(dp, (Output(3), Output(OFPP_IN_PORT), TO_CONTROLLER,
                                           SetField("ipv6_src", "3fff:a:5::1"), DEC_TTL, ToGroup(7),
                                           SetPrefix("ipv6_dst", "fd00:5:0:1::/64")))
    assert [type(a).__name__ for a in out] == ["OFPActionOutput", "OFPActionOutput", "OFPActionOutput",
                                               "OFPActionSetField", "OFPActionDecNwTtl", "OFPActionGroup",
                                               "RegLoad2"]
    assert (out[0].port, out[1].port, out[2].port) == (3, ofproto_v1_3.OFPP_IN_PORT, ofproto_v1_3.OFPP_CONTROLLER)
    assert out[3].key == "ipv6_src" and out[3].value == "3fff:a:5::1" and out[5].group_id == 7
    assert (out[6].dst, out[6].value, out[6].mask) == ("ipv6_dst", "fd00:5:0:1::", "ffff:ffff:ffff:ffff::")
    with pytest.raises(ValueError, match="unknown action"):
        SiteExitController._actions(dp, (Action(),))


def test_a_masked_rewrite_reads_back_as_open_vswitch_understands_it(tmp_path: Path) -> None:
    """The prefix rewrite is an Open vSwitch extension; ovs-ofctl decodes the bytes the shell would send."""
    import shutil
    import subprocess
    from types import SimpleNamespace

    from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

    from multi6lab.controller.app import SiteExitController
    from multi6lab.controller.policy import SetPrefix

    if shutil.which("ovs-ofctl") is None:
        pytest.skip("ovs-ofctl (openvswitch-common) is not installed: make setup installs it")
    dp = SimpleNamespace(ofproto=ofproto_v1_3, ofproto_parser=ofproto_v1_3_parser, set_xid=lambda m: None)
    acts = SiteExitController._actions(dp, (SetPrefix("ipv6_dst", "fd00:5:0:1::/64"), Output(1)))
    fm = ofproto_v1_3_parser.OFPFlowMod(dp, priority=650, match=ofproto_v1_3_parser.OFPMatch(eth_type=0x86DD),
                                        instructions=[ofproto_v1_3_parser.OFPInstructionActions(
                                            ofproto_v1_3.OFPIT_APPLY_ACTIONS, acts)])
    fm.xid = 1
    fm.serialize()
    (tmp_path / "fm.bin").write_bytes(bytes(fm.buf))
    said = subprocess.run(["ovs-ofctl", "ofp-parse", str(tmp_path / "fm.bin")], capture_output=True, text=True,
                          check=True).stdout
    assert "actions=set_field:fd00:5:0:1::/64->ipv6_dst,output:1" in said, said


def test_what_an_exit_s_packets_carry_as_source_covers_every_address_of_the_site(fig1: Plan, three: Plan) -> None:
    """The icmp trigger believes an error only if it quotes a packet the exit sent: any translated address
    of the site's subnets, not only the plan's hosts'."""
    pol = SitePolicy.of(fig1.sites[0])
    [through_a] = pol.sends_from("exa")
    assert A(locator(fig1, "exa")) in through_a and A(locator(fig1, "exb")) not in through_a
    unlisted = pol.translators["exa"].to_outside(A(h1_identity(fig1).rsplit(":", 1)[0] + ":beef"))
    assert unlisted in through_a
    sr = SitePolicy.of(three.sites[0])
    assert [str(p) for p in sr.sends_from("exb")] == ["3fff:b:5::/64"]
