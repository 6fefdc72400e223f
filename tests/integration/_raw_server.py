"""A loopback HTTP server whose every byte a test writes itself, for faults the simulator cannot express.

The one helper for misbehaving servers (the simulator covers well-formed
answers and its named faults). Each accepted connection runs
``handler(connection)`` in its own thread. The handler reads requests with
:meth:`RawConnection.read_request` and writes whatever it wants: a gzip bomb, a
body dribbled a byte at a time, an interim ``103`` before the answer, a status
line and then a reset, a keep-alive connection dropped while idle, an answer
built from the request's own headers. ``requests`` records every request (its
raw head, its headers, its body) in arrival order.

Usage::

    def answer(connection: RawConnection) -> None:
        while connection.read_request() is not None:
            connection.send(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\n{}")

    with RawServer(answer) as server:
        ChatKimi(base_url=server.base_url, ...)

For the common case (read one request, answer it, close), wrap a function of
the connection and the request in :func:`one_answer`::

    with RawServer(one_answer(lambda c, r: c.send_response(400, b"no"))) as server:
        ...
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import socket
import struct
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class RawRequest:
    """One request as it arrived: the head's bytes, its headers (names in any case), the body."""

    head: bytes
    headers: http.client.HTTPMessage = field(repr=False)
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RawConnection:
    def __init__(self, sock: socket.socket, server: RawServer) -> None:
        self.sock = sock
        self._server = server
        self._buffer = b""

    @property
    def stopping(self) -> bool:
        return self._server.stopping.is_set()

    def read_request(self) -> RawRequest | None:
        """The next request (body read by its Content-Length); None when the client closed."""
        while b"\r\n\r\n" not in self._buffer:
            data = self._recv()
            if not data:
                return None
            self._buffer += data
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        _, _, header_block = head.partition(b"\r\n")
        # The standard library reads the header block (a test server, not the client).
        headers = http.client.parse_headers(io.BytesIO(header_block + b"\r\n\r\n"))
        length = int(headers.get("Content-Length") or 0)
        while len(rest) < length:
            data = self._recv()
            if not data:
                return None
            rest += data
        body, self._buffer = rest[:length], rest[length:]
        request = RawRequest(head, headers, body)
        with self._server.lock:
            self._server.requests.append(request)
        return request

    def _recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except OSError:
            return b""

    def send(self, data: bytes) -> bool:
        """Write ``data``; False when the client has gone."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def send_response(
        self,
        status: int | str,
        body: bytes,
        content_type: str = "application/json",
        *,
        keep_alive: bool = False,
        **headers: str | int,
    ) -> bool:
        """A whole answer with its Content-Length (``Connection: close`` unless ``keep_alive``)."""
        extra: dict[str, str | int] = {"content_type": content_type, "content_length": len(body)}
        if not keep_alive:
            extra["connection"] = "close"
        extra.update(headers)
        return self.send(response_head(_status_line(status), **extra) + body)

    def send_chunked(
        self,
        pieces: Iterable[bytes],
        status: int | str = 200,
        content_type: str = "text/event-stream",
        *,
        end: bool = True,
        keep_alive: bool = False,
    ) -> bool:
        """An answer in HTTP chunks, one per piece; ``end=False`` leaves the body open."""
        headers: dict[str, str | int] = {
            "content_type": content_type,
            "transfer_encoding": "chunked",
        }
        if not keep_alive:
            headers["connection"] = "close"
        if not self.send(response_head(_status_line(status), **headers)):
            return False
        for piece in pieces:
            if piece and not self.send(b"%x\r\n%s\r\n" % (len(piece), piece)):
                return False
        return self.send(b"0\r\n\r\n") if end else True

    def reset(self) -> None:
        """Close with a TCP reset (RST) instead of an orderly FIN."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()

    def pause(self, seconds: float) -> bool:
        """Wait unless the server is stopping; False means stop now."""
        return not self._server.stopping.wait(seconds)


Handler = Callable[[RawConnection], None]


def one_answer(respond: Callable[[RawConnection, RawRequest], None]) -> Handler:
    """A handler that reads one request, lets ``respond`` answer it, and ends the connection."""

    def handle(connection: RawConnection) -> None:
        request = connection.read_request()
        if request is not None:
            respond(connection, request)

    return handle


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[RawRequest] = []
        self.accepted = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/kimi"

    @property
    def heads(self) -> list[bytes]:
        """Every request's raw head, in arrival order."""
        with self.lock:
            return [request.head for request in self.requests]

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.accepted += 1
                self._connections.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError), sock:
            self.handler(RawConnection(sock, self))

    def close(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            # Closing alone would not wake the thread blocked in accept(); shutdown does.
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self.lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        self._acceptor.join(timeout=5)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _status_line(status: int | str) -> str:
    if isinstance(status, int):
        try:
            return f"{status} {http.HTTPStatus(status).phrase}"
        except ValueError:
            return f"{status} Unknown"
    return status


def response_head(status: str = "200 OK", **headers: str | int) -> bytes:
    """``HTTP/1.1 <status>`` and the headers (``content_type=`` -> ``Content-Type``)."""
    lines = [f"HTTP/1.1 {status}"]
    for name, value in headers.items():
        lines.append(f"{name.replace('_', '-').title()}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
