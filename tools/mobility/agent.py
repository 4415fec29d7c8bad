"""The Mobile IPv6 agent that runs inside an emulated node: a mobile node (a host of a mobility site), the
home agent, or a correspondent. Plumbing only: the decisions are :mod:`multi6lab.mobility.binding`'s.

It reads Mobility Header messages from a raw socket (the kernel checks their checksum) and sends them as whole
IPv6 packets (inside an IPv6-in-IPv6 header where the decision says so). It is also the node's tunnel
(:class:`Tunnel`): this kernel has no ip6tnl and no Mobile IPv6, so IPv6-in-IPv6 (RFC 2473) is done here,
between a TUN device the bindings route into and a raw socket for protocol 41. A mobile node
watches its interface's addresses: a prefix the site router deprecated (preferred lifetime 0) is a care-of
address it no longer uses. Every decision's events go to a JSON-lines file stamped with the monotonic clock,
which the lab's other records share.

    python -m multi6lab.mobility.agent mobile-node --dev h1-eth0 --home H --home-agent A --key-file F \
        --prefixes P1,P2 --correspondents C [--route-optimisation] [--binding-lifetime S] --events out.jsonl
    python -m multi6lab.mobility.agent home-agent --dev ha-eth0 --address A --home PREFIX --keys F --events ...
    python -m multi6lab.mobility.agent correspondent --dev r-eth0 --address C [--binding-lifetime S] --events ...
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from types import FrameType
from typing import IO, Any

from scapy.layers.inet6 import IPv6, in6_chksum
from scapy.packet import Raw

from multi6lab.mobility import binding as b
from multi6lab.mobility import messages as mh
from multi6lab.mobility import tunnel
from multi6lab.topologies import shell
from multi6lab.vocabulary import Event

IPV6_CHECKSUM = 7
MONITOR_IDLE_S = 0.5  # how often a mobile node re-reads its addresses without a change notice
TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
BURST = 64  # packets moved per readiness of a tunnel descriptor before the loop looks at the others


class Tunnel:
    """RFC 2473 IPv6-in-IPv6 in userspace, both ways.

    Encapsulation: the bindings are routes into a TUN device (:data:`shell.TUNNEL_DEV`); a packet read from it
    gets an outer header to the tunnel end its destination is bound to (``ends``) from ``source``, and leaves
    by the agent's marked raw socket, past the bindings. Decapsulation: an IPv6-in-IPv6 packet to this node
    arrives on a raw socket for protocol 41 (which also keeps the kernel from answering it with a parameter
    problem); its inner packet is written to the TUN device, and the kernel takes it as arriving there:
    delivered when it is for this node, forwarded when not (the home agent, which forwards). The device is
    not persistent: it and its routes vanish with the agent."""

    def __init__(self, tx: socket.socket) -> None:
        self.tx = tx
        self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(self.fd, TUNSETIFF, struct.pack("16sH", shell.TUNNEL_DEV.encode(), IFF_TUN | IFF_NO_PI))
        self.rx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, tunnel.IPPROTO_IPV6)
        self.rx.setblocking(False)
        self.ends: dict[bytes, IPv6Address] = {}  # packed destination -> the tunnel end it goes to
        self.source: IPv6Address | None = None  # the outer source (a mobile node's: its care-of address)
        self.dropped = 0  # packets with no tunnel end (the device's own link-local chatter among them)

    def bind(self, dst: IPv6Address, end: IPv6Address | None) -> None:
        if end is None:
            self.ends.pop(dst.packed, None)
        else:
            self.ends[dst.packed] = end

    def encapsulate(self) -> None:
        for _ in range(BURST):
            try:
                packet = os.read(self.fd, 65535)
            except BlockingIOError:
                return
            dst = tunnel.destination(packet)
            end = self.ends.get(dst) if dst is not None else None
            if end is None or self.source is None:
                self.dropped += 1
                continue
            try:
                self.tx.sendto(tunnel.encapsulate(packet, self.source, end), (str(end), 0))
            except OSError:  # no route while an exit is down: the packet is lost, as on a wire
                self.dropped += 1

    def decapsulate(self) -> None:
        for _ in range(BURST):
            try:
                packet = tunnel.inner(self.rx.recv(65535))
            except BlockingIOError:
                return
            if packet is None:
                self.dropped += 1
                continue
            try:
                os.write(self.fd, packet)
            except OSError:
                self.dropped += 1


class Agent:
    """One role's loop: messages, address changes and timers in; actions out."""

    def __init__(self, dev: str, events: IO[str], node: str) -> None:
        self.dev, self.events, self.node = dev, events, node
        self.rx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, mh.IPPROTO_MH)
        self.rx.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, mh.CHECKSUM_OFFSET)
        self.tx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)  # whole packets
        self.tx.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, shell.AGENT_MARK)  # past the tunnels it keeps
        self.tunnel = Tunnel(self.tx)
        self.home: IPv6Address | None = None  # a mobile node's: the source its tunnels give unbound sockets
        self.table: int | None = None  # where its bindings go (None: the main table, the home agent's)
        self.ip([shell.tunnel_up()])

    def log(self, event: Event | str, **fields: Any) -> None:
        self.events.write(json.dumps({"t": time.monotonic(), "event": str(event), "node": self.node, **fields}) + "\n")
        self.events.flush()

    def carry_out(self, actions: Sequence[b.Action]) -> None:
        for a in actions:
            if isinstance(a, b.Send):
                self.send(a)
            elif isinstance(a, b.Bind):
                self.tunnel.bind(a.home, a.care_of)
                self.ip([shell.tunnel_route(a.home, self.table)])
            elif isinstance(a, b.Unbind):
                self.ip([shell.tunnel_route_del(a.home, self.table)])
                self.tunnel.bind(a.home, None)
            elif isinstance(a, b.Path):
                self.path(a)
            else:
                self.log(a.event, **a.fields)

    def path(self, p: b.Path) -> None:
        self.tunnel.source = p.care_of
        for peer, via in p.tunnels:
            if via is not None:
                self.tunnel.bind(peer, via)
        self.ip([shell.tunnel_route_del(peer, shell.BINDING_TABLE) if via is None else
                 shell.tunnel_route(peer, shell.BINDING_TABLE, src=self.home) for peer, via in p.tunnels])
        for peer, via in p.tunnels:
            if via is None:
                self.tunnel.bind(peer, None)
        self.log(Event.MOBILITY_PATH, care_of=str(p.care_of), tunnels={str(k): v and str(v) for k, v in p.tunnels})

    def send(self, s: b.Send) -> None:
        inner = IPv6(src=str(s.src), dst=str(s.dst), nh=mh.IPPROTO_MH, hlim=64)
        message = s.message[:mh.CHECKSUM_OFFSET] + in6_chksum(mh.IPPROTO_MH, inner, s.message).to_bytes(2, "big") \
            + s.message[mh.CHECKSUM_OFFSET + 2:]
        packet = bytes(inner / Raw(message))
        to = s.dst
        if s.tunnel is not None:
            packet = tunnel.encapsulate(packet, s.outer or s.src, s.tunnel)
            to = s.tunnel
        try:
            self.tx.sendto(packet, (str(to), 0))
        except OSError as exc:  # no route while an exit is down: the decision's retransmission covers it
            self.log(Event.MOBILITY_ERROR, to=str(to), error=exc.strerror)

    def ip(self, commands: list[str]) -> None:
        """Route changes, in one process; a route to delete that is already gone is no error."""
        command = shell.ip_batch(commands)
        r = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
        errors = [e for e in r.stderr.splitlines() if e and "No such process" not in e and "Command failed" not in e]
        if errors:
            self.log(Event.MOBILITY_ERROR, command=command, error="; ".join(errors))

    def receive(self) -> tuple[bytes, IPv6Address] | None:
        try:
            data, addr = self.rx.recvfrom(2048)
        except OSError:
            return None
        return data, IPv6Address(addr[0].split("%")[0])

    def loop(self, on_message: Callable[[bytes, IPv6Address, float], list[b.Action]],
             on_timer: Callable[[float], list[b.Action]], deadline: Callable[[], float | None],
             extra: Sequence[Any] = (), on_extra: Callable[[float], list[b.Action]] | None = None) -> None:
        while not STOP:
            d = deadline()
            now = time.monotonic()
            wait = MONITOR_IDLE_S if d is None else max(0.0, min(MONITOR_IDLE_S, d - now))
            try:
                ready, _, _ = select.select([self.rx, self.tunnel.fd, self.tunnel.rx, *extra], [], [], wait)
            except InterruptedError:
                continue
            if self.tunnel.fd in ready:
                self.tunnel.encapsulate()
            if self.tunnel.rx in ready:
                self.tunnel.decapsulate()
            now = time.monotonic()
            if self.rx in ready and (got := self.receive()) is not None:
                self.carry_out(on_message(got[0], got[1], now))
            if on_extra is not None and ((extra and any(x in ready for x in extra)) or not ready):
                self.carry_out(on_extra(now))
            if (d := deadline()) is not None and d <= now:
                self.carry_out(on_timer(now))


def usable_addresses(dev: str, prefixes: Sequence[IPv6Network]) -> list[IPv6Address]:
    """The interface's global addresses that are not deprecated, in the order of ``prefixes`` (the site's
    exits, best first)."""
    out = subprocess.run(["ip", "-6", "-j", "addr", "show", "dev", dev, "scope", "global"], capture_output=True,
                         text=True, check=False).stdout
    return usable(out, prefixes)


def usable(ip_json: str, prefixes: Sequence[IPv6Network]) -> list[IPv6Address]:
    """:func:`usable_addresses` from ``ip -j addr``'s output: a deprecated address (preferred lifetime 0, the
    site router's word that its exit failed) or a tentative one is not usable."""
    found = []
    for link in json.loads(ip_json or "[]"):
        for a in link.get("addr_info", []):
            if "local" not in a or a.get("preferred_life_time", 1) == 0 or a.get("tentative") or a.get("deprecated"):
                continue  # (ip's filter by scope leaves an empty entry behind)
            found.append(IPv6Address(a["local"]))
    return [a for p in prefixes for a in found if a in p]


STOP = False


def _stop(_sig: int, _frame: FrameType | None) -> None:
    global STOP
    STOP = True


def mobile_node(a: argparse.Namespace, agent: Agent) -> None:
    if a.home_agent and not a.key_file:
        raise SystemExit("mobility agent (mobile-node): --home-agent needs --key-file")
    key = bytes.fromhex(Path(a.key_file).read_text().strip()) if a.key_file else b""
    lifetimes = b.RFC_6275.scaled(a.binding_lifetime)
    mn = b.MobileNode(IPv6Address(a.home), IPv6Address(a.home_agent) if a.home_agent else None, key,
                      [IPv6Address(c) for c in a.correspondents.split(",") if c], a.route_optimisation,
                      lambda: os.urandom(8), lifetimes=lifetimes)
    prefixes = [IPv6Network(p) for p in a.prefixes.split(",")]
    agent.home = mn.home
    monitor = subprocess.Popen(["ip", "-6", "monitor", "address", "dev", agent.dev], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    assert monitor.stdout is not None
    os.set_blocking(monitor.stdout.fileno(), False)
    seen: list[IPv6Address] | None = None

    def addresses(now: float) -> list[b.Action]:
        nonlocal seen
        if monitor.stdout is not None:
            while monitor.stdout.read1(65536):  # drain the notices; the truth is read below
                pass
        usable = usable_addresses(agent.dev, prefixes)
        if usable == seen:
            return []
        seen = usable
        return mn.addresses(usable, now)

    agent.log(Event.MOBILITY_START, role="mobile_node", home=a.home, home_agent=a.home_agent,
              route_optimisation=a.route_optimisation, binding_lifetime_s=a.binding_lifetime)
    try:
        agent.carry_out(addresses(time.monotonic()))
        agent.loop(mn.on_message, mn.on_timer, mn.next_deadline, [monitor.stdout], addresses)
    finally:
        monitor.terminate()
        monitor.wait()


def home_agent(a: argparse.Namespace, agent: Agent) -> None:
    keys = {IPv6Address(k): bytes.fromhex(v) for k, v in json.loads(Path(a.keys).read_text()).items()}
    ha = b.HomeAgent(IPv6Address(a.address), IPv6Network(a.home), keys)
    agent.tunnel.source = ha.address
    agent.log(Event.MOBILITY_START, role="home_agent", home=a.home)
    agent.loop(ha.on_update, ha.expire, ha.next_deadline)


def correspondent(a: argparse.Namespace, agent: Agent) -> None:
    cn = b.Correspondent(IPv6Address(a.address), os.urandom(20), time.monotonic(),
                         b.RFC_6275.scaled(a.binding_lifetime))
    agent.table = shell.BINDING_TABLE  # its own answers (a home test above all) must not take a binding
    agent.tunnel.source = IPv6Address(a.address)
    agent.log(Event.MOBILITY_START, role="correspondent", binding_lifetime_s=a.binding_lifetime)
    agent.loop(cn.on_message, cn.expire, cn.next_deadline)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m multi6lab.mobility.agent", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="role", required=True)
    for name in ("mobile-node", "home-agent", "correspondent"):
        r = sub.add_parser(name)
        r.add_argument("--dev", required=True, help="the node's interface")
        r.add_argument("--events", type=Path, required=True, help="JSON-lines file to append events to")
        r.add_argument("--node", default="", help="the node's name, in every event")
        if name == "mobile-node":
            r.add_argument("--home", required=True, help="the home address")
            r.add_argument("--home-agent", help="the home agent's address (none: section 5.2's own case)")
            r.add_argument("--key-file", help="the key shared with the home agent (hex); needed with one")
            r.add_argument("--prefixes", required=True, help="the site's exit /64s, best first, comma-separated")
            r.add_argument("--correspondents", default="", help="addresses, comma-separated")
            r.add_argument("--route-optimisation", action="store_true")
        if name == "home-agent":
            r.add_argument("--address", required=True, help="the agent's own address (in the home prefix)")
            r.add_argument("--home", required=True, help="the home prefix")
            r.add_argument("--keys", required=True, help="JSON: home address -> key (hex)")
        if name == "correspondent":
            r.add_argument("--address", required=True)
        if name != "home-agent":
            r.add_argument("--binding-lifetime", type=int, default=420, help="seconds (default 420, RFC 6275)")
    a = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # started with SIGINT ignored (nohup, &): installed here regardless
    with a.events.open("a") as events:
        agent = Agent(a.dev, events, a.node)
        run = {"mobile-node": mobile_node, "home-agent": home_agent, "correspondent": correspondent}[a.role]
        try:
            run(a, agent)
        except OSError as exc:
            print(f"mobility agent ({a.role}): {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
