"""The web process: uvicorn serving the app of `app.main:create_app` on HOST:PORT with our log set-up (the Procfile's
web and the `taskqueue-web` script), its own log lines (access lines included) in the process's LOG_FORMAT
(core/logs.py)."""

from typing import Any

import uvicorn

from app.core.cli import parse_command_line, refused_start
from app.core.logs import configure_logging
from app.main import create_app
from app.settings import Settings, load_settings
from app.web.httpheads import MAX_HEAD_BYTES


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn serves the app, wherever it is started (here, and the tests' servers): our HTTP and
    WebSocket protocols, bounded heads and frames, and X-Forwarded-* believed only from FORWARDED_ALLOW_IPS
    (uvicorn's own default trusts `127.0.0.1,::1`, so a local client could pick its own address)."""
    return {
        "http": "app.web.httpheads:BoundedHeadsProtocol", "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "ws": "app.web.live.frames:FramesProtocol", "ws_max_size": 65536,
        "proxy_headers": bool(settings.forwarded_allow_ips), "forwarded_allow_ips": settings.forwarded_allow_ips,
    }


def main() -> None:
    parse_command_line("taskqueue-web", "The web process: the API, the WebSocket and the dashboard.")
    with refused_start("taskqueue-web"):
        settings = load_settings()
        configure_logging(settings, "web")
        app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, **uvicorn_options(settings))
