"""The validated, frozen topology model: what every other part of multi6lab reads.

Only the loader builds these objects; everything downstream (Topo description, controller policy, scenarios)
takes them as facts. Prefixes are ``ipaddress`` objects, names are plain strings, order is declaration order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv6Network
from typing import Any, Literal

from multi6lab.vocabulary import Approach, ExitPolicy, Trigger

NodeKind = Literal["core", "isp", "exit", "fabric", "host", "remote"]
CORE_ASN = 64500
SITE_ASN_BASE = 65000


@dataclass(frozen=True)
class Endpoint:
    node: str
    intf: str  # "ethN"

    @property
    def port(self) -> int:
        """The interface number, which is also the OpenFlow port number on a switch."""
        return int(self.intf[3:])

    def __str__(self) -> str:
        return f"{self.node}:{self.intf}"


@dataclass(frozen=True)
class Link:
    a: Endpoint
    b: Endpoint
    bw: float | None = None  # Mbit/s
    delay_ms: float | None = None  # one way, each direction
    loss_pct: float | None = None
    jitter_ms: float | None = None  # uniform, either way of delay_ms (netem's jitter)
    profile: str | None = None  # the path profile it took its delay, jitter and loss from

    def other(self, node: str) -> Endpoint:
        return self.b if self.a.node == node else self.a

    def end(self, node: str) -> Endpoint:
        return self.a if self.a.node == node else self.b

@dataclass(frozen=True)
class CoreRouter:
    name: str
    prefix: IPv6Network
    asn: int = CORE_ASN


@dataclass(frozen=True)
class Isp:
    name: str
    asn: int
    prefix: IPv6Network  # PA prefix
    infra: IPv6Network  # numbers the ISP's links (inside prefix)
    ingress_filter: bool = True


@dataclass(frozen=True)
class Exit:
    name: str
    site: str
    isp: str
    delegation: IPv6Network
    preference: int
    weight: int = 1  # load-share: this exit's share of the flows, relative to the others'


@dataclass(frozen=True)
class Heartbeat:
    interval_ms: float = 10.0
    multiplier: int = 3


@dataclass(frozen=True)
class Bfd:
    interval_ms: int = 300
    multiplier: int = 3


@dataclass(frozen=True)
class Bgp:
    """The routing approach's failure detection: BGP keepalive/hold timers, optionally BFD on exit sessions."""

    keepalive_s: int = 60
    hold_s: int = 180
    bfd: Bfd | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Bgp:
        """From a schema-checked ``bgp:`` mapping (a topology's site or a scenario), defaults filled in."""
        bfd = d.get("bfd")
        return cls(**{k: int(v) for k, v in d.items() if k != "bfd"},
                   bfd=None if bfd is None else Bfd(**{k: int(v) for k, v in bfd.items()}))

    @property
    def timers(self) -> tuple[int, int]:
        return (self.keepalive_s, self.hold_s)

    def describe(self) -> str:
        text = f"bgp {self.keepalive_s}/{self.hold_s} s"
        return text + (f", bfd {self.bfd.interval_ms} ms x{self.bfd.multiplier}" if self.bfd else "")


@dataclass(frozen=True)
class Mobility:
    """A mobility site's Mobile IPv6 (RFC 6275; RFC 4177 5.2). With ``route_optimisation`` each host binds its
    correspondents directly once a return-routability test succeeds; a correspondent keeps such a binding
    for at most ``binding_lifetime_s`` (MAX_RR_BINDING_LIFETIME, 420 s). A shorter value runs all of return
    routability's clocks faster by the same factor (:class:`multi6lab.mobility.binding.Lifetimes`)."""

    route_optimisation: bool = False
    binding_lifetime_s: int = 420


TRANSLATION_IDLE_S = 300.0


@dataclass(frozen=True)
class Site:
    name: str
    approach: Approach
    triggers: tuple[Trigger, ...]
    exit_policy: ExitPolicy
    heartbeat: Heartbeat
    fabric: str
    exits: tuple[Exit, ...]  # in preference order
    hosts: tuple[str, ...]
    identity: IPv6Network | None = None
    pi: IPv6Network | None = None
    asn: int = SITE_ASN_BASE
    bgp: Bgp = Bgp()
    subnets: int = 1  # nptv6, id-loc: the /64s of the identity prefix advertised to hosts (subnets 0..n-1)
    mobility: Mobility = Mobility()
    # nptv6 beyond /48: a translation the controller learnt goes after this long without a packet through any
    # exit (a rotated temporary address's, RFC 8981); a packet of it later is learnt again, not lost.
    translation_idle_s: float | None = None  # None: TRANSLATION_IDLE_S

    @property
    def translation_idle(self) -> float:
        return TRANSLATION_IDLE_S if self.translation_idle_s is None else self.translation_idle_s

    def exit(self, name: str) -> Exit:
        return next(e for e in self.exits if e.name == name)


@dataclass(frozen=True)
class Remote:
    name: str
    prefix: IPv6Network


@dataclass(frozen=True)
class MappingServer:
    """The id-loc mapping service: a DNS server on remote ``server``; sites register records with ``ttl_s``."""

    server: str
    ttl_s: int = 30


@dataclass(frozen=True)
class HomeAgent:
    """Mobile IPv6's home agent: remote ``node``, to which the core routes ``home``. Hosts of mobility sites
    take their home addresses from its first /64. Without one, a host's home address is its address through
    its site's first exit, RFC 4177 section 5.2's own case."""

    node: str
    home: IPv6Network


@dataclass(frozen=True)
class Topology:
    name: str
    description: str
    source: str
    cores: tuple[CoreRouter, ...]
    isps: tuple[Isp, ...]
    sites: tuple[Site, ...]
    remotes: tuple[Remote, ...]
    links: tuple[Link, ...]
    mapping: MappingServer | None = None
    home_agent: HomeAgent | None = None
    kinds: dict[str, NodeKind] = field(default_factory=dict, compare=False)

    def isp(self, name: str) -> Isp:
        return next(i for i in self.isps if i.name == name)

    def site(self, name: str) -> Site:
        return next(s for s in self.sites if s.name == name)

    def links_of(self, node: str) -> list[Link]:
        return [lk for lk in self.links if node in (lk.a.node, lk.b.node)]
