"""Labs that stay up: ``multi6lab up -d`` starts one under a name, and ``ls``, ``inspect``, ``exec``, ``fault``
and ``down`` find it by that name, as containerlab's deploy, inspect, exec and destroy do.

A detached lab is an ordinary :class:`~multi6lab.lab.lifecycle.Lab` held by a process of its own (started in
a new session, so it outlives the shell that started it), which writes a descriptor in
``/run/multi6lab/labs/<name>.json`` once the lab is ready: its pid and start time, the topology, the run's
folder, each Linux node's shell pid (what ``exec`` and ``fault`` enter with ``mnexec``). ``down`` sends that
process SIGTERM, and its teardown removes exactly what the run recorded, as any run's does; a descriptor whose
process is gone is stale and is removed when a command meets it. Faults given by hand are compiled from the
run's plan as a scenario's are, and written to ``faults.jsonl`` in the run's folder with their times.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from multi6lab.lab.emulation import datapath
from multi6lab.lab.runstate import STATE_DIR, start_time

LABS = STATE_DIR / "labs"
NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
READY_S = 600.0  # the longest a detached lab may take to come up (a large lab's bring-up, on a loaded machine)
DOWN_S = 180.0  # ... and to go down


class LabError(RuntimeError):
    """A named lab that cannot be found, started or reached, said in one sentence."""


@dataclass
class Descriptor:
    """What ``ls``, ``inspect``, ``exec``, ``fault`` and ``down`` know of a detached lab."""

    name: str
    pid: int
    started: int | None
    topology: str
    workdir: str
    up_since: float  # wall-clock seconds
    nodes: dict[str, int | None] = field(default_factory=dict)  # node -> its shell's pid (None: a switch)
    datapath: str = ""
    delay: str | None = None

    @property
    def path(self) -> Path:
        return LABS / f"{self.name}.json"

    def alive(self) -> bool:
        return self.started is not None and start_time(self.pid) == self.started

    def node_command(self, node: str, command: str, check: bool) -> None:
        """A fault action in ``node`` (:func:`multi6lab.lab.runner.run_action`)."""
        run_in(self, node, command, check)

    def save(self) -> None:
        LABS.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(self.path)


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise LabError(f"lab name {name!r}: use a lower-case letter, then letters, digits or '-' (32 at most)")
    return name


def find(name: str) -> Descriptor:
    """The running lab called ``name``, or LabError saying which are running."""
    d = labs().get(check_name(name))
    if d is None:
        running = ", ".join(sorted(labs())) or "none"
        raise LabError(f"no lab called {name!r} is up (running: {running}); start one with 'multi6lab up -d'")
    return d


def labs() -> dict[str, Descriptor]:
    """Every detached lab that is up; a descriptor whose process is gone is removed."""
    out = {}
    for f in sorted(LABS.glob("*.json")) if LABS.is_dir() else []:
        try:
            d = Descriptor(**json.loads(f.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if d.alive():
            out[d.name] = d
        else:
            f.unlink(missing_ok=True)
    return out


# -- the holder: the process that keeps the lab up ------------------------------------------------------------
def hold(name: str, lab: Any, topology: str, say: Callable[[str], None]) -> None:
    """Write the descriptor of ``lab`` (ready now) and wait for SIGTERM, SIGINT or SIGHUP, which the caller's
    handlers turn into the teardown; the descriptor goes first."""
    me = os.getpid()
    em = lab.emulation
    nodes = {n.name: (int(em.net[n.name].pid) if n.role != "switch" else None) for n in lab.plan.nodes}
    d = Descriptor(name, me, start_time(me), topology, str(lab.workdir), time.time(), nodes, datapath(), em.delay)
    d.save()
    say(f"lab {name} is up: 'multi6lab inspect {name}', 'multi6lab exec {name} NODE -- CMD', "
        f"'multi6lab down {name}'")
    try:
        while True:
            signal.pause()  # a signal's handler raises, and the lab's teardown follows
    finally:
        d.path.unlink(missing_ok=True)


def start(name: str, argv: list[str], workdir: Path, say: Callable[[str], None]) -> Descriptor:
    """Start ``argv`` (a holding ``multi6lab up``) in a session of its own, its output in ``workdir/up.log``, and
    wait until its lab is ready; LabError with the end of its log if it stopped first."""
    if name in labs():
        raise LabError(f"a lab called {name!r} is already up ('multi6lab down {name}' first)")
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "up.log"
    with open(log, "wb") as out:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
    say(f"bringing {name} up in the background (its log: {log})")
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        d = labs().get(name)
        if d is not None and d.pid == p.pid:
            return d
        if p.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise LabError(f"lab {name} did not come up (exit {p.returncode}): " + " | ".join(tail))
        time.sleep(0.2)  # polling a process in another session: there is nothing to wait on but its file
    p.terminate()
    raise LabError(f"lab {name} was not up after {READY_S:.0f} s; it is being torn down (its log: {log})")


def down(d: Descriptor) -> float:
    """End the lab's holder (its teardown removes what the run created) and wait until it is gone; seconds."""
    t0 = time.monotonic()
    if d.alive():
        os.kill(d.pid, signal.SIGTERM)
    while d.alive() and time.monotonic() - t0 < DOWN_S:
        time.sleep(0.1)  # the holder is not our child: its end can only be observed
    if d.alive():
        raise LabError(f"lab {d.name} (pid {d.pid}) did not go down within {DOWN_S:.0f} s; 'multi6lab clean --all' "
                       "removes what it recorded")
    d.path.unlink(missing_ok=True)
    return time.monotonic() - t0


# -- reaching into a lab -----------------------------------------------------------------------------------------
def node_argv(d: Descriptor, node: str, argv: list[str]) -> list[str]:
    """``argv`` as run inside ``node``'s namespaces (a switch's commands run on the host, as Mininet's do)."""
    if node not in d.nodes:
        raise LabError(f"lab {d.name} has no node {node!r} (it has: {', '.join(sorted(d.nodes))})")
    pid = d.nodes[node]
    return argv if pid is None else ["mnexec", "-a", str(pid), *argv]


def run_in(d: Descriptor, node: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(node_argv(d, node, ["sh", "-c", command]), capture_output=True, text=True, check=False)
    if check and r.returncode:
        raise LabError(f"{node}: '{command}' failed (exit {r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
    return r


def fault(d: Descriptor, spec: str, say: Callable[[str], None]) -> dict[str, Any]:
    """Apply the fault ``spec`` (a scenario's fault entry, as YAML) to the lab now, wait its duration and restore
    it (also on Ctrl-C); the record of it, also appended to the run's ``faults.jsonl``."""
    from multi6lab.lab.runner import inject, prepare
    from multi6lab.scenarios import model
    from multi6lab.scenarios.faults import compile_fault
    from multi6lab.topologies import codec, yamlsrc

    text = f"name: by-hand\ntopology: {json.dumps(d.topology)}\nfaults:\n  - {spec}\n"
    sc = model.from_source(yamlsrc.parse(text, f"<fault for lab {d.name}>"))
    plan = codec.read(Path(d.workdir) / "plan.json")
    sp = next(s for s in plan.sites if s.site.name == sc.site)
    (f,) = sc.faults
    c = compile_fault(plan, sp, f, 0, sc.record_s)
    prepare(d, [c])
    rec = {"fault": spec, "lab": d.name, "t": time.time(), "actions": inject(d, [c], time.monotonic(), 0.0, say=say)}
    with open(Path(d.workdir) / "faults.jsonl", "a") as log:
        log.write(json.dumps(rec) + "\n")
    return rec


def python() -> list[str]:
    """How the holder is started: this interpreter, this package's command line."""
    return [sys.executable, "-m", "multi6lab.cli"]
