"""Locator-pair liveness and selection for ``id-loc`` sites (RFC 4177 sections 5.4, 6.3.4). Pure.

Between two id-loc sites S and R, traffic from S to R uses one *directed locator pair* (an exit X of S, an
exit Y of R): S's edge writes X's locator as source and Y's locator as destination. Each directed pair is
probed one way (X's address to Y's address, through the ISPs); the controller runs both edges, so it sees
a probe arrive at Y without a reply, and unidirectional failures show up as one dead direction.

The active pair is probed every ``interval``; the others every ``STANDBY_FACTOR`` intervals. When the link
trigger sees an exit of the active pair go down, the failure's place is known: the most preferred pair that
avoids that link and delivered within the standby detection time is selected at once. When a silent failure
kills the active pair (no probe for ``interval x multiplier``), where it failed is unknown: the most preferred
pair sharing neither exit with the dead one that delivered recently carries traffic at once, and every
candidate is probed at once (RFC 4177 6.3.4's exploration). The first to deliver settles it: if it is the pair
already carrying traffic, that pair is confirmed; if another, traffic moves there. Without such a disjoint
pair, traffic waits for the exploration. Its time is reported either way. When a more preferred pair
delivers ``multiplier`` probes in a row again, traffic moves back to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from multi6lab.controller.mapping import MappingService
from multi6lab.topologies.plan import Plan
from multi6lab.vocabulary import Approach, Event, Trigger

EventRecord = dict[str, Any]  # one line of the event log: {'t', 'event', ...}
STANDBY_FACTOR = 10


@dataclass
class Pair:
    src_site: str
    dst_site: str
    src_exit: str
    dst_exit: str
    rank: int  # lower is preferred
    last_seen: float | None = None
    streak: int = 0  # consecutive probes seen since the last loss verdict
    dead: bool = False
    link_down: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.src_exit, self.dst_exit)


@dataclass
class Route:
    """The choice for one ordered site pair."""

    src_site: str
    dst_site: str
    candidates: list[Pair]
    active: Pair
    exploring_since: float | None = None
    triggers: tuple[str, ...] = ()
    interval: float = 0.01
    multiplier: int = 3
    probed: dict[tuple[str, str], float] = field(default_factory=dict)

    @property
    def detect_time(self) -> float:
        return self.interval * self.multiplier


class PairTable:
    def __init__(self, plan: Plan):
        sites = [sp for sp in plan.sites if sp.site.approach == Approach.ID_LOC]
        mapping = MappingService.of(plan)
        self.routes: dict[tuple[str, str], Route] = {}
        self.by_key: dict[tuple[str, str], list[Pair]] = {}
        for s in sites:
            for r in sites:
                if s is r:
                    continue
                assert r.site.identity is not None
                record = mapping.resolve(r.site.identity.network_address)  # the far site's locators
                assert record is not None
                cands = [Pair(s.site.name, r.site.name, x.name, y.exit, rank=i * 16 + j)
                         for i, x in enumerate(s.exits) for j, y in enumerate(record.locators)]
                cands.sort(key=lambda p: (p.rank // 16 + p.rank % 16, p.rank))
                for p in cands:
                    self.by_key.setdefault(p.key, []).append(p)
                hb = s.site.heartbeat
                self.routes[(s.site.name, r.site.name)] = Route(
                    s.site.name, r.site.name, cands, cands[0], triggers=s.site.triggers,
                    interval=hb.interval_ms / 1000.0, multiplier=hb.multiplier)

    def active(self) -> dict[tuple[str, str], tuple[str, str]]:
        return {k: r.active.key for k, r in self.routes.items()}

    @property
    def interval(self) -> float:
        return min((r.interval for r in self.routes.values()), default=0.01)

    # -- probes -----------------------------------------------------------------------------------------
    def due(self, now: float) -> list[tuple[str, str]]:
        """Directed pairs to probe now: the active pair every interval, candidates while exploring, the
        rest every STANDBY_FACTOR intervals."""
        out = []
        for r in self.routes.values():
            for p in r.candidates:
                fast = p is r.active or r.exploring_since is not None
                every = r.interval if fast else r.interval * STANDBY_FACTOR
                if p.link_down:
                    continue
                if now - r.probed.get(p.key, -1e9) >= every * 0.999:
                    r.probed[p.key] = now
                    out.append(p.key)
        return out

    def seen(self, src_exit: str, dst_exit: str, now: float) -> list[EventRecord]:
        """A probe of pair (src_exit, dst_exit) arrived at the far exit."""
        out: list[EventRecord] = []
        for p in self.by_key.get((src_exit, dst_exit), []):
            r = self.routes[(p.src_site, p.dst_site)]
            first = p.last_seen is None
            p.last_seen = now
            p.streak += 1
            if p.dead and p.streak >= (1 if r.exploring_since is not None else r.multiplier):
                p.dead = False
            if first:
                out.append(self._ev(Event.PAIR_UP, now, p))
            if r.exploring_since is not None and p is r.active:  # the provisional pair delivered
                out.append(self._ev(Event.PAIR_CONFIRMED, now, p, exploration_ms=round((now - r.exploring_since)
                                                                                   * 1000, 3)))
                r.exploring_since = None
            elif r.exploring_since is not None and not p.dead and not p.link_down:
                out += self._select(r, p, now, "explored")
            elif p is not r.active and not p.dead and not p.link_down and p.rank < r.active.rank \
                    and p.streak >= r.multiplier:
                out += self._select(r, p, now, "preferred pair back")
        return out

    # -- failures -----------------------------------------------------------------------------------------
    def link(self, exit_name: str, up: bool, now: float) -> list[EventRecord]:
        """Port status of an exit's uplink: every pair through it is down (with the link trigger)."""
        out: list[EventRecord] = []
        for r in self.routes.values():
            changed = [p for p in r.candidates if exit_name in p.key and p.link_down == up]
            for p in changed:  # mark every pair through the link before choosing among the rest
                p.link_down = not up
                p.streak = 0
            if not up and r.active in changed and Trigger.LINK in r.triggers:
                out.append(self._ev(Event.PAIR_DEAD, now, r.active, cause=Trigger.LINK))
                out += self._failover(r, now)
        return out

    def _failover(self, r: Route, now: float) -> list[EventRecord]:
        """After a link-triggered death: a pair with fresh evidence at once, else explore."""
        p = self._fresh(r, now, avoid=set())
        return self._select(r, p, now, "known alive") if p else self._explore(r, now)

    @staticmethod
    def _fresh(r: Route, now: float, avoid: set[str]) -> Pair | None:
        """The most preferred other usable pair through none of the exits in ``avoid`` that delivered within
        the standby detection time."""
        fresh = r.interval * STANDBY_FACTOR * r.multiplier
        return next((p for p in r.candidates if p is not r.active and not p.dead and not p.link_down
                     and p.last_seen is not None and now - p.last_seen <= fresh and not avoid & set(p.key)), None)

    def tick(self, now: float) -> list[EventRecord]:
        """Declare active pairs dead whose last probe is older than the detection time."""
        out: list[EventRecord] = []
        for r in self.routes.values():
            p = r.active
            if r.exploring_since is not None or p.last_seen is None or Trigger.HEARTBEAT not in r.triggers:
                continue
            if now - p.last_seen > r.detect_time:
                p.dead = True
                p.streak = 0
                out.append(self._ev(Event.PAIR_DEAD, now, p, cause=Trigger.HEARTBEAT,
                                    silent_ms=round((now - p.last_seen) * 1000, 3)))
                out += self._explore(r, now)
                # Where it failed is unknown: a pair avoiding both of its exits is the best guess meanwhile.
                guess = self._fresh(r, now, avoid={p.src_exit, p.dst_exit})
                if guess is not None:
                    r.active = guess
                    guess.last_seen = now
                    out.append(self._ev(Event.PAIR_SELECTED, now, guess, cause="disjoint, known alive",
                                        provisional=True))
        return out

    def next_deadline(self) -> float | None:
        due = [r.active.last_seen + r.detect_time for r in self.routes.values()
               if r.exploring_since is None and r.active.last_seen is not None and Trigger.HEARTBEAT in r.triggers]
        return min(due, default=None)

    # -- selection ------------------------------------------------------------------------------------------
    def _explore(self, r: Route, now: float) -> list[EventRecord]:
        r.exploring_since = now
        for p in r.candidates:
            if p is not r.active:
                p.streak = 0  # only probes seen from now on count as evidence
            r.probed.pop(p.key, None)  # probe every candidate at once
        return [{"event": Event.EXPLORING, "t": now, "src_site": r.src_site, "dst_site": r.dst_site,
                 "candidates": [list(p.key) for p in r.candidates if p is not r.active and not p.link_down]}]

    def _select(self, r: Route, p: Pair, now: float, cause: str) -> list[EventRecord]:
        if p is r.active and r.exploring_since is None:
            return []
        started = r.exploring_since
        r.active, r.exploring_since = p, None
        p.last_seen = now  # judged from now on at the active rate, not by its slower standby probes
        ev = self._ev(Event.PAIR_SELECTED, now, p, cause=cause)
        if started is not None:
            ev["exploration_ms"] = round((now - started) * 1000, 3)
        return [ev]

    @staticmethod
    def _ev(name: str, now: float, p: Pair, **extra: Any) -> EventRecord:
        return {"event": name, "t": now, "src_site": p.src_site, "dst_site": p.dst_site, "exit": p.src_exit,
                "dst_exit": p.dst_exit, **extra}
