# multi6lab: the README's commands. Targets that touch the network need root ('sudo make ...').
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
M6    := $(VENV)/bin/multi6lab
# mypy does not follow the editable install's import hook, so it reads the package through a tree of links
# that spells the same mapping as pyproject.toml (tools/ is the package root).
TYPECHECK := build/typecheck
COVERAGE_FLOOR := 96.8
SCENARIO ?= scenarios/demo.yaml
COMPARISON ?= scenarios/comparisons/approaches.yaml
N ?= 5
# Where runs, comparisons, drawings and repeat reports go (the CLI reads it as MULTI6LAB_RESULTS).
RESULTS ?= results
export MULTI6LAB_RESULTS := $(RESULTS)
TESTS ?= tests/integration
# TRIALS=n overrides every scenario's (or comparison cell's) trial count: a quick look, or a test of the target.
TRIALS_ARG := $(if $(TRIALS),--trials $(TRIALS))
# SERVERS=n spreads each lab over n servers (this machine and n-1 emulated ones; docs/cluster.md).
SERVERS_ARG := $(if $(SERVERS),--servers $(SERVERS))

.PHONY: vm vm-test vm-smoke vm-shell setup venv demo test unit integration test-repeat lint validate draw clean scenario scenarios report compare soak \
        first-contact upgrade selection scale-outage triangle bringup frr-scale delay-accuracy new-addresses

setup:
	@bash tools/setup.sh

# Only the .venv, without root: all that lint and the unit tests need.
venv:
	@bash tools/setup.sh --venv

demo: setup
	$(M6) run $(SCENARIO) $(TRIALS_ARG) $(SERVERS_ARG)

lint: venv
	$(VENV)/bin/ruff check topologies controller scenarios tools tests
	@rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/multi6lab && \
	  for f in tools/*; do ln -s "$$PWD/$$f" $(TYPECHECK)/multi6lab/; done && \
	  for d in topologies controller scenarios; do ln -s "$$PWD/$$d" $(TYPECHECK)/multi6lab/$$d; done
	@# every module but the plumbing (pyproject.toml lists it once, as coverage's 'omit'): tools/layout.py
	cd $(TYPECHECK) && $(CURDIR)/$(VENV)/bin/mypy --config-file $(CURDIR)/pyproject.toml \
	  $$($(CURDIR)/$(PY) -m multi6lab.layout)

unit: venv
	$(PY) -m pytest tests/unit -q --cov --cov-report=term-missing:skip-covered --cov-fail-under=$(COVERAGE_FLOOR)

integration: setup
	$(PY) -m pytest tests/integration -q

# The integration suite (or TESTS) N times, each test on fresh labs; then each test's pass count
# ($(RESULTS)/test-repeat/summary.md).
test-repeat: setup
	@rm -rf $(RESULTS)/test-repeat && mkdir -p $(RESULTS)/test-repeat
	@for i in $$(seq 1 $(N)); do echo "== integration run $$i of $(N)"; \
	  $(PY) -m pytest $(TESTS) -q -p no:cacheprovider --junitxml=$(RESULTS)/test-repeat/run-$$i.xml; \
	done; $(PY) -m multi6lab.results.repeat $(RESULTS)/test-repeat/run-*.xml

test: setup lint
	$(PY) -m pytest tests/unit -q --cov --cov-report=term-missing:skip-covered --cov-fail-under=$(COVERAGE_FLOOR)
	$(PY) -m pytest tests/integration -q -x --durations=10

validate: setup
	$(M6) validate topologies/*.yaml scenarios/*.yaml scenarios/comparisons/*.yaml scenarios/benchmarks/*.yaml

draw: setup
	@mkdir -p $(RESULTS)
	$(M6) draw topologies/figure1.yaml -o $(RESULTS)/figure1.png

clean:
	@if [ -x $(M6) ]; then $(M6) clean; else echo "nothing to clean (no .venv yet)"; fi

scenario: setup
	$(M6) run $(SCENARIO) $(TRIALS_ARG) $(SERVERS_ARG)

# Every shipped scenario (scenarios/*.yaml; comparisons live in scenarios/comparisons/).
scenarios: setup
	$(M6) run scenarios/*.yaml $(TRIALS_ARG) $(SERVERS_ARG)

report: setup
	$(M6) report

compare: setup
	$(M6) compare $(COMPARISON) $(TRIALS_ARG)

# What a first packet between two id-loc sites that have never met waits (72 controller restarts, ~5 minutes).
first-contact: setup
	$(M6) first-contact $(TRIALS_ARG)

# A peer that gains id-loc support while sessions with it run (20 trials, a lab each, about 5 minutes).
upgrade: setup
	$(M6) upgrade $(TRIALS_ARG)

# Locator selection: a load-sharing site's split of 2,000 flows against weights 3:1, and whether source-routing
# hosts follow their address selection policy through a failure (two labs, about a minute).
selection: setup
	$(M6) selection

# Bring-up and teardown time and memory: Figure 1, then 20, 50 and 100 generated sites (3 each, several minutes).
bringup: setup
	$(M6) bringup $(SERVERS_ARG)

# RFC 4177 5.1 on FRR: 1,000, 10,000 and 100,000 PI prefixes through the emulated core (a few minutes).
frr-scale: setup
	$(M6) frr-scale

# Mobile IPv6's triangle: round trips through the home agent, with route optimisation, and plain (two labs).
triangle: setup
	$(M6) triangle

# An ISP outage hitting 1, 5, 10 and 20 sites at once (nptv6, link + heartbeat; 10 outages each, a few minutes).
scale-outage: setup
	$(M6) scale-outage $(TRIALS_ARG)

# How closely delayed links keep their delay: 5, 25 and 50 ms, 1 kHz probes alone and beside TCP (about a minute).
delay-accuracy: setup
	$(M6) delay-accuracy

# nptv6 beyond /48 (figure1-pd56): a new address's first packet, the rate of new addresses, rules per address.
new-addresses: setup
	$(M6) new-addresses

# The Mininet VM (docs/vm.md): a Debian guest with the kernel datapath, netem and SRv6, built from Debian packages
# (cached; rebuilt when its inputs change), booted under qemu (KVM where a KVM guest runs, TCG otherwise).
vm:
	@bash tools/vm/build.sh

# In the guest: the demo (TRIALS, default 2) on the kernel datapath and the full-kernel integration tests; results
# and the tests' report come back to results/vm-test-<time>/; the exit status is the guest's.
vm-test: vm setup
	$(M6) vm test --trials $(or $(TRIALS),2)

# What CI runs: boot, the demo on the kernel datapath (one trial).
vm-smoke: vm setup
	$(M6) vm smoke --trials $(or $(TRIALS),1)

vm-shell: vm setup
	$(M6) vm shell

# 500 failovers in one lab (about half an hour): resources after each, first and last 100 outages compared.
soak: setup
	$(M6) run scenarios/benchmarks/soak.yaml $(TRIALS_ARG)
