"""An ISP outage over N sites (pure part): pooling per N, the table and the curve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multi6lab.results import scaleoutage
from multi6lab.results.analysis import Arrival


def rows(n: int, trials: list[list[float | None]]) -> list[dict[str, object]]:
    return [{"n": n, "trial": k, "site": f"s{i}", "outage_ms": v, "reason": None if v is not None else "not recovered"}
            for k, outs in enumerate(trials, start=1) for i, v in enumerate(outs)]


def test_summarise_pools_sites_and_trials_per_n_and_keeps_the_slowest_site() -> None:
    data = rows(1, [[10.0], [12.0]]) + rows(2, [[10.0, 30.0], [11.0, None]])
    s = scaleoutage.summarise(data)
    assert list(s) == [1, 2]
    assert s[1]["site_trials"] == 2 and s[1]["trials"] == 2 and s[1]["not_recovered"] == 0
    assert s[1]["outage_ms"]["max"] == 12.0
    assert s[2]["site_trials"] == 4 and s[2]["not_recovered"] == 1 and s[2]["outage_ms"]["not_recovered"] == 1
    # The slowest site of trial 1 took 30 ms; in trial 2 one site never recovered, so that trial has no value.
    assert s[2]["slowest_site_ms"]["max"] == 30.0 and s[2]["slowest_site_ms"]["not_recovered"] == 1


def test_sites_that_never_recovered_count_as_longer_than_the_outage() -> None:
    """Censoring: 2 of 20 site-trials were still down when the 2 s outage ended. They count as longer than it
    in the pooled p95 and in their trials' slowest site, instead of leaving a p95 of the sites that made it."""
    data = rows(10, [[10.0 + i for i in range(10)], [10.0] * 8 + [None, None]])
    for r in data:
        if r["outage_ms"] is None:
            r["above_ms"] = 1990.0
    s = scaleoutage.summarise(data)[10]
    assert s["outage_ms"]["p95"] == 1990.0 and "p95" in s["outage_ms"]["censored"]
    assert s["slowest_site_ms"]["max"] == 1990.0 and "max" in s["slowest_site_ms"]["censored"]
    assert "| > 1.99 s [≥ 18.0] | > 1.99 s | > 1.99 s | 2 |" in scaleoutage.markdown({10: s})  # p95, max, slowest p50


def test_the_first_probe_after_an_outage_tells_a_held_datapath_from_a_slow_choice() -> None:
    period = 0.005
    before = [Arrival(i, i * period, i * period + 0.003) for i in range(10)]
    # Probes 10-14 were lost on the dead path; 15 was sent 25 ms after 10 but arrived 60 ms after it was sent.
    held = [Arrival(15, 0.075, 0.135), Arrival(16, 0.080, 0.136), Arrival(17, 0.085, 0.137)]
    arrivals = before + held
    assert scaleoutage.transits(arrivals, 0.05, (0.048, 0.135)) == (3.0, 60.0)
    assert scaleoutage.transits(arrivals, 0.05, None) == (3.0, None)
    data = [{"n": 20, "trial": 1, "site": "s0", "outage_ms": 87.0, "reason": None, "transit_ms": 3.0,
             "back_transit_ms": 60.0}]
    assert scaleoutage.markdown(scaleoutage.summarise(data)).splitlines()[2].endswith("| 60.0 (3.0) |")


def test_markdown_and_draw(tmp_path: Path) -> None:
    s = scaleoutage.summarise(rows(1, [[10.0]] * 80) + rows(5, [[None] * 5]))
    text = scaleoutage.markdown(s)
    assert "| 1 | 80 | 10.0 [" in text and "| 5 | 5 | — | — | — | — | 5 |" in text
    gave_up = scaleoutage.markdown(s, {20: "timed out waiting for the lab to settle"})
    assert gave_up.endswith("| 20 | lab gave up: timed out waiting for the lab to settle | | | | | | |\n")
    out = tmp_path / "curve.png"
    scaleoutage.draw(out, s, "test")
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_several_runs_load_and_share_one_plot(tmp_path: Path) -> None:
    s = scaleoutage.summarise(rows(1, [[10.0]] * 20) + rows(5, [[30.0] * 5] * 4))
    run = tmp_path / "run"
    run.mkdir()
    (run / "scale-outage.json").write_text(json.dumps({"approach": "nptv6 (link)", "summary": s,
                                                       "failed": {"20": "timed out"}}))
    label, stats, failed = scaleoutage.load_run(run)
    assert label == "nptv6 (link)" and list(stats) == [1, 5] and failed == {20: "timed out"}
    assert stats[5]["outage_ms"]["p95"] == 30.0
    out = tmp_path / "all.png"
    scaleoutage.draw_runs(out, [(label, stats, failed), ("id-loc (link)", stats, {})], goal_ms=50)
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match=r"empty/scale-outage\.json: not a scale-outage run"):
        scaleoutage.load_run(tmp_path / "empty")


def test_the_plot_command_names_a_folder_that_holds_no_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    from multi6lab.cli import main

    assert main(["scale-outage-plot", str(tmp_path), "-o", str(tmp_path / "x.png")]) == 1
    assert f"{tmp_path}/scale-outage.json: not a scale-outage run's results" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    assert main(["scale-outage-plot", str(tmp_path), "--label", "a", "--label", "b", "-o", "x.png"]) == 1
    assert "2 labels for 1 runs" in capsys.readouterr().err
