"""``multi6lab``: validate, draw, bring up and clean topologies; run the controller; map NPTv6 addresses."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any, TypeVar

from multi6lab.results import scale_model
from multi6lab.results.progress import Progress
from multi6lab.topologies import loader
from multi6lab.topologies.yamlsrc import InputError
from multi6lab.vocabulary import Approach

PROG = "multi6lab"
RESULTS = Path(os.environ.get("MULTI6LAB_RESULTS") or "results")  # where runs go unless --out says otherwise
DEFAULT_COMPARISON = Path("scenarios/comparisons/approaches.yaml")
MANIFEST = "compare.json"  # what a comparison directory was made from, for --resume
QUICK_TRIALS = 10


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_folder(out: str | None, name: str, create: bool = True) -> Path:
    """Where a command's results go: ``--out``, or results/<name>-<time>."""
    path = Path(out) if out else RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


T = TypeVar("T", int, float)


def numbers(text: str, kind: Callable[[str], T], option: str, what: str) -> list[T]:
    """A comma-separated list of numbers given to ``option``; EnvError saying what it takes otherwise."""
    from multi6lab.lab.emulation import EnvError

    try:
        values = [kind(x) for x in text.split(",")]
    except ValueError:
        raise EnvError(f"{option} {text}: give {what}") from None
    return values


def publish(out: Path, name: str, table: str, *also: str) -> None:
    """A measuring command's end: its table in ``name.md`` and on the terminal, then where its results are
    (``name.json``, written as it went, and ``also``)."""
    (out / f"{name}.md").write_text(table)
    print()
    print(table, end="")
    print(f"\nresults: {out}/" + ", ".join([f"{name}.json", f"{name}.md", *also]))


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


def cmd_validate(args: argparse.Namespace) -> int:
    """Each file is parsed once and checked as what it is: a comparison names ``rows``, a scenario names a
    ``topology``, anything else is a topology."""
    from multi6lab.scenarios import compare
    from multi6lab.scenarios import model as scenario_model
    from multi6lab.topologies import yamlsrc

    bad = 0
    for f in args.files:
        try:
            src = yamlsrc.load(f)
            kind = src.data.keys() if isinstance(src.data, dict) else set()
            if "rows" in kind:
                print(f"ok: {f} (comparison: {len(compare.from_source(src))} cells)")
            elif "topology" in kind:
                sc = scenario_model.from_source(src)
                print(f"ok: {f} (scenario {sc.name}: {sc.topology_path.name}, {sc.approach_label}, "
                      f"{len(sc.faults)} fault(s), {sc.trials} trials)")
            else:
                t = loader.from_source(src)
                print(f"ok: {f} ({len(t.sites)} site(s), {len(t.isps)} ISP(s), {len(t.kinds)} nodes, "
                      f"{len(t.links)} links)")
        except InputError as exc:
            bad += 1
            print(exc, file=sys.stderr)
    return 1 if bad else 0


def cmd_draw(args: argparse.Namespace) -> int:
    from multi6lab.results import draw
    from multi6lab.topologies.plan import build

    plan = build(loader.load(args.file))
    dot = draw.to_dot(plan)
    if args.output is None or str(args.output) == "-":
        sys.stdout.write(dot)
        return 0
    out = Path(args.output)
    if out.suffix == ".dot":
        out.write_text(dot)
    else:
        draw.render(dot, out)
    print(f"wrote {out}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from multi6lab.lab.emulation import terminate_as_interrupt
    from multi6lab.lab.lifecycle import Lab

    topology = loader.load(args.file)  # YAML problems are reported before asking for root
    workdir = Path(args.workdir or RESULTS / f"up-{time.strftime('%Y%m%d-%H%M%S')}")
    with terminate_as_interrupt(), Lab(topology, workdir, progress=say, servers=args.servers,
                                           cluster_links=args.cluster_links) as lab:
        say(f"up: {lab.plan.topology.name}; each site controller's log and events in {lab.workdir}")
        for server in lab.servers[1:]:
            say(f"  on {server}: {', '.join(n for n, s in lab.where.items() if s == server)}")
        for sp in lab.plan.sites:
            for h in sp.hosts:
                say(f"  {h.name}: " + ", ".join(f"{a} ({k})" for k, a in h.addresses.items()))
        if lab.emulation is not None:
            for name in lab.emulation.routers:  # FRR's sockets are per node: say how to reach each one
                say(f"  {name}: vtysh --vty_socket {lab.emulation.frr_dir(name)}")
        if args.command:
            for c in args.command:
                node, _, shell = c.partition(":")
                print(lab.cmd(node, shell), end="")
        else:
            from mininet.cli import CLI
            from mininet.log import setLogLevel

            setLogLevel("output")  # the CLI prints through Mininet's 'output' level; the build ran quieter
            CLI(lab.emulation.net if lab.emulation else None)
        say("tearing down")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    from multi6lab.lab.emulation import require_root
    from multi6lab.lab.runstate import clean

    require_root("multi6lab clean", "it ends processes and deletes OVS bridges and interfaces")
    removed = clean(include_live=args.all)
    for r in removed:
        print(f"removed {r}")
    print("nothing left to clean" if not removed else f"removed {len(removed)} item(s)")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from multi6lab.topologies import generate
    from multi6lab.vocabulary import Trigger

    words = [w.strip() for w in args.triggers.split(",")]
    if unknown := [w for w in words if w not in Trigger.values()]:
        print(f"{PROG} generate: unknown trigger {unknown[0]!r} (triggers: {', '.join(Trigger.values())})",
              file=sys.stderr)
        return 2
    shape = generate.Shape(args.sites, args.isps, args.exits, args.hosts, args.remotes, Approach(args.approach),
                           tuple(Trigger(w) for w in words), args.seed, args.bfd, args.heartbeat_ms,
                           args.correspondent)
    if problems := shape.problems():
        print(f"{PROG} generate: " + "; ".join(problems), file=sys.stderr)
        return 2
    text = generate.dumps(shape)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}: {args.sites} sites on {args.isps} ISPs")
    return 0


def cmd_scale_model(args: argparse.Namespace) -> int:
    import json

    from multi6lab.results import plots

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(scale_model.Inputs)
             if getattr(args, f.name) is not None}
    if args.calibration:
        try:
            given = {**scale_model.calibration(json.loads(Path(args.calibration).read_text())), **given}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"{PROG} scale-model: --calibration {args.calibration}: {exc}", file=sys.stderr)
            return 2
    x = scale_model.Inputs(**given)
    problems = x.problems()
    if not 1 <= args.sites_from < args.sites_to:
        problems.append("--sites-from must be 1 or more and below --sites-to")
    if problems:
        print(f"{PROG} scale-model: " + "; ".join(problems), file=sys.stderr)
        return 2
    points = scale_model.sweep(x, args.sites_from, args.sites_to)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale-model.json").write_text(json.dumps(scale_model.as_json(x, points), indent=1) + "\n")
    plots.scale_chart(points, out / "scale-model.png")
    print(scale_model.table(points), end="")
    print(f"\nwrote {out}/scale-model.json, scale-model.png (and .svg)")
    return 0


def cmd_controller(args: argparse.Namespace) -> int:
    from multi6lab.controller import launcher
    from multi6lab.topologies import codec
    from multi6lab.topologies.plan import build

    if args.brief:
        brief = codec.read_brief(Path(args.brief))
        name = brief.topology
    else:
        plan = codec.read(Path(args.plan)) if args.plan else build(loader.load(args.topology))
        brief, name = plan.brief({sp.site.name for sp in plan.sites}), plan.topology.name
    managed = [sp.site.name for sp in brief.sites if sp.site.approach != Approach.ROUTING]
    unknown = [s for s in args.site or [] if s not in managed]
    if unknown:
        print(f"{PROG}: --site {unknown[0]}: {name} has no such site with switches of its own "
              f"(it has: {', '.join(managed) or 'none'})", file=sys.stderr)
        return 2
    if not args.brief:  # only what the sites it runs would be given: their own part of the plan
        brief = plan.brief(args.site or managed)
    keys = {}
    for item in args.mapping_key or []:
        site, _, path = item.partition("=")
        try:
            keys[site] = Path(path).read_text().strip()
        except OSError as exc:
            print(f"{PROG}: --mapping-key {item}: cannot read the key ({exc.strerror})", file=sys.stderr)
            return 2
    launcher.run(brief, args.port, args.events, args.host, args.site, keys)
    return 0


def cmd_nptv6(args: argparse.Namespace) -> int:
    from multi6lab.controller.npt import Translator, Untranslatable
    from multi6lab.topologies.loader import parse_prefix

    try:
        tr = Translator(parse_prefix(args.inside), parse_prefix(args.outside))
    except ValueError as exc:
        print(f"{PROG} nptv6: {exc}", file=sys.stderr)
        return 2
    rc = 0
    for text in args.addresses:
        try:
            a = IPv6Address(text)
            print(f"{a} -> {tr.to_inside(a) if args.reverse else tr.to_outside(a)}")
        except (ValueError, Untranslatable) as exc:
            print(f"{PROG} nptv6: {text}: {exc}", file=sys.stderr)
            rc = 1
    return rc


def cmd_run(args: argparse.Namespace) -> int:
    """Each scenario in turn (every file is checked before the first lab), then their reports in one browser."""
    from multi6lab.lab.emulation import EnvError
    from multi6lab.lab.runner import Runner
    from multi6lab.results import report, soak
    from multi6lab.scenarios import model

    if args.out and len(args.scenario) > 1:
        raise EnvError("--out names one run's folder: give it with one scenario")
    scenarios = [model.load(s) for s in args.scenario]
    outs = []
    for sc in scenarios:
        if args.trials:
            sc = dataclasses.replace(sc, trials=args.trials)
        out = run_folder(args.out, sc.name, create=False)  # the runner makes it
        say(f"scenario {sc.name}: {sc.topology.name}, {sc.approach_label}, trigger {sc.trigger_label}, "
            f"{sc.trials} trials -> {out}")
        summary = Runner(sc, out, say, Ticker(Progress(sc.trials, time.monotonic())), servers=args.servers,
                         cluster_links=args.cluster_links).run()
        print()
        print(report.markdown([summary]), end="")
        if mapping := summary["metrics"].get("mapping"):
            ms = mapping["lookup_ms"] or {}
            print(f"\nmapping service: {mapping['lookups']} lookups (first query to accepted record), p50 "
                  f"{ms.get('p50', '-')} ms, p95 {ms.get('p95', '-')} ms; {mapping['retries']} queries sent again")
        print(f"\nresources after each trial (resources.csv): {soak.describe(summary['resources'])}")
        print(f"\nresults: {out}/summary.json, trials.csv, timeline-outbound.png, timeline-inbound.png")
        outs.append(out)
    ok = looked_at([(o / "report.html", o / "report.png") for o in outs])
    for o in outs:
        print(f"report: {o / 'report.html'}")
    return 0 if ok else 1


def cmd_report(args: argparse.Namespace) -> int:
    from multi6lab.results import report

    runs = report.collect(Path(args.results))
    if not runs:
        print(f"no results in {args.results}/ yet; run 'sudo make demo' or 'multi6lab run SCENARIO'",
              file=sys.stderr)
        return 1
    table = report.markdown(runs)
    (Path(args.results) / "report.md").write_text(table)
    print(table, end="")
    if args.html:
        from multi6lab.results import html

        index = Path(args.results) / "index.html"
        index.write_text(html.index_page([(str(s.get("folder", "")), s) for s in runs]))
        print(f"\nindex: {index}")
    return 0


def cmd_look(args: argparse.Namespace) -> int:
    page = Path(args.page)
    if page.is_dir():
        page = next((page / n for n in ("report.html", "comparison.html", "index.html") if (page / n).exists()),
                    page / "report.html")
    if not page.is_file():
        print(f"{PROG}: no report at {page}", file=sys.stderr)
        return 1
    shot = Path(args.screenshot) if args.screenshot else page.with_suffix(".png")
    return 0 if looked_at([(page, shot)], required=True) else 1


def cmd_compare(args: argparse.Namespace) -> int:
    """Every row of the comparison file against every fault, one generated scenario per cell.

    A cell that fails is recorded with its reason and the comparison goes on; ``--resume DIR`` runs only the
    cells of DIR that have no summary yet (after a failure, an interruption or a reboot)."""
    import json

    from multi6lab.lab import provenance
    from multi6lab.lab.emulation import EnvError, require_emulator
    from multi6lab.lab.runner import Runner
    from multi6lab.results import comparison, html
    from multi6lab.results.report import write_atomic
    from multi6lab.scenarios import compare

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
    cells_spec = compare.load(source, trials)
    if only:
        try:
            cells_spec = compare.only_rows(cells_spec, only)
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
    origin = {**provenance.collect(seed), "order": [c.slug for c in compare.run_order(cells_spec, seed)]}
    for k, c in enumerate(compare.run_order(cells_spec, seed), start=1):
        compare.write(c, out / "scenarios")  # to rerun one cell alone
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
    return 0 if ok and not failed else 1


def every_site_idloc(path: str) -> Any:
    """The topology at ``path`` with every site on id-loc, or EnvError naming what keeps a site from it."""
    from multi6lab.lab.emulation import EnvError
    from multi6lab.scenarios.model import Overrides
    from multi6lab.topologies import loader

    topo = loader.load(path)
    topo = Overrides(approach=Approach.ID_LOC).apply(topo, topo.sites[0].name)
    isps = {i.name: i for i in topo.isps}
    problem = next((m for s in topo.sites for _, m in loader.site_problems(s, isps)), None)
    if problem is not None:
        raise EnvError(f"{path} cannot run every site on id-loc: {problem}")
    return topo


def cmd_upgrade(args: argparse.Namespace) -> int:
    """Every site on id-loc, the second without support until it restarts with it mid-session: do the live
    sessions with it survive both edges' upgrade (tools/lab/upgrade.py)?"""
    import json

    from multi6lab.lab import provenance, upgrade
    from multi6lab.lab.emulation import terminate_as_interrupt
    from multi6lab.results import upgrade as summary
    from multi6lab.results.report import write_atomic
    from multi6lab.topologies.plan import build

    topo = every_site_idloc(args.topology)
    upgrade.parties(build(topo))  # a topology without two sites or a mapping service says so before bring-up
    out = run_folder(args.out, "upgrade")
    origin = provenance.collect(args.seed)
    say(f"a peer gains id-loc support mid-session on {topo.name}, {args.trials} trials (a lab each) -> {out}")
    with terminate_as_interrupt():
        rows = upgrade.measure(topo, out, args.trials, args.seed, say)
    stats = summary.summarise(rows)
    command = f"multi6lab upgrade {args.topology} --trials {args.trials} --seed {args.seed}"
    write_atomic(out / "upgrade.json", json.dumps({"topology": topo.name, "trials": len(rows), "command": command,
                                                   "summary": stats, "rows": rows, "provenance": origin}, indent=1))
    publish(out, "upgrade", summary.markdown(stats))
    return 0 if stats["tcp_survived"] == stats["tcp_sessions"] else 1


def cmd_first_contact(args: argparse.Namespace) -> int:
    """Every site on id-loc; per trial the controllers restart (each edge forgets everyone) and the first echo
    between the sites, and a plain host's, show what a first packet waits (tools/lab/firstcontact.py)."""
    import json

    from multi6lab.lab import firstcontact, provenance
    from multi6lab.lab.emulation import terminate_as_interrupt
    from multi6lab.lab.lifecycle import Lab
    from multi6lab.results import contact
    from multi6lab.results.report import write_atomic
    from multi6lab.topologies.plan import build

    topo = every_site_idloc(args.topology)
    firstcontact.parties(build(topo))  # a topology without two sites or a mapping service says so before bring-up
    out = run_folder(args.out, "first-contact")
    origin = provenance.collect(args.seed)  # before the lab loads the machine
    say(f"first contact on {topo.name}, every site id-loc, {args.trials} trials -> {out}")
    with terminate_as_interrupt(), Lab(topo, out, progress=say) as lab:
        rows = firstcontact.measure(lab, args.trials, args.seed, say)
    stats = contact.summarise(rows)
    command = f"multi6lab first-contact {args.topology} --trials {args.trials} --seed {args.seed}"
    write_atomic(out / "first-contact.json", json.dumps({"topology": topo.name, "trials": len(rows),
                                                           "command": command, "summary": stats, "rows": rows,
                                                           "provenance": origin}, indent=1))
    publish(out, "first-contact", contact.markdown(stats))
    return 0


def cmd_selection(args: argparse.Namespace) -> int:
    """Locator selection (RFC 4177 6.3.2): a load-sharing site's flow split against its weights, and whether
    source-routing hosts follow the address selection policy they are given (tools/lab/selection.py)."""
    import json

    from multi6lab.lab import provenance, selection
    from multi6lab.lab.emulation import EnvError, terminate_as_interrupt
    from multi6lab.lab.lifecycle import Lab
    from multi6lab.results.report import write_atomic
    from multi6lab.topologies import loader

    try:
        weights = [int(w) for w in args.weights.split(",")]
    except ValueError:
        raise EnvError(f"--weights {args.weights}: give one whole number per exit, e.g. 3,1") from None
    if args.flows < 1:
        raise EnvError(f"--flows {args.flows}: send at least one flow")
    sharing = loader.load(args.load_share_topology)
    if len(weights) != len(sharing.sites[0].exits) or min(weights) < 1:
        raise EnvError(f"--weights {args.weights}: {sharing.name}'s site has {len(sharing.sites[0].exits)} exits; "
                       "give each a weight of 1 or more")
    sharing = selection.load_sharing(sharing, weights)
    isps = {i.name: i for i in sharing.isps}
    problem = next((m for _, m in loader.site_problems(sharing.sites[0], isps)), None)
    if problem is not None:
        raise EnvError(f"{args.load_share_topology} cannot load-share: {problem}")
    policy_topo = loader.load(args.policy_topology)
    for path, t in ((args.load_share_topology, sharing), (args.policy_topology, policy_topo)):
        if not t.remotes:
            raise EnvError(f"{path}: the flows and the selections go to a remote host, and it has none ('remotes:')")
    if policy_topo.sites[0].approach not in (Approach.SOURCE_ROUTING, Approach.MPTCP):
        raise EnvError(f"{args.policy_topology}: its first site must give hosts an address per ISP "
                       f"(source-routing or mptcp), not {policy_topo.sites[0].approach}")
    out = run_folder(args.out, "selection")
    origin = provenance.collect(args.seed)
    with terminate_as_interrupt():
        say(f"load sharing on {sharing.name}, weights {args.weights} -> {out}")
        with Lab(sharing, out / "load-share", progress=say) as lab:
            shares = {proto: selection.measure_split(lab, args.flows, proto == "tcp", say) for proto in ("tcp", "udp")}
        say(f"address selection on {policy_topo.name}")
        with Lab(policy_topo, out / "policy", progress=say) as lab:
            choices, timelines = selection.measure_policy(lab, args.seed, say)
    command = (f"multi6lab selection --flows {args.flows} --weights {args.weights} --seed {args.seed} "
               f"--load-share-topology {args.load_share_topology} --policy-topology {args.policy_topology}")
    write_atomic(out / "selection.json", json.dumps({"command": command, "load_share": shares, "policy": choices,
                                                       "provenance": origin}, indent=1))
    print()
    print(selection.write(out, shares, choices, timelines), end="")
    print(f"\nresults: {out}/selection.json, selection.md, selection.png")
    return 0


def cmd_triangle(args: argparse.Namespace) -> int:
    """Mobile IPv6's triangle (RFC 4177 5.2): links and round trips through the home agent, with route
    optimisation, and plain (tools/lab/triangle.py)."""
    import json

    from multi6lab.lab import provenance, triangle
    from multi6lab.lab.emulation import EnvError, terminate_as_interrupt
    from multi6lab.lab.lifecycle import Lab
    from multi6lab.results import triangle as paths
    from multi6lab.results.report import write_atomic
    from multi6lab.topologies import loader
    from multi6lab.topologies.plan import build

    if args.count < 1 or args.block < 1:
        raise EnvError(f"--count {args.count} --block {args.block}: both must be 1 or more")
    topo = loader.load(args.topology)
    if topo.home_agent is None or not any(s.approach == Approach.MOBILITY for s in topo.sites):
        raise EnvError(f"{args.topology}: the triangle needs a mobility site and a home agent ('home_agent:'); "
                       "topologies/figure1-home-agent.yaml has both")
    plan = build(topo)
    host = next(h.name for sp in plan.sites if sp.site.approach == Approach.MOBILITY for h in sp.hosts)
    remote = next((r.name for r in topo.remotes if r.name != topo.home_agent.node), None)
    if remote is None:
        raise EnvError(f"{args.topology}: the triangle needs a correspondent, a remote besides the home agent")
    links = paths.round_trip_links(plan, host, remote, topo.home_agent.node)
    out = run_folder(args.out, "triangle")
    origin = provenance.collect(args.seed)
    times: dict[str, list[float]] = {}
    sent: dict[str, int] = {}
    with terminate_as_interrupt():
        for ro, measured in ((False, ["direct", "home agent"]), (True, ["route optimisation"])):
            say(f"{topo.name}, route optimisation {'on' if ro else 'off'}: {', '.join(measured)}")
            with Lab(triangle.with_route_optimisation(topo, ro), out / ("ro" if ro else "tunnel"), progress=say) as lab:
                t, n = triangle.measure(lab, measured, args.count, args.block, args.seed, say)
            times.update(t)
            sent.update(n)
    stats = paths.summarise(times, sent, links)
    command = (f"multi6lab triangle --topology {args.topology} --count {args.count} --block {args.block} "
               f"--seed {args.seed}")
    write_atomic(out / "triangle.json", json.dumps({"command": command, "paths": stats, "rtt_ms": times,
                                                     "provenance": origin}, indent=1))
    publish(out, "triangle", paths.markdown(stats))
    return 0


def cmd_delay_accuracy(args: argparse.Namespace) -> int:
    """The delay the lab's links achieve against their configuration, alone and beside a TCP bulk flow
    (tools/lab/delayaccuracy.py)."""
    import json

    from multi6lab.lab import delayaccuracy, provenance
    from multi6lab.lab.emulation import EnvError, terminate_as_interrupt
    from multi6lab.results import delayaccuracy as accuracy
    from multi6lab.results.report import write_atomic

    delays = numbers(args.delays, float, "--delays", "delays in ms, for example 5,25,50")
    if min(delays) <= 0 or args.seconds <= 0:
        raise EnvError(f"--delays {args.delays} --seconds {args.seconds:g}: every delay and the duration must be "
                       "more than 0")
    topo = loader.load(Path(loader.__file__).with_name("figure1.yaml"))  # a shipped file
    out = run_folder(args.out, "delay-accuracy")
    origin = provenance.collect(None)
    with terminate_as_interrupt():
        measured, origin["delay"] = delayaccuracy.run(topo, delays, args.seconds, 1000.0, out, say)
    cells, base, line = accuracy.summarise(measured, delayaccuracy.BULK_MBIT)
    command = f"multi6lab delay-accuracy --delays {args.delays} --seconds {args.seconds:g}"
    write_atomic(out / "delay-accuracy.json", json.dumps({"command": command, "mechanism": origin["delay"],
                                                          "base_ms": base, "cells": cells,
                                                          "line": {f"{k:g}": v for k, v in line.items()},
                                                          "provenance": origin}, indent=1))
    publish(out, "delay-accuracy", accuracy.markdown(cells, origin["delay"], base) + accuracy.line_table(line))
    return 0 if all(c["meets_goal"] for c in cells) else 1


def cmd_bringup(args: argparse.Namespace) -> int:
    """Bring-up and teardown time and memory against the lab's size (tools/lab/bringup.py)."""
    import json

    from multi6lab.lab import bringup, provenance, scaleoutage
    from multi6lab.lab.emulation import EnvError, terminate_as_interrupt
    from multi6lab.results import bringup as results
    from multi6lab.results.report import write_atomic
    from multi6lab.topologies import loader
    from multi6lab.vocabulary import Trigger

    try:
        counts = sorted({int(n) for n in args.sites.split(",") if n})
    except ValueError:
        raise EnvError(f"--sites {args.sites}: give site counts separated by commas, e.g. 20,50,100") from None
    if (counts and counts[0] < 1) or args.repeats < 1 or args.sites_per_controller < 1 or args.heartbeat_ms <= 0:
        raise EnvError("--sites, --repeats, --sites-per-controller and --heartbeat-ms must be positive")
    if args.hold < 0:
        raise EnvError(f"--hold {args.hold:g}: give the seconds to keep a ready lab up, 0 or more")
    topos = {"figure1": loader.load(Path(loader.__file__).with_name("figure1.yaml"))}  # a shipped file
    topos |= {f"{n} sites": scaleoutage.topology(n, Approach.NPTV6, (Trigger.LINK, Trigger.HEARTBEAT), args.seed,
                                                 heartbeat_ms=args.heartbeat_ms) for n in counts}
    out = run_folder(args.out, "bringup")
    origin = provenance.collect(args.seed)
    command = (f"multi6lab bringup --sites {args.sites} --repeats {args.repeats} --seed {args.seed} "
               f"--sites-per-controller {args.sites_per_controller} --heartbeat-ms {args.heartbeat_ms:g}"
               + (f" --hold {args.hold:g}" if args.hold else "")
               + (f" --servers {args.servers} --cluster-links {args.cluster_links}" if args.servers > 1 else ""))
    rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    with terminate_as_interrupt():
        for label, topo in topos.items():
            for k in range(1, args.repeats + 1):
                say(f"{label}: bring-up {k}/{args.repeats}")
                try:
                    row = bringup.measure(topo, out / label.replace(" ", "-") / f"{k:02d}", say,
                                          args.sites_per_controller, args.servers, args.cluster_links, args.hold)
                except EnvError as exc:  # the machine's limit, found: the other sizes go on
                    failed[label] = str(exc)
                    say(f"{label}: {exc}")
                    break
                rows.append({"label": label, **row})
                say(f"  ready in {row['up_s']} s, down in {row['down_s']} s, {row['memory_kb'] // 1024} MB held"
                    + (f", {row['hold_timeouts']} heartbeat timeouts in {args.hold:g} s held" if args.hold else ""))
            stats = results.summarise(rows)
            write_atomic(out / "bringup.json", json.dumps({"command": command, "summary": stats, "failed": failed,
                                                            "rows": rows, "provenance": origin}, indent=1))
    results.draw(out / "bringup.png", stats, "lab bring-up: where the time goes")
    publish(out, "bringup", results.markdown(stats, failed), "bringup.png")
    return 1 if failed else 0


def cmd_frr_scale(args: argparse.Namespace) -> int:
    """RFC 4177 5.1 calibrated on FRR: N PI prefixes injected, learned and forgotten by the core
    (tools/lab/frrscale.py)."""
    import json

    from multi6lab.lab import frrscale, provenance
    from multi6lab.lab.emulation import EnvError, terminate_as_interrupt
    from multi6lab.lab.lifecycle import Lab
    from multi6lab.results import frrscale as results
    from multi6lab.results.report import write_atomic
    from multi6lab.scenarios.model import Overrides
    from multi6lab.topologies import loader

    counts = numbers(args.prefixes, int, "--prefixes", "counts separated by commas, e.g. 1000,10000")
    if min(counts) < 1:
        raise EnvError("--prefixes: each count must be 1 or more")
    if max(counts) > results.CAPACITY:
        raise EnvError(f"--prefixes: at most {results.CAPACITY:,} /48s fit in {results.INJECTED}")
    topo = loader.load(Path(loader.__file__).with_name("figure1.yaml"))
    topo = Overrides(approach=Approach.ROUTING).apply(topo, topo.sites[0].name)
    out = run_folder(args.out, "frr-scale")
    origin = provenance.collect()
    with terminate_as_interrupt(), Lab(topo, out, progress=say) as lab:
        rows = frrscale.inject(lab, counts, out, say)
    command = f"multi6lab frr-scale --prefixes {args.prefixes}"
    write_atomic(out / "frr-scale.json", json.dumps({"command": command, "rows": rows, "provenance": origin},
                                                     indent=1))
    publish(out, "frr-scale", results.markdown(rows))
    return 1 if any(r["forget_s"] is None for r in rows) else 0  # a stalled step leaves the sweep incomplete


def cmd_scale_outage(args: argparse.Namespace) -> int:
    """An ISP outage that hits N sites at once: each site's outbound outage against N (tools/lab/scaleoutage.py)."""
    import json
    import random

    from multi6lab.lab import provenance, scaleoutage
    from multi6lab.lab.emulation import EnvError, terminate_as_interrupt
    from multi6lab.lab.lifecycle import Lab
    from multi6lab.results import scaleoutage as results
    from multi6lab.results.report import write_atomic
    from multi6lab.vocabulary import Trigger

    try:
        counts = sorted({int(n) for n in args.sites.split(",")})
    except ValueError:
        raise EnvError(f"--sites {args.sites}: give site counts separated by commas, e.g. 1,5,10,20") from None
    if counts[0] < 1 or args.trials < 1 or args.rate <= 0 or args.fault_s <= 0 or args.sites_per_controller < 1:
        raise EnvError("--sites, --trials, --rate, --fault-s and --sites-per-controller must all be positive")
    words = [w.strip() for w in args.triggers.split(",")]
    if unknown := [w for w in words if w not in Trigger.values()]:
        raise EnvError(f"--triggers: unknown trigger {unknown[0]!r} (triggers: {', '.join(Trigger.values())})")
    approach, triggers = Approach(args.approach), tuple(Trigger(w) for w in words)
    try:  # refused here, not after the first lab
        topos = {n: scaleoutage.topology(n, approach, triggers, args.seed, args.bfd, args.heartbeat_ms)
                 for n in counts}
    except ValueError as exc:
        raise EnvError(str(exc)) from None
    out = run_folder(args.out, "scale-outage")
    origin = provenance.collect(args.seed)
    how = [f"BGP 1/3 s, BFD {args.bfd} ms x3"] if args.bfd else list(words)
    if args.heartbeat_ms is not None:
        how.append(f"{args.heartbeat_ms:g} ms probes")
    label = f"{approach} ({', '.join(how)})"
    rows: list[dict[str, Any]] = []
    failed: dict[int, str] = {}  # N -> why its lab gave up (the machine's limit, found): the other Ns go on
    rng = random.Random(args.seed)
    command = (f"multi6lab scale-outage --sites {args.sites} --approach {args.approach} --triggers {args.triggers} "
               f"--trials {args.trials} --rate {args.rate} --fault-s {args.fault_s} --seed {args.seed} "
               f"--sites-per-controller {args.sites_per_controller}"
               + (f" --bfd {args.bfd}" if args.bfd else "")
               + (f" --heartbeat-ms {args.heartbeat_ms:g}" if args.heartbeat_ms is not None else ""))
    with terminate_as_interrupt():
        for n, topo in topos.items():
            say(f"{n} sites on {label}: {args.trials} trials, ISP {topo.isps[0].name} down {args.fault_s} s each")
            try:
                with Lab(topo, out / f"n{n}", progress=say, sites_per_controller=args.sites_per_controller,
                         contacts=scaleoutage.contacts(topo)) as lab:
                    for k in range(1, args.trials + 1):
                        rows += scaleoutage.trial(lab, n, k, rng, args.rate, args.fault_s, say)
            except EnvError as exc:
                failed[n] = str(exc)
                say(f"{n} sites: {exc}")
            stats = results.summarise(rows)  # written after every N, so a later failure keeps the earlier ones
            write_atomic(out / "scale-outage.json", json.dumps({
                "command": command, "approach": label, "summary": stats, "failed": failed, "rows": rows,
                "provenance": origin}, indent=1))
    results.draw(out / "scale-outage.png", stats, f"ISP outage hitting N sites: {label}")
    publish(out, "scale-outage", results.markdown(stats, failed), "scale-outage.png")
    return 1 if failed else 0


def cmd_scale_outage_plot(args: argparse.Namespace) -> int:
    """Several scale-outage runs' curves on one plot (tools/results/scaleoutage.py)."""
    from multi6lab.results import scaleoutage as results

    if len(args.label) > len(args.runs):
        print(f"{PROG}: {len(args.label)} labels for {len(args.runs)} runs", file=sys.stderr)
        return 1
    try:
        runs = [results.load_run(Path(folder)) for folder in args.runs]
    except ValueError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    runs = [(label, *run[1:]) for label, run in zip(args.label, runs, strict=False)] + runs[len(args.label):]
    results.draw_runs(Path(args.output), runs, args.goal_ms)
    print(f"wrote {args.output}: {len(runs)} runs")
    return 0


def add_servers(p: argparse.ArgumentParser) -> None:
    from multi6lab.topologies.cluster import LINK_KINDS

    p.add_argument("--servers", type=int, default=1, metavar="N",
                   help="spread the lab over N servers with Mininet's cluster mode: this machine (controllers, ISPs, "
                        "core) and N-1 emulated ones, each taking whole sites, reached over SSH (default 1; "
                        "docs/cluster.md)")
    p.add_argument("--cluster-links", choices=LINK_KINDS, default=LINK_KINDS[0],
                   help="how links between servers are carried: VXLAN over the management link (default), or "
                        "cluster mode's SSH Ethernet tunnels, which hold frames for an end that is down")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="IPv6 multihoming testbed (RFC 4177) on Mininet.")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        return sp

    v = add("validate", cmd_validate, "check topology and scenario files; print every problem as file:line:col")
    v.add_argument("files", nargs="+", metavar="FILE")
    d = add("draw", cmd_draw, "draw a topology with graphviz (PNG, SVG, PDF or .dot by the output's suffix)")
    d.add_argument("file", metavar="TOPOLOGY")
    d.add_argument("-o", "--output", help="output file (default: DOT on standard output)")
    u = add("up", cmd_up, "bring a topology up with its controller and open the Mininet CLI (root)")
    u.add_argument("file", metavar="TOPOLOGY")
    u.add_argument("--workdir", help="where the controller's log and events go (default results/up-<time>)")
    u.add_argument("-c", "--command", action="append", metavar="NODE:CMD",
                   help="run CMD on NODE instead of opening the CLI (repeatable)")
    add_servers(u)
    c = add("clean", cmd_clean, "remove what crashed or interrupted runs left behind (root)")
    c.add_argument("--all", action="store_true", help="also end runs whose owner process is still alive")
    g = add("generate", cmd_generate, "write a topology of N multihomed sites on M ISPs (deterministic from --seed)")
    g.add_argument("--sites", type=int, required=True, help="number of sites")
    g.add_argument("--isps", type=int, required=True, help="number of ISPs")
    g.add_argument("--exits", type=int, default=2, help="ISPs each site is multihomed to (default 2)")
    g.add_argument("--hosts", type=int, default=1, help="hosts per site (default 1)")
    g.add_argument("--remotes", type=int, default=1, help="single-homed remote hosts on the core (default 1)")
    g.add_argument("--approach", default="nptv6", choices=Approach.values())
    g.add_argument("--triggers", default="link,heartbeat", help="comma-separated (default link,heartbeat; "
                                                                "routing sites always use routing)")
    g.add_argument("--seed", type=int, default=1, help="which ISPs each site uses (default 1)")
    g.add_argument("--bfd", type=int, metavar="MS", help="routing: BFD at this interval (x3) on the exits' "
                                                        "sessions, BGP 1/3 s")
    g.add_argument("--heartbeat-ms", type=float, metavar="MS", help="the heartbeat trigger's interval (x3; "
                                                                     "default 10 ms)")
    g.add_argument("--correspondent", action="store_true",
                   help="id-loc: one more site, far, on two ISPs of its own, for the others to talk to")
    g.add_argument("-o", "--output", help="file to write (default: standard output)")
    sm = add("scale-model", cmd_scale_model, "RFC 4177 5.1 as numbers: DFZ table and churn against the number of "
             "multihomed sites, PI routing versus the edge approaches and their mapping service (a model)")
    sm.add_argument("--sites-from", type=int, default=1_000, help="fewest multihomed sites (default 1000)")
    sm.add_argument("--sites-to", type=int, default=10_000_000, help="most multihomed sites (default 10^7)")
    for f in dataclasses.fields(scale_model.Inputs):
        kind = int if f.type == "int" else float
        sm.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, metavar="N",
                        help=f"default {f.default}")
    sm.add_argument("--calibration", metavar="FRR_SCALE_JSON", help="a 'multi6lab frr-scale' run's frr-scale.json: "
                    "bytes per route and routes a second measured on FRR (flags given win)")
    sm.add_argument("-o", "--output", default=str(RESULTS / "scale-model"), help="folder to write (default "
                    "results/scale-model)")
    ct = add("controller", cmd_controller, "run the OpenFlow site-exit controller (os-ken) for a topology")
    what = ct.add_mutually_exclusive_group(required=True)
    what.add_argument("--topology", metavar="FILE", help="a topology YAML file")
    what.add_argument("--plan", metavar="FILE", help="a run's resolved plan (plan.json in its results directory)")
    what.add_argument("--brief", metavar="FILE", help="a controller's part of a run's plan, its own sites only "
                                                      "(controller-SITE.brief.json in its results directory)")
    ct.add_argument("--port", type=int, default=6653)
    ct.add_argument("--host", default="127.0.0.1")
    ct.add_argument("--site", action="append", help="run only this site's switches, as that site's own control "
                                                    "plane (repeatable: several sites in one process; default: "
                                                    "every site with switches, in one process)")
    ct.add_argument("--events", help="append JSON events (one per line, monotonic timestamps) to this file")
    ct.add_argument("--mapping-key", action="append", metavar="SITE=FILE",
                    help="an id-loc site's TSIG secret (base64) for the mapping service; without one, the site "
                         "neither registers nor looks up other sites (repeatable)")
    n = add("nptv6", cmd_nptv6, "map addresses with RFC 6296 checksum-neutral prefix translation")
    n.add_argument("--inside", required=True, metavar="PREFIX")
    n.add_argument("--outside", required=True, metavar="PREFIX")
    n.add_argument("--reverse", action="store_true", help="map outside addresses back to inside")
    n.add_argument("addresses", nargs="+", metavar="ADDRESS")
    r = add("run", cmd_run, "run a scenario: faults, probes and trials; writes results/<run>/ (root)")
    r.add_argument("scenario", metavar="SCENARIO", nargs="+", help="one or more; each runs on its own lab")
    r.add_argument("--trials", type=int, help="override the scenario's number of trials")
    r.add_argument("--out", help="results directory (default results/<name>-<time>)")
    add_servers(r)
    rp = add("report", cmd_report, "a markdown table over every run in results/")
    rp.add_argument("results", nargs="?", default=str(RESULTS))
    rp.add_argument("--html", action="store_true", help="also write index.html: every run, newest first, each "
                                                         "linking to its own report.html")
    lk = add("look", cmd_look, "open a report in headless Chromium: check every image loaded and the tables are "
                               "there, and save a screenshot")
    lk.add_argument("page", metavar="REPORT", help="an HTML report, or a run or comparison directory")
    lk.add_argument("--screenshot", metavar="PNG", help="where the full-page screenshot goes (default: the "
                                                        "report's name with .png)")
    cp = add("compare", cmd_compare, "RFC 4177's approaches side by side on the same faults and clock (root)")
    cp.add_argument("file", nargs="?", default=str(DEFAULT_COMPARISON), help="rows and faults to compare")
    cp.add_argument("--trials", type=int, help="override the trials per cell")
    cp.add_argument("--seed", type=int, default=1, help="the cells run in an order shuffled from this seed, so "
                                                         "a slow drift of the machine does not fall on one row "
                                                         "(default 1)")
    cp.add_argument("--file-order", action="store_true", help="run the cells in the file's order instead")
    cp.add_argument("--quick", action="store_true", help=f"a first look: {QUICK_TRIALS} trials per cell instead "
                                                         "of the file's (72 in the shipped ones, enough for a 95 %% "
                                                         "interval on every p95)")
    cp.add_argument("--rows", metavar="NAME[,NAME]", help="only these rows (their 'name', or their approach)")
    cp.add_argument("--out", help="results directory (default results/compare-<time>)")
    cp.add_argument("--resume", metavar="DIR", help="finish the comparison in DIR: run only its cells that have no "
                                                    "summary yet (its file and trials are read from DIR)")
    fc = add("first-contact", cmd_first_contact, "id-loc: what the first packet between two sites that have never "
                                                  "met waits for (lookups, rules), and a plain host's (root)")
    fc.add_argument("topology", nargs="?", default="topologies/two-sites.yaml", metavar="TOPOLOGY",
                    help="two sites with identity prefixes and a mapping service (default topologies/two-sites.yaml)")
    fc.add_argument("--trials", type=int, default=72, help="restarts measured (default 72: the fewest whose largest "
                                                           "value bounds p95 from above)")
    fc.add_argument("--seed", type=int, default=1, help="the pauses before each first echo (default 1)")
    fc.add_argument("--out", help="results directory (default results/first-contact-<time>)")
    ug = add("upgrade", cmd_upgrade, "id-loc: a peer gains support while sessions with it run; do they survive "
                                     "both edges' upgrade (root)")
    ug.add_argument("topology", nargs="?", default="topologies/two-sites.yaml", metavar="TOPOLOGY",
                    help="two sites with identity prefixes and a mapping service (default topologies/two-sites.yaml)")
    ug.add_argument("--trials", type=int, default=20, help="upgrades measured, a lab each (default 20)")
    ug.add_argument("--seed", type=int, default=1, help="the pauses before each upgrade (default 1)")
    ug.add_argument("--out", help="results directory (default results/upgrade-<time>)")
    sl = add("selection", cmd_selection, "locator selection: a load-sharing site's flow split against its weights, "
                                         "and whether hosts follow their address selection policy (root)")
    sl.add_argument("--flows", type=int, default=2000, help="UDP flows sent through the load-sharing site "
                                                            "(default 2000)")
    sl.add_argument("--weights", default="3,1", help="the load-sharing exits' weights in preference order "
                                                     "(default 3,1)")
    sl.add_argument("--seed", type=int, default=1, help="the pause before the address selection fault (default 1)")
    sl.add_argument("--load-share-topology", default="topologies/figure1.yaml", metavar="TOPOLOGY",
                    help="its first site load-shares (default topologies/figure1.yaml)")
    sl.add_argument("--policy-topology", default="topologies/three-isps.yaml", metavar="TOPOLOGY",
                    help="a source-routing site with several ISPs (default topologies/three-isps.yaml)")
    sl.add_argument("--out", help="results directory (default results/selection-<time>)")
    bu = add("bringup", cmd_bringup, "bring-up and teardown time and memory against the lab's size: Figure 1 and "
                                     "N generated dual-homed sites (root)")
    bu.add_argument("--sites", default="20,50,100", help="site counts, comma-separated (default 20,50,100)")
    bu.add_argument("--repeats", type=int, default=3, help="bring-ups per size (default 3)")
    bu.add_argument("--sites-per-controller", type=int, default=1, metavar="K",
                    help="sites sharing a controller process (default 1: each site its own)")
    bu.add_argument("--heartbeat-ms", type=float, default=10.0, metavar="MS",
                    help="the generated sites' heartbeat interval (x3; default 10, the comparison's)")
    bu.add_argument("--hold", type=float, default=0.0, metavar="S",
                    help="keep each ready lab up S seconds and count the heartbeat timeouts meanwhile: whether "
                         "it holds, not only whether it came up (default 0)")
    bu.add_argument("--seed", type=int, default=1, help="which ISPs each generated site uses (default 1)")
    bu.add_argument("--out", help="results directory (default results/bringup-<time>)")
    add_servers(bu)
    fs = add("frr-scale", cmd_frr_scale, "RFC 4177 5.1 on FRR: N provider-independent prefixes injected at a "
                                         "site exit, the core's time to learn and forget them and its memory (root)")
    fs.add_argument("--prefixes", default="1000,10000,100000", help="counts, comma-separated "
                                                                   "(default 1000,10000,100000)")
    fs.add_argument("--out", help="results directory (default results/frr-scale-<time>)")
    da = add("delay-accuracy", cmd_delay_accuracy, "link delay as achieved against as configured, at 1 kHz alone "
                                                   "and beside a TCP bulk flow; exit 1 if one misses 1 ms (root)")
    da.add_argument("--delays", default="5,25,50", help="one-way delays to configure, ms (default 5,25,50)")
    da.add_argument("--seconds", type=float, default=5.0, help="probes per measurement, in seconds at 1 kHz "
                                                               "(default 5)")
    da.add_argument("--out", help="results directory (default results/delay-accuracy-<time>)")
    tr = add("triangle", cmd_triangle, "mobility: links and round trips through the home agent, with route "
                                       "optimisation, and plain IPv6 (root)")
    tr.add_argument("--topology", default="topologies/figure1-home-agent.yaml",
                    help="a mobility site and a home agent (default topologies/figure1-home-agent.yaml)")
    tr.add_argument("--count", type=int, default=1000, help="echoes per path (default 1000)")
    tr.add_argument("--block", type=int, default=50, help="echoes per block; blocks of the paths alternate "
                                                          "in seeded random order (default 50)")
    tr.add_argument("--seed", type=int, default=1, help="the order of the blocks (default 1)")
    tr.add_argument("--out", help="results directory (default results/triangle-<time>)")
    so = add("scale-outage", cmd_scale_outage, "an ISP outage that hits N sites at once: each site's outage "
                                               "against N, on generated topologies (root)")
    so.add_argument("--sites", default="1,5,10,20", help="site counts, comma-separated (default 1,5,10,20)")
    so.add_argument("--approach", default="nptv6", choices=Approach.values(),
                    help="the sites' approach (default nptv6)")
    so.add_argument("--triggers", default="link,heartbeat", help="comma-separated (default link,heartbeat)")
    so.add_argument("--trials", type=int, default=10, help="outages per site count (default 10)")
    so.add_argument("--rate", type=float, default=200.0, help="probes per second per site (default 200)")
    so.add_argument("--fault-s", type=float, default=1.0, help="how long the ISP stays down (default 1 s)")
    so.add_argument("--seed", type=int, default=1, help="the topologies and each fault's phase (default 1)")
    so.add_argument("--sites-per-controller", type=int, default=1, metavar="K",
                    help="sites sharing a controller process (default 1: each site its own)")
    so.add_argument("--bfd", type=int, metavar="MS", help="routing: BFD at this interval (x3) on the exits' "
                                                         "sessions, BGP 1/3 s (default: BGP's 60/180 s alone)")
    so.add_argument("--heartbeat-ms", type=float, metavar="MS",
                    help="the heartbeat trigger's echoes, and id-loc's locator-pair probes, at this interval (x3; "
                         "default 10)")
    so.add_argument("--out", help="results directory (default results/scale-outage-<time>)")
    sp = add("scale-outage-plot", cmd_scale_outage_plot, "several scale-outage runs' p50 and p95 against N on one "
                                                          "plot, one colour per run")
    sp.add_argument("runs", nargs="+", metavar="RUN", help="a scale-outage results directory")
    sp.add_argument("-o", "--output", required=True, help="the plot to write (PNG)")
    sp.add_argument("--goal-ms", type=float, metavar="MS", help="draw a goal for the p95 as a dotted line")
    sp.add_argument("--label", action="append", default=[], metavar="TEXT",
                    help="a run's name in the legend, in the runs' order (default: its approach and triggers)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except InputError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; everything this run created has been removed", file=sys.stderr)
        return 130
    except OSError as exc:  # a file it cannot read or write (full disk, missing or read-only directory), a program
        print(f"{PROG}: {exc.filename}: {exc.strerror}" if exc.filename else f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from multi6lab.lab.emulation import EnvError
        from multi6lab.topologies.cluster import ClusterError
        from multi6lab.topologies.codec import CodecError

        if isinstance(exc, EnvError | CodecError | ClusterError | RuntimeError):
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
