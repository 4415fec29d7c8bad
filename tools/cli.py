"""``multi6lab``: the command line. It parses and dispatches: validate, draw, bring up and clean topologies, run
scenarios, run the controller, map NPTv6 addresses; each experiment is a module of tools/experiments, listed in
its registry."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

from multi6lab.experiments import EXPERIMENTS
from multi6lab.experiments.recipe import (
    MADE,
    PROG,
    RESULTS,
    Recipe,
    Ticker,
    add_servers,
    hand_back,
    looked_at,
    run_folder,
    say,
    shipped,
)
from multi6lab.results import scale_model
from multi6lab.results.progress import Progress
from multi6lab.topologies import loader
from multi6lab.topologies.yamlsrc import InputError
from multi6lab.vocabulary import Approach


def cmd_validate(args: argparse.Namespace) -> int:
    """Each file is parsed once and checked as what it is: a comparison names ``rows``, a scenario names a
    ``topology``, anything else is a topology."""
    from multi6lab.scenarios import compare
    from multi6lab.scenarios import model as scenario_model
    from multi6lab.topologies import load, yamlsrc

    verdicts = []
    for f in args.files:
        try:
            src = yamlsrc.load(f)
            kind = src.data.keys() if isinstance(src.data, dict) else set()
            if "rows" in kind:
                v = {"kind": "comparison", "cells": len(compare.from_source(src))}
                said = f"comparison: {v['cells']} cells"
            elif "topology" in kind:
                sc = scenario_model.from_source(src)
                v = {"kind": "scenario", "name": sc.name, "topology": sc.topology_path.name,
                     "approach": sc.approach_label, "faults": len(sc.faults), "trials": sc.trials}
                said = (f"scenario {sc.name}: {sc.topology_path.name}, {sc.approach_label}, "
                        f"{len(sc.faults)} fault(s), {sc.trials} trials")
            else:
                t = loader.from_source(src)
                v = {"kind": "topology", "name": t.name, "sites": len(t.sites), "isps": len(t.isps),
                     "nodes": len(t.kinds), "links": len(t.links), "advice": load.advice(t, len(t.sites))}
                said = f"{len(t.sites)} site(s), {len(t.isps)} ISP(s), {len(t.kinds)} nodes, {len(t.links)} links"
                if v["advice"]:  # valid, but past what was measured to come up with one controller a site
                    said += f"; note: {v['advice']}"
            verdicts.append({"file": f, "ok": True, **v})
            if not args.json:
                print(f"ok: {f} ({said})")
        except InputError as exc:
            verdicts.append({"file": f, "ok": False, "problems": [dataclasses.asdict(p) for p in exc.problems]})
            if not args.json:
                print(exc, file=sys.stderr)
    if args.json:
        print(json.dumps(verdicts, indent=1))
    return 0 if all(v["ok"] for v in verdicts) else 1


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
    from multi6lab.lab import detached
    from multi6lab.lab.emulation import require_emulator, terminate_as_interrupt
    from multi6lab.lab.lifecycle import Lab

    topology = loader.load(args.file)  # YAML problems are reported before asking for root
    workdir = Path(args.workdir or RESULTS / f"up-{time.strftime('%Y%m%d-%H%M%S')}")
    if not workdir.exists() or args.hold:
        MADE.append(workdir)  # handed back to the user who ran sudo when the command (or the held lab) ends
    if args.detach:
        name = detached.check_name(args.name or topology.name.lower())
        if args.servers > 1 or args.command:
            raise detached.LabError("-d keeps one lab up on this machine: without --servers and --command")
        require_emulator("multi6lab up -d")
        argv = [*detached.python(), "up", str(Path(args.file).resolve()), "--hold", name, "--workdir",
                str(workdir.resolve())]
        d = detached.start(name, argv, workdir, say)
        print(inspect_text(d))
        return 0
    with terminate_as_interrupt(), Lab(topology, workdir, progress=say, servers=args.servers,
                                           cluster_links=args.cluster_links) as lab:
        if args.hold:  # the background process of 'up -d': keep the lab until told to go
            detached.hold(args.hold, lab, str(Path(args.file).resolve()), say)
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


def inspect_text(d: Any) -> str:
    """A detached lab as ``inspect`` shows it: what it runs, where its results go, each node's addresses."""
    from multi6lab.topologies import codec

    plan = codec.read(Path(d.workdir) / "plan.json")
    lines = [f"lab {d.name}: {plan.topology.name} ({d.topology}), up since "
             f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(d.up_since))}, pid {d.pid}",
             f"  datapath: {d.datapath}; link delay: {d.delay or 'none asked'}; run folder: {d.workdir}"]
    for sp in plan.sites:
        lines.append(f"  site {sp.site.name} ({sp.site.approach}, {'+'.join(sp.site.triggers)}): controller log "
                     f"{d.workdir}/controller-{sp.site.name}.log")
        lines += [f"    {h.name}: " + ", ".join(f"{a} ({k})" for k, a in h.addresses.items()) for h in sp.hosts]
    hosts = {h.name for sp in plan.sites for h in sp.hosts}
    lines += [f"  {n.name} ({n.role}): {plan.address(n.name)}" for n in plan.nodes
              if n.role != "switch" and n.name not in hosts and any(i.addrs for i in plan.intfs(n.name))]
    return "\n".join(lines)


def cmd_ls(args: argparse.Namespace) -> int:
    from multi6lab.lab import detached

    found = detached.labs()
    if args.json:
        print(json.dumps([dataclasses.asdict(d) for d in found.values()], indent=1))
        return 0
    if not found:
        print("no lab is up; 'multi6lab up -d TOPOLOGY' starts one")
        return 0
    print(f"{'NAME':<16} {'PID':>7}  {'UP SINCE':<19}  TOPOLOGY")
    for d in found.values():
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d.up_since))
        print(f"{d.name:<16} {d.pid:>7}  {since:<19}  {d.topology}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from multi6lab.lab import detached

    d = detached.find(args.name)
    print(json.dumps(dataclasses.asdict(d), indent=1) if args.json else inspect_text(d))
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    import subprocess

    from multi6lab.lab import detached

    d = detached.find(args.name)
    argv = [a for a in args.argv if a != "--"] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise detached.LabError("exec: give the command after the node, e.g. 'multi6lab exec LAB h1 -- ip -6 a'")
    return subprocess.run(detached.node_argv(d, args.node, argv), check=False).returncode


def cmd_fault(args: argparse.Namespace) -> int:
    from multi6lab.lab import detached

    d = detached.find(args.name)
    rec = detached.fault(d, args.spec, say)
    say(f"fault over; recorded in {Path(d.workdir) / 'faults.jsonl'} ({len(rec['actions'])} actions)")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from multi6lab.lab import detached

    d = detached.find(args.name)
    took = detached.down(d)
    say(f"lab {d.name} is down ({took:.1f} s); its results stay in {d.workdir}")
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


def cmd_vm(args: argparse.Namespace) -> int:
    from multi6lab.vm import boot

    return boot.run(args)


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
    managed = [sp.site.name for sp in brief.sites if sp.site.approach.profile.controlled]
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
    from multi6lab.topologies.loader import parse_prefix
    from multi6lab.topologies.npt import Translator, Untranslatable

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
        args.answer = [*getattr(args, "answer", []), summary]  # --json: every summary, once all have run
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
    print(json.dumps(runs, indent=1, default=str) if args.json else table, end="\n" if args.json else "")
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


def version() -> str:
    """The installed package's version, and the checkout's commit when it runs from one."""
    import importlib.metadata
    import subprocess

    try:
        v = importlib.metadata.version(PROG)
    except importlib.metadata.PackageNotFoundError:
        v = "unknown"
    here = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip() if (here / ".git").exists() else ""
    except OSError:  # no git on this machine
        commit = ""
    return f"{v} (commit {commit})" if commit else v


class Version(argparse.Action):
    """``--version``, worked out only when asked (it may run git)."""

    def __init__(self, option_strings: list[str], dest: str, **kw: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help=str(kw.get("help", "")))

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"{PROG} {version()}")
        parser.exit()


def run_experiment(args: argparse.Namespace) -> int:
    """An experiment's run, with SIGTERM (a timeout, a CI runner giving up) ending it as Ctrl-C would: through
    its labs' teardown."""
    from multi6lab.lab.emulation import terminate_as_interrupt

    with terminate_as_interrupt():
        return args.card.load().run(args, Recipe(args.card.name, args.parser, args))


def parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line; an experiment's options are read from its module only when ``argv`` runs it."""
    words = sys.argv[1:] if argv is None else argv
    wanted = {next((w for w in words if not w.startswith("-")), "")}  # the sub-command
    p = argparse.ArgumentParser(prog=PROG, description="IPv6 multihoming testbed (RFC 4177) on Mininet.")
    p.add_argument("--version", action=Version, help="say the version (and the commit of a checkout) and exit")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        return sp

    v = add("validate", cmd_validate, "check topology and scenario files; print every problem as file:line:col")
    v.add_argument("files", nargs="+", type=shipped, metavar="FILE")
    v.add_argument("--json", action="store_true", help="one JSON list on standard output: each file's verdict, "
                                                        "its problems with file, line, column, path and message")
    d = add("draw", cmd_draw, "draw a topology with graphviz (PNG, SVG, PDF or .dot by the output's suffix)")
    d.add_argument("file", type=shipped, metavar="TOPOLOGY")
    d.add_argument("-o", "--output", help="output file (default: DOT on standard output)")
    u = add("up", cmd_up, "bring a topology up with its controller and open the Mininet CLI (root)")
    u.add_argument("file", type=shipped, metavar="TOPOLOGY")
    u.add_argument("--workdir", help="where the controller's log and events go (default results/up-<time>)")
    u.add_argument("-c", "--command", action="append", metavar="NODE:CMD",
                   help="run CMD on NODE instead of opening the CLI (repeatable)")
    u.add_argument("-d", "--detach", action="store_true", help="keep the lab up in the background, under a name "
                                                                "('ls', 'inspect', 'exec', 'fault', 'down' find it)")
    u.add_argument("--name", help="the detached lab's name (default: the topology's)")
    u.add_argument("--hold", metavar="NAME", help=argparse.SUPPRESS)  # the background process of -d
    add_servers(u)
    ls = add("ls", cmd_ls, "the labs kept up with 'up -d'")
    ls.add_argument("--json", action="store_true", help="as one JSON list")
    ins = add("inspect", cmd_inspect, "a detached lab: its topology, datapath, run folder, each node's addresses")
    ins.add_argument("name", metavar="LAB")
    ins.add_argument("--json", action="store_true", help="its descriptor as JSON (each node's shell pid)")
    ex = add("exec", cmd_exec, "run a command in a node of a detached lab (root)")
    ex.add_argument("name", metavar="LAB")
    ex.add_argument("node", metavar="NODE")
    ex.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    fa = add("fault", cmd_fault, "break a detached lab by hand, as a scenario would, for the fault's duration, "
                                 "then restore it; recorded in its run folder (root)")
    fa.add_argument("name", metavar="LAB")
    fa.add_argument("spec", metavar="FAULT", help="a scenario's fault entry, e.g. "
                    "'{kind: blackhole, exit: exa, direction: both, duration: 2}'")
    dn = add("down", cmd_down, "tear a detached lab down; its results stay (root)")
    dn.add_argument("name", metavar="LAB")
    c = add("clean", cmd_clean, "remove what crashed or interrupted runs left behind (root)")
    c.add_argument("--all", action="store_true", help="also end runs whose owner process is still alive")
    vm = add("vm", cmd_vm, "boot the Mininet VM (built by 'make vm': Debian's kernel, so the kernel datapath, netem "
                           "and SRv6) and run the demo and the full-kernel tests in it, or a shell (root)")
    if "vm" in wanted:
        from multi6lab.vm import boot

        boot.options(vm)
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
    what.add_argument("--topology", type=shipped, metavar="FILE", help="a topology YAML file")
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
    r.add_argument("scenario", metavar="SCENARIO", nargs="+", type=shipped,
                   help="one or more; each runs on its own lab")
    r.add_argument("--trials", type=int, help="override the scenario's number of trials")
    r.add_argument("--json", action="store_true", help="the runs' summaries as one JSON list on standard output "
                                                        "(progress and tables go to standard error)")
    r.add_argument("--out", help="results directory (default results/<name>-<time>)")
    add_servers(r)
    rp = add("report", cmd_report, "a markdown table over every run in results/")
    rp.add_argument("results", nargs="?", default=str(RESULTS))
    rp.add_argument("--json", action="store_true", help="every run's summary as one JSON list instead of the table")
    rp.add_argument("--html", action="store_true", help="also write index.html: every run, newest first, each "
                                                         "linking to its own report.html")
    lk = add("look", cmd_look, "open a report in headless Chromium: check every image loaded and the tables are "
                               "there, and save a screenshot")
    lk.add_argument("page", metavar="REPORT", help="an HTML report, or a run or comparison directory")
    lk.add_argument("--screenshot", metavar="PNG", help="where the full-page screenshot goes (default: the "
                                                        "report's name with .png)")
    for card in EXPERIMENTS:
        e = add(card.name, run_experiment, card.help)
        e.set_defaults(card=card, parser=e)
        if card.name in wanted:  # its module's imports are paid only when it runs (or shows its help)
            card.load().options(e)
    sp = add("scale-outage-plot", cmd_scale_outage_plot, "several scale-outage runs' p50 and p95 against N on one "
                                                          "plot, one colour per run")
    sp.add_argument("runs", nargs="+", metavar="RUN", help="a scale-outage results directory")
    sp.add_argument("-o", "--output", required=True, help="the plot to write (PNG)")
    sp.add_argument("--goal-ms", type=float, metavar="MS", help="draw a goal for the p95 as a dotted line")
    sp.add_argument("--label", action="append", default=[], metavar="TEXT",
                    help="a run's name in the legend, in the runs' order (default: its approach and triggers)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser(argv).parse_args(argv)
    try:
        if not (getattr(args, "json", False) and args.fn in (cmd_run, run_experiment)):
            return int(args.fn(args))
        # --json: what the command says as it goes is for people (standard error); its answer is the JSON
        with contextlib.redirect_stdout(sys.stderr):
            rc = int(args.fn(args))
        print(json.dumps(getattr(args, "answer", None), indent=1, default=str))
        return rc
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
    finally:
        hand_back()


if __name__ == "__main__":
    sys.exit(main())
