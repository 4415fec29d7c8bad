"""Issue 5, routing (RFC 4177 5.1): real BGP (FRR) announces the site's PI prefix through both ISPs."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from multi6lab.lab.emulation import EnvError
from multi6lab.lab.lifecycle import Lab
from multi6lab.scenarios.faults import compile_fault, reinstall_routes
from multi6lab.scenarios.model import Blackhole
from multi6lab.topologies import loader
from tests.integration.helpers import Capture, routing_topology, tcp_session, udp_exchange, wait_until

pytestmark = pytest.mark.integration
R = "3fff:ff:100::2"
PI = "3fff:5::/48"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    workdir = tmp_path
    with Lab(loader.load(routing_topology(workdir)), workdir) as lab:
        yield lab


def h1(lab: Lab) -> str:
    return str(lab.plan.sites[0].hosts[0].addresses["pi"])


def core_route(lab: Lab) -> str:
    return lab.cmd("core", f"ip -6 route show exact {PI}")


def restored(lab: Lab, undo: str, node: str) -> None:
    """Undo a fault and wait until every session is back and every route on the primary ISP again."""
    lab.cmd(node, undo)
    wait_until(lambda: lab.bgp_problem() is None, 20, "BGP back in its preferred state")


def test_sessions_establish_and_the_pi_prefix_is_announced_through_both_isps(lab: Lab) -> None:
    assert lab.emulation is not None
    for node in ("core", "ispa", "ispb", "exa", "exb"):
        peers = json.loads(lab.emulation.bgp(node, "show bgp summary json"))["ipv6Unicast"]["peers"]
        assert peers and all(p["state"] == "Established" for p in peers.values()), (node, peers)
    paths = json.loads(lab.emulation.bgp("core", f"show bgp ipv6 unicast {PI} json"))["paths"]
    as_paths = sorted(p["aspath"]["string"] for p in paths)
    assert as_paths == ["64501 65000", "64502 65000 65000"]  # both ISPs; the backup exit prepends once
    best = next(p for p in paths if p.get("bestpath", {}).get("overall"))
    assert best["aspath"]["string"] == "64501 65000"
    assert "dev core-eth1" in core_route(lab)  # the kernel forwards the PI prefix toward ISP A


def test_the_pi_prefix_is_reachable_through_either_isp(lab: Lab) -> None:
    with Capture(lab, "ispa", "ispa-eth1", "udp port 5011", "via-a") as cap:
        assert len(udp_exchange(lab, "r", "h1", h1(lab), count=20, port=5011)) == 20
        cap.wait_for(20)
    undo = "ip link set ispa-eth1 up; " + reinstall_routes(lab.plan, "ispa")
    lab.cmd("ispa", "ip link set ispa-eth1 down")
    try:
        wait_until(lambda: "dev core-eth2" in core_route(lab), 10, "the core to move the PI prefix to ISP B")
        with Capture(lab, "ispb", "ispb-eth1", "udp port 5012", "via-b") as cap:
            assert len(udp_exchange(lab, "r", "h1", h1(lab), count=20, port=5012)) == 20
            cap.wait_for(20)
        # Outbound too: the primary exit lost its own default and uses the backup's, learned over iBGP.
        assert "dev exa-eth1" in lab.cmd("exa", "ip -6 route show exact ::/0")
        got = udp_exchange(lab, "h1", "r", R, count=20, port=5013)
        assert len(got) == 20 and {g["source"] for g in got} == {h1(lab)}  # the same address either way
    finally:
        restored(lab, undo, "ispa")


def test_bfd_sees_a_silent_failure_and_bgp_reroutes(lab: Lab) -> None:
    sp = lab.plan.sites[0]
    c = compile_fault(lab.plan, sp, Blackhole(at=0.0, exit="exa"), 0, 2.0)
    for a in (*c.prepare, c.actions[0]):
        lab.cmd(str(a.node), a.command)
    t0 = time.monotonic()
    try:
        wait_until(lambda: any(e["event"] == "session_down" and e["exit"] == "exa" and e["t"] >= t0 - 0.1
                               for e in lab.bgp_events()), 5, "the exa-ispa session to go down")
        wait_until(lambda: "dev core-eth2" in core_route(lab), 5, "the core to move the PI prefix to ISP B")
        assert len(udp_exchange(lab, "r", "h1", h1(lab), count=20, port=5014)) == 20
    finally:
        restored(lab, c.undo[0].command, "ispa")


def test_a_tcp_session_keeps_its_address_across_an_exit_failure(lab: Lab) -> None:
    session = tcp_session(lab, "h1", "r", R, 5702, 4.0)
    session.wait_records(50)  # mid-session: the point is a failure while records flow
    lab.cmd("ispa", "ip link set ispa-eth1 down")
    try:
        wait_until(lambda: "dev core-eth2" in core_route(lab), 10, "the core to move the PI prefix to ISP B")
        session.wait()
    finally:
        restored(lab, "ip link set ispa-eth1 up; " + reinstall_routes(lab.plan, "ispa"), "ispa")
    assert session.survived(), session.client_log.read_text()


def test_a_crashed_bgpd_is_reported_as_a_crash(lab: Lab) -> None:
    """Not as a BGP session that is slow to come back: the lab checks its daemons by pid and start time."""
    bgpd = next(p for p in lab.record.procs if p.what == "FRR bgpd in exa") if lab.record else None
    assert bgpd is not None and bgpd.alive()
    os.kill(bgpd.pid, signal.SIGKILL)
    wait_until(lambda: not bgpd.alive(), 5, "bgpd to die")
    with pytest.raises(EnvError, match=r"FRR bgpd in exa exited during the run \(a crash, not slow convergence\)"):
        lab.wait_steady(5)
