"""Lab plumbing: Mininet and Open vSwitch, the controller process, run records, the scenario runner."""
