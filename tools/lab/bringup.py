"""``multi6lab bringup``: how long a lab takes to come up and to go down, and the memory it holds, against its
size (issue 15). Each size is a generated topology of N dual-homed nptv6 sites on two ISPs (link and
heartbeat triggers), beside RFC 4177 Figure 1; each bring-up is timed step by step (``Lab.phases``).
A lab that is ready may still not hold: its heartbeats can time out again on load alone. ``hold`` keeps it up
that long after ready and counts the heartbeat timeouts its controllers report meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from multi6lab.lab import resources
from multi6lab.lab.lifecycle import Lab
from multi6lab.topologies.model import Topology
from multi6lab.vocabulary import Event

MEMINFO = Path("/proc/meminfo")


def used_kb() -> int:
    """The machine's memory in use (MemTotal - MemAvailable), kB."""
    fields = {}
    for line in MEMINFO.read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = int(value.split()[0])
    return fields["MemTotal"] - fields["MemAvailable"]


def measure(topo: Topology, workdir: Path, say: Callable[[str], None], sites_per_controller: int = 1,
            servers: int = 1, cluster_links: str = "vxlan", hold: float = 0.0) -> dict[str, Any]:
    """One bring-up and teardown of ``topo`` (over ``servers`` servers): seconds per step, the whole, the
    teardown, memory, and the heartbeat timeouts in a ``hold`` of that many seconds after ready."""
    before = used_kb()
    t0 = time.monotonic()
    with Lab(topo, workdir, progress=say, sites_per_controller=sites_per_controller, servers=servers,
             cluster_links=cluster_links) as lab:
        up_s = time.monotonic() - t0
        held = resources.sample(lab)
        in_use = used_kb() - before
        held_from = time.monotonic()
        time.sleep(hold)  # the measurement itself: how the ready lab fares over this span
        timeouts = sum(1 for e in lab.events() if e["event"] == Event.HEARTBEAT_TIMEOUT
                       and held_from <= e["t"] <= held_from + hold) if hold > 0 else None
        t1 = time.monotonic()
    down_s = time.monotonic() - t1
    return {"nodes": len(lab.plan.nodes), "links": len(lab.plan.links), "sites": len(lab.plan.sites),
            "up_s": round(up_s, 3), "down_s": round(down_s, 3), "steps": lab.phases.as_dict(nested=False),
            "detail": lab.phases.as_dict(), "memory_kb": in_use, "left_kb": used_kb() - before,
            "ovs_rss_kb": held["ovs_rss_kb"], "controller_rss_kb": held["controller_rss_kb"],
            "hold_s": hold, "hold_timeouts": timeouts}
