"""The first-contact benchmark's pure parts: who talks to whom, and what the events say was waited."""

from __future__ import annotations

import pytest

from multi6lab.experiments.firstcontact import parties
from multi6lab.lab.emulation import EnvError
from multi6lab.results import contact
from tests.unit.test_idloc import identity, two_sites
from tests.unit.test_policy import plan


def test_the_first_site_s_host_calls_the_second_s_and_the_mapping_server_s_node_is_the_plain_host() -> None:
    p = two_sites()
    near, host, far, locator, plain = parties(p)
    assert (near, host, far, plain) == ("s1", "h1", identity(p, "h2"), "map")
    assert locator.startswith("3fff:a:1:")  # h1 through its first exit
    with pytest.raises(EnvError, match="needs two sites with identity prefixes and a mapping service"):
        parties(plan("figure1"))


def test_the_first_packet_each_site_held_is_the_one_that_counts() -> None:
    events = [{"event": "contact_released", "t": 1.0, "site": "s1", "waited_ms": 40.0},
              {"event": "contact_released", "t": 1.01, "site": "s1", "waited_ms": 0.3},
              {"event": "contact_released", "t": 1.02, "site": "s2", "waited_ms": 22.0},
              {"event": "contact_released", "t": 5.0, "site": "s1", "waited_ms": 9.0},
              {"event": "pair_up", "t": 1.0}]
    assert contact.waits(events, 0.5, 2.0) == {"s1": 40.0, "s2": 22.0}
    rows = [{"cold_rtt_ms": float(i), "warm_rtt_ms": 1.0, "near_wait_ms": None, "far_wait_ms": 2.0,
             "plain_rtt_ms": 3.0, "plain_wait_ms": 4.0} for i in range(80)]
    stats = contact.summarise(rows)
    assert stats["near_wait_ms"] is None and stats["cold_rtt_ms"]["max"] == 79.0
    table = contact.markdown(stats)
    assert "| first echo, neither edge knows the other (ms) | 39.5 [" in table
    assert "| held at the near edge: identity lookup + rules (ms) | — | — | — | all |" in table
