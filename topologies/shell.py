"""Every shell command multi6lab runs in a node or on the host, rendered from data in one place (pure).

The plan and the faults hold what to configure as data (routes, addresses, sysctls, filters, links to set
down); this module turns that into command lines, quoting every value with :func:`shlex.quote`, so a name or
prefix can never change what a command does. Commands run through a node's shell (Mininet's ``cmd``) or
``subprocess`` with ``shell=True``; each function returns one line, or a list to run in order.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from ipaddress import IPv6Address, IPv6Interface, IPv6Network
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the plan imports this module to render itself; only its types are needed here
    from multi6lab.topologies.plan import NodeConfig, Route, SourceFilter

BCP38_TABLE = "multi6lab"
IMPAIR_TABLE = "multi6lab_impair"
MPTCP_LIMITS = {"subflow": 4, "add_addr_accepted": 4}


def q(value: object) -> str:
    return shlex.quote(str(value))


def sysctl(key: str, value: object) -> str:
    return f"sysctl -qw {q(f'{key}={value}')}"


def offload_off(intf: str, rx: bool = False) -> str:
    """veth transmit checksum offload leaves checksums unfinished on OVS's netdev datapath; receive offload
    off too when a capture must see real checksums."""
    return f"ethtool -K {q(intf)} {'rx off ' if rx else ''}tx off"


def addr_add(intf: str, address: IPv6Interface) -> str:
    return f"ip -6 addr add {q(address)} dev {q(intf)} nodad"


def route(r: Route, verb: str = "add") -> str:
    """``replace`` makes re-installing idempotent (Linux deletes routes through an interface set down)."""
    if r.unreachable:
        return f"ip -6 route {verb} unreachable {q(r.prefix)}"
    via = f" via {q(r.via)}" if r.via is not None else ""
    dev = f" dev {q(r.dev)}" if r.dev is not None else ""
    src = f" src {q(r.src)}" if r.src is not None else ""
    return f"ip -6 route {verb} {q(r.prefix)}{via}{dev}{src}"


def routes(rs: Iterable[Route], verb: str = "add") -> list[str]:
    return [route(r, verb) for r in rs]


def link_set(intf: str, up: bool) -> str:
    return f"ip link set {q(intf)} {'up' if up else 'down'}"


def links_set(intfs: list[str], up: bool) -> str:
    """Several interfaces up or down at one instant: one ``ip -batch`` process (an ``ip`` process per interface
    took milliseconds each, so an ISP with twenty customers lost its last link 100-200 ms after its first)."""
    if len(intfs) == 1:
        return link_set(intfs[0], up)
    lines = " ".join(q(f"link set dev {i} {'up' if up else 'down'}") for i in intfs)
    return f"printf '%s\\n' {lines} | ip -batch -"


def addrlabel(prefix: IPv6Network, dev: str, label: int) -> str:
    return f"ip addrlabel add prefix {q(prefix)} dev {q(dev)} label {int(label)}"


def nft(*statements: str) -> str:
    """One ``nft`` process applying ``statements`` atomically; the script is one quoted argument."""
    return f"nft {q('; '.join(statements))}"


def bcp38(filters: Iterable[SourceFilter]) -> list[str]:
    """nftables rules dropping (and counting) customer packets sourced outside the customer's prefixes."""
    fs = list(filters)
    if not fs:
        return []
    t = BCP38_TABLE
    out = [nft(f"add table ip6 {t}",
               f"add chain ip6 {t} forward {{ type filter hook forward priority 0; policy accept; }}")]
    for f in fs:
        allowed = ", ".join(str(p) for p in f.allowed)
        out.append(nft(f"add counter ip6 {t} {f.counter}",
                       f"add rule ip6 {t} forward iifname {f.intf} ip6 saddr != {{ {allowed} }} "
                       f"counter name {f.counter} drop"))
    return out


def loss(intf: str, loss_pct: float) -> list[str]:
    """Random loss in both directions of a router/host interface, for kernels without netem.

    ``numgen random mod 10000`` gives 0.01 % steps; the prerouting and postrouting hooks cover traffic that
    arrives on and leaves through the interface, whether routed or local.
    """
    threshold = round(loss_pct * 100)
    t = IMPAIR_TABLE
    return [nft(f"add table inet {t}",
                f"add chain inet {t} pre {{ type filter hook prerouting priority -300; }}",
                f"add chain inet {t} post {{ type filter hook postrouting priority 300; }}",
                f"add rule inet {t} pre iifname {intf} numgen random mod 10000 < {threshold} drop",
                f"add rule inet {t} post oifname {intf} numgen random mod 10000 < {threshold} drop")]


def netem(intf: str, spec: str, parent: str | None = None) -> str:
    where = f"parent {parent} handle 10:" if parent else "root"
    return f"tc qdisc add dev {q(intf)} {where} netem {spec}"


def netem_spec(delay_ms: float | None, jitter_ms: float | None, loss_pct: float | None) -> str:
    """netem's words for a link's impairment (its jitter uniform, netem's default without a distribution)."""
    spec = []
    if delay_ms or jitter_ms:
        spec.append(f"delay {delay_ms or 0:g}ms" + (f" {jitter_ms:g}ms" if jitter_ms else ""))
    if loss_pct:
        spec.append(f"loss {loss_pct:g}%")
    return " ".join(spec)


def delay_rule(intf: str, way: str, queue: int) -> str:
    """Hand every IPv6 packet leaving through (``out``) or arriving on (``in``) ``intf`` to netfilter queue
    ``queue``, where the delay line's daemon holds it until it is due. No bypass: with the daemon gone the
    packets are dropped, never passed on undelayed."""
    chain, flag = ("POSTROUTING", "-o") if way == "out" else ("PREROUTING", "-i")
    return f"ip6tables -w -t mangle -A {chain} {flag} {q(intf)} -j NFQUEUE --queue-num {int(queue)}"


NETEM_PROBE = "m6lnetem"  # the veth pair a netem probe makes for itself, in the node it asks about


def netem_probe() -> str:
    """Succeeds only where the kernel has the netem qdisc: a zero delay added on a veth made and removed for the
    question. Not on a lab interface: one with a bandwidth already has a root qdisc (tbf), so adding another
    fails on a kernel that has netem (found in the Mininet VM, where the lab then fell back to its delay line)."""
    return (f"ip link add name {NETEM_PROBE} type veth peer name {NETEM_PROBE}p && "
            f"{{ tc qdisc add dev {NETEM_PROBE} root netem delay 0ms; ok=$?; ip link del {NETEM_PROBE}; "
            "[ $ok -eq 0 ]; }")


def addresses(dev: str) -> str:
    return f"ip -6 addr show dev {q(dev)}"


def route_show(prefix: IPv6Network) -> str:
    """The kernel's route for exactly ``prefix`` (what packets use)."""
    return f"ip -6 route show exact {q(prefix)}"


def listening(port: int, proto: str) -> str:
    """Sockets bound to ``port`` (``udp`` or ``tcp``), no header."""
    return f"ss -Hln{'u' if proto == 'udp' else 't'} {q(f'sport = :{int(port)}')}"


def argv(words: Iterable[str]) -> str:
    """A program and its arguments as one shell line, each word quoted."""
    return shlex.join(list(words))


def mptcp_limits() -> str:
    return "ip mptcp limits set " + " ".join(f"{k} {v}" for k, v in MPTCP_LIMITS.items())


def mptcp_endpoints(dev: str, addresses: Iterable[IPv6Address]) -> list[str]:
    return ["ip mptcp endpoint flush",
            *(f"ip mptcp endpoint add {q(a)} dev {q(dev)} subflow" for a in addresses)]


TUNNEL_DEV = "m6tun"  # mobility: the agent's TUN device, where packets enter and leave its tunnels
TUNNEL_MTU = 1460  # a 1500-byte link less the 40-byte outer header
BINDING_TABLE = 200  # mobility: where a mobile node's or correspondent's agent puts its tunnels
AGENT_MARK = 0x6d6  # the agent's own packets carry this mark, so its tunnels never apply to them


def tunnel_up() -> str:
    return f"ip link set {TUNNEL_DEV} mtu {TUNNEL_MTU} up"


def binding_rules() -> list[str]:
    """Every packet but the agent's own looks at the tunnels first. By destination, not by source: a socket
    that did not bind an address gets its source from the route the kernel finds for the destination alone
    (so a rule on the home address as source would never apply to it); the route's ``src`` gives it."""
    return [f"ip -6 rule add pref 20 not fwmark {AGENT_MARK} lookup {BINDING_TABLE}"]


def tunnel_route(dst: IPv6Address, table: int | None = None, src: IPv6Address | None = None) -> str:
    """Packets to ``dst`` go into the agent's tunnel device (which end they tunnel to is the agent's to know),
    from ``src`` unless the socket chose."""
    where = f" table {int(table)}" if table is not None else ""
    source = f" src {q(src)}" if src is not None else ""
    return f"ip route replace {q(dst)}/128 dev {TUNNEL_DEV}{source}{where}"


def tunnel_route_del(dst: IPv6Address, table: int | None = None) -> str:
    where = f" table {int(table)}" if table is not None else ""
    return f"ip route del {q(dst)}/128{where}"


def ip_batch(commands: Iterable[str]) -> str:
    """``ip`` commands (each ``ip ...`` without global options) run by one ``ip -batch`` process, going on past
    a failed one (a route to delete that is not there): one process instead of one per command, which under
    load took tens of milliseconds each."""
    lines = " ".join(q(c.removeprefix("ip ")) for c in commands)
    return f"printf '%s\\n' {lines} | ip -force -batch -"


def configure(c: NodeConfig) -> list[str]:
    """What configures a host or router once its links exist, in order."""
    out = [*(sysctl(k, v) for k, v in c.sysctls), *(offload_off(i) for i in c.offload_off),
           *(addr_add(i, a) for i, a in c.addresses), *(addr_add("lo", a) for a in c.loopback),
           *routes(c.routes), *bcp38(c.filters), *(addrlabel(lb.prefix, lb.dev, lb.label) for lb in c.labels)]
    if c.bindings:
        out += binding_rules()
    return out


RESOLVE_DEADLINE_S = 30  # a link that fails fails here; a working one answers within a few tries


def resolve(intf: str, peer: IPv6Address) -> str:
    """Echoes to a link peer until one is answered: both ends resolve each other, and a link that does not work
    fails here. One ``ping -c1`` is not enough however long its deadline: when neighbour discovery gives up
    (three solicitations unanswered, which on a link with 20 % loss each way happens about once in twenty:
    0.36 ** 3), the kernel reports the echo unreachable and ping counts it as its one answer and exits. So
    ping again until one echo is answered or the deadline passes."""
    once = shlex.join(["ping", "-6", "-q", "-n", "-c1", "-i0.2", "-w5", "-I", intf, str(peer)])
    return f"timeout {RESOLVE_DEADLINE_S} sh -c {q(f'until {once} >/dev/null; do sleep 0.1; done')}"


def reach(peer: IPv6Address) -> str:
    """Echoes to ``peer`` until one is answered (a first contact whose first packets may wait for a lookup)."""
    once = shlex.join(["ping", "-6", "-q", "-n", "-c1", "-W1", str(peer)])
    return f"timeout {RESOLVE_DEADLINE_S} sh -c {q(f'until {once} >/dev/null; do sleep 0.1; done')}"


def when_ready(c: NodeConfig) -> list[str]:
    """What runs once hosts hold their autoconfigured addresses (MPTCP endpoints need them)."""
    out = [resolve(i, a) for i, a in c.neighbours]
    out += [mptcp_limits()] if c.mptcp else []
    if c.mptcp_endpoints is not None:
        # A lost subflow is declared stale after one RTO instead of four (halves the stall).
        out += [sysctl("net.mptcp.stale_loss_cnt", 1), *mptcp_endpoints(*c.mptcp_endpoints)]
    return out
