"""The delay line's verdict daemon, run in a router's or host's namespace:
``python -m multi6lab.traffic.delayd --queue N:DELAY_MS:JITTER_MS:LOSS_PCT ... --seed S --ready FILE``.

Netfilter hands it every packet of an impaired link direction (ip6tables' NFQUEUE target in the mangle table's
PREROUTING or POSTROUTING chain, :func:`multi6lab.topologies.shell.delay_rules`) and holds the packet until the
daemon answers with a verdict, which it sends when the packet is due (:mod:`multi6lab.lab.delayline`). One
thread and one netlink socket (nfnetlink_queue, spoken directly): a select() that wakes for the next packet or
the next due time. A verdict thread beside a receiving thread, as the Python nfqueue libraries run, fought
over the interpreter's lock: 4 ms p99 error at 1 kHz against 1.5 ms for this loop, measured side by side. The
kernel hands over only each packet's metadata (copy mode META), so holding a packet copies nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import select
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from types import FrameType

from multi6lab.lab.delayline import DelayLine, Impairment

NETLINK_NETFILTER = 12
SUBSYS_QUEUE = 3 << 8
MSG_PACKET, MSG_VERDICT, MSG_CONFIG = 0, 1, 2
NLMSG_ERROR = 2
F_REQUEST, F_ACK = 1, 4
CFG_CMD, CFG_PARAMS, CFG_QUEUE_MAXLEN = 1, 2, 3
CMD_BIND = 1
COPY_META = 1
PACKET_HDR, VERDICT_HDR = 1, 2
NF_DROP, NF_ACCEPT = 0, 1
MAXLEN = 65536  # packets the kernel holds per queue awaiting a verdict (1 Gbit/s for 50 ms is ~4,200)
HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, pid
NFGEN = struct.Struct("=BBH")  # nfgenmsg: family, version, queue number (big-endian)


class Stop(Exception):
    pass


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stop


def _attr(kind: int, data: bytes) -> bytes:
    size = 4 + len(data)
    return struct.pack("=HH", size, kind) + data + b"\0" * (-size % 4)


class Netlink:
    """The nfnetlink_queue side of one process: bind queues, read packet ids, send verdicts."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE: bursts wait here, not lost
        self.seq = 0

    def message(self, kind: int, queue: int, attrs: bytes, flags: int = F_REQUEST) -> bytes:
        self.seq += 1
        body = NFGEN.pack(socket.AF_UNSPEC, 0, socket.htons(queue)) + attrs
        return HEADER.pack(HEADER.size + len(body), SUBSYS_QUEUE | kind, flags, self.seq, 0) + body

    def bind(self, queue: int) -> None:
        """Bind ``queue`` with copy mode META; OSError with the kernel's answer if it refuses (taken already)."""
        for attrs in (_attr(CFG_CMD, struct.pack("!BxH", CMD_BIND, 0)),
                      _attr(CFG_PARAMS, struct.pack("!IB", 0, COPY_META)) + _attr(CFG_QUEUE_MAXLEN,
                                                                                  struct.pack("!I", MAXLEN))):
            self.sock.send(self.message(MSG_CONFIG, queue, attrs, F_REQUEST | F_ACK))
            reply = self.sock.recv(65536)
            if struct.unpack_from("=IH", reply)[1] == NLMSG_ERROR:
                code = struct.unpack_from("=i", reply, HEADER.size)[0]
                if code:
                    raise OSError(-code, f"binding queue {queue}: {errno.errorcode.get(-code, code)}")

    def packets(self) -> list[tuple[int, int]]:
        """(queue, packet id) of every packet waiting on the socket now; [] when none is."""
        out = []
        while True:
            try:
                data = self.sock.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # the kernel could not hand some over: they stay queued
                    print("delayd: netlink overrun (ENOBUFS)", file=sys.stderr)
                    continue
                raise
            at = 0
            while at + HEADER.size <= len(data):
                length, kind = struct.unpack_from("=IH", data, at)
                if length < HEADER.size:
                    break
                if kind == SUBSYS_QUEUE | MSG_PACKET:
                    queue = socket.ntohs(NFGEN.unpack_from(data, at + HEADER.size)[2])
                    a = at + HEADER.size + NFGEN.size
                    while a + 4 <= at + length:
                        size, atype = struct.unpack_from("=HH", data, a)
                        if size < 4:
                            break
                        if atype & 0x3FFF == PACKET_HDR:
                            out.append((queue, struct.unpack_from("!I", data, a + 4)[0]))
                        a += (size + 3) & ~3
                at += (length + 3) & ~3

    def verdicts(self, items: list[tuple[int, int, int]]) -> None:
        """(queue, packet id, verdict) for each, in one datagram per 256."""
        for i in range(0, len(items), 256):
            self.sock.send(b"".join(self.message(MSG_VERDICT, q, _attr(VERDICT_HDR, struct.pack("!II", v, p)))
                                    for q, p, v in items[i:i + 256]))


def parse_queue(text: str) -> tuple[int, Impairment]:
    """``N:DELAY_MS:JITTER_MS:LOSS_PCT`` -> (queue number, impairment)."""
    n, delay, jitter, loss = text.split(":")
    return int(n), Impairment(float(delay), float(jitter), float(loss))


def serve(line: DelayLine, nl: Netlink) -> None:
    """Until SIGTERM: hold each packet until it is due, drop the lost ones at once."""
    while True:
        due = line.next_due()
        timeout = None if due is None else max(0.0, due - time.monotonic())
        ready, _, _ = select.select([nl.sock], [], [], timeout)
        now = time.monotonic()
        verdicts = []
        if ready:
            for queue, packet in nl.packets():
                if not line.arrived(queue, packet, now):
                    verdicts.append((queue, packet, NF_DROP))
        verdicts += [(q, p, NF_ACCEPT) for q, p in line.release(time.monotonic())]
        if verdicts:
            nl.verdicts(verdicts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="multi6lab.traffic.delayd", description=__doc__.split("\n\n")[0])
    ap.add_argument("--queue", action="append", required=True, type=parse_queue, metavar="N:DELAY:JITTER:LOSS")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ready", type=Path, help="created once every queue is bound")
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    line = DelayLine.of(dict(a.queue), a.seed)
    nl = Netlink()
    try:
        for n in line.queues:
            nl.bind(n)
    except OSError as exc:
        print(f"delayd: {exc}", file=sys.stderr)
        return 1
    if a.ready:
        a.ready.touch()
    with contextlib.suppress(Stop):
        serve(line, nl)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
