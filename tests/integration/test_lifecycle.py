"""Issue 2: the other shipped topologies come up; teardown, Ctrl-C and SIGKILL + clean leave nothing."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from multi6lab.lab.emulation import EnvError
from multi6lab.lab.lifecycle import Lab
from multi6lab.lab.runstate import records
from multi6lab.topologies import loader
from multi6lab.topologies.plan import build
from multi6lab.vocabulary import DETECTION_EVENTS
from tests.integration.helpers import (
    PY,
    ROOT,
    leftovers,
    netem_available,
    routing_topology,
    topology,
    udp_exchange,
    up_process,
    wait_until,
    wait_up,
)

pytestmark = pytest.mark.integration
R = "3fff:ff:100::2"


def test_three_isps_every_host_reaches_r_from_every_prefix(tmp_path: Path) -> None:
    with Lab(loader.load(topology("three-isps")), tmp_path) as lab:
        for h in lab.plan.sites[0].hosts:
            for name, addr in h.addresses.items():
                got = udp_exchange(lab, h.name, "r", R, count=20, src=str(addr))
                assert len(got) == 20 and {g["source"] for g in got} == {str(addr)}, \
                    (h.name, name, [e for e in lab.events() if e["event"] in DETECTION_EVENTS])


def test_two_multihomed_sites_reach_each_other(tmp_path: Path) -> None:

    with Lab(loader.load(topology("two-sites")), tmp_path) as lab:
        s1, s2 = lab.plan.sites
        h2_locator = str(s2.hosts[0].locators["s2ec"])
        got = udp_exchange(lab, "h1", "h2", h2_locator, count=20)
        assert len(got) == 20
        assert got[0]["source"] == str(s1.hosts[0].locators["s1ea"])


def test_a_routing_site_and_an_nptv6_site_reach_each_other(tmp_path: Path) -> None:
    from tests.unit.test_frr import MIXED

    topo = tmp_path / "mixed.yaml"
    topo.write_text(MIXED)
    with Lab(loader.load(topo), tmp_path) as lab:
        s1, s2 = lab.plan.sites
        h1, h2 = str(s1.hosts[0].addresses["pi"]), str(s2.hosts[0].locators["s2ec"])
        assert len(udp_exchange(lab, "h1", "h2", h2, count=20)) == 20
        got = udp_exchange(lab, "h2", "h1", h1, count=20, port=5002)
        assert len(got) == 20 and {g["source"] for g in got} == {h2}


def test_a_second_run_with_the_same_names_is_refused_in_one_sentence(tmp_path: Path) -> None:
    with Lab(loader.load(topology("figure1")), tmp_path / "a") as first:
        with pytest.raises(EnvError, match=f"run {first.run_id} .* is using"):
            Lab(loader.load(topology("figure1")), tmp_path / "b").__enter__()
        assert len(udp_exchange(first, "h1", "r", R, count=10)) == 10  # the first run is untouched


def test_a_second_lab_on_the_machine_is_refused_whatever_its_names(tmp_path: Path) -> None:
    from multi6lab.experiments import scaleoutage
    from multi6lab.vocabulary import Approach, Trigger

    other = scaleoutage.topology(1, Approach.NPTV6, (Trigger.LINK,), seed=1)  # no name in common with figure1
    with up_process(["--workdir", str(tmp_path / "a"), "-c", "h1:sleep 120"]) as p:
        wait_up(p)
        with pytest.raises(EnvError, match=r"pid \d+\) has a lab up on this machine"):
            Lab(other, tmp_path / "b").__enter__()
        os.killpg(p.pid, signal.SIGTERM)
        p.communicate(timeout=60)


def test_teardown_leaves_nothing(tmp_path: Path) -> None:
    with Lab(loader.load(topology("figure1")), tmp_path) as lab:
        assert lab.record is not None
        pids = [p.pid for p in lab.record.procs]
        run_id = lab.run_id
        plan = lab.plan
        assert leftovers(plan, []) != []  # while up, its bridges and interfaces exist (the check can see them)
    assert leftovers(plan, pids) == []
    assert run_id not in {r.run_id for r in records()}


def _pids_of_newest_record() -> list[int]:
    rec = max(records(), key=lambda r: r.run_id)
    return [p.pid for p in rec.procs]


@pytest.mark.parametrize(("sig", "ignore_sigint"), [
    (signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGTERM, True), (signal.SIGHUP, True),
], ids=["ctrl-c", "ctrl-c-started-in-background", "sigterm", "sighup"])
def test_a_signal_tears_everything_down_whatever_the_run_inherited(tmp_path: Path, sig: int,
                                                                   ignore_sigint: bool) -> None:
    with up_process(["--workdir", str(tmp_path), "-c", "h1:sleep 120"], ignore_sigint=ignore_sigint) as p:
        wait_up(p)
        pids = _pids_of_newest_record()
        os.killpg(p.pid, sig)
        try:
            out, _ = p.communicate(timeout=60)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"no teardown within 60 s; it printed:\n{exc.output}") from None
    assert p.returncode == 130, out
    assert "interrupted" in out and "Traceback" not in out
    assert leftovers(build(loader.load(topology("figure1"))), pids) == []


@pytest.mark.parametrize("approach", ["nptv6", "routing"])
def test_sigkill_then_clean_removes_exactly_the_leftovers(tmp_path: Path, approach: str) -> None:
    topo = routing_topology(tmp_path) if approach == "routing" else topology("figure1")
    plan = build(loader.load(topo))
    with up_process(["--workdir", str(tmp_path), "-c", "h1:sleep 120"], topo) as p:
        wait_up(p)
        pids = _pids_of_newest_record()  # FRR's daemons among them, for routing
        state = max(records(), key=lambda r: r.run_id).state_dir
        p.kill()  # only the multi6lab process: its controller, node shells and bridges are orphaned
        p.wait(10)
    assert leftovers(plan, pids) != []
    exe = Path(PY).with_name("multi6lab")
    out = subprocess.run([str(exe), "clean"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "removed" in out.stdout
    wait_until(lambda: leftovers(plan, pids) == [], 10, "clean to finish")
    assert not state.exists()


def test_up_opens_a_working_mininet_cli(tmp_path: Path) -> None:
    exe = Path(PY).with_name("multi6lab")
    out = subprocess.run([str(exe), "up", str(topology("figure1")), "--workdir", str(tmp_path)], cwd=ROOT,
                         input=f"h1 ping -6 -c 2 -i 0.2 {R}\nnodes\nexit\n", capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr  # Mininet's CLI writes command output through its logger, on stderr
    assert "2 packets transmitted, 2 received" in text and "ttl=61" in text  # exit, ISP, core
    assert "available nodes are" in text and "tearing down" in text


def test_link_loss_is_honoured_and_a_delay_no_namespace_can_hold_is_refused(tmp_path: Path) -> None:
    text = topology("figure1").read_text()
    lossy = tmp_path / "lossy.yaml"
    lossy.write_text(text.replace('- endpoints: ["r:eth0", "core:eth3"]',
                                  '- {endpoints: ["r:eth0", "core:eth3"], loss_pct: 20}'))
    with Lab(loader.load(lossy), tmp_path / "loss") as lab:
        # Neighbor discovery crosses the lossy link too (a lost NS costs a 1 s retransmit while packets
        # queue): measure steady-state loss once the core has resolved R.
        wait_until(lambda: "REACHABLE" in lab.cmd("core", f"ping -6 -c1 -W1 {R} >/dev/null; ip -6 neigh show {R}"),
                   15, "the core to resolve R across the lossy link")
        got = udp_exchange(lab, "h1", "r", R, count=1000, rate=1000)
    assert 700 <= len(got) <= 900, f"{len(got)} of 1000 arrived through a 20% loss link"
    if netem_available():
        pytest.skip("this kernel has netem: every delay is honoured, nothing to refuse")
    # Without netem the lab's own delay line holds packets in routers and hosts: between two switches it cannot.
    slow = tmp_path / "slow.yaml"
    slow.write_text(text.replace('- endpoints: ["sw:eth2", "exa:eth1"]',
                                 '- {endpoints: ["sw:eth2", "exa:eth1"], delay_ms: 20}'))
    with pytest.raises(EnvError, match="link sw:eth2--exa:eth1: a delay between two switches needs the netem qdisc"):
        Lab(loader.load(slow), tmp_path / "delay").__enter__()
    assert not [r for r in records() if r.owner == os.getpid()]  # the refused lab left nothing behind


def test_teardown_stops_every_frr_daemon_and_removes_its_state(tmp_path: Path) -> None:
    with Lab(loader.load(routing_topology(tmp_path)), tmp_path) as lab:
        assert lab.record is not None
        daemons = [p.pid for p in lab.record.procs if p.what.startswith("FRR ")]
        assert len(daemons) == 14  # zebra and bgpd on five routers, bfdd on the four that end an exit session
        state, plan, run_id = lab.record.state_dir, lab.plan, lab.run_id
        assert (state / "frr" / "exa" / "bgpd.conf").exists()
    assert leftovers(plan, daemons) == []
    assert not state.exists() and run_id not in {r.run_id for r in records()}
    assert "%ADJCHANGE" in (tmp_path / "frr" / "exa" / "bgpd.log").read_text()  # logs kept with the results


def test_a_detached_lab_outlives_its_shell_takes_a_fault_by_hand_and_goes_down_leaving_nothing(
        tmp_path: Path) -> None:
    """containerlab's life cycle: 'up -d' returns with the lab up, 'ls' and 'inspect' find it by name, 'exec'
    runs in a node, 'fault' breaks it as a scenario would and records it, 'down' removes what it recorded."""
    import json

    m6 = [PY, "-m", "multi6lab.cli"]

    def run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([*m6, *argv], capture_output=True, text=True, timeout=timeout, check=False)
        assert r.returncode == 0, f"multi6lab {' '.join(argv)}: {r.stdout[-2000:]} {r.stderr[-2000:]}"
        return r

    work = tmp_path / "lab"
    up = run("up", "-d", "--name", "office", str(topology("figure1")), "--workdir", str(work), timeout=300)
    assert "lab office: figure1" in up.stdout and "h1: " in up.stdout
    try:
        assert "office" in run("ls").stdout
        desc = json.loads(run("inspect", "office", "--json").stdout)
        holder = desc["pid"]
        assert Path(f"/proc/{holder}").exists() and os.getsid(holder) != os.getsid(0)  # a session of its own
        ping = run("exec", "office", "h1", "--", "ping", "-6", "-c1", "-W2", R)
        assert " 0% packet loss" in ping.stdout
        run("fault", "office", "{kind: blackhole, exit: exa, direction: both, duration: 0.5}")
        (rec,) = [json.loads(line) for line in (work / "faults.jsonl").read_text().splitlines()]
        broke, restored = rec["actions"]  # the scenarios' engine: each action's times and what it did
        assert rec["lab"] == "office" and restored["start"] - broke["start"] >= 0.5 and broke["what"]
        plan = build(loader.load(topology("figure1")))
        pids = [p.pid for r in records() for p in r.procs]
    finally:
        run("down", "office", timeout=200)
    assert leftovers(plan, [*pids, holder]) == []
    assert "no lab is up" in run("ls").stdout
