"""Async HTTP: httpx's engine (httpcore) on asyncio, one set of connections per loop.

Imported on a model's first async call, not with the package: httpcore and
what it brings cost 25-35 ms to import. The retry policy and error mapping are
shared with sync calls (:mod:`langchain_kimi._transport`); connections live in
:mod:`langchain_kimi._async_connections`.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterable, AsyncIterator

import httpcore

from langchain_kimi._async_connections import Lease, LoopConnections
from langchain_kimi._transport import (
    _MAX_ERROR_BODY,
    Endpoint,
    _connect_timeout,
    _delay_before_retry,
    _describe_error,
    _error_for_status,
    _raise_if_certificate_refused,
    _read_timeout,
    _stalled,
)
from langchain_kimi.errors import (
    KimiConnectionError,
    KimiError,
    KimiResponseError,
    KimiStreamInterruptedError,
)


class AsyncTransport:
    """Non-blocking HTTP: httpx's engine (httpcore) over asyncio, one set of
    connections per event loop, created on first use.

    A model used from several loops (``asyncio.run`` twice, test suites) gets
    connections for the current loop. The request is built once per call from
    bytes prepared here; httpx's client layer (URL merging, cookies, redirects,
    auth hooks) has nothing to do for one fixed POST, and skipping it took about
    a fifth off each call's CPU in the benchmark's fan-out.
    """

    def __init__(self, endpoint: Endpoint, *, pool_size: int = 256) -> None:
        self.endpoint = endpoint
        self._pool_size = pool_size
        self._connections: LoopConnections | None = None
        self._url = httpcore.URL(endpoint.url)
        host = self._url.host
        port = self._url.port
        if b":" in host:
            host = b"[" + host + b"]"
        defaults = [
            (b"Host", host if port is None else b"%s:%d" % (host, port)),
            (b"Accept-Encoding", b"gzip, deflate"),
        ]
        given = endpoint.encoded_headers()
        named = {name.lower() for name, _ in given}
        # A header the user set (default_headers) replaces ours, never doubles it.
        self._headers = [(n, v) for n, v in defaults if n.lower() not in named] + given
        self._timeouts = {
            "connect": endpoint.connect_timeout,
            "read": endpoint.read_timeout,
            "write": endpoint.read_timeout,
            "pool": None,
        }

    def connections(self) -> LoopConnections:
        """The running loop's connections (new ones for a new or closed loop)."""
        loop = asyncio.get_running_loop()
        connections = self._connections
        if connections is None or connections.is_closed or connections.loop is not loop:
            connections = self._connections = LoopConnections(
                self.endpoint.url,
                max_connections=self._pool_size,
                connect_timeout=self.endpoint.connect_timeout,
            )
        return connections

    async def aclose(self) -> None:
        connections, self._connections = self._connections, None
        if connections is None or connections.is_closed:
            return
        if connections.loop.is_closed():
            # `asyncio.run(model.ainvoke(...))` then `asyncio.run(model.aclose())`:
            # the sockets belong to a loop that is gone and cannot be closed from
            # this one.
            return
        await connections.aclose()

    def _request(self, body: bytes) -> httpcore.Request:
        return httpcore.Request(
            b"POST",
            self._url,
            headers=[*self._headers, (b"Content-Length", b"%d" % len(body))],
            content=body,
            extensions={"timeout": self._timeouts},
        )

    async def _send(self, lease: Lease, body: bytes) -> httpcore.Response:
        """POST with retries; returns a 2xx response whose body is not read yet."""
        endpoint = self.endpoint
        policy = endpoint.retry
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                response = await lease.handle_async_request(self._request(body))
            except httpcore.ConnectTimeout:
                error: KimiError = _connect_timeout(endpoint)
            except httpcore.TimeoutException:
                raise _read_timeout(endpoint) from None
            except (httpcore.NetworkError, httpcore.RemoteProtocolError) as err:
                # Nothing was answered: the connection failed, or closed before
                # a status line (a kept-alive one the server had dropped).
                _raise_if_certificate_refused(err, endpoint)
                error = KimiConnectionError(
                    f"could not reach {endpoint.url}: {_describe_error(err)}"
                )
            except (
                httpcore.ProtocolError,
                httpcore.ProxyError,
                httpcore.UnsupportedProtocol,
            ) as err:
                raise KimiConnectionError(
                    f"request to {endpoint.url} failed: {_describe_error(err)}"
                ) from None
            else:
                status = response.status
                if status < 300:
                    return response
                headers = _header_dict(response.headers)
                raw = b""
                try:
                    async for piece in _decoded(response, headers.get("content-encoding")):
                        raw += piece
                        if len(raw) >= _MAX_ERROR_BODY:
                            break
                except (httpcore.NetworkError, httpcore.TimeoutException, httpcore.ProtocolError):
                    pass  # the error status is what matters; the body is a bonus
                except KimiError:
                    pass  # an undecodable error page: the status still says what happened
                finally:
                    await response.aclose()
                error, retry_after = _error_for_status(status, headers, raw)
            await asyncio.sleep(_delay_before_retry(policy, attempt, error, retry_after))
            attempt += 1

    async def post(self, body: bytes) -> bytes:
        """POST ``body``; return the whole (decoded) response body."""
        async with self.connections().lease() as lease:
            response = await self._send(lease, body)
            try:
                parts = [piece async for piece in self._aiter(response)]
                return b"".join(parts)
            finally:
                await response.aclose()

    async def stream(self, body: bytes) -> AsyncIterator[bytes]:
        """POST ``body``; yield the response body's bytes as they arrive."""
        # The lease is held until the stream is closed: its connection is busy until then.
        async with self.connections().lease() as lease:
            response = await self._send(lease, body)
            try:
                async for piece in self._aiter(response):
                    yield piece
            finally:
                await response.aclose()

    async def _aiter(self, response: httpcore.Response) -> AsyncIterator[bytes]:
        encoding = None
        for name, value in response.headers:
            if name.lower() == b"content-encoding":
                encoding = value.decode("latin-1")
        try:
            async for piece in _decoded(response, encoding):
                yield piece
        except httpcore.TimeoutException:
            raise _stalled(self.endpoint) from None
        except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as err:
            raise KimiStreamInterruptedError(
                f"the connection broke: {_describe_error(err)}"
            ) from None


def _header_dict(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Response headers by lower-case name (the last of repeated ones)."""
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in headers}


async def _decoded(response: httpcore.Response, encoding: str | None) -> AsyncIterator[bytes]:
    """The response body, with the ``Content-Encoding`` we asked for undone."""
    stream = response.stream
    assert isinstance(stream, AsyncIterable)
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        async for piece in stream:
            yield piece
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise KimiResponseError(
            f"the response is encoded with {encoding!r}, which was not asked for "
            "(Accept-Encoding: gzip, deflate)"
        )
    # wbits 32+15: a zlib or a gzip header, whichever the body has.
    decompressor = zlib.decompressobj(32 + zlib.MAX_WBITS)
    try:
        async for piece in stream:
            data = decompressor.decompress(piece)
            if data:
                yield data
        rest = decompressor.flush()
    except zlib.error as err:
        raise KimiResponseError(
            f"the {encoding} response body does not decompress: {err}"
        ) from None
    if rest:
        yield rest
    if not decompressor.eof:
        raise KimiStreamInterruptedError(f"the {encoding} response body ended before its end")
