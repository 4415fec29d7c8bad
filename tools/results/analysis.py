"""From probe logs and controller events to rehoming metrics. Pure: lists in, numbers out.

Definitions (all times on the host's monotonic clock, shared by every namespace):

* **outage_ms** of a UDP stream: from the last arrival before the first break at or after the fault to the
  first of k consecutive arrivals (consecutive sequence numbers, no gap; k = ``traffic.recovery_k``, 5 by
  default) after which no break of k periods or more opens before the restore, less one probe period and
  less any part of it the sender caused by stalling (seen in the probes' send times; kept per trial as
  ``sender_stall_ms`` beside the uncorrected ``raw_gap_ms``, and flagged above 1 ms). An unaffected stream
  scores 0; pure loss of n probes scores n periods; a stray probe inside an outage does not end it. A gap
  is a network gap of at least two periods (two probes lost, or one held that long); anything shorter is
  within the instrument's jitter, which a baseline scenario (nothing broken) measures as
  ``interarrival_p999_ms``. The fault window opens when the fault's command *starts* (the fault takes effect
  somewhere inside the command's own 8-20 ms, and a failover may be over before it returns), and the outage
  starts at the first *break* in it: a gap with probes lost in it, or a hold (nothing lost, all late) of at
  least k periods that is longer than every hold of the same stream before the fault. Only a loss of k
  periods or more counts as a relapse after it: over a fault window of seconds that leaves the path alone
  (a mapping outage), a few holds of this machine's jitter would otherwise read as an outage from the first
  to the last of them. Gaps closing after the restore are the failback, not the
  outage. A stream still (or again) down for k periods when the fault is restored did not rehome that
  direction: ``None`` with a reason and ``above_ms``, what the outage is known to exceed (from the break to
  the restore); a silence into the restore that lost nothing (the next probe is the consecutive one) is a
  hold, not a stream still down. In the percentiles such a trial is *right-censored*: it counts as longer
  than every outage that ended (:func:`summary`), never as left out.
* **disruption_ms**: every gap (as above) in the fault window added up, the silence before the restore
  included: the time lost, where outage_ms is the time until the stream was back for good.
* **lost_packets**: probes sent in the trial that never arrived (duplicates and reordering do not count).
* **detection_ms**: first controller event about the faulted exit (port_down, heartbeat_timeout, path_dead,
  pair_dead, dest_dead).
* **tcp**: a session survived if the client saw no error and the server got its last record; resets are
  counted apart; the stall is the longest gap between records at the server, over survivors only; a
  session *resumed* if records arrived while the fault still stood, and its *goodput* is the share of the
  records due in that window that arrived in it.
* **new_session_ms**: from the fault to the first successful connection of a fresh client started after it.
  Clients start at random times (exponential gaps, mean ``traffic.new_session_interval_ms``), each
  connecting from the remote to the site's addresses as a resolver lists them (RFC 6724 order) with Happy
  Eyeballs (RFC 8305: the next address after ``attempt_delay_ms``, 250 by default), the kernel's own SYN
  retransmissions, giving up after ``give_up_s``. **new_clients**: of the clients started while the fault
  stood, the share connected within 1 s and within 3 s (pooled over trials).
* **false_rehomings**: path_dead events for exits the scenario did not fault (or any, during a loss burst).
* **rtt_ms**: the round trip a trial ran at: the median one-way transit of each direction's probes before the
  fault (kernel receive stamps against send times, one clock for every namespace), added up. Every figure
  is read at some RTT; this is the one.
* **steps** of an id-loc edge's repair of one direction: *detection* from the fault to the edge's first
  detection event (a send timeout, a dead pair), *decision* from there to its new pair (the exploration, or
  the far edge's locator update travelling to it), *installation* from there to the last switch's barrier
  reply for the rules that decision changed.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from multi6lab.results.intervals import quantile_interval
from multi6lab.scenarios.model import Traffic
from multi6lab.vocabulary import DETECTION_EVENTS, Event

EventRecord = dict[str, Any]  # one line of the event log: {'t', 'event', ...}



@dataclass(frozen=True)
class Arrival:
    seq: int
    t_sent: float
    t_recv: float
    source: str = ""


@dataclass(frozen=True)
class StreamResult:
    sent: int
    received: int
    lost: int
    outage_ms: float | None
    reason: str | None = None
    gap: tuple[float, float] | None = None  # (last arrival before, first arrival after), absolute
    sources: tuple[str, ...] = ()  # distinct sources seen, in order of first arrival
    disruption_ms: float | None = None  # every gap of a period or more in the fault window, added up
    raw_gap_ms: float | None = None  # the outage before the sender-stall correction
    sender_stall_ms: float | None = None  # what the correction took off (the sender, not the network)
    interarrival_p999_ms: float | None = None  # the resolution: read it in a baseline cell (nothing broken)
    above_ms: float | None = None  # not recovered: the outage lasted longer than this (the break to the restore)
    transit_ms: float | None = None  # the one-way transit before the fault, p50: the path the figures were read on

    @property
    def stall_flagged(self) -> bool:
        """The sender stalled more than STALL_FLAG_MS inside the outage: the correction matters here."""
        return (self.sender_stall_ms or 0.0) > STALL_FLAG_MS


IN_FLIGHT = 0.002  # s: probes already past the failure point when it takes effect still arrive this late
STALL_FLAG_MS = 1.0
CROSS_CHECK_MS = 2.0
GAP_PERIODS = 2  # a gap: two probes lost, or one held two periods; less is the instrument's jitter (baseline)


def stream(arrivals: Sequence[Arrival], sent: int, period: float, t_fault: float, t_restore: float,
           t_end: float, k: int = Traffic.recovery_k) -> StreamResult:
    """Outage, disruption and loss of one probe stream around a fault window [t_fault, t_restore].

    ``t_fault`` is when the fault's command started (the fault was not in effect before), ``t_restore`` when it
    certainly still was (the restore command had not started). The outage runs from the last arrival before
    the first break at or after the fault to the first of ``k`` consecutive arrivals (consecutive sequence
    numbers, no gap between them) after which no loss of ``k`` periods or more opens before the restore. The
    first break is a gap with probes lost in it, or a hold (nothing lost, everything late) of ``k`` periods or
    more and longer than any hold of the same stream before the fault; later holds are not relapses. (The
    window opens while the injecting command still runs, and that command's load can hold the probes, never
    drop them: so only a hold needs the k periods. Requiring them of a loss too read a 2 ms link-down
    failover as 0 in two of three trials.) Holds
    are the machine's jitter as often as the network's queues, and over a fault window of seconds a few of
    them would otherwise stretch the outage from the first to the last.
    Arrivals within IN_FLIGHT of ``t_fault`` were already past the failure point, so they never start a
    recovery.
    """
    seen: dict[int, Arrival] = {}
    for a in arrivals:
        seen.setdefault(a.seq, a)
    order = sorted(seen.values(), key=lambda x: x.t_recv)
    sources: list[str] = []
    for a in order:
        if a.source and a.source not in sources:
            sources.append(a.source)
    lost = max(0, sent - len(seen))
    spacing = [(b.t_recv - a.t_recv) * 1000 for a, b in itertools.pairwise(order)]
    base = StreamResult(sent, len(seen), lost, None, sources=tuple(sources),
                        interarrival_p999_ms=percentile(spacing, 99.9) if spacing else None)
    before = [a for a in order if a.t_recv <= t_fault]
    after = [a for a in order if a.t_recv > t_fault]
    if before:
        base = _with(base, transit_ms=round(percentile([(a.t_recv - a.t_sent) * 1000 for a in before], 50), 3))
    if not before:
        return _with(base, reason="no probe arrived before the fault (the path was not up)")
    if not after:
        return _with(base, reason="no probe arrived after the fault")
    # Gaps closing after the restore are the failback, not what the fault caused.
    seg = [before[-1], *(a for a in after if a.t_recv <= t_restore)]
    gaps = [network_gap(x, y, period) for x, y in itertools.pairwise(seg)]
    end = min(t_restore, t_end)
    trailing = end - seg[-1].t_recv - period  # silence from the last arrival to the restore (or the end)
    gap = GAP_PERIODS * period
    disruption = (sum(g for g in gaps if g >= gap) + (trailing if trailing >= gap else 0.0)) * 1000
    jitter = max((network_gap(x, y, period) for x, y in itertools.pairwise(before) if y.seq == x.seq + 1),
                 default=0.0)
    breaks = [g >= gap and (y.seq > x.seq + 1 or (g >= k * period and g > jitter))
              for (x, y), g in zip(itertools.pairwise(seg), gaps, strict=True)]
    first = next((i for i, b in enumerate(breaks) if b), None)
    start = seg[first] if first is not None else seg[-1]
    # A silence into the restore whose next probe is the consecutive one lost nothing: the machine held the
    # stream (both directions at once, as a rule), a path still down would have dropped what it was sent.
    resumed = next((a for a in after if a.t_recv > t_restore), None)
    held = resumed is not None and resumed.seq == seg[-1].seq + 1
    back = None
    if trailing < k * period or held:  # the stream is up when the fault ends: find where it came back for good
        if first is None:
            return _with(base, outage_ms=0.0, disruption_ms=disruption)
        # Only a loss of k periods or more after the first break is a relapse: a later hold is the machine.
        last_big = max((i + 1 for i, g in enumerate(gaps) if g >= k * period and seg[i + 1].seq > seg[i].seq + 1),
                       default=first + 1)
        last_big = max(last_big, first + 1)
        back = next((seg[r] for r in range(max(first + 1, last_big), len(seg) - k + 1)
                     if seg[r].t_recv > t_fault + IN_FLIGHT
                     and all(seg[q].seq == seg[q - 1].seq + 1 and gaps[q - 1] < gap for q in range(r + 1, r + k))),
                    None)
    if back is None:
        when = (f"before the restore at +{(t_restore - t_fault) * 1000:.0f} ms" if t_restore < t_end
                else "by the end of the record")
        return _with(base, reason=f"not recovered {when}", gap=(start.t_recv, (resumed or after[-1]).t_recv),
                     disruption_ms=disruption, above_ms=max(0.0, end - start.t_recv - period) * 1000)
    raw = back.t_recv - start.t_recv - period
    stall = max(0.0, (back.t_sent - start.t_sent) - max(1, back.seq - start.seq) * period)
    return _with(base, outage_ms=max(0.0, raw - stall) * 1000, gap=(start.t_recv, back.t_recv),
                 disruption_ms=disruption, raw_gap_ms=max(0.0, raw) * 1000, sender_stall_ms=stall * 1000)


def network_gap(a: Arrival, b: Arrival, period: float) -> float:
    """The part of the receive gap between two consecutive arrivals that the network caused, in seconds.

    A sender that stalled (a busy CPU) and then caught up also leaves a receive gap, but its send times
    show it: time the send gap exceeds the sequence spacing is not the network's. One period is the normal
    spacing. Pure loss of n probes gives n periods; a network that held packets gives the hold time.
    """
    recv_gap = b.t_recv - a.t_recv
    sender_excess = max(0.0, (b.t_sent - a.t_sent) - max(1, b.seq - a.seq) * period)
    return recv_gap - sender_excess - period


def _with(r: StreamResult, **kw: Any) -> StreamResult:
    fields = {**r.__dict__, **kw}
    return StreamResult(**fields)


def detection_ms(events: Iterable[EventRecord], t_fault: float, exits: set[str], since: float | None = None
                 ) -> float | None:
    """From ``t_fault`` to the first event about a faulted exit at or after ``since`` (default t_fault).

    ``since`` is when the injecting command started: an event can precede the command's midpoint, and
    then the detection was at most that early, so it counts as 0.
    """
    start = t_fault if since is None else since
    hits = [e["t"] for e in events
            if e.get("event") in DETECTION_EVENTS and e["t"] >= start
            and (e.get("exit") in exits or e.get("dst_exit") in exits)]
    return max(0.0, (min(hits) - t_fault) * 1000) if hits else None


def false_rehomings(events: Iterable[EventRecord], t_start: float, t_end: float, faulted: set[str],
                    loss_burst: bool) -> int:
    return sum(1 for e in events if e.get("event") == Event.PATH_DEAD and t_start <= e["t"] <= t_end
               and (loss_burst or e.get("exit") not in faulted))


def exploration_ms(events: Iterable[EventRecord], t_start: float, t_end: float) -> float | None:
    """The longest locator-pair exploration (id-loc, RFC 4177 6.3.4) that ended in the window."""
    times = [float(e["exploration_ms"]) for e in events
             if e.get("event") in (Event.PAIR_SELECTED, Event.PAIR_CONFIRMED) and "exploration_ms" in e
             and t_start <= e["t"] <= t_end]
    return max(times, default=None)


def chosen_pairs(events: Iterable[EventRecord], t_start: float, t_end: float) -> list[str]:
    """The locator pair each id-loc edge settled on toward each far site in the window (its last selection),
    as ``site:exit→site:exit``: which of the alternatives the exploration chose (RFC 4177 6.3.2)."""
    last: dict[tuple[str, str], str] = {}
    for e in sorted((e for e in events if e.get("event") == Event.PAIR_SELECTED and t_start <= e["t"] <= t_end),
                    key=lambda e: e["t"]):
        last[(e["src_site"], e["dst_site"])] = f"{e['src_site']}:{e['exit']}→{e['dst_site']}:{e['dst_exit']}"
    return [last[k] for k in sorted(last)]


@dataclass(frozen=True)
class Steps:
    """Where one direction's repair went (id-loc): see the module's definitions. None where it did not happen."""

    detection_ms: float | None = None
    decision_ms: float | None = None
    install_ms: float | None = None


def repair_steps(events: Sequence[EventRecord], t_fault: float, t_end: float, site: str) -> Steps:
    """The steps of ``site``'s edge moving its outbound pair after a fault at ``t_fault``."""
    evs = [e for e in events if t_fault <= e["t"] <= t_end]
    detect = next((e["t"] for e in evs if e.get("event") in DETECTION_EVENTS and e.get("src_site") == site), None)
    chosen = next((e["t"] for e in evs if e.get("event") == Event.PAIR_SELECTED and e.get("src_site") == site), None)
    if detect is None:
        return Steps()
    ms = 1000.0
    if chosen is None:
        return Steps((detect - t_fault) * ms)
    push = next((e.get("push") for e in evs if e.get("event") == Event.RULES_SENT and e.get("site") == site
                 and e["t"] >= chosen), None)
    done = [e["t"] for e in evs if e.get("event") == Event.BARRIER_OK and e.get("site") == site
            and push is not None and e.get("push") == push]
    return Steps((detect - t_fault) * ms, (chosen - min(detect, chosen)) * ms,
                 (max(done) - chosen) * ms if done else None)


@dataclass(frozen=True)
class Lookups:
    """The mapping service as the id-loc edges saw it during a trial: completed lookups' times (first query
    to accepted record: three round trips, plus retransmissions) and how many queries went unanswered."""

    lookup_ms: tuple[float, ...] = ()
    retries: int = 0


def lookups(events: Iterable[EventRecord], t_start: float, t_end: float) -> Lookups:
    evs = [e for e in events if t_start <= e["t"] <= t_end]
    return Lookups(tuple(float(e["lookup_ms"]) for e in evs if e.get("event") == Event.MAPPING_RESOLVED),
                   sum(1 for e in evs if e.get("event") == Event.MAPPING_RETRY))


@dataclass(frozen=True)
class TcpSession:
    survived: bool
    stall_ms: float | None
    error: str | None = None
    resumed: bool | None = None  # records arrived after the fault while it still stood
    goodput: float | None = None  # share of the records due in the fault window that arrived in it


def tcp_session(records: Sequence[tuple[int, float]], last_seq: int | None, error: str | None,
                window: tuple[float, float, float] | None = None) -> TcpSession:
    """``records``: (seq, t_recv) at the server; ``last_seq``: the client's final record (None if it failed);
    ``window``: (fault, restore, record interval) for what happened while the fault stood."""
    times = sorted(t for _, t in records)
    stall = max((b - a for a, b in itertools.pairwise(times)), default=None)
    got_last = last_seq is not None and any(s == last_seq for s, _ in records)
    resumed = goodput = None
    if window is not None:
        t_fault, t_restore, interval = window
        inside = [t for t in times if t_fault + IN_FLIGHT < t < t_restore]
        resumed = bool(inside)
        goodput = min(1.0, len(inside) / max(1.0, (t_restore - t_fault - IN_FLIGHT) / interval))
    return TcpSession(survived=error is None and got_last, stall_ms=None if stall is None else stall * 1000,
                      error=error or (None if got_last else "the last record never arrived"), resumed=resumed,
                      goodput=goodput)


@dataclass(frozen=True)
class Attempt:
    t_start: float
    t_end: float
    ok: bool
    address: str = ""


def new_session_ms(attempts: Sequence[Attempt], t_fault: float, t_restore: float,
                   in_effect: float | None = None) -> tuple[float | None, str | None, float | None]:
    """From the fault to the first new connection that succeeded while the fault was in effect: (ms, None,
    None), or (None, why, above): ``above`` where new connections failed until the restore (censored: the
    time is longer than the fault, :func:`summary`), None where no client tried.

    Attempts count from ``in_effect`` (the end of the injecting command; default ``t_fault``): one that started
    while the command ran may have slipped through before the fault took hold. One that completed only after
    the restore began, while earlier attempts failed, was rescued by the restore, not by the site.
    """
    start = t_fault if in_effect is None else in_effect
    ok = [a for a in attempts if a.ok and a.t_start >= start]
    failed = any(not a.ok for a in attempts if start <= a.t_start < t_restore)
    fault_ms = (t_restore - t_fault) * 1000
    if not ok:
        return None, "no new connection succeeded after the fault", fault_ms if failed else None
    first = min(ok, key=lambda a: a.t_end)
    if first.t_end >= t_restore and failed:
        return None, f"new connections failed until the restore at +{fault_ms:.0f} ms", fault_ms
    return (first.t_end - t_fault) * 1000, None, None


@dataclass(frozen=True)
class Clients:
    """The fresh clients started while the fault stood, and how many had connected within 1 s and 3 s."""

    started: int = 0
    within_1s: int = 0
    within_3s: int = 0


def clients_in_fault(attempts: Sequence[Attempt], in_effect: float, t_restore: float) -> Clients:
    inside = [a for a in attempts if in_effect <= a.t_start < t_restore]
    return Clients(len(inside), sum(1 for a in inside if a.ok and a.t_end - a.t_start <= 1.0),
                   sum(1 for a in inside if a.ok and a.t_end - a.t_start <= 3.0))


def disagreement(probe: StreamResult, captured: StreamResult) -> float | None:
    """How far the outage read from the probes is from the one read from a capture, in ms: infinite when
    only one of the two says the direction recovered, None when neither does."""
    if probe.outage_ms is None and captured.outage_ms is None:
        return None
    if probe.outage_ms is None or captured.outage_ms is None:
        return math.inf
    return abs(probe.outage_ms - captured.outage_ms)


# -- aggregation -----------------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]; a rank next to an infinite
    value (a censored trial) interpolates to infinity."""
    if not values:
        raise ValueError("percentile of nothing")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    if pos == lo or xs[hi] == xs[lo]:
        return xs[lo]
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary(values: Sequence[float | None], reasons: Sequence[str | None] = (),
            keys: Sequence[str] = ("p50", "p95", "max"), digits: int = 2,
            above: Sequence[float | None] = ()) -> dict[str, Any] | None:
    """p50/p95/max over the trials, each percentile with its 95 % interval (``p95_ci``: [lower, upper]); None
    (with the commonest reason) when no trial counts.

    A trial without a value whose ``above`` is set is right-censored: its value is known only to exceed that
    bound (an outage still going when the fault was restored). It counts in every percentile and interval as
    longer than every measured value, so a cell whose slowest trials never recovered cannot read as a small
    p95. A statistic that falls on such a trial is given as the smallest bound and named in ``censored`` (the
    tables print "> X s"); an interval's upper bound there is open (None). Trials with no value and no bound
    (nothing valid was measured) are left out; ``not_recovered`` counts every trial without a value."""
    bounds = [b for i, v in enumerate(values) if v is None and i < len(above) and (b := above[i]) is not None]
    xs = sorted(v for v in values if v is not None) + [math.inf] * len(bounds)
    missing = sum(1 for v in values if v is None)
    if not xs:
        return None
    floor = round(min(bounds), digits) if bounds else None
    out: dict[str, Any] = {}
    censored: list[str] = []

    def put(key: str, x: float) -> float | None:
        if math.isinf(x):
            censored.append(key)
            return floor
        return round(x, digits)

    for k in keys:
        out[k] = put(k, xs[-1] if k == "max" else percentile(xs, float(k[1:])))
    for k in keys:  # a 95 % interval for each percentile (results.intervals); None: too few trials for a bound
        if k != "max":
            lo, hi = quantile_interval(xs, float(k[1:]) / 100)
            out[f"{k}_ci"] = [None if lo is None else put(f"{k}_ci_lower", lo),
                              None if hi is None or math.isinf(hi) else round(hi, digits)]
    if censored:
        out["censored"] = censored
    if missing:
        out["not_recovered"] = missing
        reason = commonest(reasons)
        if reason:
            out["reason"] = reason
    return out


def shown(s: Mapping[str, Any], key: str, spec: str = "") -> str:
    """One statistic of a :func:`summary` as tables print it: "> X s" where it falls on a trial that had not
    recovered when its fault was restored (``censored``; the statistics so marked are in ms), else the number
    formatted with ``spec``."""
    return more_than(s[key]) if key in s.get("censored", ()) else format(s[key], spec)


def more_than(ms: float) -> str:
    """A censored statistic: more than ``ms``, in seconds rounded down to 10 ms (so the bound never overstates)."""
    return f"> {math.floor(ms / 10) / 100:g} s"


def with_interval(s: Mapping[str, Any] | None, key: str) -> str:
    """``key``'s value of a :func:`summary` and its 95 % interval, as the tables print them: "12.3 [10.1, 15.0]";
    "[≥ 10.1]" when the trials leave the interval open above, "[—]" when they give no bound at all, and "> X s"
    for a statistic that falls on a trial that never recovered."""
    if s is None:
        return "—"
    lo, hi = s[f"{key}_ci"]
    low = more_than(lo) if f"{key}_ci_lower" in s.get("censored", ()) else f"{lo}"
    ci = "[—]" if lo is None else (f"[{low}, {hi}]" if hi is not None else f"[≥ {low}]")
    return f"{shown(s, key)} {ci}"


@dataclass
class Trial:
    """Everything measured in one trial (what trials.csv holds a row of)."""

    index: int
    outbound: StreamResult
    inbound: StreamResult
    detection_ms: float | None
    tcp: list[TcpSession] = field(default_factory=list)
    new_session_ms: float | None = None
    new_session_reason: str | None = None
    new_session_above_ms: float | None = None  # new connections failed until the restore: longer than this
    false_rehomings: int = 0
    exploration_ms: float | None = None
    steps: dict[str, Steps] = field(default_factory=dict)  # id-loc: "outbound"/"inbound" -> its repair
    pairs: list[str] = field(default_factory=list)  # id-loc: the pairs the edges settled on (chosen_pairs)
    clients: Clients = field(default_factory=Clients)
    cross_check: dict[str, float | None] = field(default_factory=dict)  # direction -> |probe - capture| outage
    lookups: Lookups = field(default_factory=Lookups)
    clock_offset_s: float | None = None  # CLOCK_REALTIME minus CLOCK_MONOTONIC during the trial (pcap stamps)
    fault_epoch_s: float | None = None  # when the fault's command started, on the captures' clock
    witness: dict[str, dict[str, Any]] = field(default_factory=dict)  # direction -> the witness's reading

    @property
    def rtt_ms(self) -> float | None:
        """The round trip the trial ran at: the probes' one-way transits before the fault, out and back."""
        out, back = self.outbound.transit_ms, self.inbound.transit_ms
        return None if out is None or back is None else out + back

    def row(self) -> dict[str, Any]:
        def num(x: float | None) -> str:
            return "" if x is None else f"{x:.3f}"
        return {
            "trial": self.index, "outbound_outage_ms": num(self.outbound.outage_ms),
            "outbound_lost": self.outbound.lost,
            "outbound_gap_ms": num(None if self.outbound.gap is None
                                   else (self.outbound.gap[1] - self.outbound.gap[0]) * 1000),
            "outbound_reason": self.outbound.reason or "", "inbound_outage_ms": num(self.inbound.outage_ms),
            "inbound_lost": self.inbound.lost, "inbound_reason": self.inbound.reason or "",
            **{f"{d}_{k}": num(getattr(getattr(self, d), k)) for d in ("outbound", "inbound")
               for k in ("disruption_ms", "raw_gap_ms", "sender_stall_ms", "interarrival_p999_ms")},
            "detection_ms": num(self.detection_ms), "rtt_ms": num(self.rtt_ms),
            "tcp_survived": sum(t.survived for t in self.tcp),
            "tcp_total": len(self.tcp), "tcp_max_stall_ms": num(max((t.stall_ms or 0 for t in self.tcp), default=None)),
            "new_session_ms": num(self.new_session_ms), "new_session_reason": self.new_session_reason or "",
            "false_rehomings": self.false_rehomings, "exploration_ms": num(self.exploration_ms),
            "pairs": ";".join(self.pairs),
            **{f"{d}_capture_disagreement_ms": num(self.cross_check.get(d)) for d in ("outbound", "inbound")},
            "clients_in_fault": self.clients.started, "clients_within_1s": self.clients.within_1s,
            "clients_within_3s": self.clients.within_3s,
            "lookups": len(self.lookups.lookup_ms), "lookup_max_ms": num(max(self.lookups.lookup_ms, default=None)),
            "mapping_retries": self.lookups.retries,
            "outbound_sources": " ".join(self.outbound.sources), "inbound_sources": " ".join(self.inbound.sources),
            **{f"{d}_{k}": num(getattr(self.steps[d], k)) if d in self.steps else ""
               for d in ("outbound", "inbound") for k in ("detection_ms", "decision_ms", "install_ms")},
            **{f"{d}_witness_{k}": _text(self.witness.get(d, {}).get(k)) for d in ("outbound", "inbound")
               for k in ("outage_ms", "difference_ms", "explanation")},
            "clock_offset_s": "" if self.clock_offset_s is None else f"{self.clock_offset_s:.6f}",
            "fault_epoch_s": "" if self.fault_epoch_s is None else f"{self.fault_epoch_s:.6f}",
        }


def _text(x: Any) -> str:
    return "" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


def witnessed(trials: Sequence[Trial], direction: str) -> dict[str, Any] | None:
    """The independent instrument's view of one direction over the trials (:mod:`.witness`): its own outage
    figures, how far each trial's differs from the probes', and the commonest explanation of a difference
    over 2 ms. None when the run had no witness."""
    seen = [t.witness[direction] for t in trials if direction in t.witness]
    if not seen:
        return None
    diffs = [w["difference_ms"] for w in seen if w["difference_ms"] is not None]
    far = [w for w in seen if w["explanation"]]
    worst = max(diffs, default=None)
    return {"outage_ms": summary([w["outage_ms"] for w in seen], [w["why"] for w in seen],
                                 above=[w.get("above_ms") for w in seen]),
            "difference_max_ms": None if worst is None else round(worst, 3) if math.isfinite(worst) else "inf",
            "over_2ms": len(far), "explanation": commonest(w["explanation"] for w in far),
            "capture_dropped": sum(w.get("dropped", 0) for w in seen)}


def commonest(reasons: Iterable[str | None]) -> str | None:
    found = Counter(r for r in reasons if r).most_common(1)
    return found[0][0] if found else None


def aggregate(trials: Sequence[Trial]) -> dict[str, Any]:
    def direction(pick: str) -> dict[str, Any]:
        rs: list[StreamResult] = [getattr(t, pick) for t in trials]
        out: dict[str, Any] = {"outage_ms": summary([r.outage_ms for r in rs], [r.reason for r in rs],
                                                    above=[r.above_ms for r in rs]),
                               "disruption_ms": summary([r.disruption_ms for r in rs]),
                               "lost_packets": summary([float(r.lost) for r in rs], keys=("p50", "max"), digits=1),
                               "sender_stall_flagged": sum(r.stall_flagged for r in rs),
                               "interarrival_p999_ms": summary([r.interarrival_p999_ms for r in rs])}
        if out["outage_ms"] is None:
            out["reason"] = commonest(r.reason for r in rs)
        return out

    out: dict[str, Any] = {"outbound": direction("outbound"), "inbound": direction("inbound"),
                           "detection_ms": summary([t.detection_ms for t in trials]),
                           "rtt_ms": summary([t.rtt_ms for t in trials], digits=3)}
    for d in ("outbound", "inbound"):
        if (w := witnessed(trials, d)) is not None:
            out[d]["witness"] = w
    sessions = [s for t in trials for s in t.tcp]
    # The stall is a survivor's: a reset session did not stall, it ended (counted apart).
    survivors = [s for s in sessions if s.survived]
    out["tcp_sessions"] = ({"survived": len(survivors), "total": len(sessions),
                            "reset": sum(1 for s in sessions if s.error and "reset" in s.error.lower()),
                            "resumed_before_restore": sum(1 for s in survivors if s.resumed),
                            "stall_ms": summary([s.stall_ms for s in survivors]),
                            "goodput_during_fault": summary([s.goodput for s in sessions], digits=3)}
                           if sessions else None)
    chosen = Counter(p for t in trials for p in t.pairs)
    if chosen:  # id-loc: which pair the exploration chose, over the trials (RFC 4177 6.3.2)
        out["pairs_chosen"] = dict(chosen.most_common())
    out["new_session_ms"] = summary([t.new_session_ms for t in trials], [t.new_session_reason for t in trials],
                                    above=[t.new_session_above_ms for t in trials])
    if out["new_session_ms"] is None and any(t.new_session_reason for t in trials):
        out["new_session_reason"] = commonest(t.new_session_reason for t in trials)
    for d in ("outbound", "inbound"):
        found = [x for t in trials if (x := t.cross_check.get(d)) is not None]
        if found:  # trials whose probes and capture disagree by more than CROSS_CHECK_MS are flagged
            worst = max(found)
            out[d]["capture_disagreement_ms"] = {"max": round(worst, 3) if math.isfinite(worst) else "inf",
                                                 "flagged": sum(1 for x in found if x > CROSS_CHECK_MS)}
    started = sum(t.clients.started for t in trials)
    if started:  # pooled over trials: each client is one user's experience
        out["new_clients"] = {"started_in_fault": started,
                              "within_1s": round(sum(t.clients.within_1s for t in trials) / started, 3),
                              "within_3s": round(sum(t.clients.within_3s for t in trials) / started, 3)}
    found_lookups = [ms for t in trials for ms in t.lookups.lookup_ms]
    if found_lookups or any(t.lookups.retries for t in trials):
        out["mapping"] = {"lookups": len(found_lookups), "lookup_ms": summary(found_lookups),
                          "retries": sum(t.lookups.retries for t in trials)}
    out["false_rehomings"] = sum(t.false_rehomings for t in trials)
    if any(t.exploration_ms is not None for t in trials):
        out["exploration_ms"] = summary([t.exploration_ms for t in trials])
    steps = {d: {k: summary([getattr(t.steps[d], k) for t in trials if d in t.steps])
                 for k in ("detection_ms", "decision_ms", "install_ms")}
             for d in ("outbound", "inbound") if any(d in t.steps for t in trials)}
    if steps:
        out["steps"] = steps
    return out
