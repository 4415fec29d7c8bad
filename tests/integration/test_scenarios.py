"""Issue 4: a short scenario end to end, with pcaps, gives numbers that agree with each other."""

from __future__ import annotations

import contextlib
import csv
import json
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from multi6lab.lab.runner import Runner
from multi6lab.lab.runstate import records
from multi6lab.scenarios import model
from multi6lab.topologies.plan import build
from tests.integration.helpers import ROOT, leftovers

pytestmark = pytest.mark.integration

SCENARIO = """
name: short
topology: {topology}
approach: nptv6
triggers: [link, heartbeat]
trials: 3
warmup_s: 0.4
record_s: 1.2
traffic: {{pcap: true, tcp_sessions: 1, witness: true}}
faults:
  - {{kind: link_down, exit: exa, end: isp, at: 0.0, duration: 0.6}}
"""


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One short nptv6 run (three trials), read by the tests below without changing it."""
    tmp_path = tmp_path_factory.mktemp("short")
    f = tmp_path / "short.yaml"
    f.write_text(SCENARIO.format(topology=ROOT / "topologies" / "figure1.yaml"))
    out = tmp_path / "results" / "short-run"
    return out, Runner(model.load(f), out, progress=lambda m: None).run()


def test_short_scenario_end_to_end(short_run: tuple[Path, dict[str, Any]]) -> None:
    out, summary = short_run
    tmp_path = out.parent.parent
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary
    assert {"scenario", "topology", "approach", "trigger", "trials", "metrics"} <= set(summary)
    m = summary["metrics"]
    assert {"outbound", "inbound", "detection_ms", "tcp_sessions", "new_session_ms"} <= set(m)
    assert (tmp_path / "results" / "latest").resolve() == out.resolve()
    for name in ("timeline-outbound.png", "timeline-inbound.png", "trials.csv", "table.md"):
        assert (out / name).stat().st_size > 0

    with open(out / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3
    # The window opens when the fault's command starts, so a failover that is over before the command returns
    # (the data plane's fast-failover group can beat it) is measured too. One that lost a single probe is below
    # the instrument's resolution of two periods and reads 0 (seen once in three trials).
    measured = [row for row in rows if float(row["outbound_outage_ms"]) > 0]
    assert len(measured) >= 2, rows
    for i, row in enumerate(rows, start=1):
        outage = float(row["outbound_outage_ms"])
        lost = int(row["outbound_lost"])
        assert outage < 600, "the outage must lie inside the fault window (0.6 s)"
        # An outage loses probes. (Not "lost <= outage": lost counts the whole trial, and the failback after the
        # restore may drop a few more; one repeat run saw 14 lost for a 10.6 ms outage that way.)
        assert lost >= 1, f"trial {i}: a link down without a lost probe"
        if row not in measured:
            continue
        # The independent instrument (its own stream, captured in the ISPs' namespaces, read by other code) reads
        # the same outbound outage: within 2 ms either way.
        witnessed = float(row["outbound_witness_outage_ms"])
        said = row["outbound_witness_explanation"]
        if said.startswith("the outbound stream was back at the ISPs' vantage point"):
            # Downstream of the witness's capture (the core, the remote) a packet can still be held after the
            # exits carry the stream again: the witness then sees it back earlier, never later (one run of the
            # suite: 7.3 against 9.9 ms; docs/experiments/comparison.md explains such disagreements).
            assert witnessed < outage, f"trial {i}: witness {witnessed} ms, probes {outage} ms: {said}"
        else:
            assert abs(witnessed - outage) <= 2.0, f"trial {i}: witness {witnessed} ms, probes {outage} ms"
            assert said == ""
        # nptv6 cannot move R's chosen locator: inbound waits for the restore, and says so.
        assert row["inbound_outage_ms"] == "" and row["inbound_reason"].startswith("not recovered before the restore")
    # The witness saw the inbound stream still down at the restore too, as the probes did.
    assert all(r["inbound_witness_outage_ms"] == "" and r["inbound_witness_explanation"] == "" for r in rows), rows
    # The summary counts the disagreements over 2 ms (each explained) that the trials above accepted.
    explained = [r for r in rows if r["outbound_witness_explanation"]]
    assert m["outbound"]["witness"]["over_2ms"] == len(explained) and m["outbound"]["witness"]["capture_dropped"] == 0
    # Censored, not left out: every statistic is "more than the fault", bounded by the restore (0.6 s).
    inbound = m["inbound"]["outage_ms"]
    assert set(inbound["censored"]) >= {"p50", "p95", "max"} and inbound["not_recovered"] == 3, inbound
    assert 500 < inbound["p95"] < 600 and inbound["reason"].startswith("not recovered")
    assert m["detection_ms"]["max"] < 600 and not m["detection_ms"].get("not_recovered")  # every trial, in the fault
    assert 0 < m["rtt_ms"]["p50"] < 5 and all(float(r["rtt_ms"]) > 0 for r in rows)  # no link is delayed here


def test_the_run_report_opens_in_chromium_with_every_picture(short_run: tuple[Path, dict[str, Any]]) -> None:
    """Issue 14: the report is checked in a real browser, and a screenshot is kept with the results."""
    from multi6lab.results import browser

    out, summary = short_run
    try:
        seen = browser.check(out / "report.html", out / "report.png")
    except browser.BrowserUnavailable as exc:
        pytest.skip(f"no browser to check the report in: {exc}")
    assert seen.title.startswith("short") and not seen.broken
    assert seen.images == 2  # the two timelines, both decoded
    # The summary, the trials (a row each, plus the header) and the provenance.
    assert seen.tables == 3 and seen.rows >= summary["trials"] + 1 + 10
    shot = out / "report.png"
    assert shot.read_bytes()[:4] == b"\x89PNG"
    width, height = struct.unpack(">II", shot.read_bytes()[16:24])
    assert width == browser.WIDTH and height > 1500  # the whole page, not the first screen
    # Each trial's row opens that trial's own plot, and the command-line check agrees.
    for k in range(1, summary["trials"] + 1):
        assert f"href='trial-{k:02d}/timeline.svg'" in (out / "report.html").read_text()
        assert b"<svg" in (out / f"trial-{k:02d}" / "timeline.svg").read_bytes()[:400]
    look = subprocess.run([str(Path(sys.executable).with_name("multi6lab")), "look", str(out), "--screenshot",
                           str(out / "look.png")], capture_output=True, text=True, timeout=120)
    assert look.returncode == 0 and "2 images, 3 tables" in look.stdout and (out / "look.png").exists(), look


def test_routing_scenario_recovers_both_directions_and_dates_bgps_detection(tmp_path: Path) -> None:
    f = tmp_path / "routing.yaml"
    f.write_text(f"""
name: routing-short
topology: {ROOT / "topologies" / "figure1.yaml"}
approach: routing
bgp: {{keepalive_s: 60, hold_s: 180, bfd: {{interval_ms: 50, multiplier: 3}}}}
trials: 2
record_s: 1.5
faults:
  - {{kind: blackhole, exit: exa, direction: both, at: 0.0, duration: 1.0}}
""")
    summary = Runner(model.load(f), tmp_path / "out", progress=lambda m: None).run()
    m = summary["metrics"]
    assert summary["trigger"] == "bgp 60/180 s, bfd 50 ms x3"
    # BFD declares the session down after about 3 x 50 ms; BGP then moves both directions to ISP B, well
    # before the 1 s restore. The host keeps its one PI address, so its TCP session survives.
    assert 100 <= m["detection_ms"]["p50"] < 1000  # not before BFD's ~3 x 50 ms, and before the restore
    for direction in ("outbound", "inbound"):  # recovered in every trial while the fault still stood
        assert m[direction]["outage_ms"] is not None and not m[direction]["outage_ms"].get("not_recovered"), \
            m[direction]
    assert m["tcp_sessions"]["survived"] == m["tcp_sessions"]["total"] == 2
    assert (tmp_path / "out" / "frr" / "exa" / "bgpd.log").exists()


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where``: a results disk that fills."""
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_results_disk_without_room_for_a_trial_is_one_sentence(tmp_path: Path) -> None:
    f = tmp_path / "short.yaml"
    f.write_text(SCENARIO.format(topology=ROOT / "topologies" / "figure1.yaml"))
    with small_disk(tmp_path / "disk", "8m") as disk:
        r = subprocess.run([str(Path(sys.executable).with_name("multi6lab")), "run", str(f), "--out",
                            str(disk / "run")], capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r
        assert r.stderr.startswith(f"multi6lab: the results disk is full: {disk / 'run'} has ") and \
            "trial 1 needs about 20 MB" in r.stderr, r.stderr
        assert not (disk / "run" / "summary.json").exists()


def test_a_disk_that_fills_during_a_trial_stops_the_run_without_a_summary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The probes' logs do not fit (the trial's free-space check is lowered to let the trial start): the run
    stops with the reason, writes no summary, and leaves nothing running."""
    from multi6lab.lab import runner
    from multi6lab.lab.emulation import EnvError

    monkeypatch.setattr(runner, "MIN_FREE_MB", 0)
    f = tmp_path / "short.yaml"
    f.write_text(SCENARIO.format(topology=ROOT / "topologies" / "figure1.yaml").replace("pcap: true", "pcap: false"))
    with small_disk(tmp_path / "disk", "300k") as disk:
        sc = model.load(f)
        with pytest.raises((EnvError, OSError)) as err:
            Runner(sc, disk / "run", progress=lambda m: None).run()
        assert "No space left on device" in str(err.value) or "errno 28" in str(err.value).lower(), err.value
        assert not (disk / "run" / "summary.json").exists() and not (disk / "run" / "report.html").exists()
    assert leftovers(build(sc.effective), []) == [] and records() == []  # every process of the run ended
