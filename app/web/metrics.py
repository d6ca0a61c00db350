"""The figures over HTTP: `GET /metrics` (Prometheus' text format) and `GET /api/metrics/series` (the
dashboard's charts)."""

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from app.core.errors import OUTAGES, InvalidParameters, Unavailable
from app.metrics import prometheus
from app.metrics.figures import queue_depth
from app.metrics.series import WINDOWS, build
from app.web.responses import JSONResponse


async def metrics(request: Request) -> Response:
    state = request.state
    try:
        snapshot = await prometheus.read(state.redis, state.stores, state.settings.queue_name, list(state.types))
    except OUTAGES as exc:
        raise Unavailable(f"figures unavailable ({exc.__class__.__name__}); retry later") from exc
    registry = CollectorRegistry()
    registry.register(snapshot)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def series(request: Request) -> JSONResponse:
    window = request.query_params.get("window", "hour")
    if window not in WINDOWS:
        raise InvalidParameters("window", f"must be one of {', '.join(WINDOWS)}, got {window[:40]!r}")
    state = request.state
    now = time.time()
    try:
        minutes, workers = await state.minutes.read(state.redis, window, now)
        depth = await queue_depth(state.redis, state.stores.tasks, state.settings.queue_name)
    except OUTAGES as exc:
        raise Unavailable(f"figures unavailable ({exc.__class__.__name__}); retry later") from exc
    return JSONResponse(build(window, now, minutes, sum(depth["queued"].values()), workers))
