"""A forward HTTP proxy on 127.0.0.1 for the proxy tests, sending everything to one upstream.

Whatever host a request names, the proxy connects to ``upstream_port`` on
127.0.0.1, so tests can name hosts that do not exist (``kimi.invalid``) and
prove the client never resolved them: only the proxy was contacted.

- ``POST http://host/path HTTP/1.1`` (a plain-HTTP target): the request is
  forwarded in origin form with ``Connection: close``, the answer piped back.
- ``CONNECT host:port`` (an HTTPS target): ``200`` and then a byte tunnel.

Every request head is recorded (``heads``) with its ``Proxy-Authorization``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class ProxiedRequest:
    method: str
    target: str  # absolute URL, or host:port for CONNECT
    proxy_authorization: str | None


class RelayProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.heads: list[ProxiedRequest] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        with contextlib.suppress(OSError):  # shutdown wakes the thread blocked in accept()
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._accepting.join(timeout=5)

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
        return sock

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            self._spawn(self._serve, self._track(client))

    def _serve(self, client: socket.socket) -> None:
        try:
            head, rest = _read_head(client)
        except OSError:
            return
        if not head:
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = [line.split(":", 1) for line in lines[1:] if ":" in line]
        auth = next((v.strip() for k, v in headers if k.lower() == "proxy-authorization"), None)
        with self._lock:
            self.heads.append(ProxiedRequest(method, target, auth))
        upstream = self._track(socket.create_connection(("127.0.0.1", self.upstream_port)))
        if method == "CONNECT":
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            self._spawn(_pipe, client, upstream)
            _pipe(upstream, client)
            return
        path = "/" + target.split("://", 1)[1].split("/", 1)[1] if "://" in target else target
        kept = [
            f"{k}:{v}"
            for k, v in headers
            if not k.lower().startswith("proxy-") and k.lower() != "connection"
        ]
        forwarded = "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close"])
        upstream.sendall(forwarded.encode("latin-1") + b"\r\n\r\n" + rest)
        # The body (Content-Length) may still be arriving: keep forwarding it.
        self._spawn(_pipe, client, upstream)
        _pipe(upstream, client)


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            return b"", b""
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy until ``source`` ends, then end ``sink`` too."""
    try:
        while True:
            piece = source.recv(65536)
            if not piece:
                break
            sink.sendall(piece)
    except OSError:
        pass
    finally:
        for sock in (sink, source):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
