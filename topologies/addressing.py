"""Address maths shared by the builder and the controller: MACs, SLAAC interface ids, per-site prefixes.

Everything is derived deterministically from the model, so the controller can know a host's address and MAC
without asking the network, and tests can predict them.
"""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Interface, IPv6Network

from multi6lab.topologies.model import HomeAgent, Site

GATEWAY_LL = IPv6Address("fe80::1")  # the site router's link-local address, answered by the controller


def mac(*octets: int) -> str:
    """A locally administered unicast MAC from four values below 256: 02:6d:a:b:c:d."""
    if len(octets) != 4 or any(not 0 <= o < 256 for o in octets):
        raise ValueError(f"mac() takes four octets, got {octets}")
    return "02:6d:" + ":".join(f"{o:02x}" for o in octets)


def intf_mac(node_index: int, port: int) -> str:
    return mac(0, node_index >> 8, node_index & 0xFF, port)


def gateway_mac(site_index: int) -> str:
    """The virtual MAC of a site's router (the fabric acting as the hosts' gateway)."""
    return mac(0x67, 0x77, 0, site_index)


def exit_mac(site_index: int, exit_index: int) -> str:
    """The MAC an exit uses toward its ISP (the ISP resolves the exit's link address to it)."""
    return mac(0x65, 0x78, site_index, exit_index)


def eui64(prefix: IPv6Network, mac_address: str) -> IPv6Address:
    """The SLAAC address a Linux host forms in ``prefix`` (addr_gen_mode eui64, RFC 4291 appendix A)."""
    if prefix.prefixlen != 64:
        raise ValueError(f"SLAAC needs a /64, got {prefix}")
    b = bytes(int(x, 16) for x in mac_address.split(":"))
    iid = bytes([b[0] ^ 0x02, b[1], b[2], 0xFF, 0xFE, b[3], b[4], b[5]])
    return IPv6Address(prefix.network_address.packed[:8] + iid)


def first64(prefix: IPv6Network) -> IPv6Network:
    """The /64 a site's hosts use inside a delegation or identity prefix (its subnet 0)."""
    return next(prefix.subnets(new_prefix=64)) if prefix.prefixlen < 64 else prefix


def host_prefixes(site: Site) -> dict[str, IPv6Network]:
    """The /64s the site router advertises to hosts, keyed by what they stand for.

    ``source-routing``: one per exit (key: exit name), so hosts hold a locator from every ISP (RFC 8678).
    ``nptv6``, ``id-loc``: the identity /64 (key: "identity") and, with ``subnets: n``, the next n-1 /64s of the
    identity prefix (keys "identity-1" ...); exits translate each to every ISP's locator /64.
    ``routing``: the PI /64 only (key: "pi"), numbered statically; BGP announces the PI prefix via every ISP.
    """
    if site.approach.profile.translates and site.identity is not None:
        # The loader keeps a translating identity at /48 or shorter, so every one of the (at most 256) fits.
        return {subnet_key(i): p for i, p in zip(range(site.subnets), site.identity.subnets(new_prefix=64),
                                                 strict=False)}
    if site.approach.profile.bgp and site.pi is not None:
        return {"pi": first64(site.pi)}
    return {e.name: first64(e.delegation) for e in site.exits}


def home_address(site: Site, home_agent: HomeAgent | None, host_mac: str) -> IPv6Address:
    """A mobility site's host's home address (RFC 6275): an interface identifier in the home agent's first /64,
    or without a home agent the host's address through its site's first exit (RFC 4177 section 5.2's case)."""
    if home_agent is not None:
        return eui64(first64(home_agent.home), host_mac)
    return eui64(first64(site.exits[0].delegation), host_mac)


def home_agent_address(home_agent: HomeAgent) -> IPv6Address:
    """The home agent's own address, in its home prefix (where mobile nodes send their binding updates)."""
    return first64(home_agent.home).network_address + 1


def subnet_key(i: int) -> str:
    """How the plan names a translating site's i-th identity /64 (in prefixes and host addresses)."""
    return "identity" if i == 0 else f"identity-{i}"


def nth_address(net: IPv6Network, n: int) -> IPv6Interface:
    return IPv6Interface(f"{net.network_address + n}/{net.prefixlen}")


def edge_address(locator: IPv6Network) -> IPv6Address:
    """Where an id-loc site's edge speaks the locator-pair protocol in each of its locators: the prefix's first
    address (no host takes it: host addresses are EUI-64 or translated EUI-64)."""
    return locator.network_address + 1
