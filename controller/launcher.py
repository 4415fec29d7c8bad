"""``multi6lab controller``: run the site-exit app (os-ken 4 has no manager command of its own)."""

from __future__ import annotations

from pathlib import Path

from multi6lab.controller import app
from multi6lab.topologies.plan import Brief


def run(brief: Brief, port: int, events: str | Path | None, host: str = "127.0.0.1", sites: list[str] | None = None,
        mapping_keys: dict[str, str] | None = None) -> None:
    """Blocks until the framework stops. ``brief`` is this process's part of the plan, resolved by the caller
    (from YAML, a run's plan.json or its controller brief): its own sites and nothing of any other; ``sites``
    names the sites of it this process runs (default: all of them); ``mapping_keys`` are the TSIG secrets of
    the id-loc sites it runs, by site."""
    import logging

    from multi6lab.controller import compat

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app.SETTINGS.update(brief=brief, sites=sites, events=str(events) if events else None,
                        mapping_keys=mapping_keys or {})
    compat.run("multi6lab.controller.app", host, port)
