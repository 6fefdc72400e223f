"""The async transport's pieces that need no socket: buffering, decoding, headers, proxies."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import pytest

from langchain_kimi import KimiResponseError, KimiStreamInterruptedError
from langchain_kimi._async_connections import LoopConnections, environment_proxy
from langchain_kimi._async_transport import _decoded
from langchain_kimi._asyncio_network import _HIGH_WATER, _ConnectionProtocol
from langchain_kimi._tls import verifying_context
from langchain_kimi._transport import Endpoint, RetryPolicy

# --- the connection protocol's buffer ---------------------------------------------


class _RecordingTransport:
    """Stands in for an asyncio transport: records flow-control calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")


def _protocol() -> tuple[_ConnectionProtocol, _RecordingTransport]:
    protocol = _ConnectionProtocol(asyncio.new_event_loop())
    transport = _RecordingTransport()
    protocol.transport = transport  # type: ignore[assignment]
    return protocol, transport


def test_take_returns_what_arrived_in_order_and_splits_at_max_bytes() -> None:
    protocol, _ = _protocol()
    try:
        for piece in (b"abc", b"defg", b"h"):
            protocol.data_received(piece)
        assert protocol.take(2) == b"ab"
        assert protocol.take(100) == b"cdefgh"
        assert protocol.size == 0 and protocol.chunks == []
        protocol.data_received(b"xyz")
        assert protocol.take(3) == b"xyz"  # one whole chunk: handed over as is
    finally:
        protocol.loop.close()


def test_reading_pauses_above_the_high_water_mark_and_resumes_when_drained() -> None:
    protocol, transport = _protocol()
    try:
        piece = b"x" * 65536
        sent = 0
        while sent <= _HIGH_WATER:
            protocol.data_received(piece)
            sent += len(piece)
        assert transport.calls == ["pause"]
        protocol.data_received(piece)  # what was in flight still arrives, once
        assert transport.calls == ["pause"]
        taken = 0
        while protocol.size:
            taken += len(protocol.take(65536))
        assert taken == sent + len(piece)
        assert transport.calls == ["pause", "resume"]
    finally:
        protocol.loop.close()


def test_eof_and_errors_wake_a_waiting_reader() -> None:
    async def scenario() -> None:
        protocol = _ConnectionProtocol(asyncio.get_running_loop())
        waiter = protocol.data_waiter = asyncio.get_running_loop().create_future()
        protocol.eof_received()
        assert waiter.done() and protocol.at_eof
        drain = protocol.drain_waiter = asyncio.get_running_loop().create_future()
        protocol.connection_lost(ConnectionResetError("reset by peer"))
        assert drain.done() and isinstance(protocol.error, ConnectionResetError)

    asyncio.run(scenario())


# --- Content-Encoding --------------------------------------------------------------


def _response(body: bytes, pieces: int = 3) -> httpcore.Response:
    size = max(1, -(-len(body) // pieces))

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(body), size):
            yield body[start : start + size]

    return httpcore.Response(200, content=stream())


async def _read(response: httpcore.Response, encoding: str | None) -> bytes:
    return b"".join([piece async for piece in _decoded(response, encoding)])


TEXT = "Kimi says: the sky is blue. " * 50


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        (None, TEXT.encode()),
        ("identity", TEXT.encode()),
        ("gzip", gzip.compress(TEXT.encode())),
        ("x-gzip", gzip.compress(TEXT.encode())),
        ("deflate", zlib.compress(TEXT.encode())),
        (" GZIP ", gzip.compress(TEXT.encode())),
    ],
)
def test_bodies_are_decoded_exactly(encoding: str | None, body: bytes) -> None:
    assert asyncio.run(_read(_response(body), encoding)) == TEXT.encode()


def test_an_encoding_not_asked_for_raises() -> None:
    with pytest.raises(KimiResponseError, match="'br'"):
        asyncio.run(_read(_response(b"\x0b\x02\x80"), "br"))


def test_a_corrupt_gzip_body_raises() -> None:
    with pytest.raises(KimiResponseError, match="does not decompress"):
        asyncio.run(_read(_response(b"not gzip at all"), "gzip"))


def test_a_truncated_gzip_body_raises_instead_of_answering_short() -> None:
    whole = gzip.compress(TEXT.encode())
    with pytest.raises(KimiStreamInterruptedError, match="ended before its end"):
        asyncio.run(_read(_response(whole[: len(whole) // 2]), "gzip"))


# --- headers -----------------------------------------------------------------------


def _endpoint(headers: dict[str, Any]) -> Endpoint:
    return Endpoint("http://127.0.0.1:1/kimi/chat/completions", headers, 1.0, 1.0, RetryPolicy())


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({"Authorization": "Bearer sk-secret\r\nX-Injected: 1"}, "Authorization"),
        ({"Authorization": "Bearer sk-sécret-\u2603"}, "Authorization"),
        ({"X-Trace": "a\nb"}, "X-Trace"),
        ({"Bad Name": "value-1234"}, "Bad Name"),
        ({"Bad:Name": "value-1234"}, "Bad:Name"),
        ({"Ünicode": "value-1234"}, "Ünicode"),
        ({"X-Number": 56789}, "X-Number"),
    ],
)
def test_a_header_http_cannot_carry_is_refused_naming_it_not_showing_it(
    headers: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError) as caught:
        _endpoint(headers)
    assert repr(named) in str(caught.value)
    for value in headers.values():
        assert str(value) not in str(caught.value)
    assert "sk-s" not in str(caught.value)


def test_latin1_header_values_are_carried() -> None:
    encoded = _endpoint({"X-Name": "café"}).encoded_headers()
    assert encoded == [(b"X-Name", "café".encode("latin-1"))]


# --- proxies from the environment ---------------------------------------------------

URL = "https://api.acedata.cloud/kimi/chat/completions"


@pytest.fixture(autouse=True)
def _no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_no_proxy_variables_means_no_proxy() -> None:
    assert environment_proxy(URL, verifying_context()) is None


def test_a_proxy_with_credentials_and_without_a_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "user:s%3Acret@proxy.internal:3128")
    proxy = environment_proxy(URL, verifying_context())
    assert proxy is not None
    assert proxy.url.scheme == b"http" and proxy.url.host == b"proxy.internal"
    assert proxy.url.port == 3128
    assert proxy.auth == (b"user", b"s:cret")
    assert proxy.ssl_context is None  # a plain-HTTP proxy (the tunnel carries TLS)


def test_an_https_proxy_gets_the_verifying_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "https://proxy.internal:8443")
    proxy = environment_proxy(URL, verifying_context())
    assert proxy is not None and proxy.ssl_context is verifying_context()


def test_no_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.acedata.cloud")
    assert environment_proxy(URL, verifying_context()) is None


def test_an_unsupported_proxy_scheme_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "ftp://proxy.internal:21")
    with pytest.raises(ValueError, match="unsupported scheme 'ftp'"):
        environment_proxy(URL, verifying_context())


# --- the idle stack of one loop ----------------------------------------------------


class _FakeConnection:
    """What LoopConnections asks of an httpcore HTTP/1.1 connection."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.idle = True
        self.expired = False
        self.closed = False

    def is_idle(self) -> bool:
        return self.idle and not self.closed

    def has_expired(self) -> bool:
        return self.expired

    def is_closed(self) -> bool:
        return self.closed

    async def aclose(self) -> None:
        self.closed = True

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        self.idle = False  # until the exchange ends (the test flips it back)
        return httpcore.Response(200)


def _connections(monkeypatch: pytest.MonkeyPatch) -> tuple[LoopConnections, list[_FakeConnection]]:
    connections = LoopConnections(URL, max_connections=4, connect_timeout=1.0)
    opened: list[_FakeConnection] = []

    async def connect() -> _FakeConnection:
        connection = _FakeConnection(f"c{len(opened)}")
        opened.append(connection)
        connections._open.add(connection)  # type: ignore[arg-type]
        return connection

    monkeypatch.setattr(connections, "_connect", connect)
    return connections, opened


def _request() -> httpcore.Request:
    return httpcore.Request(b"POST", URL, headers=[(b"Host", b"api.acedata.cloud")])


async def _exchange(connections: LoopConnections, *, ends_cleanly: bool = True) -> str:
    async with connections.lease() as lease:
        await lease.handle_async_request(_request())
        connection = lease._connection
        assert isinstance(connection, _FakeConnection)
        connection.idle = ends_cleanly
        return connection.name


def test_one_call_at_a_time_reuses_one_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        connections, opened = _connections(monkeypatch)
        names = [await _exchange(connections) for _ in range(5)]
        assert names == ["c0"] * 5 and len(opened) == 1
        await connections.aclose()
        assert opened[0].closed and connections.is_closed

    asyncio.run(scenario())


def test_concurrent_calls_open_their_own_and_the_latest_idle_is_reused_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        connections, opened = _connections(monkeypatch)
        leases = [connections.lease() for _ in range(3)]
        for lease in leases:
            await lease.__aenter__()
            await lease.handle_async_request(_request())
        assert [c.name for c in opened] == ["c0", "c1", "c2"]
        for connection, lease in zip(opened, leases, strict=True):
            connection.idle = True
            await lease.__aexit__(None, None, None)
        assert await _exchange(connections) == "c2"  # most recently given back
        await connections.aclose()
        assert all(c.closed for c in opened)

    asyncio.run(scenario())


def test_expired_broken_and_surplus_connections_are_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        connections, opened = _connections(monkeypatch)
        await _exchange(connections, ends_cleanly=False)  # e.g. a stream stopped early
        assert opened[0].closed and connections._idle == []
        await _exchange(connections)
        opened[1].expired = True  # the server closed it, or keep-alive ran out
        assert await _exchange(connections) == "c2"
        assert opened[1].closed
        await connections.aclose()

    asyncio.run(scenario())


def test_a_retry_gives_the_first_connection_back_before_taking_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        connections, opened = _connections(monkeypatch)
        async with connections.lease() as lease:
            await lease.handle_async_request(_request())
            opened[0].idle = True  # an error answer, read and closed
            await lease.handle_async_request(_request())  # the retry
            assert lease._connection is opened[0] and len(opened) == 1
            opened[0].idle = True
        assert connections._idle == [opened[0]]
        await connections.aclose()

    asyncio.run(scenario())


def test_slots_bound_the_calls_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        connections, _ = _connections(monkeypatch)
        held = [connections.lease() for _ in range(4)]
        for lease in held:
            await lease.__aenter__()
        fifth = asyncio.ensure_future(connections.lease().__aenter__())
        await asyncio.sleep(0.01)
        assert not fifth.done()  # waits for a slot
        await held[0].__aexit__(None, None, None)
        await asyncio.wait_for(fifth, 1)
        await connections.aclose()

    asyncio.run(scenario())
