"""FakeKimiServer: a loopback HTTP server that speaks Kimi's chat completions API.

It answers ``POST <base_url>/chat/completions`` like Ace Data Cloud does:
JSON completions, SSE streams, Ace and Moonshot error bodies. It enforces the
service's rules (see :mod:`langchain_kimi.testing._rules`) so a client bug
fails a test with the 400 the real service would send, and it can inject the
faults a real network produces (see :class:`~langchain_kimi.testing.Reply`).

Standard library only, and nothing shared with the client: the simulator is the
referee, so it must not agree with the client on a bug by sharing its code.

Usage::

    import requests
    from langchain_kimi.testing import FakeKimiServer, Reply

    with FakeKimiServer(api_key="test-key") as server:
        server.queue(Reply(content="Hi", reasoning="The user greets me."))
        response = requests.post(
            f"{server.base_url}/chat/completions",
            headers={"Authorization": "Bearer test-key"},
            json={"model": "kimi-k2.5", "messages": [{"role": "user", "content": "Hello"}]},
        )
        assert response.json()["choices"][0]["message"]["content"] == "Hi"
        assert server.requests[0].body["model"] == "kimi-k2.5"

Which answer a request gets, in order: a 404/405 for another path or method;
a 401 from the auth check; a 400 from the rules (when ``enforce_rules``); the
next queued :class:`Reply`; the responder's reply; the default reply
(``"Echo: <last user message>"``). Rejected requests never consume a queued reply.
``FakeKimiServer(model_like=True)`` starts with a
:class:`~langchain_kimi.testing.ModelLikeResponder` as its responder, which
answers every request like a model would (tools, JSON, limits) instead of echoing.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import socketserver
import ssl
import struct
import sys
import threading
import traceback
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from langchain_kimi.testing._model_like import ModelLikeResponder
from langchain_kimi.testing._render import (
    DONE_PAYLOAD,
    ERROR_EVENT_BODY,
    MALFORMED_PAYLOAD,
    completion_body,
    dumps,
    resolve,
    sse_event,
    stream_events,
)
from langchain_kimi.testing._replies import Reply
from langchain_kimi.testing._rules import FLAVORS, Flavor, check_auth, check_request, is_thinking

if TYPE_CHECKING:
    from langchain_kimi.testing._platform import MoonshotPlatform

Responder = Callable[[dict[str, Any]], Reply | None]

# Ace error codes for bare ``Reply(status=...)`` without a body.
_DEFAULT_ERROR_CODES = {
    400: "bad_request",
    401: "invalid_token",
    403: "used_up",
    404: "api_not_implemented",
    429: "too_many_requests",
    500: "api_error",
}
# Framing headers are the server's business: a user-supplied value would
# contradict the bytes actually sent.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "content-encoding"})
_STOP_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it (rejected ones included).

    ``headers`` keys are lower-cased; ``body`` is the parsed JSON, or None when
    the body was empty or not JSON; ``raw`` is the body's bytes.

    Usage::

        last = server.requests[-1]
        assert last.headers["authorization"] == "Bearer test-key"
        assert last.body["messages"][-1]["role"] == "tool"
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes


class FakeKimiServer:
    """A Kimi chat completions server (on 127.0.0.1 by default), run in a background thread.

    Args:
        api_key: the bearer token it accepts; ``None`` accepts any request
            without checking ``Authorization``.
        port: ``0`` (default) picks a free ephemeral port.
        latency: seconds waited before every answer (settable later).
        enforce_rules: check requests against the service's rules; ``False``
            answers anything (auth is still checked when ``api_key`` is set).
        host: the address to listen on (default ``127.0.0.1``); ``0.0.0.0`` or
            ``::`` listen on every interface, and ``base_url`` then names the
            loopback address.
        flavor: which service to play: ``"acedata"`` (default: Ace Data Cloud's
            401 bodies, ``response_format`` only ``text``/``json_object``) or
            ``"moonshot"`` (Moonshot's 401 body, ``json_schema`` accepted too).
            A client must be told which it talks to: ``base_url`` is loopback
            here (``ChatKimi(..., api_flavor="moonshot")``).
        path_prefix: the base URL's path; default ``"/kimi"`` (Ace Data Cloud's),
            ``"/v1"`` when playing Moonshot.
        tls: a server-side ``ssl.SSLContext`` to serve HTTPS instead of HTTP
            (``base_url`` then starts with ``https://``); the client must trust
            its certificate, for example through ``SSL_CERT_FILE``.
        model_like: answer like a model instead of echoing: the responder is a
            :class:`~langchain_kimi.testing.ModelLikeResponder` (it calls offered
            tools, fills JSON schemas, honours ``stop``/``max_tokens``/``n``).
            Queued replies still come first; ``set_responder`` replaces it.
        log: where to write one line per request (a callable taking the line,
            or a text stream such as ``sys.stderr``): method, path, model,
            status, and for a refusal the rule that refused it, e.g.
            ``POST /kimi/chat/completions model=kimi-k2.6 -> 400 refused:
            thinking is enabled, so every assistant message ...``.
            ``kimi-sim --verbose`` logs to standard error.

    Usage::

        with FakeKimiServer() as server:            # or server.start() / server.stop()
            server.base_url                         # "http://127.0.0.1:<port>/kimi"
            server.queue(Reply(content="Hi"), Reply.error(500, "api_error", "fetch failed"))
            server.set_responder(lambda body: Reply(content=str(len(body["messages"]))))
            ...
            server.requests, server.request_count, server.disconnects
            server.clear()
    """

    def __init__(
        self,
        api_key: str | None = "test-key",
        *,
        port: int = 0,
        latency: float = 0.0,
        enforce_rules: bool = True,
        flavor: Flavor = "acedata",
        path_prefix: str | None = None,
        tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        model_like: bool = False,
        log: Callable[[str], object] | TextIO | None = None,
    ) -> None:
        if flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {FLAVORS}, got {flavor!r}")
        if path_prefix is None:
            path_prefix = "/v1" if flavor == "moonshot" else "/kimi"
        self.flavor: Flavor = flavor
        self.api_key = api_key
        self._log = _log_writer(log)
        self.host = host
        self.tls = tls
        self.latency = latency
        self.enforce_rules = enforce_rules
        self._requested_port = port
        self._prefix = "/" + path_prefix.strip("/") if path_prefix.strip("/") else ""
        self._completions_path = f"{self._prefix}/chat/completions"
        # One condition guards all mutable state; waiters (stop, wait_for_*) use it too.
        self._lock = threading.Condition()
        self._replies: deque[Reply] = deque()
        self._responder: Responder | None = ModelLikeResponder() if model_like else None
        self._requests: list[RecordedRequest] = []
        self._disconnects = 0
        self._connections = 0
        self._active: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self.platform: MoonshotPlatform | None = None
        """Moonshot's files, batches, balance and token count (``flavor="moonshot"`` only)."""
        if flavor == "moonshot":
            from langchain_kimi.testing._platform import MoonshotPlatform

            self.platform = MoonshotPlatform(self._prefix, self._chat_answer)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> FakeKimiServer:
        """Bind and start serving in a daemon thread; no-op when running. Returns self."""
        with self._lock:
            if self._httpd is not None:
                return self
            self._stopping.clear()
            httpd = _HTTPServer((self.host, self._requested_port), self)
            self._httpd = httpd
            self._port = httpd.server_port
            # stop() waits up to one poll interval for the accept loop to notice;
            # tests start and stop a server each, so keep it short.
            self._thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.01},
                name=f"FakeKimiServer:{self._port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections; idempotent.

        Stalls and latency waits end at once, so a test never hangs on them.
        """
        with self._lock:
            httpd, thread = self._httpd, self._thread
            if httpd is None or thread is None:
                return
            self._httpd = None
            self._thread = None
            self._stopping.set()
            active = list(self._active)
        httpd.shutdown()
        httpd.server_close()
        thread.join()
        # Handler threads idle on keep-alive connections would block in recv()
        # until the client leaves: shutting the sockets down wakes them now.
        for connection in active:
            _shutdown_quietly(connection)
        with self._lock:
            self._lock.wait_for(lambda: not self._active, timeout=_STOP_GRACE_SECONDS)

    def __enter__(self) -> FakeKimiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._httpd is not None else "stopped"
        return f"<FakeKimiServer {where} requests={self.request_count}>"

    # -- addresses -----------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (RuntimeError before start())."""
        if self._port is None:
            raise RuntimeError("FakeKimiServer is not started: call start() or use `with`")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/kimi``: POST to ``f"{base_url}/chat/completions"``."""
        scheme = "http" if self.tls is None else "https"
        # A wildcard address is where to listen, not where to connect.
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}{self._prefix}"

    # -- scripting -----------------------------------------------------------

    def queue(self, *replies: Reply) -> None:
        """Append replies; each answers one accepted request, in order, stream or not."""
        for reply in replies:
            if not isinstance(reply, Reply):
                raise TypeError(f"queue() takes Reply values, got {type(reply).__name__}")
        with self._lock:
            self._replies.extend(replies)

    def set_responder(self, responder: Responder | None) -> None:
        """Answer from ``responder(body)`` when the queue is empty (None: default reply).

        The function gets the parsed request body and returns a :class:`Reply`,
        or None for the default reply. It runs in a server thread: an exception
        becomes a 500 ``api_error`` answer and its traceback goes to stderr.

        Usage::

            def agent_step(body):
                if body["messages"][-1]["role"] == "tool":
                    return Reply(content="Done.")
                return Reply(tool_calls=[ToolCall("search", {"q": "kimi"})])

            server.set_responder(agent_step)
        """
        with self._lock:
            self._responder = responder

    def clear(self) -> None:
        """Forget recorded requests and queued replies; reset the counters."""
        with self._lock:
            self._requests.clear()
            self._replies.clear()
            self._disconnects = 0
            self._connections = 0

    # -- observations ----------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in order, rejected ones included (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        """``len(requests)``."""
        with self._lock:
            return len(self._requests)

    @property
    def pending_replies(self) -> int:
        """Queued replies not yet consumed."""
        with self._lock:
            return len(self._replies)

    @property
    def disconnects(self) -> int:
        """Answers the client abandoned before the server finished writing them."""
        with self._lock:
            return self._disconnects

    @property
    def connections(self) -> int:
        """TCP connections accepted so far (compare with request_count to see keep-alive)."""
        with self._lock:
            return self._connections

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``request_count >= count``; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self._requests) >= count, timeout=timeout)

    def wait_for_disconnects(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until ``disconnects >= count``; False on timeout.

        The server only learns that a client left when a write fails, which
        happens a little after the client closes: tests should wait, not assert.
        """
        with self._lock:
            return self._lock.wait_for(lambda: self._disconnects >= count, timeout=timeout)

    # -- used by the request handler --------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _count_disconnect(self) -> None:
        # A write failing because stop() shut the socket is not the client's doing.
        if self._stopping.is_set():
            return
        with self._lock:
            self._disconnects += 1
            self._lock.notify_all()

    def _connection_opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections += 1
            self._active.add(connection)
            stopping = self._stopping.is_set()
        if stopping:
            # Accepted while stop() was running, after it looked at the open sockets.
            _shutdown_quietly(connection)

    def _connection_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._active.discard(connection)
            self._lock.notify_all()

    def _pause(self, seconds: float) -> bool:
        """Sleep unless stopping; False means the server is stopping: drop the connection."""
        if seconds > 0:
            return not self._stopping.wait(seconds)
        return not self._stopping.is_set()

    def _decide(
        self, method: str, path: str, headers: Mapping[str, str], body: Any, raw: bytes = b""
    ) -> tuple[Reply, dict[str, Any]]:
        """The reply for a request, and the request body it answers ({} if none)."""
        url = urlsplit(path)
        route = url.path
        if self.platform is not None and route != self._completions_path:
            handler = self.platform.handler(method, route, url.query, headers, raw, body)
            if handler is not None:
                rejection = check_auth(headers.get("authorization"), self.api_key, self.flavor)
                return (rejection if rejection is not None else handler()), {}
        if route != self._completions_path:
            message = f"No API at {route}: POST to {self._completions_path}."
            return Reply.error(404, "api_not_implemented", message), {}
        if method != "POST":
            return Reply.error(405, "method_not_allowed", f"{method} is not allowed here."), {}
        rejection = check_auth(headers.get("authorization"), self.api_key, self.flavor)
        if rejection is not None:
            return rejection, {}
        request = body if isinstance(body, dict) else {}
        return self._chat_answer(body), request

    def _chat_answer(self, body: Any) -> Reply:
        """The answer to an authorised chat request body (batch lines come here too)."""
        rejection = self.platform.quota_refusal() if self.platform is not None else None
        if rejection is None and self.enforce_rules:
            rejection = check_request(body, self.flavor)
        if rejection is not None:
            return rejection
        return self._next_reply(body if isinstance(body, dict) else {})

    def _next_reply(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
            responder = self._responder
        if responder is None:
            return Reply()
        try:
            reply = responder(request)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            return Reply.error(500, "api_error", f"FakeKimiServer responder raised {exc!r}")
        if reply is None:
            return Reply()
        if not isinstance(reply, Reply):
            message = f"FakeKimiServer responder returned {type(reply).__name__}, not Reply"
            return Reply.error(500, "api_error", message)
        return reply


class _HTTPServer(ThreadingHTTPServer):
    # A thread per connection, never joined on close: stop() wakes and waits
    # for them itself, with a bounded grace period.
    daemon_threads = True
    allow_reuse_address = True
    # Benchmarks open hundreds of connections at once; the default backlog (5)
    # would make the kernel drop SYNs and add whole-second retransmit delays.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], simulator: FakeKimiServer) -> None:
        self.simulator = simulator
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN: a DNS query that tests
        # must not make (and that can take seconds on a machine without DNS).
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients dropping connections is routine here (that is what the fault
        # tests do); anything else is a simulator bug worth a traceback.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive: clients pool them, and a simulator that
    # closed after every answer would hide bugs in the client's connection reuse.
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def version_string(self) -> str:
        return "FakeKimi/1.0"

    def setup(self) -> None:
        tls = self.server.simulator.tls
        if tls is not None:
            # The handshake runs here, in the connection's own thread: a client
            # that never completes it holds up no one else.
            self.request = tls.wrap_socket(self.request, server_side=True)
        super().setup()
        # Events are small writes: with Nagle's algorithm and delayed ACKs a
        # write can wait 40 ms for the previous one to be acknowledged.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.simulator._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.simulator._connection_closed(self.connection)
            if self.server.simulator.tls is not None:
                # socketserver closes the socket it accepted, which wrapping
                # emptied: the TLS socket holding the connection is ours to close.
                self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        # Silence per-request access logs: they would flood test output.
        return

    def do_POST(self) -> None:
        self._exchange()

    # Other methods are recorded and answered (404/405) rather than left to the
    # base class's HTML 501, so a client using the wrong verb sees a clear error.
    do_GET = do_POST
    do_PUT = do_POST
    do_PATCH = do_POST
    do_DELETE = do_POST

    def _exchange(self) -> None:
        sim = self.server.simulator
        try:
            raw = self._read_body()
        except ValueError:
            self.close_connection = True
            reply = Reply.error(400, "bad_request", "The request body framing is invalid.")
            self._answer(reply, {})
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        body = _parse_json(raw)
        sim._record(RecordedRequest(self.command, self.path, headers, body, raw))
        reply, request = sim._decide(self.command, self.path, headers, body, raw)
        if sim._log is not None:
            sim._log(request_log_line(self.command, self.path, body, reply))
        self._answer(reply, request)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is not None:
            size = int(length)
            if size < 0:
                raise ValueError("negative Content-Length")
            return self.rfile.read(size)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline(65537).split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers: nothing here needs them
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return b""

    def _answer(self, reply: Reply, request: dict[str, Any]) -> None:
        sim = self.server.simulator
        if not sim._pause(sim.latency + reply.delay):
            self.close_connection = True
            return
        if reply.fault == "reset":
            self._reset()
            return
        try:
            if reply.status != 200 or reply.body is not None:
                content_type, payload = _plain_body(reply)
                self._send_fixed(reply, reply.status, [("Content-Type", content_type)], payload)
            elif request.get("stream") is True:
                self._send_stream(reply, request)
            else:
                self._send_completion(reply, request)
        except OSError:
            # The client went away while we were writing.
            self.close_connection = True
            sim._count_disconnect()

    def _reset(self) -> None:
        self.close_connection = True
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # rfile holds a reference to the socket: close() only releases the
        # descriptor (and so sends the RST) once that reference is gone.
        self.rfile.close()
        self.connection.close()

    def _start_response(
        self, status: int, headers: list[tuple[str, str]], extra: Mapping[str, str]
    ) -> None:
        self.send_response(status)
        overridden = {name.lower() for name in extra}
        for name, value in headers:
            if name.lower() not in overridden or name.lower() in _FRAMING_HEADERS:
                self.send_header(name, value)
        for name, value in extra.items():
            if name.lower() not in _FRAMING_HEADERS:
                self.send_header(name, value)
        self.end_headers()

    def _send_completion(self, reply: Reply, request: dict[str, Any]) -> None:
        if reply.fault == "malformed":
            payload = MALFORMED_PAYLOAD
        elif reply.fault == "error_event":
            payload = dumps(ERROR_EVENT_BODY, reply.spaced_json)
        else:
            payload = completion_body(resolve(reply, request, is_thinking(request)), reply)
        self._send_fixed(reply, 200, [("Content-Type", "application/json")], payload)

    def _send_fixed(
        self, reply: Reply, status: int, headers: list[tuple[str, str]], payload: bytes
    ) -> None:
        """Send a body with Content-Length, applying the reply's fault."""
        sim = self.server.simulator
        fault = reply.fault
        after = reply.fault_after or 0
        if fault == "gzip":
            payload = gzip.compress(payload, mtime=0)
            headers = [*headers, ("Content-Encoding", "gzip")]
        if fault == "stall" and after == 0 and not sim._pause(reply.stall):
            self.close_connection = True
            return
        self._start_response(
            status, [*headers, ("Content-Length", str(len(payload)))], reply.headers
        )
        if fault == "disconnect":
            self.wfile.write(payload[:after])
            self.close_connection = True
            return
        if fault == "stall" and after > 0:
            self.wfile.write(payload[:after])
            if not sim._pause(reply.stall):
                self.close_connection = True
                return
            payload = payload[after:]
        if fault == "split_utf8":
            for piece in _tiny_pieces(payload):
                self.wfile.write(piece)
        else:
            self.wfile.write(payload)

    def _send_stream(self, reply: Reply, request: dict[str, Any]) -> None:
        sim = self.server.simulator
        resolved = resolve(reply, request, is_thinking(request))
        options = request.get("stream_options")
        include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
        events = stream_events(resolved, reply, include_usage)
        fault = reply.fault
        headers = [
            ("Content-Type", "text/event-stream; charset=utf-8"),
            ("Cache-Control", "no-cache"),
            ("Transfer-Encoding", "chunked"),
        ]
        if fault == "gzip":
            headers.append(("Content-Encoding", "gzip"))
        self._start_response(200, headers, reply.headers)
        writer = _ChunkedWriter(
            self.wfile.write, split=fault == "split_utf8", compress=fault == "gzip"
        )
        # A fault past the last event still fires, just before [DONE].
        fault_at = min(reply.fault_after if reply.fault_after is not None else 2, len(events))
        for position in range(len(events) + 1):
            if position == fault_at:
                if fault == "disconnect":
                    self.close_connection = True
                    return
                if fault == "stall" and not sim._pause(reply.stall):
                    self.close_connection = True
                    return
                if fault == "malformed":
                    writer.write(sse_event(MALFORMED_PAYLOAD, reply))
                if fault == "error_event":
                    writer.write(sse_event(dumps(ERROR_EVENT_BODY, reply.spaced_json), reply))
                    writer.close()
                    return
            if position == len(events):
                break
            if position > 0 and reply.chunk_delay > 0 and not sim._pause(reply.chunk_delay):
                self.close_connection = True
                return
            writer.write(events[position])
        writer.write(sse_event(DONE_PAYLOAD, reply))
        writer.close()


class _ChunkedWriter:
    """Chunked transfer encoding over the socket, optionally gzipped or split."""

    def __init__(self, send: Callable[[bytes], object], *, split: bool, compress: bool) -> None:
        self._send = send
        self._split = split
        # wbits=31 selects the gzip container, matching Content-Encoding: gzip.
        self._compressor = zlib.compressobj(wbits=31) if compress else None

    def write(self, data: bytes) -> None:
        if self._compressor is not None:
            # A sync flush per event, so the client can decode each event on
            # arrival instead of waiting for the end of the stream.
            data = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        self._write_chunks(data)

    def close(self) -> None:
        if self._compressor is not None:
            self._write_chunks(self._compressor.flush())
        self._send(b"0\r\n\r\n")

    def _write_chunks(self, data: bytes) -> None:
        for piece in _tiny_pieces(data) if self._split else (data,):
            # An empty chunk would be read as the end of the body.
            if piece:
                self._send(b"%x\r\n%s\r\n" % (len(piece), piece))


def _tiny_pieces(data: bytes) -> Iterator[bytes]:
    """1, 2, 3, 1, 2, 3... byte slices: every multi-byte character gets split somewhere."""
    start = 0
    step = 0
    while start < len(data):
        size = step % 3 + 1
        yield data[start : start + size]
        start += size
        step += 1


def _plain_body(reply: Reply) -> tuple[str, bytes]:
    """Content type and bytes of a reply sent as-is (errors, raw bodies)."""
    body = reply.body
    if body is None:
        try:
            phrase = HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = f"HTTP {reply.status}"
        code = _DEFAULT_ERROR_CODES.get(reply.status, "api_error")
        body = {
            "success": False,
            "error": {"code": code, "message": phrase},
            "trace_id": str(uuid.uuid4()),
        }
    if isinstance(body, Mapping):
        return "application/json", dumps(dict(body), reply.spaced_json)
    if isinstance(body, str):
        return "text/plain; charset=utf-8", body.encode("utf-8")
    return "text/plain; charset=utf-8", bytes(body)


def request_log_line(method: str, path: str, body: Any, reply: Reply) -> str:
    """One request, as ``log=`` and ``kimi-sim --verbose`` show it."""
    model = body.get("model") if isinstance(body, dict) else None
    line = f"{method} {path} model={model if isinstance(model, str) else '-'} -> {reply.status}"
    if reply.status >= 400:
        _, payload = _plain_body(reply)
        try:
            error = json.loads(payload).get("error") or {}
            reason = error.get("message") if isinstance(error, dict) else None
        except (ValueError, AttributeError):
            reason = None
        line += f" refused: {reason or payload[:200].decode('utf-8', 'replace')}"
    elif reply.fault is not None:
        line += f" (fault: {reply.fault})"
    return line


def _log_writer(log: Callable[[str], object] | TextIO | None) -> Callable[[str], object] | None:
    if log is None or callable(log):
        return log
    stream = log

    def write(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    return write


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _shutdown_quietly(connection: socket.socket) -> None:
    # OSError: already closed by its handler.
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
