"""What a leak would grow, read off a running lab: the counters a soak compares (results.soak).

Rules and groups on the lab's controller-managed bridges, processes inside the lab's namespaces, network
namespaces on the whole machine, and the resident memory and open files of the site controllers and of
ovs-vswitchd. Read from ``ovs-ofctl`` and ``/proc`` only; nothing is changed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multi6lab.lab.lifecycle import Lab

VSWITCHD_PID = Path("/var/run/openvswitch/ovs-vswitchd.pid")


def _netns(pid: int | str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:  # gone, or a kernel thread
        return None


def status_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _count(bridge: str, what: str, marker: str) -> int:
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", what, bridge], capture_output=True, text=True,
                         check=False, timeout=10).stdout
    return sum(marker in line for line in out.splitlines())


def sample(lab: Lab) -> dict[str, int]:
    """One sample of every counter."""
    # This machine's part of the lab: a node on another server has its pid there, and its bridge its OVS.
    bridges = [n.name for n in lab.plan.switches if not n.standalone and lab.here(n.name)]
    nodes = {n.name for n in lab.plan.nodes if lab.here(n.name)} - {n.name for n in lab.plan.switches}
    lab_ns = {_netns(lab.node(n).pid) for n in nodes} - {None}
    every_ns = [_netns(p) for p in os.listdir("/proc") if p.isdigit()]
    controllers = [c.proc.pid for c in lab.controllers.values() if c.proc is not None]
    try:
        vswitchd = int(VSWITCHD_PID.read_text())
    except (OSError, ValueError):
        vswitchd = 0
    return {
        "flows": sum(_count(b, "dump-flows", "actions=") for b in bridges),
        "groups": sum(_count(b, "dump-groups", "group_id=") for b in bridges),
        "lab_processes": sum(ns in lab_ns for ns in every_ns),
        "netns": len(set(every_ns) - {None}),
        "controller_fds": sum(map(_fds, controllers)),
        "controller_rss_kb": sum(status_kb(p) for p in controllers),
        "ovs_rss_kb": status_kb(vswitchd) if vswitchd else 0,
    }
