"""An ISP outage over N sites (pure part): pooling per N, the table and the curve."""

from __future__ import annotations

from pathlib import Path

from multi6lab.results import scaleoutage


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


def test_markdown_and_draw(tmp_path: Path) -> None:
    s = scaleoutage.summarise(rows(1, [[10.0]] * 80) + rows(5, [[None] * 5]))
    text = scaleoutage.markdown(s)
    assert "| 1 | 80 | 10.0 [" in text and "| 5 | 5 | — | — | — | — | 5 |" in text
    gave_up = scaleoutage.markdown(s, {20: "timed out waiting for the lab to settle"})
    assert gave_up.endswith("| 20 | lab gave up: timed out waiting for the lab to settle | | | | | |\n")
    out = tmp_path / "curve.png"
    scaleoutage.draw(out, s, "test")
    assert out.read_bytes()[:4] == b"\x89PNG"
