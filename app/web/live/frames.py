"""uvicorn's WebSocket protocol (websockets-sansio) plus one ASGI extension: write ready-made frames.

A change goes to every client as the same bytes, so the web process builds its WebSocket frame once
(`wire.websocket_frame`) and the flusher (`web/live/flush.py`) writes whatever has queued up for a
client in one transport write, straight from the loop's callback: one system call for several
changes, no framing pass and no task woken per client per change, which is where the plain ASGI
path spends its time under fan-out. The frames are uncompressed (RSV1 clear), which is valid whether
or not permessage-deflate was negotiated, and whole, so they interleave safely with the pings and
closes the protocol writes itself. Served without this class (`uvicorn --ws auto`), `/ws` falls back
to one ASGI send per message.

Use: `uvicorn app.main:create_app --factory --ws app.web.live.frames:FramesProtocol`.
"""

from collections.abc import Callable

from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

EXTENSION = "tq.websocket.frames"  # scope["extensions"][EXTENSION]["writer"]: the connection's FramesProtocol


class FramesProtocol(WebSocketsSansIOProtocol):
    on_writable: Callable[[], None] | None = None  # called when the socket drains after a pause

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:
            self.scope["extensions"][EXTENSION] = {"writer": self}

    @property
    def open(self) -> bool:
        return not (self.disconnected or self.close_sent or self.transport.is_closing())

    @property
    def paused(self) -> bool:
        """The transport's buffer is above its high-water mark: hold further frames (as an ASGI send would wait)."""
        return not self.writable.is_set()

    def write_frames(self, data: bytes) -> None:
        if self.open:
            self.transport.write(data)

    def close_frames(self, code: int, reason: str) -> None:
        """The ASGI `websocket.close`, from outside the app's task (the flusher's): the app's next receive
        is the disconnect, so the handler ends."""
        if not self.open:
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.on_writable is not None:
            self.on_writable()


def writer(websocket: WebSocket) -> FramesProtocol | None:
    """The connection's frames writer, or None when served by another protocol."""
    return (websocket.scope.get("extensions") or {}).get(EXTENSION, {}).get("writer")
