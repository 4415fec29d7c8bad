"""``multi6lab new-addresses``: what a new address costs a site whose exits translate address by address (nptv6
with an identity longer than /48, RFC 6296 section 3.5; docs/topologies.md).

One lab of a topology whose first site is such a site (default: figure1-pd56.yaml). For each number N of
addresses already translated (default 10, 100 and 1,000), its host first takes on addresses until N have their
translations (one datagram from each, to the remote's discard port); then a burst of fresh addresses each sends
one datagram at once, and the controller's ``translation_learned`` events say how many it installed a second
and the first exit's flow table how many rules each added; then, one at a time after a seeded pause, fresh
addresses each send two echoes to the remote: the first waits for its translation, the second does not, and the
difference is the first packet's extra wait. The controller keeps 1,024 translations a site (the oldest give
way), so the largest N runs at that cap, and its rules per address are counted over the addresses the burst
added net; none expires during the sweep (its site's translation_idle_s is set to a day).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import subprocess
import sys
import time
from collections.abc import Callable
from ipaddress import IPv6Network
from typing import Any

from multi6lab.controller.core import MAX_TRANSLATED
from multi6lab.experiments.recipe import Recipe, numbers, say, shipped
from multi6lab.lab.emulation import EnvError
from multi6lab.lab.lifecycle import READY_TIMEOUT, RTT, Lab
from multi6lab.results import newaddresses as results
from multi6lab.topologies import loader
from multi6lab.vocabulary import Event

IDLE_S = 86400.0  # the sweep's sites keep what they learnt (the schema's largest translation_idle_s)
PAUSE_S = (0.05, 0.25)  # the seeded pause before each probe address's echoes
STALL_S = 3.0  # a burst is over once no translation has come for this long
FILL_TRIES = 5  # datagrams from each address that is to be translated before a size is measured
SEND_ONE = ("import socket, sys\n"
            "for a in open(sys.argv[1]).read().split():\n"
            "    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
            "    s.bind((a, 0))\n"
            "    s.sendto(b'x', (sys.argv[2], 9))\n"
            "    s.close()\n")


class Host:
    """The measured site's host, the addresses it takes on, and the remote they talk to."""

    def __init__(self, lab: Lab):
        self.lab = lab
        sp = lab.plan.sites[0]
        self.site, self.name, self.exit = sp.site.name, sp.hosts[0].name, sp.exits[0].name
        self.dev = lab.plan.intfs(self.name)[0].name
        assert sp.site.identity is not None
        self.subnet = next(sp.site.identity.subnets(new_prefix=64))
        self.remote = str(lab.plan.address(lab.plan.topology.remotes[0].name))
        self.made = 0

    def fresh(self, n: int) -> list[str]:
        """``n`` addresses of the site's first /64 the host has not had, added to its interface."""
        base = int(self.subnet.network_address) + (0xA << 48)
        addrs = [str(IPv6Network((base + self.made + k + 1, 128)).network_address) for k in range(n)]
        self.made += n
        batch = self.lab.workdir / f"addresses-{self.made}.batch"
        batch.write_text("".join(f"address add {a}/64 dev {self.dev} nodad\n" for a in addrs))
        self.lab.cmd(self.name, f"ip -6 -batch {batch}")
        return addrs

    def send_from(self, addrs: list[str]) -> None:
        """One datagram from each address to the remote, as fast as one process sends them."""
        listing = self.lab.workdir / f"send-{self.made}.txt"
        listing.write_text("\n".join(addrs))
        script = self.lab.workdir / "send_one.py"
        script.write_text(SEND_ONE)
        self.lab.cmd(self.name, f"{sys.executable} {script} {listing} {self.remote}")

    def learned(self, since: float) -> list[tuple[float, float]]:
        return results.learned_times(self.lab.events(), self.site, since)

    def learned_addresses(self) -> set[str]:
        return {e["address"] for e in self.lab.events() if e["event"] == Event.TRANSLATION_LEARNED}

    def settle(self, since: float, want: int) -> list[tuple[float, float]]:
        """The translations learnt since ``since`` once ``want`` of them have come, or none has for STALL_S."""
        count, changed = -1, time.monotonic()
        deadline = changed + READY_TIMEOUT * 4
        while True:
            got, now = self.learned(since), time.monotonic()
            if len(got) >= want or (len(got) == count and now - changed >= STALL_S):
                return got
            if len(got) != count:
                count, changed = len(got), now
            if now > deadline:
                raise EnvError(f"the controller was still learning translations after {deadline - since:.0f} s")
            time.sleep(0.1)

    def rules(self) -> int:
        out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", self.exit], capture_output=True,
                             text=True, check=False).stdout
        return sum(1 for line in out.splitlines() if "cookie=" in line)


def measure(lab: Lab, sizes: list[int], probes: int, burst: int, seed: int, say: Callable[[str], None],
            failed: dict[int, str]) -> list[dict[str, Any]]:
    """The rows of every size reached; a size the controller cannot reach in time is noted in ``failed`` (why)
    and ends the sweep, the sizes before it kept."""
    h, rng, rows = Host(lab), random.Random(seed), []
    for n in sizes:
        try:
            rows += _size(lab, h, n, probes, burst, rng, say)
        except EnvError as exc:  # the machine's (or the controller's) limit, found
            failed[n] = str(exc)
            say(f"{n} translated: {exc}")
            break
    return rows


def _size(lab: Lab, h: Host, n: int, probes: int, burst: int, rng: random.Random,
          say: Callable[[str], None]) -> list[dict[str, Any]]:
    rows = []
    # The addresses already translated: sent from again until each is (a burst's first packets can be lost
    # before they reach the controller, as the burst below measures; a host's retransmission does this).
    pending = h.fresh(max(0, n - h.made))
    for _ in range(FILL_TRIES):
        if not pending:
            break
        t = time.monotonic()
        h.send_from(pending)
        h.settle(t, len(pending))
        pending = [a for a in pending if a not in h.learned_addresses()]
    if pending:
        raise EnvError(f"{len(pending)} addresses were never translated after {FILL_TRIES} datagrams each")
    before, t1 = h.rules(), time.monotonic()
    h.send_from(h.fresh(burst))
    got = h.settle(t1, burst)
    # Past MAX_TRANSLATED the oldest give way as the burst comes in: only the net gain adds rules.
    gained = min(len(got), max(0, MAX_TRANSLATED - n))
    per_s = results.rate(got)
    per_address = round((h.rules() - before) / gained, 2) if gained else None
    say(f"{n} translated: a burst of {burst}: {len(got)} taken in, {per_s} a second, {per_address} rules each")
    for _ in range(probes):
        (a,) = h.fresh(1)
        time.sleep(rng.uniform(*PAUSE_S))  # a seeded pause: no probe lines up with the controller's loops
        rtts = [float(m) for m in RTT.findall(lab.cmd(h.name, f"ping -6 -n -c2 -i 0.2 -W2 -I {a} {h.remote}"))]
        rows.append({"active": n, "first_ms": rtts[0] if len(rtts) == 2 else None,
                     "next_ms": rtts[-1] if rtts else None, "rate_per_s": per_s, "rules_per_address": per_address,
                     "burst": burst, "taken": len(got)})
    return rows


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topology", type=shipped, default="topologies/figure1-pd56.yaml",
                   help="its first site translates per address: nptv6 with an identity longer than /48 "
                        "(default topologies/figure1-pd56.yaml)")
    p.add_argument("--active", default="10,100,1000", help="addresses already translated, comma-separated "
                                                         "(default 10,100,1000)")
    p.add_argument("--probes", type=int, default=20, help="fresh addresses timed one by one at each size "
                                                          "(default 20)")
    p.add_argument("--burst", type=int, default=200, help="fresh addresses sending at once at each size "
                                                          "(default 200)")
    p.add_argument("--seed", type=int, default=1, help="the pauses before each probe (default 1)")
    p.add_argument("--out", help="results directory (default results/new-addresses-<time>)")


def run(args: argparse.Namespace, recipe: Recipe) -> int:
    sizes = sorted(set(numbers(args.active, int, "--active", "counts separated by commas, e.g. 10,100,1000")))
    if sizes[0] < 0 or args.probes < 1 or args.burst < 2:
        raise EnvError("--active must be 0 or more, --probes 1 or more and --burst 2 or more")
    topo = loader.load(args.topology)
    first = topo.sites[0]
    if not (first.approach.profile.translates and not first.approach.profile.edges_map and first.identity
            and first.identity.prefixlen > 48):
        raise EnvError(f"{args.topology}: its first site must run nptv6 with an identity longer than /48 "
                       "(topologies/figure1-pd56.yaml has one)")
    # The addresses already translated stay translated however long the sweep runs: none expires under it.
    topo = dataclasses.replace(topo, sites=(dataclasses.replace(first, translation_idle_s=IDLE_S), *topo.sites[1:]))
    rec = recipe.begin(args.seed)
    failed: dict[int, str] = {}
    with Lab(topo, rec.out, progress=say) as lab:
        rows = measure(lab, sizes, args.probes, args.burst, args.seed, say, failed)
    stats = results.summarise(rows)
    rec.save(topology=topo.name, summary=stats, failed=failed, rows=rows)
    rec.publish(results.markdown(stats) + "".join(f"\n{n:,} translated: not reached ({why})\n"
                                                   for n, why in failed.items()))
    return 1 if failed else 0
