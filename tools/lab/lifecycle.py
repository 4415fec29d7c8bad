"""A running lab: the site controllers, the emulated network, and the record of both.

Each managed site has its own controller process (:class:`SiteController`): its own OpenFlow port, events file
and log, and only its own switches. They share nothing but the emulated network: the id-loc edges learn about
each other only from the messages that cross it.

Start order: plan.json and the record, the controllers (wait until they listen), the network, then wait until
every switch is reconciled, heartbeats and locator-pair probes answer, BGP has converged with every ISP's
path, hosts hold their addresses and a default route, every Linux link is resolved, and the lab is steady
(:meth:`Lab.steady_problem`). Stop order is the reverse, and runs on Ctrl-C, exceptions, SIGTERM and SIGHUP:
daemons first, then the network, then whatever the record still lists.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from multi6lab.controller.policy import CT_ZONE
from multi6lab.lab import mobility
from multi6lab.lab.cluster import Cluster
from multi6lab.lab.emulation import Emulation, EnvError, datapath, require_emulator, terminate_as_interrupt
from multi6lab.lab.phases import Phases
from multi6lab.lab.runstate import RunRecord, clean, records
from multi6lab.topologies import cluster as layout
from multi6lab.topologies import codec, frr, knot, load, shell
from multi6lab.topologies.model import Topology
from multi6lab.topologies.plan import Plan, build
from multi6lab.vm.qemu import slowdown
from multi6lab.vocabulary import Event, Trigger

READY_TIMEOUT = 30.0
RTT = re.compile(r"time=([0-9.]+) ms")  # an echo reply's round trip, as ping prints it
QUIET_S = 0.5  # steady: no path or locator-pair change for this long


@functools.cache
def slowness() -> float:
    """How much slower this machine is than the hosts the bounds below were set on (a TCG guest: vm.qemu)."""
    try:
        return slowdown(Path("/proc/cmdline").read_text())
    except OSError:
        return 1.0


def wait_for(what: str, cond: Callable[[], bool], timeout: float, interval: float = 0.05) -> None:
    """Poll ``cond`` until true; raise EnvError naming ``what`` after ``timeout`` seconds (stretched by
    :func:`slowness` on an emulated CPU)."""
    timeout *= slowness()
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise EnvError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _none_missing(want: set[str], have: set[str], saying: str) -> str | None:
    """None once ``have`` holds all of ``want``; else ``saying`` and the first few missing."""
    missing = sorted(want - have)
    if not missing:
        return None
    return f"{saying} {', '.join(missing[:4])}" + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")


def wait_settled(what: str, problem: Callable[[], str | None], timeout: float, interval: float = 0.2) -> None:
    """Poll ``problem`` until it finds none; after ``timeout`` seconds (stretched as :func:`wait_for`'s) raise
    EnvError naming the last one."""
    timeout *= slowness()
    deadline = time.monotonic() + timeout
    while (found := problem()) is not None:
        if time.monotonic() > deadline:
            raise EnvError(f"timed out after {timeout:.0f} s waiting for {what}: {found}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def controller_argv(brief: Path, port: int, events: Path, sites: Sequence[str],
                    keys: Mapping[str, Path] | None = None, host: str = "127.0.0.1") -> list[str]:
    exe = Path(sys.executable).with_name("multi6lab")
    head = [str(exe)] if exe.exists() else [sys.executable, "-m", "multi6lab.cli"]
    argv = [*head, "controller", "--brief", str(brief), "--host", host, "--port", str(port), "--events", str(events)]
    argv += [a for site in sites for a in ("--site", site)]
    return argv + [a for site, key in (keys or {}).items() for a in ("--mapping-key", f"{site}={key}")]


def read_events(path: Path) -> list[dict[str, Any]]:
    """One JSON object per line; a line being written as we read is skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


class SiteController:
    """A controller process: one site's (the default), or a few sites' in a large lab. A restart keeps its
    port, so its switches reconnect to the new one."""

    def __init__(self, sites: Sequence[str], workdir: Path, keys: Mapping[str, Path] | None = None):
        """``keys``: the files holding the id-loc sites' own mapping-service secrets, by site."""
        self.sites = tuple(sites)
        self.site = sites[0] if len(sites) == 1 else f"{sites[0]}-{sites[-1]}"  # its name: its site's, if one
        self.keys = dict(keys or {})
        self.brief_path = workdir / f"controller-{self.site}.brief.json"  # its sites' part of the plan only
        self.events_path = workdir / f"controller-{self.site}.events.jsonl"
        self.log_path = workdir / f"controller-{self.site}.log"
        self.port = free_port()
        self.host = "127.0.0.1"  # where it listens (Lab sets it: the management address over several servers)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, record: RunRecord, unsupported: Collection[str] = ()) -> None:
        """``unsupported``: id-loc sites whose edges run without id-loc support (no key: they never ask the
        mapping service, and talk plain IPv6 to everyone)."""
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115
        keys = {site: key for site, key in self.keys.items() if site not in unsupported}
        self.proc = subprocess.Popen(
            controller_argv(self.brief_path, self.port, self.events_path, self.sites, keys, self.host),
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        record.add_proc(self.proc.pid, f"multi6lab controller of site{'s' * (len(self.sites) > 1)} {self.site}")

    def wait_listening(self) -> None:
        wait_for(f"site {self.site}'s controller to listen on port {self.port}",
                 lambda: self.alive() and listening(self.port, self.host), 15)

    def alive(self) -> bool:
        """True while it runs; EnvError with the end of its log once it has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise EnvError(f"site {self.site}'s controller exited (code {self.proc.returncode}):\n{tail}")
        return True

    def signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)

    def stopped(self) -> bool:
        """Whether the process is stopped by a signal (state T in /proc/PID/stat); False once it has exited."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text() if self.proc is not None else ""
        except FileNotFoundError:
            return False
        return stat.rpartition(")")[2].split()[:1] == ["T"]

    def stop(self) -> None:
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            p.terminate()
            p.send_signal(signal.SIGCONT)  # a frozen controller receives the SIGTERM only once continued
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def close(self) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None

    def events(self) -> list[dict[str, Any]]:
        return read_events(self.events_path)


class Lab:
    def __init__(self, topology: Topology, workdir: str | Path, progress: Callable[[str], None] | None = None,
                 unsupported: Collection[str] = (), sites_per_controller: int = 1, servers: int = 1,
                 cluster_links: str = layout.LINK_KINDS[0], contacts: Collection[tuple[str, str]] | None = None):
        """``topology``: the checked model, as run (a scenario's overrides applied). ``unsupported``: id-loc
        sites whose edges start without id-loc support, to gain it at ``restart_controller(site)``.
        ``sites_per_controller``: how many sites share a controller process (1: each site its own, as the
        experiments run; more spares a large lab a Python start-up and ~80 MB per site). ``servers``: how
        many servers the lab is spread over, this machine and emulated ones (Mininet's cluster mode, placed by
        :func:`multi6lab.topologies.cluster.place`), their links between servers ``cluster_links``.
        ``contacts``: the (from, to) id-loc sites that make first contact (default: every ordered pair)."""
        self.plan: Plan = build(topology)
        self.servers = layout.server_names(servers)
        self.where = layout.place(self.plan, self.servers)
        self.cluster_links = cluster_links
        self.cluster: Cluster | None = None
        self.unsupported = set(unsupported)
        self.contacts = None if contacts is None else set(contacts)
        self.workdir = Path(workdir)
        self.plan_path = self.workdir / "plan.json"  # what the run built; each controller gets its brief of it
        self.run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.progress = progress or (lambda msg: None)
        self.record: RunRecord | None = None
        # Each id-loc site's secret for the mapping service: its controller gets its own, Knot all of them.
        self.mapping_keys = knot.new_secrets(knot.mapped_sites(self.plan))
        self.mobility_keys = mobility.new_keys(self.plan)  # each mobile host's, shared with the home agent
        self.mobility_agents: dict[str, subprocess.Popen[bytes]] = {}
        managed = [sp.site.name for sp in self.plan.sites if sp.site.approach.profile.controlled]
        size = max(1, sites_per_controller)
        groups = [managed[i:i + size] for i in range(0, len(managed), size)]
        controllers = [SiteController(g, self.workdir,
                                      {s: key for s in g if (key := self.key_path(s)) is not None}) for g in groups]
        self.controllers = {c.site: c for c in controllers}  # by name: a site's own is named for it
        self.controller_of = {site: c for c in controllers for site in c.sites}
        self.emulation: Emulation | None = None
        self.phases = Phases()  # where bring-up and teardown spend their time (bringup.json)
        self._signals: contextlib.AbstractContextManager[None] | None = None

    # -- life cycle ------------------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        require_emulator("building a network")
        clean()  # leftovers of runs whose owner died (killed with SIGKILL, machine trouble)
        self.check_machine_free()
        self.check_names_free()
        # Whoever holds the lab (the CLI, a test, a script started in the background with SIGINT ignored),
        # SIGINT, SIGTERM and SIGHUP unwind through the teardown instead of ending the process on the spot.
        if threading.current_thread() is threading.main_thread():
            self._signals = terminate_as_interrupt()
            self._signals.__enter__()
        self.workdir.mkdir(parents=True, exist_ok=True)
        codec.write(self.plan, self.plan_path)
        for c in self.controllers.values():
            codec.write(self.plan.brief(c.sites), c.brief_path)
        for site, secret in self.mapping_keys.items():
            path = self.key_path(site)
            assert path is not None
            path.parent.mkdir(exist_ok=True, mode=0o700)
            path.touch(mode=0o600)
            path.write_text(secret + "\n")
        mobility.write_keys(self.plan, self.workdir, self.mobility_keys)
        self.record = RunRecord.create(self.run_id)
        phase = self.phases
        try:
            host = "127.0.0.1"  # where the controllers listen: the management address once servers join
            if len(self.servers) > 1:
                with phase("servers start"):
                    self.cluster = Cluster(self.where, self.servers, self.record.state_dir, self.cluster_links)
                    self.cluster.start(self.record)
                host = str(layout.MGMT_HERE)
            for c in self.controllers.values():
                c.host = host
            with phase("controllers start"):
                for c in self.controllers.values():
                    c.start(self.record, self.unsupported)
                for c in self.controllers.values():
                    c.wait_listening()
            self.progress(f"building {self.plan.topology.name}: {len(self.plan.nodes)} nodes, "
                          f"{len(self.plan.links)} links")
            ports = {}
            for n in self.plan.switches:
                where = self.plan.site_by_dpid(n.dpid) if n.dpid is not None else None
                if where is not None and not n.standalone:
                    ports[n.name] = self.controller_of[where[0].site.name].port
            self.emulation = Emulation(self.plan, self.record, ports, logdir=self.workdir,
                                       mapping_keys=self.mapping_keys, phases=phase, cluster=self.cluster,
                                       controller_host=host)
            with phase("network"):
                self.emulation.start()
            with phase("mobility agents start"):
                self.start_mobility()
            with phase("ready"):
                self._past_envelope(self.wait_ready)
            with phase("steady"):
                self._past_envelope(self.wait_steady)
        except BaseException:
            self.write_phases()  # how far it came, and how long each step took
            self.stop()
            raise
        self.write_phases()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _past_envelope(self, wait: Callable[[], None]) -> None:
        """A bring-up that timed out says so, and, on the userspace datapath, whether the lab asks more than
        was measured to come up and what to change (:func:`multi6lab.topologies.load.advice`)."""
        try:
            wait()
        except EnvError as exc:
            hint = load.advice(self.plan.topology, len(self.controllers)) \
                if datapath() == "user" else None
            if hint is None:
                raise
            raise EnvError(f"{exc}. This lab may be larger than this machine holds: {hint}") from None

    def key_path(self, site: str) -> Path | None:
        return self.workdir / "keys" / f"{site}.key" if site in self.mapping_keys else None

    @staticmethod
    def check_machine_free() -> None:
        """One lab at a time per machine, whatever its names: a second would share the CPUs and every figure of
        both runs would be wrong (a scale run once slipped in beside a comparison, whose topologies have other
        names). The same process may hold two (the names check then speaks); dead owners were cleaned up."""
        others = [r for r in records() if r.owner != os.getpid() and r.owner_alive()]
        if others:
            r = others[0]
            raise EnvError(f"run {r.run_id} (pid {r.owner}) has a lab up on this machine; a second lab would share "
                           "its CPUs and the figures of both would be wrong: let it finish or stop it first")

    def check_names_free(self) -> None:
        """Bridges and switch-side interfaces live in the root namespace: two runs cannot share names."""
        bridges = set(subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True, text=True,
                                     check=False).stdout.split())
        taken = sorted(n.name for n in self.plan.switches if n.name in bridges)
        intfs = [i.name for lk in self.plan.links for i in (lk.a, lk.b)]
        taken += sorted(n for n in intfs if Path(f"/sys/class/net/{n}").exists())
        if not taken:
            return
        owners = [f"{r.run_id} (pid {r.owner})" for r in records() if set(r.bridges + r.intfs) & set(taken)]
        who = f"run {', '.join(owners)} is using" if owners else "something outside multi6lab is using"
        raise EnvError(f"{who} {', '.join(taken[:4])}{' ...' if len(taken) > 4 else ''}; stop it first "
                       "(or 'multi6lab clean --all' if it is one of ours).")

    def _controllers_alive(self) -> bool:
        return all(c.alive() for c in self.controllers.values())

    def start_mobility(self) -> None:
        """The Mobile IPv6 agents of a lab with mobility sites, each logging beside the controllers."""
        for node, argv in mobility.agents(self.plan, self.workdir, self.mobility_keys).items():
            with open(self.workdir / f"mobility-{node}.log", "ab") as log:
                self.mobility_agents[node] = self.popen(node, argv, stdout=log, stderr=subprocess.STDOUT)

    def _agents_alive(self) -> None:
        for node, p in self.mobility_agents.items():
            if p.poll() is not None:
                tail = (self.workdir / f"mobility-{node}.log").read_text(errors="replace")[-2000:]
                raise EnvError(f"the mobility agent in {node} exited (code {p.returncode}):\n{tail}")

    def stop_controller(self, site: str | None = None) -> None:
        """Stop one site's controller (default: every one); its switches keep their rules."""
        for c in self.controllers.values():
            if site is None or site in c.sites:
                c.stop()

    def freeze_controllers(self, frozen: bool) -> None:
        """Stop (SIGSTOP) or continue every site's controller: while stopped, only the switches' own rules act.
        Returns once each is in the state asked for (a signal is delivered asynchronously)."""
        for c in self.controllers.values():
            c.signal(signal.SIGSTOP if frozen else signal.SIGCONT)
        wait_for(f"the controllers to be {'stopped' if frozen else 'continued'}",
                 lambda: all(c.stopped() == frozen for c in self.controllers.values()), 2.0, interval=0.001)

    def restart_controller(self, site: str | None = None) -> None:
        """Kill a site's controller (default: every one) and start a new one on the same port: its switches
        reconnect and are reconciled. A site that ran without id-loc support has it from now on."""
        assert self.record is not None
        chosen = [c for c in self.controllers.values() if site is None or site in c.sites]
        for c in chosen:
            c.stop()
            self.unsupported -= set(c.sites)
            c.start(self.record, self.unsupported)
        for c in chosen:
            c.wait_listening()

    def write_phases(self) -> None:
        """``bringup.json`` in the run's folder: each step's seconds, the lab's size, and the teardown once done."""
        (self.workdir / "bringup.json").write_text(json.dumps({
            "nodes": len(self.plan.nodes), "links": len(self.plan.links), "sites": len(self.plan.sites),
            "steps": self.phases.as_dict(nested=False), "detail": self.phases.as_dict()}, indent=1))

    def stop(self) -> None:
        try:
            with self.phases("teardown"):
                self._teardown()
            if (self.workdir / "bringup.json").exists():
                self.write_phases()
        finally:
            if self._signals is not None:
                signals, self._signals = self._signals, None
                signals.__exit__(None, None, None)

    def _teardown(self) -> None:
        for c in self.controllers.values():
            with contextlib.suppress(Exception):
                c.close()
        if self.emulation is not None:
            if any(sp.site.approach.profile.edges_map for sp in self.plan.sites):
                # The id-loc edges' plain connections, in the zone that is theirs alone: the kernel's tracker
                # outlives the lab, and a TCP entry would live a day (the userspace datapath's goes with its
                # last bridge).
                subprocess.run(["ovs-appctl", "--timeout=5", "dpctl/flush-conntrack", f"zone={CT_ZONE}"],
                               capture_output=True, check=False)
            self.emulation.stop()
            self.emulation = None
        if self.cluster is not None:  # the servers themselves end with the record's processes
            self.cluster.stop()
            self.cluster = None
        if self.record is not None:
            self.record.remove_all()
            self.record = None

    # -- readiness --------------------------------------------------------------------------------------
    def events(self) -> list[dict[str, Any]]:
        """Every site controller's and mobility agent's events, on the one monotonic clock, in time order."""
        agents = [e for node in self.mobility_agents for e in read_events(mobility.events_path(self.workdir, node))]
        return sorted((*(e for c in self.controllers.values() for e in c.events()), *agents),
                      key=lambda e: float(e["t"]))

    def reconciled_since(self, since: float) -> set[int]:
        return {e["dpid"] for e in self.events()
                if e["event"] == Event.RULES_SENT and e.get("cause") == "reconcile" and e["t"] >= since}

    def wait_ready(self, since: float = 0.0) -> None:
        dpids = {n.dpid for n in self.plan.switches if not n.standalone}
        phase = self.phases
        self.progress("waiting for switches to connect and hosts to autoconfigure")
        with phase("switches connect"):
            wait_for("every switch to connect to the controller",
                     lambda: self._controllers_alive() and dpids <= self.reconciled_since(since), READY_TIMEOUT)
        hb = {e.name for sp in self.plan.sites if Trigger.HEARTBEAT in sp.site.triggers
              and not sp.site.approach.profile.edges_map for e in sp.exits}  # id-loc: the pair probes, below
        if hb:
            with phase("heartbeats"):
                wait_settled("every exit's heartbeats", lambda: _none_missing(
                    hb, {e["exit"] for e in self.events() if e["event"] == Event.HEARTBEAT_UP and e["t"] >= since},
                    "no heartbeat answered yet through"), READY_TIMEOUT, interval=0.05)
        if self.emulation is not None and self.emulation.routers:
            self.progress("waiting for BGP sessions and routes to converge")
            try:
                with phase("BGP"):
                    wait_settled("BGP to converge", self.bgp_problem, READY_TIMEOUT)
            except EnvError as exc:
                raise EnvError(f"{exc} (FRR's logs: {self.workdir / 'frr'})") from None
        with phase("hosts autoconfigure"):
            for sp in self.plan.sites:
                for h in sp.hosts:
                    wait_for(f"{h.name} to autoconfigure {', '.join(map(str, h.addresses.values()))}",
                             lambda h=h: self._host_ready(h.name, [str(a) for a in h.addresses.values()]),
                             READY_TIMEOUT)
        if since == 0.0 and self.emulation is not None:  # first start only: not after a controller restart
            with phase("link peers resolved"):
                for n in self.plan.nodes:
                    for cmd in shell.when_ready(n.config):
                        self.emulation.run(n.name, cmd)
        mapped = set(knot.mapped_sites(self.plan)) - self.unsupported
        if mapped:
            with phase("mapping registrations"):
                wait_for(f"the mapping service to accept the locators of {', '.join(sorted(mapped))}",
                         lambda: mapped <= {e["site"] for e in self.events()
                                            if e["event"] == Event.MAPPING_REGISTERED and e["t"] >= since},
                         READY_TIMEOUT)
        with phase("first contact"):
            self.first_contact(since)
        if self.mobility_agents:
            self.progress("waiting for the mobile nodes' bindings")
            with phase("mobile nodes"):
                wait_settled("the mobile nodes' bindings", self.mobility_problem, READY_TIMEOUT)

    def mobility_problem(self) -> str | None:
        self._agents_alive()
        return mobility.ready_problem(self.plan, self.events())

    def first_contact(self, since: float) -> None:
        """id-loc edges know nobody until packets reach them: a host of each id-loc site pings one of every other
        (or of those in the lab's ``contacts``), as the first packet of any session would do; its edge looks the
        far site up and holds the echo until the answer; then the pair probes start. After a controller restart
        its edge has forgotten everything."""
        idloc = {sp.site.name: sp for sp in self.plan.sites if sp.site.approach.profile.edges_map
                 and sp.site.name not in self.unsupported}
        routes = {(a, b) for a in idloc for b in idloc if a != b and (self.contacts is None or (a, b) in self.contacts)}
        if not routes or self.emulation is None:
            return
        self.progress(f"first contact between the id-loc sites ({len(routes)} directed pairs, each edge looks its "
                      "peers up)")
        for a, b in ((a, b) for a in idloc for b in idloc if (a, b) in routes):  # in the plan's order
            self.emulation.run(idloc[a].hosts[0].name, shell.reach(idloc[b].hosts[0].addresses["identity"]))
        wait_for("locator-pair probes between the id-loc sites",
                 lambda: routes <= {(e["src_site"], e["dst_site"]) for e in self.events()
                                    if e["event"] == Event.PAIR_UP and e["t"] >= since}, READY_TIMEOUT)

    def check_alive(self) -> None:
        """Raise EnvError if a controller or a routing daemon of this run died: a crash is reported as one,
        not waited on as a slow convergence."""
        self._controllers_alive()
        assert self.record is not None
        dead = [p.what for p in self.record.procs if p.what.startswith("FRR ") and not p.alive()]
        if dead:
            raise EnvError(f"{dead[0]} exited during the run (a crash, not slow convergence); FRR's logs are "
                           f"copied to {self.workdir / 'frr'} when the lab stops")

    def steady_problem(self) -> str | None:
        """What keeps the lab from its steady state, or None: every exit usable, the id-loc pairs back on the
        preferred pair, no icmp hold, no path or pair change for QUIET_S, BGP converged on the primary ISP, and
        no host holding a deprecated prefix. Bring-up ends here, and every trial starts here."""
        self.check_alive()
        if self.emulation is not None and self.emulation.routers and (problem := self.bgp_problem()):
            return problem
        idloc = [s for s in self.plan.sites if s.site.approach.profile.edges_map]
        preferred = {(a.site.name, b.site.name): (a.exits[0].name, b.exits[0].name)
                     for a in idloc for b in idloc if a is not b}
        pairs = dict(preferred)
        dead: set[str] = set()
        held: set[tuple[str, str]] = set()  # icmp trigger: destinations still kept away from an exit
        last_change = 0.0
        for e in self.events():
            if e["event"] in (Event.DEST_DEAD, Event.DEST_ALIVE):
                (held.add if e["event"] == Event.DEST_DEAD else held.discard)((e["exit"], e["dst"]))
            elif e["event"] in (Event.PATH_DEAD, Event.PATH_ALIVE):
                (dead.add if e["event"] == Event.PATH_DEAD else dead.discard)(e["exit"])
                last_change = e["t"]
            elif e["event"] in (Event.PAIR_SELECTED, Event.PAIR_DEAD, Event.EXPLORING):
                last_change = e["t"]
                if e["event"] == Event.PAIR_SELECTED:
                    pairs[(e["src_site"], e["dst_site"])] = (e["exit"], e["dst_exit"])
        if dead:
            return f"exit {sorted(dead)[0]} is not usable"
        if time.monotonic() - last_change < QUIET_S:
            return f"paths or locator pairs changed less than {QUIET_S} s ago"
        if moved := sorted(k for k in preferred if pairs[k] != preferred[k]):
            return f"locator pair {moved[0][0]} -> {moved[0][1]} is not back on its preferred pair"
        if held:
            return f"the icmp trigger still keeps {sorted(held)[0][1]} away from {sorted(held)[0][0]}"
        for sp in self.plan.sites:
            if sp.site.approach.profile.per_isp_addresses:
                for h in sp.hosts:
                    if "deprecated" in self.cmd(h.name, shell.addresses(self.plan.intfs(h.name)[0].name)):
                        return f"{h.name} still holds a deprecated prefix"
        return self.mobility_problem() if self.mobility_agents else None

    def wait_steady(self, timeout: float = READY_TIMEOUT) -> None:
        wait_settled("the lab to settle", self.steady_problem, timeout, interval=0.1)

    def bgp_problem(self) -> str | None:
        """What keeps the routing sites from their preferred state (a session down, a route elsewhere), or None."""
        em = self.emulation
        assert em is not None
        for name, r in em.routers.items():
            try:
                up = frr.established(json.loads(em.bgp(name, "show bgp summary json") or "{}"))
            except ValueError:
                return f"{name}'s bgpd does not answer"
            down = [n.name for n in r.neighbors if str(n.address) not in up]
            if down:
                return f"BGP session {name} - {down[0]} is not established"
        for p in frr.expected_paths(self.plan):
            try:
                missing = p.missing(json.loads(em.bgp(p.node, f"show bgp ipv6 unicast {p.prefix} json") or "{}"))
            except ValueError:
                return f"{p.node}'s bgpd does not answer"
            if missing:
                return f"{p.node} has no BGP path for {p.prefix} from AS {min(missing)} yet"
        for c in frr.steady_routes(self.plan):
            if not c.holds(self.cmd(c.node, shell.route_show(c.prefix))):
                return f"{c.node} does not route {c.prefix} out of {c.dev}"
        return None

    def bgp_events(self) -> list[dict[str, Any]]:
        """Exit-ISP session changes from every bgpd's log, on the monotonic clock (routing approach)."""
        if self.emulation is None or not self.emulation.routers:
            return []
        exits = {e.name for sp in self.plan.sites if sp.site.approach.profile.bgp for e in sp.exits}
        offset = time.monotonic() - time.time()
        out = []
        for name in self.emulation.routers:
            log = self.emulation.frr_dir(name) / "bgpd.log"
            if log.exists():
                out += frr.session_events(log.read_text(errors="replace"), name, exits, offset)
        return sorted(out, key=lambda e: e["t"])

    def _host_ready(self, host: str, addrs: list[str]) -> bool:
        out = self.cmd(host, "ip -6 addr show; ip -6 route show default")
        return all(a in out for a in addrs) and "tentative" not in out and "default via" in out

    # -- helpers ----------------------------------------------------------------------------------------
    def node(self, name: str) -> Any:
        assert self.emulation is not None
        return self.emulation.node(name)

    def here(self, name: str) -> bool:
        """Whether node ``name`` runs on this machine (always, unless the lab is spread over servers)."""
        return self.where[name] == layout.HERE

    def cmd(self, node: str, command: str) -> str:
        return str(self.node(node).cmd(command))

    def node_command(self, node: str, command: str, check: bool) -> None:
        """A fault action in ``node`` (:func:`multi6lab.lab.runner.run_action`); a failure raises unless
        ``check`` is off (an undo)."""
        if check:
            self.emulation.run(node, command)  # type: ignore[union-attr]
        else:
            self.cmd(node, command)

    def ping_ms(self, node: str, address: str, count: int = 1) -> float | None:
        """The median round trip (ms) of ``count`` echoes 20 ms apart from ``node``, or None if none was answered
        within 3 s."""
        rtts = [float(m) for m in RTT.findall(self.cmd(node, f"ping -6 -n -c{count} -i 0.02 -W3 {address}"))]
        return round(statistics.median(rtts), 3) if rtts else None

    def wait_bound(self, node: str, port: int, proto: str = "udp", timeout: float = 10.0) -> None:
        """Wait until a process in ``node`` has bound ``port`` (a probe's receiver is ready to count)."""
        wait_for(f"{node} to listen on {proto} port {port}",
                 lambda: f":{port} " in self.cmd(node, shell.listening(port, proto)) + " ", timeout)

    def popen(self, node: str, argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        """Start a process in ``node``'s namespace, recorded so teardown ends it."""
        assert self.record is not None
        p: subprocess.Popen[bytes] = self.node(node).popen(argv, **kw)
        self.record.add_proc(p.pid, f"{argv[0]} in {node}")
        return p
