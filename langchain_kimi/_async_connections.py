"""One event loop's connections for async calls: small httpcore pools side by side.

httpx sends through httpcore's connection pool, and that pool rescans all of
its connections each time a request starts or a response closes (while more
than ``max_keepalive_connections`` are open, it even recounts them for each
one). With 64 calls in flight on one pool that is thousands of checks per
event, paid in the window in which the calls' requests go out. So the
connections are split over pools of at most :data:`POOL_SIZE`, and each call
takes the least busy pool: one call at a time keeps reusing the first pool's
connection, a fan-out spreads over all of them. In the benchmark's 64-call
fan-out this took the client's CPU from about 170 to 110 ms.

Calls first wait for one of ``max_connections`` slots, so no pool ever has to
queue a request (a queued request is rescanned on every event too).

Sockets come from :mod:`langchain_kimi._asyncio_network`, the CA bundle from
:mod:`langchain_kimi._tls`, and the proxy, if any, from the same environment
variables ``requests`` reads for sync calls.
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

POOL_SIZE = 16
# Idle connections are closed after this long, like httpx's default.
KEEPALIVE_EXPIRY = 5.0


class LoopConnections:
    """The connections of one event loop, created inside it.

    Usage::

        connections = LoopConnections(url, max_connections=256)
        async with connections.lease() as pool:
            response = await pool.handle_async_request(request)
            ...
        await connections.aclose()
    """

    def __init__(self, url: str, *, max_connections: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.ssl_context = verifying_context()
        proxy = environment_proxy(url, self.ssl_context)
        backend = AsyncioNetworkBackend()
        count = -(-max_connections // POOL_SIZE)
        self._pools = [
            httpcore.AsyncConnectionPool(
                ssl_context=self.ssl_context,
                proxy=proxy,
                max_connections=POOL_SIZE,
                max_keepalive_connections=POOL_SIZE,
                keepalive_expiry=KEEPALIVE_EXPIRY,
                network_backend=backend,
            )
            for _ in range(count)
        ]
        self._busy = [0] * count  # calls in flight per pool
        self._slots = asyncio.Semaphore(max_connections)
        self.is_closed = False

    def lease(self) -> _Lease:
        """``async with``: wait for a slot, then use the least busy pool until the exit."""
        return _Lease(self)

    async def aclose(self) -> None:
        self.is_closed = True
        for pool in self._pools:
            await pool.aclose()

    def _take(self) -> int:
        busy = self._busy
        index = busy.index(min(busy))
        busy[index] += 1
        return index


class _Lease:
    __slots__ = ("_connections", "_index")

    def __init__(self, connections: LoopConnections) -> None:
        self._connections = connections
        self._index = -1

    async def __aenter__(self) -> httpcore.AsyncConnectionPool:
        connections = self._connections
        await connections._slots.acquire()
        self._index = connections._take()
        return connections._pools[self._index]

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        connections = self._connections
        connections._busy[self._index] -= 1
        connections._slots.release()


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
