"""Where a number came from: the code, the software and the machine a run was measured on.

A figure someone will cite has to say which commit produced it (and whether the tree had uncommitted
changes), on which kernel, Open vSwitch version and datapath, FRR, Knot, os-ken, dnspython, scapy and Python,
on how many and which CPUs, how loaded the machine was when the run began, with which seed and command line.
Each fact is read when the run starts; one that cannot be read is null rather than guessed.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from multi6lab.lab.emulation import datapath_label
from multi6lab.topologies.frr import FRR_BIN
from multi6lab.vm.qemu import substrate

ROOT = Path(__file__).resolve().parents[2]  # the checkout: tools/lab/provenance.py


def first_version(text: str) -> str | None:
    """The first dotted version number in a tool's --version output."""
    found = re.search(r"\b(\d+\.\d+(?:\.\d+)*)\b", text)
    return found.group(1) if found else None


def cpu_model(cpuinfo: str) -> str | None:
    found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    return found.group(1).strip() if found else None


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _output(argv: list[str], cwd: Path | None = None) -> str | None:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=cwd, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout if r.returncode == 0 else None


def _package(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect(seed: int | None = None) -> dict[str, Any]:
    """The provenance block of summary.json and comparison.json."""
    commit = _output(["git", "rev-parse", "HEAD"], ROOT)
    status = _output(["git", "status", "--porcelain"], ROOT) if commit else None
    cpuinfo = _read("/proc/cpuinfo")
    return {
        "commit": commit.strip() if commit else None,
        "dirty": bool(status.strip()) if status is not None else None,
        "kernel": platform.release(),
        "ovs": first_version(_output(["ovs-vsctl", "--version"]) or ""),
        "datapath": datapath_label(),
        "substrate": substrate(_read("/proc/cmdline")),
        "frr": first_version(_output([str(FRR_BIN / "zebra"), "--version"]) or ""),
        "os_ken": _package("os-ken"),
        "knot": first_version(_output(["knotd", "--version"]) or ""),
        "dnspython": _package("dnspython"),
        "scapy": _package("scapy"),
        "python": platform.python_version(),
        "cpu": cpu_model(cpuinfo),
        "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "seed": seed,
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
