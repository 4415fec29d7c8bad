"""The id-loc mapping service's DNS zone and Knot DNS configuration, rendered from a Plan. Pure.

The zone ``map.multi6lab.`` holds two kinds of records (docs/mapping-service.md draws them):

* The registry's, written once when the lab starts, as a regional registry and the ISPs would publish them:
  which site holds an identity prefix (a wildcard PTR below the prefix's nibble name in the ``id`` tree, so a
  query for any address in it names the site, and a longer nested prefix wins as in a routing table), which
  site each delegated locator prefix was given to (the same, in the ``loc`` tree: how an edge that receives
  a packet from an unknown locator finds out who sent it), the identity prefix itself and the locator
  prefixes the site's ISPs delegated to it (APL records, RFC 3123).
* The sites' own, which each site's edge writes and rewrites with dynamic updates (RFC 2136) signed with its
  own TSIG key (RFC 8945), as ILNP does (RFC 6742): an LP record per usable exit, in preference order,
  naming the exit, whose L64 record holds the locator. Knot lets a key change only names at or below the
  key's own name (``update-owner: key``), and only LP and L64 records: a site can neither touch the
  registry nor another site's records. Locators outside its delegations are refused by whoever looks them up.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Mapping
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

from multi6lab.topologies.plan import Plan

ZONE = "map.multi6lab."
KEY_ALGORITHM = "hmac-sha256"
SITE_TYPES = ("LP", "L64")  # what a site's key may write
DNS_PORT = 53
KNOTD = Path("/usr/sbin/knotd")


def site_owner(site: str) -> str:
    """The site's own name, which is also its TSIG key's name (Knot matches update owners against it)."""
    return f"{site}.site.{ZONE}"


def exit_owner(site: str, exit_name: str) -> str:
    return f"{exit_name}.{site_owner(site)}"


def identity_owner(site: str) -> str:
    return f"identity.{site}.registry.{ZONE}"


def delegated_owner(site: str) -> str:
    return f"delegated.{site}.registry.{ZONE}"


def _nibbles(address: IPv6Address, count: int) -> str:
    digits = address.exploded.replace(":", "")[:count]
    return ".".join(reversed(digits))


IDENTITY_TREE = "id"  # names below it: which site holds an identity
LOCATOR_TREE = "loc"  # which site a locator prefix was delegated to


def address_name(address: IPv6Address, tree: str = IDENTITY_TREE) -> str:
    """What an edge asks for to learn which site holds ``address`` (an identity, or a locator in ``loc``)."""
    return f"{_nibbles(address, 32)}.{tree}.{ZONE}"


def prefix_wildcard(prefix: IPv6Network, tree: str = IDENTITY_TREE) -> str:
    """The wildcard that answers for every address in ``prefix`` (a prefix that ends on a nibble)."""
    return f"*.{_nibbles(prefix.network_address, prefix.prefixlen // 4)}.{tree}.{ZONE}"


def site_of(owner: str) -> str | None:
    """The site a ``<site>.site.map.multi6lab.`` name stands for, or None for any other name."""
    suffix = f".site.{ZONE}"
    head = owner[: -len(suffix)] if owner.endswith(suffix) else ""
    return head if head and "." not in head else None


def exit_of(site: str, owner: str) -> str | None:
    """The exit an LP record's target names, if it lies below ``site``'s own name (else None)."""
    suffix = "." + site_owner(site)
    head = owner[: -len(suffix)] if owner.endswith(suffix) else ""
    return head if head and "." not in head else None


def l64(prefix: IPv6Network) -> str:
    """An L64 record's locator: the prefix's first 64 bits, in four hexadecimal groups (RFC 6742)."""
    return ":".join(prefix.network_address.exploded.split(":")[:4])


def apl(prefixes: Iterable[IPv6Network]) -> str:
    return " ".join(f"2:{p}" for p in prefixes)


def mapped_sites(plan: Plan) -> list[str]:
    """The sites that register with the mapping service: the id-loc sites, when the topology has one."""
    if plan.topology.mapping is None:
        return []
    return [sp.site.name for sp in plan.sites if sp.site.approach.profile.edges_map and sp.site.identity]


def server_address(plan: Plan) -> IPv6Address | None:
    m = plan.topology.mapping
    return None if m is None else plan.address(m.server)


def new_secrets(sites: Iterable[str]) -> dict[str, str]:
    """A fresh 256-bit TSIG secret per site, base64 as Knot and dnspython read it."""
    return {s: base64.b64encode(secrets.token_bytes(32)).decode() for s in sites}


def zone(plan: Plan) -> str:
    """The zone file as the registry writes it: SOA, NS, and per id-loc site its identity and delegations."""
    m = plan.topology.mapping
    address = server_address(plan)
    assert m is not None and address is not None
    lines = [f"$ORIGIN {ZONE}", f"$TTL {m.ttl_s}",
             f"@ SOA ns hostmaster 1 3600 600 86400 {m.ttl_s}", "@ NS ns", f"ns AAAA {address}"]
    for sp in plan.sites:
        s = sp.site
        if s.name not in mapped_sites(plan):
            continue
        assert s.identity is not None
        lines += [f"{prefix_wildcard(s.identity)} PTR {site_owner(s.name)}",
                  *(f"{prefix_wildcard(e.delegation, LOCATOR_TREE)} PTR {site_owner(s.name)}" for e in s.exits),
                  f"{identity_owner(s.name)} APL {apl([s.identity])}",
                  f"{delegated_owner(s.name)} APL {apl(e.delegation for e in s.exits)}"]
    return "\n".join(lines) + "\n"


def config(plan: Plan, state: Path, keys: Mapping[str, str]) -> str:
    """knot.conf: one small server listening on the mapping remote's address, its files under ``state``, and
    for each site a key and an ACL that lets the key update only LP and L64 records at or below its own
    name. Queries need no ACL; a signed query gets a signed answer."""
    address = server_address(plan)
    out = ["server:", f"    rundir: {state}", f"    pidfile: {state / 'knot.pid'}", f"    listen: {address}@{DNS_PORT}",
           "    udp-workers: 1", "    tcp-workers: 1", "    background-workers: 1",
           "log:", f"  - target: {state / 'knot.log'}", "    any: info",
           "database:", f"    storage: {state / 'db'}", "key:"]
    for site in sorted(keys):
        out += [f"  - id: {site_owner(site)}", f"    algorithm: {KEY_ALGORITHM}", f"    secret: {keys[site]}"]
    out.append("acl:")
    for site in sorted(keys):
        out += [f"  - id: update-{site}", f"    key: {site_owner(site)}", "    action: update",
                "    update-owner: key", "    update-owner-match: sub-or-equal",
                f"    update-type: [{', '.join(SITE_TYPES)}]"]
    acls = ", ".join(f"update-{s}" for s in sorted(keys))
    out += ["zone:", f"  - domain: {ZONE}", f"    storage: {state}", "    file: map.zone", f"    acl: [{acls}]"]
    return "\n".join(out) + "\n"
