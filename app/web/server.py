"""The web process: uvicorn serving `app.main:create_app` on HOST:PORT with our log set-up (the Procfile's
web and the `taskqueue-web` script), its own log lines (access lines included) in the process's LOG_FORMAT
(core/logs.py)."""

import uvicorn

from app.core.logs import configure_logging
from app.settings import load_settings


def main() -> None:
    settings = load_settings()
    configure_logging(settings, "web")
    uvicorn.run("app.main:create_app", factory=True, host=settings.host, port=settings.port,
                ws="app.web.live.frames:FramesProtocol", ws_max_size=65536, log_config=None)
