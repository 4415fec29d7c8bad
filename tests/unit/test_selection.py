"""Locator selection's analysis (pure): flow shares against weights, and a host's source selections."""

from __future__ import annotations

from pathlib import Path

import pytest

from multi6lab.results import selection


def test_wilson_interval_is_sane_at_the_edges_and_in_the_middle() -> None:
    assert selection.wilson(0, 0) == (0.0, 1.0)
    lo, hi = selection.wilson(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    lo, hi = selection.wilson(100, 100)
    assert hi == 1.0 and 0.96 < lo < 0.97  # all of them: the interval still admits a little doubt


def rows(flows: dict[int, list[str]]) -> list[dict[str, str]]:
    return [{"seq": str(n), "source": s} for n, sources in flows.items() for s in sources]


def test_split_reads_each_flow_s_exit_and_checks_the_weights() -> None:
    exit_of = {"3fff:a::1": "exa", "3fff:b::1": "exb"}
    arrived = {n: ["3fff:a::1"] * 3 for n in range(750)} | {n: ["3fff:b::1"] * 3 for n in range(750, 1000)}
    s = selection.split(rows(arrived), exit_of, {"exa": 3, "exb": 1}, sent=1000)
    assert s["lost"] == 0 and s["split_flows"] == 0 and s["foreign"] == 0
    assert s["exits"]["exa"]["flows"] == 750 and s["exits"]["exa"]["expected"] == 0.75 and s["exits"]["exa"]["within"]
    even = selection.split(rows(arrived), exit_of, {"exa": 1, "exb": 1}, sent=1000)
    assert not even["exits"]["exa"]["within"] and not even["exits"]["exb"]["within"]


def test_split_counts_lost_flows_flows_over_two_exits_and_strangers() -> None:
    exit_of = {"3fff:a::1": "exa", "3fff:b::1": "exb"}
    s = selection.split(rows({0: ["3fff:a::1", "3fff:b::1"], 1: ["3fff:a::1"], 2: ["fd00::9"]}), exit_of,
                        {"exa": 1, "exb": 1}, sent=5)
    assert (s["lost"], s["split_flows"], s["foreign"]) == (2, 1, 1)
    assert s["exits"]["exa"]["flows"] == 1 and s["exits"]["exb"]["flows"] == 0
    none = selection.split([], exit_of, {"exa": 1, "exb": 1}, sent=5)
    assert none["lost"] == 5 and none["exits"]["exa"]["share"] is None
    assert "| TCP | exa | 1 | 0.500 | 0 | — (no flow arrived) | no |" in selection.markdown({"tcp": none}, {})


def test_policy_follows_the_selections_through_a_fault() -> None:
    a, b = "3fff:a:5::1", "3fff:b:5::1"
    sel = [(t / 100, a) for t in range(100)]  # 1 s on the preferred prefix
    sel += [(1.0 + t / 100, a if t < 3 else b) for t in range(200)]  # fault at 1.0: 30 ms until it is left
    sel += [(3.0 + t / 100, b if t < 50 else a) for t in range(100)]  # restored at 3.0, back after 0.5 s
    p = selection.policy(sel, 1.0, 3.0, a)
    assert (p["before"], p["before_preferred"]) == (100, 100)
    assert p["moved_ms"] == pytest.approx(30.0) and p["relapses"] == 0
    assert (p["after"], p["after_preferred"]) == (100, 50)
    stuck = selection.policy([(0.5, a), (1.5, a), (2.5, b), (2.6, a)], 1.0, 3.0, a)
    assert stuck["moved_ms"] == 1500.0 and stuck["relapses"] == 1
    assert selection.policy([(0.5, a), (1.5, a)], 1.0, 3.0, a)["moved_ms"] is None


def test_markdown_has_both_tables() -> None:
    exit_of = {"3fff:a::1": "exa", "3fff:b::1": "exb"}
    shares = selection.split(rows({0: ["3fff:a::1"], 1: ["3fff:b::1"]}), exit_of, {"exa": 1, "exb": 1}, sent=2)
    choice = selection.policy([(0.5, "x"), (1.5, "y")], 1.0, 3.0, "x")
    text = selection.markdown({"tcp": shares, "udp": shares}, {"h1": choice, "h2": {**choice, "moved_ms": None}})
    assert "| TCP | exa | 1 | 0.500 | 1 | 0.500 [" in text and "| UDP | exb |" in text
    assert "TCP: 2 flows sent, 0 lost, 0 split over two exits; UDP: 2 flows sent" in text
    assert "| h1 | 1 | 1 | 500.0 | 0 | 0 of 0 |" in text and "| h2 | 1 | 1 | never |" in text


def test_draw_writes_one_picture(tmp_path: Path) -> None:
    exit_of = {"3fff:a::1": "exa", "3fff:b::1": "exb"}
    shares = selection.split(rows({0: ["3fff:a::1"], 1: ["3fff:b::1"], 2: ["3fff:a::1"]}), exit_of,
                             {"exa": 2, "exb": 1}, sent=3)
    out = tmp_path / "selection.png"
    selection.draw(out, {"tcp": shares, "udp": shares}, {"h1": [(-0.5, True), (0.03, False), (2.4, True)]},
                   fault_s=2.0)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
