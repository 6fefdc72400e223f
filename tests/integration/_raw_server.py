"""A loopback HTTP server whose every byte a test writes itself, for faults the simulator cannot express.

Each accepted connection runs ``handler(connection)`` in its own thread. The
handler reads the request with :meth:`RawConnection.read_request` and writes
whatever it wants: a gzip bomb, a body dribbled a byte at a time, duplicate
headers, a keep-alive connection dropped while idle. ``heads`` records every
request head, raw, for tests that inspect the exact header lines.

Usage::

    def answer(connection: RawConnection) -> None:
        connection.read_request()
        connection.send(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\n{}")

    with RawServer(answer) as server:
        ChatKimi(base_url=server.base_url, ...)
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType


class RawConnection:
    def __init__(self, sock: socket.socket, server: RawServer) -> None:
        self.sock = sock
        self._server = server
        self._buffer = b""

    @property
    def stopping(self) -> bool:
        return self._server.stopping.is_set()

    def read_request(self) -> tuple[bytes, bytes] | None:
        """(head, body) of the next request; None when the client closed the connection."""
        while b"\r\n\r\n" not in self._buffer:
            data = self.sock.recv(65536)
            if not data:
                return None
            self._buffer += data
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(rest) < length:
            data = self.sock.recv(65536)
            if not data:
                return None
            rest += data
        body, self._buffer = rest[:length], rest[length:]
        with self._server.lock:
            self._server.heads.append(head)
        return head, body

    def send(self, data: bytes) -> bool:
        """Write ``data``; False when the client has gone."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def pause(self, seconds: float) -> bool:
        """Wait unless the server is stopping; False means stop now."""
        return not self._server.stopping.wait(seconds)


class RawServer:
    def __init__(self, handler: Callable[[RawConnection], None]) -> None:
        self.handler = handler
        self.heads: list[bytes] = []
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


def response_head(status: str = "200 OK", **headers: str | int) -> bytes:
    """``HTTP/1.1 <status>`` and the headers (``content_type=`` -> ``Content-Type``)."""
    lines = [f"HTTP/1.1 {status}"]
    for name, value in headers.items():
        lines.append(f"{name.replace('_', '-').title()}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
