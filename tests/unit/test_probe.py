"""The UDP probe over loopback (no root, no emulator): kernel receive times on the shared monotonic clock."""

from __future__ import annotations

import csv
import platform
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from multi6lab.traffic import probe


@pytest.fixture(autouse=True)
def _fresh_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe run in-process here marks itself finished (its stop is spent): the next test's probe starts
    with a stop to spend again."""
    monkeypatch.setattr(probe, "_finished", False)


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


def test_happy_eyeballs_tries_the_next_address_after_the_attempt_delay() -> None:
    import time

    # A listener whose accept queue is full drops SYNs silently, as a dead path does; the next address works.
    full = socket.socket(socket.AF_INET6)
    full.bind(("::1", 0))
    port = int(full.getsockname()[1])
    full.listen(0)
    fillers = []
    for _ in range(3):
        f = socket.socket(socket.AF_INET6)
        f.setblocking(False)
        f.connect_ex(("::1", port))
        fillers.append(f)
    v4 = socket.socket(socket.AF_INET)
    v4.bind(("127.0.0.1", port))
    v4.listen(8)
    try:
        t = time.monotonic()
        assert probe.happy_eyeballs(["::1", "::ffff:127.0.0.1"], port, 0.25, 3.0, False) == (True, "::ffff:127.0.0.1")
        assert 0.24 <= time.monotonic() - t < 1.0  # RFC 8305's 250 ms, not a timeout
        t = time.monotonic()
        assert probe.happy_eyeballs(["::1"], port, 0.25, 0.3, False) == (False, "")  # gives up on time
        assert 0.29 <= time.monotonic() - t < 1.0
    finally:
        for s in (*fillers, full, v4):
            s.close()


def test_a_refused_attempt_starts_the_next_at_once_and_all_refused_fails_at_once() -> None:
    import time

    closed = socket.socket(socket.AF_INET6)
    closed.bind(("::1", 0))
    port = int(closed.getsockname()[1])
    closed.close()
    t = time.monotonic()
    assert probe.happy_eyeballs(["::1", "::ffff:127.0.0.1"], port, 0.25, 3.0, False) == (False, "")
    assert time.monotonic() - t < 0.2  # no attempt delay after a refusal (RFC 8305 section 5)


def test_the_capture_reader_reads_the_probes_own_format() -> None:
    from multi6lab.results.capture import PROBE_HEADER

    assert PROBE_HEADER.format == probe.HEADER.format  # written twice (the probe stays light); kept equal here


def test_a_server_told_its_session_count_stops_when_they_end_with_every_record(tmp_path: Path) -> None:
    import time

    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        port = int(s.getsockname()[1])
    out = tmp_path / "server.csv"
    server = threading.Thread(target=probe.tcp_server, args=(port, 30.0, out, False, 2))
    server.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # wait until it listens
        try:
            socket.create_connection(("::1", port), 0.2).close()
            break
        except OSError:
            continue
    client_log = tmp_path / "client.csv"
    # The probe above was a session too (it ended at once): the count covers it and the real client.
    probe.tcp_client("::1", port, 0.01, 0.2, client_log, None)
    server.join(5)
    assert not server.is_alive(), "the server waited out its 30 s instead of stopping after the sessions ended"
    rows = list(csv.DictReader(out.open()))
    last = int(client_log.read_text().splitlines()[-1].split(",")[2])
    assert sorted(int(r["seq"]) for r in rows) == list(range(last + 1))


def test_a_stop_that_arrives_while_a_probe_writes_its_log_does_not_cut_it_short(tmp_path: Path) -> None:
    import subprocess
    import sys

    # The runner's stop can meet a probe whose own time just ran out: the probe is writing its log then.
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from multi6lab.traffic import probe\n"
        "signal.signal(signal.SIGTERM, probe._stop)\n"
        "probe._finishing()\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "Path(sys.argv[1]).write_text('written')\n")
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path / "log")], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "log").read_text() == "written"


CLOCK_NANOSLEEP = 230  # x86-64's syscall number: time.sleep's, which waits for --start-at


@pytest.mark.skipif(platform.machine() != "x86_64", reason="reads the x86-64 syscall number of a sleeping probe")
@pytest.mark.parametrize("cmd", [
    ["send", "--dst", "::1", "--port", "9", "--duration", "5"],
    ["tcp-client", "--dst", "::1", "--port", "9", "--duration", "5"],
    ["clients", "--targets", "::1", "--port", "9", "--duration", "5"],
])
def test_a_probe_stopped_before_it_starts_still_ends_cleanly_with_its_log(tmp_path: Path, cmd: list[str]) -> None:
    """The runner stops every probe of a trial that fails, some still waiting for their common start time;
    two SIGTERMs in a row (a stop, then a bound running out) must not cut the log short either."""
    import subprocess
    import sys
    import time

    out = tmp_path / "log.csv"
    p = subprocess.Popen([sys.executable, "-m", "multi6lab.traffic.probe", *cmd, "--out", str(out),
                          "--start-at", f"{time.monotonic() + 30:.6f}"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{p.pid}/syscall").read_text().split()[:1] != [str(CLOCK_NANOSLEEP)]:  # in its wait
        assert time.monotonic() < deadline and p.poll() is None, "the probe never started waiting"
        time.sleep(0.01)
    p.terminate()
    p.terminate()
    _, err = p.communicate(timeout=10)
    assert p.returncode == 0, err.decode()
    assert out.read_text().splitlines()[0] in ("seq,t_sent,error", "event,t,detail", "t_start,t_end,ok,address")


@pytest.mark.skipif(platform.machine() != "x86_64", reason="reads the x86-64 syscall number of a sleeping probe")
def test_a_second_stop_that_lands_on_a_session_thread_does_not_cut_the_server_s_log_short(tmp_path: Path) -> None:
    """A signal mask is per thread: once the main thread holds SIGTERM off, the kernel hands the next one to a
    session thread, and Python still runs the handler in the main thread, inside the ``finally`` that writes
    the log (two comparison cells of 15 lost their run to this: 'new-server.csv failed (exit 1: Stop)')."""
    import subprocess
    import sys
    import time

    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        port = int(s.getsockname()[1])
    out = tmp_path / "server.csv"
    p = subprocess.Popen([sys.executable, "-m", "multi6lab.traffic.probe", "tcp-server", "--port", str(port),
                          "--duration", "30", "--out", str(out)], stderr=subprocess.PIPE)
    tasks = Path(f"/proc/{p.pid}/task")

    def until(what: str, ok: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 10
        while not ok():
            assert time.monotonic() < deadline and p.poll() is None, what
            time.sleep(0.005)

    held: list[socket.socket] = []

    def connected() -> bool:
        try:
            held.append(socket.create_connection(("::1", port), 0.2))
            return True
        except OSError:
            return False

    until("the server never listened", connected)
    with held[0]:  # held open and silent: its session thread lives on
        until("the session thread never started", lambda: len(list(tasks.iterdir())) >= 2)
        p.terminate()
        until("the server never reached its last pause before writing",
              lambda: Path(f"/proc/{p.pid}/syscall").read_text().split()[:1] == [str(CLOCK_NANOSLEEP)])
        p.terminate()
        _, err = p.communicate(timeout=10)
    assert p.returncode == 0, err.decode()
    assert out.read_text().splitlines()[0] == "conn,seq,t_sent,t_recv,source"
