"""A small reverse proxy for the sub-path tests, set up as docs/operations.md tells nginx to be: the app
under a prefix (`location /tq/ { proxy_pass http://app/; }`), the prefix stripped before the request goes
on, `Host` kept, `X-Forwarded-*` added, WebSocket upgrades passed through, `/tq` answered with a 301 to
`/tq/`. Anything outside the prefix is a 404 and is recorded, so a test can say no request escaped it.

It works on bytes, as nginx does: it rewrites each request's head, then copies both directions until
either side closes (one request per upstream connection: it asks the app for `Connection: close`).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from launcher.redis_server import free_port

HEAD_LIMIT = 64 * 1024
HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade"}


@dataclass
class Proxy:
    prefix: str  # e.g. "/tq", no trailing slash
    upstream: tuple[str, int]
    address: str = ""  # host:port it listens on, once started
    forwarded: list[str] = field(default_factory=list)  # "METHOD /public/path" of each request passed on
    outside: list[str] = field(default_factory=list)  # "METHOD /path" of each request outside the prefix
    connections: dict[asyncio.StreamWriter, "asyncio.Task[None] | None"] = field(default_factory=dict)  # open ones

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections[writer] = asyncio.current_task()
        try:
            await self._serve(reader, writer)
        finally:
            self.connections.pop(writer, None)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        request_line, *header_lines = head[:-4].split(b"\r\n")
        method, target, version = request_line.split(b" ", 2)
        path, _, query = target.decode("latin-1").partition("?")
        headers = [(k, v) for k, sep, v in (line.partition(b":") for line in header_lines) if sep]
        shown = f"{method.decode()} {path}"
        if path == self.prefix:
            self.forwarded.append(shown)
            location = f"{self.prefix}/" + (f"?{query}" if query else "")
            await _answer(writer, b"301 Moved Permanently", f"Location: {location}\r\n".encode())
            return
        if not path.startswith(self.prefix + "/"):
            self.outside.append(shown)
            await _answer(writer, b"404 Not Found", b"")
            return
        self.forwarded.append(shown)
        inner = path[len(self.prefix):] + (f"?{query}" if query else "")
        upgrade = any(k.strip().lower() == b"upgrade" and v.strip().lower() == b"websocket" for k, v in headers)
        kept = [(k, v) for k, v in headers
                if k.strip().lower() not in HOP_BY_HOP and not k.strip().lower().startswith(b"x-forwarded-")]
        peer = writer.get_extra_info("peername")[0]
        extra = [(b"X-Forwarded-For", peer.encode()), (b"X-Forwarded-Proto", b"http"),
                 (b"X-Forwarded-Prefix", self.prefix.encode())]
        extra += [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")] if upgrade else [(b"Connection", b"close")]
        lines = [b" ".join((method, inner.encode("latin-1"), version)),
                 *(k.strip() + b": " + v.strip() for k, v in [*kept, *extra])]
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            await _answer(writer, b"502 Bad Gateway", b"")
            return
        up_writer.write(b"\r\n".join(lines) + b"\r\n\r\n")
        await _pipe_both(reader, writer, up_reader, up_writer)


async def _answer(writer: asyncio.StreamWriter, status: bytes, headers: bytes) -> None:
    writer.write(b"HTTP/1.1 " + status + b"\r\n" + headers + b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Until `reader`'s end, which is then passed on (a browser closing its socket closes the app's)."""
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def _pipe_both(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                     up_reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter) -> None:
    """Copies both ways; the upstream's end (the app closes after its answer, or the socket closed) ends both."""
    upward = asyncio.create_task(_copy(client_reader, up_writer))
    await _copy(up_reader, client_writer)
    upward.cancel()
    await asyncio.gather(upward, return_exceptions=True)
    for writer in (up_writer, client_writer):
        writer.close()


@contextlib.asynccontextmanager
async def proxy(prefix: str, upstream: str) -> AsyncIterator[Proxy]:
    """A proxy on a free loopback port serving `upstream` (host:port) under `prefix`."""
    host, port = upstream.rsplit(":", 1)
    running = Proxy(prefix, (host, int(port)))
    listen = free_port()
    server = await asyncio.start_server(running.handle, "127.0.0.1", listen, limit=HEAD_LIMIT)
    running.address = f"127.0.0.1:{listen}"
    try:
        yield running
    finally:
        server.close()
        open_ones = dict(running.connections)
        for writer in open_ones:  # sockets still open (a page's WebSocket) end with it
            writer.close()
        handlers = [task for task in open_ones.values() if task is not None]
        if handlers:
            _, stuck = await asyncio.wait(handlers, timeout=5)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        await server.wait_closed()
