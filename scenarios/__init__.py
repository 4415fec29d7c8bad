"""Scenarios: YAML files describing faults, traffic and trials, and the runner that executes them."""
