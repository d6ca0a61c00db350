"""uvicorn's HTTP protocol (httptools) with a bound on a request's head: the request line and headers
together may be at most MAX_HEAD_BYTES, or the client gets 431 and the connection closes. httptools has
no such bound of its own and buffers a header however long it grows (10 MB of one header were read and
answered 200); uvicorn's `h11_max_incomplete_event_size` bounds only its other protocol, h11.

Use: `uvicorn … --http app.web.httpheads:BoundedHeadsProtocol` (app/web/server.py passes it)."""

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024  # nginx's largest default (4 × 8k buffers) is 32k: room for any real client
# The API's error shape, `{"detail": ...}`, written here: the app never sees such a request.
BODY = b'{"detail":"request line and headers exceed %d bytes"}' % MAX_HEAD_BYTES
REQUEST_LINE_FLOOR = len(b"GET  HTTP/1.1\r\n\r\n")  # a head's fewest bytes besides its URL and headers


class BoundedHeadsProtocol(HttpToolsProtocol):
    """Two counts: the bytes received while a head is still open (a head that never ends is cut off at
    the bound, not buffered whole) and the size of a head that did end within one read (its request
    line and headers), which never reaches the app when over the bound. Once refused, the connection
    serves nothing more, pipelined requests included.

    A read can hold the end of earlier requests (a body, a whole pipelined request) before the head
    still open: those bytes are not the open head's. httptools does not say where in a read a request
    starts, so they are taken as what it reported of them (body bytes, and each head at the fewest bytes
    it can have taken); framing it does not report (chunk sizes) still counts for the open head: the
    count errs towards a 431, never past the bound."""

    _in_head = True
    _open_bytes = 0  # of the open head, received so far
    _head_size = 0  # the fewest bytes the head read so far can have taken
    _read_used = 0  # bytes of the current read known to belong to requests before the open head
    _refused = False

    def on_message_begin(self) -> None:
        self._in_head, self._open_bytes, self._head_size = True, 0, REQUEST_LINE_FLOOR
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 3  # ":" and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._read_used += max(0, self._head_size - self._open_bytes)  # what of the head came in this read
        if self._refused or self._head_size > MAX_HEAD_BYTES:
            self._refused = True
            return  # no request cycle: the app never sees it
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._read_used += len(body)
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def _should_upgrade(self) -> bool:
        return not self._refused and super()._should_upgrade()

    def data_received(self, data: bytes) -> None:
        self._read_used = 0
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._in_head:  # after parsing: the bytes of earlier requests and of heads that ended do not count
            self._open_bytes += len(data) - self._read_used
        if self._refused or self._open_bytes > MAX_HEAD_BYTES:
            self._refused = True
            self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(BODY), BODY))
            self.transport.close()
