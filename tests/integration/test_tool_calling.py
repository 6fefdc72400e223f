"""Tool calling over real sockets against FakeKimiServer, sync and async, invoke and stream.

What comes back (ids verbatim, arguments parsed, unparsable ones kept as
``invalid_tool_calls``, streamed calls whole or in fragments, parallel calls,
``output_version="v1"`` blocks) and what goes out (tool results, invalid calls,
reasoning from either place, ``tool_choice`` and ``$web_search`` limits).
"""

from __future__ import annotations

import functools
import json
import operator
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.runnables import Runnable
from langchain_core.tools import tool

from langchain_kimi import ChatKimi
from langchain_kimi._payload import REASONING_PLACEHOLDER
from langchain_kimi.testing import FakeKimiServer, Reply, ToolCall

MakeModel = Callable[..., ChatKimi]
MODES = ["invoke", "ainvoke", "stream", "astream"]
WEB_SEARCH = {"type": "builtin_function", "function": {"name": "$web_search"}}


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"{city}: sunny"


@tool
def get_time(zone: str) -> str:
    """Current time in an IANA time zone."""
    return "12:00"


REASONING = "Two independent questions: call both tools at once."
PREFACE = "Checking both."
# The two id styles Kimi uses; both must come back untouched.
PARALLEL_CALLS = (
    ToolCall("get_weather", {"city": "Paris"}, id="functions.get_weather:0"),
    ToolCall("get_time", {"zone": "Europe/Paris"}, id="get_time:1"),
)
EXPECTED_CALLS = [
    {"name": "get_weather", "args": {"city": "Paris"}, "id": "functions.get_weather:0"},
    {"name": "get_time", "args": {"zone": "Europe/Paris"}, "id": "get_time:1"},
]


@pytest.fixture
async def make_model(kimi_chat_model: MakeModel) -> AsyncIterator[MakeModel]:
    """``kimi_chat_model``, with every model's connections closed after the test."""
    made: list[ChatKimi] = []

    def make(**kwargs: Any) -> ChatKimi:
        made.append(kimi_chat_model(**kwargs))
        return made[-1]

    yield make
    for model in made:
        await model.aclose()


def parallel_reply(**fields: Any) -> Reply:
    # Fixed id and created: the same reply sent twice gives the same message.
    settings: dict[str, Any] = {
        "reasoning": REASONING,
        "content": PREFACE,
        "tool_calls": PARALLEL_CALLS,
        "id": "chatcmpl-tools",
        "created": 1_700_000_000,
    }
    return Reply(**{**settings, **fields})


async def call(
    runnable: Runnable[LanguageModelInput, Any], mode: str, messages: LanguageModelInput
) -> tuple[AIMessage | AIMessageChunk, list[AIMessageChunk]]:
    """The message (streams added up) and the streamed chunks, in any of the four modes."""
    if mode == "invoke":
        return runnable.invoke(messages), []
    if mode == "ainvoke":
        return await runnable.ainvoke(messages), []
    if mode == "stream":
        chunks = list(runnable.stream(messages))
    else:
        chunks = [chunk async for chunk in runnable.astream(messages)]
    return functools.reduce(operator.add, chunks), chunks


def calls_of(message: AIMessage) -> list[dict[str, Any]]:
    return [{"name": c["name"], "args": c["args"], "id": c["id"]} for c in message.tool_calls]


# --- what comes back ------------------------------------------------------------------


@pytest.mark.parametrize("fragment", [True, False], ids=["fragmented", "whole"])
@pytest.mark.parametrize("mode", MODES)
async def test_parallel_tool_calls_whole_or_fragmented(
    kimi_server: FakeKimiServer, make_model: MakeModel, mode: str, fragment: bool
) -> None:
    kimi_server.queue(parallel_reply(fragment_tool_calls=fragment))
    model = make_model(model="kimi-k2.5").bind_tools([get_weather, get_time])

    message, chunks = await call(model, mode, "Weather and time in Paris?")

    assert calls_of(message) == EXPECTED_CALLS  # ids verbatim, arguments as dicts
    assert message.invalid_tool_calls == []
    assert message.content == PREFACE
    assert message.additional_kwargs["reasoning_content"] == REASONING
    assert message.response_metadata["finish_reason"] == "tool_calls"
    if not chunks:
        return
    pieces: dict[int | None, list[Any]] = defaultdict(list)
    for chunk in chunks:
        for piece in chunk.tool_call_chunks:
            pieces[piece["index"]].append(piece)
    assert set(pieces) == {0, 1}
    for index, expected in enumerate(EXPECTED_CALLS):
        first, *rest = pieces[index]
        # The first piece names the call; the rest only carry argument text.
        assert (first["id"], first["name"]) == (expected["id"], expected["name"])
        assert all(piece["id"] is None and piece["name"] is None for piece in rest)
        arguments = "".join(piece["args"] or "" for piece in pieces[index])
        assert json.loads(arguments) == expected["args"]
        if fragment:
            assert first["args"] == "" and len(rest) > 1
        else:
            assert rest == []


@pytest.mark.parametrize("mode", MODES)
async def test_unparsable_arguments_become_invalid_tool_calls(
    kimi_server: FakeKimiServer, make_model: MakeModel, mode: str
) -> None:
    kimi_server.queue(
        Reply(
            tool_calls=[
                ToolCall("get_weather", {"city": "Oslo"}),
                ToolCall("get_weather", '{"city": Oslo}', id="functions.get_weather:1"),
                ToolCall("get_time", '["Europe/Oslo"]', id="functions.get_time:2"),
            ]
        )
    )
    model = make_model(model="kimi-k2-thinking").bind_tools([get_weather, get_time])

    message, _ = await call(model, mode, "Weather in Oslo?")  # never raises

    assert calls_of(message) == [
        {"name": "get_weather", "args": {"city": "Oslo"}, "id": "functions.get_weather:0"}
    ]
    bad = [(c["name"], c["args"], c["id"]) for c in message.invalid_tool_calls]
    assert bad == [
        ("get_weather", '{"city": Oslo}', "functions.get_weather:1"),
        ("get_time", '["Europe/Oslo"]', "functions.get_time:2"),
    ]
    if mode.endswith("invoke"):
        errors = [c["error"] for c in message.invalid_tool_calls]
        assert errors[0] is not None and errors[0].startswith("invalid JSON")
        assert errors[1] == "arguments are not a JSON object"


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_stream_added_up_equals_invoke(
    kimi_server: FakeKimiServer, make_model: MakeModel, asynchronous: bool
) -> None:
    broken = ToolCall("get_time", "{zone: Paris}", id="get_time:2")
    reply = parallel_reply(tool_calls=(*PARALLEL_CALLS, broken))
    kimi_server.queue(reply, reply)
    model = make_model(model="kimi-k2.5").bind_tools([get_weather, get_time])

    invoked, _ = await call(model, "ainvoke" if asynchronous else "invoke", "Paris?")
    streamed, _ = await call(model, "astream" if asynchronous else "stream", "Paris?")

    assert streamed.content == invoked.content == PREFACE
    assert (
        streamed.additional_kwargs == invoked.additional_kwargs == {"reasoning_content": REASONING}
    )
    assert streamed.tool_calls == invoked.tool_calls
    # LangChain's stream parser leaves the error text out; the call itself matches.
    assert [(c["name"], c["args"], c["id"]) for c in streamed.invalid_tool_calls] == [
        (c["name"], c["args"], c["id"]) for c in invoked.invalid_tool_calls
    ]
    assert streamed.usage_metadata == invoked.usage_metadata
    assert without_error(streamed.content_blocks) == without_error(invoked.content_blocks)
    for key in ("finish_reason", "model_name", "id", "model_provider"):
        assert streamed.response_metadata[key] == invoked.response_metadata[key]


def without_error(blocks: list[Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in block.items() if k != "error"} for block in blocks]


def block_types(blocks: Any) -> list[str]:
    return [block["type"] for block in blocks]


def without_index(blocks: list[Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in block.items() if k != "index"} for block in blocks]


@pytest.mark.parametrize("mode", MODES)
async def test_output_version_v1_blocks_in_order(
    kimi_server: FakeKimiServer, make_model: MakeModel, mode: str
) -> None:
    kimi_server.queue(parallel_reply(), parallel_reply())
    tools = [get_weather, get_time]
    v1 = make_model(model="kimi-k2.5", output_version="v1").bind_tools(tools)
    v0 = make_model(model="kimi-k2.5").bind_tools(tools)

    message, chunks = await call(v1, mode, "Weather and time in Paris?")

    expected = [
        {"type": "reasoning", "reasoning": REASONING},
        {"type": "text", "text": PREFACE},
        *({"type": "tool_call", **c} for c in EXPECTED_CALLS),
    ]
    assert isinstance(message.content, list)
    assert without_index(message.content) == expected
    assert without_index(message.content_blocks) == expected
    assert calls_of(message) == EXPECTED_CALLS
    if chunks:
        # Every chunk is standard blocks too, and kinds arrive in Kimi's order.
        allowed = {"reasoning", "text", "tool_call_chunk"}
        seen: list[str] = []
        for chunk in chunks:
            assert isinstance(chunk.content, list)
            for kind in block_types(chunk.content):
                assert kind in allowed
                if not seen or seen[-1] != kind:
                    seen.append(kind)
        assert seen == ["reasoning", "text", "tool_call_chunk"]
    # The default output version keeps a string but derives the same blocks.
    plain, _ = await call(v0, mode, "Weather and time in Paris?")
    assert isinstance(plain.content, str)
    assert without_index(plain.content_blocks) == expected


# --- what goes back -------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_tool_results_and_invalid_calls_go_back_in_a_form_kimi_accepts(
    kimi_server: FakeKimiServer, make_model: MakeModel, mode: str
) -> None:
    kimi_server.queue(
        Reply(
            reasoning="Weather in two cities.",
            tool_calls=[
                ToolCall("get_weather", {"city": "Oslo"}),
                ToolCall("get_weather", '{"city": Rome', id="functions.get_weather:1"),
            ],
        ),
        Reply(content="Oslo is sunny; Rome failed."),
    )
    model = make_model(model="kimi-k2.5").bind_tools([get_weather])
    history: list[BaseMessage] = [HumanMessage("Weather in Oslo and Rome?")]
    turn, _ = await call(model, mode, history)
    # Streams parse truncated JSON leniently; invoke keeps it invalid. Both go back.
    failed = (
        turn.invalid_tool_calls[0]["id"] if turn.invalid_tool_calls else turn.tool_calls[1]["id"]
    )
    history += [
        turn,
        ToolMessage(
            [{"type": "text", "text": "Oslo:"}, {"type": "text", "text": "sunny"}],
            tool_call_id="functions.get_weather:0",
        ),
        ToolMessage("could not read the arguments", tool_call_id=failed, status="error"),
    ]

    answer, _ = await call(model, mode, history)

    assert answer.content == "Oslo is sunny; Rome failed."
    sent = kimi_server.requests[1].body["messages"]
    assistant = sent[1]
    assert assistant["reasoning_content"] == "Weather in two cities."
    assert [c["id"] for c in assistant["tool_calls"]] == [
        "functions.get_weather:0",
        "functions.get_weather:1",
    ]
    for wire_call in assistant["tool_calls"]:
        assert isinstance(json.loads(wire_call["function"]["arguments"]), dict)
    assert sent[2] == {
        "role": "tool",
        "tool_call_id": "functions.get_weather:0",
        "content": "Oslo:\nsunny",
    }
    assert sent[3]["content"] == "Error: could not read the arguments"


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_reasoning_goes_back_from_kwargs_from_v1_blocks_or_as_placeholder(
    kimi_server: FakeKimiServer, make_model: MakeModel, asynchronous: bool
) -> None:
    kimi_server.queue(
        Reply(reasoning="Look it up.", tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]),
    )
    v1 = make_model(model="kimi-k2-thinking", output_version="v1").bind_tools([get_weather])
    mode = "ainvoke" if asynchronous else "invoke"
    turn, _ = await call(v1, mode, "Weather in Oslo?")
    assert isinstance(turn.content, list)
    # Only the reasoning block is left: nothing in additional_kwargs.
    from_blocks = turn.model_copy(update={"additional_kwargs": {}})
    # A turn written by hand (few-shot, another model): no reasoning anywhere.
    handmade = AIMessage(
        "", tool_calls=[{"name": "get_weather", "args": {"city": "Rome"}, "id": "call_rome"}]
    )
    history: list[BaseMessage] = [
        HumanMessage("Weather in Rome?"),
        handmade,
        ToolMessage("sunny", tool_call_id="call_rome"),
        HumanMessage("And Oslo?"),
        from_blocks,
        ToolMessage("snow", tool_call_id="functions.get_weather:0"),
    ]

    await call(v1, mode, history)

    assert kimi_server.request_count == 2  # accepted: the rule holds for both turns
    sent = [m for m in kimi_server.requests[1].body["messages"] if m["role"] == "assistant"]
    assert [m["reasoning_content"] for m in sent] == [REASONING_PLACEHOLDER, "Look it up."]


# --- tool_choice and the built-in web search ------------------------------------------


@pytest.mark.parametrize("model_name", ["kimi-k2.5", "kimi-k2-thinking", "kimi-k2.6", "kimi-k3"])
async def test_web_search_on_a_thinking_model_fails_before_any_request(
    kimi_server: FakeKimiServer, make_model: MakeModel, model_name: str
) -> None:
    # A forced tool_choice is adapted per model: tests/integration/test_forced_tool_choice.py.
    model = make_model(model=model_name)
    with pytest.raises(ValueError, match="web_search"):
        model.bind_tools([WEB_SEARCH])
    for mode in MODES:
        with pytest.raises(ValueError, match="web_search"):
            await call(model.bind(tools=[WEB_SEARCH]), mode, "Latest news?")
    assert kimi_server.request_count == 0


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_forced_tool_choice_reaches_a_model_that_does_not_think(
    kimi_server: FakeKimiServer, make_model: MakeModel, asynchronous: bool
) -> None:
    kimi_server.set_responder(
        lambda body: Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})])
    )
    mode = "ainvoke" if asynchronous else "invoke"
    instruct = make_model(model="kimi-k2-instruct-0905")
    no_thinking = make_model(model="kimi-k2.5", thinking=False)  # nothing to adapt: no warning

    await call(instruct.bind_tools([get_weather, get_time], tool_choice="required"), mode, "Oslo?")
    await call(no_thinking.bind_tools([get_weather], tool_choice="get_weather"), mode, "Oslo?")

    first, second = (request.body for request in kimi_server.requests)
    assert first["tool_choice"] == "required"
    assert second["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert second["thinking"] == {"type": "disabled"}


@pytest.mark.parametrize("mode", MODES)
async def test_web_search_builtin_round_trip(
    kimi_server: FakeKimiServer, make_model: MakeModel, mode: str
) -> None:
    search_args = {"search_result": {"search_id": "s-42"}, "usage": {"total_tokens": 1234}}
    kimi_server.queue(
        Reply(tool_calls=[ToolCall("$web_search", search_args, id="$web_search:0")]),
        Reply(content="Kimi K2.5 was released in January 2026."),
    )
    model = make_model(model="kimi-k2.5", thinking=False).bind_tools([WEB_SEARCH])
    history: list[BaseMessage] = [HumanMessage("When was Kimi K2.5 released?")]

    turn, _ = await call(model, mode, history)
    [search] = turn.tool_calls
    assert (search["name"], search["id"], search["args"]) == (
        "$web_search",
        "$web_search:0",
        search_args,
    )
    # Kimi runs the search itself: the client hands the arguments back unchanged.
    history += [
        turn,
        ToolMessage(json.dumps(search["args"]), tool_call_id=search["id"], name="$web_search"),
    ]
    answer, _ = await call(model, mode, history)

    assert answer.content == "Kimi K2.5 was released in January 2026."
    first, second = (request.body for request in kimi_server.requests)
    assert first["tools"] == [WEB_SEARCH]
    assert first["thinking"] == second["thinking"] == {"type": "disabled"}
    assistant, result = second["messages"][1], second["messages"][2]
    assert assistant["tool_calls"][0]["id"] == "$web_search:0"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == search_args
    assert "reasoning_content" not in assistant  # not thinking: nothing to replay
    assert result["role"] == "tool" and result["tool_call_id"] == "$web_search:0"
    assert json.loads(result["content"]) == search_args
