"""``multi6lab selection``: locator selection measured in the lab (RFC 4177 6.3.2).

Two parts, each on its own lab:

* load sharing: RFC 4177 Figure 1 with the site on nptv6, ``exit_policy: load-share`` and the given weights;
  h1 opens many short TCP connections to R, then sends as many short UDP flows, each from its own socket,
  and R tells by each flow's source locator which exit the fabric's select group gave it. (Open vSwitch's
  select groups hash the addresses, and the ports of TCP and SCTP only: every UDP flow between two hosts
  takes one exit.)
* address selection: the three-ISP source-routing site, whose hosts get a policy table that prefers the
  first exit's prefix (RFC 6724, as RFC 7078 would distribute it). Each host logs the source its kernel
  selects toward R every 10 ms while the first exit's uplink goes down (after a seeded pause) and comes back:
  the policy should give the preferred prefix every time before, the site's RA deprecating that prefix should
  move every selection off it during the failure, and the prefix should come back after.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import random
import time
from collections.abc import Callable
from typing import Any

from multi6lab.experiments.recipe import Recipe, say, shipped
from multi6lab.lab.emulation import EnvError
from multi6lab.lab.lifecycle import Lab
from multi6lab.lab.runner import PROBE
from multi6lab.results import selection
from multi6lab.topologies import loader
from multi6lab.topologies.model import Topology
from multi6lab.vocabulary import Approach, ExitPolicy

PORT = 5011
FAULT_S = 2.0  # how long the preferred exit's uplink stays down
PAUSE_S = (1.0, 2.0)  # the seeded pause before it goes down


def load_sharing(topo: Topology, weights: list[int]) -> Topology:
    """``topo``'s first site on load-share, its exits weighted in preference order."""
    s = topo.sites[0]
    exits = tuple(dataclasses.replace(e, weight=w) for e, w in zip(s.exits, weights, strict=True))
    site = dataclasses.replace(s, exit_policy=ExitPolicy.LOAD_SHARE, exits=exits)
    return dataclasses.replace(topo, sites=(site, *topo.sites[1:]))


def measure_split(lab: Lab, flows: int, tcp: bool, say: Callable[[str], None]) -> dict[str, Any]:
    """How ``flows`` flows (TCP connections, or UDP sockets) from the first site's first host to the first
    remote split over the site's exits."""
    sp = lab.plan.sites[0]
    host, remote = sp.hosts[0], lab.plan.topology.remotes[0]
    dst = str(lab.plan.address(remote.name))
    proto = "tcp" if tcp else "udp"
    out = lab.workdir / f"split-{proto}.csv"
    duration = flows / 200.0 + 3.0
    port = PORT + tcp
    mode = "tcp-server" if tcp else "recv"
    r = lab.popen(remote.name, [*PROBE, mode, "--port", str(port), "--duration", str(duration), "--out", str(out)])
    lab.wait_bound(remote.name, port, proto)
    say(f"{flows} {proto.upper()} flows from {host.name} to {remote.name} ({dst})")
    s = lab.popen(host.name, [*PROBE, "flows", "--dst", dst, "--port", str(port), "--count", str(flows),
                              *(["--tcp"] if tcp else [])])
    s.wait(duration + 10)
    r.wait(duration + 15)
    exit_of = {str(host.locators[e.name]): e.name for e in sp.exits}
    with open(out) as f:
        return selection.split(csv.DictReader(f), exit_of, {e.name: e.weight for e in sp.site.exits}, flows)


Timeline = list[tuple[float, bool]]  # (s from the fault, whether the preferred prefix was selected)


def measure_policy(lab: Lab, seed: int, say: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, Timeline]]:
    sp = lab.plan.sites[0]
    first = sp.exits[0]
    remote = lab.plan.topology.remotes[0]
    dst = str(lab.plan.address(remote.name))
    pause = random.Random(seed).uniform(*PAUSE_S)
    duration = pause + FAULT_S + 3.0
    logs = {h.name: lab.workdir / f"sources-{h.name}.csv" for h in sp.hosts}
    procs = [lab.popen(h, [*PROBE, "sources", "--dst", dst, "--duration", str(duration), "--out", str(p)])
             for h, p in logs.items()]
    time.sleep(pause)  # the seeded pause: nothing periodic (RAs every few seconds) lines up with the fault
    t_fault = time.monotonic()
    say(f"{first.name}'s uplink down for {FAULT_S:.0f} s; every host logs its kernel's source toward {dst}")
    lab.cmd(first.isp, f"ip link set {first.isp_intf} down")
    time.sleep(FAULT_S)  # the fault's length, not a wait for a state
    lab.cmd(first.isp, f"ip link set {first.isp_intf} up")
    t_restore = time.monotonic()
    for p in procs:
        p.wait(duration + 10)
    out, timelines = {}, {}
    for h in sp.hosts:
        with open(logs[h.name]) as f:
            rows = [(float(r["t"]), r["source"]) for r in csv.DictReader(f)]
        preferred = str(h.addresses[first.name])
        out[h.name] = selection.policy(rows, t_fault, t_restore, preferred)
        timelines[h.name] = [(round(t - t_fault, 4), a == preferred) for t, a in rows]
    lab.wait_steady()
    return out, timelines


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--flows", type=int, default=2000, help="UDP flows sent through the load-sharing site "
                                                           "(default 2000)")
    p.add_argument("--weights", default="3,1", help="the load-sharing exits' weights in preference order "
                                                    "(default 3,1)")
    p.add_argument("--seed", type=int, default=1, help="the pause before the address selection fault (default 1)")
    p.add_argument("--load-share-topology", type=shipped, default="topologies/figure1.yaml", metavar="TOPOLOGY",
                   help="its first site load-shares (default topologies/figure1.yaml)")
    p.add_argument("--policy-topology", type=shipped, default="topologies/three-isps.yaml", metavar="TOPOLOGY",
                   help="a source-routing site with several ISPs (default topologies/three-isps.yaml)")
    p.add_argument("--out", help="results directory (default results/selection-<time>)")


def run(args: argparse.Namespace, recipe: Recipe) -> int:
    try:
        weights = [int(w) for w in args.weights.split(",")]
    except ValueError:
        raise EnvError(f"--weights {args.weights}: give one whole number per exit, e.g. 3,1") from None
    if args.flows < 1:
        raise EnvError(f"--flows {args.flows}: send at least one flow")
    sharing = loader.load(args.load_share_topology)
    if len(weights) != len(sharing.sites[0].exits) or min(weights) < 1:
        raise EnvError(f"--weights {args.weights}: {sharing.name}'s site has {len(sharing.sites[0].exits)} exits; "
                       "give each a weight of 1 or more")
    sharing = load_sharing(sharing, weights)
    isps = {i.name: i for i in sharing.isps}
    problem = next((m for _, m in loader.site_problems(sharing.sites[0], isps)), None)
    if problem is not None:
        raise EnvError(f"{args.load_share_topology} cannot load-share: {problem}")
    policy_topo = loader.load(args.policy_topology)
    for path, t in ((args.load_share_topology, sharing), (args.policy_topology, policy_topo)):
        if not t.remotes:
            raise EnvError(f"{path}: the flows and the selections go to a remote host, and it has none ('remotes:')")
    if policy_topo.sites[0].approach not in (Approach.SOURCE_ROUTING, Approach.MPTCP):
        raise EnvError(f"{args.policy_topology}: its first site must give hosts an address per ISP "
                       f"(source-routing or mptcp), not {policy_topo.sites[0].approach}")
    rec = recipe.begin(args.seed)
    say(f"load sharing on {sharing.name}, weights {args.weights} -> {rec.out}")
    with Lab(sharing, rec.out / "load-share", progress=say) as lab:
        shares = {proto: measure_split(lab, args.flows, proto == "tcp", say) for proto in ("tcp", "udp")}
    say(f"address selection on {policy_topo.name}")
    with Lab(policy_topo, rec.out / "policy", progress=say) as lab:
        choices, timelines = measure_policy(lab, args.seed, say)
    rec.save(load_share=shares, policy=choices)
    selection.draw(rec.out / "selection.png", shares, timelines, FAULT_S)
    rec.publish(selection.markdown(shares, choices), ["selection.png"])
    return 0
