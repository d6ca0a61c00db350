"""A bare HTTP/1.1 keep-alive client for the benchmarks that send many requests."""

import asyncio
import socket
import time


class Http:
    """A bare HTTP/1.1 keep-alive connection. httpx.AsyncClient spends some milliseconds of CPU per
    request here (measured: ~45 requests/s on one connection where this client does ~1,300), so with it
    the benchmark measures the client; this one leaves the server as the bottleneck."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host
        self.used = time.perf_counter()  # when the last answer arrived

    @classmethod
    async def open(cls, url: str) -> "Http":
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer, f"{host}:{port}")

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.writer.write(f"POST {path} HTTP/1.1\r\nhost: {self.host}\r\ncontent-type: application/json\r\n"
                          f"content-length: {len(body)}\r\n\r\n".encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length:"))
        body = await self.reader.readexactly(length)
        self.used = time.perf_counter()
        return int(lines[0].split()[1]), body

    def close(self) -> None:
        self.writer.close()
