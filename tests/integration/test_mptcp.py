"""Issue 5, mptcp: a kernel MPTCP session from the site host survives the failure of one path."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from multi6lab.lab.lifecycle import Lab
from multi6lab.scenarios.faults import reinstall_routes
from tests.integration.helpers import events, lab_with_approach, tcp_session, wait_until

pytestmark = pytest.mark.integration
R = "3fff:ff:100::2"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with lab_with_approach("figure1", "mptcp", tmp_path) as lab:
        yield lab


def test_subflows_through_both_isps(lab: Lab) -> None:
    session = tcp_session(lab, "h1", "r", R, 5700, 2.0, mptcp=True)
    wait_until(lambda: lab.cmd("r", "ss -Hnt state established '( sport = :5700 )'").count("5700") >= 2, 5,
               "a second subflow")
    peers = lab.cmd("r", "ss -Hnt state established '( sport = :5700 )'")
    assert "3fff:a:5:" in peers and "3fff:b:5:" in peers  # one subflow from each ISP's prefix
    session.wait()


def test_an_mptcp_session_survives_a_path_failure(lab: Lab) -> None:
    t0 = time.monotonic()
    session = tcp_session(lab, "h1", "r", R, 5701, 4.0, mptcp=True)
    session.wait_records(50)  # mid-session: the point is a failure while records flow
    lab.cmd("ispa", "ip link set ispa-eth1 down")
    try:
        wait_until(lambda: events(lab, "path_dead", t0, exit="exa"), 5, "exa to be declared dead")
        session.wait()
    finally:
        lab.cmd("ispa", "ip link set ispa-eth1 up; " + reinstall_routes(lab.plan, "ispa"))
    assert session.survived(), session.client_log.read_text()
