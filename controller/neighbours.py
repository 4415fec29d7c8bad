"""Neighbour discovery for the site router, for addresses the plan does not list (pure).

NPTv6 translates whole prefixes (RFC 6296), so a packet can arrive for any address in the site's subnets: a
host's temporary address (RFC 8981), an address in a second subnet, an address set by hand. The exits
translate it and hand it to the fabric, which knows the plan's hosts and the neighbours learned here; for
any other address the packet comes to the controller, which does what a router does (RFC 4861 section 7.2):
it holds the packet, sends a neighbour solicitation to the hosts, and on the solicited advertisement learns
where the address lives, so the fabric delivers from then on and the held packets go out.

The router's constants are RFC 4861's: a solicitation is repeated after RETRANS_TIMER_S while packets keep
coming, at most MAX_MULTICAST_SOLICIT times, and a queue holds at most QUEUE packets per address (Linux's
default, 3); an address that never answers is forgotten with its queue.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

RETRANS_TIMER_S = 1.0
MAX_MULTICAST_SOLICIT = 3
QUEUE = 3
MAX_PENDING = 256  # addresses being resolved at once: a scan of the subnet cannot grow the state without end


@dataclass(frozen=True)
class Neighbour:
    mac: str
    port: int


@dataclass
class _Pending:
    first: float
    solicited: float
    tries: int
    queue: list[bytes] = field(default_factory=list)


@dataclass
class Resolver:
    """One site's resolution state: what is learned, what is being asked about."""

    subnets: tuple[IPv6Network, ...]
    host_ports: Collection[int]
    learned: dict[IPv6Address, Neighbour] = field(default_factory=dict)
    pending: dict[IPv6Address, _Pending] = field(default_factory=dict)

    def miss(self, addr: IPv6Address, packet: bytes, now: float) -> bool | Neighbour:
        """A packet for ``addr`` that the fabric could not deliver. Returns whether to solicit now, or the
        neighbour to send it to: one learned an instant ago, whose rule is still on its way to the fabric."""
        if addr in self.learned:
            return self.learned[addr]
        if not any(addr in s for s in self.subnets):
            return False  # not ours to resolve
        p = self.pending.get(addr)
        if p is None:
            if len(self.pending) >= MAX_PENDING:
                return False
            p = self.pending[addr] = _Pending(now, now, 1)
            solicit = True
        else:
            solicit = now - p.solicited >= RETRANS_TIMER_S and p.tries < MAX_MULTICAST_SOLICIT
            if solicit:
                p.solicited, p.tries = now, p.tries + 1
        if len(p.queue) < QUEUE:
            p.queue.append(packet)
        return solicit

    def advert(self, target: IPv6Address, mac: str, port: int) -> list[bytes] | None:
        """A solicited advertisement from a host port: learn ``target`` there and return the packets held
        for it. An advertisement nobody asked for, or from a port without hosts, is ignored (None)."""
        if port not in self.host_ports or target not in self.pending:
            return None
        self.learned[target] = Neighbour(mac, port)
        return self.pending.pop(target).queue

    def expire(self, now: float) -> list[IPv6Address]:
        """Forget the addresses that did not answer any of their solicitations (their packets are dropped)."""
        gone = [a for a, p in self.pending.items()
                if p.tries >= MAX_MULTICAST_SOLICIT and now - p.solicited >= RETRANS_TIMER_S]
        for a in gone:
            del self.pending[a]
        return gone
