"""results.soak: what counts as flat, and when the first and last outages agree."""

from __future__ import annotations

import random

from multi6lab.results import soak


def steady(n: int, **over: float) -> list[dict[str, float]]:
    base = {"flows": 40, "groups": 2, "lab_processes": 12, "netns": 14, "controller_fds": 30,
            "controller_rss_kb": 80_000, "ovs_rss_kb": 60_000}
    return [{**base, **over} for _ in range(n)]


def outages(n: int, centre: float, seed: int = 1) -> list[float | None]:
    rng = random.Random(seed)
    return [centre + rng.uniform(-3, 3) for _ in range(n)]


def test_a_steady_soak_is_flat_and_its_outages_agree() -> None:
    v = soak.verdict(steady(500), {"outbound": outages(500, 10.0)})
    assert v["trials"] == 500 and v["window"] == 100 and v["flat"] and v["grew"] == []
    o = v["outages"]["outbound"]
    assert o["agree"] is True and o["first"]["n"] == o["last"]["n"] == 100
    assert o["first"]["p95_ci"][0] <= o["first"]["p95"] <= o["first"]["p95_ci"][1]
    assert v["counters"]["controller_rss_kb"]["growth_per_100_trials"] == 0
    assert "flat" in soak.describe(v) and "agree" in soak.describe(v)


def test_a_rule_or_a_process_more_at_the_end_is_a_leak() -> None:
    samples = steady(250) + steady(250, flows=41, lab_processes=13)
    v = soak.verdict(samples, {"outbound": outages(500, 10.0)})
    assert not v["flat"] and v["grew"] == ["flows", "lab_processes"]
    assert v["counters"]["flows"] == {"first": 40, "last": 41, "flat": False}
    assert "NOT flat: flows, lab_processes" in soak.describe(v)


def test_memory_may_settle_a_little_but_not_grow_steadily() -> None:
    settled = steady(100) + steady(400, controller_rss_kb=81_000)  # +1.25 %: an allocator settling
    assert soak.verdict(settled, {})["flat"]
    leaking = [{**s, "controller_rss_kb": 80_000 + 50 * i} for i, s in enumerate(steady(500))]  # 50 kB a trial
    v = soak.verdict(leaking, {})
    assert v["grew"] == ["controller_rss_kb"]
    assert v["counters"]["controller_rss_kb"]["growth_per_100_trials"] == 5000.0


def test_later_outages_that_got_slower_disagree() -> None:
    v = soak.verdict(steady(500), {"outbound": outages(250, 10.0) + outages(250, 30.0, seed=2)})
    assert v["outages"]["outbound"]["agree"] is False and "DISAGREE" in soak.describe(v)


def test_a_short_run_compares_halves_and_says_when_intervals_are_missing() -> None:
    v = soak.verdict(steady(10), {"outbound": outages(10, 10.0), "inbound": [None] * 10})
    assert v["window"] == 5 and v["outages"]["outbound"]["agree"] is None  # 5 trials: no p95 interval
    assert v["outages"]["inbound"]["first"] == {"p95": None, "p95_ci": [None, None], "n": 0}
    text = soak.describe(v)
    assert "outbound outage p95 first " in text and ", —]: too few trials for intervals" in text
    assert "inbound outage p95 first —, last —: no outage values to compare" in text
    assert soak.verdict([], {}) == {"trials": 0, "flat": None, "outages": {}} and soak.describe({}) == "no trials"
