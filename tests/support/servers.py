"""The app as the Procfile serves it (uvicorn with our frames protocol) on a free port, and the settings
a test gives it."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn

from app.main import create_app
from app.settings import Settings, load_settings
from app.web.server import uvicorn_options
from launcher.redis_server import free_port


def make_settings(redis_url: str, db_url: str, data_dir: Path, **extra: str) -> Settings:
    return load_settings({
        "REDIS_URL": redis_url, "DATABASE_URL": db_url, "DATA_DIR": str(data_dir),
        "HEARTBEAT_INTERVAL": "0.5", "HEARTBEAT_TTL": "3",
        "PROGRESS_INTERVAL": "0.05", **extra,
    })


WS_PROTOCOL = "app.web.live.frames:FramesProtocol"  # the Procfile's `--ws`


async def serve(settings: Settings, ws: str = WS_PROTOCOL,
                port: int | None = None) -> tuple[uvicorn.Server, "asyncio.Task[None]", str]:
    """The app under uvicorn as the Procfile runs it (`ws`: another WebSocket protocol to test), on a
    free port or on `port` (a restarted server comes back where a page looks for it)."""
    port = port or free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", timeout_graceful_shutdown=2, **{**uvicorn_options(settings), "ws": ws})
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, task, f"127.0.0.1:{port}"


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[str]:
    """`serve` for a block: yields host:port, and stops the server when the block ends."""
    server, task, address = await serve(settings)
    try:
        yield address
    finally:
        server.should_exit = True
        await task
