"""Integration tests need root and a running Open vSwitch; elsewhere they are skipped with the reason."""

from __future__ import annotations

import os
import subprocess

import pytest


def _why_not_integration() -> str | None:
    if os.geteuid() != 0:
        return "needs root (namespaces, veths, OVS bridges); run 'sudo make test'"
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        return "Mininet is not importable; run 'sudo make setup'"
    try:
        ok = subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True, check=False).returncode == 0
    except OSError:
        ok = False
    return None if ok else "Open vSwitch is not running; run 'sudo make setup'"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _why_not_integration()
    if reason is None:
        return
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
