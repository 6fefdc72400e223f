"""FakeKimiServer on its own, driven with plain HTTP (requests, http.client, sockets).

No ChatKimi here: the simulator is the referee of the client's tests, so it is
checked against hand-written wire expectations instead.
"""

from __future__ import annotations

import dataclasses
import gzip
import http.client
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

import langchain_kimi.testing
from langchain_kimi.testing import FakeKimiServer, Reply, ToolCall

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
INSTRUCT = "kimi-k2-instruct-0905"  # a model that does not think
PROJECT_ROOT = Path(langchain_kimi.testing.__file__).resolve().parents[2]
# test_plugin_fixtures runs a project's tests in-process with pytest's own pytester.
pytest_plugins = ["pytester"]


@pytest.fixture
def server() -> Iterator[FakeKimiServer]:
    with FakeKimiServer(api_key=KEY) as fake:
        yield fake


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def chat(model: str = INSTRUCT, text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [user(text)], **extra}


def post(
    server: FakeKimiServer,
    payload: Any,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> requests.Response:
    return requests.post(
        f"{server.base_url}/chat/completions",
        json=payload,
        headers=AUTH if headers is None else headers,
        **{"timeout": 10, **kwargs},
    )


def sse_data(text: str) -> list[str]:
    """The payloads of the ``data:`` lines: a deliberately minimal SSE reader."""
    return [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]


def stream(server: FakeKimiServer, payload: dict[str, Any]) -> list[str]:
    response = post(server, {**payload, "stream": True})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return sse_data(response.text)


def chunks_of(payloads: list[str]) -> list[dict[str, Any]]:
    assert payloads[-1] == "[DONE]"
    return [json.loads(payload) for payload in payloads[:-1]]


def joined(chunks: list[dict[str, Any]], field: str) -> str:
    return "".join(
        choice["delta"].get(field) or ""
        for chunk in chunks
        for choice in chunk["choices"]
        if "delta" in choice
    )


def tool_call_agent_history(reasoning: Any = ..., model: str = "kimi-k2.5") -> dict[str, Any]:
    """A second-turn request: the assistant's tool call (index 2) and its result."""
    assistant: dict[str, Any] = {
        "role": "assistant",
        "content": " ",
        "tool_calls": [
            {
                "id": "functions.weather:0",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"location": "Florence"}'},
            }
        ],
    }
    if reasoning is not ...:
        assistant["reasoning_content"] = reasoning
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant"},
            user("What's the weather in Florence?"),
            assistant,
            {"role": "tool", "tool_call_id": "functions.weather:0", "content": "40 C"},
        ],
    }


def raw_exchange(server: FakeKimiServer, payload: dict[str, Any]) -> tuple[bytes, bytes]:
    """Send one request on a fresh socket; return (head, body) exactly as received."""
    data = json.dumps(payload).encode()
    request = (
        "POST /kimi/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode() + data
    received = bytearray()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request)
        while piece := sock.recv(65536):
            received += piece
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    return head, body


def dechunk(body: bytes) -> tuple[list[int], bytes]:
    """Chunk sizes and the reassembled payload of a chunked body."""
    sizes: list[int] = []
    payload = bytearray()
    position = 0
    while True:
        line_end = body.index(b"\r\n", position)
        size = int(body[position:line_end], 16)
        position = line_end + 2
        if size == 0:
            return sizes, bytes(payload)
        sizes.append(size)
        payload += body[position : position + size]
        position += size + 2


# -- authentication ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "no_token"),
        ({"Authorization": "Bearer "}, "no_token"),
        ({"Authorization": "Bearer wrong"}, "invalid_token"),
        ({"Authorization": f"Token {KEY}"}, "invalid_token"),
    ],
)
def test_bad_credentials_get_ace_401(
    server: FakeKimiServer, headers: dict[str, str], code: str
) -> None:
    response = post(server, chat(), headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert len(body["trace_id"]) == 36


def test_without_api_key_any_request_is_accepted() -> None:
    with FakeKimiServer(api_key=None) as server:
        response = post(server, chat(text="hi"), headers={})
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "Echo: hi"


# -- service rules ----------------------------------------------------------------


def test_replay_rule_rejects_tool_call_without_reasoning(server: FakeKimiServer) -> None:
    response = post(server, tool_call_agent_history())
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "thinking is enabled but reasoning_content is missing in "
            "assistant tool call message at index 2",
            "type": "invalid_request_error",
        }
    }


@pytest.mark.parametrize(
    ("reasoning", "model", "thinking", "status"),
    [
        ("I should call weather.", "kimi-k2.5", None, 200),
        ("", "kimi-k2.5", None, 200),  # history without reasoning: the key is what matters
        (None, "kimi-k2.5", None, 400),
        (..., "kimi-k2.6", None, 400),
        (..., "kimi-k2-thinking-turbo", None, 400),
        (..., "kimi-k2-thinking", {"type": "disabled"}, 400),  # always thinks
        (..., "kimi-k3", None, 400),
        (..., "kimi-k2.7-code", {"type": "disabled"}, 400),  # always thinks
        (..., "kimi-k2.5", {"type": "disabled"}, 200),
        (..., INSTRUCT, None, 200),
        # A model that does not think ignores the switch: no reasoning, no rule.
        (..., INSTRUCT, {"type": "enabled"}, 200),
        # Names the service does not serve are not found, before any other rule.
        (..., "moonshotai/kimi-k2.5", None, 404),
        (..., "Kimi-K2.5", None, 404),
    ],
)
def test_replay_rule_applies_only_when_thinking(
    server: FakeKimiServer, reasoning: Any, model: str, thinking: Any, status: int
) -> None:
    payload = tool_call_agent_history(reasoning, model=model)
    if thinking is not None:
        payload["thinking"] = thinking
    assert post(server, payload).status_code == status


@pytest.mark.parametrize(
    ("extra", "status", "mentions"),
    [
        ({"temperature": 0.7}, 400, ["temperature", "1.0"]),
        ({"temperature": 1.0, "top_p": 0.95, "n": 1}, 200, []),
        ({"presence_penalty": 0, "frequency_penalty": 0.0}, 200, []),
        ({"temperature": None}, 200, []),
        ({"top_p": 0.9}, 400, ["top_p", "0.95"]),
        ({"n": 2}, 400, ["invalid n", "1"]),
        ({"presence_penalty": 0.5}, 400, ["presence_penalty"]),
        ({"frequency_penalty": 1}, 400, ["frequency_penalty"]),
        ({"thinking": {"type": "disabled"}, "temperature": 0.6}, 200, []),
        ({"thinking": {"type": "disabled"}, "temperature": 1.0}, 400, ["temperature", "0.6"]),
    ],
)
def test_k25_fixed_sampling(
    server: FakeKimiServer, extra: dict[str, Any], status: int, mentions: list[str]
) -> None:
    response = post(server, chat("kimi-k2.5", **extra))
    assert response.status_code == status, response.text
    if status == 400:
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        for word in mentions:
            assert word in error["message"]


def test_other_models_sample_freely(server: FakeKimiServer) -> None:
    payload = chat(INSTRUCT, temperature=0.2, top_p=0.5, n=3, presence_penalty=1)
    assert post(server, payload).status_code == 200


WEB_SEARCH = {"type": "builtin_function", "function": {"name": "$web_search"}}
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}},
}


@pytest.mark.parametrize(
    ("model", "extra", "status"),
    [
        ("kimi-k2.5", {"tool_choice": "required"}, 400),
        ("kimi-k2.5", {"tool_choice": {"type": "function", "function": {"name": "w"}}}, 400),
        ("kimi-k2.5", {"tool_choice": "auto"}, 200),
        ("kimi-k2.5", {"tool_choice": "none"}, 200),
        ("kimi-k2.5", {"tool_choice": "required", "thinking": {"type": "disabled"}}, 200),
        (INSTRUCT, {"tool_choice": "required"}, 200),
        ("kimi-k2-thinking", {"tools": [WEB_SEARCH]}, 400),
        (INSTRUCT, {"tools": [WEB_SEARCH, WEATHER_TOOL]}, 200),
    ],
)
def test_tool_choice_and_web_search_under_thinking(
    server: FakeKimiServer, model: str, extra: dict[str, Any], status: int
) -> None:
    payload = chat(model, **{"tools": [WEATHER_TOOL], **extra})
    response = post(server, payload)
    assert response.status_code == status, response.text
    if status == 400:
        assert "thinking" in response.json()["error"]["message"]


def _with_messages(*messages: Any) -> dict[str, Any]:
    return {"model": INSTRUCT, "messages": list(messages)}


_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "weather", "arguments": "{}"},
}


@pytest.mark.parametrize(
    ("payload", "mentions"),
    [
        ({"messages": [user("hi")]}, "model"),
        ({"model": INSTRUCT, "messages": []}, "messages"),
        ({"model": INSTRUCT}, "messages"),
        (_with_messages({"role": "robot", "content": "hi"}), "role"),
        (_with_messages(user("")), "messages[0].content must not be empty"),
        (_with_messages({"role": "system", "content": None}, user("hi")), "messages[0]"),
        (_with_messages(user('[{"type": "text", "text": "hi"}]')), "JSON-encoded list"),
        (_with_messages({"role": "user", "content": [{"type": "audio"}]}), "type"),
        (
            _with_messages({"role": "user", "content": [{"type": "image_url", "image_url": {}}]}),
            "image_url.url",
        ),
        (_with_messages(user("hi"), {"role": "assistant", "content": ""}), "content or tool_calls"),
        (
            _with_messages(
                user("hi"),
                {"role": "assistant", "content": None, "tool_calls": [_CALL]},
                {"role": "tool", "tool_call_id": "call_2", "content": "x"},
            ),
            "call_2",
        ),
        (
            _with_messages(
                user("hi"),
                {"role": "assistant", "tool_calls": [_CALL]},
                {"role": "tool", "content": "x"},
            ),
            "tool_call_id",
        ),
        (
            _with_messages(
                user("hi"),
                {"role": "assistant", "tool_calls": [_CALL]},
                {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text"}]},
            ),
            "string",
        ),
        (
            _with_messages(
                user("hi"),
                {
                    "role": "assistant",
                    "tool_calls": [{**_CALL, "function": {"name": "w", "arguments": {}}}],
                },
            ),
            "arguments must be a JSON-encoded string",
        ),
        ({**chat(), "response_format": {"type": "json_schema"}}, "response_format"),
        ({**chat(), "thinking": {"type": "maybe"}}, "thinking"),
    ],
)
def test_malformed_requests_get_400(
    server: FakeKimiServer, payload: dict[str, Any], mentions: str
) -> None:
    response = post(server, payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert mentions in error["message"]


def test_valid_multimodal_and_tool_history_is_accepted(server: FakeKimiServer) -> None:
    payload = _with_messages(
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
        {"role": "assistant", "content": "", "tool_calls": [_CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": ""},
    )
    payload.update(response_format={"type": "json_object"}, unknown_field={"kept": True})
    # An image needs a model that reads images (the instruct model is text-only).
    assert post(server, payload).status_code == 400
    payload.update(model="kimi-k2.5", thinking={"type": "disabled"})
    assert post(server, payload).status_code == 200


def test_body_that_is_not_json_gets_ace_bad_request(server: FakeKimiServer) -> None:
    response = requests.post(
        f"{server.base_url}/chat/completions", data=b"{oops", headers=AUTH, timeout=5
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert server.requests[0].body is None
    assert server.requests[0].raw == b"{oops"


def test_rejected_request_does_not_consume_queued_reply(server: FakeKimiServer) -> None:
    server.queue(Reply(content="for the good request"))
    assert post(server, chat(), headers={}).status_code == 401
    assert post(server, chat("kimi-k2.5", temperature=0.1)).status_code == 400
    assert server.pending_replies == 1
    response = post(server, chat())
    assert response.json()["choices"][0]["message"]["content"] == "for the good request"
    assert server.pending_replies == 0


def test_rules_can_be_turned_off() -> None:
    with FakeKimiServer(api_key=KEY, enforce_rules=False) as server:
        assert post(server, tool_call_agent_history()).status_code == 200
        assert post(server, {"messages": "nonsense"}).status_code == 200
        assert post(server, chat(), headers={}).status_code == 401  # auth still applies


def test_wrong_path_and_method(server: FakeKimiServer) -> None:
    response = requests.post(f"{server.base_url}/completions", json=chat(), headers=AUTH, timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "api_not_implemented"
    response = requests.get(f"{server.base_url}/chat/completions", headers=AUTH, timeout=5)
    assert response.status_code == 405
    assert [request.method for request in server.requests] == ["POST", "GET"]


# -- non-streamed replies ----------------------------------------------------------------


def test_default_reply_echoes_the_last_user_message(server: FakeKimiServer) -> None:
    payload = {
        "model": INSTRUCT,
        "messages": [user("first"), {"role": "assistant", "content": "ok"}, user("second")],
    }
    body = post(server, payload).json()
    assert body["object"] == "chat.completion"
    assert body["model"] == INSTRUCT
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    [choice] = body["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"] == {"role": "assistant", "content": "Echo: second"}
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert "completion_tokens_details" not in usage


def test_default_reply_thinks_for_thinking_models(server: FakeKimiServer) -> None:
    body = post(server, chat("kimi-k2.5", text="why?")).json()
    message = body["choices"][0]["message"]
    assert message["content"] == "Echo: why?"
    assert message["reasoning_content"] == "Thinking about: why?"
    details = body["usage"]["completion_tokens_details"]
    assert 0 < details["reasoning_tokens"] <= body["usage"]["completion_tokens"]


def test_queued_reply_with_tool_calls(server: FakeKimiServer) -> None:
    server.queue(
        Reply(
            reasoning="Two tools.",
            tool_calls=[
                ToolCall("weather", {"location": "Paris"}),
                ToolCall("add", '{"a": 1, "b":', id="call_custom"),
            ],
            model="kimi-served",
            id="chatcmpl-fixed",
            usage={"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        )
    )
    body = post(server, chat()).json()
    assert body["id"] == "chatcmpl-fixed"
    assert body["model"] == "kimi-served"
    assert body["usage"] == {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    [choice] = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "reasoning_content": "Two tools.",
        "tool_calls": [
            {
                "id": "functions.weather:0",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"location": "Paris"}'},
            },
            {
                "id": "call_custom",
                "type": "function",
                "function": {"name": "add", "arguments": '{"a": 1, "b":'},
            },
        ],
    }


def test_error_replies_are_sent_as_is_even_to_streams(server: FakeKimiServer) -> None:
    server.queue(
        Reply.error(
            429, "too_many_requests", "slow down", trace_id="t-1", headers={"Retry-After": "1"}
        ),
        Reply.error(400, "invalid_request_error", "nope", style="moonshot"),
        Reply.html(502),
        Reply(status=503),
        Reply(status=500, body="upstream exploded"),
    )
    response = post(server, chat(stream=True))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "success": False,
        "error": {"code": "too_many_requests", "message": "slow down"},
        "trace_id": "t-1",
    }
    response = post(server, chat())
    assert response.json() == {"error": {"message": "nope", "type": "invalid_request_error"}}
    response = post(server, chat(stream=True))
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "502 Bad Gateway" in response.text
    response = post(server, chat())
    assert response.status_code == 503
    assert response.json()["success"] is False
    response = post(server, chat())
    assert (response.status_code, response.text) == (500, "upstream exploded")


def test_raw_reply_replays_a_recorded_body(server: FakeKimiServer) -> None:
    recorded = 'data: {"choices": []}\n\ndata: [DONE]\n\n'
    server.queue(Reply.raw(recorded))
    response = post(server, chat(stream=True))
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.text == recorded


def test_large_reply(server: FakeKimiServer) -> None:
    server.queue(Reply.large(1_000_000), Reply.large(200_000))
    content = post(server, chat()).json()["choices"][0]["message"]["content"]
    assert len(content) == 1_000_000
    assert "你好" in content
    chunks = chunks_of(stream(server, chat()))
    assert joined(chunks, "content") == Reply.large(200_000).content


# -- streams --------------------------------------------------------------------------


@pytest.mark.parametrize("include_usage", [True, False])
@pytest.mark.parametrize("usage_style", ["ace", "moonshot", "inline"])
def test_stream_shape(server: FakeKimiServer, usage_style: Any, include_usage: bool) -> None:
    server.queue(Reply(content="Hello, wörld!", reasoning="Greet back.", usage_style=usage_style))
    payload = chat("kimi-k2.5", text="hi")
    if include_usage:
        payload["stream_options"] = {"include_usage": True}
    chunks = chunks_of(stream(server, payload))

    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert joined(chunks, "reasoning_content") == "Greet back."
    assert joined(chunks, "content") == "Hello, wörld!"
    # Reasoning before content; pieces of chunk_size (4) characters.
    fields = [
        next(iter(choice["delta"]))
        for chunk in chunks[1:]
        for choice in chunk["choices"]
        if choice["delta"]
    ]
    assert fields == ["reasoning_content"] * 3 + ["content"] * 4
    finishing = [
        chunk for chunk in chunks if chunk["choices"] and chunk["choices"][0]["finish_reason"]
    ]
    assert [chunk["choices"][0]["finish_reason"] for chunk in finishing] == ["stop"]

    with_usage = [chunk for chunk in chunks if chunk.get("usage")]
    if usage_style == "ace":
        assert all("usage" in chunk for chunk in chunks)  # null until the end
        if include_usage:
            assert with_usage == [chunks[-1]]
            assert chunks[-1]["choices"] == []
            assert chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 3
        else:
            assert with_usage == []
            assert chunks[-1] is finishing[0]
    elif usage_style == "moonshot":
        assert with_usage == []
        assert chunks[-1] is finishing[0]
        assert chunks[-1]["choices"][0]["usage"]["total_tokens"] > 0
    else:
        assert with_usage == finishing == [chunks[-1]]


@pytest.mark.parametrize("fragment", [True, False])
def test_stream_tool_calls(server: FakeKimiServer, fragment: bool) -> None:
    server.queue(
        Reply(
            tool_calls=[ToolCall("add", {"a": 2, "b": 3}), ToolCall("multiply", {"a": 2, "b": 3})],
            fragment_tool_calls=fragment,
        )
    )
    chunks = chunks_of(stream(server, chat()))
    deltas = [
        call
        for chunk in chunks
        for choice in chunk["choices"]
        for call in choice["delta"].get("tool_calls", [])
    ]
    calls: dict[int, dict[str, str]] = {}
    for delta in deltas:
        call = calls.setdefault(delta["index"], {"arguments": ""})
        if "id" in delta:
            call.update(id=delta["id"], type=delta["type"], name=delta["function"]["name"])
        call["arguments"] += delta["function"]["arguments"]
    assert calls == {
        0: {
            "id": "functions.add:0",
            "type": "function",
            "name": "add",
            "arguments": '{"a": 2, "b": 3}',
        },
        1: {
            "id": "functions.multiply:1",
            "type": "function",
            "name": "multiply",
            "arguments": '{"a": 2, "b": 3}',
        },
    }
    if fragment:
        assert deltas[0]["function"] == {"name": "add", "arguments": ""}
        assert len(deltas) > 2
    else:
        assert len(deltas) == 2
    assert joined(chunks, "content") == ""
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_quirks(server: FakeKimiServer) -> None:
    server.queue(
        Reply(
            content="Quirky",
            repeat_role=True,
            spaced_json=True,
            comments=True,
            crlf=True,
            repeat_finish=True,
            usage_style="inline",
        )
    )
    response = post(server, chat(stream=True))
    text = response.text
    assert ": keep-alive\r\n" in text
    assert '"object": "chat.completion.chunk"' in text
    assert "\r\n\r\n\r\n" in text  # extra blank lines
    chunks = chunks_of(sse_data(text))
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"][0]["delta"]]
    assert all(delta["role"] == "assistant" for delta in deltas)
    finishes = [chunk for chunk in chunks if chunk["choices"][0]["finish_reason"] == "stop"]
    assert len(finishes) == 2
    assert "usage" not in finishes[0] and finishes[1]["usage"]["total_tokens"] > 0
    assert joined(chunks, "content") == "Quirky"


# -- faults -----------------------------------------------------------------------------


def test_fault_reset(server: FakeKimiServer) -> None:
    server.queue(Reply(fault="reset"))
    with pytest.raises(requests.ConnectionError):
        post(server, chat())
    assert post(server, chat(text="after")).json()["choices"][0]["message"]["content"] == (
        "Echo: after"
    )


def test_fault_disconnect_mid_stream(server: FakeKimiServer) -> None:
    server.queue(Reply(content="a long answer that never ends", fault="disconnect", fault_after=3))
    seen: list[bytes] = []
    with (
        pytest.raises(requests.exceptions.ChunkedEncodingError),
        post(server, chat(stream=True), stream=True) as response,
    ):
        seen.extend(line for line in response.iter_lines() if line)
    assert len(seen) == 3
    assert b"data: [DONE]" not in seen
    assert server.disconnects == 0  # the server hung up, not the client


def test_fault_disconnect_non_streamed(server: FakeKimiServer) -> None:
    server.queue(Reply(fault="disconnect", fault_after=10))
    with pytest.raises(requests.RequestException):
        post(server, chat())


def test_fault_stall_ends_when_server_stops(server: FakeKimiServer) -> None:
    server.queue(Reply(fault="stall", fault_after=1, stall=30))
    outcome: dict[str, Any] = {}

    def read() -> None:
        try:
            with post(server, chat(stream=True), stream=True) as response:
                outcome["lines"] = [line for line in response.iter_lines() if line]
        except requests.RequestException as exc:
            outcome["error"] = exc

    reader = threading.Thread(target=read)
    reader.start()
    assert server.wait_for_requests(1)
    time.sleep(0.2)  # let the stream reach the stall
    started = time.monotonic()
    server.stop()
    reader.join(5)
    assert not reader.is_alive()
    assert time.monotonic() - started < 3
    assert isinstance(outcome.get("error"), requests.exceptions.ChunkedEncodingError)
    assert server.disconnects == 0


def test_fault_stall_before_headers(server: FakeKimiServer) -> None:
    server.queue(Reply(fault="stall", stall=0.3))
    started = time.monotonic()
    response = post(server, chat(text="late"))
    assert time.monotonic() - started >= 0.3
    assert response.json()["choices"][0]["message"]["content"] == "Echo: late"
    server.queue(Reply(fault="stall", stall=5))
    with pytest.raises(requests.Timeout):
        post(server, chat(), timeout=0.3)


def test_fault_malformed_event(server: FakeKimiServer) -> None:
    server.queue(Reply(content="abcdefgh", fault="malformed", fault_after=2))
    payloads = stream(server, chat())
    assert payloads[2] == "{not json"
    assert payloads[-1] == "[DONE]"
    good = [json.loads(payload) for payload in payloads[:-1] if payload != "{not json"]
    assert joined(good, "content") == "abcdefgh"


def test_fault_error_event(server: FakeKimiServer) -> None:
    server.queue(Reply(content="abcdefgh", fault="error_event", fault_after=2))
    payloads = stream(server, chat())
    assert len(payloads) == 3
    assert "[DONE]" not in payloads
    assert json.loads(payloads[-1])["error"]["type"] == "server_error"


def test_fault_gzip(server: FakeKimiServer) -> None:
    server.queue(Reply(content="squeezé", fault="gzip"), Reply(content="squeezé", fault="gzip"))
    response = post(server, chat())
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.json()["choices"][0]["message"]["content"] == "squeezé"
    chunks = chunks_of(stream(server, chat()))
    assert joined(chunks, "content") == "squeezé"
    # The bytes on the wire really are gzip.
    server.queue(Reply(content="raw", fault="gzip"))
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request("POST", "/kimi/chat/completions", json.dumps(chat()), AUTH)
        raw = connection.getresponse().read()
    finally:
        connection.close()
    assert json.loads(gzip.decompress(raw))["choices"][0]["message"]["content"] == "raw"


@pytest.mark.parametrize("streamed", [True, False])
def test_fault_split_utf8(server: FakeKimiServer, streamed: bool) -> None:
    text = "héllo wörld — 你好 🙂" * 3
    whole_reply = Reply(content=text, reasoning="", id="chatcmpl-x", created=1)
    server.queue(whole_reply, dataclasses.replace(whole_reply, fault="split_utf8"))
    payload = chat(stream=streamed)
    _, whole = raw_exchange(server, payload)
    _, split = raw_exchange(server, payload)
    if streamed:
        whole_sizes, whole = dechunk(whole)
        split_sizes, split = dechunk(split)
        assert max(split_sizes) <= 3 < max(whole_sizes)
    assert split == whole  # reassembles to identical bytes
    if streamed:
        assert joined(chunks_of(sse_data(whole.decode())), "content") == text
    else:
        assert json.loads(whole)["choices"][0]["message"]["content"] == text


# -- connections, concurrency, bookkeeping ---------------------------------------------------


def test_keep_alive_serves_many_requests_on_one_connection(server: FakeKimiServer) -> None:
    server.queue(
        Reply(content="one"), Reply(content="two"), Reply.error(429, "too_many_requests", "x")
    )
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    headers = {**AUTH, "Content-Type": "application/json"}
    try:
        connection.request("POST", "/kimi/chat/completions", json.dumps(chat()), headers)
        first = connection.getresponse()
        assert json.loads(first.read())["choices"][0]["message"]["content"] == "one"
        sock = connection.sock
        connection.request("POST", "/kimi/chat/completions", json.dumps(chat(stream=True)), headers)
        second = connection.getresponse()
        assert second.getheader("Transfer-Encoding") == "chunked"
        assert sse_data(second.read().decode())[-1] == "[DONE]"
        connection.request("POST", "/kimi/chat/completions", json.dumps(chat()), headers)
        third = connection.getresponse()
        assert third.status == 429
        third.read()
        connection.request("POST", "/kimi/chat/completions", json.dumps(chat(text="4")), headers)
        assert json.loads(connection.getresponse().read())["choices"][0]["message"]["content"] == (
            "Echo: 4"
        )
        assert connection.sock is sock
    finally:
        connection.close()
    assert server.connections == 1
    assert server.request_count == 4


def test_concurrent_requests_are_all_answered(server: FakeKimiServer) -> None:
    def ask(number: int) -> str:
        response = post(server, chat(text=f"question {number}"))
        content: str = response.json()["choices"][0]["message"]["content"]
        return content

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=200) as pool:
        answers = list(pool.map(ask, range(200)))
    assert answers == [f"Echo: question {number}" for number in range(200)]
    assert server.request_count == 200
    assert time.monotonic() - started < 10


def test_latency_applies_to_every_reply(server: FakeKimiServer) -> None:
    server.latency = 0.2
    started = time.monotonic()
    assert post(server, chat()).status_code == 200
    assert post(server, chat(), headers={}).status_code == 401
    assert time.monotonic() - started >= 0.4


def test_client_leaving_mid_stream_is_counted(server: FakeKimiServer) -> None:
    # Finishing a stream is not a disconnect.
    stream(server, chat())
    assert server.disconnects == 0
    server.queue(Reply.large(20_000, chunk_size=10, chunk_delay=0.005))
    data = json.dumps(chat(stream=True)).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /kimi/chat/completions HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {KEY}\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        received = b""
        while b"data: " not in received:
            received += sock.recv(4096)
    assert server.wait_for_disconnects(1, timeout=5)
    assert server.disconnects == 1


def test_requests_are_recorded(server: FakeKimiServer) -> None:
    payload = chat(text="record me")
    post(server, payload, headers={**AUTH, "X-Custom": "yes"})
    post(server, payload, headers={})
    first, rejected = server.requests
    assert first.method == "POST"
    assert first.path == "/kimi/chat/completions"
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.headers["x-custom"] == "yes"
    assert first.body == payload
    assert json.loads(first.raw) == payload
    assert "authorization" not in rejected.headers
    assert server.request_count == 2
    server.queue(Reply())
    server.clear()
    assert (server.request_count, server.requests, server.pending_replies) == (0, [], 0)


def test_responder_answers_when_queue_is_empty(server: FakeKimiServer) -> None:
    def respond(body: dict[str, Any]) -> Reply | None:
        last = body["messages"][-1]["content"]
        if last == "boom":
            raise RuntimeError("responder bug")
        return Reply(content=f"{len(body['messages'])} messages") if last == "count" else None

    server.set_responder(respond)
    server.queue(Reply(content="queued first"))
    assert post(server, chat(text="count")).json()["choices"][0]["message"]["content"] == (
        "queued first"
    )
    assert post(server, chat(text="count")).json()["choices"][0]["message"]["content"] == (
        "1 messages"
    )
    assert post(server, chat(text="other")).json()["choices"][0]["message"]["content"] == (
        "Echo: other"
    )
    response = post(server, chat(text="boom"))
    assert response.status_code == 500
    assert "responder bug" in response.json()["error"]["message"]


def test_chunked_request_body_is_read(server: FakeKimiServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    body = iter([json.dumps(chat(text="in pieces")).encode()])
    try:
        connection.request("POST", "/kimi/chat/completions", body, AUTH, encode_chunked=True)
        answer = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    assert answer["choices"][0]["message"]["content"] == "Echo: in pieces"


def test_lifecycle() -> None:
    server = FakeKimiServer()
    with pytest.raises(RuntimeError):
        _ = server.base_url
    assert server.start() is server.start()
    assert server.base_url == f"http://127.0.0.1:{server.port}/kimi"
    # An idle keep-alive connection must not hold stop() up.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request("POST", "/kimi/chat/completions", json.dumps(chat()), AUTH)
        assert connection.getresponse().read()
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1
        server.stop()
    finally:
        connection.close()
    with pytest.raises(requests.ConnectionError):
        post(server, chat())
    with FakeKimiServer(path_prefix="/v1") as moonshot_like:
        assert moonshot_like.base_url.endswith("/v1")
        assert post(moonshot_like, chat()).status_code == 200


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    "host, url_host",
    [
        ("localhost", "localhost"),
        pytest.param(
            "::1",
            "[::1]",
            marks=pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here"),
        ),
    ],
)
def test_host_option(host: str, url_host: str) -> None:
    with FakeKimiServer(host=host) as named:
        assert named.base_url == f"http://{url_host}:{named.port}/kimi"
        assert post(named, chat()).status_code == 200


@pytest.mark.parametrize(
    "fields",
    [{"fault": "explode"}, {"usage_style": "openai"}, {"chunk_size": 0}, {"status": 42}],
)
def test_reply_rejects_bad_settings(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Reply(**fields)


# -- pytest plugin ---------------------------------------------------------------------------


def test_plugin_imports_cheaply() -> None:
    """pytest loads the plugin in every run of every project that installs the package.

    A fresh interpreter (this one has imported everything): after pytest itself,
    loading the plugin imports neither the server, nor http.server, nor the model.
    """
    code = textwrap.dedent(
        """
        import sys
        import pytest
        before = set(sys.modules)
        import langchain_kimi.testing.pytest_plugin
        added = sorted(set(sys.modules) - before)
        assert "langchain_kimi.testing.pytest_plugin" in added, added
        heavy = [
            m for m in added
            if m == "http.server"
            or m.startswith(("langchain_kimi.testing._", "langchain_core", "pydantic"))
            or m == "langchain_kimi.chat_models"
        ]
        assert not heavy, heavy
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=_subprocess_env(), timeout=60)


def _subprocess_env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def test_plugin_fixtures(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A project's own tests get the fixtures by loading the plugin (run in-process)."""
    pytester.makepyfile(
        test_uses_fixtures="""
        import requests
        from langchain_kimi.testing import Reply

        def test_server(kimi_server):
            kimi_server.queue(Reply(content="from fixture"))
            response = requests.post(
                kimi_server.base_url + "/chat/completions",
                headers={"Authorization": "Bearer " + kimi_server.api_key},
                json={"model": "kimi-k2.5", "messages": [{"role": "user", "content": "x"}]},
            )
            assert response.json()["choices"][0]["message"]["content"] == "from fixture"

        def test_model_factory(kimi_server, kimi_chat_model):
            model = kimi_chat_model(model="kimi-k2.5", max_retries=1)
            assert model.base_url == kimi_server.base_url
            assert model.max_retries == 1
            assert kimi_chat_model().max_retries == 0
        """
    )
    # No entry-point plugins: the plugin is loaded once, explicitly, whether or
    # not the package is installed (and pytest-socket stays out of the inner run).
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_inprocess(
        "-p", "langchain_kimi.testing.pytest_plugin", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)


# -- the models it serves, and the Moonshot flavour ---------------------------------------

_TOOL = {"type": "function", "function": {"name": "weather"}}


@pytest.mark.parametrize(
    "name", ["kimi-k9", "moonshotai/kimi-k2.5", "Kimi-K2.5", "kimi-k2.5-20260115", "gpt-4o"]
)
def test_a_model_it_does_not_serve_is_not_found(server: FakeKimiServer, name: str) -> None:
    response = post(server, chat(name))
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": f"Not found the model {name} or Permission denied",
            "type": "resource_not_found_error",
        }
    }


@pytest.mark.parametrize(
    "name",
    [
        "kimi-k2.5",
        "kimi-k2.6",
        "kimi-k2.7-code",
        "kimi-k2.7-code-highspeed",
        "kimi-k3",
        "kimi-k2.8-preview",
        "kimi-k2-thinking",
        "kimi-k2-thinking-turbo",
        "kimi-k2-instruct-0905",
        "kimi-k2-0905-preview",
        "kimi-k2-turbo-preview",
        "kimi-k2-0711-preview",
    ],
)
def test_every_catalogue_model_is_served(server: FakeKimiServer, name: str) -> None:
    assert post(server, chat(name)).status_code == 200


@pytest.mark.parametrize(
    ("model", "extra", "status"),
    [
        ("kimi-k2.7-code", {"temperature": 0.2}, 400),  # fixed sampling, always thinking
        ("kimi-k2.7-code", {"temperature": 1.0, "top_p": 0.95}, 200),
        ("kimi-k2.7-code-highspeed", {"temperature": 0.2}, 200),  # not on the fixed list
        ("kimi-k2.6", {"thinking": {"type": "disabled"}, "temperature": 0.6}, 200),
        ("kimi-k3", {"temperature": 0.2}, 200),  # disputed: not enforced
        ("kimi-k3", {"tool_choice": "required", "tools": [_TOOL]}, 200),
        (
            "kimi-k3",
            {
                "tool_choice": {"type": "function", "function": {"name": "weather"}},
                "tools": [_TOOL],
            },
            400,
        ),
        ("kimi-k2.6", {"tool_choice": "required", "tools": [_TOOL]}, 400),
        # kimi-k2.6, kimi-k2.7-code and kimi-k2-thinking refuse a forced choice in every mode.
        (
            "kimi-k2.6",
            {"tool_choice": "required", "tools": [_TOOL], "thinking": {"type": "disabled"}},
            400,
        ),
        (
            "kimi-k2.6",
            {
                "tool_choice": {"type": "function", "function": {"name": "weather"}},
                "tools": [_TOOL],
                "thinking": {"type": "disabled"},
            },
            400,
        ),
        ("kimi-k2.6", {"tool_choice": "auto", "tools": [_TOOL]}, 200),
        ("kimi-k2.7-code", {"tool_choice": "required", "tools": [_TOOL]}, 400),
        ("kimi-k2-thinking-turbo", {"tool_choice": "none", "tools": [_TOOL]}, 200),
        # kimi-k2.5 takes one with thinking off; kimi-k3 "required" while thinking.
        (
            "kimi-k2.5",
            {
                "tool_choice": {"type": "function", "function": {"name": "weather"}},
                "tools": [_TOOL],
                "thinking": {"type": "disabled"},
            },
            200,
        ),
    ],
)
def test_per_model_rules(
    server: FakeKimiServer, model: str, extra: dict[str, Any], status: int
) -> None:
    response = post(server, chat(model, **extra))
    assert response.status_code == status, response.text


SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "Movie", "schema": {"type": "object"}, "strict": True},
}


def test_json_schema_is_accepted_only_when_playing_moonshot(server: FakeKimiServer) -> None:
    refused = post(server, chat(response_format=SCHEMA_FORMAT))
    assert refused.status_code == 400 and "json_schema" in refused.text
    with FakeKimiServer(api_key=KEY, flavor="moonshot") as moonshot:
        assert moonshot.base_url.endswith("/v1")
        assert post(moonshot, chat(response_format=SCHEMA_FORMAT)).status_code == 200
        for broken in (
            {"type": "json_schema"},
            {"type": "json_schema", "json_schema": {"schema": {}}},
            {"type": "json_schema", "json_schema": {"name": "M", "schema": "{}"}},
            {"type": "json_schema", "json_schema": {"name": "M", "schema": {}, "strict": "y"}},
        ):
            response = post(moonshot, chat(response_format=broken))
            assert response.status_code == 400 and "json_schema" in response.text


def test_moonshot_flavour_answers_401_with_moonshots_body() -> None:
    with FakeKimiServer(api_key=KEY, flavor="moonshot") as moonshot:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            response = post(moonshot, chat(), headers=headers)
            assert response.status_code == 401
            assert response.json() == {
                "error": {
                    "message": "Incorrect API key provided",
                    "type": "incorrect_api_key_error",
                }
            }
    with pytest.raises(ValueError, match="flavor"):
        FakeKimiServer(flavor="openai")  # type: ignore[arg-type]
