"""Locator pairs between id-loc sites, chosen by each site's edge from what reached it (RFC 4177 5.4, 6.3.4). Pure.

Between two id-loc sites S and R, traffic from S to R uses one *directed locator pair* (an exit X of S, a
locator Y of R): S's edge writes X's locator as source and Y's as destination. Each site's edge chooses its
own outbound pair, and it learns whether a pair delivers only from messages of the far edge that crossed the
emulated network: the two edges run a small protocol modelled on REAP (RFC 5534), one :class:`Edge` each.

* Every message is a probe with a fresh random nonce, sent from the edge's address in one of its locators to
  the far edge's address in one of the far site's locators (:class:`Message`). Each message also *reports*
  the newest nonce the sender received on each pair from the addressee recently (REAP's received-probe
  reports), and lists the sender's locators whose uplink is down (a locator update, as SHIM6's).
* Keepalives: the edge probes its active pair every ``interval``, asking the far edge to answer at once, so
  the nonce is reported back within a round trip; the controller sees no data packets, so a direction is
  always treated as one that carries no data. Standby pairs are probed every ``STANDBY_FACTOR`` intervals
  (reported with the next message), so a failover can pick a pair with recent evidence.
* Send timeout: when no probe sent on the active pair within ``interval x multiplier`` plus the smoothed round
  trip (measured from its own probes to their reports: one rule for every RTT) has been reported back, the
  edge *explores*: it probes every usable pair at once and then every interval, flagged so that the
  far edge answers at once (answers are never flagged, so they do not answer each other). It keeps sending
  on the active pair meanwhile: silence alone does not say which direction failed.
* Evidence: the edge changes its outbound pair only on what it received. During an exploration, a report of
  a probe sent since it began settles it: the active pair reported confirms it; two reports from successive
  rounds that name other pairs but not the active one move traffic to the best of them (one such report
  only makes the edge ask again at once: the active pair's probe may just be late). The edge's own
  uplink going down, or the far edge's word that one of its locators is down, moves traffic at once to the
  most preferred pair reported recently (or explores, with none).
* A more preferred pair whose probes are reported ``multiplier`` times since it last failed takes traffic back.

* Proof: a message counts only if it reports a nonce this edge sent recently (REAP's probes carry the same
  kind of proof, RFC 5534 5.3). Nonces come from ``secrets``, a message carries at most ``MAX_REPORTS``
  reports, and a message that proves nothing moves no pair, arms no answer and starts no clock: its nonce
  only waits in a slot of its own, reported while no proven message of that pair is fresh (how two edges
  that have never heard each other, or one that restarted, bootstrap). Unproven messages are rate-limited
  per far locator, so a flood of forgeries costs the edge little and cannot wash that slot out faster than
  ``UNPROVEN_PER_INTERVAL`` a period.

A unidirectional failure therefore moves only the broken direction: both edges may time out, but the reports
that end the exploration of the edge whose direction still works confirm the pair it kept, and the edge whose
probes stopped arriving hears of another pair first. The state machine is drawn in docs/locator-pairs.md.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from typing import Any

from multi6lab.controller.mapping import Record
from multi6lab.topologies.addressing import edge_address
from multi6lab.topologies.plan import Sites
from multi6lab.vocabulary import Event, Trigger

EventRecord = dict[str, Any]  # one line of the event log: {'t', 'event', ...}
STANDBY_FACTOR = 10
MAX_REPORTS = 8  # reports a message may carry: one correct guess among them would prove it
UNPROVEN_PER_INTERVAL = 4  # unproven messages admitted per far locator and interval (a burst of 4x that)
Randbits = Callable[[int], int]  # secrets.randbits, or a seeded generator's getrandbits in tests
NEVER = float("-inf")


@dataclass(frozen=True)
class Message:
    """One probe from the edge of ``src_site``, sent through its exit ``src_exit`` to the far site's locator
    ``dst_exit``. On the wire the exits are the edges' addresses in those locators."""

    src_site: str
    dst_site: str
    src_exit: str
    dst_exit: str
    nonce: int
    ask: bool = False  # answer at once: a keepalive or an exploration probe (never an answer)
    reports: tuple[int, ...] = ()  # the newest nonce received from the addressee on each pair, recently
    down: tuple[str, ...] = ()  # the sender's exits whose uplink is down
    heard_ms: int = 0xFFFF  # how long the sender has been hearing from the addressee (capped): its omissions
    # from the reports say something only once it has listened for the evidence window

    @property
    def pair(self) -> tuple[str, str]:
        return (self.src_exit, self.dst_exit)


@dataclass
class OutPair:
    """One outbound pair (this site's exit, a far locator) and what the far edge reported about it."""

    src_exit: str
    dst_exit: str
    rank: int  # lower is preferred
    seq: int = 0  # probes sent on it so far
    confirmed_seq: int = 0  # the newest of them the far edge reported
    confirmed_sent: float | None = None  # ... and when it was sent
    streak: int = 0  # reports since it last failed
    link_down: bool = False  # this site's uplink of src_exit is down
    peer_down: bool = False  # the far edge said dst_exit is down
    last_probe: float = NEVER

    @property
    def key(self) -> tuple[str, str]:
        return (self.src_exit, self.dst_exit)

    @property
    def usable(self) -> bool:
        return not self.link_down and not self.peer_down


@dataclass
class Context:
    """This edge's state toward one far id-loc site."""

    site: str
    peer: str
    candidates: list[OutPair]
    triggers: tuple[str, ...]
    interval: float
    multiplier: int
    active: OutPair = field(init=False)
    active_since: float = NEVER
    exploring_since: float | None = None
    sent: dict[int, tuple[OutPair, int, float]] = field(default_factory=dict)  # nonce -> (pair, seq, sent at)
    inbound: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)  # pair -> (nonce, arrived)
    unproven: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)  # the same, of messages
    # that proved nothing: reported only for a pair with no fresh proven arrival
    budget: dict[str, tuple[float, float]] = field(default_factory=dict)  # far exit -> (tokens, at): unproven
    answer: bool = False  # a message asked to be answered at once
    answered: float = NEVER
    first_heard: float | None = None  # when the far edge's first message arrived
    omitted: float | None = None  # exploring: newest probe of a report that left the active pair out
    pruned: float = NEVER  # when old nonces were last forgotten
    srtt: float = 0.0  # smoothed round trip of this edge's probes to their reports (RFC 6298's gain, 1/8)

    def __post_init__(self) -> None:
        self.active = self.candidates[0]

    @property
    def detect_time(self) -> float:
        return self.interval * self.multiplier

    @property
    def window(self) -> float:
        """How long evidence stays fresh: the standby probes' detection time."""
        return self.interval * STANDBY_FACTOR * self.multiplier

    def ev(self, name: str, now: float, p: OutPair, **extra: Any) -> EventRecord:
        return {"event": name, "t": now, "src_site": self.site, "dst_site": self.peer, "exit": p.src_exit,
                "dst_exit": p.dst_exit, **extra}


class Edge:
    """One id-loc site's edge: its exits, and a :class:`Context` per far site it learned from the mapping.

    ``exits`` are this site's exit names in preference order; ``peers`` the mapping records of the far
    sites. Nothing else about the far sites is known here.
    """

    def __init__(self, site: str, exits: Iterable[str], peers: Iterable[Record], triggers: tuple[str, ...],
                 interval: float, multiplier: int, randbits: Randbits = secrets.randbits):
        self.site = site
        self.exits = tuple(exits)
        self.down: set[str] = set()
        self.refused = 0  # locator updates ignored for want of proof (forged, or from a confused far edge)
        self.unproven = 0  # messages that proved nothing (forged, or from a far edge that has not heard us yet)
        self.limited = 0  # ... of them dropped unread: over the far locator's rate
        self.randbits = randbits
        self.triggers, self.timers = triggers, (interval, multiplier)
        self.contexts: dict[str, Context] = {}
        self.records: dict[str, Record] = {}
        self.slots: dict[str, int] = {}  # far site -> its number here, in the order this edge met them (never reused)
        self.senders: dict[IPv6Address, tuple[str, str]] = {}  # a far edge's address -> (its site, its exit)
        for record in peers:
            self.learn(record)

    def learn(self, record: Record) -> bool:
        """A far site's record, as the mapping service gave it: a new far site gets a context, a changed one
        its candidate pairs again (what was learned about the pairs that remain is kept). True if changed."""
        if self.records.get(record.site) == record:
            return False
        self.records[record.site] = record
        self.slots.setdefault(record.site, len(self.slots))
        self.senders = {edge_address(loc.prefix): (r.site, loc.exit) for r in self.records.values()
                        for loc in r.locators}
        cands = [OutPair(x, loc.exit, rank=i * 16 + j, link_down=x in self.down)
                 for i, x in enumerate(self.exits) for j, loc in enumerate(record.locators)]
        cands.sort(key=lambda p: (p.rank // 16 + p.rank % 16, p.rank))
        c = self.contexts.get(record.site)
        if c is None:
            self.contexts[record.site] = Context(self.site, record.site, cands, self.triggers, *self.timers)
            return True
        known = {p.key: p for p in c.candidates}
        for i, p in enumerate(cands):
            if p.key in known:
                known[p.key].rank = p.rank
                cands[i] = known[p.key]
        c.candidates = cands
        if c.active not in cands:
            c.active, c.active_since = cands[0], NEVER
        return True

    def sender(self, address: IPv6Address) -> tuple[str, str] | None:
        """(far site, its exit) of a far edge's address, from the records this edge learned; None for any other
        address (a site that shares this edge's process learned nothing for it)."""
        return self.senders.get(address)

    @staticmethod
    def address(record: Record, exit_name: str) -> IPv6Address:
        """The far edge's address in its locator through ``exit_name``, where this edge's messages go."""
        return edge_address(next(loc.prefix for loc in record.locators if loc.exit == exit_name))

    def active(self) -> dict[tuple[str, str], tuple[str, str]]:
        return {(self.site, c.peer): c.active.key for c in self.contexts.values()}

    @property
    def interval(self) -> float:
        return min((c.interval for c in self.contexts.values()), default=0.01)

    # -- sending ------------------------------------------------------------------------------------------
    def due(self, now: float) -> list[Message]:
        """The messages to send now: the active pair every interval, every usable pair while exploring, the
        others every STANDBY_FACTOR intervals, and at once whatever a message asked to be answered."""
        out = []
        for c in self.contexts.values():
            horizon = now - c.window
            if now - c.pruned >= c.interval:  # due() runs after every message: forget old nonces once a tick
                c.sent = {n: s for n, s in c.sent.items() if s[2] >= horizon}
                c.pruned = now
            answer = c.answer and now - c.answered >= c.interval / 4  # coalesce a burst of requests
            if answer:
                c.answer, c.answered = False, now
            exploring = c.exploring_since is not None
            reports = self._reports_due(c, horizon)
            heard = 0 if c.first_heard is None else min(0xFFFF, int((now - c.first_heard) * 1000))
            order = [c.active] + [p for p in c.candidates if p is not c.active]  # the active pair's first
            for p in order:
                if not p.usable:
                    continue
                fast = p is c.active or exploring
                every = c.interval if fast else c.interval * STANDBY_FACTOR
                # Due once most of a period has passed: the caller's clock ticks once per interval and may
                # wake a little early. Answers are extra and leave the schedule alone, or a keepalive that an
                # answer pre-empted would slip a whole period (and with it, every report of it).
                scheduled = now - p.last_probe >= every * 0.9
                if not scheduled and not (answer and fast):
                    continue
                if scheduled:
                    p.last_probe = now
                p.seq += 1
                nonce = self.randbits(32) or 1
                c.sent[nonce] = (p, p.seq, now)
                # A keepalive or an exploration probe asks for an answer, so its nonce comes back within a
                # round trip; standby probes wait for the next report; answers never ask (or they would
                # answer each other).
                out.append(Message(self.site, c.peer, p.src_exit, p.dst_exit, nonce, scheduled and fast,
                                   reports, tuple(sorted(self.down)), heard))
        return out

    # -- receiving ----------------------------------------------------------------------------------------
    @staticmethod
    def _reports_due(c: Context, horizon: float) -> tuple[int, ...]:
        """The newest fresh arrival on each pair, from a proven message where there is one; at most
        MAX_REPORTS of them, the newest first."""
        fresh = {pair: got for pair, got in c.unproven.items() if got[1] >= horizon}
        fresh.update({pair: got for pair, got in c.inbound.items() if got[1] >= horizon})
        return tuple(n for n, _ in sorted(fresh.values(), key=lambda got: -got[1])[:MAX_REPORTS])

    def received(self, m: Message, now: float) -> list[EventRecord]:
        """A message of the far edge arrived (through this site's exit ``m.dst_exit``)."""
        c = self.contexts.get(m.src_site)
        if c is None or m.dst_site != self.site:
            return []
        # Anything that moves traffic or sends packets counts only from a message that proves it saw our probes
        # (it reports a nonce we sent recently): a forger off the path can neither make this edge leave a
        # working pair nor make it answer the real far edge, nor push the real far edge's nonces out of reports.
        proven = len(m.reports) <= MAX_REPORTS and any(n in c.sent for n in m.reports)
        if not proven:
            self.unproven += 1
            self.refused += bool(m.down)
            if self._admit(c, m.src_exit, now):
                c.unproven[m.pair] = (m.nonce, now)
            return []
        c.inbound[m.pair] = (m.nonce, now)
        c.unproven.pop(m.pair, None)
        if c.first_heard is None:
            c.first_heard = now
        if m.ask:
            c.answer = True
        out = self._peer_down(c, set(m.down), now)
        fresh = self._reports(c, m.reports, now, out)
        out += self._settle(c, fresh, now, m.heard_ms) if c.exploring_since is not None \
            else self._preferred_back(c, now)
        return out

    def _admit(self, c: Context, far_exit: str, now: float) -> bool:
        """A token bucket per far locator for unproven messages: UNPROVEN_PER_INTERVAL a period, bursts of 4x."""
        rate, burst = UNPROVEN_PER_INTERVAL / c.interval, 4.0 * UNPROVEN_PER_INTERVAL
        tokens, at = c.budget.get(far_exit, (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens < 1:
            self.limited += 1
            c.budget[far_exit] = (tokens, now)
            return False
        c.budget[far_exit] = (tokens - 1, now)
        return True

    def _peer_down(self, c: Context, down: set[str], now: float) -> list[EventRecord]:
        was = c.active.peer_down
        for p in c.candidates:
            if p.peer_down != (p.dst_exit in down):
                p.peer_down = p.dst_exit in down
                p.streak = 0
        if c.active.peer_down and not was and Trigger.LINK in c.triggers:
            return [c.ev(Event.PAIR_DEAD, now, c.active, cause="locator down"), *self._failover(c, now)]
        return []

    @staticmethod
    def _reports(c: Context, nonces: tuple[int, ...], now: float, out: list[EventRecord]) -> list[OutPair]:
        """Credit each reported nonce to the pair it was sent on; return the pairs with news."""
        news: list[OutPair] = []
        for n in nonces:
            sent = c.sent.get(n)
            if sent is None:
                continue  # not ours, or too old to count
            p, seq, at = sent
            if seq <= p.confirmed_seq:
                continue
            if p.confirmed_sent is None:
                out.append(c.ev(Event.PAIR_UP, now, p))
            c.srtt = now - at if not c.srtt else c.srtt + (now - at - c.srtt) / 8
            p.confirmed_seq, p.confirmed_sent = seq, at
            p.streak += 1
            news.append(p)
        return news

    def _settle(self, c: Context, news: list[OutPair], now: float, heard_ms: int) -> list[EventRecord]:
        """During exploration: the active pair reported again confirms it; reports from two rounds that leave
        it out move traffic to the best pair they name, if the far edge has listened long enough for that
        absence to mean something (a far edge that just started has simply not heard everything yet)."""
        assert c.exploring_since is not None
        news = [p for p in news if p.usable and p.confirmed_sent is not None and p.confirmed_sent >= c.exploring_since]
        if not news:
            return []
        ms = round((now - c.exploring_since) * 1000, 3)
        if c.active in news:
            c.exploring_since = None
            return [c.ev(Event.PAIR_CONFIRMED, now, c.active, exploration_ms=ms)]
        if heard_ms < c.window * 1000:
            return []
        newest = max(p.confirmed_sent or NEVER for p in news)
        if c.omitted is None or newest <= c.omitted:
            # One report without the active pair may only mean its probe is still on the way (probes of a
            # round reach the far controller through different switches, in any order): ask again at once,
            # and move if the next round's report leaves it out too.
            if c.omitted is None:
                c.omitted = newest
            for p in c.candidates:
                p.last_probe = NEVER
            return []
        return self._select(c, min(news, key=lambda p: p.rank), now, "explored")

    def _preferred_back(self, c: Context, now: float) -> list[EventRecord]:
        best = next((p for p in c.candidates if p.usable and p.streak >= c.multiplier
                     and p.confirmed_sent is not None and now - p.confirmed_sent <= c.window), None)
        if best is not None and best.rank < c.active.rank:
            return self._select(c, best, now, "preferred pair back")
        return []

    # -- failures -----------------------------------------------------------------------------------------
    def link(self, exit_name: str, up: bool, now: float) -> list[EventRecord]:
        """Port status of this site's uplink ``exit_name`` (the link trigger): its pairs go down or up, and
        the far edges hear of it in the next messages, which leave at once."""
        if (exit_name in self.down) != up:
            return []
        (self.down.discard if up else self.down.add)(exit_name)
        out: list[EventRecord] = []
        for c in self.contexts.values():
            c.answer, c.answered = True, NEVER
            changed = [p for p in c.candidates if p.src_exit == exit_name]
            for p in changed:
                p.link_down, p.streak = not up, 0
            if not up and c.active in changed and Trigger.LINK in c.triggers:
                out.append(c.ev(Event.PAIR_DEAD, now, c.active, cause=Trigger.LINK))
                out += self._failover(c, now)
        return out

    def tick(self, now: float) -> list[EventRecord]:
        """Send timeout: explore where the active pair's probes have not been reported for the detection
        time. The pair stays: nothing yet says which direction failed."""
        out: list[EventRecord] = []
        for c in self.contexts.values():
            due = self._deadline(c)
            if due is not None and now > due:
                silent = now - max(c.active.confirmed_sent or NEVER, c.active_since)
                out += self._explore(c, now, cause="send timeout", silent_ms=round(silent * 1000, 3),
                                     bound_ms=round((c.detect_time + c.srtt) * 1000, 3))
        return out

    def next_deadline(self) -> float | None:
        """The next send timeout, or the moment a held-back answer may leave, whichever is first: the
        controller calls :meth:`tick` and then :meth:`due` then."""
        times = [d for c in self.contexts.values() if (d := self._deadline(c)) is not None]
        times += [c.answered + c.interval / 4 for c in self.contexts.values() if c.answer]
        return min(times, default=None)

    @staticmethod
    def _deadline(c: Context) -> float | None:
        """When the active pair's silence becomes a send timeout: the detection time plus the smoothed round
        trip after the newest probe that was reported (a report cannot come back sooner than a round trip, so
        at 100 ms RTT a 30 ms detection time alone would fire between every two keepalives), and never before
        ``multiplier`` of its probes went out unreported (a controller that stalled and sent nothing has no
        evidence against the pair)."""
        if c.exploring_since is not None or c.active.confirmed_sent is None or Trigger.HEARTBEAT not in c.triggers:
            return None
        since = max(c.active.confirmed_sent, c.active_since)
        if sum(1 for p, _, at in c.sent.values() if p is c.active and at > since) < c.multiplier:
            return None
        return since + c.detect_time + c.srtt

    def _failover(self, c: Context, now: float) -> list[EventRecord]:
        """The active pair is dead where it is known to be (this site's uplink, or the far locator): the most
        preferred usable pair reported recently carries traffic at once; without one, explore."""
        c.active.streak = 0
        p = next((q for q in c.candidates if q is not c.active and q.usable and q.confirmed_sent is not None
                  and now - q.confirmed_sent <= c.window), None)
        return self._select(c, p, now, "known alive") if p is not None else self._explore(c, now, cause="pair dead")

    def _explore(self, c: Context, now: float, cause: str, **extra: Any) -> list[EventRecord]:
        c.exploring_since, c.omitted = now, None
        for p in c.candidates:
            p.last_probe = NEVER  # probe every usable pair now, not at the next interval
            p.streak = 0  # only reports from now on count toward moving back
        return [{"event": Event.EXPLORING, "t": now, "src_site": c.site, "dst_site": c.peer, "cause": cause,
                 "exit": c.active.src_exit, "dst_exit": c.active.dst_exit, **extra,
                 "candidates": [list(p.key) for p in c.candidates if p.usable]}]

    @staticmethod
    def _select(c: Context, p: OutPair, now: float, cause: str) -> list[EventRecord]:
        started = c.exploring_since
        c.active, c.active_since, c.exploring_since = p, now, None
        ev = c.ev(Event.PAIR_SELECTED, now, p, cause=cause)
        if started is not None:
            ev["exploration_ms"] = round((now - started) * 1000, 3)
        return [ev]


def edge_of(plan: Sites, site: str, peers: Iterable[Record] = (), randbits: Randbits = secrets.randbits) -> Edge:
    """The edge of id-loc site ``site``: its own exits and timers, and the far sites it has records of (from
    the mapping service: their identities and locators, nothing of their state)."""
    sp = next(s for s in plan.sites if s.site.name == site)
    hb = sp.site.heartbeat
    return Edge(site, [e.name for e in sp.exits], peers, sp.site.triggers, hb.interval_ms / 1000.0, hb.multiplier,
                randbits)
