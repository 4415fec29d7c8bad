"""IPv6-to-IPv6 Network Prefix Translation, checksum-neutral (RFC 6296).

The mapping replaces the prefix and adds a fixed 16-bit one's-complement adjustment to one word of the
address, chosen so that the one's-complement sum over the whole address, and so every transport checksum
that covers it, is unchanged. For prefixes up to /48 the adjusted word is the subnet word (bits 48-63); for
/49 to /64 it is the first word of the interface identifier that is not 0xFFFF. A result of 0xFFFF is
written as 0x0000 (both are zero in one's complement). Addresses that cannot be mapped raise
:class:`Untranslatable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network


class Untranslatable(ValueError):
    """An address the translator must not map (RFC 6296 3.5 and 3.6)."""


def _words(addr: IPv6Address) -> list[int]:
    b = addr.packed
    return [(b[i] << 8) | b[i + 1] for i in range(0, 16, 2)]


def _from_words(words: list[int]) -> IPv6Address:
    return IPv6Address(b"".join(w.to_bytes(2, "big") for w in words))


def ones_add(a: int, b: int) -> int:
    s = a + b
    return (s & 0xFFFF) + (s >> 16)


def ones_sum(words: list[int]) -> int:
    total = 0
    for w in words:
        total = ones_add(total, w)
    return total


def adjustment(inside: IPv6Network, outside: IPv6Network) -> int:
    """The 16-bit value added when mapping inside -> outside: sum(inside) - sum(outside), one's complement."""
    return ones_add(ones_sum(_words(inside.network_address)), 0xFFFF ^ ones_sum(_words(outside.network_address)))


@dataclass(frozen=True)
class Translator:
    """A 1:1 mapping between two prefixes of equal length, no longer than /64."""

    inside: IPv6Network
    outside: IPv6Network

    def __post_init__(self) -> None:
        if self.inside.prefixlen != self.outside.prefixlen:
            raise ValueError(f"RFC 6296 maps prefixes of equal length: {self.inside} and {self.outside}")
        if self.inside.prefixlen > 64:
            raise ValueError(f"RFC 6296 maps prefixes of /64 or shorter, not /{self.inside.prefixlen}")

    def to_outside(self, addr: IPv6Address) -> IPv6Address:
        """Map an inside address (a source leaving the site) to its outside locator."""
        return _map(addr, self.inside, self.outside)

    def to_inside(self, addr: IPv6Address) -> IPv6Address:
        """Map an outside locator (a destination arriving at the site) back to the inside address."""
        return _map(addr, self.outside, self.inside)


def _map(addr: IPv6Address, src: IPv6Network, dst: IPv6Network) -> IPv6Address:
    if addr not in src:
        raise Untranslatable(f"{addr} is not in {src}")
    n = src.prefixlen
    host_mask = (1 << (128 - n)) - 1
    words = _words(IPv6Address((int(addr) & host_mask) | int(dst.network_address)))
    if n <= 48:
        idx = 3
        if words[idx] == 0xFFFF:
            raise Untranslatable(f"{addr}: subnet word 0xFFFF cannot be mapped (RFC 6296 3.5)")
    else:
        idx = next((i for i in range(4, 8) if words[i] != 0xFFFF), -1)
        if idx < 0:
            raise Untranslatable(f"{addr}: every interface-identifier word is 0xFFFF (RFC 6296 3.6)")
    value = ones_add(words[idx], adjustment(src, dst))
    words[idx] = 0 if value == 0xFFFF else value
    return _from_words(words)
