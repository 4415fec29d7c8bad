"""The README's commands, each run as a user runs it but in a reduced form (one trial, one cell), so a broken
target fails CI instead of a user. ``make test`` itself is what CI runs; ``make demo`` is the demo scenario,
run here by ``make scenarios``; ``multi6lab up`` and ``clean`` are exercised by test_lifecycle."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.helpers import PY, ROOT, netem_available

pytestmark = pytest.mark.integration


def make(*args: str, results: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), *args, f"RESULTS={results}"],
                       capture_output=True, text=True, timeout=timeout, env={**os.environ}, check=False)
    assert r.returncode == 0, f"make {' '.join(args)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r


def test_make_scenarios_runs_every_shipped_scenario_to_the_end_and_report_lists_them(tmp_path: Path) -> None:
    make("scenarios", "TRIALS=1", results=tmp_path, timeout=1500)  # 18 scenarios, each a fresh lab
    shipped = sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml"))
    ran = sorted(json.loads(s.read_text())["scenario"] for s in tmp_path.glob("*/summary.json")
                 if not s.parent.is_symlink())  # results/latest points at the last run
    assert ran == shipped
    report = make("report", results=tmp_path, timeout=60).stdout
    assert all(f"| {name} |" in report for name in shipped) and (tmp_path / "report.md").exists()
    # controllers: frozen: over the fault no controller acted, yet the fast-failover groups moved the outbound
    # stream; inbound waits on the controllers, so it stays broken until the link is restored.
    frozen = next(s.parent for s in tmp_path.glob("*/summary.json") if not s.parent.is_symlink()
                  and json.loads(s.read_text())["scenario"] == "idloc-link-down-frozen")
    held = json.loads((frozen / "trial-01" / "controllers-frozen.json").read_text())
    events = [json.loads(line) for f in frozen.glob("controller-*.events.jsonl") for line in f.read_text().splitlines()]
    assert events and not [e for e in events if held["stopped"] < e["t"] < held["continued"]]
    (trial,) = csv.DictReader((frozen / "trials.csv").read_text().splitlines())
    assert trial["outbound_outage_ms"] and not trial["inbound_outage_ms"], trial
    assert "not recovered before the restore" in trial["inbound_reason"]


def test_make_compare_runs_a_comparison(tmp_path: Path) -> None:
    comparison = tmp_path / "small.yaml"
    comparison.write_text(f"""
trials: 1
record_s: 1.2
rows:
  - {{approach: nptv6, triggers: [link], topology: {ROOT}/topologies/figure1.yaml, site: site, host: h1, remote: r}}
faults:
  link down: {{kind: link_down, end: isp, at: 0.0, duration: 0.5}}
""")
    make("compare", f"COMPARISON={comparison}", "TRIALS=1", results=tmp_path, timeout=300)
    (out,) = tmp_path.glob("compare-*")
    cells = json.loads((out / "comparison.json").read_text())["cells"]
    assert [(c["row"], c["fault"]) for c in cells] == [("nptv6 × link", "link down")]
    assert (out / "comparison.png").stat().st_size > 0 and "| nptv6 × link |" in (out / "comparison.md").read_text()
    assert (out / "scenarios" / "nptv6-link-down.yaml").exists()  # the cell, to rerun alone
    page = (out / "comparison.html").read_text()
    assert "href='nptv6-link-down/report.html'" in page and (out / "nptv6-link-down" / "report.html").exists()
    assert (out / "comparison-page.png").read_bytes()[:4] == b"\x89PNG"  # checked in Chromium, screenshot kept


def test_make_soak_samples_resources_after_every_failover(tmp_path: Path) -> None:
    r = make("soak", "TRIALS=4", results=tmp_path, timeout=300)
    (out,) = (d for d in tmp_path.glob("soak-*") if not d.is_symlink())
    v = json.loads((out / "summary.json").read_text())["resources"]
    assert v["trials"] == 4 and v["window"] == 2 and set(v["outages"]) == {"outbound", "inbound"}
    assert {"flows", "groups", "lab_processes", "netns", "controller_rss_kb", "ovs_rss_kb"} <= set(v["counters"])
    assert v["counters"]["flows"]["first"] > 0 and v["counters"]["lab_processes"]["first"] > 0
    rows = (out / "resources.csv").read_text().splitlines()
    assert rows[0].startswith("trial,flows,groups") and len(rows) == 5
    assert "resources after each trial (resources.csv): 4 trials" in r.stdout
    assert r.stdout.rstrip().splitlines()[-1] == f"report: {out / 'report.html'}"  # the report's path comes last


def test_make_upgrade_keeps_the_plain_sessions_of_a_peer_that_gains_support(tmp_path: Path) -> None:
    """Issue 13 (RFC 4177 6.3.5): s2's edge starts without id-loc support, s1 falls back to plain IPv6 with it,
    and h1 opens TCP sessions to h2's locator while probes stream both ways; s2's controller restarts with
    support. Both edges upgrade each other within seconds, every session and probe lives through it, and a
    new session to h2's identity is answered."""
    r = make("upgrade", "TRIALS=1", results=tmp_path, timeout=300)
    (out,) = (d for d in tmp_path.glob("upgrade-*") if not d.is_symlink())
    (row,) = json.loads((out / "upgrade.json").read_text())["rows"]
    assert row["tcp_survived"] == row["tcp_sessions"] == 4
    assert row["udp_lost"] == 0
    assert row["near_upgrade_ms"] < 5000 and row["far_upgrade_ms"] < 5000
    assert None not in (row["plain_after_ms"], row["identity_first_ms"], row["idloc_ms"])
    assert "TCP sessions that lived through the upgrade: 4 of 4" in r.stdout


def test_make_scenario_over_two_servers_rehomes_and_says_so(tmp_path: Path) -> None:
    make("scenario", "SCENARIO=scenarios/demo.yaml", "SERVERS=2", "TRIALS=1", results=tmp_path, timeout=300)
    (out,) = (d for d in tmp_path.glob("demo-*") if not d.is_symlink())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["servers"] == 2 and summary["cluster_links"] == "vxlan"
    assert summary["command"].endswith("--trials 1 --servers 2 --cluster-links vxlan")
    outage = summary["metrics"]["outbound"]["outage_ms"]
    assert outage and outage["p50"] < 200, summary["metrics"]["outbound"]  # the exit rehomed across the tunnels


def test_make_validate_draw_and_clean(tmp_path: Path) -> None:
    out = make("validate", results=tmp_path, timeout=120).stdout
    files = [*(ROOT / "topologies").glob("*.yaml"), *(ROOT / "scenarios").glob("*.yaml"),
             *(ROOT / "scenarios" / "comparisons").glob("*.yaml"), *(ROOT / "scenarios" / "benchmarks").glob("*.yaml")]
    assert all(f"ok: {f.relative_to(ROOT)}" in out for f in files), out
    make("draw", results=tmp_path, timeout=60)
    assert (tmp_path / "figure1.png").read_bytes()[:4] == b"\x89PNG"
    assert "nothing left to clean" in make("clean", results=tmp_path, timeout=60).stdout


def test_make_test_repeat_counts_passes(tmp_path: Path) -> None:
    make("test-repeat", "N=2", "TESTS=tests/integration/test_foundation.py", results=tmp_path, timeout=300)
    summary = json.loads((tmp_path / "test-repeat" / "summary.json").read_text())
    assert summary["runs"] == 2 and summary["tests"]
    assert all(t["passed"] == 2 for t in summary["tests"].values())


def test_compare_goes_on_past_a_failed_cell_and_resume_reruns_only_that_cell(tmp_path: Path) -> None:
    if netem_available():
        pytest.skip("this kernel has netem: the delayed row would run, nothing would fail")
    delayed = tmp_path / "delayed.yaml"  # a lab this kernel cannot build: a delay between switches needs netem
    delayed.write_text((ROOT / "topologies" / "figure1.yaml").read_text().replace(
        '- endpoints: ["sw:eth2", "exa:eth1"]', '- {endpoints: ["sw:eth2", "exa:eth1"], delay_ms: 20}'))
    comparison = tmp_path / "two.yaml"
    comparison.write_text(f"""
trials: 1
record_s: 1.2
rows:
  - {{approach: nptv6, triggers: [link], topology: {delayed}, site: site, host: h1, remote: r}}
  - {{name: plain, approach: nptv6, triggers: [link, heartbeat], topology: {ROOT}/topologies/figure1.yaml,
     site: site, host: h1, remote: r}}
faults:
  link down: {{kind: link_down, end: isp, at: 0.0, duration: 0.5}}
""")
    exe = [str(Path(PY).with_name("multi6lab")), "compare"]
    first = subprocess.run([*exe, str(comparison), "--out", str(tmp_path / "c")], capture_output=True, text=True,
                           timeout=300, check=False)
    assert first.returncode == 1 and "1 of 2 cells failed" in first.stderr, first.stdout + first.stderr
    table = (tmp_path / "c" / "comparison.md").read_text()
    assert "failed: EnvError: link sw:eth2--exa:eth1: a delay between two switches needs the netem qdisc" in table
    assert "| nptv6 × link+heartbeat | out " in table  # the other row ran
    again = subprocess.run([*exe, "--resume", str(tmp_path / "c")], capture_output=True, text=True, timeout=300,
                           check=False)
    assert again.returncode == 1 and "(kept from before)" in again.stdout, again.stdout + again.stderr
    assert again.stdout.count("kept from before") == 1


def test_the_walkthrough_s_topology_and_scenario_run_as_the_readme_says(tmp_path: Path) -> None:
    """What a new user writes by following the README's walkthrough runs: ISP A's silent blackhole is found by
    the heartbeats, and the outbound stream recovers before the fault ends."""
    from tests.unit.test_readme import walkthrough

    files = walkthrough(tmp_path / "mine")
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "multi6lab"), "run", str(files["scenarios"]), "--trials", "1",
                        "--out", str(tmp_path / "run"), "--json"], capture_output=True, text=True, timeout=300,
                       check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (trial,) = csv.DictReader((tmp_path / "run" / "trials.csv").read_text().splitlines())
    assert trial["outbound_outage_ms"] and float(trial["outbound_outage_ms"]) < 1000, trial
    (summary,) = json.loads(r.stdout)  # --json: the answer alone on standard output, the table for people
    assert summary["scenario"] == "mine" and "| mine |" in r.stderr
