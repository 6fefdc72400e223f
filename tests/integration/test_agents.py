"""Agents on thinking models survive their tool loops: the reasoning replay rule.

Kimi refuses (400) any request that thinks and carries an assistant tool-call
message without ``reasoning_content``. ``ChatOpenAI`` pointed at Kimi drops the
field, so every agent dies on its second model call. These tests run real agents
(``langchain.agents.create_agent`` and a LangGraph ``StateGraph`` with
``ToolNode``/``tools_condition``) on thinking models against FakeKimiServer,
which enforces the rule, through three tool turns and a final answer: sync and
async, invoke and stream. They then check, on the recorded requests, that each
turn's own reasoning went back, and that the simulator really would have
refused the request without it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from langchain_kimi import ChatKimi
from langchain_kimi._payload import REASONING_PLACEHOLDER
from langchain_kimi.testing import FakeKimiServer, Reply, ToolCall

SYSTEM_PROMPT = "You are a concise weather assistant."
QUESTION = "Is it warmer in Paris, Oslo or Rome? Answer in Fahrenheit."
FINAL_ANSWER = "Rome is warmest at 71.6 F (Paris 64.4 F, Oslo 50 F)."
FINAL_REASONING = "All three temperatures are known; Rome wins."
REPLAY_ERROR = "thinking is enabled but reasoning_content is missing in assistant tool call message"


@tool
def get_weather(city: str) -> str:
    """Current temperature in a city, in Celsius."""
    return {"Paris": "18 C", "Oslo": "10 C", "Rome": "22 C"}.get(city, "unknown city")


@tool
def celsius_to_fahrenheit(celsius: float) -> str:
    """Convert a temperature from Celsius to Fahrenheit."""
    return f"{celsius * 9 / 5 + 32:g} F"


TOOLS = [get_weather, celsius_to_fahrenheit]


@dataclass(frozen=True)
class Turn:
    """One scripted tool turn: the reasoning that led to it and the calls it made."""

    reasoning: str
    calls: tuple[ToolCall, ...]
    content: str | None = None
    # Kimi streams calls in fragments; some providers send them whole.
    fragment: bool = True


# Ids follow Kimi's conversation-wide counter (functions.<name>:<n>); turn 2
# calls two tools in parallel, turn 3 says something before calling.
TURNS = (
    Turn(
        "The user compares three cities; start with Paris.",
        (ToolCall("get_weather", {"city": "Paris"}, id="functions.get_weather:0"),),
    ),
    Turn(
        "Paris is 18 C. Oslo and Rome are independent: ask for both at once.",
        (
            ToolCall("get_weather", {"city": "Oslo"}, id="functions.get_weather:1"),
            ToolCall("get_weather", {"city": "Rome"}, id="functions.get_weather:2"),
        ),
        fragment=False,
    ),
    Turn(
        "Rome is warmest at 22 C; the user wants Fahrenheit.",
        (
            ToolCall(
                "celsius_to_fahrenheit", {"celsius": 22}, id="functions.celsius_to_fahrenheit:3"
            ),
        ),
        content="Converting Rome's temperature.",
    ),
)


@pytest.fixture
async def make_model(
    kimi_chat_model: Callable[..., ChatKimi],
) -> AsyncIterator[Callable[..., ChatKimi]]:
    """``kimi_chat_model``, with every model's connections closed after the test."""
    made: list[ChatKimi] = []

    def make(**kwargs: Any) -> ChatKimi:
        made.append(kimi_chat_model(**kwargs))
        return made[-1]

    yield make
    for model in made:
        await model.aclose()


def agent_responder(body: Mapping[str, Any]) -> Reply:
    """Answer by how far the conversation got: one turn per assistant message so far."""
    done = sum(1 for message in body["messages"] if message["role"] == "assistant")
    if done < len(TURNS):
        turn = TURNS[done]
        return Reply(
            reasoning=turn.reasoning,
            content=turn.content,
            tool_calls=turn.calls,
            fragment_tool_calls=turn.fragment,
        )
    return Reply(reasoning=FINAL_REASONING, content=FINAL_ANSWER)


# --- the two agents ----------------------------------------------------------------


def build_create_agent(model: ChatKimi) -> Runnable[Any, Any]:
    return create_agent(model, TOOLS, system_prompt=SYSTEM_PROMPT)


def build_langgraph_agent(model: ChatKimi) -> Runnable[Any, Any]:
    # The model node is a runnable sequence, so the same graph runs sync and async.
    call_model: Runnable[Any, Any] = (
        RunnableLambda(lambda state: [("system", SYSTEM_PROMPT), *state["messages"]])
        | model.bind_tools(TOOLS)
        | RunnableLambda(lambda message: {"messages": [message]})
    )
    graph = StateGraph(MessagesState)
    graph.add_node("agent", call_model)
    graph.add_node("tools", ToolNode(TOOLS))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


AGENT_BUILDERS: dict[str, Callable[[ChatKimi], Runnable[Any, Any]]] = {
    "create_agent": build_create_agent,
    "langgraph": build_langgraph_agent,
}


async def run_agent(agent: Runnable[Any, Any], mode: str) -> tuple[list[BaseMessage], int]:
    """Run to the end; return the final messages and how many chunks were streamed."""
    inputs = {"messages": [HumanMessage(QUESTION)]}
    if mode == "invoke":
        return agent.invoke(inputs)["messages"], 0
    if mode == "ainvoke":
        return (await agent.ainvoke(inputs))["messages"], 0
    # stream_mode "messages" makes LangGraph stream the model's tokens, so the
    # AI messages in the state are built by adding up streamed chunks.
    final: dict[str, Any] = {}
    streamed = 0

    def take(kind: str, payload: Any) -> None:
        nonlocal final, streamed
        if kind == "values":
            final = payload
        elif isinstance(payload[0], AIMessageChunk):
            streamed += 1

    stream_mode = ["values", "messages"]
    if mode == "stream":
        for kind, payload in agent.stream(inputs, stream_mode=stream_mode):
            take(kind, payload)
    else:
        async for kind, payload in agent.astream(inputs, stream_mode=stream_mode):
            take(kind, payload)
    return final["messages"], streamed


def assert_each_turn_replayed_its_reasoning(server: FakeKimiServer, streamed: bool) -> None:
    bodies = [request.body for request in server.requests]
    assert len(bodies) == len(TURNS) + 1, "three tool turns and one final answer"
    for number, body in enumerate(bodies):
        assert body.get("stream", False) is streamed
        assistants = [m for m in body["messages"] if m["role"] == "assistant"]
        assert len(assistants) == number
        for turn, sent in zip(TURNS[:number], assistants, strict=True):
            # The real reasoning of that very turn, not a placeholder, not another turn's.
            assert sent["reasoning_content"] == turn.reasoning
            assert [call["id"] for call in sent["tool_calls"]] == [c.id for c in turn.calls]
            assert [json.loads(call["function"]["arguments"]) for call in sent["tool_calls"]] == [
                dict(c.arguments) for c in turn.calls if not isinstance(c.arguments, str)
            ]
            if turn.content is not None:
                assert sent["content"] == turn.content
    # Every tool result went back, answering its call by the id Kimi gave it.
    last = bodies[-1]["messages"]
    results = {m["tool_call_id"]: m["content"] for m in last if m["role"] == "tool"}
    assert results == {
        "functions.get_weather:0": "18 C",
        "functions.get_weather:1": "10 C",
        "functions.get_weather:2": "22 C",
        "functions.celsius_to_fahrenheit:3": "71.6 F",
    }


CASES = [
    # (agent, model, mode): every agent meets every mode; the three thinking families rotate.
    ("create_agent", "kimi-k2.5", "invoke"),
    ("create_agent", "kimi-k2-thinking", "ainvoke"),
    ("create_agent", "kimi-k3", "stream"),
    ("create_agent", "kimi-k2.5", "astream"),
    ("langgraph", "kimi-k2-thinking", "invoke"),
    ("langgraph", "kimi-k3", "ainvoke"),
    ("langgraph", "kimi-k2.5", "stream"),
    ("langgraph", "kimi-k2-thinking", "astream"),
]


@pytest.mark.parametrize(("builder", "model_name", "mode"), CASES)
async def test_agent_completes_three_tool_turns_on_a_thinking_model(
    kimi_server: FakeKimiServer,
    make_model: Callable[..., ChatKimi],
    builder: str,
    model_name: str,
    mode: str,
) -> None:
    kimi_server.set_responder(agent_responder)
    model = make_model(model=model_name)
    agent = AGENT_BUILDERS[builder](model)

    messages, streamed_chunks = await run_agent(agent, mode)

    final = messages[-1]
    assert isinstance(final, AIMessage)
    assert final.content == FINAL_ANSWER
    assert final.additional_kwargs["reasoning_content"] == FINAL_REASONING
    made = [call["id"] for m in messages if isinstance(m, AIMessage) for call in m.tool_calls]
    assert made == [call.id for turn in TURNS for call in turn.calls]
    if mode in ("stream", "astream"):
        assert streamed_chunks > 10  # tokens really were streamed, not one blob per turn
    assert_each_turn_replayed_its_reasoning(kimi_server, streamed=mode.endswith("stream"))


def strip_reasoning(messages: list[BaseMessage]) -> list[BaseMessage]:
    """The history as another client or a checkpoint without reasoning would hold it."""
    stripped: list[BaseMessage] = []
    for message in messages:
        if isinstance(message, AIMessage):
            kwargs = {
                k: v for k, v in message.additional_kwargs.items() if k != "reasoning_content"
            }
            message = message.model_copy(update={"additional_kwargs": kwargs})
        stripped.append(message)
    return stripped


def test_history_without_reasoning_still_passes_and_the_field_is_what_saves_it(
    kimi_server: FakeKimiServer, make_model: Callable[..., ChatKimi]
) -> None:
    kimi_server.set_responder(agent_responder)
    model = make_model(model="kimi-k2.5")
    history = create_agent(model, TOOLS, system_prompt=SYSTEM_PROMPT).invoke(
        {"messages": [HumanMessage(QUESTION)]}
    )["messages"]
    # Drop the final answer and the reasoning: the model must take its turn again.
    stripped = strip_reasoning(history[:-1])
    assert not any(
        "reasoning_content" in m.additional_kwargs for m in stripped if isinstance(m, AIMessage)
    )
    kimi_server.clear()

    replayed = model.bind_tools(TOOLS).invoke([("system", SYSTEM_PROMPT), *stripped])

    assert replayed.content == FINAL_ANSWER  # accepted by the rule-enforcing server
    body = kimi_server.requests[0].body
    tool_turns = [m for m in body["messages"] if m["role"] == "assistant"]
    assert len(tool_turns) == len(TURNS)
    assert all(m["reasoning_content"] == REASONING_PLACEHOLDER for m in tool_turns)

    # The same body without the field, sent by hand: the 400 every ChatOpenAI agent gets.
    bare = copy.deepcopy(body)
    for message in bare["messages"]:
        message.pop("reasoning_content", None)
    first_tool_turn = next(i for i, m in enumerate(bare["messages"]) if m.get("tool_calls"))
    response = requests.post(
        f"{kimi_server.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {kimi_server.api_key}"},
        json=bare,
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == f"{REPLAY_ERROR} at index {first_tool_turn}"
    assert first_tool_turn == 2  # after the system prompt and the question


def test_chat_openai_on_the_same_server_hits_the_replay_error(
    kimi_server: FakeKimiServer,
) -> None:
    """The failure the issue reports, reproduced: the simulator is a fair referee."""
    langchain_openai = pytest.importorskip("langchain_openai")
    openai = pytest.importorskip("openai")
    kimi_server.set_responder(agent_responder)
    model = langchain_openai.ChatOpenAI(
        model="kimi-k2.5", base_url=kimi_server.base_url, api_key="test-key", max_retries=0
    )
    agent = create_agent(model, TOOLS, system_prompt=SYSTEM_PROMPT)
    with pytest.raises(openai.BadRequestError, match=f"{REPLAY_ERROR} at index 2"):
        agent.invoke({"messages": [HumanMessage(QUESTION)]})
    assert kimi_server.request_count == 2  # it dies on its second model call
