"""The experiments' registry and shared recipe: every experiment module is listed once and answers the same
interface, and what a run records (its reproducing command, its JSON, its table) is spelled in one place."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from multi6lab.cli import main, parser
from multi6lab.experiments import EXPERIMENTS
from multi6lab.experiments.recipe import Recipe, Record, command_line, numbers

ROOT = Path(__file__).resolve().parents[2]


def test_every_experiment_module_is_registered_once() -> None:
    modules = {f.stem for f in (ROOT / "tools" / "experiments").glob("*.py")} - {"__init__", "recipe"}
    assert sorted(c.module for c in EXPERIMENTS) == sorted(modules)
    assert len({c.name for c in EXPERIMENTS}) == len(EXPERIMENTS)


@pytest.mark.parametrize("card", EXPERIMENTS, ids=lambda c: c.name)
def test_each_experiment_has_options_and_a_run_and_parses_its_defaults(card) -> None:  # type: ignore[no-untyped-def]
    module = card.load()
    assert callable(module.options) and callable(module.run)
    args = parser([card.name]).parse_args([card.name])
    assert args.card is card and hasattr(args, "out")


def test_the_command_line_lists_every_experiment_without_importing_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    assert all(c.name in listing for c in EXPERIMENTS)
    assert "--trials" not in _sub(argparse.Namespace(cmd="upgrade"), ["validate"]).format_help()


def test_the_recorded_command_spells_every_option_and_leaves_out_the_folder() -> None:
    p = parser(["scale-outage"])
    args = p.parse_args(["scale-outage", "--sites", "1,5", "--out", "/tmp/x", "--bfd", "10"])
    sub = args.parser
    assert command_line("scale-outage", sub, args) == (
        "multi6lab scale-outage --sites 1,5 --approach nptv6 --triggers link,heartbeat --trials 10 --rate 200.0 "
        "--fault-s 1.0 --seed 1 --sites-per-controller 1 --bfd 10")
    up = parser(["up"]).parse_args(["up", "t.yaml", "-c", "h1:ip -6 a", "-c", "r:true"])
    assert command_line("up", _sub(up), up) == (
        "multi6lab up t.yaml --command 'h1:ip -6 a' --command r:true --servers 1 --cluster-links vxlan")


def _sub(args: argparse.Namespace, argv: list[str] | None = None) -> argparse.ArgumentParser:
    """A command's own parser, as the command line built for ``argv`` holds it."""
    top = parser(argv or [args.cmd])
    return top._subparsers._group_actions[0].choices[args.cmd]  # type: ignore[union-attr]


def test_a_record_saves_its_command_fields_and_provenance_and_publishes_its_table(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = Record("demo", tmp_path, "multi6lab demo --trials 2", {"commit": "abc"})
    rec.save(rows=[1, 2])
    assert json.loads((tmp_path / "demo.json").read_text()) == {
        "command": "multi6lab demo --trials 2", "rows": [1, 2], "provenance": {"commit": "abc"}}
    rec.publish("| a |\n", ["demo.png"])
    assert (tmp_path / "demo.md").read_text() == "| a |\n"
    assert f"results: {tmp_path}/demo.json, demo.md, demo.png" in capsys.readouterr().out


def test_a_run_begins_in_its_folder_with_its_command_and_provenance_only_when_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from multi6lab.lab import provenance

    monkeypatch.setattr(provenance, "collect", lambda seed=None: {"seed": seed})
    out = tmp_path / "fc"
    args = parser(["first-contact"]).parse_args(["first-contact", "--trials", "3", "--out", str(out)])
    recipe = Recipe("first-contact", args.parser, args)
    assert not out.exists()  # checks come first: a refused argument leaves no folder
    rec = recipe.begin(args.seed)
    assert out.is_dir() and rec.provenance == {"seed": 1}
    assert rec.command == "multi6lab first-contact topologies/two-sites.yaml --trials 3 --seed 1"


def test_a_list_of_numbers_is_read_or_refused_in_one_sentence() -> None:
    from multi6lab.lab.emulation import EnvError

    assert numbers("5,25.5", float, "--delays", "delays in ms") == [5.0, 25.5]
    with pytest.raises(EnvError, match="--prefixes 10,many: give counts"):
        numbers("10,many", int, "--prefixes", "counts")


def test_shipped_files_are_found_from_any_directory_and_a_user_s_own_file_wins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from multi6lab.experiments.recipe import shipped

    monkeypatch.chdir(tmp_path)
    assert shipped("topologies/figure1.yaml") == str(ROOT / "topologies" / "figure1.yaml")
    assert shipped("scenarios/comparisons/approaches.yaml") == str(ROOT / "scenarios/comparisons/approaches.yaml")
    assert shipped("topologies/nowhere.yaml") == "topologies/nowhere.yaml"  # the loader says it is missing
    (tmp_path / "topologies").mkdir()
    (tmp_path / "topologies" / "figure1.yaml").write_text("mine")
    assert shipped("topologies/figure1.yaml") == "topologies/figure1.yaml"
    assert main(["validate", "scenarios/demo.yaml"]) == 0 and "ok: " in capsys.readouterr().out


def test_the_version_names_the_package_and_the_commit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("multi6lab 0.1.0")
