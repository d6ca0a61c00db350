"""Live updates: one Redis subscription per web process, released in seq order, fanned out to every WebSocket client."""
