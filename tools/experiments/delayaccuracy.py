"""``multi6lab delay-accuracy``: the delay the lab's links achieve, against what they are configured with.

Figure 1 with its remote link delayed (``delay_ms`` each way, by netem or the lab's delay line, whichever this
kernel allows), and a lab of it per configured delay plus one without: 1 kHz probes from the site host to the
remote, alone and then beside a TCP bulk flow (iperf3 at BULK_MBIT) on the same path.
:mod:`multi6lab.results.delayaccuracy` turns the probes' one-way transits into the achieved delay and its error.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from multi6lab.experiments.recipe import Recipe, numbers, say
from multi6lab.lab.emulation import EnvError
from multi6lab.lab.lifecycle import Lab
from multi6lab.results import delayaccuracy as accuracy
from multi6lab.topologies import loader
from multi6lab.topologies.model import Topology

PROBE = [sys.executable, "-m", "multi6lab.traffic.probe"]
HOST, REMOTE, PORT, BULK_PORT = "h1", "r", 5301, 5302
BULK_MBIT = 50  # a load on the delay line (about 4,300 packets a second one way, their acknowledgements the other)


def delayed(topo: Topology, delay_ms: float) -> Topology:
    """``topo`` with the remote's link delayed ``delay_ms`` each way (0: not at all), and no link rate-limited:
    a TCP flow's bursts would queue in a rate limiter ahead of the probes (at 50 ms they lost 35 of 5,000 and
    waited up to 8 ms there), which is the path's doing, not the delay's."""
    links = tuple(dataclasses.replace(lk, delay_ms=(delay_ms or None) if REMOTE in (lk.a.node, lk.b.node)
                                      else lk.delay_ms, jitter_ms=None, bw=None) for lk in topo.links)
    return dataclasses.replace(topo, links=links)


def probes(lab: Lab, seconds: float, rate: float, bulk: bool, d: Path) -> tuple[list[dict[str, str]], int]:
    """Probes from the host to the remote for ``seconds``, with a TCP bulk flow alongside if ``bulk``: the
    receiver's rows (in arrival order) and how many were sent."""
    name = "bulk" if bulk else "alone"
    dst = str(lab.plan.address(REMOTE))
    out = d / f"probes-{name}.csv"
    r = lab.popen(REMOTE, [*PROBE, "recv", "--port", str(PORT), "--duration", str(seconds + 3), "--out", str(out)])
    lab.wait_bound(REMOTE, PORT)
    load = []
    if bulk:
        with open(d / "iperf3-server.txt", "w") as server_log, open(d / "iperf3-client.json", "w") as client_log:
            load.append(lab.popen(REMOTE, ["iperf3", "-s", "-1", "-p", str(BULK_PORT)], stdout=server_log))
            lab.wait_bound(REMOTE, BULK_PORT, "tcp")
            load.append(lab.popen(HOST, ["iperf3", "-c", dst, "-p", str(BULK_PORT), "-t", str(seconds + 1), "-J",
                                         "-b", f"{BULK_MBIT}M"], stdout=client_log))
    s = lab.popen(HOST, [*PROBE, "send", "--dst", dst, "--port", str(PORT), "--rate", str(rate), "--duration",
                         str(seconds), "--out", str(d / f"sent-{name}.csv")])
    s.wait(seconds + 10)
    r.wait(seconds + 15)
    for p in load:
        p.wait(seconds + 15)
    with open(out) as f:
        return list(csv.DictReader(f)), int(seconds * rate)


def measure(topo: Topology, delays: list[float], seconds: float, rate: float, out: Path,
            say: Callable[[str], None]) -> tuple[dict[str, Any], str | None]:
    """The path's own transit, then each delay alone and under load: the raw rows of every measurement, by
    (delay, load), and the delay mechanism the kernel allowed."""
    measured: dict[str, Any] = {}
    mechanism = None
    for delay in [0.0, *delays]:
        d = out / f"delay-{delay:g}ms"
        with Lab(delayed(topo, delay), d, progress=say) as lab:
            if delay:
                mechanism = lab.emulation.delay if lab.emulation is not None else None
            for bulk in (False, True):  # the path's own transit under each load too: only the rest is the delay
                say(f"{delay:g} ms, {'beside a TCP bulk flow' if bulk else 'alone'}: {seconds:g} s of probes")
                measured[f"{delay:g}/{'bulk' if bulk else 'alone'}"] = probes(lab, seconds, rate, bulk, d)
        # The delay line's own account (each daemon writes it as the lab stops): written only where it ran.
        measured[f"{delay:g}/line"] = [json.loads(f.read_text()) for f in sorted(d.glob("delayd-*.errors.json"))]
    return measured, mechanism


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--delays", default="5,25,50", help="one-way delays to configure, ms (default 5,25,50)")
    p.add_argument("--seconds", type=float, default=5.0, help="probes per measurement, in seconds at 1 kHz "
                                                              "(default 5)")
    p.add_argument("--out", help="results directory (default results/delay-accuracy-<time>)")


def run(args: argparse.Namespace, recipe: Recipe) -> int:
    delays = numbers(args.delays, float, "--delays", "delays in ms, for example 5,25,50")
    if min(delays) <= 0 or args.seconds <= 0:
        raise EnvError(f"--delays {args.delays} --seconds {args.seconds:g}: every delay and the duration must be "
                       "more than 0")
    topo = loader.load(Path(loader.__file__).with_name("figure1.yaml"))  # a shipped file
    rec = recipe.begin()
    measured, mechanism = measure(topo, delays, args.seconds, 1000.0, rec.out, say)
    rec.provenance["delay"] = mechanism
    cells, base, line = accuracy.summarise(measured, BULK_MBIT)
    rec.save(mechanism=mechanism, base_ms=base, cells=cells, line={f"{k:g}": v for k, v in line.items()})
    rec.publish(accuracy.markdown(cells, mechanism, base) + accuracy.line_table(line))
    return 0 if all(c["meets_goal"] for c in cells) else 1
