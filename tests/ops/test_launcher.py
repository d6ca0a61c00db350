"""The embedded Redis and `python -m launcher`, through real processes."""

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
import redis

from app.core.cli import CONFIG_ERROR
from launcher.redis_server import RedisServer, find_redis_server, free_port, stop_stale_server
from launcher.stack import keep_running, obscure

ROOT = Path(__file__).resolve().parents[2]


def _answers(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_connect_timeout=1) as client:
            return bool(client.ping())
    except redis.ConnectionError:
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def _group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is in process group `pgid`."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path / "redis", appendonly=True)
    yield server
    server.stop()


def test_restart_on_the_same_port_keeps_appended_data(server: RedisServer) -> None:
    server.start()
    with redis.Redis.from_url(server.url) as client:
        client.set("survives", "yes")
    server.stop()
    assert not _answers(server.port)

    server.start()
    with redis.Redis.from_url(server.url) as client:
        assert client.get("survives") == b"yes"
    assert server.url == f"redis://127.0.0.1:{server.port}/0"


def test_context_manager_stops_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with RedisServer(free_port(), Path("var/redis"), appendonly=False) as server:  # relative, as DATA_DIR is
        assert _answers(server.port)
    assert not _answers(server.port)
    assert (tmp_path / "var/redis/redis.log").exists()
    assert not (tmp_path / "var/redis/appendonly.aof").exists()


def test_a_server_that_cannot_start_is_reported_with_its_log(server: RedisServer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", server.port))
        taken.listen()
        with pytest.raises(RuntimeError, match=f"port {server.port} exited") as info:
            server.start()
    assert "Last lines of" in str(info.value)


def test_missing_binary_says_how_to_get_one() -> None:
    with pytest.raises(RuntimeError) as info:
        find_redis_server(candidates=[], path="")
    message = str(info.value)
    assert "no redis-server found" in message
    assert "apt-get install redis-server" in message and "brew install redis" in message
    assert "REDIS_URL" in message


def test_binary_lookup_skips_non_executables_then_searches_path(tmp_path: Path) -> None:
    not_executable = tmp_path / "candidate" / "redis-server"
    not_executable.parent.mkdir()
    not_executable.write_text("")
    on_path = tmp_path / "bin" / "redis-server"
    on_path.parent.mkdir()
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    assert find_redis_server(candidates=[not_executable], path=str(on_path.parent)) == str(on_path)
    assert find_redis_server(candidates=[on_path], path="") == str(on_path)


def test_a_stale_server_from_a_killed_launcher_is_stopped(server: RedisServer) -> None:
    # Daemonized, as a server outliving its launcher is: no longer our child.
    server.data_dir.mkdir(parents=True)
    subprocess.run([*server.command(), "--daemonize", "yes"], check=True)
    deadline = time.monotonic() + 10
    while not (server.pidfile.exists() and _answers(server.port)):
        assert time.monotonic() < deadline, "the stale server did not start"
        time.sleep(0.05)
    stale_pid = int(server.pidfile.read_text())
    try:
        server.start()  # same port and data dir: only works once the stale server is gone
        assert int(server.pidfile.read_text()) != stale_pid
        assert _answers(server.port)
    finally:
        if "redis-server" in _cmdline(stale_pid):
            os.kill(stale_pid, signal.SIGKILL)
    assert "redis-server" not in _cmdline(stale_pid)


def test_the_embedded_redis_is_started_again_even_after_a_start_that_failed(
        server: RedisServer, capsys: pytest.CaptureFixture[str]) -> None:
    """The launcher's keeper: Redis killed, its port taken by another program at the first restart (which
    fails), then freed: the keeper goes on trying until Redis is back, with its data."""
    server.start()
    with redis.Redis(port=server.port) as client:
        client.set("kept", "yes")
        client.execute_command("BGREWRITEAOF")  # the key is on disk before the kill
        time.sleep(0.5)
    stopping = threading.Event()
    keeper = threading.Thread(target=keep_running, args=(server, stopping), daemon=True)
    keeper.start()
    squatter = socket.socket()
    try:
        os.kill(int(server.pidfile.read_text()), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while True:  # the port is free once the killed server is gone
            try:
                squatter.bind(("127.0.0.1", server.port))
                break
            except OSError:
                assert time.monotonic() < deadline, "the killed server kept its port"
                time.sleep(0.01)
        squatter.listen()
        deadline = time.monotonic() + 10
        while "did not start again" not in capsys.readouterr().err:  # the port is taken
            assert time.monotonic() < deadline, "the keeper did not try to start Redis"
            time.sleep(0.1)
        squatter.close()
        deadline = time.monotonic() + 20
        while not _answers(server.port):
            assert time.monotonic() < deadline, "the keeper gave up after a failed start"
            time.sleep(0.1)
        with redis.Redis(port=server.port) as client:
            assert client.get("kept") == b"yes"
    finally:
        squatter.close()
        stopping.set()
        keeper.join(timeout=30)


def test_a_pidfile_naming_another_program_is_left_alone(tmp_path: Path) -> None:
    with subprocess.Popen(["sleep", "30"]) as other:
        pidfile = tmp_path / "redis.pid"
        pidfile.write_text(f"{other.pid}\n")
        try:
            assert stop_stale_server(pidfile) is False
            assert other.poll() is None
        finally:
            other.kill()
    assert stop_stale_server(tmp_path / "missing.pid") is False


def test_obscure_hides_only_the_password() -> None:
    assert obscure("redis://:s3cret@db.example:6379/0") == "redis://:********@db.example:6379/0"
    assert obscure("postgresql://app:pw@host/db") == "postgresql://app:********@host/db"
    assert obscure("sqlite:///var/tasks.db") == "sqlite:///var/tasks.db"


def _launcher_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "HOST")}
    return {**env, "DATA_DIR": str(tmp_path / "var"), **extra}


def test_launcher_refuses_a_redis_url_that_does_not_answer(tmp_path: Path) -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    result = subprocess.run(
        [sys.executable, "-m", "launcher"], cwd=ROOT, env=_launcher_env(tmp_path, REDIS_URL=url),
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"redis://:********@127.0.0.1:{url.rsplit(':', 1)[1]}" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def test_a_task_module_that_cannot_be_used_is_named_in_one_line_and_nothing_starts(tmp_path: Path) -> None:
    env = _launcher_env(tmp_path, TASK_MODULES="no_such_module_here", EMBEDDED_REDIS_PORT=str(free_port()))
    launched = subprocess.run([sys.executable, "-m", "launcher"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60)
    assert launched.returncode == 1 and "Traceback" not in launched.stderr
    assert launched.stderr.strip() == "launcher: TASK_MODULES: cannot import 'no_such_module_here': " \
        "ModuleNotFoundError: No module named 'no_such_module_here'"
    for script, program in (("worker.py", "taskqueue-worker"), ("web.py", "taskqueue-web")):
        started = subprocess.run([sys.executable, "-m", "launcher.respawn", sys.executable, script], cwd=ROOT,
                                 env=env, capture_output=True, text=True, timeout=60)
        assert started.returncode == CONFIG_ERROR and "Traceback" not in started.stderr, started.stderr
        first, second = started.stderr.strip().splitlines()  # the cause, then why it is not started again
        assert first.startswith(f"{program}: cannot start: TASK_MODULES: cannot import 'no_such_module_here'")
        assert second.endswith("cannot start with this configuration (above); not starting it again")


def _lines(stream: IO[str]) -> "queue.Queue[str]":
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        with stream:  # closed at EOF, once every process writing to it has exited
            for line in stream:
                lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _read_until(lines: "queue.Queue[str]", marker: str, timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while not any(marker in line for line in seen):
        try:
            seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            raise AssertionError(f"no {marker!r} within {timeout} s; output:\n{''.join(seen)}") from None
    return seen


def test_launcher_runs_everything_and_ctrl_c_stops_it_all(tmp_path: Path) -> None:
    web_port, redis_port = free_port(), free_port()
    env = _launcher_env(tmp_path, PORT=str(web_port), EMBEDDED_REDIS_PORT=str(redis_port))
    with subprocess.Popen(
        [sys.executable, "-m", "launcher"], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    ) as launcher:  # fmt: skip
        assert launcher.stdout is not None
        try:
            output = "".join(_read_until(_lines(launcher.stdout), "Ctrl-C stops everything", timeout=60))
            redis_pid = int((tmp_path / "var" / "redis" / "redis.pid").read_text())
            launcher.send_signal(signal.SIGINT)
            assert launcher.wait(timeout=30) == 0
        finally:
            if launcher.poll() is None:  # a failed test still stops what the launcher started
                launcher.send_signal(signal.SIGINT)
                launcher.wait(timeout=30)
    assert f"Dashboard: http://127.0.0.1:{web_port}/" in output
    assert f"redis://127.0.0.1:{redis_port}/0" in output
    groups = [int(pid) for pid in re.findall(r"started \(pid=(\d+)\)", output)]
    assert len(groups) == 2  # web and worker, each in its own process group under honcho
    assert not any(_group_alive(pgid) for pgid in groups)
    assert "redis-server" not in _cmdline(redis_pid)
    assert not _answers(redis_port)


def _start_launcher(env: dict[str, str]) -> "subprocess.Popen[str]":
    launcher = subprocess.Popen(
        [sys.executable, "-m", "launcher"], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert launcher.stdout is not None
    _read_until(_lines(launcher.stdout), "Ctrl-C stops everything", timeout=60)
    return launcher


def _stop_launcher(launcher: "subprocess.Popen[str]") -> int:
    if launcher.poll() is None:
        launcher.send_signal(signal.SIGINT)
    return launcher.wait(timeout=30)


def _wait_task(http: httpx.Client, task_id: str, statuses: set[str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while (task := http.get(f"/api/tasks/{task_id}").json())["status"] not in statuses:
        assert time.monotonic() < deadline, f"task stuck in {task['status']}"
        time.sleep(0.05)
    return task


def test_work_accepted_before_a_restart_finishes_after_it(tmp_path: Path) -> None:
    """`make run`, submit, Ctrl-C mid-run, `make run` again: the running task was handed back after
    the shutdown grace, the queued one survived in Redis's append-only file, and both finish."""
    web_port, redis_port = free_port(), free_port()
    env = _launcher_env(tmp_path, PORT=str(web_port), EMBEDDED_REDIS_PORT=str(redis_port),
                        WORKER_CONCURRENCY="1")
    launcher = _start_launcher(env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port}", timeout=10) as http:
            # 8 s of work: more than the worker's shutdown grace (3 s), so the running one is handed back
            body = {"task_type": "batch_processing", "parameters": {"data": list(range(80)), "delay_per_item": 0.1}}
            running = http.post("/api/tasks/submit", json=body).json()
            queued = http.post("/api/tasks/submit", json=body).json()
            _wait_task(http, running["id"], {"RUNNING"})
            assert _stop_launcher(launcher) == 0
            launcher = _start_launcher(env)
            first = _wait_task(http, running["id"], {"SUCCESS", "FAILED"}, timeout=60)
            second = _wait_task(http, queued["id"], {"SUCCESS", "FAILED"}, timeout=60)
    finally:
        _stop_launcher(launcher)
    assert first["status"] == second["status"] == "SUCCESS"
    assert first["attempts"] == 2 and "RETRYING" in [e["status"] for e in first["timeline"]]
    assert second["attempts"] == 1


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _wait_replaced(respawner: int, old: int) -> int:
    deadline = time.monotonic() + 20
    while not (replacement := _children(respawner)) or replacement == [old]:
        assert time.monotonic() < deadline, f"{_cmdline(old)} was not restarted"
        time.sleep(0.1)
    return replacement[0]


@pytest.mark.parametrize("victim", ["web", "worker", "redis"])
def test_whatever_dies_under_make_run_is_restarted_and_the_rest_keeps_running(tmp_path: Path, victim: str) -> None:
    """kill -9 of the web, the worker or the embedded Redis: it comes back (with a log line), the other
    two keep their processes, and the tasks accepted before finish."""
    web_port = free_port()
    env = _launcher_env(tmp_path, PORT=str(web_port), EMBEDDED_REDIS_PORT=str(free_port()), RECONCILE_INTERVAL="1")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "launcher"], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert launcher.stdout is not None
    lines = _lines(launcher.stdout)
    try:
        output = "".join(_read_until(lines, "Ctrl-C stops everything", timeout=60))
        respawners = {name: int(re.search(rf"{name}\.1 started \(pid=(\d+)\)", output).group(1))
                      for name in ("web", "worker")}
        pids = {name: _children(respawner)[0] for name, respawner in respawners.items()}
        pids["redis"] = int((tmp_path / "var" / "redis" / "redis.pid").read_text())
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port}", timeout=10) as http:
            body = {"task_type": "batch_processing", "parameters": {"data": list(range(20)), "delay_per_item": 0.1}}
            accepted = [http.post("/api/tasks/submit", json=body).json()["id"] for _ in range(4)]
            os.kill(pids[victim], signal.SIGKILL)
            if victim == "redis":
                _read_until(lines, "the embedded Redis is back", timeout=20)
            else:
                _read_until(lines, "starting it again", timeout=10)
                pids[victim] = _wait_replaced(respawners[victim], pids[victim])
            deadline = time.monotonic() + 30
            while True:  # the web may still be starting again, or waiting for Redis
                try:
                    late = http.post("/api/tasks/submit", json={"task_type": "text_processing"})
                    if late.status_code == 201:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the stack did not take tasks again"
                time.sleep(0.2)
            ended = [_wait_task(http, task_id, {"SUCCESS", "FAILED"}, timeout=60)
                     for task_id in [*accepted, late.json()["id"]]]
        assert [task["status"] for task in ended] == ["SUCCESS"] * 5
        survivors = {name: pid for name, pid in pids.items() if name != victim}
        assert {name: _children(respawners[name]) for name in survivors if name != "redis"} == \
            {name: [pid] for name, pid in survivors.items() if name != "redis"}
        if victim != "redis":
            assert "redis-server" in _cmdline(pids["redis"])
        assert launcher.poll() is None
    finally:
        assert _stop_launcher(launcher) == 0
