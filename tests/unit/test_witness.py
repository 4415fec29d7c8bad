"""The independent instrument (results.witness): where it looks, how it reads a capture, its own outage
definition, and how a disagreement with the probes is reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from multi6lab.results import analysis, comparison, witness
from multi6lab.topologies import loader
from multi6lab.topologies.plan import build
from multi6lab.traffic import witness as sender

ROOT = Path(__file__).resolve().parents[2]
P = 0.001


def test_it_looks_at_the_site_s_isps_not_at_the_hosts() -> None:
    plan = build(loader.load(ROOT / "topologies" / "figure1.yaml"))
    v = witness.vantage(plan, "site")
    assert v.inbound == (("ispa", "ispa-eth1"), ("ispb", "ispb-eth1"))  # leaving the ISPs toward the exits
    assert v.outbound == (("ispa", "ispa-eth0"), ("ispb", "ispb-eth0"))  # leaving them toward the core
    assert {plan.peer(n, int(i.rsplit("eth", 1)[1])).node for n, i in v.outbound} == {"core"}
    assert sender.MAGIC == witness.MAGIC  # the wire format the two sides share


def test_it_reads_its_own_datagrams_from_captures_with_scapy(tmp_path: Path) -> None:
    def frame(seq: int, port: int = witness.OUT_PORT, magic: bytes = witness.MAGIC) -> Ether:
        return (Ether() / IPv6(src="3fff:a::1", dst="3fff:ff:100::2") / UDP(sport=40000, dport=port)
                / (magic + seq.to_bytes(4, "big") + b"\0" * 56))

    a, b = [frame(0), frame(1), frame(2, port=5001), frame(3, magic=b"XXXX")], [frame(1), frame(4)]
    for f, t in zip(a, (1000.0, 1000.001, 1000.002, 1000.003), strict=True):
        f.time = t
    for f, t in zip(b, (1000.0005, 1000.004), strict=True):
        f.time = t
    wrpcap(str(tmp_path / "a.pcap"), a)
    wrpcap(str(tmp_path / "b.pcap"), b)
    got = witness.arrivals([tmp_path / "a.pcap", tmp_path / "b.pcap", tmp_path / "absent.pcap"], witness.OUT_PORT,
                           900.0)
    assert [s for s, _ in got] == [0, 1, 4]  # other ports and payloads skipped; seq 1 seen twice, first kept
    assert got[1][1] == pytest.approx(100.0005) and got[2][1] == pytest.approx(100.004)


def stream(n: int, drop: set[int] = frozenset(), t0: float = 100.0) -> list[tuple[int, float]]:  # type: ignore[assignment]
    return [(s, t0 + s * P + 0.0005) for s in range(n) if s not in drop]


def test_its_own_outage_definition() -> None:
    assert witness.reading(stream(3000), P, 101.0, 102.0) == witness.Reading(0.0)
    assert witness.reading(stream(3000, set(range(1003, 1010))), P, 101.0, 102.0).outage_ms == pytest.approx(7.0)
    # Two losses in the window: from before the first to after the last.
    two = witness.reading(stream(3000, {1003, 1004, 1005} | set(range(1100, 1110))), P, 101.0, 102.0)
    assert two.outage_ms == pytest.approx(107.0)  # seq 1002 to seq 1110, less a period
    down = witness.reading(stream(3000, set(range(1003, 2500))), P, 101.0, 102.0)
    assert down.outage_ms is None and down.why == "still down at the restore"
    assert down.above_ms == pytest.approx(996.5)  # from the last arrival (seq 1002) to the restore, less a period
    assert witness.reading(stream(900), P, 101.0, 102.0).why == "still down at the restore"
    assert witness.reading([], P, 101.0, 102.0).why == "no witness packet before the fault"
    held = [(s, max(t, 101.0065) if 1003 <= s < 1006 else t) for s, t in stream(3000)]  # held, none lost
    assert witness.reading(held, P, 101.0, 102.0).outage_ms == 0.0
    overtaken = sorted([(s, t + (0.004 if 1003 <= s < 1006 else 0.0)) for s, t in stream(3000)], key=lambda x: x[1])
    assert witness.reading(overtaken, P, 101.0, 102.0).outage_ms == 0.0


def test_a_difference_over_2_ms_is_explained_from_where_each_instrument_looks() -> None:
    assert witness.difference(7.0, 6.5) == 0.5 and witness.difference(None, None) is None
    assert witness.difference(None, 3.0) == float("inf")
    assert witness.explain("outbound", 7.0, 6.0) is None
    later = witness.explain("inbound", 30.0, 8.0)
    assert later is not None and "back at the ISPs' vantage point after 8.0 ms" in later and "switches" in later
    never = witness.explain("inbound", None, 8.0)
    assert never is not None and "never came back at the host" in never
    impossible = witness.explain("outbound", 7.0, 20.0, dropped=12)
    assert impossible is not None and "cannot do" in impossible and "dropped 12 packets" in impossible
    assert witness.dropped("12 packets captured\n12 packets received by filter\n3 packets dropped by kernel\n") == 3
    assert witness.dropped("") == 0


def test_the_witness_is_summarised_per_direction_and_shown_in_its_cell() -> None:
    def trial(i: int, probe: float, seen: float | None) -> analysis.Trial:
        ok = analysis.StreamResult(3000, 2990, 10, probe)
        w = {"outage_ms": seen, "why": None if seen is not None else "still down at the restore", "dropped": 0,
             "difference_ms": witness.difference(probe, seen), "explanation": witness.explain("outbound", probe, seen)}
        return analysis.Trial(i, ok, ok, None, witness={"outbound": w})

    trials = [trial(1, 7.0, 6.5), trial(2, 9.0, 8.8), trial(3, 30.0, 8.0)]
    m = analysis.aggregate(trials)
    w = m["outbound"]["witness"]
    assert w["difference_max_ms"] == 22.0 and w["over_2ms"] == 1 and "lay between them" in w["explanation"]
    assert "witness" not in m["inbound"] and trials[2].row()["outbound_witness_difference_ms"] == "22.000"
    cell = {"metrics": m}
    text = comparison.cell_text(cell)
    assert "witness Δ max out 22.0 ms" in text and "out differs > 2 ms in 1 trials: the outbound stream" in text
    neither = analysis.aggregate([trial(1, 7.0, 6.5)])  # a direction no instrument saw recover: no difference
    neither["inbound"]["witness"] = {**neither["outbound"]["witness"], "difference_max_ms": None}
    assert comparison.cell_text({"metrics": neither}).endswith("witness Δ max out 0.5 ms")
