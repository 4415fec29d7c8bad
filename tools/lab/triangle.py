"""``multi6lab triangle``: what Mobile IPv6's triangle costs, measured in the lab (RFC 4177 5.2).

Two labs of a topology with a home agent: without route optimisation, the mobile host pings its
correspondent from its home address (every echo through the home agent both ways) and, in seeded random
order block by block, from its care-of address with the agent's mark (plain IPv6, as the other approaches
send); with route optimisation, from its home address again (a tunnel straight to the correspondent).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from ipaddress import IPv6Address

from multi6lab.lab import mobility
from multi6lab.lab.lifecycle import Lab
from multi6lab.results import triangle
from multi6lab.topologies import shell
from multi6lab.topologies.model import Topology

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
