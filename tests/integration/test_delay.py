"""Issue 29: links with delay and jitter on any kernel (netem where it exists, the lab's own delay line here)."""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import pytest

from multi6lab.lab.lifecycle import Lab, slowness
from multi6lab.topologies import loader
from tests.integration.helpers import (
    lab_with_approach,
    leftovers,
    netem_available,
    topology,
    udp_exchange,
    wait_until,
)

pytestmark = pytest.mark.integration
R = "3fff:ff:100::2"


def with_delay(tmp_path: Path, settings: str) -> Path:
    f = tmp_path / "delayed.yaml"
    f.write_text(topology("figure1").read_text().replace('- endpoints: ["r:eth0", "core:eth3"]',
                                                         f'- {{endpoints: ["r:eth0", "core:eth3"], {settings}}}'))
    return f


def rtts(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"time=([\d.]+) ms", text)]


@pytest.mark.full_kernel  # netem's branch where the kernel has it: 'make vm-test'
def test_a_25_ms_link_measures_25_ms_each_way_and_the_lab_leaves_no_delay_line_behind(tmp_path: Path) -> None:
    with Lab(loader.load(with_delay(tmp_path, "delay_ms: 25")), tmp_path) as lab:
        assert lab.emulation is not None and lab.record is not None
        mechanism = lab.emulation.delay
        assert mechanism == ("netem" if netem_available() else "delay line (NFQUEUE verdict daemon)")
        daemons = [p.pid for p in lab.record.procs if p.what.startswith("delay line ")]
        assert len(daemons) == (0 if mechanism == "netem" else 2)  # r's end and the core's end
        times = rtts(lab.cmd("h1", f"ping -6 -c 100 -i 0.02 {R}"))
        # One way the probes' own clock: kernel stamps at both ends, one monotonic clock for every namespace.
        got = udp_exchange(lab, "h1", "r", R, count=500, rate=500)
        plan = lab.plan
    # The path's own transit, above the delay, is the CPU's: stretched on an emulated one (a TCG guest's ping
    # read 51.2-52.1 ms) as the lab's bounds are; never early anywhere.
    k = slowness()
    assert len(times) == 100 and min(times) >= 50.0 and statistics.median(times) <= 50.0 + 1.0 * k, times
    one_way = sorted((float(g["t_recv"]) - float(g["t_sent"])) * 1000 for g in got)
    # Never early; at 25 ms give or take the path's own transit for nine probes in ten. (Its p99, which the
    # machine's hiccups under the whole suite can stretch, is the benchmark's business: make delay-accuracy.)
    assert len(one_way) == 500 and one_way[0] >= 25.0 and statistics.median(one_way) <= 25.0 + 0.5 * k, one_way[-5:]
    assert one_way[int(0.9 * 500)] <= 25.0 + 1.0 * k, one_way[-50:]
    assert leftovers(plan, daemons) == []


@pytest.mark.full_kernel  # netem's branch where the kernel has it: 'make vm-test'
def test_jitter_spreads_the_delay_as_asked(tmp_path: Path) -> None:
    with Lab(loader.load(with_delay(tmp_path, "delay_ms: 20, jitter_ms: 5")), tmp_path) as lab:
        got = udp_exchange(lab, "h1", "r", R, count=1000, rate=1000)
    one_way = sorted((float(g["t_recv"]) - float(g["t_sent"])) * 1000 for g in got)
    # 20 +- 5 and the path's own transit, never early; the top 5 % left to the machine's hiccups (one run under the
    # whole suite held a probe 31.8 ms), which are the benchmark's business, not this test's
    assert len(one_way) == 1000 and one_way[0] >= 15.0 and one_way[950] <= 26.0
    assert 18.5 <= statistics.median(one_way) <= 21.5 and one_way[900] - one_way[100] >= 6.0  # spread, not fixed


def test_figure1_at_internet_round_trips_holds_steady_on_both_paths(tmp_path: Path) -> None:
    """34 ms through ISP A, 64 ms through B: the heartbeats are pipelined (a reply every interval whatever the
    round trip), so nothing times out while the paths work, and the run's RTT is the one configured."""
    with Lab(loader.load(topology("figure1-internet")), tmp_path) as lab:
        t0 = time.monotonic()
        through_a = rtts(lab.cmd("h1", f"ping -6 -c 20 -i 0.05 {R}"))  # a second of the lab running
        events = [e for e in lab.events() if e["t"] >= t0 and e["event"] in ("heartbeat_timeout", "path_dead")]
    assert min(through_a) >= 34.0 and statistics.median(through_a) <= 37.0, through_a  # plus the path's own
    assert events == []


def test_id_loc_at_internet_round_trips_keeps_its_pairs_and_still_moves_on_a_silent_failure(tmp_path: Path) -> None:
    """A-C is 40 ms round trip and the detection time 30 ms: the edges' send timeout adds their own measured
    round trip, so the keepalives never time out; a silent blackhole of ISP A still moves both edges."""
    with lab_with_approach("two-sites-internet", "id-loc", tmp_path) as lab:
        h2 = str(next(h for sp in lab.plan.sites for h in sp.hosts if h.name == "h2").addresses["identity"])
        t0 = time.monotonic()
        times = rtts(lab.cmd("h1", f"ping -6 -c 20 -i 0.05 {h2}"))
        assert not [e for e in lab.events() if e["t"] >= t0 and e["event"] in ("exploring", "pair_selected")]
        # Never below the 40 ms configured; above it by the path's own transit: six switch passes on the
        # userspace datapath and eight held hops, each way (42.1 ms p50 seen under the full suite's load).
        assert min(times) >= 40.0 and statistics.median(times) <= 44.0, times
        t_fault = time.monotonic()
        lab.cmd("ispa", "nft add table ip6 silent && nft add chain ip6 silent blackhole "
                        "'{ type filter hook forward priority -10; }' && nft add rule ip6 silent blackhole drop")
        try:
            wait_until(lambda: {e["src_site"] for e in lab.events() if e["t"] >= t_fault
                                and e["event"] == "pair_selected"} >= {"s1", "s2"}, 5, "both edges to move")
        finally:
            lab.cmd("ispa", "nft delete table ip6 silent")
        explored = [e for e in lab.events() if e["t"] >= t_fault and e["event"] == "exploring"]
    assert explored and all(30 + 40 <= e["bound_ms"] <= 30 + 60 for e in explored), explored
