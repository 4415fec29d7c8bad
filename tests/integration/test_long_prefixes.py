"""nptv6 with a /56 identity and /56 delegations (RFC 6296 section 3.5): the exits translate address by address.
The plan's host works from the start; an address it adds while the lab runs (a temporary address, RFC 8981)
works from its first packet, which waits at the controller for its translation instead of being lost; the
answers find it; and the demo's fault moves it to the other ISP."""

from __future__ import annotations

import csv
import json
import subprocess
import time
from pathlib import Path

import pytest

from multi6lab.lab.lifecycle import Lab
from multi6lab.topologies import loader
from multi6lab.vocabulary import Event
from tests.integration.helpers import PY, events, ovs_flows, topology, udp_exchange, wait_until

pytestmark = pytest.mark.integration
R = "3fff:ff:100::2"
NEW = "fd00:5::7e:abcd:1"  # an address the plan does not list, in the /56's first /64


def test_an_address_added_while_the_lab_runs_is_translated_from_its_first_packet(tmp_path: Path) -> None:
    from ipaddress import IPv6Address, IPv6Network

    from multi6lab.topologies.npt import Translator

    with Lab(loader.load(topology("figure1-pd56")), tmp_path) as lab:
        (h1,) = lab.plan.sites[0].hosts
        got = udp_exchange(lab, "h1", "r", R, count=20)
        assert len(got) == 20 and {g["source"] for g in got} == {str(h1.locators["exa"])}
        lab.cmd("h1", f"ip -6 addr add {NEW}/64 dev h1-eth0 nodad")
        got = udp_exchange(lab, "h1", "r", R, count=50, src=NEW)
        expected = Translator(IPv6Network("fd00:5::/56"), IPv6Network("3fff:a:5::/56")).to_outside(IPv6Address(NEW))
        assert len(got) == 50 and {g["source"] for g in got} == {str(expected)}  # the first one was held, not lost
        learned = [e for e in lab.events() if e["event"] == Event.TRANSLATION_LEARNED]
        assert [e["address"] for e in learned] == [NEW]
        back = udp_exchange(lab, "r", "h1", str(expected), count=20, port=5002)
        assert len(back) == 20  # the answers, to its locator, are translated back and find the host


def test_an_address_that_stops_sending_loses_its_translation_and_one_in_use_keeps_it(tmp_path: Path) -> None:
    """translation_idle_s: 2. A temporary address that went quiet (RFC 8981 rotates them) gives its rules back
    to the exits; one that keeps sending keeps them; the quiet one's next packet is learnt again, not lost."""
    idle = "    fabric: sw\n    translation_idle_s: 2\n"
    text = topology("figure1-pd56").read_text().replace("    fabric: sw\n", idle)
    busy, quiet = "fd00:5::7e:b", "fd00:5::7e:c"
    with Lab(loader.loads(text, str(topology("figure1-pd56"))), tmp_path) as lab:
        lab.cmd("h1", f"ip -6 addr add {busy}/64 dev h1-eth0 nodad; ip -6 addr add {quiet}/64 dev h1-eth0 nodad")
        t0 = time.monotonic()
        assert " 0% packet loss" in lab.cmd("h1", f"ping -6 -n -c1 -W2 -I {quiet} {R}")
        talking = lab.popen("h1", ["ping", "-6", "-n", "-c", "60", "-i", "0.2", "-W", "2", "-I", busy, R],
                            stdout=subprocess.PIPE)
        try:
            wait_until(lambda: events(lab, "translation_expired", t0), 8, "the quiet address's translation to expire")
            assert talking.poll() is None  # still talking while the other expired
            assert {e["address"] for e in events(lab, "translation_expired", t0)} == {quiet}
            flows = ovs_flows("exa")
            assert [f for f in flows if busy in f] and not [f for f in flows if quiet in f]
        finally:
            talking.terminate()
            talking.wait()
        t1 = time.monotonic()
        assert " 0% packet loss" in lab.cmd("h1", f"ping -6 -n -c2 -W2 -I {quiet} {R}")  # learnt again
        assert [e["address"] for e in events(lab, Event.TRANSLATION_LEARNED, t1)] == [quiet]


def test_temporary_addresses_that_rotate_during_a_run_each_work_from_their_first_packet(tmp_path: Path) -> None:
    """RFC 8981 with lifetimes short enough to rotate within seconds: the kernel makes a new temporary address
    every few seconds and sends from the newest, and the exits learn each from its first packet, held and
    not lost (a ping that runs across the rotations loses nothing)."""
    import signal

    with Lab(loader.load(topology("figure1-pd56")), tmp_path) as lab:
        lab.cmd("h1", "sysctl -qw net.ipv6.conf.h1-eth0.max_desync_factor=1 net.ipv6.conf.h1-eth0.temp_prefered_lft=8"
                      " net.ipv6.conf.h1-eth0.temp_valid_lft=30 net.ipv6.conf.h1-eth0.use_tempaddr=2")
        pinging = lab.popen("h1", ["ping", "-6", "-n", "-i", "0.2", "-W", "2", R], stdout=subprocess.PIPE)
        temporaries: set[str] = set()

        def rotated() -> bool:
            for link in json.loads(lab.cmd("h1", "ip -6 -j addr show dev h1-eth0 scope global temporary") or "[]"):
                temporaries.update(a["local"] for a in link.get("addr_info", []) if "local" in a)
            learned = {e["address"] for e in lab.events() if e["event"] == Event.TRANSLATION_LEARNED}
            return len(temporaries & learned) >= 3

        try:
            wait_until(rotated, 40, "three temporary addresses, each translated")
        finally:
            pinging.send_signal(signal.SIGINT)
            out = pinging.communicate(timeout=10)[0].decode()
        assert " 0% packet loss" in out, out[-500:]


def test_the_demo_s_fault_on_a_56_moves_the_site_to_the_other_isp(tmp_path: Path) -> None:
    scenario = tmp_path / "pd56.yaml"
    scenario.write_text(f"name: pd56\ntopology: {topology('figure1-pd56')}\ntrials: 1\n"
                        "faults:\n  - {kind: link_down, exit: exa, end: isp, at: 0.0, duration: 1.0}\n")
    r = subprocess.run([PY, "-m", "multi6lab.cli", "run", str(scenario), "--out", str(tmp_path / "run"), "--json"],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (trial,) = csv.DictReader((tmp_path / "run" / "trials.csv").read_text().splitlines())
    assert trial["outbound_outage_ms"] and float(trial["outbound_outage_ms"]) < 1000, trial
    (summary,) = json.loads(r.stdout)
    assert summary["topology"] == "figure1-pd56"


def test_the_new_address_benchmark_times_first_packets_and_bursts(tmp_path: Path) -> None:
    """``multi6lab new-addresses`` in a reduced form: every probe address's first echo is answered (held, not
    lost) and, across the probes, takes longer than its second; a burst is taken in at a measured rate. The
    burst is larger than the controller's event queue (128): a flush the controller once queued from inside a
    handler, into that full queue, waited for itself."""
    r = subprocess.run([PY, "-m", "multi6lab.cli", "new-addresses", "--active", "5,30", "--probes", "3",
                        "--burst", "300", "--out", str(tmp_path / "na")], capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = json.loads((tmp_path / "na" / "new-addresses.json").read_text())
    assert [s["active"] for s in out["summary"]] == [5, 30]
    for row in out["rows"]:
        assert row["first_ms"] is not None and row["next_ms"] > 0, row  # held, not lost
        assert row["rate_per_s"] and row["rules_per_address"] >= 3  # out, hand-off and in, on each exit
    # The first echo waits for its translation; the second does not, but one may meet the switch busy with the
    # burst's rules (seen once in make test: 136 ms, then 358 ms): across the probes, the first waits longer.
    firsts, nexts = sorted(r["first_ms"] for r in out["rows"]), sorted(r["next_ms"] for r in out["rows"])
    assert firsts[len(firsts) // 2] > nexts[len(nexts) // 2], out["rows"]
