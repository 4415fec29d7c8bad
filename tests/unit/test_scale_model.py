"""RFC 4177 5.1's scale model: its formulas, its sweep and the inputs it refuses."""

from __future__ import annotations

import math

import pytest

from multi6lab.results import scale_model as S


def test_pi_routing_grows_the_dfz_and_the_edge_approaches_move_the_cost_to_the_mapping_service() -> None:
    x = S.Inputs()
    p = S.point(1_000_000, x)
    assert p.pi_table == 201_000 + 1_000_000 and p.edge_table == 201_000
    # Today's per-prefix churn on the new prefixes, plus each site's failovers heard everywhere.
    assert p.pi_updates_per_day == pytest.approx(100_000 + 1_000_000 * 100_000 / 201_000 + 1_000_000 * 0.1 * 2)
    assert p.edge_updates_per_day == 100_000
    assert p.mapping_records == 1_000_000 * (3 + 2 * 2)  # registry PTR + 2 APL, LP + L64 per locator
    assert p.mapping_queries_per_s == pytest.approx(1_000_000 * 100 * 3 / 300)
    assert S.point(2_000_000, x).mapping_queries_per_s == pytest.approx(2 * p.mapping_queries_per_s)  # linear


def test_the_sweep_is_even_on_a_log_scale_and_the_table_keeps_the_decades() -> None:
    points = S.sweep(S.Inputs(), 1_000, 100_000, per_decade=2)
    assert [p.sites for p in points] == [1_000, 3_162, 10_000, 31_623, 100_000]
    rows = S.table(points).splitlines()[2:]
    assert [r.split("|")[1].strip() for r in rows] == ["1,000", "10,000", "100,000"]
    doc = S.as_json(S.Inputs(ttl_s=60), points)
    assert doc["inputs"]["ttl_s"] == 60 and len(doc["points"]) == 5


def test_impossible_inputs_are_named() -> None:
    assert S.Inputs().problems() == []
    bad = S.Inputs(ttl_s=0, locators=0, failovers_per_site_day=-1.0, registrations_per_site_day=math.nan)
    assert set(bad.problems()) == {"ttl_s must be 1 or more", "locators must be 1 or more",
                                   "failovers_per_site_day must be 0 or more",
                                   "registrations_per_site_day must be 0 or more"}


def test_calibrated_on_frr_the_model_says_what_each_dfz_router_holds_and_spends() -> None:
    run = {"rows": [{"prefixes": 1000, "rss_bytes_per_prefix": 900.0, "learn_per_s": 5000},
                    {"prefixes": 100_000, "rss_bytes_per_prefix": 600.0, "learn_per_s": 20_000}]}
    cal = S.calibration(run)
    assert cal == {"bytes_per_route": 600.0, "routes_per_s": 20_000.0}  # the largest injection's
    x = S.Inputs(**cal)
    p = S.point(1_000_000, x)
    assert p.pi_memory_mb == pytest.approx(1_201_000 * 600 / 2**20, abs=0.05)
    assert p.pi_busy_s_per_day == pytest.approx(p.pi_updates_per_day / 20_000, abs=0.05)
    assert "BGP memory each DFZ router" in S.table([p]) and S.point(1000, S.Inputs()).pi_memory_mb is None
    with pytest.raises(ValueError, match="no injection"):
        S.calibration({"rows": []})
    assert S.Inputs(routes_per_s=-1).problems() == ["routes_per_s must be 0 or more"]
