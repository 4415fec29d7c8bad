"""``multi6lab triangle``: what Mobile IPv6's triangle costs, measured in the lab (RFC 4177 5.2).

Two labs of a topology with a home agent: without route optimisation, the mobile host pings its
correspondent from its home address (every echo through the home agent both ways) and, in seeded random
order block by block, from its care-of address with the agent's mark (plain IPv6, as the other approaches
send); with route optimisation, from its home address again (a tunnel straight to the correspondent).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
from collections.abc import Callable
from ipaddress import IPv6Address

from multi6lab.experiments.recipe import Recipe, say, shipped
from multi6lab.lab import mobility
from multi6lab.lab.emulation import EnvError
from multi6lab.lab.lifecycle import Lab
from multi6lab.results import triangle
from multi6lab.topologies import loader, shell
from multi6lab.topologies.model import Topology
from multi6lab.topologies.plan import build

INTERVAL_S = 0.01


def with_route_optimisation(topo: Topology, on: bool) -> Topology:
    return dataclasses.replace(topo, sites=tuple(dataclasses.replace(
        s, mobility=dataclasses.replace(s.mobility, route_optimisation=on)) for s in topo.sites))


def ping(lab: Lab, host: str, src: IPv6Address, dst: str, count: int, mark: bool) -> list[float]:
    argv = ["ping", "-6", "-n", "-c", str(count), "-i", str(INTERVAL_S), "-W", "1", "-I", str(src)]
    argv += ["-m", str(shell.AGENT_MARK)] if mark else []
    return triangle.ping_times(lab.cmd(host, shell.argv([*argv, dst])))


def measure(lab: Lab, paths: list[str], count: int, block: int, seed: int,
            say: Callable[[str], None]) -> tuple[dict[str, list[float]], dict[str, int]]:
    """``count`` echoes per path in blocks of ``block``, the blocks of the paths in seeded random order."""
    host = mobility.mobile_hosts(lab.plan)[0]
    remote = str(lab.plan.address(mobility.correspondents(lab.plan)[0]))
    order = [p for p in paths for _ in range(-(-count // block))]
    random.Random(seed).shuffle(order)
    times: dict[str, list[float]] = {p: [] for p in paths}
    sent = dict.fromkeys(paths, 0)
    for i, p in enumerate(order):
        n = min(block, count - sent[p])
        direct = p == "direct"
        times[p] += ping(lab, host.host, host.preferred if direct else host.home, remote, n, mark=direct)
        sent[p] += n
        if (i + 1) % 10 == 0 or i + 1 == len(order):
            say(f"  {i + 1}/{len(order)} blocks of {block} echoes")
    return times, sent


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topology", type=shipped, default="topologies/figure1-home-agent.yaml",
                   help="a mobility site and a home agent (default topologies/figure1-home-agent.yaml)")
    p.add_argument("--count", type=int, default=1000, help="echoes per path (default 1000)")
    p.add_argument("--block", type=int, default=50, help="echoes per block; blocks of the paths alternate in seeded "
                                                         "random order (default 50)")
    p.add_argument("--seed", type=int, default=1, help="the order of the blocks (default 1)")
    p.add_argument("--out", help="results directory (default results/triangle-<time>)")


def run(args: argparse.Namespace, recipe: Recipe) -> int:
    if args.count < 1 or args.block < 1:
        raise EnvError(f"--count {args.count} --block {args.block}: both must be 1 or more")
    topo = loader.load(args.topology)
    if topo.home_agent is None or not any(s.approach.profile.home_address for s in topo.sites):
        raise EnvError(f"{args.topology}: the triangle needs a mobility site and a home agent ('home_agent:'); "
                       "topologies/figure1-home-agent.yaml has both")
    plan = build(topo)
    host = next(h.name for sp in plan.sites if sp.site.approach.profile.home_address for h in sp.hosts)
    remote = next((r.name for r in topo.remotes if r.name != topo.home_agent.node), None)
    if remote is None:
        raise EnvError(f"{args.topology}: the triangle needs a correspondent, a remote besides the home agent")
    links = triangle.round_trip_links(plan, host, remote, topo.home_agent.node)
    rec = recipe.begin(args.seed)
    times: dict[str, list[float]] = {}
    sent: dict[str, int] = {}
    for ro, measured in ((False, ["direct", "home agent"]), (True, ["route optimisation"])):
        say(f"{topo.name}, route optimisation {'on' if ro else 'off'}: {', '.join(measured)}")
        with Lab(with_route_optimisation(topo, ro), rec.out / ("ro" if ro else "tunnel"), progress=say) as lab:
            t, n = measure(lab, measured, args.count, args.block, args.seed, say)
        times.update(t)
        sent.update(n)
    stats = triangle.summarise(times, sent, links)
    rec.save(paths=stats, rtt_ms=times)
    rec.publish(triangle.markdown(stats))
    return 0
