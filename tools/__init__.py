"""Command-line tools: the multi6lab CLI, emulator plumbing, probes, analysis, plots, drawing, cleanup."""
