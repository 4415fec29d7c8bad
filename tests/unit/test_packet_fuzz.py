"""Malformed packets on every decoding path the controller's packet-in handler uses: none may raise.

The controller decodes whatever a switch sends it (heartbeat replies, locator-pair messages, ISP errors,
neighbour and router solicitations, stale-source packets); one exception there would stop a site's control
plane. A seeded fuzz mutates well-formed packets (truncation, flipped bytes, bogus extension headers,
oversized payloads, random bytes) and feeds each to every decoder.
"""

from __future__ import annotations

import random
from ipaddress import IPv6Address

from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NS,
    ICMPv6ND_RS,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import Ether

from multi6lab.controller import packets

ETH = Ether(src="02:6d:00:00:08:00", dst="02:6d:67:77:00:01")
IP = IPv6(src="fd00:5::1", dst="3fff:ff:100::2")
SEEDS = [
    bytes(ETH / IPv6(src="fe80::1", dst="ff02::1:ff00:1") / ICMPv6ND_NS(tgt="fe80::1")),
    bytes(ETH / IPv6(src="fe80::2", dst="ff02::2") / ICMPv6ND_RS()),
    bytes(ETH / IP / ICMPv6EchoReply(id=0x6D36, seq=1)),
    bytes(ETH / IP / ICMPv6EchoRequest(id=0x6D37, seq=1)),
    bytes(ETH / IP / ICMPv6DestUnreach(code=0) / IPv6(src="3fff:a:5::1", dst="3fff:ff:100::2") / UDP()),
    bytes(ETH / IP / UDP(sport=1, dport=5001) / (b"x" * 64)),
    bytes(ETH / IP / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / IPv6ExtHdrFragment() / ICMPv6EchoReply()),
    packets.pair_message("02:6d:00:00:08:00", "02:6d:67:77:00:01", packets.PairMessage(
        IPv6Address("3fff:c:1::1"), IPv6Address("3fff:a:1::1"), 77, True, (1, 2), (IPv6Address("3fff:d:1::1"),))),
]


def mutate(rng: random.Random, data: bytes) -> bytes:
    kind = rng.randrange(7)
    if kind == 0:  # truncated anywhere, headers included
        return data[: rng.randrange(len(data) + 1)]
    if kind == 1:  # flipped bytes
        b = bytearray(data)
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if kind == 2:  # a bogus next-header value right after the IPv6 header
        b = bytearray(data)
        if len(b) > 20:
            b[20] = rng.choice([0, 43, 44, 59, 60, 135, 255])
        return bytes(b)
    if kind == 3:  # a chain of extension headers in front of whatever follows
        chain = rng.choice([IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt(), IPv6ExtHdrRouting(), IPv6ExtHdrFragment()])
        return bytes(ETH / IP / chain / ICMPv6EchoReply()) + data[54:]
    if kind == 4:  # oversized
        return data + rng.randbytes(rng.choice([1500, 9000, 65000]))
    if kind == 5:  # garbage of the right type field
        return data[:12] + b"\x86\xdd" + rng.randbytes(rng.randrange(0, 80))
    return rng.randbytes(rng.randrange(0, 200))


def test_every_decoder_survives_malformed_packets() -> None:
    rng = random.Random(4177)
    kinds: dict[str, int] = {}
    for _ in range(2000):
        data = mutate(rng, rng.choice(SEEDS))
        assert isinstance(packets.is_echo_reply(data), bool)
        message = packets.read_pair_message(data)
        if message is not None:
            kinds["pair"] = kinds.get("pair", 0) + 1
            assert all(isinstance(a, IPv6Address) for a in (message.src, message.dst, *message.down))
        quote = packets.unreachable_quote(data)
        assert quote is None or all(isinstance(a, IPv6Address) for a in quote)
        parsed = packets.parse(data)
        kinds[parsed.kind] = kinds.get(parsed.kind, 0) + 1
        if parsed.kind == "ipv6":  # what a stale-source packet gets back: bounded by the IPv6 minimum MTU
            reply = packets.source_policy_failed("02:6d:67:77:00:01", IPv6Address("fe80::1"), parsed.eth_src, data)
            assert len(reply) <= 14 + packets.MIN_MTU
    # The fuzz reaches every outcome the handler distinguishes, malformed ones most of all.
    assert {"ns", "rs", "echo_reply", "ipv6", "other", "pair"} <= set(kinds) and kinds["other"] > 200
