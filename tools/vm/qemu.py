"""The VM's pure side: qemu's command line, the guest's job, and what a guest's results say about where they ran.

A TCG guest runs the same code about fourteen times slower than the host it emulates on, so its timings are not
comparable with anything measured on a host; the accelerator is on the guest's kernel command line
(``multi6lab.accel=``) and every result the guest writes carries it (:func:`substrate`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

ACCELS = ("kvm", "tcg")
JOBS = ("run", "shell")


@dataclass(frozen=True)
class Guest:
    """One boot: which accelerator, how big, what it runs, where its disk, kernel and share are."""

    accel: str
    disk: Path
    kernel: Path
    initrd: Path
    share: Path
    job: str = "run"
    cpus: int = 2
    memory_mb: int = 3072

    def __post_init__(self) -> None:
        if self.accel not in ACCELS:
            raise ValueError(f"accelerator {self.accel!r}: qemu is run with one of {', '.join(ACCELS)}")
        if self.job not in JOBS:
            raise ValueError(f"job {self.job!r}: the guest runs one of {', '.join(JOBS)}")

    def append(self) -> str:
        """The guest kernel's command line: the root disk, the serial console, the job and the accelerator."""
        return (f"console=ttyS0 root=/dev/vda rw init=/sbin/multi6lab-init panic=-1 quiet "
                f"multi6lab.job={self.job} multi6lab.accel={self.accel}")

    def argv(self, console: Path | None) -> list[str]:
        """qemu's arguments. The disk is opened with ``-snapshot``: the cached image never changes, every boot
        starts from the same state, and what the guest keeps is what it copies to the share. ``console``: the
        serial console's log file; None puts the console on this terminal (an interactive shell)."""
        accel = ["-accel", "kvm", "-cpu", "host,-arch-capabilities"] if self.accel == "kvm" else \
            ["-accel", "tcg,thread=multi", "-cpu", "max"]
        serial = ["-serial", f"file:{console}"] if console is not None else ["-serial", "mon:stdio"]
        return ["qemu-system-x86_64", *accel, "-smp", str(self.cpus), "-m", str(self.memory_mb),
                "-display", "none", "-no-reboot", "-snapshot", *serial,
                "-drive", f"file={self.disk},format=raw,if=virtio",
                "-kernel", str(self.kernel), "-initrd", str(self.initrd), "-append", self.append(),
                "-virtfs", f"local,path={self.share},mount_tag=host,security_model=none,id=host",
                "-nic", "none"]


GUEST_PROJECT = "/opt/multi6lab"  # where the image holds the checkout
GUEST_SHARE = "/mnt/host"  # where the guest mounts the host's share


def job_script(steps: list[list[str]], collect: str, project: str = GUEST_PROJECT, share: str = GUEST_SHARE) -> str:
    """The share's job.sh: each step in ``project``, every one run even after a failure (the results of the
    others are still wanted), ``collect`` (made first, so a step may write into it) copied onto ``share`` at the
    end; its status is the first failure's."""
    lines = ["#!/bin/bash", f"cd {shlex.quote(project)}", f"mkdir -p {shlex.quote(collect)}", "status=0"]
    for argv in steps:
        cmd = shlex.join(argv)
        said, failed = shlex.quote(f"== vm job: {cmd}"), shlex.quote(f"== vm job: failed ({cmd}), exit ")
        lines += [f"echo {said}", f"{cmd} || {{ s=$?; echo {failed}$s; [ $status -eq 0 ] && status=$s; }}"]
    lines += [f"cp -r {shlex.quote(collect)} {shlex.quote(share)}/ 2>/dev/null", "exit $status", ""]
    return "\n".join(lines)


TCG_SLOWDOWN = 14.0  # CPU-bound Python under TCG against the same host, measured (docs/vm.md)


def slowdown(cmdline: str) -> float:
    """How much longer than on a host things take here: TCG_SLOWDOWN in a TCG guest, else 1. The lab's bounded
    waits (a bring-up step, a daemon's readiness) are stretched by it; they bound a hang, they measure nothing."""
    return TCG_SLOWDOWN if _accel(cmdline) == "tcg" else 1.0


def _accel(cmdline: str) -> str | None:
    return next((w.split("=", 1)[1] for w in cmdline.split() if w.startswith("multi6lab.accel=")), None)


def substrate(cmdline: str) -> str:
    """Where a result was measured, from the kernel command line: on a host, or in a qemu guest under KVM or
    TCG (the latter's timings not comparable with a host's)."""
    accel = _accel(cmdline)
    if accel == "tcg":
        return "qemu TCG guest (emulated CPU, about 14x slower: timings not comparable with a host's)"
    if accel == "kvm":
        return "qemu KVM guest"
    return "host"
