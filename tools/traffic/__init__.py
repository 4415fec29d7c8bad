"""Traffic run inside the emulated nodes: UDP probe streams, TCP sessions, new connections."""
