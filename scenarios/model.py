"""Scenario files: checked like topologies (JSON Schema + semantic checks, ``file:line:col`` problems).

A scenario names a topology and, per trial, a fault timeline measured from one clock (the host's monotonic
clock, shared by every namespace): warm-up traffic, then faults at offsets, each restored after its duration.
Its approach, triggers, heartbeat and BGP settings are typed :class:`Overrides` applied to the parsed
topology model; nothing is written back to YAML and parsed again.

The same checker builds the cells of a comparison (:mod:`multi6lab.scenarios.compare`): a cell is scenario
data assembled from a comparison file, and its problems are reported at that file's lines and columns.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import jsonschema
import referencing

from multi6lab.topologies import loader, yamlsrc
from multi6lab.topologies.model import Bgp, Heartbeat, Link, Mobility, Site, Topology
from multi6lab.topologies.yamlsrc import InputError, PathKey, Problem, Source
from multi6lab.vocabulary import Approach, FaultKind, Trigger

SCHEMA_PATH = Path(__file__).with_name("schema.json")
RECORD_S = 2.0  # default measurement time after the first fault (a scenario's or a comparison's record_s)
COMPARISON_SCHEMA_PATH = Path(__file__).parent / "comparisons" / "schema.json"


# -- faults: one type per kind, each with only its own fields ----------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Fault:
    kind: ClassVar[FaultKind]
    at: float = 0.0  # seconds after the trial's fault origin

    def until(self, record_s: float) -> float:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class Timed(Fault):
    duration: float | None = None  # None: until the end of the trial

    def until(self, record_s: float) -> float:
        return self.at + (self.duration if self.duration is not None else record_s)


@dataclass(frozen=True, kw_only=True)
class LinkDown(Timed):
    """The exit's uplink loses carrier, at the ISP's end or the exit's."""

    kind: ClassVar[FaultKind] = FaultKind.LINK_DOWN
    exit: str
    end: Literal["isp", "exit"] = "isp"

    def describe(self) -> str:
        return f"{self.kind} {self.exit} {self.end} end"


@dataclass(frozen=True, kw_only=True)
class Blackhole(Timed):
    """The ISP silently drops what crosses the exit's link (its own BGP, BFD and ND too); carrier stays up."""

    kind: ClassVar[FaultKind] = FaultKind.BLACKHOLE
    exit: str
    direction: Literal["both", "inbound", "outbound"] = "both"

    def describe(self) -> str:
        return f"{self.kind} {self.exit} {self.direction}"


@dataclass(frozen=True, kw_only=True)
class Flap(Fault):
    """The exit's uplink goes down and up ``count`` times, half a ``period`` each."""

    kind: ClassVar[FaultKind] = FaultKind.FLAP
    exit: str
    end: Literal["isp", "exit"] = "isp"
    period: float = 0.2
    count: int = 3

    def until(self, record_s: float) -> float:
        return self.at + self.period * self.count

    def describe(self) -> str:
        return f"{self.kind} {self.exit} {self.count}x{self.period:g}s"


@dataclass(frozen=True, kw_only=True)
class LossBurst(Timed):
    kind: ClassVar[FaultKind] = FaultKind.LOSS_BURST
    exit: str
    percent: float = 10.0

    def describe(self) -> str:
        return f"{self.kind} {self.exit} {self.percent:g}%"


@dataclass(frozen=True, kw_only=True)
class IspOutage(Timed):
    kind: ClassVar[FaultKind] = FaultKind.ISP_OUTAGE
    isp: str

    def describe(self) -> str:
        return f"{self.kind} {self.isp}"


@dataclass(frozen=True, kw_only=True)
class IspUplinkDown(Timed):
    """The ISP loses the core and answers 'no route' (what the icmp trigger reads)."""

    kind: ClassVar[FaultKind] = FaultKind.ISP_UPLINK_DOWN
    exit: str  # the exit whose ISP loses its uplinks

    def describe(self) -> str:
        return f"{self.kind} {self.exit} (ISP's core link)"


@dataclass(frozen=True, kw_only=True)
class Baseline(Timed):
    """Nothing breaks. Its outage must read 0, and its probes' inter-arrival spread is the instrument's
    resolution: a cell per row says how finely the others can be read."""

    kind: ClassVar[FaultKind] = FaultKind.BASELINE

    def describe(self) -> str:
        return f"{self.kind} (nothing broken)"


@dataclass(frozen=True, kw_only=True)
class MappingOutage(Timed):
    """The id-loc mapping service's node loses its link: lookups and registrations go unanswered. Edges
    keep the records they hold (served stale past their TTL), so traffic between known sites must not
    notice; what changes is measured in the lookups (mapping_retry, lookup_ms once it is back)."""

    kind: ClassVar[FaultKind] = FaultKind.MAPPING_OUTAGE

    def describe(self) -> str:
        return f"{self.kind} (the mapping service unreachable)"


FAULT_TYPES: dict[FaultKind, type[Fault]] = {
    cls.kind: cls for cls in (LinkDown, Blackhole, Flap, LossBurst, IspOutage, IspUplinkDown, Baseline,
                              MappingOutage)}


def fault_fields(cls: type[Fault]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


# -- overrides: what a scenario changes in the topology it runs ----------------------------------------------
@dataclass(frozen=True)
class Overrides:
    approach: Approach | None = None
    triggers: tuple[Trigger, ...] | None = None
    heartbeat: Heartbeat | None = None
    bgp: Bgp | None = None
    mobility: Mobility | None = None
    # path profiles re-valued: (name, (delay_ms, jitter_ms, loss_pct)); every link that took the profile gets them
    profiles: tuple[tuple[str, tuple[float | None, float | None, float | None]], ...] = ()

    def sites(self, topo: Topology, site: str) -> list[str]:
        """id-loc needs managed edges at both ends (RFC 4177 5.4), so it applies to every site."""
        return [s.name for s in topo.sites] if self.approach and self.approach.profile.edges_map else [site]

    def apply(self, topo: Topology, site: str) -> Topology:
        """The topology as the scenario runs it. The routing approach has one trigger, routing itself, so
        choosing the approach chooses the trigger too."""
        triggers = self.triggers
        if self.approach and self.approach.profile.bgp and triggers is None:
            triggers = (Trigger.ROUTING,)
        names = self.sites(topo, site)

        def change(s: Site) -> Site:
            return dataclasses.replace(s, approach=self.approach or s.approach, triggers=triggers or s.triggers,
                                       heartbeat=self.heartbeat or s.heartbeat, bgp=self.bgp or s.bgp,
                                       mobility=self.mobility or s.mobility)

        profiles = dict(self.profiles)

        def retime(lk: Link) -> Link:
            if lk.profile not in profiles:
                return lk
            delay, jitter, loss = profiles[lk.profile]
            return dataclasses.replace(lk, delay_ms=delay, jitter_ms=jitter, loss_pct=loss)

        return dataclasses.replace(topo, sites=tuple(change(s) if s.name in names else s for s in topo.sites),
                                   links=tuple(retime(lk) for lk in topo.links))


@dataclass(frozen=True)
class Traffic:
    udp_rate: float = 1000.0
    tcp_sessions: int = 1
    tcp_interval_ms: float = 10.0
    new_sessions: bool = True
    new_session_interval_ms: float = 50.0  # mean gap between fresh clients' starts (exponential)
    attempt_delay_ms: float = 250.0  # RFC 8305's connection attempt delay
    give_up_s: float = 3.0  # how long a client tries before it gives up
    recovery_k: int = 5  # consecutive arrivals that end an outage (results.analysis.stream)
    iperf3_mbit: float | None = None
    pcap: bool = False
    cross_check: bool = True  # capture the probes where they leave the network and recompute each outage
    witness: bool = False  # a second, independent instrument: its own stream, captured at the ISPs (comparisons)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    source: str
    topology_path: Path
    topology: Topology = field(compare=False)  # as the file says
    site: str
    host: str
    remote: str
    overrides: Overrides
    effective: Topology = field(compare=False)  # as run: the overrides applied
    trials: int
    seed: int
    warmup_s: float
    record_s: float
    settle_timeout_s: float
    traffic: Traffic
    faults: tuple[Fault, ...]
    frozen: bool = False  # the controllers stopped over each trial's faults: the data plane alone

    @property
    def phase_span_s(self) -> float:
        """How far a trial's fault is shifted at random: one period of every schedule that could line up with
        it (the site's heartbeats, the UDP probes, the TCP records, the new-connection attempts)."""
        periods = [self.effective.site(self.site).heartbeat.interval_ms / 1000, 1 / self.traffic.udp_rate,
                   self.traffic.tcp_interval_ms / 1000]
        if self.traffic.new_sessions:
            periods.append(self.traffic.new_session_interval_ms / 1000)
        return max(periods)

    def phase(self, trial: int) -> float:
        """Trial ``trial``'s shift of the faults, uniform over ``phase_span_s``: the same seed gives the same
        schedule, so a run can be repeated exactly."""
        return random.Random(self.seed * 1_000_003 + trial).uniform(0.0, self.phase_span_s)

    @property
    def trigger_label(self) -> str:
        site = self.effective.site(self.site)
        label = site.bgp.describe() if site.approach.profile.bgp else "+".join(site.triggers)
        return f"{label}, controllers frozen" if self.frozen else label

    @property
    def detection_bound_ms(self) -> float | None:
        """How long a silent failure may go unnoticed by the site's triggers: BFD's (or else BGP's hold time) for
        routing, the heartbeats' (or id-loc's pair probes') interval x multiplier, or None where no trigger
        watches for silence (link, icmp and transport triggers fire on an event, not a timeout)."""
        site = self.effective.site(self.site)
        if site.approach.profile.bgp:
            bfd = site.bgp.bfd
            return float(bfd.interval_ms * bfd.multiplier) if bfd else float(site.bgp.hold_s * 1000)
        if Trigger.HEARTBEAT in site.triggers or site.approach.profile.edges_map:
            return site.heartbeat.interval_ms * site.heartbeat.multiplier
        return None

    @property
    def approach_label(self) -> Approach:
        return self.effective.site(self.site).approach

    @property
    def approach_detail(self) -> str:
        """The approach as a table names it: mobility says whether a home agent and route optimisation run."""
        site = self.effective.site(self.site)
        if not site.approach.profile.home_address:
            return str(site.approach)
        how = ["home agent" if self.effective.home_agent else "no home agent"]
        how += ["route optimisation"] if site.mobility.route_optimisation else []
        return f"mobility ({', '.join(how)})"


# -- schemas ---------------------------------------------------------------------------------------------------
@cache
def registry() -> referencing.Registry[Any]:
    """The shipped schemas, each under its file URI, so their relative ``$ref``s resolve as an editor's do."""
    docs = [loader.SCHEMA_PATH, SCHEMA_PATH, COMPARISON_SCHEMA_PATH]
    return referencing.Registry().with_resources(
        (p.resolve().as_uri(), referencing.Resource.from_contents(json.loads(p.read_text()))) for p in docs)


@cache
def validator(path: Path) -> jsonschema.Draft202012Validator:
    uri = path.resolve().as_uri()
    return jsonschema.Draft202012Validator({"$ref": uri}, registry=registry())


# -- loading ---------------------------------------------------------------------------------------------------
def load(path: str | Path) -> Scenario:
    return from_source(yamlsrc.load(path))


def from_source(src: Source) -> Scenario:
    """The scenario of an already parsed file (its topology path is relative to the file)."""
    path = Path(src.file)
    if not isinstance(src.data, dict):
        raise InputError([src.problem((), "a scenario is a YAML mapping (name, topology, faults, ...)")])
    return Checker(src, src.data, path.parent, str(path)).build()


Locate = Callable[[PathKey], PathKey]


class Checker:
    """Checks scenario data and builds the :class:`Scenario`, raising :class:`InputError` with every problem.

    ``data`` is what the scenario says; ``src`` is the file problems are reported against, and ``locate`` maps a
    path in ``data`` to a path in ``src`` (the identity for a scenario file; a comparison's cells map their keys
    back to the row or fault that set them).
    """

    def __init__(self, src: Source, data: dict[str, Any], base: Path, source: str,
                 locate: Locate = lambda p: p, topologies: Mapping[Path, Topology] | None = None):
        self.src, self.d, self.base, self.source, self.locate = src, data, base, source, locate
        self.topologies = topologies  # already parsed topologies, by resolved path (a comparison's cells share)
        self.problems: list[Problem] = []

    def err(self, where: PathKey, msg: str, at_key: bool = False) -> None:
        self.problems.append(self.src.problem(self.locate(where), msg, at_key))

    def fail(self) -> InputError:
        return InputError(self.problems)

    def build(self) -> Scenario:
        for err in validator(SCHEMA_PATH).iter_errors(self.d):
            for path, msg, at_key in loader.schema_messages(err):
                self.err(path, msg, at_key)
        if self.problems:
            raise self.fail()
        d = self.d
        tpath = (self.base / d["topology"]).resolve()
        topo = self.topology(tpath)
        site_name = d.get("site", topo.sites[0].name if topo.sites else "")
        if site_name not in {s.name for s in topo.sites}:
            self.err(("site",), f"unknown site '{site_name}' in {tpath.name}")
            raise self.fail()
        site = topo.site(site_name)
        host = d.get("host", site.hosts[0])
        if host not in site.hosts:
            self.err(("host",), f"'{host}' is not a host of site {site_name}")
        others = [r.name for r in topo.remotes] + [h for s in topo.sites if s.name != site_name for h in s.hosts]
        remote = d.get("remote", others[0] if others else "")
        if remote not in others:
            self.err(("remote",), f"'{remote}' is neither a remote nor a host of another site"
                     if remote else "the topology has no remote host or other site to talk to")
        overrides = self.overrides()
        effective = self.effective(topo, tpath, site_name, overrides)
        record_s = float(d.get("record_s", RECORD_S))
        faults = [self.fault(i, f, site_name, effective, record_s) for i, f in enumerate(d["faults"])]
        if self.problems:
            raise self.fail()
        return Scenario(
            name=d["name"], description=d.get("description", ""), source=self.source, topology_path=tpath,
            topology=topo, site=site_name, host=host, remote=remote, overrides=overrides, effective=effective,
            trials=int(d.get("trials", 10)), seed=int(d.get("seed", 1)), warmup_s=float(d.get("warmup_s", 0.5)),
            record_s=record_s, settle_timeout_s=float(d.get("settle_timeout_s", 20.0)),
            traffic=Traffic(**d.get("traffic", {})), faults=tuple(f for f in faults if f),
            frozen=d.get("controllers") == "frozen")

    def topology(self, tpath: Path) -> Topology:
        if self.topologies is not None and tpath in self.topologies:
            return self.topologies[tpath]
        try:
            return loader.load(tpath)
        except InputError as exc:
            first = exc.problems[0] if exc.problems else None
            why = f": {first.message} ({first.file}:{first.line})" if first else ""
            self.err(("topology",), f"topology {self.d['topology']} does not load{why}")
            raise self.fail() from None

    def overrides(self) -> Overrides:
        d = self.d
        approach = d.get("approach")
        return Overrides(
            approach=Approach(approach) if approach is not None else None,
            triggers=tuple(Trigger(t) for t in d["triggers"]) if "triggers" in d else None,
            heartbeat=loader.heartbeat(d["heartbeat"]) if "heartbeat" in d else None,
            bgp=Bgp.from_dict(d["bgp"]) if "bgp" in d else None,
            mobility=loader.mobility(d["mobility"]) if "mobility" in d else None,
            profiles=tuple((name, (_ms(v.get("delay_ms")), _ms(v.get("jitter_ms")), _ms(v.get("loss_pct"))))
                           for name, v in sorted((d.get("profiles") or {}).items())))

    def effective(self, topo: Topology, tpath: Path, site: str, overrides: Overrides) -> Topology:
        """The topology with this scenario's overrides; a combination it cannot run (an approach without the
        prefix it needs, triggers of another approach) is reported at the scenario's key that asked for it."""
        effective = overrides.apply(topo, site)
        isps = {i.name: i for i in effective.isps}
        for name in overrides.sites(topo, site):
            for path, message in loader.site_problems(effective.site(name), isps):
                dotted = yamlsrc.dotted(path).split(".")
                key = next((k for k in ("bgp", "heartbeat", "triggers") if k in dotted and k in self.d), None)
                self.err((key or ("approach" if "approach" in self.d else "topology"),),
                         f"{tpath.name} cannot run as this scenario asks: {message}")
        taken = sorted({lk.profile for lk in topo.links if lk.profile})
        for name, _ in overrides.profiles:
            if name not in taken:
                self.err(("profiles", name), f"no link of {tpath.name} takes path profile '{name}' (they take: "
                                             f"{', '.join(taken) or 'none'})")
        idloc = [s.name for s in effective.sites if s.approach.profile.edges_map]
        if len(idloc) > 1 and effective.mapping is None:
            self.err(("approach" if "approach" in self.d else "topology",),
                     f"{tpath.name} cannot run as this scenario asks: its id-loc sites ({', '.join(idloc)}) find "
                     "each other through a mapping service, and it has none ('mapping: {server: <a remote>}')")
        return effective

    def fault(self, i: int, f: dict[str, Any], site_name: str, topo: Topology, record_s: float) -> Fault | None:
        where: PathKey = ("faults", i)
        before = len(self.problems)
        cls = FAULT_TYPES[FaultKind(f["kind"])]
        own = fault_fields(cls)
        for key in f:
            if key != "kind" and key not in own:
                self.err((*where, key), f"'{key}' does not apply to a {cls.kind} fault (its fields: "
                                        f"{', '.join(own)})")
        site = topo.site(site_name)
        if "isp" in own:
            isps = sorted({e.isp for e in site.exits})
            if f.get("isp") not in isps:
                self.err((*where, "isp"), f"{cls.kind} needs 'isp', one of {', '.join(isps)}")
        elif "exit" in own and f.get("exit") not in {e.name for e in site.exits}:
            self.err((*where, "exit"), f"{cls.kind} needs 'exit', one of {', '.join(e.name for e in site.exits)}")
        if cls is MappingOutage and topo.mapping is None:
            self.err((*where, "kind"), f"{cls.kind} needs a topology with a mapping service ('mapping:')")
        if len(self.problems) > before:
            return None
        fault = cls(**{k: v for k, v in f.items() if k in own})
        if fault.at >= record_s:
            self.err((*where, "at"), f"the fault starts at {fault.at:g} s, after the trial ends "
                                     f"(record_s {record_s:g})")
        return fault


def _ms(value: Any) -> float | None:
    return None if value is None else float(value)
