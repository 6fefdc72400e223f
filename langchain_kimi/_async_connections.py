"""One event loop's connections for async calls: a stack of idle HTTP/1.1 connections.

Every async call goes to one URL, so it needs no general connection pool. Each
call takes the most recently used idle connection (or opens one), sends its
request with httpcore's HTTP/1.1 connection, and puts the connection back when
its response is closed; idle ones close after :data:`KEEPALIVE_EXPIRY`.

httpcore's own pool does more than this and pays for it on every call: it
rescans all of its connections whenever a request starts or a response closes,
under locks and events of its own. The benchmark's 64-call fan-out, whose wall
time is the CPU spent before the last request leaves, measured it (designs
alternating in one process, medians of client CPU): one pool 140 ms, 16 pools
of 16 connections 95 ms; in a later run, those 16 pools 114 ms, this stack
102 ms.

Calls first wait for one of ``max_connections`` slots. Through a proxy (named
by the same environment variables ``requests`` reads for sync calls), calls
go through httpcore's pool instead, which knows how to talk to proxies.
Sockets come from :mod:`langchain_kimi._asyncio_network`, the CA bundle from
:mod:`langchain_kimi._tls`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
import urllib.parse
from types import TracebackType

import httpcore
import requests.utils

from langchain_kimi._asyncio_network import AsyncioNetworkBackend
from langchain_kimi._tls import verifying_context

# Idle connections are closed after this long, like httpx's default.
KEEPALIVE_EXPIRY = 5.0
# At most this many idle connections are kept; more are closed when released.
MAX_IDLE = 64


class LoopConnections:
    """The connections of one event loop to one URL, created inside that loop.

    Usage::

        connections = LoopConnections(url, max_connections=256, connect_timeout=10)
        async with connections.lease() as lease:
            response = await lease.handle_async_request(request)
            try:
                ...  # read the response
            finally:
                await response.aclose()
        await connections.aclose()
    """

    def __init__(self, url: str, *, max_connections: int, connect_timeout: float | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.ssl_context = verifying_context()
        self.is_closed = False
        self._url = httpcore.URL(url)
        self._origin = self._url.origin
        self._connect_timeout = connect_timeout
        self._backend = AsyncioNetworkBackend()
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[httpcore.AsyncHTTP11Connection] = []  # most recently used last
        self._open: set[httpcore.AsyncHTTP11Connection] = set()
        proxy = environment_proxy(url, self.ssl_context)
        self._proxied = (
            None
            if proxy is None
            else httpcore.AsyncConnectionPool(
                ssl_context=self.ssl_context,
                proxy=proxy,
                max_connections=max_connections,
                keepalive_expiry=KEEPALIVE_EXPIRY,
                network_backend=self._backend,
            )
        )

    def lease(self) -> Lease:
        """``async with``: wait for a slot, send through the lease, give it back on exit."""
        return Lease(self)

    async def aclose(self) -> None:
        """Close every connection, idle or in use; calls still running then fail."""
        self.is_closed = True
        self._idle.clear()
        connections, self._open = self._open, set()
        for connection in connections:
            await connection.aclose()
        if self._proxied is not None:
            await self._proxied.aclose()

    async def _take(self) -> httpcore.AsyncHTTP11Connection:
        """The most recently used idle connection that is still good, or a new one."""
        idle = self._idle
        while idle:
            connection = idle.pop()
            if connection.is_idle() and not connection.has_expired():
                return connection
            await self._drop(connection)
        return await self._connect()

    async def _connect(self) -> httpcore.AsyncHTTP11Connection:
        url = self._url
        host = url.host.decode("ascii")
        port = url.port or (443 if url.scheme == b"https" else 80)
        stream = await self._backend.connect_tcp(host, port, timeout=self._connect_timeout)
        if url.scheme == b"https":
            stream = await stream.start_tls(
                self.ssl_context, server_hostname=host, timeout=self._connect_timeout
            )
        connection = httpcore.AsyncHTTP11Connection(
            self._origin, stream, keepalive_expiry=KEEPALIVE_EXPIRY
        )
        self._open.add(connection)
        return connection

    async def _give_back(self, connection: httpcore.AsyncHTTP11Connection) -> None:
        """Keep a connection whose exchange ended cleanly for the next call; close others."""
        idle = self._idle
        if self.is_closed or not connection.is_idle() or len(idle) >= MAX_IDLE:
            await self._drop(connection)
            return
        # The oldest idle connection is the first to expire: drop those that have.
        while idle and idle[0].has_expired():
            await self._drop(idle.pop(0))
        idle.append(connection)

    async def _drop(self, connection: httpcore.AsyncHTTP11Connection) -> None:
        self._open.discard(connection)
        if not connection.is_closed():
            await connection.aclose()


class Lease:
    """One call's slot and, once it has sent something, its connection."""

    __slots__ = ("_connection", "_connections")

    def __init__(self, connections: LoopConnections) -> None:
        self._connections = connections
        self._connection: httpcore.AsyncHTTP11Connection | None = None

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        """Send ``request``; close the previous response first when retrying."""
        connections = self._connections
        if connections._proxied is not None:
            return await connections._proxied.handle_async_request(request)
        await self._release()
        connection = self._connection = await connections._take()
        return await connection.handle_async_request(request)

    async def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._connections._give_back(connection)

    async def __aenter__(self) -> Lease:
        await self._connections._slots.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await self._release()
        finally:
            self._connections._slots.release()


def environment_proxy(url: str, ssl_context: ssl.SSLContext) -> httpcore.Proxy | None:
    """The proxy the environment names for ``url``, as ``requests`` would pick it.

    ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` (either case) and ``NO_PROXY``
    are read once, when a loop's connections are created. Credentials in the
    proxy URL become a ``Proxy-Authorization`` header.
    """
    chosen = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
    if not chosen:
        return None
    if "://" not in chosen:
        chosen = "http://" + chosen
    parts = urllib.parse.urlsplit(chosen)
    scheme = parts.scheme.lower()
    if scheme in ("socks5", "socks5h"):
        if importlib.util.find_spec("socksio") is None:  # httpcore's SOCKS support needs it
            raise ValueError(
                f"the environment names a SOCKS proxy ({scheme}://{parts.hostname}:"
                f"{parts.port}) for {url}; async calls through it need the 'socksio' "
                "package (pip install socksio)"
            )
    elif scheme not in ("http", "https"):
        raise ValueError(
            f"the environment names a proxy with an unsupported scheme '{scheme}' for {url}"
        )
    auth = None
    if parts.username is not None:
        auth = (
            urllib.parse.unquote(parts.username),
            urllib.parse.unquote(parts.password or ""),
        )
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    where = f"{scheme}://{host}" + (f":{parts.port}" if parts.port else "")
    return httpcore.Proxy(
        url=where,
        auth=auth,
        ssl_context=ssl_context if scheme == "https" else None,
    )
