"""The id-loc mapping service: what sites register, what edges resolve, and what it refuses."""

from __future__ import annotations

from ipaddress import IPv6Address as A
from ipaddress import IPv6Network as N
from pathlib import Path

import pytest

from multi6lab.controller.mapping import Locator, MappingService, Record, RegistrationRefused
from multi6lab.topologies import loader
from multi6lab.topologies.plan import Plan, build

ROOT = Path(__file__).resolve().parents[2]


def two_sites() -> Plan:
    text = (ROOT / "topologies" / "two-sites.yaml").read_text().replace("approach: nptv6", "approach: id-loc")
    return build(loader.loads(text))


def test_every_id_loc_site_registers_its_locators_in_preference_order() -> None:
    m = MappingService.of(two_sites())
    rec = m.resolve(A("fd00:2::6d:ff:fe00:d00"))  # h2's identity
    assert rec is not None and rec.site == "s2" and rec.identity == N("fd00:2::/48")
    assert rec.locators == (Locator("s2ec", N("3fff:c:2::/48")), Locator("s2ed", N("3fff:d:2::/48")))
    assert m.resolve(A("fd00:9::1")) is None  # nobody registered it
    assert m.resolve(A("3fff:c:2::1")) is None  # a locator is not an identity


def test_resolved_locators_are_the_edges_rfc6296_translations() -> None:
    plan = two_sites()
    s2 = plan.sites[1]
    h2 = s2.hosts[0]
    rec = MappingService.of(plan).resolve(h2.addresses["identity"])
    assert rec is not None
    for e in s2.exits:  # what s1's edge writes equals what s2's own edge maps back
        assert rec.locator(h2.addresses["identity"], e.name) == h2.locators[e.name]


def test_a_site_cannot_register_locators_it_was_not_delegated() -> None:
    m = MappingService.of(two_sites())
    with pytest.raises(RegistrationRefused, match=r"site s2 registered 3fff:a:1::/48, which no ISP delegated"):
        m.register(Record("s2", N("fd00:2::/48"), (Locator("s2ec", N("3fff:a:1::/48")),)))


def test_a_site_cannot_claim_anothers_identity() -> None:
    m = MappingService.of(two_sites())
    with pytest.raises(RegistrationRefused, match=r"overlaps fd00:1::/48 of site s1"):
        m.register(Record("s2", N("fd00::/20"), (Locator("s2ec", N("3fff:c:2::/48")),)))
    # A site may re-register (its locators changed): the new record replaces its old one.
    m.register(Record("s2", N("fd00:2::/48"), (Locator("s2ed", N("3fff:d:2::/48")),)))
    rec = m.resolve(A("fd00:2::1"))
    assert rec is not None and [loc.exit for loc in rec.locators] == ["s2ed"]
