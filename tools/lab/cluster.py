"""Mininet's cluster mode on this machine: emulated servers, and the node and link classes that reach them.

Thin on purpose: where nodes go and what a server runs is decided by :mod:`multi6lab.topologies.cluster`. The
node classes are Mininet's own (``mininet.examples.cluster``, shipped with Debian's mininet), told to use this
run's SSH client configuration. Ours: the links between servers (VXLAN over the management link, or an SSH
tunnel that, unlike cluster mode's, neither hard-wires ``tap9`` and the user's keys nor shares the connection,
which leaves a tunnel dead), and a process handle whose signals reach the remote process rather than only the
local ``ssh``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from ipaddress import IPv4Address
from operator import attrgetter
from pathlib import Path
from typing import Any

from multi6lab.lab.emulation import EnvError
from multi6lab.lab.runstate import RunRecord
from multi6lab.topologies import cluster as layout

READY_S = 15.0


def ssh_argv(config: Path, address: object, *more: str) -> list[str]:
    return ["ssh", "-F", str(config), *more, f"root@{address}"]


def run_over_ssh(config: Path, address: object, command: str, what: str) -> str:
    """Run shell ``command`` in a server's root namespace through SSH's command line, not a node's shell: a
    shell reads its commands through a terminal, which cuts a line at 4,095 characters."""
    r = subprocess.run([*ssh_argv(config, address), command], capture_output=True, text=True, timeout=60,
                       check=False)
    if r.returncode:
        raise EnvError(f"{what}: '{command[:60]} ...' failed (exit {r.returncode}): "
                       f"{(r.stderr or r.stdout).strip()[-500:]}")
    return r.stdout


class EmulatedServer:
    """A server of the cluster on this machine: network, mount, PID and UTS namespaces of its own, its own Open
    vSwitch and an SSH server; everything it runs ends with its first process, which the run record holds."""

    def __init__(self, name: str, shared: layout.ServerFiles):
        self.name = name
        self.address = layout.mgmt_address(name)
        self.shared = shared
        self.files = layout.ServerFiles(shared.root / name)
        self.mgmt_intf = layout.mgmt_intf_here(name)  # this machine's end of the management link
        self.init_pid: int | None = None

    def start(self, record: RunRecord) -> subprocess.Popen[bytes]:
        f = self.files
        f.root.mkdir(parents=True, exist_ok=True)
        (f / "sshd_config").write_text(layout.sshd_config(self.shared, f, self.address))
        (f / "init.sh").write_text(layout.init_script(f, self.name, self.address, layout.MGMT_THERE))
        with open(f / "init.log", "wb") as log:
            unshare = subprocess.Popen(
                ["unshare", "--net", "--mount", "--pid", "--uts", "--fork", "--mount-proc", "--propagation",
                 "private", "bash", str(f / "init.sh")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        record.add_proc(unshare.pid, f"unshare of emulated server {self.name}")
        self.init_pid = self._child(unshare)
        record.add_proc(self.init_pid, f"emulated server {self.name} (its PID namespace's first process)")
        record.add_intf(self.mgmt_intf)
        mtu = str(layout.MGMT_MTU)
        for argv in (["ip", "link", "add", self.mgmt_intf, "mtu", mtu, "type", "veth", "peer", "name",
                      layout.MGMT_THERE, "mtu", mtu, "netns", str(self.init_pid)],
                     ["ip", "addr", "add", f"{layout.MGMT_HERE}/32", "peer", str(self.address), "dev",
                      self.mgmt_intf],
                     ["ip", "link", "set", self.mgmt_intf, "up"]):
            r = subprocess.run(argv, capture_output=True, text=True, check=False)
            if r.returncode:
                raise EnvError(f"server {self.name}: '{' '.join(argv)}' failed: {r.stderr.strip()}")
        return unshare

    def _child(self, unshare: subprocess.Popen[bytes]) -> int:
        children = Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children")
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if pids := children.read_text().split():
                    return int(pids[0])
            if unshare.poll() is not None:
                break
            time.sleep(0.01)
        raise EnvError(f"server {self.name} did not start: {self.log_tail()}")

    def wait_ready(self, unshare: subprocess.Popen[bytes]) -> None:
        """Its Open vSwitch and SSH server are up, and an SSH session works (it opens the shared connection)."""
        deadline = time.monotonic() + READY_S
        while not (self.files / "ready").exists():
            if unshare.poll() is not None or time.monotonic() > deadline:
                raise EnvError(f"server {self.name} did not come up: {self.log_tail()}")
            time.sleep(0.02)
        self.run(["true"])

    def run(self, argv: list[str]) -> None:
        run_over_ssh(self.shared.ssh_config, self.address, shlex.join(argv), f"server {self.name}")

    def log_tail(self) -> str:
        try:
            return (self.files / "init.log").read_text(errors="replace").strip()[-1500:] or "no output"
        except OSError:
            return "no log"

    def close_connection(self) -> None:
        """End the shared SSH connection's master process (it would end with the server anyway)."""
        subprocess.run([*ssh_argv(self.shared.ssh_config, self.address, "-O", "exit")], capture_output=True,
                       timeout=10, check=False)


class Cluster:
    """This machine and the emulated servers, and which node runs where."""

    def __init__(self, where: dict[str, str], servers: Sequence[str], state_dir: Path,
                 links: str = layout.LINK_KINDS[0]):
        """``links``: how a link between servers is carried, 'vxlan' or 'ssh' (cluster mode's own kind)."""
        self.where = where
        self.links = links
        self.shared = layout.ServerFiles(state_dir / "cluster")
        self.servers = {s: EmulatedServer(s, self.shared) for s in servers if s != layout.HERE}

    def remote(self, node: str) -> EmulatedServer | None:
        server = self.where[node]
        return None if server == layout.HERE else self.servers[server]

    def start(self, record: RunRecord) -> None:
        """Keys and client configuration, then every server, started side by side."""
        missing = [p for p in ("unshare", "ssh", "ssh-keygen", "sudo", "/usr/sbin/sshd") if not shutil.which(p)]
        if missing:
            raise EnvError(f"spreading a lab over servers needs {', '.join(missing)}, which this machine lacks; "
                           "run 'sudo make setup' (it installs openssh-server, openssh-client and sudo)")
        sh = self.shared
        sh.root.mkdir(parents=True, exist_ok=True)
        record.add_dir(sh.root.parent)  # the run's state directory: removed whole
        for key in ("client_key", "host_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"multi6lab {key}", "-f",
                            str(sh / key)], check=True, capture_output=True)
        (sh / "authorized_keys").write_text((sh / "client_key.pub").read_text())
        (sh / "known_hosts").write_text(layout.known_hosts([s.address for s in self.servers.values()],
                                                           (sh / "host_key.pub").read_text()))
        sh.ssh_config.write_text(layout.ssh_config(sh))
        started = [(s, s.start(record)) for s in self.servers.values()]
        for s, unshare in started:
            s.wait_ready(unshare)

    def stop(self) -> None:
        for s in self.servers.values():
            with contextlib.suppress(Exception):
                s.close_connection()

    def node_classes(self, record: RunRecord) -> tuple[type, type, type]:
        host, switch, ssh, vxlan = node_classes(record)
        return host, switch, vxlan if self.links == "vxlan" else ssh


def _quiet(node: Any, cmd: str) -> None:
    """Run ``cmd`` in the root namespace of ``node``'s server; any output is an error."""
    out = node.rcmd(cmd) if getattr(node, "isRemote", False) else subprocess.run(
        cmd, shell=True, capture_output=True, text=True, check=False).stderr
    if out.strip():
        raise EnvError(f"{node.name}: '{cmd}' failed: {out.strip()}")


def node_classes(record: RunRecord) -> tuple[type, type, type, type]:
    """(host, switch, SSH link, VXLAN link) classes for nodes on other servers and links to them; imported
    late, as Mininet is. A link's device made here is recorded before it exists: it outlives a run that fails
    before moving it into its node."""
    from mininet.examples.cluster import RemoteHost, RemoteLink, RemoteOVSSwitch
    from mininet.node import OVSSwitch

    class _Remote:
        """What the cluster's remote nodes share: this run's SSH configuration, and ``popen`` through it."""

        ssh_config: Path
        serverIP: str
        pid: int

        def _configure(self, ssh_config: Path) -> None:
            self.ssh_config = ssh_config
            self.sshbase = ["ssh", "-F", str(ssh_config), "-q", "-tt"]

        def popen(self, *args: Any, **kw: Any) -> subprocess.Popen[bytes]:
            argv = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else [str(a) for a in args]
            kw.setdefault("stdout", subprocess.PIPE)
            kw.setdefault("stderr", subprocess.PIPE)
            return RemoteProcess(self.ssh_config, self.serverIP, self.pid, argv, **kw)

    class ClusterHost(_Remote, RemoteHost):  # type: ignore[misc,valid-type]
        def __init__(self, name: str, ssh_config: Path, **params: Any):
            self._configure(ssh_config)
            super().__init__(name, user="root", **params)
            self.cmd(f"cd {shlex.quote(os.getcwd())}")  # as a local node's shell: relative paths mean the same

    class ClusterSwitch(_Remote, RemoteOVSSwitch):  # type: ignore[misc,valid-type]
        def __init__(self, name: str, ssh_config: Path, **params: Any):
            self._configure(ssh_config)
            super().__init__(name, user="root", **params)
            self.cmd(f"cd {shlex.quote(os.getcwd())}")

        @classmethod
        def batchStartup(cls, switches: Sequence[Any], **_kw: Any) -> Sequence[Any]:
            """Per server, as cluster mode's, but each ovs-vsctl through SSH's command line: cluster mode's runs
            in a switch's shell, which reads through a terminal that cuts a line at 4,095 characters."""
            by_server = attrgetter("server")
            for _, group in itertools.groupby(sorted(switches, key=by_server), by_server):
                members = tuple(group)
                OVSSwitch.batchStartup(members, run=members[0].run_in_server)
            return switches

        def run_in_server(self, cmd: str, **_kw: Any) -> str:
            return run_over_ssh(self.ssh_config, self.serverIP, cmd, f"{self.name}'s server")

    class TunnelLink(RemoteLink):  # type: ignore[misc,valid-type]
        """A link between servers: an SSH Ethernet tunnel between two tap devices, renamed to the link's
        interface names in their nodes."""

        numbers = itertools.count(layout.TUNNEL_BASE)

        def makeTunnel(self, node1: Any, node2: Any, intfname1: str, intfname2: str,
                       addr1: str | None = None, addr2: str | None = None) -> subprocess.Popen[bytes]:
            if not getattr(node2, "isRemote", False):  # ssh from here to the other server
                node1, node2, intfname1, intfname2, addr1, addr2 = node2, node1, intfname2, intfname1, addr2, addr1
            n = next(self.numbers)
            record.add_intf(f"tap{n}")
            for node in (node1, node2):
                _quiet(node, f"ip tuntap add dev tap{n} mode tap")
            tunnel = subprocess.Popen(
                [*ssh_argv(node2.ssh_config, node2.serverIP, "-n", "-o", "ControlPath=none", "-o",
                           "Tunnel=ethernet", "-w", f"{n}:{n}"), "echo @"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
            assert tunnel.stdout is not None
            if tunnel.stdout.read(1) != b"@":
                tunnel.kill()
                err = tunnel.communicate()[1].decode(errors="replace").strip()
                raise EnvError(f"the SSH tunnel from {node1.name} to {node2.name} failed: {err or 'no output'}")
            for node, intf, addr in ((node1, intfname1, addr1), (node2, intfname2, addr2)):
                _quiet(node, f"ip link set tap{n} netns {node.pid}")
                out = node.cmd(f"ip link set tap{n} name {intf}" + (f" address {addr}" if addr else ""))
                if out.strip():
                    raise EnvError(f"{node.name}: could not name the tunnel's end {intf}: {out.strip()}")
            return tunnel

    class VxlanLink(RemoteLink):  # type: ignore[misc,valid-type]
        """A link between servers as a VXLAN segment over the management link (containerlab's kind of link
        between hosts). Unlike an SSH tunnel, it drops what it cannot deliver, as a wire would: an SSH tunnel
        holds frames for an end that is down and delivers them when it comes back (docs/cluster.md)."""

        vnis = itertools.count(layout.VNI_BASE)

        def makeTunnel(self, node1: Any, node2: Any, intfname1: str, intfname2: str,
                       addr1: str | None = None, addr2: str | None = None) -> None:
            if not getattr(node2, "isRemote", False):  # node1 here, node2 on its server
                node1, node2, intfname1, intfname2, addr1, addr2 = node2, node1, intfname2, intfname1, addr2, addr1
            vni = next(self.vnis)
            there = IPv4Address(node2.serverIP)
            tmp = f"m6vx{vni}"
            record.add_intf(tmp)
            for node, intf, addr, argv in (
                    (node1, intfname1, addr1, layout.vxlan_argv(tmp, vni, layout.MGMT_HERE, there,
                                                                layout.mgmt_intf_here(node2.server))),
                    (node2, intfname2, addr2, layout.vxlan_argv(tmp, vni, there, layout.MGMT_HERE,
                                                                layout.MGMT_THERE))):
                _quiet(node, shlex.join(argv))
                _quiet(node, f"ip link set {tmp} netns {node.pid}")
                out = node.cmd(f"ip link set {tmp} name {intf}" + (f" address {addr}" if addr else ""))
                if out.strip():
                    raise EnvError(f"{node.name}: could not name the link's end {intf}: {out.strip()}")

    return ClusterHost, ClusterSwitch, TunnelLink, VxlanLink


class RemoteProcess(subprocess.Popen[bytes]):
    """A process in a node on another server, run through ``ssh``. Its remote pid is written to a file first,
    so a signal (``terminate``, ``kill``, ``send_signal``) reaches the process itself: signalling the local
    ``ssh`` would only close the session and leave the remote process running."""

    def __init__(self, ssh_config: Path, address: str, node_pid: int, argv: list[str], **kw: Any):
        self.pidfile = ssh_config.parent / f"proc-{uuid.uuid4().hex}.pid"
        self.server = ssh_argv(ssh_config, address)
        # In the caller's directory, as a local process would be: the run's relative paths mean the same there.
        cwd = shlex.quote(str(kw.pop("cwd", None) or os.getcwd()))
        remote = (f"cd {cwd} && echo $$ > {shlex.quote(str(self.pidfile))} && "
                  f"exec mnexec -a {node_pid} {shlex.join(argv)}")
        super().__init__([*self.server, remote], **kw)

    def send_signal(self, sig: int) -> None:
        if self.poll() is not None:
            return
        f = shlex.quote(str(self.pidfile))
        subprocess.run([*self.server, f"timeout 5 sh -c 'while [ ! -s {f} ]; do sleep 0.01; done'; "
                                      f"kill -s {signal.Signals(sig).name[3:]} \"$(cat {f})\""],
                       capture_output=True, timeout=15, check=False)
