"""The multi6lab command: exit codes and messages users see (no root needed for these)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from multi6lab.cli import main
from multi6lab.experiments.recipe import looked_at

ROOT = Path(__file__).resolve().parents[2]
FIG1 = str(ROOT / "topologies" / "figure1.yaml")


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", FIG1]) == 0
    assert "ok: " in capsys.readouterr().out


def test_validate_broken_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text(Path(FIG1).read_text().replace('"core:eth3"', '"nowhere:eth3"'))
    assert main(["validate", FIG1, str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:" in err and "unknown node 'nowhere'" in err and "Traceback" not in err


def test_nptv6_tool(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nptv6", "--inside", "fd01:203:405::/48", "--outside", "2001:db8:1::/48",
                 "fd01:203:405:1::1234"]) == 0
    assert capsys.readouterr().out.strip() == "fd01:203:405:1::1234 -> 2001:db8:1:d550::1234"
    assert main(["nptv6", "--inside", "fd01:203:405::/48", "--outside", "2001:db8:1::/48", "--reverse",
                 "2001:db8:1:d550::1234"]) == 0
    assert "-> fd01:203:405:1::1234" in capsys.readouterr().out


def test_nptv6_tool_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nptv6", "--inside", "fd00::/48", "--outside", "3fff::/56", "fd00::1"]) == 2
    assert "equal length" in capsys.readouterr().err
    assert main(["nptv6", "--inside", "fd00::/48", "--outside", "3fff::/48",
                 "not-an-address", "fd00:0:0:ffff::1"]) == 1
    err = capsys.readouterr().err
    assert "not-an-address" in err and "0xFFFF" in err


def test_draw_dot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["draw", FIG1]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith('graph "figure1"') and '"exa" -- "ispa"' in dot and "PA 3fff:a::/32" in dot


def test_draw_routing_site_shows_its_pi_prefix_and_bgp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "routing.yaml"
    f.write_text(Path(FIG1).read_text().replace("approach: nptv6", "approach: routing")
                 .replace("[link, heartbeat]", "[routing]"))
    assert main(["draw", str(f)]) == 0
    dot = capsys.readouterr().out
    assert "site (routing; bgp 60/180 s)" in dot and "PI 3fff:5::/48  AS65000" in dot
    assert "exa (BGP router to ispa)" in dot and "3fff:5::6d:ff:fe00:800" in dot


def test_draw_png(tmp_path: Path) -> None:
    pytest.importorskip("shutil").which("dot") or pytest.skip("graphviz not installed (sudo make setup)")
    out = tmp_path / "f.png"
    assert main(["draw", FIG1, "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="checks the message a non-root user gets")
def test_up_without_root_is_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", FIG1, "-c", "h1:true"]) == 1
    err = capsys.readouterr().err
    assert "needs root" in err and "Traceback" not in err


def test_up_with_broken_topology_reports_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "b.yaml"
    bad.write_text("name: x\n")
    assert main(["up", str(bad)]) == 1
    assert "'isps' is required" in capsys.readouterr().err


def test_resume_needs_a_comparison_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "--resume", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"multi6lab: {tmp_path} is not a comparison to resume (no readable compare.json in it)"


def test_an_output_that_cannot_be_written_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["draw", FIG1, "-o", str(tmp_path / "missing" / "x.dot")]) == 1
    err = capsys.readouterr().err
    assert err == f"multi6lab: {tmp_path / 'missing' / 'x.dot'}: No such file or directory\n"


def test_an_atomic_write_leaves_the_old_file_when_it_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from multi6lab.results import report

    f = tmp_path / "summary.json"
    f.write_text("old")
    report.write_atomic(f, "new")
    assert f.read_text() == "new"

    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        report.write_atomic(f, "half")
    assert f.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_controller_for_a_site_that_does_not_exist_is_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["controller", "--topology", str(ROOT / "topologies" / "two-sites.yaml"), "--site", "s9"]) == 2
    assert capsys.readouterr().err == ("multi6lab: --site s9: two-sites has no such site with switches of its own "
                                       "(it has: s1, s2)\n")


def test_report_html_writes_an_index_over_every_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    none = {"outage_ms": None, "lost_packets": None}
    (tmp_path / "run1").mkdir()
    (tmp_path / "run1" / "summary.json").write_text(json.dumps(
        {"scenario": "x", "approach": "nptv6", "trigger": "link", "trials": 1, "started": "2026-11-28",
         "metrics": {"outbound": none, "inbound": none, "detection_ms": None}}))
    assert main(["report", str(tmp_path), "--html"]) == 0
    assert "run1/report.html" in (tmp_path / "index.html").read_text()
    assert capsys.readouterr().out.endswith(f"index: {tmp_path / 'index.html'}\n")


def test_json_answers_are_the_verdicts_and_the_summaries_alone(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    import json

    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(FIG1).read_text().replace('"core:eth3"', '"nowhere:eth3"'))
    assert main(["validate", "--json", FIG1, str(bad)]) == 1
    out = capsys.readouterr()
    good, broken = json.loads(out.out)
    assert good == {"file": FIG1, "ok": True, "kind": "topology", "name": "figure1", "sites": 1, "isps": 2,
                    "nodes": 8, "links": 8, "advice": None}  # within what was measured to come up
    problem = next(p for p in broken["problems"] if "nowhere" in p["message"])
    assert not broken["ok"] and problem["file"] == str(bad) and problem["line"] > 1 and "nowhere" in \
        problem["message"] and out.err == ""
    none = {"outage_ms": None, "lost_packets": None}
    (tmp_path / "run1").mkdir()
    (tmp_path / "run1" / "summary.json").write_text(json.dumps(
        {"scenario": "x", "approach": "nptv6", "trigger": "link", "trials": 1, "started": "2026-11-28",
         "metrics": {"outbound": none, "inbound": none, "detection_ms": None}}))
    assert main(["report", str(tmp_path), "--json"]) == 0
    assert [r["scenario"] for r in json.loads(capsys.readouterr().out)] == ["x"]


def test_scale_model_writes_its_inputs_the_curves_and_a_table(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["scale-model", "--sites-from", "1000", "--sites-to", "100000", "--ttl-s", "60",
                 "-o", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "scale-model.json").read_text())
    assert doc["inputs"]["ttl_s"] == 60 and doc["points"][-1]["sites"] == 100_000
    assert (tmp_path / "scale-model.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "scale-model.svg").exists()
    assert "| 100,000 | 301,000 |" in capsys.readouterr().out
    assert main(["scale-model", "--ttl-s", "0", "--sites-from", "10", "--sites-to", "5", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "ttl_s must be 1 or more" in err and "--sites-from must be" in err and "Traceback" not in err


def test_a_missing_mapping_key_file_is_one_sentence(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    two_sites = str(ROOT / "topologies" / "two-sites.yaml")
    assert main(["controller", "--topology", two_sites, "--site", "s1", "--mapping-key",
                 f"s1={tmp_path / 'nope.key'}"]) == 2
    err = capsys.readouterr().err
    assert "--mapping-key" in err and "cannot read the key" in err and "Traceback" not in err


def test_look_without_a_report_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["look", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == f"multi6lab: no report at {tmp_path / 'report.html'}"


def test_look_without_a_browser_says_what_to_install(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "report.html").write_text("<table></table>")
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium, no chromedriver
    monkeypatch.delenv("CHROMEWEBDRIVER", raising=False)
    assert main(["look", str(tmp_path / "report.html")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("multi6lab: no Chromium on this machine") and "make setup" in err
    # After a run, the same absence is a note and the run still succeeds.
    assert looked_at([(tmp_path / "report.html", tmp_path / "report.png")])
    assert capsys.readouterr().out.startswith("report not checked in a browser: no Chromium")


@pytest.fixture
def no_lab(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests run as root in CI: a case that slipped past the checks must fail, not build a lab."""
    from multi6lab.lab.lifecycle import Lab

    def refuse(self: Lab) -> Lab:
        raise AssertionError("the command reached the lab: its arguments were not refused")

    monkeypatch.setattr(Lab, "__enter__", refuse)


def test_selection_needs_a_remote_host(tmp_path: Path, no_lab: None, capsys: pytest.CaptureFixture[str]) -> None:
    text = Path(FIG1).read_text()
    start = text.index("remotes:")
    lone = tmp_path / "lone.yaml"
    lone.write_text(text[:start] + text[text.index("links:"):].replace('  - endpoints: ["r:eth0", "core:eth3"]\n', ""))
    assert main(["selection", "--load-share-topology", str(lone)]) == 1
    assert "has none ('remotes:')" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--weights", "3,x"], "--weights 3,x: give one whole number per exit"),
    (["--weights", "1,1,1"], "figure1's site has 2 exits; give each a weight of 1 or more"),
    (["--weights", "0,1"], "give each a weight of 1 or more"),
    (["--flows", "0"], "--flows 0: send at least one flow"),
    (["--policy-topology", FIG1], "must give hosts an address per ISP (source-routing or mptcp), not nptv6"),
])
def test_selection_refuses_what_it_cannot_measure_before_any_lab(argv: list[str], message: str, no_lab: None,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["selection", "--load-share-topology", FIG1, *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("argv,message", [
    (["--sites", "1,x"], "--sites 1,x: give site counts separated by commas"),
    (["--sites", "0,5"], "must all be positive"),
    (["--triggers", "link,psychic"], "unknown trigger 'psychic'"),
    (["--approach", "source-routing", "--triggers", "transport"], "trigger 'transport' moves a destination"),
    (["--bfd", "10"], "--bfd is a positive interval in ms, for --approach routing"),
    (["--triggers", "link", "--heartbeat-ms", "100"], "for the heartbeat trigger or id-loc's locator-pair probes"),
])
def test_scale_outage_refuses_bad_arguments_before_any_lab(argv: list[str], message: str, no_lab: None,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scale-outage", *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_run_refuses_one_out_folder_for_several_scenarios(capsys: pytest.CaptureFixture[str], no_lab: None) -> None:
    scenarios = [str(ROOT / "scenarios" / n) for n in ("demo.yaml", "flap.yaml")]
    assert main(["run", *scenarios, "--out", "/tmp/x"]) == 1
    assert "--out names one run's folder" in capsys.readouterr().err


def test_compare_checks_the_machine_once_before_any_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Without Open vSwitch every cell would fail alike: compare says so once and starts none."""
    from multi6lab.lab import emulation
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(emulation, "ovs_running", lambda: False)
    out = tmp_path / "cmp"
    assert main(["compare", str(ROOT / "scenarios/comparisons/approaches.yaml"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("multi6lab: ") and "Traceback" not in err
    assert "Open vSwitch is not running" in err or "Mininet is not importable" in err
    assert not out.exists()


def test_a_detached_lab_is_found_by_name_and_a_stale_one_is_forgotten(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from multi6lab.lab import detached
    from multi6lab.lab.runstate import start_time

    monkeypatch.setattr(detached, "LABS", tmp_path)
    me = detached.Descriptor("office", os.getpid(), start_time(os.getpid()), "/t.yaml", str(tmp_path), 0.0,
                             {"h1": 4242, "sw": None})
    me.save()
    gone = detached.Descriptor("old", 999_999_999, 1, "/t.yaml", str(tmp_path), 0.0)
    gone.save()
    assert list(detached.labs()) == ["office"] and not (tmp_path / "old.json").exists()
    assert detached.find("office") == me
    assert detached.node_argv(me, "h1", ["ip", "-6", "a"]) == ["mnexec", "-a", "4242", "ip", "-6", "a"]
    assert detached.node_argv(me, "sw", ["ovs-ofctl", "show", "sw"]) == ["ovs-ofctl", "show", "sw"]
    with pytest.raises(detached.LabError, match="has no node 'h9'"):
        detached.node_argv(me, "h9", ["true"])
    with pytest.raises(detached.LabError, match=r"no lab called 'lab2' is up \(running: office\)"):
        detached.find("lab2")
    with pytest.raises(detached.LabError, match="use a lower-case letter"):
        detached.check_name("Bad Name")
