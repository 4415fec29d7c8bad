"""Whom an id-loc site talks to, learned only from packets that reach it (pure).

An edge starts knowing its own site and the mapping service's address, nothing about anyone else. What it
learns comes from packets its switches could not place and sent to the controller:

* a host's packet toward an identity (identities are unique local addresses, never routed) of a site it has
  no record of: the edge looks the address up and holds the packet until the answer comes (the first packet
  of a new session waits for the lookup, as in LISP and ILNP);
* a packet toward a far site it has a record of, but an identity /64 of it that has no rules yet: rules for
  that /64 are added at once and the packet goes on;
* a packet arriving from a locator it cannot place: the edge asks the mapping service which site that
  locator was delegated to. If one was, the packet is that site's, and is mapped back to identities; if none
  was, the source is an ordinary ("plain") one, and its packets are translated as nptv6 does from then on.
  That is RFC 4177 6.3.5's negotiation: a peer without id-loc support is found out by the mapping service
  having no record of it, and is talked to with plain IPv6 on the site's own locators. A plain source is
  asked about again after each negative TTL; once it turns out to be a far site's locator (the peer gained
  support), it is *upgraded*: its new sessions are mapped, and the ones that ran in plain IPv6 stay plain (the
  switches tell them apart by their connection-tracking mark, :func:`multi6lab.controller.policy.desired`).
* an edge with no mapping service to ask (a site running without id-loc support) answers its own questions:
  every source is plain, no identity is reachable.
* a restarted controller reads back, from its exits' flow tables, which sources it had found plain or
  upgraded: their sessions' marks are in the data plane and outlive the controller.

Held packets wait at most HOLD_S (the mapping client retries for longer; a packet that old is better
dropped, as a router drops one whose neighbour does not answer), QUEUE of them per address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

from multi6lab.controller.mapping import Record
from multi6lab.controller.policy import IDENTITY_SPACE, MAX_FAR_SUBNETS
from multi6lab.topologies.knot import IDENTITY_TREE, LOCATOR_TREE
from multi6lab.topologies.npt import Translator

HOLD_S = 3.0
QUEUE = 3
MAX_WAITING = 256  # addresses with packets held at once
MAX_PLAIN = 1024  # plain source /64s remembered (the oldest is forgotten first, and asked about again)


@dataclass(frozen=True)
class Held:
    """A packet a switch sent up, to be put back through that switch's table once it can be placed."""

    data: bytes
    dpid: int
    in_port: int
    t: float = 0.0  # when it was sent up


@dataclass
class Effects:
    want: list[tuple[IPv6Address, str]] = field(default_factory=list)  # look these up (address, tree)
    forget: list[IPv6Address] = field(default_factory=list)  # stop looking these up again
    changed: bool = False  # the rules must be pushed
    release: list[Held] = field(default_factory=list)  # put these back, after the push
    dropped: int = 0  # held packets nobody could place


def sixty_four(address: IPv6Address) -> IPv6Network:
    return IPv6Network((address, 64), strict=False)


@dataclass
class _Waiting:
    since: float
    packets: list[Held] = field(default_factory=list)


@dataclass
class Contacts:
    """One id-loc site's correspondents: the far /64s it has rules for, the plain sources, what waits."""

    far: dict[str, list[IPv6Network]] = field(default_factory=dict)  # far site -> its /64s met, in order
    plain: dict[IPv6Network, float] = field(default_factory=dict)  # source /64 -> when found plain
    upgraded: dict[IPv6Network, None] = field(default_factory=dict)  # once plain, now a far site's locator /64
    waiting: dict[IPv6Address, _Waiting] = field(default_factory=dict)

    def toward(self, dst: IPv6Address, held: Held, records: Mapping[str, Record], now: float) -> Effects:
        """A host's packet toward ``dst`` that no rule carried."""
        record = next((r for r in records.values() if dst in r.identity), None)
        if record is not None:
            return self._meet(record.site, sixty_four(dst), [held])
        if dst not in IDENTITY_SPACE:
            return Effects(dropped=1)  # routed addresses leave by the plain rules; this one should not be here
        return self._hold(dst, IDENTITY_TREE, held, now)

    def arrived(self, src: IPv6Address, held: Held | None, records: Mapping[str, Record], now: float) -> Effects:
        """A packet from ``src`` that arrived at an exit and no rule placed (``held`` None: a locator-pair
        message from an unknown far edge, which needs no delivery but says who is calling)."""
        found = _far_subnet(src, records)
        if found is not None:
            return self._meet(*found, [held] if held else [])
        if sixty_four(src) in self.plain:
            return Effects(release=[held] if held else [])
        # One lookup per source /64 (the registry delegates /64s and shorter): a sweep of addresses in it
        # costs one query, not one each.
        return self._hold(sixty_four(src).network_address, LOCATOR_TREE, held, now)

    def resolved(self, address: IPv6Address, records: Mapping[str, Record]) -> Effects:
        """The mapping service answered for ``address`` and ``records`` hold what the edge knows now: place
        everything waiting that they place, whichever lookup it waited on (the far edge's probes often bring
        a site's record before the lookup of a packet's own source completes). A source found plain before
        and now registered (the client asks again after each negative TTL) is a far site's from now on."""
        # Every plain source a record now places is upgraded at once, whichever lookup brought the record (the
        # far edge's probes often do): its locator's rules would otherwise take its packets from the plain ones.
        now_far = [n for n in self.plain if _far_subnet(n.network_address, records) is not None]
        for net in now_far:
            del self.plain[net]
            self.upgraded[net] = None
        out = Effects(changed=bool(now_far) or self.plain.pop(sixty_four(address), None) is not None)
        while len(self.upgraded) > MAX_PLAIN:  # the oldest's plain sessions are mapped from then on
            del self.upgraded[next(iter(self.upgraded))]
        for waited, w in list(self.waiting.items()):
            found = _far_subnet(waited, records) or next(
                ((r.site, sixty_four(waited)) for r in records.values() if waited in r.identity), None)
            if found is not None:
                del self.waiting[waited]
                if not w.packets:  # a lookup for a far edge's own address: nothing to deliver, no /64 to meet
                    continue
                placed = self._meet(*found, w.packets)
                out.changed |= placed.changed
                out.release += placed.release
                out.dropped += placed.dropped
        return out

    def unknown(self, address: IPv6Address, tree: str, now: float) -> Effects:
        """No site holds ``address``: a source is plain from now on; an identity is unreachable."""
        w = self.waiting.pop(address, None)
        held = w.packets if w else []
        if tree != LOCATOR_TREE:
            return Effects(dropped=len(held))
        net = sixty_four(address)
        changed = net not in self.plain
        self.plain[net] = self.plain.get(net, now)
        gone = []
        while len(self.plain) > MAX_PLAIN:
            oldest = next(iter(self.plain))
            del self.plain[oldest]
            gone.append(oldest.network_address)
        return Effects(changed=changed, release=held, forget=gone)

    def without_service(self, effects: Effects, now: float) -> Effects:
        """``effects`` of an edge that has no mapping service to ask: what it wanted looked up is answered at
        once as no site's (a source is plain, an identity unreachable)."""
        for address, tree in effects.want:
            more = self.unknown(address, tree, now)
            effects.changed |= more.changed
            effects.release += more.release
            effects.dropped += more.dropped
        effects.want = []
        return effects

    def recovered(self, plain: list[IPv6Network], upgraded: list[IPv6Network], now: float) -> Effects:
        """A restarted controller found rules for these sources on its switches: they are what it had found
        plain, and upgraded, before. Each is looked up again (a plain one may have registered since; an
        upgraded one's record is needed for its rules)."""
        fresh = [n for n in plain if n not in self.plain] + [n for n in upgraded if n not in self.upgraded]
        for n in plain:
            self.plain.setdefault(n, now)
        for n in upgraded:
            self.upgraded.setdefault(n, None)
        return Effects(changed=bool(fresh), want=[(n.network_address, LOCATOR_TREE) for n in fresh])

    def expire(self, now: float) -> int:
        """Drop what has waited longer than HOLD_S; how many packets went."""
        old = [a for a, w in self.waiting.items() if now - w.since >= HOLD_S]
        return sum(len(self.waiting.pop(a).packets) for a in old)

    def far_subnets(self, site: str) -> dict[tuple[str, str], tuple[IPv6Network, ...]]:
        """What :func:`multi6lab.controller.policy.desired` takes, for this site."""
        return {(site, far): tuple(nets) for far, nets in self.far.items()}

    def _meet(self, far_site: str, subnet: IPv6Network, held: list[Held]) -> Effects:
        """Rules for ``subnet`` of ``far_site`` from now on; ``held`` goes back through them (or is dropped,
        when the far site already has MAX_FAR_SUBNETS: it would only come back up again)."""
        met = self.far.setdefault(far_site, [])
        if subnet in met:
            return Effects(release=held)
        if len(met) >= MAX_FAR_SUBNETS:
            return Effects(dropped=len(held))
        met.append(subnet)
        return Effects(changed=True, release=held)

    def _hold(self, address: IPv6Address, tree: str, held: Held | None, now: float) -> Effects:
        w = self.waiting.get(address)
        first = w is None
        if w is None:
            if len(self.waiting) >= MAX_WAITING:
                return Effects(dropped=1 if held else 0)
            w = self.waiting[address] = _Waiting(now)
        if held is not None and len(w.packets) < QUEUE:
            w.packets.append(held)
        return Effects(want=[(address, tree)] if first else [])


def _far_subnet(src: IPv6Address, records: Mapping[str, Record]) -> tuple[str, IPv6Network] | None:
    """(far site, identity /64) of a packet from locator address ``src``, if a known site's locator holds it."""
    for r in records.values():
        for loc in r.locators:
            if src in loc.prefix:
                return r.site, sixty_four(Translator(r.identity, loc.prefix).to_inside(src))
    return None
