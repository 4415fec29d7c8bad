"""Issue 4: a short scenario end to end, with pcaps, gives numbers that agree with each other."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest

from multi6lab.lab.runner import Runner
from multi6lab.scenarios import model
from tests.integration.helpers import ROOT

pytestmark = pytest.mark.integration

SCENARIO = """
name: short
topology: {topology}
approach: nptv6
triggers: [link, heartbeat]
trials: 3
warmup_s: 0.4
record_s: 1.2
traffic: {{pcap: true, tcp_sessions: 1}}
faults:
  - {{kind: link_down, exit: exa, end: isp, at: 0.0, duration: 0.6}}
"""


def probe_gaps_from_pcaps(trial: Path) -> float:
    """The longest gap between outbound probe packets leaving the site through either exit, in ms."""
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap

    times = sorted(float(p.time) for name in ("exa", "exb") for p in rdpcap(str(trial / f"{name}.pcap"))
                   if p.haslayer(UDP) and p[UDP].dport == 5001)
    return max(b - a for a, b in itertools.pairwise(times)) * 1000


def test_short_scenario_end_to_end(tmp_path: Path) -> None:
    f = tmp_path / "short.yaml"
    f.write_text(SCENARIO.format(topology=ROOT / "topologies" / "figure1.yaml"))
    out = tmp_path / "results" / "short-run"
    summary = Runner(model.load(f), out, progress=lambda m: None).run()

    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary
    assert {"scenario", "topology", "approach", "trigger", "trials", "metrics"} <= set(summary)
    m = summary["metrics"]
    assert {"outbound", "inbound", "detection_ms", "tcp_sessions", "new_session_ms"} <= set(m)
    assert (tmp_path / "results" / "latest").resolve() == out.resolve()
    for name in ("timeline-outbound.png", "timeline-inbound.png", "trials.csv", "table.md"):
        assert (out / name).stat().st_size > 0

    with open(out / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3
    # Known limit: outages are judged from when the fault's command has returned, so a failover that is over
    # before then (the data plane's fast-failover group can beat the command) reads 0. make test met it once.
    measured = [row for row in rows if float(row["outbound_outage_ms"]) > 0]
    assert len(measured) >= 2, rows
    for i, row in enumerate(rows, start=1):
        outage = float(row["outbound_outage_ms"])
        lost = int(row["outbound_lost"])
        assert outage < 600, "the outage must lie inside the fault window (0.6 s)"
        # An outage loses probes. (Not "lost <= outage": lost counts the whole trial, and the failback after the
        # restore may drop a few more; one repeat run saw 14 lost for a 10.6 ms outage that way.)
        assert lost >= 1, f"trial {i}: a link down without a lost probe"
        if row not in measured:
            continue
        # The capture at the exits saw the outage too: its longest gap is at least the probes' outage gap (less
        # a receive-timestamp jitter). Not "equal": the longest captured gap may be another one of the trial,
        # such as the failback after the restore (a repeat run saw 6.5 ms there for a 4.1 ms outage).
        pcap_gap = probe_gaps_from_pcaps(out / f"trial-{i:02d}")
        probe_gap = float(row["outbound_gap_ms"])
        assert pcap_gap >= probe_gap - 2.0, f"trial {i}: pcap gap {pcap_gap:.2f} ms vs probe gap {probe_gap}"
        # nptv6 cannot move R's chosen locator: inbound waits for the restore, and says so.
        assert row["inbound_outage_ms"] == "" and row["inbound_reason"].startswith("not recovered before the restore")
    assert m["inbound"]["outage_ms"] is None and m["inbound"]["reason"].startswith("not recovered")
    assert m["detection_ms"]["max"] < 600 and not m["detection_ms"].get("not_recovered")  # every trial, in the fault


def test_routing_scenario_recovers_both_directions_and_dates_bgps_detection(tmp_path: Path) -> None:
    f = tmp_path / "routing.yaml"
    f.write_text(f"""
name: routing-short
topology: {ROOT / "topologies" / "figure1.yaml"}
approach: routing
bgp: {{keepalive_s: 60, hold_s: 180, bfd: {{interval_ms: 50, multiplier: 3}}}}
trials: 2
record_s: 1.5
faults:
  - {{kind: blackhole, exit: exa, direction: both, at: 0.0, duration: 1.0}}
""")
    summary = Runner(model.load(f), tmp_path / "out", progress=lambda m: None).run()
    m = summary["metrics"]
    assert summary["trigger"] == "bgp 60/180 s, bfd 50 ms x3"
    # BFD declares the session down after about 3 x 50 ms; BGP then moves both directions to ISP B, well
    # before the 1 s restore. The host keeps its one PI address, so its TCP session survives.
    assert 100 <= m["detection_ms"]["p50"] < 1000  # not before BFD's ~3 x 50 ms, and before the restore
    for direction in ("outbound", "inbound"):  # recovered in every trial while the fault still stood
        assert m[direction]["outage_ms"] is not None and not m[direction]["outage_ms"].get("not_recovered"), \
            m[direction]
    assert m["tcp_sessions"]["survived"] == m["tcp_sessions"]["total"] == 2
    assert (tmp_path / "out" / "frr" / "exa" / "bgpd.log").exists()
