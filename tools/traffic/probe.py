"""Traffic probes, run inside Mininet nodes: ``python -m multi6lab.traffic.probe SUBCOMMAND``.

Plain sockets and pre-packed payloads (scapy is far too slow for 1 kHz here). Every node shares the host's
CLOCK_MONOTONIC, so timestamps from different namespaces compare directly, and ``--start-at`` lets every
stream of a trial begin at the same instant.

* ``send``/``recv``: a UDP sequence stream; the receiver logs ``seq,t_sent,t_recv,source,t_user`` per datagram
  (``t_recv`` the kernel's receive time, ``t_user`` when the probe read it),
  the sender ``seq,t_sent,error`` for sends the kernel refused.
* ``tcp-server``/``tcp-client``: long-lived TCP sessions carrying timestamped records; the server logs
  ``conn,seq,t_sent,t_recv``, the client ``event,t,detail`` (connected, error, done).
* ``clients``: fresh clients started at random times, each connecting to the site's addresses with Happy
  Eyeballs (RFC 8305) in the order a resolver would return them (RFC 6724); logs ``t_start,t_end,ok,address``
  per client.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from types import FrameType

HEADER = struct.Struct("!Qd")  # sequence number, send time (monotonic seconds)
PAD = 64 - HEADER.size


class Stop(Exception):
    pass


_finished = False  # set by the first stop or by _finishing: from then on a SIGTERM changes nothing


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM: end the probe's loop, once. Every probe catches Stop from its start until it calls
    :func:`_finishing`; after that, or after a first stop, the handler returns. A flag and not a signal mask:
    a mask holds the signal off one thread only, the kernel hands it to a session or client thread instead,
    and Python runs the handler in the main thread all the same, in the middle of writing the log."""
    global _finished
    if not _finished:
        _finished = True
        raise Stop


def _finishing() -> None:
    """From here on a probe only writes its log: a stop that arrives now (the probe's own time ran out just as
    the runner stopped it) is ignored, instead of cutting the log short with a traceback."""
    global _finished
    _finished = True


def wait_until(t: float | None) -> None:
    if t is not None:
        delay = t - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def send(dst: str, port: int, rate: float, duration: float, out: Path, src: str | None,
         start_at: float | None = None) -> int:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    if src:
        sock.bind((src, 0))
    period = 1.0 / rate
    count = int(duration * rate)
    errors = []
    try:
        wait_until(start_at)
        t0 = time.monotonic()
        for seq in range(count):
            due = t0 + seq * period
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = time.monotonic()
            try:
                sock.sendto(HEADER.pack(seq, now) + b"\0" * PAD, (dst, port))
            except OSError as exc:
                errors.append(f"{seq},{now:.6f},{errno.errorcode.get(exc.errno or 0, exc.errno)}")
        _finishing()
    except Stop:
        pass
    finally:
        _finishing()
        out.write_text("seq,t_sent,error\n" + "\n".join(errors) + ("\n" if errors else ""))
    return 0


def flows(dst: str, port: int, count: int, packets: int, rate: float, tcp: bool) -> int:
    """``count`` flows, each its own socket (so its own source port, chosen by the kernel), numbered by flow
    so the receiver tells them apart: UDP, ``packets`` datagrams each; TCP, a connection carrying one record.
    A load-sharing site spreads them by whatever its switch hashes of their addresses and ports."""
    period = 1.0 / rate
    t0 = time.monotonic()
    with contextlib.suppress(Stop):
        for n in range(count):
            wait_until(t0 + n * period)
            try:
                if tcp:
                    with socket.create_connection((dst, port), timeout=2.0) as conn:
                        conn.sendall(RECORD.pack(n, time.monotonic()) + b"\0" * (RECORD_SIZE - RECORD.size))
                    continue
                with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
                    for _ in range(packets):
                        sock.sendto(HEADER.pack(n, time.monotonic()) + b"\0" * PAD, (dst, port))
            except OSError:  # a lost flow is the receiver's to count
                continue
        _finishing()
    return 0


def sources(dst: str, interval: float, duration: float, out: Path) -> int:
    """Every ``interval``, the source address the host's kernel selects toward ``dst`` (RFC 6724), as a new
    session would get it: a UDP socket's connect() selects one and sends nothing."""
    rows = ["t,source"]
    t0 = time.monotonic()
    with contextlib.suppress(Stop):
        for k in range(int(duration / interval)):
            wait_until(t0 + k * interval)
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
                try:
                    sock.connect((dst, 9))
                    rows.append(f"{time.monotonic():.6f},{sock.getsockname()[0]}")
                except OSError as exc:
                    rows.append(f"{time.monotonic():.6f},{errno.errorcode.get(exc.errno or 0, 'error')}")
        _finishing()
    out.write_text("\n".join(rows) + "\n")
    return 0


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
TIMESPEC = struct.Struct("@qq")


def realtime_offset() -> float:
    """CLOCK_REALTIME minus CLOCK_MONOTONIC, read where the two reads are closest together."""
    best = None
    for _ in range(20):
        a = time.monotonic()
        r = time.clock_gettime(time.CLOCK_REALTIME)
        b = time.monotonic()
        if best is None or b - a < best[0]:
            best = (b - a, r - (a + b) / 2)
    assert best is not None
    return best[1]


def recv(port: int, duration: float, out: Path) -> int:
    """Log each datagram with the kernel's receive time (SO_TIMESTAMPNS, taken when the packet reached the
    socket, so a receiver that was scheduled late does not stretch a gap), converted to the monotonic clock
    every node shares; ``t_user`` is when this process read it."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind(("::", port))
    sock.settimeout(0.2)
    rows = []
    offset = realtime_offset()
    end = time.monotonic() + duration
    try:
        while time.monotonic() < end:
            try:
                data, anc, _, addr = sock.recvmsg(2048, socket.CMSG_SPACE(TIMESPEC.size))
            except TimeoutError:
                continue
            t_user = time.monotonic()
            t = t_user
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= TIMESPEC.size:
                    sec, nsec = TIMESPEC.unpack_from(value)
                    t = min(t_user, sec + nsec / 1e9 - offset)  # never later than it was read
            if len(data) >= HEADER.size:
                seq, sent = HEADER.unpack_from(data)
                rows.append(f"{seq},{sent:.6f},{t:.6f},{addr[0]},{t_user:.6f}")
        _finishing()
    except Stop:
        pass
    finally:
        _finishing()
        out.write_text("seq,t_sent,t_recv,source,t_user\n" + "\n".join(rows) + ("\n" if rows else ""))
    return 0


RECORD = struct.Struct("!Qd")  # TCP record: sequence, send time
RECORD_SIZE = 32
IPPROTO_MPTCP = 262


def stream_socket(mptcp: bool) -> socket.socket:
    return socket.socket(socket.AF_INET6, socket.SOCK_STREAM, IPPROTO_MPTCP if mptcp else 0)


def connect(addr: str, port: int, timeout: float, mptcp: bool) -> socket.socket:
    s = stream_socket(mptcp)
    s.settimeout(timeout)
    try:
        s.connect((addr, port))
    except OSError:
        s.close()
        raise
    return s


def tcp_server(port: int, duration: float, out: Path, mptcp: bool = False, sessions: int | None = None) -> int:
    """Accept sessions and log every record's arrival; also serves as the target of ``clients``.

    With ``sessions``, stop once that many sessions have ended (end of stream or error): a client closes after
    its last record, so by then every record that will ever arrive has, and a trial need not wait out
    ``duration`` (its bound)."""
    srv = stream_socket(mptcp)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    srv.bind(("::", port))
    srv.listen(16)
    srv.settimeout(0.05)  # how soon the last session's end is noticed
    rows: list[str] = []
    lock = threading.Lock()
    end = time.monotonic() + duration
    ended = threading.Semaphore(0)

    def serve(conn: socket.socket, n: int, source: str) -> None:
        conn.settimeout(0.2)
        buf = b""
        while time.monotonic() < end:
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            buf += data
            t = time.monotonic()
            while len(buf) >= RECORD_SIZE:
                seq, sent = RECORD.unpack_from(buf)
                buf = buf[RECORD_SIZE:]
                with lock:
                    rows.append(f"{n},{seq},{sent:.6f},{t:.6f},{source}")
        conn.close()
        ended.release()

    n = done = 0
    try:
        while time.monotonic() < end and (sessions is None or done < sessions):
            while ended.acquire(blocking=False):
                done += 1
            try:
                conn, peer = srv.accept()
            except TimeoutError:
                continue
            n += 1
            threading.Thread(target=serve, args=(conn, n, peer[0]), daemon=True).start()
        _finishing()
    except Stop:
        pass
    finally:
        _finishing()
        if sessions is None or done < sessions:
            time.sleep(0.25)  # let session threads log what they already received
        with lock:
            out.write_text("conn,seq,t_sent,t_recv,source\n" + "\n".join(rows) + ("\n" if rows else ""))
    return 0


def tcp_client(dst: str, port: int, interval: float, duration: float, out: Path, start_at: float | None,
               mptcp: bool = False) -> int:
    log = ["event,t,detail"]
    seq = -1
    try:
        try:
            wait_until(start_at)
            conn = connect(dst, port, 2.0, mptcp)
            log.append(f"connected,{time.monotonic():.6f},{conn.getsockname()[0]}")
            t0 = time.monotonic()
            for seq in range(int(duration / interval)):
                wait_until(t0 + seq * interval)
                conn.sendall(RECORD.pack(seq, time.monotonic()) + b"\0" * (RECORD_SIZE - RECORD.size))
            conn.shutdown(socket.SHUT_WR)
            log.append(f"done,{time.monotonic():.6f},{seq}")
            conn.close()
        except OSError as exc:
            name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
            log.append(f"error,{time.monotonic():.6f},{name} after record {seq}")
        _finishing()
    except Stop:
        log.append(f"stopped,{time.monotonic():.6f},{seq}")
    _finishing()
    out.write_text("\n".join(log) + "\n")
    return 0


def happy_eyeballs(targets: list[str], port: int, delay: float, give_up: float, mptcp: bool) -> tuple[bool, str]:
    """One client connecting as RFC 8305 says: the most preferred address first, the next one ``delay`` later
    (or at once when an attempt fails) while the earlier ones go on, the first to complete wins. The kernel
    retransmits SYNs on its default schedule; the client gives up after ``give_up`` seconds."""
    start = time.monotonic()
    sel = selectors.DefaultSelector()
    nxt, next_at = 0, start
    try:
        while True:
            now = time.monotonic()
            if now - start >= give_up:
                return False, ""
            if nxt < len(targets) and now >= next_at:
                s = stream_socket(mptcp)
                s.setblocking(False)
                s.connect_ex((targets[nxt], port))
                sel.register(s, selectors.EVENT_WRITE, targets[nxt])
                nxt, next_at = nxt + 1, now + delay
            if not sel.get_map():
                if nxt >= len(targets):
                    return False, ""  # every address refused at once
                continue
            wake = start + give_up if nxt >= len(targets) else min(next_at, start + give_up)
            for key, _ in sel.select(max(0.0, wake - time.monotonic())):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    return True, str(key.data)
                sel.unregister(sock)
                sock.close()
                next_at = time.monotonic()  # RFC 8305 5: a failed attempt starts the next one at once
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        sel.close()


def clients(targets: list[str], port: int, mean_gap: float, delay: float, give_up: float, duration: float,
            out: Path, start_at: float | None, seed: int, mptcp: bool = False) -> int:
    """Fresh clients started at random times (exponential gaps, seeded), each connecting with Happy Eyeballs;
    logs ``t_start,t_end,ok,address`` per client."""
    import random

    rng = random.Random(seed)
    rows: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        t_start = time.monotonic()
        ok, used = happy_eyeballs(targets, port, delay, give_up, mptcp)
        with lock:
            rows.append(f"{t_start:.6f},{time.monotonic():.6f},{int(ok)},{used}")

    threads = []
    try:
        wait_until(start_at)
        end = time.monotonic() + duration
        t = time.monotonic()
        while t < end:
            wait_until(t)
            th = threading.Thread(target=one, daemon=True)
            th.start()
            threads.append(th)
            t += rng.expovariate(1.0 / mean_gap)
        for th in threads:
            th.join(give_up + 1.0)
        _finishing()
    except Stop:
        pass
    _finishing()
    with lock:
        out.write_text("\n".join(["t_start,t_end,ok,address", *sorted(rows)]) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m multi6lab.traffic.probe", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send", help="send a UDP sequence stream")
    s.add_argument("--dst", required=True)
    s.add_argument("--src")
    s.add_argument("--port", type=int, default=5001)
    s.add_argument("--rate", type=float, default=1000.0, help="packets per second (default 1000)")
    s.add_argument("--duration", type=float, required=True, help="seconds")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--start-at", type=float, help="monotonic time to send the first probe at")
    r = sub.add_parser("recv", help="receive a UDP sequence stream and log arrivals")
    r.add_argument("--port", type=int, default=5001)
    r.add_argument("--duration", type=float, required=True, help="seconds to listen")
    r.add_argument("--out", type=Path, required=True)
    ts = sub.add_parser("tcp-server", help="accept TCP sessions and log their records")
    ts.add_argument("--port", type=int, required=True)
    ts.add_argument("--duration", type=float, required=True, help="seconds to serve at most")
    ts.add_argument("--sessions", type=int, help="stop once this many sessions have ended")
    ts.add_argument("--out", type=Path, required=True)
    ts.add_argument("--mptcp", action="store_true", help="speak MPTCP (kernel, IPPROTO_MPTCP)")
    tc = sub.add_parser("tcp-client", help="one long-lived TCP session sending timestamped records")
    tc.add_argument("--dst", required=True)
    tc.add_argument("--port", type=int, required=True)
    tc.add_argument("--interval", type=float, default=0.01, help="seconds between records (default 0.01)")
    tc.add_argument("--duration", type=float, required=True)
    tc.add_argument("--out", type=Path, required=True)
    tc.add_argument("--start-at", type=float)
    tc.add_argument("--mptcp", action="store_true", help="speak MPTCP (kernel, IPPROTO_MPTCP)")
    cl = sub.add_parser("clients", help="fresh clients at random times, each connecting with Happy Eyeballs")
    cl.add_argument("--targets", required=True, help="comma-separated addresses, most preferred first")
    cl.add_argument("--port", type=int, required=True)
    cl.add_argument("--mean-gap", type=float, default=0.05, help="mean seconds between client starts")
    cl.add_argument("--attempt-delay", type=float, default=0.25, help="RFC 8305 connection attempt delay")
    cl.add_argument("--give-up", type=float, default=3.0, help="seconds a client tries before it gives up")
    cl.add_argument("--seed", type=int, default=1)
    cl.add_argument("--duration", type=float, required=True)
    cl.add_argument("--out", type=Path, required=True)
    cl.add_argument("--start-at", type=float)
    cl.add_argument("--mptcp", action="store_true", help="speak MPTCP (kernel, IPPROTO_MPTCP)")
    fl = sub.add_parser("flows", help="many short UDP flows, each from its own socket")
    fl.add_argument("--dst", required=True)
    fl.add_argument("--port", type=int, default=5001)
    fl.add_argument("--count", type=int, required=True, help="flows")
    fl.add_argument("--packets", type=int, default=3, help="datagrams per flow (default 3)")
    fl.add_argument("--rate", type=float, default=200.0, help="flows per second (default 200)")
    fl.add_argument("--tcp", action="store_true", help="TCP connections instead of UDP datagrams")
    so = sub.add_parser("sources", help="log the source address the kernel selects toward a destination")
    so.add_argument("--dst", required=True)
    so.add_argument("--interval", type=float, default=0.01, help="seconds between selections (default 0.01)")
    so.add_argument("--duration", type=float, required=True)
    so.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(KeyboardInterrupt):
        if a.cmd == "send":
            return send(a.dst, a.port, a.rate, a.duration, a.out, a.src, a.start_at)
        if a.cmd == "recv":
            return recv(a.port, a.duration, a.out)
        if a.cmd == "flows":
            return flows(a.dst, a.port, a.count, a.packets, a.rate, a.tcp)
        if a.cmd == "sources":
            return sources(a.dst, a.interval, a.duration, a.out)
        if a.cmd == "tcp-server":
            return tcp_server(a.port, a.duration, a.out, a.mptcp, a.sessions)
        if a.cmd == "tcp-client":
            return tcp_client(a.dst, a.port, a.interval, a.duration, a.out, a.start_at, a.mptcp)
        return clients(a.targets.split(","), a.port, a.mean_gap, a.attempt_delay, a.give_up, a.duration, a.out,
                       a.start_at, a.seed, a.mptcp)
    return 130


if __name__ == "__main__":
    sys.exit(main())
