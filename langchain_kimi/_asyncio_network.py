"""Sockets for the async transport, straight on asyncio's transports and protocols.

httpx sends requests through httpcore, and httpcore reaches the network through
a pluggable *network backend*. Its default goes through anyio, which wraps every
read and write in a cancel scope with a deadline, opens each connection through
a task group racing address families, and answers "is this idle connection
still open?" with a ``select`` call. Each is small; together they were close to
a third of the client's CPU when 64 calls fan out at once (228 -> 161 ms), and
the fan-out's wall time is that CPU, paid before the last request leaves.

This backend does the same work with what asyncio already has: one
``asyncio.Protocol`` per connection buffers what arrives, a read waits on one
future with one timer for its timeout, and whether an idle connection was
closed is known from the protocol's own events. Errors are httpcore's, the same
its default backend raises, so the transport maps them as it always did.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

import httpcore

_T = TypeVar("_T")

# httpcore's socket option type: (level, option, value).
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

# Stop reading from the socket while this much is buffered and unread, so a slow
# consumer of a long stream cannot make the buffer grow without bound.
_HIGH_WATER = 256 * 1024


class _ConnectionProtocol(asyncio.Protocol):
    """Buffers what one connection receives until a reader asks for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.at_eof = False
        self.error: Exception | None = None
        self.reading_paused = False
        self.writing_paused = False
        # At most one reader and one writer wait at a time (httpcore holds the connection).
        self.data_waiter: asyncio.Future[None] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None

    # --- asyncio callbacks ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        if self.size > _HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        _wake(self.data_waiter)

    def eof_received(self) -> bool:
        self.at_eof = True
        _wake(self.data_waiter)
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.at_eof = True
        if exc is not None:
            self.error = exc
        _wake(self.data_waiter)
        _wake(self.drain_waiter)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        _wake(self.drain_waiter)

    # --- used by the stream ---

    def take(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of what is buffered (the caller checked there is some)."""
        chunks = self.chunks
        if len(chunks) == 1 and self.size <= max_bytes:
            data = chunks[0]
            chunks.clear()
        else:
            joined = b"".join(chunks)
            data, rest = joined[:max_bytes], joined[max_bytes:]
            chunks.clear()
            if rest:
                chunks.append(rest)
        self.size -= len(data)
        if self.reading_paused and self.size <= _HIGH_WATER // 4 and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return data

    async def wait_for_data(self, timeout: float | None) -> None:
        """Until something arrives or the connection ends; ``ReadTimeout`` after ``timeout``."""
        self.data_waiter = self.loop.create_future()
        try:
            await _within_or(self.data_waiter, timeout, httpcore.ReadTimeout)
        finally:
            self.data_waiter = None

    async def wait_for_drain(self, timeout: float | None) -> None:
        """Until the send buffer drains or the connection ends; ``WriteTimeout`` on timeout."""
        self.drain_waiter = self.loop.create_future()
        try:
            await _within_or(self.drain_waiter, timeout, httpcore.WriteTimeout)
        finally:
            self.drain_waiter = None


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _expire(waiter: asyncio.Future[None], error: type[Exception]) -> None:
    if not waiter.done():
        waiter.set_exception(error("timed out"))


async def _within_or(
    waiter: asyncio.Future[None], timeout: float | None, error: type[Exception]
) -> None:
    """Await ``waiter``; after ``timeout`` seconds, fail it with ``error`` (one timer, no task)."""
    if timeout is None:
        await waiter
        return
    timer = waiter.get_loop().call_later(timeout, _expire, waiter, error)
    try:
        await waiter
    finally:
        timer.cancel()


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection (plain or TLS) as httpcore reads and writes it."""

    def __init__(
        self, transport: asyncio.Transport, protocol: _ConnectionProtocol, *, tls: bool = False
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._tls = tls

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        while not protocol.size:
            if protocol.error is not None:
                raise httpcore.ReadError(str(protocol.error) or type(protocol.error).__name__)
            if protocol.at_eof:
                return b""
            await protocol.wait_for_data(timeout)
        return protocol.take(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if protocol.error is not None or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        while protocol.writing_paused:
            await protocol.wait_for_drain(timeout)
            if protocol.error is not None or self._transport.is_closing():
                raise httpcore.WriteError("the connection is closed")

    async def aclose(self) -> None:
        if self._tls:
            # close() would start TLS's closing handshake and wait up to 30 s for
            # the server's half of it, outliving an event loop that ends now (the
            # socket then leaks). HTTP's own framing says where the answer ends,
            # so, like httpx's default, the connection is simply dropped.
            self._transport.abort()
        else:
            self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = self._protocol.loop
        upgrade = loop.start_tls(
            self._transport, self._protocol, ssl_context, server_hostname=server_hostname
        )
        try:
            transport = await _within(upgrade, timeout)
        except TimeoutError:
            self._transport.close()
            raise httpcore.ConnectTimeout("TLS handshake timed out") from None
        except (OSError, ssl.SSLError) as err:
            self._transport.close()
            # Chained: a refused certificate is told apart from a network failure.
            raise httpcore.ConnectError(str(err) or type(err).__name__) from err
        if transport is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        assert isinstance(transport, asyncio.Transport)
        self._protocol.transport = transport
        return AsyncioStream(transport, self._protocol, tls=True)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # For an idle connection, "readable" means the server closed it or sent
            # something unasked: both are known from the protocol's events.
            protocol = self._protocol
            return protocol.at_eof or protocol.size > 0
        name = _EXTRA_INFO.get(info)
        return None if name is None else self._transport.get_extra_info(name)


# httpcore's names for connection facts -> asyncio's.
_EXTRA_INFO = {
    "ssl_object": "ssl_object",
    "client_addr": "sockname",
    "server_addr": "peername",
    "socket": "socket",
}


async def _opened(
    connect: Awaitable[tuple[asyncio.BaseTransport, _ConnectionProtocol]], timeout: float | None
) -> AsyncioStream:
    """The stream of a connection being opened; httpcore's errors if that fails."""
    try:
        transport, protocol = await _within(connect, timeout)
    except TimeoutError:
        raise httpcore.ConnectTimeout("timed out") from None
    except OSError as err:
        raise httpcore.ConnectError(str(err) or type(err).__name__) from None
    assert isinstance(transport, asyncio.Transport)
    return AsyncioStream(transport, protocol)


async def _within(awaitable: Awaitable[_T], timeout: float | None) -> _T:
    """``await awaitable``, raising ``TimeoutError`` after ``timeout`` seconds."""
    if timeout is None:
        return await awaitable
    # Unlike wait_for (before 3.12), no extra task per connection.
    async with asyncio.timeout(timeout):
        return await awaitable


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class AsyncioNetworkBackend(httpcore.AsyncNetworkBackend):
    """Opens connections for httpcore with ``loop.create_connection``."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        # Like anyio, race address families for a name that has several (not for
        # an IP address: the race costs tasks even with one address to try).
        connect = loop.create_connection(
            lambda: _ConnectionProtocol(loop),
            host,
            port,
            local_addr=local,
            happy_eyeballs_delay=None if _is_ip_address(host) else 0.25,
        )
        stream = await _opened(connect, timeout)
        if socket_options:
            sock: socket.socket = stream.get_extra_info("socket")
            for option in socket_options:
                sock.setsockopt(*option)
        return stream

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        connect = loop.create_unix_connection(lambda: _ConnectionProtocol(loop), path)
        return await _opened(connect, timeout)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
