"""A lab spread over servers (Mininet's cluster mode): whole sites move, the uplinks cross, and an emulated
server's configuration says what its set-up relies on."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from multi6lab.cli import main
from multi6lab.topologies import cluster, generate, loader
from multi6lab.topologies.plan import build
from multi6lab.vocabulary import Approach

FIG1 = Path(loader.__file__).with_name("figure1.yaml")


def test_one_server_keeps_everything_here() -> None:
    plan = build(loader.load(FIG1))
    assert set(cluster.place(plan, ["localhost"]).values()) == {cluster.HERE}


def test_figure1_site_runs_on_the_second_server_and_only_its_uplinks_cross() -> None:
    plan = build(loader.load(FIG1))
    where = cluster.place(plan, cluster.server_names(2))
    site = plan.sites[0].site
    moved = {site.fabric, *(e.name for e in site.exits), *site.hosts}
    assert {n for n, s in where.items() if s == "srv2"} == moved
    assert all(where[n] == cluster.HERE for n in where.keys() - moved)  # ISPs, core, remote: with the controllers
    uplinks = {frozenset((e.name, e.isp)) for e in plan.sites[0].exits}
    assert {frozenset(pair) for pair in cluster.crossing(plan, where)} == uplinks


def test_sites_are_dealt_round_robin_and_no_link_joins_two_other_servers() -> None:
    shape = generate.Shape(5, 2, exits=2, hosts=1, approach=Approach.NPTV6, seed=3)
    plan = build(loader.loads(generate.dumps(shape), "generated.yaml"))
    where = cluster.place(plan, cluster.server_names(3))
    assert [where[sp.site.fabric] for sp in plan.sites] == ["srv2", "srv3", "srv2", "srv3", "srv2"]
    for a, b in cluster.crossing(plan, where):
        assert cluster.HERE in (where[a], where[b])  # every tunnel has this machine at one end
    exits = {e.name for sp in plan.sites for e in sp.exits}
    assert len(cluster.crossing(plan, where)) == len(exits)
    assert all(a in exits or b in exits for a, b in cluster.crossing(plan, where))


def test_sites_with_daemons_stay_and_a_lab_of_only_those_cannot_be_split() -> None:
    shape = generate.Shape(2, 2, exits=2, hosts=1, approach=Approach.ROUTING, seed=1)
    plan = build(loader.loads(generate.dumps(shape), "generated.yaml"))
    with pytest.raises(cluster.ClusterError, match="routing and mobility sites run daemons"):
        cluster.place(plan, cluster.server_names(2))


@pytest.mark.parametrize("count", [0, cluster.MAX_SERVERS + 1])
def test_server_count_is_bounded(count: int) -> None:
    with pytest.raises(cluster.ClusterError, match="--servers must be between 1 and"):
        cluster.server_names(count)


def test_management_addresses_are_point_to_point_from_the_benchmarking_range() -> None:
    assert cluster.mgmt_address(cluster.HERE) == IPv4Address("198.18.0.1")
    assert [cluster.mgmt_address(s) for s in cluster.server_names(3)[1:]] == [IPv4Address("198.18.0.2"),
                                                                              IPv4Address("198.18.0.3")]


def test_server_configuration(tmp_path: Path) -> None:
    shared, own = cluster.ServerFiles(tmp_path), cluster.ServerFiles(tmp_path / "srv2")
    sshd = cluster.sshd_config(shared, own, IPv4Address("198.18.0.2"))
    assert "ListenAddress 198.18.0.2" in sshd and "PermitTunnel ethernet" in sshd
    assert f"HostKey {tmp_path / 'host_key'}" in sshd and f"PidFile {tmp_path / 'srv2' / 'sshd.pid'}" in sshd
    assert "PasswordAuthentication no" in sshd
    client = cluster.ssh_config(shared)
    assert f"IdentityFile {tmp_path / 'client_key'}" in client and "StrictHostKeyChecking yes" in client
    assert cluster.known_hosts([IPv4Address("198.18.0.2")], "ssh-ed25519 AAAAkey comment\n") == \
        "198.18.0.2 ssh-ed25519 AAAAkey\n"
    init = cluster.init_script(own, "srv2", IPv4Address("198.18.0.2"), "mgmt0").splitlines()
    order = ("trap", "mount -t tmpfs", "ovsdb-server", "ovs-vswitchd", "/usr/sbin/sshd", "ready")
    at = [next(i for i, line in enumerate(init) if word in line) for word in order]
    # its own OVS sockets before its OVS, its OVS before its SSH server, and 'ready' last
    assert at == sorted(at)
    assert "198.18.0.2/32 peer 198.18.0.1" in "\n".join(init)


def test_cli_refuses_an_impossible_server_count_in_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", str(FIG1), "--servers", "0", "-c", "h1:true"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("multi6lab: --servers must be between 1 and") and "Traceback" not in err


def test_a_vxlan_link_end_is_point_to_point_over_the_management_link() -> None:
    argv = cluster.vxlan_argv("m6vx6000", 6000, cluster.MGMT_HERE, IPv4Address("198.18.0.2"), "m6mg-srv2")
    assert argv[:5] == ["ip", "link", "add", "m6vx6000", "mtu"] and argv[5] == "1500"
    words = dict(zip(argv[8:-1:2], argv[9:-1:2], strict=True))
    assert words == {"id": "6000", "local": "198.18.0.1", "remote": "198.18.0.2", "dstport": "4789",
                     "dev": "m6mg-srv2"} and argv[-1] == "nolearning"
    assert cluster.MGMT_MTU >= 1500 + 50  # a full frame and VXLAN's headers fit the management link
