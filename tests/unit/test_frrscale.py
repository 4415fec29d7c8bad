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
    # The table statistics count each prefix once, however many neighbours sent it (ribCount would say 602).
    assert frrscale.held({"ipv6Unicast": [{"instance": "VRF default", "totalAdvertisements": 602,
                                           "totalPrefixes": 301}]}) == 301
    assert frrscale.held({}) == 0
    zebra = {"routes": [{"fib": 10001, "rib": 10001, "type": "kernel"}, {"fib": 1, "rib": 1, "type": "ebgp"}]}
    assert frrscale.zebra_routes(zebra, "kernel") == 10001 and frrscale.zebra_routes(zebra, "ibgp") == 0
    base = {"routes": 10, "paths": 20, "rib_bytes": 2000, "bgpd_kb": 10000, "zebra_kb": 8000}
    loaded = {"routes": 1010, "paths": 1520, "rib_bytes": 194000, "bgpd_kb": 11000, "zebra_kb": 8500}
    r = frrscale.row(1000, 0.5, 0.25, base, loaded)
    assert r["learn_per_s"] == 2000 and r["rib_bytes_per_prefix"] == 192.0
    assert r["rss_bytes_per_prefix"] == 1536.0  # (1000 + 500) kB over 1000 prefixes
    # Learned means a route to each; half of them had their second path by then.
    assert "| 1,000 | 0.5 | 2000 | 0.25 | 1.50 | 192.0 | 1536.0 | 10.7 / 8.3 |" in frrscale.markdown([r])
    assert IPv6Network("3fff:f00::/24") == frrscale.INJECTED


def test_a_stalled_withdrawal_says_how_many_routes_were_left_and_what_zebra_logged() -> None:
    base = {"routes": 10, "paths": 20, "rib_bytes": 2000, "bgpd_kb": 10000, "zebra_kb": 8000}
    loaded = {"routes": 100010, "paths": 200020, "rib_bytes": 2000, "bgpd_kb": 70000, "zebra_kb": 50000}
    stuck = {"exit_kernel_routes": 0, "exit_bgp_routes": 41000, "zebra_log": []}
    r = frrscale.row(100000, 9.5, None, base, loaded, [[0.0, 100010], [5.0, 62000], [65.2, 41010]], stuck)
    assert r["forget_s"] is None and r["stuck"] == stuck and r["forget_curve"][-1] == [65.2, 41010]
    assert "| 100,000 | 9.5 | 10526 | stalled: 41,010 routes left after 65 s |" in frrscale.markdown([r])
    log = ("2026/12/06 04:10:01 ZEBRA: [X] netlink-listen (NS 0) recvmsg overrun: No buffer space available\n"
           "2026/12/06 04:10:02 ZEBRA: [Y] client 3 says hello\n")
    assert frrscale.netlink_trouble(log) == [log.splitlines()[0]]
    assert frrscale.netlink_trouble("all quiet\n") == []
