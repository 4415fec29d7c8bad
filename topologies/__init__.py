"""Topologies: the YAML files users write, and the code that parses them once into a frozen model and a plan."""
