"""What a topology asks of the machine that emulates it, against what was measured to come up. Pure.

On the userspace (netdev) datapath every heartbeat is a packet-out and its answer a packet-in through
ovs-vswitchd's one forwarding thread, and every site's controller is a Python process: past some size a lab
does not settle, and bring-up only says which exit was not usable in time. This says why, and what to change.
Measured with ``multi6lab bringup --hold 10`` on a 2-core machine (2026-12-08, docs/experiments/scale-outage.md):
20 dual-homed sites at 10 ms (4,000 probes a second) came up in 12.5 s and held; 30 sites at 10 ms (6,000 a
second) never settled; 40 sites at 20 ms (4,000 a second, but 40 controller processes) did not all connect
within the bound.
"""

from __future__ import annotations

import math

from multi6lab.topologies.model import Topology
from multi6lab.vocabulary import Trigger

PROBES_HELD = 4000.0  # heartbeat probes a second that came up and held (userspace datapath, 2 cores)
PROBES_FAILED = 6000.0  # ... and the least that did not
CONTROLLERS_HELD = 20  # controller processes that came up together (one per site)


def heartbeat_rate(topo: Topology) -> float:
    """Heartbeat probes a second the topology's controllers send: one per interval through each exit of each
    site whose triggers include the heartbeat."""
    return round(sum(len(s.exits) * 1000.0 / s.heartbeat.interval_ms for s in topo.sites
                     if Trigger.HEARTBEAT in s.triggers), 6)


def advice(topo: Topology, controllers: int) -> str | None:
    """One sentence for a lab that may be too large for the measured envelope, or None: what it asks, what
    came up, and what to change."""
    said = []
    rate = heartbeat_rate(topo)
    if rate > PROBES_HELD:
        slowest = max(s.heartbeat.interval_ms for s in topo.sites if Trigger.HEARTBEAT in s.triggers)
        need = math.ceil(slowest * rate / PROBES_HELD)
        said.append(f"its sites send {rate:,.0f} heartbeat probes a second, where {PROBES_HELD:,.0f} came up and "
                    f"{PROBES_FAILED:,.0f} did not on 2 cores with the userspace datapath: set the sites' heartbeat "
                    f"interval_ms to {need} or more (defaults.site.heartbeat), or drop the heartbeat trigger")
    if controllers > CONTROLLERS_HELD:
        said.append(f"it starts {controllers} controller processes, where {CONTROLLERS_HELD} came up together: "
                    "share them (experiments take --sites-per-controller)")
    return "; ".join(said) or None
