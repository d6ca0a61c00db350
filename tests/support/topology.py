"""The scale-out topology of the tests: web and worker processes on "hosts" sharing one Redis and one
PostgreSQL. As root where `ip netns` works, each host is a network namespace joined to the others by a
bridge in the root namespace; Redis listens on the bridge, and PostgreSQL (which listens on loopback
only and is not reconfigured for a test) is reached through a TCP relay on the bridge address.
Elsewhere every host is this machine's loopback, and `Topology.netns_missing` says why.
"""

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.core import keys
from app.core.status import FINAL
from app.store.stores import prepare_database
from launcher.redis_server import RedisServer, free_port
from tests.support.processes import ROOT, process_env

TOKEN = "topology-token"
HEADERS = {"authorization": f"Bearer {TOKEN}"}
WEB_PORT = 8000  # every web host listens on the same port, as separate machines would
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
TAG = re.compile(r"^tq([0-9a-f]+)x\d+")  # our namespaces and links: tq<creator pid in hex>x<n>…
_created = iter(range(1_000_000))


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def remove_stale() -> None:
    """Namespaces and bridges left by a test run that was killed before its teardown (CI reuses machines)."""
    names = _ip("netns", "list", check=False).stdout.split()
    links = re.findall(r"^\d+: ([^:@]+)", _ip("-o", "link", "show", "type", "bridge", check=False).stdout, re.M)
    for name in names + links:
        match = TAG.match(name)
        if match and not _alive(int(match.group(1), 16)):
            if name in names:
                for pid in _ip("netns", "pids", name, check=False).stdout.split():
                    os.kill(int(pid), signal.SIGKILL)
                _ip("netns", "del", name, check=False)
            else:
                _ip("link", "del", name, check=False)


def netns_missing() -> str | None:
    """Why hosts cannot be network namespaces here, or None when they can."""
    if os.environ.get("TOPOLOGY_NETNS") == "0":
        return "TOPOLOGY_NETNS=0"
    if sys.platform != "linux" or os.geteuid() != 0:
        return "not running as root on Linux"
    probe = f"tq{os.getpid():x}x{next(_created)}probe"
    try:
        added = _ip("netns", "add", probe, check=False)
        if added.returncode != 0:
            return f"`ip netns add` failed: {added.stderr.strip()}"
        veth = _ip("-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1", check=False)
        if veth.returncode != 0:
            return f"no veth: {veth.stderr.strip()}"
    except FileNotFoundError:
        return "no `ip` command (iproute2)"
    finally:
        _ip("netns", "del", probe, check=False)
    return None


def _free_subnet() -> str:
    """A 10.x.y.0/24 no route of this machine uses yet: its first three octets."""
    routes = _ip("-o", "route", "show", "table", "all", check=False).stdout
    for _ in range(200):
        prefix = f"10.{random.randint(160, 250)}.{random.randint(0, 255)}"
        if f"{prefix}." not in routes:
            return prefix
    raise RuntimeError("no free 10.x.y.0/24 subnet for the test network")


class Network:
    """Hosts as network namespaces on one bridge; the root namespace is the bridge's first address."""

    def __init__(self) -> None:
        self.tag = f"tq{os.getpid():x}x{next(_created)}"
        self.bridge = f"{self.tag}b"
        self.prefix = _free_subnet()
        self.hub = f"{self.prefix}.1"  # where Redis and the PostgreSQL relay listen
        self.addresses: dict[str, str] = {}
        self.namespaces: dict[str, str] = {}

    def up(self, hosts: list[str]) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.hub}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for index, host in enumerate(hosts):
            namespace, outside, inside = f"{self.tag}-{host}", f"{self.tag}h{index}", f"{self.tag}n{index}"
            address = f"{self.prefix}.{10 + index}"
            _ip("netns", "add", namespace)
            self.namespaces[host] = namespace
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", namespace)
            _ip("link", "set", outside, "master", self.bridge)
            _ip("link", "set", outside, "up")
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", inside)
            _ip("-n", namespace, "link", "set", inside, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            self.addresses[host] = address

    def command(self, host: str, argv: list[str]) -> list[str]:
        """`argv` run on `host`: in its namespace, with its own host name (what a worker reports as
        its host). The shells exec, so the process id is the command's own."""
        return ["ip", "netns", "exec", self.namespaces[host], "unshare", "--uts", "sh", "-c",
                'hostname "$0" && exec "$@"', host, *argv]

    def pids(self, host: str) -> list[int]:
        return [int(pid) for pid in _ip("netns", "pids", self.namespaces[host], check=False).stdout.split()]

    def down(self) -> None:
        for host, namespace in self.namespaces.items():
            for pid in self.pids(host):
                os.kill(pid, signal.SIGKILL)
            _ip("netns", "del", namespace, check=False)  # takes its veth pair along
        _ip("link", "del", self.bridge, check=False)


class Relay:
    """A TCP forwarder (an asyncio server on its own thread) from `listen` to `target`."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.listen, self.target = listen, target
        self.connections = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        server = await asyncio.start_server(self._handle, *self.listen)
        self._ready.set()
        async with server:
            await self._stop
            server.close()
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"the relay on {self.listen} did not start")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(10)


def _procfile_web() -> str:
    """The Procfile's web command line (`exec uvicorn … --host ${HOST…} --port $PORT …`)."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.partition(":")[2].strip()
    raise RuntimeError("the Procfile has no web process")


@dataclass
class Host:
    name: str
    address: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)


@dataclass
class Topology:
    hosts: dict[str, Host]
    webs: dict[str, str]  # web host name → base URL
    redis_url: str
    database_url: str  # as the processes reach it
    network: Network | None
    netns_missing: str | None
    relay: Relay | None

    def host_of(self, worker_id: str | None) -> str | None:
        """The host of a worker id (`hostname:pid:…`), from the process ids this topology started."""
        if not worker_id:
            return None
        pid = int(worker_id.split(":")[1])
        return next((h.name for h in self.hosts.values() if any(p.pid == pid for p in h.procs)), None)

    def kill_host(self, name: str) -> int:
        """SIGKILL every process of a host at once (its namespace's processes, else its process
        groups), as a machine that loses power; how many there were."""
        host = self.hosts[name]
        if self.network is not None:
            pids = self.network.pids(name)
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
        else:
            pids = [p.pid for p in host.procs if p.poll() is None]
            for pid in pids:
                os.killpg(pid, signal.SIGKILL)
        for proc in host.procs:
            proc.wait(STOP_TIMEOUT)
        return len(pids)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def reset_postgres(url: str) -> None:
    """Empty the test's own database (created on first use) for a topology to start from nothing."""
    import asyncpg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()
    await prepare_database(url)  # as `make run` does: the schema exists before any process starts


def _wait_ready(topology: Topology, workers: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    for name, url in topology.webs.items():
        while True:
            procs = [p for h in topology.hosts.values() for p in h.procs]
            dead = [p.args for p in procs if p.poll() is not None]
            assert not dead, f"exited during start-up: {dead} (logs in the test's tmp dir)"
            try:
                health = httpx.get(f"{url}/api/health", timeout=2).json()
                if health.get("workers", {}).get("live") == workers:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            assert time.monotonic() < deadline, f"web {name} not ready with {workers} live workers"
            time.sleep(0.1)


@contextmanager
def running_topology(pg_url: str, tmp: Path, layout: dict[str, tuple[str, int]],
                     **extra_env: str) -> Iterator[Topology]:
    """`layout`: host name → ("web", 1) or ("worker", count). Everything started is stopped, and the
    network removed, however the block ends."""
    with ExitStack() as stack:
        missing = netns_missing()
        network = None
        if missing is None:
            remove_stale()
            network = Network()
            stack.callback(network.down)
            network.up(list(layout))
        hub = network.hub if network else "127.0.0.1"
        redis = stack.enter_context(RedisServer(free_port(), tmp / "redis", appendonly=False, host=hub))
        relay = None
        pg = urlsplit(pg_url)
        database_url = pg_url
        if network is not None:
            relay = Relay((hub, free_port()), (pg.hostname or "127.0.0.1", pg.port or 5432))
            relay.start()
            stack.callback(relay.stop)
            netloc = pg.netloc.rsplit("@", 1)[0] + f"@{hub}:{relay.listen[1]}" if "@" in pg.netloc \
                else f"{hub}:{relay.listen[1]}"
            database_url = urlunsplit(pg._replace(netloc=netloc))
        env = process_env(redis.url, database_url, tmp / "data", API_TOKEN=TOKEN, **extra_env)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        hosts: dict[str, Host] = {}
        webs: dict[str, str] = {}
        procs: list[subprocess.Popen[bytes]] = []
        stack.callback(_stop, procs)
        workers = 0
        for name, (role, count) in layout.items():
            address = network.addresses[name] if network else "127.0.0.1"
            host = hosts[name] = Host(name, address)
            for index in range(count):
                if role == "web":
                    port = WEB_PORT if network else free_port()
                    argv, own = ["sh", "-c", _procfile_web()], {"HOST": address, "PORT": str(port)}
                    webs[name] = f"http://{address}:{port}"
                else:
                    argv, own = [sys.executable, "worker.py"], {}
                    workers += 1
                command = network.command(name, argv) if network else argv
                with (tmp / f"{name}-{index}.log").open("wb") as log:
                    proc = subprocess.Popen(command, cwd=ROOT, env={**env, **own}, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
                procs.append(proc)
                host.procs.append(proc)
        topology = Topology(hosts, webs, redis.url, database_url, network, missing, relay)
        _wait_ready(topology, workers)
        yield topology


class Stream:
    """One WebSocket client of a web process: every frame, with when it arrived."""

    def __init__(self, socket: ClientConnection, hello: dict[str, Any]) -> None:
        self.socket = socket
        self.hello = hello
        self.frames: list[dict[str, Any]] = []
        self.arrived: list[float] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, base_url: str, since: int | None = None) -> "Stream":
        query = "" if since is None else f"?since={since}"
        socket = await connect(base_url.replace("http", "ws", 1) + "/ws" + query, max_size=None)
        await socket.send(json.dumps({"type": "auth", "token": TOKEN}))
        hello = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert hello["type"] == "hello", hello
        return cls(socket, hello)

    async def _read(self) -> None:
        async for text in self.socket:
            self.frames.append(json.loads(text))
            self.arrived.append(time.monotonic())
            self._changed.set()

    async def until(self, done: Callable[["Stream"], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not done(self):
            if self._reader.done():
                self._reader.result()
                raise AssertionError(f"the socket closed: {self.socket.close_code} {self.socket.close_reason}")
            assert time.monotonic() < deadline, f"timed out after {len(self.frames)} frames"
            self._changed.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.5)

    async def close(self) -> None:
        await self.socket.close()
        with suppress(ConnectionClosed):
            await self._reader

    @property
    def tasks(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == "task"]

    def changes(self, ids: set[str]) -> list[tuple[int, str, str]]:
        """(seq, task id, status) of every change but progress (which may coalesce), in arrival order."""
        return [(f["seq"], f["task"]["id"], f["task"]["status"]) for f in self.tasks
                if f["change"] != "progress" and f["task"]["id"] in ids]

    def latest(self) -> dict[str, tuple[int, str]]:
        return {f["task"]["id"]: (f["seq"], f["task"]["status"]) for f in self.tasks}

    def finished(self, ids: set[str]) -> bool:
        latest = self.latest()
        return all(latest.get(task_id, (0, ""))[1] in FINAL for task_id in ids)

    def seen(self, task_id: str, status: str) -> float | None:
        """When the first frame showing `task_id` in `status` arrived."""
        return next((at for f, at in zip(self.frames, self.arrived, strict=True)
                     if f["type"] == "task" and f["task"]["id"] == task_id and f["task"]["status"] == status), None)


class Published:
    """Every event the workers and webs publish on the Redis channel, straight from Redis: the truth
    the clients' streams are compared with (never coalesced, skips included)."""

    def __init__(self, redis_url: str) -> None:
        self.redis = aioredis.Redis.from_url(redis_url)
        self.events: list[tuple[int, str, str, str]] = []  # seq, change, task id, status
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "Published":
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(keys.EVENTS)

        async def collect() -> None:
            try:
                async for message in pubsub.listen():
                    seq, change, task_id, status, _ = message["data"].decode().split("|", 4)
                    self.events.append((int(seq), change, task_id, status))
            finally:
                await pubsub.aclose()

        self._task = asyncio.create_task(collect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.redis.aclose()

    def changes(self, ids: set[str], after: int = 0) -> list[tuple[int, str, str]]:
        return sorted((seq, task_id, status) for seq, change, task_id, status in self.events
                      if change not in ("progress", "skip") and task_id in ids and seq > after)

    def all_seqs(self) -> set[tuple[int, str, str]]:
        return {(seq, task_id, status) for seq, _, task_id, status in self.events}
