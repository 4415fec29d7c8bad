"""Scenario subcommands of ``multi6lab`` (run, report), registered by :mod:`tools.cli`."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path("results")


def cmd_run(args: argparse.Namespace) -> int:
    from scenarios import model
    from scenarios.runner import Runner
    from tools import report
    from tools.cli import say

    sc = model.load(args.scenario)
    if args.trials:
        sc = dataclasses.replace(sc, trials=args.trials)
    out = Path(args.out) if args.out else RESULTS / f"{sc.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    say(f"scenario {sc.name}: {sc.topology.name}, {sc.approach_label}, trigger {sc.trigger_label}, "
        f"{sc.trials} trials -> {out}")
    summary = Runner(sc, out, say).run()
    print()
    print(report.markdown([summary]), end="")
    print(f"\nresults: {out}/summary.json, trials.csv, timeline-outbound.png, timeline-inbound.png")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from tools import report

    runs = report.collect(Path(args.results))
    if not runs:
        print(f"no results in {args.results}/ yet; run 'sudo make demo' or 'multi6lab run SCENARIO'",
              file=sys.stderr)
        return 1
    table = report.markdown(runs)
    (Path(args.results) / "report.md").write_text(table)
    print(table, end="")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Every row of the comparison file against every fault, one generated scenario per cell."""
    import json

    from scenarios import compare, model
    from scenarios.runner import Runner
    from tools import comparison
    from tools.cli import say

    out = Path(args.out) if args.out else RESULTS / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
    cells_spec = compare.cells(Path(args.file), args.trials)
    rows = list(dict.fromkeys(c.row for c in cells_spec))
    faults = list(dict.fromkeys(c.fault for c in cells_spec))
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for k, c in enumerate(cells_spec, start=1):
        path = compare.write(c, out / "scenarios")
        say(f"[{k}/{len(cells_spec)}] {c.row}: {c.fault}")
        cells[(c.row, c.fault)] = Runner(model.load(path), out / c.slug, say).run()
        (out / "comparison.json").write_text(json.dumps(comparison.as_json(rows, faults, cells), indent=1))
    table = comparison.markdown(rows, faults, cells)
    (out / "comparison.md").write_text(table)
    comparison.chart(rows, faults, cells, out / "comparison.png")
    print(table, end="")
    print(f"\nresults: {out}/comparison.md, comparison.json, comparison.png")
    return 0


def register(add: Callable[..., Any]) -> None:
    r = add("run", cmd_run, "run a scenario: faults, probes and trials; writes results/<run>/ (root)")
    r.add_argument("scenario", metavar="SCENARIO")
    r.add_argument("--trials", type=int, help="override the scenario's number of trials")
    r.add_argument("--out", help="results directory (default results/<name>-<time>)")
    p = add("report", cmd_report, "a markdown table over every run in results/")
    p.add_argument("results", nargs="?", default=str(RESULTS))
    c = add("compare", cmd_compare, "RFC 4177's approaches side by side on the same faults and clock (root)")
    c.add_argument("file", nargs="?", default="scenarios/compare.yaml", help="rows and faults to compare")
    c.add_argument("--trials", type=int, help="override the trials per cell")
    c.add_argument("--out", help="results directory (default results/compare-<time>)")
