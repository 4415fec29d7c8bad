"""nptv6 with identities and delegations longer than /48 (RFC 6296 section 3.5): what a site gets from DHCPv6
prefix delegation (/56, /60, /64). Each address is translated by adjusting a word of its interface identifier,
so the exits hold an exact translation per address: the plan's hosts from the start, any other address once
its first packet, either way, has reached the controller. Checked against an independent computation of
RFC 6296's mapping, and by walking packets through the rules the controller's core installs."""

from __future__ import annotations

from ipaddress import IPv6Address as A
from ipaddress import IPv6Network as N
from pathlib import Path

import pytest
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from multi6lab.controller.core import FLUSH_LATER, Core, CountRequest, Install, Log, Release
from multi6lab.controller.policy import RuleSet
from multi6lab.topologies import loader
from multi6lab.topologies.plan import Plan, build
from multi6lab.topologies.yamlsrc import InputError
from multi6lab.vocabulary import Event
from tests.unit.fakenet import FakeNet

ROOT = Path(__file__).resolve().parents[2]
R = "3fff:ff:100::2"


def rfc6296(addr: str, inside: str, outside: str) -> A:
    """RFC 6296's mapping, computed apart from the project's translator: replace the prefix, then add to one
    16-bit word the one's-complement difference of the two prefixes' sums, so the address's sum (and every
    checksum over it) is unchanged. The word is the subnet word (bits 48-63) up to /48, else the first word of
    the interface identifier that is not 0xFFFF; 0xFFFF results are written 0."""
    i, o = N(inside), N(outside)
    host = int(A(addr)) & ((1 << (128 - i.prefixlen)) - 1)
    words = [(int(o.network_address) | host) >> (112 - 16 * k) & 0xFFFF for k in range(8)]

    def csum(n: N) -> int:
        total = sum(int(n.network_address) >> (112 - 16 * k) & 0xFFFF for k in range(8))
        while total > 0xFFFF:
            total = (total & 0xFFFF) + (total >> 16)
        return total

    delta = (csum(i) + (~csum(o) & 0xFFFF)) % 0xFFFF
    k = 3 if i.prefixlen <= 48 else next(k for k in range(4, 8) if words[k] != 0xFFFF)
    value = (words[k] + delta) % 0xFFFF
    words[k] = 0 if value == 0xFFFF else value
    return A(sum(w << (112 - 16 * k) for k, w in enumerate(words)))


def site(length: int) -> Plan:
    """RFC 4177 Figure 1, its identity and both delegations ``length`` bits long."""
    text = (ROOT / "topologies" / "figure1.yaml").read_text()
    text = (text.replace('"fd00:5::/48"', f'"fd00:5::/{length}"')
            .replace('"3fff:a:5::/48"', f'"3fff:a:5::/{length}"').replace('"3fff:b:5::/48"', f'"3fff:b:5::/{length}"'))
    return build(loader.loads(text))


def up(core: Core, p: Plan) -> None:
    for n in p.switches:
        if n.dpid is not None and core.switch_connected(n.dpid):
            core.flows_held(n.dpid, [], False, 0.0)
            core.groups_held(n.dpid, [], False, 0.0)
    core.take()


def held(core: Core) -> RuleSet:
    return RuleSet(frozenset(r for rs in core.installed.values() for r in rs.rules),
                   frozenset(g for rs in core.installed.values() for g in rs.groups))


@pytest.mark.parametrize("length", [56, 60, 64])
def test_a_long_identity_loads_and_each_host_s_locator_is_rfc_6296_s(length: int) -> None:
    p = site(length)
    sp = p.sites[0]
    (h1,) = sp.hosts
    for e in sp.exits:
        assert h1.locators[e.name] == rfc6296(str(h1.identity), str(sp.site.identity), str(e.delegation))
    # ... and the plan's host leaves through the primary exit rewritten to exactly that, from the start.
    core = Core(p.brief({"site"}), None, 0.0, {})
    up(core, p)
    out = FakeNet(p, held(core)).send("h1", str(h1.identity), R)
    assert out.kind == "delivered" and out.node == "ispa" and A(out.pkt["ipv6_src"]) == h1.locators["exa"]


@pytest.mark.parametrize(("addr", "word"), [("fd00:5::ffff:0:0:1", 5), ("fd00:5::abcd:0:0:1", 4)])
def test_the_adjusted_word_is_the_first_interface_identifier_word_that_is_not_0xffff(addr: str, word: int) -> None:
    from multi6lab.topologies.npt import Translator

    mapped = Translator(N("fd00:5::/56"), N("3fff:a:5::/56")).to_outside(A(addr))
    assert mapped == rfc6296(addr, "fd00:5::/56", "3fff:a:5::/56")
    unchanged = [k for k in range(4, 8) if k != word]
    assert all(mapped.packed[2 * k:2 * k + 2] == A(addr).packed[2 * k:2 * k + 2] for k in unchanged)


def test_an_address_the_plan_does_not_list_is_translated_once_its_first_packet_reached_the_controller() -> None:
    p = site(56)
    sp, new = p.sites[0], "fd00:5::beef"
    core = Core(p.brief({"site"}), None, 0.0, {})
    up(core, p)
    first = FakeNet(p, held(core)).send("h1", new, R)
    assert first.kind == "controller" and first.where == "exa"  # no rule could move its interface identifier
    exa = sp.exit("exa")
    frame = bytes(Ether(src=sp.gateway_mac, dst=sp.gateway_mac) / IPv6(src=new, dst=R))
    core.packet_in(exa.dpid, exa.inside_port, frame, 1.0)
    assert FLUSH_LATER in core.out and not [o for o in core.out if isinstance(o, Install | Release)]
    core.flush(1.001)
    out = core.take()
    assert [o.cause for o in out if isinstance(o, Install)] == ["translation"] * len(sp.exits)
    assert [o for o in out if isinstance(o, Release)] == [Release(exa.dpid, exa.inside_port, frame)]
    assert [o.fields["address"] for o in out if isinstance(o, Log) and o.event == Event.TRANSLATION_LEARNED] == [new]
    again = FakeNet(p, held(core)).send("h1", new, R)
    assert again.kind == "delivered" and A(again.pkt["ipv6_src"]) == rfc6296(new, "fd00:5::/56", "3fff:a:5::/56")
    # The answer, to that locator, is translated back and handed to the fabric, which finds the host.
    back = FakeNet(p, held(core)).inject("exa", exa.outside_port, ipv6_src=R, ipv6_dst=again.pkt["ipv6_src"],
                                         eth_dst=exa.mac)
    assert back.pkt["ipv6_dst"] == new and back.path[:2] == ["exa", "sw"]
    # Through the other exit too, after a failover: every exit holds the address's translation.
    down = FakeNet(p, held(core), down={("exa", exa.outside_port)}).send("h1", new, R)
    assert down.node == "ispb" and A(down.pkt["ipv6_src"]) == rfc6296(new, "fd00:5::/56", "3fff:b:5::/56")


def test_a_burst_of_new_addresses_is_one_push_and_every_packet_goes_back_after_it() -> None:
    """Each push computes the whole policy: a burst read from the switches before the flush is one batch, and
    no packet of it goes back before the rules that translate it."""
    p = site(56)
    sp = p.sites[0]
    exa = sp.exit("exa")
    core = Core(p.brief({"site"}), None, 0.0, {})
    up(core, p)
    frames = [bytes(Ether(src=sp.gateway_mac, dst=sp.gateway_mac) / IPv6(src=f"fd00:5::{i:x}", dst=R))
              for i in range(0x100, 0x120)]
    for i, frame in enumerate(frames + frames[:1]):  # the first again: known, but its rules not out yet
        core.packet_in(exa.dpid, exa.inside_port, frame, 1.0 + i / 1000)
    asked = core.take()
    assert asked.count(FLUSH_LATER) == 1 and not [o for o in asked if isinstance(o, Install | Release)]
    core.flush(1.1)
    out = core.take()
    installs = [i for i, o in enumerate(out) if isinstance(o, Install)]
    releases = [i for i, o in enumerate(out) if isinstance(o, Release)]
    assert len(installs) == len(sp.exits) and {o.push for o in out if isinstance(o, Install)} == {core.pushes}
    assert max(installs) < min(releases) and [out[i].data for i in releases] == frames + frames[:1]
    # Each address is written down as learnt once its rules have left, with the size of its batch.
    learnt = [o.fields for o in out if isinstance(o, Log) and o.event == Event.TRANSLATION_LEARNED]
    assert [f["address"] for f in learnt] == [f"fd00:5::{i:x}" for i in range(0x100, 0x120)]
    assert {f["batch"] for f in learnt} == {len(frames)} and not [o for o in asked if isinstance(o, Log)]
    assert learnt[0]["waited_ms"] == 100.0 and learnt[-1]["waited_ms"] == 69.0  # met at 1.000 and 1.031
    for i in range(0x100, 0x120):
        assert FakeNet(p, held(core)).send("h1", f"fd00:5::{i:x}", R).kind == "delivered"
    core.flush(1.2)  # nothing learnt since: no push
    assert core.take() == []
    core.packet_in(exa.dpid, exa.inside_port, frames[3], 1.3)  # known and pushed: back at once
    assert core.take() == [Release(exa.dpid, exa.inside_port, frames[3])]


def test_a_learnt_address_unused_for_its_idle_time_is_forgotten_and_one_in_use_is_kept() -> None:
    """The exits' packet counts say which learnt address is still used (a rotated temporary address is not);
    the backup exit's rules, which count nothing while the primary works, keep nobody's alive or dead."""
    p = site(56)
    sp = p.sites[0]
    exa, exb = sp.exit("exa"), sp.exit("exb")
    core = Core(p.brief({"site"}), None, 0.0, {})
    up(core, p)
    assert core.poll_interval() == 75.0  # a quarter of the default 300 s
    busy, quiet = "fd00:5::b", "fd00:5::c"
    for a in (busy, quiet):
        core.packet_in(exa.dpid, exa.inside_port, bytes(Ether(src=sp.gateway_mac, dst=sp.gateway_mac)
                                                        / IPv6(src=a, dst=R)), 1.0)
    core.flush(1.0)
    core.take()
    core.poll(10.0)
    assert core.take() == [CountRequest(exa.dpid), CountRequest(exb.dpid)]

    def answer(t: float, busy_packets: int, more: bool = False) -> list[str]:
        for e in (exa, exb):
            rows = [((r.priority, r.match), busy_packets if e is exa and ("ipv6_src", busy) in r.match else 0)
                    for r in core.installed[e.dpid].rules]
            core.counts(e.dpid, rows, more, t)
        return [o.fields["address"] for o in core.take() if isinstance(o, Log) and o.event == "translation_expired"]

    assert answer(100.0, 5) == []  # busy counted a packet; quiet unused for 99 s of 300
    assert answer(302.0, 5, more=True) == []  # a partial answer decides nothing
    assert answer(302.0, 5) == [quiet] and core.counters["translations_expired"] == 1
    assert FakeNet(p, held(core)).send("h1", quiet, R).kind == "controller"  # its rules left: learnt again later
    assert FakeNet(p, held(core)).send("h1", busy, R).kind == "delivered"
    assert answer(350.0, 9) == [] and answer(640.0, 9) == []  # used at 350: 290 s unused is not yet 300
    assert answer(651.0, 9) == [busy]


def test_translation_idle_s_is_read_for_a_site_translating_per_address_and_refused_where_it_means_nothing() -> None:
    text = (ROOT / "topologies" / "figure1.yaml").read_text().replace("    fabric: sw\n",
                                                                      "    fabric: sw\n    translation_idle_s: 30\n")
    with pytest.raises(InputError) as e:
        loader.loads(text)  # a /48: its exits translate whole /64s, nothing is learnt
    assert "translation_idle_s is for nptv6 sites whose identity is longer than /48" in str(e.value)
    long = text.replace('"fd00:5::/48"', '"fd00:5::/56"').replace('"3fff:a:5::/48"', '"3fff:a:5::/56"') \
        .replace('"3fff:b:5::/48"', '"3fff:b:5::/56"')
    core = Core(build(loader.loads(long)).brief({"site"}), None, 0.0, {})
    assert core.poll_interval() == 7.5


def test_a_first_packet_arriving_for_an_unknown_locator_is_translated_back_and_learned() -> None:
    p = site(60)
    sp = p.sites[0]
    exb = sp.exit("exb")
    loc = rfc6296("fd00:5::77", "fd00:5::/60", "3fff:b:5::/60")
    frame = bytes(Ether(src=exb.isp_mac, dst=exb.mac) / IPv6(src=R, dst=str(loc)))
    core = Core(p.brief({"site"}), None, 0.0, {})
    up(core, p)
    assert FakeNet(p, held(core)).inject("exb", exb.outside_port, ipv6_src=R, ipv6_dst=str(loc),
                                         eth_dst=exb.mac).kind == "controller"
    core.packet_in(exb.dpid, exb.outside_port, frame, 2.0)
    core.flush(2.001)
    assert A("fd00:5::77") in core.translated["site"]
    back = FakeNet(p, held(core)).inject("exb", exb.outside_port, ipv6_src=R, ipv6_dst=str(loc), eth_dst=exb.mac)
    assert back.pkt["ipv6_dst"] == "fd00:5::77"


def test_an_identifier_of_0xffff_words_only_has_no_translation_and_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    from multi6lab.controller import core as core_module

    p = site(64)
    sp = p.sites[0]
    exa = sp.exit("exa")
    core = Core(p.brief({"site"}), None, 0.0, {})
    up(core, p)
    bad = bytes(Ether() / IPv6(src="fd00:5::ffff:ffff:ffff:ffff", dst=R))
    core.packet_in(exa.dpid, exa.inside_port, bad, 3.0)
    assert core.take() == [] and core.counters["untranslatable"] == 1
    monkeypatch.setattr(core_module, "MAX_TRANSLATED", 2)
    for k in range(1, 4):
        core.packet_in(exa.dpid, exa.inside_port, bytes(Ether() / IPv6(src=f"fd00:5::{k}", dst=R)), 3.0 + k)
    assert list(core.translated["site"]) == [A("fd00:5::2"), A("fd00:5::3")]  # the oldest gave way


def test_id_loc_still_needs_a_48_and_every_site_still_needs_a_64_or_shorter() -> None:
    text = (ROOT / "topologies" / "two-sites.yaml").read_text().replace("approach: nptv6", "approach: id-loc")
    text = text.replace('identity: "fd00:1::/48"', 'identity: "fd00:1::/56"')
    with pytest.raises(InputError, match=r"must be /48 or shorter for 'id-loc' .*nptv6 takes /49 to /64"):
        loader.loads(text)
    with pytest.raises(InputError, match="must be /64 or shorter"):
        site(65)


def test_the_new_address_benchmark_reads_waits_rates_and_rules_per_size() -> None:
    from multi6lab.results import newaddresses as r

    events = [{"event": Event.TRANSLATION_LEARNED, "site": "site", "t": t, "waited_ms": w}
              for t, w in ((1.0, 5.0), (2.0, 500.0), (2.5, 250.0), (3.0, 0.0))]
    events.append({"event": Event.TRANSLATION_LEARNED, "site": "other", "t": 2.6})
    learned = r.learned_times(events, "site", 2.0)
    assert learned == [(1.5, 2.0), (2.25, 2.5), (3.0, 3.0)]
    assert r.rate(learned) == 2.0  # 3 installed from 1.5 s to 3 s
    assert r.rate([(1.0, 1.0)]) is None and r.rate([]) is None
    rows = [{"active": n, "first_ms": 3.0 + k, "next_ms": 1.0, "rate_per_s": 500.0, "rules_per_address": 3.0,
             "burst": 300, "taken": 260} for n in (10, 100) for k in range(6)]
    rows.append({"active": 100, "first_ms": None, "next_ms": None, "rate_per_s": 500.0, "rules_per_address": 3.0})
    ten, hundred = r.summarise(rows)
    assert ten["active"] == 10 and ten["first_extra_ms"]["p50"] == pytest.approx(4.5) and ten["probes"] == 6
    assert hundred["first_extra_ms"]["not_recovered"] == 1  # a probe that got no echo is counted, not dropped
    table = r.markdown([ten, hundred])
    assert "| 10 | " in table and "| 260 of 300 | 500.0 | 3.0 |" in table


def test_the_new_address_benchmark_refuses_a_site_that_translates_whole_64s(tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture[str]
                                                                             ) -> None:
    from multi6lab.cli import main

    assert main(["new-addresses", "--topology", str(ROOT / "topologies" / "figure1.yaml"),
                 "--out", str(tmp_path / "x")]) == 1
    assert "must run nptv6 with an identity longer than /48" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
