"""The web process: uvicorn serving the app of `app.main:create_app` on HOST:PORT with our log set-up (the Procfile's
web and the `taskqueue-web` script), its own log lines (access lines included) in the process's LOG_FORMAT
(core/logs.py)."""

import uvicorn

from app.core.cli import parse_command_line, refused_start
from app.core.logs import configure_logging
from app.main import create_app
from app.settings import load_settings


def main() -> None:
    parse_command_line("taskqueue-web", "The web process: the API, the WebSocket and the dashboard.")
    with refused_start("taskqueue-web"):
        settings = load_settings()
        configure_logging(settings, "web")
        app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, ws="app.web.live.frames:FramesProtocol",
                ws_max_size=65536, log_config=None)
