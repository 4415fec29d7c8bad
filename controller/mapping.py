"""The id-loc mapping service: the third party of RFC 4177 section 6 that tells an edge where an identity is. Pure.

Like DNS or a LISP map server, it holds what each site registered: its identity prefix and the locator
prefixes that reach it (its delegations, one per exit), in the site's preference order. An edge resolves a
destination identity to that record and maps the host's identity into each locator prefix with RFC 6296's
checksum-neutral translation, so the host part survives and transport checksums stay valid; choosing among
the resulting locator pairs is then the edges' own business (:mod:`multi6lab.controller.pairs`).

The service believes only what the ISPs delegated: a site cannot register another's locators, and two sites
cannot claim overlapping identities (either would let one site pull another's traffic).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network

from multi6lab.topologies.npt import Translator
from multi6lab.topologies.plan import Plan


@dataclass(frozen=True)
class Locator:
    exit: str  # the registering site's exit whose ISP delegated the prefix
    prefix: IPv6Network


@dataclass(frozen=True)
class Record:
    site: str
    identity: IPv6Network
    locators: tuple[Locator, ...]  # in the site's preference order

    def locator(self, identity: IPv6Address, exit_name: str) -> IPv6Address:
        """The address through which ``identity`` is reached via ``exit_name``."""
        loc = next(loc for loc in self.locators if loc.exit == exit_name)
        return Translator(self.identity, loc.prefix).to_outside(identity)


class RegistrationRefused(ValueError):
    """A registration the service cannot believe (foreign locators, an identity another site holds)."""


class MappingService:
    def __init__(self, delegated: Mapping[str, set[IPv6Network]]):
        self.delegated = delegated  # site -> the prefixes its ISPs delegated to it
        self.records: list[Record] = []

    @classmethod
    def of(cls, plan: Plan) -> MappingService:
        """The service as every id-loc site of ``plan`` registered itself with it."""
        sites = [sp.site for sp in plan.sites]
        service = cls({s.name: {e.delegation for e in s.exits} for s in sites})
        for s in sites:
            if s.approach.profile.edges_map and s.identity is not None:
                service.register(Record(s.name, s.identity, tuple(Locator(e.name, e.delegation) for e in s.exits)))
        return service

    def register(self, record: Record) -> None:
        foreign = [str(loc.prefix) for loc in record.locators
                   if loc.prefix not in self.delegated.get(record.site, set())]
        if foreign:
            raise RegistrationRefused(f"site {record.site} registered {', '.join(foreign)}, which no ISP "
                                      "delegated to it")
        clash = next((r for r in self.records if r.site != record.site and r.identity.overlaps(record.identity)),
                     None)
        if clash is not None:
            raise RegistrationRefused(f"site {record.site}'s identity {record.identity} overlaps {clash.identity} "
                                      f"of site {clash.site}")
        self.records = [r for r in self.records if r.site != record.site] + [record]

    def resolve(self, address: IPv6Address) -> Record | None:
        """The record whose identity prefix holds ``address`` (the longest, should prefixes nest), or None."""
        found = [r for r in self.records if address in r.identity]
        return max(found, key=lambda r: r.identity.prefixlen, default=None)
