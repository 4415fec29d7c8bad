"""Issue 13, the transport trigger: a TCP flow whose segments stop being acknowledged moves its destination
to the site's next exit, with no heartbeat and no link signal."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from multi6lab.lab.lifecycle import Lab
from multi6lab.topologies import loader
from multi6lab.traffic.probe import RECORD_SIZE
from tests.integration.helpers import PROBE, events, topology, udp_exchange, wait_until

pytestmark = pytest.mark.integration
R = "3fff:ff:100::2"
BLACKHOLE = ("nft add table ip6 silent && nft add chain ip6 silent blackhole "
             "'{ type filter hook forward priority -10; }' && nft add rule ip6 silent blackhole drop && echo installed")


def received(lab: Lab) -> int:
    """Bytes R's end of the session has received (0 before it is established)."""
    info = lab.cmd("r", "ss -tniH state established '( sport = :5002 )'")
    found = re.search(r"bytes_received:(\d+)", info)
    return int(found.group(1)) if found else 0


def test_a_stalled_tcp_flow_moves_its_destination_to_the_other_exit(tmp_path: Path) -> None:
    topo = tmp_path / "figure1-transport.yaml"
    topo.write_text(topology("figure1").read_text().replace("[link, heartbeat]", "[transport]"))
    with Lab(loader.load(topo), tmp_path) as lab:
        sp = lab.plan.sites[0]
        loc_a, loc_b = (str(sp.hosts[0].locators[x]) for x in ("exa", "exb"))
        server = lab.popen("r", [*PROBE, "tcp-server", "--port", "5002", "--duration", "30",
                                 "--out", str(tmp_path / "served.csv")])
        lab.wait_bound("r", 5002, "tcp")
        client = lab.popen("h1", [*PROBE, "tcp-client", "--dst", R, "--port", "5002", "--interval", "0.01",
                                  "--duration", "20", "--out", str(tmp_path / "client.csv")])
        try:
            wait_until(lambda: received(lab) >= 20 * RECORD_SIZE, 10, "the TCP session to carry 20 records")
            assert not events(lab, "dest_dead")  # a flowing session is no evidence of anything
            t0 = time.monotonic()
            assert "installed" in lab.cmd("ispa", BLACKHOLE)  # ISP A drops everything, silently
            try:
                wait_until(lambda: events(lab, "dest_dead", t0, exit="exa", dst=R, cause="transport"), 10,
                           "the transport trigger")
                got = udp_exchange(lab, "h1", "r", R, count=20)
                assert len(got) == 20 and {g["source"] for g in got} == {loc_b}
            finally:
                lab.cmd("ispa", "nft delete table ip6 silent")
            # The hold ends (10 s, no further stall): R is reached through ISP A again.
            wait_until(lambda: events(lab, "dest_alive", t0, exit="exa", dst=R), 15, "the hold to end")
            got = udp_exchange(lab, "h1", "r", R, count=20)
            assert len(got) == 20 and {g["source"] for g in got} == {loc_a}
            assert not events(lab, "path_dead")  # only the transport trigger was at work
        finally:
            for p in (client, server):
                p.terminate()
                p.wait(10)
