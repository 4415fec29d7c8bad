"""Results as tables people read: one run's summary, or every run in results/ (pure formatting)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from multi6lab.results.analysis import shown

COLUMNS = ["scenario", "approach", "trigger", "fault", "trials", "RTT p50 ms", "outbound outage p50/p95 ms",
           "inbound outage p50/p95 ms", "lost out/in p50", "detection p50/p95 ms", "TCP survived",
           "new session p50/p95 ms", "false rehomings"]


def _pair(m: dict[str, Any] | None, reason: str | None = None) -> str:
    if not m:
        return f"— ({reason})" if reason else "—"
    text = f"{shown(m, 'p50', '.1f')} / {shown(m, 'p95', '.1f')}"
    if m.get("not_recovered"):
        text += f" ({m['not_recovered']} not recovered)"
    return text


def row(summary: dict[str, Any]) -> list[str]:
    m = summary["metrics"]
    out, inn = m["outbound"], m["inbound"]
    tcp = m.get("tcp_sessions")
    lost = f"{out['lost_packets']['p50']:g} / {inn['lost_packets']['p50']:g}" if out["lost_packets"] else "—"
    return [summary["scenario"], summary["approach"], summary["trigger"], summary.get("fault", ""),
            str(summary["trials"]), f"{m['rtt_ms']['p50']:.2f}" if m.get("rtt_ms") else "—",
            _pair(out["outage_ms"], out.get("reason")),
            _pair(inn["outage_ms"], inn.get("reason")), lost, _pair(m["detection_ms"]),
            f"{tcp['survived']}/{tcp['total']}" if tcp else "—",
            _pair(m.get("new_session_ms"), m.get("new_session_reason")), str(m.get("false_rehomings", 0))]


def origin(summary: dict[str, Any]) -> str:
    """One line saying where a run's numbers came from (its provenance block), or "" for older runs."""
    p = summary.get("provenance")
    if not p:
        return ""
    commit = (p["commit"] or "unknown")[:12] + (" (uncommitted changes)" if p.get("dirty") else "")
    return (f"{summary['scenario']}: commit {commit}; Linux {p['kernel']}, Open vSwitch {p['ovs']} "
            f"{p['datapath']}, FRR {p['frr']}, Knot {p.get('knot')}, os-ken {p['os_ken']}, dnspython "
            f"{p.get('dnspython')}, scapy {p.get('scapy')}, Python {p['python']}; {p['cpus']} x "
            f"{p['cpu']}{_guest(p)}, load {' '.join(map(str, p['load_before']))} at the start; seed {p['seed']}; "
            f"`{p['command']}`")


def _guest(p: dict[str, Any]) -> str:
    """Where the run was: nothing on a host, the qemu guest and its accelerator otherwise."""
    where = p.get("substrate", "host")
    return "" if where == "host" else f" in a {where}"


def markdown(summaries: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(s)) + " |" for s in summaries]
    origins = [o for s in summaries if (o := origin(s))]
    if origins:
        lines += ["", "Measured with:", *[f"- {o}" for o in origins]]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """``path`` holds ``text`` whole or keeps what it held: a full disk or a kill mid-write leaves no half file
    that would read as a result."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def collect(results: Path) -> list[dict[str, Any]]:
    """Every run's summary under ``results``, each with the name of its folder (``folder``)."""
    out = []
    for f in sorted(results.glob("*/summary.json")):
        if f.parent.is_symlink():
            continue
        try:
            out.append({**json.loads(f.read_text()), "folder": f.parent.name})
        except (OSError, ValueError):
            continue
    return out
