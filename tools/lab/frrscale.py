"""``multi6lab frr-scale``: RFC 4177 section 5.1 calibrated on FRR in the emulated core (issue 15 item 4).

One lab of RFC 4177 Figure 1 on the routing approach. The primary exit redistributes its kernel routes into
BGP; for each count N the tool adds N blackhole /48s there in one ``ip -batch``, waits until the core's BGP
table holds them all (its ``ribCount``), reads the core's BGP table bytes and bgpd's and zebra's resident
memory, deletes them and waits until the core has forgotten them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from multi6lab.lab import resources
from multi6lab.lab.emulation import EnvError
from multi6lab.lab.lifecycle import Lab
from multi6lab.results import frrscale
from multi6lab.vocabulary import Approach

POLL_S = 0.05


def counters(lab: Lab, core: str) -> dict[str, int]:
    em = lab.emulation
    assert em is not None
    routes, rib_bytes = frrscale.rib(json.loads(em.bgp(core, "show bgp summary json") or "{}"))
    d = em.frr_dir(core)

    def rss(daemon: str) -> int:
        return resources.status_kb(int((d / f"{daemon}.pid").read_text()))

    return {"routes": routes, "rib_bytes": rib_bytes, "bgpd_kb": rss("bgpd"), "zebra_kb": rss("zebra")}


def wait_routes(lab: Lab, core: str, done: Callable[[int], bool], timeout: float, what: str) -> float:
    """Seconds until the core's BGP table count satisfies ``done``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if done(counters(lab, core)["routes"]):
            return time.monotonic() - t0
        time.sleep(POLL_S)
    raise EnvError(f"the core's BGP table did not {what} within {timeout:.0f} s")


def inject(lab: Lab, counts: Sequence[int], workdir: Path, say: Callable[[str], None]) -> list[dict[str, Any]]:
    em = lab.emulation
    assert em is not None
    sp = next(s for s in lab.plan.sites if s.site.approach == Approach.ROUTING)
    exit_name, core = sp.exits[0].name, lab.plan.topology.cores[0].name
    em.bgp_configure(exit_name, [f"router bgp {sp.site.asn}", "address-family ipv6 unicast", "redistribute kernel"])
    rows = []
    for n in counts:
        base = counters(lab, core)
        add, delete = workdir / f"add-{n}.batch", workdir / f"del-{n}.batch"
        add.write_text(frrscale.batch(n, "add"))
        delete.write_text(frrscale.batch(n, "del"))
        say(f"{n:,} prefixes into {exit_name}'s BGP; the core holds {base['routes']} routes")
        t0 = time.monotonic()
        lab.cmd(exit_name, f"ip -batch {add}")
        learn = time.monotonic() - t0
        learn += wait_routes(lab, core, lambda r, n=n, b=base: r >= b["routes"] + n, 60 + n / 100, "learn them")
        loaded = counters(lab, core)
        t1 = time.monotonic()
        lab.cmd(exit_name, f"ip -batch {delete}")
        forget = time.monotonic() - t1
        forget += wait_routes(lab, core, lambda r, b=base: r <= b["routes"], 60 + n / 100, "forget them")
        rows.append(frrscale.row(n, learn, forget, base, loaded))
        say(f"  learned in {learn:.2f} s, forgotten in {forget:.2f} s; core bgpd {loaded['bgpd_kb'] // 1024} MB")
    return rows
