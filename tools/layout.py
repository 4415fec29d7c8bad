"""The project's modules, and which of them are plumbing, from pyproject.toml: the package's folders as
setuptools maps them, and the plumbing as coverage's ``omit`` lists it (written there once).

Every module that is not plumbing is held to ``mypy --strict`` and to the coverage floor: ``make lint`` asks
this module for their names (``python -m multi6lab.layout``), and tests/unit/test_layout.py reads the same
map. A checkout's tool, not a runtime one: an installed package has no pyproject.toml beside it.
"""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path
from typing import Any

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict[str, Any]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]  # type: ignore[no-any-return]


def modules() -> dict[str, Path]:
    """Every module of the package by its import name, from the folders pyproject.toml maps it onto."""
    folders = {folder: package for package, folder in _config()["setuptools"]["package-dir"].items()}
    out = {}
    for folder, package in folders.items():
        for f in sorted((ROOT / folder).rglob("*.py")):
            rel = f.relative_to(ROOT / folder)
            if rel.parts[0] in folders or "__pycache__" in rel.parts:
                continue  # another mapped folder's (none is nested today), or a cache
            parts = [p for p in rel.with_suffix("").parts if p != "__init__"]
            out[".".join([package, *parts])] = f
    return out


def plumbing() -> set[str]:
    """The modules coverage's ``omit`` names."""
    omit = _config()["coverage"]["run"]["omit"]
    return {m for m, f in modules().items() if any(fnmatch.fnmatch(str(f.relative_to(ROOT)), o) for o in omit)}


def held() -> list[str]:
    """The modules held to mypy --strict and to the coverage floor: every one that is not plumbing."""
    return sorted(set(modules()) - plumbing())


if __name__ == "__main__":
    sys.stdout.write("".join(f"-m {m}\n" for m in held()))
