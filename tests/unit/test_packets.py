"""Packets the controller builds and parses (ND, RA, ICMPv6 1/5, heartbeats, locator-pair messages)."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv6Address as A
from ipaddress import IPv6Network as N

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6NDOptPrefixInfo,
    IPv6,
)
from scapy.layers.l2 import Ether

from multi6lab.controller import packets as P

GW = "02:6d:67:77:00:01"


def test_ns_is_parsed_and_answered() -> None:
    ns = bytes(Ether(src="02:00:00:00:00:09", dst="33:33:ff:00:00:01") / IPv6(src="fe80::9", dst="ff02::1:ff00:1")
               / ICMPv6ND_NS(tgt="fe80::1"))
    p = P.parse(ns)
    assert (p.kind, p.target, p.src) == ("ns", A("fe80::1"), A("fe80::9"))
    na = Ether(P.neighbor_advert(GW, A("fe80::1"), p.eth_src, p.src))
    assert na[ICMPv6ND_NA].tgt == "fe80::1" and na[ICMPv6ND_NA].R == 1 and na[ICMPv6ND_NA].S == 1
    assert na.dst == "02:00:00:00:00:09" and na[IPv6].hlim == 255


def test_the_router_solicits_an_address_and_reads_the_answer() -> None:
    """NPTv6's router side: an NS to the target's solicited-node group, and the host's NA parsed back."""
    ns = Ether(P.neighbor_solicit(GW, A("fe80::1"), A("fd00:5::12:beef")))
    assert ns.dst == "33:33:ff:12:be:ef" and ns[IPv6].dst == "ff02::1:ff12:beef" and ns[IPv6].hlim == 255
    assert ns[ICMPv6ND_NS].tgt == "fd00:5::12:beef" and ns.src == GW
    answer = bytes(Ether(src="02:6d:00:00:08:00", dst=GW) / IPv6(src="fd00:5::12:beef", dst="fe80::1", hlim=255)
                   / ICMPv6ND_NA(tgt="fd00:5::12:beef", S=1))
    p = P.parse(answer)
    assert (p.kind, p.target, p.eth_src, p.hop_limit) == ("na", A("fd00:5::12:beef"), "02:6d:00:00:08:00", 255)
    moved = Ether(P.readdressed(answer, GW, "02:00:00:00:00:07"))
    assert (moved.src, moved.dst) == (GW, "02:00:00:00:00:07") and bytes(moved)[12:] == answer[12:]


def test_ra_carries_lifetimes_per_prefix() -> None:
    ra = Ether(P.router_advert(GW, A("fe80::1"), [(N("3fff:a:5::/64"), 1800, 0), (N("3fff:b:5::/64"), 1800, 1800)]))
    assert ra[ICMPv6ND_RA].routerlifetime == 1800 and ra.dst == "33:33:00:00:00:01"
    pios = []
    layer = ra[ICMPv6NDOptPrefixInfo]
    while layer:
        pios.append((layer.prefix, layer.preferredlifetime))
        layer = layer.payload.getlayer(ICMPv6NDOptPrefixInfo)
    assert pios == [("3fff:a:5::", 0), ("3fff:b:5::", 1800)]  # A deprecated (RFC 8475), B preferred


def test_echo_reply_is_parsed_and_returns_the_echo_s_token() -> None:
    token = bytes(range(16))
    req = Ether(P.echo_request(GW, "02:00:00:00:00:02", A("3fff:a::2"), A("3fff:a:0:1::2"), 7, 70000, token))
    # Built by hand: scapy agrees on every field, the checksum included.
    again = Ether(src=req.src, dst=req.dst) / IPv6(src=req[IPv6].src, dst=req[IPv6].dst, hlim=64) / ICMPv6EchoRequest(
        id=7, seq=70000 & 0xFFFF, data=token)
    assert bytes(req) == bytes(again)
    rep = bytes(Ether(src=req.dst, dst=req.src) / IPv6(src=req[IPv6].dst, dst=req[IPv6].src)
                / ICMPv6EchoReply(id=7, seq=4464, data=req[ICMPv6EchoRequest].data))
    p = P.parse(rep)
    assert (p.kind, p.ident, p.seq) == ("echo_reply", 7, 70000 & 0xFFFF)
    assert P.is_echo_reply(rep) and not P.is_echo_reply(bytes(req)) and not P.is_echo_reply(b"\x00" * 10)
    # A heartbeat's reply is addressed to the exit itself; an echo reply to anyone else is a host's data.
    to = A(Ether(rep)[IPv6].dst)
    assert P.is_echo_reply(rep, to) and not P.is_echo_reply(rep, A("3fff:a:1::9"))
    assert P.echo_token(rep, to) == token and P.echo_token(rep, A("3fff:a:1::9")) is None
    assert P.echo_token(bytes(req), A("3fff:a:0:1::2")) is None  # a request is not a reply
    assert P.echo_token(rep[:-1], to) is None  # shorter than its IPv6 header says


def test_source_policy_failed_quotes_the_offending_packet() -> None:
    bad = bytes(Ether(src="02:00:00:00:00:09", dst=GW) / IPv6(src="3fff:a:5::9", dst="3fff:ff:100::2")
                / UDP(sport=4000, dport=5000) / (b"x" * 2000))
    err = Ether(P.source_policy_failed(GW, A("fe80::1"), "02:00:00:00:00:09", bad))
    assert err[ICMPv6DestUnreach].type == 1 and err[ICMPv6DestUnreach].code == 5
    assert err[IPv6].dst == "3fff:a:5::9" and err.dst == "02:00:00:00:00:09"
    assert len(bytes(err[IPv6])) <= 1280
    with pytest.raises(ValueError):
        P.source_policy_failed(GW, A("fe80::1"), "02:00:00:00:00:09", bytes(Ether() / b"junk"))


@pytest.mark.parametrize("data", [b"", b"\x00" * 5, bytes(Ether(type=0x86DD) / b"\x60\x00"), b"\xff" * 80])
def test_garbage_never_raises(data: bytes) -> None:
    assert P.parse(data).kind in ("other", "ipv6")


def test_the_packet_an_unreachable_quotes_is_read_source_and_destination() -> None:
    quoted = IPv6(src="3fff:a:5::9", dst="3fff:ff:100::2") / UDP(sport=1, dport=2)
    err = bytes(Ether(src="02:00:00:00:00:01", dst=GW) / IPv6(src="3fff:a::1", dst="3fff:a:5::9")
                / ICMPv6DestUnreach(code=0) / bytes(quoted))
    assert P.unreachable_quote(err) == (A("3fff:a:5::9"), A("3fff:ff:100::2"))  # the controller checks the source
    assert P.unreachable_quote(bytes(quoted)) is None
    assert P.unreachable_quote(err[:60]) is None  # a truncated quote is not a verdict


def test_a_locator_pair_message_round_trips_with_a_valid_udp_checksum() -> None:
    m = P.PairMessage(A("3fff:a:1::1"), A("3fff:c:1::1"), 0xDEADBEEF, True, (1, 2, 3),
                            (A("3fff:b:1::1"),))
    data = P.pair_message("02:00:00:00:00:01", "02:00:00:00:00:02", m)
    assert P.read_pair_message(data) == m
    pkt = Ether(data)
    assert pkt.src == "02:00:00:00:00:01" and pkt[IPv6].hlim == 64 and pkt[UDP].dport == P.PAIR_PORT
    sent = pkt[UDP].chksum
    del pkt[UDP].chksum  # scapy computes it afresh
    assert Ether(bytes(pkt))[UDP].chksum == sent


@pytest.mark.parametrize("damage", [
    lambda b: b[:-1],  # one report address short
    lambda b: b[:62] + b"M6LP" + b[66:],  # not our magic
    lambda b: b[:66] + b"\x02" + b[67:],  # a version we do not speak
    lambda b: b[:56] + b"\x00\x35" + b[58:],  # another UDP port
])
def test_anything_else_is_not_a_locator_pair_message(damage: Callable[[bytes], bytes]) -> None:
    m = P.PairMessage(A("3fff:a:1::1"), A("3fff:c:1::1"), 9, False, (), (A("::1"),))
    assert P.read_pair_message(damage(P.pair_message("02:00:00:00:00:01", "02:00:00:00:00:02", m))) is None
