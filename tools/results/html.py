"""A run's results as one static HTML page, a comparison's as another, and an index over every run. Pure:
data in, text out.

The page opens from disk (no server, no script, nothing fetched): the summary with its intervals, the
timelines, a row per trial linking to that trial's files (probe logs, controller events, captures), the
run's own files and where its numbers came from. Every value is escaped.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from multi6lab.results import soak
from multi6lab.results.analysis import more_than, shown
from multi6lab.results.comparison import cell_text

STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd}
.note{color:#555;font-size:12px}code{background:#f6f6f6;padding:1px 3px}
table.trials{width:100%}table.trials td{width:1%;white-space:nowrap}
table.trials td.trials-last{width:auto;white-space:normal;text-align:left;font-size:12px}
table.trials th:last-child{text-align:left}"""


def _num(x: Any) -> str:
    if x is None:
        return "—"
    return f"{x:.1f}" if isinstance(x, float) else escape(str(x))


def _cell(x: Any) -> str:
    """A value from trials.csv: a number to 0.1, anything else as it is, '—' for none."""
    text = str(x if x is not None else "")
    try:
        return f"{float(text):.1f}" if "." in text else escape(text) or "—"
    except ValueError:
        return escape(text)


def _stat(s: Mapping[str, Any] | None) -> list[str]:
    """p50 [interval], p95 [interval], max, and how many trials had no value."""
    if not s:
        return ["—", "—", "—", ""]

    def num(k: str) -> str:  # "> X s" where the statistic falls on a trial that never recovered
        return escape(shown(s, k)) if k in s.get("censored", ()) else _num(s.get(k))

    def with_ci(k: str) -> str:
        lo, hi = s.get(f"{k}_ci") or [None, None]
        low = escape(more_than(lo)) if f"{k}_ci_lower" in s.get("censored", ()) else _num(lo)
        ci = f" [{low}, {_num(hi) if hi is not None else '—'}]" if lo is not None or hi is not None else ""
        return num(k) + ci

    return [with_ci("p50"), with_ci("p95"), num("max"), _num(s.get("not_recovered", ""))]


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """Cells are HTML already. With ``cls``, the table and its last column carry that class (for styling)."""
    table, last = (f"<table class='{cls}'>", f"<td class='{cls}-last'>") if cls else ("<table>", "<td>")
    out = [table + "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in r[:-1]) + f"{last}{r[-1]}</td></tr>" for r in rows if r]
    return "\n".join(out) + "</table>"


def _metric_rows(m: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for d in ("outbound", "inbound"):
        md = m[d]
        rows.append([f"{d} outage (ms)", *_stat(md["outage_ms"])])
        if not md["outage_ms"] and md.get("reason"):
            rows[-1][-1] = escape(md["reason"])
        for key, label in (("disruption_ms", "disruption (ms)"), ("interarrival_p999_ms", "inter-arrival p99.9 (ms)")):
            if md.get(key):
                rows.append([f"{d} {label}", *_stat(md[key])])
    rows.append(["detection (ms)", *_stat(m.get("detection_ms"))])
    rows.append(["new session (ms)", *_stat(m.get("new_session_ms"))])
    if m.get("exploration_ms"):
        rows.append(["pair exploration (ms)", *_stat(m["exploration_ms"])])
    if m.get("mapping"):
        rows.append([f"mapping lookup (ms), {m['mapping']['lookups']} lookups, {m['mapping']['retries']} retries",
                     *_stat(m["mapping"]["lookup_ms"])])
    for d, steps in (m.get("steps") or {}).items():
        for k, label in (("detection_ms", "detection"), ("decision_ms", "decision"), ("install_ms", "installation")):
            rows.append([f"{d} repair: {label} (ms)", *_stat(steps[k])])
    return rows


def run_page(summary: Mapping[str, Any], trials: Sequence[Mapping[str, Any]], files: Iterable[str]) -> str:
    """The page for one run. ``trials``: the rows of trials.csv; ``files``: paths in the run folder, relative
    to it (what exists is linked, nothing else)."""
    have = sorted(set(files))
    m = summary["metrics"]
    title = f"{summary['scenario']} — {summary['approach']}, {summary['trigger']}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
             f"<style>{STYLE}</style></head><body>", f"<h1>{escape(title)}</h1>",
             f"<p>{escape(summary.get('fault', ''))}; {_num(summary['trials'])} trials on "
             f"{escape(summary['topology'])} ({escape(summary.get('datapath', ''))}){_rtt(m)}. Reproduce: "
             f"<code>{escape(summary.get('command', ''))}</code></p>",
             _substrate(summary),
             "<h2>Summary</h2>",
             _table(["metric", "p50 [95 % interval]", "p95 [95 % interval]", "max", "no value"],
                    _metric_rows(m)),
             "<p class='note'>Intervals from order statistics; '—' for a bound means too few trials for it. "
             "Definitions: docs/scenarios.md.</p>"]
    tcp, clients = m.get("tcp_sessions"), m.get("new_clients")
    if tcp:
        parts.append(f"<p>TCP sessions: {tcp['survived']} of {tcp['total']} survived, {tcp.get('reset', 0)} reset, "
                     f"{tcp.get('resumed_before_restore', 0)} resumed before the restore.</p>")
    if pairs := m.get("pairs_chosen"):
        parts.append("<p>Locator pairs the edges settled on after the fault, over the trials: "
                     + ", ".join(f"{escape(p)} ({n})" for p, n in pairs.items()) + ".</p>")
    if clients:
        parts.append(f"<p>Fresh clients started during the fault: {clients['started_in_fault']}; connected within "
                     f"1 s: {clients['within_1s']:.0%}, within 3 s: {clients['within_3s']:.0%}.</p>")
    if summary.get("resources", {}).get("trials"):
        parts.append(f"<p>Resources after each trial (<a href='resources.csv'>resources.csv</a>): "
                     f"{escape(soak.describe(summary['resources']))}</p>")
    # SVG where there is one (text stays sharp), else the PNG.
    images = [f for f in have if f.startswith("timeline-") and (f.endswith(".svg") or (
        f.endswith(".png") and f[:-4] + ".svg" not in have))]
    if images:
        parts.append("<h2>Timelines</h2>" + "".join(f"<p><img src='{escape(f)}' alt='{escape(f)}'></p>"
                                                     for f in images))
    if trials:
        cols = ["trial", "outbound_outage_ms", "inbound_outage_ms", "detection_ms", "tcp_survived", "new_session_ms"]
        rows = []
        for t in trials:
            folder = f"trial-{int(t['trial']):02d}/"
            plot = folder + "timeline.svg"
            links = " ".join(f"<a href='{escape(f)}'>{escape(f[len(folder):])}</a>" for f in have
                             if f.startswith(folder) and f != plot)
            shown = f"<a href='{escape(plot)}'>timeline</a>" if plot in have else "—"
            rows.append([_cell(t.get(c)) for c in cols] + [_fault_time(t.get("fault_epoch_s")), shown, links])
        head = ["trial", "outbound outage (ms)", "inbound outage (ms)", "detection (ms)", "TCP survived",
                "new session (ms)", "fault began (UTC)", "plot", "files"]
        parts.append("<h2>Trials</h2>" + _table(head, rows, "trials"))
        parts.append("<p class='note'>The captures (<code>.pcap</code>) are stamped with the wall clock, the "
                     "probes and events with the monotonic one; each trial's offset between them is in "
                     "<a href='trials.csv'>trials.csv</a> (<code>clock_offset_s</code>). To line a capture up "
                     "with its fault in Wireshark: View › Time Display Format › UTC Date and Time of Day, and "
                     "the display filter <code>frame.time_epoch &gt;= E</code> with E the trial's "
                     "<code>fault_epoch_s</code> (shown above as a time of day).</p>")
    # The run's own files and folders (FRR's and Knot's logs among them); not the mapping keys, which are secrets.
    own = [f for f in have if not f.startswith(("trial-", "timeline-", "keys/")) and f not in ("report.html",
                                                                                                "report.png")]
    parts.append("<h2>Files</h2><ul>" + "".join(f"<li><a href='{escape(f)}'>{escape(f)}</a></li>" for f in own)
                 + "</ul>")
    p = summary.get("provenance")
    if p:
        parts.append("<h2>Provenance</h2>" + _table(["what", "value"], [[escape(k), escape(str(v))]
                                                                        for k, v in p.items()]))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _substrate(summary: Mapping[str, Any]) -> str:
    """A run measured in a qemu guest says so where its numbers begin; one on a host says nothing here."""
    where = (summary.get("provenance") or {}).get("substrate", "host")
    return "" if where == "host" else f"<p class='note'><strong>Measured in a {escape(where)}.</strong></p>"


def _rtt(m: Mapping[str, Any]) -> str:
    """The round trip the run's figures were read at, as its page says it."""
    rtt = m.get("rtt_ms")
    return f", at a round trip of {rtt['p50']:.2f} ms (p50 of the trials)" if rtt else ""


def _fault_time(epoch: Any) -> str:
    """When a trial's fault began, as a UTC time of day on the captures' clock, with its epoch seconds."""
    try:
        t = float(epoch)
    except (TypeError, ValueError):
        return "—"
    stamp = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"{stamp}<br><code>{t:.6f}</code>"


def comparison_page(rows: Sequence[str], faults: Sequence[str], cells: Mapping[tuple[str, str], Mapping[str, Any]],
                    origin: Mapping[str, Any] | None, files: Iterable[str]) -> str:
    """The page for one comparison: its table (each cell linking to that cell's own report), its chart and
    where its numbers came from. ``files``: paths in the comparison folder, relative to it."""
    have = set(files)
    head = ["<!doctype html><html><head><meta charset='utf-8'><title>multi6lab comparison</title>"
            f"<style>{STYLE}</style></head><body><h1>Comparison</h1>"]
    body = []
    for r in rows:
        line = [f"<b>{escape(r)}</b>"]
        for f in faults:
            cell = cells.get((r, f))
            if cell is None:
                line.append("—")
                continue
            text = "<br>".join(escape(part) for part in cell_text(dict(cell)).split("<br>"))
            report = f"{cell.get('scenario', '')}/report.html"
            line.append(f"<a href='{escape(report)}'>{text}</a>" if report in have else text)
        body.append(line)
    parts = [*head, _table(["approach × trigger", *faults], body),
             "<p class='note'>Each cell: outage p50 / p95 in ms per direction with the p95's 95 % interval, TCP "
             "sessions kept, new-session recovery, and for id-loc each direction's repair (detection + decision "
             "+ installation). A cell opens its own report. Definitions: docs/scenarios.md.</p>"]
    chart = "comparison.svg" if "comparison.svg" in have else "comparison.png" if "comparison.png" in have else None
    if chart:
        parts.append(f"<h2>Outage p95 per direction</h2><p><img src='{chart}' alt='comparison chart'></p>")
    if origin:
        parts.append("<h2>Provenance</h2>" + _table(["what", "value"], [[escape(k), escape(str(v))]
                                                                        for k, v in origin.items()]))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def index_page(runs: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """Every run, newest first: (its folder, its summary) -> a table with each run's headline figures."""
    def started(item: tuple[str, Mapping[str, Any]]) -> str:
        return str(item[1].get("started", ""))

    rows = []
    for folder, s in sorted(runs, key=started, reverse=True):
        m = s["metrics"]
        head = [_stat(m[d]["outage_ms"])[1] if m[d]["outage_ms"] else "not recovered"
                for d in ("outbound", "inbound")]
        rows.append([f"<a href='{escape(folder)}/report.html'>{escape(s['scenario'])}</a>",
                     escape(started((folder, s))), escape(str(s["approach"])), escape(str(s["trigger"])), *head,
                     _num(s["trials"])])
    return ("<!doctype html><html><head><meta charset='utf-8'><title>multi6lab results</title>"
            f"<style>{STYLE}</style></head><body><h1>multi6lab results</h1>"
            + _table(["run", "started", "approach", "trigger", "outbound outage p95 [interval] (ms)",
                      "inbound outage p95 [interval] (ms)", "trials"], rows)
            + "</body></html>\n")
