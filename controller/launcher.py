"""``multi6lab controller``: run the site-exit app (os-ken 4 has no manager command of its own)."""

from __future__ import annotations

from pathlib import Path

from controller import app


def run(topology: str | Path, port: int, events: str | Path | None, host: str = "127.0.0.1") -> None:
    """Blocks until the framework stops. The topology is validated by the caller first."""
    import logging

    from controller import compat

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app.SETTINGS.update(topology=str(topology), events=str(events) if events else None)
    compat.run("controller.app", host, port)
