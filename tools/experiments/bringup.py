"""``multi6lab bringup``: how long a lab takes to come up and to go down, and the memory it holds, against its
size (issue 15). Each size is a generated topology of N dual-homed nptv6 sites on two ISPs (link and
heartbeat triggers), beside RFC 4177 Figure 1; each bring-up is timed step by step (``Lab.phases``).
A lab that is ready may still not hold: its heartbeats can time out again on load alone. ``hold`` keeps it up
that long after ready and counts the heartbeat timeouts its controllers report meanwhile.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from multi6lab.experiments import scaleoutage
from multi6lab.experiments.recipe import Recipe, Ticker, add_servers, say
from multi6lab.lab import resources
from multi6lab.lab.emulation import EnvError
from multi6lab.lab.lifecycle import Lab
from multi6lab.results import bringup as results
from multi6lab.results.progress import Progress
from multi6lab.topologies import loader
from multi6lab.topologies.model import Topology
from multi6lab.vocabulary import Approach, Event, Trigger

MEMINFO = Path("/proc/meminfo")


def used_kb() -> int:
    """The machine's memory in use (MemTotal - MemAvailable), kB."""
    fields = {}
    for line in MEMINFO.read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = int(value.split()[0])
    return fields["MemTotal"] - fields["MemAvailable"]


def measure(topo: Topology, workdir: Path, say: Callable[[str], None], sites_per_controller: int = 1,
            servers: int = 1, cluster_links: str = "vxlan", hold: float = 0.0) -> dict[str, Any]:
    """One bring-up and teardown of ``topo`` (over ``servers`` servers): seconds per step, the whole, the
    teardown, memory, and the heartbeat timeouts in a ``hold`` of that many seconds after ready."""
    before = used_kb()
    t0 = time.monotonic()
    with Lab(topo, workdir, progress=say, sites_per_controller=sites_per_controller, servers=servers,
             cluster_links=cluster_links) as lab:
        up_s = time.monotonic() - t0
        held = resources.sample(lab)
        in_use = used_kb() - before
        held_from = time.monotonic()
        time.sleep(hold)  # the measurement itself: how the ready lab fares over this span
        timeouts = sum(1 for e in lab.events() if e["event"] == Event.HEARTBEAT_TIMEOUT
                       and held_from <= e["t"] <= held_from + hold) if hold > 0 else None
        t1 = time.monotonic()
    down_s = time.monotonic() - t1
    return {"nodes": len(lab.plan.nodes), "links": len(lab.plan.links), "sites": len(lab.plan.sites),
            "up_s": round(up_s, 3), "down_s": round(down_s, 3), "steps": lab.phases.as_dict(nested=False),
            "detail": lab.phases.as_dict(), "memory_kb": in_use, "left_kb": used_kb() - before,
            "ovs_rss_kb": held["ovs_rss_kb"], "controller_rss_kb": held["controller_rss_kb"],
            "hold_s": hold, "hold_timeouts": timeouts}


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sites", default="20,50,100", help="site counts, comma-separated (default 20,50,100)")
    p.add_argument("--repeats", type=int, default=3, help="bring-ups per size (default 3)")
    p.add_argument("--sites-per-controller", type=int, default=1, metavar="K",
                   help="sites sharing a controller process (default 1: each site its own)")
    p.add_argument("--heartbeat-ms", type=float, default=10.0, metavar="MS",
                   help="the generated sites' heartbeat interval (x3; default 10, the comparison's)")
    p.add_argument("--hold", type=float, default=0.0, metavar="S",
                   help="keep each ready lab up S seconds and count the heartbeat timeouts meanwhile: whether it "
                        "holds, not only whether it came up (default 0)")
    p.add_argument("--seed", type=int, default=1, help="which ISPs each generated site uses (default 1)")
    p.add_argument("--out", help="results directory (default results/bringup-<time>)")
    add_servers(p)


def run(args: argparse.Namespace, recipe: Recipe) -> int:
    try:
        counts = sorted({int(n) for n in args.sites.split(",") if n})
    except ValueError:
        raise EnvError(f"--sites {args.sites}: give site counts separated by commas, e.g. 20,50,100") from None
    if (counts and counts[0] < 1) or args.repeats < 1 or args.sites_per_controller < 1 or args.heartbeat_ms <= 0:
        raise EnvError("--sites, --repeats, --sites-per-controller and --heartbeat-ms must be positive")
    if args.hold < 0:
        raise EnvError(f"--hold {args.hold:g}: give the seconds to keep a ready lab up, 0 or more")
    topos = {"figure1": loader.load(Path(loader.__file__).with_name("figure1.yaml"))}  # a shipped file
    topos |= {f"{n} sites": scaleoutage.topology(n, Approach.NPTV6, (Trigger.LINK, Trigger.HEARTBEAT), args.seed,
                                                 heartbeat_ms=args.heartbeat_ms) for n in counts}
    rec = recipe.begin(args.seed)
    rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    tick = Ticker(Progress(len(topos) * args.repeats, time.monotonic()))
    for label, topo in topos.items():
        for k in range(1, args.repeats + 1):
            say(f"{label}: bring-up {k}/{args.repeats}")
            try:
                row = measure(topo, rec.out / label.replace(" ", "-") / f"{k:02d}", say, args.sites_per_controller,
                              args.servers, args.cluster_links, args.hold)
            except EnvError as exc:  # the machine's limit, found: the other sizes go on
                failed[label] = str(exc)
                say(f"{label}: {exc}")
                tick.done += args.repeats - k  # its remaining bring-ups will not run
                break
            rows.append({"label": label, **row})
            say(f"  ready in {row['up_s']} s, down in {row['down_s']} s, {row['memory_kb'] // 1024} MB held"
                + (f", {row['hold_timeouts']} heartbeat timeouts in {args.hold:g} s held" if args.hold else "")
                + f" · {tick()}")
        stats = results.summarise(rows)
        rec.save(summary=stats, failed=failed, rows=rows)
    results.draw(rec.out / "bringup.png", stats, "lab bring-up: where the time goes")
    rec.publish(results.markdown(stats, failed), ["bringup.png"])
    return 1 if failed else 0
