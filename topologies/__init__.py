"""Topologies: YAML files, their loader/validator, the frozen model and the pure Topo plan."""
