"""What a run created, written down as it is created, so teardown and ``multi6lab clean`` remove exactly that.

A record is a JSON file in ``/run/multi6lab/<run-id>.json``: the owner's pid, and every pid, OVS bridge,
root-namespace interface and state directory (FRR's sockets and configuration) the run made. Processes are
identified by pid *and* start time, so a recycled pid is never signalled. We never kill by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_DIR = Path(os.environ.get("MULTI6LAB_STATE_DIR", "/run/multi6lab"))


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])


@dataclass
class Proc:
    pid: int
    started: int | None
    what: str

    def alive(self) -> bool:
        return self.started is not None and start_time(self.pid) == self.started


@dataclass
class RunRecord:
    run_id: str
    owner: int
    owner_started: int | None
    procs: list[Proc] = field(default_factory=list)
    bridges: list[str] = field(default_factory=list)
    intfs: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, run_id: str) -> RunRecord:
        rec = cls(run_id, os.getpid(), start_time(os.getpid()))
        rec.save()
        return rec

    @property
    def path(self) -> Path:
        return STATE_DIR / f"{self.run_id}.json"

    def save(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(self.path)

    def add_proc(self, pid: int, what: str) -> None:
        self.procs.append(Proc(pid, start_time(pid), what))
        self.save()

    def add_bridge(self, name: str) -> None:
        self.bridges.append(name)
        self.save()

    def add_intf(self, name: str) -> None:
        self.intfs.append(name)
        self.save()

    def add_dir(self, path: Path) -> None:
        if str(path) not in self.dirs:  # several daemons share the run's state directory
            self.dirs.append(str(path))
            self.save()

    @property
    def state_dir(self) -> Path:
        """Where this run keeps files other programs need (FRR's per-node directories); removed with the run."""
        return STATE_DIR / self.run_id

    def owner_alive(self) -> bool:
        return self.owner_started is not None and start_time(self.owner) == self.owner_started

    def remove_all(self, grace: float = 2.0) -> list[str]:
        """Stop every recorded process, delete every recorded bridge and interface; say what was removed."""
        done = self.stop_procs(lambda p: True, grace)
        existing = set(_run(["ovs-vsctl", "--timeout=5", "list-br"]).split())
        for br in self.bridges:
            if br in existing:
                _run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", br])
                done.append(f"bridge {br}")
        for intf in self.intfs:
            if Path(f"/sys/class/net/{intf}").exists():
                _run(["ip", "link", "del", intf])
                done.append(f"interface {intf}")
        for d in self.dirs:
            if Path(d).exists():
                shutil.rmtree(d, ignore_errors=True)
                done.append(f"directory {d}")
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        return done

    def stop_procs(self, which: Callable[[Proc], bool], grace: float = 2.0) -> list[str]:
        """SIGTERM the live recorded processes ``which`` selects, newest first; SIGKILL what outlives ``grace``."""
        live = [p for p in reversed(self.procs) if which(p) and p.alive()]
        for p in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGTERM)
                os.kill(p.pid, signal.SIGCONT)  # a stopped process (a frozen controller) acts on it only then
        deadline = time.monotonic() + grace
        while any(p.alive() for p in live) and time.monotonic() < deadline:
            time.sleep(0.02)
        for p in live:
            if p.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
        return [f"process {p.pid} ({p.what})" for p in live]


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def records() -> list[RunRecord]:
    out = []
    for f in sorted(STATE_DIR.glob("*.json")):
        try:
            d = json.loads(f.read_text())
            procs = [Proc(**p) for p in d.pop("procs", [])]
            out.append(RunRecord(procs=procs, **d))
        except (OSError, ValueError, TypeError):
            continue
    return out


def clean(include_live: bool = False) -> list[str]:
    """Remove what finished or crashed runs left; a run whose owner still lives is left alone unless asked."""
    removed = []
    for rec in records():
        if rec.owner_alive() and not include_live:
            continue
        removed += rec.remove_all()
    return removed
