# multi6lab: the README's commands. Targets that touch the network need root ('sudo make ...').
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
M6    := $(VENV)/bin/multi6lab
# Pure modules held to mypy --strict; the coverage floor (percent) only goes up.
PURE  := topologies controller/policy.py controller/npt.py controller/packets.py controller/liveness.py controller/pairs.py controller/mapping.py \
         scenarios/model.py scenarios/faults.py scenarios/compare.py tools/analysis.py tools/report.py \
         tools/comparison.py tools/draw.py tools/runstate.py
COVERAGE_FLOOR := 90
SCENARIO ?= scenarios/demo.yaml

.PHONY: setup demo test unit integration lint validate draw clean scenario scenarios report compare

setup:
	@bash tools/setup.sh

demo: setup
	$(M6) run $(SCENARIO)

lint: setup
	$(VENV)/bin/ruff check topologies controller scenarios tools tests
	$(VENV)/bin/mypy $(PURE)

unit: setup
	$(PY) -m pytest tests/unit -q --cov --cov-report=term-missing:skip-covered --cov-fail-under=$(COVERAGE_FLOOR)

integration: setup
	$(PY) -m pytest tests/integration -q

test: lint
	$(PY) -m pytest tests/unit -q --cov --cov-report=term-missing:skip-covered --cov-fail-under=$(COVERAGE_FLOOR)
	$(PY) -m pytest tests/integration -q -x --durations=10

validate: setup
	$(M6) validate topologies/*.yaml scenarios/*.yaml

draw: setup
	$(M6) draw topologies/figure1.yaml -o results/figure1.png

clean:
	@if [ -x $(M6) ]; then $(M6) clean; else echo "nothing to clean (no .venv yet)"; fi

scenario: setup
	$(M6) run $(SCENARIO)

scenarios: setup
	@for s in scenarios/*.yaml; do $(M6) run $$s || exit 1; done

report: setup
	$(M6) report

compare: setup
	$(M6) compare scenarios/compare.yaml
