"""Metrics from synthetic probe logs with known gaps, losses, duplicates and reordering."""

from __future__ import annotations

from pathlib import Path

import pytest

from multi6lab.results import analysis as A
from multi6lab.vm.qemu import substrate

P = 0.001  # 1 kHz


def stream(n: int, t0: float = 100.0, drop: range | set[int] = range(0), delay: float = 0.0005,
           source: str = "a", seq0: int = 0) -> list[A.Arrival]:
    return [A.Arrival(seq0 + s, t0 + s * P, t0 + s * P + delay, source) for s in range(n) if s not in drop]


def test_known_gap_gives_exact_outage_and_loss() -> None:
    arr = stream(3000, drop=range(1000, 1009))  # 9 probes lost right at the fault
    r = A.stream(arr, sent=3000, period=P, t_fault=101.0, t_restore=102.0, t_end=103.0)
    assert r.lost == 9
    assert r.outage_ms == pytest.approx(9.0, abs=1e-6)  # gap of 10 periods minus one period
    assert r.gap == pytest.approx((100.9995, 101.0095))  # seq 999 and seq 1009, 10 periods apart
    assert r.reason is None


def test_unaffected_stream_scores_zero() -> None:
    r = A.stream(stream(3000), sent=3000, period=P, t_fault=101.0, t_restore=102.0, t_end=103.0)
    assert r.outage_ms == pytest.approx(0.0, abs=1e-6) and r.lost == 0


def test_a_stalled_sender_is_not_an_outage() -> None:
    # The sender stalled 12 ms right after the fault, then sent on; nothing was lost.
    arr = [A.Arrival(s, 100 + s * P + (0.012 if s >= 1001 else 0), 100 + s * P + 0.0005 + (0.012 if s >= 1001 else 0))
           for s in range(3000)]
    r = A.stream(arr, sent=3000, period=P, t_fault=101.0005, t_restore=102.0, t_end=103.0)
    assert r.lost == 0 and r.outage_ms == pytest.approx(0.0, abs=1e-6)


def test_a_network_hold_is_an_outage_even_without_loss() -> None:
    # Probes sent on time but held in a queue during the switch-over, all released together at 101.0105.
    arr = [A.Arrival(s, 100 + s * P, max(100 + s * P + 0.0005, 101.0105) if s >= 1001 else 100 + s * P + 0.0005)
           for s in range(3000)]
    r = A.stream(arr, sent=3000, period=P, t_fault=101.0005, t_restore=102.0, t_end=103.0)
    assert r.lost == 0 and r.outage_ms == pytest.approx(9.0, abs=1e-6)


def test_duplicates_and_reordering_are_neither_loss_nor_gap() -> None:
    arr = stream(3000)
    arr[1500], arr[1501] = arr[1501], arr[1500]  # reordered in the log
    arr += [arr[10], arr[2000]]  # duplicated
    r = A.stream(arr, sent=3000, period=P, t_fault=101.0, t_restore=102.0, t_end=103.0)
    assert r.lost == 0 and r.received == 3000
    assert r.outage_ms == pytest.approx(0.0, abs=1e-6)


def test_failback_gap_spanning_the_restore_is_not_the_outage() -> None:
    # Rehomed 6 ms after the fault; the return to the primary exit drops 25 probes once the fault is restored.
    lost = set(range(1000, 1006)) | set(range(2000, 2025))
    r = A.stream(stream(3000, drop=lost), sent=3000, period=P, t_fault=101.0, t_restore=102.0, t_end=103.0)
    assert r.outage_ms == pytest.approx(6.0, abs=1e-6) and r.reason is None
    assert r.lost == 31 and r.disruption_ms == pytest.approx(6.0, abs=1e-6)


def test_the_outage_lasts_until_the_stream_stays_up_and_disruption_adds_up_the_lost_time() -> None:
    # Back after 5 ms, down again for 30 ms at +400 ms: the stream was not up for good until +430 ms.
    lost = set(range(1000, 1005)) | set(range(1400, 1430)) | set(range(2500, 2600))  # last gap is after restore
    r = A.stream(stream(3000, drop=lost), sent=3000, period=P, t_fault=101.0, t_restore=102.0, t_end=103.0)
    assert r.outage_ms == pytest.approx(430.0, abs=1e-6) and r.disruption_ms == pytest.approx(35.0, abs=1e-6)
    assert r.lost == 135
    # A gap shorter than k periods after the recovery is a blip, not a relapse: the outage stays 5 ms.
    blip = set(range(1000, 1005)) | {1400, 1401}
    r = A.stream(stream(3000, drop=blip), sent=3000, period=P, t_fault=101.0, t_restore=102.0, t_end=103.0)
    assert r.outage_ms == pytest.approx(5.0, abs=1e-6) and r.disruption_ms == pytest.approx(7.0, abs=1e-6)


def held(n: int, holds: dict[int, float]) -> list[A.Arrival]:
    """``n`` probes at 1 kHz, nothing lost; probe s (and those queued behind it) released ``holds[s]`` late."""
    out, t_free = [], 0.0
    for s in range(n):
        sent = 100 + s * P
        t = max(sent + 0.0005 + holds.get(s, 0.0), t_free)
        t_free = t
        out.append(A.Arrival(s, sent, t))
    return out


def test_jitter_holds_over_a_long_window_do_not_stretch_into_an_outage() -> None:
    # A fault that leaves the path alone for 6 s: the stream is held 2-4 ms now and then, as before the fault,
    # and 8 ms 1.4 s in and 7 ms 3 s later. The first long hold is the break; the later one is no relapse.
    holds = {300: 0.004, 1100: 0.003, 1500: 0.0025, 2400: 0.008, 4000: 0.003, 5400: 0.007, 6500: 0.0035}
    r = A.stream(held(8000, holds), sent=8000, period=P, t_fault=101.0, t_restore=107.0, t_end=108.0)
    assert r.lost == 0 and r.outage_ms == pytest.approx(8.0, abs=0.01)
    # A loss of k periods after the recovery is a relapse, wherever it falls.
    relapse = [a for a in held(8000, holds) if not 5000 <= a.seq < 5010]
    r = A.stream(relapse, sent=8000, period=P, t_fault=101.0, t_restore=107.0, t_end=108.0)
    assert r.outage_ms == pytest.approx(2610.0, abs=0.01)  # from the first break to the end of the loss
    # Holds no longer than the ones before the fault are the instrument's: nothing broke.
    calm = {300: 0.006, 1100: 0.003, 2400: 0.0055, 5400: 0.005}
    r = A.stream(held(8000, calm), sent=8000, period=P, t_fault=101.0, t_restore=107.0, t_end=108.0)
    assert r.outage_ms == pytest.approx(0.0, abs=1e-6) and r.disruption_ms > 0


def test_a_stray_probe_in_the_middle_does_not_end_the_outage() -> None:
    # 40 probes lost but one, 20 ms in: "recovered" needs k consecutive arrivals.
    lost = set(range(1000, 1040)) - {1020}
    r = A.stream(stream(3000, drop=lost), sent=3000, period=P, t_fault=101.0, t_restore=102.0, t_end=103.0)
    assert r.outage_ms == pytest.approx(40.0, abs=1e-6) and r.lost == 39
    assert A.stream(stream(3000, drop=lost), sent=3000, period=P, t_fault=101.0, t_restore=102.0, t_end=103.0,
                    k=1).outage_ms == pytest.approx(40.0, abs=1e-6)  # the relapse after 1020 is k periods long


def test_a_stream_that_falls_silent_before_the_restore_did_not_recover() -> None:
    # Back for a while, then down again for the last 100 ms of the fault: not a rehoming that held.
    lost = set(range(1000, 1010)) | set(range(1900, 2000))
    r = A.stream(stream(3000, drop=lost), sent=3000, period=P, t_fault=101.0, t_restore=102.0, t_end=103.0)
    assert r.outage_ms is None and r.reason == "not recovered before the restore at +1000 ms"
    assert r.disruption_ms == pytest.approx(110.0, abs=0.6)
    endless = A.stream(stream(1500), sent=3000, period=P, t_fault=101.0, t_restore=103.0, t_end=103.0)
    assert endless.reason == "not recovered by the end of the record"


def test_a_hold_that_spans_the_restore_is_not_a_stream_still_down() -> None:
    # The machine held both streams ~10 ms just as the restore began (seen in an outbound blackhole, whose
    # inbound direction was never broken, reading "not recovered"): the next probe is the consecutive one,
    # so nothing was dropped by a path that was still down.
    unbroken = A.stream(held(3000, {1991: 0.0105}), sent=3000, period=P, t_fault=101.0, t_restore=102.0,
                        t_end=103.0)
    assert unbroken.reason is None and unbroken.outage_ms == pytest.approx(0.0, abs=1e-6)
    rehomed = [a for a in held(3000, {1991: 0.0105}) if not 1000 <= a.seq < 1005]
    r = A.stream(rehomed, sent=3000, period=P, t_fault=101.0, t_restore=102.0, t_end=103.0)
    assert r.reason is None and r.outage_ms == pytest.approx(5.0, abs=1e-6) and r.lost == 5


def test_the_sender_stall_correction_is_kept_and_flagged() -> None:
    # 10 probes lost, and the sender itself stalled 3 ms inside that outage.
    arr = [A.Arrival(s, 100 + s * P + (0.003 if s >= 1010 else 0), 100 + s * P + 0.0005 + (0.003 if s >= 1010 else 0))
           for s in range(3000) if not 1000 <= s < 1010]
    r = A.stream(arr, sent=3000, period=P, t_fault=101.0, t_restore=102.0, t_end=103.0)
    assert r.raw_gap_ms == pytest.approx(13.0, abs=1e-6) and r.sender_stall_ms == pytest.approx(3.0, abs=1e-6)
    assert r.outage_ms == pytest.approx(10.0, abs=1e-6) and r.stall_flagged


def test_recovered_only_by_the_restore_is_not_a_rehoming() -> None:
    r = A.stream(stream(3000, drop=range(1000, 2000)), sent=3000, period=P, t_fault=101.0, t_restore=102.0,
                 t_end=103.0)
    assert r.outage_ms is None and r.reason == "not recovered before the restore at +1000 ms"
    assert r.lost == 1000


def test_probes_in_flight_when_the_fault_lands_are_not_a_recovery() -> None:
    # Two probes were already past the failure point and arrive 0.5 and 1.5 ms after it; then nothing.
    lost = set(range(1002, 2000))
    r = A.stream(stream(3000, drop=lost), sent=3000, period=P, t_fault=101.0, t_restore=102.0, t_end=103.0)
    assert r.outage_ms is None and r.reason == "not recovered before the restore at +1000 ms"


def test_never_recovered_and_never_up() -> None:
    r = A.stream(stream(1000), sent=3000, period=P, t_fault=101.0, t_restore=103.0, t_end=103.0)
    assert r.outage_ms is None and r.reason == "no probe arrived after the fault"
    r = A.stream([], sent=3000, period=P, t_fault=101.0, t_restore=102.0, t_end=103.0)
    assert r.reason == "no probe arrived before the fault (the path was not up)"


def test_sources_seen_in_order() -> None:
    arr = stream(1000, source="A") + stream(1000, t0=101.0, source="B", seq0=1000)
    r = A.stream(arr, sent=2000, period=P, t_fault=100.5, t_restore=102.0, t_end=102.0)
    assert r.sources == ("A", "B")


def test_detection_and_false_rehomings() -> None:
    ev = [{"event": "heartbeat_timeout", "t": 101.031, "exit": "exa"},
          {"event": "path_dead", "t": 101.031, "exit": "exa"},
          {"event": "path_dead", "t": 100.5, "exit": "exa"},
          {"event": "path_dead", "t": 101.2, "exit": "exb"}]
    assert A.detection_ms(ev, 101.0, {"exa"}) == pytest.approx(31.0)
    assert A.detection_ms(ev, 101.0, {"exc"}) is None
    icmp = [{"event": "dest_dead", "t": 101.002, "exit": "exa"}, *ev]
    assert A.detection_ms(icmp, 101.0, {"exa"}) == pytest.approx(2.0)
    early = [{"event": "port_down", "t": 100.999, "exit": "exa"}]  # before the command's midpoint
    assert A.detection_ms(early, 101.0, {"exa"}, since=100.998) == 0.0
    assert A.detection_ms(early, 101.0, {"exa"}) is None
    assert A.false_rehomings(ev, 101.0, 103.0, {"exa"}, loss_burst=False) == 1
    assert A.false_rehomings(ev, 101.0, 103.0, {"exa"}, loss_burst=True) == 2


def test_tcp_sessions() -> None:
    recs = [(i, 100 + i * 0.01) for i in range(100) if not 40 <= i < 60]
    s = A.tcp_session(recs, last_seq=99, error=None)
    assert s.survived and s.stall_ms == pytest.approx(210.0)
    reset = A.tcp_session(recs[:30], last_seq=None, error="ECONNRESET")
    assert not reset.survived and reset.error == "ECONNRESET"
    short = A.tcp_session(recs[:30], last_seq=99, error=None)
    assert not short.survived and short.error == "the last record never arrived"
    # Fault from 100.35 to 100.75: records 40-59 (100.40-100.59) never came; 60-74 came while it still stood.
    during = A.tcp_session(recs, last_seq=99, error=None, window=(100.35, 100.75, 0.01))
    assert during.resumed and during.goodput == pytest.approx(19 / 39.8, abs=1e-3)  # 36-39 and 60-74 of ~40
    stuck = A.tcp_session([r for r in recs if not 100.35 < r[1] < 100.75], last_seq=99, error=None,
                          window=(100.35, 100.75, 0.01))
    assert stuck.survived and stuck.resumed is False and stuck.goodput == 0.0


def test_the_stall_is_a_survivors_and_resets_are_counted_apart() -> None:
    ok = A.StreamResult(10, 10, 0, 0.0)
    sessions = [A.TcpSession(True, 210.0, resumed=True, goodput=0.5),
                A.TcpSession(False, 11.0, "ECONNRESET after record 40", resumed=False, goodput=0.0),
                A.TcpSession(False, None, "the last record never arrived", resumed=False, goodput=0.0)]
    tcp = A.aggregate([A.Trial(0, ok, ok, None, sessions)])["tcp_sessions"]
    assert (tcp["survived"], tcp["reset"], tcp["total"], tcp["resumed_before_restore"]) == (1, 1, 3, 1)
    assert tcp["stall_ms"]["max"] == 210.0  # the reset session's 11 ms is not a stall
    assert tcp["goodput_during_fault"]["max"] == 0.5


def test_new_sessions() -> None:
    att = [A.Attempt(100.9, 100.901, True), A.Attempt(101.05, 101.25, False), A.Attempt(101.3, 101.302, True)]
    ms, why, above = A.new_session_ms(att, 101.0, 102.0)
    assert ms == pytest.approx(302.0) and why is None and above is None
    ms, why, above = A.new_session_ms([A.Attempt(101.1, 101.3, False), A.Attempt(102.1, 102.101, True)], 101.0,
                                      102.0)
    assert ms is None and why == "new connections failed until the restore at +1000 ms" and above == 1000.0
    assert A.new_session_ms([], 101.0, 102.0) == (None, "no new connection succeeded after the fault", None)
    # Every client in the fault failed: censored at the fault's length, as an outage that never ended.
    assert A.new_session_ms([A.Attempt(101.1, 101.3, False)], 101.0, 102.0)[2] == 1000.0
    # Started while the injecting command ran (fault not yet certainly in effect): it proves nothing.
    early = [A.Attempt(101.001, 101.002, True), A.Attempt(101.05, 101.25, False), A.Attempt(102.1, 102.1, True)]
    assert A.new_session_ms(early, 101.0, 102.0, in_effect=101.003)[0] is None
    # Started before the restore but completed only after it, while the others failed: the restore's doing.
    rescued = [A.Attempt(101.05, 101.25, False), A.Attempt(101.95, 102.003, True)]
    assert A.new_session_ms(rescued, 101.0, 102.0)[1] == "new connections failed until the restore at +1000 ms"


def test_percentile_matches_numpy_linear() -> None:
    xs = [9.0, 1.0, 7.0, 3.0, 5.0]
    assert A.percentile(xs, 50) == 5.0
    assert A.percentile(xs, 95) == pytest.approx(8.6)
    assert A.percentile([4.0], 95) == 4.0
    with pytest.raises(ValueError):
        A.percentile([], 50)


def test_aggregate_reports_null_with_reason() -> None:
    ok = A.StreamResult(3000, 2991, 9, 9.0)
    bad = A.StreamResult(3000, 2000, 1000, None, "not recovered before the restore at +1000 ms")
    trials = [A.Trial(i, ok, bad, 30.0 + i, [A.TcpSession(i % 2 == 0, 12.0)], 40.0) for i in range(4)]
    m = A.aggregate(trials)
    assert m["outbound"]["outage_ms"] == {"p50": 9.0, "p95": 9.0, "max": 9.0, "p50_ci": [None, None],
                                          "p95_ci": [9.0, None]}  # 4 trials bound little
    assert m["inbound"]["outage_ms"] is None
    assert m["inbound"]["reason"] == "not recovered before the restore at +1000 ms"
    assert m["inbound"]["lost_packets"] == {"p50": 1000.0, "max": 1000.0, "p50_ci": [None, None]}
    assert m["detection_ms"]["p50"] == 31.5 and m["detection_ms"]["max"] == 33.0
    assert m["tcp_sessions"]["survived"] == 2 and m["tcp_sessions"]["total"] == 4
    assert {k: m["tcp_sessions"]["stall_ms"][k] for k in ("p50", "p95", "max")} == {"p50": 12.0, "p95": 12.0,
                                                                                    "max": 12.0}
    assert m["new_session_ms"]["p95"] == 40.0
    partly = A.aggregate([A.Trial(0, ok, ok, None), A.Trial(1, bad, ok, None)])
    assert partly["outbound"]["outage_ms"]["not_recovered"] == 1
    assert partly["tcp_sessions"] is None and partly["detection_ms"] is None
    assert A.Trial(0, ok, bad, None).row()["inbound_reason"].startswith("not recovered")


def test_an_idloc_repair_splits_into_detection_decision_and_installation() -> None:
    from multi6lab.results.analysis import Steps, repair_steps

    ev = [
        {"t": 9.0, "event": "pair_selected", "src_site": "s1", "exit": "s1ea"},  # before the fault: not counted
        {"t": 10.021, "event": "exploring", "src_site": "s1", "exit": "s1ea", "dst_exit": "s2ec"},
        {"t": 10.0215, "event": "exploring", "src_site": "s2", "exit": "s2ec", "dst_exit": "s1ea"},
        {"t": 10.022, "event": "pair_selected", "src_site": "s1", "exit": "s1eb", "dst_exit": "s2ec"},
        {"t": 10.0222, "event": "rules_sent", "site": "s1", "dpid": 1, "push": 5},
        {"t": 10.0223, "event": "rules_sent", "site": "s1", "dpid": 2, "push": 5},
        {"t": 10.0230, "event": "barrier_ok", "site": "s1", "dpid": 1, "push": 5},
        {"t": 10.0241, "event": "barrier_ok", "site": "s1", "dpid": 2, "push": 5},
        {"t": 10.5, "event": "barrier_ok", "site": "s1", "dpid": 2, "push": 6},  # a later decision's
    ]
    s1 = repair_steps(ev, 10.0, 11.0, "s1")
    assert s1.detection_ms == pytest.approx(21.0) and s1.decision_ms == pytest.approx(1.0)
    assert s1.install_ms == pytest.approx(2.1)
    assert repair_steps(ev, 10.0, 11.0, "s2") == Steps(detection_ms=pytest.approx(21.5))  # noticed, kept its pair
    assert repair_steps(ev, 10.0, 11.0, "s3") == Steps()


def test_repair_steps_are_summarised_per_direction_and_written_per_trial() -> None:
    from multi6lab.results.analysis import Steps, StreamResult, Trial, aggregate

    ok = StreamResult(1000, 990, 10, 10.0)
    trials = [Trial(i, ok, ok, 5.0, steps={"outbound": Steps(20.0 + i, 1.0, 2.0), "inbound": Steps(21.0)})
              for i in range(3)]
    steps = aggregate(trials)["steps"]
    assert steps["outbound"]["detection_ms"]["p50"] == 21.0 and steps["outbound"]["install_ms"]["max"] == 2.0
    assert steps["inbound"]["decision_ms"] is None  # that edge never moved
    row = trials[0].row()
    assert row["outbound_detection_ms"] == "20.000" and row["inbound_install_ms"] == ""
    assert "steps" not in aggregate([Trial(0, ok, ok, 5.0)])


def test_the_pair_each_edge_settled_on_is_read_per_trial_and_counted_over_them() -> None:
    """RFC 4177 6.3.2 on the asymmetric topologies: the report says which pair the exploration chose."""
    from multi6lab.results import html
    from multi6lab.results.analysis import StreamResult, Trial, aggregate, chosen_pairs
    from multi6lab.vocabulary import Event

    def sel(t: float, src: str, x: str, dst: str, y: str) -> dict[str, object]:
        return {"event": Event.PAIR_SELECTED, "t": t, "src_site": src, "dst_site": dst, "exit": x, "dst_exit": y}

    events = [sel(0.5, "s1", "s1ea", "s2", "s2ec"),  # before the fault: not this trial's choice
              sel(1.2, "s1", "s1eb", "s2", "s2ec"), sel(1.3, "s1", "s1eb", "s2", "s2ed"),  # the last one counts
              sel(1.25, "s2", "s2ec", "s1", "s1eb"), {"event": Event.PAIR_UP, "t": 1.4}]
    assert chosen_pairs(events, 1.0, 3.0) == ["s1:s1eb→s2:s2ed", "s2:s2ec→s1:s1eb"]
    assert chosen_pairs(events, 5.0, 6.0) == []
    ok = StreamResult(1000, 990, 10, 10.0)
    trials = [Trial(i, ok, ok, 5.0, pairs=p) for i, p in enumerate(
        [["s1:s1eb→s2:s2ed"], ["s1:s1eb→s2:s2ed"], ["s1:s1eb→s2:s2ec"]])]
    out = aggregate(trials)
    assert out["pairs_chosen"] == {"s1:s1eb→s2:s2ed": 2, "s1:s1eb→s2:s2ec": 1}
    assert trials[0].row()["pairs"] == "s1:s1eb→s2:s2ed" and "pairs_chosen" not in aggregate([Trial(0, ok, ok, 1.0)])
    page = html.run_page({"scenario": "x", "approach": "id-loc", "trigger": "link", "trials": 3, "topology": "t",
                          "metrics": {**out, "detection_ms": None}}, [], [])
    assert "s1:s1eb→s2:s2ed (2), s1:s1eb→s2:s2ec (1)" in page


@pytest.mark.parametrize(("n", "q", "bounds"), [
    (20, 0.5, (6, 15)),  # the textbook interval for a median of 20
    (20, 0.95, (17, None)),  # too few trials to bound p95 from above
    (71, 0.95, (63, None)),
    (72, 0.95, (64, 72)),  # from 72 trials on, the maximum bounds p95 (two-sided 95 %)
    (5, 0.5, (None, None)),
    (6, 0.5, (1, 6)),
])
def test_percentile_intervals_come_from_order_statistics(n: int, q: float, bounds: tuple[int | None, int | None]
                                                         ) -> None:
    from multi6lab.results.intervals import quantile_interval

    assert quantile_interval([float(x) for x in range(n, 0, -1)], q) == bounds  # the input order does not matter


def test_a_percentile_interval_covers_the_true_quantile_at_least_as_often_as_it_claims() -> None:
    import random

    from multi6lab.results.intervals import quantile_interval

    rng = random.Random(11)
    hits = 0
    for _ in range(400):  # exponential samples: the true median is ln 2
        lo, hi = quantile_interval([rng.expovariate(1.0) for _ in range(30)], 0.5)
        assert lo is not None and hi is not None
        hits += lo <= 0.6931 <= hi
    assert hits / 400 >= 0.93


def test_provenance_parsers_and_the_line_a_report_prints() -> None:
    from multi6lab.lab.provenance import cpu_model, first_version
    from multi6lab.results.report import markdown

    assert first_version("ovs-vsctl (Open vSwitch) 3.1.0\nDB Schema 8.3.1") == "3.1.0"
    assert first_version("zebra version 8.4.4\nCopyright 1996-2005") == "8.4.4" and first_version("none") is None
    assert cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: x") == "AMD EPYC 7B13"
    assert cpu_model("") is None
    origin = {"commit": "0123456789abcdef", "dirty": True, "kernel": "6.1.0", "ovs": "3.1.0",
              "datapath": "userspace (netdev)", "frr": "8.4.4", "knot": "3.2.6", "os_ken": "4.2.2",
              "dnspython": "2.6.1", "scapy": "2.5.0", "python": "3.11.2",
              "cpu": "AMD EPYC", "cpus": 2, "load_before": [0.1, 0.2, 0.3], "seed": 7,
              "command": "multi6lab run scenarios/demo.yaml"}
    ok = {"p50": 1.0, "p95": 2.0, "max": 2.0}
    summary = {"scenario": "demo", "approach": "nptv6", "trigger": "link", "trials": 2, "provenance": origin,
               "metrics": {"outbound": {"outage_ms": ok, "lost_packets": ok}, "inbound": {"outage_ms": ok,
                           "lost_packets": ok}, "detection_ms": ok}}
    assert ("- demo: commit 0123456789ab (uncommitted changes); Linux 6.1.0, Open vSwitch 3.1.0 userspace (netdev), "
            "FRR 8.4.4, Knot 3.2.6, os-ken 4.2.2, dnspython 2.6.1, scapy 2.5.0, Python 3.11.2; 2 x AMD EPYC, "
            "load 0.1 0.2 0.3 at the start; seed 7; "
            "`multi6lab run scenarios/demo.yaml`") in markdown([summary])
    origin["substrate"] = substrate("console=ttyS0 multi6lab.accel=tcg")  # a guest's numbers say so on their line
    assert "2 x AMD EPYC in a qemu TCG guest (emulated CPU, about 14x slower: timings not comparable with a " \
           "host's), load" in markdown([summary])


def test_provenance_reads_every_fact_or_says_null() -> None:
    from multi6lab.lab import provenance

    p = provenance.collect(seed=3)
    assert set(p) == {"commit", "dirty", "kernel", "ovs", "datapath", "frr", "knot", "os_ken", "dnspython", "scapy",
                      "python", "cpu", "cpus", "load_before", "seed", "command", "substrate"}
    assert p["dnspython"] and p["scapy"] and (p["knot"] is None or p["knot"].count(".") == 2)
    assert p["commit"] is None or len(p["commit"]) == 40  # a checkout says which commit it is
    assert p["dirty"] in (None, True, False) and p["seed"] == 3 and p["cpus"] >= 1 and len(p["load_before"]) == 3
    assert p["python"].count(".") == 2 and p["datapath"] in ("kernel (system)", "userspace (netdev)")
    assert p["substrate"] == "host" or p["substrate"].startswith("qemu ")


def test_a_healthy_stream_reads_zero_and_its_spacing_is_the_resolution() -> None:
    # Ten probes in 3000 held 1.8 ms each, one of them inside the fault window: jitter, not gaps.
    arr = [A.Arrival(s, 100 + s * P, 100 + s * P + 0.0005 + (0.0018 if s % 300 == 150 else 0.0))
           for s in range(3000)]
    r = A.stream(arr, sent=3000, period=P, t_fault=101.0, t_restore=102.0, t_end=103.0)
    assert r.outage_ms == 0.0 and r.disruption_ms == 0.0
    assert r.interarrival_p999_ms == pytest.approx(2.0, abs=0.01)  # the spacing around each held probe


def test_fresh_clients_started_in_the_fault_window_are_counted_by_how_soon_they_connected() -> None:
    att = [A.Attempt(100.5, 100.501, True),  # before the fault: not counted
           A.Attempt(101.1, 101.35, True),  # 250 ms: Happy Eyeballs moved to the next address
           A.Attempt(101.2, 102.9, True),  # 1.7 s
           A.Attempt(101.5, 104.5, False),  # gave up after 3 s
           A.Attempt(102.2, 102.201, True)]  # after the restore: not counted
    c = A.clients_in_fault(att, 101.0, 102.0)
    assert (c.started, c.within_1s, c.within_3s) == (3, 1, 2)
    ok = A.StreamResult(10, 10, 0, 0.0)
    m = A.aggregate([A.Trial(0, ok, ok, None, clients=c), A.Trial(1, ok, ok, None, clients=A.Clients(1, 1, 1))])
    assert m["new_clients"] == {"started_in_fault": 4, "within_1s": 0.5, "within_3s": 0.75}
    assert "new_clients" not in A.aggregate([A.Trial(0, ok, ok, None)])


def test_probe_arrivals_are_read_back_from_a_capture(tmp_path: Path) -> None:
    import struct

    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    from multi6lab.results.capture import probe_arrivals

    frames = []
    for seq in range(5):
        p = (Ether() / IPv6(src="3fff:a:5::1", dst="3fff:ff:100::2") / UDP(sport=4000, dport=5001)
             / (struct.pack("!Qd", seq, 50.0 + seq * 0.001) + b"\0" * 48))
        p.time = 1_700_000_000.25 + seq * 0.001
        frames.append(p)
    frames.append(Ether() / IPv6() / UDP(dport=9999) / (b"\0" * 64))  # another port: not a probe
    tunnelled = (Ether() / IPv6(src="3fff:ff:200::2", dst="3fff:a:5::1") / IPv6(src="3fff:ff:100::2")
                 / UDP(dport=5001) / (struct.pack("!Qd", 5, 50.005) + b"\0" * 48))  # a mobile node's tunnel
    tunnelled.time = 1_700_000_000.255
    frames.append(tunnelled)
    wrpcap(str(tmp_path / "p.pcap"), frames)
    got = probe_arrivals(tmp_path / "p.pcap", 5001, realtime_offset=1_700_000_000.0 - 100.0)
    assert [a.seq for a in got] == [0, 1, 2, 3, 4, 5] and got[1].t_sent == pytest.approx(50.001)
    assert got[0].t_recv == pytest.approx(100.25, abs=1e-6)
    from scapy.utils import PcapNgWriter

    with PcapNgWriter(str(tmp_path / "p.pcapng")) as ng:  # as Wireshark saves it
        for f in frames:
            ng.write(f)
    assert probe_arrivals(tmp_path / "p.pcapng", 5001, 1_700_000_000.0 - 100.0) == got
    (tmp_path / "bad.pcap").write_bytes(b"\0" * 40)
    with pytest.raises(ValueError, match="not a pcap"):
        probe_arrivals(tmp_path / "bad.pcap", 5001, 0.0)
    (tmp_path / "empty.pcap").write_bytes(b"")
    assert probe_arrivals(tmp_path / "empty.pcap", 5001, 0.0) == []


def test_probes_and_capture_disagreeing_are_measured_and_flagged() -> None:
    ok, slow, down = A.StreamResult(1, 1, 0, 5.0), A.StreamResult(1, 1, 0, 8.5), A.StreamResult(1, 0, 1, None)
    assert A.disagreement(ok, slow) == pytest.approx(3.5)
    assert A.disagreement(ok, down) == float("inf") and A.disagreement(down, down) is None
    trials = [A.Trial(0, ok, ok, None, cross_check={"outbound": 0.4, "inbound": None}),
              A.Trial(1, ok, ok, None, cross_check={"outbound": 3.5, "inbound": float("inf")})]
    m = A.aggregate(trials)
    assert m["outbound"]["capture_disagreement_ms"] == {"max": 3.5, "flagged": 1}
    assert m["inbound"]["capture_disagreement_ms"] == {"max": "inf", "flagged": 1}


def test_an_outage_over_before_the_fault_command_returned_is_still_measured() -> None:
    """The command that injects a fault runs 8-20 ms; the failover here was over inside it (7 probes lost from
    +5 ms). The window opens when the command starts; one opened at its return read 0."""
    arr = stream(3000, drop=set(range(1005, 1012)))
    started, returned = 101.0, 101.015
    r = A.stream(arr, sent=3000, period=P, t_fault=started, t_restore=102.0, t_end=103.0)
    assert r.outage_ms == pytest.approx(7.0, abs=1e-6) and r.gap == pytest.approx((101.0045, 101.0125))
    hidden = A.stream(arr, sent=3000, period=P, t_fault=returned, t_restore=102.0, t_end=103.0)
    assert hidden.outage_ms == pytest.approx(0.0, abs=1e-6)
    # A hold of the probes while the command runs (its own load: nothing lost, three released together with the
    # fourth) is no break.
    held_by_command = [A.Arrival(a.seq, a.t_sent, max(a.t_recv, 101.0045) if 1001 <= a.seq < 1004 else a.t_recv)
                       for a in arr]
    again = A.stream(held_by_command, sent=3000, period=P, t_fault=started, t_restore=102.0, t_end=103.0)
    assert again.outage_ms == pytest.approx(7.0, abs=1e-6)


def test_a_trial_that_never_recovered_counts_as_longer_than_its_fault() -> None:
    """Right-censoring: 5 of 72 trials never recovered in a 1 s fault. Left out, they would leave a p95 of
    about 64 ms; counted as "more than 1 s" the p95 is a censored one, and p50 moves up too."""
    def trial(i: int) -> A.Trial:
        out = (A.StreamResult(3000, 2990, 10, float(i)) if i <= 67 else
               A.stream(stream(3000, drop=range(1000, 2000)), sent=3000, period=P, t_fault=101.0, t_restore=102.0,
                        t_end=103.0))
        return A.Trial(i, out, A.StreamResult(3000, 3000, 0, 0.0), None)
    m = A.aggregate([trial(i) for i in range(1, 73)])["outbound"]["outage_ms"]
    assert m["not_recovered"] == 5 and m["censored"] == ["p95", "max"]
    assert m["p50"] == 36.5 and m["p95"] == m["max"] == 999.5 and m["p95_ci"] == [64.0, None]  # 1 s less a period
    assert A.shown(m, "p95") == "> 0.99 s" and A.shown(m, "p50", ".1f") == "36.5"
    assert A.with_interval(m, "p95") == "> 0.99 s [≥ 64.0]" and A.with_interval(m, "p50") == "36.5 [28.0, 45.0]"
    left_out = A.summary([float(i) for i in range(1, 68)])
    assert left_out is not None and left_out["p95"] == 63.7 and left_out["p50"] == 34.0  # what it read before
    # None recovered: every statistic is a bound, not a missing cell.
    gone = A.summary([None] * 8, ["not recovered"] * 8, above=[1200.0, 1000.0] * 4)
    assert gone is not None and gone["p50"] == 1000.0 and gone["p50_ci"] == [1000.0, None]
    assert gone["censored"] == ["p50", "p95", "max", "p50_ci_lower", "p95_ci_lower"]
    assert A.with_interval(gone, "p50") == "> 1 s [≥ > 1 s]"
    # A trial with no value and no bound (nothing valid measured) is left out, as before.
    assert A.summary([5.0, None], above=[None, None]) == {"p50": 5.0, "p95": 5.0, "max": 5.0, "p50_ci": [None, None],
                                                          "p95_ci": [None, None], "not_recovered": 1}
    assert A.percentile([1.0, float("inf")], 50) == float("inf") and A.percentile([1.0, float("inf")], 0) == 1.0


def test_every_trial_says_the_rtt_it_ran_at() -> None:
    """The probes' median one-way transit before the fault, each way, added up: 25.5 ms out, 25.3 back."""
    out = A.stream(stream(3000, delay=0.0255, drop=range(1000, 1009)), sent=3000, period=P, t_fault=101.0,
                   t_restore=102.0, t_end=103.0)
    back = A.stream(stream(3000, delay=0.0253), sent=3000, period=P, t_fault=101.0, t_restore=102.0, t_end=103.0)
    assert out.transit_ms == 25.5 and back.transit_ms == 25.3
    trial = A.Trial(1, out, back, None)
    assert trial.rtt_ms == pytest.approx(50.8) and trial.row()["rtt_ms"] == "50.800"
    m = A.aggregate([trial, A.Trial(2, out, back, None)])
    assert m["rtt_ms"]["p50"] == pytest.approx(50.8)
    assert A.Trial(3, A.StreamResult(0, 0, 0, None), back, None).rtt_ms is None  # no probe before the fault
