"""Scenario subcommands of ``multi6lab`` (run, report), registered by :mod:`tools.cli`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def register(add: Callable[..., Any]) -> None:
    pass
