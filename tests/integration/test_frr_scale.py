"""Issue 15 item 4: PI prefixes injected at a routing site's exit reach the emulated core's BGP and leave it."""

from __future__ import annotations

from pathlib import Path

import pytest

from multi6lab.experiments import frrscale
from multi6lab.lab.lifecycle import Lab
from multi6lab.scenarios.model import Overrides
from multi6lab.topologies import loader
from multi6lab.vocabulary import Approach

pytestmark = pytest.mark.integration


def test_injected_prefixes_are_learned_and_forgotten_by_the_core(tmp_path: Path) -> None:
    topo = loader.load(Path(loader.__file__).with_name("figure1.yaml"))
    topo = Overrides(approach=Approach.ROUTING).apply(topo, topo.sites[0].name)
    with Lab(topo, tmp_path) as lab:
        (row,) = frrscale.inject(lab, [300], tmp_path, lambda _: None)
        core = lab.plan.topology.cores[0].name
        after = frrscale.counters(lab, core)["routes"]
    # The core held every one of them at once, then exactly what it held before, and the curve ends there.
    assert row["loaded"]["routes"] - row["base"]["routes"] == 300, row
    assert row["forget_s"] is not None and row["stuck"] is None, row
    assert after == row["base"]["routes"] == row["forget_curve"][-1][1], row
