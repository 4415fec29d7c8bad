"""Generated topologies are ordinary topology files: the loader checks them, and the same seed gives the same file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from multi6lab.cli import main
from multi6lab.topologies import generate, loader
from multi6lab.topologies.plan import build
from multi6lab.vocabulary import Approach, Trigger


@pytest.mark.parametrize(("sites", "isps", "exits", "approach"), [
    (1, 2, 2, Approach.NPTV6), (20, 2, 2, Approach.NPTV6), (5, 3, 2, Approach.ID_LOC), (4, 4, 3, Approach.ROUTING),
    (3, 3, 1, Approach.SOURCE_ROUTING), (100, 2, 2, Approach.NPTV6),
])
def test_generated_topologies_load_and_plan(sites: int, isps: int, exits: int, approach: Approach) -> None:
    shape = generate.Shape(sites, isps, exits=exits, hosts=2, approach=approach, seed=7)
    assert shape.problems() == []
    topo = loader.loads(generate.dumps(shape), "generated.yaml")
    assert len(topo.sites) == sites and len(topo.isps) == isps
    assert all(len(s.exits) == exits and len(s.hosts) == 2 and s.approach == approach for s in topo.sites)
    plan = build(topo)
    assert len(plan.switches) == (sites * (1 + exits) if approach != Approach.ROUTING else sites)


def test_the_same_seed_gives_the_same_file_and_another_seed_another_choice() -> None:
    a = generate.dumps(generate.Shape(30, 5, seed=1))
    assert a == generate.dumps(generate.Shape(30, 5, seed=1))
    isps = lambda text: [sorted(e["isp"] for e in s["exits"].values())  # noqa: E731
                         for s in yaml.safe_load(text)["sites"].values()]
    assert isps(a) != isps(generate.dumps(generate.Shape(30, 5, seed=2)))


def test_impossible_shapes_are_refused_in_words() -> None:
    assert generate.Shape(0, 2).problems() == ["--sites must be 1 to 65534"]
    assert generate.Shape(2, 2, exits=3).problems() == [
        "--exits must be 1 to the number of ISPs (2): a site has one exit per ISP"]


def test_cli_writes_a_file_that_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g.yaml"
    assert main(["generate", "--sites", "3", "--isps", "2", "-o", str(out)]) == 0
    assert main(["validate", str(out)]) == 0
    assert "ok:" in capsys.readouterr().out
    assert main(["generate", "--sites", "3", "--isps", "2", "--exits", "5"]) == 2
    assert "--exits must be 1 to the number of ISPs" in capsys.readouterr().err
    assert main(["generate", "--sites", "3", "--isps", "2", "--triggers", "link,magic"]) == 2
    assert "unknown trigger 'magic'" in capsys.readouterr().err


def test_routing_sites_may_run_bfd_and_nobody_else_may_ask_for_it() -> None:
    topo = loader.loads(generate.dumps(generate.Shape(3, 2, approach=Approach.ROUTING, bfd_ms=50)), "g.yaml")
    assert {s.bgp.describe() for s in topo.sites} == {"bgp 1/3 s, bfd 50 ms x3"}
    assert generate.Shape(3, 2, bfd_ms=50).problems() == ["--bfd is a positive interval in ms, for --approach routing"]
    assert "--bfd 50" in generate.dumps(generate.Shape(3, 2, approach=Approach.ROUTING, bfd_ms=50)).splitlines()[0]


def test_a_large_lab_may_slow_its_heartbeats_and_only_one_with_heartbeats_may_ask() -> None:
    text = generate.dumps(generate.Shape(3, 2, heartbeat_ms=100))
    assert {s.heartbeat.interval_ms for s in loader.loads(text, "g.yaml").sites} == {100}
    assert "--heartbeat-ms 100" in text.splitlines()[0]
    assert generate.Shape(3, 2, triggers=(Trigger.LINK,), heartbeat_ms=100).problems() == [
        "--heartbeat-ms is a positive interval in ms, for the heartbeat trigger or id-loc's locator-pair probes"]
    idloc = generate.Shape(3, 2, approach=Approach.ID_LOC, triggers=(Trigger.LINK,), heartbeat_ms=100)
    assert {s.heartbeat.interval_ms for s in loader.loads(generate.dumps(idloc), "g.yaml").sites} == {100}


def test_an_id_loc_correspondent_sits_on_two_isps_an_outage_of_the_others_never_reaches() -> None:
    text = generate.dumps(generate.Shape(3, 2, approach=Approach.ID_LOC, correspondent=True))
    topo = loader.loads(text, "g.yaml")
    assert text.splitlines()[0].endswith("--correspondent")
    assert [s.name for s in topo.sites] == ["s0", "s1", "s2", "far"] and len(topo.isps) == 4
    far = topo.sites[-1]
    assert far.approach == Approach.ID_LOC and {e.isp for e in far.exits} == {"isp2", "isp3"}
    assert all({e.isp for e in s.exits} <= {"isp0", "isp1"} for s in topo.sites[:-1])
    assert len(build(topo).sites) == 4
    assert generate.Shape(3, 2, correspondent=True).problems() == [
        "--correspondent is an id-loc peer for at most 65533 id-loc sites"]
