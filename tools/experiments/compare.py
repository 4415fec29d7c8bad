"""``multi6lab compare``: RFC 4177's approaches side by side: every row of a comparison file (an approach and its
triggers on a topology) against every fault, one generated scenario per cell, on the same probes and clock.

The cells run in an order shuffled from a seed, so that a slow drift of the machine does not fall on one row;
a cell that fails is recorded with its reason and the comparison goes on; ``--resume DIR`` runs only the cells
of DIR that have no summary yet (after a failure, an interruption or a reboot).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from multi6lab.experiments.recipe import PROG, Recipe, Ticker, looked_at, run_folder, say, shipped
from multi6lab.lab import provenance
from multi6lab.lab.emulation import EnvError, require_emulator
from multi6lab.lab.runner import Runner
from multi6lab.results import comparison, html
from multi6lab.results.progress import Progress
from multi6lab.results.report import write_atomic
from multi6lab.scenarios import compare as spec

DEFAULT = Path("scenarios/comparisons/approaches.yaml")
MANIFEST = "compare.json"  # what a comparison directory was made from, for --resume
QUICK_TRIALS = 10


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", type=shipped, default=str(DEFAULT), help="rows and faults to compare")
    p.add_argument("--trials", type=int, help="override the trials per cell")
    p.add_argument("--seed", type=int, default=1, help="the cells run in an order shuffled from this seed, so a "
                                                       "slow drift of the machine does not fall on one row "
                                                       "(default 1)")
    p.add_argument("--file-order", action="store_true", help="run the cells in the file's order instead")
    p.add_argument("--quick", action="store_true", help=f"a first look: {QUICK_TRIALS} trials per cell instead of "
                                                        "the file's (72 in the shipped ones, enough for a 95 %% "
                                                        "interval on every p95)")
    p.add_argument("--rows", metavar="NAME[,NAME]", help="only these rows (their 'name', or their approach)")
    p.add_argument("--out", help="results directory (default results/compare-<time>)")
    p.add_argument("--json", action="store_true", help="the comparison (comparison.json's content) on standard "
                                                       "output; progress and tables go to standard error")
    p.add_argument("--resume", metavar="DIR", help="finish the comparison in DIR: run only its cells that have no "
                                                   "summary yet (its file and trials are read from DIR)")


def run(args: argparse.Namespace, recipe: Recipe) -> int:
    """Every row of the comparison file against every fault, one generated scenario per cell.

    A cell that fails is recorded with its reason and the comparison goes on; ``--resume DIR`` runs only the
    cells of DIR that have no summary yet (after a failure, an interruption or a reboot)."""
    if args.resume:
        out = Path(args.resume)
        try:
            manifest = json.loads((out / MANIFEST).read_text())
        except (OSError, ValueError):
            raise EnvError(f"{out} is not a comparison to resume (no readable {MANIFEST} in it)") from None
        source, trials, seed = Path(manifest["file"]), manifest.get("trials"), manifest.get("seed")
        only = manifest.get("rows")
    else:
        only = args.rows.split(",") if args.rows else None
        out = run_folder(args.out, "compare", create=False)
        source, trials, seed = Path(args.file), args.trials, None if args.file_order else args.seed
        if args.quick and trials is None:
            trials = QUICK_TRIALS
            say(f"quick profile: {QUICK_TRIALS} trials per cell, a first look (no p95 interval has an upper bound "
                "at this count)")
    cells_spec = spec.load(source, trials)
    if only:
        try:
            cells_spec = spec.only_rows(cells_spec, only)
        except ValueError as exc:
            raise EnvError(f"{source}: {exc}") from None
    todo = [c for c in cells_spec if not (args.resume and (out / c.slug / "summary.json").exists())]
    if todo:  # checked once: a machine that cannot build a lab would fail every cell for the same reason
        require_emulator("multi6lab compare")
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(json.dumps({"file": str(source.resolve()), "trials": trials, "seed": seed,
                                            "rows": only}) + "\n")
    rows = list(dict.fromkeys(c.row for c in cells_spec))
    faults = list(dict.fromkeys(c.fault for c in cells_spec))
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    tick = Ticker(Progress(sum(c.scenario.trials for c in todo), time.monotonic()))
    origin = {**provenance.collect(seed), "order": [c.slug for c in spec.run_order(cells_spec, seed)]}
    for k, c in enumerate(spec.run_order(cells_spec, seed), start=1):
        spec.write(c, out / "scenarios")  # to rerun one cell alone
        done = out / c.slug / "summary.json"
        if args.resume and done.exists():
            say(f"[{k}/{len(cells_spec)}] {c.row}: {c.fault} (kept from before)")
            cells[(c.row, c.fault)] = json.loads(done.read_text())
            continue
        say(f"[{k}/{len(cells_spec)}] {c.row}: {c.fault}")
        try:
            cells[(c.row, c.fault)] = Runner(c.scenario, out / c.slug, say, tick).run()
        except Exception as exc:  # whatever broke this cell's lab, the comparison goes on and says why
            (out / c.slug).mkdir(parents=True, exist_ok=True)
            (out / c.slug / "error.txt").write_text(traceback.format_exc())
            say(f"  cell failed: {exc} (details: {out / c.slug / 'error.txt'})")
            cells[(c.row, c.fault)] = {"scenario": c.slug, "error": f"{type(exc).__name__}: {exc}"}
        write_atomic(out / "comparison.json", json.dumps(comparison.as_json(rows, faults, cells, origin), indent=1))
    table = comparison.markdown(rows, faults, cells)
    (out / "comparison.md").write_text(table)
    (out / "headline.md").write_text(comparison.headline(rows, faults, cells))  # the README's brief table
    comparison.chart(rows, faults, cells, out / "comparison.png")
    files = [str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()]
    write_atomic(out / "comparison.html", html.comparison_page(rows, faults, cells, origin, files))
    print(table, end="")
    print(f"\nresults: {out}/comparison.md, comparison.json, comparison.png")
    ok = looked_at([(out / "comparison.html", out / "comparison-page.png")])
    print(f"report: {out / 'comparison.html'}")
    failed = [c for c in cells.values() if "error" in c]
    if failed:
        print(f"{PROG}: {len(failed)} of {len(cells)} cells failed; 'multi6lab compare --resume {out}' reruns them",
              file=sys.stderr)
    args.answer = comparison.as_json(rows, faults, cells, origin)  # --json
    return 0 if ok and not failed else 1
