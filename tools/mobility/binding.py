"""Bindings of RFC 6275 and the decisions of its three roles: home agent, correspondent, mobile node. Pure.

Each role is a state machine fed with what happened (a message, the host's usable addresses, the time) and
answering with what to do (:class:`Send`, :class:`Bind`, :class:`Unbind`, :class:`Path`, :class:`Log`); the
agent (:mod:`multi6lab.mobility.agent`) carries those out with sockets and routes. Times are seconds on one
monotonic clock.

What is RFC 6275 here: the messages, the return-routability tokens and keys (section 5.2.5), the
authenticator (5.2.6), the sequence-number window (9.5.1), the nonce and token lifetimes, the binding
lifetime a correspondent grants (at most MAX_RR_BINDING_LIFETIME, 420 s), and the retransmission back-off
(INITIAL_BINDACK_TIMEOUT doubling to MAX_BINDACK_TIMEOUT). What is not, because the emulated kernel has no
Mobile IPv6 (no home address option, no type 2 routing header, no IPsec between the node and its home agent):
a packet that RFC 6275 sends from the care-of address with a home address option travels here as the same
packet from the home address inside an IPv6-in-IPv6 header from the care-of address (so the correspondent's
and the home agent's tunnel ends see the home address as the source, as they would); the update names its
care-of address in the Alternate Care-of Address option; and a home registration is authenticated like a
correspondent's, with a per-host secret shared with the home agent in place of the binding key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from multi6lab.mobility import messages as mh
from multi6lab.mobility.messages import BindingAck, BindingUpdate, RoutabilityInit, RoutabilityTest
from multi6lab.vocabulary import Event

INITIAL_BINDACK_TIMEOUT_S = 1.0
MAX_BINDACK_TIMEOUT_S = 32.0
REFRESH_MARGIN = 0.2  # a binding or a token is renewed when this share of its lifetime is left
HOME_REGISTRATION_S = 3600
_ZERO = b"\0" * mh.AUTHENTICATOR_BYTES  # an authenticator while it is computed


@dataclass(frozen=True)
class Lifetimes:
    """The clocks of return routability (RFC 6275 section 12): a correspondent's binding lasts at most
    ``binding_s`` (MAX_RR_BINDING_LIFETIME), a keygen token may be used for ``token_s`` (MAX_TOKEN_LIFETIME), a
    nonce is accepted for ``nonce_s`` (MAX_NONCE_LIFETIME), and a correspondent starts a new nonce every
    ``nonce_period_s`` (the RFC leaves that to it). A scenario may run them all faster by one factor: scaling
    the binding alone would leave the token's 210 s to decide when a binding can no longer be renewed."""

    binding_s: float = 420.0
    token_s: float = 210.0
    nonce_s: float = 240.0
    nonce_period_s: float = 30.0

    def scaled(self, binding_s: float) -> Lifetimes:
        f = binding_s / self.binding_s
        return Lifetimes(binding_s, self.token_s * f, self.nonce_s * f, self.nonce_period_s * f)


RFC_6275 = Lifetimes()


def keygen_token(kcn: bytes, address: IPv6Address, nonce: bytes, home: bool) -> bytes:
    """First (64, HMAC_SHA1 (Kcn, (address | nonce | 0 or 1))): home keygen token (0) or care-of (1)."""
    return hmac.new(kcn, address.packed + nonce + (b"\0" if home else b"\1"), hashlib.sha1).digest()[:8]


def binding_key(home_token: bytes, care_of_token: bytes = b"") -> bytes:
    """Kbm = SHA1 (home keygen token | care-of keygen token); the home token alone to delete a binding."""
    return hashlib.sha1(home_token + care_of_token).digest()


def authenticator(key: bytes, care_of: IPv6Address, peer: IPv6Address, message: bytes) -> bytes:
    """First (96, HMAC_SHA1 (key, (care-of address | correspondent | mobility data)))."""
    data = care_of.packed + peer.packed + mh.authenticated_data(message)
    return hmac.new(key, data, hashlib.sha1).digest()[:mh.AUTHENTICATOR_BYTES]


def sign(m: BindingUpdate | BindingAck, key: bytes, care_of: IPv6Address, peer: IPv6Address) -> bytes:
    """``m`` encoded with its authenticator computed over itself."""
    raw = mh.encode(m)
    return mh.with_authenticator(raw, authenticator(key, care_of, peer, raw))


def verified(raw: bytes, key: bytes, care_of: IPv6Address, peer: IPv6Address) -> bool:
    return hmac.compare_digest(raw[-mh.AUTHENTICATOR_BYTES:], authenticator(key, care_of, peer, raw))


def newer(seq: int, than: int) -> bool:
    """Sequence numbers compare modulo 2**16 within a window of half that (RFC 6275 9.5.1)."""
    return 0 < (seq - than) % 0x10000 < 0x8000


@dataclass(frozen=True)
class Send:
    """Send ``message`` from ``src`` to ``dst``; ``tunnel``: inside an IPv6-in-IPv6 header to that address
    (``None``: as it is), from ``outer`` (a mobile node's care-of address; ``None``: from ``src``). The outer
    source is the message's own: after a move, an update must leave from the new care-of address before the
    data path has moved."""

    message: bytes
    src: IPv6Address
    dst: IPv6Address
    tunnel: IPv6Address | None = None
    outer: IPv6Address | None = None


@dataclass(frozen=True)
class Bind:
    """Packets to ``home`` go to ``care_of`` inside an IPv6-in-IPv6 header from now on."""

    home: IPv6Address
    care_of: IPv6Address


@dataclass(frozen=True)
class Unbind:
    home: IPv6Address


@dataclass(frozen=True)
class Path:
    """The mobile node's data path: outer source ``care_of``; packets from the home address to each
    correspondent tunnelled to the address given (its home agent, or itself once it holds a binding), or
    sent as they are (``None``: the node is at home)."""

    care_of: IPv6Address
    tunnels: tuple[tuple[IPv6Address, IPv6Address | None], ...]


@dataclass(frozen=True)
class Log:
    """An event for the run's record: ``fields`` name addresses as strings."""

    event: Event
    fields: Mapping[str, Any]


Action = Send | Bind | Unbind | Path | Log


@dataclass
class Binding:
    care_of: IPv6Address
    seq: int
    expires: float


def _ack(status: int, seq: int, lifetime_s: int, key: bytes, care_of: IPv6Address, peer: IPv6Address) -> bytes:
    return sign(BindingAck(status, seq, lifetime_s, _ZERO), key, care_of, peer)


class HomeAgent:
    """Keeps each home address's care-of address and tunnels its packets there (RFC 6275 section 10)."""

    def __init__(self, address: IPv6Address, home: IPv6Network, keys: Mapping[IPv6Address, bytes],
                 max_lifetime_s: int = HOME_REGISTRATION_S) -> None:
        self.address, self.home, self.keys, self.max_lifetime_s = address, home, keys, max_lifetime_s
        self.bindings: dict[IPv6Address, Binding] = {}

    def on_update(self, raw: bytes, src: IPv6Address, now: float) -> list[Action]:
        bu = mh.decode(raw)
        key = self.keys.get(src)
        if not isinstance(bu, BindingUpdate) or key is None or not verified(raw, key, bu.care_of, self.address):
            return [Log(Event.MOBILITY_REFUSED, {"from": str(src), "why": "unauthenticated"})]
        old = self.bindings.get(src)
        status = mh.ACCEPTED
        if not bu.home:
            status = mh.PROHIBITED
        elif src not in self.home:
            status = mh.NOT_HOME_SUBNET
        elif old is not None and not newer(bu.seq, old.seq):
            status = mh.SEQUENCE_OUT_OF_WINDOW
        if status != mh.ACCEPTED:
            seq = old.seq if status == mh.SEQUENCE_OUT_OF_WINDOW and old else bu.seq
            return [Log(Event.MOBILITY_REFUSED, {"from": str(src), "status": status}),
                    Send(_ack(status, seq, 0, key, bu.care_of, self.address), self.address, src)]
        out: list[Action] = []
        if bu.lifetime_s == 0 or bu.care_of == src:
            self.bindings.pop(src, None)
            out += [Unbind(src)]
            lifetime = 0
        else:
            lifetime = min(bu.lifetime_s, self.max_lifetime_s)
            self.bindings[src] = Binding(bu.care_of, bu.seq, now + lifetime)
            out += [Bind(src, bu.care_of)]  # first: the acknowledgement then travels the new tunnel
        out.append(Log(Event.MOBILITY_BOUND, {"home": str(src), "care_of": str(bu.care_of), "seq": bu.seq,
                                          "lifetime_s": lifetime, "role": "home_agent"}))
        if bu.ack:
            out.append(Send(_ack(mh.ACCEPTED, bu.seq, lifetime, key, bu.care_of, self.address), self.address, src))
        return out

    def expire(self, now: float) -> list[Action]:
        return _expire(self.bindings, now, "home_agent")

    def next_deadline(self) -> float | None:
        return min((b.expires for b in self.bindings.values()), default=None)


def _expire(bindings: dict[IPv6Address, Binding], now: float, role: str) -> list[Action]:
    out: list[Action] = []
    for home in [h for h, b in bindings.items() if b.expires <= now]:
        del bindings[home]
        out += [Unbind(home), Log(Event.MOBILITY_EXPIRED, {"home": str(home), "role": role})]
    return out


class Correspondent:
    """Answers the return-routability tests and keeps bindings it can verify (RFC 6275 section 9)."""

    def __init__(self, address: IPv6Address, kcn: bytes, now: float, lifetimes: Lifetimes = RFC_6275) -> None:
        self.address, self.kcn, self.lifetimes = address, kcn, lifetimes
        self.nonces: dict[int, tuple[bytes, float]] = {}  # index -> (nonce, when it was made)
        self.bindings: dict[IPv6Address, Binding] = {}
        self._nonce_index = 0
        self._new_nonce(now)

    def _new_nonce(self, now: float) -> None:
        self._nonce_index = (self._nonce_index + 1) % 0x10000
        nonce = hmac.new(self.kcn, b"nonce" + self._nonce_index.to_bytes(2, "big"), hashlib.sha1).digest()[:8]
        self.nonces[self._nonce_index] = (nonce, now)
        for i in [i for i, (_, t) in self.nonces.items() if now - t > self.lifetimes.nonce_s]:
            del self.nonces[i]

    def _nonce(self, index: int, now: float) -> bytes | None:
        got = self.nonces.get(index)
        return got[0] if got and now - got[1] <= self.lifetimes.nonce_s else None

    def on_message(self, raw: bytes, src: IPv6Address, now: float) -> list[Action]:
        if now - self.nonces[self._nonce_index][1] >= self.lifetimes.nonce_period_s:
            self._new_nonce(now)
        m = mh.decode(raw)
        if isinstance(m, RoutabilityInit):
            nonce = self.nonces[self._nonce_index][0]
            token = keygen_token(self.kcn, src, nonce, m.home)
            return [Send(mh.encode(RoutabilityTest(m.home, self._nonce_index, m.cookie, token)), self.address, src)]
        if isinstance(m, BindingUpdate) and m.nonce_indices is not None and not m.home:
            return self._update(m, raw, src, now)
        return [Log(Event.MOBILITY_REFUSED, {"from": str(src), "why": "not a test init or update"})]

    def _update(self, bu: BindingUpdate, raw: bytes, home: IPv6Address, now: float) -> list[Action]:
        assert bu.nonce_indices is not None
        home_nonce, care_nonce = (self._nonce(i, now) for i in bu.nonce_indices)
        deleting = bu.lifetime_s == 0 or bu.care_of == home
        if home_nonce is None or (care_nonce is None and not deleting):
            # The update cannot be verified, so neither can an answer: say which nonce expired, unsigned.
            status = mh.EXPIRED_HOME_NONCE if home_nonce is None else mh.EXPIRED_CARE_OF_NONCE
            ack = mh.encode(BindingAck(status, bu.seq, 0, _ZERO))
            return [Log(Event.MOBILITY_REFUSED, {"from": str(home), "status": status}), Send(ack, self.address, home)]
        home_token = keygen_token(self.kcn, home, home_nonce, True)
        care_token = b"" if deleting or care_nonce is None else keygen_token(self.kcn, bu.care_of, care_nonce, False)
        kbm = binding_key(home_token, care_token)
        if not verified(raw, kbm, bu.care_of, self.address):
            return [Log(Event.MOBILITY_REFUSED, {"from": str(home), "why": "authenticator"})]  # silently, 9.5.1
        old = self.bindings.get(home)
        if old is not None and not newer(bu.seq, old.seq):
            ack = _ack(mh.SEQUENCE_OUT_OF_WINDOW, old.seq, 0, kbm, bu.care_of, self.address)
            return [Log(Event.MOBILITY_REFUSED, {"from": str(home), "status": mh.SEQUENCE_OUT_OF_WINDOW}),
                    Send(ack, self.address, home)]
        out: list[Action]
        if deleting:
            self.bindings.pop(home, None)
            out, lifetime = [Unbind(home)], 0
        else:
            lifetime = int(min(bu.lifetime_s, self.lifetimes.binding_s))
            self.bindings[home] = Binding(bu.care_of, bu.seq, now + lifetime)
            out = [Bind(home, bu.care_of)]
        out.append(Log(Event.MOBILITY_BOUND, {"home": str(home), "care_of": str(bu.care_of), "seq": bu.seq,
                                          "lifetime_s": lifetime, "role": "correspondent"}))
        if bu.ack:  # to the care-of address, as RFC 6275's type 2 routing header would carry it
            ack = _ack(mh.ACCEPTED, bu.seq, lifetime, kbm, bu.care_of, self.address)
            out.append(Send(ack, self.address, home, tunnel=None if deleting else bu.care_of))
        return out

    def expire(self, now: float) -> list[Action]:
        return _expire(self.bindings, now, "correspondent")

    def next_deadline(self) -> float | None:
        return min((b.expires for b in self.bindings.values()), default=None)


@dataclass
class _Pending:
    """A message that waits for its answer. Sent when due, then again after 1, 2, 4 ... 32 s (RFC 6275
    11.8), built anew each time so an update carries a new sequence number."""

    build: Callable[[], Send]
    due: float
    wait: float = INITIAL_BINDACK_TIMEOUT_S


@dataclass
class _Token:
    token: bytes
    nonce_index: int
    at: float


@dataclass
class _Peer:
    """A correspondent as the mobile node sees it: its tokens, the binding it granted, the update in flight."""

    address: IPv6Address
    seq: int = 0
    home_token: _Token | None = None
    care_tokens: dict[IPv6Address, _Token] = field(default_factory=dict)
    cookies: dict[bytes, IPv6Address] = field(default_factory=dict)  # test inits in flight -> address tested
    bound: Binding | None = None
    refresh_at: float = 0.0
    update: tuple[int, IPv6Address, bytes] | None = None  # (seq, care-of, Kbm) of the update in flight




class MobileNode:
    """A host that keeps ``home`` whatever exit it uses (RFC 6275 section 11), registering each care-of
    address with its ``home_agent`` and, with ``route_optimisation``, with each correspondent.

    Without a home agent the home address is one of the host's own exit addresses: RFC 4177 section 5.2's
    case, where the host is "at home" while that exit works and a correspondent's binding can be renewed only
    through it. Tokens are kept fresh for every usable address while nothing is wrong, so that a move needs
    one update and no test ("information in advance", section 5.2)."""

    def __init__(self, home: IPv6Address, home_agent: IPv6Address | None, key: bytes,
                 correspondents: Sequence[IPv6Address], route_optimisation: bool, cookie: Callable[[], bytes],
                 lifetimes: Lifetimes = RFC_6275, registration_s: int = HOME_REGISTRATION_S) -> None:
        self.home, self.home_agent, self.key, self.cookie = home, home_agent, key, cookie
        self.route_optimisation, self.lifetimes, self.registration_s = route_optimisation, lifetimes, registration_s
        self.peers = {a: _Peer(a) for a in correspondents}
        self.care_of: IPv6Address | None = None
        self.usable: tuple[IPv6Address, ...] = ()
        self.pending: dict[tuple[str, ...], _Pending] = {}
        self.seq = 0
        self.registering: tuple[int, IPv6Address] | None = None  # the home registration in flight
        self.registration_refresh = float("inf")
        self._path: Path | None = None
        self._now = float("-inf")  # the last time the node was told: deadlines up to it are handled

    # -- inputs ------------------------------------------------------------------------------------------------

    def addresses(self, usable: Sequence[IPv6Address], now: float) -> list[Action]:
        """The host's usable global addresses (not deprecated), best first, are now ``usable``."""
        self.usable, self._now = tuple(usable), now
        if self.home_agent is None and self.home in self.usable:
            care_of: IPv6Address | None = self.home
        else:
            care_of = next((a for a in self.usable if a != self.home), None)
        out: list[Action] = []
        if care_of != self.care_of:
            out.append(Log(Event.MOBILITY_MOVED, {"care_of": _s(care_of), "previous": _s(self.care_of)}))
            self.care_of = care_of
            if care_of is not None and self.home_agent is not None:
                self._register(now)
        return out + self._advance(now)

    def on_message(self, raw: bytes, src: IPv6Address, now: float) -> list[Action]:
        self._now = now
        m = mh.decode(raw)
        peer = self.peers.get(src)
        if isinstance(m, BindingAck) and src == self.home_agent:
            return self._home_ack(m, raw, now) + self._advance(now)
        if peer is not None and isinstance(m, RoutabilityTest):
            return self._test(peer, m, now) + self._advance(now)
        if peer is not None and isinstance(m, BindingAck):
            return self._peer_ack(peer, m, raw, now) + self._advance(now)
        return [Log(Event.MOBILITY_REFUSED, {"from": str(src), "why": "unexpected message"})]

    def on_timer(self, now: float) -> list[Action]:
        self._now = now
        out: list[Action] = []
        if self.registration_refresh <= now and self.care_of is not None:
            self._register(now)
        for peer in self.peers.values():
            if peer.bound is not None and peer.bound.expires <= now:
                peer.bound = None
                out.append(Log(Event.MOBILITY_EXPIRED, {"correspondent": str(peer.address), "role": "mobile_node"}))
        return out + self._advance(now)

    def next_deadline(self) -> float | None:
        times = [p.due for p in self.pending.values()] + [self.registration_refresh]
        if self.route_optimisation:
            for peer in self.peers.values():
                if peer.bound is not None:
                    times += [peer.bound.expires, peer.refresh_at]
                tokens = [peer.home_token, *(peer.care_tokens.get(a) for a in self.usable if a != self.home)]
                times += [t.at + self.lifetimes.token_s * (1 - REFRESH_MARGIN) for t in tokens if t is not None]
        return min((t for t in times if self._now < t != float("inf")), default=None)

    # -- the home registration ----------------------------------------------------------------------------------

    def _register(self, now: float) -> None:
        assert self.home_agent is not None and self.care_of is not None
        ha, care_of = self.home_agent, self.care_of

        def build() -> Send:
            self.seq = (self.seq + 1) % 0x10000
            self.registering = (self.seq, care_of)
            bu = BindingUpdate(self.seq, self.registration_s, care_of, home=True, authenticator=_ZERO)
            return Send(sign(bu, self.key, care_of, ha), self.home, ha, tunnel=ha, outer=care_of)

        self.registration_refresh = float("inf")
        self.pending[("ha",)] = _Pending(build, now)

    def _home_ack(self, ack: BindingAck, raw: bytes, now: float) -> list[Action]:
        assert self.home_agent is not None
        if self.registering is None or not verified(raw, self.key, self.registering[1], self.home_agent):
            return [Log(Event.MOBILITY_REFUSED, {"from": str(self.home_agent), "why": "authenticator"})]
        seq, care_of = self.registering
        if ack.status == mh.SEQUENCE_OUT_OF_WINDOW:
            self.seq = ack.seq  # the next try follows the agent's number
            return []
        if ack.seq != seq:
            return []
        self.pending.pop(("ha",), None)
        self.registering = None
        if not ack.accepted:
            return [Log(Event.MOBILITY_REFUSED, {"from": str(self.home_agent), "status": ack.status})]
        self.registration_refresh = now + ack.lifetime_s * (1 - REFRESH_MARGIN)
        return [Log(Event.MOBILITY_REGISTERED, {"care_of": str(care_of), "seq": seq, "lifetime_s": ack.lifetime_s})]

    # -- route optimisation -------------------------------------------------------------------------------------

    def _test(self, peer: _Peer, t: RoutabilityTest, now: float) -> list[Action]:
        addr = peer.cookies.pop(t.cookie, None)
        if addr is None or (addr == self.home) != t.home:
            return [Log(Event.MOBILITY_REFUSED, {"from": str(peer.address), "why": "unknown cookie"})]
        token = _Token(t.token, t.nonce_index, now)
        if t.home:
            peer.home_token = token
        else:
            peer.care_tokens[addr] = token
        self.pending.pop((str(peer.address), "test", str(addr)), None)
        return [Log(Event.MOBILITY_TESTED, {"correspondent": str(peer.address), "address": str(addr), "home": t.home})]

    def _peer_ack(self, peer: _Peer, ack: BindingAck, raw: bytes, now: float) -> list[Action]:
        if peer.update is None or ack.seq != peer.update[0]:
            return []
        seq, care_of, kbm = peer.update
        if ack.status in (mh.EXPIRED_HOME_NONCE, mh.EXPIRED_CARE_OF_NONCE):
            # Unsigned (the correspondent could not compute the key): it costs a new test, nothing more.
            if ack.status == mh.EXPIRED_HOME_NONCE:
                peer.home_token = None
            else:
                peer.care_tokens.pop(care_of, None)
        elif not verified(raw, kbm, care_of, peer.address):
            return [Log(Event.MOBILITY_REFUSED, {"from": str(peer.address), "why": "authenticator"})]
        elif ack.status == mh.SEQUENCE_OUT_OF_WINDOW:
            peer.seq = ack.seq
            return []
        peer.update = None
        self.pending.pop((str(peer.address), "update"), None)
        if not ack.accepted:
            return [Log(Event.MOBILITY_REFUSED, {"from": str(peer.address), "status": ack.status})]
        if ack.lifetime_s == 0 or care_of == self.home:
            peer.bound = None
        else:
            peer.bound = Binding(care_of, seq, now + ack.lifetime_s)
            peer.refresh_at = now + ack.lifetime_s * (1 - REFRESH_MARGIN)
        return [Log(Event.MOBILITY_BOUND, {"correspondent": str(peer.address), "care_of": str(care_of), "seq": seq,
                                       "lifetime_s": ack.lifetime_s, "role": "mobile_node"})]

    def _fresh(self, t: _Token | None, now: float, margin: float = 0.0) -> bool:
        return t is not None and now - t.at < self.lifetimes.token_s * (1 - margin)

    def _keep_tokens(self, peer: _Peer, now: float) -> None:
        """A test is started for each address whose token is missing or near the end of its lifetime."""
        for addr in (self.home, *(a for a in self.usable if a != self.home)):
            token = peer.home_token if addr == self.home else peer.care_tokens.get(addr)
            key = (str(peer.address), "test", str(addr))
            if not self._fresh(token, now, REFRESH_MARGIN) and key not in self.pending:
                self.pending[key] = _Pending(self._test_init(peer, addr), now)

    def _test_init(self, peer: _Peer, addr: IPv6Address) -> Callable[[], Send]:
        home = addr == self.home

        def build() -> Send:
            cookie = self.cookie()
            for old in [c for c, a in peer.cookies.items() if a == addr]:  # an answer to a lost try is stale
                del peer.cookies[old]
            peer.cookies[cookie] = addr
            # The home test goes through the home agent, as the home address's packets do.
            via = self.home_agent if home else None
            return Send(mh.encode(RoutabilityInit(home, cookie)), addr, peer.address, tunnel=via,
                        outer=self.care_of if via else None)

        return build

    def _update_peer(self, peer: _Peer, now: float) -> None:
        """An update to ``peer`` once the binding it holds is not the one wanted and the tokens allow it."""
        assert self.care_of is not None
        care_of = self.care_of
        deleting = care_of == self.home
        wanted = peer.bound is None or peer.bound.care_of != care_of or now >= peer.refresh_at
        if deleting:
            wanted = peer.bound is not None
        key = (str(peer.address), "update")
        if not wanted or (key in self.pending and peer.update is not None and peer.update[1] == care_of):
            return
        home_token, care_token = peer.home_token, peer.care_tokens.get(care_of)
        if not self._fresh(home_token, now) or (not deleting and not self._fresh(care_token, now)):
            return  # _keep_tokens has the tests under way
        assert home_token is not None
        kbm = binding_key(home_token.token, b"" if deleting or care_token is None else care_token.token)
        indices = (home_token.nonce_index, care_token.nonce_index if care_token and not deleting else 0)

        def build() -> Send:
            peer.seq = (peer.seq + 1) % 0x10000
            peer.update = (peer.seq, care_of, kbm)
            bu = BindingUpdate(peer.seq, 0 if deleting else int(self.lifetimes.binding_s), care_of, home=False,
                               authenticator=_ZERO, nonce_indices=indices)
            # From the home address, tunnelled from the care-of address: the home address option's stand-in.
            return Send(sign(bu, kbm, care_of, peer.address), self.home, peer.address,
                        tunnel=None if deleting else peer.address, outer=None if deleting else care_of)

        self.pending[key] = _Pending(build, now)

    def _current_path(self) -> Path | None:
        if self.care_of is None:
            return None
        tunnels = []
        for peer in self.peers.values():
            if peer.bound is not None:
                via: IPv6Address | None = peer.address
            else:
                via = None if self.care_of == self.home else self.home_agent
            tunnels.append((peer.address, via))
        return Path(self.care_of, tuple(tunnels))

    def _advance(self, now: float) -> list[Action]:
        """What the state now calls for: fresh tokens, an update to each correspondent, what is due to be
        sent, and the data path if it changed."""
        out: list[Action] = []
        if self.route_optimisation and self.care_of is not None:
            for peer in self.peers.values():
                self._keep_tokens(peer, now)
                self._update_peer(peer, now)
        for p in list(self.pending.values()):
            if p.due <= now:
                out.append(p.build())
                p.due, p.wait = now + p.wait, min(p.wait * 2, MAX_BINDACK_TIMEOUT_S)
        path = self._current_path()
        if path is not None and path != self._path:
            self._path = path
            out.append(path)
        return out


def _s(a: IPv6Address | None) -> str | None:
    return str(a) if a is not None else None
