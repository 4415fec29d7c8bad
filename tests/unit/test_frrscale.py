"""RFC 4177 5.1 calibrated on FRR (issue 15 item 4): the injected prefixes and the figures read off the core."""

from __future__ import annotations

from ipaddress import IPv6Network

import pytest

from multi6lab.results import frrscale
from multi6lab.topologies import loader


def test_injected_prefixes_are_distinct_48s_clear_of_every_shipped_topology() -> None:
    ps = list(frrscale.prefixes(70000))
    assert len(set(ps)) == 70000 and all(p.prefixlen == 48 and p.subnet_of(frrscale.INJECTED) for p in ps)
    for path in loader.SCHEMA_PATH.parent.glob("*.yaml"):
        t = loader.load(path)
        owned = [*(i.prefix for i in t.isps), *(c.prefix for c in t.cores), *(r.prefix for r in t.remotes),
                 *(p for s in t.sites for p in (s.pi, s.identity) if p)]
        assert not any(frrscale.INJECTED.overlaps(p) for p in owned), path.name
    assert frrscale.batch(2, "del") == "route del blackhole 3fff:f00::/48\nroute del blackhole 3fff:f00:1::/48\n"
    with pytest.raises(ValueError, match="do not fit"):
        next(frrscale.prefixes(frrscale.CAPACITY + 1))


def test_a_row_says_what_each_prefix_costs_the_core() -> None:
    assert frrscale.rib({"ipv6Unicast": {"ribCount": 12, "ribMemory": 2304}}) == (12, 2304)
    assert frrscale.rib({}) == (0, 0)
    base = {"routes": 10, "rib_bytes": 2000, "bgpd_kb": 10000, "zebra_kb": 8000}
    loaded = {"routes": 1010, "rib_bytes": 194000, "bgpd_kb": 11000, "zebra_kb": 8500}
    r = frrscale.row(1000, 0.5, 0.25, base, loaded)
    assert r["learn_per_s"] == 2000 and r["rib_bytes_per_prefix"] == 192.0
    assert r["rss_bytes_per_prefix"] == 1536.0  # (1000 + 500) kB over 1000 prefixes
    assert "| 1,000 | 0.5 | 2000 | 0.25 | 192.0 | 1536.0 | 10.7 / 8.3 |" in frrscale.markdown([r])
    assert IPv6Network("3fff:f00::/24") == frrscale.INJECTED
