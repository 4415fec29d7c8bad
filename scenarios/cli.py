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


def register(add: Callable[..., Any]) -> None:
    r = add("run", cmd_run, "run a scenario: faults, probes and trials; writes results/<run>/ (root)")
    r.add_argument("scenario", metavar="SCENARIO")
    r.add_argument("--trials", type=int, help="override the scenario's number of trials")
    r.add_argument("--out", help="results directory (default results/<name>-<time>)")
    p = add("report", cmd_report, "a markdown table over every run in results/")
    p.add_argument("results", nargs="?", default=str(RESULTS))
