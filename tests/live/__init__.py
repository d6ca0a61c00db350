"""The WebSocket `/ws`: hello, replay with `since`, live events in seq order, slow clients, ready-made frames."""
