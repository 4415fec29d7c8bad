"""RFC 6296 checksum-neutral prefix translation."""

from __future__ import annotations

import random
from ipaddress import IPv6Address as A
from ipaddress import IPv6Network as N

import pytest

from multi6lab.topologies.npt import Translator, Untranslatable, adjustment, ones_sum


def test_rfc6296_test_vector() -> None:
    # RFC 6296 section 3.5: FD01:0203:0405::/48 <-> 2001:0DB8:0001::/48, adjustment 0xD54F.
    t = Translator(N("fd01:203:405::/48"), N("2001:db8:1::/48"))
    assert adjustment(t.inside, t.outside) == 0xD54F
    assert t.to_outside(A("fd01:203:405:1::1234")) == A("2001:db8:1:d550::1234")
    assert t.to_inside(A("2001:db8:1:d550::1234")) == A("fd01:203:405:1::1234")


def test_ip6tables_reference_vector() -> None:
    # Linux SNPT (ip6tables, RFC 6296) maps the same prefixes so: fd01:1:1:1::10 -> 2001:db8:100:ce4b::10.
    t = Translator(N("fd01:1:1::/48"), N("2001:db8:100::/48"))
    assert t.to_outside(A("fd01:1:1:1::10")) == A("2001:db8:100:ce4b::10")


def _checksum_word_sum(a: A) -> int:
    b = a.packed
    return ones_sum([(b[i] << 8) | b[i + 1] for i in range(0, 16, 2)]) % 0xFFFF


@pytest.mark.parametrize("inside,outside", [
    ("fd00:5::/48", "3fff:a:5::/48"), ("fd00:5:0:100::/56", "3fff:b:5:300::/56"),
    ("fd00:5:0:1::/64", "3fff:a:5:9::/64"), ("fd00::/32", "3fff:a::/32"), ("fd00:0:0:10::/60", "3fff:0:0:20::/60"),
])
def test_mapping_is_checksum_neutral_and_reversible(inside: str, outside: str) -> None:
    t = Translator(N(inside), N(outside))
    rng = random.Random(6296)
    for _ in range(300):
        a = A(int(N(inside).network_address) | rng.getrandbits(128 - N(inside).prefixlen))
        try:
            b = t.to_outside(a)
        except Untranslatable:
            continue
        assert b in N(outside)
        assert _checksum_word_sum(a) == _checksum_word_sum(b)
        assert t.to_inside(b) == a


def test_result_0xffff_is_written_as_zero() -> None:
    t = Translator(N("fd01:203:405::/48"), N("2001:db8:1::/48"))
    # Choose the subnet word so that word + adjustment == 0xFFFF (one's complement): 0xFFFF - 0xD54F.
    a = A(f"fd01:203:405:{0xFFFF - 0xD54F:x}::1")
    assert t.to_outside(a) == A("2001:db8:1:0::1")


def test_subnet_0xffff_is_untranslatable_up_to_48() -> None:
    t = Translator(N("fd01:203:405::/48"), N("2001:db8:1::/48"))
    with pytest.raises(Untranslatable, match="0xFFFF"):
        t.to_outside(A("fd01:203:405:ffff::1"))


def test_longer_than_48_skips_iid_words_of_0xffff() -> None:
    t = Translator(N("fd00:5:0:1::/64"), N("3fff:a:5:9::/64"))
    out = t.to_outside(A("fd00:5:0:1:ffff:1:2:3"))
    assert str(out).startswith("3fff:a:5:9:ffff:")  # word 4 kept, word 5 adjusted
    assert t.to_inside(out) == A("fd00:5:0:1:ffff:1:2:3")
    with pytest.raises(Untranslatable, match="every interface-identifier word"):
        t.to_outside(A("fd00:5:0:1:ffff:ffff:ffff:ffff"))


def test_rejects_bad_configurations() -> None:
    with pytest.raises(ValueError, match="equal length"):
        Translator(N("fd00::/48"), N("3fff:a::/56"))
    with pytest.raises(ValueError, match="/64 or shorter"):
        Translator(N("fd00::/80"), N("3fff:a::/80"))
    with pytest.raises(Untranslatable, match="not in"):
        Translator(N("fd00::/48"), N("3fff:a::/48")).to_outside(A("fd01::1"))
