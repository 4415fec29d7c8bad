"""The independent instrument: a second outage figure that shares nothing with the probes' (pure but for reading
pcap files).

The probes' outage comes from :mod:`multi6lab.traffic.probe` (its sockets, sequence numbers and kernel receive
stamps at the receiving host) through :func:`multi6lab.results.analysis.stream`. The *witness* shares none of
that chain:

* its traffic is another sender (:mod:`multi6lab.traffic.witness`) with its own sequence numbers, on its own
  ports, and nothing of it is logged by the sender or the receiver;
* it is captured at another vantage point, in the site's ISP routers' namespaces: leaving the ISPs toward the
  core (outbound), and leaving them toward the site's exits (inbound), where the probes are read at the hosts;
* those captures are read with scapy's reader, not the project's pcap parser, and the outage is computed here,
  by a definition written apart from ``analysis.stream``: from the last witness packet before the first loss
  in the fault window to the first packet after the last loss in it, less one period (a loss: packets that
  never arrived); a stream silent into the restore did not recover.

So where the two disagree, one of them is wrong or they saw different things; the difference is published per
cell, and a difference over :data:`DISAGREE_MS` is explained (:func:`explain`). What the witness cannot see:
anything between its vantage point and the host (the site's own switches inbound; the host's own stack and the
exits outbound), and a hold that loses nothing (it counts losses only).
"""

from __future__ import annotations

import itertools
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scapy.layers.inet import UDP
from scapy.utils import PcapReader

from multi6lab.topologies.plan import Plan

MAGIC = b"M6W1"  # the witness payload: magic, then the sequence number (traffic.witness writes it)
SEQ = struct.Struct("!I")
DISAGREE_MS = 2.0
OUT_PORT, IN_PORT = 7701, 7702  # the witness streams' UDP ports: site host -> remote, remote -> site host


@dataclass(frozen=True)
class Vantage:
    """Where the witness is captured: ``outbound`` and ``inbound`` as (node, interface) pairs."""

    outbound: tuple[tuple[str, str], ...]
    inbound: tuple[tuple[str, str], ...]


def vantage(plan: Plan, site: str) -> Vantage:
    """The site's ISP routers: their interfaces toward the core and other ISPs (what left them outward), and
    their interfaces toward the site's exits (what they handed the site)."""
    sp = next(s for s in plan.sites if s.site.name == site)
    kind = {n.name: n.kind for n in plan.nodes}
    isps = sorted({e.isp for e in sp.exits})
    out = tuple((isp, i.name) for isp in isps for i in plan.intfs(isp)
                if kind[plan.peer(isp, i.port).node] in ("core", "isp"))
    inward = tuple((e.isp, e.isp_intf) for e in sp.exits)
    return Vantage(out, inward)


def arrivals(pcaps: Iterable[Path], port: int, realtime_offset: float) -> list[tuple[int, float]]:
    """(sequence number, time on the monotonic clock) of each witness datagram to ``port`` in ``pcaps``, the
    first sighting of each, in time order."""
    first: dict[int, float] = {}
    for path in pcaps:
        if not path.exists() or path.stat().st_size <= 24:
            continue
        with PcapReader(str(path)) as reader:
            for pkt in reader:
                udp = pkt.getlayer(UDP)
                if udp is None or udp.dport != port:
                    continue
                data = bytes(udp.payload)
                if data[:4] != MAGIC or len(data) < 4 + SEQ.size:
                    continue
                seq = SEQ.unpack_from(data, 4)[0]
                t = float(pkt.time) - realtime_offset
                if seq not in first or t < first[seq]:
                    first[seq] = t
    return sorted(first.items(), key=lambda x: x[1])


def dropped(tcpdump_log: str) -> int:
    """Packets a capture lost, from tcpdump's closing lines ("N packets dropped by kernel")."""
    found = re.search(r"^(\d+) packets? dropped by kernel", tcpdump_log, re.MULTILINE)
    return int(found.group(1)) if found else 0


@dataclass(frozen=True)
class Reading:
    outage_ms: float | None  # None: not recovered before the restore (or nothing seen)
    why: str | None = None
    above_ms: float | None = None  # not recovered: longer than this (censored, as analysis.summary takes it)


def reading(seen: Sequence[tuple[int, float]], period: float, start: float, restore: float) -> Reading:
    """The witness's outage of one direction in the fault window [start, restore] (monotonic seconds).

    A loss is two arrivals in a row, at least two periods apart, between whose sequence numbers one never
    arrived (a packet that was only late or overtaken is no loss). The
    outage runs from the arrival before the window's first loss to the arrival that ended its last loss, less
    one period; 0 without a loss. A stream whose last arrival is more than two periods before the restore was
    still down then."""
    before = [x for x in seen if x[1] <= start]
    inside = [x for x in seen if start < x[1] <= restore]
    if not before:
        return Reading(None, "no witness packet before the fault")
    if not inside or restore - inside[-1][1] > 2 * period:
        last = (inside or before)[-1][1]  # the silence into the restore began here at the latest
        return Reading(None, "still down at the restore", max(0.0, restore - last - period) * 1000)
    run = [before[-1], *inside]
    got = {q for q, _ in seen}
    losses = [(a, b) for a, b in itertools.pairwise(run)
              if b[1] - a[1] >= 2 * period and any(q not in got for q in range(a[0] + 1, b[0]))]
    if not losses:
        return Reading(0.0)
    return Reading(max(0.0, losses[-1][1][1] - losses[0][0][1] - period) * 1000)


def difference(probe_ms: float | None, witness_ms: float | None) -> float | None:
    """|probe - witness| in ms; None when neither recovered, infinity when only one did."""
    if probe_ms is None and witness_ms is None:
        return None
    if probe_ms is None or witness_ms is None:
        return float("inf")
    return abs(probe_ms - witness_ms)


def explain(direction: str, probe_ms: float | None, witness_ms: float | None, dropped: int = 0) -> str | None:
    """Why the two instruments read one trial more than DISAGREE_MS apart, from where each one looks.

    The vantage point lies upstream of the receiving host in both directions (every packet that reaches the
    host passed it), so with both instruments right the witness's outage is at most the probes' plus about a
    period (the two streams are not in step). ``dropped``: packets the witness's captures lost (tcpdump)."""
    d = difference(probe_ms, witness_ms)
    if d is None or d <= DISAGREE_MS:
        return None
    lost = f"; its captures dropped {dropped} packets" if dropped else ""
    if probe_ms is not None and (witness_ms is None or witness_ms > probe_ms):
        return (f"the witness read the {direction} stream down longer than the probes did, which a path alone "
                f"cannot do (its vantage point is upstream of the host): the witness lost packets the path "
                f"delivered{lost or ' (its captures report no drop: look at its pcaps)'}")
    between = "the site's own switches and the host" if direction == "inbound" else "the core and the remote"
    what = "never came back at the host" if probe_ms is None else "came back at the host later"
    return (f"the {direction} stream was back at the ISPs' vantage point after {witness_ms:.1f} ms but {what}: "
            f"the rest of the outage lay between them ({between}){lost}")
