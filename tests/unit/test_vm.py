"""The Mininet VM's pure side: qemu's command line, the guest's job script, where a result was measured."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from multi6lab.vm.qemu import TCG_SLOWDOWN, Guest, job_script, slowdown, substrate


def guest(**kw: object) -> Guest:
    files = {k: Path(f"/b/{k}") for k in ("disk", "kernel", "initrd", "share")}
    return Guest(**{"accel": "tcg", **files, **kw})  # type: ignore[arg-type]


def test_a_tcg_guest_boots_the_image_unchanged_with_its_job_and_accelerator_on_the_kernel_line() -> None:
    argv = guest().argv(Path("/b/console.log"))
    assert argv[0] == "qemu-system-x86_64" and argv[argv.index("-accel") + 1] == "tcg,thread=multi"
    assert "-snapshot" in argv and "-no-reboot" in argv  # the cached image never changes; a panic ends qemu
    assert argv[argv.index("-serial") + 1] == "file:/b/console.log"
    assert argv[argv.index("-drive") + 1] == "file=/b/disk,format=raw,if=virtio"
    assert "path=/b/share,mount_tag=host" in argv[argv.index("-virtfs") + 1]
    line = argv[argv.index("-append") + 1].split()
    assert {"root=/dev/vda", "init=/sbin/multi6lab-init", "multi6lab.job=run", "multi6lab.accel=tcg"} <= set(line)


def test_a_kvm_shell_puts_the_console_on_the_terminal() -> None:
    argv = guest(accel="kvm", job="shell", cpus=4, memory_mb=2048).argv(None)
    assert argv[argv.index("-accel") + 1] == "kvm" and argv[argv.index("-serial") + 1] == "mon:stdio"
    assert argv[argv.index("-smp") + 1] == "4" and argv[argv.index("-m") + 1] == "2048"
    assert "multi6lab.job=shell" in argv[argv.index("-append") + 1]


@pytest.mark.parametrize("kw,said", [({"accel": "hvf"}, "accelerator 'hvf'"), ({"job": "demo"}, "job 'demo'")])
def test_an_unknown_accelerator_or_job_is_refused(kw: dict[str, str], said: str) -> None:
    with pytest.raises(ValueError, match=said):
        guest(**kw)


def test_the_job_runs_every_step_keeps_the_first_failure_and_copies_the_results(tmp_path: Path) -> None:
    project, share = tmp_path / "project", tmp_path / "share"
    project.mkdir()  # its results folder is the job's to make
    share.mkdir()
    steps = [["sh", "-c", "echo one > results/a"], ["sh", "-c", "exit 3"], ["false"],
             ["sh", "-c", "echo \"it's run\" > results/b"]]
    script = tmp_path / "job.sh"
    script.write_text(job_script(steps, "results", str(project), str(share)))
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    assert r.returncode == 3  # the first failure's status, though later steps ran
    assert (share / "results" / "a").read_text() == "one\n" and (share / "results" / "b").read_text() == "it's run\n"
    assert "failed (sh -c 'exit 3'), exit 3" in r.stdout and "failed (false), exit 1" in r.stdout


def test_a_result_says_whether_it_came_from_a_host_or_which_guest() -> None:
    assert substrate("BOOT_IMAGE=/vmlinuz root=/dev/vda") == "host"
    assert substrate("console=ttyS0 multi6lab.accel=kvm multi6lab.job=run") == "qemu KVM guest"
    assert substrate("multi6lab.accel=tcg").startswith("qemu TCG guest (emulated CPU")


def test_only_an_emulated_cpu_stretches_the_lab_s_bounded_waits() -> None:
    assert slowdown("root=/dev/vda multi6lab.accel=tcg") == TCG_SLOWDOWN > 1
    assert slowdown("root=/dev/vda multi6lab.accel=kvm") == slowdown("BOOT_IMAGE=/vmlinuz") == 1.0
