"""Scenario files: validated like topologies (JSON Schema + semantic checks, ``file:line:col`` problems).

A scenario names a topology and, per trial, a fault timeline measured from one clock (the host's monotonic
clock, shared by every namespace): warm-up traffic, then faults at offsets, each restored after its duration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from topologies import loader, yamlsrc
from topologies.model import IMPLEMENTED_APPROACHES, IMPLEMENTED_TRIGGERS, Topology
from topologies.yamlsrc import InputError, PathKey, Problem, Source

SCHEMA_PATH = Path(__file__).with_name("schema.json")


@dataclass(frozen=True)
class Fault:
    kind: str
    at: float
    duration: float | None  # None: until the end of the trial
    exit: str | None = None
    isp: str | None = None
    end: str = "isp"
    direction: str = "both"
    period: float = 0.2
    count: int = 3
    percent: float = 10.0

    def until(self, record_s: float) -> float:
        if self.kind == "flap":
            return self.at + self.period * self.count
        return self.at + (self.duration if self.duration is not None else record_s)

    def describe(self) -> str:
        target = self.exit or self.isp
        extra = {"link_down": f"{self.end} end", "blackhole": self.direction, "loss_burst": f"{self.percent:g}%",
                 "flap": f"{self.count}x{self.period:g}s", "isp_outage": "", "isp_uplink_down": "(ISP's core link)"
                 }[self.kind]
        return " ".join(x for x in (self.kind, target, extra) if x)


@dataclass(frozen=True)
class Traffic:
    udp_rate: float = 1000.0
    tcp_sessions: int = 1
    tcp_interval_ms: float = 10.0
    new_sessions: bool = True
    new_session_interval_ms: float = 50.0
    iperf3_mbit: float | None = None
    pcap: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    source: str
    topology_path: Path
    topology: Topology = field(compare=False)
    site: str
    host: str
    remote: str
    approach: str | None
    triggers: tuple[str, ...] | None
    heartbeat: dict[str, Any] | None
    bgp: dict[str, Any] | None
    effective: Topology = field(compare=False)  # the topology as run, with the overrides applied
    trials: int
    seed: int
    warmup_s: float
    record_s: float
    settle_timeout_s: float
    traffic: Traffic
    faults: tuple[Fault, ...]

    @property
    def trigger_label(self) -> str:
        site = self.effective.site(self.site)
        return site.bgp.describe() if site.approach == "routing" else "+".join(site.triggers)

    @property
    def approach_label(self) -> str:
        return self.effective.site(self.site).approach


def effective_data(topology: dict[str, Any], site: str, approach: str | None, triggers: list[str] | None,
                   heartbeat: dict[str, Any] | None, bgp: dict[str, Any] | None) -> dict[str, Any]:
    """The topology document as a scenario runs it: its approach, triggers, heartbeat and bgp override the site's.

    id-loc needs managed edges at both ends (RFC 4177 5.4), so it applies to every site. The routing approach
    has one trigger, routing itself, so choosing the approach chooses the trigger too.
    """
    data: dict[str, Any] = json.loads(json.dumps(topology))  # a deep copy of plain YAML data
    if approach == "routing" and triggers is None:
        triggers = ["routing"]
    for name in (list(data["sites"]) if approach == "id-loc" else [site]):
        for key, value in (("approach", approach), ("triggers", triggers), ("heartbeat", heartbeat),
                           ("bgp", bgp)):
            if value is not None:
                data["sites"][name][key] = value
    return data


@cache
def schema() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return result


def looks_like_scenario(path: str | Path) -> bool:
    """A scenario names a ``topology:`` at the top level; a topology never does."""
    try:
        src = yamlsrc.load(path)
    except InputError:
        return Path(path).parent.name == "scenarios"
    return isinstance(src.data, dict) and "topology" in src.data


def load(path: str | Path) -> Scenario:
    src = yamlsrc.load(path)
    if not isinstance(src.data, dict):
        raise InputError([src.problem((), "a scenario is a YAML mapping (name, topology, faults, ...)")])
    problems = loader.schema_problems(src, schema())
    if problems:
        raise InputError(problems)
    return _Checker(src, Path(path)).build()


class _Checker:
    def __init__(self, src: Source, path: Path):
        self.src, self.path, self.d = src, path, src.data
        self.problems: list[Problem] = []

    def err(self, where: PathKey, msg: str) -> None:
        self.problems.append(self.src.problem(where, msg))

    def build(self) -> Scenario:
        d = self.d
        tpath = (self.path.parent / d["topology"]).resolve()
        try:
            topo = loader.load(tpath)
        except InputError as exc:
            first = exc.problems[0] if exc.problems else None
            why = f": {first.message} ({first.file}:{first.line})" if first else ""
            self.err(("topology",), f"topology {d['topology']} does not load{why}")
            raise InputError(self.problems) from None
        site_name = d.get("site", topo.sites[0].name)
        if site_name not in {s.name for s in topo.sites}:
            self.err(("site",), f"unknown site '{site_name}' in {tpath.name}")
            raise InputError(self.problems)
        site = topo.site(site_name)
        host = d.get("host", site.hosts[0])
        if host not in site.hosts:
            self.err(("host",), f"'{host}' is not a host of site {site_name}")
        others = [r.name for r in topo.remotes] + [h for s in topo.sites if s.name != site_name for h in s.hosts]
        remote = d.get("remote", others[0] if others else "")
        if remote not in others:
            self.err(("remote",), f"'{remote}' is neither a remote nor a host of another site"
                     if remote else "the topology has no remote host or other site to talk to")
        for t in d.get("triggers", []):
            if t not in IMPLEMENTED_TRIGGERS:
                self.err(("triggers",), f"trigger '{t}' is not implemented yet "
                                        f"({', '.join(IMPLEMENTED_TRIGGERS)} are)")
        approach = d.get("approach")
        if approach is not None and approach not in IMPLEMENTED_APPROACHES:
            self.err(("approach",), f"approach '{approach}' is not implemented yet "
                                    f"({', '.join(IMPLEMENTED_APPROACHES)} are)")
        effective = self.effective(tpath, site_name, approach)
        exits = {e.name for e in site.exits}
        isps = {e.isp for e in site.exits}
        faults = []
        record_s = float(d.get("record_s", 2.0))
        for i, f in enumerate(d["faults"]):
            faults.append(self.fault(i, f, exits, isps, record_s))
        if self.problems:
            raise InputError(self.problems)
        tr = d.get("traffic", {})
        return Scenario(
            name=d["name"], description=d.get("description", ""), source=str(self.path), topology_path=tpath,
            topology=topo, site=site_name, host=host, remote=remote, approach=approach,
            triggers=tuple(d["triggers"]) if "triggers" in d else None, heartbeat=d.get("heartbeat"),
            bgp=d.get("bgp"), effective=effective, trials=int(d.get("trials", 10)), seed=int(d.get("seed", 1)),
            warmup_s=float(d.get("warmup_s", 0.5)),
            record_s=record_s, settle_timeout_s=float(d.get("settle_timeout_s", 20.0)),
            traffic=Traffic(**tr), faults=tuple(faults))

    def effective(self, tpath: Path, site: str, approach: str | None) -> Topology:
        """Load the topology with this scenario's overrides, so that a combination the topology cannot run
        (an approach without the prefix it needs, triggers of another approach) is reported here, by key."""
        d = self.d
        data = effective_data(yaml.safe_load(tpath.read_text()), site, approach, d.get("triggers"),
                              d.get("heartbeat"), d.get("bgp"))
        try:
            return loader.loads(yaml.safe_dump(data, sort_keys=False), str(tpath))
        except InputError as exc:
            for p in exc.problems:
                key = next((k for k in ("bgp", "heartbeat", "triggers") if k in p.path.split(".") and k in d), None)
                self.err((key or ("approach" if "approach" in d else "topology"),),
                         f"{tpath.name} cannot run as this scenario asks: {p.message}")
            raise InputError(self.problems) from None

    def fault(self, i: int, f: dict[str, Any], exits: set[str], isps: set[str], record_s: float) -> Fault:
        where: PathKey = ("faults", i)
        kind = f["kind"]
        if kind == "isp_outage":
            if f.get("isp") not in isps:
                self.err((*where, "isp"), f"isp_outage needs 'isp', one of {', '.join(sorted(isps))}")
        elif f.get("exit") not in exits:
            self.err((*where, "exit"), f"{kind} needs 'exit', one of {', '.join(sorted(exits))}")
        fault = Fault(kind=kind, at=float(f.get("at", 0.0)), duration=f.get("duration"), exit=f.get("exit"),
                      isp=f.get("isp"), end=f.get("end", "isp"), direction=f.get("direction", "both"),
                      period=float(f.get("period", 0.2)), count=int(f.get("count", 3)),
                      percent=float(f.get("percent", 10.0)))
        if fault.at >= record_s:
            self.err((*where, "at"), f"the fault starts at {fault.at:g} s, after the trial ends "
                                     f"(record_s {record_s:g})")
        return fault
