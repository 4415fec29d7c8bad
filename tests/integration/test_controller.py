"""Issue 3 on RFC 4177 Figure 1 with nptv6: rewriting, checksums, failover, security, controller restart."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import pytest

from multi6lab.controller.policy import desired
from multi6lab.lab.lifecycle import Lab
from multi6lab.lab.resources import VSWITCHD_PID
from multi6lab.topologies import loader
from multi6lab.topologies.npt import Translator
from tests.integration.helpers import (
    PROBE,
    PY,
    Capture,
    craft,
    events,
    nft_counter,
    ovs_flows,
    paced,
    topology,
    udp_datagrams,
    udp_exchange,
    wait_datagrams,
    wait_until,
)

pytestmark = pytest.mark.integration
R = "3fff:ff:100::2"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(loader.load(topology("figure1")), tmp_path) as lab:
        yield lab


def locator(lab: Lab, exit_name: str) -> str:
    sp = lab.plan.sites[0]
    return str(sp.hosts[0].locators[exit_name])


def rfc6296(address: str, inside: IPv6Network, outside: IPv6Network) -> str:
    """RFC 6296 section 3.2, written here apart from controller.npt so the test checks it independently:
    replace the /48 prefix and fix up word 3 so the one's-complement sum of the address does not change."""
    def fold(x: int) -> int:
        while x > 0xFFFF:
            x = (x & 0xFFFF) + (x >> 16)
        return x

    assert inside.prefixlen == outside.prefixlen == 48
    words = [int.from_bytes(IPv6Address(address).packed[i:i + 2], "big") for i in range(0, 16, 2)]
    new = [int.from_bytes(outside.network_address.packed[i:i + 2], "big") for i in range(0, 6, 2)] + words[3:]
    delta = fold(sum(words[:3]) + sum(0xFFFF - w for w in new[:3]))  # old prefix minus new prefix, one's complement
    new[3] = fold(new[3] + delta)
    if new[3] == 0xFFFF:
        new[3] = 0
    return str(IPv6Address(b"".join(w.to_bytes(2, "big") for w in new)))


def test_r_sees_the_primary_locator_with_correct_checksums(lab: Lab) -> None:
    from scapy.layers.inet import TCP, UDP
    from scapy.layers.inet6 import IPv6

    with Capture(lab, "r", "r-eth0", "ip6 and (udp port 5001 or tcp port 5002)", "nptv6-checksums") as cap, \
            Capture(lab, "h1", "h1-eth0", "ip6 and udp port 5001", "nptv6-checksums-inside") as inside:
        got = udp_exchange(lab, "h1", "r", R, count=20)
        inside.wait_for(20)
        server = lab.popen("r", [PY, "-c", "import socket; s=socket.create_server(('::', 5002),"
                                           " family=socket.AF_INET6); c,_=s.accept(); c.sendall(c.recv(100))"])
        lab.wait_bound("r", 5002, "tcp")
        reply = lab.cmd("h1", f"{PY} -c \"import socket; c=socket.create_connection(('{R}', 5002), timeout=5);"
                              " c.sendall(b'ping'); print(c.recv(100))\"")
        server.wait(10)
        cap.wait_for(20 + 6)  # 20 datagrams, and the TCP session's handshake, data and close
    assert {g["source"] for g in got} == {locator(lab, "exa")} and len(got) == 20
    assert "b'ping'" in reply  # a TCP session through the rewrite: both checksums accepted by the kernels
    pkts = [p for p in cap.packets() if p.haslayer(IPv6) and p[IPv6].src == locator(lab, "exa")]
    assert len(pkts) >= 23 and any(p.haslayer(TCP) for p in pkts)
    for p in pkts:
        layer = p[UDP] if p.haslayer(UDP) else p[TCP]
        wire = layer.chksum
        del layer.chksum
        assert p.__class__(bytes(p))[layer.__class__].chksum == wire  # recomputed by scapy == on the wire
    # Neutrality itself: each datagram leaves h1 and reaches r with the same checksum bytes (Open vSwitch
    # would have to change them for any mapping that is not checksum-neutral), and the locator it carries is
    # what an independent RFC 6296 computation gives for h1's identity.
    sp = lab.plan.sites[0]
    ident = str(sp.hosts[0].addresses["identity"])
    assert sp.site.identity is not None
    assert locator(lab, "exa") == rfc6296(ident, sp.site.identity, sp.exit("exa").delegation)
    before = {bytes(p[UDP].payload)[:8]: bytes(p[UDP])[6:8] for p in inside.packets() if p.haslayer(UDP)
              and p[IPv6].src == ident}
    after = {bytes(p[UDP].payload)[:8]: bytes(p[UDP])[6:8] for p in pkts if p.haslayer(UDP)}
    assert len(before) == 20 and before == after


def test_locator_agrees_with_linux_snpt(lab: Lab) -> None:
    """Our RFC 6296 mapping and ip6tables SNPT give the same locator, for /48, /56 and /64 prefixes."""
    cases = [("fd01:1:1::/48", "2001:db8:100::/48", ["fd01:1:1:1::10", "fd01:1:1:abcd::1", "fd01:1:1:0:ffff::9"]),
             ("fd02:0:0:1200::/56", "3fff:e:0:3400::/56", ["fd02:0:0:1201::5", "fd02:0:0:12ff:1::1"]),
             ("fd03:0:0:7::/64", "3fff:f:0:9::/64", ["fd03:0:0:7:ffff:1:2:3", "fd03:0:0:7::42"])]
    for inside, outside, addrs in cases:
        lab.cmd("r", f"ip6tables -t mangle -A POSTROUTING -o r-eth0 -s {inside} -j SNPT "
                     f"--src-pfx {inside} --dst-pfx {outside}")
        for a in addrs:
            lab.cmd("r", f"ip -6 addr add {a}/128 dev r-eth0 nodad")
    try:
        with Capture(lab, "r", "r-eth0", "ip6 and udp dst port 7777", "snpt") as cap:
            for _, _, addrs in cases:
                for a in addrs:
                    lab.cmd("r", f"{PY} -c \"import socket; s=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM);"
                                 f" s.bind(('{a}', 0)); s.sendto(b'x', ('3fff:ff:100::1', 7777))\"")
            cap.wait_for(7)
        from scapy.layers.inet6 import IPv6

        seen = [IPv6Address(p[IPv6].src) for p in cap.packets()]
        ours = [Translator(IPv6Network(i), IPv6Network(o)).to_outside(IPv6Address(a)) for i, o, addrs in cases
                for a in addrs]
        assert seen == ours
    finally:
        lab.cmd("r", "ip6tables -t mangle -F POSTROUTING")
        for _, _, addrs in cases:
            for a in addrs:
                lab.cmd("r", f"ip -6 addr del {a}/128 dev r-eth0")


def test_failing_exit_a_moves_to_b_locator_and_back(lab: Lab) -> None:
    t0 = time.monotonic()
    lab.cmd("ispa", "ip link set ispa-eth1 down")
    try:
        wait_until(lambda: events(lab, "path_dead", t0, exit="exa"), 5, "the controller to see exa dead")
        got = udp_exchange(lab, "h1", "r", R, count=20)
        assert {g["source"] for g in got} == {locator(lab, "exb")} and len(got) == 20
    finally:
        lab.cmd("ispa", "ip link set ispa-eth1 up")
    wait_until(lambda: events(lab, "path_alive", t0, exit="exa"), 10, "exa to come back")
    got = udp_exchange(lab, "h1", "r", R, count=10)
    assert {g["source"] for g in got} == {locator(lab, "exa")}


def test_silent_failure_in_the_isp_is_found_by_heartbeats(lab: Lab) -> None:
    t0 = time.monotonic()
    with silent(lab, "ispa"):
        wait_until(lambda: events(lab, "path_dead", t0, exit="exa", cause="heartbeat"), 5, "heartbeat detection")
        dead = events(lab, "path_dead", t0, exit="exa")[0]
        timeout = events(lab, "heartbeat_timeout", t0, exit="exa")[0]
        # Like BFD, never declared dead before 10 ms x 3 of silence (how much later is a benchmark's business).
        assert timeout["silent_ms"] >= 30 and dead["t"] >= timeout["t"]
        got = udp_exchange(lab, "h1", "r", R, count=20)
        assert {g["source"] for g in got} == {locator(lab, "exb")}
    wait_until(lambda: events(lab, "path_alive", t0, exit="exa"), 10, "exa to recover")


@contextlib.contextmanager
def silent(lab: Lab, isp: str) -> Iterator[None]:
    """``isp`` silently drops everything it would forward (a blackhole the carrier does not show)."""
    out = lab.cmd(isp, "nft add table ip6 silent && "
                       "nft add chain ip6 silent blackhole '{ type filter hook forward priority -10; }' && "
                       "nft add rule ip6 silent blackhole drop && echo installed")
    assert "installed" in out, out
    try:
        yield
    finally:
        lab.cmd(isp, "nft delete table ip6 silent")


def test_forged_echo_replies_do_not_keep_a_blackholed_exit_alive(lab: Lab) -> None:
    """A host in ISP A, off the path the echoes take, answers them at 1 kHz (a thousand replies it made up,
    claiming to come from the beacon) while ISP A silently drops everything: exa still dies in its detection
    time, and every forged reply is counted."""
    ea = lab.plan.sites[0].exit("exa")
    hb = lab.plan.sites[0].site.heartbeat
    spoofer = paced(lab, "ispa", ea.isp_intf, f"(Ether(src={ea.isp_mac!r}, dst={ea.mac!r}) / IPv6(src="
                    f"{str(ea.beacon)!r}, dst={str(ea.address.ip)!r}) / ICMPv6EchoReply(id=0x6D36, seq=n, "
                    "data=n.to_bytes(16, 'big')) for n in range(1000))", 1000,
                    "from scapy.layers.inet6 import ICMPv6EchoReply, IPv6; from scapy.layers.l2 import Ether")
    t0 = time.monotonic()
    with silent(lab, "ispa"):
        wait_until(lambda: events(lab, "path_dead", t0, exit="exa", cause="heartbeat"), 5, "heartbeat detection")
        dead = events(lab, "path_dead", t0, exit="exa")[0]
        timeout = events(lab, "heartbeat_timeout", t0, exit="exa")[0]
        detect_ms = hb.interval_ms * hb.multiplier
        # Dead after detect_ms of silence since the last genuine reply, however many forged ones came meanwhile;
        # that silence began at most one interval before the fault (plus the lab's scheduling, bounded loosely).
        assert detect_ms <= timeout["silent_ms"] <= detect_ms + hb.interval_ms + 50, timeout
        assert (dead["t"] - t0) * 1000 <= detect_ms + 50 and spoofer.poll() is None  # still forging
        assert b"sent 1000" in spoofer.communicate(timeout=10)[0]
    wait_until(lambda: any(e.get("forged_echo_replies", 0) >= 1000 for e in events(lab, "counters", t0)), 10,
               "the controller to count 1000 forged echo replies")
    assert max(e.get("forged_echo_replies", 0) for e in events(lab, "counters")) == 1000  # and nothing genuine


def test_isp_filters_never_drop_rewritten_traffic(lab: Lab) -> None:
    udp_exchange(lab, "h1", "r", R, count=50)
    assert nft_counter(lab, "ispa", "bcp38_ispa_eth1") == 0
    assert nft_counter(lab, "ispb", "bcp38_ispb_eth1") == 0


def test_a_spoofed_source_from_a_host_is_dropped_at_the_site(lab: Lab) -> None:
    sp = lab.plan.sites[0]
    before_b = nft_counter(lab, "ispb", "bcp38_ispb_eth1")
    drop_rule = [f for f in ovs_flows("sw") if "priority=0" in f]
    assert drop_rule
    rcv = lab.popen("r", [*PROBE, "recv", "--port", "5998", "--duration", "2",
                          "--out", str(lab.workdir / "spoof.csv")])
    lab.wait_bound("r", 5998)
    for src in ("3fff:b:5::99", "3fff:a:5::1", "fd00:5:0:99::1", "fd00:6::99"):  # not an advertised subnet
        craft(lab, "h1", "h1-eth0", f"Ether(dst={sp.gateway_mac!r})/IPv6(src={src!r}, dst={R!r})"
                                    "/UDP(sport=5998, dport=5998)/(b'x'*64)")
    rcv.wait(10)
    assert (lab.workdir / "spoof.csv").read_text().splitlines()[1:] == []
    assert nft_counter(lab, "ispb", "bcp38_ispb_eth1") == before_b  # never reached an ISP


def test_any_address_of_the_site_subnets_is_translated_and_answered(tmp_path: Path) -> None:
    """RFC 6296 translates prefixes: an address the plan does not list (set by hand here, as a temporary
    address would be) and the host's SLAAC address in a second advertised subnet both leave translated, as an
    independent computation says, and are reached from outside; the router resolves the unlisted one."""
    text = topology("figure1").read_text().replace('identity: "fd00:5::/48"', 'identity: "fd00:5::/48"\n    subnets: 2')
    with Lab(loader.loads(text, str(topology("figure1"))), tmp_path) as lab:
        sp = lab.plan.sites[0]
        delegation = sp.exits[0].delegation
        new = "fd00:5::beef"
        lab.emulation.run("h1", f"ip -6 addr add {new}/64 dev h1-eth0 nodad")  # type: ignore[union-attr]
        second = str(sp.hosts[0].addresses["identity-1"])  # autoconfigured from the router's second prefix
        assert second.startswith("fd00:5:0:1:")
        for port, addr in enumerate((new, second), start=5101):
            outside = rfc6296(addr, sp.site.identity, delegation)
            got = udp_exchange(lab, "h1", "r", R, src=addr, count=20, rate=100, port=port)
            assert len(got) == 20 and {g["source"] for g in got} == {outside}, got[:2]
            back = udp_exchange(lab, "r", "h1", outside, count=50, rate=100, port=port + 100)
            assert sorted(int(g["seq"]) for g in back) == list(range(50)), addr  # the first one was held, not lost
        learned = events(lab, "neighbour_learned", address=new)
        assert len(learned) == 1 and learned[0]["held"] >= 1 and learned[0]["mac"] == sp.hosts[0].mac
        assert not events(lab, "neighbour_solicit", address=second)  # the plan's host: delivered by rule


@contextlib.contextmanager
def stream_to_r(lab: Lab, name: str, port: int, seconds: float, listen: float) -> Iterator[Path]:
    """A 1 kHz UDP stream from h1 to R for ``seconds``, already under way (500 probes arrived) when the body
    runs: what the body breaks happens mid-stream. On leaving, both ends have finished; yields R's log."""
    out = lab.workdir / f"{name}.csv"
    rcv = lab.popen("r", [*PROBE, "recv", "--port", str(port), "--duration", str(listen), "--out", str(out)])
    lab.wait_bound("r", port)
    before = udp_datagrams(lab, "r")
    snd = lab.popen("h1", [*PROBE, "send", "--dst", R, "--port", str(port), "--rate", "1000", "--duration",
                           str(seconds), "--out", str(lab.workdir / f"{name}-send.csv")])
    wait_datagrams(lab, "r", before, 500)
    yield out
    snd.wait(listen + 5)
    rcv.wait(listen + 5)


def test_controller_restart_keeps_traffic_flowing_and_reconciles(lab: Lab) -> None:
    t0 = time.monotonic()
    with stream_to_r(lab, "restart", 5997, seconds=4, listen=5) as out:
        lab.restart_controller()
        lab.wait_ready(since=t0)
    seqs = [int(line.split(",")[0]) for line in out.read_text().splitlines()[1:]]
    assert len(seqs) >= 3990, f"lost {4000 - len(seqs)} of 4000 packets across the restart"
    recon = events(lab, "rules_sent", t0, cause="reconcile")
    assert {e["dpid"] for e in recon} == {1, 2, 3} and all(e["stale"] == 0 for e in recon)
    want = desired(lab.plan, {})
    for sw in lab.plan.switches:
        assert len(ovs_flows(sw.name)) == len(want.for_dpid(sw.dpid or 0).rules)  # no duplicates, no stale


def test_a_controller_killed_with_sigkill_leaves_the_switches_forwarding_then_reconciles(lab: Lab) -> None:
    """OpenFlow fail-secure: with the controller gone, the switches keep the rules they hold. A new controller
    finds them and changes nothing (no stale entry, no duplicate); the probes count what was lost."""
    t0 = time.monotonic()
    with stream_to_r(lab, "sigkill", 5996, seconds=4, listen=6) as out:
        (site,) = lab.controllers.values()  # figure 1 has one managed site
        assert site.proc is not None
        site.proc.kill()  # SIGKILL: no goodbye to the switches
        site.proc.wait(5)
        dead = udp_datagrams(lab, "r")
        wait_datagrams(lab, "r", dead, 1000)  # a second of traffic with no controller at all
        lab.restart_controller()
        lab.wait_ready(since=t0)
    seqs = {int(line.split(",")[0]) for line in out.read_text().splitlines()[1:]}
    assert len(seqs) >= 3990, f"lost {4000 - len(seqs)} of 4000 probes across the kill and the restart"
    recon = events(lab, "rules_sent", t0, cause="reconcile")
    assert {e["dpid"] for e in recon} == {1, 2, 3} and all(e["stale"] == 0 for e in recon)


def test_ovs_vswitchd_restarted_mid_run_loses_its_rules_and_the_controller_puts_them_back(lab: Lab) -> None:
    """ovs-vswitchd ends (as in a crash: its flow tables go with it) and is started again, mid-stream. The
    bridges come back from OVSDB with no rules; each reconnects, the controller reconciles every rule and
    group, and the stream flows again. The machine's ovs-vswitchd is the one the project's set-up started."""
    with stream_to_r(lab, "vswitchd", 5995, seconds=10, listen=14) as out:
        old = int(VSWITCHD_PID.read_text())
        t_restart = time.monotonic()
        subprocess.run(["ovs-appctl", "-t", "ovs-vswitchd", "exit"], check=True, capture_output=True, timeout=30)
        wait_until(lambda: not Path(f"/proc/{old}").exists(), 10, "the old ovs-vswitchd to exit")
        subprocess.run(["/usr/share/openvswitch/scripts/ovs-ctl", "--no-ovsdb-server", "start",
                        "--system-id=random"], check=True, capture_output=True, timeout=60)
        wait_until(lambda: {1, 2, 3} <= lab.reconciled_since(t_restart), 30, "every switch to reconnect and be "
                   "reconciled")

        def exits_alive() -> bool:  # heartbeats through both exits again: no path left dead since the restart
            said = {e["exit"]: e["event"] for e in lab.events() if e["t"] >= t_restart
                    and e["event"] in ("path_dead", "path_alive")}
            return "path_dead" not in said.values()

        wait_until(exits_alive, 30, "heartbeats through both exits again")
        back = time.monotonic()
    rows = [line.split(",") for line in out.read_text().splitlines()[1:]]
    # Once everything is back (and 0.2 s for the reconcile's rules to land), the stream is whole again.
    after = sorted(int(r[0]) for r in rows if float(r[1]) >= back + 0.2)
    assert after and after[-1] - after[0] > 1000, "the restart took too long to leave a stream to check"
    assert len(after) >= 0.99 * (after[-1] - after[0] + 1), f"{len(after)} of {after[-1] - after[0] + 1} after"
    recon = events(lab, "rules_sent", t_restart, cause="reconcile")
    assert {e["dpid"] for e in recon} == {1, 2, 3}
    want = desired(lab.plan, {})
    for sw in lab.plan.switches:
        assert len(ovs_flows(sw.name)) == len(want.for_dpid(sw.dpid or 0).rules)
    print(f"ovs-vswitchd restart: {10_000 - len(rows)} of 10000 probes lost, back after {back - t_restart:.2f} s")


def test_malformed_packets_on_every_packet_in_path_leave_the_controller_working(lab: Lab) -> None:
    """Frames that match the controller's packet-in rules but carry garbage behind the matched fields:
    router and neighbour solicitations from a host, heartbeat replies and solicitations from the ISP side,
    truncated, with bogus options, extension headers or oversized padding. The controller must survive them
    and the site keep working."""
    sp = lab.plan.sites[0]
    exa, h1 = sp.exit("exa"), sp.hosts[0]
    junk = "[bytes([(i * 37 + k) % 256 for k in range(n)]) for i, n in enumerate([0, 1, 7, 40, 300, 1400] * 20)]"
    host = (f"[Ether(src='{h1.mac}', dst=d)/IPv6(src='fe80::99', dst=a)/m/Raw(j) for j in {junk} "
            f"for d, a, m in [('33:33:00:00:00:02', 'ff02::2', ICMPv6ND_RS()), "
            f"('{sp.gateway_mac}', 'fe80::1', ICMPv6ND_NS(tgt='fe80::1')), "
            f"('{sp.gateway_mac}', 'fe80::1', IPv6ExtHdrHopByHop()/ICMPv6ND_NS(tgt='fe80::1'))]]")
    isp = (f"[Ether(src='{exa.isp_mac}', dst='{exa.mac}')/IPv6(src='{exa.isp_address}', dst='{exa.address.ip}')"
           f"/m/Raw(j) for j in {junk} for m in [ICMPv6EchoReply(id=1), ICMPv6ND_NS(tgt='{exa.address.ip}'), "
           f"ICMPv6EchoRequest(), ICMPv6DestUnreach()/IPv6(dst='{R}')]]")
    craft(lab, "h1", "h1-eth0", host)
    craft(lab, "ispa", exa.isp_intf, isp)
    assert all(c.alive() for c in lab.controllers.values())  # raises, with the log's end, if it died
    lab.wait_steady()  # back to every exit usable and nothing changing (a flood may delay heartbeats meanwhile)
    assert len(udp_exchange(lab, "h1", "r", R, count=50)) == 50
