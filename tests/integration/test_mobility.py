"""Issue 13, mobility (RFC 4177 5.2): a host's sessions keep its home address while its care-of address moves
to another exit; without a home agent a correspondent's binding lapses after its lifetime and cannot be
renewed while the home exit is down."""

from __future__ import annotations

import contextlib
import csv
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from multi6lab.lab import mobility
from multi6lab.lab.lifecycle import Lab
from multi6lab.scenarios.faults import reinstall_routes
from multi6lab.topologies import loader
from tests.integration.helpers import events, tcp_session, topology, wait_until

pytestmark = pytest.mark.integration
R = "3fff:ff:100::2"


def mobility_lab(tmp_path: Path, name: str, settings: str) -> Lab:
    """A lab of ``name`` whose site runs mobility with ``settings`` (a YAML flow mapping)."""
    text = topology(name).read_text().replace("approach: nptv6", "approach: mobility")
    text = text.replace("    hosts: [h1]\n", f"    hosts: [h1]\n    mobility: {settings}\n", 1)
    text = text.replace("    mobility: {route_optimisation: false}\n", "")  # figure1-home-agent's own
    path = tmp_path / f"{name}-mobility.yaml"
    path.write_text(text)
    return Lab(loader.load(path), tmp_path)


@contextlib.contextmanager
def exit_a_down(lab: Lab) -> Iterator[float]:
    """ISP A's side of exit A's link down for the block (its routes put back after); yields when it went down."""
    t0 = time.monotonic()
    lab.cmd("ispa", "ip link set ispa-eth1 down")
    try:
        yield t0
    finally:
        lab.cmd("ispa", "ip link set ispa-eth1 up; " + reinstall_routes(lab.plan, "ispa"))


def arrivals(log: Path) -> list[float]:
    """When the server received each record of a session (its log's receive times)."""
    with log.open() as f:
        return [float(row["t_recv"]) for row in csv.DictReader(f)]


def test_a_session_keeps_its_home_address_through_the_home_agent_when_its_exit_fails(tmp_path: Path) -> None:
    with mobility_lab(tmp_path, "figure1-home-agent", "{route_optimisation: false}") as lab:
        (host,) = mobility.mobile_hosts(lab.plan)
        session = tcp_session(lab, "h1", "r", R, 5710, 4.0)
        session.wait_records(50)
        peers = lab.cmd("r", "ss -Hnt state established '( sport = :5710 )'")
        assert str(host.home) in peers  # the correspondent sees the home address, not a care-of address
        with exit_a_down(lab) as t0:
            b = str(host.addresses[1])
            wait_until(lambda: events(lab, "mobility_registered", t0, node="h1", care_of=b), 5,
                       "h1's home agent to acknowledge its care-of address through exit B")
            session.wait()
        assert session.survived(), session.client_log.read_text()
        lab.wait_steady()  # back on exit A's address, registered again
        assert events(lab, "mobility_registered", t0, node="h1", care_of=str(host.preferred))


def test_route_optimisation_binds_the_correspondent_and_follows_a_move(tmp_path: Path) -> None:
    with mobility_lab(tmp_path, "figure1-home-agent", "{route_optimisation: true}") as lab:
        (host,) = mobility.mobile_hosts(lab.plan)
        route = lab.cmd("r", f"ip -6 route show table 200 {host.home}")
        assert "dev m6tun" in route, route  # r tunnels to h1's home address itself, not via the home agent ...
        assert events(lab, "mobility_bound", 0, node="r", care_of=str(host.preferred))  # ... to its care-of
        session = tcp_session(lab, "h1", "r", R, 5711, 4.0)
        session.wait_records(50)
        with exit_a_down(lab) as t0:
            b = str(host.addresses[1])
            wait_until(lambda: events(lab, "mobility_bound", t0, node="r", care_of=b), 5,
                       "r to bind h1's home address to its address through exit B")
            session.wait()
        assert session.survived(), session.client_log.read_text()


def test_without_a_home_agent_the_binding_lapses_after_its_lifetime_and_the_session_stops(tmp_path: Path) -> None:
    lifetime = 8
    with mobility_lab(tmp_path, "figure1", f"{{route_optimisation: true, binding_lifetime_s: {lifetime}}}") as lab:
        (host,) = mobility.mobile_hosts(lab.plan)
        assert host.home == host.preferred  # section 5.2's case: the home address is exit A's
        session = tcp_session(lab, "h1", "r", R, 5712, 16.0)
        session.wait_records(50)
        with exit_a_down(lab) as t0:
            wait_until(lambda: events(lab, "mobility_bound", t0, node="r", care_of=str(host.addresses[1])), 5,
                       "r to bind h1's home address to its address through exit B")
            bound = events(lab, "mobility_bound", t0, node="r")[0]["t"]
            wait_until(lambda: events(lab, "mobility_expired", t0, node="r"), lifetime + 3,
                       f"r's binding to lapse after {lifetime} s")
            lapsed = events(lab, "mobility_expired", t0, node="r")[0]["t"]
            time.sleep(max(0.0, lapsed + 2 - time.monotonic()))  # a window to observe, not a state to await
        session.wait(30)
    assert lapsed - bound == pytest.approx(lifetime, abs=0.5)  # never renewed: the home test needs exit A
    times = arrivals(session.server_log)
    assert any(bound + 0.5 < t < lapsed - 0.5 for t in times)  # the session ran on through exit B ...
    assert not any(lapsed + 0.5 < t < lapsed + 2 for t in times)  # ... until the binding lapsed
