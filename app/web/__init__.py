"""The HTTP edge: REST handlers, security, OpenAPI, health; `live/` is the WebSocket fan-out."""
