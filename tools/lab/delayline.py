"""A delay line's schedule (pure): when each packet of an impaired link direction goes on, as netem would send it.

Where the kernel has no netem qdisc, the lab delays packets itself: the routers' and hosts' netfilter hooks queue
every packet of an impaired link direction to a verdict daemon in their namespace (:mod:`multi6lab.traffic.delayd`),
which lets each one go at the time this schedule gives. The schedule follows netem's semantics:

* a packet is lost with probability ``loss_pct`` (independently; netem's default, no correlation);
* otherwise it is due ``delay_ms`` after it arrived, plus, with ``jitter_ms``, a uniform draw from
  [-jitter, +jitter] (netem's distribution when none is given), never before it arrived;
* without jitter packets leave in the order they came (a fixed delay never reorders); with jitter each packet
  keeps its own due time, so one may overtake another, as under netem.

Time is passed in, and the random draws come from a seeded generator, so a schedule replays exactly.
:func:`holds` says which namespace holds which link direction: a router's or host's end of every impaired link
(a link between two switches has none, and cannot be delayed without netem).
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from multi6lab.topologies.plan import LinkPlan, Plan

FIRST_QUEUE = 100  # netfilter queue numbers per namespace start here


@dataclass(frozen=True)
class Impairment:
    """What one direction of a link does to each packet."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0

    def __bool__(self) -> bool:
        return bool(self.delay_ms or self.jitter_ms or self.loss_pct)


@dataclass
class Queue:
    """One impaired direction: its schedule state."""

    impairment: Impairment
    rng: random.Random
    last_due: float = float("-inf")  # without jitter nothing leaves before the packet ahead of it

    def due(self, now: float) -> float | None:
        """When the packet that arrived at ``now`` goes on; None when it is lost."""
        imp = self.impairment
        if imp.loss_pct and self.rng.random() * 100 < imp.loss_pct:
            return None
        delay = imp.delay_ms + (self.rng.uniform(-imp.jitter_ms, imp.jitter_ms) if imp.jitter_ms else 0.0)
        due = now + max(0.0, delay) / 1000
        if not imp.jitter_ms:
            due = max(due, self.last_due)
        self.last_due = due
        return due


@dataclass
class DelayLine:
    """The packets held for every queue of one namespace, released in the order of their due times."""

    queues: dict[int, Queue]
    held: list[tuple[float, int, int, int]] = field(default_factory=list)  # (due, arrival order, queue, packet id)
    arrivals: int = 0
    lost: int = 0

    @classmethod
    def of(cls, impairments: dict[int, Impairment], seed: int) -> DelayLine:
        """A line for ``impairments`` by queue number, each queue with its own generator drawn from ``seed``."""
        return cls({n: Queue(imp, random.Random(seed * 1_000_003 + n)) for n, imp in sorted(impairments.items())})

    def arrived(self, queue: int, packet: int, now: float) -> bool:
        """Packet ``packet`` of ``queue`` arrived at ``now``: held until due (True), or lost (False: drop it)."""
        due = self.queues[queue].due(now)
        if due is None:
            self.lost += 1
            return False
        self.arrivals += 1
        heapq.heappush(self.held, (due, self.arrivals, queue, packet))
        return True

    def next_due(self) -> float | None:
        return self.held[0][0] if self.held else None

    def release(self, now: float) -> list[tuple[int, int, float]]:
        """(queue, packet, when it was due) of each packet due by ``now``, in the order they go."""
        out = []
        while self.held and self.held[0][0] <= now:
            due, _, queue, packet = heapq.heappop(self.held)
            out.append((queue, packet, due))
        return out


@dataclass(frozen=True)
class Hold:
    """One impaired link direction, held in a router's or host's namespace: the packets leaving through
    ``intf`` (``out``) or arriving on it (``in``), queued to ``queue``."""

    node: str
    intf: str
    way: Literal["out", "in"]
    impairment: Impairment
    queue: int


class Unheld(ValueError):
    """A link whose impairment no namespace can hold (both ends are switches)."""


def impairment(lp: LinkPlan) -> Impairment:
    return Impairment(lp.delay_ms or 0.0, lp.jitter_ms or 0.0, lp.loss_pct or 0.0)


def holds(plan: Plan) -> list[Hold]:
    """Where the delay line applies each delayed link's impairment, both directions: at each end where both
    are routers or hosts (the packets leaving it), else at the one router or host end (leaving and arriving).
    Loss without delay is left to the nodes' own random drop (``shell.loss``). Unheld names a link between
    two switches, which only netem can delay."""
    role = {n.name: n.role for n in plan.nodes}
    queues: Counter[str] = Counter()
    out = []
    for lp in plan.links:
        imp = impairment(lp)
        if not (imp.delay_ms or imp.jitter_ms):
            continue
        ends = [i for i in (lp.a, lp.b) if role[i.node] != "switch"]
        if not ends:
            raise Unheld(f"link {lp.label}: a delay between two switches needs the netem qdisc, which this kernel "
                         "lacks (the lab's own delay line runs in a router's or host's namespace); put the delay "
                         "on a link with a router or host end, or run on a kernel with sch_netem")
        ways: list[tuple[str, str, Literal["out", "in"]]] = (
            [(e.node, e.name, "out") for e in ends] if len(ends) == 2
            else [(ends[0].node, ends[0].name, "out"), (ends[0].node, ends[0].name, "in")])
        for node, intf, way in ways:
            out.append(Hold(node, intf, way, imp, FIRST_QUEUE + queues[node]))
            queues[node] += 1
    return out
