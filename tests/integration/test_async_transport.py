"""Async calls on aiohttp, tried the way applications run them.

uvloop (what uvicorn uses when it is installed), ``asyncio.run`` over and over
on one model, a loop per thread, a proxy from the environment, a non-ASCII host,
the user's own clients, and the connection limit. Leaks are counted two ways:
ResourceWarnings (unclosed sessions, transports, sockets) and the process's
open file descriptors.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from langchain_core.messages import AIMessageChunk

from langchain_kimi import ChatKimi
from langchain_kimi.testing import FakeKimiServer, Reply

from ._raw_server import RawConnection, RawServer, response_head
from ._relay_proxy import RelayProxy
from .conftest import TOKEN

uvloop = pytest.importorskip("uvloop", reason="uvloop does not run on this platform")


def make(base_url: str, **kwargs: Any) -> ChatKimi:
    settings: dict[str, Any] = {
        "base_url": base_url,
        "api_key": TOKEN,
        "max_retries": 0,
        "timeout": 20.0,
        "thinking": False,
    }
    settings.update(kwargs)
    return ChatKimi(**settings)


def client_sockets_to(port: int) -> int:
    """This process's open TCP sockets whose far end is ``port`` (the client's ends).

    The simulator runs in this process too, so counting every descriptor would
    also count the server's ends, which close a moment after the client's.
    """
    inodes = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                    if remote_port == port and fields[9] in inodes:
                        count += 1
        except FileNotFoundError:
            continue
    return count


@pytest.fixture
def leak_check() -> Iterator[list[str]]:
    """Fails the test on any ResourceWarning or unraisable error (a __del__ that failed)."""
    gc.collect()
    problems: list[str] = []
    previous_hook = sys.unraisablehook

    def record(unraisable: Any) -> None:
        problems.append(f"unraisable: {unraisable.exc_value!r} in {unraisable.object!r}")

    sys.unraisablehook = record
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            yield problems
            gc.collect()
        problems.extend(str(w.message) for w in caught if issubclass(w.category, ResourceWarning))
    finally:
        sys.unraisablehook = previous_hook
    assert not problems, problems


@pytest.fixture
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


async def fan_out(model: ChatKimi, count: int, label: str = "q") -> None:
    questions = [f"{label} {i}" for i in range(count)]
    answers = await asyncio.gather(*(model.ainvoke(q) for q in questions))
    assert [a.content for a in answers] == [f"Echo: {q}" for q in questions]


def barrier_responder(parties: int) -> Any:
    """A responder that answers only once ``parties`` requests are in the server together.

    A client that sent them one wave at a time would leave the barrier waiting:
    it breaks after its timeout and every waiting request gets a 500.
    """
    barrier = threading.Barrier(parties, timeout=15)

    def respond(body: dict[str, Any]) -> Reply | None:
        barrier.wait()
        return None  # the echo

    return respond


# --- uvloop ---------------------------------------------------------------------


def test_ainvoke_astream_and_a_fan_out_on_uvloop(server: FakeKimiServer, leak_check: Any) -> None:
    model = make(server.base_url)

    async def main() -> None:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        assert (await model.ainvoke("one")).content == "Echo: one"
        chunks = [chunk async for chunk in model.astream("two")]
        assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
        assert "".join(str(c.content) for c in chunks) == "Echo: two"
        server.set_responder(barrier_responder(64))
        await fan_out(model, 64)

    uvloop.run(main())
    # uvloop.run ended the loop with shutdown_asyncgens: the session closed with it.
    assert server.request_count == 66


# --- loops that come and go --------------------------------------------------------


def test_asyncio_run_twenty_times_on_one_model_leaks_nothing(
    server: FakeKimiServer, leak_check: Any
) -> None:
    model = make(server.base_url)
    asyncio.run(fan_out(model, 4, "warm-up"))
    gc.collect()
    assert client_sockets_to(server.port) == 0  # closed when asyncio.run ended the loop
    for run in range(20):
        asyncio.run(fan_out(model, 4, f"run {run}"))
    gc.collect()
    assert client_sockets_to(server.port) == 0
    assert server.request_count == 84
    # Each loop opened its own connections: nothing was carried from a dead loop.
    assert server.connections >= 21


def test_two_threads_each_with_its_own_loop(server: FakeKimiServer, leak_check: Any) -> None:
    model = make(server.base_url)
    failures: list[BaseException] = []

    def worker(label: str) -> None:
        try:
            for round_ in range(5):
                asyncio.run(fan_out(model, 8, f"{label} {round_}"))
        except BaseException as err:
            failures.append(err)

    threads = [threading.Thread(target=worker, args=(f"thread {n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    assert server.request_count == 80
    gc.collect()
    assert client_sockets_to(server.port) == 0


def test_a_long_lived_loop_in_another_thread_is_closed_there_by_aclose(
    server: FakeKimiServer, leak_check: Any
) -> None:
    model = make(server.base_url)
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    try:
        answer = asyncio.run_coroutine_threadsafe(model.ainvoke("there"), loop).result(20)
        assert answer.content == "Echo: there"
        transport = model._async_transport
        assert transport is not None
        (session,) = [held.session for held in transport._sessions.values()]
        # aclose from this thread's loop closes the other loop's session in that loop.
        asyncio.run(model.aclose())
        assert session.closed
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(timeout=10)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


# --- connections ------------------------------------------------------------------


def test_a_kept_alive_connection_the_server_dropped_is_not_reused() -> None:
    body = b'{"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}'
    dropped = threading.Event()

    def answer_then_drop(connection: RawConnection) -> None:
        if connection.read_request() is None:
            return
        # Keep-alive by HTTP's rules (no "Connection: close")...
        connection.send(
            response_head(content_type="application/json", content_length=len(body)) + body
        )
        # ...but dropped anyway, as an idle timeout does.
        dropped.set()

    with RawServer(answer_then_drop) as server:
        # No retries: a stale connection would fail the second call outright.
        model = make(server.base_url)

        async def main() -> None:
            assert (await model.ainvoke("first")).content == "ok"
            assert dropped.wait(10)
            await asyncio.sleep(0.05)  # let the loop see the close
            assert (await model.ainvoke("second")).content == "ok"

        asyncio.run(main())
        assert server.accepted == 2


@pytest.mark.parametrize("name", ["Accept-Encoding", "accept-encoding", "Host", "User-Agent"])
@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_a_header_the_user_sets_replaces_ours_instead_of_doubling_it(name: str, mode: str) -> None:
    body = b'{"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}'

    def answer(connection: RawConnection) -> None:
        while connection.read_request() is not None:
            connection.send(
                response_head(content_type="application/json", content_length=len(body)) + body
            )

    with RawServer(answer) as server:
        value = "identity" if "encoding" in name.lower() else "custom-value.example"
        if name == "Host":
            value = f"127.0.0.1:{server.port}"
        model = make(server.base_url, default_headers={name: value})
        if mode == "invoke":
            assert model.invoke("hi").content == "ok"
        else:
            assert asyncio.run(model.ainvoke("hi")).content == "ok"
        lines = [line.decode("latin-1").lower() for line in server.heads[0].split(b"\r\n")]
    assert [line for line in lines if line.startswith(name.lower() + ":")] == [
        f"{name.lower()}: {value.lower()}"
    ]


def test_max_connections_bounds_the_calls_in_flight(server: FakeKimiServer) -> None:
    in_flight = 0
    most = 0
    lock = threading.Lock()
    barrier = threading.Barrier(4, timeout=15)

    def respond(body: dict[str, Any]) -> Reply | None:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        try:
            barrier.wait()  # four at a time reach the server together...
        finally:
            with lock:
                in_flight -= 1
        return None

    server.set_responder(respond)
    model = make(server.base_url, max_connections=4)
    asyncio.run(fan_out(model, 16))
    assert most == 4  # ...and never more than four


def test_the_default_limit_does_not_serialize_a_big_abatch(server: FakeKimiServer) -> None:
    # 200 calls must all be in the server at once (the barrier): no waves.
    server.set_responder(barrier_responder(200))
    model = make(server.base_url)

    async def main() -> list[Any]:
        return await model.abatch([f"n{i}" for i in range(200)])

    answers = asyncio.run(main())
    assert [a.content for a in answers] == [f"Echo: n{i}" for i in range(200)]


def test_max_connections_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        make("http://127.0.0.1:1/kimi", max_connections=0)


# --- proxies and hosts --------------------------------------------------------------


def test_a_proxied_fan_out_runs_at_once(
    server: FakeKimiServer, monkeypatch: pytest.MonkeyPatch, no_proxy_variables: None
) -> None:
    relay = RelayProxy(server.port)
    try:
        monkeypatch.setenv("HTTP_PROXY", relay.url)
        server.set_responder(barrier_responder(64))
        model = make("http://kimi.invalid/kimi")
        asyncio.run(fan_out(model, 64))
        assert len(relay.heads) == 64
        assert {head.target for head in relay.heads} == {
            "http://kimi.invalid/kimi/chat/completions"
        }
    finally:
        relay.close()


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_a_non_ascii_host_is_sent_in_its_ascii_form(
    server: FakeKimiServer, monkeypatch: pytest.MonkeyPatch, no_proxy_variables: None, mode: str
) -> None:
    relay = RelayProxy(server.port)
    try:
        monkeypatch.setenv("HTTP_PROXY", relay.url)
        server.queue(Reply(content="bonjour"))
        model = make("http://kimi-\u00e9t\u00e9.invalid/kimi")
        answer = model.invoke("hi") if mode == "invoke" else asyncio.run(model.ainvoke("hi"))
        assert answer.content == "bonjour"
        ascii_host = "kimi-\u00e9t\u00e9".encode("idna").decode("ascii")  # xn--kimi-t-fvab
        assert [head.target for head in relay.heads] == [
            f"http://{ascii_host}.invalid/kimi/chat/completions"
        ]
    finally:
        relay.close()


# --- the user's own clients --------------------------------------------------------


def test_http_client_is_used_as_given_and_not_closed(server: FakeKimiServer) -> None:
    session = requests.Session()
    session.headers["X-From-Session"] = "yes"
    closed: list[bool] = []
    original_close = session.close
    session.close = lambda: closed.append(True) or original_close()  # type: ignore[method-assign]
    try:
        with make(server.base_url, http_client=session) as model:
            assert model.invoke("hi").content == "Echo: hi"
            assert "http_client" not in (server.requests[0].body or {})
        assert closed == []  # the model's close() left it alone
        assert server.requests[0].headers["x-from-session"] == "yes"
    finally:
        original_close()


def test_http_async_client_is_used_as_given_and_not_closed(server: FakeKimiServer) -> None:
    import aiohttp

    async def main() -> None:
        async with aiohttp.ClientSession(headers={"X-From-Session": "yes"}) as session:
            model = make(server.base_url, http_async_client=session)
            assert (await model.ainvoke("hi")).content == "Echo: hi"
            chunks = [c async for c in model.astream("there")]
            assert "".join(str(c.content) for c in chunks) == "Echo: there"
            await model.aclose()
            assert not session.closed

    asyncio.run(main())
    assert server.requests[0].headers["x-from-session"] == "yes"
    assert "http_async_client" not in server.requests[0].body


def test_the_wrong_client_type_is_refused() -> None:
    with pytest.raises(ValueError, match=r"http_client must be a requests\.Session"):
        make("http://127.0.0.1:1/kimi", http_client=object())
    with pytest.raises(ValueError, match=r"http_async_client must be an aiohttp\.ClientSession"):
        make("http://127.0.0.1:1/kimi", http_async_client=requests.Session())


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_extra_body_is_merged_into_the_body(server: FakeKimiServer, mode: str) -> None:
    model = make(server.base_url, extra_body={"gateway_tag": "a", "user": "u1"})
    if mode == "invoke":
        model.invoke("hi", extra_body={"gateway_tag": "b"})
    else:
        asyncio.run(model.ainvoke("hi", extra_body={"gateway_tag": "b"}))
    body = server.requests[0].body
    assert body["gateway_tag"] == "b"  # the call's own wins
    assert body["user"] == "u1"
    assert "extra_body" not in body


# --- what does the HTTP ---------------------------------------------------------------


def test_async_calls_load_aiohttp_and_no_hand_written_http(server: FakeKimiServer) -> None:
    probe = (
        "import asyncio, json, sys\n"
        "from langchain_kimi import ChatKimi\n"
        f"model = ChatKimi(base_url={server.base_url!r}, api_key={TOKEN!r}, max_retries=0)\n"
        "answer = asyncio.run(model.ainvoke('probe')).content\n"
        "print(json.dumps([answer, sorted(m for m in ('aiohttp', 'httpcore', 'httpx', 'h11')"
        " if m in sys.modules)]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    answer, loaded = json.loads(out.stdout)
    assert answer == "Echo: probe"
    assert loaded == ["aiohttp"]


def test_the_package_frames_no_http_and_decodes_no_compression_itself() -> None:
    import langchain_kimi

    package = Path(langchain_kimi.__file__).parent
    by_hand = re.compile(
        r"import httpcore|from httpcore|import h11|asyncio\.open_connection|"
        r"create_connection\(|zlib\.decompressobj|\.wrap_socket\("
    )
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "testing" not in path.parts and by_hand.search(path.read_text())
    ]
    assert offenders == []
