"""IPv6-in-IPv6 (RFC 2473) as bytes: the outer header the agent's tunnel puts on a packet, and the check an
arriving inner packet passes before the kernel sees it. Pure; the agent (:class:`agent.Tunnel`) moves them.

The outer header carries no extension headers and no tunnel encapsulation limit option (RFC 2473 section
5.1 makes it optional): the tunnels here end one hop of the emulated network past their entry at most, and
are never nested.
"""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

IPPROTO_IPV6 = 41
HEADER = 40
OUTER_HLIM = 64


def destination(packet: bytes) -> bytes | None:
    """The destination of an IPv6 packet, packed (the key the agent's tunnel ends are kept by), or None when
    the bytes are no IPv6 packet."""
    if len(packet) < HEADER or packet[0] >> 4 != 6:
        return None
    return packet[24:40]


def encapsulate(packet: bytes, source: IPv6Address, end: IPv6Address) -> bytes:
    """``packet`` inside an outer header from ``source`` to the tunnel's ``end``; traffic class and flow label
    zero, the inner packet's untouched (RFC 2473 section 5)."""
    return struct.pack("!IHBB16s16s", 6 << 28, len(packet), IPPROTO_IPV6, OUTER_HLIM, source.packed,
                       end.packed) + packet


def inner(payload: bytes) -> bytes | None:
    """What a protocol-41 raw socket read (the outer header's payload) hands on to the kernel: a whole IPv6
    packet whose length field matches the bytes, or None."""
    if destination(payload) is None:
        return None
    length = int.from_bytes(payload[4:6], "big")
    return payload if HEADER + length == len(payload) else None
