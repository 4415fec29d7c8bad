"""The plumbing: a Plan becomes a running Mininet network, and goes away again, completely.

Thin on purpose: every address, route and filter comes from :mod:`multi6lab.topologies.plan`. What this module adds is
what only a real machine can do: root checks, the OVS datapath choice, impairments the kernel can or cannot
honour, and a teardown that runs whatever happens (Ctrl-C, exception, SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from multi6lab.lab import delayline
from multi6lab.lab.phases import Phases
from multi6lab.lab.runstate import RunRecord
from multi6lab.topologies import frr, knot, shell
from multi6lab.topologies.plan import LinkPlan, Plan


class Servers(Protocol):
    """Where the nodes run when the lab is spread over servers (:class:`multi6lab.lab.cluster.Cluster`, given
    to the emulation as Mininet is given its node classes: this module knows no SSH)."""

    def remote(self, node: str) -> Any:
        """The other server ``node`` runs on, or None: its ``name``, ``address``, ``shared.ssh_config``, and
        ``run(argv)`` in its root namespace."""

    def node_classes(self, record: RunRecord) -> tuple[type, type, type]:
        """Mininet's (host, switch, link) classes for nodes on, and links to, other servers."""


class EnvError(Exception):
    """The machine cannot do what was asked (not root, no Open vSwitch, an impairment it cannot honour)."""


def _ovs_here(argv: list[str]) -> None:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    if r.returncode:
        raise EnvError(r.stderr.strip())


def require_root(what: str, why: str = "it creates namespaces, links and OVS bridges") -> None:
    if os.geteuid() != 0:
        raise EnvError(f"{what} needs root ({why}); run it with sudo.")


def ovs_running() -> bool:
    try:
        r = subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def datapath() -> str:
    """'kernel' where the openvswitch module is loaded, else 'user' (OVS's netdev datapath). Never assumed."""
    return "kernel" if Path("/sys/module/openvswitch").exists() else "user"


def datapath_label() -> str:
    """The datapath as results name it, OVS's own word in brackets: 'kernel (system)' or 'userspace (netdev)'."""
    return "kernel (system)" if datapath() == "kernel" else "userspace (netdev)"


def require_emulator(what: str) -> None:
    require_root(what)
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        raise EnvError("Mininet is not importable; run 'sudo make setup' (it installs Debian's mininet).") from None
    if not ovs_running():
        raise EnvError("Open vSwitch is not running; run 'sudo make setup' (it starts it).")


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into KeyboardInterrupt so that ``finally`` blocks tear down as on Ctrl-C.

    SIGINT too: a process started in the background by a script (``cmd &``, ``nohup``, many CI runners)
    inherits it as ignored, and Python then installs no handler of its own, so Ctrl-C would do nothing."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class Emulation:
    """A running network for one Plan, started and stopped by :class:`~multi6lab.lab.lifecycle.Lab`; ``stop`` is
    idempotent."""

    def __init__(self, plan: Plan, record: RunRecord, controllers: dict[str, int] | None = None,
                 logdir: Path | None = None, mapping_keys: dict[str, str] | None = None,
                 phases: Phases | None = None, cluster: Servers | None = None, controller_host: str = "127.0.0.1"):
        """``controllers``: the OpenFlow port each managed bridge connects to (its site's controller), on
        ``controller_host``; ``mapping_keys``: the id-loc sites' TSIG secrets, which the mapping service is
        started with; ``cluster``: the servers the nodes are spread over (Mininet's cluster mode)."""
        self.plan = plan
        self.cluster = cluster
        self.controller_host = controller_host
        self.record = record
        self.controllers = controllers or {}
        self.logdir = logdir  # FRR's logs are copied here when the network stops
        self.datapath = datapath()
        self.net: Any = None
        self.routers = frr.routers(plan)
        self.mapping_keys = mapping_keys or {}
        self.role = {n.name: n.role for n in plan.nodes}
        self.phases = phases or Phases()
        self.delay: str | None = None  # how link delay and jitter are applied, if any link has them

    def node(self, name: str) -> Any:
        return self.net[name]

    def start(self) -> None:
        from mininet.link import Link, TCIntf, TCLink
        from mininet.log import setLogLevel
        from mininet.net import Mininet
        from mininet.node import Host, OVSSwitch

        setLogLevel("error")
        net = Mininet(topo=None, build=False, controller=None, autoSetMacs=False, autoStaticArp=False,
                      waitConnected=False)
        self.net = net
        phase = self.phases
        remote_host, remote_switch, tunnel = (self.cluster.node_classes(self.record) if self.cluster
                                              else (Host, OVSSwitch, Link))
        with phase("nodes"):  # each a shell in new namespaces, or a bridge recorded before it exists
            for n in self.plan.nodes:
                # A node on another server goes with its server: nothing of it is recorded here.
                there = self._server(n.name)
                place: dict[str, Any] = {} if there is None else {
                    "server": there.name, "serverIP": str(there.address), "ssh_config": there.shared.ssh_config}
                if n.role == "switch":
                    if there is None:
                        self.record.add_bridge(n.name)
                    net.addSwitch(n.name, cls=OVSSwitch if there is None else remote_switch, dpid=f"{n.dpid:016x}",
                                  datapath=self.datapath, protocols="OpenFlow13",
                                  failMode="standalone" if n.standalone else "secure", inband=False, batch=True,
                                  **place)
                else:
                    net.addHost(n.name, cls=Host if there is None else remote_host, ip=None, **place)
        with phase("links"):
            for lp in self.plan.links:
                params: dict[str, Any] = {}
                cls = Link
                if lp.bw:  # tbf: htb warns about its quantum at these rates and Mininet prints it as an error
                    cls, params = TCLink, {"bw": lp.bw, "use_tbf": True}
                if self._server(lp.a.node) is not self._server(lp.b.node):  # a link between servers
                    cls, params = tunnel, ({"intf": TCIntf, "params1": params, "params2": params} if params else {})
                for i in (lp.a, lp.b):
                    if self.role[i.node] == "switch" and self._server(i.node) is None:
                        self.record.add_intf(i.name)
                net.addLink(lp.a.node, lp.b.node, port1=lp.a.port, port2=lp.b.port, intfName1=lp.a.name,
                            intfName2=lp.b.name, addr1=lp.a.mac, addr2=lp.b.mac, cls=cls, **params)
        with phase("mininet build"):
            net.build()
        for n in self.plan.nodes:
            if n.role != "switch" and self._server(n.name) is None:
                self.record.add_proc(net[n.name].pid, f"mininet node {n.name}")
        with phase("switches start"):
            net.start()  # switches start with no controller: a standalone one forwards as a learning switch
        managed = {n.name: self.controllers[n.name] for n in self.plan.switches
                   if not n.standalone and n.name in self.controllers}
        if managed:
            with phase("controllers attached"):
                self.attach_controllers(managed)
        self.impair()
        with phase("nodes configured"):
            for n in self.plan.nodes:
                for cmd in shell.configure(n.config):
                    self.run(n.name, cmd)
        if self.routers:
            if not frr.FRR_BIN.exists():
                raise EnvError(f"FRR is not installed ({frr.FRR_BIN} is missing); run 'sudo make setup'.")
            self.record.add_dir(self.record.state_dir)
            with phase("FRR started"):
                for r in self.routers.values():
                    self.start_frr(r)
        if self.mapping_keys:
            with phase("mapping service started"):
                self.start_mapping()

    def _server(self, node: str) -> Any:
        """The other server ``node`` runs on, or None for this machine."""
        return self.cluster.remote(node) if self.cluster else None

    def attach_controllers(self, bridges: dict[str, int]) -> None:
        """Point each bridge at the controller on its port, in one OVS transaction per server. Mininet's
        RemoteController is not used: it probes the port with telnet and decodes the binary OpenFlow answer as
        text, which can raise."""
        by_server: dict[Any, list[str]] = {}
        for br in sorted(bridges):
            by_server.setdefault(self._server(br), []).append(br)
        for server, names in by_server.items():
            argv = ["ovs-vsctl", "--timeout=10"]
            for i, br in enumerate(names):
                argv += ["--", f"--id=@c{i}", "create", "Controller",
                         f'target="tcp:{self.controller_host}:{bridges[br]}"', "max_backoff=1000", "--", "set",
                         "bridge", br, f"controller=[@c{i}]"]
            try:
                if server is None:
                    _ovs_here(argv)
                else:
                    server.run(argv)
            except EnvError as exc:
                raise EnvError(f"could not attach the switches to the controller: {exc}") from None

    # -- FRR (routing approach) ---------------------------------------------------------------------------
    def frr_dir(self, node: str) -> Path:
        return self.record.state_dir / "frr" / node

    def start_frr(self, r: frr.Router) -> None:
        """Start ``r``'s daemons in its namespace, each recorded by pid as soon as its pid file appears."""
        d = self.frr_dir(r.name)
        d.mkdir(parents=True, exist_ok=True)
        for name, text in frr.configs(r, d).items():
            (d / name).write_text(text)
        for path in (self.record.state_dir, self.record.state_dir / "frr", d, *d.iterdir()):
            shutil.chown(path, "frr", "frr")  # the daemons drop to user frr and write here
        for daemon in r.daemons:
            self.run(r.name, shell.argv(frr.argv(daemon, d)))
            self._record_daemon(d / f"{daemon}.pid", f"FRR {daemon} in {r.name}", d)

    # -- the id-loc mapping service ---------------------------------------------------------------------------
    def start_mapping(self) -> None:
        """Knot DNS in the mapping remote's namespace, with the registry's zone and each site's key."""
        m = self.plan.topology.mapping
        assert m is not None
        if not knot.KNOTD.exists():
            raise EnvError(f"Knot DNS is not installed ({knot.KNOTD} is missing); run 'sudo make setup'.")
        d = self.record.state_dir / "knot"
        (d / "db").mkdir(parents=True, exist_ok=True)
        if not self.routers:  # start() recorded it for FRR already
            self.record.add_dir(self.record.state_dir)
        (d / "map.zone").write_text(knot.zone(self.plan))
        conf = d / "knot.conf"
        conf.touch(mode=0o600)  # it holds every site's secret
        conf.write_text(knot.config(self.plan, d, self.mapping_keys))
        self.run(m.server, shell.argv([str(knot.KNOTD), "-d", "-c", str(conf)]))
        self._record_daemon(d / "knot.pid", f"Knot DNS in {m.server}", d / "knot.log")

    def _record_daemon(self, pidfile: Path, what: str, logs: Path) -> None:
        """Record a daemon that forked into the background by pid, as soon as its pid file appears."""
        deadline = time.monotonic() + 10
        while not (pidfile.exists() and pidfile.read_text().strip()):
            if time.monotonic() > deadline:
                raise EnvError(f"{what} did not start (no {pidfile}); see {logs}")
            time.sleep(0.02)
        self.record.add_proc(int(pidfile.read_text()), what)

    def bgp(self, node: str, command: str) -> str:
        """Ask ``node``'s FRR (through vtysh) for ``command``'s output."""
        r = subprocess.run(frr.vtysh(self.frr_dir(node), command), capture_output=True, text=True, timeout=10,
                           check=False)
        return r.stdout

    def bgp_configure(self, node: str, lines: list[str]) -> None:
        """Change ``node``'s running FRR configuration (vtysh, ``configure terminal`` then ``lines``)."""
        r = subprocess.run(frr.vtysh_configure(self.frr_dir(node), lines), capture_output=True, text=True,
                           timeout=10, check=False)
        if r.returncode or r.stdout.strip():
            raise EnvError(f"{node}: FRR refused {lines}: {(r.stdout + r.stderr).strip()}")

    def stop_daemons(self) -> None:
        """FRR, Knot and the delay lines first: a surviving daemon would keep its namespace alive after Mininet
        stops."""
        self.record.stop_procs(lambda p: p.what.startswith(("FRR ", "Knot DNS ", "delay line ")))
        knot_log = self.record.state_dir / "knot" / "knot.log"
        if self.logdir is not None and knot_log.exists():
            shutil.copy(knot_log, self.logdir / "knot.log")
        if self.logdir is not None and self.routers:
            for node in self.routers:
                for log in self.frr_dir(node).glob("*.log"):
                    dest = self.logdir / "frr" / node
                    dest.mkdir(parents=True, exist_ok=True)
                    shutil.copy(log, dest / log.name)

    def run(self, node: str, cmd: str) -> str:
        """Run ``cmd`` in ``node``'s namespace; a non-zero exit raises with the node, command and output."""
        out = str(self.net[node].cmd(f"{cmd}; echo __rc=$?"))
        m = re.search(r"__rc=(\d+)\s*$", out)
        rc = int(m.group(1)) if m else -1
        text = out[: m.start()].strip() if m else out.strip()
        if rc != 0:
            raise EnvError(f"{node}: '{cmd}' failed (exit {rc}): {text}")
        return text

    def impair(self) -> None:
        """Every link's delay, jitter and loss: tc netem where the kernel has it, else the lab's own delay line
        (and the nodes' random drop for loss alone). Never silently skipped: what cannot be honoured is an
        EnvError naming the link. ``self.delay`` says which mechanism ran (the run's provenance)."""
        impaired = [lp for lp in self.plan.links if lp.delay_ms or lp.jitter_ms or lp.loss_pct]
        if not impaired:
            return
        if self._netem_available(self._any_router_or_host_end(impaired[0])):
            for lp in impaired:
                spec = shell.netem_spec(lp.delay_ms, lp.jitter_ms, lp.loss_pct)
                for i in (lp.a, lp.b):
                    self._tc(i.node, shell.netem(i.name, spec, parent="5:1" if lp.bw else None))  # below the tbf
            self.delay = "netem"
            return
        try:
            held = delayline.holds(self.plan)
        except delayline.Unheld as exc:
            raise EnvError(str(exc)) from None
        for lp in impaired:
            if not (lp.delay_ms or lp.jitter_ms):
                self._loss_only(lp)
        if held:
            self.start_delay_lines(held)
            self.delay = "delay line (NFQUEUE verdict daemon)"

    def _any_router_or_host_end(self, lp: LinkPlan) -> str | None:
        """A node at one end of ``lp`` that is not a switch (None: both are; such ends share the host's kernel)."""
        ends = [i for i in (lp.a, lp.b) if self.role[i.node] != "switch"]
        return ends[0].node if ends else None

    def _loss_only(self, lp: LinkPlan) -> None:
        ends = [i for i in (lp.a, lp.b) if self.role[i.node] != "switch"]
        if not ends:
            raise EnvError(f"link {lp.label}: loss_pct between two switches needs netem, which this kernel lacks; "
                           "put the loss on a link with a router or host end.")
        for cmd in shell.loss(ends[0].name, float(lp.loss_pct or 0)):
            self.run(ends[0].node, cmd)

    def start_delay_lines(self, held: list[delayline.Hold]) -> None:
        """One verdict daemon per namespace that holds a link direction, recorded by pid; its netfilter rules
        only once it has bound its queues (a packet queued with nobody listening is dropped)."""
        by_node: dict[str, list[delayline.Hold]] = {}
        for h in held:
            by_node.setdefault(h.node, []).append(h)
        self.record.add_dir(self.record.state_dir)
        self.record.state_dir.mkdir(parents=True, exist_ok=True)
        for node, hs in by_node.items():
            if self._server(node) is not None:
                raise EnvError(f"link delay in {node}: the delay line runs on this machine's nodes only, and "
                               f"{node} is on another server; run without --servers or on a kernel with netem")
            ready = self.record.state_dir / f"delayd-{node}.ready"
            logs = self.logdir or self.record.state_dir
            argv = [sys.executable, "-m", "multi6lab.traffic.delayd", "--ready", str(ready), "--seed", "1",
                    "--errors", str(logs / f"delayd-{node}.errors.json")]
            for h in hs:
                imp = h.impairment
                argv += ["--queue", f"{h.queue}:{imp.delay_ms:g}:{imp.jitter_ms:g}:{imp.loss_pct:g}"]
            log = logs / f"delayd-{node}.log"
            with open(log, "wb") as out:
                p = self.net[node].popen(argv, stdout=out, stderr=subprocess.STDOUT)
            self.record.add_proc(p.pid, f"delay line in {node}")
            deadline = time.monotonic() + 10
            while not ready.exists():
                if p.poll() is not None or time.monotonic() > deadline:
                    raise EnvError(f"the delay line in {node} did not start: "
                                   f"{log.read_text(errors='replace').strip() or 'no output'}")
                time.sleep(0.02)
            for h in hs:
                self.run(node, shell.delay_rule(h.intf, h.way, h.queue))

    def _tc(self, node: str, cmd: str) -> None:
        if self.role[node] == "switch" and self._server(node) is None:
            subprocess.run(cmd, shell=True, check=True, capture_output=True)
        else:
            self.run(node, cmd)

    def _netem_available(self, node: str | None) -> bool:
        test = shell.netem_probe()
        if node is None:
            return subprocess.run(test, shell=True, capture_output=True, check=False).returncode == 0
        out = self.net[node].cmd(f"{test} >/dev/null 2>&1; echo __rc=$?")
        return "__rc=0" in out

    def stop(self) -> None:
        """Stop the network; then remove whatever the record still lists (nothing, when Mininet succeeded)."""
        net, self.net = self.net, None
        with contextlib.suppress(Exception):
            self.stop_daemons()
        if net is not None:
            # Hosts first, by killing their shells: Mininet deletes each link by running 'ip link del' in its
            # nodes' shells and waits for the answer, and a host shell still busy with an interrupted command
            # (Ctrl-C during 'up -c h1:sleep 120') would hold the teardown until that command ends. A host's
            # interfaces go with its namespace.
            for host in net.hosts:
                with contextlib.suppress(Exception):
                    host.terminate()
            with contextlib.suppress(Exception):
                net.stop()
        self.record.remove_all()
