"""One lab over several servers (Mininet's cluster mode): where each node runs, and how an emulated server is
set up, as data. Pure; :mod:`multi6lab.lab.cluster` does it.

The first server is the machine the run starts on: it keeps the controllers, the ISPs, the core, the remotes
and every daemon (FRR, Knot, the mobility agents), whose pid files and sockets the run reads where it stands.
The others take whole sites, a site's fabric, exits and hosts together, so that a site's own links stay inside
one server and the links that cross are the uplinks from an exit to its ISP: the links a multihomed site
rehomes across. Sites are dealt round robin starting with the second server, so one site (RFC 4177 Figure 1)
runs away from its controller and ISPs.

On one machine, a server is emulated: its own network, mount and PID namespaces (so its processes, its Open
vSwitch and its interfaces are its own, as on another host), an Open vSwitch of its own, and an SSH server that
permits Ethernet tunnels, reached over a point-to-point management link from 198.18.0.0/24 (RFC 2544's
benchmarking range, which no real network routes). docs/cluster.md draws it.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from multi6lab.topologies.plan import Plan
from multi6lab.vocabulary import Approach

HERE = "localhost"  # the first server: Mininet's cluster mode names the machine it runs on so
MGMT_NET = "198.18.0.0/24"
MGMT_HERE = IPv4Address("198.18.0.1")  # this machine's end of every management link; the controllers listen here
MAX_SERVERS = 16
# Sites whose nodes run only what the lab drives through node shells: no daemon whose pid file or socket
# the run reads on this machine (routing: FRR in the exits; mobility: agents and a home agent).
MOVABLE = tuple(a for a in Approach if not a.profile.node_daemons)
TUNNEL_BASE = 6000  # tapN device numbers of the SSH Ethernet tunnels
VNI_BASE = 6000  # VXLAN network identifiers of the links between servers
VXLAN_PORT = 4789
MGMT_MTU = 9000  # room for a 1500-byte frame and VXLAN's 50 bytes around it
LINK_KINDS = ("vxlan", "ssh")  # how a link between servers is carried; the first is the default
MGMT_THERE = "mgmt0"  # a server's end of its management link


def mgmt_intf_here(server: str) -> str:
    """This machine's end of ``server``'s management link."""
    return f"m6mg-{server}"


def vxlan_argv(name: str, vni: int, local: IPv4Address, remote: IPv4Address, dev: str) -> list[str]:
    """One end of a link between servers as a VXLAN segment over the management link: a point-to-point
    tunnel (the remote is fixed, nothing is learned), with the lab's usual 1500-byte MTU. Moved into its node
    afterwards, it keeps its UDP socket in the namespace it was made in, the server's root."""
    return ["ip", "link", "add", name, "mtu", "1500", "type", "vxlan", "id", str(vni), "local", str(local),
            "remote", str(remote), "dstport", str(VXLAN_PORT), "dev", dev, "nolearning"]


class ClusterError(ValueError):
    """A lab that cannot be split as asked (too many servers, or nothing that could move)."""


def server_names(count: int) -> list[str]:
    """``count`` servers: this machine, then srv2, srv3, ..."""
    if not 1 <= count <= MAX_SERVERS:
        raise ClusterError(f"--servers must be between 1 and {MAX_SERVERS} (got {count})")
    return [HERE] + [f"srv{k}" for k in range(2, count + 1)]


def hostname(server: str) -> str:
    return f"multi6lab-{server}"


def mgmt_address(server: str) -> IPv4Address:
    """The server's end of its management link: srvK is 198.18.0.K."""
    return MGMT_HERE if server == HERE else MGMT_HERE + int(server.removeprefix("srv")) - 1


def place(plan: Plan, servers: Sequence[str]) -> dict[str, str]:
    """Every node's server. With one server, all are here; else each movable site goes, whole, to the next
    server in turn (starting with the second), and the rest stays here."""
    where = {n.name: HERE for n in plan.nodes}
    if len(servers) == 1:
        return where
    movable = [sp.site for sp in plan.sites if sp.site.approach in MOVABLE]
    if not movable:
        raise ClusterError(f"{plan.topology.name} has no site that can run on another server (only "
                           f"{', '.join(a.value for a in MOVABLE)} sites can: routing and mobility sites run "
                           "daemons the run reads on this machine)")
    others = list(servers[1:])
    for k, site in enumerate(movable):
        server = others[k % len(others)]
        for node in (site.fabric, *(e.name for e in site.exits), *site.hosts):
            where[node] = server
    return where


def crossing(plan: Plan, where: dict[str, str]) -> list[tuple[str, str]]:
    """The links whose ends run on different servers (each one an SSH tunnel), as (node, node)."""
    return [(lk.a.node, lk.b.node) for lk in plan.links if where[lk.a.node] != where[lk.b.node]]


@dataclass(frozen=True)
class ServerFiles:
    """Where an emulated server keeps its keys, configuration and its Open vSwitch database."""

    root: Path

    def __truediv__(self, name: str) -> Path:
        return self.root / name

    @property
    def ssh_config(self) -> Path:
        return self.root / "ssh_config"


def sshd_config(shared: ServerFiles, own: ServerFiles, address: IPv4Address) -> str:
    """An SSH server for this run alone: the run's host key and authorized key (``shared`` by its servers),
    root by key only, Ethernet tunnels permitted (cluster mode's links), and room for a session per node."""
    return "\n".join([
        f"ListenAddress {address}",
        f"HostKey {shared / 'host_key'}",
        f"PidFile {own / 'sshd.pid'}",
        f"AuthorizedKeysFile {shared / 'authorized_keys'}",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",  # the run's folder is not the home directory sshd would check
        "PermitTunnel ethernet",
        "UseDNS no",
        "MaxSessions 1000",
        "MaxStartups 1000",
        "",
    ])


def ssh_config(files: ServerFiles) -> str:
    """The client side, given to every ssh the run starts (``ssh -F``): this run's key, this run's known host
    keys and nothing else, and one shared connection per server for the node shells. The tunnels do not share
    it (``ControlPath=none``): a tunnel requested through a shared connection never carries a frame."""
    return "\n".join([
        "Host *",
        f"  IdentityFile {files / 'client_key'}",
        f"  UserKnownHostsFile {files / 'known_hosts'}",
        "  StrictHostKeyChecking yes",
        "  BatchMode yes",
        "  LogLevel ERROR",
        "  ControlMaster auto",
        f"  ControlPath {files / 'ssh-%C'}",
        "  ControlPersist yes",
        "",
    ])


def known_hosts(addresses: Sequence[IPv4Address], host_key_pub: str) -> str:
    key = " ".join(host_key_pub.split()[:2])
    return "".join(f"{a} {key}\n" for a in addresses)


def init_script(files: ServerFiles, server: str, address: IPv4Address, mgmt_intf: str) -> str:
    """What the emulated server's first process runs: its hostname, its management link (which this machine
    moves in), its own Open vSwitch on a private run directory, its SSH server; then it waits. SIGTERM ends
    it, and with it, as with any PID namespace's init, every process of the server."""
    q = shlex.quote
    db = files / "conf.db"
    return "\n".join([
        "set -e",
        "trap 'exit 0' TERM INT HUP",
        f"hostname {q(hostname(server))}",
        # Its own /etc/hosts naming it, as a host's would: sudo (which cluster mode runs) warns otherwise.
        f"{{ cat /etc/hosts; echo '127.0.1.1 {hostname(server)}'; }} > {q(str(files / 'hosts'))}",
        f"mount --bind {q(str(files / 'hosts'))} /etc/hosts",
        "mount -t tmpfs tmpfs /run/openvswitch",  # its own sockets; the machine's OVS is out of sight
        "mkdir -p /run/sshd",
        f"while ! ip link show {q(mgmt_intf)} >/dev/null 2>&1; do sleep 0.02; done",
        "ip link set lo up",
        f"ip addr add {address}/32 peer {MGMT_HERE} dev {q(mgmt_intf)}",
        f"ip link set {q(mgmt_intf)} up",
        f"ovsdb-tool create {q(str(db))} /usr/share/openvswitch/vswitch.ovsschema",
        f"ovsdb-server {q(str(db))} --remote=punix:/run/openvswitch/db.sock --pidfile --detach --no-chdir "
        f"--log-file={q(str(files / 'ovsdb-server.log'))}",
        "ovs-vsctl --no-wait init",
        f"ovs-vswitchd --pidfile --detach --no-chdir --log-file={q(str(files / 'ovs-vswitchd.log'))}",
        f"/usr/sbin/sshd -f {q(str(files / 'sshd_config'))}",
        f"echo ready > {q(str(files / 'ready'))}",
        "sleep infinity &",
        "wait",
        "",
    ])
