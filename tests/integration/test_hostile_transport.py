"""Hostile servers, second round: the transport and the stream reader.

Loopback servers written byte by byte (:mod:`._raw_server`) that misbehave
where HTTP lets them: an interim ``103`` before the answer, a connection
dropped after the whole request was read, a status line and then a broken
head, a ``[DONE]`` with the body left open, an ``event: error`` without an
``error`` key, a tool call whose id changes mid-arguments, a second choice in
a stream, a byte-order mark, a proxy that echoes its credentials. Each runs
through the public API in every mode where it can happen, sync and async.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Callable, Iterable
from functools import reduce
from typing import Any
from urllib.parse import quote

import pytest
import requests
from langchain_core.messages import AIMessageChunk

from langchain_kimi import (
    ChatKimi,
    KimiAPIError,
    KimiConnectionError,
    KimiError,
    KimiResponseError,
)

from ._raw_server import RawConnection, RawRequest, RawServer, one_answer
from .test_hostile_servers import (
    Outcome,
    call,
    chunk_event,
    completion,
    everything_shown,
    make,
    sse,
)

MODES = ["invoke", "stream", "ainvoke", "astream"]
# Every way to get an answer: invoke and its twin, streams, invoke that streams under the hood.
ALL_MODES = ["invoke", "stream", "invoke-streaming", "ainvoke", "astream", "ainvoke-streaming"]
STREAMED = ["stream", "invoke-streaming", "astream", "ainvoke-streaming"]
GIVE_UP = 20.0  # a server's own limit on how long it misbehaves


def model_for(base_url: str, mode: str, **kwargs: Any) -> tuple[ChatKimi, str]:
    """The model and the plain mode (``invoke``...) for one of ALL_MODES."""
    if mode.endswith("-streaming"):
        return make(base_url, streaming=True, **kwargs), mode.removesuffix("-streaming")
    return make(base_url, **kwargs), mode


def answers(base_url: str, mode: str, prompts: Iterable[str], **kwargs: Any) -> list[str]:
    """One model, one prompt after another in ``mode``: the text of each answer."""
    model, plain = model_for(base_url, mode, **kwargs)

    def added_up(chunks: list[AIMessageChunk]) -> str:
        message = reduce(lambda a, b: a + b, chunks)
        assert message.chunk_position == "last"  # a whole answer, closing chunk included
        return str(message.content)

    async def run_async() -> list[str]:
        async with model:
            texts = []
            for prompt in prompts:
                if plain == "ainvoke":
                    texts.append(str((await model.ainvoke(prompt)).content))
                else:
                    texts.append(added_up([chunk async for chunk in model.astream(prompt)]))
            return texts

    if plain.startswith("a"):
        return asyncio.run(run_async())
    with model:
        if plain == "invoke":
            return [str(model.invoke(prompt).content) for prompt in prompts]
        return [added_up(list(model.stream(prompt))) for prompt in prompts]


def stream_events(*events: Any) -> list[bytes]:
    """Each event (and the final [DONE]) as its own HTTP chunk."""
    return [line + b"\n\n" for line in sse(*events).split(b"\n\n") if line]


def answer_to(request: RawRequest) -> tuple[bool, str]:
    """(streaming?, the answer this test's servers give): names the prompt it answers."""
    body = request.json()
    return bool(body.get("stream")), f"answer to {body['messages'][-1]['content']}"


def send_answer(connection: RawConnection, request: RawRequest, *, keep_alive: bool) -> bool:
    streaming, text = answer_to(request)
    if streaming:
        events = stream_events(chunk_event({"content": text}), chunk_event({}, "stop"))
        return connection.send_chunked(events, keep_alive=keep_alive)
    body = json.dumps(completion({"role": "assistant", "content": text})).encode()
    return connection.send_response(200, body, keep_alive=keep_alive)


# --- interim (1xx) responses: no call may read another call's answer --------------------

EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
INTERIM = {
    "103": EARLY_HINTS,
    "100-103-103": b"HTTP/1.1 100 Continue\r\n\r\n" + EARLY_HINTS + EARLY_HINTS,
}


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("interim", list(INTERIM))
def test_interim_responses_never_hand_an_answer_to_the_wrong_prompt(
    interim: str, mode: str
) -> None:
    def early_hints_then_answer(connection: RawConnection) -> None:
        # Kept alive: every prompt of the model comes over this one connection.
        while (request := connection.read_request()) is not None:
            if not connection.send(INTERIM[interim]):
                return
            if not send_answer(connection, request, keep_alive=True):
                return

    prompts = ["first", "second", "third"]
    with RawServer(early_hints_then_answer) as server:
        got = answers(server.base_url, mode, prompts)
    assert got == [f"answer to {prompt}" for prompt in prompts]
    assert len(server.requests) == 3


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_with_your_own_session_an_interim_response_is_refused_and_its_connection_dropped(
    mode: str,
) -> None:
    # The user's requests.Session is used as given: its http.client cannot read
    # past a 103. The call is refused, and the answer behind it never reaches
    # the next call.
    def early_hints_then_answer(connection: RawConnection) -> None:
        while (request := connection.read_request()) is not None:
            if not connection.send(EARLY_HINTS):
                return
            if not send_answer(connection, request, keep_alive=True):
                return

    with RawServer(early_hints_then_answer) as server, requests.Session() as session:
        model = make(server.base_url, http_client=session, max_retries=2)
        for prompt in ("first", "second", "third"):
            outcome = Outcome()
            try:
                if mode == "invoke":
                    outcome.message = model.invoke(prompt)
                else:
                    outcome.chunks = list(model.stream(prompt))
            except KimiError as err:
                outcome.error = err
            err = outcome.raised(KimiResponseError)
            assert "interim response (103)" in str(err)
    assert len(server.requests) == 3  # never retried: the service answered
    assert server.accepted == 3  # each connection, with an answer unread on it, was dropped


@pytest.mark.parametrize("mode", MODES)
def test_an_unasked_switching_protocols_is_refused_and_its_connection_dropped(mode: str) -> None:
    def switch_then_answer(connection: RawConnection) -> None:
        request = connection.read_request()
        if request is not None:
            connection.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")
            send_answer(connection, request, keep_alive=True)
            connection.pause(GIVE_UP)

    with RawServer(switch_then_answer) as server:
        err = call(make(server.base_url, max_retries=2), mode).raised(KimiError)
    assert len(server.requests) == 1  # the service answered: never sent again
    assert "101" in str(err) or "Switching" in str(err), repr(err)


# --- retries: never after the service may have the request, unless asked -----------------


def read_whole_request_then(end: str) -> Callable[[RawConnection], None]:
    """Reads the whole POST, then closes (FIN) or resets (RST) without a byte of answer."""

    def handle(connection: RawConnection) -> None:
        if connection.read_request() is not None and end == "reset":
            connection.reset()

    return handle


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("end", ["close", "reset"])
def test_a_request_the_server_read_whole_is_not_sent_again(
    fast_backoff: None, end: str, mode: str
) -> None:
    with RawServer(read_whole_request_then(end)) as server:
        outcome = call(make(server.base_url, max_retries=2), mode)
    err = outcome.raised(KimiConnectionError)
    assert len(server.requests) == 1  # it had the request: a second one could be a second charge
    assert "retry_on_ambiguous_failure" in str(err)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("end", ["close", "reset"])
def test_retry_on_ambiguous_failure_retries_a_lost_request(
    fast_backoff: None, end: str, mode: str
) -> None:
    lose = read_whole_request_then(end)
    lock = threading.Lock()
    connections: list[RawConnection] = []

    def lose_the_first_then_answer(connection: RawConnection) -> None:
        with lock:
            connections.append(connection)
            first = len(connections) == 1
        if first:
            lose(connection)
            return
        request = connection.read_request()
        if request is not None:
            send_answer(connection, request, keep_alive=False)

    with RawServer(lose_the_first_then_answer) as server:
        model, plain = model_for(
            server.base_url, mode, max_retries=2, retry_on_ambiguous_failure=True
        )
        outcome = call(model, plain)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.message is not None and outcome.message.content == "answer to hi"
    assert len(server.requests) == 2


def status_line_then(fault: str) -> Callable[[RawConnection], None]:
    """A ``200`` status line, then a head that breaks off or is not HTTP."""
    status = b"HTTP/1.1 200 OK\r\n"
    heads = {
        "cut-mid-header": status + b"Content-Type: applic",
        "header-too-long": status + b"X-Padding: " + b"x" * 70_000 + b"\r\n\r\n",
        "too-many-headers": status + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n",
        "status-then-reset": status,
    }

    def handle(connection: RawConnection) -> None:
        if connection.read_request() is None or not connection.send(heads[fault]):
            return
        if fault == "status-then-reset":
            connection.pause(0.3)  # the status line is read before the reset arrives
            connection.reset()

    return handle


BROKEN_HEADS = ["cut-mid-header", "header-too-long", "too-many-headers", "status-then-reset"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", BROKEN_HEADS)
def test_an_answer_that_broke_in_its_head_is_not_sent_again(
    fast_backoff: None, fault: str, mode: str
) -> None:
    with RawServer(status_line_then(fault)) as server:
        outcome = call(make(server.base_url, max_retries=2), mode)
    err = outcome.raised(KimiError)
    assert len(server.requests) == 1  # the service answered
    assert "could not reach" not in str(err)


# A reset can take the status line with it (the kernel drops unread bytes), so
# only the heads that end or are malformed tell an answer for sure.
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", ["cut-mid-header", "header-too-long", "too-many-headers"])
def test_an_answer_that_broke_in_its_head_is_not_ambiguous(
    fast_backoff: None, fault: str, mode: str
) -> None:
    with RawServer(status_line_then(fault)) as server:
        model = make(server.base_url, max_retries=2, retry_on_ambiguous_failure=True)
        err = call(model, mode).raised(KimiError)
    assert len(server.requests) == 1  # not a loss before the answer: never retried
    assert not isinstance(err, KimiConnectionError), repr(err)


# --- [DONE] ends the answer, whatever the body does next -------------------------------


def done_then(after: str) -> Callable[[RawConnection], None]:
    """An answer that ends with [DONE]; then the body stays open, or more bytes come."""

    def handle(connection: RawConnection) -> None:
        request = connection.read_request()
        if request is None:
            return
        _, text = answer_to(request)
        events = stream_events(chunk_event({"content": text}), chunk_event({}, "stop"))
        if after == "more-bytes":
            events.append(b'data: {"choices":[{"index":0,"delta":{"content":"junk"}}]}\n\n')
        connection.send_chunked(events, end=False, keep_alive=True)
        connection.pause(GIVE_UP)  # silent, connection open, until the test ends

    return handle


@pytest.mark.parametrize("mode", STREAMED)
@pytest.mark.parametrize("after", ["left-open", "more-bytes"])
def test_done_ends_the_answer_and_its_connection_is_not_reused(after: str, mode: str) -> None:
    with RawServer(done_then(after)) as server:
        # A read timeout far longer than the grace: only [DONE] can end these calls.
        got = answers(server.base_url, mode, ["first", "second"], timeout=GIVE_UP)
    assert got == ["answer to first", "answer to second"]
    assert server.accepted == 2  # the first connection, with unread bytes, was dropped


@pytest.mark.parametrize("mode", STREAMED)
def test_a_body_that_ends_right_after_done_keeps_its_connection(mode: str) -> None:
    def done_and_end_together(connection: RawConnection) -> None:
        while (request := connection.read_request()) is not None:
            _, text = answer_to(request)
            body = sse(chunk_event({"content": text}), chunk_event({}, "stop"))
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            head += b"Transfer-Encoding: chunked\r\n\r\n"
            # The last event and the chunked terminator in one write.
            if not connection.send(head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)):
                return

    with RawServer(done_and_end_together) as server:
        got = answers(server.base_url, mode, ["first", "second", "third"])
    assert got == ["answer to first", "answer to second", "answer to third"]
    assert server.accepted == 1


# --- what the stream says, read as it says it ------------------------------------------

TEXT_SO_FAR = "The answer so far"


def stream_server(pieces: Iterable[bytes]) -> RawServer:
    chunks = list(pieces)
    return RawServer(one_answer(lambda connection, _: connection.send_chunked(chunks)))


ERROR_EVENTS = {
    "message-only": b'event: error\ndata: {"message": "the model is overloaded"}\n\n',
    "plain-text": b"event: error\ndata: the model is overloaded\n\n",
    "no-data": b"event: error\n\n",
    "error-key": b'event: error\ndata: {"error": {"message": "the model is overloaded"}}\n\n',
}


@pytest.mark.parametrize("mode", STREAMED)
@pytest.mark.parametrize("case", list(ERROR_EVENTS))
def test_any_error_event_ends_the_call_with_an_api_error(case: str, mode: str) -> None:
    pieces = [
        *stream_events(chunk_event({"content": TEXT_SO_FAR}))[:-1],  # no [DONE] yet
        ERROR_EVENTS[case],
        b"data: [DONE]\n\n",
    ]
    with stream_server(pieces) as server:
        model, plain = model_for(server.base_url, mode)
        outcome = call(model, plain)
    err = outcome.raised(KimiAPIError)
    assert err.status_code == 200
    if case != "no-data":
        assert "the model is overloaded" in str(err)
    # What arrived before the error is carried, not returned as the whole answer.
    assert err.partial_content == TEXT_SO_FAR


CUT_ARGS = '{"path": "/home/user/projects/imp'


def call_chunk(index: int, call_id: str | None, name: str | None, args: str) -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": args}
    if name is not None:
        function["name"] = name
    raw: dict[str, Any] = {"index": index, "type": "function", "function": function}
    if call_id is not None:
        raw["id"] = call_id
    return chunk_event({"tool_calls": [raw]})


@pytest.mark.parametrize("mode", STREAMED)
def test_a_tool_call_whose_id_changes_mid_arguments_is_invalid(mode: str) -> None:
    events = [
        call_chunk(0, "read_file:0", "read_file", CUT_ARGS),
        # Same index, another id: a new call, and the first one's arguments end cut.
        call_chunk(0, "list_dir:1", "list_dir", '{"path": '),
        call_chunk(0, None, None, '"/home"}'),
        chunk_event({}, "tool_calls"),
    ]
    with stream_server(stream_events(*events)) as server:
        model, plain = model_for(server.base_url, mode)
        outcome = call(model, plain)
    assert outcome.error is None, repr(outcome.error)
    message = outcome.message
    assert message is not None
    assert message.tool_calls == [
        {"name": "list_dir", "args": {"path": "/home"}, "id": "list_dir:1", "type": "tool_call"}
    ]
    (cut,) = message.invalid_tool_calls
    assert (cut["name"], cut["id"]) == ("read_file", "read_file:0")
    assert cut["args"] is not None and cut["args"].startswith(CUT_ARGS)


@pytest.mark.parametrize("mode", STREAMED)
def test_an_id_change_after_whole_arguments_leaves_both_calls_valid(mode: str) -> None:
    events = [
        call_chunk(0, "a:0", "read_file", '{"path": "/etc/hosts"}'),
        call_chunk(0, "b:1", "list_dir", '{"path": "/"}'),
        chunk_event({}, "tool_calls"),
    ]
    with stream_server(stream_events(*events)) as server:
        model, plain = model_for(server.base_url, mode)
        outcome = call(model, plain)
    assert outcome.message is not None
    assert [c["id"] for c in outcome.message.tool_calls] == ["a:0", "b:1"]
    assert outcome.message.invalid_tool_calls == []


@pytest.mark.parametrize("mode", STREAMED)
def test_a_second_choice_in_a_stream_is_never_merged_into_the_first(mode: str) -> None:
    second = chunk_event({"content": " and another choice's text"})
    second["choices"][0]["index"] = 1
    events = [chunk_event({"content": "one choice"}), second, chunk_event({}, "stop")]
    with stream_server(stream_events(*events)) as server:
        model, plain = model_for(server.base_url, mode)
        outcome = call(model, plain)
    err = outcome.raised(KimiResponseError)
    assert "index 1" in str(err)


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("mode", STREAMED)
@pytest.mark.parametrize("split", [False, True], ids=["whole", "byte-by-byte"])
def test_a_byte_order_mark_before_the_first_event_loses_nothing(split: bool, mode: str) -> None:
    body = BOM + sse(chunk_event({"content": "Hello"}), chunk_event({"content": ", world"}))
    pieces: list[bytes] = [bytes([b]) for b in body[:12]] + [body[12:]] if split else [body]
    with stream_server(pieces) as server:
        model, plain = model_for(server.base_url, mode)
        outcome = call(model, plain)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.message is not None and outcome.message.content == "Hello, world"


# --- a proxy's page that echoes its credentials ---------------------------------------

PROXY_USER = "agent-7"
PROXY_PASSWORD = "?pr~0xy-s3cret/pass-word"  # its base64 has "+", "/" and "="


def proxy_echo(encoding: str) -> Callable[[RawConnection, RawRequest], None]:
    def respond(connection: RawConnection, request: RawRequest) -> None:
        sent = request.headers.get("Proxy-Authorization", "")
        if encoding == "json":
            body = json.dumps({"error": {"message": f"denied, you sent {sent}"}}).encode()
            connection.send_response(407, body, proxy_authenticate='Basic realm="corp"')
        elif encoding == "html-decoded":
            user_pass = base64.b64decode(sent.split(" ", 1)[1]).decode()
            page = f"<html><p>credentials {user_pass} refused</p><p>{sent}</p></html>"
            connection.send_response(407, page.encode(), "text/html")
        else:  # the proxy URL as it was configured, percent-encoded
            url = f"http://{PROXY_USER}:{quote(PROXY_PASSWORD, safe='')}@proxy"
            page = f"<html>refused {url} ({quote(sent)})</html>"
            connection.send_response(407, page.encode(), "text/html")

    return respond


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("encoding", ["json", "html-decoded", "url-encoded"])
def test_a_proxy_page_echoing_its_credentials_is_redacted(
    monkeypatch: pytest.MonkeyPatch, encoding: str, mode: str
) -> None:
    with RawServer(one_answer(proxy_echo(encoding))) as proxy:
        proxy_url = f"http://{PROXY_USER}:{quote(PROXY_PASSWORD, safe='')}@127.0.0.1:{proxy.port}"
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        err = call(make("http://kimi.invalid/kimi"), mode).raised(KimiAPIError)
    assert err.status_code == 407
    # It went to the proxy, and came back...
    sent = proxy.requests[0].headers["Proxy-Authorization"]
    assert base64.b64decode(sent.split(" ", 1)[1]).decode() == f"{PROXY_USER}:{PROXY_PASSWORD}"
    # ...but no form of it is shown.
    shown = everything_shown(err) + repr(err.body)
    basic = sent.split(" ", 1)[1]
    assert {"+", "/", "="} <= set(basic)  # the encodings below really differ
    for form in (PROXY_PASSWORD, quote(PROXY_PASSWORD, safe=""), basic, quote(basic)):
        assert form not in shown, form
    assert "[REDACTED]" in shown
