"""Issue 15 item 5: one lab over two servers with Mininet's cluster mode (an emulated second server here). The
site runs on the other server, its uplinks cross in SSH tunnels, its switches reach the controllers over the
management link, and whatever ends the run, nothing of either server is left."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from multi6lab.experiments import scaleoutage
from multi6lab.lab.lifecycle import Lab
from multi6lab.lab.runstate import records
from multi6lab.topologies import loader
from multi6lab.topologies.plan import build
from multi6lab.vocabulary import Approach, Trigger
from tests.integration.helpers import (
    PY,
    leftovers,
    topology,
    udp_exchange,
    up_process,
    wait_until,
    wait_up,
)

pytestmark = pytest.mark.integration
R = "3fff:ff:100::2"


def cluster_leftovers(pids: list[int]) -> list[str]:
    """What of the servers is still here: management links, tunnel devices, recorded processes."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    left = [line.split(":")[1].strip() for line in links.splitlines()
            if ": m6mg-" in line or ": tap6" in line or ": m6vx" in line]
    return left + [f"process {p}" for p in pids if Path(f"/proc/{p}").exists()
                   and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]


@pytest.mark.parametrize("links", ["vxlan", "ssh"])
def test_the_site_runs_on_the_other_server_and_reaches_r_through_the_tunnels(tmp_path: Path, links: str) -> None:
    with Lab(loader.load(topology("figure1")), tmp_path, servers=2, cluster_links=links) as lab:
        assert lab.record is not None
        assert lab.cmd("h1", "hostname").strip() == "multi6lab-srv2"
        assert lab.cmd("exa", "hostname").strip() == "multi6lab-srv2"  # a switch: the server's root namespace
        assert lab.cmd("r", "hostname").strip() != "multi6lab-srv2"
        # the site's bridges are in the other server's Open vSwitch, not this machine's
        here = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split()
        assert "exa" not in here and "exa" in lab.cmd("exa", "ovs-vsctl list-br").split()
        got = udp_exchange(lab, "h1", "r", R, count=100, rate=500)
        assert len(got) == 100  # out through the site's exit, an SSH tunnel, ISP A and the core
        # a process started on the other server ends when told to, there, not only its local ssh
        sleeper = lab.popen("h1", ["sleep", "300"])
        wait_until(lambda: "sleep 300" in lab.cmd("h1", "ps -eo args"), 10, "the remote sleep to start")
        sleeper.terminate()
        sleeper.wait(15)
        wait_until(lambda: "sleep 300" not in lab.cmd("h1", "ps -eo args"), 10, "the remote sleep to end")
        pids = [p.pid for p in lab.record.procs]
        plan, run_id = lab.plan, lab.run_id
    assert leftovers(plan, pids) == [] and cluster_leftovers(pids) == []
    assert run_id not in {r.run_id for r in records()}


def test_an_end_that_is_down_drops_what_is_sent_to_it_and_carries_again_once_up(tmp_path: Path) -> None:
    """As a wire would. An SSH tunnel instead holds the frames and delivers them, a second late, once the end
    is back (seen in the demo scenario over SSH links; docs/cluster.md)."""
    with Lab(loader.load(topology("figure1")), tmp_path, servers=2) as lab:
        assert lab.emulation is not None
        sp = lab.plan.sites[0]
        via_a = str(sp.hosts[0].locators["exa"])  # h1 as R reaches it through ISP A only
        for _ in range(2):
            lab.emulation.run("exa", "ip link set exa-eth2 down")
            wait_until(lambda: lab.steady_problem() is not None, 10, "the controller to see exa's uplink go")
            got = udp_exchange(lab, "r", "h1", via_a, count=100, rate=500, listen=2.5,
                               then=lambda: lab.cmd("exa", "ip link set exa-eth2 up"))
            assert got == [], f"{len(got)} probes sent while exa's uplink was down arrived once it was up"
            lab.wait_steady(20)  # exa's heartbeats answer again: its uplink carries both ways


def test_ten_sites_over_three_servers_come_up(tmp_path: Path) -> None:
    """Enough switches on a server that its batch start-up and its controller attachment no longer fit the
    4,095 characters a node's shell reads in one line (the first 20-site bring-up over servers failed so)."""
    topo = scaleoutage.topology(10, Approach.NPTV6, (Trigger.LINK, Trigger.HEARTBEAT), seed=1, heartbeat_ms=100)
    with Lab(topo, tmp_path, servers=3, sites_per_controller=10) as lab:
        on = {s: sorted(n for n, where in lab.where.items() if where == s and n in {x.name for x in lab.plan.switches})
              for s in ("srv2", "srv3")}
        assert len(on["srv2"]) == len(on["srv3"]) == 15  # 5 sites each: a fabric and two exits per site
        for server, names in on.items():
            assert sorted(lab.cmd(names[0], "ovs-vsctl list-br").split()) == names, server


def test_sigkill_then_clean_removes_the_servers_too(tmp_path: Path) -> None:
    plan = build(loader.load(topology("figure1")))
    with up_process(["--workdir", str(tmp_path), "--servers", "2", "-c", "h1:sleep 120"]) as p:
        wait_up(p)
        assert p.stdout is not None
        where = p.stdout.readline()  # said right after 'up:'
        assert "on srv2: sw, exa, exb, h1" in where, where
        rec = max(records(), key=lambda r: r.run_id)
        pids = [pr.pid for pr in rec.procs]
        assert any("emulated server srv2" in pr.what for pr in rec.procs)
        p.kill()  # the servers, their sshd and their OVS are orphaned with everything else
        p.wait(10)
    assert cluster_leftovers(pids) != []
    exe = Path(PY).with_name("multi6lab")
    out = subprocess.run([str(exe), "clean"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "emulated server srv2" in out.stdout
    wait_until(lambda: cluster_leftovers(pids) == [] and leftovers(plan, pids) == [], 10, "clean to finish")
    assert not rec.state_dir.exists()

