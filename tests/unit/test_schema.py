"""The JSON Schema shipped for editors agrees with the loader: same verdict on valid and on structurally
invalid documents; semantic mistakes (which no schema can see) pass the schema and fail the loader."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from multi6lab.topologies import loader
from multi6lab.topologies.yamlsrc import InputError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "topologies" / "schema.json").read_text())
FIGURE1 = (ROOT / "topologies" / "figure1.yaml").read_text()

STRUCTURAL = {
    "unknown top-level key": FIGURE1 + "\ncolour: red\n",
    "unknown site key": FIGURE1.replace("    fabric: sw", "    fabric: sw\n    colour: red"),
    "unknown defaults key": FIGURE1.replace("  link:\n", "  linky: {}\n  link:\n"),
    "asn as text": FIGURE1.replace("asn: 64501", "asn: lots"),
    "bad trigger": FIGURE1.replace("triggers: [link, heartbeat]", "triggers: [gut-feeling]"),
    "one endpoint": FIGURE1.replace('["r:eth0", "core:eth3"]', '["r:eth0"]'),
    "endpoint without interface": FIGURE1.replace('"r:eth0"', '"r"'),
    "negative loss": FIGURE1.replace("bw: 100 ", "loss_pct: -1 "),
    "upper-case name": FIGURE1.replace("hosts: [h1]", "hosts: [H1]"),
}
SEMANTIC = {
    "dangling link": FIGURE1.replace('"core:eth3"', '"nowhere:eth3"'),
    "delegation outside PA": FIGURE1.replace('"3fff:a:5::/48"', '"3fff:b:9::/48"'),
    "exit to foreign ISP": FIGURE1.replace('["exb:eth2", "ispb:eth1"]', '["exb:eth2", "ispa:eth7"]'),
}


def schema_ok(text: str) -> bool:
    try:
        jsonschema.validate(yaml.safe_load(text), SCHEMA, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError:
        return False
    return True


def loader_ok(text: str) -> bool:
    try:
        loader.loads(text)
    except InputError:
        return False
    return True


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", sorted((ROOT / "topologies").glob("*.yaml")), ids=lambda p: p.name)
def test_both_accept_shipped(path: Path) -> None:
    text = path.read_text()
    assert schema_ok(text) and loader_ok(text)


@pytest.mark.parametrize("name", sorted(STRUCTURAL))
def test_both_reject_structural_mistakes(name: str) -> None:
    assert STRUCTURAL[name] != FIGURE1, "fixture no longer changes figure1.yaml"
    assert not schema_ok(STRUCTURAL[name])
    assert not loader_ok(STRUCTURAL[name])


@pytest.mark.parametrize("name", sorted(SEMANTIC))
def test_semantic_mistakes_pass_schema_fail_loader(name: str) -> None:
    assert SEMANTIC[name] != FIGURE1
    assert schema_ok(SEMANTIC[name])
    assert not loader_ok(SEMANTIC[name])


@pytest.mark.parametrize("schema", ["topologies/schema.json", "scenarios/schema.json",
                                    "scenarios/comparisons/schema.json"])
def test_every_shipped_schema_is_valid_and_resolves_its_refs(schema: str) -> None:
    """An editor resolves the shared definitions relative to each file; so does the checker."""
    from multi6lab.scenarios.model import validator

    jsonschema.Draft202012Validator.check_schema(json.loads((ROOT / schema).read_text()))
    files = {"topologies/schema.json": (ROOT / "topologies").glob("*.yaml"),
             "scenarios/schema.json": [*(ROOT / "scenarios").glob("*.yaml"),
                                       *(ROOT / "scenarios" / "benchmarks").glob("*.yaml")],
             "scenarios/comparisons/schema.json": (ROOT / "scenarios" / "comparisons").glob("*.yaml")}[schema]
    for f in files:
        assert list(validator(ROOT / schema).iter_errors(yaml.safe_load(f.read_text()))) == [], f


def enums(node: object) -> list[list[str]]:
    """Every 'enum' list in a schema, at any depth."""
    if isinstance(node, dict):
        return ([node["enum"]] if "enum" in node else []) + [e for v in node.values() for e in enums(v)]
    if isinstance(node, list):
        return [e for v in node for e in enums(v)]
    return []


@pytest.mark.parametrize("schema", ["topologies/schema.json", "scenarios/schema.json"])
def test_every_schema_enum_of_the_shared_words_spells_the_vocabulary_exactly(schema: str) -> None:
    """An editor's completion offers what the loader accepts: an enum that names an approach, a trigger, an
    exit policy or a fault kind names all of them, in the vocabulary's order (tools/vocabulary.py is the
    source; the schemas copy it, and the comparisons' schema refers to the topologies')."""
    from multi6lab import vocabulary

    words = {k.__name__: k.values() for k in (vocabulary.Approach, vocabulary.Trigger, vocabulary.ExitPolicy,
                                              vocabulary.FaultKind)}
    found = set()
    for enum in enums(json.loads((ROOT / schema).read_text())):
        near = [name for name, values in words.items() if set(enum) & set(values)]
        if near:
            match = [name for name in near if tuple(enum) == words[name]]
            assert match, f"{schema}: {enum} is not the vocabulary's {' or '.join(near)}: {[words[n] for n in near]}"
            found.update(match)
    assert found == ({"Approach", "Trigger", "ExitPolicy"} if schema.startswith("topologies") else {"FaultKind"})
