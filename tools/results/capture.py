"""Probe arrivals read back from a packet capture: a second instrument for the same outage. Pure.

The receiving probe stamps each datagram through its socket; tcpdump stamps it through a packet tap on the
same interface. Recomputing a direction's outage from the capture and comparing it with the probe's says how
far the figure depends on the probe's own timing. Only classic pcap files of Ethernet frames are read (what
``tcpdump -w`` writes, with microsecond or nanosecond stamps); the probes' payload carries their sequence
number and send time (``traffic.probe.HEADER``).
"""

from __future__ import annotations

import struct
from pathlib import Path

from multi6lab.results.analysis import Arrival

MAGIC_US, MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D
UDP_PAYLOAD = 14 + 40 + 8  # Ethernet, IPv6 without extension headers, UDP
PROBE_HEADER = struct.Struct("!Qd")


def probe_arrivals(path: Path, port: int, realtime_offset: float) -> list[Arrival]:
    """The probe datagrams to UDP ``port`` in the capture at ``path``, stamped on the monotonic clock
    (capture time minus ``realtime_offset``, CLOCK_REALTIME minus CLOCK_MONOTONIC when the trial began)."""
    data = path.read_bytes()
    if len(data) < 24:
        return []
    for order in ("<", ">"):
        magic = struct.unpack_from(order + "I", data)[0]
        if magic in (MAGIC_US, MAGIC_NS):
            break
    else:
        raise ValueError(f"{path}: not a pcap file")
    scale = 1e-9 if magic == MAGIC_NS else 1e-6
    record = struct.Struct(order + "IIII")
    out = []
    at = 24
    while at + record.size <= len(data):
        sec, frac, caplen, _ = record.unpack_from(data, at)
        frame = data[at + record.size: at + record.size + caplen]
        at += record.size + caplen
        if (len(frame) >= UDP_PAYLOAD + PROBE_HEADER.size and frame[12:14] == b"\x86\xdd" and frame[20] == 17
                and struct.unpack_from("!H", frame, 14 + 40 + 2)[0] == port):
            seq, sent = PROBE_HEADER.unpack_from(frame, UDP_PAYLOAD)
            out.append(Arrival(seq, sent, sec + frac * scale - realtime_offset))
    return out
