"""Delay, jitter and loss on links: the YAML (per link, defaults, named path profiles), where the lab's own
delay line holds each direction, and its schedule against a fake clock."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from multi6lab.lab.delayline import FIRST_QUEUE, DelayLine, Impairment, Queue, Unheld, holds
from multi6lab.topologies import loader
from multi6lab.topologies.plan import build
from multi6lab.topologies.yamlsrc import InputError

ROOT = Path(__file__).resolve().parents[2]
FIGURE1 = (ROOT / "topologies" / "figure1.yaml").read_text()
PROFILES = """profiles:
  access: {delay_ms: 2, jitter_ms: 0.5}
  transit: {delay_ms: 10, loss_pct: 0.1}
"""


def with_links(text: str, profiles: str = PROFILES) -> str:
    return FIGURE1.replace("\nlinks:\n", f"\n{profiles}links:\n").replace(
        '  - endpoints: ["ispa:eth0", "core:eth1"]', '  - {endpoints: ["ispa:eth0", "core:eth1"], profile: transit}'
    ).replace('  - endpoints: ["r:eth0", "core:eth3"]', f'  - {{endpoints: ["r:eth0", "core:eth3"], {text}}}')


def one_link(a: str, b: str, extra: str) -> str:
    """figure1 with the link between ``a`` and ``b`` given ``extra`` settings."""
    return FIGURE1.replace(f'  - endpoints: ["{a}", "{b}"]', f'  - {{endpoints: ["{a}", "{b}"], {extra}}}')


def test_links_take_their_profile_and_their_own_values_win() -> None:
    topo = loader.loads(with_links("profile: access, delay_ms: 25"))
    by = {(lk.a.node, lk.b.node): lk for lk in topo.links}
    transit, r = by[("ispa", "core")], by[("r", "core")]
    assert (transit.delay_ms, transit.loss_pct, transit.jitter_ms, transit.profile) == (10.0, 0.1, None, "transit")
    assert (r.delay_ms, r.jitter_ms, r.profile) == (25.0, 0.5, "access")  # its own delay, the profile's jitter
    assert by[("h1", "sw")].delay_ms is None  # no profile, no default: no delay
    plan = build(topo)
    assert next(lp for lp in plan.links if lp.a.node == "r").jitter_ms == 0.5


def test_an_unknown_profile_names_the_link_and_the_profiles_there_are() -> None:
    with pytest.raises(InputError) as exc:
        loader.loads(with_links("profile: intercontinental"), "t.yaml")
    (problem,) = exc.value.problems
    assert "links[7].profile: unknown path profile 'intercontinental' (profiles: access, transit)" in str(problem)
    text = FIGURE1.replace("  link:\n", "  link:\n    profile: lan\n", 1)
    with pytest.raises(InputError, match=r"defaults\.link\.profile: unknown path profile 'lan' \(profiles: none\)"):
        loader.loads(text, "t.yaml")
    with pytest.raises(InputError, match=r"jitter_ms: -1 is less than the minimum of 0"):
        loader.loads(with_links("jitter_ms: -1"), "t.yaml")


def test_each_delayed_direction_is_held_once_in_a_router_or_host() -> None:
    plan = build(loader.loads(with_links("delay_ms: 25")))
    got = {(h.node, h.intf, h.way, h.queue): h.impairment for h in holds(plan)}
    assert got == {
        # router to router: each end delays what leaves it
        ("ispa", "ispa-eth0", "out", FIRST_QUEUE): Impairment(10.0, 0.0, 0.1),
        ("core", "core-eth1", "out", FIRST_QUEUE): Impairment(10.0, 0.0, 0.1),
        ("r", "r-eth0", "out", FIRST_QUEUE): Impairment(25.0),
        ("core", "core-eth3", "out", FIRST_QUEUE + 1): Impairment(25.0),
    }
    # A host on a switch: the host's end holds both directions.
    host = one_link("h1:eth0", "sw:eth1", "delay_ms: 5")
    assert {(h.node, h.way) for h in holds(build(loader.loads(host)))} == {("h1", "out"), ("h1", "in")}
    between_switches = one_link("sw:eth2", "exa:eth1", "delay_ms: 5")
    with pytest.raises(Unheld, match=r"link sw:eth2--exa:eth1: a delay between two switches needs the netem"):
        holds(build(loader.loads(between_switches)))
    lossy = one_link("r:eth0", "core:eth3", "loss_pct: 1")
    assert holds(build(loader.loads(lossy))) == []  # loss alone: the nodes' own random drop


def test_a_fixed_delay_keeps_order_and_every_packet_waits_exactly_that_long() -> None:
    line = DelayLine.of({100: Impairment(25.0)}, seed=1)
    for i in range(5):
        assert line.arrived(100, i, 1.0 + i * 0.001)
    assert line.next_due() == pytest.approx(1.025)
    assert [(q, p) for q, p, _ in line.release(1.0269)] == [(100, 0), (100, 1)]
    rest = line.release(1.03)
    assert [p for _, p, _ in rest] == [2, 3, 4] and line.next_due() is None
    assert [due for _, _, due in rest] == pytest.approx([1.027, 1.028, 1.029])


def test_jitter_spreads_due_times_uniformly_and_may_reorder_as_netem_does() -> None:
    q = Queue(Impairment(25.0, 5.0), random.Random(3))
    delays = [(q.due(float(i)) or 0.0) - i for i in range(20000)]  # one packet a second: no queueing
    assert min(delays) >= 0.020 and max(delays) <= 0.030
    assert sum(delays) / len(delays) == pytest.approx(0.025, abs=0.0002)
    line = DelayLine.of({100: Impairment(25.0, 5.0)}, seed=7)
    for i in range(200):
        line.arrived(100, i, 1.0 + i * 0.001)
    order = [p for _, p, _ in line.release(2.0)]
    assert sorted(order) == list(range(200)) and order != list(range(200))  # all of them, some overtaken
    # Without jitter nothing overtakes, even when a delay change would let a later packet leave first.
    fifo = Queue(Impairment(25.0), random.Random(1))
    assert fifo.due(1.0) == pytest.approx(1.025)
    fifo.impairment = Impairment(5.0)
    assert fifo.due(1.001) == pytest.approx(1.025)


def test_loss_drops_the_asked_share_and_a_seed_replays_the_schedule() -> None:
    def run(seed: int) -> list[int]:
        line = DelayLine.of({100: Impairment(0.0, 0.0, 10.0), 101: Impairment(1.0)}, seed)
        kept = [i for i in range(10000) if line.arrived(100, i, i * 1e-4)]
        assert all(line.arrived(101, i, 2.0) for i in range(100))  # another queue, not lossy
        return kept

    kept = run(5)
    assert 8850 <= len(kept) <= 9150 and kept == run(5) and kept != run(6)


def test_the_accuracy_benchmark_takes_the_path_s_own_transit_off_and_says_whether_1_ms_holds() -> None:
    from multi6lab.results import delayaccuracy as acc

    late = {7: 0.003}  # probe 7 held 3 ms more; 4 arrives before 3
    rows = [{"seq": str(s), "t_sent": f"{s / 1000:.6f}", "t_recv": f"{s / 1000 + 0.0252 + late.get(s, 0):.6f}"}
            for s in (0, 1, 2, 4, 3, 5, 6, 7, 8, 9)]
    assert acc.reordered(rows) == 1 and acc.one_way_ms(rows)[0] == pytest.approx(25.2)
    base = [0.2] * 10
    c = acc.cell(25.0, acc.one_way_ms(rows), base, 11, acc.reordered(rows))
    assert c["lost"] == 1 and c["achieved_p50_ms"] == pytest.approx(25.0) and c["error_p99_ms"] > 2.0
    assert not c["meets_goal"]  # late by 3 ms at p99, and one probe overtaken
    good = acc.cell(25.0, [25.3] * 100, [0.2] * 100, 100, 0)
    assert good["meets_goal"] and good["error_p99_ms"] == pytest.approx(0.1)
    text = acc.markdown([{**good, "load": "probes alone"}], "delay line (NFQUEUE verdict daemon)",
                        {"alone": [0.2] * 100})
    assert "| 25 | probes alone | 100 | 25.100 | 25.100 | +0.100 |" in text and "alone p50 0.200 ms" in text
    line = acc.line_table({25.0: [{"released": 10, "late_ms_p50": 0.03, "late_ms_p99": 0.1, "late_ms_max": 0.4},
                                  {"released": 5, "late_ms_p50": 0.02, "late_ms_p99": 0.2, "late_ms_max": 0.3}]})
    assert "| 25 | 15 | 0.030 / 0.200 / 0.400 | not stamped by the kernel |" in line and acc.line_table({}) == ""


def test_the_benchmark_s_measurements_become_one_cell_per_delay_and_load() -> None:
    from multi6lab.results import delayaccuracy as acc

    def rows(transit_ms: float) -> list[dict[str, str]]:
        return [{"seq": str(s), "t_sent": f"{s / 1000:.6f}", "t_recv": f"{s / 1000 + transit_ms / 1000:.6f}"}
                for s in range(100)]

    measured = {"0/alone": (rows(0.1), 100), "0/bulk": (rows(0.5), 100), "0/line": [],
                "25/alone": (rows(25.1), 100), "25/bulk": (rows(25.6), 101), "25/line": [{"released": 300}]}
    cells, base, line = acc.summarise(measured, 50)
    assert [(c["delay_ms"], c["load"], c["lost"]) for c in cells] == [(25.0, "probes alone", 0),
                                                                      (25.0, "TCP bulk flow, 50 Mbit/s", 1)]
    assert [c["error_p50_ms"] for c in cells] == pytest.approx([0.0, 0.1]) and set(base) == {"alone", "bulk"}
    assert line == {25.0: [{"released": 300}]}  # no delay line ran without a delay
