"""Scenarios: YAML files of faults, traffic and trials (and comparisons/), and the code that checks them."""
