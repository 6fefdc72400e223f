"""Token budgets in agents: LangChain's summarization middleware counting with ChatKimi.

``SummarizationMiddleware(token_counter=model.get_num_tokens_from_messages)``
decides when to summarize and how much history to keep by ChatKimi's offline
estimate. These tests run it inside ``create_agent`` on a thinking model against
FakeKimiServer, sync and async, with a history that holds a tool loop (replayed
reasoning, tool calls, tool results), and check that the middleware acted on
exactly the numbers ChatKimi gives: it summarizes at the threshold and not one
token below it, and keeps the longest tail that fits the budget.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import SummarizationMiddleware
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from langchain_kimi import ChatKimi
from langchain_kimi.testing import FakeKimiServer, Reply

SUMMARY = "The user planned a trip and compared the weather in Paris, Oslo and Rome."
ANSWER = "Pack for 22 C in Rome."
KEEP_TOKENS = 120


def history() -> list[BaseMessage]:
    """A finished tool loop, then more conversation: what a long-running agent holds."""
    return [
        HumanMessage("I am planning a trip to Europe next week. " * 3),
        AIMessage(
            content="",
            additional_kwargs={"reasoning_content": "The user wants the weather; ask for Rome."},
            tool_calls=[{"name": "get_weather", "args": {"city": "Rome"}, "id": "get_weather:0"}],
        ),
        ToolMessage("22 C and sunny", tool_call_id="get_weather:0"),
        AIMessage("Rome will be 22 C and sunny. " * 4),
        HumanMessage("And what about Paris and Oslo, which one is colder? " * 3),
        AIMessage("Oslo is colder than Paris at this time of year. " * 4),
        HumanMessage("Thanks. Which city should I pack the lightest clothes for?"),
    ]


def responder(body: Mapping[str, Any]) -> Reply:
    """The summary call carries the middleware's prompt; every other call is the agent's."""
    last = body["messages"][-1]["content"]
    if isinstance(last, str) and "Context Extraction Assistant" in last:
        return Reply(content=SUMMARY)
    return Reply(content=ANSWER)


@pytest.fixture
async def model(
    kimi_server: FakeKimiServer, kimi_chat_model: Callable[..., ChatKimi]
) -> AsyncIterator[ChatKimi]:
    kimi_server.set_responder(responder)
    made = kimi_chat_model(model="kimi-k2.6")
    yield made
    await made.aclose()


def agent_with_budget(model: ChatKimi, trigger_tokens: int) -> Any:
    summarization = SummarizationMiddleware(
        model=model,
        trigger=("tokens", trigger_tokens),
        keep=("tokens", KEEP_TOKENS),
        token_counter=model.get_num_tokens_from_messages,
    )
    return create_agent(model, tools=[], middleware=[summarization])


async def run(agent: Any, mode: str, messages: list[BaseMessage]) -> list[BaseMessage]:
    inputs = {"messages": messages}
    result = agent.invoke(inputs) if mode == "invoke" else await agent.ainvoke(inputs)
    return list(result["messages"])


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_summarizes_at_the_estimated_threshold_and_keeps_what_fits(
    model: ChatKimi, kimi_server: FakeKimiServer, mode: str
) -> None:
    conversation = history()
    total = model.get_num_tokens_from_messages(conversation)
    assert total > KEEP_TOKENS
    # The longest tail within the budget, by ChatKimi's own count.
    cut = next(
        index
        for index in range(len(conversation))
        if model.get_num_tokens_from_messages(conversation[index:]) <= KEEP_TOKENS
    )
    assert 0 < cut < len(conversation) - 1
    assert not isinstance(conversation[cut], ToolMessage)  # no pair split to adjust for

    final = await run(agent_with_budget(model, trigger_tokens=total), mode, conversation)

    summary_call, agent_call = (request.body for request in kimi_server.requests)
    # What was summarized is the history before the cut, and only that.
    prompt = summary_call["messages"][-1]["content"]
    assert "planning a trip to Europe" in prompt
    assert "lightest clothes" not in prompt
    # The agent then saw the summary and the kept tail, as sent by ChatKimi.
    sent = agent_call["messages"]
    assert SUMMARY in sent[0]["content"]
    kept = conversation[cut:]
    assert len(sent) == 1 + len(kept)
    assert [m["role"] for m in sent[1:]] == [
        {"human": "user", "ai": "assistant", "tool": "tool"}[m.type] for m in kept
    ]
    assert isinstance(final[0], HumanMessage) and SUMMARY in final[0].text
    assert [m.text for m in final[1:-1]] == [m.text for m in kept]
    assert final[-1].text == ANSWER


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_one_token_under_the_threshold_nothing_is_summarized(
    model: ChatKimi, kimi_server: FakeKimiServer, mode: str
) -> None:
    conversation = history()
    total = model.get_num_tokens_from_messages(conversation)

    final = await run(agent_with_budget(model, trigger_tokens=total + 1), mode, conversation)

    (agent_call,) = (request.body for request in kimi_server.requests)
    assert len(agent_call["messages"]) == len(conversation)
    assert len(final) == len(conversation) + 1 and final[-1].text == ANSWER
