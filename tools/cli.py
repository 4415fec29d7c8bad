"""``multi6lab``: validate, draw, bring up and clean topologies; run the controller; map NPTv6 addresses."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from ipaddress import IPv6Address
from pathlib import Path

from topologies import loader
from topologies.yamlsrc import InputError

PROG = "multi6lab"


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cmd_validate(args: argparse.Namespace) -> int:
    from scenarios import compare
    from scenarios import model as scenario_model

    bad = 0
    for f in args.files:
        try:
            if compare.looks_like_comparison(f):
                print(f"ok: {f} (comparison: {compare.validate(Path(f))} cells)")
            elif scenario_model.looks_like_scenario(f):
                sc = scenario_model.load(f)
                print(f"ok: {f} (scenario {sc.name}: {sc.topology_path.name}, {sc.approach or 'topology approach'}, "
                      f"{len(sc.faults)} fault(s), {sc.trials} trials)")
            else:
                t = loader.load(f)
                print(f"ok: {f} ({len(t.sites)} site(s), {len(t.isps)} ISP(s), {len(t.kinds)} nodes, "
                      f"{len(t.links)} links)")
                for note in t.unimplemented():
                    print(f"  note: {note}; 'up' and 'run' will refuse it")
        except InputError as exc:
            bad += 1
            print(exc, file=sys.stderr)
    return 1 if bad else 0


def cmd_draw(args: argparse.Namespace) -> int:
    from tools import draw
    from topologies.topo import build

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
    from tools.emulation import terminate_as_interrupt
    from tools.lab import Lab

    loader.load(args.file)  # report YAML problems before asking for root
    workdir = Path(args.workdir or f"results/up-{time.strftime('%Y%m%d-%H%M%S')}")
    with terminate_as_interrupt(), Lab(args.file, workdir, progress=say) as lab:
        say(f"up: {lab.plan.topology.name}; controller events in {lab.events_path}")
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
    from tools.emulation import require_root
    from tools.runstate import clean

    require_root("multi6lab clean", "it ends processes and deletes OVS bridges and interfaces")
    removed = clean(include_live=args.all)
    for r in removed:
        print(f"removed {r}")
    print("nothing left to clean" if not removed else f"removed {len(removed)} item(s)")
    return 0


def cmd_controller(args: argparse.Namespace) -> int:
    from controller import launcher

    loader.load(args.topology)
    launcher.run(args.topology, args.port, args.events, args.host)
    return 0


def cmd_nptv6(args: argparse.Namespace) -> int:
    from controller.npt import Translator, Untranslatable
    from topologies.loader import parse_prefix

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
    c = add("clean", cmd_clean, "remove what crashed or interrupted runs left behind (root)")
    c.add_argument("--all", action="store_true", help="also end runs whose owner process is still alive")
    ct = add("controller", cmd_controller, "run the OpenFlow site-exit controller (os-ken) for a topology")
    ct.add_argument("--topology", required=True)
    ct.add_argument("--port", type=int, default=6653)
    ct.add_argument("--host", default="127.0.0.1")
    ct.add_argument("--events", help="append JSON events (one per line, monotonic timestamps) to this file")
    n = add("nptv6", cmd_nptv6, "map addresses with RFC 6296 checksum-neutral prefix translation")
    n.add_argument("--inside", required=True, metavar="PREFIX")
    n.add_argument("--outside", required=True, metavar="PREFIX")
    n.add_argument("--reverse", action="store_true", help="map outside addresses back to inside")
    n.add_argument("addresses", nargs="+", metavar="ADDRESS")
    from scenarios import cli as scenario_cli

    scenario_cli.register(add)
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
    except Exception as exc:
        from tools.emulation import EnvError

        if isinstance(exc, EnvError | RuntimeError):
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
