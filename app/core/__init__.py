"""The vocabulary every package speaks: statuses and their moves, wire shapes, errors, Redis keys and connections, the clock, logging."""
