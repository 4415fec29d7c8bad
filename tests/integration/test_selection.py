"""Issue 13, locator selection: a load-sharing site spreads TCP connections over its exits by their weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from multi6lab.experiments import selection
from multi6lab.lab.lifecycle import Lab
from multi6lab.topologies import loader
from tests.integration.helpers import topology

pytestmark = pytest.mark.integration


def test_a_load_sharing_site_gives_each_exit_flows_by_its_weight(tmp_path: Path) -> None:
    topo = selection.load_sharing(loader.load(topology("figure1")), [3, 1])
    with Lab(topo, tmp_path) as lab:
        s = selection.measure_split(lab, 400, True, lambda _: None)
    assert s["lost"] == 0 and s["split_flows"] == 0 and s["foreign"] == 0  # every flow kept to one exit
    a, b = s["exits"]["exa"]["flows"], s["exits"]["exb"]["flows"]
    # 3:1 expects 300 and 100; even a fair coin would give exa more than twice exb's share with odds of
    # about 1 in 10^10, so this fails only if the weights are not applied (or one exit is never used).
    assert a + b == 400 and b > 0 and a > 2 * b
