"""Load a topology YAML file into the frozen model, reporting every problem at once.

Two passes over one parsed document: the JSON Schema shipped for editors (``schema.json``) checks structure,
then the semantic checks below check what a schema cannot (references, prefix arithmetic, Linux interface
names). Both report ``file:line:col: path: message``; the loader raises :class:`InputError` with all of them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from functools import cache
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import jsonschema

from multi6lab.topologies import yamlsrc
from multi6lab.topologies.model import (
    CORE_ASN,
    SITE_ASN_BASE,
    Bgp,
    CoreRouter,
    Endpoint,
    Exit,
    Heartbeat,
    HomeAgent,
    Isp,
    Link,
    MappingServer,
    Mobility,
    NodeKind,
    Remote,
    Site,
    Topology,
)
from multi6lab.topologies.yamlsrc import InputError, PathKey, Problem, Source
from multi6lab.vocabulary import Approach, ExitPolicy, Trigger

SCHEMA_PATH = Path(__file__).with_name("schema.json")
IFNAMSIZ = 15  # Linux interface names hold at most 15 characters
SITE_DEFAULTS: dict[str, Any] = {
    "approach": Approach.NPTV6.value,
    "triggers": [Trigger.LINK.value],
    "exit_policy": ExitPolicy.PRIMARY_BACKUP.value,
}
# Which node kinds may be joined by a link (unordered).
ALLOWED_LINKS = {
    frozenset({"host", "fabric"}), frozenset({"fabric", "exit"}), frozenset({"exit", "isp"}),
    frozenset({"isp", "core"}), frozenset({"core"}), frozenset({"isp"}),
    frozenset({"remote", "core"}), frozenset({"remote", "isp"}),
}
# Links each kind of site node must have, by the kind of its peer.
NEEDED_LINKS: dict[str, dict[str, int]] = {"host": {"fabric": 1}, "exit": {"fabric": 1, "isp": 1}}
FRIENDLY_PATTERNS = {
    "^[a-z][a-z0-9]*$": "names are lowercase letters and digits, starting with a letter",
    "^[a-z][a-z0-9]*:eth[0-9]+$": "an endpoint is written node:ethN",
    "^[0-9A-Fa-f:.]+/[0-9]{1,3}$": "not an IPv6 prefix (write it as address/length)",
}


@cache
def schema() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return result


def load(path: str | Path) -> Topology:
    """Parse and validate ``path``; raises :class:`InputError` listing every problem."""
    return from_source(yamlsrc.load(path))


def loads(text: str, name: str = "<string>") -> Topology:
    return from_source(yamlsrc.parse(text, name))


def from_source(src: Source) -> Topology:
    if not isinstance(src.data, dict):
        raise InputError([src.problem((), "a topology is a YAML mapping (name, isps, sites, links, ...)")])
    problems = schema_problems(src, schema())
    checker = _Semantics(src)
    try:
        topo = checker.build()
    except (TypeError, AttributeError, KeyError, ValueError):
        if not problems:  # the schema passed, so this is a bug in the checks, not in the file
            raise
        topo = None
    problems += checker.problems
    if problems or topo is None:
        raise InputError(problems)
    return topo


def schema_problems(src: Source, sch: dict[str, Any]) -> list[Problem]:
    """JSON Schema errors of a document, reported at their place in ``src``."""
    validator = jsonschema.Draft202012Validator(sch)
    found = [m for err in validator.iter_errors(src.data) for m in schema_messages(err)]
    # A known key whose value fails its own schema counts as unevaluated too: its real error is enough.
    inside = {path[:n] for path, _, at_key in found if not at_key for n in range(1, len(path) + 1)}
    return [src.problem(path, msg, at_key) for path, msg, at_key in found
            if not (at_key and msg.startswith("unknown key") and path in inside)]


def schema_messages(err: jsonschema.ValidationError) -> list[tuple[PathKey, str, bool]]:
    """One JSON Schema error as (path, message, point at the key?): one per unknown key, and our patterns in
    words a user can act on."""
    path: PathKey = tuple(err.absolute_path)
    if err.validator in ("additionalProperties", "unevaluatedProperties"):
        inner = err.message[err.message.find("(") + 1:]
        return [((*path, key), f"unknown key '{key}'", True) for key in re.findall(r"'([^']*)'", inner)]
    msg = err.message
    if err.validator == "pattern":
        pattern = str(err.validator_value)
        msg = f"{err.instance!r}: {FRIENDLY_PATTERNS.get(pattern, 'does not match ' + pattern)}"
    elif err.validator == "required":
        msg = msg.replace("is a required property", "is required")
    return [(path, msg, False)]


def parse_prefix(text: Any) -> IPv6Network:
    """An IPv6 prefix with no host bits set, or ValueError with a sentence a user can act on."""
    if not isinstance(text, str) or "/" not in text:
        raise ValueError(f"{text!r} is not an IPv6 prefix (write it as address/length)")
    try:
        net = IPv6Network(text, strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid IPv6 prefix") from None
    if net.network_address != IPv6Address(text.split("/")[0]):
        raise ValueError(f"{text!r} has host bits set (did you mean {net}?)")
    return net


class _Semantics:
    """Checks a schema cannot express; collects problems instead of stopping at the first."""

    def __init__(self, src: Source):
        self.src = src
        self.d: dict[str, Any] = src.data
        self.problems: list[Problem] = []
        self.kinds: dict[str, NodeKind] = {}
        self.where: dict[str, PathKey] = {}  # node name -> where it is defined

    def err(self, path: PathKey, message: str) -> None:
        self.problems.append(self.src.problem(path, message))

    def prefix(self, path: PathKey, value: Any) -> IPv6Network | None:
        try:
            return parse_prefix(value)
        except ValueError as exc:
            self.err(path, str(exc))
            return None

    def node(self, name: str, kind: NodeKind, path: PathKey) -> None:
        if name in self.kinds:
            first = yamlsrc.dotted(self.where[name])
            self.err(path, f"duplicate node name '{name}' (already defined at {first})")
            return
        self.kinds[name] = kind
        self.where[name] = path

    # -- sections ---------------------------------------------------------------------------------------
    def build(self) -> Topology | None:
        d = self.d
        defaults = d.get("defaults") or {}
        cores = [self.core(n, v) for n, v in (d.get("core") or {}).items()]
        isp_default = defaults.get("isp") or {}
        isps = [self.isp(n, {**isp_default, **v}) for n, v in (d.get("isps") or {}).items()]
        remotes = [self.remote(n, v) for n, v in (d.get("remotes") or {}).items()]
        site_default = _merge(SITE_DEFAULTS, defaults.get("site") or {})
        sites = [self.site(n, _merge(site_default, v), i) for i, (n, v) in enumerate((d.get("sites") or {}).items())]
        link_default = defaults.get("link") or {}
        profiles = d.get("profiles") or {}
        links = [self.link(i, {**link_default, **self.profile(i, v, link_default, profiles), **v})
                 for i, v in enumerate(d.get("links") or [])]
        isp_by_name = {i.name: i for i in isps if i}
        for s in sites:
            if s:
                self.check_site(s, isp_by_name)
        valid_links = [lk for lk in links if lk]
        self.check_links(valid_links, [s for s in sites if s], isp_by_name)
        home_agent = self.home_agent()
        self.check_overlaps(cores, isps, sites, remotes, home_agent)
        self.check_asns(cores, isps, sites)
        mapping = self.mapping([s for s in sites if s])
        if self.problems or None in (*cores, *isps, *sites, *remotes, *links):
            return None
        return Topology(
            name=d["name"], description=d.get("description", ""), source=self.src.file,
            cores=tuple(c for c in cores if c), isps=tuple(i for i in isps if i),
            sites=tuple(s for s in sites if s), remotes=tuple(r for r in remotes if r),
            links=tuple(valid_links), mapping=mapping, home_agent=home_agent, kinds=self.kinds)

    def core(self, name: str, v: dict[str, Any]) -> CoreRouter | None:
        path: PathKey = ("core", name)
        self.node(name, "core", path)
        p = self.prefix((*path, "prefix"), v.get("prefix"))
        return CoreRouter(name, p, int(v.get("asn", CORE_ASN))) if p else None

    def isp(self, name: str, v: dict[str, Any]) -> Isp | None:
        path: PathKey = ("isps", name)
        self.node(name, "isp", path)
        pa = self.prefix((*path, "prefix"), v.get("prefix"))
        if pa is None:
            return None
        if "infra" in v:
            infra = self.prefix((*path, "infra"), v["infra"])
            if infra is None:
                return None
            if not infra.subnet_of(pa):
                self.err((*path, "infra"), f"infrastructure prefix {infra} is outside the ISP's PA prefix {pa}")
        elif pa.prefixlen > 56:
            self.err((*path, "prefix"),
                     f"PA prefix {pa} is too long to number links in; give 'infra' or use /56 or shorter")
            return None
        else:
            infra = next(pa.subnets(new_prefix=56))
        if infra.prefixlen > 64:
            self.err((*path, "infra"), f"infrastructure prefix {infra} must be /64 or shorter")
        return Isp(name, int(v["asn"]), pa, infra, bool(v.get("ingress_filter", True)))

    def remote(self, name: str, v: dict[str, Any]) -> Remote | None:
        path: PathKey = ("remotes", name)
        self.node(name, "remote", path)
        p = self.prefix((*path, "prefix"), v.get("prefix"))
        if p and p.prefixlen > 126:
            self.err((*path, "prefix"), f"{p} is too long: the remote needs ::1 for its router and ::2 for itself")
            return None
        return Remote(name, p) if p else None

    def mapping(self, sites: list[Site]) -> MappingServer | None:
        """The mapping service: a remote runs it; two id-loc sites cannot meet without one."""
        v = self.d.get("mapping")
        idloc = [s for s in sites if s.approach.profile.edges_map]
        if v is None:
            if len(idloc) > 1:
                self.err((), f"sites {', '.join(s.name for s in idloc)} use id-loc and find each other through a "
                             "mapping service: add 'mapping: {server: <a remote>}'")
            return None
        if self.kinds.get(v["server"]) != "remote":
            self.err(("mapping", "server"), f"'{v['server']}' is not a remote (the mapping server runs on one)")
        for s in idloc:
            if s.identity is not None and s.identity.prefixlen % 4:
                self.err(("sites", s.name, "identity"), f"identity prefix {s.identity} must end on a nibble "
                         "(a multiple of 4 bits) to be named in the mapping service's DNS zone")
            for e in s.exits:
                if e.delegation.prefixlen % 4:
                    self.err(("sites", s.name, "exits", e.name, "delegation"), f"delegation {e.delegation} must "
                             "end on a nibble (a multiple of 4 bits) to be named in the mapping service's DNS zone")
        return MappingServer(v["server"], int(v.get("ttl_s", 30)))

    def home_agent(self) -> HomeAgent | None:
        """Mobile IPv6's home agent: a remote runs it, and the core routes the home prefix to it."""
        v = self.d.get("home_agent")
        if v is None:
            return None
        if self.kinds.get(v["node"]) != "remote":
            self.err(("home_agent", "node"), f"'{v['node']}' is not a remote (the home agent runs on one)")
        home = self.prefix(("home_agent", "home"), v["home"])
        if home is not None and home.prefixlen > 64:
            self.err(("home_agent", "home"), f"home prefix {home} must be /64 or shorter (home addresses are "
                                             "an interface identifier in its first /64)")
        return HomeAgent(v["node"], home) if home is not None else None

    def site(self, name: str, v: dict[str, Any], position: int) -> Site | None:
        path: PathKey = ("sites", name)
        ok = True
        self.node(v["fabric"], "fabric", (*path, "fabric"))
        exits = []
        for order, (ename, ev) in enumerate(v["exits"].items()):
            epath: PathKey = (*path, "exits", ename)
            self.node(ename, "exit", epath)
            deleg = self.prefix((*epath, "delegation"), ev.get("delegation"))
            if deleg is None:
                ok = False
                continue
            exits.append(Exit(ename, name, ev["isp"], deleg, int(ev.get("preference", order)),
                              int(ev.get("weight", 1))))
        for i, h in enumerate(v["hosts"]):
            self.node(h, "host", (*path, "hosts", i))
        identity = pi = None
        if "identity" in v:
            identity = self.prefix((*path, "identity"), v["identity"])
            ok = ok and identity is not None
        if "pi" in v:
            pi = self.prefix((*path, "pi"), v["pi"])
            ok = ok and pi is not None
        if not ok:
            return None
        return Site(
            name=name, approach=Approach(v["approach"]), triggers=tuple(Trigger(t) for t in v["triggers"]),
            exit_policy=ExitPolicy(v["exit_policy"]), heartbeat=heartbeat(v.get("heartbeat") or {}),
            fabric=v["fabric"], exits=tuple(sorted(exits, key=lambda e: e.preference)), hosts=tuple(v["hosts"]),
            identity=identity, pi=pi, asn=int(v.get("asn", SITE_ASN_BASE + position)),
            bgp=Bgp.from_dict(v.get("bgp") or {}), subnets=int(v.get("subnets", 1)),
            mobility=mobility(v.get("mobility") or {}),
            translation_idle_s=float(v["translation_idle_s"]) if "translation_idle_s" in v else None)

    def link(self, i: int, v: dict[str, Any]) -> Link | None:
        path: PathKey = ("links", i)
        eps = []
        for j, text in enumerate(v["endpoints"]):
            node, _, intf = text.partition(":")
            ifname = f"{node}-{intf}"
            if len(ifname) > IFNAMSIZ:
                self.err((*path, "endpoints", j),
                         f"interface name '{ifname}' is {len(ifname)} characters; Linux allows {IFNAMSIZ} "
                         "(shorten the node name)")
            eps.append(Endpoint(node, intf))
        if len(eps) != 2:
            return None
        if eps[0].node == eps[1].node:
            self.err((*path, "endpoints"), f"a link joins two different nodes, not '{eps[0].node}' to itself")
            return None
        return Link(eps[0], eps[1], bw=_float(v.get("bw")), delay_ms=_float(v.get("delay_ms")),
                    loss_pct=_float(v.get("loss_pct")), jitter_ms=_float(v.get("jitter_ms")), profile=v.get("profile"))

    def profile(self, i: int, v: dict[str, Any], default: dict[str, Any],
                profiles: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The path profile link ``i`` takes (its own, else the default link's): its delay, jitter and loss."""
        name = v.get("profile", default.get("profile"))
        if name is None:
            return {}
        if name not in profiles:
            where: PathKey = ("links", i, "profile") if "profile" in v else ("defaults", "link", "profile")
            known = ", ".join(sorted(profiles)) or "none"
            self.err(where, f"unknown path profile '{name}' (profiles: {known})")
            return {}
        return dict(profiles[name])

    # -- cross-checks -----------------------------------------------------------------------------------
    def check_site(self, s: Site, isps: dict[str, Isp]) -> None:
        for e in s.exits:
            if e.isp not in isps and e.isp not in {n for n in (self.d.get("isps") or {})}:
                self.err(("sites", s.name, "exits", e.name, "isp"), f"unknown ISP '{e.isp}'")
        for where, message in site_problems(s, isps):
            self.err(where, message)

    def check_links(self, links: list[Link], sites: list[Site], isps: dict[str, Isp]) -> None:
        used: dict[str, int] = {}
        degree: Counter[tuple[str, str]] = Counter()  # (node, peer kind)
        site_of = {n: s for s in sites for n in (s.fabric, *s.hosts, *(e.name for e in s.exits))}
        for i, lk in enumerate(links):
            path: PathKey = ("links", i)
            kinds = []
            for j, ep in enumerate((lk.a, lk.b)):
                if ep.node not in self.kinds:
                    self.err((*path, "endpoints", j), f"unknown node '{ep.node}'")
                    continue
                key = str(ep)
                if key in used:
                    self.err((*path, "endpoints", j), f"interface {key} is already used by links[{used[key]}]")
                used[key] = i
                kinds.append(self.kinds[ep.node])
            if len(kinds) != 2:
                continue
            if frozenset(kinds) not in ALLOWED_LINKS:
                self.err((*path, "endpoints"), f"a {kinds[0]} ({lk.a.node}) cannot link to a {kinds[1]} ({lk.b.node})")
                continue
            for ep, peer in ((lk.a, lk.b), (lk.b, lk.a)):
                degree[(ep.node, self.kinds[peer.node])] += 1
                site, psite = site_of.get(ep.node), site_of.get(peer.node)
                if site and psite and site.name != psite.name:
                    self.err((*path, "endpoints"), f"{ep.node} (site {site.name}) cannot link to {peer.node} "
                                                   f"(site {psite.name}): sites meet only through ISPs")
                if self.kinds[ep.node] == "exit" and self.kinds[peer.node] == "isp" and site:
                    ex = site.exit(ep.node)
                    if ex.isp != peer.node:
                        self.err((*path, "endpoints"),
                                 f"exit {ex.name} links to ISP {peer.node} but its delegation is from {ex.isp} "
                                 "(an exit may only reach an ISP it has a delegation from)")
        for name, kind in self.kinds.items():
            need = NEEDED_LINKS.get(kind, {})
            for peer_kind, n in need.items():
                if degree[(name, peer_kind)] != n:
                    target = "its site's fabric" if peer_kind == "fabric" else "its ISP"
                    self.err(self.where[name], f"{kind} '{name}' needs exactly {n} link to {target}, "
                                               f"has {degree[(name, peer_kind)]}")
            if kind == "remote" and degree[(name, "core")] + degree[(name, "isp")] != 1:
                self.err(self.where[name], f"remote '{name}' needs exactly one link, to a core router or an ISP")
            if kind == "isp" and self.kinds and "core" in self.kinds.values() and degree[(name, "core")] == 0:
                self.err(self.where[name], f"ISP '{name}' has no link to the core")


    def check_overlaps(self, cores: list[CoreRouter | None], isps: list[Isp | None], sites: list[Site | None],
                       remotes: list[Remote | None], home_agent: HomeAgent | None) -> None:
        owned: list[tuple[IPv6Network, PathKey, str]] = []
        if home_agent:
            owned.append((home_agent.home, ("home_agent", "home"), "the home agent's home prefix"))
        for c in cores:
            if c:
                owned.append((c.prefix, ("core", c.name, "prefix"), f"core {c.name}"))
        for isp in isps:
            if isp:
                owned.append((isp.prefix, ("isps", isp.name, "prefix"), f"ISP {isp.name}'s PA prefix"))
        for r in remotes:
            if r:
                owned.append((r.prefix, ("remotes", r.name, "prefix"), f"remote {r.name}"))
        for s in sites:
            if not s:
                continue
            if s.identity:
                owned.append((s.identity, ("sites", s.name, "identity"), f"site {s.name}'s identity prefix"))
            if s.pi:
                owned.append((s.pi, ("sites", s.name, "pi"), f"site {s.name}'s PI prefix"))
        for i, (p, path, what) in enumerate(owned):
            for q, _qpath, qwhat in owned[:i]:
                if p.overlaps(q):
                    self.err(path, f"{p} overlaps {q} ({qwhat}); {what} must be distinct")
        delegs = [(e.delegation, ("sites", s.name, "exits", e.name, "delegation"), f"{s.name}/{e.name}")
                  for s in sites if s for e in s.exits]
        for i, (p, path, _what) in enumerate(delegs):
            for q, _qpath, qwhat in delegs[:i]:
                if p.overlaps(q):
                    self.err(path, f"delegation {p} overlaps delegation {q} of {qwhat}")


    def check_asns(self, cores: list[CoreRouter | None], isps: list[Isp | None], sites: list[Site | None]) -> None:
        """Every AS number names one network: BGP would take a shared one for a loop and drop the routes."""
        seen: dict[int, str] = {}
        owners: list[tuple[int, PathKey, str]] = []
        owners += [(c.asn, ("core", c.name), f"core {c.name}") for c in cores if c]
        owners += [(i.asn, ("isps", i.name, "asn"), f"ISP {i.name}") for i in isps if i]
        owners += [(s.asn, ("sites", s.name), f"site {s.name}") for s in sites if s and s.approach.profile.bgp]
        for asn, path, what in owners:
            if asn in seen:
                self.err(path, f"AS {asn} of {what} is already the AS of {seen[asn]}; give each its own 'asn'")
            seen.setdefault(asn, what)


def site_problems(s: Site, isps: Mapping[str, Isp]) -> list[tuple[PathKey, str]]:
    """What is wrong with one site as the model holds it: its exits' delegations against their ISPs, what its
    approach and triggers need, its BGP timers. The loader runs it on every site; a scenario runs it on the
    sites its overrides change, so that a combination the topology cannot run is reported by key."""
    out: list[tuple[PathKey, str]] = []
    path: PathKey = ("sites", s.name)
    translating = s.approach.profile.translates
    for e in s.exits:
        epath: PathKey = (*path, "exits", e.name, "delegation")
        isp = isps.get(e.isp)
        if isp is not None and not e.delegation.subnet_of(isp.prefix):
            out.append((epath, f"delegation {e.delegation} is outside {isp.name}'s PA prefix {isp.prefix}"))
        elif isp is not None and e.delegation.overlaps(isp.infra):
            out.append((epath, f"delegation {e.delegation} overlaps {isp.name}'s infrastructure prefix {isp.infra}"))
        if e.delegation.prefixlen > 64:
            out.append((epath, f"delegation {e.delegation} must be /64 or shorter (hosts use a /64)"))
        if translating and s.identity and s.identity.prefixlen != e.delegation.prefixlen:
            out.append((epath, f"nptv6 maps prefixes of equal length (RFC 6296): identity is "
                               f"/{s.identity.prefixlen}, delegation is /{e.delegation.prefixlen}"))
    if translating and s.identity is None:
        out.append((path, f"approach '{s.approach}' needs an 'identity' prefix"))
    if s.identity and s.identity.prefixlen > 64:
        out.append(((*path, "identity"), f"identity prefix {s.identity} must be /64 or shorter"))
    elif s.approach.profile.edges_map and s.identity and s.identity.prefixlen > 48:
        # RFC 6296 puts its checksum adjustment in the subnet word for /48 or shorter, so each /64 maps to one
        # /64 and one rule translates every address in it; longer prefixes adjust the interface identifier,
        # which nptv6's exits do address by address and the id-loc edges' pair rules do not (yet).
        out.append(((*path, "identity"), f"identity prefix {s.identity} must be /48 or shorter for "
                                         f"'{s.approach}' (its edges map whole /64s; nptv6 takes /49 to /64)"))
    if s.translation_idle_s is not None and not (s.approach == Approach.NPTV6 and s.identity
                                                 and s.identity.prefixlen > 48):
        out.append(((*path, "translation_idle_s"), "translation_idle_s is for nptv6 sites whose identity is longer "
                                                   "than /48 (their exits translate address by address)"))
    if s.approach.profile.bgp and s.pi is None:
        out.append((path, "approach 'routing' needs a provider-independent 'pi' prefix"))
    if s.pi and s.pi.prefixlen > 64:
        out.append(((*path, "pi"), f"PI prefix {s.pi} must be /64 or shorter (hosts use a /64)"))
    if s.approach.profile.bgp and s.triggers != (Trigger.ROUTING,):
        out.append(((*path, "triggers"), "approach 'routing' is triggered by routing alone (BGP, optionally BFD: "
                                         "set them under 'bgp'); write triggers: [routing]"))
    if s.approach.profile.bgp and s.exit_policy != ExitPolicy.PRIMARY_BACKUP:
        out.append(((*path, "exit_policy"), "under 'routing' BGP chooses the exit (the first is primary, the "
                                            "others prepend); exit_policy load-share is for nptv6"))
    if Trigger.ROUTING in s.triggers and s.approach.profile.controlled:
        out.append(((*path, "triggers"), f"trigger 'routing' belongs to approach 'routing', not '{s.approach}'"))
    if s.exit_policy != ExitPolicy.LOAD_SHARE:
        out += [((*path, "exits", e.name, "weight"), f"weight {e.weight} shares flows among exits, which only "
                                                      f"exit_policy load-share does; this site is {s.exit_policy}")
                for e in s.exits if e.weight != 1]
    if Trigger.TRANSPORT in s.triggers and not (translating and s.exit_policy == ExitPolicy.PRIMARY_BACKUP):
        out.append(((*path, "triggers"), "trigger 'transport' moves a destination to the site's next exit, which "
                                         "only nptv6 and id-loc sites with exit_policy primary-backup choose; "
                                         f"this site is {s.approach}, {s.exit_policy}"))
    if s.bgp.keepalive_s >= s.bgp.hold_s:
        out.append(((*path, "bgp"), f"keepalive_s ({s.bgp.keepalive_s}) must be shorter than hold_s "
                                    f"({s.bgp.hold_s}): the hold timer counts missed keepalives"))
    return out


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def heartbeat(d: Mapping[str, Any]) -> Heartbeat:
    """From a schema-checked ``heartbeat:`` mapping, the model's defaults filling what it leaves out."""
    default = Heartbeat()
    return Heartbeat(float(d.get("interval_ms", default.interval_ms)), int(d.get("multiplier", default.multiplier)))


def mobility(d: Mapping[str, Any]) -> Mobility:
    """From a schema-checked ``mobility:`` mapping, the model's defaults filling what it leaves out."""
    default = Mobility()
    return Mobility(bool(d.get("route_optimisation", default.route_optimisation)),
                    int(d.get("binding_lifetime_s", default.binding_lifetime_s)))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Defaults inherited once: nested mappings merge, everything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
