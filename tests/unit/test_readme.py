"""The README's walkthrough: the topology and scenario a new user copies from it load as written, and its links
point at files that exist (a page moved to docs/ leaves no dead link behind)."""

from __future__ import annotations

import re
from pathlib import Path

from multi6lab.scenarios import model
from multi6lab.topologies import loader

ROOT = Path(__file__).resolve().parents[2]


def walkthrough(into: Path) -> dict[str, Path]:
    """The README's YAML blocks, each written where its first line (a comment naming its path) says."""
    out = {}
    for block in re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S):
        path = into / block.splitlines()[0].lstrip("# ").strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block)
        out[path.parent.name] = path
    return out


def test_the_walkthrough_s_topology_and_scenario_load_as_written(tmp_path: Path) -> None:
    files = walkthrough(tmp_path)
    assert set(files) == {"topologies", "scenarios"}
    topo = loader.load(files["topologies"])
    assert [len(s.exits) for s in topo.sites] == [3]
    sc = model.load(files["scenarios"])
    assert sc.topology.name == topo.name and [f.kind for f in sc.faults] == ["blackhole"]


def test_every_relative_link_in_the_readme_and_docs_points_at_a_file_that_exists() -> None:
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    dead = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", page.read_text()):
            if not re.match(r"^[a-z]+:", target) and not (page.parent / target).exists():
                dead.append(f"{page.relative_to(ROOT)}: {target}")
    assert dead == []
