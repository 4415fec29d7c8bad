"""Helpers for integration tests: traffic through a real lab and checks that nothing is left behind."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from multi6lab.lab.lifecycle import Lab, slowness
from multi6lab.lab.runner import start_lead
from multi6lab.topologies import loader, shell
from multi6lab.topologies.plan import Plan
from multi6lab.traffic.probe import RECORD_SIZE

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
PROBE = [PY, "-m", "multi6lab.traffic.probe"]


def topology(name: str) -> Path:
    return ROOT / "topologies" / f"{name}.yaml"


def routing_topology(workdir: Path) -> Path:
    """figure1 with its site on the routing approach: BGP 1/3 s and BFD 50 ms x3 on the exit sessions."""
    path = workdir / "figure1-routing.yaml"
    path.write_text(topology("figure1").read_text().replace("approach: nptv6", "approach: routing").replace(
        "triggers: [link, heartbeat]",
        "triggers: [routing]\n    bgp: {keepalive_s: 1, hold_s: 3, bfd: {interval_ms: 50, multiplier: 3}}"))
    return path


@contextlib.contextmanager
def lab_with_approach(name: str, approach: str, workdir: Path) -> Iterator[Lab]:
    """A lab of a shipped topology whose sites run ``approach`` instead of the file's own."""
    topo = workdir / f"{name}-{approach}.yaml"
    topo.write_text(topology(name).read_text().replace("approach: nptv6", f"approach: {approach}"))
    with Lab(loader.load(topo), workdir) as lab:
        yield lab


def udp_exchange(lab: Lab, sender: str, receiver: str, dst: str, *, count: int = 50, rate: float = 500,
                 src: str | None = None, port: int = 5001, listen: float | None = None,
                 then: Callable[[], object] | None = None) -> list[dict[str, str]]:
    """Send ``count`` probes from ``sender`` to ``dst``; return what ``receiver`` got (seq, times, source).
    ``then`` runs once the sender is done, while the receiver still listens."""
    wd = lab.workdir
    tag = f"{sender}-{receiver}-{port}-{time.monotonic_ns()}"
    rout, sout = wd / f"recv-{tag}.csv", wd / f"send-{tag}.csv"
    duration = count / rate
    # The receiver outlasts the sender's own start-up, which a slow CPU stretches to seconds (a TCG guest).
    r = lab.popen(receiver, [*PROBE, "recv", "--port", str(port),
                             "--duration", str(listen or lead(lab, sender) + duration + 1.0), "--out", str(rout)])
    lab.wait_bound(receiver, port)
    argv = [*PROBE, "send", "--dst", dst, "--port", str(port), "--rate", str(rate),
            "--duration", str(duration), "--out", str(sout)]
    if src:
        argv += ["--src", src]
    s = lab.popen(sender, argv)
    s.wait(duration + 10)
    if then is not None:
        then()
    r.wait(duration + 15)
    with open(rout) as f:
        return list(csv.DictReader(f))


_LEADS: dict[Path, float] = {}


def lead(lab: Lab, node: str) -> float:
    """How long a probe takes to start in this lab, doubled (the runner's ``start_lead``), timed once per lab."""
    if lab.workdir not in _LEADS:
        _LEADS[lab.workdir] = start_lead(lab, node)
    return _LEADS[lab.workdir]


def netem_available() -> bool:
    """Whether this kernel has the netem qdisc (tried on a dummy interface made and removed here)."""
    probe = subprocess.run("ip link add m6lnetem type dummy && tc qdisc add dev m6lnetem root netem delay 1ms",
                           shell=True, capture_output=True, check=False)
    subprocess.run(["ip", "link", "del", "m6lnetem"], capture_output=True, check=False)
    return probe.returncode == 0


def craft(lab: Lab, node: str, iface: str, scapy_expr: str) -> str:
    """Send one scapy-built frame from ``node`` (e.g. a spoofed source); ``scapy_expr`` builds the packet."""
    code = f"from scapy.all import *; sendp({scapy_expr}, iface={iface!r}, verbose=False)"
    return lab.cmd(node, f"{PY} -c {code!r}")


PACED = """
import socket, sys, time
{imports}
iface, rate, ready = sys.argv[1], float(sys.argv[2]), sys.argv[3]
frames = [bytes(f) for f in {frames}]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
t0 = time.monotonic()
for n, frame in enumerate(frames):
    time.sleep(max(0.0, t0 + n / rate - time.monotonic()))
    s.send(frame)
    if n == min(10, len(frames) - 1):
        open(ready, "w").close()
print(f"sent {{len(frames)}} in {{time.monotonic() - t0:.3f}} s")
"""


def paced(lab: Lab, node: str, iface: str, frames: str, rate: float, imports: str = "") -> subprocess.Popen[bytes]:
    """Send the frames that the Python expression ``frames`` builds (after ``imports``) out of ``node``'s
    ``iface`` from a raw socket, ``rate`` a second on an absolute schedule: a forger's steady stream. Returns
    once the first frames are out; the process prints "sent N in S s" when done."""
    ready = lab.workdir / f"paced-{node}-{time.monotonic_ns()}"
    p = lab.popen(node, [PY, "-c", PACED.format(imports=imports, frames=frames), iface, str(rate), str(ready)],
                  stdout=subprocess.PIPE)
    wait_until(ready.exists, 10, f"the frames from {node} to start")
    return p


def nft_counter(lab: Lab, node: str, name: str) -> int:
    out = lab.cmd(node, f"nft list counter ip6 multi6lab {name}")
    return int(out.split("packets")[1].split()[0])


def ovs_flows(bridge: str) -> list[str]:
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge, "--no-stats"],
                         capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if "cookie=" in line or "priority=" in line]


def leftovers(plan: Plan, pids: list[int]) -> list[str]:
    """What of a finished run still exists: its bridges, its root-namespace interfaces, its processes."""
    left = []
    bridges = set(subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split())
    left += [f"bridge {n.name}" for n in plan.switches if n.name in bridges]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    names = {i.name for lk in plan.links for i in (lk.a, lk.b)}
    left += [f"interface {n}" for n in names if f" {n}@" in links or f" {n}:" in links]
    for pid in pids:
        if Path(f"/proc/{pid}").exists():
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if stat != "Z":
                left.append(f"process {pid}")
    return left


def wait_until(cond: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    timeout *= slowness()  # a bound on a hang, stretched on an emulated CPU as the lab's own are
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Capture:
    """tcpdump on one node's interface (offloads off, so checksums on the wire are real), as a context."""

    def __init__(self, lab: Lab, node: str, intf: str, bpf: str, name: str):
        self.lab, self.node, self.intf, self.bpf = lab, node, intf, bpf
        self.pcap = lab.workdir / f"{name}.pcap"
        self.err = lab.workdir / f"{name}.tcpdump.log"
        self.proc: Any = None

    def __enter__(self) -> Capture:
        self.lab.cmd(self.node, shell.offload_off(self.intf, rx=True) + " >/dev/null 2>&1")
        with open(self.err, "wb") as err:
            self.proc = self.lab.popen(self.node, ["tcpdump", "-n", "-U", "-i", self.intf, "-w", str(self.pcap),
                                                   self.bpf], stderr=err)
        wait_until(lambda: "listening on" in self.err.read_text(errors="replace"), 10, "tcpdump to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def packets(self) -> list[Any]:
        from scapy.utils import rdpcap

        return list(rdpcap(str(self.pcap)))

    def wait_for(self, n: int, timeout: float = 5.0) -> None:
        """tcpdump writes what it has read; wait until ``n`` packets are on disk before stopping it."""
        wait_until(lambda: len(self.packets()) >= n, timeout, f"{n} packets in {self.pcap.name}")


def events(lab: Lab, name: str, since: float = 0.0, **fields: Any) -> list[dict[str, Any]]:
    return [e for e in lab.events() if e["event"] == name and e["t"] >= since
            and all(e.get(k) == v for k, v in fields.items())]


def monotonic() -> float:
    return time.monotonic()


def udp_datagrams(lab: Lab, node: str) -> int:
    """UDP datagrams ``node``'s stack has delivered to its sockets so far (the namespace's own counter)."""
    out = lab.cmd(node, "grep -w Udp6InDatagrams /proc/net/snmp6")
    return int(out.split()[1])


def wait_datagrams(lab: Lab, node: str, since: int, n: int, timeout: float = 10.0) -> None:
    """Wait until ``node`` has received ``n`` more UDP datagrams than ``since`` (a stream is flowing)."""
    wait_until(lambda: udp_datagrams(lab, node) - since >= n, timeout, f"{n} datagrams at {node}")


@dataclasses.dataclass
class Session:
    """A TCP probe session between two nodes (records every 10 ms), started by :func:`tcp_session`."""

    lab: Lab
    server_node: str
    port: int
    server: Any
    client: Any
    server_log: Path
    client_log: Path

    def wait(self, timeout: float = 15) -> None:
        self.client.wait(timeout)
        self.server.wait(timeout)

    def wait_records(self, n: int, timeout: float = 10.0) -> None:
        """Wait until the server has received ``n`` records: the session is carrying data. Read from the
        kernel's counters of the server's connected sockets (every MPTCP subflow counts), since the probe
        writes its log only when it ends."""
        def received() -> int:
            out = self.lab.cmd(self.server_node, f"ss -Htin state established '( sport = :{self.port} )'")
            return sum(int(x) for x in re.findall(r"bytes_received:(\d+)", out))

        wait_until(lambda: received() >= n * RECORD_SIZE, timeout, f"{n} records of the session on port {self.port}")

    def survived(self) -> bool:
        """No error at the client, and its last record arrived at the server."""
        log = self.client_log.read_text()
        if "done," not in log:
            return False
        last = log.split("done,")[1].split(",")[1].strip()
        return any(line.split(",")[1] == last for line in self.server_log.read_text().splitlines()[1:])


def tcp_session(lab: Lab, client: str, server: str, dst: str, port: int, seconds: float,
                mptcp: bool = False) -> Session:
    extra = ["--mptcp"] if mptcp else []
    server_log, client_log = lab.workdir / f"tcp{port}-server.csv", lab.workdir / f"tcp{port}-client.csv"
    srv = lab.popen(server, [*PROBE, "tcp-server", "--port", str(port), "--duration",
                             str(seconds + 2), "--out", str(server_log), *extra])
    lab.wait_bound(server, port, "tcp")
    cli = lab.popen(client, [*PROBE, "tcp-client", "--dst", dst, "--port", str(port),
                             "--interval", "0.01", "--duration", str(seconds), "--out", str(client_log), *extra])
    return Session(lab, server, port, srv, cli, server_log, client_log)


@contextlib.contextmanager
def up_process(extra: list[str], topo: Path | None = None,
               ignore_sigint: bool = False) -> Iterator[subprocess.Popen[str]]:
    """``multi6lab up`` in its own session; ``ignore_sigint`` starts it as ``cmd &`` or ``nohup`` would. If the
    test fails with it still running, it is killed and its lab cleaned, so the next test finds the names free
    (one hung teardown once failed every later test of a run)."""
    exe = Path(PY).with_name("multi6lab")
    inherit = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    p = subprocess.Popen([str(exe), "up", str(topo or topology("figure1")), *extra], cwd=ROOT, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                         preexec_fn=inherit)
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
            subprocess.run([str(exe), "clean"], capture_output=True, timeout=60, check=False)


def wait_up(p: subprocess.Popen[str]) -> list[str]:
    lines: list[str] = []
    assert p.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        lines.append(line)
        if " up: " in line:
            return lines
        if not line and p.poll() is not None:
            break
    raise AssertionError("multi6lab up did not come up:\n" + "".join(lines))
