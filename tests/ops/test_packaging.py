"""`pip install .` works: the wheel built from this checkout holds every module of `app/` and `launcher/`, the
dashboard's `static/` as package `taskqueue_static` (found by the installed app), the console scripts, and
only the runtime as its requirements (the test tools are the `test` extra). pyproject.toml's pins agree with
requirements.txt and requirements-dev.txt, which the Makefile installs. The commands answer `--help` without
starting anything."""

import configparser
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "app", "launcher", "static")  # what the build reads
TEST_TOOLS = {"pytest", "schemathesis", "hypothesis", "playwright", "aiosmtpd", "openapi-python-client"}
SCRIPTS = {"taskqueue-web": "app.web.server:main", "taskqueue-worker": "app.worker.main:main"}
# pip must fetch setuptools for an isolated build: these say it could not (offline), not that the build failed.
NO_INDEX = ("No matching distribution found", "Could not find a version that satisfies the requirement")


def name_of(requirement: str) -> str:
    """The normalised project name of a requirement line (`uvicorn[standard]==0.54.0` → `uvicorn`)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def pins(path: Path) -> set[str]:
    """A requirements file's requirement lines, spaces removed (comments and `-r` lines left out)."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return {line.replace(" ", "") for line in lines if line and not line.startswith(("#", "-"))}


def pip_wheel(source: Path, out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "--retries", "1",
               "--timeout", "20", "-w", str(out), *options, str(source)]
    return subprocess.run(command, capture_output=True, text=True, timeout=100, cwd=out)


def bdist_wheel_here() -> bool:
    """Whether this venv can build without isolation: setuptools with a bdist_wheel (its own since 70.1, or wheel's)."""
    if importlib.util.find_spec("setuptools") is None:
        return False
    check = ("import importlib.util as u, setuptools\n"
             "print(bool(u.find_spec('setuptools.command.bdist_wheel') or u.find_spec('wheel')))")
    return subprocess.run([sys.executable, "-c", check], capture_output=True, text=True).stdout.strip() == "True"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A copy: an in-tree setuptools build would leave build/ and taskqueue.egg-info/ in the checkout.
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    result = pip_wheel(source, out)
    if result.returncode != 0 and any(text in result.stdout + result.stderr for text in NO_INDEX):
        if not bdist_wheel_here():
            pytest.skip("cannot build the wheel: pip could not fetch setuptools for an isolated build (offline?) and "
                        "this venv has no setuptools with bdist_wheel for --no-build-isolation")
        result = pip_wheel(source, out, "--no-build-isolation")
    assert result.returncode == 0, f"pip wheel failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    (built,) = out.glob("taskqueue-*.whl")
    return built


def metadata(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (path,) = [path for path in archive.namelist() if path.endswith(f".dist-info/{name}")]
        return archive.read(path).decode()


def test_the_wheel_holds_every_module_and_the_dashboard(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    modules = {path.relative_to(ROOT).as_posix() for top in ("app", "launcher") for path in (ROOT / top).rglob("*.py")
               if "__pycache__" not in path.parts}
    missing = sorted(modules - names)
    assert not missing, f"not in the wheel (a new subpackage to add to [tool.setuptools] packages?): {missing}"
    assert {"app/main.py", "app/tasks/__init__.py", "launcher/__main__.py", "launcher/stack.py"} <= names
    static = {"taskqueue_static/" + path.relative_to(ROOT / "static").as_posix()
              for path in (ROOT / "static").rglob("*") if path.is_file()}
    assert {"taskqueue_static/index.html", "taskqueue_static/js/app.js"} <= static
    assert not sorted(static - names), "dashboard files missing from the wheel"
    assert not [name for name in names if name.split("/")[0] in ("tests", "bench", "web.py", "worker.py")]


def test_the_wheel_declares_the_console_scripts(wheel: Path) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(metadata(wheel, "entry_points.txt"))
    assert dict(entry_points["console_scripts"]) == SCRIPTS


def test_no_test_tool_is_a_runtime_requirement(wheel: Path) -> None:
    requires = [line.partition(":")[2].strip() for line in metadata(wheel, "METADATA").splitlines()
                if line.startswith("Requires-Dist:")]
    runtime = {name_of(line) for line in requires if "extra ==" not in line}
    extra = {name_of(line) for line in requires if 'extra == "test"' in line}
    assert {"starlette", "uvicorn", "arq", "redis", "pydantic", "httpx", "websockets"} <= runtime
    assert not runtime & TEST_TOOLS
    assert TEST_TOOLS <= extra


def test_the_installed_app_serves_the_packaged_dashboard(wheel: Path, tmp_path: Path) -> None:
    """Unpacked as pip installs it, away from the checkout: STATIC_DIR is taskqueue_static's directory."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    probe = "import app.main as m; print(m.__file__); print(m.STATIC_DIR)"
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": path}, timeout=60)
    assert result.returncode == 0, result.stderr
    module, static = result.stdout.split()
    assert Path(module) == site / "app" / "main.py"
    assert Path(static) == site / "taskqueue_static"
    assert (Path(static) / "index.html").is_file() and (Path(static) / "js" / "app.js").is_file()
    # an installed command (its script's directory first on the path, not the working directory: `-P`)
    # finds a task module next to the user
    (tmp_path / "cwd_tasks.py").write_text("from app.tasks import task\n@task\nasync def here(report) -> None: ...\n")
    probe = ("from app.core.cli import parse_command_line; parse_command_line('taskqueue-worker', '', []); "
             "from app.tasks import load_task_types; print(*load_task_types(['cwd_tasks'], builtin=False))")
    found = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": path}, timeout=60)
    assert (found.returncode, found.stdout.strip()) == (0, "here"), found.stderr


def test_pyproject_pins_what_the_requirements_files_pin() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev = (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert "-r requirements.txt" in dev
    assert {line.replace(" ", "") for line in project["dependencies"]} == pins(ROOT / "requirements.txt")
    assert {line.replace(" ", "") for line in project["optional-dependencies"]["test"]} == pins(
        ROOT / "requirements-dev.txt")
    assert not {name_of(line) for line in pins(ROOT / "requirements.txt")} & TEST_TOOLS


@pytest.mark.parametrize("script", ["web.py", "worker.py"])
def test_help_says_where_the_settings_are_and_starts_nothing(script: str, tmp_path: Path) -> None:
    # REDIS_URL names a port nothing listens on: a process that started would fail or hang, not exit 0
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:9/0", "DATABASE_URL": f"sqlite:///{tmp_path}/t.db"}
    shown = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0 and "docs/configuration.md" in shown.stdout, shown
    refused = subprocess.run([sys.executable, script, "--port", "1"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2 and "unrecognized arguments: --port 1" in refused.stderr
    assert not (tmp_path / "t.db").exists()
