"""The testbed's shared words: approaches, triggers, exit policies, fault kinds and controller events.

The topology loader, the controller, the runner, the analysis and the reports all speak of these; each is
defined here once, as a string-valued enum, so a misspelling is an AttributeError instead of a comparison
that is silently false. The values are what users write in YAML and what the controller's event log holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Name(str, Enum):
    """A string-valued name: compares, hashes, serialises and formats as its value."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)


class Approach(Name):
    """RFC 4177 section 5's ways for a site to be multihomed (what a site runs)."""

    ROUTING = "routing"  # 5.1: a PI prefix announced by BGP through every ISP
    SOURCE_ROUTING = "source-routing"  # 5.6: a locator per ISP, exits chosen by source prefix
    NPTV6 = "nptv6"  # 5.6: one identity prefix rewritten to a locator per exit (RFC 6296)
    ID_LOC = "id-loc"  # 5.4, 6: edges at both ends map identities to locator pairs
    MPTCP = "mptcp"  # 5.5: a transport subflow per locator
    MOBILITY = "mobility"  # 5.2: hosts keep a home address; care-of addresses bound by Mobile IPv6 (RFC 6275)

    @property
    def profile(self) -> Profile:
        return PROFILES[self]


@dataclass(frozen=True)
class Profile:
    """What an approach is, in the terms the rest of the code asks about: each fact is declared here once, and
    the plan, the controller, the lab and the runner ask the fact, never which approach it is."""

    bgp: bool = False  # the exits are BGP routers announcing the site's PI prefix (no controller runs them)
    translates: bool = False  # hosts hold an identity; the exits map it to a locator per ISP (RFC 6296)
    per_isp_addresses: bool = False  # hosts hold an address from every ISP and choose among them (RFC 8678)
    edges_map: bool = False  # the site's edge maps identities through the mapping service and locator pairs
    home_address: bool = False  # hosts keep a home address bound by Mobile IPv6 wherever they are
    subflows: bool = False  # sessions run MPTCP: a subflow per address
    node_daemons: bool = False  # its nodes run daemons (FRR, Mobile IPv6 agents) the lab reaches by file or socket

    @property
    def controlled(self) -> bool:
        """The site's switches are the controller's (every approach but BGP's)."""
        return not self.bgp


PROFILES = {
    Approach.ROUTING: Profile(bgp=True, node_daemons=True),
    Approach.SOURCE_ROUTING: Profile(per_isp_addresses=True),
    Approach.NPTV6: Profile(translates=True),
    Approach.ID_LOC: Profile(translates=True, edges_map=True),
    Approach.MPTCP: Profile(per_isp_addresses=True, subflows=True),
    Approach.MOBILITY: Profile(per_isp_addresses=True, home_address=True, node_daemons=True),
}


class Trigger(Name):
    """RFC 4177 section 6.3.1's signals that a path failed."""

    LINK = "link"  # port status of an exit's uplink
    HEARTBEAT = "heartbeat"  # probes through each ISP (BFD-like)
    ICMP = "icmp"  # an ISP's ICMPv6 destination unreachable
    ROUTING = "routing"  # BGP withdrawal (the routing approach's only trigger)
    TRANSPORT = "transport"  # an outbound TCP flow repeating a segment, seen at the fabric


class ExitPolicy(Name):
    PRIMARY_BACKUP = "primary-backup"
    LOAD_SHARE = "load-share"


class FaultKind(Name):
    LINK_DOWN = "link_down"
    BLACKHOLE = "blackhole"
    FLAP = "flap"
    LOSS_BURST = "loss_burst"
    ISP_OUTAGE = "isp_outage"
    ISP_UPLINK_DOWN = "isp_uplink_down"
    BASELINE = "baseline"  # nothing breaks: what the instrument reads on a healthy network
    MAPPING_OUTAGE = "mapping_outage"  # the id-loc mapping service is cut off from the network


class Event(Name):
    """What the controller (and, for the routing approach, bgpd's log) reports, one JSON line each.

    The contract between the controller, the lab's readiness checks, the runner and the analysis.
    """

    CONTROLLER_START = "controller_start"
    SWITCH_CONNECTED = "switch_connected"
    UNKNOWN_SWITCH = "unknown_switch"
    RULES_SENT = "rules_sent"  # a batch of FlowMods/GroupMods left, with its cause
    BARRIER_OK = "barrier_ok"  # the switch applied it
    PORT_UP = "port_up"
    PORT_DOWN = "port_down"
    HEARTBEAT_UP = "heartbeat_up"  # a heartbeat path answered for the first time
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"
    PATH_DEAD = "path_dead"  # an exit became unusable (any trigger)
    PATH_ALIVE = "path_alive"
    DEST_DEAD = "dest_dead"  # icmp or transport trigger: a destination kept away from an exit
    DEST_ALIVE = "dest_alive"
    PAIR_UP = "pair_up"  # id-loc: the far edge reported a directed locator pair's first probe
    PAIR_DEAD = "pair_dead"
    PAIR_SELECTED = "pair_selected"
    PAIR_CONFIRMED = "pair_confirmed"
    EXPLORING = "exploring"
    ICMP_SOURCE_POLICY = "icmp_source_policy"  # source-routing: ICMPv6 1/5 sent for a stale source
    COUNTERS = "counters"
    RA_ERROR = "ra_error"
    HEARTBEAT_ERROR = "heartbeat_error"
    POLL_ERROR = "poll_error"  # asking an exit for its packet counts failed (it went away mid-send)
    SESSION_DOWN = "session_down"  # routing: an exit's BGP session went down (from bgpd's log)
    SESSION_UP = "session_up"
    MAPPING_REGISTERED = "mapping_registered"  # id-loc: the mapping service accepted the site's locators
    MAPPING_REFUSED = "mapping_refused"  # an update refused, or a looked-up record that fails the registry
    MAPPING_RESOLVED = "mapping_resolved"  # a lookup completed: the far site's identity and locators
    MAPPING_UNKNOWN = "mapping_unknown"  # a lookup found no site, or a site without locators
    MAPPING_RETRY = "mapping_retry"  # a query or update went unanswered and was sent again
    NEIGHBOUR_SOLICIT = "neighbour_solicit"  # nptv6: a packet for an address the plan does not list; asked who has it
    NEIGHBOUR_LEARNED = "neighbour_learned"  # ... a host answered: the fabric delivers to it from now on
    NEIGHBOUR_FAILED = "neighbour_failed"  # ... nobody answered; its held packets were dropped
    TRANSLATION_LEARNED = "translation_learned"  # nptv6 beyond /48: an address's exact translation installed
    TRANSLATION_EXPIRED = "translation_expired"  # ... and removed after its site's translation_idle_s unused
    CONTACT_RELEASED = "contact_released"  # id-loc: packets held until a lookup placed them went on (waited_ms)
    # mobility (the agents in hosts, the home agent and correspondents, not the controller):
    MOBILITY_START = "mobility_start"  # an agent started, with its role and settings
    MOBILITY_MOVED = "mobility_moved"  # a mobile node took another care-of address (or went home)
    MOBILITY_REGISTERED = "mobility_registered"  # its home agent acknowledged the care-of address
    MOBILITY_TESTED = "mobility_tested"  # a return-routability test answered: a fresh keygen token
    MOBILITY_PATH = "mobility_path"  # a mobile node's data path: its care-of address, where each peer's tunnel goes
    MOBILITY_BOUND = "mobility_bound"  # a binding made (home agent, correspondent) or acknowledged (mobile node)
    MOBILITY_EXPIRED = "mobility_expired"  # a binding ran out without being renewed
    MOBILITY_REFUSED = "mobility_refused"  # a message dropped or an update refused, and why
    MOBILITY_ERROR = "mobility_error"  # a send or a route change the kernel refused


# The first of these about a faulted exit after a fault is its detection (analysis.detection_ms).
# An id-loc edge's send timeout is an EXPLORING event: it has noticed, before it knows which way it failed.
DETECTION_EVENTS = (Event.PORT_DOWN, Event.HEARTBEAT_TIMEOUT, Event.PATH_DEAD, Event.PAIR_DEAD, Event.EXPLORING,
                    Event.DEST_DEAD, Event.SESSION_DOWN)
# Events after which the policy's rules change.
RULE_CHANGING_EVENTS = (Event.PATH_DEAD, Event.PATH_ALIVE, Event.PAIR_SELECTED, Event.DEST_DEAD, Event.DEST_ALIVE,
                        Event.MAPPING_RESOLVED)
