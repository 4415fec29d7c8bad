# multi6lab: the README's commands. Targets that touch the network need root ('sudo make ...').
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
M6    := $(VENV)/bin/multi6lab
# Modules held to mypy --strict, by their names in the multi6lab package: the pure ones (models, address
# maths, the controller's decisions, analysis) and the typed plumbing that has no untyped framework under it.
TYPED := multi6lab.vocabulary multi6lab.topologies multi6lab.scenarios multi6lab.results \
         multi6lab.controller.policy multi6lab.controller.npt multi6lab.controller.packets \
         multi6lab.controller.liveness multi6lab.controller.pairs multi6lab.controller.mapping \
         multi6lab.lab.runstate
# mypy does not follow the editable install's import hook, so it reads the package through a tree of links
# that spells the same mapping as pyproject.toml (tools/ is the package root).
TYPECHECK := build/typecheck
COVERAGE_FLOOR := 90
SCENARIO ?= scenarios/demo.yaml
COMPARISON ?= scenarios/comparisons/approaches.yaml

.PHONY: setup demo test unit integration lint validate draw clean scenario scenarios report compare

setup:
	@bash tools/setup.sh

demo: setup
	$(M6) run $(SCENARIO)

lint: setup
	$(VENV)/bin/ruff check topologies controller scenarios tools tests
	@rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/multi6lab && \
	  for f in tools/*; do ln -s "$$PWD/$$f" $(TYPECHECK)/multi6lab/; done && \
	  for d in topologies controller scenarios; do ln -s "$$PWD/$$d" $(TYPECHECK)/multi6lab/$$d; done
	cd $(TYPECHECK) && $(CURDIR)/$(VENV)/bin/mypy --config-file $(CURDIR)/pyproject.toml $(addprefix -p ,$(TYPED))

unit: setup
	$(PY) -m pytest tests/unit -q --cov --cov-report=term-missing:skip-covered --cov-fail-under=$(COVERAGE_FLOOR)

integration: setup
	$(PY) -m pytest tests/integration -q

test: lint
	$(PY) -m pytest tests/unit -q --cov --cov-report=term-missing:skip-covered --cov-fail-under=$(COVERAGE_FLOOR)
	$(PY) -m pytest tests/integration -q -x --durations=10

validate: setup
	$(M6) validate topologies/*.yaml scenarios/*.yaml scenarios/comparisons/*.yaml

draw: setup
	$(M6) draw topologies/figure1.yaml -o results/figure1.png

clean:
	@if [ -x $(M6) ]; then $(M6) clean; else echo "nothing to clean (no .venv yet)"; fi

scenario: setup
	$(M6) run $(SCENARIO)

# Every shipped scenario (scenarios/*.yaml; comparisons live in scenarios/comparisons/).
scenarios: setup
	@for s in scenarios/*.yaml; do $(M6) run $$s || exit 1; done

report: setup
	$(M6) report

compare: setup
	$(M6) compare $(COMPARISON)
