"""Issue 3, icmp trigger: an ISP's ICMPv6 'no route' moves traffic for that destination to another exit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from multi6lab.lab.lifecycle import Lab
from multi6lab.scenarios.faults import reinstall_routes
from multi6lab.topologies import loader
from tests.integration.helpers import craft, events, topology, udp_exchange, wait_until

pytestmark = pytest.mark.integration
R = "3fff:ff:100::2"


def test_isp_no_route_moves_the_destination_to_the_other_exit(tmp_path: Path) -> None:
    topo = tmp_path / "figure1-icmp.yaml"
    topo.write_text(topology("figure1").read_text().replace("[link, heartbeat]", "[icmp]"))
    with Lab(loader.load(topo), tmp_path) as lab:
        sp = lab.plan.sites[0]
        loc_b = str(sp.hosts[0].locators["exb"])
        t0 = time.monotonic()
        lab.cmd("ispa", "ip link set ispa-eth0 down")  # ISP A loses the core: it answers 'no route'
        try:
            lab.cmd("h1", f"ping -6 -c1 -W1 {R} >/dev/null")  # traffic that draws the ISP's error
            wait_until(lambda: events(lab, "dest_dead", t0, exit="exa", dst=R), 5, "the icmp trigger")
            got = udp_exchange(lab, "h1", "r", R, count=20)
            # What the trigger promises: R-bound traffic now leaves through ISP B, with B's locator, and the
            # fresh path carries it at once (the lab's links are resolved at bring-up, as a real network's are).
            assert len(got) == 20 and {g["source"] for g in got} == {loc_b}
        finally:
            lab.cmd("ispa", "ip link set ispa-eth0 up; " + reinstall_routes(lab.plan, "ispa"))
        assert not events(lab, "path_dead", t0)  # nothing but the icmp trigger was at work


def test_a_forged_unreachable_about_a_packet_the_exit_never_sent_trips_nothing(tmp_path: Path) -> None:
    """RFC 5927's first check: an ICMPv6 error must quote a packet from one of the exit's own locators. Errors
    sent into exit A quoting packets from B's locator, or from nobody of the site, are counted and ignored."""
    topo = tmp_path / "figure1-icmp.yaml"
    topo.write_text(topology("figure1").read_text().replace("[link, heartbeat]", "[icmp]"))
    with Lab(loader.load(topo), tmp_path) as lab:
        sp = lab.plan.sites[0]
        ea = sp.exit("exa")
        loc_a, loc_b = (str(sp.hosts[0].locators[x]) for x in ("exa", "exb"))
        t0 = time.monotonic()
        forged = (f"[Ether(src='{ea.isp_mac}', dst='{ea.mac}')/IPv6(src='{ea.isp_address}', dst='{loc_a}')"
                  f"/ICMPv6DestUnreach(code=0)/IPv6(src=s, dst='{R}')/UDP(sport=5000, dport=5001)"
                  f"/Raw(b'x' * 16) for s in ['{loc_b}', '3fff:ff:100::66'] * 50]")
        craft(lab, "ispa", ea.isp_intf, forged)
        wait_until(lambda: any(e.get("icmp_error_not_ours", 0) >= 100 for e in events(lab, "counters", t0)), 10,
                   "the controller to count 100 errors that quote no packet of exit A")
        assert not events(lab, "dest_dead", t0)  # R is still reached through ISP A
        got = udp_exchange(lab, "h1", "r", R, count=20)
        assert len(got) == 20 and {g["source"] for g in got} == {loc_a}
