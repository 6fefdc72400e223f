"""Async HTTP on aiohttp: one ``ClientSession`` per event loop.

Imported on a model's first async call, not with the package: aiohttp costs
tens of milliseconds to import. The retry policy, deadline, error mapping and
size limits are shared with sync calls (:mod:`langchain_kimi._transport`); aiohttp
does the HTTP: framing, connection reuse, decompression, proxies, TLS, IDN.

Sessions belong to the loop they were opened in. A model used from several
loops (``asyncio.run`` twice, a loop per thread, test suites) gets a session
per loop, tracked weakly, and each session is closed when its loop ends:
``asyncio.run``, ``asyncio.Runner`` and ``uvloop.run`` finish every loop with
``loop.shutdown_asyncgens()``, which closes a small guard generator opened with
the session (see :func:`_close_with_loop`). A loop closed by hand without that
call leaves its connections to the garbage collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import yarl

from langchain_kimi._limits import MAX_ERROR_BODY_BYTES, MAX_RESPONSE_BYTES
from langchain_kimi._network_settings import NetworkSettings
from langchain_kimi._transport import (
    AFTER_ANSWER_GRACE,
    DEFAULT_MAX_CONNECTIONS,
    Deadline,
    Endpoint,
    Failure,
    PlatformAnswer,
    PlatformRequest,
    Resend,
    RetryPolicy,
    answer_broken_error,
    certificate_refused_error,
    connect_timeout_error,
    delay_before_retry,
    describe_error,
    error_for_status,
    lost_connection_error,
    platform_endpoint,
    read_timeout_error,
    resend_failure,
    resend_policy,
    stalled_error,
    too_large_error,
    with_secrets,
)
from langchain_kimi.errors import KimiConnectionError, KimiError, KimiStreamInterruptedError


@dataclass(frozen=True)
class _LoopSession:
    session: aiohttp.ClientSession
    # Closes the session when the loop's shutdown_asyncgens() closes it.
    guard: AsyncGenerator[None, None]


async def _close_with_loop(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    """A generator that lives as long as ``session`` should: closing it closes the session.

    Started once inside the session's loop, it is registered with that loop
    (asyncio's async-generator hooks), so ``loop.shutdown_asyncgens()`` at the
    end of ``asyncio.run`` closes it, and the session, while the loop can still
    run the sockets' shutdown. If the transport is dropped first, the loop's
    finalizer closes it the same way.
    """
    try:
        yield
    finally:
        await session.close()


async def _close_guard(guard: AsyncGenerator[None, None]) -> None:
    await guard.aclose()


# Every live async transport, so a forked child forgets its parent's sessions.
_ASYNC_TRANSPORTS: weakref.WeakSet[AsyncTransport] = weakref.WeakSet()
# Sessions a forked child inherited: never used, never closed (their loop and
# sockets are the parent's), kept referenced so the collector does not report them.
_INHERITED: list[_LoopSession] = []


class AsyncTransport:
    """Non-blocking HTTP on aiohttp, one session per event loop, opened on first use.

    ``session``: the user's own ``aiohttp.ClientSession``
    (``ChatKimi(http_async_client=...)``), used as given (its connector, proxy
    and TLS settings) and never closed here.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._settings = NetworkSettings.from_environment(endpoint.url)
        # A proxy's error page may echo its credentials: errors redact them too.
        self.endpoint = endpoint = with_secrets(endpoint, self._settings.proxy_secrets())
        self._max_connections = max_connections
        self._given = session
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopSession] = (
            weakref.WeakKeyDictionary()
        )
        self._url = yarl.URL(endpoint.url)
        self._timeout = _client_timeout(endpoint)
        self._proxy: yarl.URL | None = None
        self._proxy_headers: dict[str, str] | None = None
        # Headers of ours sent with the endpoint's on every request.
        self._own_headers: dict[str, str] = {}
        if session is None and self._settings.proxy is not None:
            self._proxy, credentials = _split_proxy(self._settings.proxy)
            if credentials is not None:
                if self._url.scheme == "https":
                    # Sent with the CONNECT that opens the tunnel.
                    self._proxy_headers = {"Proxy-Authorization": credentials}
                else:
                    # A plain-HTTP request goes to the proxy itself, which
                    # reads (and drops) this header.
                    self._own_headers["Proxy-Authorization"] = credentials
        self._headers = {**endpoint.headers, **self._own_headers}
        # What every request passes besides its body; only what differs from
        # aiohttp's defaults (our sessions already carry the timeouts).
        self._options: dict[str, Any] = {"headers": self._headers, "allow_redirects": False}
        if self._proxy is not None:
            self._options["proxy"] = self._proxy
        if self._proxy_headers is not None:
            self._options["proxy_headers"] = self._proxy_headers
        if session is not None:
            self._options["timeout"] = self._timeout
        _ASYNC_TRANSPORTS.add(self)

    def use_endpoint(self, endpoint: Endpoint) -> None:
        """Send with ``endpoint`` (a new token, headers, timeouts) from the next request on.

        The URL stays the same, and so do the sessions and their pooled connections.
        """
        if endpoint.url != self.endpoint.url:
            raise ValueError("a transport's URL cannot change: make a new transport")
        self._headers = {**endpoint.headers, **self._own_headers}
        self._timeout = _client_timeout(endpoint)
        # Sessions already open carry the old timeouts: each request now names its own.
        self._options = {**self._options, "headers": self._headers, "timeout": self._timeout}
        self.endpoint = endpoint

    async def _session(self) -> aiohttp.ClientSession:
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        current = self._sessions.get(loop)
        if current is not None and not current.session.closed:
            return current.session
        ssl_context = self._settings.ssl_context() if self._url.scheme == "https" else True
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self._max_connections, limit_per_host=0, ssl=ssl_context
            ),
            timeout=self._timeout,
            # The proxy and CAs come from NetworkSettings, the same as sync calls'.
            trust_env=False,
            # Nothing here sends cookies back (neither do sync calls).
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        guard = _close_with_loop(session)
        self._sessions[loop] = _LoopSession(session, guard)
        await guard.__anext__()  # runs to the yield: registers it with the loop
        return session

    async def aclose(self) -> None:
        """Close this transport's sessions: the running loop's now, others' in their loop.

        A session of a loop that has ended was closed with it; one of a loop
        that runs in another thread is closed there; one of a loop that is
        neither running nor closed is closed when that loop ends.
        """
        current = asyncio.get_running_loop()
        for loop, held in list(self._sessions.items()):
            if loop is current:
                del self._sessions[loop]
                await held.guard.aclose()
            elif loop.is_closed():
                del self._sessions[loop]
            elif loop.is_running():
                del self._sessions[loop]
                closing = asyncio.run_coroutine_threadsafe(_close_guard(held.guard), loop)
                await asyncio.wrap_future(closing)

    def _forget_sessions_in_child(self) -> None:
        _INHERITED.extend(self._sessions.values())
        self._sessions = weakref.WeakKeyDictionary()

    async def _send(self, body: bytes, deadline: Deadline | None) -> aiohttp.ClientResponse:
        """POST with retries; returns a 2xx response whose body is not read yet."""
        endpoint = self.endpoint
        session = await self._session()
        return await self._with_retries(
            lambda: session.post(self._url, data=body, **self._options),
            endpoint,
            endpoint.retry,
            deadline,
        )

    async def _with_retries(
        self,
        send_once: Callable[[], Awaitable[aiohttp.ClientResponse]],
        endpoint: Endpoint,
        policy: RetryPolicy,
        deadline: Deadline | None,
        resend: Resend | None = None,
    ) -> aiohttp.ClientResponse:
        """``send_once()`` until a 2xx answer, or raise as ``policy`` (and ``resend``, for
        a platform request) says; the 2xx response's body is not read yet."""
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                response = await send_once()
            except aiohttp.ClientError as err:
                # Sorted here, raised below: aiohttp's exception can hold the
                # request's headers, token included, as __context__.
                failure, error = self._failure(err, endpoint)
            else:
                status = response.status
                if 200 <= status < 300:
                    return response
                try:
                    raw = await _read_error_body(response)
                finally:
                    response.release()
                failure, error, retry_after = error_for_status(
                    endpoint, status, response.headers, raw
                )
                if resend is not None:
                    failure = resend_failure(resend, failure, status)
            await asyncio.sleep(
                delay_before_retry(policy, attempt, failure, error, retry_after, deadline)
            )
            attempt += 1

    def _failure(
        self, err: aiohttp.ClientError, endpoint: Endpoint | None = None
    ) -> tuple[Failure, KimiError]:
        """What aiohttp's ``err`` says about the request (for the retry policy), and its error."""
        endpoint = endpoint or self.endpoint
        if isinstance(err, aiohttp.ConnectionTimeoutError):
            return Failure.CONNECT_TIMEOUT, connect_timeout_error(endpoint)
        if isinstance(err, aiohttp.ServerTimeoutError):
            return Failure.READ_TIMEOUT, read_timeout_error(endpoint)
        refused = certificate_refused_error(err, endpoint)
        if refused is not None:
            return Failure.CERTIFICATE, refused
        reason = describe_error(err)
        if isinstance(err, (aiohttp.ClientConnectorError, aiohttp.ClientHttpProxyError)):
            # No connection to the service: refused, not found, TLS handshake, proxy.
            return Failure.CONNECT_FAILED, KimiConnectionError(
                f"could not reach {endpoint.url}: {reason}"
            )
        if isinstance(err, aiohttp.ServerDisconnectedError) and not isinstance(err.message, str):
            # aiohttp hands over the head it had begun to parse: the service answered.
            return Failure.ANSWER_BROKEN, answer_broken_error(
                endpoint, "the server disconnected in the answer's head", malformed=False
            )
        if isinstance(err, aiohttp.ClientResponseError):
            # A status line or headers aiohttp refused to parse.
            return Failure.ANSWER_BROKEN, answer_broken_error(endpoint, err.message, malformed=True)
        if isinstance(err, aiohttp.ClientConnectionError):
            # Sent, then the connection ended or was reset before a head was
            # parsed. (aiohttp does not say whether a reset came after the first
            # bytes of a head: such a reset counts as a loss before the answer.)
            return Failure.LOST_BEFORE_ANSWER, lost_connection_error(endpoint, reason)
        return Failure.OTHER, KimiConnectionError(f"request to {endpoint.url} failed: {reason}")

    async def post(self, body: bytes) -> bytes:
        """POST ``body``; return the whole (decoded) response body."""
        deadline = self.endpoint.deadline()
        try:
            async with _within(deadline):
                response = await self._send(body, deadline)
                try:
                    return await self._read_whole(response)
                finally:
                    response.release()
        except TimeoutError:
            assert deadline is not None  # aiohttp's own timeouts were mapped inside
            raise deadline.exceeded() from None

    async def _read_whole(
        self, response: aiohttp.ClientResponse, endpoint: Endpoint | None = None
    ) -> bytes:
        """The whole (decoded) body, at most ``MAX_RESPONSE_BYTES`` of it."""
        length = response.content_length
        if length is not None and length > MAX_RESPONSE_BYTES:
            raise too_large_error()
        parts = []
        size = 0
        async for piece in self._pieces(response, endpoint):
            size += len(piece)
            if size > MAX_RESPONSE_BYTES:
                raise too_large_error()
            parts.append(piece)
        return b"".join(parts)

    # --- platform endpoints (files, batches, balance: see _platform) ------------

    async def platform_request(self, request: PlatformRequest) -> PlatformAnswer:
        """Send ``request``; return its whole (decoded) body, at most ``MAX_RESPONSE_BYTES``.

        As :meth:`SyncTransport.platform_request
        <langchain_kimi._transport.SyncTransport.platform_request>`.
        """
        endpoint = platform_endpoint(self.endpoint, request)
        deadline = endpoint.deadline()
        try:
            async with _within(deadline):
                response = await self._send_platform(request, endpoint, deadline)
                try:
                    body = await self._read_whole(response, endpoint)
                    return PlatformAnswer(body, response.headers.get("content-type", ""))
                finally:
                    response.release()
        except TimeoutError:
            assert deadline is not None
            raise deadline.exceeded() from None

    async def platform_stream(self, request: PlatformRequest) -> AsyncIterator[bytes]:
        """Send ``request``; yield its (decoded) body as it arrives, with no size limit.

        As :meth:`SyncTransport.platform_stream
        <langchain_kimi._transport.SyncTransport.platform_stream>`.
        """
        endpoint = platform_endpoint(self.endpoint, request)
        deadline = endpoint.deadline()
        try:
            async with _within(deadline):
                response = await self._send_platform(request, endpoint, deadline)
        except TimeoutError:
            assert deadline is not None
            raise deadline.exceeded() from None
        ended = False
        try:
            pieces = self._pieces(response, endpoint)
            while True:
                try:
                    async with _within(deadline):
                        piece = await anext(pieces, b"")
                except TimeoutError:
                    assert deadline is not None
                    raise deadline.exceeded() from None
                if not piece:
                    ended = True
                    return
                yield piece
        finally:
            if ended:
                response.release()
            else:
                response.close()

    async def _send_platform(
        self, request: PlatformRequest, endpoint: Endpoint, deadline: Deadline | None
    ) -> aiohttp.ClientResponse:
        """Send with retries (as ``request.resend`` allows); a 2xx response, body unread."""
        session = await self._session()
        options = {**self._options, "headers": {**endpoint.headers, **self._own_headers}}
        return await self._with_retries(
            lambda: self._send_platform_once(session, request, options),
            endpoint,
            resend_policy(endpoint.retry, request.resend),
            deadline,
            request.resend,
        )

    @staticmethod
    async def _send_platform_once(
        session: aiohttp.ClientSession, request: PlatformRequest, options: dict[str, Any]
    ) -> aiohttp.ClientResponse:
        upload = request.upload
        if upload is None:
            return await session.request(
                request.method, request.url, data=request.json_body, **options
            )
        # aiohttp frames the form and streams the file (a path is read in pieces).
        with upload.open() as source:
            form = aiohttp.FormData()
            for name, value in request.fields.items():
                form.add_field(name, value)
            form.add_field(
                "file", source, filename=upload.filename, content_type=upload.content_type
            )
            return await session.request(request.method, request.url, data=form, **options)

    async def stream(
        self, body: bytes, answer_ended: Callable[[], bool] | None = None
    ) -> AsyncIterator[bytes]:
        """POST ``body``; yield the response body's bytes as they arrive.

        ``answer_ended``: as for :meth:`SyncTransport.stream
        <langchain_kimi._transport.SyncTransport.stream>`: once it says the
        answer is whole, the rest of the body gets a short grace to end and is
        not yielded; a body with more, or left open, has its connection closed.
        """
        deadline = self.endpoint.deadline()
        try:
            async with _within(deadline):
                response = await self._send(body, deadline)
        except TimeoutError:
            assert deadline is not None
            raise deadline.exceeded() from None
        ended = False
        try:
            pieces = self._pieces(response)
            if deadline is None:
                async for piece in pieces:
                    yield piece
                    if answer_ended is not None and answer_ended():
                        ended = await _end_body(response, deadline)
                        return
                ended = True
                return
            while True:
                try:
                    # Each wait gets what is left of the deadline; the consumer's
                    # own time between pieces counts too, but is never interrupted.
                    async with asyncio.timeout(deadline.remaining()):
                        piece = await anext(pieces, b"")
                except TimeoutError:
                    raise deadline.exceeded() from None
                if not piece:
                    ended = True
                    return
                yield piece
                if answer_ended is not None and answer_ended():
                    ended = await _end_body(response, deadline)
                    return
        finally:
            if ended:
                response.release()  # back to the pool
            else:
                # The consumer stopped early, or bytes are left: never reuse it.
                response.close()

    async def _pieces(
        self, response: aiohttp.ClientResponse, endpoint: Endpoint | None = None
    ) -> AsyncIterator[bytes]:
        content = response.content
        try:
            while True:
                piece = await content.readany()
                if not piece:
                    return
                yield piece
        except aiohttp.ServerTimeoutError:
            error: KimiError = stalled_error(endpoint or self.endpoint)
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, OSError) as err:
            error = KimiStreamInterruptedError(f"the connection broke: {describe_error(err)}")
        raise error


async def _end_body(response: aiohttp.ClientResponse, deadline: Deadline | None) -> bool:
    """After the answer's last event: True when the body ends within the grace, with no data.

    Nothing is raised: the answer is whole whatever the rest of the body does.
    """
    content = response.content
    if content.at_eof():
        return True
    try:
        grace = (
            AFTER_ANSWER_GRACE
            if deadline is None
            else min(AFTER_ANSWER_GRACE, deadline.remaining())
        )
        async with asyncio.timeout(grace):
            rest = await content.readany()
    except (KimiError, TimeoutError, aiohttp.ClientError, OSError):
        return False
    return not rest


async def _read_error_body(response: aiohttp.ClientResponse) -> bytes:
    """The start of an error answer's body (b"" when it cannot be read)."""
    parts: list[bytes] = []
    size = 0
    try:
        while size < MAX_ERROR_BODY_BYTES:
            piece = await response.content.read(MAX_ERROR_BODY_BYTES - size)
            if not piece:
                break
            parts.append(piece)
            size += len(piece)
    except (aiohttp.ClientError, OSError, TimeoutError):
        pass  # the error status is what matters; the body is a bonus
    return b"".join(parts)


def _client_timeout(endpoint: Endpoint) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=None, sock_connect=endpoint.connect_timeout, sock_read=endpoint.read_timeout
    )


def _within(deadline: Deadline | None) -> contextlib.AbstractAsyncContextManager[Any]:
    """A scope that ends in ``TimeoutError`` at the deadline (none without one)."""
    if deadline is None:
        return contextlib.nullcontext()
    return asyncio.timeout(deadline.remaining())


def _split_proxy(proxy: str) -> tuple[yarl.URL, str | None]:
    """The proxy URL without credentials, and those as a ``Proxy-Authorization`` value."""
    url = yarl.URL(proxy if "://" in proxy else f"http://{proxy}")
    if url.scheme not in ("http", "https"):
        raise ValueError(
            f"the {url.scheme} proxy from the environment cannot carry async calls "
            "(aiohttp speaks to http and https proxies); for a SOCKS proxy, pass "
            "http_async_client= an aiohttp.ClientSession with a SOCKS connector "
            "(the aiohttp-socks package)"
        )
    auth = aiohttp.BasicAuth.from_url(url)  # None without credentials; decodes %40 and co.
    return url.with_user(None), auth.encode() if auth is not None else None


def _forget_async_sessions_in_child() -> None:
    for transport in list(_ASYNC_TRANSPORTS):
        transport._forget_sessions_in_child()


os.register_at_fork(after_in_child=_forget_async_sessions_in_child)
