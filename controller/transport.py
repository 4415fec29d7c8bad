"""The ``transport`` trigger (RFC 4177 6.3.1): rehoming on what TCP shows at the site's edge. Pure.

The fabric copies the headers of the site's outbound TCP segments to the controller. A sender whose segments
are not acknowledged sends the same segment again: Linux first as a tail-loss probe (RFC 8985, about two
round trips), then at its retransmission timeout (200 ms at least, doubling each time). One repeat is no
evidence of a broken path, since fast retransmit repeats a segment once when a single packet was lost on a
working one; ``repeats`` sendings of the same segment with nothing new in between are. The controller then
keeps that destination away from the exit it took, as the icmp trigger does (:mod:`.liveness`).

What it cannot see is said in README: a flow with nothing to send shows nothing, and a destination that
only UDP reaches is never judged.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

REPEATS = 2  # sendings of one segment beyond the first, with nothing new between them
MAX_FLOWS = 4096  # flows remembered; the least recently seen is forgotten first
TCP_SYN = 0x02
TCP_FIN = 0x01

FlowKey = tuple[str, str, int, int]  # source, destination, source port, destination port


@dataclass
class _Flow:
    end: int  # the highest sequence number sent, plus one (serial arithmetic, RFC 1982)
    seq: int = -1  # the segment being repeated
    count: int = 0  # how many times it was sent again


def _after(a: int, b: int) -> bool:
    """Whether sequence number ``a`` comes after ``b`` (32-bit serial arithmetic)."""
    return a != b and (a - b) % 2**32 < 2**31


class RetransmitWatch:
    """The site's outbound TCP flows, and which of them are repeating a segment."""

    def __init__(self, repeats: int = REPEATS, max_flows: int = MAX_FLOWS):
        self.repeats = repeats
        self.max_flows = max_flows
        self.flows: OrderedDict[FlowKey, _Flow] = OrderedDict()

    def segment(self, key: FlowKey, seq: int, length: int, flags: int) -> bool:
        """One outbound segment (``length`` bytes of payload); True when it is the ``repeats``-th repeat of a
        segment with nothing new sent since: the path to ``key``'s destination no longer acknowledges."""
        span = length + bool(flags & TCP_SYN) + bool(flags & TCP_FIN)
        end = (seq + span) % 2**32
        flow = self.flows.get(key)
        if flow is None:
            self.flows[key] = _Flow(end)
            if len(self.flows) > self.max_flows:
                self.flows.popitem(last=False)
            return False
        self.flows.move_to_end(key)
        if _after(end, flow.end):  # something new: the flow is moving (or at least sending)
            flow.end, flow.seq, flow.count = end, -1, 0
            return False
        if span == 0:  # a pure ACK or window update repeats nothing
            return False
        if seq != flow.seq:
            flow.seq, flow.count = seq, 0
        flow.count += 1
        if flow.count < self.repeats:
            return False
        flow.count = 0  # the next verdict needs as much evidence again
        return True

    def forget(self, destination: str) -> None:
        """Flows toward ``destination`` start afresh (it moved to another exit: old repeats say nothing of it)."""
        for key in [k for k in self.flows if k[1] == destination]:
            del self.flows[key]
