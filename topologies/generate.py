"""Topologies of N multihomed sites on M ISPs, written for the loader to check like any hand-written file (pure).

Scale experiments need more sites than anyone writes by hand. The layout follows RFC 4177 Figure 1, repeated:
one core router (with the remote hosts), M ISPs linked to it, and N sites, each with a fabric, its hosts and
one exit per ISP it is multihomed to. Which ISPs a site uses is drawn from ``seed``, so the same parameters
always give the same file. Addressing:

* ISP j: AS 64501+j, PA prefix 3fff:1jj::/32 (j in hex, from 0x100); its first /56 numbers its links.
* site s: delegation 3fff:1jj:s+1::/48 from each of its ISPs, identity fd00:s::/48, PI prefix 3fff:fe:s::/48
  and private AS 4200000000+s (RFC 6996) for the routing approach.
* remote k: 3fff:ff:(0x100+k)::/64 on the core (the core's own links use 3fff:ff::/48).
* with id-loc, a remote ``map`` on 3fff:ff:53::/64 runs the mapping service.
* ``correspondent`` (id-loc): one more site, ``far``, numbered N, on two ISPs of its own (M and M+1), for
  the N sites to talk to. An id-loc site's failover is a change of locator pair with an id-loc peer; a plain
  remote is reached as nptv6 reaches it, and a full mesh between the N sites costs N(N-1) pair contexts.
  ``far`` is that peer, and an outage of the first M ISPs never reaches it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import yaml

from multi6lab.vocabulary import Approach, Trigger

MAX_SITES = 0xFFFE  # one /48 per site in each ISP's /32
CORRESPONDENT = "far"  # the id-loc correspondent site's name
MAX_ISPS = 400  # AS 64501-64900 and PA prefixes 3fff:100::/32 up, clear of the core's (64500, 3fff:ff::/48)


@dataclass(frozen=True)
class Shape:
    sites: int
    isps: int
    exits: int = 2  # ISPs each site is multihomed to
    hosts: int = 1  # per site
    remotes: int = 1
    approach: Approach = Approach.NPTV6
    triggers: tuple[Trigger, ...] = (Trigger.LINK, Trigger.HEARTBEAT)
    seed: int = 1
    bfd_ms: int | None = None  # routing: BFD on the exits' sessions at this interval (x3), BGP 1/3 s
    heartbeat_ms: float | None = None  # the heartbeat trigger's (and id-loc's pair probes') interval, x3; default 10
    correspondent: bool = False  # id-loc: a site ``far`` on two ISPs of its own, for the others to talk to

    @property
    def bgp(self) -> dict[str, Any] | None:
        if self.approach != Approach.ROUTING or self.bfd_ms is None:
            return None
        return {"keepalive_s": 1, "hold_s": 3, "bfd": {"interval_ms": self.bfd_ms, "multiplier": 3}}

    def problems(self) -> list[str]:
        out = []
        if not 1 <= self.sites <= MAX_SITES:
            out.append(f"--sites must be 1 to {MAX_SITES}")
        if not 1 <= self.isps <= MAX_ISPS - (2 if self.correspondent else 0):
            out.append(f"--isps must be 1 to {MAX_ISPS}" + (", less the correspondent's 2" if self.correspondent
                                                              else ""))
        if self.correspondent and (self.approach != Approach.ID_LOC or self.sites >= MAX_SITES):
            out.append(f"--correspondent is an id-loc peer for at most {MAX_SITES - 1} id-loc sites")
        if not 1 <= self.exits <= self.isps:
            out.append(f"--exits must be 1 to the number of ISPs ({self.isps}): a site has one exit per ISP")
        if self.hosts < 1 or self.remotes < 0:
            out.append("--hosts must be 1 or more and --remotes 0 or more")
        if self.bfd_ms is not None and (self.approach != Approach.ROUTING or self.bfd_ms < 1):
            out.append("--bfd is a positive interval in ms, for --approach routing")
        probed = Trigger.HEARTBEAT in self.triggers or self.approach == Approach.ID_LOC
        if self.heartbeat_ms is not None and (not probed or self.heartbeat_ms <= 0):
            out.append("--heartbeat-ms is a positive interval in ms, for the heartbeat trigger or id-loc's "
                       "locator-pair probes")
        return out


def topology(shape: Shape) -> dict[str, Any]:
    """The topology document (plain YAML data) for ``shape``; check ``shape.problems()`` first."""
    rng = random.Random(shape.seed)
    total = shape.isps + (2 if shape.correspondent else 0)
    isps = {f"isp{j}": {"asn": 64501 + j, "prefix": f"3fff:{0x100 + j:x}::/32"} for j in range(total)}
    links: list[dict[str, Any]] = []
    next_port: dict[str, int] = {"core": 1}
    for j in range(total):
        next_port[f"isp{j}"] = 1
        links.append({"endpoints": [f"isp{j}:eth0", f"core:eth{_take(next_port, 'core')}"]})
    remotes = {}
    for k in range(shape.remotes):
        remotes[f"r{k}"] = {"prefix": f"3fff:ff:{0x100 + k:x}::/64"}
        links.append({"endpoints": [f"r{k}:eth0", f"core:eth{_take(next_port, 'core')}"]})
    if shape.approach == Approach.ID_LOC:
        remotes["map"] = {"prefix": "3fff:ff:53::/64"}
        links.append({"endpoints": ["map:eth0", f"core:eth{_take(next_port, 'core')}"]})
    sites = {}
    numbered = [(f"s{s}", s, sorted(rng.sample(range(shape.isps), shape.exits))) for s in range(shape.sites)]
    if shape.correspondent:
        numbered.append((CORRESPONDENT, shape.sites, [shape.isps, shape.isps + 1]))
    for name, s, chosen in numbered:
        fabric = f"{name}sw"
        hosts = [f"{name}h{h}" for h in range(shape.hosts)]
        exits = {f"{name}e{j}": {"isp": f"isp{j}", "delegation": f"3fff:{0x100 + j:x}:{s + 1:x}::/48"}
                 for j in chosen}
        sites[name] = {"identity": f"fd00:{s:x}::/48", "pi": f"3fff:fe:{s:x}::/48", "asn": 4200000000 + s,
                       "fabric": fabric, "exits": exits, "hosts": hosts}
        port = 1
        for h in hosts:
            links.append({"endpoints": [f"{h}:eth0", f"{fabric}:eth{port}"]})
            port += 1
        for e, spec in exits.items():
            links.append({"endpoints": [f"{fabric}:eth{port}", f"{e}:eth1"]})
            links.append({"endpoints": [f"{e}:eth2", f"{spec['isp']}:eth{_take(next_port, spec['isp'])}"]})
            port += 1
    triggers = [Trigger.ROUTING.value] if shape.approach == Approach.ROUTING else [t.value for t in shape.triggers]
    doc = {
        "name": f"generated-{shape.sites}s-{shape.isps}i",
        "description": f"{shape.sites} sites, each multihomed to {shape.exits} of {shape.isps} ISPs"
                       + (f", and their correspondent {CORRESPONDENT} on 2 more" if shape.correspondent else "")
                       + f" (multi6lab generate, seed {shape.seed})",
        "defaults": {"site": {"approach": shape.approach.value, "triggers": triggers,
                              **({"bgp": shape.bgp} if shape.bgp else {}),
                              **({"heartbeat": {"interval_ms": shape.heartbeat_ms}}
                                 if shape.heartbeat_ms is not None else {})}},
        "core": {"core": {"prefix": "3fff:ff::/48"}},
        "isps": isps, "sites": sites, "remotes": remotes, "links": links,
    }
    if shape.approach == Approach.ID_LOC:
        doc["mapping"] = {"server": "map"}
    return doc


def _take(counter: dict[str, int], node: str) -> int:
    """The next free interface number of ``node``."""
    n = counter[node]
    counter[node] = n + 1
    return n


def dumps(shape: Shape) -> str:
    return (f"# Generated by: multi6lab generate --sites {shape.sites} --isps {shape.isps} --exits {shape.exits} "
            f"--hosts {shape.hosts} --remotes {shape.remotes} --approach {shape.approach} "
            f"--triggers {','.join(shape.triggers)} --seed {shape.seed}"
            + (f" --bfd {shape.bfd_ms}" if shape.bfd_ms is not None else "")
            + (f" --heartbeat-ms {shape.heartbeat_ms:g}" if shape.heartbeat_ms is not None else "")
            + (" --correspondent" if shape.correspondent else "") + "\n"
            + yaml.safe_dump(topology(shape), sort_keys=False, width=120))
