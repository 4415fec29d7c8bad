"""The package installs as a package: ``pip install .`` in a fresh venv resolves every Python dependency the
code imports (a dry run: it downloads what it needs to decide, and installs nothing). That the command works
from another directory is tests/unit/test_experiments.py's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT

pytestmark = pytest.mark.integration


def test_pip_install_in_a_fresh_venv_pulls_the_python_dependencies(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    report = tmp_path / "report.json"
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "--dry-run", "--quiet", "--disable-pip-version-check",
                        "--report", str(report), str(ROOT)], capture_output=True, text=True, timeout=600,
                       check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    names = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
    assert {"multi6lab", "os-ken", "scapy", "dnspython", "pyyaml", "jsonschema", "matplotlib"} <= names
