"""One id-loc site's client of the mapping service: its registration and its lookups. Pure.

The service is a DNS server on a node of the emulated core (:mod:`multi6lab.topologies.knot` renders its zone
and configuration). This module builds the DNS messages and reads the answers (with dnspython); the controller
carries them as UDP packets between the site's edge address and the server, through the site's own exits, so
every lookup crosses the emulated network and can be late, lost or cut off.

* Registration: a dynamic update (RFC 2136) signed with the site's TSIG key replaces its LP records (one per
  exit, in preference order) and the L64 record below each, when the controller starts and whenever it
  reconnects to an exit. The records list the locators a site has, not which of them work now: that changes
  in milliseconds and travels in the locator-pair protocol's locator updates, while a record lives for its
  TTL in every cache (a locator withdrawn from the zone on a link failure would leave far edges without the
  rules for it long after the link came back).
* Lookup of an address, three round trips: the PTR that names the site holding it (an identity, or in the
  registry's ``loc`` tree a locator: who sent a packet from an unknown locator); then that site's LP
  records and the registry's identity and delegation APL records; then the L64 of each exit the LPs name.
  Every query is signed, so the answers are too, and an answer whose signature, id or question does not
  match a query in flight is dropped. A record is accepted only if its identity holds the address and every
  locator lies inside a prefix the registry lists as delegated to that site (:class:`MappingService`).
  An address no site holds is asked about again after the zone's negative TTL (RFC 2308), which here is the
  records' TTL; a site that holds it but has not registered yet, after NOT_FOUND_RETRY_S.
* Cache: a record is used until the smallest TTL among its answers runs out, and is then looked up again.
  Until a new answer arrives the old one stays in use (RFC 8767's serve-stale): an edge keeps talking to a
  site whose locators it knew while the mapping service is unreachable.
* Retransmission: a query or update unanswered after its retransmission timeout is sent again, the wait
  doubling per try up to RETRY_MAX_S (or twice the timeout, if longer), forever; the controller sends each try
  through the next usable exit. The timeout follows the round trip to the server as RFC 6298 sets TCP's:
  SRTT + 4 RTTVAR from the answers to queries sent once (Karn's rule), never below RETRY_S, and RETRY_S until
  the first answer. So a lookup across a 300 ms path is not asked twice before its answer can arrive.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsigkeyring
import dns.update

from multi6lab.controller.mapping import Locator, MappingService, Record, RegistrationRefused
from multi6lab.topologies import knot
from multi6lab.vocabulary import Event

EventRecord = dict[str, Any]
RETRY_S = 0.25
RETRY_MAX_S = 2.0
NOT_FOUND_RETRY_S = 1.0  # a site not (yet) registered: ask again this soon, whatever the negative TTL
PTR, LP, L64, APL = (dns.rdatatype.PTR, dns.rdatatype.LP, dns.rdatatype.L64, dns.rdatatype.APL)
QKey = tuple[str, int]  # (name, type) of a question


@dataclass
class Lookup:
    """One resolution of ``address`` in progress: the answers so far and the questions still open."""

    address: IPv6Address
    started: float
    tree: str = knot.IDENTITY_TREE
    site: str | None = None
    answers: dict[QKey, tuple[list[Any], int]] = field(default_factory=dict)  # -> (rdatas, ttl)
    open: set[QKey] = field(default_factory=set)


@dataclass
class Query:
    wire: bytes
    message: dns.message.Message
    sent: float
    first_sent: float
    timeout: float  # this try's: the client's timeout when it was first sent, doubled per try
    tries: int = 1
    lookup: Lookup | None = None  # None: the registration update

    @property
    def due(self) -> float:
        return self.sent + self.timeout


@dataclass
class RoundTrip:
    """The round trip to the mapping server, estimated as RFC 6298 estimates TCP's (gains 1/8 and 1/4), and the
    retransmission timeout of a query's first try: SRTT + 4 RTTVAR, at least RETRY_S (RETRY_S before any answer).
    A first try that times out backs the timeout off (doubled, up to RETRY_MAX_S) until an answer gives a sample
    again (RFC 6298 5.5 and 5.7): with only Karn's rule, a path longer than RETRY_S would never be sampled."""

    srtt: float | None = None
    rttvar: float = 0.0
    backoff: float = 1.0

    def sample(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.backoff = 1.0

    def timed_out(self) -> None:
        self.backoff = min(self.backoff * 2, max(1.0, RETRY_MAX_S / self.base))

    @property
    def base(self) -> float:
        return RETRY_S if self.srtt is None else max(RETRY_S, self.srtt + 4 * self.rttvar)

    @property
    def rto(self) -> float:
        return self.base * self.backoff


@dataclass(frozen=True)
class Outgoing:
    wire: bytes
    tries: int  # 1 for a first send: the caller picks the exit by it


class MappingClient:
    def __init__(self, site: str, secret: str, ttl_s: int, randbits: Callable[[int], int] = secrets.randbits):
        self.site = site
        self.ttl_s = ttl_s
        self.keyname = dns.name.from_text(knot.site_owner(site))
        self.keyring = dns.tsigkeyring.from_text({knot.site_owner(site): (knot.KEY_ALGORITHM, secret)})
        self.randbits = randbits  # DNS message ids: an off-path forger must guess one (and cannot sign)
        self.records: dict[str, Record] = {}  # far site -> the record in use
        self.wanted: dict[IPv6Address, float] = {}  # address -> when to look it up (again)
        self.trees: dict[IPv6Address, str] = {}  # address -> which tree names it (identity or locator)
        self.lookups: dict[IPv6Address, Lookup] = {}
        self.pending: dict[int, Query] = {}  # by DNS message id
        self.outbox: list[Outgoing] = []
        self.updating: tuple[tuple[str, str], ...] = ()  # the exits of the last update sent
        self.dropped = 0  # answers that matched nothing in flight or failed their signature
        self.rtt = RoundTrip()

    # -- what the controller asks for ---------------------------------------------------------------
    def want(self, address: IPv6Address, now: float, tree: str = knot.IDENTITY_TREE) -> None:
        """Resolve ``address`` (an identity, or a locator with ``tree`` LOCATOR_TREE) now and keep it resolved."""
        self.wanted.setdefault(address, now)
        self.trees.setdefault(address, tree)

    def forget(self, address: IPv6Address) -> None:
        """Stop resolving ``address`` (a lookup in flight still completes)."""
        self.wanted.pop(address, None)
        self.trees.pop(address, None)

    def register(self, exits: Sequence[tuple[str, IPv6Network]], now: float) -> None:
        """Publish ``exits`` (name, delegated prefix; preference order); replaces any update in flight.

        The same exits again while their update is unanswered keep it: every exit switch that connects asks
        to register, and replacing the update would discard an answer that may already be on its way.
        """
        content = tuple((name, str(prefix)) for name, prefix in exits)
        if content == self.updating and any(q.lookup is None for q in self.pending.values()):
            return
        self.updating = content
        owner = knot.site_owner(self.site)
        u = dns.update.UpdateMessage(knot.ZONE, keyring=self.keyring, keyname=self.keyname,
                                     keyalgorithm=knot.KEY_ALGORITHM)
        u.delete(owner, "LP")
        for rank, (name, _) in enumerate(exits):
            u.add(owner, self.ttl_s, "LP", f"{10 * (rank + 1)} {knot.exit_owner(self.site, name)}")
        for name, prefix in exits:
            u.replace(knot.exit_owner(self.site, name), self.ttl_s, "L64", f"10 {knot.l64(prefix)}")
        self.pending = {i: q for i, q in self.pending.items() if q.lookup is not None}
        self._send(u, now, None)

    # -- the clock ----------------------------------------------------------------------------------
    def poll(self, now: float) -> tuple[list[Outgoing], list[EventRecord]]:
        """Start the lookups that are due and resend what went unanswered; the messages to send now."""
        events: list[EventRecord] = []
        for address, due in list(self.wanted.items()):
            if due <= now and address not in self.lookups:
                self.wanted[address] = float("inf")  # until this lookup ends
                lookup = Lookup(address, now, self.trees.get(address, knot.IDENTITY_TREE))
                self.lookups[address] = lookup
                self._ask(lookup, knot.address_name(address, lookup.tree), PTR, now)
        for q in self.pending.values():
            if q.due <= now:
                if q.tries == 1:
                    self.rtt.timed_out()
                q.tries += 1
                q.sent = now
                q.timeout = min(2 * q.timeout, max(RETRY_MAX_S, 2 * self.rtt.base))
                self.outbox.append(Outgoing(q.wire, q.tries))
                events.append({"event": Event.MAPPING_RETRY, "t": now, "site": self.site, "tries": q.tries,
                               "question": _describe(q.message)})
        out, self.outbox = self.outbox, []
        return out, events

    def next_deadline(self) -> float | None:
        times = [q.due for q in self.pending.values()]
        times += [t for a, t in self.wanted.items() if a not in self.lookups]
        return min(times, default=None)

    # -- answers --------------------------------------------------------------------------------------
    def received(self, wire: bytes, now: float) -> list[EventRecord]:
        """A DNS message from the server reached one of the site's exits."""
        q = self.pending.get(int.from_bytes(wire[:2], "big")) if len(wire) >= 12 else None
        if q is None:
            self.dropped += 1
            return []
        try:
            r = dns.message.from_wire(wire, keyring=self.keyring, request_mac=q.message.mac)
        except Exception:  # whatever a malformed or forged message raises inside dnspython: dropped, counted
            self.dropped += 1
            return []
        if not r.had_tsig or not q.message.is_response(r):
            self.dropped += 1
            return []
        del self.pending[r.id]
        if q.tries == 1:  # Karn: an answer to a query sent again could be the answer to any of its tries
            self.rtt.sample(now - q.first_sent)
        rtt = round((now - q.first_sent) * 1000, 3)
        if q.lookup is None:
            return [self._registered(r, now, rtt, q.tries)]
        return self._answer(q.lookup, r, now)

    def _registered(self, r: dns.message.Message, now: float, rtt: float, tries: int) -> EventRecord:
        ev: EventRecord = {"t": now, "site": self.site, "rtt_ms": rtt, "tries": tries}
        if r.rcode() != dns.rcode.NOERROR:
            return {**ev, "event": Event.MAPPING_REFUSED, "reason": dns.rcode.to_text(r.rcode())}
        return {**ev, "event": Event.MAPPING_REGISTERED}

    def _answer(self, lookup: Lookup, r: dns.message.Message, now: float) -> list[EventRecord]:
        qname, qtype = r.question[0].name.to_text(), r.question[0].rdtype
        key = (qname, qtype)
        lookup.open.discard(key)
        rrset = next((s for s in r.answer if s.name == r.question[0].name and s.rdtype == qtype), None)
        lookup.answers[key] = ([] if rrset is None else list(rrset), self.ttl_s if rrset is None else rrset.ttl)
        if qtype == PTR:
            target = next((knot.site_of(rd.target.to_text()) for rd in lookup.answers[key][0]), None)
            if target is None:  # negative caching for the zone's minimum TTL, which is the records' (RFC 2308)
                return self._end(lookup, now, self.ttl_s, reason=f"no site holds {lookup.address} "
                                                                f"({dns.rcode.to_text(r.rcode())})")
            lookup.site = target
            for name, t in ((knot.site_owner(target), LP), (knot.identity_owner(target), APL),
                            (knot.delegated_owner(target), APL)):
                self._ask(lookup, name, t, now)
        elif qtype == LP:
            assert lookup.site is not None
            for rd in lookup.answers[key][0]:
                if knot.exit_of(lookup.site, rd.fqdn.to_text()) is not None:
                    self._ask(lookup, rd.fqdn.to_text(), L64, now)
        return self._complete(lookup, now) if not lookup.open else []

    def _complete(self, lookup: Lookup, now: float) -> list[EventRecord]:
        site = lookup.site
        assert site is not None
        ttl = min(t for _, t in lookup.answers.values())
        identity = _prefixes(lookup.answers[(knot.identity_owner(site), APL)][0])
        delegated = _prefixes(lookup.answers[(knot.delegated_owner(site), APL)][0])
        lps = sorted(lookup.answers[(knot.site_owner(site), LP)][0], key=lambda rd: (rd.preference, rd.fqdn))
        if not identity or (lookup.tree == knot.IDENTITY_TREE and lookup.address not in identity[0]):
            return self._end(lookup, now, NOT_FOUND_RETRY_S, reason=f"site {site}'s identity does not hold "
                                                                   f"{lookup.address}")
        locators = []
        for rd in lps:
            exit_name = knot.exit_of(site, rd.fqdn.to_text())
            l64s = lookup.answers.get((rd.fqdn.to_text(), L64), ([], 0))[0]
            if exit_name is not None and l64s:
                value = int(l64s[0].locator64.replace(":", ""), 16) << 64
                locators.append(Locator(exit_name, IPv6Network((value, identity[0].prefixlen), strict=False)))
        if not locators:
            return self._end(lookup, now, NOT_FOUND_RETRY_S, reason=f"site {site} has no locators registered")
        if lookup.tree == knot.LOCATOR_TREE and not any(lookup.address in loc.prefix for loc in locators):
            return self._end(lookup, now, NOT_FOUND_RETRY_S, reason=f"site {site} has not registered the locator "
                                                                   f"of {lookup.address}")
        record = Record(site, identity[0], tuple(locators))
        try:  # the registry's delegations decide which locators a site may claim
            MappingService({site: set(delegated)}).register(record)
        except RegistrationRefused as exc:
            ev = self._end(lookup, now, ttl, reason=str(exc))
            ev[0]["event"] = Event.MAPPING_REFUSED
            return ev
        changed = self.records.get(site) != record
        self.records[site] = record
        del self.lookups[lookup.address]
        self.wanted[lookup.address] = now + ttl
        return [{"event": Event.MAPPING_RESOLVED, "t": now, "site": self.site, "peer": site,
                 "address": str(lookup.address), "tree": lookup.tree,
                 "lookup_ms": round((now - lookup.started) * 1000, 3),
                 "ttl_s": ttl, "changed": changed, "locators": [[loc.exit, str(loc.prefix)] for loc in locators]}]

    def _end(self, lookup: Lookup, now: float, again: float, reason: str) -> list[EventRecord]:
        """A lookup that found nothing usable: keep the record in use, ask again after ``again`` seconds."""
        del self.lookups[lookup.address]
        self.pending = {i: q for i, q in self.pending.items() if q.lookup is not lookup}
        self.wanted[lookup.address] = now + again
        return [{"event": Event.MAPPING_UNKNOWN, "t": now, "site": self.site, "address": str(lookup.address),
                 "tree": lookup.tree, "reason": reason}]

    # -- sending ------------------------------------------------------------------------------------
    def _ask(self, lookup: Lookup, name: str, rdtype: int, now: float) -> None:
        lookup.open.add((name, rdtype))
        q = dns.message.make_query(name, dns.rdatatype.RdataType(rdtype), dns.rdataclass.IN)
        q.use_tsig(self.keyring, keyname=self.keyname, algorithm=knot.KEY_ALGORITHM)
        self._send(q, now, lookup)

    def _send(self, m: dns.message.Message, now: float, lookup: Lookup | None) -> None:
        m.id = self._fresh_id()  # a random id: an off-path forger must guess it (and cannot sign)
        wire = m.to_wire()
        self.pending[m.id] = Query(wire, m, now, now, self.rtt.rto, lookup=lookup)
        self.outbox.append(Outgoing(wire, 1))

    def _fresh_id(self) -> int:
        while True:
            i = self.randbits(16)
            if i not in self.pending:
                return i


def _prefixes(apls: list[Any]) -> list[IPv6Network]:
    return [IPv6Network(f"{item.address}/{item.prefix}", strict=False) for rd in apls for item in rd.items
            if item.family == 2 and not item.negation]


def _describe(m: dns.message.Message) -> str:
    if isinstance(m, dns.update.UpdateMessage):
        return "update"
    q = m.question[0]
    return f"{q.name} {dns.rdatatype.to_text(q.rdtype)}"
