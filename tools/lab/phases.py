"""How long each step of a lab's bring-up and teardown took: where the time goes as labs grow (issue 15).

Pure: spans on the monotonic clock; a nested step is named under its parent ("ready/hosts autoconfigure"),
so the top-level steps add up to the whole. A step that runs twice adds up.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


class Phases:
    def __init__(self) -> None:
        self._spans: list[tuple[int, str, float]] = []  # (order it started in, name, seconds)
        self._stack: list[str] = []
        self._started = 0

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        """Time the block as step ``name`` (under the step that encloses it, if any)."""
        full = "/".join([*self._stack, name])
        order, self._started = self._started, self._started + 1
        self._stack.append(name)
        t = time.monotonic()
        try:
            yield
        finally:
            self._stack.pop()
            self._spans.append((order, full, time.monotonic() - t))

    def as_dict(self, nested: bool = True) -> dict[str, float]:
        """Each step's seconds in the order the steps started; ``nested=False``: the top-level ones only."""
        out: dict[str, float] = {}
        for _, name, s in sorted(self._spans):
            if nested or "/" not in name:
                out[name] = round(out.get(name, 0.0) + s, 4)
        return out
