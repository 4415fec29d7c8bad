"""Packets the controller sends and the few it reads, built and parsed with scapy (pure, no sockets).

The site router's control plane lives here: neighbor advertisements for the gateway and exit addresses,
router advertisements with per-prefix lifetimes (deprecation is a preferred lifetime of 0, RFC 8475),
ICMPv6 destination unreachable code 5 for stale sources (RFC 8678), heartbeat echo requests, and the id-loc
edges' locator-pair messages (built and read by hand: one leaves or arrives every few milliseconds per pair).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network

from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    IPerror6,
    IPv6,
)
from scapy.layers.l2 import Ether

ALL_NODES = IPv6Address("ff02::1")
ALL_NODES_MAC = "33:33:00:00:00:01"
SOURCE_POLICY_FAILED = 5  # ICMPv6 type 1 code 5: source address failed ingress/egress policy (RFC 4443)
MIN_MTU = 1280
PAIR_PORT = 5534  # UDP port of the locator-pair protocol (RFC 5534 is REAP, which it is modelled on)
PAIR_MAGIC = b"m6lp"
PAIR_VERSION = 1
_PAIR_HEAD = struct.Struct("!4sBBBBIH")  # magic, version, flags, reports, down locators, nonce, heard_ms
_UDP_AT = 14 + 40


@dataclass(frozen=True)
class Parsed:
    """What the controller needs from a packet-in; ``kind`` is one of ns, na, rs, echo_reply, ipv6, other."""

    kind: str
    eth_src: str = ""
    eth_dst: str = ""
    src: IPv6Address | None = None
    dst: IPv6Address | None = None
    target: IPv6Address | None = None  # NS or NA target
    hop_limit: int = 0
    ident: int = 0  # echo id
    seq: int = 0  # echo sequence


def is_echo_reply(data: bytes, to: IPv6Address | None = None) -> bool:
    """Fast path for heartbeat replies (hundreds a second): Ethernet/IPv6/ICMPv6 type 129, no scapy; with
    ``to``, only one addressed there (an exit's own address: any other echo reply is someone's data)."""
    return (len(data) >= 58 and data[12:14] == b"\x86\xdd" and data[20] == 58 and data[54] == 129
            and (to is None or data[38:54] == to.packed))


def unreachable_quote(data: bytes) -> tuple[IPv6Address, IPv6Address] | None:
    """(source, destination) of the packet quoted by an ICMPv6 destination unreachable, or None."""
    if not (len(data) >= 58 and data[12:14] == b"\x86\xdd" and data[20] == 58 and data[54] == 1):
        return None
    try:
        quoted = Ether(data).getlayer(IPerror6)
        return (IPv6Address(quoted.src), IPv6Address(quoted.dst)) if quoted is not None else None
    except Exception:  # scapy raises many types on a truncated quote
        return None


def parse(data: bytes) -> Parsed:
    """Decode a packet-in; anything malformed or unexpected is ``other`` (dropped and counted, never raised)."""
    try:
        pkt = Ether(data)
    except Exception:  # scapy raises many types on garbage input
        return Parsed("other")
    ip = pkt.getlayer(IPv6)
    if ip is None:
        return Parsed("other", pkt.src, pkt.dst)
    try:
        src, dst = IPv6Address(ip.src), IPv6Address(ip.dst)
    except ValueError:
        return Parsed("other", pkt.src, pkt.dst)
    base = {"eth_src": pkt.src, "eth_dst": pkt.dst, "src": src, "dst": dst, "hop_limit": int(ip.hlim)}
    for kind, layer in (("ns", ICMPv6ND_NS), ("na", ICMPv6ND_NA)):
        nd = pkt.getlayer(layer)
        if nd is not None:
            try:
                return Parsed(kind, target=IPv6Address(nd.tgt), **base)
            except ValueError:
                return Parsed("other", pkt.src, pkt.dst)
    if pkt.haslayer(ICMPv6ND_RS):
        return Parsed("rs", **base)
    echo = pkt.getlayer(ICMPv6EchoReply)
    if echo is not None:
        return Parsed("echo_reply", ident=int(echo.id), seq=int(echo.seq), **base)
    return Parsed("ipv6", **base)


def neighbor_advert(src_mac: str, target: IPv6Address, dst_mac: str, dst: IPv6Address, router: bool = True) -> bytes:
    """A solicited NA for ``target`` owned by ``src_mac`` (R flag for routers, O flag to override caches)."""
    pkt = (Ether(src=src_mac, dst=dst_mac) / IPv6(src=str(target), dst=str(dst), hlim=255)
           / ICMPv6ND_NA(tgt=str(target), R=int(router), S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr=src_mac))
    return bytes(pkt)


def neighbor_solicit(src_mac: str, src: IPv6Address, target: IPv6Address) -> bytes:
    """A multicast NS for ``target`` from the site router (to its solicited-node group, RFC 4861 7.2.2)."""
    group = IPv6Address(int(IPv6Address("ff02::1:ff00:0")) | (int(target) & 0xFFFFFF))
    mac = "33:33:" + ":".join(f"{b:02x}" for b in group.packed[-4:])
    pkt = (Ether(src=src_mac, dst=mac) / IPv6(src=str(src), dst=str(group), hlim=255)
           / ICMPv6ND_NS(tgt=str(target)) / ICMPv6NDOptSrcLLAddr(lladdr=src_mac))
    return bytes(pkt)


def router_advert(src_mac: str, src: IPv6Address, prefixes: list[tuple[IPv6Network, int, int]],
                  router_lifetime: int = 1800, dst_mac: str = ALL_NODES_MAC, dst: IPv6Address = ALL_NODES) -> bytes:
    """An RA from the site router; ``prefixes`` holds (prefix, valid lifetime, preferred lifetime)."""
    pkt = (Ether(src=src_mac, dst=dst_mac) / IPv6(src=str(src), dst=str(dst), hlim=255)
           / ICMPv6ND_RA(routerlifetime=router_lifetime, M=0, O=0) / ICMPv6NDOptSrcLLAddr(lladdr=src_mac))
    for prefix, valid, preferred in prefixes:
        pkt = pkt / ICMPv6NDOptPrefixInfo(prefix=str(prefix.network_address), prefixlen=prefix.prefixlen,
                                          L=1, A=1, validlifetime=valid, preferredlifetime=preferred)
    return bytes(pkt)


def echo_request(src_mac: str, dst_mac: str, src: IPv6Address, dst: IPv6Address, ident: int, seq: int,
                 token: bytes = b"") -> bytes:
    """An ICMPv6 echo request carrying ``token`` as its data, built by hand (one leaves per exit every
    heartbeat interval). The beacon's reply returns the data unchanged (RFC 4443 4.2), so a reply proves the
    path only if it carries a token that this controller sent and nobody off the path could have seen."""
    return _frame(src_mac, dst_mac, src, dst, 58, struct.pack("!BBHHH", 128, 0, 0, ident, seq & 0xFFFF) + token, 2)


def echo_token(data: bytes, to: IPv6Address) -> bytes | None:
    """The data of an echo reply addressed to ``to`` (an exit's own address): the token of the heartbeat echo it
    answers, if it answers one. None for any other packet."""
    if not is_echo_reply(data, to):
        return None
    end = _UDP_AT + struct.unpack_from("!H", data, 18)[0]
    return bytes(data[_UDP_AT + 8: end]) if len(data) >= end else None


def source_policy_failed(src_mac: str, src: IPv6Address, dst_mac: str, offending: bytes) -> bytes:
    """ICMPv6 1/5 back to the sender of ``offending`` (an Ethernet frame), quoting as much as fits 1280."""
    ip = Ether(offending).getlayer(IPv6)
    if ip is None:
        raise ValueError("source_policy_failed() needs an IPv6 packet to quote")
    quoted = bytes(ip)[: MIN_MTU - 48]
    pkt = (Ether(src=src_mac, dst=dst_mac) / IPv6(src=str(src), dst=ip.src, hlim=255)
           / ICMPv6DestUnreach(code=SOURCE_POLICY_FAILED) / quoted)
    return bytes(pkt)


@dataclass(frozen=True)
class PairMessage:
    """A locator-pair message as it travels: between two edge addresses (see addressing.edge_address)."""

    src: IPv6Address
    dst: IPv6Address
    nonce: int
    ask: bool  # answer at once
    reports: tuple[int, ...] = ()  # nonces the sender received from the addressee
    down: tuple[IPv6Address, ...] = ()  # edge addresses of the sender's locators whose uplink is down
    heard_ms: int = 0xFFFF  # how long the sender has been hearing from the addressee (capped)


def pair_message(src_mac: str, dst_mac: str, m: PairMessage) -> bytes:
    """Ethernet/IPv6/UDP carrying ``m``."""
    payload = (_PAIR_HEAD.pack(PAIR_MAGIC, PAIR_VERSION, int(m.ask), len(m.reports), len(m.down), m.nonce,
                               min(m.heard_ms, 0xFFFF))
               + b"".join(struct.pack("!I", n) for n in m.reports) + b"".join(a.packed for a in m.down))
    return udp_packet(src_mac, dst_mac, m.src, m.dst, PAIR_PORT, PAIR_PORT, payload)


def udp_packet(src_mac: str, dst_mac: str, src: IPv6Address, dst: IPv6Address, sport: int, dport: int,
               payload: bytes) -> bytes:
    """Ethernet/IPv6/UDP with a valid UDP checksum (the pair protocol's and the mapping client's packets)."""
    return _frame(src_mac, dst_mac, src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload, 6)


def _frame(src_mac: str, dst_mac: str, src: IPv6Address, dst: IPv6Address, proto: int, body: bytes,
           checksum_at: int) -> bytes:
    """Ethernet/IPv6 around ``body`` (a UDP or ICMPv6 message whose checksum field, at ``checksum_at``, is zero),
    with the checksum over the IPv6 pseudo-header filled in (RFC 8200 8.1; 0 is sent as 0xFFFF)."""
    pseudo = src.packed + dst.packed + struct.pack("!IxxxB", len(body), proto)
    checksum = _ones_complement(pseudo + body) or 0xFFFF
    body = body[:checksum_at] + struct.pack("!H", checksum) + body[checksum_at + 2:]
    ip = struct.pack("!IHBB", 0x6 << 28, len(body), proto, 64) + src.packed + dst.packed
    return _mac(dst_mac) + _mac(src_mac) + b"\x86\xdd" + ip + body


@dataclass(frozen=True)
class Udp:
    src: IPv6Address
    dst: IPv6Address
    sport: int
    dport: int
    payload: bytes


def read_udp(data: bytes) -> Udp | None:
    """The UDP datagram in an Ethernet/IPv6 frame without extension headers, or None."""
    if len(data) < _UDP_AT + 8 or data[12:14] != b"\x86\xdd" or data[20] != 17:
        return None
    sport, dport, length = struct.unpack_from("!HHH", data, _UDP_AT)
    if length < 8 or len(data) < _UDP_AT + length:
        return None
    return Udp(IPv6Address(data[22:38]), IPv6Address(data[38:54]), sport, dport,
               data[_UDP_AT + 8: _UDP_AT + length])


@dataclass(frozen=True)
class Tcp:
    src: IPv6Address
    dst: IPv6Address
    sport: int
    dport: int
    seq: int
    flags: int
    length: int  # payload bytes


def read_tcp(data: bytes) -> Tcp | None:
    """The TCP segment's header in an Ethernet/IPv6 frame without extension headers, or None."""
    if len(data) < _UDP_AT + 20 or data[12:14] != b"\x86\xdd" or data[20] != 6:
        return None
    sport, dport, seq, _, offset, flags = struct.unpack_from("!HHIIBB", data, _UDP_AT)
    header = (offset >> 4) * 4
    payload = struct.unpack_from("!H", data, 18)[0] - header
    if header < 20 or payload < 0:
        return None
    return Tcp(IPv6Address(data[22:38]), IPv6Address(data[38:54]), sport, dport, seq, flags, payload)


def read_pair_message(data: bytes) -> PairMessage | None:
    """The locator-pair message in a packet-in, or None for anything else or anything malformed."""
    u = read_udp(data)
    if u is None or u.dport != PAIR_PORT or len(u.payload) < _PAIR_HEAD.size:
        return None
    magic, version, flags, n_reports, n_down, nonce, heard = _PAIR_HEAD.unpack_from(u.payload)
    at = _PAIR_HEAD.size
    if magic != PAIR_MAGIC or version != PAIR_VERSION or len(u.payload) < at + 4 * n_reports + 16 * n_down:
        return None
    reports = struct.unpack_from(f"!{n_reports}I", u.payload, at)
    at += 4 * n_reports
    down = tuple(IPv6Address(u.payload[at + 16 * i: at + 16 * (i + 1)]) for i in range(n_down))
    return PairMessage(u.src, u.dst, nonce, bool(flags & 1), reports, down, heard)


def readdressed(frame: bytes, src_mac: str, dst_mac: str) -> bytes:
    """``frame`` with new Ethernet addresses (a held packet, now that its next hop is known)."""
    return _mac(dst_mac) + _mac(src_mac) + frame[12:]


def _mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def _ones_complement(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
