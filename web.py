"""The web process: `python web.py` (the Procfile's web) serves `app.main:create_app` with uvicorn on
HOST:PORT, its own log lines (access lines included) in the process's LOG_FORMAT (core/logs.py).

`uvicorn app.main:create_app --factory --ws app.web.live.frames:FramesProtocol` works too, with uvicorn's
own log format.
"""

import uvicorn

from app.core.logs import configure_logging
from app.settings import load_settings

if __name__ == "__main__":
    settings = load_settings()
    configure_logging(settings, "web")
    uvicorn.run("app.main:create_app", factory=True, host=settings.host, port=settings.port,
                ws="app.web.live.frames:FramesProtocol", ws_max_size=65536, log_config=None)
