"""Tests written the way a user's project writes them.

Only the public API and the ``kimi_server`` / ``kimi_chat_model`` fixtures that
the installed package's pytest plugin provides: no imports from this test
suite, no private modules. If these break, users' test suites break.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

from langchain_kimi import ChatKimi, KimiAuthenticationError
from langchain_kimi.testing import FakeKimiServer, Reply


def make_chain(model: ChatKimi) -> Runnable[dict[str, Any], str]:
    """The user's code: a small translation chain."""
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Translate to {language}. Reply with the translation only."),
            ("human", "{text}"),
        ]
    )
    return prompt | model | StrOutputParser()


def test_chain_with_the_kimi_server_fixture(kimi_server: FakeKimiServer) -> None:
    kimi_server.queue(Reply(content="Bonjour le monde", reasoning="Straightforward French."))
    with ChatKimi(base_url=kimi_server.base_url, api_key=kimi_server.api_key) as model:
        answer = make_chain(model).invoke({"language": "French", "text": "Hello world"})

    assert answer == "Bonjour le monde"

    assert kimi_server.request_count == 1
    body = kimi_server.requests[0].body
    assert body["messages"] == [
        {"role": "system", "content": "Translate to French. Reply with the translation only."},
        {"role": "user", "content": "Hello world"},
    ]
    assert kimi_server.requests[0].headers["authorization"] == f"Bearer {kimi_server.api_key}"


def test_chain_streams_and_runs_async(kimi_server: FakeKimiServer) -> None:
    import asyncio

    kimi_server.queue(Reply(content="Hallo Welt", chunk_size=2), Reply(content="Ciao mondo"))
    model = ChatKimi(base_url=kimi_server.base_url, api_key=kimi_server.api_key)
    chain = make_chain(model)

    pieces = list(chain.stream({"language": "German", "text": "Hello world"}))
    assert len(pieces) > 1 and "".join(pieces) == "Hallo Welt"

    async def translate() -> str:
        async with model:  # closes the connections, async and sync, on the way out
            return await chain.ainvoke({"language": "Italian", "text": "Hello world"})

    assert asyncio.run(translate()) == "Ciao mondo"


def test_the_model_factory_fixture(
    kimi_server: FakeKimiServer, kimi_chat_model: Callable[..., ChatKimi]
) -> None:
    kimi_server.queue(Reply.error(401, "invalid_token", "bad token", trace_id="trace-7"))
    model = kimi_chat_model(model="kimi-k2-thinking")
    with model, pytest.raises(KimiAuthenticationError) as caught:
        make_chain(model).invoke({"language": "French", "text": "Hi"})
    assert caught.value.trace_id == "trace-7"
    assert kimi_server.request_count == 1  # the factory turns retries off


def test_default_echo_needs_no_script(kimi_chat_model: Callable[..., ChatKimi]) -> None:
    with kimi_chat_model() as model:
        answer = make_chain(model).invoke({"language": "French", "text": "cat"})
    assert answer == "Echo: cat"


def test_partial_mode_returns_the_continuation_only(kimi_server: FakeKimiServer) -> None:
    """Partial Mode over real sockets: partial true is sent; the prefix is not prepended."""
    kimi_server.queue(Reply(content=" Welcome, traveller.", reasoning=""))
    prefix = "Innkeeper:"
    with ChatKimi(base_url=kimi_server.base_url, api_key=kimi_server.api_key) as model:
        reply = model.invoke(
            [HumanMessage("Greet me."), AIMessage(prefix, additional_kwargs={"partial": True})]
        )

    last = kimi_server.requests[0].body["messages"][-1]
    assert last == {"role": "assistant", "content": "Innkeeper:", "partial": True}
    assert reply.content == " Welcome, traveller."  # the continuation, without the prefix
    assert prefix + reply.content == "Innkeeper: Welcome, traveller."


def test_partial_mode_streams_the_continuation(kimi_server: FakeKimiServer) -> None:
    kimi_server.queue(Reply(content=" and so on.", chunk_size=3))
    model = ChatKimi(base_url=kimi_server.base_url, api_key=kimi_server.api_key)
    messages = [
        HumanMessage("Finish it"),
        AIMessage("Et cetera", additional_kwargs={"partial": True}),
    ]
    text = "".join(chunk.text for chunk in model.stream(messages))
    assert text == " and so on."
    assert kimi_server.requests[0].body["messages"][-1]["partial"] is True


def test_partial_mode_only_on_the_last_message(kimi_server: FakeKimiServer) -> None:
    model = ChatKimi(base_url=kimi_server.base_url, api_key=kimi_server.api_key)
    messages = [
        HumanMessage("a"),
        AIMessage("b", additional_kwargs={"partial": True}),
        HumanMessage("c"),
    ]
    with pytest.raises(ValueError, match="only the last message can be partial"):
        model.invoke(messages)
    assert kimi_server.request_count == 0  # refused before the network
