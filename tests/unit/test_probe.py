"""The UDP probe over loopback (no root, no emulator): kernel receive times on the shared monotonic clock."""

from __future__ import annotations

import csv
import socket
import threading
from pathlib import Path

from multi6lab.traffic import probe


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


def test_the_receiver_logs_the_kernels_receive_time_between_send_and_read(tmp_path: Path) -> None:
    port = free_udp_port()
    out = tmp_path / "recv.csv"
    receiver = threading.Thread(target=probe.recv, args=(port, 1.5, out))
    receiver.start()
    probe.send("::1", port, 1000.0, 0.3, tmp_path / "send.csv", None)
    receiver.join(5)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) >= 290  # loopback loses nothing worth counting
    for r in rows:
        # The kernel stamped it after it was sent and no later than the probe read it.
        assert float(r["t_sent"]) <= float(r["t_recv"]) <= float(r["t_user"])
    assert (tmp_path / "send.csv").read_text() == "seq,t_sent,error\n"  # no send refused


def test_the_clock_offset_is_read_where_the_two_clocks_are_closest() -> None:
    import time

    offset = probe.realtime_offset()
    assert abs(time.clock_gettime(time.CLOCK_REALTIME) - time.monotonic() - offset) < 0.001
