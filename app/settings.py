"""Every setting read from the environment, in one place (docs/configuration.md lists them)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from starlette.config import Config, environ
from starlette.datastructures import Secret

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    redis_url: Secret
    database_url: Secret
    host: str
    port: int
    data_dir: Path
    queue_name: str
    worker_concurrency: int
    poll_delay: float
    progress_interval: float
    heartbeat_interval: float
    heartbeat_ttl: float
    ws_queue_size: int
    ws_queue_bytes: int
    ws_gap_timeout: float
    ws_replay_limit: int
    cancel_wait: float
    log_level: str
    log_format: str
    watchdog_interval: float
    reconcile_interval: float
    reconcile_grace: float
    shutdown_grace: float
    api_token: Secret | None
    read_token: Secret | None
    allowed_origins: list[str]
    submit_rate: float
    submit_burst: int
    max_queued: int
    task_modules: list[str]
    builtin_tasks: bool
    task_timeouts: dict[str, float]
    task_max_attempts: dict[str, int]
    smtp_url: Secret | None
    upload_max_bytes: int
    upload_quota_bytes: int
    upload_rate: float
    upload_burst: int
    upload_expiry: float
    result_max_bytes: int
    csv_max_columns: int
    image_max_pixels: int
    log_lines_max: int
    retention_days: float
    retention_interval: float
    webhook_url: Secret | None
    webhook_events: str
    webhook_secret: Secret | None
    webhook_max_attempts: int
    webhook_timeout: float
    webhook_backoff_base: float
    webhook_allow_private: bool
    root_path: str
    forwarded_allow_ips: list[str]


def _secret(value: str) -> Secret | None:
    return Secret(value) if value else None


def _webhook_events(value: str) -> str:
    if value not in ("failed", "final"):
        raise ValueError(f"WEBHOOK_EVENTS must be 'failed' (final failures) or 'final' (every final state), "
                         f"got {value!r}")
    return value


def _log_format(value: str) -> str:
    if value not in ("text", "json"):
        raise ValueError(f"LOG_FORMAT must be 'text' (readable lines) or 'json' (one JSON object per line), got {value!r}")
    return value


ROOT_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/")


def _root_path(value: str) -> str:
    """"/tq" from "/tq", "/tq/" or "tq"; "" for none. It lands in URLs and the OpenAPI document: plain
    path characters only, so it cannot carry a query, a fragment or markup."""
    path = "/" + value.strip().strip("/")
    if path == "/":
        return ""
    if not set(path) <= ROOT_PATH_CHARS or "//" in path or len(path) > 200 or {".", ".."} & set(path.split("/")):
        raise ValueError(f"ROOT_PATH must be a URL path such as /tq (letters, digits, - . _ ~ and /; at most 200 "
                         f"characters, no . or .. segment), got {value!r}")
    return path


def _per_type(cast: Callable[[str], T]) -> Callable[[str], dict[str, T]]:
    """Parse "data_processing=120, image_processing=300" (task type names are checked on use)."""

    def parse(text: str) -> dict[str, T]:
        pairs = [item.partition("=") for item in text.split(",") if item.strip()]
        if any(not sep or not name.strip() for name, sep, _ in pairs):
            raise ValueError(f"expected name=value pairs separated by commas, got {text!r}")
        return {name.strip(): cast(value.strip()) for name, _, value in pairs}

    return parse


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    config = Config(environ=env if env is not None else environ)
    data_dir = Path(config("DATA_DIR", default="var"))
    return Settings(
        redis_url=config("REDIS_URL", cast=Secret, default="redis://127.0.0.1:6379/0"),
        database_url=config("DATABASE_URL", cast=Secret, default=f"sqlite:///{data_dir / 'tasks.db'}"),
        host=config("HOST", default="127.0.0.1"),
        port=config("PORT", cast=int, default=8000),
        data_dir=data_dir,
        queue_name=config("QUEUE_NAME", default="tq:queue"),
        worker_concurrency=config("WORKER_CONCURRENCY", cast=int, default=10),
        poll_delay=config("WORKER_POLL_DELAY", cast=float, default=1.0),
        progress_interval=config("PROGRESS_INTERVAL", cast=float, default=0.2),
        heartbeat_interval=config("HEARTBEAT_INTERVAL", cast=float, default=2.0),
        heartbeat_ttl=config("HEARTBEAT_TTL", cast=float, default=6.0),
        ws_queue_size=config("WS_QUEUE_SIZE", cast=int, default=1000),
        ws_queue_bytes=config("WS_QUEUE_BYTES", cast=int, default=4 * 1024 * 1024),
        ws_gap_timeout=config("WS_GAP_TIMEOUT", cast=float, default=1.0),
        ws_replay_limit=config("WS_REPLAY_LIMIT", cast=int, default=10_000),
        cancel_wait=config("CANCEL_WAIT", cast=float, default=2.0),
        log_level=config("LOG_LEVEL", default="INFO"),
        log_format=_log_format(config("LOG_FORMAT", default="text")),
        watchdog_interval=config("WATCHDOG_INTERVAL", cast=float, default=1.0),
        reconcile_interval=config("RECONCILE_INTERVAL", cast=float, default=5.0),
        reconcile_grace=config("RECONCILE_GRACE", cast=float, default=10.0),
        shutdown_grace=config("SHUTDOWN_GRACE", cast=float, default=3.0),
        api_token=config("API_TOKEN", cast=_secret, default=""),
        read_token=config("READ_TOKEN", cast=_secret, default=""),
        allowed_origins=config("ALLOWED_ORIGINS", cast=lambda v: [o.strip() for o in v.split(",") if o.strip()],
                               default=""),
        submit_rate=config("SUBMIT_RATE", cast=float, default=50.0),
        submit_burst=config("SUBMIT_BURST", cast=int, default=200),
        max_queued=config("MAX_QUEUED", cast=int, default=100_000),
        task_modules=config("TASK_MODULES", cast=lambda v: [m.strip() for m in v.split(",") if m.strip()], default=""),
        builtin_tasks=config("BUILTIN_TASKS", cast=bool, default=True),
        task_timeouts=config("TASK_TIMEOUTS", cast=_per_type(float), default=""),
        task_max_attempts=config("TASK_MAX_ATTEMPTS", cast=_per_type(int), default=""),
        smtp_url=config("SMTP_URL", cast=Secret, default=None),
        upload_max_bytes=config("UPLOAD_MAX_BYTES", cast=int, default=50 * 1024 * 1024),
        upload_quota_bytes=config("UPLOAD_QUOTA_BYTES", cast=int, default=2 * 1024**3),
        upload_rate=config("UPLOAD_RATE", cast=float, default=10 * 1024 * 1024),
        upload_burst=config("UPLOAD_BURST", cast=int, default=200 * 1024 * 1024),
        upload_expiry=config("UPLOAD_EXPIRY", cast=float, default=86_400.0),
        result_max_bytes=config("RESULT_MAX_BYTES", cast=int, default=1024 * 1024),
        csv_max_columns=config("CSV_MAX_COLUMNS", cast=int, default=1000),
        image_max_pixels=config("IMAGE_MAX_PIXELS", cast=int, default=50_000_000),
        log_lines_max=config("LOG_LINES_MAX", cast=int, default=1000),
        retention_days=config("RETENTION_DAYS", cast=float, default=30.0),
        retention_interval=config("RETENTION_INTERVAL", cast=float, default=600.0),
        webhook_url=config("WEBHOOK_URL", cast=_secret, default=""),
        webhook_events=config("WEBHOOK_EVENTS", cast=_webhook_events, default="failed"),
        webhook_secret=config("WEBHOOK_SECRET", cast=_secret, default=""),
        webhook_max_attempts=config("WEBHOOK_MAX_ATTEMPTS", cast=int, default=8),
        webhook_timeout=config("WEBHOOK_TIMEOUT", cast=float, default=10.0),
        webhook_backoff_base=config("WEBHOOK_BACKOFF_BASE", cast=float, default=1.0),
        webhook_allow_private=config("WEBHOOK_ALLOW_PRIVATE", cast=bool, default=False),
        root_path=_root_path(config("ROOT_PATH", default="")),  # outside cast=: Config would drop the message
        forwarded_allow_ips=config("FORWARDED_ALLOW_IPS", cast=lambda v: [a.strip() for a in v.split(",") if a.strip()],
                                   default=""),
    )
