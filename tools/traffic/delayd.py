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
import gc
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from array import array
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
PACKET_HDR, VERDICT_HDR, TIMESTAMP = 1, 2, 4
NF_DROP, NF_ACCEPT = 0, 1
RT_PRIORITY = 10  # SCHED_FIFO, low among real-time tasks: above every ordinary process of the lab
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

    def packets(self, offset: float) -> list[tuple[int, int, float | None]]:
        """(queue, packet id, when the kernel received it on the monotonic clock, if it says) of every packet
        waiting on the socket now; [] when none is. ``offset``: CLOCK_REALTIME minus CLOCK_MONOTONIC."""
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
                    packet, stamp = None, None
                    while a + 4 <= at + length:
                        size, atype = struct.unpack_from("=HH", data, a)
                        if size < 4:
                            break
                        if atype & 0x3FFF == PACKET_HDR:
                            packet = struct.unpack_from("!I", data, a + 4)[0]
                        elif atype & 0x3FFF == TIMESTAMP:  # seconds, microseconds: the kernel's receive stamp
                            sec, usec = struct.unpack_from("!QQ", data, a + 4)
                            stamp = sec + usec / 1e6 - offset
                        a += (size + 3) & ~3
                    if packet is not None:
                        out.append((queue, packet, stamp))
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


def realtime_offset() -> float:
    """CLOCK_REALTIME minus CLOCK_MONOTONIC, read where the two reads are closest together."""
    best = (float("inf"), 0.0)
    for _ in range(20):
        a = time.monotonic()
        r = time.clock_gettime(time.CLOCK_REALTIME)
        b = time.monotonic()
        best = min(best, (b - a, r - (a + b) / 2))
    return best[1]


class Errors:
    """What the line itself adds to each packet's hold: how late its verdict left after the packet was due, and
    how long the kernel had held the packet before the daemon read it (both ms)."""

    def __init__(self) -> None:
        self.late: array[float] = array("d")
        self.read: array[float] = array("d")  # only packets the kernel stamped (it often does not)

    def summary(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {"released": len(self.late), "stamped": len(self.read)}
        for name, xs in (("late", sorted(self.late)), ("read_lag", sorted(self.read))):
            if xs:
                out |= {f"{name}_ms_p50": round(xs[len(xs) // 2] * 1000, 3),
                        f"{name}_ms_p99": round(xs[int(len(xs) * 0.99)] * 1000, 3),
                        f"{name}_ms_max": round(xs[-1] * 1000, 3)}
        return out


def serve(line: DelayLine, nl: Netlink, errors: Errors) -> None:
    """Until SIGTERM: hold each packet until it is due, counted from the kernel's own receive stamp where the
    kernel gives one (so the daemon's own wake-up is not added), and drop the lost ones at once."""
    offset, offset_at = realtime_offset(), time.monotonic()
    while True:
        due = line.next_due()
        timeout = None if due is None else max(0.0, due - time.monotonic())
        ready, _, _ = select.select([nl.sock], [], [], timeout)
        now = time.monotonic()
        if now - offset_at > 10:  # the wall clock may be slewed: keep the conversion fresh
            offset, offset_at = realtime_offset(), now
        verdicts = []
        if ready:
            for queue, packet, stamp in nl.packets(offset):
                arrived = stamp if stamp is not None and now - 1.0 < stamp <= now else now
                if stamp is not None:
                    errors.read.append(now - arrived)
                if not line.arrived(queue, packet, arrived):
                    verdicts.append((queue, packet, NF_DROP))
        now = time.monotonic()
        for queue, packet, was_due in line.release(now):
            verdicts.append((queue, packet, NF_ACCEPT))
            errors.late.append(now - was_due)
        if verdicts:
            nl.verdicts(verdicts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="multi6lab.traffic.delayd", description=__doc__.split("\n\n")[0])
    ap.add_argument("--queue", action="append", required=True, type=parse_queue, metavar="N:DELAY:JITTER:LOSS")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ready", type=Path, help="created once every queue is bound")
    ap.add_argument("--errors", type=Path, help="written on exit: the line's own error (JSON)")
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with contextlib.suppress(OSError):  # run before ordinary processes when a packet falls due, as netem's timer
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
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
    errors = Errors()
    gc.disable()  # the loop makes no cycles, and a collection pass over the held packets stalled a verdict ~9 ms
    gc.freeze()
    with contextlib.suppress(Stop):
        serve(line, nl, errors)
    if a.errors:
        a.errors.write_text(json.dumps(errors.summary()) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
