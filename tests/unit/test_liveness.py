"""Path liveness from link and heartbeat triggers, on a fake clock."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from multi6lab.controller.liveness import OUTSTANDING, Liveness
from multi6lab.topologies import loader
from multi6lab.topologies.plan import Plan, build

ROOT = Path(__file__).resolve().parents[2]


def fig1(triggers: str = "[link, heartbeat]") -> Plan:
    text = (ROOT / "topologies" / "figure1.yaml").read_text().replace("[link, heartbeat]", triggers)
    return build(loader.loads(text))


def names(events: list[dict[str, object]]) -> list[object]:
    return [e["event"] for e in events]


TOKENS = (i.to_bytes(16, "big") for i in itertools.count(1))


def answered(lv: Liveness, exit_name: str, now: float) -> list[dict[str, object]]:
    """An echo goes out through ``exit_name`` and its reply, carrying its token, comes back at ``now``."""
    token = next(TOKENS)
    lv.echo_sent(exit_name, token, now)
    return lv.echo_reply(exit_name, token, now)


def test_link_down_and_up_once_each_despite_repeats() -> None:
    lv = Liveness(fig1(), now=0.0)
    assert names(lv.port_status(2, 2, up=False, now=1.0)) == ["port_down", "path_dead"]
    assert lv.port_status(2, 2, up=False, now=1.001) == []  # OVS repeats port status
    assert lv.usable() == {"exa": False, "exb": True}
    assert names(lv.port_status(2, 2, up=True, now=2.0)) == ["port_up", "path_alive"]
    assert lv.port_status(2, 1, up=False, now=2.0) == []  # the inside port is not a path


def test_port_status_ignored_without_link_trigger() -> None:
    lv = Liveness(fig1("[heartbeat]"), now=0.0)
    assert names(lv.port_status(2, 2, up=False, now=1.0)) == ["port_down"]
    assert lv.usable()["exa"] is True


def test_heartbeat_not_judged_before_first_reply() -> None:
    lv = Liveness(fig1(), now=0.0)
    assert lv.tick(now=100.0) == []
    assert names(answered(lv, "exa", now=100.0)) == ["heartbeat_up"]


def sent(lv: Liveness, exit_name: str, n: int = 3) -> None:
    for _ in range(n):
        lv.echo_sent(exit_name, next(TOKENS), 0.0)


def test_heartbeat_detection_time_is_interval_times_multiplier() -> None:
    lv = Liveness(fig1(), now=0.0)
    answered(lv, "exa", now=1.000)
    sent(lv, "exa")
    assert lv.tick(now=1.0299) == []  # within 3 x 10 ms: not yet
    ev = lv.tick(now=1.0301)
    assert names(ev) == ["heartbeat_timeout", "path_dead"]
    assert ev[0]["silent_ms"] == 30.1 and ev[0]["unanswered"] == 3 and ev[1]["cause"] == "heartbeat"
    assert lv.tick(now=1.5) == []  # reported once


def test_a_silence_while_the_controller_sent_no_echoes_is_not_the_path_s_fault() -> None:
    lv = Liveness(fig1(), now=0.0)
    answered(lv, "exa", now=1.000)
    sent(lv, "exa", 2)  # the controller stalled: only two echoes went out in 50 ms
    assert lv.tick(now=1.050) == [] and lv.next_deadline() is None
    lv.echo_sent("exa", next(TOKENS), 1.03)  # the third goes out unanswered: the silence counts from the last reply
    assert lv.next_deadline() == pytest.approx(1.030)
    assert names(lv.tick(now=1.051)) == ["heartbeat_timeout", "path_dead"]


def test_a_reply_restarts_the_count_of_unanswered_echoes() -> None:
    lv = Liveness(fig1(), now=0.0)
    answered(lv, "exa", now=1.000)
    sent(lv, "exa", 2)
    answered(lv, "exa", now=1.020)
    sent(lv, "exa", 2)
    assert lv.tick(now=1.051) == [] and lv.usable()["exa"]


def test_heartbeat_recovers_after_multiplier_consecutive_replies() -> None:
    lv = Liveness(fig1(), now=0.0)
    answered(lv, "exa", now=1.0)
    sent(lv, "exa")
    assert names(lv.tick(now=1.05)) == ["heartbeat_timeout", "path_dead"]
    assert answered(lv, "exa", now=2.00) == []
    assert answered(lv, "exa", now=2.01) == []
    assert names(answered(lv, "exa", now=2.02)) == ["path_alive"]
    assert lv.usable()["exa"]


def test_unknown_exit_and_heartbeat_disabled_are_ignored() -> None:
    lv = Liveness(fig1("[link]"), now=0.0)
    assert answered(lv, "exa", now=1.0) == []
    assert answered(lv, "nope", now=1.0) == []
    assert lv.heartbeat_paths() == []


def test_next_deadline_is_the_earliest_live_path() -> None:
    lv = Liveness(fig1(), now=0.0)
    assert lv.next_deadline() is None  # nothing armed yet
    answered(lv, "exa", now=1.000)
    answered(lv, "exb", now=1.005)
    assert lv.next_deadline() is None  # no echo unanswered yet
    sent(lv, "exa")
    sent(lv, "exb")
    assert lv.next_deadline() == pytest.approx(1.030)
    lv.tick(now=1.031)
    assert lv.next_deadline() == pytest.approx(1.035)  # exa is dead now; exb is next


def test_icmp_trigger_holds_a_destination_away_from_an_exit() -> None:
    lv = Liveness(fig1("[icmp]"), now=0.0)
    ev = lv.icmp_unreachable("exa", "3fff:ff:100::2", now=1.0)
    assert names(ev) == ["dest_dead"] and ev[0]["cause"] == "icmp"
    assert lv.icmp_unreachable("exa", "3fff:ff:100::2", now=1.1) == []  # rate-limited repeats say nothing new
    assert lv.avoided(1.2) == {"exa": {"3fff:ff:100::2"}}
    assert lv.next_deadline() == pytest.approx(11.1)  # the hold, renewed by the repeat
    assert names(lv.tick(11.2)) == ["dest_alive"] and lv.avoided(11.2) == {}
    assert Liveness(fig1("[link]"), now=0.0).icmp_unreachable("exa", "3fff:ff:100::2", now=1.0) == []


def test_an_id_loc_site_s_heartbeat_is_its_edge_s_keepalives_not_beacon_echoes() -> None:
    text = (ROOT / "topologies" / "two-sites.yaml").read_text().replace("approach: nptv6", "approach: id-loc")
    live = Liveness(build(loader.loads(text)), 0.0)
    assert live.heartbeat_paths() == [] and live.next_deadline() is None
    nptv6 = Liveness(build(loader.load(ROOT / "topologies" / "two-sites.yaml")), 0.0)
    assert {p.exit for p in nptv6.heartbeat_paths()} == {"s1ea", "s1eb", "s2ec", "s2ed"}


def test_a_reply_counts_only_once_and_only_for_an_echo_of_its_own_exit() -> None:
    lv = Liveness(fig1(), now=0.0)
    token = next(TOKENS)
    lv.echo_sent("exa", token, 1.0)
    assert lv.echo_reply("exb", token, 1.001) == [] and lv.forged == 1  # exa's token arriving at exb
    assert names(lv.echo_reply("exa", token, 1.002)) == ["heartbeat_up"]
    assert lv.echo_reply("exa", token, 1.003) == [] and lv.forged == 2  # a replay


def test_forged_replies_do_not_keep_a_silent_path_alive() -> None:
    """An off-path host answers every echo it cannot see: the path still dies at its detection time."""
    lv = Liveness(fig1(), now=0.0)
    answered(lv, "exa", now=1.000)
    for i in range(1, 4):
        lv.echo_sent("exa", next(TOKENS), 1.0 + i / 100)
        assert lv.echo_reply("exa", bytes(16), 1.0 + i / 100 + 0.001) == []  # guessed tokens
        assert lv.echo_reply("exa", b"", 1.0 + i / 100 + 0.002) == []  # no data at all
    assert names(lv.tick(now=1.031)) == ["heartbeat_timeout", "path_dead"] and lv.forged == 6


def test_only_the_newest_echoes_stay_outstanding() -> None:
    lv = Liveness(fig1(), now=0.0)
    tokens = [next(TOKENS) for _ in range(OUTSTANDING + 1)]
    for i, t in enumerate(tokens):
        lv.echo_sent("exa", t, i / 100)
    assert lv.echo_reply("exa", tokens[0], 1.0) == [] and lv.forged == 1  # forgotten: too old to say anything
    assert names(lv.echo_reply("exa", tokens[1], 1.0)) == ["heartbeat_up"]
