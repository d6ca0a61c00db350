"""The vocabulary every package speaks: statuses and their moves, wire shapes, errors, Redis keys and connections, the clock, waiting for a wake-up, group commit, logging."""
