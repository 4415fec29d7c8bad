"""The mapping service as Knot DNS runs it: what each site's key may change, and lookups through the emulated
network by two site controllers."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest

from multi6lab.controller.mapclient import MappingClient
from multi6lab.lab.lifecycle import Lab, wait_for
from multi6lab.topologies import knot, loader
from multi6lab.topologies.plan import Plan, build
from multi6lab.vocabulary import Approach, Event
from tests.integration.helpers import topology

pytestmark = pytest.mark.integration


def idloc_plan() -> Plan:
    topo = loader.load(topology("two-sites"))
    sites = tuple(dataclasses.replace(s, approach=Approach.ID_LOC) for s in topo.sites)
    return build(dataclasses.replace(topo, sites=sites))


@contextlib.contextmanager
def knotd_on_loopback(plan: Plan, state: Path, keys: dict[str, str]) -> Iterator[int]:
    """Knot with the lab's zone and configuration, listening on [::1] at a free port instead."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    (state / "db").mkdir(parents=True)
    (state / "map.zone").write_text(knot.zone(plan))
    conf = knot.config(plan, state, keys).replace(f"{knot.server_address(plan)}@53", f"::1@{port}")
    (state / "knot.conf").write_text(conf)
    subprocess.run([str(knot.KNOTD), "-d", "-c", str(state / "knot.conf")], check=True, timeout=10)
    pidfile = state / "knot.pid"
    wait_for("Knot to start", lambda: pidfile.exists() and pidfile.read_text().strip() != "", 10)
    pid = int(pidfile.read_text())
    try:
        wait_for("Knot to answer", lambda: _answers(port), 10)
        yield port
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_for("Knot to stop", lambda: not Path(f"/proc/{pid}").exists(), 10)


def _answers(port: int) -> bool:
    try:
        dns.query.udp(dns.message.make_query(knot.ZONE, "SOA"), "::1", port=port, timeout=0.2)
        return True
    except (dns.exception.Timeout, OSError):
        return False


def exchange(client: MappingClient, port: int, until: float = 3.0) -> list[dict]:
    """Carry ``client``'s messages to Knot and back over loopback until it has nothing in flight."""
    events: list[dict] = []
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.settimeout(0.02)
        end = time.monotonic() + until
        while time.monotonic() < end and (client.pending or client.lookups or not events):
            out, ev = client.poll(time.monotonic())
            events += ev
            for o in out:
                s.sendto(o.wire, ("::1", port))
            with contextlib.suppress(TimeoutError):
                events += client.received(s.recv(4096), time.monotonic())
    return events


def update(keys: dict[str, str], site: str | None, port: int, owner: str, rdtype: str, value: str) -> str:
    """Send one update, signed with ``site``'s key (None: unsigned); Knot's answer, as text."""
    kw = {}
    if site is not None:
        kw = dict(keyring=dns.tsigkeyring.from_text({knot.site_owner(site): (knot.KEY_ALGORITHM, keys[site])}),
                  keyname=knot.site_owner(site), keyalgorithm=knot.KEY_ALGORITHM)
    u = dns.update.UpdateMessage(knot.ZONE, **kw)
    u.replace(owner, 30, rdtype, value)
    try:
        return dns.rcode.to_text(dns.query.udp(u, "::1", port=port, timeout=2).rcode())
    except dns.tsig.PeerError as exc:  # Knot refuses a signed update it does not allow with a TSIG error
        return type(exc).__name__


def test_knot_accepts_a_site_s_own_locators_and_nothing_else(tmp_path: Path) -> None:
    if not knot.KNOTD.exists():
        pytest.skip("Knot DNS is not installed; run 'sudo make setup'")
    plan = idloc_plan()
    keys = knot.new_secrets(knot.mapped_sites(plan))
    with knotd_on_loopback(plan, tmp_path / "knot", keys) as port:
        s1 = MappingClient("s1", keys["s1"], 30)
        s1.register([(e.name, e.delegation) for e in plan.sites[0].exits], time.monotonic())
        assert [e["event"] for e in exchange(s1, port)] == [Event.MAPPING_REGISTERED]
        refused = {
            "another site's locators": update(keys, "s1", port, knot.site_owner("s2"), "LP",
                                              f"10 {knot.exit_owner('s2', 'x')}"),
            "the registry's identity": update(keys, "s1", port, knot.identity_owner("s1"), "APL", "2:fd00:9::/48"),
            "a type it may not write": update(keys, "s1", port, knot.site_owner("s1"), "AAAA", "3fff:a:1::1"),
            "no signature": update(keys, None, port, knot.site_owner("s1"), "LP", f"10 {knot.exit_owner('s1', 'x')}"),
        }
        assert all(answer != "NOERROR" for answer in refused.values()), refused
        s2 = MappingClient("s2", keys["s2"], 30)
        s2.want(plan.sites[0].hosts[0].addresses["identity"], time.monotonic())
        (ev,) = [e for e in exchange(s2, port) if e["event"] == Event.MAPPING_RESOLVED]
        assert ev["peer"] == "s1" and ev["locators"] == [[e.name, str(e.delegation)] for e in plan.sites[0].exits]


def test_two_controllers_register_and_find_each_other_through_the_emulated_network(tmp_path: Path) -> None:
    with Lab(idloc_plan().topology, tmp_path) as lab:
        events = lab.events()
        registered = {e["site"] for e in events if e["event"] == Event.MAPPING_REGISTERED}
        resolved = {(e["site"], e["peer"]) for e in events if e["event"] == Event.MAPPING_RESOLVED}
        assert registered == {"s1", "s2"} and resolved == {("s1", "s2"), ("s2", "s1")}
        # Knot saw the queries arrive from the sites' edge addresses, across their ISPs and the core.
        log = (lab.record.state_dir / "knot" / "knot.log").read_text() if lab.record else ""  # type: ignore[union-attr]
        assert "DDNS, finished" in log
        # Traffic between the sites flows on what the lookups returned.
        h2 = str(lab.plan.sites[1].hosts[0].addresses["identity"])
        assert " 0% packet loss" in lab.cmd("h1", f"ping -6 -c 3 -i 0.2 -W 1 {h2}")
