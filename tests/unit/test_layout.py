"""The layout's promises: one parse per run, a controller that never sees YAML, an import graph without cycles
or arrows up to the CLI, and a plan that survives its trip to the controller process unchanged."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from multi6lab.layout import modules
from multi6lab.scenarios import compare, model
from multi6lab.topologies import codec, loader, yamlsrc
from multi6lab.topologies.plan import build

ROOT = Path(__file__).resolve().parents[2]


def imports(path: Path) -> set[str]:
    """Every multi6lab module ``path`` imports, at any depth of the file (lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: {i for i in imports(f) if i in mods and i != m} for m, f in mods.items()}


def test_the_package_is_mapped_onto_the_users_folders() -> None:
    mods = modules()
    assert {"multi6lab.cli", "multi6lab.vocabulary", "multi6lab.lab.lifecycle", "multi6lab.traffic.probe",
            "multi6lab.results.analysis", "multi6lab.topologies.loader", "multi6lab.controller.policy",
            "multi6lab.scenarios.model"} <= set(mods)
    import multi6lab.topologies.loader

    assert Path(multi6lab.topologies.loader.__file__) == ROOT / "topologies" / "loader.py"


def test_the_import_graph_has_no_cycle() -> None:
    g = graph()
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(g[m]):
            if state.get(n) == 1:
                pytest.fail("import cycle: " + " -> ".join([*stack[stack.index(n):], n]))
            if n not in state:
                visit(n, [*stack, n])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])


def test_nothing_below_the_cli_imports_it() -> None:
    assert [m for m, deps in graph().items() if "multi6lab.cli" in deps] == []


def test_pure_layers_do_not_import_the_plumbing() -> None:
    plumbing = ("multi6lab.lab", "multi6lab.traffic", "multi6lab.cli")
    pure = [m for m in graph() if m.startswith(("multi6lab.topologies", "multi6lab.scenarios", "multi6lab.results",
                                                "multi6lab.vocabulary"))]
    offenders = {m: sorted(d for d in graph()[m] if d.startswith(plumbing)) for m in pure}
    assert {m: d for m, d in offenders.items() if d} == {}


def test_the_controller_never_reads_yaml() -> None:
    for m, f in modules().items():
        if m.startswith("multi6lab.controller"):
            found = imports(f)
            assert not {"yaml", "multi6lab.topologies.loader", "multi6lab.topologies.yamlsrc"} & found, m


def test_a_scenario_parses_each_file_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    real = yamlsrc.parse
    monkeypatch.setattr(yamlsrc, "parse", lambda text, name="<string>": parsed.append(name) or real(text, name))
    sc = model.load(ROOT / "scenarios" / "idloc-blackhole.yaml")
    assert sorted(Path(p).name for p in parsed) == ["idloc-blackhole.yaml", "two-sites.yaml"]
    plan = codec.loads(codec.dumps(build(sc.effective)))  # what the controller process gets
    assert len(parsed) == 2 and {s.site.approach for s in plan.sites} == {"id-loc"}


def test_a_comparison_parses_each_topology_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    real = yamlsrc.parse
    monkeypatch.setattr(yamlsrc, "parse", lambda text, name="<string>": parsed.append(name) or real(text, name))
    cells = compare.load(ROOT / "scenarios" / "comparisons" / "approaches.yaml")
    assert len(cells) == 20  # 5 rows x (3 faults + no fault)
    assert sorted(Path(p).name for p in parsed) == ["approaches.yaml", "figure1.yaml", "two-sites.yaml"]


@pytest.mark.parametrize("name", ["figure1", "three-isps", "two-sites", "figure1-home-agent"])
def test_the_plan_survives_its_json_trip(name: str) -> None:
    plan = build(loader.load(ROOT / "topologies" / f"{name}.yaml"))
    text = codec.dumps(plan)
    again = codec.loads(text)
    assert again == plan and codec.dumps(again) == text
    # Fields excluded from equality travel too.
    assert again.topology.kinds == plan.topology.kinds
    assert [h.addresses for s in again.sites for h in s.hosts] == [h.addresses for s in plan.sites for h in s.hosts]


@pytest.mark.parametrize("text", ["{}", '{"format": 1, "plan": {"topology": 5}}', "[1, 2]", "not json"])
def test_a_damaged_plan_file_is_one_sentence(tmp_path: Path, text: str) -> None:
    f = tmp_path / "plan.json"
    f.write_text(text)
    with pytest.raises(codec.CodecError, match="plan"):
        codec.read(f)


@pytest.mark.parametrize(("path", "parsed"), [
    ("topologies/figure1.yaml", ["figure1.yaml"]),
    ("scenarios/demo.yaml", ["demo.yaml", "figure1.yaml"]),
    ("scenarios/comparisons/approaches.yaml", ["approaches.yaml", "figure1.yaml", "two-sites.yaml"]),
])
def test_validate_parses_each_file_once(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                        path: str, parsed: list[str]) -> None:
    from multi6lab.cli import main

    seen: list[str] = []
    real = yamlsrc.parse
    monkeypatch.setattr(yamlsrc, "parse", lambda text, name="<string>": seen.append(name) or real(text, name))
    assert main(["validate", str(ROOT / path)]) == 0 and "ok:" in capsys.readouterr().out
    assert sorted(Path(p).name for p in seen) == parsed


def test_the_architecture_page_names_every_module_and_which_are_plumbing() -> None:
    """docs/architecture.md's table says of each module whether it is held to mypy --strict and the coverage
    floor; pyproject.toml's one list of the plumbing says the same, and no module is left out."""
    from multi6lab.layout import plumbing

    held: dict[str, bool] = {}
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 3 and cells[2] in ("yes", "no"):
            held |= dict.fromkeys(re.findall(r"`(multi6lab[\w.]*)`", cells[1]), cells[2] == "yes")
    named = {m for m, f in modules().items() if f.name != "__init__.py" or m == "multi6lab.experiments"}
    assert sorted(named - set(held)) == []
    assert sorted(set(held) - set(modules())) == []
    assert sorted(m for m, yes in held.items() if yes == (m in plumbing())) == []
