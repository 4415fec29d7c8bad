"""Issue 15: an ISP outage that hits several sites at once, each site's outage measured."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from multi6lab.lab import scaleoutage
from multi6lab.lab.lifecycle import Lab
from multi6lab.vocabulary import Approach, Trigger

pytestmark = pytest.mark.integration


def test_an_isp_outage_over_three_sites_is_measured_at_every_site(tmp_path: Path) -> None:
    topo = scaleoutage.topology(3, Approach.NPTV6, (Trigger.LINK,), seed=1)
    with Lab(topo, tmp_path) as lab:
        rows = scaleoutage.trial(lab, 3, 1, random.Random(1), 200.0, 1.0, lambda _: None)
    assert [r["site"] for r in rows] == ["s0", "s1", "s2"]
    # Every site lost its primary ISP at once and moved to the other before the restore (1 s): the link
    # trigger's fast-failover groups act at each exit, so no site waits for the others.
    assert all(r["outage_ms"] is not None and 0 < r["outage_ms"] < 1000 and r["lost"] > 0 for r in rows), rows
