"""Comparison files (``scenarios/comparisons/*.yaml``): rows of approach x trigger against named faults.

Each cell is an ordinary :class:`~multi6lab.scenarios.model.Scenario`, checked as strictly as a scenario file,
but built in memory from the comparison: a problem in a cell is reported at the line and column of the row or
fault in the comparison file that set it. A fault names no exit: it hits the primary exit of the row's site.
Each cell's scenario can also be written out as a file, so that a user can rerun one cell alone.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from multi6lab.scenarios.model import (
    COMPARISON_SCHEMA_PATH,
    FAULT_TYPES,
    RECORD_S,
    Checker,
    Scenario,
    fault_fields,
    validator,
)
from multi6lab.topologies import loader, yamlsrc
from multi6lab.topologies.model import Topology
from multi6lab.topologies.yamlsrc import InputError, PathKey, Source
from multi6lab.vocabulary import FaultKind

ROW_KEYS = ("approach", "triggers", "heartbeat", "bgp", "mobility", "controllers", "site", "host", "remote",
            "topology", "profiles")
NO_FAULT = "no fault"  # the column 'baseline_trials' adds: each row's instrument reading with nothing broken
BASELINE = {"kind": "baseline", "at": 0.0, "duration": 1.0}


@dataclass(frozen=True)
class Cell:
    row: str  # the row's label in tables: approach x trigger
    fault: str  # the fault's name in the comparison file
    slug: str  # names the cell's results directory and scenario file
    doc: dict[str, Any]  # the cell as scenario data (what write() saves)
    scenario: Scenario
    name: str = ""  # the row's name (its 'name', or its approach)


def run_order(cells: list[Cell], seed: int | None) -> list[Cell]:
    """The order to run ``cells`` in: shuffled from ``seed`` (the same seed, the same order), so that whatever
    drifts during a long comparison (the machine's load, its temperature) spreads over every row instead of
    falling on the rows that happen to run last; the file's order when ``seed`` is None."""
    if seed is None:
        return list(cells)
    order = list(cells)
    random.Random(seed).shuffle(order)
    return order


def load(path: Path, trials: int | None = None) -> list[Cell]:
    """Every cell of the comparison at ``path``, rows in order, each row's faults in order."""
    return from_source(yamlsrc.load(path), trials)


def from_source(src: Source, trials: int | None = None) -> list[Cell]:
    """The cells of an already parsed comparison file (its topology paths are relative to the file)."""
    path = Path(src.file)
    if not isinstance(src.data, dict):
        raise InputError([src.problem((), "a comparison is a YAML mapping (rows, faults, trials, record_s)")])
    problems = [src.problem(p, msg, at_key) for err in validator(COMPARISON_SCHEMA_PATH).iter_errors(src.data)
                for p, msg, at_key in loader.schema_messages(err)]
    if problems:
        raise InputError(problems)
    d = src.data
    topologies: dict[Path, Topology] = {}
    out: list[Cell] = []
    names: dict[str, int] = {}  # a row's name makes its cells' directories: two rows may not share one
    for i, row in enumerate(d["rows"]):
        name = row.get("name", row["approach"])
        if name in names:
            where = ("rows", i, "name") if "name" in row else ("rows", i)
            problems.append(src.problem(where, f"rows[{names[name]}] is already named '{name}' (its cells' results "
                                               "would overwrite each other); give this row its own 'name'"))
            continue
        names[name] = i
        tpath = (path.parent / row["topology"]).resolve()
        if tpath not in topologies:
            try:
                topologies[tpath] = loader.load(tpath)
            except InputError as exc:
                first = exc.problems[0]
                problems.append(src.problem(("rows", i, "topology"), f"topology {row['topology']} does not load: "
                                            f"{first.message} ({first.file}:{first.line})"))
                continue
        faults = [(fname, fault, trials) for fname, fault in d["faults"].items()]
        if "baseline_trials" in d:  # every row's own zero: what its outage reads when nothing breaks
            faults.insert(0, (NO_FAULT, BASELINE, trials or d["baseline_trials"]))
        for fname, fault, n in faults:
            try:
                out.append(_cell(src, path, i, row, fname, fault, topologies, n))
            except InputError as exc:
                problems += exc.problems
    if problems:
        raise InputError(sorted(set(problems)))
    return _distinct_rows(out)


def only_rows(cells: list[Cell], names: list[str]) -> list[Cell]:
    """The cells of the rows named ``names`` (each row's ``name``, or its approach), in the file's order; a name
    no row has is a ValueError that lists the ones there are."""
    known = list(dict.fromkeys(c.name for c in cells))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"no row is named {', '.join(map(repr, unknown))} (the rows: {', '.join(known)})")
    return [c for c in cells if c.name in names]


def _distinct_rows(cells: list[Cell]) -> list[Cell]:
    """Rows that read alike (the same approach and triggers on other topologies or sites) get their names
    added, or their cells would share one table row."""
    names: dict[str, set[str]] = {}
    for c in cells:
        names.setdefault(c.row, set()).add(c.name)
    return [dataclasses.replace(c, row=f"{c.row} · {c.name}") if len(names[c.row]) > 1 else c for c in cells]


def _cell(src: Source, path: Path, i: int, row: dict[str, Any], fname: str, fault: dict[str, Any],
          topologies: dict[Path, Topology], trials: int | None) -> Cell:
    d = src.data
    topo = topologies[(path.parent / row["topology"]).resolve()]
    site = next((s for s in topo.sites if s.name == row["site"]), None)
    if site is None:
        raise InputError([src.problem(("rows", i, "site"), f"no site '{row['site']}' in {row['topology']}")])
    duration = row.get("duration")
    takes_exit = "exit" in fault_fields(FAULT_TYPES[FaultKind(fault["kind"])])  # a baseline breaks nothing
    # A row may cap how long its faults last (and so how long a trial waits for a slow recovery).
    record_s = float(d.get("record_s", RECORD_S))
    if duration is not None:
        record_s = max(record_s, float(duration) + 1.0)
    slug = f"{row.get('name', row['approach'])}-{fname}".replace(" ", "-")
    doc: dict[str, Any] = {"name": slug, "topology": str((path.parent / row["topology"]).resolve()),
                           **{k: row[k] for k in ROW_KEYS if k in row and k != "topology"},
                           "trials": int(trials or d.get("trials", 20)), "record_s": record_s,
                           # every cell has the independent instrument (results.witness) beside the probes
                           "traffic": {"witness": True},
                           "faults": [{**fault, **({"exit": site.exits[0].name} if takes_exit else {}),
                                       **({"duration": duration} if duration is not None else {})}]}

    def locate(p: PathKey) -> PathKey:
        """A path in the cell's data -> where the comparison file set it."""
        head = p[0] if p else ""
        if head == "faults":
            rest = p[2:]
            if rest[:1] == ("duration",) and duration is not None:
                return ("rows", i, "duration")
            if rest[:1] == ("exit",):
                return ("rows", i, "site")
            return ("faults", fname, *rest) if fname != NO_FAULT else ("baseline_trials",)
        if head in ("trials", "record_s") and head in d:
            return (head,)
        if head in ROW_KEYS or head == "name":
            return ("rows", i, *(p if head != "name" or "name" in row else ()))
        return ("rows", i)

    scenario = Checker(src, doc, path.parent, str(path), locate, topologies).build()
    return Cell(f"{scenario.approach_detail} × {scenario.trigger_label}", fname, slug, doc, scenario,
                row.get("name", row["approach"]))


def write(cell: Cell, directory: Path) -> Path:
    """The cell as a scenario file of its own, to rerun it alone with ``multi6lab run``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{cell.slug}.yaml"
    path.write_text(yaml.safe_dump(cell.doc, sort_keys=False))
    return path
