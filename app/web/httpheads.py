"""uvicorn's HTTP protocol (httptools) with a bound on a request's head: the request line and headers
together may be at most MAX_HEAD_BYTES, or the client gets 431 and the connection closes. httptools has
no such bound of its own and buffers a header however long it grows (10 MB of one header was taken);
uvicorn's `h11_max_incomplete_event_size` bounds only its other protocol, h11.

Use: `uvicorn … --http app.web.httpheads:BoundedHeadsProtocol` (app/web/server.py passes it)."""

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024  # nginx's largest default (4 × 8k buffers) is 32k: room for any real client
# The API's error shape, `{"detail": ...}`, written here: the app never sees such a request.
BODY = b'{"detail":"request line and headers exceed %d bytes"}' % MAX_HEAD_BYTES


class BoundedHeadsProtocol(HttpToolsProtocol):
    _head_bytes = 0
    _in_head = True

    def on_message_begin(self) -> None:
        self._head_bytes, self._in_head = 0, True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Counted after the parser has seen the data: bytes that completed the head (and any body behind
        # them) do not count against it, only what leaves the head still open.
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._send_431()

    def _send_431(self) -> None:
        self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(BODY), BODY))
        self.transport.close()
