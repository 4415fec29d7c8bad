"""Scenario files (placeholder until the scenario model lands)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def looks_like_scenario(path: str | Path) -> bool:
    return False


def load(path: str | Path) -> Any:
    raise NotImplementedError
