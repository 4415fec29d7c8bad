"""Faults as timed shell actions (pure): what to run, where, and when, and how to undo it.

Every fault is reversible, and ``undo`` is safe to run twice, so the runner restores everything in
``finally`` whatever happened. ``node`` None means the root namespace (the OVS side of an exit link).
"""

from __future__ import annotations

from dataclasses import dataclass

from multi6lab.scenarios.model import (
    Baseline,
    Blackhole,
    Fault,
    Flap,
    IspOutage,
    IspUplinkDown,
    LinkDown,
    LossBurst,
    MappingOutage,
)
from multi6lab.topologies import shell
from multi6lab.topologies.plan import Plan, SitePlan

TABLE = "multi6lab_fault"


@dataclass(frozen=True, order=True)
class Action:
    at: float  # seconds after the trial's fault origin
    node: str | None
    command: str
    label: str = ""


@dataclass(frozen=True)
class Compiled:
    fault: Fault
    actions: tuple[Action, ...]  # in time order; the first one is the fault's start
    undo: tuple[Action, ...]  # run all at the end (idempotent)
    exits: frozenset[str]  # exits whose path the fault touches
    prepare: tuple[Action, ...] = ()  # before the trial's traffic, so the timed action is one quick command


def reinstall_routes(plan: Plan, node: str) -> str:
    """Linux deletes static routes through an interface set administratively down; a routing daemon would
    put them back when it comes up, so restoring a link does too (``replace`` makes it idempotent)."""
    return "; ".join(shell.routes(plan.node(node).config.routes, verb="replace")) or "true"


def links(intfs: list[str], up: bool) -> str:
    return shell.links_set(intfs, up)


def compile_fault(plan: Plan, sp: SitePlan, fault: Fault, index: int, record_s: float) -> Compiled:
    end = fault.until(record_s)
    if isinstance(fault, IspOutage):
        isp = fault.isp
        intfs = [i.name for i in plan.intfs(isp)]
        down, up = links(intfs, False), links(intfs, True) + "; " + reinstall_routes(plan, isp)
        exits = frozenset(e.name for e in sp.exits if e.isp == isp)
        return Compiled(fault, (Action(fault.at, isp, down, f"{isp} down"), Action(end, isp, up, f"{isp} up")),
                        (Action(end, isp, up),), exits)
    if isinstance(fault, Baseline):  # the clock marks where a fault would be, and nothing changes
        return Compiled(fault, (Action(fault.at, None, "true", "nothing broken"), Action(end, None, "true", "end")),
                        (), frozenset())
    if isinstance(fault, MappingOutage):  # the server's node loses its link (checked: the topology has one)
        assert plan.topology.mapping is not None
        server = plan.topology.mapping.server
        intfs = [i.name for i in plan.intfs(server)]
        down, up = links(intfs, False), links(intfs, True) + "; " + reinstall_routes(plan, server)
        return Compiled(fault, (Action(fault.at, server, down, f"{server} cut off"),
                                Action(end, server, up, f"{server} back")), (Action(end, server, up),), frozenset())
    assert isinstance(fault, LinkDown | Flap | Blackhole | LossBurst | IspUplinkDown)
    e = sp.exit(fault.exit)
    exits = frozenset({e.name})
    if isinstance(fault, IspUplinkDown):  # the ISP loses the core: it answers 'no route' (icmp trigger)
        customers = {x.isp_intf for s in plan.sites for x in s.exits}
        uplinks = [i.name for i in plan.intfs(e.isp) if i.name not in customers]
        down, up = links(uplinks, False), links(uplinks, True) + "; " + reinstall_routes(plan, e.isp)
        return Compiled(fault, (Action(fault.at, e.isp, down, f"{e.isp} uplinks down"),
                                Action(end, e.isp, up, f"{e.isp} uplinks up")), (Action(end, e.isp, up),), exits)
    if isinstance(fault, LinkDown | Flap):
        # In the exit's own shell: a router exit's (routing approach) namespace, or a switch's root namespace
        # of whichever server it runs on.
        node, intf = (e.isp, e.isp_intf) if fault.end == "isp" else (e.name, f"{e.name}-eth{e.outside_port}")
        down, up = links([intf], False), links([intf], True) + "; " + reinstall_routes(plan, node)
        if isinstance(fault, LinkDown):
            acts: tuple[Action, ...] = (Action(fault.at, node, down, f"{intf} down"),
                                        Action(end, node, up, f"{intf} up"))
        else:
            acts = tuple(a for k in range(fault.count) for a in (
                Action(fault.at + k * fault.period, node, down, f"{intf} down ({k + 1}/{fault.count})"),
                Action(fault.at + (k + 0.5) * fault.period, node, up, f"{intf} up")))
        return Compiled(fault, acts, (Action(end, node, up),), exits)
    table = f"{TABLE}{index}"
    # Everything crossing the ISP's customer interface: forwarded packets, and those the ISP router itself
    # sends or receives (BGP, BFD, neighbor discovery), as on a broken line (chains: forward, input, output).
    into, out_of = [("forward", f"iifname {e.isp_intf}"), ("input", f"iifname {e.isp_intf}")], \
        [("forward", f"oifname {e.isp_intf}"), ("output", f"oifname {e.isp_intf}")]
    if isinstance(fault, Blackhole):
        matches = {"outbound": into, "inbound": out_of, "both": into + out_of}[fault.direction]
        rules = [(chain, f"{m} drop") for chain, m in matches]
    else:
        assert isinstance(fault, LossBurst)
        threshold = round(fault.percent * 100)
        rules = [(chain, f"{m} numgen random mod 10000 < {threshold} drop") for chain, m in into + out_of]
    undo = shell.nft(f"delete table ip6 {table}") + " 2>/dev/null; true"
    prepare = f"{undo}; " + shell.nft(f"add table ip6 {table}", *(
        f"add chain ip6 {table} {chain} {{ type filter hook {chain} priority -10; }}"
        for chain in ("forward", "input", "output")))
    do = shell.nft(*(f"add rule ip6 {table} {c} {r}" for c, r in rules))  # one process, atomic
    return Compiled(fault, (Action(fault.at, e.isp, do, fault.describe()), Action(end, e.isp, undo, "restore")),
                    (Action(end, e.isp, undo),), exits, prepare=(Action(0.0, e.isp, prepare, "prepare"),))
