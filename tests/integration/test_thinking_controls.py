"""Thinking controls over real sockets: Preserved Thinking, kimi-k3's missing ``thinking``
field, ``prompt_cache_key``.

Each test shows what goes on the wire (the simulator's recorded request), that a
refusal sends nothing (``server.request_count == 0``), sync and async, and that
the simulator, sent the refused body by hand, answers 400 too: the refusal is
the service's rule (Moonshot's thinking guide, August 2026), not the client's.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from langchain_core.messages import AIMessage, HumanMessage

from langchain_kimi import ChatKimi
from langchain_kimi._payload import REASONING_PLACEHOLDER
from langchain_kimi.testing import FakeKimiServer, Reply

from .conftest import TOKEN

KEEP_ALL = {"type": "enabled", "keep": "all"}


def make(server: FakeKimiServer, **kwargs: Any) -> ChatKimi:
    settings: dict[str, Any] = {"base_url": server.base_url, "api_key": TOKEN, "max_retries": 0}
    settings.update(kwargs)
    return ChatKimi(**settings)


def post(server: FakeKimiServer, model: str, **fields: Any) -> requests.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **fields}
    return requests.post(
        f"{server.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )


def history() -> list[Any]:
    return [
        HumanMessage("Pick a number."),
        AIMessage("7", additional_kwargs={"reasoning_content": "Seven feels random."}),
        HumanMessage("Another one."),
        AIMessage("3"),  # a turn without reasoning (hand-written, or another model's)
        HumanMessage("Why those?"),
    ]


# --- Preserved Thinking: what goes on the wire ------------------------------------------


async def test_kimi_k26_sends_keep_all_and_replays_every_turns_reasoning(
    server: FakeKimiServer,
) -> None:
    make(server, model="kimi-k2.6", preserve_thinking=True).invoke(history())
    await make(server, model="kimi-k2.6").ainvoke(history(), preserve_thinking=True)
    list(make(server, model="kimi-k2.6").stream(history(), preserve_thinking=True))
    assert server.request_count == 3
    for request in server.requests:
        assert request.body["thinking"] == KEEP_ALL
        assistants = [m for m in request.body["messages"] if m["role"] == "assistant"]
        # The reasoning paid for reaches the model; the turn without any keeps the field.
        assert [m["reasoning_content"] for m in assistants] == [
            "Seven feels random.",
            REASONING_PLACEHOLDER,
        ]


def test_without_preserved_thinking_kimi_k26_sends_no_keep_and_no_placeholder(
    server: FakeKimiServer,
) -> None:
    # The contrast that makes the test above mean something: the general rule
    # replays reasoning only on tool-call turns, and keeps what a message has.
    make(server, model="kimi-k2.6").invoke(history())
    make(server, model="kimi-k2.6", preserve_thinking=False).invoke(history())
    for request in server.requests:
        assert "thinking" not in request.body
        assistants = [m for m in request.body["messages"] if m["role"] == "assistant"]
        assert "reasoning_content" not in assistants[1]


@pytest.mark.parametrize("name", ["kimi-k2.7-code", "kimi-k2.7-code-highspeed", "kimi-k3"])
async def test_always_preserving_models_accept_true_and_send_nothing_more(
    server: FakeKimiServer, name: str
) -> None:
    make(server, model=name, preserve_thinking=True).invoke(history())
    await make(server, model=name).ainvoke(history(), preserve_thinking=True)
    make(server, model=name).invoke(history())
    first, second, plain = (request.body for request in server.requests)
    assert first == second == plain  # the option changes nothing on the wire
    assert "thinking" not in first
    assert all("reasoning_content" in m for m in first["messages"] if m["role"] == "assistant")


@pytest.mark.parametrize("name", ["kimi-k2.7-code", "kimi-k3"])
async def test_preserve_false_is_refused_where_it_cannot_be_turned_off(
    server: FakeKimiServer, name: str
) -> None:
    with pytest.raises(ValueError, match=f"{name} always preserves thinking"):
        make(server, model=name, preserve_thinking=False)
    model = make(server, model=name)
    with pytest.raises(ValueError, match="cannot turn it off"):
        model.invoke("hi", preserve_thinking=False)
    with pytest.raises(ValueError, match="cannot turn it off"):
        await model.ainvoke("hi", preserve_thinking=False)
    assert server.request_count == 0


@pytest.mark.parametrize("name", ["kimi-k2.5", "kimi-k2-thinking", "kimi-k2-instruct-0905"])
async def test_preserve_true_is_refused_on_models_without_it(
    server: FakeKimiServer, name: str
) -> None:
    names = re.escape("kimi-k2.6 (off by default), kimi-k2.7-code (always on)")
    with pytest.raises(ValueError, match=rf"{name} has no Preserved Thinking.*{names}"):
        make(server, model=name, preserve_thinking=True)
    model = make(server, model=name)
    with pytest.raises(ValueError, match="has no Preserved Thinking"):
        model.invoke("hi", preserve_thinking=True)
    with pytest.raises(ValueError, match="has no Preserved Thinking"):
        await model.ainvoke("hi", preserve_thinking=True)
    with pytest.raises(ValueError, match="has no Preserved Thinking"):
        list(model.stream("hi", preserve_thinking=True))
    assert server.request_count == 0


async def test_preserve_true_with_thinking_off_is_refused(server: FakeKimiServer) -> None:
    with pytest.raises(ValueError, match="preserve_thinking=True with thinking=False"):
        make(server, model="kimi-k2.6", preserve_thinking=True, thinking=False)
    model = make(server, model="kimi-k2.6", thinking=False)
    with pytest.raises(ValueError, match="preserve_thinking=True with thinking=False"):
        await model.ainvoke("hi", preserve_thinking=True)
    assert server.request_count == 0


def test_an_unknown_model_gets_preserved_thinking_as_asked() -> None:
    # The simulator serves only names it knows: this one answers 404, and the
    # request it recorded is what the client sent.
    with FakeKimiServer(api_key=TOKEN, enforce_rules=False) as server:
        make(server, model="kimi-k9", preserve_thinking=True).invoke("hi")
        make(server, model="kimi-k9", preserve_thinking=False).invoke("hi")
        assert [r.body["thinking"] for r in server.requests] == [
            KEEP_ALL,
            {"type": "enabled", "keep": None},
        ]


# --- the simulator refuses what the client must not send ------------------------------


@pytest.mark.parametrize(
    ("model", "thinking", "accepted"),
    [
        ("kimi-k2.6", KEEP_ALL, True),
        ("kimi-k2.6", {"type": "enabled", "keep": None}, True),
        ("kimi-k2.6", {"type": "enabled", "keep": "last"}, False),
        ("kimi-k2.7-code", {"type": "enabled"}, True),
        ("kimi-k2.7-code", {"type": "enabled", "keep": None}, True),
        ("kimi-k2.7-code", KEEP_ALL, True),
        ("kimi-k2.7-code", {"type": "enabled", "keep": "none"}, False),
        ("kimi-k2.7-code-highspeed", {"type": "enabled", "keep": 1}, False),
        ("kimi-k2.5", {"type": "enabled"}, True),
        ("kimi-k2.5", KEEP_ALL, False),
        ("kimi-k2.5", {"type": "enabled", "keep": None}, False),
        ("kimi-k3", {"type": "enabled"}, False),
        ("kimi-k3", {"type": "disabled"}, False),
        ("kimi-k3", None, False),
    ],
)
def test_the_simulator_enforces_thinking_keep_per_model(
    server: FakeKimiServer, model: str, thinking: Any, accepted: bool
) -> None:
    answer = post(server, model, thinking=thinking)
    if accepted:
        assert answer.status_code == 200, answer.text
        return
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "thinking" in error["message"] and model in error["message"]


def test_kimi_k3_without_a_thinking_field_thinks(server: FakeKimiServer) -> None:
    answer = post(server, "kimi-k3")
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["reasoning_content"]


# --- kimi-k3: no thinking parameter -------------------------------------------------------


async def test_kimi_k3_thinking_true_is_accepted_and_not_sent(server: FakeKimiServer) -> None:
    make(server, model="kimi-k3", thinking=True).invoke("hi")
    await make(server, model="kimi-k3").ainvoke("hi", thinking=True)
    list(make(server, model="kimi-k3", thinking=True).stream("hi"))
    assert server.request_count == 3
    assert all("thinking" not in request.body for request in server.requests)


async def test_kimi_k3_thinking_false_is_refused_pointing_to_low_effort(
    server: FakeKimiServer,
) -> None:
    with pytest.raises(ValueError, match=r'kimi-k3 takes no thinking parameter.*"low"'):
        make(server, model="kimi-k3", thinking=False)
    model = make(server, model="kimi-k3")
    with pytest.raises(ValueError, match='reasoning_effort="low"'):
        model.invoke("hi", thinking=False)
    with pytest.raises(ValueError, match='reasoning_effort="low"'):
        await model.ainvoke("hi", thinking=False)
    with pytest.raises(ValueError, match='reasoning_effort="low"'):
        model.bind(thinking=False).invoke("hi")
    assert server.request_count == 0
    # What to do instead works: the effort goes out, no thinking field.
    model.invoke("hi", reasoning_effort="low")
    assert server.requests[-1].body["reasoning_effort"] == "low"
    assert "thinking" not in server.requests[-1].body


# --- prompt_cache_key and cache hits ----------------------------------------------------


async def test_prompt_cache_key_is_sent_when_set_and_cache_hits_are_reported(
    server: FakeKimiServer,
) -> None:
    usage = {"prompt_tokens": 1200, "completion_tokens": 3, "total_tokens": 1203}
    server.queue(
        Reply(content="a", usage={**usage, "cached_tokens": 1024}),
        Reply(content="b", usage={**usage, "cached_tokens": 512}),
        Reply(content="c", usage=usage),
    )
    model = make(server, model="kimi-k2.6", prompt_cache_key="session-42")
    first = model.invoke("hi")
    second = await model.ainvoke("hi", prompt_cache_key="task-7")
    third = make(server, model="kimi-k2.6").invoke("hi")
    keys = [request.body.get("prompt_cache_key") for request in server.requests]
    assert keys == ["session-42", "task-7", None]
    assert "prompt_cache_key" not in server.requests[2].body  # unset is never sent
    # Moonshot reports hits as top-level usage.cached_tokens.
    assert first.usage_metadata is not None and second.usage_metadata is not None
    assert first.usage_metadata["input_token_details"] == {"cache_read": 1024}
    assert second.usage_metadata["input_token_details"] == {"cache_read": 512}
    assert third.usage_metadata is not None
    assert "input_token_details" not in third.usage_metadata


def test_a_cache_ttl_goes_only_through_extra_body(server: FakeKimiServer) -> None:
    # No field for the unconfirmed prompt_cache_options: a constructor keyword of
    # that name becomes a body field with a warning, like any unknown one.
    options = {"ttl": "1h"}
    make(server, model="kimi-k2.6", extra_body={"prompt_cache_options": options}).invoke("hi")
    assert server.requests[-1].body["prompt_cache_options"] == options
    assert "prompt_cache_options" not in ChatKimi.model_fields
