"""Issue 3, source-routing (RFC 8678 / RFC 8475) on the three-ISP site: deprecation and ICMPv6 1/5."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from multi6lab.lab.lifecycle import Lab
from multi6lab.topologies import loader
from tests.integration.helpers import PY, events, nft_counter, topology, udp_exchange, wait_until

pytestmark = pytest.mark.integration
R = "3fff:ff:100::2"

# One UDP datagram from a chosen source on a connected socket: the kernel reports an ICMPv6 error on the next
# recv (type 1 code 5 -> EACCES). A fresh unbound socket shows which source the kernel now selects (RFC 6724).
PROBE = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
if sys.argv[1] != "auto":
    s.bind((sys.argv[1], 0))
s.connect((sys.argv[2], 9))
print("source", s.getsockname()[0])
s.send(b"x" * 32)
s.settimeout(2)
try:
    s.recv(100)
    print("reply")
except PermissionError:
    print("EACCES")
except (TimeoutError, ConnectionRefusedError) as exc:
    print(type(exc).__name__)
"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(loader.load(topology("three-isps")), tmp_path) as lab:
        (lab.workdir / "udp1.py").write_text(PROBE)
        yield lab


def addr(lab: Lab, host: str, exit_name: str) -> str:
    h = next(h for h in lab.plan.sites[0].hosts if h.name == host)
    return str(h.addresses[exit_name])


def deprecated(lab: Lab, host: str, address: str) -> bool:
    line = next((x for x in lab.cmd(host, f"ip -6 addr show dev {host}-eth0").splitlines() if address in x), "")
    return "deprecated" in line


def test_each_source_leaves_through_its_own_isp(lab: Lab) -> None:
    before = {i: nft_counter(lab, i, f"bcp38_{i}_eth1") for i in ("ispa", "ispb", "ispc")}
    for e in ("exa", "exb", "exc"):
        got = udp_exchange(lab, "h2", "r", R, count=10, src=addr(lab, "h2", e))
        assert len(got) == 10 and {g["source"] for g in got} == {addr(lab, "h2", e)}
    assert {i: nft_counter(lab, i, f"bcp38_{i}_eth1") for i in before} == before  # no ISP had to drop anything


def test_dead_path_deprecates_its_prefix_and_answers_stale_sources_with_icmp_1_5(lab: Lab) -> None:
    a = addr(lab, "h1", "exa")
    t0 = time.monotonic()
    lab.cmd("ispa", "ip link set ispa-eth1 down")
    try:
        wait_until(lambda: events(lab, "path_dead", t0, exit="exa"), 5, "exa to be declared dead")
        wait_until(lambda: deprecated(lab, "h1", a), 5, "h1's ISP A address to be deprecated by RA")
        out = lab.cmd("h1", f"{PY} {lab.workdir / 'udp1.py'} {a} {R}")
        assert "EACCES" in out, out  # ICMPv6 destination unreachable, code 5 (source address failed policy)
        assert events(lab, "icmp_source_policy", t0, src=a)
        fresh = lab.cmd("h1", f"{PY} {lab.workdir / 'udp1.py'} auto {R}")
        chosen = fresh.split("source")[1].split()[0]
        assert chosen in (addr(lab, "h1", "exb"), addr(lab, "h1", "exc")), fresh  # new sessions avoid A
        got = udp_exchange(lab, "h1", "r", R, count=10, src=chosen)
        assert len(got) == 10
    finally:
        lab.cmd("ispa", "ip link set ispa-eth1 up")
    wait_until(lambda: events(lab, "path_alive", t0, exit="exa"), 10, "exa to recover")
    wait_until(lambda: not deprecated(lab, "h1", a), 5, "A's prefix to be preferred again")
    assert len(udp_exchange(lab, "h1", "r", R, count=10, src=a)) == 10
