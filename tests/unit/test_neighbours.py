"""The site router's neighbour discovery for addresses the plan does not list (controller.neighbours)."""

from __future__ import annotations

from ipaddress import IPv6Address as A
from ipaddress import IPv6Network as N

from multi6lab.controller.neighbours import (
    MAX_MULTICAST_SOLICIT,
    MAX_PENDING,
    QUEUE,
    RETRANS_TIMER_S,
    Neighbour,
    Resolver,
)

NEW = A("fd00:5::beef")


def resolver() -> Resolver:
    return Resolver((N("fd00:5::/64"), N("fd00:5:0:1::/64")), host_ports={1, 4})


def test_a_miss_solicits_once_holds_the_packets_and_the_answer_releases_them() -> None:
    r = resolver()
    assert r.miss(NEW, b"p1", 0.0) is True  # the first packet asks
    assert r.miss(NEW, b"p2", 0.1) is False  # the next ones wait for the answer
    assert r.advert(NEW, "02:00:00:00:00:07", 4) == [b"p1", b"p2"]
    assert r.learned == {NEW: Neighbour("02:00:00:00:00:07", 4)} and not r.pending
    # Learned, its delivery rule still on its way to the fabric: a packet that comes meanwhile goes straight there.
    assert r.miss(NEW, b"p3", 0.2) == Neighbour("02:00:00:00:00:07", 4)


def test_the_queue_is_bounded_and_solicitations_repeat_at_the_rfc_4861_pace() -> None:
    r = resolver()
    asked = [r.miss(NEW, bytes([i]), t) for i, t in enumerate([0.0, 0.5, RETRANS_TIMER_S, 1.5, 2 * RETRANS_TIMER_S,
                                                               3 * RETRANS_TIMER_S])]
    assert asked == [True, False, True, False, True, False]  # every second, MAX_MULTICAST_SOLICIT in all
    assert sum(asked) == MAX_MULTICAST_SOLICIT
    assert r.advert(NEW, "02:00:00:00:00:07", 1) == [bytes([i]) for i in range(QUEUE)]  # the first QUEUE held


def test_an_address_that_never_answers_is_forgotten_with_its_packets() -> None:
    r = resolver()
    for t in (0.0, 1.0, 2.0):
        r.miss(NEW, b"p", t)
    assert r.expire(2.5) == []  # its last solicitation still has time
    assert r.expire(3.0) == [NEW] and not r.pending
    assert r.advert(NEW, "02:00:00:00:00:07", 1) is None  # a late answer teaches nothing


def test_only_solicited_answers_from_host_ports_for_our_subnets_count() -> None:
    r = resolver()
    assert r.miss(A("fd00:6::1"), b"p", 0.0) is False and not r.pending  # not one of the site's subnets
    assert r.advert(NEW, "02:00:00:00:00:07", 1) is None  # unsolicited
    r.miss(NEW, b"p", 0.0)
    assert r.advert(NEW, "02:00:00:00:00:07", 2) is None  # port 2 is an exit, not a host
    assert NEW in r.pending and not r.learned


def test_a_scan_of_the_subnet_cannot_grow_the_state_without_end() -> None:
    r = resolver()
    for i in range(MAX_PENDING + 10):
        r.miss(A(int(NEW) + i), b"p", 0.0)
    assert len(r.pending) == MAX_PENDING
