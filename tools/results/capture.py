"""Probe arrivals read back from a packet capture: a second instrument for the same outage. Pure.

The receiving probe stamps each datagram through its socket; tcpdump stamps it through a packet tap on the
same interface. Recomputing a direction's outage from the capture and comparing it with the probe's says how
far the figure depends on the probe's own timing. Captures of Ethernet frames are read with scapy's raw reader:
classic pcap (what ``tcpdump -w`` writes, with microsecond or nanosecond stamps) or pcapng (what Wireshark
saves); the probes' payload carries their sequence number and send time (``traffic.probe.HEADER``). A probe
may arrive inside one IPv6-in-IPv6 header (a mobile node's tunnel: mobility's home agent or route optimisation).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from scapy.error import Scapy_Exception
from scapy.utils import RawPcapReader

from multi6lab.results.analysis import Arrival

ETH, IP6, UDP = 14, 40, 8  # header lengths: Ethernet, IPv6 without extension headers, UDP
NEXT_HEADER = 6  # its offset in the IPv6 header
UDP_PROTO, IPV6_PROTO = 17, 41
PROBE_HEADER = struct.Struct("!Qd")


def bpf(port: int) -> str:
    """tcpdump's filter for probes to UDP ``port``: plain, or inside one IPv6-in-IPv6 header."""
    inner = f"ip6[{IP6 + NEXT_HEADER}] == {UDP_PROTO} and ip6[{IP6 + IP6 + 2}:2] == {port}"
    return f"udp dst port {port} or (ip6 proto {IPV6_PROTO} and {inner})"


def _udp_payload(frame: bytes, port: int) -> int | None:
    """Where the probe payload of a datagram to ``port`` starts in ``frame`` (None: no such datagram)."""
    if frame[12:14] != b"\x86\xdd":
        return None
    ip = ETH
    if len(frame) > ip + NEXT_HEADER and frame[ip + NEXT_HEADER] == IPV6_PROTO:
        ip += IP6
    if len(frame) < ip + IP6 + UDP + PROBE_HEADER.size or frame[ip + NEXT_HEADER] != UDP_PROTO:
        return None
    return ip + IP6 + UDP if struct.unpack_from("!H", frame, ip + IP6 + 2)[0] == port else None


def _stamp(reader: Any, meta: Any) -> float:
    """A record's capture time in seconds: pcapng's 64-bit count of ``tsresol`` units, or pcap's seconds and
    micro- (or nano-) seconds."""
    if hasattr(meta, "tsresol"):
        return float(((meta.tshigh << 32) | meta.tslow) / meta.tsresol)
    return float(meta.sec + meta.usec * (1e-9 if getattr(reader, "nano", False) else 1e-6))


def probe_arrivals(path: Path, port: int, realtime_offset: float) -> list[Arrival]:
    """The probe datagrams to UDP ``port`` in the capture at ``path``, stamped on the monotonic clock
    (capture time minus ``realtime_offset``, CLOCK_REALTIME minus CLOCK_MONOTONIC when the trial began)."""
    if path.stat().st_size == 0:
        return []  # a capture that never got a packet, or was stopped before writing its header
    try:
        reader = RawPcapReader(str(path))
    except Scapy_Exception:
        raise ValueError(f"{path}: not a pcap or pcapng file") from None
    out = []
    with reader:
        for frame, meta in reader:
            payload = _udp_payload(frame, port)
            if payload is not None:
                seq, sent = PROBE_HEADER.unpack_from(frame, payload)
                out.append(Arrival(seq, sent, _stamp(reader, meta) - realtime_offset))
    return out
