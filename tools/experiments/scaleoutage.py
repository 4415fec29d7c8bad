"""``multi6lab scale-outage``: an ISP outage that hits N sites at once (issue 15), measured per site.

For each N, a generated topology (``multi6lab generate``: N sites, each multihomed to two ISPs, one host
each, one remote on the core) on the chosen approach and triggers. Each trial waits for the lab's steady
state, starts a UDP probe stream from every site's host to the remote (its own port, so its own receiver;
id-loc: to the correspondent, below),
and after a warm-up and a seeded phase takes the first ISP, every site's primary, down for ``fault_s``. Each
site's outbound outage is read off its stream exactly as a scenario's is (:func:`results.analysis.stream`).
id-loc sites stream to ``far``, an id-loc site on two ISPs the outage does not touch (``generate``'s
correspondent), and make first contact with it only: their failover is a change of locator pair with it.
Only the outbound direction is measured: under nptv6 the inbound one does not recover before the restore
(the comparison shows it), and N inbound streams would double the load the datapath carries.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from multi6lab.experiments.recipe import Recipe, Ticker, say
from multi6lab.lab.emulation import EnvError
from multi6lab.lab.lifecycle import Lab
from multi6lab.lab.runner import PROBE, arrivals, inject, prepare, start_lead
from multi6lab.results import analysis
from multi6lab.results import scaleoutage as results
from multi6lab.results.progress import Progress
from multi6lab.scenarios import faults
from multi6lab.scenarios.model import IspOutage
from multi6lab.topologies import generate, loader
from multi6lab.topologies.model import Topology
from multi6lab.topologies.plan import Plan, SitePlan
from multi6lab.vocabulary import Approach, Trigger

CORRESPONDENT = generate.CORRESPONDENT
BASE_PORT = 6100
WARMUP_S = 0.5
PHASE_S = 0.1  # the fault's start moves over this much, seeded, against the heartbeats and probes
AFTER_S = 1.0  # recorded after the restore
START_S_PER_SITE = 0.15  # a sender's Python start-up on a loaded core: twenty of them took seconds to begin


def topology(n: int, approach: Approach, triggers: tuple[Trigger, ...], seed: int,
             bfd_ms: int | None = None, heartbeat_ms: float | None = None) -> Topology:
    """N sites on two ISPs, each site on both, one host each, one remote (routing: BGP, BFD at ``bfd_ms``;
    heartbeats and id-loc's pair probes every ``heartbeat_ms``, default 10). ValueError: what is impossible."""
    shape = generate.Shape(sites=n, isps=2, exits=2, approach=approach, triggers=triggers, seed=seed, bfd_ms=bfd_ms,
                           heartbeat_ms=heartbeat_ms, correspondent=approach == Approach.ID_LOC)
    if problems := shape.problems():
        raise ValueError("; ".join(problems))
    return loader.loads(generate.dumps(shape), f"<{n} sites>")


def hit(plan: Plan) -> list[SitePlan]:
    """The sites the outage hits: all but an id-loc correspondent."""
    return [sp for sp in plan.sites if sp.site.name != CORRESPONDENT]


def contacts(topo: Topology) -> set[tuple[str, str]] | None:
    """The id-loc sites' first contacts: each with the correspondent, both ways (None: no correspondent)."""
    names = {s.name for s in topo.sites}
    if CORRESPONDENT not in names:
        return None
    return {p for n in names - {CORRESPONDENT} for p in ((n, CORRESPONDENT), (CORRESPONDENT, n))}


def target(plan: Plan) -> tuple[str, str]:
    """Where every site's probes go (node, address): the correspondent's host by its identity, or the remote."""
    far = [sp for sp in plan.sites if sp.site.name == CORRESPONDENT]
    if far:
        return far[0].hosts[0].name, str(far[0].hosts[0].addresses["identity"])
    remote = plan.topology.remotes[0].name
    return remote, str(plan.address(remote))


def trial(lab: Lab, n: int, k: int, rng: random.Random, rate: float, fault_s: float,
          say: Callable[[str], None], lead: float = 0.5) -> list[dict[str, Any]]:
    """One trial: every site's outbound outage (ms, or None with the reason); ``lead``: how long one sender
    takes to start here, at least (:func:`multi6lab.lab.runner.start_lead`)."""
    plan = lab.plan
    remote, dst = target(plan)
    sites = hit(plan)
    isp = plan.topology.isps[0].name
    d = lab.workdir / f"n{n}" / f"trial-{k:02d}"
    d.mkdir(parents=True, exist_ok=True)
    lab.wait_steady()
    phase = rng.uniform(0.0, PHASE_S)
    total = WARMUP_S + phase + fault_s + AFTER_S
    start = max(lead, START_S_PER_SITE * n)  # every sender must be streaming before the warm-up begins
    fault = faults.compile_fault(plan, sites[0], IspOutage(isp=isp, at=0.0, duration=fault_s), 0, fault_s)
    prepare(lab, [fault])
    procs = []
    for i, _ in enumerate(sites):
        procs.append(lab.popen(remote, [*PROBE, "recv", "--port", str(BASE_PORT + i), "--duration",
                                        str(start + total + 2.0), "--out", str(d / f"site{i}.csv")]))
    for i, _ in enumerate(sites):
        lab.wait_bound(remote, BASE_PORT + i)
    t0 = time.monotonic() + start
    for i, sp in enumerate(sites):
        procs.append(lab.popen(sp.hosts[0].name, [*PROBE, "send", "--dst", dst, "--port", str(BASE_PORT + i),
                                                  "--rate", str(rate), "--duration", str(total),
                                                  "--start-at", f"{t0:.6f}", "--out", str(d / f"site{i}-send.csv")]))
    down, up = inject(lab, [fault], t0 + WARMUP_S + phase, phase)  # the scenarios' engine: timed, recorded, undone
    opened, in_effect, restore = down["start"], down["end"], up["start"]  # the window opens as the command starts
    for p in procs:
        p.wait(total + 10)
    period = 1.0 / rate
    rows = []
    for i, sp in enumerate(sites):
        arr = arrivals(d / f"site{i}.csv")
        s = analysis.stream(arr, int(total * rate), period, opened, restore, t0 + total)
        usual, back = results.transits(arr, in_effect, s.gap if s.outage_ms is not None else None)
        rows.append({"n": n, "trial": k, "site": sp.site.name, "outage_ms": s.outage_ms, "reason": s.reason,
                     "above_ms": s.above_ms, "lost": s.lost, "sources": list(s.sources), "transit_ms": usual,
                     "back_transit_ms": back})
    got = [r["outage_ms"] for r in rows if r["outage_ms"] is not None]
    say(f"N={n} trial {k}: {len(got)}/{n} sites recovered, slowest {max(got):.1f} ms" if got
        else f"N={n} trial {k}: no site recovered before the restore")
    return rows


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sites", default="1,5,10,20", help="site counts, comma-separated (default 1,5,10,20)")
    p.add_argument("--approach", default="nptv6", choices=Approach.values(), help="the sites' approach (default nptv6)")
    p.add_argument("--triggers", default="link,heartbeat", help="comma-separated (default link,heartbeat)")
    p.add_argument("--trials", type=int, default=10, help="outages per site count (default 10)")
    p.add_argument("--rate", type=float, default=200.0, help="probes per second per site (default 200)")
    p.add_argument("--fault-s", type=float, default=1.0, help="how long the ISP stays down (default 1 s)")
    p.add_argument("--seed", type=int, default=1, help="the topologies and each fault's phase (default 1)")
    p.add_argument("--sites-per-controller", type=int, default=1, metavar="K",
                   help="sites sharing a controller process (default 1: each site its own)")
    p.add_argument("--bfd", type=int, metavar="MS", help="routing: BFD at this interval (x3) on the exits' "
                                                        "sessions, BGP 1/3 s (default: BGP's 60/180 s alone)")
    p.add_argument("--heartbeat-ms", type=float, metavar="MS",
                   help="the heartbeat trigger's echoes, and id-loc's locator-pair probes, at this interval (x3; "
                        "default 10)")
    p.add_argument("--out", help="results directory (default results/scale-outage-<time>)")


def run(args: argparse.Namespace, recipe: Recipe) -> int:
    try:
        counts = sorted({int(n) for n in args.sites.split(",")})
    except ValueError:
        raise EnvError(f"--sites {args.sites}: give site counts separated by commas, e.g. 1,5,10,20") from None
    if counts[0] < 1 or args.trials < 1 or args.rate <= 0 or args.fault_s <= 0 or args.sites_per_controller < 1:
        raise EnvError("--sites, --trials, --rate, --fault-s and --sites-per-controller must all be positive")
    words = [w.strip() for w in args.triggers.split(",")]
    if unknown := [w for w in words if w not in Trigger.values()]:
        raise EnvError(f"--triggers: unknown trigger {unknown[0]!r} (triggers: {', '.join(Trigger.values())})")
    approach, triggers = Approach(args.approach), tuple(Trigger(w) for w in words)
    try:  # refused here, not after the first lab
        topos = {n: topology(n, approach, triggers, args.seed, args.bfd, args.heartbeat_ms) for n in counts}
    except ValueError as exc:
        raise EnvError(str(exc)) from None
    rec = recipe.begin(args.seed)
    how = [f"BGP 1/3 s, BFD {args.bfd} ms x3"] if args.bfd else list(words)
    if args.heartbeat_ms is not None:
        how.append(f"{args.heartbeat_ms:g} ms probes")
    label = f"{approach} ({', '.join(how)})"
    rows: list[dict[str, Any]] = []
    failed: dict[int, str] = {}  # N -> why its lab gave up (the machine's limit, found): the other Ns go on
    rng = random.Random(args.seed)
    tick = Ticker(Progress(len(topos) * args.trials, time.monotonic()))
    for n, topo in topos.items():
        say(f"{n} sites on {label}: {args.trials} trials, ISP {topo.isps[0].name} down {args.fault_s} s each")
        try:
            with Lab(topo, rec.out / f"n{n}", progress=say, sites_per_controller=args.sites_per_controller,
                     contacts=contacts(topo)) as lab:
                lead = start_lead(lab, target(lab.plan)[0])
                for k in range(1, args.trials + 1):
                    rows += trial(lab, n, k, rng, args.rate, args.fault_s, say, lead)
                    say(f"  {tick()}")
        except EnvError as exc:
            failed[n] = str(exc)
            say(f"{n} sites: {exc}")
            tick.done = sum(args.trials for m in topos if m <= n)  # its remaining trials will not run
        stats = results.summarise(rows)  # saved after every N, so a later failure keeps the earlier ones
        rec.save(approach=label, summary=stats, failed=failed, rows=rows)
    results.draw(rec.out / "scale-outage.png", stats, f"ISP outage hitting N sites: {label}")
    rec.publish(results.markdown(stats, failed), ["scale-outage.png"])
    return 1 if failed else 0
