"""Which site exits are usable, from the triggers a site enables (RFC 4177 6.3.1). Pure; time is passed in.

* ``link``: the exit's uplink port status. (The data plane's fast-failover groups act on the same signal
  before the controller hears of it; this state moves the fabric's choice too.)
* ``heartbeat``: echo requests through each ISP to a beacon beyond it every ``interval``; a path is dead when
  no reply came for ``interval x multiplier`` (as BFD's detection time) while at least ``multiplier`` echoes
  went out unanswered, and alive again after
  ``multiplier`` consecutive replies, so one lucky packet during a loss burst does not flap it back. As a BFD
  session must come up before it can go down, a path is judged only after its first reply. An id-loc
  site's heartbeat is its edge's keepalives to the far edges (:mod:`~multi6lab.controller.pairs`), end to
  end: its exits send no beacon echoes, which would only double the control traffic that crosses the
  userspace datapath (and time out on that load alone).

An echo carries an unpredictable token that its reply must return, and a reply counts only if it answers an
echo of that exit still outstanding (each answers once): anyone on the Internet can send an exit an echo reply,
and one that counted would keep a blackholed path alive. The others are counted as forged.

The controller both sends the echoes and judges the silence, so a silence it caused itself (its process or
the machine stalled and sent nothing) must not count against the path: a lab on an idle two-core machine
saw one such false failure in a few minutes with 10 ms echoes, each one dropping a prefix's traffic.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from multi6lab.topologies.plan import Sites
from multi6lab.vocabulary import Event, Trigger

EventRecord = dict[str, Any]  # one line of the event log: {'t', 'event', ...}
AVOID_HOLD = 10.0  # s a destination stays avoided through an exit after an ICMPv6 unreachable or a stalled TCP
# flow (renewed by each further sign; an ISP rate-limits its errors, so a short hold would send traffic back
# into the failure)
OUTSTANDING = 1024  # echoes per path whose replies still count (10 s at 10 ms: at start-up, replies wait seconds
# in the ISP router for neighbour discovery); guessing one of 1024 128-bit tokens is still hopeless


@dataclass
class PathState:
    site: str
    exit: str
    dpid: int
    port: int
    link: bool
    heartbeat: bool
    interval: float  # seconds
    multiplier: int
    link_up: bool = True
    armed: bool = False  # like a BFD session: judged only after its first reply (network start-up)
    hb_dead: bool = False
    last_reply: float = 0.0
    replies_since_dead: int = 0
    unanswered: int = 0  # echoes sent since the last reply
    outstanding: dict[bytes, float] = field(default_factory=dict)  # token -> sent at, oldest first
    forged: int = 0  # replies that answered no outstanding echo

    @property
    def usable(self) -> bool:
        return (self.link_up or not self.link) and not (self.heartbeat and self.hb_dead)

    @property
    def detect_time(self) -> float:
        return self.interval * self.multiplier


class Liveness:
    def __init__(self, plan: Sites, now: float, sites: Collection[str] | None = None):
        """Paths of ``sites`` (default: every site of ``plan``)."""
        own = [sp for sp in plan.sites if sites is None or sp.site.name in sites]
        self.paths: dict[str, PathState] = {}
        self.unreachable: dict[tuple[str, str], float] = {}  # (exit, destination) -> avoided until
        self.site_triggers = {sp.site.name: sp.site.triggers for sp in own}
        for sp in own:
            s = sp.site
            for e in sp.exits:
                self.paths[e.name] = PathState(
                    site=s.name, exit=e.name, dpid=e.dpid, port=e.outside_port, link=Trigger.LINK in s.triggers,
                    heartbeat=Trigger.HEARTBEAT in s.triggers and not s.approach.profile.edges_map,
                    interval=s.heartbeat.interval_ms / 1000.0,
                    multiplier=s.heartbeat.multiplier, last_reply=now)

    def usable(self) -> dict[str, bool]:
        return {name: p.usable for name, p in self.paths.items()}

    def heartbeat_paths(self) -> list[PathState]:
        return [p for p in self.paths.values() if p.heartbeat]

    def _change(self, p: PathState, was: bool, cause: str, now: float) -> list[EventRecord]:
        if p.usable == was:
            return []
        return [{"event": Event.PATH_ALIVE if p.usable else Event.PATH_DEAD, "t": now, "site": p.site, "exit": p.exit,
                 "cause": cause}]

    def port_status(self, dpid: int, port: int, up: bool, now: float) -> list[EventRecord]:
        """An uplink's port status; OVS repeats events, so only a change of state says anything."""
        for p in self.paths.values():
            if p.dpid == dpid and p.port == port:
                if p.link_up == up:
                    return []
                was = p.usable
                p.link_up = up
                ev: EventRecord = {"event": Event.PORT_UP if up else Event.PORT_DOWN, "t": now, "site": p.site,
                                   "exit": p.exit}
                return [ev, *self._change(p, was, Trigger.LINK, now)]
        return []

    def echo_sent(self, exit_name: str, token: bytes, now: float) -> None:
        """One heartbeat echo carrying ``token`` went out through ``exit_name``."""
        p = self.paths.get(exit_name)
        if p is not None:
            p.unanswered += 1
            p.outstanding[token] = now
            if len(p.outstanding) > OUTSTANDING:
                del p.outstanding[next(iter(p.outstanding))]

    def echo_reply(self, exit_name: str, token: bytes, now: float) -> list[EventRecord]:
        """A reply carrying ``token`` reached ``exit_name``: it proves the path only if it answers one of the
        exit's outstanding echoes, once."""
        p = self.paths.get(exit_name)
        if p is None or not p.heartbeat:
            return []
        if p.outstanding.pop(token, None) is None:
            p.forged += 1
            return []
        was = p.usable
        p.last_reply = now
        p.unanswered = 0
        if not p.armed:
            p.armed = True
            return [{"event": Event.HEARTBEAT_UP, "t": now, "site": p.site, "exit": p.exit}]
        if p.hb_dead:
            p.replies_since_dead += 1
            if p.replies_since_dead >= p.multiplier:
                p.hb_dead = False
        return self._change(p, was, Trigger.HEARTBEAT, now)

    @property
    def forged(self) -> int:
        """Echo replies so far that answered no outstanding echo (forged, replayed, or far too late)."""
        return sum(p.forged for p in self.paths.values())

    def icmp_unreachable(self, exit_name: str, destination: str, now: float) -> list[EventRecord]:
        """``icmp`` trigger: the ISP behind ``exit_name`` says it cannot reach ``destination``."""
        return self._hold(exit_name, destination, now, Trigger.ICMP)

    def transport_stalled(self, exit_name: str, destination: str, now: float) -> list[EventRecord]:
        """``transport`` trigger: a TCP flow to ``destination`` through ``exit_name`` keeps repeating a segment
        (:mod:`.transport`)."""
        return self._hold(exit_name, destination, now, Trigger.TRANSPORT)

    def _hold(self, exit_name: str, destination: str, now: float, trigger: Trigger) -> list[EventRecord]:
        """Keep ``destination`` away from ``exit_name`` for AVOID_HOLD, renewed by every further sign."""
        p = self.paths.get(exit_name)
        if p is None or trigger not in self.site_triggers.get(p.site, ()):
            return []
        key = (exit_name, destination)
        fresh = self.unreachable.get(key, 0.0) <= now
        self.unreachable[key] = now + AVOID_HOLD
        if not fresh:
            return []
        return [{"event": Event.DEST_DEAD, "t": now, "site": p.site, "exit": exit_name, "dst": destination,
                 "cause": trigger, "hold_s": AVOID_HOLD}]

    def avoided(self, now: float) -> dict[str, set[str]]:
        """Destinations to steer away from each exit, as the icmp trigger decided (expired holds dropped)."""
        for key in [k for k, until in self.unreachable.items() if until <= now]:
            del self.unreachable[key]
        out: dict[str, set[str]] = {}
        for exit_name, dst in self.unreachable:
            out.setdefault(exit_name, set()).add(dst)
        return out

    def next_deadline(self) -> float | None:
        """When the earliest live heartbeat path is due to be declared dead, if no reply comes first (None for a
        path until its ``multiplier``-th unanswered echo has gone out: the next echo sent asks again)."""
        due = [p.last_reply + p.detect_time for p in self.heartbeat_paths() if self._silent(p)]
        due += list(self.unreachable.values())  # a hold expiring changes the rules too
        return min(due, default=None)

    @staticmethod
    def _silent(p: PathState) -> bool:
        """A live, armed path whose last ``multiplier`` echoes (at least) are unanswered."""
        return p.armed and not p.hb_dead and p.unanswered >= p.multiplier

    def tick(self, now: float) -> list[EventRecord]:
        """Declare heartbeat paths dead whose last reply is older than the detection time; end icmp holds."""
        out: list[EventRecord] = []
        for (exit_name, dst), until in list(self.unreachable.items()):
            if until <= now:
                del self.unreachable[(exit_name, dst)]
                out.append({"event": Event.DEST_ALIVE, "t": now, "site": self.paths[exit_name].site, "exit": exit_name,
                            "dst": dst, "cause": "hold expired"})
        for p in self.heartbeat_paths():
            if self._silent(p) and now - p.last_reply > p.detect_time:
                was = p.usable
                p.hb_dead = True
                p.replies_since_dead = 0
                out += [{"event": Event.HEARTBEAT_TIMEOUT, "t": now, "site": p.site, "exit": p.exit,
                         "silent_ms": round((now - p.last_reply) * 1000, 3), "unanswered": p.unanswered}]
                out += self._change(p, was, Trigger.HEARTBEAT, now)
        return out
