"""ChatKimi over real sockets against FakeKimiServer: the four calls, usage, errors."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)

from langchain_kimi import (
    ChatKimi,
    KimiAPIError,
    KimiAuthenticationError,
    KimiBadRequestError,
    KimiPermissionError,
    KimiRateLimitError,
    KimiServerError,
)
from langchain_kimi.testing import FakeKimiServer, Reply

from .conftest import TOKEN

TRACE = "2efa9340-b21b-4e26-9e14-4aac95f343ab"


def make(server: FakeKimiServer, **kwargs: Any) -> ChatKimi:
    settings: dict[str, Any] = {"base_url": server.base_url, "api_key": TOKEN, "max_retries": 0}
    settings.update(kwargs)
    return ChatKimi(**settings)


def join(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


# --- sync and async, invoke and stream ---------------------------------------------


def test_invoke_keeps_reasoning_usage_and_metadata(server: FakeKimiServer) -> None:
    server.queue(Reply(content="Blue light scatters more.", reasoning="Rayleigh scattering."))
    message = make(server).invoke("Why is the sky blue?")
    assert isinstance(message, AIMessage)
    assert message.content == "Blue light scatters more."
    assert message.additional_kwargs["reasoning_content"] == "Rayleigh scattering."
    assert message.usage_metadata is not None and message.usage_metadata["total_tokens"] > 0
    assert message.usage_metadata["output_token_details"]["reasoning"] > 0
    assert message.response_metadata["model_name"] == "kimi-k2.5"
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.response_metadata["model_provider"] == "kimi"
    (request,) = server.requests
    assert request.path == "/kimi/chat/completions"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.body == {
        "model": "kimi-k2.5",
        "messages": [{"role": "user", "content": "Why is the sky blue?"}],
    }


def test_stream_delivers_pieces_then_usage_on_the_last_chunk(server: FakeKimiServer) -> None:
    server.queue(Reply(content="Hello there, friend.", reasoning="Greet back.", chunk_size=3))
    chunks = list(make(server).stream("hi"))
    assert len(chunks) > 6  # really streamed, not one blob
    assert chunks[-1].chunk_position == "last"
    message = join(chunks)
    assert message.content == "Hello there, friend."
    assert message.additional_kwargs["reasoning_content"] == "Greet back."
    assert message.usage_metadata is not None and message.usage_metadata["input_tokens"] > 0
    assert message.response_metadata["finish_reason"] == "stop"
    body = server.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("usage_style", ["ace", "moonshot", "inline"])
def test_stream_usage_in_every_place_it_is_sent(server: FakeKimiServer, usage_style: str) -> None:
    usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18, "cached_tokens": 5}
    server.queue(
        Reply(
            content="ok then",
            usage=usage,
            usage_style=usage_style,
            repeat_finish=True,
            repeat_role=True,
            spaced_json=True,
            comments=True,
        )
    )  # type: ignore[arg-type]
    message = join(list(make(server).stream("hi")))
    assert message.usage_metadata == {
        "input_tokens": 11,
        "output_tokens": 7,
        "total_tokens": 18,
        "input_token_details": {"cache_read": 5},
    }
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.content == "ok then"


def test_batch_answers_each_input(server: FakeKimiServer) -> None:
    questions = [f"question {i}" for i in range(6)]
    answers = make(server).batch(questions, config={"max_concurrency": 3})
    assert [a.content for a in answers] == [f"Echo: {q}" for q in questions]


def test_streaming_field_streams_under_invoke_and_feeds_callbacks(server: FakeKimiServer) -> None:
    tokens: list[str] = []

    class Collect(BaseCallbackHandler):
        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            tokens.append(token)

    server.queue(Reply(content="abcdefghij", reasoning="", chunk_size=2))
    message = make(server, streaming=True, model="kimi-k2-instruct-0905").invoke(
        "x", config={"callbacks": [Collect()]}
    )
    assert message.content == "abcdefghij"
    assert server.requests[0].body["stream"] is True
    assert "".join(tokens) == "abcdefghij" and len([t for t in tokens if t]) == 5


async def test_ainvoke_astream_abatch(server: FakeKimiServer) -> None:
    model = make(server)
    server.queue(Reply(content="async answer", reasoning="async thought"))
    message = await model.ainvoke("a")
    assert message.content == "async answer"
    assert message.additional_kwargs["reasoning_content"] == "async thought"
    server.queue(Reply(content="streamed async", chunk_size=2))
    chunks = [chunk async for chunk in model.astream("b")]
    assert len(chunks) > 4
    streamed = join(chunks)
    assert streamed.content == "streamed async"
    assert streamed.usage_metadata is not None
    answers = await model.abatch(["x", "y", "z"])
    assert [a.content for a in answers] == ["Echo: x", "Echo: y", "Echo: z"]
    await model.aclose()


def test_multi_turn_with_system_prompt_replays_history(server: FakeKimiServer) -> None:
    model = make(server)
    history: list[BaseMessage] = [SystemMessage("Answer briefly."), HumanMessage("Name a colour.")]
    server.queue(Reply(content="Blue.", reasoning="Pick one."))
    history.append(model.invoke(history))
    history.append(HumanMessage("Another?"))
    server.queue(Reply(content="Green."))
    assert model.invoke(history).content == "Green."
    sent = server.requests[1].body["messages"]
    assert sent[2] == {"role": "assistant", "content": "Blue.", "reasoning_content": "Pick one."}
    assert sent[3] == {"role": "user", "content": "Another?"}


def test_the_seed_example_is_accepted(server: FakeKimiServer) -> None:
    # The seed's example: kimi-k2.5, max_tokens=1024, temperature=0.7, a Chinese
    # question. The simulator, like Moonshot, refuses temperature 0.7 on k2.5.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = make(server, model="kimi-k2.5", max_tokens=1024, temperature=0.7)
        message = model.invoke([HumanMessage("你好，请介绍一下你自己")])
    assert message.content == "Echo: 你好，请介绍一下你自己"
    assert server.requests[0].body == {
        "model": "kimi-k2.5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "你好，请介绍一下你自己"}],
    }
    assert any("temperature" in str(w.message) and "1.0" in str(w.message) for w in caught)


def test_the_simulator_would_refuse_the_fixed_temperature(server: FakeKimiServer) -> None:
    # Proof that the test above can fail: the same request with the temperature kept.
    model = make(server, model="kimi-k2.5", model_kwargs={})
    bypass = model._encode([HumanMessage("hi")], None, False, {})
    body = json.loads(bypass)
    body["temperature"] = 0.7
    import requests

    answer = requests.post(
        f"{server.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert answer.status_code == 400 and "temperature" in answer.text


def test_thinking_switch_and_reasoning_effort_reach_the_body(server: FakeKimiServer) -> None:
    make(server, thinking=False).invoke("x")
    make(server, model="kimi-k3", reasoning_effort="max").invoke("y")
    assert server.requests[0].body["thinking"] == {"type": "disabled"}
    assert server.requests[1].body["reasoning_effort"] == "max"


# --- errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "error_type", "code"),
    [
        (
            Reply.error(400, "bad_request", "The request is malformed.", trace_id=TRACE),
            KimiBadRequestError,
            "bad_request",
        ),
        (
            Reply.error(
                401, "invalid_token", "The specified token is invalid or wrong.", trace_id=TRACE
            ),
            KimiAuthenticationError,
            "invalid_token",
        ),
        (
            Reply.error(403, "used_up", "Your balance is used up.", trace_id=TRACE),
            KimiPermissionError,
            "used_up",
        ),
    ],
)
@pytest.mark.parametrize("call", ["invoke", "stream"])
def test_client_errors_are_typed_and_not_retried(
    server: FakeKimiServer, fast_backoff: None, reply: Reply, error_type: type, code: str, call: str
) -> None:
    server.queue(reply, Reply(content="must not be reached"))
    model = make(server, max_retries=3)
    with pytest.raises(error_type) as info:
        if call == "invoke":
            model.invoke("x")
        else:
            list(model.stream("x"))
    err = info.value
    assert isinstance(err, KimiAPIError)
    assert err.code == code and err.trace_id == TRACE and TRACE in str(err)
    assert server.request_count == 1  # never retried
    if code == "used_up":
        assert "balance" in str(err)


def test_wrong_token_gets_the_services_401(server: FakeKimiServer) -> None:
    with pytest.raises(KimiAuthenticationError) as info:
        make(server, api_key="wrong").invoke("x")
    assert info.value.code == "invalid_token"
    assert info.value.trace_id


async def test_rate_limit_raised_when_retries_run_out(server: FakeKimiServer) -> None:
    limited = Reply.error(
        429,
        "too_many_requests",
        "You have exceeded the rate limit.",
        trace_id=TRACE,
        headers={"Retry-After": "0.05"},
    )
    server.queue(limited, limited, limited)
    async with make(server, max_retries=2) as model:
        with pytest.raises(KimiRateLimitError) as info:
            await model.ainvoke("x")
    assert info.value.retry_after == pytest.approx(0.05)
    assert info.value.trace_id == TRACE
    assert server.request_count == 3  # max_retries + 1 attempts


def test_502_html_page_is_a_readable_server_error(
    server: FakeKimiServer, fast_backoff: None
) -> None:
    server.queue(Reply.html(502), Reply.html(502))
    with pytest.raises(KimiServerError) as info:
        list(make(server, max_retries=1).stream("x"))
    assert info.value.status_code == 502 and info.value.trace_id is None
    assert "<html" not in str(info.value).lower()[:20]
    assert server.request_count == 2
