"""``multi6lab frr-scale``: RFC 4177 section 5.1 calibrated on FRR in the emulated core (issue 15 item 4).

One lab of RFC 4177 Figure 1 on the routing approach. The primary exit redistributes its kernel routes into
BGP; for each count N the tool adds N blackhole /48s there in one ``ip -batch``, waits until the core's BGP
table holds a route to every one (its prefix count, not ``ribCount``, which counts a prefix once per neighbour
that sent it), reads the core's BGP paths, table bytes and bgpd's and zebra's resident memory, deletes them
and waits until the core holds none of them. A count that stops moving for STALL_S is
not waited out: the step is recorded as stalled, with the core's count over time and what the exit's kernel,
zebra and BGP still hold, so the row says where the prefixes stuck.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from multi6lab.experiments.recipe import Recipe, numbers, say
from multi6lab.lab import resources
from multi6lab.lab.emulation import EnvError
from multi6lab.lab.lifecycle import Lab
from multi6lab.results import frrscale
from multi6lab.scenarios.model import Overrides
from multi6lab.topologies import loader
from multi6lab.vocabulary import Approach

POLL_S = 0.05
STALL_S = 60.0  # the core's count unchanged this long: the step has stalled
SAMPLE_S = 5.0  # how often the count is kept for the record while it moves


def held(lab: Lab, node: str) -> int:
    """The prefixes in ``node``'s IPv6 BGP table (one vtysh call: what the waits poll)."""
    em = lab.emulation
    assert em is not None
    return frrscale.held(json.loads(em.bgp(node, "show bgp ipv6 unicast statistics json") or "{}"))


def counters(lab: Lab, core: str) -> dict[str, int]:
    em = lab.emulation
    assert em is not None
    paths, rib_bytes = frrscale.rib(json.loads(em.bgp(core, "show bgp summary json") or "{}"))
    d = em.frr_dir(core)

    def rss(daemon: str) -> int:
        return resources.status_kb(int((d / f"{daemon}.pid").read_text()))

    return {"routes": held(lab, core), "paths": paths, "rib_bytes": rib_bytes, "bgpd_kb": rss("bgpd"),
            "zebra_kb": rss("zebra")}


def drain(lab: Lab, core: str, done: Callable[[int], bool], bound: float) -> tuple[float | None, list[list[float]]]:
    """Seconds until the core's BGP prefix count satisfies ``done`` (None if it stalled for STALL_S or ran past
    ``bound``), and the count over time: ``[seconds, routes]`` every SAMPLE_S and whenever it ends."""
    t0 = last_move = time.monotonic()
    curve: list[list[float]] = []
    seen = None
    while True:
        now = time.monotonic()
        routes = held(lab, core)
        if routes != seen:
            seen, last_move = routes, now
        if not curve or now - t0 - curve[-1][0] >= SAMPLE_S:
            curve.append([round(now - t0, 2), routes])
        if done(routes):
            curve.append([round(now - t0, 2), routes])
            return now - t0, curve
        if now - last_move > STALL_S or now - t0 > bound:
            curve.append([round(now - t0, 2), routes])
            return None, curve
        time.sleep(POLL_S)


def where_stuck(lab: Lab, exit_name: str) -> dict[str, Any]:
    """What the exit still holds of the injected prefixes, and what its zebra logged about the kernel."""
    em = lab.emulation
    assert em is not None
    kernel = lab.cmd(exit_name, f"ip -6 route show root {frrscale.INJECTED} | wc -l").strip()
    zebra_log = em.frr_dir(exit_name) / "zebra.log"
    zebra = frrscale.zebra_routes(json.loads(em.bgp(exit_name, "show ipv6 route summary json") or "{}"), "kernel")
    return {"exit_kernel_routes": int(kernel or 0), "exit_zebra_kernel_routes": zebra,
            "exit_bgp_routes": held(lab, exit_name),
            "zebra_log": frrscale.netlink_trouble(zebra_log.read_text(errors="replace")
                                                  if zebra_log.exists() else "")}


def inject(lab: Lab, counts: Sequence[int], workdir: Path, say: Callable[[str], None]) -> list[dict[str, Any]]:
    em = lab.emulation
    assert em is not None
    sp = next(s for s in lab.plan.sites if s.site.approach.profile.bgp)
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
        waited, learn_curve = drain(lab, core, lambda r, n=n, b=base: r >= b["routes"] + n, 60 + n / 100)
        if waited is None:
            raise EnvError(f"the core's BGP table did not learn {n:,} prefixes (it holds {learn_curve[-1][1]:,.0f}, "
                           f"{base['routes']} before): {where_stuck(lab, exit_name)}")
        learn += waited
        loaded = counters(lab, core)
        t1 = time.monotonic()
        lab.cmd(exit_name, f"ip -batch {delete}")
        forget: float | None = time.monotonic() - t1
        waited, curve = drain(lab, core, lambda r, b=base: r <= b["routes"], 60 + n / 100)
        stuck = None
        if waited is None:
            forget, stuck = None, where_stuck(lab, exit_name)
        else:
            forget = (forget or 0.0) + waited
        rows.append(frrscale.row(n, learn, forget, base, loaded, curve, stuck))
        say(f"  learned in {learn:.2f} s, " + (f"forgotten in {forget:.2f} s" if forget is not None else
            f"not forgotten: the core still holds {curve[-1][1]:,.0f} after {curve[-1][0]:.0f} s ({stuck})")
            + f"; core bgpd {loaded['bgpd_kb'] // 1024} MB")
        if stuck is not None:
            break  # the next, larger count would start from a table that is not back to its base
    return rows


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prefixes", default="1000,10000,100000", help="counts, comma-separated "
                                                                  "(default 1000,10000,100000)")
    p.add_argument("--out", help="results directory (default results/frr-scale-<time>)")


def run(args: argparse.Namespace, recipe: Recipe) -> int:
    counts = numbers(args.prefixes, int, "--prefixes", "counts separated by commas, e.g. 1000,10000")
    if min(counts) < 1:
        raise EnvError("--prefixes: each count must be 1 or more")
    if max(counts) > frrscale.CAPACITY:
        raise EnvError(f"--prefixes: at most {frrscale.CAPACITY:,} /48s fit in {frrscale.INJECTED}")
    topo = loader.load(Path(loader.__file__).with_name("figure1.yaml"))
    topo = Overrides(approach=Approach.ROUTING).apply(topo, topo.sites[0].name)
    rec = recipe.begin()
    with Lab(topo, rec.out, progress=say) as lab:
        rows = inject(lab, counts, rec.out, say)
    rec.save(rows=rows)
    rec.publish(frrscale.markdown(rows))
    return 1 if any(r["forget_s"] is None for r in rows) else 0  # a stalled step leaves the sweep incomplete
