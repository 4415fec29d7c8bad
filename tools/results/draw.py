"""Topology pictures: the plan as Graphviz DOT (pure), rendered by ``dot`` (plumbing).

ISPs show their PA prefix and ASN, exits show which ISP they reach and the delegation they hold, the site is
a cluster with its approach and identity prefix, and every link shows its interfaces and any impairment.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from multi6lab.topologies.plan import Plan

STYLE = {
    "core": 'shape=ellipse style=filled fillcolor="#dde7f0"',
    "isp": 'shape=box3d style=filled fillcolor="#f6e3c4"',
    "exit": 'shape=box style="rounded,filled" fillcolor="#cfe8cf"',
    "fabric": 'shape=box style="rounded,filled" fillcolor="#e4f2e4"',
    "host": 'shape=component style=filled fillcolor="#ffffff"',
    "remote": 'shape=component style=filled fillcolor="#f0e0f0"',
}


def _q(text: str) -> str:
    return '"' + text.replace('"', r"\"") + '"'


def to_dot(plan: Plan) -> str:
    t = plan.topology
    lines = [f"graph {_q(t.name)} {{", "  rankdir=BT; fontname=Helvetica; node [fontname=Helvetica fontsize=10];",
             "  edge [fontname=Helvetica fontsize=8];", f"  label={_q(t.description or t.name)}; labelloc=t;"]
    labels: dict[str, str] = {}
    for c in t.cores:
        labels[c.name] = f"{c.name}\\n(core) {c.prefix}"
    for i in t.isps:
        filt = "BCP 38 on" if i.ingress_filter else "no ingress filter"
        labels[i.name] = f"{i.name}  AS{i.asn}\\nPA {i.prefix}\\n{filt}"
    for r in t.remotes:
        labels[r.name] = f"{r.name}\\n{plan.address(r.name)}"
    for n in t.kinds:
        if n not in labels:
            labels[n] = n
    for n in ("core", "isp", "remote"):
        for name, kind in t.kinds.items():
            if kind == n:
                lines.append(f"  {_q(name)} [label={_q(labels[name])} {STYLE[kind]}];")
    for sp in plan.sites:
        s = sp.site
        nl = "\\n"
        routing = s.approach.profile.bgp
        triggers = s.bgp.describe() if routing else "triggers " + "+".join(s.triggers)
        title = f"{s.name} ({s.approach}; {triggers})"
        if s.identity and not routing:
            title += f"{nl}identity {s.identity}"
        if routing:
            title += f"{nl}PI {s.pi}  AS{s.asn}"
        lines += [f"  subgraph {_q('cluster_' + s.name)} {{", f"    label={_q(title)};",
                  '    style="dashed,rounded"; color="#888888";']
        for e in sp.exits:
            label = f"{e.name} ({'BGP router' if routing else 'exit'} to {e.isp}){nl}{e.delegation}"
            lines.append(f"    {_q(e.name)} [label={_q(label)} {STYLE['exit']}];")
        fabric_label = f"{s.fabric} (site fabric)"
        lines.append(f"    {_q(s.fabric)} [label={_q(fabric_label)} {STYLE['fabric']}];")
        for h in sp.hosts:
            label = nl.join([h.name, *(str(a) for a in h.addresses.values())])
            lines.append(f"    {_q(h.name)} [label={_q(label)} {STYLE['host']}];")
        lines.append("  }")
    for lk in plan.links:
        extra = []
        if lk.bw:
            extra.append(f"{lk.bw:g} Mbit/s")
        if lk.delay_ms:
            extra.append(f"{lk.delay_ms:g} ms")
        if lk.loss_pct:
            extra.append(f"{lk.loss_pct:g}% loss")
        label = " ".join(extra)
        lines.append(f"  {_q(lk.a.node)} -- {_q(lk.b.node)} [taillabel={_q('eth' + str(lk.a.port))} "
                     f"headlabel={_q('eth' + str(lk.b.port))} label={_q(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot: str, out: Path) -> None:
    fmt = out.suffix.lstrip(".") or "png"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["dot", f"-T{fmt}", "-o", str(out)], input=dot.encode(), check=True, capture_output=True)
    except FileNotFoundError:
        raise RuntimeError("graphviz's 'dot' is not installed; run 'sudo make setup'") from None
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"dot failed: {exc.stderr.decode(errors='replace').strip()}") from None
