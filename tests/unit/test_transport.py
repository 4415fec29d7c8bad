"""The transport trigger: outbound TCP segments seen at the fabric, and what they say about the path."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from multi6lab.controller import packets
from multi6lab.controller.liveness import Liveness
from multi6lab.controller.policy import desired, exit_toward
from multi6lab.controller.transport import TCP_FIN, TCP_SYN, RetransmitWatch
from multi6lab.topologies import loader
from multi6lab.topologies.plan import Plan, build
from tests.unit.fakenet import FakeNet

ROOT = Path(__file__).resolve().parents[2]
R = "3fff:ff:100::2"
FLOW = ("fd00:5::1", R, 40000, 5001)
ACK = 0x10
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def fig1(triggers: str = "[link, transport]") -> Plan:
    text = (ROOT / "topologies" / "figure1.yaml").read_text().replace("[link, heartbeat]", triggers)
    return build(loader.loads(text))


def test_new_data_is_no_evidence_and_one_repeat_is_not_enough() -> None:
    w = RetransmitWatch()
    assert not w.segment(FLOW, 1000, 100, ACK)
    assert not w.segment(FLOW, 1100, 100, ACK)
    assert not w.segment(FLOW, 1100, 100, ACK)  # fast retransmit (or a tail-loss probe): a packet was lost
    assert not w.segment(FLOW, 1200, 100, ACK)  # and the flow moved on
    assert not w.segment(FLOW, 1200, 100, ACK)


def test_the_same_segment_sent_twice_again_with_nothing_new_is_a_stalled_path() -> None:
    w = RetransmitWatch()
    w.segment(FLOW, 1000, 100, ACK)
    w.segment(FLOW, 1100, 100, ACK)
    assert not w.segment(FLOW, 1100, 100, ACK)  # tail-loss probe
    assert w.segment(FLOW, 1100, 100, ACK)  # retransmission timeout: nothing came back
    assert not w.segment(FLOW, 1100, 100, ACK)  # the next verdict needs as much evidence again
    assert w.segment(FLOW, 1100, 100, ACK)


def test_repeats_of_different_segments_do_not_add_up() -> None:
    w = RetransmitWatch()
    w.segment(FLOW, 1000, 100, ACK)
    w.segment(FLOW, 1100, 100, ACK)
    assert not w.segment(FLOW, 1100, 100, ACK)  # the probe repeats the last segment
    assert not w.segment(FLOW, 1000, 100, ACK)  # recovery repeats the first unacknowledged: a loss burst
    assert w.segment(FLOW, 1000, 100, ACK)


def test_a_connection_attempt_that_keeps_repeating_its_syn_is_stalled() -> None:
    w = RetransmitWatch()
    assert not w.segment(FLOW, 7, 0, TCP_SYN)
    assert not w.segment(FLOW, 7, 0, TCP_SYN)
    assert w.segment(FLOW, 7, 0, TCP_SYN)


def test_pure_acks_and_window_updates_repeat_nothing() -> None:
    w = RetransmitWatch()
    w.segment(FLOW, 500, 0, ACK)
    assert not any(w.segment(FLOW, 500, 0, ACK) for _ in range(5))


def test_a_fin_counts_as_one_sequence_number() -> None:
    w = RetransmitWatch()
    w.segment(FLOW, 500, 0, TCP_FIN | ACK)
    assert not w.segment(FLOW, 500, 0, TCP_FIN | ACK)
    assert w.segment(FLOW, 500, 0, TCP_FIN | ACK)


def test_sequence_numbers_wrap() -> None:
    w = RetransmitWatch()
    w.segment(FLOW, 2**32 - 50, 100, ACK)  # ends at 50, past the wrap
    assert not w.segment(FLOW, 50, 100, ACK)  # new data after the wrap
    assert not w.segment(FLOW, 2**32 - 50, 100, ACK)  # an old segment from before it: a repeat
    assert w.segment(FLOW, 2**32 - 50, 100, ACK)


def test_flows_are_separate_forgotten_by_destination_and_bounded() -> None:
    w = RetransmitWatch(max_flows=2)
    other = ("fd00:5::1", "3fff:ff:200::2", 40000, 5001)
    for f in (FLOW, other):
        w.segment(f, 1, 10, ACK)
        w.segment(f, 1, 10, ACK)
    w.forget(R)
    assert not w.segment(FLOW, 1, 10, ACK)  # FLOW starts afresh: this is its first segment again
    assert w.segment(other, 1, 10, ACK)
    w.segment(("fd00:5::2", R, 1, 2), 1, 10, ACK)  # a third flow: the least recently seen (FLOW) goes
    assert list(w.flows) == [other, ("fd00:5::2", R, 1, 2)]


def test_read_tcp_takes_the_header_from_a_frame_and_refuses_others() -> None:
    frame = bytes(ETH / IPv6(src="fd00:5::1", dst=R) / TCP(sport=40000, dport=5001, seq=1234, flags="PA")
                  / (b"x" * 37))
    t = packets.read_tcp(frame)
    assert t is not None and (str(t.src), str(t.dst), t.sport, t.dport) == FLOW
    assert (t.seq, t.length, t.flags) == (1234, 37, 0x18)
    assert packets.read_tcp(frame[:60]) is None  # cut inside the header
    assert packets.read_tcp(bytes(ETH / IPv6(src="fd00:5::1", dst=R) / (b"\x00" * 40))) is None  # not TCP
    bad = bytearray(frame)
    bad[14 + 40 + 12] = 0x40  # a data offset of 4 words, shorter than any TCP header
    assert packets.read_tcp(bytes(bad)) is None


def test_the_fabric_copies_tcp_to_the_controller_and_forwards_it_all_the_same() -> None:
    p = fig1()
    h1 = str(p.sites[0].hosts[0].addresses["identity"])
    net = FakeNet(p, desired(p, {}))
    out = net.send("h1", h1, R, ip_proto=6)
    assert out.node == "ispa" and net.copies == ["sw"]
    assert net.send("h1", h1, R).node == "ispa" and net.copies == ["sw"]  # UDP: not copied
    plain = FakeNet(fig1("[link]"), desired(fig1("[link]"), {}))
    assert plain.send("h1", h1, R, ip_proto=6).node == "ispa" and plain.copies == []


def test_a_stalled_destination_leaves_through_the_next_exit_for_every_address_of_the_site() -> None:
    p = fig1()
    sp = p.sites[0]
    live = list(sp.exits)
    assert exit_toward(sp, live, {}, R) is sp.exits[0]
    lv = Liveness(p, now=0.0)
    ev = lv.transport_stalled("exa", R, now=1.0)
    assert [e["event"] for e in ev] == ["dest_dead"] and ev[0]["cause"] == "transport"
    avoid = lv.avoided(1.0)
    assert exit_toward(sp, live, avoid, R) is sp.exits[1]
    assert exit_toward(sp, live, {"exa": {R}, "exb": {R}}, R) is sp.exits[0]  # nowhere better: stay
    assert exit_toward(sp, [], avoid, R) is None
    net = FakeNet(p, desired(p, {}, avoid=avoid))
    unlisted = str(sp.hosts[0].addresses["identity"]).rsplit(":", 1)[0] + ":beef"  # not in the plan
    for src in (str(sp.hosts[0].addresses["identity"]), unlisted):
        assert net.send("h1", src, R, ip_proto=6).node == "ispb"  # and still copied: the next exit is watched too
    assert net.copies == ["sw", "sw"]
    assert net.send("h1", unlisted, "3fff:ff:1::9").node == "ispa"
    assert Liveness(fig1("[link]"), now=0.0).transport_stalled("exa", R, now=1.0) == []
