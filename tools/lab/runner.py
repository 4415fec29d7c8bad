"""``multi6lab run``: bring the topology up once, run every trial of a scenario, write the results.

Per trial: wait for steady state, start probes on one clock (UDP both ways at 1 kHz, TCP sessions,
new-connection attempts, optional iperf3 and pcaps), inject the faults at their offsets, restore them,
collect the logs, analyse. Faults are undone in ``finally`` and the lab tears down whatever happens.
"""

from __future__ import annotations

import csv
import datetime
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any, Protocol

from multi6lab.lab import provenance, resources
from multi6lab.lab.emulation import EnvError, datapath_label, terminate_as_interrupt
from multi6lab.lab.lifecycle import Lab, wait_for
from multi6lab.results import analysis, capture, html, plots, report, soak, witness
from multi6lab.results.report import write_atomic
from multi6lab.scenarios.faults import Action, Compiled, compile_fault
from multi6lab.scenarios.model import LossBurst, Scenario
from multi6lab.topologies import shell
from multi6lab.traffic.probe import realtime_offset
from multi6lab.vocabulary import Approach

PY = sys.executable
PROBE = [PY, "-m", "multi6lab.traffic.probe"]  # run in a node's namespace
WITNESS = [PY, "-m", "multi6lab.traffic.witness"]  # the independent instrument's traffic (results.witness)
UDP_OUT, UDP_IN, TCP_BASE, NEW_PORT = 5001, 5002, 5100, 5004
STARTUP_S = 1.0  # receivers listen this much longer than the trial at most (their bound)
LATE_S = 0.3  # the UDP receivers stop this long after the senders' last probe: a later one counts as lost
FREEZE_LEAD_S = 0.05  # frozen controllers: stopped this long before the first fault (long done by then)
SENDER_START_S = 0.5  # senders wait for a common start this far ahead at least (--start-at; see start_lead)
MIN_FREE_MB = 20  # the least free space a trial starts with (its logs and plot take a few MB)


class Runner:
    def __init__(self, sc: Scenario, out: Path, progress: Callable[[str], None],
                 tick: Callable[[], str] | None = None, servers: int = 1, cluster_links: str = "vxlan"):
        """``progress`` prints a line; ``tick``, called once per finished trial, says how far the work is;
        ``servers``: how many servers the lab is spread over (Mininet's cluster mode), and ``cluster_links``
        how the links between them are carried."""
        self.sc, self.out, self.say, self.tick, self.servers = sc, out, progress, tick, servers
        self.cluster_links = cluster_links
        self.lead = SENDER_START_S  # how far ahead of now the senders' common start is set (start_lead)

    # -- addresses ----------------------------------------------------------------------------------------
    def remote_address(self, lab: Lab) -> str:
        """How the site's host addresses the remote (the plan says, by approach)."""
        return str(lab.plan.reached_at(self.sc.remote, self.sc.host)[0])

    def identities(self, lab: Lab) -> bool:
        """id-loc between two sites: both ends address each other by identity; the edges map locators."""
        kinds = {s.site.name: s.site.approach for s in lab.plan.sites}
        remote_site = next((s.site.name for s in lab.plan.sites if self.sc.remote in s.site.hosts), None)
        return remote_site is not None and all(kinds[s].profile.edges_map for s in (self.sc.site, remote_site))

    def repair_steps(self, lab: Lab, events: list[dict[str, Any]], t_fault: float,
                     t_end: float) -> dict[str, analysis.Steps]:
        """id-loc between two sites: the measured site's edge repairs outbound, the remote's edge inbound."""
        if not self.identities(lab):
            return {}
        remote_site = next(s.site.name for s in lab.plan.sites if self.sc.remote in s.site.hosts)
        return {"outbound": analysis.repair_steps(events, t_fault, t_end, self.sc.site),
                "inbound": analysis.repair_steps(events, t_fault, t_end, remote_site)}

    def site_targets(self, lab: Lab) -> list[str]:
        """The site host's addresses as the remote sees them, most preferred first (RFC 6724 order)."""
        return [str(a) for a in lab.plan.reached_at(self.sc.host, self.sc.remote)]

    def home(self, lab: Lab) -> IPv6Address | None:
        """The site host's home address, if its site runs mobility."""
        return next(h.home for sp in lab.plan.sites for h in sp.hosts if h.name == self.sc.host)

    # -- one trial ----------------------------------------------------------------------------------------
    def trial(self, lab: Lab, k: int, compiled: list[Compiled]) -> tuple[analysis.Trial, dict[str, Any]]:
        sc, tr = self.sc, self.sc.traffic
        d = self.out / f"trial-{k:02d}"
        self.check_space(k)
        d.mkdir(parents=True, exist_ok=True)
        lab.wait_steady(sc.settle_timeout_s)
        phase = sc.phase(k)  # the faults move at random against every periodic schedule (seeded)
        total = sc.warmup_s + sc.phase_span_s + sc.record_s
        r_addr, targets = self.remote_address(lab), self.site_targets(lab)
        h, r = sc.host, sc.remote
        listen = str(self.lead + total + STARTUP_S + 1.0)
        mp = ["--mptcp"] if sc.approach_label == Approach.MPTCP else []  # the TCP probes speak MPTCP
        prepare(lab, compiled)
        procs = []
        caps = self.start_pcaps(lab, d) if tr.pcap else []
        offset = realtime_offset()  # capture stamps are CLOCK_REALTIME
        if tr.cross_check:
            caps += self.start_probe_captures(lab, d)
        sinks: list[subprocess.Popen[bytes]] = []
        if tr.witness:  # its captures and sinks first: the witness's evidence is only what they see
            caps += self.start_witness_captures(lab, d)
            sinks = [lab.popen(node, [*WITNESS, "sink", "--port", str(port), "--duration", str(total + 10)])
                     for node, port in ((r, witness.OUT_PORT), (h, witness.IN_PORT))]
        receivers = [lab.popen(r, [*PROBE, "recv", "--port", str(UDP_OUT), "--duration", listen,
                                   "--out", str(d / "outbound.csv")]),
                     lab.popen(h, [*PROBE, "recv", "--port", str(UDP_IN), "--duration", listen,
                                   "--out", str(d / "inbound.csv")])]
        # The fresh clients' server lives until the last client has given up; it is stopped once they are done.
        new_server = lab.popen(h, [*PROBE, "tcp-server", "--port", str(NEW_PORT), "--duration",
                                   str(self.lead + total + STARTUP_S + 1.0 + tr.give_up_s), "--out",
                                   str(d / "new-server.csv"), *mp])
        # One session each: a server stops when its client has closed and every record is in.
        servers = [lab.popen(r, [*PROBE, "tcp-server", "--port", str(TCP_BASE + i), "--sessions", "1",
                                 "--duration", listen, "--out", str(d / f"tcp{i}-server.csv"), *mp])
                   for i in range(tr.tcp_sessions)]
        # Receivers must be counting before the first probe leaves; then senders get time to start.
        for node, port, proto in [(r, UDP_OUT, "udp"), (h, UDP_IN, "udp"), (h, NEW_PORT, "tcp"),
                                  *((r, TCP_BASE + i, "tcp") for i in range(tr.tcp_sessions))]:
            lab.wait_bound(node, port, proto)
        t0 = time.monotonic() + self.lead
        origin = t0 + sc.warmup_s + phase
        common = ["--duration", str(total), "--start-at", f"{t0:.6f}"]
        rate = str(tr.udp_rate)
        home = self.home(lab)  # a mobile node's stream keeps its home address, as its sessions do
        src = ["--src", str(home)] if home is not None else []
        procs.append(lab.popen(h, [*PROBE, "send", "--dst", r_addr, "--port", str(UDP_OUT),
                                   "--rate", rate, "--out", str(d / "outbound-send.csv"), *src, *common]))
        procs.append(lab.popen(r, [*PROBE, "send", "--dst", targets[0], "--port", str(UDP_IN),
                                   "--rate", rate, "--out", str(d / "inbound-send.csv"), *common]))
        if tr.witness:
            for node, dst, port in ((h, r_addr, witness.OUT_PORT), (r, targets[0], witness.IN_PORT)):
                procs.append(lab.popen(node, [*WITNESS, "send", "--dst", dst, "--port", str(port), "--rate", rate,
                                              "--duration", str(total + self.lead)]))
        tcp_clients = [lab.popen(h, [*PROBE, "tcp-client", "--dst", r_addr, "--port", str(TCP_BASE + i),
                                     "--interval", str(tr.tcp_interval_ms / 1000), "--out",
                                     str(d / f"tcp{i}-client.csv"), *common, *mp])
                       for i in range(tr.tcp_sessions)]
        if tr.new_sessions:
            procs.append(lab.popen(r, [*PROBE, "clients", "--targets", ",".join(targets), "--port", str(NEW_PORT),
                                       "--mean-gap", str(tr.new_session_interval_ms / 1000),
                                       "--attempt-delay", str(tr.attempt_delay_ms / 1000),
                                       "--give-up", str(tr.give_up_s), "--seed", str(sc.seed * 1000 + k),
                                       "--out", str(d / "new-sessions.csv"), *common, *mp]))
        # What writes the trial's data (iperf3 is load, not data).
        checked = [*receivers, *servers, *tcp_clients, *procs, new_server]
        if tr.iperf3_mbit:
            procs.append(lab.popen(r, ["iperf3", "-s", "-1", "-p", "5201"], stdout=subprocess.DEVNULL))
            procs.append(lab.popen(h, ["iperf3", "-c", r_addr, "-p", "5201", "-u", "-b", f"{tr.iperf3_mbit}M",
                                       "-t", str(int(total + 1))], stdout=subprocess.DEVNULL))
        frozen: dict[str, float] = {}  # when the controllers were stopped and continued (monotonic)

        def freeze(first: float) -> None:  # from just before the first fault: only the switches' own rules act
            _sleep_until(first - FREEZE_LEAD_S)
            lab.freeze_controllers(True)
            frozen["stopped"] = time.monotonic()

        try:
            injected = inject(lab, compiled, origin, phase, freeze if sc.frozen else None)
        finally:
            if sc.frozen:  # the freeze ends as SIGCONT leaves: a controller logs its backlog at once
                frozen["continued"] = time.monotonic()
                lab.freeze_controllers(False)
                (d / "controllers-frozen.json").write_text(json.dumps(frozen))
        _sleep_until(t0 + total + LATE_S)
        for p in receivers:  # the senders are done: what has not arrived by now is lost
            p.terminate()
        bound = STARTUP_S + 5 + self.sc.traffic.give_up_s
        for i, p in enumerate(tcp_clients):
            finish(p, bound)
            if "\nerror," in (d / f"tcp{i}-client.csv").read_text():  # reset: no more records will come
                servers[i].terminate()
        for p in procs:
            finish(p, bound)
        new_server.terminate()  # every client has connected or given up
        for p in sinks:
            p.terminate()
            finish(p, bound)
        for p in [*receivers, *servers, new_server]:
            finish(p, bound)
        for c in caps:
            c.terminate()
            c.wait(5)
        for p in checked + caps:  # a probe that could not write its log (a full disk) leaves a trial half-read
            if p.returncode and p.returncode > 0:
                said = b"".join(f.read() for f in (p.stdout, p.stderr) if f is not None)
                last = said.decode(errors="replace").strip().splitlines() or ["no output"]
                argv = [str(a) for a in p.args] if isinstance(p.args, list) else str(p.args).split()
                out = next((Path(argv[i + 1]).name for i, a in enumerate(argv[:-1]) if a in ("--out", "-w")), "?")
                raise EnvError(f"trial {k}: the process writing {out} failed (exit {p.returncode}: {last[-1]}); "
                               "the trial's data would be incomplete, so the run stops without a summary")
        return self.analyse(lab, k, d, compiled, t0, total, injected, offset)

    def check_space(self, k: int) -> None:
        """Refuse to start trial ``k`` when the results disk cannot hold it: twice what the last trial wrote, at
        least MIN_FREE_MB. A disk that fills anyway is caught when a probe cannot write (trial) or by the OSError."""
        last = self.out / f"trial-{k - 1:02d}"
        used = sum(f.stat().st_size for f in last.rglob("*") if f.is_file()) if last.is_dir() else 0
        need = max(MIN_FREE_MB * 2**20, 2 * used)
        free = shutil.disk_usage(self.out).free
        if free < need:
            raise EnvError(f"the results disk is full: {self.out} has {free / 2**20:.1f} MB free and trial {k} needs "
                           f"about {need / 2**20:.0f} MB; free some space or run with --out elsewhere (no summary "
                           "was written, so nothing of this run reads as a result)")

    def start_probe_captures(self, lab: Lab, d: Path) -> list[subprocess.Popen[bytes]]:
        """tcpdump where each UDP probe stream leaves the network: at the receiving host's interface."""
        return [tcpdump(lab, node, lab.plan.intfs(node)[0].name, d / f"{name}-probes.pcap", capture.bpf(port))
                for name, node, port in (("outbound", self.sc.remote, UDP_OUT), ("inbound", self.sc.host, UDP_IN))]

    def start_pcaps(self, lab: Lab, d: Path) -> list[subprocess.Popen[bytes]]:
        """tcpdump on the ISP side of every exit uplink of the site (offloads off: real checksums)."""
        sp = next(s for s in lab.plan.sites if s.site.name == self.sc.site)
        for e in sp.exits:
            lab.cmd(e.isp, shell.offload_off(e.isp_intf, rx=True) + " >/dev/null 2>&1")
        return [tcpdump(lab, e.isp, e.isp_intf, d / f"{e.name}.pcap", "ip6") for e in sp.exits]

    def start_witness_captures(self, lab: Lab, d: Path) -> list[subprocess.Popen[bytes]]:
        """tcpdump at the witness's vantage points: the site's ISP routers (results.witness.vantage)."""
        v = witness.vantage(lab.plan, self.sc.site)
        return [tcpdump(lab, node, intf, d / f"witness-{direction}-{intf}.pcap", f"udp dst port {port}")
                for direction, port, places in (("outbound", witness.OUT_PORT, v.outbound),
                                                ("inbound", witness.IN_PORT, v.inbound))
                for node, intf in places]

    def read_witness(self, d: Path, streams: dict[str, analysis.StreamResult], period: float, opened: float,
                     restore_start: float, offset: float) -> dict[str, dict[str, Any]]:
        """Each direction's outage as the witness read it, beside the probes' and how far apart they are."""
        out = {}
        for direction, port in (("outbound", witness.OUT_PORT), ("inbound", witness.IN_PORT)):
            pcaps = sorted(d.glob(f"witness-{direction}-*.pcap"))
            dropped = sum(witness.dropped((d / f"{p.stem}.tcpdump.log").read_text(errors="replace"))
                          for p in pcaps if (d / f"{p.stem}.tcpdump.log").exists())
            seen = witness.reading(witness.arrivals(pcaps, port, offset), period, opened, restore_start)
            probe = streams[direction].outage_ms
            out[direction] = {"outage_ms": seen.outage_ms, "why": seen.why, "above_ms": seen.above_ms,
                              "dropped": dropped,
                              "difference_ms": witness.difference(probe, seen.outage_ms),
                              "explanation": witness.explain(direction, probe, seen.outage_ms, dropped)}
        return out

    # -- analysis -----------------------------------------------------------------------------------------
    def analyse(self, lab: Lab, k: int, d: Path, compiled: list[Compiled], t0: float, total: float,
                injected: list[dict[str, Any]], offset: float) -> tuple[analysis.Trial, dict[str, Any]]:
        sc = self.sc
        t_end = t0 + total
        t_fault = injected[0]["t"]  # reference for detection and plots
        in_effect = injected[0]["end"]  # the fault was certainly in effect from here ...
        opened = injected[0]["start"]  # ... and not before this: the outage window opens here (results.analysis)
        restore_start = injected[-1]["start"] if len(injected) > 1 else t_end  # ... until here
        t_restore = injected[-1]["t"] if len(injected) > 1 else t_end
        period = 1.0 / sc.traffic.udp_rate
        sent = int(total * sc.traffic.udp_rate)
        streams = {}
        for name in ("outbound", "inbound"):
            streams[name] = analysis.stream(arrivals(d / f"{name}.csv"), sent, period, opened, restore_start,
                                            t_end, sc.traffic.recovery_k)
        cross = {}
        for name, port in (("outbound", UDP_OUT), ("inbound", UDP_IN)):
            pcap = d / f"{name}-probes.pcap"
            if sc.traffic.cross_check and pcap.exists():
                seen = analysis.stream(capture.probe_arrivals(pcap, port, offset), sent, period, opened,
                                       restore_start, t_end, sc.traffic.recovery_k)
                cross[name] = analysis.disagreement(streams[name], seen)
        seen_by_witness = (self.read_witness(d, streams, period, opened, restore_start, offset)
                           if sc.traffic.witness else {})
        events = sorted((e for e in lab.events() + lab.bgp_events() if t0 <= e["t"] <= t_end + 1),
                        key=lambda e: e["t"])
        (d / "controller-events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
        faulted = set().union(*(c.exits for c in compiled))
        sessions = []
        for i in range(sc.traffic.tcp_sessions):
            recs = [(int(r["seq"]), float(r["t_recv"])) for r in read_rows(d / f"tcp{i}-server.csv")]
            client = read_rows(d / f"tcp{i}-client.csv")
            err = next((r["detail"] for r in client if r["event"] == "error"), None)
            done = next((int(r["detail"]) for r in client if r["event"] == "done"), None)
            sessions.append(analysis.tcp_session(recs, done, err,
                                                 (in_effect, restore_start, sc.traffic.tcp_interval_ms / 1000)))
        ns_ms, ns_why, ns_above, fresh = None, None, None, analysis.Clients()
        if sc.traffic.new_sessions:
            att = [analysis.Attempt(float(r["t_start"]), float(r["t_end"]), r["ok"] == "1", r["address"])
                   for r in read_rows(d / "new-sessions.csv")]
            ns_ms, ns_why, ns_above = analysis.new_session_ms(att, t_fault, restore_start, in_effect)
            fresh = analysis.clients_in_fault(att, in_effect, restore_start)
        trial = analysis.Trial(
            index=k, outbound=streams["outbound"], inbound=streams["inbound"],
            detection_ms=analysis.detection_ms(events, t_fault, faulted, since=injected[0]["start"]),
            tcp=sessions, new_session_ms=ns_ms,
            new_session_reason=ns_why, new_session_above_ms=ns_above,
            false_rehomings=analysis.false_rehomings(events, t_fault, t_end, faulted,
                                                     any(isinstance(c.fault, LossBurst) for c in compiled)),
            exploration_ms=analysis.exploration_ms(events, injected[0]["start"], t_end),
            steps=self.repair_steps(lab, events, t_fault, t_end), clients=fresh, cross_check=cross,
            pairs=analysis.chosen_pairs(events, injected[0]["start"], t_end),
            lookups=analysis.lookups(events, t0, t_end), clock_offset_s=offset, fault_epoch_s=opened + offset,
            witness=seen_by_witness)
        timeline = {}
        for name in ("outbound", "inbound"):
            times = sorted(float(r["t_recv"]) for r in read_rows(d / f"{name}.csv"))
            timeline[name] = {"t": [(t - t_fault) * 1000 for t in times], "restore_ms": (t_restore - t_fault) * 1000,
                              "trial": k}
        (d / "injected.json").write_text(json.dumps(injected, indent=1))
        return trial, timeline

    # -- the whole run ------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        sc = self.sc
        self.out.mkdir(parents=True, exist_ok=True)
        trials: list[analysis.Trial] = []
        series: dict[str, list[dict[str, Any]]] = {"outbound": [], "inbound": []}
        samples: list[dict[str, int]] = []
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        origin = provenance.collect(sc.seed)  # before the lab loads the machine
        with terminate_as_interrupt(), Lab(sc.effective, self.out, progress=self.say,
                                               servers=self.servers, cluster_links=self.cluster_links) as lab:
            sp = next(s for s in lab.plan.sites if s.site.name == sc.site)
            origin["delay"] = lab.emulation.delay if lab.emulation is not None else None  # netem, or the lab's own
            compiled = [compile_fault(lab.plan, sp, f, i, sc.record_s) for i, f in enumerate(sc.faults)]
            self.lead = start_lead(lab, sc.host)
            if self.lead > SENDER_START_S:
                self.say(f"a probe takes {self.lead / 2:.1f} s to start here: senders start {self.lead:.1f} s ahead")
            for k in range(1, sc.trials + 1):
                self.say(f"trial {k}/{sc.trials}: {', '.join(c.fault.describe() for c in compiled)}")
                trial, tl = self.trial(lab, k, compiled)
                lab.check_alive()  # a daemon that died in the trial makes its numbers meaningless
                trials.append(trial)
                samples.append(resources.sample(lab))  # after every trial: what a leak would grow
                plots.trial_timeline(tl, f"{sc.name}, trial {k}: outbound {_fmt(trial.outbound)}, inbound "
                                         f"{_fmt(trial.inbound)}", self.out / f"trial-{k:02d}" / "timeline.svg")
                for name in series:
                    series[name].append(tl[name])
                self.say(f"  outbound {_fmt(trial.outbound)}, inbound {_fmt(trial.inbound)}, detection "
                         f"{'—' if trial.detection_ms is None else f'{trial.detection_ms:.1f} ms'}, TCP "
                         f"{sum(s.survived for s in trial.tcp)}/{len(trial.tcp)}"
                         + (f" · {self.tick()}" if self.tick else ""))
        summary = {
            "scenario": sc.name, "topology": sc.topology.name, "approach": sc.approach_label,
            "trigger": sc.trigger_label, "detection_bound_ms": sc.detection_bound_ms,
            "fault": "; ".join(f.describe() for f in sc.faults), "trials": len(trials),
            "datapath": datapath_label(), "started": started,
            "command": f"multi6lab run {sc.source} --trials {len(trials)}" + (
                f" --servers {self.servers} --cluster-links {self.cluster_links}" if self.servers > 1 else ""),
            "sender_lead_s": round(self.lead, 3), "servers": self.servers,
            **({"cluster_links": self.cluster_links} if self.servers > 1 else {}),
            "metrics": analysis.aggregate(trials), "provenance": origin,
            "resources": soak.verdict(samples, {"outbound": [t.outbound.outage_ms for t in trials],
                                                "inbound": [t.inbound.outage_ms for t in trials]}),
        }
        with open(self.out / "trials.csv", "w", newline="") as f:
            rows = [t.row() for t in trials]
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        with open(self.out / "resources.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["trial", *samples[0]])
            w.writeheader()
            w.writerows({"trial": k, **r} for k, r in enumerate(samples, start=1))
        for name in series:
            m = summary["metrics"][name]["outage_ms"]
            stats = (f"p50 {analysis.shown(m, 'p50', '.1f')} ms, p95 {analysis.shown(m, 'p95', '.1f')} ms" if m
                     else "not recovered before restore")
            plots.timeline(series[name], f"{sc.name}: {name} ({sc.approach_label}, {sc.trigger_label}) — {stats}",
                           self.out / f"timeline-{name}.png")
        (self.out / "table.md").write_text(report.markdown([summary]))
        # Last, and whole or not at all: a summary means the run is complete (compare --resume relies on it).
        write_atomic(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        files = [str(f.relative_to(self.out)) for f in sorted(self.out.rglob("*")) if f.is_file()]
        (self.out / "report.html").write_text(html.run_page(summary, rows, files))
        latest = self.out.parent / "latest"
        if latest.is_symlink() or not latest.exists():
            latest.unlink(missing_ok=True)
            latest.symlink_to(self.out.name)
        return summary


def _fmt(s: analysis.StreamResult) -> str:
    return f"{s.outage_ms:.1f} ms" if s.outage_ms is not None else f"— ({s.reason})"


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def arrivals(path: Path) -> list[analysis.Arrival]:
    """A probe receiver's log (``probe recv --out``), as the analysis reads a stream."""
    return [analysis.Arrival(int(r["seq"]), float(r["t_sent"]), float(r["t_recv"]), r["source"])
            for r in read_rows(path)]


def start_lead(lab: Lab, node: str) -> float:
    """How far ahead the senders' common start (``--start-at``) is set: a probe's own start-up in ``node``,
    timed three times, the slowest doubled, and SENDER_START_S at least. On a host that is the floor; where
    Python itself starts slowly (an emulated CPU: a TCG guest took about 3 s) a fixed lead would let the
    faults begin before the first probe is sent."""
    slowest = 0.0
    for _ in range(3):
        t = time.monotonic()
        lab.popen(node, [*PROBE, "--help"], stdout=subprocess.DEVNULL).wait(120)
        slowest = max(slowest, time.monotonic() - t)
    return max(SENDER_START_S, 2 * slowest)


def finish(p: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for a probe to end by itself; one still running after ``timeout`` is stopped."""
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.terminate()
        p.wait(5)


def tcpdump(lab: Lab, node: str, intf: str, pcap: Path, bpf: str) -> subprocess.Popen[bytes]:
    """tcpdump on ``node``'s ``intf`` into ``pcap`` (nanosecond stamps), its log beside it; returns once it
    listens, so nothing the trial sends is missed."""
    log = pcap.with_suffix(".tcpdump.log")
    with open(log, "wb") as err:
        p = lab.popen(node, ["tcpdump", "-n", "-U", "-i", intf, "--time-stamp-precision=nano", "-w", str(pcap), bpf],
                      stderr=err)
    wait_for(f"tcpdump on {node}'s {intf}", lambda: "listening on" in log.read_text(errors="replace"), 10)
    return p


class Actor(Protocol):
    """Where a fault's actions in a node run: a :class:`Lab` of this process, or a detached lab reached by its
    nodes' pids (:class:`multi6lab.lab.detached.Descriptor`)."""

    def node_command(self, node: str, command: str, check: bool) -> None: ...


def run_action(actor: Actor, a: Action, check: bool = True) -> None:
    """One fault action, in its node (or on the host); a failure raises unless ``check`` is off (an undo)."""
    if a.node is None:
        r = subprocess.run(a.command, shell=True, capture_output=True, text=True, check=False)
        if check and r.returncode:
            raise EnvError(f"fault action '{a.command}' failed: {r.stderr.strip()}")
    else:
        actor.node_command(a.node, a.command, check)


def prepare(actor: Actor, compiled: list[Compiled]) -> None:
    """What the faults set up before a trial's probes start (an empty nftables table), so that setting it up
    later cannot disturb the measured stream."""
    for a in (p for c in compiled for p in c.prepare):
        run_action(actor, a)


def inject(actor: Actor, compiled: list[Compiled], origin: float, phase: float,
           before: Callable[[float], None] | None = None,
           say: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """The one fault engine every experiment's trial, and a fault made by hand in a detached lab, go through
    (after :func:`prepare`): the faults' actions at ``origin`` + their times (:func:`play`), and their undo
    whatever happens. ``before`` is called with the first action's time before it is due (a scenario's frozen
    controllers are stopped there)."""
    actions = sorted(a for c in compiled for a in c.actions)
    try:
        if before is not None:
            before(origin + actions[0].at)
        return play(actor, actions, origin, phase, say)
    finally:
        for a in (u for c in compiled for u in c.undo):
            run_action(actor, a, check=False)


def play(actor: Actor, actions: list[Action], origin: float, phase: float,
         say: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """The faults' timed actions, each at ``origin`` + its time (said as it starts, where ``say`` is given):
    what every trial of every experiment injects through, and the record the analysis reads its windows from
    (a fault opens when its command *starts*).

    The fault takes effect inside the command: its midpoint is the reference (off by at most half the
    command's duration); the fault is certainly in effect from its end to the next action's start."""
    injected = []
    for a in actions:
        _sleep_until(origin + a.at)
        if say is not None:
            say(f"+{a.at:.3f} s {a.label or a.command}")
        t = time.monotonic()
        run_action(actor, a)
        done = time.monotonic()
        injected.append({"at": a.at, "phase_ms": round(phase * 1000, 3), "t": (t + done) / 2, "start": t,
                         "end": done, "command_ms": round((done - t) * 1000, 3), "what": a.label})
    return injected


def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)
