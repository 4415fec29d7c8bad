"""Where a lab's bring-up spends its time (issue 15): the step timer and the table and plot over sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from multi6lab.lab.phases import Phases
from multi6lab.results import bringup


def test_steps_nest_under_their_parent_and_add_up_when_run_again(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 1.0, 3.0, 3.5, 10.0, 12.0, 20.0, 20.25])
    monkeypatch.setattr("multi6lab.lab.phases.time.monotonic", lambda: next(clock))
    p = Phases()
    with p("network"), p("nodes"):  # 0 .. 3.5, and within it 1 .. 3
        pass
    with p("ready"):  # 10 .. 12
        pass
    with p("ready"), pytest.raises(RuntimeError):  # 20 .. 20.25, timed though it failed
        raise RuntimeError("a lab that gave up")
    assert p.as_dict(nested=False) == {"network": 3.5, "ready": 2.25}
    assert list(p.as_dict()) == ["network", "network/nodes", "ready"] and p.as_dict()["network/nodes"] == 2.0


def row(label: str, up: float, nodes: int = 9, hold: float = 0.0, timeouts: int | None = None
        ) -> dict[str, object]:
    return {"label": label, "nodes": nodes, "links": 8, "up_s": up, "down_s": 1.0,
            "steps": {"network": up - 1, "ready": 1.0, "teardown": 1.0}, "memory_kb": 51200, "left_kb": 0,
            "ovs_rss_kb": 10240, "controller_rss_kb": 40960, "hold_s": hold, "hold_timeouts": timeouts}


def test_each_size_reports_its_median_bring_up_and_its_slowest_step(tmp_path: Path) -> None:
    stats = bringup.summarise([row("figure1", 3.0), row("figure1", 5.0), row("figure1", 4.0),
                               row("100 sites", 80.0, nodes=404)])
    assert [s["label"] for s in stats] == ["figure1", "100 sites"]
    assert stats[0]["up_s"] == 4.0 and stats[0]["up_max_s"] == 5.0 and stats[0]["memory_mb"] == 50.0
    table = bringup.markdown(stats, {"200 sites": "gave up waiting for heartbeats"})
    assert "| figure1 | 9 | 8 | 4.0 (5.0) | 1.0 | network 3.0 s |" in table
    assert "| 200 sites | lab gave up: gave up waiting for heartbeats |" in table
    bringup.draw(tmp_path / "b.png", stats, "t")
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_a_held_size_reports_the_most_heartbeat_timeouts_any_repeat_saw() -> None:
    stats = bringup.summarise([row("100 sites", 16.0, hold=30.0, timeouts=0),
                               row("100 sites", 17.0, hold=30.0, timeouts=12),
                               row("figure1", 3.0)])
    assert stats[0]["hold_timeouts"] == 12 and stats[1]["hold_timeouts"] is None
    table = bringup.markdown(stats)
    assert table.splitlines()[2].endswith("| 12 in 30 s |")
    assert table.splitlines()[3].endswith("| — |")
