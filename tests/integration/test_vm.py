"""Issue 30: booting the Mininet VM leaves nothing behind, however its job ends."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from multi6lab.lab.runstate import records
from tests.integration.helpers import PY, ROOT

pytestmark = pytest.mark.integration
BUILT = all((ROOT / "build" / "vm" / f).exists() for f in ("disk.img", "vmlinuz", "initrd.img"))


def qemus_sharing(folder: Path) -> list[int]:
    """The qemu processes whose command line names ``folder`` (a guest's share)."""
    found = []
    for d in Path("/proc").iterdir():
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"qemu-system-x86_64") and any(str(folder).encode() in a for a in argv):
            found.append(int(d.name))
    return found


@pytest.mark.skipif(not BUILT, reason="the VM image is not built here ('sudo make vm' builds it; "
                                      "'sudo make vm-smoke' in .ci/run does, before this suite)")
def test_a_guest_that_outlives_its_timeout_is_ended_by_its_pid_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "vm"
    r = subprocess.run([PY, "-m", "multi6lab.cli", "vm", "--accel", "tcg", "--timeout-min", "1", "--out", str(out),
                        "exec", "--", "sleep", "600"], capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 1 and "the guest did not finish its job within 1 min (ended" in r.stderr, r.stderr
    assert "multi6lab-vm: up in" in (out / "console.log").read_text()  # it booted; the job was what ran long
    assert qemus_sharing(out) == [] and not (out / "status").exists()
    assert not [rec for rec in records() if rec.run_id.startswith("vm-")]
