"""Issue 5, mptcp: a kernel MPTCP session from the site host survives the failure of one path."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.integration.helpers import PY, events, lab_with_approach, wait_until
from tools.lab import Lab

pytestmark = pytest.mark.integration
R = "3fff:ff:100::2"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with lab_with_approach("figure1", "mptcp", tmp_path_factory.mktemp("mptcp")) as lab:
        yield lab


def test_subflows_through_both_isps(lab: Lab) -> None:
    out = lab.workdir / "sub"
    server = lab.popen("r", [PY, "-m", "tools.probe", "tcp-server", "--port", "5700", "--duration", "4", "--mptcp",
                             "--out", str(out.with_suffix(".server"))])
    lab.wait_bound("r", 5700, "tcp")
    client = lab.popen("h1", [PY, "-m", "tools.probe", "tcp-client", "--dst", R, "--port", "5700", "--mptcp",
                              "--interval", "0.01", "--duration", "2", "--out", str(out.with_suffix(".client"))])
    wait_until(lambda: lab.cmd("r", "ss -Hnt state established '( sport = :5700 )'").count("5700") >= 2, 5,
               "a second subflow")
    peers = lab.cmd("r", "ss -Hnt state established '( sport = :5700 )'")
    assert "3fff:a:5:" in peers and "3fff:b:5:" in peers  # one subflow from each ISP's prefix
    client.wait(10)
    server.wait(10)


def test_an_mptcp_session_survives_a_path_failure(lab: Lab) -> None:
    t0 = time.monotonic()
    out = lab.workdir / "survive"
    server = lab.popen("r", [PY, "-m", "tools.probe", "tcp-server", "--port", "5701", "--duration", "6", "--mptcp",
                             "--out", str(out.with_suffix(".server"))])
    lab.wait_bound("r", 5701, "tcp")
    client = lab.popen("h1", [PY, "-m", "tools.probe", "tcp-client", "--dst", R, "--port", "5701", "--mptcp",
                              "--interval", "0.01", "--duration", "4", "--out", str(out.with_suffix(".client"))])
    time.sleep(1.0)  # mid-session: the point is a failure while records flow
    lab.cmd("ispa", "ip link set ispa-eth1 down")
    try:
        wait_until(lambda: events(lab, "path_dead", t0, exit="exa"), 5, "exa to be declared dead")
        client.wait(15)
        server.wait(15)
    finally:
        lab.cmd("ispa", "ip link set ispa-eth1 up; ip -6 route replace 3fff:a:5::/48 via 3fff:a::2 dev ispa-eth1")
    log = out.with_suffix(".client").read_text()
    assert "done," in log, log
    last = log.split("done,")[1].split(",")[1].strip()
    assert any(line.split(",")[1] == last for line in out.with_suffix(".server").read_text().splitlines()[1:])
