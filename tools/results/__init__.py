"""From probe logs and controller events to numbers, tables and pictures (pure, but for file output)."""
