"""Run records: teardown and 'multi6lab clean' end exactly what a run recorded, never by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from multi6lab.lab import runstate


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(runstate, "STATE_DIR", tmp_path)
    return tmp_path


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_record_survives_on_disk_and_remove_all_ends_its_processes(state_dir: Path) -> None:
    p = sleeper()
    rec = runstate.RunRecord.create("r1")
    rec.add_proc(p.pid, "sleeper")
    [loaded] = runstate.records()
    assert loaded.run_id == "r1" and loaded.procs[0].pid == p.pid and loaded.procs[0].alive()
    done = loaded.remove_all(grace=2.0)
    assert p.wait(5) is not None
    assert done == [f"process {p.pid} (sleeper)"]
    assert runstate.records() == []


def test_clean_leaves_runs_whose_owner_lives(state_dir: Path) -> None:
    p = sleeper()
    rec = runstate.RunRecord.create("mine")  # owner: this test process, alive
    rec.add_proc(p.pid, "sleeper")
    assert runstate.clean() == []
    assert p.poll() is None
    assert runstate.clean(include_live=True) == [f"process {p.pid} (sleeper)"]
    p.wait(5)


def test_a_recycled_pid_is_never_signalled(state_dir: Path) -> None:
    p = sleeper()
    rec = runstate.RunRecord.create("r2")
    rec.add_proc(p.pid, "sleeper")
    rec.procs[0].started = (rec.procs[0].started or 0) + 1  # as if the pid now belonged to someone else
    assert rec.remove_all(grace=0.1) == []
    assert p.poll() is None
    p.kill()
    p.wait(5)


def test_start_time_of_missing_process_is_none() -> None:
    assert runstate.start_time(2**22 + 12345) is None


def test_unreadable_records_are_skipped(state_dir: Path) -> None:
    (state_dir / "junk.json").write_text("{not json")
    assert runstate.records() == []


def test_a_stopped_process_ends_on_the_sigterm_not_the_sigkill(state_dir: Path) -> None:
    """A controller frozen by a 'controllers: frozen' trial (SIGSTOP) when the run is torn down."""
    import signal

    p = subprocess.Popen([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
                         stdout=subprocess.PIPE)
    assert p.stdout is not None and p.stdout.readline() == b"up\n"  # running its own code, not still starting
    p.send_signal(signal.SIGSTOP)
    rec = runstate.RunRecord.create("r4")
    rec.add_proc(p.pid, "multi6lab controller of site s1")
    assert rec.stop_procs(lambda _: True, grace=5.0) == [f"process {p.pid} (multi6lab controller of site s1)"]
    assert p.wait(5) == -signal.SIGTERM


def test_stop_procs_ends_only_the_selected_and_dirs_go_with_the_run(state_dir: Path) -> None:
    frr, other = sleeper(), sleeper()
    rec = runstate.RunRecord.create("r3")
    rec.add_proc(frr.pid, "FRR bgpd in exa")
    rec.add_proc(other.pid, "multi6lab controller")
    (rec.state_dir / "frr" / "exa").mkdir(parents=True)
    rec.add_dir(rec.state_dir)
    assert rec.stop_procs(lambda p: p.what.startswith("FRR ")) == [f"process {frr.pid} (FRR bgpd in exa)"]
    assert frr.wait(5) is not None and other.poll() is None
    [loaded] = runstate.records()  # a later 'multi6lab clean' finds the directory in the record
    assert f"directory {rec.state_dir}" in loaded.remove_all(grace=2.0)
    assert other.wait(5) is not None and not rec.state_dir.exists()
