"""The Mobility Header messages of RFC 6275 (section 6.1), built and read with scapy. Pure: bytes in, bytes out.

Only the messages this testbed exchanges: Home Test Init, Care-of Test Init, Home Test, Care-of Test, Binding
Update and Binding Acknowledgement, with the options they carry here (Alternate Care-of Address, Nonce
Indices, Binding Authorization Data). The checksum field is left zero: the agent's raw socket has the kernel
fill and verify it (IPV6_CHECKSUM at offset 4, as for ICMPv6). Lifetimes travel in units of 4 seconds.

A message that is not one of these, is truncated, or has a length field that disagrees with its bytes decodes
to ``None``: a packet off the network is never trusted to be well formed.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address

from scapy.layers.inet6 import (
    MIP6MH_BA,
    MIP6MH_BU,
    MIP6MH_CoT,
    MIP6MH_CoTI,
    MIP6MH_HoT,
    MIP6MH_HoTI,
    MIP6OptAltCoA,
    MIP6OptBindingAuthData,
    MIP6OptNonceIndices,
)

IPPROTO_MH = 135
CHECKSUM_OFFSET = 4
AUTHENTICATOR_BYTES = 12
LIFETIME_UNIT_S = 4
NO_NEXT_HEADER = 59


@dataclass(frozen=True)
class RoutabilityInit:
    """HoTI (``home``) or CoTI: the mobile node's cookie, echoed in the answer."""

    home: bool
    cookie: bytes


@dataclass(frozen=True)
class RoutabilityTest:
    """HoT (``home``) or CoT: which nonce the correspondent used, the cookie, and the keygen token."""

    home: bool
    nonce_index: int
    cookie: bytes
    token: bytes


@dataclass(frozen=True)
class BindingUpdate:
    """A binding of the sender's home address to ``care_of`` for ``lifetime_s`` (0: delete the binding).

    ``home`` is the H flag (a registration with the home agent), ``ack`` the A flag. ``nonce_indices`` (home,
    care-of) name the correspondent's nonces of a route-optimisation update (RFC 6275 section 5.2.6); every
    update carries an ``authenticator`` (see :mod:`multi6lab.mobility.binding` for its key)."""

    seq: int
    lifetime_s: int
    care_of: IPv6Address
    home: bool
    authenticator: bytes
    ack: bool = True
    nonce_indices: tuple[int, int] | None = None


@dataclass(frozen=True)
class BindingAck:
    status: int
    seq: int
    lifetime_s: int
    authenticator: bytes

    @property
    def accepted(self) -> bool:
        return self.status < 128


Message = RoutabilityInit | RoutabilityTest | BindingUpdate | BindingAck

# Binding Acknowledgement status codes (RFC 6275 section 6.1.8).
ACCEPTED = 0
UNSPECIFIED = 128
PROHIBITED = 129
NOT_HOME_SUBNET = 132
SEQUENCE_OUT_OF_WINDOW = 135
EXPIRED_HOME_NONCE = 136
EXPIRED_CARE_OF_NONCE = 137


def _lifetime_units(seconds: int) -> int:
    return min(0xFFFF, -(-seconds // LIFETIME_UNIT_S))  # rounded up: a binding never lasts less than asked


def _auth_option(authenticator: bytes) -> MIP6OptBindingAuthData:
    return MIP6OptBindingAuthData(olen=AUTHENTICATOR_BYTES,
                                  authenticator=int.from_bytes(authenticator.ljust(AUTHENTICATOR_BYTES, b"\0"),
                                                               "big"))


def encode(m: Message) -> bytes:
    """The Mobility Header of ``m``, checksum zero. An authenticator is written as given (zeros while it is
    being computed: see :func:`authenticated_data`)."""
    if isinstance(m, RoutabilityInit):
        return bytes((MIP6MH_HoTI if m.home else MIP6MH_CoTI)(cksum=0, cookie=m.cookie))
    if isinstance(m, RoutabilityTest):
        cls = MIP6MH_HoT if m.home else MIP6MH_CoT
        return bytes(cls(cksum=0, index=m.nonce_index, cookie=m.cookie, token=m.token))
    if isinstance(m, BindingUpdate):
        opts: list[object] = [MIP6OptAltCoA(acoa=str(m.care_of))]
        if m.nonce_indices is not None:
            opts.append(MIP6OptNonceIndices(olen=4, hni=m.nonce_indices[0], coni=m.nonce_indices[1]))
        opts.append(_auth_option(m.authenticator))
        flags = ("A" if m.ack else "") + ("H" if m.home else "")
        return bytes(MIP6MH_BU(cksum=0, seq=m.seq, flags=flags, mhtime=_lifetime_units(m.lifetime_s),
                               options=opts))
    return bytes(MIP6MH_BA(cksum=0, status=m.status, flags=0, res2=0, seq=m.seq,
                           mhtime=_lifetime_units(m.lifetime_s), options=[_auth_option(m.authenticator)]))


def authenticated_data(mh: bytes) -> bytes:
    """What the Binding Authorization Data covers (RFC 6275 5.2.6): the message with a zero checksum and
    without the authenticator, which is the last option, so the last 12 bytes."""
    return mh[:CHECKSUM_OFFSET] + b"\0\0" + mh[CHECKSUM_OFFSET + 2:-AUTHENTICATOR_BYTES]


def with_authenticator(mh: bytes, authenticator: bytes) -> bytes:
    return mh[:-AUTHENTICATOR_BYTES] + authenticator


def decode(data: bytes) -> Message | None:
    """The message in a Mobility Header, or None for anything else (see the module's docstring)."""
    if len(data) < 8 or data[0] != NO_NEXT_HEADER or (data[1] + 1) * 8 != len(data):
        return None
    try:
        return _decode(data[2], data)
    except (ValueError, TypeError, IndexError, AttributeError):
        return None


def _decode(mhtype: int, data: bytes) -> Message | None:
    if mhtype in (1, 2):
        ti = MIP6MH_HoTI(data)
        return RoutabilityInit(home=mhtype == 1, cookie=bytes(ti.cookie))
    if mhtype in (3, 4):
        t = MIP6MH_HoT(data)
        return RoutabilityTest(home=mhtype == 3, nonce_index=t.index, cookie=bytes(t.cookie), token=bytes(t.token))
    if mhtype == 5:
        bu = MIP6MH_BU(data)
        care = [o for o in bu.options if isinstance(o, MIP6OptAltCoA)]
        nonces = [o for o in bu.options if isinstance(o, MIP6OptNonceIndices)]
        auth = _authenticator(bu.options)
        if len(care) != 1 or auth is None:
            return None  # this testbed's updates always name the care-of address (docs/mobility.md)
        return BindingUpdate(seq=bu.seq, lifetime_s=bu.mhtime * LIFETIME_UNIT_S, care_of=IPv6Address(care[0].acoa),
                             home="H" in bu.flags, ack="A" in bu.flags,
                             nonce_indices=(nonces[0].hni, nonces[0].coni) if nonces else None, authenticator=auth)
    if mhtype == 6:
        ba = MIP6MH_BA(data)
        auth = _authenticator(ba.options)
        if auth is None:
            return None
        return BindingAck(status=ba.status, seq=ba.seq, lifetime_s=ba.mhtime * LIFETIME_UNIT_S, authenticator=auth)
    return None


def _authenticator(options: list[object]) -> bytes | None:
    """The last option's authenticator: it must be last, since it covers everything before it."""
    if not options or not isinstance(options[-1], MIP6OptBindingAuthData) or options[-1].olen != AUTHENTICATOR_BYTES:
        return None
    return int(options[-1].authenticator).to_bytes(AUTHENTICATOR_BYTES, "big")
