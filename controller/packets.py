"""Packets the controller sends and the few it reads, built and parsed with scapy (pure, no sockets).

The site router's control plane lives here: neighbor advertisements for the gateway and exit addresses,
router advertisements with per-prefix lifetimes (deprecation is a preferred lifetime of 0, RFC 8475),
ICMPv6 destination unreachable code 5 for stale sources (RFC 8678), and heartbeat echo requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network

from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
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


@dataclass(frozen=True)
class Parsed:
    """What the controller needs from a packet-in; ``kind`` is one of ns, rs, echo_reply, ipv6, other."""

    kind: str
    eth_src: str = ""
    eth_dst: str = ""
    src: IPv6Address | None = None
    dst: IPv6Address | None = None
    target: IPv6Address | None = None  # NS target
    ident: int = 0  # echo id
    seq: int = 0  # echo sequence


def is_echo_reply(data: bytes) -> bool:
    """Fast path for heartbeat replies (hundreds a second): Ethernet/IPv6/ICMPv6 type 129, no scapy."""
    return len(data) >= 58 and data[12:14] == b"\x86\xdd" and data[20] == 58 and data[54] == 129


def echo_request_addresses(data: bytes) -> tuple[IPv6Address, IPv6Address] | None:
    """Fast path for locator-pair probes: (source, destination) of an ICMPv6 echo request, else None."""
    if len(data) >= 58 and data[12:14] == b"\x86\xdd" and data[20] == 58 and data[54] == 128:
        return IPv6Address(data[22:38]), IPv6Address(data[38:54])
    return None


def unreachable_destination(data: bytes) -> IPv6Address | None:
    """The destination of the packet quoted by an ICMPv6 destination unreachable, or None."""
    if not (len(data) >= 58 and data[12:14] == b"\x86\xdd" and data[20] == 58 and data[54] == 1):
        return None
    try:
        quoted = Ether(data).getlayer(IPerror6)
        return IPv6Address(quoted.dst) if quoted is not None else None
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
    base = {"eth_src": pkt.src, "eth_dst": pkt.dst, "src": src, "dst": dst}
    ns = pkt.getlayer(ICMPv6ND_NS)
    if ns is not None:
        try:
            return Parsed("ns", target=IPv6Address(ns.tgt), **base)
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


def router_advert(src_mac: str, src: IPv6Address, prefixes: list[tuple[IPv6Network, int, int]],
                  router_lifetime: int = 1800, dst_mac: str = ALL_NODES_MAC, dst: IPv6Address = ALL_NODES) -> bytes:
    """An RA from the site router; ``prefixes`` holds (prefix, valid lifetime, preferred lifetime)."""
    pkt = (Ether(src=src_mac, dst=dst_mac) / IPv6(src=str(src), dst=str(dst), hlim=255)
           / ICMPv6ND_RA(routerlifetime=router_lifetime, M=0, O=0) / ICMPv6NDOptSrcLLAddr(lladdr=src_mac))
    for prefix, valid, preferred in prefixes:
        pkt = pkt / ICMPv6NDOptPrefixInfo(prefix=str(prefix.network_address), prefixlen=prefix.prefixlen,
                                          L=1, A=1, validlifetime=valid, preferredlifetime=preferred)
    return bytes(pkt)


def echo_request(src_mac: str, dst_mac: str, src: IPv6Address, dst: IPv6Address, ident: int, seq: int) -> bytes:
    pkt = (Ether(src=src_mac, dst=dst_mac) / IPv6(src=str(src), dst=str(dst), hlim=64)
           / ICMPv6EchoRequest(id=ident, seq=seq & 0xFFFF))
    return bytes(pkt)


def source_policy_failed(src_mac: str, src: IPv6Address, dst_mac: str, offending: bytes) -> bytes:
    """ICMPv6 1/5 back to the sender of ``offending`` (an Ethernet frame), quoting as much as fits 1280."""
    ip = Ether(offending).getlayer(IPv6)
    if ip is None:
        raise ValueError("source_policy_failed() needs an IPv6 packet to quote")
    quoted = bytes(ip)[: MIN_MTU - 48]
    pkt = (Ether(src=src_mac, dst=dst_mac) / IPv6(src=str(src), dst=ip.src, hlim=255)
           / ICMPv6DestUnreach(code=SOURCE_POLICY_FAILED) / quoted)
    return bytes(pkt)
