"""The example deployment in deploy/systemd/ is checked, not just written: its commands are the project's
real entry points with the Procfile's options, every variable of its env file is a real setting, and
systemd itself accepts the units (`systemd-analyze verify`, where it exists). Also docs/operations.md's proxy
advice: the same-origin check passes behind a proxy exactly when it forwards Host and the scheme."""

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from app.settings import Settings, load_settings
from tests.support.servers import make_settings

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
ENV_FILE = UNITS / "taskqueue.env"
INSTALL = "/opt/taskqueue"  # where the units expect the checkout (with its .venv)
SHARED = {"REDIS_URL", "DATABASE_URL", "QUEUE_NAME", "DATA_DIR", "API_TOKEN", "READ_TOKEN"}


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read(UNITS / name)
    return parser


def exec_start(name: str) -> list[str]:
    return shlex.split(unit(name)["Service"]["ExecStart"])


def procfile(process: str) -> list[str]:
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith(f"{process}:"))
    return shlex.split(line.partition(":")[2])


def env_assignments() -> dict[str, str]:
    """NAME=value lines of the env file, commented-out examples included (they must be real too)."""
    pairs = {}
    for line in ENV_FILE.read_text().splitlines():
        text = line.lstrip("#").strip()
        name, sep, value = text.partition("=")
        if sep and name.isupper() and name.replace("_", "").isalnum():
            pairs[name] = value
    return pairs


class Recording(dict[str, str]):
    """An empty environment that remembers every name asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return False

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)


def real_settings() -> set[str]:
    environment = Recording()
    load_settings(environment)
    return environment.asked


def unit_environment(name: str) -> dict[str, str]:
    service = unit(name)["Service"]
    return dict(item.split("=", 1) for item in shlex.split(service.get("Environment", "")))


def procfile_command(process: str, environment: dict[str, str]) -> list[str]:
    """The Procfile's command as a unit runs it: this venv's executable, its variables expanded from the
    unit's environment, and without app.respawn (systemd's Restart= restarts a worker)."""
    tokens = procfile(process)
    assert tokens[0] == "exec", tokens
    tokens = tokens[1:]
    if tokens[:3] == ["python", "-m", "launcher.respawn"]:
        tokens = tokens[3:]
    expanded = [re.sub(r"\$\{(\w+):-([^}]*)\}|\$(\w+)",
                       lambda m: environment.get(m[1] or m[3], m[2] or ""), token) for token in tokens]
    return [f"{INSTALL}/.venv/bin/{expanded[0]}", *expanded[1:]]


def test_the_units_run_the_procfiles_commands() -> None:
    for process in ("web", "worker"):
        name = f"{process}@.service"
        assert exec_start(name) == procfile_command(process, unit_environment(name)), name
    assert (ROOT / "web.py").is_file() and (ROOT / "worker.py").is_file()
    assert "WorkerSettings = " in (ROOT / "worker.py").read_text()


def test_the_web_unit_listens_on_loopback_on_its_instance_port_behind_the_proxy() -> None:
    environment = unit_environment("web@.service")
    settings = load_settings({**environment, "PORT": "8001"})
    assert settings.host == "127.0.0.1" and settings.port == 8001 and environment["PORT"] == "%i"
    # Whose X-Forwarded-* headers the web believes: the proxy's, on this machine (none by default).
    assert set(environment) <= real_settings()
    assert settings.forwarded_allow_ips == ["127.0.0.1"]
    # Values from EnvironmentFile= override Environment=: the shared file must not pin the port.
    assert not {"HOST", "PORT"} & set(env_assignments())


def test_the_worker_unit_stops_it_gracefully() -> None:
    service = unit("worker@.service")["Service"]
    assert service["Restart"] == "always" and service["KillSignal"] == "SIGTERM"
    # Stopping must outlast SHUTDOWN_GRACE, or systemd kills tasks the worker was handing back.
    grace = load_settings(env_assignments()).shutdown_grace
    assert float(service["TimeoutStopSec"]) > grace + 5


def test_both_units_share_the_checkout_and_the_env_file() -> None:
    web, worker = unit("web@.service")["Service"], unit("worker@.service")["Service"]
    assert web["WorkingDirectory"] == worker["WorkingDirectory"] == INSTALL
    assert web["EnvironmentFile"] == worker["EnvironmentFile"] == "/etc/taskqueue/taskqueue.env"


def test_every_variable_of_the_env_file_is_a_setting_and_the_shared_ones_are_there() -> None:
    pairs = env_assignments()
    known = real_settings()
    assert set(pairs) - known == set(), f"not settings of app/settings.py: {set(pairs) - known}"
    assert SHARED <= set(pairs)
    manual = (ROOT / "docs" / "configuration.md").read_text()
    assert all(f"`{name}`" in manual for name in known | set(pairs)), "every setting is in docs/configuration.md"
    settings = load_settings(pairs)  # and each value parses as its setting's type
    assert str(settings.database_url).startswith("postgresql://") and settings.api_token is not None


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here: the units were not verified by systemd")
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("this checkout has no .venv (`make test` makes one): systemd would find no executables to verify")
    for name in ("web@.service", "worker@.service"):
        # This checkout in place of /opt/taskqueue, so that systemd finds the executables it checks.
        text = (UNITS / name).read_text().replace(INSTALL, str(ROOT)).replace(
            "/etc/taskqueue/taskqueue.env", str(ENV_FILE))
        text = "\n".join(line for line in text.splitlines() if not line.startswith(("User=", "Group=")))
        (tmp_path / name.replace("@", "@1")).write_text(text)
    result = subprocess.run([analyze, "verify", *map(str, tmp_path.iterdir())], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


@pytest.fixture
def settings(redis_url: str, db_url: str, tmp_path: Path) -> Settings:
    """As the web unit runs: the proxy on this machine (the test's client here) trusted."""
    return make_settings(redis_url, db_url, tmp_path / "data", FORWARDED_ALLOW_IPS="127.0.0.1")


async def test_behind_a_proxy_the_origin_check_passes_when_host_and_scheme_are_forwarded(
    client: httpx.AsyncClient,
) -> None:
    """As the nginx example of docs/operations.md forwards them (`Host $host`, `X-Forwarded-Proto $scheme`) to a
    web that trusts the proxy's address (FORWARDED_ALLOW_IPS=127.0.0.1, the test's client here)."""
    body = {"task_type": "text_processing"}
    public = {"origin": "https://tasks.example.com", "host": "tasks.example.com"}
    forwarded = await client.post("/api/tasks/submit", json=body, headers={**public, "x-forwarded-proto": "https"})
    assert forwarded.status_code == 201, forwarded.text
    no_scheme = await client.post("/api/tasks/submit", json=body, headers=public)
    assert no_scheme.status_code == 403
    no_host = await client.post("/api/tasks/submit", json=body,
                                headers={"origin": public["origin"], "x-forwarded-proto": "https"})
    assert no_host.status_code == 403
