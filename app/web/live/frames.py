"""uvicorn's WebSocket protocol (websockets-sansio) plus one ASGI extension: write ready-made frames.

A change goes to every client as the same bytes, so the web process builds its WebSocket frame once
(`wire.websocket_frame`) and each client's sender writes whatever has queued up in one transport
write: one system call for several changes instead of one framing pass and one call per message,
which is where the plain ASGI path spends its time under fan-out. The frames are uncompressed
(RSV1 clear), which is valid whether or not permessage-deflate was negotiated, and whole, so they
interleave safely with the pings and closes the protocol writes itself. Served without this class
(`uvicorn --ws auto`), `/ws` falls back to one ASGI send per message.

Use: `uvicorn app.main:create_app --factory --ws app.web.live.frames:FramesProtocol`.
"""

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

EXTENSION = "tq.websocket.frames"  # scope["extensions"][EXTENSION]["send"]: async (bytes) -> None


class FramesProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:
            self.scope["extensions"][EXTENSION] = {"send": self.send_frames}

    async def send_frames(self, data: bytes) -> None:
        await self.writable.wait()  # the transport's buffer is full: wait as any ASGI send would
        if self.disconnected or self.close_sent or self.transport.is_closing():
            raise ClientDisconnected()
        self.transport.write(data)
