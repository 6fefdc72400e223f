"""The asyncio network backend against real loopback sockets, as httpcore drives it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpcore
import pytest

from langchain_kimi._asyncio_network import _HIGH_WATER, AsyncioNetworkBackend, AsyncioStream

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _connected(handler: Handler) -> AsyncIterator[AsyncioStream]:
    """A client stream connected to ``handler``; both ends closed afterwards."""
    writers: list[asyncio.StreamWriter] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await handler(reader, writer)

    server, port = await _serve(tracked)
    stream = await AsyncioNetworkBackend().connect_tcp("127.0.0.1", port, timeout=5)
    assert isinstance(stream, AsyncioStream)
    try:
        yield stream
    finally:
        await stream.aclose()
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)  # let both transports finish closing in this loop


async def test_bytes_arrive_exactly_and_eof_reads_empty() -> None:
    payload = bytes(range(256)) * 1000

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readexactly(5)
        writer.write(request + payload)
        await writer.drain()
        writer.close()

    async for stream in _connected(handler):
        await stream.write(b"hello", timeout=5)
        received = b""
        while True:
            piece = await stream.read(65536, timeout=5)
            if not piece:
                break
            assert len(piece) <= 65536
            received += piece
        assert received == b"hello" + payload
        assert await stream.read(65536, timeout=5) == b""  # and stays at EOF
        # An idle connection the server closed is "readable": httpcore drops it.
        assert stream.get_extra_info("is_readable") is True


async def test_an_open_idle_connection_is_not_readable_and_names_its_ends() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # waits for the client to go
        writer.close()

    async for stream in _connected(handler):
        assert stream.get_extra_info("is_readable") is False
        client = stream.get_extra_info("client_addr")
        server = stream.get_extra_info("server_addr")
        assert client[0] == "127.0.0.1" and server[0] == "127.0.0.1"
        assert stream.get_extra_info("socket") is not None
        assert stream.get_extra_info("ssl_object") is None
        assert stream.get_extra_info("no such thing") is None


async def test_a_silent_server_makes_read_time_out() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    async for stream in _connected(handler):
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(1024, timeout=0.1)
        assert 0.09 <= loop.time() - started < 2


async def test_a_reset_connection_raises_read_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        import socket
        import struct

        # Linger 0: close() sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async for stream in _connected(handler):
        with pytest.raises((httpcore.ReadError, httpcore.WriteError)):
            for _ in range(50):
                await stream.write(b"x" * 1024, timeout=1)
                if not await stream.read(1024, timeout=1):
                    raise httpcore.ReadError("eof")  # some kernels report FIN first


async def test_a_slow_reader_holds_the_server_back_instead_of_buffering_everything() -> None:
    total = 8 * 1024 * 1024
    written = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"z" * total)
        await writer.drain()
        written.set()
        writer.close()

    async for stream in _connected(handler):
        await asyncio.sleep(0.3)  # the server writes as fast as we let it
        buffered = stream._protocol.size
        # Reading stopped near the mark; the kernel's buffers hold the rest.
        assert buffered <= _HIGH_WATER + 256 * 1024
        assert stream._protocol.reading_paused
        assert not written.is_set()
        received = 0
        while piece := await stream.read(65536, timeout=5):
            received += len(piece)
        assert received == total


async def test_connect_failures_are_httpcore_errors() -> None:
    server, port = await _serve(lambda r, w: asyncio.sleep(0))
    server.close()
    await server.wait_closed()
    backend = AsyncioNetworkBackend()
    with pytest.raises(httpcore.ConnectError, match=r"refused|Connect call failed"):
        await backend.connect_tcp("127.0.0.1", port, timeout=5)
    with pytest.raises(httpcore.ConnectTimeout):
        await backend.connect_tcp("127.0.0.1", port, timeout=0)


async def test_writing_to_a_closed_connection_raises_write_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async for stream in _connected(handler):
        await stream.aclose()
        with pytest.raises(httpcore.WriteError):
            await stream.write(b"late", timeout=1)


async def test_a_kept_alive_connection_the_server_closed_is_not_reused() -> None:
    """The server answers, then closes the idle connection: the next call opens a new one."""
    from langchain_kimi._async_transport import AsyncTransport
    from langchain_kimi._transport import Endpoint, RetryPolicy

    accepted = 0
    body = b'{"ok":true}'

    async def answer_once_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal accepted
        accepted += 1
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        # Keep-alive by HTTP's rules (no "Connection: close")...
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()  # ...but the server drops it anyway, as idle timeouts do.

    server, port = await _serve(answer_once_then_close)
    endpoint = Endpoint(
        f"http://127.0.0.1:{port}/kimi/chat/completions",
        {"Authorization": "Bearer x"},
        5.0,
        5.0,
        RetryPolicy(max_retries=0),  # a stale connection would fail the call outright
    )
    transport = AsyncTransport(endpoint)
    try:
        assert await transport.post(b"{}") == body
        await asyncio.sleep(0.2)  # the server has closed its end by now
        assert await transport.post(b"{}") == body
        assert accepted == 2
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("name", ["Accept-Encoding", "accept-encoding", "Host"])
async def test_a_header_the_user_sets_replaces_ours_instead_of_doubling_it(name: str) -> None:
    from langchain_kimi._async_transport import AsyncTransport
    from langchain_kimi._transport import Endpoint, RetryPolicy, SyncTransport

    heads: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(head)
        await reader.readexactly(2)  # the body, b"{}"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server, port = await _serve(record)
    value = "identity" if "encoding" in name.lower() else f"127.0.0.1:{port}"
    endpoint = Endpoint(
        f"http://127.0.0.1:{port}/kimi/chat/completions",
        {"Authorization": "Bearer x", name: value},
        5.0,
        5.0,
        RetryPolicy(max_retries=0),
    )
    transport = AsyncTransport(endpoint)
    try:
        assert await transport.post(b"{}") == b"{}"
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)
    lines = [line.decode().lower() for line in heads[0].split(b"\r\n")]
    assert [line for line in lines if line.startswith(name.lower() + ":")] == [
        f"{name.lower()}: {value}"
    ]
    # The sync transport's prepared request merges case-insensitively too.
    sync_headers = SyncTransport(endpoint)._template.headers
    assert sync_headers[name] == value
    assert sum(1 for key in sync_headers if key.lower() == name.lower()) == 1
