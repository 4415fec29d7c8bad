"""UDP sequence probes, run inside Mininet nodes: ``python -m tools.probe send|recv ...``.

Plain sockets and pre-packed payloads (scapy is far too slow for 1 kHz here). Every node shares the host's
CLOCK_MONOTONIC, so send and receive timestamps from different namespaces compare directly. The receiver logs
``seq,t_sent,t_recv,source`` per datagram; the sender logs ``seq,t_sent,error`` for sends the kernel refused.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from types import FrameType

HEADER = struct.Struct("!Qd")  # sequence number, send time (monotonic seconds)
PAD = 64 - HEADER.size


class Stop(Exception):
    pass


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stop


def send(dst: str, port: int, rate: float, duration: float, out: Path, src: str | None) -> int:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    if src:
        sock.bind((src, 0))
    period = 1.0 / rate
    count = int(duration * rate)
    errors = []
    t0 = time.monotonic() + 0.01
    try:
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
    except Stop:
        pass
    finally:
        out.write_text("seq,t_sent,error\n" + "\n".join(errors) + ("\n" if errors else ""))
    return 0


def recv(port: int, duration: float, out: Path) -> int:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.bind(("::", port))
    sock.settimeout(0.2)
    rows = []
    end = time.monotonic() + duration
    try:
        while time.monotonic() < end:
            try:
                data, addr = sock.recvfrom(2048)
            except TimeoutError:
                continue
            t = time.monotonic()
            if len(data) >= HEADER.size:
                seq, sent = HEADER.unpack_from(data)
                rows.append(f"{seq},{sent:.6f},{t:.6f},{addr[0]}")
    except Stop:
        pass
    finally:
        out.write_text("seq,t_sent,t_recv,source\n" + "\n".join(rows) + ("\n" if rows else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.probe", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send", help="send a UDP sequence stream")
    s.add_argument("--dst", required=True)
    s.add_argument("--src")
    s.add_argument("--port", type=int, default=5001)
    s.add_argument("--rate", type=float, default=1000.0, help="packets per second (default 1000)")
    s.add_argument("--duration", type=float, required=True, help="seconds")
    s.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("recv", help="receive a UDP sequence stream and log arrivals")
    r.add_argument("--port", type=int, default=5001)
    r.add_argument("--duration", type=float, required=True, help="seconds to listen")
    r.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(KeyboardInterrupt):
        if a.cmd == "send":
            return send(a.dst, a.port, a.rate, a.duration, a.out, a.src)
        return recv(a.port, a.duration, a.out)
    return 130


if __name__ == "__main__":
    sys.exit(main())
