"""``multi6lab first-contact``: what the first packet between two id-loc sites that have never met waits.

One lab, every site on id-loc. Each trial restarts every site's controller, so each edge knows nobody again,
as a fresh edge does; once the switches are reconciled and after a seeded random pause (so the trial does
not line up with the registrations or any timer), the first site's host pings the second site's host once
by identity. That echo waits at the near edge for the lookup of the identity and the rules, and at the far
edge for the lookup of the locator it arrived from (``contact_released``'s ``waited_ms`` at each); a second
echo, everything known, is the round trip without them. Then a plain host, the mapping server's node, pings
the first site's host by its locator: its first echo waits for the lookup that finds no site (the fallback to
plain IPv6, RFC 4177 6.3.5).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from multi6lab.experiments.recipe import Recipe, say, shipped
from multi6lab.lab.emulation import EnvError
from multi6lab.lab.lifecycle import READY_TIMEOUT, Lab, wait_for
from multi6lab.results import contact
from multi6lab.scenarios.model import Overrides
from multi6lab.topologies import loader
from multi6lab.topologies.model import Topology
from multi6lab.topologies.plan import Plan, build
from multi6lab.vocabulary import Approach

PAUSE_S = (0.2, 0.7)  # the seeded pause after the reconciliation


def every_site_idloc(path: str) -> Topology:
    """The topology at ``path`` with every site on id-loc, or EnvError naming what keeps a site from it."""
    topo = loader.load(path)
    topo = Overrides(approach=Approach.ID_LOC).apply(topo, topo.sites[0].name)
    isps = {i.name: i for i in topo.isps}
    problem = next((m for s in topo.sites for _, m in loader.site_problems(s, isps)), None)
    if problem is not None:
        raise EnvError(f"{path} cannot run every site on id-loc: {problem}")
    return topo


def parties(plan: Plan) -> tuple[str, str, str, str, str]:
    """(near site, its host, far host's identity, near host's locator via its first exit, the plain host)."""
    idloc = [sp for sp in plan.sites if sp.site.identity is not None]
    if len(idloc) < 2 or plan.topology.mapping is None:
        raise EnvError(f"{plan.topology.name} needs two sites with identity prefixes and a mapping service "
                       "('mapping: {server: <a remote>}') for a first contact between id-loc sites")
    near, far = idloc[0], idloc[1]
    h = near.hosts[0]
    return (near.site.name, h.name, str(far.hosts[0].addresses["identity"]),
            str(h.locators[near.exits[0].name]), plan.topology.mapping.server)


def measure(lab: Lab, trials: int, seed: int, say: Callable[[str], None]) -> list[dict[str, Any]]:
    near, host, far_identity, near_locator, plain = parties(lab.plan)
    rng = random.Random(seed)
    dpids = {n.dpid for n in lab.plan.switches if not n.standalone}
    rows = []
    for k in range(1, trials + 1):
        t0 = time.monotonic()
        lab.restart_controller()  # every edge forgets whom it knew
        wait_for("every switch to be reconciled by the new controllers",
                 lambda t0=t0: dpids <= lab.reconciled_since(t0), READY_TIMEOUT)
        time.sleep(rng.uniform(*PAUSE_S))  # a seeded pause, so that nothing periodic lines up with the trial
        t1 = time.monotonic()
        cold = lab.ping_ms(host, far_identity)
        warm = lab.ping_ms(host, far_identity)
        t2 = time.monotonic()
        plain_cold = lab.ping_ms(plain, near_locator)
        events = lab.events()
        first = contact.waits(events, t1, t2)
        row = {"trial": k, "cold_rtt_ms": cold, "warm_rtt_ms": warm, "near_wait_ms": first.get(near),
               "far_wait_ms": next((v for s, v in first.items() if s != near), None),
               "plain_rtt_ms": plain_cold, "plain_wait_ms": contact.waits(events, t2, time.monotonic()).get(near)}
        rows.append(row)
        say(f"trial {k}/{trials}: first echo {_ms(cold)} (waited {_ms(row['near_wait_ms'])} at {near}, "
            f"{_ms(row['far_wait_ms'])} at the far edge), next {_ms(warm)}; plain host's first echo "
            f"{_ms(plain_cold)} (waited {_ms(row['plain_wait_ms'])})")
    return rows


def _ms(v: float | None) -> str:
    return "lost" if v is None else f"{v:.1f} ms"



def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("topology", nargs="?", type=shipped, default="topologies/two-sites.yaml", metavar="TOPOLOGY",
                   help="two sites with identity prefixes and a mapping service (default topologies/two-sites.yaml)")
    p.add_argument("--trials", type=int, default=72, help="restarts measured (default 72: the fewest whose largest "
                                                          "value bounds p95 from above)")
    p.add_argument("--seed", type=int, default=1, help="the pauses before each first echo (default 1)")
    p.add_argument("--out", help="results directory (default results/first-contact-<time>)")


def run(args: argparse.Namespace, recipe: Recipe) -> int:
    topo = every_site_idloc(args.topology)
    parties(build(topo))  # a topology without two sites or a mapping service says so before bring-up
    rec = recipe.begin(args.seed)  # before the lab loads the machine
    say(f"first contact on {topo.name}, every site id-loc, {args.trials} trials -> {rec.out}")
    with Lab(topo, rec.out, progress=say) as lab:
        rows = measure(lab, args.trials, args.seed, say)
    stats = contact.summarise(rows)
    rec.save(topology=topo.name, trials=len(rows), summary=stats, rows=rows)
    rec.publish(contact.markdown(stats))
    return 0
