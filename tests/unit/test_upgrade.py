"""The upgrade benchmark's pure parts: who talks to whom, and what the logs and events say lived through it."""

from __future__ import annotations

import pytest

from multi6lab.experiments.upgrade import parties
from multi6lab.lab.emulation import EnvError
from multi6lab.results import upgrade
from tests.unit.test_idloc import two_sites
from tests.unit.test_policy import plan


def test_the_first_site_s_host_calls_the_second_s_by_its_locator() -> None:
    near, h1, far, h2, far_loc, near_loc = parties(two_sites())
    assert (near, h1, far, h2) == ("s1", "h1", "s2", "h2")
    assert far_loc.startswith("3fff:c:2:") and near_loc.startswith("3fff:a:1:")  # through each first exit
    with pytest.raises(EnvError, match="needs two sites with identity prefixes and a mapping service"):
        parties(plan("figure1"))


def test_an_upgrade_is_the_first_record_of_the_peer_after_the_restart() -> None:
    events = [{"event": "mapping_resolved", "t": 1.0, "site": "s1", "peer": "s2"},
              {"event": "mapping_resolved", "t": 3.0, "site": "s1", "peer": "s2"},
              {"event": "mapping_resolved", "t": 2.5, "site": "s1", "peer": "s3"},
              {"event": "mapping_unknown", "t": 2.2, "site": "s1", "peer": "s2"}]
    assert upgrade.upgraded_at(events, "s1", "s2", 2.0) == 3.0
    assert upgrade.upgraded_at(events, "s2", "s1", 0.0) is None


def test_probes_lost_count_what_never_came_and_the_gap_the_longest_silence() -> None:
    got = [{"seq": str(s), "t_recv": str(t)} for s, t in [(0, 1.0), (1, 1.005), (3, 1.040), (3, 1.041)]]
    assert upgrade.udp(got, 5) == (2, 35.0)  # 2 and 4 never came; a duplicate counts once
    assert upgrade.udp([], 3) == (3, None)


def test_a_session_lived_if_it_carried_records_after_the_upgrade_and_never_failed() -> None:
    server = [{"t_sent": "1.0"}, {"t_sent": "5.0"}]
    assert upgrade.survived([{"event": "connected"}], server, 4.0)
    assert not upgrade.survived([{"event": "connected"}, {"event": "error"}], server, 4.0)
    assert not upgrade.survived([{"event": "connected"}], server[:1], 4.0)  # nothing after the upgrade


def test_the_summary_counts_sessions_and_prints_every_measure() -> None:
    rows = [{**{k: float(i) for k in upgrade.LABELS}, "tcp_sessions": 4, "tcp_survived": 4 - (i == 3)}
            for i in range(20)]
    stats = upgrade.summarise(rows)
    assert (stats["tcp_sessions"], stats["tcp_survived"]) == (80, 79)
    table = upgrade.markdown(stats)
    assert "TCP sessions that lived through the upgrade: 79 of 80" in table
    assert all(label in table for label in upgrade.LABELS.values())
