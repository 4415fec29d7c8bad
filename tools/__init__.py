"""multi6lab: an emulation testbed for IPv6 multihoming (RFC 4177).

This folder is the package's root: the one CLI (:mod:`multi6lab.cli`), the shared vocabulary
(:mod:`multi6lab.vocabulary`), the lab plumbing (:mod:`multi6lab.lab`), the traffic run inside the emulated nodes
(:mod:`multi6lab.traffic`) and the results (:mod:`multi6lab.results`). The topologies, controller and scenarios
folders are its sub-packages ``multi6lab.topologies``, ``multi6lab.controller`` and ``multi6lab.scenarios``.
"""
