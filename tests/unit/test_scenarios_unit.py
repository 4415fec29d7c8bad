"""Scenario files, fault compilation, report tables and plots (all without root)."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import pytest

from multi6lab.results import plots, report
from multi6lab.scenarios import faults, model
from multi6lab.scenarios.model import Blackhole, Flap, IspOutage, IspUplinkDown, LinkDown, LossBurst
from multi6lab.topologies import loader
from multi6lab.topologies.model import Bgp
from multi6lab.topologies.plan import Plan, SitePlan, build
from multi6lab.topologies.yamlsrc import InputError
from multi6lab.vocabulary import Approach, Trigger

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted([*(ROOT / "scenarios").glob("*.yaml"), *(ROOT / "scenarios" / "benchmarks").glob("*.yaml")])
COMPARISON = ROOT / "scenarios" / "comparisons" / "approaches.yaml"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_scenarios_load(path: Path) -> None:
    sc = model.load(path)
    assert sc.trials >= 1 and sc.faults and sc.record_s > max(f.at for f in sc.faults)


def test_demo_scenario_is_what_make_demo_promises() -> None:
    sc = model.load(ROOT / "scenarios" / "demo.yaml")
    assert sc.topology.name == "figure1" and sc.approach_label == "nptv6"
    assert sc.faults[0].kind == "link_down" and sc.faults[0].exit == "exa" and sc.trials == 10
    assert (sc.site, sc.host, sc.remote) == ("site", "h1", "r")


def write(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "s.yaml"
    f.write_text(f"name: s\ntopology: {ROOT / 'topologies' / 'figure1.yaml'}\n" + body)
    return f


@pytest.mark.parametrize("body,message,line", [
    ("faults:\n  - {kind: link_down, exit: exz}\n", "link_down needs 'exit', one of exa, exb", 4),
    ("faults:\n  - {kind: isp_outage}\n", "isp_outage needs 'isp'", 4),
    ("faults:\n  - {kind: meteor, exit: exa}\n", "'meteor' is not one of", 4),
    ("host: h9\nfaults:\n  - {kind: link_down, exit: exa}\n", "'h9' is not a host of site site", 3),
    ("approach: source-routing\ntriggers: [transport]\nfaults:\n  - {kind: link_down, exit: exa}\n",
     "trigger 'transport' moves a destination to the site's next exit", 4),
    ("record_s: 1\nfaults:\n  - {kind: link_down, exit: exa, at: 2}\n", "after the trial ends", 5),
    ("faults:\n  - {kind: link_down, exit: exa, colour: red}\n", "unknown key 'colour'", 4),
    ("approach: routing\nbgp: {keepalive_s: 5, hold_s: 4}\nfaults:\n  - {kind: link_down, exit: exa}\n",
     "keepalive_s (5) must be shorter than hold_s (4)", 4),
    ("approach: routing\ntriggers: [link]\nfaults:\n  - {kind: link_down, exit: exa}\n",
     "approach 'routing' is triggered by routing alone", 4),
    ("triggers: [routing]\nfaults:\n  - {kind: link_down, exit: exa}\n", "trigger 'routing' belongs to", 3),
    ("controllers: paused\nfaults:\n  - {kind: link_down, exit: exa}\n", "'paused' is not one of", 3),
])
def test_scenario_problems_name_line_and_field(tmp_path: Path, body: str, message: str, line: int) -> None:
    with pytest.raises(InputError) as exc:
        model.load(write(tmp_path, body))
    hits = [p for p in exc.value.problems if message in p.message]
    assert hits and hits[0].line == line, exc.value.problems


def test_frozen_controllers_are_a_scenario_setting_its_tables_name(tmp_path: Path) -> None:
    body = "faults:\n  - {kind: link_down, exit: exa}\n"
    assert not model.load(write(tmp_path, body)).frozen
    sc = model.load(write(tmp_path, "controllers: frozen\n" + body))
    assert sc.frozen and sc.trigger_label == "link+heartbeat, controllers frozen"


def test_routing_scenario_overrides_the_site(tmp_path: Path) -> None:
    sc = model.load(write(tmp_path, "approach: routing\nbgp: {keepalive_s: 1, hold_s: 3, bfd: {interval_ms: 10}}\n"
                                    "faults:\n  - {kind: blackhole, exit: exa}\n"))
    site = sc.effective.site("site")
    assert site.approach == "routing" and site.triggers == ("routing",)  # the approach brings its trigger
    assert sc.approach_label == "routing" and sc.trigger_label == "bgp 1/3 s, bfd 10 ms x3"
    assert sc.topology.site("site").approach == "nptv6"  # the file as written is unchanged


def test_approach_the_topology_cannot_run_is_reported_at_the_key(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(f"name: s\ntopology: {ROOT / 'topologies' / 'two-sites.yaml'}\napproach: routing\n"
                 "faults:\n  - {kind: link_down, exit: s1ea}\n")
    with pytest.raises(InputError) as exc:
        model.load(f)
    p = exc.value.problems[0]
    assert p.line == 3 and "two-sites.yaml cannot run as this scenario asks" in p.message
    assert "needs a provider-independent 'pi' prefix" in p.message


def test_broken_topology_is_reported_from_the_scenario(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("name: s\ntopology: nowhere.yaml\nfaults:\n  - {kind: link_down, exit: exa}\n")
    with pytest.raises(InputError, match=r"topology nowhere\.yaml does not load"):
        model.load(f)


Fig1 = tuple[Plan, SitePlan]


@pytest.fixture
def fig1() -> Fig1:
    plan = build(loader.load(ROOT / "topologies" / "figure1.yaml"))
    return plan, plan.sites[0]


def test_link_down_at_the_isp_end_restores_routes(fig1: Fig1) -> None:
    plan, sp = fig1
    c = faults.compile_fault(plan, sp, LinkDown(at=0.0, duration=1.0, exit="exa"), 0, 2.0)
    assert [(a.at, a.node) for a in c.actions] == [(0.0, "ispa"), (1.0, "ispa")]
    assert c.actions[0].command == "ip link set ispa-eth1 down"
    assert "ip -6 route replace 3fff:a:5::/48 via 3fff:a::2 dev ispa-eth1" in c.actions[1].command
    assert c.exits == {"exa"} and c.undo[0].command == c.actions[1].command


def test_link_down_at_the_exit_end_runs_in_the_switchs_own_shell(fig1: Fig1) -> None:
    """The switch's shell is its server's root namespace: this machine's, or another's in a cluster."""
    plan, sp = fig1
    c = faults.compile_fault(plan, sp, LinkDown(at=0.5, exit="exb", end="exit"), 0, 2.0)
    assert c.actions[0] == faults.Action(0.5, "exb", "ip link set exb-eth2 down", "exb-eth2 down")
    assert c.actions[1].at == 2.5  # no duration: restored at the end of the trial


def test_blackhole_is_prepared_then_one_atomic_command(fig1: Fig1) -> None:
    plan, sp = fig1
    c = faults.compile_fault(plan, sp, Blackhole(at=0.0, duration=1.0, exit="exa", direction="inbound"),
                             3, 2.0)
    for hook in ("forward", "input", "output"):
        assert f"add chain ip6 multi6lab_fault3 {hook} {{ type filter hook {hook} " in c.prepare[0].command
    # Inbound: what the ISP forwards or sends toward the site, its own BGP/BFD/ND included; one nft process.
    assert shlex.split(c.actions[0].command) == ["nft", "add rule ip6 multi6lab_fault3 forward oifname ispa-eth1 drop; "
                                                        "add rule ip6 multi6lab_fault3 output oifname ispa-eth1 drop"]
    both = faults.compile_fault(plan, sp, Blackhole(at=0.0, duration=1.0, exit="exa"), 0, 2.0)
    assert both.actions[0].command.count("add rule") == 4
    assert "input iifname ispa-eth1 drop" in both.actions[0].command


def test_flap_loss_and_outage(fig1: Fig1) -> None:
    plan, sp = fig1
    flap = faults.compile_fault(plan, sp, Flap(at=0.0, exit="exa", period=0.2, count=3), 0, 2)
    assert [round(a.at, 2) for a in flap.actions] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    loss = faults.compile_fault(plan, sp, LossBurst(at=0.0, duration=1.0, exit="exa", percent=20), 0, 2)
    assert "numgen random mod 10000 < 2000 drop" in loss.actions[0].command
    out = faults.compile_fault(plan, sp, IspOutage(at=0.0, duration=1.0, isp="ispb"), 0, 2.0)
    # Every link of the ISP at one instant: one ip process for all of them.
    assert out.actions[0].command == ("printf '%s\\n' 'link set dev ispb-eth1 down' 'link set dev ispb-eth0 down' "
                                      "| ip -batch -") and out.exits == {"exb"}
    assert "ip -6 route replace" in out.actions[1].command


def test_report_table_and_plot(tmp_path: Path) -> None:
    summary = {"scenario": "demo", "approach": "nptv6", "trigger": "link", "fault": "link_down exa isp end",
               "trials": 3, "metrics": {
                   "outbound": {"outage_ms": {"p50": 7.0, "p95": 9.5, "max": 10.0},
                                "lost_packets": {"p50": 7, "max": 9}},
                   "inbound": {"outage_ms": None, "reason": "not recovered",
                               "lost_packets": {"p50": 1000, "max": 1000}},
                   "detection_ms": {"p50": 5.0, "p95": 6.0, "max": 7.0},
                   "tcp_sessions": {"survived": 0, "total": 3}, "new_session_ms": None, "false_rehomings": 0}}
    md = report.markdown([summary])
    assert "| demo | nptv6 | link | link_down exa isp end | 3 | — | 7.0 / 9.5 | — (not recovered) | 7 / 1000 |" in md
    summary["metrics"]["rtt_ms"] = {"p50": 50.412, "p95": 50.9, "max": 51.0}  # type: ignore[index]
    assert "| 3 | 50.41 | 7.0 / 9.5 |" in report.markdown([summary])  # the RTT the figures were read at
    del summary["metrics"]["rtt_ms"]  # type: ignore[attr-defined]
    (tmp_path / "run1").mkdir()
    (tmp_path / "run1" / "summary.json").write_text(__import__("json").dumps(summary))
    assert report.collect(tmp_path) == [{**summary, "folder": "run1"}]  # where each run lives, for the index
    out = tmp_path / "t.png"
    plots.timeline([{"t": [float(x) for x in range(-500, 2000) if not 0 <= x < 8], "restore_ms": 1000.0}], "demo", out)
    assert out.read_bytes()[:4] == b"\x89PNG" and b"<svg" in out.with_suffix(".svg").read_bytes()[:400]
    one = {"t": [float(x) for x in range(-500, 2000) if not 0 <= x < 8], "restore_ms": 1000.0, "trial": 7}
    plots.trial_timeline({"outbound": one, "inbound": one}, "demo, trial 7", tmp_path / "trial-07" / "timeline.svg")
    svg = (tmp_path / "trial-07" / "timeline.svg").read_text()
    assert "trial 7" in svg and "inbound, around the fault" in svg
    assert not (tmp_path / "trial-07" / "timeline.png").exists()  # SVG only: the report is what opens it


def test_comparison_file_expands_to_valid_scenarios() -> None:
    from multi6lab.scenarios import compare

    cells = compare.load(COMPARISON, trials=3)
    assert len(cells) == 20 and {c.scenario.trials for c in cells} == {3}
    # Every row has its 'no fault' cell: nothing broken, its own trial count unless --trials says otherwise.
    quiet = [c for c in cells if c.fault == compare.NO_FAULT]
    assert len(quiet) == 5 and all(c.scenario.faults[0].kind == "baseline" for c in quiet)
    assert {c.scenario.trials for c in compare.load(COMPARISON) if c.fault == compare.NO_FAULT} == {20}
    assert {c.scenario.trials for c in compare.load(COMPARISON) if c.fault != compare.NO_FAULT} == {72}
    idloc = next(c for c in cells if c.row.startswith("id-loc") and c.fault == "link down")
    assert idloc.scenario.faults == (LinkDown(at=0.0, duration=1.0, exit="s1ea", end="isp"),)
    assert idloc.scenario.remote == "h2"
    assert {s.approach for s in idloc.scenario.effective.sites} == {Approach.ID_LOC}  # both ends managed
    assert {c.row for c in cells if c.row.startswith("routing")} == {"routing × bgp 60/180 s, bfd 10 ms x3"}
    assert len({c.slug for c in cells}) == 20
    # The BGP timer sweep: one row per setting, each named, the slow ones with a longer cap on the fault.
    timers = compare.load(COMPARISON.with_name("routing-timers.yaml"), trials=3)
    assert {c.row for c in timers} == {"routing × bgp 60/180 s", "routing × bgp 1/3 s",
                                       "routing × bgp 60/180 s, bfd 300 ms x3"}
    slow = next(c for c in timers if c.slug == "routing-bgp-1-3-silent-blackhole")
    assert slow.scenario.faults[0] == Blackhole(at=0.0, duration=5.0, exit="exa", direction="both")
    assert slow.scenario.record_s == 6.0
    assert slow.scenario.effective.site("site").bgp == Bgp(keepalive_s=1, hold_s=3)
    assert len({c.slug for c in timers}) == 12


def test_a_cell_written_out_reruns_as_the_same_scenario(tmp_path: Path) -> None:
    from multi6lab.scenarios import compare

    cell = next(c for c in compare.load(COMPARISON) if c.slug == "routing-bfd-10-link-down")
    again = model.load(compare.write(cell, tmp_path))
    assert again.faults == cell.scenario.faults and again.effective == cell.scenario.effective


@pytest.mark.parametrize(("change", "where"), [
    # A problem in a cell is reported where the comparison file says it, never at a generated file.
    (("site: site, host: h1, remote: r}", "site: nowhere, host: h1, remote: r}"),
     r"approaches.yaml:14:99: rows\[0\]\.site: no site 'nowhere'"),
    (("direction: inbound, at: 0.0", "direction: sideways, at: 0.0"),
     r"approaches.yaml:\d+:\d+: faults.inbound blackhole.direction: 'sideways' is not one of"),
    (("direction: inbound, at: 0.0", "end: isp, at: 0.0"),
     r"approaches.yaml:\d+:\d+: faults.inbound blackhole.end: 'end' does not apply to a blackhole fault"),
    (("{approach: mptcp, triggers: [link, heartbeat]", "{approach: mptcp, triggers: [routing]"),
     r"approaches.yaml:16:23: rows\[2\]\.triggers: figure1.yaml cannot run as this scenario asks: trigger 'routing'"),
    (("trials: 72", "trials: many"), r"approaches.yaml:8:9: trials: 'many' is not of type 'integer'"),
    (("baseline_trials: 20", "baseline_trials: 0"),
     r"approaches.yaml:11:18: baseline_trials: 0 is less than the minimum of 1"),
    (("{approach: id-loc,", "{name: routing-bfd-10, approach: id-loc,"),
     r"approaches.yaml:\d+:\d+: rows\[4\]\.name: rows\[3\] is already named 'routing-bfd-10'"),
])
def test_comparison_problems_point_into_the_comparison_file(tmp_path: Path, change: tuple[str, str],
                                                             where: str) -> None:
    from multi6lab.scenarios import compare

    text = COMPARISON.read_text()
    assert change[0] in text
    # Same depth as in the project, so the relative topology paths (and so every column) stay as written,
    # wherever the checkout lives.
    (tmp_path / "topologies").symlink_to(ROOT / "topologies")
    bad = tmp_path / "scenarios" / "comparisons" / "approaches.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text(text.replace(change[0], change[1], 1))
    with pytest.raises(InputError, match=where):
        compare.load(bad)


def test_a_field_of_another_fault_kind_is_an_error_at_its_line(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(f"name: x\ntopology: {ROOT}/topologies/figure1.yaml\nfaults:\n"
                 "  - {kind: link_down, exit: exa, direction: inbound}\n")
    with pytest.raises(InputError, match=r"s.yaml:4:\d+: faults\[0\]\.direction: 'direction' does not apply to a "
                                         r"link_down fault \(its fields: at, duration, exit, end\)"):
        model.load(f)


def test_comparison_table_and_chart(tmp_path: Path) -> None:
    from multi6lab.results import comparison

    def summ(out: float | None, tcp: int, reason: str | None = None) -> dict[str, object]:
        o = {"p50": out, "p95": out, "max": out} if out is not None else None
        return {"metrics": {"outbound": {"outage_ms": o}, "inbound": {"outage_ms": None, "reason": reason},
                            "tcp_sessions": {"survived": tcp, "total": 2, "stall_ms": {"p50": 9.0}},
                            "new_session_ms": {"p50": 201.0}}}

    cells = {("nptv6 × link", "link down"): summ(7.0, 0, "not recovered before the restore at +2000 ms"),
             ("id-loc × link", "link down"): summ(8.0, 2)}
    cells[("id-loc × link", "link down")]["metrics"]["steps"] = {  # type: ignore[index]
        "outbound": {"detection_ms": {"p50": 3.2}, "decision_ms": {"p50": 0.1}, "install_ms": {"p50": 1.4}},
        "inbound": {"detection_ms": {"p50": 4.0}, "decision_ms": {"p50": 1.0}, "install_ms": None}}
    md = comparison.markdown(["nptv6 × link", "id-loc × link"], ["link down"], cells)
    assert ("| id-loc × link | out 8.0 / 8.0<br>in not recovered<br>TCP 2/2, stall p50 9 ms<br>new 201 ms<br>"
            "out repair 3 + 0 + 1 ms<br>in repair 4 + 1 + — ms |") in md
    assert "| nptv6 × link | out 7.0 / 7.0<br>in not recovered within 2.0 s<br>" in md
    assert comparison.common_cap(cells) == 4000.0  # every n/r at one height, above the 2 s restore
    cells[("nptv6 × link", "link down")]["metrics"]["outbound"]["outage_ms"].update(  # type: ignore[index]
        p95_ci=[6.0, None], not_recovered=3)
    cells[("nptv6 × link", "link down")]["metrics"]["new_session_ms"]["not_recovered"] = 2  # type: ignore[index]
    md = comparison.markdown(["nptv6 × link"], ["link down"], cells)
    assert "out 7.0 / 7.0 [p95 ≥ 6.0] (3 n/r)" in md and "new 201 ms (2 n/r)" in md
    cells[("nptv6 × link", "link down")]["metrics"]["outbound"]["capture_disagreement_ms"] = {  # type: ignore[index]
        "max": 3.5, "flagged": 1}
    assert "capture disagrees: out up to 3.5 ms in 1 trials" in comparison.markdown(["nptv6 × link"], ["link down"],
                                                                                    cells)
    assert comparison.as_json(["nptv6 × link"], ["link down"], cells)["cells"][0]["fault"] == "link down"
    # A baseline cell says how finely its row can be read: the probes' inter-arrival p99.9, both directions.
    quiet = summ(0.0, 2)
    quiet["fault"] = "baseline (nothing broken)"
    quiet["metrics"]["outbound"]["interarrival_p999_ms"] = {"p50": 1.24, "p95": 1.91}  # type: ignore[index]
    quiet["metrics"]["inbound"]["interarrival_p999_ms"] = {"p50": 1.5, "p95": 2.26}  # type: ignore[index]
    md = comparison.markdown(["nptv6 × link"], ["no fault"], {("nptv6 × link", "no fault"): quiet})
    assert "resolution (inter-arrival p99.9 p50 / p95 ms): out 1.2 / 1.9, in 1.5 / 2.3" in md
    assert "resolution" not in comparison.cell_text(cells[("nptv6 × link", "link down")])
    comparison.chart(["nptv6 × link", "id-loc × link"], ["link down"], cells, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_a_cell_whose_p95_fell_on_a_trial_that_never_recovered_reads_more_than_the_fault(tmp_path: Path) -> None:
    from multi6lab.results import comparison, report

    censored = {"p50": 9.0, "p95": 1990.0, "max": 1990.0, "p95_ci": [12.0, None], "censored": ["p95", "max"],
                "not_recovered": 5}
    cell = {"scenario": "x", "approach": "nptv6", "trigger": "link", "trials": 72,
            "metrics": {"outbound": {"outage_ms": censored, "lost_packets": None},
                        "inbound": {"outage_ms": {"p50": 7.0, "p95": 8.0, "max": 9.0}, "lost_packets": None},
                        "detection_ms": None}}
    assert "out 9.0 / > 1.99 s (5 n/r)" in comparison.cell_text(cell) and "new —" in comparison.cell_text(cell)
    cell["metrics"]["new_session_ms"] = {"p50": 1000.0, "p95": 1000.0, "censored": ["p50", "p95"],  # type: ignore[index]
                                         "not_recovered": 40}
    assert "new > 1 s (40 n/r)" in comparison.cell_text(cell)
    assert "9.0 / > 1.99 s (5 not recovered)" in report.row(cell)
    comparison.chart(["nptv6 × link"], ["blackhole"], {("nptv6 × link", "blackhole"): cell}, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_the_internet_comparison_runs_the_same_paths_at_two_round_trips_with_the_witness(tmp_path: Path) -> None:
    from multi6lab.scenarios import compare

    cells = compare.load(COMPARISON.with_name("internet.yaml"), trials=3)
    assert len(cells) == 40 and all(c.scenario.traffic.witness for c in cells)

    def rtt(cell: compare.Cell, path: list[tuple[str, str]]) -> float:
        links = {frozenset((lk.a.node, lk.b.node)): lk.delay_ms or 0.0 for lk in cell.scenario.effective.links}
        return 2 * sum(links[frozenset(p)] for p in path)

    via_a = [("exa", "ispa"), ("ispa", "core"), ("core", "r")]
    near, far = (next(c for c in cells if c.slug == f"nptv6-rtt{n}-link-down") for n in (20, 100))
    assert (rtt(near, via_a), rtt(far, via_a)) == (20.0, 100.0)
    assert rtt(far, [("exb", "ispb"), ("ispb", "core"), ("core", "r")]) == 160.0  # the alternative is longer
    idloc = next(c for c in cells if c.slug == "id-loc-rtt100-link-down")
    assert rtt(idloc, [("s1ea", "ispa"), ("ispa", "core"), ("core", "ispc"), ("ispc", "s2ec")]) == 100.0
    # A profile no link of the topology takes is an error at the scenario's key.
    bad = tmp_path / "s.yaml"
    bad.write_text(f"name: x\ntopology: {ROOT}/topologies/figure1-internet.yaml\nprofiles:\n  lan: {{delay_ms: 1}}\n"
                   "faults:\n  - {kind: link_down, exit: exa, at: 0.0, duration: 1.0}\n")
    with pytest.raises(InputError, match=r"s.yaml:4:\d+: profiles\.lan: no link of figure1-internet.yaml takes path "
                                         r"profile 'lan' \(they take: access, longhaul, server, transit\)"):
        model.load(bad)


def test_isp_uplink_down_takes_the_isps_core_links_and_restores_routes(fig1: Fig1) -> None:
    plan, sp = fig1
    c = faults.compile_fault(plan, sp, IspUplinkDown(at=0.0, duration=1.0, exit="exa"), 0, 2.0)
    assert c.actions[0].node == "ispa" and c.actions[0].command == "ip link set ispa-eth0 down"
    assert "ip -6 route replace 3fff:ff::/48 via 3fff:a:0:1::2 dev ispa-eth0" in c.actions[1].command


def test_repeat_counts_passes_per_test_worst_first(tmp_path: Path) -> None:
    from multi6lab.results import repeat

    def run(failing: bool) -> str:
        bad = '<failure message="timed out after 5 s waiting for X&#10;more">trace</failure>' if failing else ""
        return ('<testsuites><testsuite><testcase classname="tests.a" name="test_ok"/>'
                f'<testcase classname="tests.a" name="test_flaky">{bad}</testcase>'
                '<testcase classname="tests.a" name="test_skip"><skipped/></testcase></testsuite></testsuites>')

    files = []
    for i, failing in enumerate((False, True, False)):
        files.append(tmp_path / f"run-{i}.xml")
        files[-1].write_text(run(failing))
    assert repeat.main([str(f) for f in files]) == 1  # a test failed once: the repeat fails
    text = (tmp_path / "summary.md").read_text()
    assert text.splitlines()[0] == "3 runs; 1 of 3 tests failed at least once"
    assert text.splitlines()[4] == "| tests.a::test_flaky | 2/3 | 1 | 0 | timed out after 5 s waiting for X |"
    assert "| tests.a::test_ok | 3/3 | 0 | 0 |  |" in text
    files[1].write_text(run(False))
    assert repeat.main([str(f) for f in files]) == 0
    files[2].write_text("<not xml")
    assert repeat.main([str(f) for f in files]) == 1  # an unreadable report is not a pass


def test_a_failed_cell_reads_as_failed_and_is_left_out_of_the_chart(tmp_path: Path) -> None:
    from multi6lab.results import comparison

    ok = {"metrics": {"outbound": {"outage_ms": {"p50": 7.0, "p95": 9.0, "max": 9.5}},
                      "inbound": {"outage_ms": {"p50": 8.0, "p95": 9.0, "max": 9.5}}}}
    cells = {("nptv6 × link", "link down"): ok,
             ("nptv6 × link", "blackhole"): {"scenario": "x", "error": "EnvError: timed out | waiting\nmore"}}
    md = comparison.markdown(["nptv6 × link"], ["link down", "blackhole"], cells)
    assert "failed: EnvError: timed out / waiting |" in md  # one line, no stray table separator
    comparison.chart(["nptv6 × link"], ["link down", "blackhole"], cells, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_a_fault_a_row_never_noticed_charts_as_a_stub(tmp_path: Path) -> None:
    """A 0 ms p95 with a 0 ms interval (mptcp's outbound under an inbound blackhole) sits below the log axis
    floor; its whisker must not come out negative, which matplotlib refuses."""
    from multi6lab.results import comparison

    zero = {"p50": 0.0, "p95": 0.0, "max": 0.0, "p95_ci": [0.0, 0.0]}
    cells = {("mptcp × link", "inbound blackhole"): {"metrics": {"outbound": {"outage_ms": zero},
                                                                  "inbound": {"outage_ms": zero}}}}
    comparison.chart(["mptcp × link"], ["inbound blackhole"], cells, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_progress_says_elapsed_and_time_to_go() -> None:
    from multi6lab.results.progress import Progress, clock

    p = Progress(total=20, started=100.0)
    assert p.status(0, 100.0) == "0/20 · 00:00 elapsed · estimating"
    assert p.status(5, 160.0) == "5/20 · 01:00 elapsed · about 03:00 to go"  # 12 s a trial, 15 left
    assert p.status(10, 220.0, bar=True, width=10) == "[#####.....] 10/20 · 02:00 elapsed · about 02:00 to go"
    assert clock(3 * 3600 + 62) == "3:01:02" and clock(-5) == "00:00"


def test_each_trial_shifts_its_faults_by_a_seeded_phase_over_every_schedule() -> None:
    sc = model.load(ROOT / "scenarios" / "idloc-blackhole.yaml")
    assert sc.phase_span_s == pytest.approx(0.050)  # the new-connection attempts have the longest period
    phases = [sc.phase(k) for k in range(1, 201)]
    assert phases == [sc.phase(k) for k in range(1, 201)]  # same seed, same schedule
    assert all(0 <= p <= 0.050 for p in phases) and min(phases) < 0.005 and max(phases) > 0.045
    other = dataclasses.replace(sc, seed=sc.seed + 1)
    assert [other.phase(k) for k in range(1, 6)] != phases[:5]
    quiet = dataclasses.replace(sc, traffic=dataclasses.replace(sc.traffic, new_sessions=False))
    assert quiet.phase_span_s == pytest.approx(0.010)  # then the heartbeat's and the TCP records' 10 ms


def test_a_comparison_runs_its_cells_in_a_seeded_shuffle() -> None:
    from multi6lab.scenarios import compare

    cells = compare.load(COMPARISON)
    order = compare.run_order(cells, 1)
    assert sorted(c.slug for c in order) == sorted(c.slug for c in cells)  # every cell, once
    assert [c.slug for c in order] == [c.slug for c in compare.run_order(cells, 1)]  # the same seed, the same order
    assert [c.slug for c in order] != [c.slug for c in cells]
    assert [c.slug for c in compare.run_order(cells, None)] == [c.slug for c in cells]


def test_a_comparison_can_run_only_some_of_its_rows() -> None:
    from multi6lab.scenarios import compare

    cells = compare.load(ROOT / "scenarios" / "comparisons" / "idloc.yaml")
    picked = compare.only_rows(cells, ["id-loc-2x2"])
    assert picked and {c.name for c in picked} == {"id-loc-2x2"}
    assert [c.slug for c in picked] == [c.slug for c in cells if c.name == "id-loc-2x2"]  # every fault, in order
    with pytest.raises(ValueError, match=r"no row is named 'id-loc-9x9' .*id-loc-3x2-from-2"):
        compare.only_rows(cells, ["id-loc-2x2", "id-loc-9x9"])


def test_rows_that_read_alike_are_told_apart_by_their_names() -> None:
    from multi6lab.scenarios import compare

    rows = {c.row for c in compare.load(ROOT / "scenarios" / "comparisons" / "idloc.yaml")}
    assert rows == {"id-loc × link+heartbeat · id-loc-2x2", "id-loc × link+heartbeat · id-loc-3x2-from-3",
                    "id-loc × link+heartbeat · id-loc-3x2-from-2"}
    assert "nptv6 × link+heartbeat" in {c.row for c in compare.load(COMPARISON)}  # unique labels stay as they are


def test_a_row_may_freeze_the_controllers_and_its_cells_say_so(tmp_path: Path) -> None:
    from multi6lab.scenarios import compare

    cells = compare.load(ROOT / "scenarios" / "comparisons" / "dataplane.yaml")
    frozen = {c.row: c.scenario.frozen for c in cells}
    assert frozen == {"nptv6 × link+heartbeat": False, "nptv6 × link+heartbeat, controllers frozen": True,
                      "id-loc × link+heartbeat": False, "id-loc × link+heartbeat, controllers frozen": True}
    cell = next(c for c in cells if c.scenario.frozen)
    assert model.load(compare.write(cell, tmp_path)).frozen  # a cell written out reruns frozen too


def test_the_headline_table_is_the_comparison_in_brief_with_round_trips_where_the_path_has_them() -> None:
    from multi6lab.results import comparison

    def cell(out: float | None, into: float | None, rtt: float, censored: tuple[str, ...] = ()) -> dict[str, object]:
        def o(v: float | None) -> dict[str, object] | None:
            return None if v is None else {"p50": v, "p95": v * 2, "censored": list(censored)}
        return {"metrics": {"outbound": {"outage_ms": o(out)}, "inbound": {"outage_ms": o(into)},
                            "tcp_sessions": {"survived": 3, "total": 4}, "rtt_ms": {"p50": rtt}}}

    rows, faults = ["id-loc × link", "nptv6 × link"], ["no fault", "link down"]
    cells = {("id-loc × link", "link down"): {**cell(150.0, 200.0, 100.0), "detection_bound_ms": 50.0},
             ("nptv6 × link", "link down"): cell(7.0, None, 1.2),
             ("id-loc × link", "no fault"): cell(0.0, 0.0, 100.0)}
    md = comparison.headline(rows, faults, cells)
    assert md.splitlines()[0] == "| approach × trigger | link down |"  # nothing broke in 'no fault'
    assert ("| id-loc × link | out 150 / 300 (3.0× bound, 1.5 RTT)<br>in 200 / 400 (4.0× bound, 2.0 RTT)<br>"
            "TCP 3/4 |") in md
    assert "| nptv6 × link | out 7 / 14<br>in —<br>TCP 3/4 |" in md  # a 1 ms path: no ratio worth giving
    censored = comparison.headline(["id-loc × link"], ["link down"],
                                   {("id-loc × link", "link down"): cell(1000.0, 9.0, 100.0, ("p50", "p95"))})
    assert "out > 1 s / > 2 s<br>" in censored and "(10.0 RTT)" not in censored


def test_a_scenario_s_detection_bound_is_the_slowest_timeout_its_triggers_wait_for_silence() -> None:
    from multi6lab.scenarios.model import Overrides

    sc = model.load(ROOT / "scenarios" / "blackhole-heartbeat.yaml")
    site = sc.effective.site(sc.site)
    assert sc.detection_bound_ms == site.heartbeat.interval_ms * site.heartbeat.multiplier
    link_only = dataclasses.replace(sc, effective=Overrides(triggers=(Trigger.LINK,)).apply(sc.topology, sc.site))
    assert link_only.detection_bound_ms is None  # the link trigger fires on an event, not a timeout
    assert model.load(ROOT / "scenarios" / "routing-bfd-blackhole.yaml").detection_bound_ms == 30.0
