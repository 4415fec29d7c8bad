"""Boot the Mininet VM, run one job in it, bring its results back (``make vm-test``, ``vm-smoke``, ``vm-shell``).

The accelerator is chosen by booting, not by the device file: on some machines ``/dev/kvm`` opens and a VM can
be created, yet a guest never leaves the kernel's decompressor. A KVM guest is tried once per host boot (its
verdict is kept in build/vm/kvm.json for that boot id); TCG is used when it does not reach its job in time.
qemu's pid is recorded (:mod:`multi6lab.lab.runstate`), so an interrupted run and ``multi6lab clean`` end that
process and no other; the disk is opened with ``-snapshot``, so nothing is mounted on the host.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from multi6lab.experiments.recipe import hand_back, run_folder, say
from multi6lab.lab.emulation import EnvError, require_root, terminate_as_interrupt
from multi6lab.lab.runstate import RunRecord
from multi6lab.vm.qemu import Guest, job_script

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "vm"
KVM_PROBE_S = 45.0  # a TCG guest reaches its job in 11 s here, a KVM one in less; one that has not by now never will
GUEST_RESULTS = "results"  # /opt/multi6lab/results in the guest: what a job leaves there comes back


def image() -> tuple[Path, Path, Path]:
    """The built disk, kernel and initrd, or a sentence saying how to build them."""
    files = (BUILD / "disk.img", BUILD / "vmlinuz", BUILD / "initrd.img")
    if missing := [f.name for f in files if not f.exists()]:
        raise EnvError(f"the VM image is not built ({', '.join(missing)} missing in {BUILD}); run 'sudo make vm'")
    return files


def boot(guest: Guest, console: Path | None, timeout_s: float, echo: bool = True) -> int | None:
    """Boot ``guest`` and wait for it to power off: the job's exit status (from the share), or None when it
    did not finish within ``timeout_s``. qemu is ended, by its recorded pid, whatever happens."""
    rec = RunRecord.create(f"vm-{os.getpid()}-{int(time.time())}")
    (guest.share / "status").unlink(missing_ok=True)
    if console is not None:
        console.write_bytes(b"")  # qemu appends to it; the loop below shows what it adds
    qemu = subprocess.Popen(guest.argv(console), stdin=None if console is None else subprocess.DEVNULL)
    rec.add_proc(qemu.pid, "qemu")
    try:
        with contextlib.ExitStack() as stack:
            log = stack.enter_context(open(console, "rb")) if console is not None and echo else None
            deadline = time.monotonic() + timeout_s
            while qemu.poll() is None and time.monotonic() < deadline:
                if log is not None:  # the guest's console, as it is written
                    sys.stdout.write(log.read().decode(errors="replace"))
                    sys.stdout.flush()
                time.sleep(0.5)
            if log is not None:
                sys.stdout.write(log.read().decode(errors="replace"))
    finally:
        rec.remove_all(grace=5.0)  # qemu, if it still runs (a timeout, Ctrl-C), ended by its pid; the record too
        qemu.wait()
    status = guest.share / "status"
    return int(status.read_text().strip() or 1) if status.exists() else None


def boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def choose_accel(asked: str, disk: Path, kernel: Path, initrd: Path) -> tuple[str, str]:
    """The accelerator (kvm or tcg) and the one line that says why."""
    if asked != "auto":
        return asked, f"accelerator: {asked.upper()} (asked for)"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg", "accelerator: TCG (no usable /dev/kvm on this machine)"
    verdict = BUILD / "kvm.json"
    try:
        known = json.loads(verdict.read_text())
    except (OSError, ValueError):
        known = {}
    if known.get("boot_id") != boot_id() or "bound_s" not in known:
        share = BUILD / "kvm-probe"
        share.mkdir(parents=True, exist_ok=True)
        (share / "job.sh").write_text(job_script([["true"]], "/nonexistent"))
        say(f"trying a KVM guest (at most {KVM_PROBE_S:.0f} s): /dev/kvm opens, but only a boot shows it works")
        t, tried = time.monotonic(), time.strftime("%Y-%m-%d %H:%M:%S")
        ok = boot(Guest("kvm", disk, kernel, initrd, share), share / "console.log", KVM_PROBE_S, echo=False) == 0
        known = {"boot_id": boot_id(), "kvm_works": ok, "tried_s": round(time.monotonic() - t, 1), "tried": tried,
                 "bound_s": KVM_PROBE_S}
        verdict.write_text(json.dumps(known))
    if known["kvm_works"]:
        return "kvm", "accelerator: KVM (a KVM guest boots on this machine)"
    return "tcg", (f"accelerator: TCG (a KVM guest did not reach its job within {known['bound_s']:.0f} s here, tried "
                   f"{known['tried']}; kept for this host boot in {verdict.relative_to(ROOT)})")


# The demo's run says which datapath carried it: on a kernel with the openvswitch module, the kernel's.
ON_KERNEL_DATAPATH = ["grep", "-q", '"datapath": "kernel (system)"', f"{GUEST_RESULTS}/latest/summary.json"]
JOBS = {
    # The demo on the kernel datapath, then every integration test that needs what only a full kernel has.
    "test": lambda trials: [["make", "setup"], ["make", "demo", f"TRIALS={trials}"], ON_KERNEL_DATAPATH,
                            [".venv/bin/python", "-m", "pytest", "tests/integration", "-q", "-m", "full_kernel",
                             "-p", "no:cacheprovider", "--junitxml", f"{GUEST_RESULTS}/vm-tests.xml",
                             "--basetemp", f"{GUEST_RESULTS}/tests"]],  # each test's folder comes back too
    # What CI can afford on every submission: the guest boots, the lab comes up on the kernel datapath, one trial.
    "smoke": lambda trials: [["make", "setup"], ["make", "demo", f"TRIALS={trials}"], ON_KERNEL_DATAPATH],
}


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", choices=["test", "smoke", "exec", "shell"],
                   help="test: the demo and the full-kernel integration tests; smoke: the demo alone; exec: one "
                        "command (after --) in the checkout once Open vSwitch runs; shell: an interactive shell in "
                        "the guest (power off with 'exit')")
    p.add_argument("argv", nargs="*", metavar="CMD", help="exec's command, after '--' (options go before the job: "
                                                          "multi6lab vm --out DIR exec -- CMD)")
    p.add_argument("--trials", type=int, default=2, help="the demo's trials in the guest (default 2)")
    p.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto",
                   help="qemu's accelerator (default auto: KVM where a KVM guest actually boots, else TCG)")
    p.add_argument("--timeout-min", type=float, default=60.0, help="the guest is ended after this long (default 60)")
    p.add_argument("--cpus", type=int, default=2, help="the guest's vCPUs (default 2)")
    p.add_argument("--memory-mb", type=int, default=3072, help="the guest's memory (default 3072 MB)")
    p.add_argument("--out", help="where the guest's results go (default results/vm-<time>)")


def run(args: argparse.Namespace) -> int:
    require_root("multi6lab vm", "qemu's guest gets the host's share and the run is recorded in /run/multi6lab")
    if args.trials < 1 or args.cpus < 1 or args.memory_mb < 512 or args.timeout_min <= 0:
        raise EnvError("--trials and --cpus must be positive, --memory-mb at least 512 and --timeout-min above 0")
    command = args.argv
    if (args.job == "exec") != bool(command):
        raise EnvError("give a command after '--' to 'multi6lab vm exec', and only to it "
                       "(e.g. multi6lab vm exec -- ovs-dpctl show)")
    disk, kernel, initrd = image()
    with terminate_as_interrupt():
        accel, why = choose_accel(args.accel, disk, kernel, initrd)
        say(why)
        out = run_folder(args.out, f"vm-{args.job}").resolve()
        try:
            if args.job == "shell":
                status = boot(Guest(accel, disk, kernel, initrd, out, job="shell", cpus=args.cpus,
                                    memory_mb=args.memory_mb), None, args.timeout_min * 60)
                return status or 0
            steps = [["make", "setup"], command] if args.job == "exec" else JOBS[args.job](args.trials)
            (out / "job.sh").write_text(job_script(steps, GUEST_RESULTS))
            t = time.monotonic()
            status = boot(Guest(accel, disk, kernel, initrd, out, cpus=args.cpus, memory_mb=args.memory_mb),
                          out / "console.log", args.timeout_min * 60)
        finally:
            hand_back()
    took = time.monotonic() - t
    if status is None:
        raise EnvError(f"the guest did not finish its job within {args.timeout_min:g} min (ended; its console is in "
                       f"{out / 'console.log'})")
    say(f"the guest's job ended with status {status} after {took / 60:.1f} min ({accel.upper()}); results in {out}")
    return status
