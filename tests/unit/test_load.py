"""What a topology asks of the emulating machine, and the one sentence a lab past the measured envelope gets
(topologies.load): from validate, and appended to a bring-up that timed out on the userspace datapath."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multi6lab.cli import main
from multi6lab.topologies import generate, load, loader
from multi6lab.vocabulary import Trigger

ROOT = Path(__file__).resolve().parents[2]


def sites(n: int, heartbeat_ms: float | None = None, triggers: tuple[Trigger, ...] = (Trigger.LINK, Trigger.HEARTBEAT)):
    shape = generate.Shape(sites=n, isps=4, heartbeat_ms=heartbeat_ms, triggers=triggers)
    return loader.loads(generate.dumps(shape), "generated.yaml")


def test_the_heartbeat_rate_counts_each_exit_of_each_heartbeat_site() -> None:
    assert load.heartbeat_rate(sites(20)) == 20 * 2 * 100  # dual-homed, 10 ms: the default
    assert load.heartbeat_rate(sites(20, 50)) == 20 * 2 * 20
    assert load.heartbeat_rate(sites(20, triggers=(Trigger.LINK,))) == 0
    assert load.heartbeat_rate(loader.load(ROOT / "topologies" / "figure1.yaml")) == 200


def test_what_came_up_gets_no_advice_and_what_did_not_gets_the_interval_that_would() -> None:
    assert load.advice(sites(20), 20) is None  # 4,000 probes a second, 20 controllers: measured to hold
    said = load.advice(sites(30), 30)
    assert said is not None and "6,000 heartbeat probes a second" in said
    assert "interval_ms to 15 or more" in said  # 30 x 2 x 1000/15 = 4,000
    assert "30 controller processes" in said
    assert load.heartbeat_rate(sites(30, 15)) <= load.PROBES_HELD
    assert load.advice(sites(30, 15), 1) is None  # one shared controller, probes within the envelope


def test_validate_notes_a_topology_past_the_envelope_and_still_accepts_it(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(generate.dumps(generate.Shape(sites=30, isps=4)))
    assert main(["validate", str(big)]) == 0
    assert "note: its sites send 6,000 heartbeat probes a second" in capsys.readouterr().out
    assert main(["validate", "--json", str(big), str(ROOT / "topologies" / "figure1.yaml")]) == 0
    verdicts = json.loads(capsys.readouterr().out)
    assert "interval_ms to 15" in verdicts[0]["advice"] and verdicts[1]["advice"] is None
