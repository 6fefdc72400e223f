"""Hostile servers and careless input: every failure a KimiError, no secret shown, no wrong answer.

Each test runs the public API (``invoke``/``ainvoke``/``stream``/``astream``)
against a loopback server that misbehaves in exactly one way: the simulator
where it can say it (``Reply(body=...)``, ``Reply.raw(...)``), and the
byte-level :class:`~._raw_server.RawServer` where it cannot (answers built from
the request's own headers, a line sent in 4 KiB HTTP chunks, interim
responses, a connection dropped at a chosen moment). Construction-time refusals check
that no request was sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from functools import reduce
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, dumps, loads
from langchain_core.messages import AIMessage, AIMessageChunk
from pydantic import ValidationError

from langchain_kimi import (
    ChatKimi,
    KimiAPIError,
    KimiBadRequestError,
    KimiConnectionError,
    KimiError,
    KimiResponseError,
    KimiStreamInterruptedError,
    KimiTimeoutError,
)
from langchain_kimi.testing import FakeKimiServer, Reply, ToolCall

from ._raw_server import RawConnection, RawRequest, RawServer, one_answer
from .conftest import TOKEN

MODES = ["invoke", "stream", "ainvoke", "astream"]
STREAM_MODES = ["stream", "astream"]
INVOKE_MODES = ["invoke", "ainvoke"]
MIB = 1024 * 1024


def make(base_url: str, **kwargs: Any) -> ChatKimi:
    settings: dict[str, Any] = {
        "base_url": base_url,
        "api_key": TOKEN,
        "max_retries": 0,
        "timeout": 10.0,
        "thinking": False,
    }
    settings.update(kwargs)
    return ChatKimi(**settings)


class ErrorRecorder(BaseCallbackHandler):
    """Keeps what ``on_llm_error`` callbacks receive."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.errors.append(error)


class Outcome:
    def __init__(self) -> None:
        self.chunks: list[AIMessageChunk] = []
        self.message: AIMessage | AIMessageChunk | None = None
        self.error: BaseException | None = None
        self.callback_errors: list[BaseException] = []

    def raised(self, error_type: type[BaseException]) -> Any:
        assert self.error is not None, f"expected {error_type.__name__}, got {self.message!r}"
        assert isinstance(self.error, error_type), repr(self.error)
        assert self.message is None
        assert not any(chunk.chunk_position == "last" for chunk in self.chunks)
        return self.error


def call(model: ChatKimi, mode: str, text: str = "hi", **kwargs: Any) -> Outcome:
    """One call in ``mode``: the chunks, the (added-up) message or the error. Closes the model."""
    outcome = Outcome()
    recorder = ErrorRecorder()
    config = {"callbacks": [recorder]}

    async def acall() -> None:
        async with model:
            if mode == "ainvoke":
                outcome.message = await model.ainvoke(text, config=config, **kwargs)
                return
            async for chunk in model.astream(text, config=config, **kwargs):
                outcome.chunks.append(chunk)
            outcome.message = reduce(lambda a, b: a + b, outcome.chunks)

    try:
        if mode == "invoke":
            outcome.message = model.invoke(text, config=config, **kwargs)
        elif mode == "stream":
            for chunk in model.stream(text, config=config, **kwargs):
                outcome.chunks.append(chunk)
            outcome.message = reduce(lambda a, b: a + b, outcome.chunks)
        else:
            asyncio.run(acall())
    except Exception as err:
        outcome.error = err
    finally:
        model.close()
    outcome.callback_errors = recorder.errors
    return outcome


def everything_shown(err: BaseException) -> str:
    """All an error shows: str, repr, args, attributes, traceback, and its causes'."""
    parts = [str(err), repr(err), repr(err.args), repr(vars(err))]
    parts.extend(traceback.format_exception(type(err), err, err.__traceback__))
    cause = err.__cause__ or err.__context__
    if cause is not None:
        parts.append(everything_shown(cause))
    return "\n".join(parts)


def sse(*events: Any) -> bytes:
    """An event stream of ``events`` (dicts are JSON-encoded), ended by [DONE]."""
    lines = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    return "".join([*lines, "data: [DONE]\n\n"]).encode()


def chunk_event(delta: Any, finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "kimi-k2.5",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def completion(message: Any, finish_reason: str = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "kimi-k2.5",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        **extra,
    }


# --- 1. one very long SSE line -------------------------------------------------------


def long_line_server(line_bytes: int) -> RawServer:
    """One ``data:`` event of ``line_bytes`` bytes of content, in 4 KiB HTTP chunks."""
    prefix = b'data: {"choices":[{"index":0,"delta":{"content":"'
    suffix = b'"}}]}'
    filler = line_bytes - len(prefix) - len(suffix)

    def pieces() -> Iterator[bytes]:
        yield prefix
        full, rest = divmod(filler, 4096)
        block = b"x" * 4096
        for _ in range(full):
            yield block
        if rest:
            yield b"x" * rest
        yield suffix + b"\n\n"
        yield sse(chunk_event({}, "stop"))

    return RawServer(one_answer(lambda connection, _: connection.send_chunked(pieces())))


@pytest.mark.parametrize("mode", STREAM_MODES)
def test_a_20_mb_line_in_4_kib_pieces_is_decoded(mode: str) -> None:
    size = 20 * MIB
    with long_line_server(size) as raw_server:
        outcome = call(make(raw_server.base_url), mode)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.message is not None
    assert len(outcome.message.content) == size - len(
        'data: {"choices":[{"index":0,"delta":{"content":""}}]}'
    )
    assert outcome.message.response_metadata["finish_reason"] == "stop"


@pytest.mark.parametrize("mode", STREAM_MODES)
def test_a_line_over_the_limit_is_refused_with_the_limit_named(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("langchain_kimi._sse.MAX_SSE_LINE_BYTES", MIB)
    with long_line_server(2 * MIB) as raw_server:
        outcome = call(make(raw_server.base_url), mode)
    err = outcome.raised(KimiResponseError)
    assert f"longer than {MIB:,} bytes" in str(err)
    assert not isinstance(err, KimiStreamInterruptedError)


def test_the_real_line_limit_applies_end_to_end() -> None:
    from langchain_kimi._limits import MAX_SSE_LINE_BYTES

    with long_line_server(MAX_SSE_LINE_BYTES + 4096) as raw_server:
        outcome = call(make(raw_server.base_url), "stream")
    err = outcome.raised(KimiResponseError)
    assert f"longer than {MAX_SSE_LINE_BYTES:,} bytes" in str(err)


# --- 2. malformed answers: a KimiResponseError that says what was wrong ----------------

MALFORMED_COMPLETIONS: dict[str, tuple[Any, str]] = {
    "choices-item-string": ({"choices": ["oops"]}, "choices[0] is not an object"),
    "choices-object": ({"choices": {"0": {}}}, "choices is not an array"),
    "message-string": (
        {"choices": [{"message": "hello", "finish_reason": "stop"}]},
        "choices[0].message is not an object (it is a string)",
    ),
    "message-missing": (
        {"choices": [{"finish_reason": "stop"}]},
        "choices[0].message is not an object (it is null)",
    ),
    "content-number": (
        completion({"role": "assistant", "content": 5}),
        "choices[0].message.content is not a string (it is a number)",
    ),
    "content-list": (
        completion({"content": ["a", "b"]}),
        "choices[0].message.content is not a string (it is an array)",
    ),
    "content-object": (
        completion({"content": {"text": "a"}}),
        "choices[0].message.content is not a string (it is an object)",
    ),
    "reasoning-number": (
        completion({"content": "a", "reasoning_content": 1}),
        "choices[0].message.reasoning_content is not a string",
    ),
    "tool-calls-item-string": (
        completion({"content": None, "tool_calls": ["x"]}, "tool_calls"),
        "choices[0].message.tool_calls[0] is not an object",
    ),
    "tool-calls-string": (
        completion({"content": None, "tool_calls": "x"}, "tool_calls"),
        "choices[0].message.tool_calls is not an array",
    ),
    "function-string": (
        completion({"tool_calls": [{"id": "f:0", "function": "f"}]}, "tool_calls"),
        "choices[0].message.tool_calls[0].function is not an object",
    ),
    "function-name-number": (
        completion({"tool_calls": [{"id": "f:0", "function": {"name": 5, "arguments": "{}"}}]}),
        "choices[0].message.tool_calls[0].function.name is not a string",
    ),
    "function-no-name": (
        completion({"tool_calls": [{"id": "f:0", "function": {"arguments": "{}"}}]}),
        "choices[0].message.tool_calls[0].function has no name",
    ),
    "arguments-list": (
        completion({"tool_calls": [{"id": "f:0", "function": {"name": "f", "arguments": [1]}}]}),
        "choices[0].message.tool_calls[0].function.arguments is not a string or an object",
    ),
    "call-id-number": (
        completion({"tool_calls": [{"id": 7, "function": {"name": "f", "arguments": "{}"}}]}),
        "choices[0].message.tool_calls[0].id is not a string",
    ),
    "finish-reason-number": (
        completion({"content": "a"}, 5),
        "choices[0].finish_reason is not a string",
    ),  # type: ignore[arg-type]
    "usage-string-count": (
        {**completion({"content": "a"}), "usage": {"prompt_tokens": "3"}},
        "usage.prompt_tokens is not a whole number",
    ),
    "usage-string": ({**completion({"content": "a"}), "usage": "lots"}, "usage is not an object"),
    "model-number": ({**completion({"content": "a"}), "model": 2}, "model is not a string"),
    "array-body": ([completion({"content": "a"})], "expected a JSON object, got an array"),
}


@pytest.mark.parametrize("mode", INVOKE_MODES)
@pytest.mark.parametrize("case", list(MALFORMED_COMPLETIONS))
def test_a_malformed_completion_raises_a_response_error_naming_the_part(
    server: FakeKimiServer, case: str, mode: str
) -> None:
    body, expected = MALFORMED_COMPLETIONS[case]
    server.queue(Reply.raw(json.dumps(body), content_type="application/json"))
    outcome = call(make(server.base_url), mode)
    err = outcome.raised(KimiResponseError)
    assert expected in str(err)
    assert outcome.callback_errors == [err]


MALFORMED_EVENTS: dict[str, tuple[Any, str]] = {
    "event-array": ([1, 2], "expected a JSON object, got an array"),
    "choices-item-string": ({"choices": ["oops"]}, "choices[0] is not an object"),
    "choices-string": ({"choices": "oops"}, "choices is not an array"),
    "choices-empty-string": ({"choices": ""}, "choices is not an array"),
    "delta-string": (chunk_event("hello"), "choices[0].delta is not an object (it is a string)"),
    "delta-empty-string": (chunk_event(""), "choices[0].delta is not an object (it is a string)"),
    "delta-number": (chunk_event(5), "choices[0].delta is not an object (it is a number)"),
    "content-number": (chunk_event({"content": 5}), "choices[0].delta.content is not a string"),
    "content-zero": (chunk_event({"content": 0}), "choices[0].delta.content is not a string"),
    "content-list": (chunk_event({"content": ["a"]}), "choices[0].delta.content is not a string"),
    "content-object": (
        chunk_event({"content": {"a": 1}}),
        "choices[0].delta.content is not a string",
    ),
    "reasoning-number": (
        chunk_event({"reasoning_content": 5}),
        "choices[0].delta.reasoning_content is not a string",
    ),
    "reasoning-empty-list": (
        chunk_event({"reasoning_content": []}),
        "choices[0].delta.reasoning_content is not a string",
    ),
    "tool-calls-string": (
        chunk_event({"tool_calls": "x"}),
        "choices[0].delta.tool_calls is not an array",
    ),
    "tool-calls-item-string": (
        chunk_event({"tool_calls": ["x"]}),
        "choices[0].delta.tool_calls[0] is not an object",
    ),
    "function-string": (
        chunk_event({"tool_calls": [{"index": 0, "function": "f"}]}),
        "choices[0].delta.tool_calls[0].function is not an object",
    ),
    "function-name-number": (
        chunk_event({"tool_calls": [{"index": 0, "function": {"name": 5}}]}),
        "choices[0].delta.tool_calls[0].function.name is not a string",
    ),
    "arguments-list": (
        chunk_event({"tool_calls": [{"index": 0, "function": {"arguments": [1]}}]}),
        "choices[0].delta.tool_calls[0].function.arguments is not a string or an object",
    ),
    "index-string": (
        chunk_event({"tool_calls": [{"index": "0", "function": {"arguments": "{"}}]}),
        "choices[0].delta.tool_calls[0].index is not a whole number",
    ),
    "call-id-number": (
        chunk_event({"tool_calls": [{"index": 0, "id": 3, "function": {"name": "f"}}]}),
        "choices[0].delta.tool_calls[0].id is not a string",
    ),
    "finish-reason-number": (chunk_event({}, 5), "choices[0].finish_reason is not a string"),  # type: ignore[arg-type]
    # The stream's id and model are read from its first event.
    "first-model-number": ({**chunk_event({"content": "a"}), "model": 1}, "model is not a string"),
    "first-id-object": ({**chunk_event({"content": "a"}), "id": {}}, "id is not a string"),
}


@pytest.mark.parametrize("mode", STREAM_MODES)
@pytest.mark.parametrize("case", list(MALFORMED_EVENTS))
def test_a_malformed_stream_event_raises_a_response_error_naming_the_part(
    server: FakeKimiServer, case: str, mode: str
) -> None:
    event, expected = MALFORMED_EVENTS[case]
    first = () if case.startswith("first-") else (chunk_event({"role": "assistant"}),)
    server.queue(Reply.raw(sse(*first, event)))
    outcome = call(make(server.base_url), mode)
    err = outcome.raised(KimiResponseError)
    assert expected in str(err)
    assert str(err).startswith("malformed stream event")
    assert outcome.callback_errors == [err]


@pytest.mark.parametrize("mode", MODES)
def test_json_nested_deeper_than_python_recurses_is_a_response_error(
    server: FakeKimiServer, mode: str
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    if mode in STREAM_MODES:
        server.queue(Reply.raw(f"data: {deep}\n\ndata: [DONE]\n\n"))
    else:
        server.queue(Reply.raw(deep, content_type="application/json"))
    err = call(make(server.base_url), mode).raised(KimiResponseError)
    assert "nested too deeply" in str(err)


@pytest.mark.parametrize("mode", STREAM_MODES)
def test_malformed_usage_in_a_stream_raises_a_response_error(
    server: FakeKimiServer, mode: str
) -> None:
    events = (chunk_event({"content": "a"}), {"choices": [], "usage": {"completion_tokens": [1]}})
    server.queue(Reply.raw(sse(*events)))
    err = call(make(server.base_url), mode).raised(KimiResponseError)
    assert "usage.completion_tokens is not a whole number" in str(err)


@pytest.mark.parametrize("mode", STREAM_MODES)
def test_invalid_utf8_in_an_unterminated_last_line_is_a_response_error(
    server: FakeKimiServer, mode: str
) -> None:
    body = b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\ndata: {"x": "\xe4\xbd'
    server.queue(Reply.raw(body))
    err = call(make(server.base_url), mode).raised(KimiResponseError)
    assert "not valid UTF-8" in str(err)
    # The decoding error (it holds the raw bytes) is not carried along.
    assert err.__context__ is None and err.__cause__ is None


WHOLE_ANSWER = completion(
    {
        "role": "assistant",
        "content": "It is sunny.",
        "reasoning_content": "Weather question.",
        "tool_calls": [
            {
                "id": "get_weather:0",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            },
            {
                "id": "get_weather:1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": '},
            },
        ],
    },
    "tool_calls",
)


@pytest.mark.parametrize("mode", STREAM_MODES)
def test_a_stream_answered_with_a_whole_json_completion_streams_it(
    server: FakeKimiServer, mode: str
) -> None:
    server.queue(Reply(body=WHOLE_ANSWER), Reply(body=WHOLE_ANSWER))
    outcome = call(make(server.base_url), mode)
    assert outcome.error is None, repr(outcome.error)
    streamed = outcome.message
    assert isinstance(streamed, AIMessageChunk)
    assert outcome.chunks[-1].chunk_position == "last"
    invoked = call(make(server.base_url), "invoke").message
    assert isinstance(invoked, AIMessage)
    # The chunks add up to the message invoke gives for the same body.
    assert streamed.content == invoked.content == "It is sunny."
    assert streamed.additional_kwargs == invoked.additional_kwargs
    assert streamed.tool_calls == invoked.tool_calls
    assert [c["id"] for c in streamed.invalid_tool_calls] == ["get_weather:1"]
    assert [c["id"] for c in invoked.invalid_tool_calls] == ["get_weather:1"]
    assert streamed.usage_metadata == invoked.usage_metadata
    assert streamed.response_metadata["finish_reason"] == "tool_calls"
    assert server.requests[0].body["stream"] is True


@pytest.mark.parametrize("mode", STREAM_MODES)
def test_a_stream_answered_with_a_json_error_body_raises_the_api_error(
    server: FakeKimiServer, mode: str
) -> None:
    body = {
        "error": {"code": "upstream_error", "message": "the model is overloaded"},
        "trace_id": "t-1",
    }
    server.queue(Reply(body=body))
    err = call(make(server.base_url), mode).raised(KimiAPIError)
    assert err.status_code == 200 and err.code == "upstream_error" and err.trace_id == "t-1"
    assert "the model is overloaded" in str(err)


@pytest.mark.parametrize("mode", STREAM_MODES)
def test_a_stream_answered_with_json_that_is_no_completion_says_so(
    server: FakeKimiServer, mode: str
) -> None:
    server.queue(Reply(body={"status": "ok"}))
    err = call(make(server.base_url), mode).raised(KimiResponseError)
    assert "one JSON body instead of an event stream" in str(err)
    assert "no choices" in str(err)


@pytest.mark.parametrize("mode", STREAM_MODES)
def test_a_stream_answered_with_a_page_is_not_called_an_interruption(
    server: FakeKimiServer, mode: str
) -> None:
    server.queue(Reply.raw("<html><body>Maintenance</body></html>", content_type="text/html"))
    err = call(make(server.base_url), mode).raised(KimiResponseError)
    assert "not an event stream" in str(err) and "Maintenance" in str(err)
    assert not isinstance(err, KimiStreamInterruptedError)


# --- 3. credentials in base_url ------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://kimi-user:hunter2-pass@127.0.0.1:9/kimi",
        "https://kimi-user:hunter2-pass@api.acedata.cloud/kimi",
        "http://kimi-user@127.0.0.1:9",
        "ftp://kimi-user:hunter2-pass@127.0.0.1",
    ],
)
def test_credentials_in_base_url_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ValueError, match="must not contain credentials") as info:
        ChatKimi(base_url=url, api_key=TOKEN)
    shown = everything_shown(info.value)
    assert "hunter2-pass" not in shown and "kimi-user" not in shown
    assert isinstance(info.value, ValidationError)


def test_credentials_in_kimi_base_url_are_refused(
    server: FakeKimiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "KIMI_BASE_URL", server.base_url.replace("http://", "http://u:hunter2-pass@")
    )
    with pytest.raises(ValueError, match="KIMI_BASE_URL") as info:
        ChatKimi(api_key=TOKEN)
    assert "hunter2-pass" not in everything_shown(info.value)
    assert server.request_count == 0


def test_an_at_sign_outside_the_host_part_is_fine(server: FakeKimiServer) -> None:
    model = make(server.base_url + "/team@1")
    assert model.base_url.endswith("/team@1")


# --- 4. an empty token is a missing token --------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("token", ["", "   ", "\n"])
def test_an_empty_api_key_is_refused_before_any_request(
    server: FakeKimiServer, token: str, mode: str
) -> None:
    outcome = call(make(server.base_url, api_key=token), mode)
    err = outcome.raised(ValueError)
    assert "no Kimi API token (api_key is empty)" in str(err)
    assert "ACEDATACLOUD_API_TOKEN" in str(err)
    assert server.request_count == 0


@pytest.mark.parametrize("mode", MODES)
def test_an_empty_token_variable_is_refused_like_a_missing_one(
    server: FakeKimiServer, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", "")
    model = ChatKimi(base_url=server.base_url, max_retries=0)
    err = call(model, mode).raised(ValueError)
    assert "no Kimi API token" in str(err)
    monkeypatch.delenv("ACEDATACLOUD_API_TOKEN")
    missing = call(ChatKimi(base_url=server.base_url, max_retries=0), mode).raised(ValueError)
    assert str(missing).replace("is not set", "is empty") == str(err)
    assert server.request_count == 0


def test_surrounding_whitespace_is_not_part_of_the_token(server: FakeKimiServer) -> None:
    message = call(make(server.base_url, api_key=f"  {TOKEN}\n"), "invoke").message
    assert message is not None
    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


# --- 5. a token echoed back ----------------------------------------------------------


def echo_headers(request: RawRequest) -> dict[str, Any]:
    return {name.lower(): value for name, value in request.headers.items()}


def echo_400(connection: RawConnection, request: RawRequest) -> None:
    headers = echo_headers(request)
    body = {
        "error": {
            "code": "bad_request",
            "message": f"rejected request with Authorization: {headers['authorization']}",
        },
        "request": {"headers": headers},
    }
    connection.send_response(400, json.dumps(body).encode())


def echo_html_200(connection: RawConnection, request: RawRequest) -> None:
    page = f"<html>proxy login: {request.headers['Authorization']}</html>"
    connection.send_response(200, page.encode(), "text/html")


def echo_error_event(connection: RawConnection, request: RawRequest) -> None:
    error = {
        "error": {
            "message": f"denied: {request.headers['Authorization']}",
            "headers": echo_headers(request),
        }
    }
    body = sse(chunk_event({"content": "a"}), error)
    connection.send_response(200, body, "text/event-stream")


def echo_malformed_line(connection: RawConnection, request: RawRequest) -> None:
    body = f"data: {{not json, you sent {request.headers['Authorization']}\n\n"
    connection.send_response(200, body.encode(), "text/event-stream")


def echo_escaped_json(connection: RawConnection, request: RawRequest) -> None:
    # The token hidden behind JSON escapes: redaction must see the decoded text.
    token = request.headers["Authorization"].split(" ", 1)[1]
    escaped = "".join(f"\\u{ord(c):04x}" for c in token)
    body = '{"error": {"message": "token ' + escaped + ' is not valid"}}'
    connection.send_response(401, body.encode())


Respond = Callable[[RawConnection, RawRequest], None]
ECHOES: dict[str, tuple[Respond, list[str], type[KimiError]]] = {
    "400-json": (echo_400, MODES, KimiBadRequestError),
    "401-json-escaped": (echo_escaped_json, MODES, KimiAPIError),
    "200-html": (echo_html_200, MODES, KimiResponseError),
    "error-event": (echo_error_event, STREAM_MODES, KimiAPIError),
    "malformed-line": (echo_malformed_line, STREAM_MODES, KimiResponseError),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(ECHOES))
def test_a_token_echoed_back_is_redacted_everywhere(case: str, mode: str) -> None:
    respond, modes, error_type = ECHOES[case]
    if mode not in modes:
        pytest.skip("an answer only a stream can get")
    with RawServer(one_answer(respond)) as raw_server:
        outcome = call(make(raw_server.base_url), mode)
    err = outcome.raised(error_type)
    # It went over the wire, and came back...
    assert raw_server.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    # ...but no error, body or callback shows it.
    assert TOKEN not in everything_shown(err)
    assert "[REDACTED]" in str(err)
    if isinstance(err, KimiAPIError):
        assert TOKEN not in repr(err.body) and TOKEN not in err.message
    assert outcome.callback_errors == [err]
    assert TOKEN not in everything_shown(outcome.callback_errors[0])


def echo_500(connection: RawConnection, request: RawRequest) -> None:
    # The bare token, without "Bearer ": only knowing the token can redact it.
    token = request.headers["Authorization"].split(" ", 1)[1]
    body = {"error": {"message": f"upstream refused key {token}"}}
    connection.send_response(500, json.dumps(body).encode())


@pytest.mark.parametrize("mode", MODES)
def test_a_retried_answer_echoing_the_token_is_not_logged(
    mode: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("langchain_kimi._transport.RetryPolicy.base_delay", 0.001)
    monkeypatch.setattr("langchain_kimi._transport.RetryPolicy.max_delay", 0.002)
    caplog.set_level(logging.DEBUG, logger="langchain_kimi")
    with RawServer(one_answer(echo_500)) as raw_server:
        err = call(make(raw_server.base_url, max_retries=1), mode).raised(KimiAPIError)
    assert len(raw_server.requests) == 2  # retried once: one log line
    assert TOKEN not in everything_shown(err)
    assert any("retry" in record.getMessage() for record in caplog.records)
    assert TOKEN not in caplog.text


def test_a_bearer_value_of_another_token_is_redacted_too(server: FakeKimiServer) -> None:
    server.queue(Reply.error(403, "forbidden", "Authorization: Bearer sk-someone-else-123 denied"))
    err = call(make(server.base_url), "invoke").raised(KimiAPIError)
    assert "sk-someone-else-123" not in everything_shown(err)
    assert "Bearer [REDACTED] denied" in err.message


def test_a_credential_header_echoed_back_is_redacted() -> None:
    secret = "hdr-7c41-SECRET-value"
    headers = {"X-Api-Key": secret, "Cookie": "session=abcdef123456", "X-Team": "blue-team-42"}
    with RawServer(one_answer(echo_400)) as raw_server:
        model = make(raw_server.base_url, default_headers=headers)
        err = call(model, "invoke").raised(KimiBadRequestError)
    assert raw_server.requests[0].headers["X-Api-Key"] == secret
    shown = everything_shown(err)
    assert secret not in shown and "abcdef123456" not in shown
    # A header that is no credential is shown as the service echoed it.
    assert err.body["request"]["headers"]["x-team"] == "blue-team-42"


HEADER_SECRET = "hdr-9f2e-SECRET-value"


def test_default_header_values_stay_out_of_repr_and_dumps(server: FakeKimiServer) -> None:
    model = make(server.base_url, default_headers={"X-Api-Key": HEADER_SECRET, "X-Team": "blue"})
    for text in (repr(model), str(model), dumps(model), repr(dumpd(model))):
        assert HEADER_SECRET not in text
        assert "X-Api-Key" in text  # the names are shown
    assert "blue" not in dumps(model)
    # The header is still sent.
    call(model, "invoke")
    assert server.requests[0].headers["x-api-key"] == HEADER_SECRET


@pytest.mark.filterwarnings("ignore:The function `loads` is in beta")
def test_loads_restores_the_rest_and_headers_from_secrets_map(server: FakeKimiServer) -> None:
    model = make(server.base_url, default_headers={"X-Api-Key": HEADER_SECRET}, max_tokens=77)
    text = dumps(model)
    restored = loads(
        text,
        secrets_map={
            "ACEDATACLOUD_API_TOKEN": TOKEN,
            "KIMI_DEFAULT_HEADER_X_API_KEY": HEADER_SECRET,
        },
        valid_namespaces=["langchain_kimi"],
        allowed_objects=[ChatKimi],
    )
    assert isinstance(restored, ChatKimi)
    assert restored.default_headers == {"X-Api-Key": HEADER_SECRET}
    assert (restored.model, restored.base_url, restored.max_tokens) == (
        model.model,
        model.base_url,
        77,
    )
    # Without the header's value, the loaded model leaves the header out.
    bare = loads(
        text,
        secrets_map={"ACEDATACLOUD_API_TOKEN": TOKEN},
        valid_namespaces=["langchain_kimi"],
        allowed_objects=[ChatKimi],
    )
    assert isinstance(bare, ChatKimi)
    assert bare.default_headers == {}
    assert call(bare, "invoke").error is None
    assert "x-api-key" not in server.requests[-1].headers


@pytest.mark.parametrize(
    "keyword",
    [
        "openai_api_key",
        "token",
        "secret_key",
        "api_token",
        "moonshot_api_key",
        "ACEDATACLOUD_API_TOKEN",
        "apiKey",
    ],
)
def test_a_mistyped_credential_keyword_is_refused_without_its_value(
    server: FakeKimiServer, keyword: str
) -> None:
    secret = "sk-mistyped-0d9a-SECRET"
    with pytest.raises(
        ValueError, match=f"unknown argument '{keyword}' looks like a credential"
    ) as info:
        ChatKimi(base_url=server.base_url, api_key=TOKEN, **{keyword: secret})
    shown = everything_shown(info.value)
    assert "api_key=..." in shown
    assert secret not in shown and TOKEN not in shown
    assert server.request_count == 0


@pytest.mark.parametrize("keyword", ["max_completion_tokens", "service_tier", "user"])
def test_other_unknown_keywords_still_become_body_fields(
    server: FakeKimiServer, keyword: str
) -> None:
    with pytest.warns(UserWarning, match=keyword):
        model = make(server.base_url, **{keyword: "x1"})
    assert model.model_kwargs == {keyword: "x1"}


def test_a_refused_setting_does_not_quote_the_other_arguments() -> None:
    with pytest.raises(ValidationError) as info:
        ChatKimi(api_key=TOKEN, timeout=-1, openai_api_key="sk-other-SECRET-77")
    assert TOKEN not in everything_shown(info.value)


# --- 6. a cut-off tool call is never a valid one ---------------------------------------

CUT_OFF = '{"path": "/home/user/projects/imp'


def cut_off_reply(**fields: Any) -> Reply:
    return Reply(
        content="",
        tool_calls=[
            ToolCall("list_dir", {"path": "/home"}, id="list_dir:0"),
            ToolCall("read_file", CUT_OFF, id="read_file:1"),
        ],
        finish_reason="length",
        **fields,
    )


@pytest.mark.parametrize("mode", MODES)
def test_a_cut_off_tool_call_lands_in_invalid_tool_calls(server: FakeKimiServer, mode: str) -> None:
    server.queue(cut_off_reply())
    outcome = call(make(server.base_url), mode)
    assert outcome.error is None, repr(outcome.error)
    message = outcome.message
    assert message is not None
    assert message.tool_calls == [
        {"name": "list_dir", "args": {"path": "/home"}, "id": "list_dir:0", "type": "tool_call"}
    ]
    (bad,) = message.invalid_tool_calls
    assert (bad["name"], bad["id"]) == ("read_file", "read_file:1")
    assert bad["args"] is not None and bad["args"].startswith(CUT_OFF)
    assert message.response_metadata["finish_reason"] == "length"


@pytest.mark.parametrize("mode", INVOKE_MODES)
def test_a_cut_off_tool_call_is_invalid_when_invoke_streams_under_the_hood(
    server: FakeKimiServer, mode: str
) -> None:
    server.queue(cut_off_reply(chunk_size=3))
    outcome = call(make(server.base_url, streaming=True), mode)
    assert outcome.error is None, repr(outcome.error)
    message = outcome.message
    assert isinstance(message, AIMessage)
    assert server.requests[0].body["stream"] is True
    assert [call["id"] for call in message.tool_calls] == ["list_dir:0"]
    assert [call["id"] for call in message.invalid_tool_calls] == ["read_file:1"]
    assert message.response_metadata["finish_reason"] == "length"


@pytest.mark.parametrize("mode", MODES)
def test_a_call_cut_off_before_its_arguments_is_invalid(server: FakeKimiServer, mode: str) -> None:
    server.queue(
        Reply(tool_calls=[ToolCall("shutdown", "", id="shutdown:0")], finish_reason="length")
    )
    outcome = call(make(server.base_url), mode)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.message is not None
    assert outcome.message.tool_calls == []
    assert [c["name"] for c in outcome.message.invalid_tool_calls] == ["shutdown"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("finish_reason", ["length", "tool_calls"])
def test_whole_calls_stay_valid_whatever_the_finish_reason(
    server: FakeKimiServer, mode: str, finish_reason: str
) -> None:
    calls = [ToolCall("read_file", {"path": "/etc/hosts"}, id="read_file:0")]
    server.queue(Reply(tool_calls=calls, finish_reason=finish_reason))
    outcome = call(make(server.base_url), mode)
    assert outcome.message is not None
    assert outcome.message.tool_calls == [
        {
            "name": "read_file",
            "args": {"path": "/etc/hosts"},
            "id": "read_file:0",
            "type": "tool_call",
        }
    ]
    assert outcome.message.invalid_tool_calls == []
    assert outcome.message.response_metadata["finish_reason"] == finish_reason


@pytest.mark.parametrize("mode", STREAM_MODES)
def test_without_truncation_streamed_calls_are_unchanged(server: FakeKimiServer, mode: str) -> None:
    # Not cut off: no fragment is added, the last chunk carries none.
    server.queue(Reply(tool_calls=[ToolCall("f", CUT_OFF, id="f:0")], finish_reason="tool_calls"))
    outcome = call(make(server.base_url), mode)
    assert outcome.chunks[-1].tool_call_chunks == []
    assert outcome.message is not None
    assert "".join(c["args"] or "" for c in outcome.message.tool_call_chunks) == CUT_OFF


def _reachable_objects(err: BaseException) -> str:
    """What a debugger or error reporter could walk to from ``err``: its causes'
    and contexts' attributes, one level into each (``requests``' errors keep the
    request, headers included)."""
    shown = []
    seen: set[int] = set()
    pending: list[BaseException | None] = [err]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        shown.append(repr(current))
        for value in vars(current).values():
            shown.append(repr(value))
            shown.extend(repr(v) for v in getattr(value, "__dict__", {}).values())
        pending.extend([current.__cause__, current.__context__])
    return "\n".join(shown)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("failure", ["refused", "read-timeout"])
def test_a_failed_request_keeps_no_library_error_holding_the_token(mode: str, failure: str) -> None:
    answered = threading.Event()

    def never_answer(connection: RawConnection, request: RawRequest) -> None:
        answered.wait(10)  # until the test is over: the client times out first

    with RawServer(one_answer(never_answer)) as raw_server:
        base_url = raw_server.base_url
        try:
            if failure == "read-timeout":
                err = call(make(base_url, timeout=0.3), mode).raised(KimiTimeoutError)
        finally:
            answered.set()  # before the server stops: it waits for its handlers
    if failure == "refused":  # the server is gone
        err = call(make(base_url), mode).raised(KimiConnectionError)
    # No library exception (requests' keeps the request, headers included) is
    # reachable from the error, not even as a suppressed __context__.
    assert err.__context__ is None and err.__cause__ is None
    assert TOKEN not in _reachable_objects(err)
