"""What every experiment does the same way: where its results go, what it says while it runs, the command that
reproduces it, its JSON written atomically beside the machine's provenance, its table published.

An experiment module (this package's registry lists them) holds only what is its own: its options, its checks,
its trials and which analysis summarises them. This module holds the recipe they share, so a new experiment
cannot forget a step of it (say, the provenance) and no two experiments spell it differently.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from multi6lab.results.progress import Progress

PROG = "multi6lab"
RESULTS = Path(os.environ.get("MULTI6LAB_RESULTS") or "results")  # where runs go unless --out says otherwise


class Experiment(Protocol):
    """One experiment: its options on its own sub-command, and its run (checks, trials, summary, report)."""

    def options(self, p: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, recipe: Recipe) -> int: ...


def shipped(text: str) -> str:
    """A file as the user named it, from the directory they are in; or, when it is not there and its name is a
    shipped file's (``topologies/...``, ``scenarios/...``: multi6lab run from another directory), that file."""
    path = Path(text)
    if path.exists() or path.is_absolute() or not path.parts or path.parts[0] not in ("topologies", "scenarios"):
        return text
    import multi6lab.scenarios
    import multi6lab.topologies

    package = multi6lab.topologies if path.parts[0] == "topologies" else multi6lab.scenarios
    assert package.__file__ is not None  # a regular package, with its data files beside it
    inside = Path(package.__file__).parent.joinpath(*path.parts[1:])
    return str(inside) if inside.exists() else text


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


MADE: list[Path] = []  # the result folders this process made, handed back to the user who ran sudo


def run_folder(out: str | None, name: str, create: bool = True) -> Path:
    """Where a command's results go: ``--out``, or results/<name>-<time>."""
    path = Path(out) if out else RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    MADE.extend(p for p in (path.parent, path) if not p.exists())
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def hand_back(env: Mapping[str, str] | None = None) -> None:
    """Under sudo, give the folders this run made (and everything in them) to the user who ran sudo, so that
    they can read, move and delete their results without root."""
    env = os.environ if env is None else env
    if os.geteuid() != 0 or "SUDO_UID" not in env:
        return
    uid, gid = int(env["SUDO_UID"]), int(env.get("SUDO_GID", env["SUDO_UID"]))
    for top in MADE:
        for p in [top, *(top.rglob("*") if top.is_dir() else ())]:
            with contextlib.suppress(OSError):  # gone, or on a file system without owners: nothing to hand back
                os.lchown(p, uid, gid)


def command_line(name: str, p: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The command that reproduces a run: ``name`` with every option's value spelled out, defaults too (so a
    later change of default does not change what the recorded command does); ``--out`` is left to the reader."""
    words = [PROG, name]
    for a in p._actions:  # argparse's own list of what the parser takes, in the order it was declared
        value = getattr(args, a.dest, None)
        if isinstance(a, argparse._HelpAction) or a.dest == "out" or value is None or value is False:
            continue
        values = [str(v) for v in value] if isinstance(value, list) else [] if value is True else [str(value)]
        if not a.option_strings:
            words += values
        elif isinstance(a, argparse._AppendAction):
            words += [w for v in values for w in (a.option_strings[-1], v)]
        else:
            words += [a.option_strings[-1], *values]
    return " ".join(w if w and not set(w) & set(" '\"$") else repr(w) for w in words)


T = TypeVar("T", int, float)


def numbers(text: str, kind: Callable[[str], T], option: str, what: str) -> list[T]:
    """A comma-separated list of numbers given to ``option``; EnvError saying what it takes otherwise."""
    from multi6lab.lab.emulation import EnvError

    try:
        values = [kind(x) for x in text.split(",")]
    except ValueError:
        raise EnvError(f"{option} {text}: give {what}") from None
    return values


def add_servers(p: argparse.ArgumentParser) -> None:
    """``--servers`` and ``--cluster-links``: the options of every command that can spread its lab."""
    from multi6lab.topologies.cluster import LINK_KINDS

    p.add_argument("--servers", type=int, default=1, metavar="N",
                   help="spread the lab over N servers with Mininet's cluster mode: this machine (controllers, ISPs, "
                        "core) and N-1 emulated ones, each taking whole sites, reached over SSH (default 1; "
                        "docs/cluster.md)")
    p.add_argument("--cluster-links", choices=LINK_KINDS, default=LINK_KINDS[0],
                   help="how links between servers are carried: VXLAN over the management link (default), or "
                        "cluster mode's SSH Ethernet tunnels, which hold frames for an end that is down")


@dataclass
class Ticker:
    """Counts finished trials and says how far the work is (a bar too when a person is watching)."""

    progress: Progress
    bar: bool = field(default_factory=sys.stdout.isatty)
    done: int = 0

    def __call__(self) -> str:
        self.done += 1
        return self.progress.status(self.done, time.monotonic(), self.bar)


def looked_at(pages: list[tuple[Path, Path]], required: bool = False) -> bool:
    """Open each (report, screenshot) in one headless Chromium, say what it showed, keep a screenshot; False if
    one is broken.

    After a run, a machine without a browser (the project's set-up installs one) gets a note, not a failure:
    the report itself is written either way."""
    from multi6lab.results import browser

    try:
        seen = browser.check_all(pages)
    except browser.BrowserUnavailable as exc:
        print(f"{PROG}: {exc}" if required else f"report not checked in a browser: {exc}",
              file=sys.stderr if required else sys.stdout)
        return not required
    ok = True
    for (page, screenshot), s in zip(pages, seen, strict=True):
        if not s.ok:
            print(f"{PROG}: {page} is broken in Chromium: {s.describe()}", file=sys.stderr)
            ok = False
        else:
            print(f"checked in Chromium: {s.describe()}; screenshot: {screenshot}")
    return ok


@dataclass(frozen=True)
class Recipe:
    """What an experiment is handed: its sub-command's name, parser and arguments. ``begin`` makes the run's
    Record once the experiment's own checks have passed, so a refused argument leaves no folder behind."""

    name: str
    parser: argparse.ArgumentParser
    args: argparse.Namespace

    def begin(self, seed: int | None = None) -> Record:
        from multi6lab.lab import provenance

        out = run_folder(self.args.out, self.name)
        return Record(self.name, out, command_line(self.name, self.parser, self.args), provenance.collect(seed))


@dataclass
class Record:
    """One run of an experiment: its folder, its reproducing command and the machine's provenance (collected
    before the lab loads the machine), and the two ways its results leave: ``save`` and ``publish``."""

    name: str
    out: Path
    command: str
    provenance: dict[str, Any]

    def save(self, **fields: Any) -> None:
        """``<name>.json``: the command, the fields given, the provenance; replaced whole or not at all, so it can
        be written after every step of a long run and always reads as a finished file."""
        from multi6lab.results.report import write_atomic

        write_atomic(self.out / f"{self.name}.json",
                     json.dumps({"command": self.command, **fields, "provenance": self.provenance}, indent=1))

    def publish(self, table: str, also: Sequence[str] = ()) -> None:
        """The run's end: its table in ``<name>.md`` and on the terminal, then where its results are."""
        (self.out / f"{self.name}.md").write_text(table)
        print()
        print(table, end="")
        print(f"\nresults: {self.out}/" + ", ".join([f"{self.name}.json", f"{self.name}.md", *also]))
