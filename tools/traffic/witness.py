"""The witness's traffic, run inside Mininet nodes: ``python -m multi6lab.traffic.witness send|sink``.

A stream that shares no code with :mod:`multi6lab.traffic.probe`: its own payload (``M6W1`` and a 32-bit sequence
number), its own ports, its own pacing, and no log at either end. Its only record is the capture the runner
takes at the site's ISPs (:mod:`multi6lab.results.witness`). The sink binds the port and discards, so the
receiver answers with no ICMPv6 port unreachable (which the icmp trigger would act on).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import struct
import time

MAGIC = b"M6W1"
SIZE = 64


def send(dst: str, port: int, rate: float, duration: float) -> None:
    """``rate`` datagrams a second for ``duration`` seconds, on an absolute schedule (a late one is sent at once,
    never skipped: a gap in the sequence is always a loss on the way)."""
    pad = b"\0" * (SIZE - len(MAGIC) - 4)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        start = time.perf_counter()
        for seq in range(int(rate * duration)):
            delay = start + seq / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            with contextlib.suppress(OSError):  # no route for a moment: the datagram is lost, as on the wire
                s.sendto(MAGIC + struct.pack("!I", seq) + pad, (dst, port))


def sink(port: int, duration: float) -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::", port))
        s.settimeout(0.5)
        end = time.monotonic() + duration
        while time.monotonic() < end:
            try:
                s.recv(2048)
            except TimeoutError:
                continue


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="multi6lab.traffic.witness", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send", help="send the witness stream")
    s.add_argument("--dst", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--rate", type=float, default=1000.0)
    s.add_argument("--duration", type=float, required=True)
    k = sub.add_parser("sink", help="bind the witness port and discard what arrives")
    k.add_argument("--port", type=int, required=True)
    k.add_argument("--duration", type=float, required=True)
    a = ap.parse_args(argv)
    if a.cmd == "send":
        send(a.dst, a.port, a.rate, a.duration)
    else:
        sink(a.port, a.duration)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
