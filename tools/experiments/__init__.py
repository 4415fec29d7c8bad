"""The lab's experiments beyond a scenario run: one module each, behind one interface (:class:`recipe.Experiment`:
its options, and a run that checks them, measures, summarises through tools/results and reports through the
shared :class:`recipe.Record`).

This list is the registry: adding an experiment is one module and one line here. A module is imported only
when its own sub-command runs (or asks for its help), so ``multi6lab validate`` does not pay for every lab
driver's imports.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import cast

from multi6lab.experiments.recipe import Experiment


@dataclass(frozen=True)
class Card:
    """An experiment as the command line lists it: its sub-command, its module, its one-line help."""

    name: str
    module: str
    help: str

    def load(self) -> Experiment:
        return cast(Experiment, importlib.import_module(f"{__name__}.{self.module}"))


EXPERIMENTS = (
    Card("compare", "compare", "RFC 4177's approaches side by side on the same faults and clock (root)"),
    Card("first-contact", "firstcontact", "id-loc: what the first packet between two sites that have never met "
                                          "waits for (lookups, rules), and a plain host's (root)"),
    Card("upgrade", "upgrade", "id-loc: a peer gains support while sessions with it run; do they survive both "
                               "edges' upgrade (root)"),
    Card("selection", "selection", "locator selection: a load-sharing site's flow split against its weights, and "
                                   "whether hosts follow their address selection policy (root)"),
    Card("bringup", "bringup", "bring-up and teardown time and memory against the lab's size: Figure 1 and N "
                               "generated dual-homed sites (root)"),
    Card("frr-scale", "frrscale", "RFC 4177 5.1 on FRR: N provider-independent prefixes injected at a site exit, "
                                  "the core's time to learn and forget them and its memory (root)"),
    Card("delay-accuracy", "delayaccuracy", "link delay as achieved against as configured, at 1 kHz alone and "
                                            "beside a TCP bulk flow; exit 1 if one misses 1 ms (root)"),
    Card("triangle", "triangle", "mobility: links and round trips through the home agent, with route "
                                 "optimisation, and plain IPv6 (root)"),
    Card("new-addresses", "newaddresses", "nptv6 beyond /48: a new address's first-packet wait, the rate of new "
                                          "addresses the controller takes in, and rules per address (root)"),
    Card("scale-outage", "scaleoutage", "an ISP outage that hits N sites at once: each site's outage against N, "
                                        "on generated topologies (root)"),
)
