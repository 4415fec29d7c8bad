"""Rendering the plan's data as shell commands: every value quoted, each command one line a shell reads as meant."""

from __future__ import annotations

import shlex
import subprocess
from ipaddress import IPv6Address as A
from ipaddress import IPv6Interface, IPv6Network
from pathlib import Path

import pytest

from multi6lab.topologies import shell
from multi6lab.topologies.plan import NodeConfig, Route, SourceFilter


def test_routes_render_and_replace() -> None:
    r = Route(IPv6Network("3fff:a:5::/48"), A("3fff:a::2"), "ispa-eth1")
    assert shell.route(r) == "ip -6 route add 3fff:a:5::/48 via 3fff:a::2 dev ispa-eth1"
    assert shell.route(r, "replace").startswith("ip -6 route replace ")
    assert shell.route(Route(IPv6Network("3fff:a::/32"), unreachable=True)) == "ip -6 route add unreachable 3fff:a::/32"


def test_a_hostile_value_stays_one_argument() -> None:
    cmd = shell.link_set("x; rm -rf /", up=False)
    assert shlex.split(cmd) == ["ip", "link", "set", "x; rm -rf /", "down"]
    assert shlex.split(shell.sysctl("net.ipv6.conf.a b.x", 1)) == ["sysctl", "-qw", "net.ipv6.conf.a b.x=1"]


def test_nft_scripts_are_one_argument_so_a_shell_never_sees_braces_or_redirections() -> None:
    for cmd in shell.loss("ispa-eth1", 2.5) + shell.bcp38([SourceFilter("ispa-eth1", (IPv6Network("3fff:a:5::/48"),))]):
        argv = shlex.split(cmd)
        assert argv[0] == "nft" and len(argv) == 2
    (loss,) = shell.loss("ispa-eth1", 2.5)
    assert "add rule inet multi6lab_impair post oifname ispa-eth1 numgen random mod 10000 < 250 drop" in loss
    rule = shlex.split(shell.bcp38([SourceFilter("ispa-eth1", (IPv6Network("3fff:a:5::/48"),))])[1])[1]
    assert rule.endswith("iifname ispa-eth1 ip6 saddr != { 3fff:a:5::/48 } counter name bcp38_ispa_eth1 drop")


def test_configure_runs_sysctls_before_addresses_and_routes() -> None:
    c = NodeConfig(sysctls=(("net.ipv6.conf.all.forwarding", "1"),), offload_off=("r-eth0",),
                   addresses=(("r-eth0", IPv6Interface("3fff:ff:100::2/64")),),
                   routes=(Route(IPv6Network("::/0"), A("3fff:ff:100::1"), "r-eth0"),))
    assert shell.configure(c) == ["sysctl -qw net.ipv6.conf.all.forwarding=1", "ethtool -K r-eth0 tx off",
                                  "ip -6 addr add 3fff:ff:100::2/64 dev r-eth0 nodad",
                                  "ip -6 route add ::/0 via 3fff:ff:100::1 dev r-eth0"]
    assert shell.when_ready(c) == []
    assert shell.when_ready(NodeConfig(neighbours=(("r-eth0", A("3fff:ff:100::1")),))) == [
        "timeout 30 sh -c 'until ping -6 -q -n -c1 -i0.2 -w5 -I r-eth0 3fff:ff:100::1 >/dev/null; "
        "do sleep 0.1; done'"]
    ready = shell.when_ready(NodeConfig(mptcp=True, mptcp_endpoints=("h1-eth0", (A("3fff:a:5::1"),))))
    assert ready == ["ip mptcp limits set subflow 4 add_addr_accepted 4", "sysctl -qw net.mptcp.stale_loss_cnt=1",
                     "ip mptcp endpoint flush", "ip mptcp endpoint add 3fff:a:5::1 dev h1-eth0 subflow"]


def test_queries_and_programs_are_quoted_too() -> None:
    assert shell.listening(5001, "udp") == "ss -Hlnu 'sport = :5001'"
    assert shell.listening(5100, "tcp") == "ss -Hlnt 'sport = :5100'"
    assert shell.route_show(IPv6Network("3fff:5::/48")) == "ip -6 route show exact 3fff:5::/48"
    assert shlex.split(shell.argv(["/usr/lib/frr/bgpd", "-f", "/run/x y/bgpd.conf"])) == [
        "/usr/lib/frr/bgpd", "-f", "/run/x y/bgpd.conf"]


def test_a_first_contact_pings_until_one_echo_is_answered_within_a_deadline() -> None:
    from ipaddress import IPv6Address

    words = shlex.split(shell.reach(IPv6Address("fd00:2::6d:ff:fe00:900")))
    assert words[:2] == ["timeout", str(shell.RESOLVE_DEADLINE_S)] and words[2:4] == ["sh", "-c"]
    assert words[4] == "until ping -6 -q -n -c1 -W1 fd00:2::6d:ff:fe00:900 >/dev/null; do sleep 0.1; done"


@pytest.mark.parametrize("tc_status,answer", [(0, 0), (2, 1)])
def test_the_netem_probe_asks_on_a_veth_of_its_own_and_removes_it_either_way(tmp_path: Path, tc_status: int,
                                                                              answer: int) -> None:
    """A lab interface may already have a root qdisc (a bandwidth's tbf): the probe never touches one."""
    log = tmp_path / "calls"
    for prog, status in (("ip", 0), ("tc", tc_status)):
        (tmp_path / prog).write_text(f'#!/bin/sh\necho "{prog} $*" >> {log}\nexit {status}\n')
        (tmp_path / prog).chmod(0o755)
    r = subprocess.run(["sh", "-c", shell.netem_probe()], env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, check=False)
    assert (r.returncode != 0) == bool(answer)
    assert log.read_text().splitlines() == ["ip link add name m6lnetem type veth peer name m6lnetemp",
                                            "tc qdisc add dev m6lnetem root netem delay 0ms", "ip link del m6lnetem"]
