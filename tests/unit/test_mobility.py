"""Mobile IPv6 as RFC 4177 section 5.2 proposes it: messages, return routability, and the three roles walked
through a small simulated network in which a dead exit loses every packet sent from or to its addresses."""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Interface, IPv6Network
from pathlib import Path
from unittest.mock import ANY

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

from multi6lab.lab import mobility as lab_mobility
from multi6lab.mobility import binding as b
from multi6lab.mobility import messages as mh
from multi6lab.mobility import tunnel
from multi6lab.mobility.messages import BindingAck, BindingUpdate, RoutabilityInit, RoutabilityTest
from multi6lab.results import triangle
from multi6lab.topologies import loader, shell
from multi6lab.topologies.plan import Plan, Route, build
from multi6lab.topologies.yamlsrc import InputError

ROOT = Path(__file__).resolve().parents[2]

HOME = IPv6Address("3fff:ff:201::10")  # in the home agent's home prefix
HA = IPv6Address("3fff:ff:200::2")
CN = IPv6Address("3fff:ff:100::2")
A = IPv6Address("3fff:a:5:0:200:ff:fe00:1")  # the host's address through exit A
B = IPv6Address("3fff:b:5:0:200:ff:fe00:1")  # and through exit B
KEY = b"k" * 20
Z = b"\0" * 12


def _cookies() -> b.Callable[[], bytes]:
    n = itertools.count()
    return lambda: next(n).to_bytes(8, "big")


# -- messages -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("m", [
    RoutabilityInit(True, b"12345678"), RoutabilityInit(False, b"abcdefgh"),
    RoutabilityTest(True, 3, b"12345678", b"tokentok"), RoutabilityTest(False, 65535, b"12345678", b"tokentok"),
    BindingUpdate(9, 420, A, home=False, authenticator=b"A" * 12, nonce_indices=(1, 2)),
    BindingUpdate(65535, 0, B, home=True, authenticator=b"B" * 12, ack=False),
    BindingAck(0, 9, 420, b"C" * 12), BindingAck(135, 9, 0, Z),
])
def test_every_message_reads_back_as_it_was_written(m: mh.Message) -> None:
    raw = mh.encode(m)
    assert len(raw) % 8 == 0 and raw[0] == mh.NO_NEXT_HEADER and raw[4:6] == b"\0\0"
    assert mh.decode(raw) == m


def test_lifetimes_travel_in_units_of_four_seconds_rounded_up() -> None:
    raw = mh.encode(BindingUpdate(1, 30, A, home=True, authenticator=Z))
    got = mh.decode(raw)
    assert isinstance(got, BindingUpdate) and got.lifetime_s == 32


def test_anything_else_off_the_network_reads_as_nothing() -> None:
    bu = mh.encode(BindingUpdate(1, 420, A, home=True, authenticator=Z))
    assert mh.decode(bu[:-8]) is None  # shorter than its length field says
    assert mh.decode(bu[:1] + b"\x09" + bu[2:]) is None
    assert mh.decode(b"\x3b\x00\x07\x00\x00\x00\x00\x00") is None  # a binding error: not used here
    no_auth = bytes(mh.MIP6MH_BU(cksum=0, seq=1, flags="AH", mhtime=1, options=[mh.MIP6OptAltCoA(acoa=str(A))]))
    assert mh.decode(no_auth) is None  # every update here is authenticated
    rnd = random.Random(6275)
    for _ in range(2000):
        data = bytes([59, rnd.randrange(8)]) + rnd.randbytes(rnd.randrange(70))
        mh.decode(data)  # never raises


# -- return routability and the authenticator ---------------------------------------------------------------------

def test_tokens_and_keys_follow_rfc_6275_section_5_2_5() -> None:
    kcn, nonce = b"\x01" * 20, b"\x02" * 8
    home, care = b.keygen_token(kcn, HOME, nonce, True), b.keygen_token(kcn, A, nonce, False)
    assert len(home) == 8 and home != b.keygen_token(kcn, HOME, nonce, False) and care != home
    assert b.binding_key(home, care) != b.binding_key(home) and len(b.binding_key(home)) == 20
    signed = b.sign(BindingUpdate(1, 420, A, home=False, authenticator=Z, nonce_indices=(1, 1)), b"k", A, CN)
    assert b.verified(signed, b"k", A, CN)
    assert not b.verified(signed, b"other", A, CN) and not b.verified(signed, b"k", B, CN)
    assert not b.verified(signed[:6] + b"\0\2" + signed[8:], b"k", A, CN)  # another sequence number


def test_sequence_numbers_compare_within_half_the_space() -> None:
    assert b.newer(1, 0) and b.newer(0, 65535) and b.newer(100, 65500)
    assert not b.newer(5, 5) and not b.newer(4, 5) and not b.newer(40000, 0)


# -- the home agent ---------------------------------------------------------------------------------------------

def _ha() -> b.HomeAgent:
    return b.HomeAgent(HA, IPv6Network("3fff:ff:201::/64"), {HOME: KEY}, max_lifetime_s=600)


def _home_bu(seq: int, care_of: IPv6Address, lifetime: int = 3600, key: bytes = KEY, home: bool = True) -> bytes:
    return b.sign(BindingUpdate(seq, lifetime, care_of, home=home, authenticator=Z), key, care_of, HA)


def test_the_home_agent_binds_an_authenticated_update_then_acknowledges_it_through_the_new_tunnel() -> None:
    ha = _ha()
    out = ha.on_update(_home_bu(1, A), HOME, now=0.0)
    assert out[0] == b.Bind(HOME, A)
    ack = out[-1]
    assert isinstance(ack, b.Send) and ack.dst == HOME
    got = mh.decode(ack.message)
    assert isinstance(got, BindingAck) and got.accepted and got.lifetime_s == 600  # capped at the agent's
    assert b.verified(ack.message, KEY, A, HA)
    assert ha.on_update(_home_bu(2, B), HOME, now=1.0)[0] == b.Bind(HOME, B)
    assert ha.expire(600.9) == [] and ha.expire(601.0)[0] == b.Unbind(HOME)


@pytest.mark.parametrize(("raw", "src", "status"), [
    (_home_bu(1, A, key=b"wrong"), HOME, None),  # forged: no answer at all
    (_home_bu(1, A), IPv6Address("3fff:ff:201::99"), None),  # a home address it has no key for
    (_home_bu(1, A, home=False), HOME, mh.PROHIBITED),
])
def test_the_home_agent_binds_nothing_it_cannot_trust(raw: bytes, src: IPv6Address, status: int | None) -> None:
    out = _ha().on_update(raw, src, now=0.0)
    assert not any(isinstance(a, b.Bind) for a in out)
    sent = [mh.decode(a.message) for a in out if isinstance(a, b.Send)]
    assert [s.status for s in sent if isinstance(s, BindingAck)] == ([status] if status else [])


def test_a_replayed_update_is_refused_with_the_number_to_follow() -> None:
    ha = _ha()
    ha.on_update(_home_bu(7, A), HOME, now=0.0)
    out = ha.on_update(_home_bu(7, B), HOME, now=1.0)
    assert not any(isinstance(a, b.Bind) for a in out) and ha.bindings[HOME].care_of == A
    ack = mh.decode(next(a for a in out if isinstance(a, b.Send)).message)
    assert isinstance(ack, BindingAck) and ack.status == mh.SEQUENCE_OUT_OF_WINDOW and ack.seq == 7


def test_a_zero_lifetime_deletes_the_binding() -> None:
    ha = _ha()
    ha.on_update(_home_bu(1, A), HOME, now=0.0)
    assert ha.on_update(_home_bu(2, A, lifetime=0), HOME, now=1.0)[0] == b.Unbind(HOME) and not ha.bindings


# -- the correspondent -----------------------------------------------------------------------------------------

def _tokens(cn: b.Correspondent, now: float, care_of: IPv6Address = A) -> tuple[RoutabilityTest, RoutabilityTest]:
    got = []
    for home, src in ((True, HOME), (False, care_of)):
        (send,) = cn.on_message(mh.encode(RoutabilityInit(home, b"c" * 8)), src, now)
        assert isinstance(send, b.Send) and send.dst == src
        t = mh.decode(send.message)
        assert isinstance(t, RoutabilityTest) and t.home == home and t.cookie == b"c" * 8
        got.append(t)
    return got[0], got[1]


def _cn_bu(seq: int, ht: RoutabilityTest, ct: RoutabilityTest, care_of: IPv6Address = A, lifetime: int = 420) -> bytes:
    kbm = b.binding_key(ht.token, ct.token)
    bu = BindingUpdate(seq, lifetime, care_of, home=False, authenticator=Z, nonce_indices=(ht.nonce_index,
                                                                                           ct.nonce_index))
    return b.sign(bu, kbm, care_of, CN)


def test_a_correspondent_binds_what_both_tokens_prove_for_at_most_420_s() -> None:
    cn = b.Correspondent(CN, b"kcn" * 7, now=0.0)
    ht, ct = _tokens(cn, 0.0)
    out = cn.on_message(_cn_bu(1, ht, ct, lifetime=1000), HOME, now=1.0)
    assert out[0] == b.Bind(HOME, A)
    ack = mh.decode(out[-1].message)  # type: ignore[union-attr]
    assert isinstance(ack, BindingAck) and ack.accepted and ack.lifetime_s == 420
    assert cn.expire(420.9) == [] and cn.expire(421.0)[0] == b.Unbind(HOME)


def test_a_correspondent_refuses_a_care_of_address_whose_token_it_never_sent() -> None:
    cn = b.Correspondent(CN, b"kcn" * 7, now=0.0)
    ht, ct = _tokens(cn, 0.0)
    out = cn.on_message(_cn_bu(1, ht, ct, care_of=B), HOME, now=1.0)  # the token was A's
    assert not any(isinstance(a, (b.Bind, b.Send)) for a in out)


def test_nonces_expire_after_240_s_and_the_update_is_told_which() -> None:
    cn = b.Correspondent(CN, b"kcn" * 7, now=0.0)
    ht, ct = _tokens(cn, 0.0)
    out = cn.on_message(_cn_bu(1, ht, ct), HOME, now=241.0)
    ack = mh.decode(next(a for a in out if isinstance(a, b.Send)).message)
    assert isinstance(ack, BindingAck) and ack.status == mh.EXPIRED_HOME_NONCE and not cn.bindings


def test_a_scaled_lifetime_is_what_the_correspondent_grants() -> None:
    cn = b.Correspondent(CN, b"kcn" * 7, now=0.0, lifetimes=b.RFC_6275.scaled(20))
    ht, ct = _tokens(cn, 0.0)
    cn.on_message(_cn_bu(1, ht, ct), HOME, now=0.0)
    assert cn.bindings[HOME].expires == 20.0


# -- the three together ------------------------------------------------------------------------------------------

@dataclass
class Net:
    """Delivers the roles' messages at once; an exit that is down loses what is sent from or to its addresses.

    A packet to the home address goes where the sender's own binding says (a correspondent's), else where the
    home agent's says, else to the home address itself (section 5.2's case, where it is an exit address)."""

    mn: b.MobileNode
    cn: b.Correspondent
    ha: b.HomeAgent | None
    down: set[IPv6Address] = field(default_factory=set)
    log: list[b.Action] = field(default_factory=list)
    now: float = 0.0

    def run(self, actions: list[b.Action]) -> None:
        queue = list(actions)
        while queue:
            a = queue.pop(0)
            self.log.append(a)
            if isinstance(a, b.Send):
                queue += self._deliver(a)

    def _deliver(self, s: b.Send) -> list[b.Action]:
        if s.src in (HOME, A, B):  # from the mobile node: leaves by its care-of address if tunnelled
            leaves_by = s.outer or s.src
            if leaves_by in self.down:
                return []
            if s.dst == HA and self.ha is not None:
                return self.ha.on_update(s.message, s.src, self.now)
            return self.cn.on_message(s.message, s.src, self.now)
        arrives_at = s.tunnel or s.dst
        home = self.mn.home
        if s.tunnel is None and s.dst == home:
            own = self.cn.bindings.get(home) if s.src == CN else None
            via = own or (self.ha.bindings.get(home) if self.ha else None)
            arrives_at = via.care_of if via else home
        if arrives_at in self.down:
            return []
        return self.mn.on_message(s.message, s.src, self.now)

    def at(self, t: float, usable: list[IPv6Address] | None = None) -> None:
        """Advance to ``t``, firing every timer on the way; then tell the node its addresses if given."""
        while (d := self._next()) is not None and d <= t:
            self.now = d
            self.run(self.mn.on_timer(d) + self.cn.expire(d) + (self.ha.expire(d) if self.ha else []))
        self.now = t
        if usable is not None:
            self.run(self.mn.addresses(usable, t))

    def _next(self) -> float | None:
        ds = [d for d in (self.mn.next_deadline(), self.cn.next_deadline(), self.ha and self.ha.next_deadline())
              if d is not None]
        return min(ds, default=None)

    def paths(self) -> list[b.Path]:
        return [a for a in self.log if isinstance(a, b.Path)]

    def events(self, name: str) -> list[b.Log]:
        return [a for a in self.log if isinstance(a, b.Log) and a.event == name]


def _net(home_agent: bool, ro: bool, lifetime_s: int = 420) -> Net:
    lifetimes = b.RFC_6275.scaled(lifetime_s)
    mn = b.MobileNode(HOME if home_agent else A, HA if home_agent else None, KEY, [CN], ro, _cookies(),
                      lifetimes=lifetimes)
    cn = b.Correspondent(CN, b"kcn" * 7, now=0.0, lifetimes=lifetimes)
    return Net(mn, cn, _ha() if home_agent else None)


def test_with_a_home_agent_a_move_is_one_update_and_traffic_is_tunnelled_through_the_agent() -> None:
    net = _net(home_agent=True, ro=False)
    net.at(0.0, [A, B])
    assert net.ha is not None and net.ha.bindings[HOME].care_of == A
    assert net.paths()[-1] == b.Path(A, ((CN, HA),)) and net.events("mobility_registered")
    net.down.add(A)
    net.at(5.0, [B])
    assert net.ha.bindings[HOME].care_of == B and net.paths()[-1] == b.Path(B, ((CN, HA),))
    update = [a for a in net.log if isinstance(a, b.Send) and a.dst == HA][-1]
    assert update.outer == B  # it leaves from the new care-of address, whatever the data path still does
    assert [e.fields["care_of"] for e in net.events("mobility_registered")] == [str(A), str(B)]


def test_a_lost_home_registration_is_sent_again_after_1_then_2_then_4_s() -> None:
    net = _net(home_agent=True, ro=False)
    net.down.add(A)
    net.at(0.0, [A])
    net.at(7.5)
    sent = [a for a in net.log if isinstance(a, b.Send) and a.dst == HA]
    assert len(sent) == 4  # at 0, 1, 3 and 7 s
    seqs = [mh.decode(s.message).seq for s in sent]  # type: ignore[union-attr]
    assert seqs == [1, 2, 3, 4]  # each a new sequence number
    net.down.clear()
    net.at(15.0)
    assert net.ha is not None and net.ha.bindings[HOME].care_of == A


def _tests_sent(net: Net) -> int:
    return sum(1 for a in net.log if isinstance(a, b.Send) and isinstance(mh.decode(a.message), RoutabilityInit))


def test_route_optimisation_binds_the_correspondent_directly_and_a_move_needs_no_new_test() -> None:
    net = _net(home_agent=True, ro=True)
    net.at(0.0, [A, B])
    net.at(2.0)  # the home test needed the home registration first: it went again at 1 s
    assert net.cn.bindings[HOME].care_of == A and net.paths()[-1] == b.Path(A, ((CN, CN),))
    tests_before = _tests_sent(net)
    net.down.add(A)
    net.at(3.0, [B])
    assert net.cn.bindings[HOME].care_of == B  # B's care-of token was kept fresh in advance
    assert _tests_sent(net) == tests_before


def test_with_a_home_agent_the_correspondent_binding_is_renewed_for_as_long_as_the_fault_lasts() -> None:
    net = _net(home_agent=True, ro=True, lifetime_s=20)
    net.at(0.0, [A, B])
    net.down.add(A)
    net.at(3.0, [B])
    net.at(100.0)
    assert net.cn.bindings[HOME].care_of == B and not net.events("mobility_expired")
    assert len([e for e in net.events("mobility_bound") if e.fields["role"] == "correspondent"]) >= 6


def test_section_5_2_without_a_home_agent_the_binding_lapses_after_its_lifetime_and_cannot_be_renewed() -> None:
    net = _net(home_agent=False, ro=True, lifetime_s=20)
    net.at(0.0, [A, B])  # at home on A, tokens for A (home) and B (care-of) fetched in advance
    assert net.paths()[-1] == b.Path(A, ((CN, None),)) and not net.cn.bindings
    net.at(10.0)  # the tokens (10 s at this scale) were renewed at 8 s
    net.down.add(A)
    net.at(10.0, [B])
    assert net.cn.bindings[A].care_of == B and net.paths()[-1] == b.Path(B, ((CN, CN),))
    net.at(29.9)
    assert A in net.cn.bindings  # the refresh at 80 % needed a home test, which had to leave by A
    net.at(30.0)
    assert not net.cn.bindings and net.paths()[-1] == b.Path(B, ((CN, None),))
    lapsed = net.events("mobility_expired")
    assert {e.fields["role"] for e in lapsed} == {"correspondent", "mobile_node"}
    net.down.clear()
    net.at(31.0, [A, B])  # home again: back to plain IPv6
    assert net.paths()[-1] == b.Path(A, ((CN, None),))


def test_returning_home_deletes_the_correspondent_s_binding() -> None:
    net = _net(home_agent=False, ro=True)
    net.at(0.0, [A, B])
    net.down.add(A)
    net.at(1.0, [B])
    assert A in net.cn.bindings
    net.down.clear()
    net.at(2.0, [A, B])
    assert not net.cn.bindings and net.paths()[-1] == b.Path(A, ((CN, None),))


def test_the_home_registration_is_renewed_before_it_runs_out() -> None:
    net = _net(home_agent=True, ro=False)
    net.at(0.0, [A, B])
    net.at(600 * 0.8 + 0.1)  # the agent granted 600 s
    assert [e.fields["seq"] for e in net.events("mobility_registered")] == [1, 2]


def test_a_home_agent_refuses_a_home_address_outside_its_prefix_and_a_correspondent_a_replay() -> None:
    stranger = IPv6Address("3fff:ff:999::1")
    ha = b.HomeAgent(HA, IPv6Network("3fff:ff:201::/64"), {stranger: KEY})
    out = ha.on_update(_home_bu(1, A), stranger, now=0.0)
    assert [mh.decode(a.message).status for a in out if isinstance(a, b.Send)] == [mh.NOT_HOME_SUBNET]  # type: ignore[union-attr]
    cn = b.Correspondent(CN, b"kcn" * 7, now=0.0)
    ht, ct = _tokens(cn, 0.0)
    cn.on_message(_cn_bu(5, ht, ct), HOME, now=0.0)
    out = cn.on_message(_cn_bu(5, ht, ct, care_of=A), HOME, now=1.0)
    assert [mh.decode(a.message).status for a in out if isinstance(a, b.Send)] == [mh.SEQUENCE_OUT_OF_WINDOW]  # type: ignore[union-attr]
    assert cn.on_message(mh.encode(BindingAck(0, 1, 4, Z)), HOME, now=1.0)[0].event == "mobility_refused"  # type: ignore[union-attr]


def test_the_mobile_node_ignores_what_it_did_not_ask_for() -> None:
    net = _net(home_agent=True, ro=True)
    net.at(0.0, [A, B])
    mn = net.mn
    forged_test = mh.encode(RoutabilityTest(True, 1, b"unknown!", b"tokentok"))
    forged_ack = mh.encode(BindingAck(0, mn.seq, 600, Z))
    stray = mh.encode(BindingUpdate(1, 4, A, home=True, authenticator=Z))
    why = [a.fields.get("why") for m, src in ((forged_test, CN), (forged_ack, CN), (stray, CN)) for a in
           mn.on_message(m, src, 1.0) if isinstance(a, b.Log)]
    assert why == ["unknown cookie", "unexpected message"]  # the ack answers nothing in flight: dropped
    mn.addresses([B], 2.0)  # a registration in flight
    assert mn.on_message(forged_ack, HA, 2.0)[0].fields["why"] == "authenticator"  # type: ignore[union-attr]


def test_the_mobile_node_follows_the_agent_s_sequence_number_and_a_refusal_stops_the_retries() -> None:
    mn = b.MobileNode(HOME, HA, KEY, [CN], False, _cookies())
    assert [a.dst for a in mn.addresses([A], 0.0) if isinstance(a, b.Send)] == [HA]
    out_of_window = b.sign(BindingAck(mh.SEQUENCE_OUT_OF_WINDOW, 41, 0, Z), KEY, A, HA)
    assert mn.on_message(out_of_window, HA, 0.1) == []
    (again,) = [a for a in mn.on_timer(1.0) if isinstance(a, b.Send)]
    assert mh.decode(again.message).seq == 42  # type: ignore[union-attr]
    refused = b.sign(BindingAck(mh.PROHIBITED, 42, 0, Z), KEY, A, HA)
    assert mn.on_message(refused, HA, 1.1)[0].fields["status"] == mh.PROHIBITED  # type: ignore[union-attr]
    assert ("ha",) not in mn.pending


def test_an_expired_nonce_costs_the_mobile_node_one_new_test() -> None:
    net = _net(home_agent=False, ro=True)
    net.at(0.0, [A, B])
    mn, peer = net.mn, net.mn.peers[CN]
    net.down.add(A)
    net.at(1.0, [B])
    assert peer.bound is not None
    peer.update = (99, B, b"x")
    stale = mh.encode(BindingAck(mh.EXPIRED_CARE_OF_NONCE, 99, 0, Z))
    net.now = 2.0
    net.run(mn.on_message(stale, CN, 2.0))
    assert B in peer.care_tokens and peer.care_tokens[B].at == 2.0  # tested again at once, and answered
    forged = mh.encode(BindingAck(mh.ACCEPTED, 100, 4, Z))
    peer.update = (100, B, b"x")
    assert mn.on_message(forged, CN, 3.0)[0].fields["why"] == "authenticator"  # type: ignore[union-attr]


# -- the plan, the topology checks and the agents a lab starts ---------------------------------------------------

def _plan(name: str, **site: object) -> Plan:
    text = (ROOT / "topologies" / f"{name}.yaml").read_text()
    topo = loader.loads(text.replace("approach: nptv6", "approach: mobility"))
    if site:
        topo = dataclasses.replace(topo, sites=tuple(dataclasses.replace(
            s, mobility=dataclasses.replace(s.mobility, **site)) for s in topo.sites))
    return build(topo)


def test_a_host_s_home_address_is_the_plan_s_and_only_a_mobility_site_s_host_has_one() -> None:
    """Derived once, in the plan: the host's loopback, its routes' source, its agent's --home and the lab's
    record of it all read the same address (with a home agent, and without one: the first exit's)."""
    for name, home in (("figure1-home-agent", "3fff:ff:201:0:6d:ff:fe00:900"), ("figure1", None)):
        p = _plan(name)
        (h1,) = p.sites[0].hosts
        expected = IPv6Address(home) if home else h1.addresses[p.sites[0].exits[0].name]
        assert h1.home == expected
        assert [m.home for m in lab_mobility.mobile_hosts(p)] == [expected]
        argv = lab_mobility.agents(p, Path("/w"), {})["h1"]
        assert argv[argv.index("--home") + 1] == str(expected)
    assert all(h.home is None for sp in build(loader.load(ROOT / "topologies" / "figure1.yaml")).sites
               for h in sp.hosts)


def test_with_a_home_agent_the_core_routes_the_home_prefix_to_it_and_hosts_hold_their_home_address() -> None:
    p = _plan("figure1-home-agent")
    h1 = p.node("h1").config
    home = IPv6Address("3fff:ff:201:0:6d:ff:fe00:900")
    assert h1.loopback == (IPv6Interface(f"{home}/128"),) and h1.bindings
    assert ("net.ipv6.conf.all.forwarding", "1") not in h1.sysctls
    assert Route(IPv6Network("3fff:ff:100::/64"), IPv6Address("fe80::1"), "h1-eth0", src=home) in h1.routes
    ha = p.node("ha").config
    assert ha.loopback == (IPv6Interface("3fff:ff:201::1/128"),)
    assert ("net.ipv6.conf.all.forwarding", "1") in ha.sysctls
    assert Route(IPv6Network("3fff:ff:201::/64"), unreachable=True) in ha.routes  # never back to the core
    assert Route(IPv6Network("3fff:ff:201::/64"), IPv6Address("3fff:ff:200::2"), "core-eth4") in \
        p.node("core").config.routes
    assert not p.node("r").config.bindings  # no route optimisation: r is no correspondent
    lines = shell.configure(h1)
    assert f"ip -6 rule add pref 20 not fwmark {shell.AGENT_MARK} lookup 200" in lines
    assert not ha.bindings  # what the home agent forwards and its own acknowledgements take its bindings
    assert "ip -6 addr add 3fff:ff:201::1/128 dev lo nodad" in shell.configure(ha)


def test_without_a_home_agent_the_home_address_is_the_first_exit_s_and_every_remote_may_be_a_correspondent() -> None:
    p = _plan("figure1", route_optimisation=True)
    h1 = p.node("h1").config
    assert h1.loopback == () and h1.bindings
    assert p.node("r").config.bindings and not p.node("r").config.loopback
    assert not any(r.src for r in h1.routes)


def test_the_lab_starts_a_mobile_node_per_host_a_home_agent_and_correspondents(tmp_path: Path) -> None:
    p = _plan("figure1-home-agent", route_optimisation=True, binding_lifetime_s=12)
    keys = lab_mobility.new_keys(p)
    argv = lab_mobility.agents(p, tmp_path, keys)
    assert set(argv) == {"h1", "ha", "r"}
    mn = argv["h1"]
    assert mn[mn.index("--home-agent") + 1] == "3fff:ff:201::1" and "--route-optimisation" in mn
    assert mn[mn.index("--prefixes") + 1] == "3fff:a:5::/64,3fff:b:5::/64"
    assert mn[mn.index("--correspondents") + 1] == "3fff:ff:100::2"  # not the home agent
    assert argv["r"][argv["r"].index("--binding-lifetime") + 1] == "12"
    lab_mobility.write_keys(p, tmp_path, keys)
    table = json.loads((tmp_path / "keys" / "mobility-home-agent.json").read_text())
    assert table == {"3fff:ff:201:0:6d:ff:fe00:900": keys["h1"]}
    assert (tmp_path / "keys" / "mobility-h1.key").stat().st_mode & 0o077 == 0
    assert lab_mobility.agents(_plan("figure1"), tmp_path, {}) == {"h1": ANY}  # 5.2's case: no agent, no peers


def test_the_lab_is_steady_once_each_mobile_node_is_registered_on_its_preferred_address() -> None:
    p = _plan("figure1-home-agent", route_optimisation=True)
    a, r = str(p.sites[0].hosts[0].addresses["exa"]), "3fff:ff:100::2"
    events: list[dict[str, object]] = [{"node": "h1", "event": "mobility_moved", "care_of": a}]
    assert "has not acknowledged" in str(lab_mobility.ready_problem(p, events))
    events.append({"node": "h1", "event": "mobility_registered", "care_of": a})
    assert "not yet bound at every correspondent" in str(lab_mobility.ready_problem(p, events))
    events.append({"node": "h1", "event": "mobility_bound", "role": "mobile_node", "correspondent": r,
                   "care_of": a, "lifetime_s": 420})
    assert lab_mobility.ready_problem(p, events) is None
    events.append({"node": "h1", "event": "mobility_moved", "care_of": "3fff:b:5::1"})
    assert "not on its care-of address" in str(lab_mobility.ready_problem(p, events))


def test_a_home_agent_must_be_a_remote_with_a_home_prefix_of_its_own() -> None:
    text = (ROOT / "topologies" / "figure1-home-agent.yaml").read_text()
    with pytest.raises(InputError) as e:
        loader.loads(text.replace("home_agent: {node: ha,", "home_agent: {node: core,")
                     .replace('home: "3fff:ff:201::/64"', 'home: "3fff:ff:100::/64"'))
    msgs = [p.message for p in e.value.problems]
    assert any("'core' is not a remote" in m for m in msgs)
    assert any("3fff:ff:100::/64 overlaps" in m for m in msgs)


# -- the triangle's cost ------------------------------------------------------------------------------------------

def test_through_the_home_agent_a_round_trip_crosses_four_more_links_in_figure1() -> None:
    p = _plan("figure1-home-agent")
    assert triangle.hops(p, "h1", "r") == 5  # h1 - sw - exa - ispa - core - r
    assert triangle.round_trip_links(p, "h1", "r", "ha") == {"direct": 10, "home agent": 14,
                                                            "route optimisation": 10}
    with pytest.raises(ValueError, match="no path"):
        triangle.hops(p, "h1", "nowhere")


def test_round_trips_are_read_from_ping_and_tabled_against_the_direct_path() -> None:
    out = ("64 bytes from 3fff:ff:100::2: icmp_seq=1 ttl=62 time=0.251 ms\n"
           "64 bytes from 3fff:ff:100::2: icmp_seq=2 ttl=62 time=1.05 ms\n--- statistics ---\n")
    assert triangle.ping_times(out) == [0.251, 1.05]
    times = {"direct": [0.2] * 100, "home agent": [0.3] * 99}
    stats = triangle.summarise(times, {"direct": 100, "home agent": 100}, {"direct": 10, "home agent": 14})
    assert stats["home agent"]["answered"] == 99 and stats["direct"]["rtt_ms"]["p50"] == 0.2
    table = triangle.markdown(stats)
    assert "| home agent | 14 | 99/100 | 0.3 [0.3, 0.3] |" in table and "+0.100 ms" in table


def test_an_agent_s_route_changes_render_as_one_ip_batch() -> None:
    home = IPv6Address("3fff:ff:201::10")
    lines = [shell.tunnel_up(), shell.tunnel_route_del(CN, shell.BINDING_TABLE),
             shell.tunnel_route(CN, shell.BINDING_TABLE, src=home), shell.tunnel_route(home)]
    assert lines[0] == "ip link set m6tun mtu 1460 up"  # a 1500-byte link less the outer header
    assert lines[2] == "ip route replace 3fff:ff:100::2/128 dev m6tun src 3fff:ff:201::10 table 200"
    assert lines[3] == "ip route replace 3fff:ff:201::10/128 dev m6tun"  # the main table: the home agent's
    batch = shell.ip_batch(lines)
    assert batch.startswith("printf '%s\\n' 'link set m6tun mtu 1460 up' 'route del 3fff:ff:100::2/128 table 200'")
    assert batch.endswith("| ip -force -batch -")


def test_a_tunnelled_packet_is_rfc_2473_ipv6_in_ipv6_and_only_a_whole_inner_packet_is_handed_on() -> None:
    home, care = IPv6Address("3fff:ff:201::10"), IPv6Address("3fff:b:5::10")
    data = bytes(IPv6(src=str(CN), dst=str(home), hlim=61) / UDP(sport=1, dport=2) / Raw(b"x" * 100))
    outer = tunnel.encapsulate(data, CN, care)
    parsed = IPv6(outer)
    assert (parsed.src, parsed.dst, parsed.nh, parsed.hlim, parsed.plen) == (str(CN), str(care), 41, 64, len(data))
    assert bytes(parsed.payload) == data and len(outer) == len(data) + 40
    assert tunnel.inner(outer[40:]) == data and tunnel.destination(data) == home.packed
    assert tunnel.inner(outer[40:-1]) is None  # truncated: its length field disagrees
    assert tunnel.inner(b"\x45" + data[1:]) is None and tunnel.destination(b"\x60" * 39) is None  # not IPv6


def test_the_mobility_comparison_names_each_row_by_what_runs() -> None:
    from multi6lab.scenarios import compare

    cells = compare.load(ROOT / "scenarios" / "comparisons" / "mobility.yaml")
    assert sorted({c.row for c in cells}) == [
        "mobility (home agent) × link+heartbeat", "mobility (home agent, route optimisation) × link+heartbeat",
        "mobility (no home agent, route optimisation) × link+heartbeat"]
    assert {c.scenario.effective.site("site").mobility.binding_lifetime_s for c in cells} == {420}


def test_a_mobile_node_uses_the_addresses_the_site_router_has_not_deprecated_best_exit_first() -> None:
    from multi6lab.mobility.agent import usable

    out = json.dumps([{"ifname": "h1-eth0", "addr_info": [
        {"local": str(B), "preferred_life_time": 4294967295}, {"local": str(A), "preferred_life_time": 0},
        {"local": "3fff:c:5::1", "preferred_life_time": 100}, {"local": "3fff:b:5::99", "tentative": True}, {}]}])
    prefixes = [IPv6Network("3fff:a:5::/64"), IPv6Network("3fff:b:5::/64")]
    assert usable(out, prefixes) == [B]  # A deprecated; another ISP's address is not the site's
    assert usable(out.replace('"preferred_life_time": 0', '"preferred_life_time": 50'), prefixes) == [A, B]
    assert usable("", prefixes) == []
