"""Issue 2: YAML topologies come up in Mininet on OVS; ISPs filter; nothing outlives a run."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from multi6lab.lab.lifecycle import Lab
from multi6lab.topologies import codec, loader
from tests.integration.helpers import PY, nft_counter, topology, udp_exchange

pytestmark = pytest.mark.integration
R = "3fff:ff:100::2"


@pytest.fixture
def fig1(tmp_path: Path) -> Iterator[Lab]:
    with Lab(loader.load(topology("figure1")), tmp_path) as lab:
        yield lab


def test_every_site_host_reaches_r_in_figure1(fig1: Lab) -> None:
    h1 = fig1.plan.sites[0].hosts[0]
    got = udp_exchange(fig1, "h1", "r", R, count=50)
    assert len(got) == 50
    back = udp_exchange(fig1, "r", "h1", got[0]["source"], count=50)
    assert len(back) == 50 and back[0]["source"] == R
    assert "fd00:5" in str(h1.addresses["identity"])


def test_isp_ingress_filter_drops_a_foreign_source(fig1: Lab) -> None:
    """A packet sourced from ISP B's delegation sent out through path A is dropped by A's BCP 38 filter."""
    exa = fig1.plan.sites[0].exit("exa")
    before = nft_counter(fig1, "ispa", "bcp38_ispa_eth1")
    # Put the crafted frame on the exa--ispa link itself, from the exit's side.
    probe = fig1.popen("r", [PY, "-m", "multi6lab.traffic.probe", "recv", "--port", "5999", "--duration", "2",
                             "--out", str(fig1.workdir / "bcp38.csv")])
    fig1.wait_bound("r", 5999)
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    spoofed = bytes(Ether(src=exa.mac, dst=exa.isp_mac) / IPv6(src="3fff:b:5::99", dst=R) / UDP(sport=5999, dport=5999)
                    / (b"\x00" * 64))
    legit = bytes(Ether(src=exa.mac, dst=exa.isp_mac) / IPv6(src="3fff:a:5::99", dst=R) / UDP(sport=5999, dport=5999)
                  / (b"\x00" * 64))
    for data in (spoofed, legit):
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "packet-out", "exa", "CONTROLLER",
                        f"output:{exa.outside_port}", data.hex()], check=True, capture_output=True)
    probe.wait(10)
    got = (fig1.workdir / "bcp38.csv").read_text().splitlines()[1:]
    assert nft_counter(fig1, "ispa", "bcp38_ispa_eth1") == before + 1
    assert [line.split(",")[3] for line in got] == ["3fff:a:5::99"]  # only the legitimate one arrived


def test_the_run_folder_keeps_what_the_controller_ran(fig1: Lab) -> None:
    """The controller process ran from plan.json (it reads no YAML), and its log is where the README says."""
    assert codec.read(fig1.plan_path) == fig1.plan
    assert (fig1.workdir / "controller-site.log").exists() and (fig1.workdir / "controller-site.events.jsonl").exists()
    started = [e for e in fig1.events() if e["event"] == "controller_start"]
    assert [e["topology"] for e in started] == ["figure1"]
