"""Comparison files (``scenarios/compare.yaml``): rows of approach x trigger against named faults.

Each cell becomes an ordinary scenario, written out so that it can be rerun and read on its own; a fault
names no exit, it hits the primary exit of the row's site. Loading every cell's scenario validates a
comparison file as strictly as a scenario.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scenarios import model
from topologies import loader, yamlsrc
from topologies.model import Bgp
from topologies.yamlsrc import InputError, PathKey

ROW_KEYS = {"approach", "triggers", "topology", "site", "host", "remote"}
OPTIONAL_ROW_KEYS = {"name", "bgp", "duration"}


@dataclass(frozen=True)
class Cell:
    row: str
    fault: str
    slug: str
    doc: dict[str, Any]


def looks_like_comparison(path: str | Path) -> bool:
    try:
        data = yamlsrc.load(path).data
    except InputError:
        return False
    return isinstance(data, dict) and "rows" in data


def cells(path: Path, trials: int | None = None) -> list[Cell]:
    src = yamlsrc.load(path)
    d = src.data
    problems = []
    if not isinstance(d, dict) or not isinstance(d.get("rows"), list) or not isinstance(d.get("faults"), dict):
        raise InputError([src.problem((), "a comparison needs 'rows' (a list) and 'faults' (a mapping)")])
    out: list[Cell] = []
    for i, row in enumerate(d["rows"]):
        where: PathKey = ("rows", i)
        if not isinstance(row, dict) or not ROW_KEYS <= set(row) <= ROW_KEYS | OPTIONAL_ROW_KEYS:
            problems.append(src.problem(where, f"a row has these keys: {', '.join(sorted(ROW_KEYS))}, and may have "
                                               f"{', '.join(sorted(OPTIONAL_ROW_KEYS))}"))
            continue
        topo_path = (path.parent / row["topology"]).resolve()
        try:
            site = loader.load(topo_path).site(row["site"])
        except (InputError, StopIteration):
            problems.append(src.problem((*where, "site"), f"no site '{row['site']}' in a valid {row['topology']}"))
            continue
        label = f"{row['approach']} × {_trigger_text(row)}"
        # A row may cap how long its faults last (and so how long a trial waits for a slow recovery).
        duration = row.get("duration")
        record_s = max(float(d.get("record_s", 2.0)), float(duration) + 1.0) if duration else d.get("record_s", 2.0)
        for fname, fault in d["faults"].items():
            slug = f"{row.get('name', row['approach'])}-{fname}".replace(" ", "-")
            doc = {"name": slug, "topology": str(topo_path), "approach": row["approach"],
                   "triggers": row["triggers"], "site": row["site"], "host": row["host"],
                   "remote": row["remote"], "trials": int(trials or d.get("trials", 20)),
                   "record_s": float(record_s),
                   "faults": [{**fault, "exit": site.exits[0].name, **({"duration": duration} if duration else {})}]}
            if "bgp" in row:
                doc["bgp"] = row["bgp"]
            out.append(Cell(label, fname, slug, doc))
    if problems:
        raise InputError(problems)
    return out


def _trigger_text(row: dict[str, Any]) -> str:
    """How a row's trigger reads in the table: the BGP timers and BFD for routing, else the trigger names."""
    if row["approach"] != "routing":
        return "+".join(row["triggers"])
    return Bgp.from_dict(row.get("bgp") or {}).describe()


def write(cell: Cell, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{cell.slug}.yaml"
    path.write_text(yaml.safe_dump(cell.doc, sort_keys=False))
    return path


def validate(path: Path) -> int:
    """Load every cell's scenario; raises InputError naming the cell's problem. Returns the number of cells."""
    all_cells = cells(path)
    with tempfile.TemporaryDirectory() as tmp:
        for c in all_cells:
            model.load(write(c, Path(tmp)))
    return len(all_cells)
