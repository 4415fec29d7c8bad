"""``multi6lab upgrade``: a peer gains id-loc support while sessions with it are live (RFC 4177 6.3.5).

Each trial brings a lab up afresh with every site on id-loc but the second site's edge running without
support: it has no key for the mapping service, never registers, and talks plain IPv6 to everyone; the first
site finds it out (the registry knows the delegation, but no locators are registered) and falls back to plain
IPv6 too. The first site's host then opens TCP sessions to the second's host by its locator (its public
address, as a site without id-loc would publish it) and both hosts stream UDP probes to each other's locator.
After a seeded pause the second site's controller restarts with its key, registers, reads back from its
switches which sources it had found plain, and both edges look each other up: each upgrades the other while
the sessions run. Read: when each edge upgraded, probes lost, TCP sessions that lived, echo round trips.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from multi6lab.experiments.firstcontact import every_site_idloc
from multi6lab.experiments.recipe import Recipe, say, shipped
from multi6lab.lab.emulation import EnvError
from multi6lab.lab.lifecycle import READY_TIMEOUT, Lab, wait_for
from multi6lab.lab.runner import LATE_S, PROBE, finish, read_rows
from multi6lab.results import upgrade
from multi6lab.topologies.model import Topology
from multi6lab.topologies.plan import Plan, build

TCP_SESSIONS = 4
TCP_PORT = 7100
UDP_PORT = 7200
RATE = 200.0  # probes per second each way
WARMUP_S = 2.0  # sessions and streams run this long before the peer gains support ...
PAUSE_S = (0.0, 1.0)  # ... plus a seeded pause, so that the restart lines up with no probe or timer
AFTER_S = 3.0  # and this long after both edges have upgraded
ECHOES = 20


def parties(plan: Plan) -> tuple[str, str, str, str, str, str]:
    """(near site, its host, far site, its host, the far host's locator, the near host's locator)."""
    idloc = [sp for sp in plan.sites if sp.site.identity is not None]
    if len(idloc) < 2 or plan.topology.mapping is None:
        raise EnvError(f"{plan.topology.name} needs two sites with identity prefixes and a mapping service "
                       "('mapping: {server: <a remote>}') for a peer to gain id-loc support")
    near, far = idloc[0], idloc[1]
    locator = {sp.site.name: str(sp.hosts[0].locators[sp.exits[0].name]) for sp in (near, far)}
    return (near.site.name, near.hosts[0].name, far.site.name, far.hosts[0].name, locator[far.site.name],
            locator[near.site.name])


def trial(topology: Topology, d: Path, k: int, rng: random.Random, say: Callable[[str], None]) -> dict[str, Any]:
    near, h1, far, h2, far_loc, near_loc = parties(build(topology))
    with Lab(topology, d, unsupported={far}) as lab:
        far_identity = str(next(sp for sp in lab.plan.sites if sp.site.name == far).hosts[0].addresses["identity"])
        total = WARMUP_S + PAUSE_S[1] + READY_TIMEOUT + AFTER_S
        listen = ["--duration", str(total + 5)]
        servers = [lab.popen(h2, [*PROBE, "tcp-server", "--port", str(TCP_PORT + i), "--sessions", "1", *listen,
                                  "--out", str(d / f"tcp{i}-server.csv")]) for i in range(TCP_SESSIONS)]
        receivers = [lab.popen(h2, [*PROBE, "recv", "--port", str(UDP_PORT), *listen, "--out", str(d / "out.csv")]),
                     lab.popen(h1, [*PROBE, "recv", "--port", str(UDP_PORT), *listen, "--out", str(d / "in.csv")])]
        for node, port, proto in [(h2, UDP_PORT, "udp"), (h1, UDP_PORT, "udp"),
                                  *((h2, TCP_PORT + i, "tcp") for i in range(TCP_SESSIONS))]:
            lab.wait_bound(node, port, proto)
        plain_before = lab.ping_ms(h1, far_loc, ECHOES)  # also the first contact: s1 finds the peer plain
        start = time.monotonic() + 0.5
        duration = WARMUP_S + PAUSE_S[1] + 2 * AFTER_S
        common = ["--duration", str(duration), "--start-at", f"{start:.6f}"]
        senders = [lab.popen(h1, [*PROBE, "send", "--dst", far_loc, "--port", str(UDP_PORT), "--rate", str(RATE),
                                  "--out", str(d / "out-send.csv"), *common]),
                   lab.popen(h2, [*PROBE, "send", "--dst", near_loc, "--port", str(UDP_PORT), "--rate", str(RATE),
                                  "--out", str(d / "in-send.csv"), *common])]
        clients = [lab.popen(h1, [*PROBE, "tcp-client", "--dst", far_loc, "--port", str(TCP_PORT + i),
                                  "--interval", "0.01", "--out", str(d / f"tcp{i}-client.csv"), *common])
                   for i in range(TCP_SESSIONS)]
        time.sleep(max(0.0, start + WARMUP_S + rng.uniform(*PAUSE_S) - time.monotonic()))
        t_enable = time.monotonic()
        lab.restart_controller(far)  # the peer's edge comes back with its key: it registers and looks up
        wait_for(f"{near} and {far} to map each other",
                 lambda: all(upgrade.upgraded_at(lab.events(), a, b, t_enable) is not None
                             for a, b in ((near, far), (far, near))), READY_TIMEOUT)
        events = lab.events()
        t_near = upgrade.upgraded_at(events, near, far, t_enable)
        t_far = upgrade.upgraded_at(events, far, near, t_enable)
        assert t_near is not None and t_far is not None
        plain_after = lab.ping_ms(h1, far_loc, ECHOES)
        first = lab.ping_ms(h1, far_identity)  # a new session, by identity: mapped both ways
        idloc = lab.ping_ms(h1, far_identity, ECHOES)
        for p in [*senders, *clients]:
            finish(p, duration + 10)
        time.sleep(LATE_S)  # the last probes in flight
        for p in [*receivers, *servers]:
            p.terminate()
            finish(p, 5)
        for p in [*senders, *clients, *receivers, *servers]:
            if p.returncode and p.returncode > 0:
                raise EnvError(f"trial {k}: a probe failed (exit {p.returncode}); its output is in {d}")
    sent = int(duration * RATE)
    lost_out, gap_out = upgrade.udp(read_rows(d / "out.csv"), sent)
    lost_in, gap_in = upgrade.udp(read_rows(d / "in.csv"), sent)
    done = max(t_near, t_far)
    lived = sum(upgrade.survived(read_rows(d / f"tcp{i}-client.csv"), read_rows(d / f"tcp{i}-server.csv"), done)
                for i in range(TCP_SESSIONS))
    row = {"trial": k, "near_upgrade_ms": round((t_near - t_enable) * 1000, 3),
           "far_upgrade_ms": round((t_far - t_enable) * 1000, 3), "udp_lost": lost_out + lost_in,
           "udp_gap_ms": max((g for g in (gap_out, gap_in) if g is not None), default=None),
           "plain_before_ms": plain_before, "plain_after_ms": plain_after, "idloc_ms": idloc,
           "identity_first_ms": first, "tcp_sessions": TCP_SESSIONS, "tcp_survived": lived}
    say(f"trial {k}: upgraded after {row['near_upgrade_ms']:.0f} ms ({near}) and {row['far_upgrade_ms']:.0f} ms "
        f"({far}); {row['udp_lost']} probes lost, longest gap {row['udp_gap_ms']} ms; TCP {lived}/{TCP_SESSIONS}; "
        f"echo plain {plain_before} -> {plain_after} ms, id-loc {idloc} ms")
    return row


def measure(topology: Topology, out: Path, trials: int, seed: int, say: Callable[[str], None]) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [trial(topology, out / f"trial-{k:02d}", k, rng, say) for k in range(1, trials + 1)]


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("topology", nargs="?", type=shipped, default="topologies/two-sites.yaml", metavar="TOPOLOGY",
                   help="two sites with identity prefixes and a mapping service (default topologies/two-sites.yaml)")
    p.add_argument("--trials", type=int, default=20, help="upgrades measured, a lab each (default 20)")
    p.add_argument("--seed", type=int, default=1, help="the pauses before each upgrade (default 1)")
    p.add_argument("--out", help="results directory (default results/upgrade-<time>)")


def run(args: argparse.Namespace, recipe: Recipe) -> int:
    topo = every_site_idloc(args.topology)
    parties(build(topo))  # a topology without two sites or a mapping service says so before bring-up
    rec = recipe.begin(args.seed)
    say(f"a peer gains id-loc support mid-session on {topo.name}, {args.trials} trials (a lab each) -> {rec.out}")
    rows = measure(topo, rec.out, args.trials, args.seed, say)
    stats = upgrade.summarise(rows)
    rec.save(topology=topo.name, trials=len(rows), summary=stats, rows=rows)
    rec.publish(upgrade.markdown(stats))
    return 0 if stats["tcp_survived"] == stats["tcp_sessions"] else 1
