"""Issue 15: an ISP outage that hits several sites at once, each site's outage measured."""

from __future__ import annotations

import ipaddress
import random
import time
from pathlib import Path

import pytest

from multi6lab.experiments import scaleoutage
from multi6lab.lab.lifecycle import Lab
from multi6lab.vocabulary import Approach, Event, Trigger

pytestmark = pytest.mark.integration


def test_an_isp_outage_over_three_sites_is_measured_at_every_site(tmp_path: Path) -> None:
    topo = scaleoutage.topology(3, Approach.NPTV6, (Trigger.LINK,), seed=1)
    with Lab(topo, tmp_path) as lab:
        rows = scaleoutage.trial(lab, 3, 1, random.Random(1), 200.0, 1.0, lambda _: None)
    assert [r["site"] for r in rows] == ["s0", "s1", "s2"]
    # Every site was on its primary ISP (isp0) when the outage hit all of them at once, and moved to isp1 before
    # the restore (1 s): the link trigger's fast-failover groups act at each exit, so no site waits for the
    # others. A zero outage is a real reading: the group can switch between two probes 5 ms apart.
    isp0, isp1 = (ipaddress.ip_network(i.prefix) for i in topo.isps)
    for r in rows:
        on = [ipaddress.ip_address(a.split("%")[0]) for a in r["sources"]]
        assert on and on[0] in isp0 and any(a in isp1 for a in on), r
        assert r["outage_ms"] is not None and 0 <= r["outage_ms"] < 1000, r
        # The usual transit is read off the healthy path (well under a millisecond to a few); the first probe after
        # an outage has its own only where there was a gap to end.
        assert 0 < r["transit_ms"] < 100 and (r["back_transit_ms"] is None or r["back_transit_ms"] > 0), r


def test_id_loc_sites_hit_by_an_outage_move_their_locator_pair_with_their_correspondent(tmp_path: Path) -> None:
    topo = scaleoutage.topology(2, Approach.ID_LOC, (Trigger.LINK,), seed=1)
    with Lab(topo, tmp_path, contacts=scaleoutage.contacts(topo)) as lab:
        met = {(e["src_site"], e["dst_site"]) for e in lab.events() if e["event"] == Event.PAIR_UP}
        since = time.monotonic()
        rows = scaleoutage.trial(lab, 2, 1, random.Random(1), 200.0, 1.0, lambda _: None)
        moved = {(e["src_site"], e["exit"]) for e in lab.events()
                 if e["event"] == Event.PAIR_SELECTED and e["t"] >= since and e["dst_site"] == "far"}
    # First contact only with the correspondent: the two sites never met each other.
    assert met == {("s0", "far"), ("far", "s0"), ("s1", "far"), ("far", "s1")}
    assert [r["site"] for r in rows] == ["s0", "s1"]
    assert all(r["outage_ms"] is not None and 0 <= r["outage_ms"] < 1000 for r in rows), rows
    # Each site's edge left its locator on isp0 for the one on isp1, toward the correspondent.
    assert {("s0", "s0e1"), ("s1", "s1e1")} <= moved, moved
