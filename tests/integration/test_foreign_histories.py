"""Conversations begun on another provider continue on Kimi (issue 17).

The foreign turns are made by the providers' own LangChain classes
(``ChatAnthropic``, ``ChatOpenAI`` on the Responses API) answering from a
loopback fake of their API (``_foreign_providers.py``), for every
``output_version`` and for ``invoke`` and ``stream``. Those histories then go
through ``ChatKimi`` to FakeKimiServer, which enforces the service's rules (the
reasoning replay rule, tool results naming a call, content parts), sync and
async; the tests check what the simulator received.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import requests
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
    convert_to_messages,
)
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import tool
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_kimi import ChatKimi
from langchain_kimi._payload import REASONING_PLACEHOLDER
from langchain_kimi.testing import FakeKimiServer, Reply, ToolCall
from tests.capabilities import KimiCapabilities
from tests.integration._foreign_providers import (
    ANTHROPIC_CALL_ID,
    ANTHROPIC_REASONING,
    ANTHROPIC_TOOL_TURN,
    ANTHROPIC_WEB_SEARCH_TURN,
    RESPONSES_CALL_ID,
    RESPONSES_REASONING,
    RESPONSES_TOOL_TURN,
    RESPONSES_WEB_SEARCH_TURN,
    ForeignAPI,
    anthropic_turn,
    get_weather,
    responses_turn,
)

pytest.importorskip("langchain_anthropic")

QUESTION = "What's the weather in Paris?"
TOOL_RESULT = "18 C and sunny in Paris"
# (provider, output_version, streamed): every shape the two classes give.
FOREIGN = [
    ("anthropic", "v0", False),
    ("anthropic", "v0", True),
    ("anthropic", "v1", False),
    ("anthropic", "v1", True),
    ("openai", "v0", False),
    ("openai", "v0", True),
    ("openai", "responses/v1", False),
    ("openai", "responses/v1", True),
    ("openai", "v1", False),
    ("openai", "v1", True),
]
FOREIGN_IDS = [f"{p}-{v}-{'stream' if s else 'invoke'}" for p, v, s in FOREIGN]
MODES = ["invoke", "ainvoke", "stream", "astream"]

# What Kimi must receive for each provider's tool turn, whatever the shape.
EXPECTED_TOOL_TURN = {
    "anthropic": {
        "role": "assistant",
        "content": "I'll look up the weather in Paris.",
        "tool_calls": [
            {
                "id": ANTHROPIC_CALL_ID,
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
        # The thinking block's text; the redacted block is dropped.
        "reasoning_content": ANTHROPIC_REASONING,
    },
    "openai": {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [
            {
                "id": RESPONSES_CALL_ID,
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
        # The reasoning item's summary parts.
        "reasoning_content": RESPONSES_REASONING,
    },
}
EXPECTED_WEB_SEARCH_TEXT = {
    "anthropic": (
        "I'll search for that.\n\n"
        '[web_search call: {"query": "claude shannon birth date"}]\n'
        "[web_search result:\n"
        "- Claude Shannon - Wikipedia <https://en.wikipedia.org/wiki/Claude_Shannon>"
        " (April 30, 2025)]\n\n"
        "Claude Shannon was born on April 30, 1916, in Petoskey, Michigan"
    ),
    "openai": (
        '[web_search call: {"type": "search", "query": "positive news today"}]\n\n'
        "A community garden opened in Lyon today."
    ),
}
CALL_IDS = {"anthropic": ANTHROPIC_CALL_ID, "openai": RESPONSES_CALL_ID}

Turns = dict[tuple[str, str, str, bool], AIMessage]


@pytest.fixture(scope="module")
def foreign_turns() -> Iterator[Turns]:
    """Every foreign turn, made once: (provider, scenario, output_version, streamed) -> AIMessage."""
    answers = {
        ("anthropic", "tool"): ANTHROPIC_TOOL_TURN,
        ("anthropic", "web"): ANTHROPIC_WEB_SEARCH_TURN,
        ("openai", "tool"): RESPONSES_TOOL_TURN,
        ("openai", "web"): RESPONSES_WEB_SEARCH_TURN,
    }
    turns: Turns = {}
    with ForeignAPI() as api:
        for provider, version, streamed in FOREIGN:
            make = anthropic_turn if provider == "anthropic" else responses_turn
            for scenario in ("tool", "web"):
                answer = answers[provider, scenario]
                turn = make(api, answer, output_version=version, streaming=streamed)
                turns[provider, scenario, version, streamed] = turn
        # The classes really talked to the fake API, with their own request shapes.
        assert len(api.requests) == 2 * len(FOREIGN)
        assert any("thinking" in body for body in api.requests)  # Anthropic's extended thinking
        assert any("input" in body for body in api.requests)  # the Responses API's request
    yield turns


def test_the_foreign_turns_have_their_providers_shapes(foreign_turns: Turns) -> None:
    """The histories really are in the foreign shapes Kimi used to refuse."""
    types = {
        key: {block.get("type") for block in turn.content if isinstance(block, dict)}
        for key, turn in foreign_turns.items()
        if isinstance(turn.content, list)
    }
    assert {"thinking", "redacted_thinking", "tool_use"} <= types["anthropic", "tool", "v0", False]
    assert {"reasoning", "non_standard", "tool_call"} <= types["anthropic", "tool", "v1", True]
    assert {"reasoning", "function_call"} <= types["openai", "tool", "responses/v1", False]
    assert {"server_tool_call", "server_tool_result"} <= types["anthropic", "web", "v1", False]
    assert {"web_search_call"} <= types["openai", "web", "responses/v1", True]
    # "v0" keeps the Responses reasoning item out of the content.
    v0 = foreign_turns["openai", "tool", "v0", False]
    assert v0.additional_kwargs["reasoning"]["type"] == "reasoning"
    for key, turn in foreign_turns.items():
        if key[1] == "tool":
            assert [call["id"] for call in turn.tool_calls] == [CALL_IDS[key[0]]], key


async def call(model: Runnable[Any, Any], messages: list[BaseMessage], mode: str) -> AIMessage:
    """One call in ``mode``; the whole answer."""
    if mode == "invoke":
        message = model.invoke(messages)
    elif mode == "ainvoke":
        message = await model.ainvoke(messages)
    else:
        total: AIMessageChunk | None = None
        if mode == "stream":
            for chunk in model.stream(messages):
                total = chunk if total is None else total + chunk
        else:
            async for chunk in model.astream(messages):
                total = chunk if total is None else total + chunk
        message = total
    assert isinstance(message, AIMessage)
    return message


@pytest.fixture
async def kimi(server: FakeKimiServer) -> AsyncIterator[Callable[..., ChatKimi]]:
    """``make(model="kimi-k2.6", **kwargs)``: a ChatKimi on the simulator, closed after the test."""
    made: list[ChatKimi] = []

    def make(model: str = "kimi-k2.6", **kwargs: Any) -> ChatKimi:
        made.append(
            ChatKimi(
                model=model,
                base_url=server.base_url,
                api_key=server.api_key,
                max_retries=0,
                **kwargs,
            )
        )
        return made[-1]

    yield make
    for model in made:
        await model.aclose()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("provider", "version", "streamed"), FOREIGN, ids=FOREIGN_IDS)
async def test_a_foreign_tool_turn_goes_to_kimi_with_its_reasoning(
    foreign_turns: Turns,
    server: FakeKimiServer,
    kimi: Callable[..., ChatKimi],
    provider: str,
    version: str,
    streamed: bool,
    mode: str,
) -> None:
    foreign = foreign_turns[provider, "tool", version, streamed]
    history = [
        HumanMessage(QUESTION),
        foreign,
        ToolMessage(TOOL_RESULT, tool_call_id=CALL_IDS[provider]),
    ]
    server.queue(Reply(content="It is 18 C and sunny in Paris.", reasoning="The tool answered."))
    model = kimi().bind_tools([get_weather])
    answer = await call(model, history, mode)
    assert answer.content == "It is 18 C and sunny in Paris."
    (request,) = server.requests
    assert request.body["messages"] == [
        {"role": "user", "content": QUESTION},
        EXPECTED_TOOL_TURN[provider],
        {"role": "tool", "tool_call_id": CALL_IDS[provider], "content": TOOL_RESULT},
    ]


@pytest.mark.parametrize("mode", ["invoke", "astream"])
@pytest.mark.parametrize(("provider", "version", "streamed"), FOREIGN, ids=FOREIGN_IDS)
async def test_server_tool_turns_go_to_kimi_as_text(
    foreign_turns: Turns,
    server: FakeKimiServer,
    kimi: Callable[..., ChatKimi],
    provider: str,
    version: str,
    streamed: bool,
    mode: str,
) -> None:
    """Web searches the other service ran itself: Kimi reads what was searched and found."""
    foreign = foreign_turns[provider, "web", version, streamed]
    history = [HumanMessage("Search the web, please."), foreign, HumanMessage("Thanks! More?")]
    await call(kimi(model="kimi-k3"), history, mode)
    (request,) = server.requests
    sent = request.body["messages"][1]
    # kimi-k3 wants reasoning on every assistant turn: the placeholder, as there was none.
    assert sent == {
        "role": "assistant",
        "content": EXPECTED_WEB_SEARCH_TEXT[provider],
        "reasoning_content": REASONING_PLACEHOLDER,
    }


@pytest.mark.parametrize("model_name", ["kimi-k2.6", "kimi-k3", "kimi-k2-thinking"])
@pytest.mark.parametrize(
    ("provider", "version", "streamed"),
    [("anthropic", "v1", True), ("openai", "v0", False), ("openai", "responses/v1", True)],
    ids=["anthropic-v1-stream", "openai-v0-invoke", "openai-responses-stream"],
)
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_a_thinking_tool_loop_continues_from_a_foreign_history(
    foreign_turns: Turns,
    server: FakeKimiServer,
    kimi: Callable[..., ChatKimi],
    model_name: str,
    provider: str,
    version: str,
    streamed: bool,
    asynchronous: bool,
) -> None:
    """Two more tool-loop turns on a thinking Kimi model after the other provider's: no 400."""
    history: list[BaseMessage] = [
        HumanMessage("Search the web, please."),
        foreign_turns[provider, "web", version, streamed],  # no reasoning at all
        HumanMessage("Now the weather in Paris and Lyon."),
        foreign_turns[provider, "tool", version, streamed],
        ToolMessage(TOOL_RESULT, tool_call_id=CALL_IDS[provider]),
    ]
    server.queue(
        Reply(
            reasoning="Paris is known; Lyon still needs the tool.",
            tool_calls=[ToolCall("get_weather", {"city": "Lyon"}, id="get_weather:0")],
        ),
        Reply(content="Paris: 18 C and sunny. Lyon: 20 C.", reasoning="Both results are in."),
    )
    model = kimi(model=model_name).bind_tools([get_weather])
    mode = "ainvoke" if asynchronous else "invoke"
    kimi_turn = await call(model, history, mode)
    assert kimi_turn.tool_calls[0]["id"] == "get_weather:0"
    history += [kimi_turn, ToolMessage("20 C in Lyon", tool_call_id="get_weather:0")]
    final = await call(model, history, mode)
    assert final.content == "Paris: 18 C and sunny. Lyon: 20 C."

    first, second = (request.body["messages"] for request in server.requests)
    assert first[3] == EXPECTED_TOOL_TURN[provider]
    assert second[:5] == first
    assert second[5]["reasoning_content"] == "Paris is known; Lyon still needs the tool."
    assert second[6] == {"role": "tool", "tool_call_id": "get_weather:0", "content": "20 C in Lyon"}


def test_the_simulator_refuses_that_history_without_the_replayed_reasoning(
    foreign_turns: Turns, server: FakeKimiServer, kimi: Callable[..., ChatKimi]
) -> None:
    """The check above can fail: the same body without the foreign reasoning is a 400."""
    history = [
        HumanMessage(QUESTION),
        foreign_turns["anthropic", "tool", "v1", True],
        ToolMessage(TOOL_RESULT, tool_call_id=ANTHROPIC_CALL_ID),
    ]
    kimi().bind_tools([get_weather]).invoke(history)
    body = server.requests[0].body
    del body["messages"][1]["reasoning_content"]
    refused = requests.post(
        f"{server.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=10,
    )
    assert refused.status_code == 400
    assert "reasoning_content is missing in assistant tool call message at index 1" in refused.text


# --- LangChain's standard test, and histories written in Anthropic's own format ----------------


class _StandardSuite(KimiCapabilities, ChatModelIntegrationTests):  # type: ignore[misc]
    """LangChain's integration suite, for calling one of its tests here (not collected)."""

    __test__ = False


@tool
def my_adder_tool(a: int, b: int) -> int:
    """Tool that adds two integers.

    Takes two integers, a and b, and returns their sum.
    """
    return a + b


@pytest.mark.parametrize("model_name", ["kimi-k2.6", "kimi-k3", "kimi-k2-instruct-0905"])
def test_langchain_standard_tool_message_histories_list_content(
    server: FakeKimiServer, kimi: Callable[..., ChatKimi], model_name: str
) -> None:
    """langchain-tests' test_tool_message_histories_list_content, as the suite runs it."""
    _StandardSuite().test_tool_message_histories_list_content(kimi(model=model_name), my_adder_tool)
    (request,) = server.requests
    assistant = request.body["messages"][1]
    assert assistant["content"] == "some text"
    assert assistant["tool_calls"][0]["id"] == "abc123"
    assert request.body["messages"][2]["tool_call_id"] == "abc123"


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def anthropic_native_thread() -> list[BaseMessage]:
    """A thread saved in the Anthropic Messages API's own format, loaded by LangChain."""
    return convert_to_messages(
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "Here is my photo and the notes.",
                        "cache_control": {"type": "ephemeral"},
                    },
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/b.jpg"},
                    },
                    {
                        "type": "document",
                        "title": "Notes",
                        "source": {
                            "type": "text",
                            "media_type": "text/plain",
                            "data": "Rain at 5.",
                        },
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me check the forecast."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01",
                        "content": [
                            {"type": "text", "text": "Sunny, 18 C"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": PNG,
                                },
                            },
                        ],
                    },
                    {"type": "text", "text": "What should I wear?"},
                ],
            },
        ]
    )


@pytest.mark.parametrize("mode", MODES)
async def test_a_thread_in_anthropics_own_format(
    server: FakeKimiServer, kimi: Callable[..., ChatKimi], mode: str
) -> None:
    """Images by source, a text document, a tool_use only in the content, a tool_result."""
    thread = anthropic_native_thread()
    assert isinstance(thread[1], AIMessage) and thread[1].tool_calls == []  # only in the content
    await call(kimi(), thread, mode)
    (request,) = server.requests
    data_url = f"data:image/png;base64,{PNG}"
    assert request.body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Here is my photo and the notes."},
                {"type": "image_url", "image_url": {"url": data_url}},
                {"type": "image_url", "image_url": {"url": "https://example.com/b.jpg"}},
                {"type": "text", "text": "Notes\n\nRain at 5."},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check the forecast.",
            "tool_calls": [
                {
                    "id": "toolu_01",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
            "reasoning_content": REASONING_PLACEHOLDER,
        },
        {"role": "tool", "tool_call_id": "toolu_01", "content": "Sunny, 18 C"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Returned by tool call toolu_01:"},
                {"type": "image_url", "image_url": {"url": data_url}},
                {"type": "text", "text": "What should I wear?"},
            ],
        },
    ]


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_a_tool_message_with_an_image(
    server: FakeKimiServer, kimi: Callable[..., ChatKimi], mode: str
) -> None:
    """Kimi's tool messages are text: the image a tool returned follows in a user message."""
    history = [
        HumanMessage("Show me Paris."),
        AIMessage("", tool_calls=[{"name": "snapshot", "args": {}, "id": "snapshot:0"}]),
        ToolMessage(
            [{"type": "text", "text": "A photo:"}, {"type": "image", "base64": PNG}],
            tool_call_id="snapshot:0",
        ),
    ]
    await call(kimi(), history, mode)
    (request,) = server.requests
    assert request.body["messages"][2:] == [
        {"role": "tool", "tool_call_id": "snapshot:0", "content": "A photo:"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Returned by tool call snapshot:0:"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        },
    ]
    # A text-only model refuses it before sending, naming the block.
    with pytest.raises(
        ValueError, match=r"messages\[2\]\.content\[1\]: kimi-k2-thinking takes text only"
    ):
        await call(kimi(model="kimi-k2-thinking"), history, mode)
    assert server.request_count == 1


PDF = "JVBERi0xLjcKJeLjz9MKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoK"


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (
            HumanMessage([{"type": "audio", "base64": "UklGRg==", "mime_type": "audio/wav"}]),
            r"messages\[0\]\.content\[0\]: Kimi takes no audio .*transcribe",
        ),
        (
            HumanMessage([{"type": "file", "base64": PDF, "mime_type": "application/pdf"}]),
            r"messages\[0\]\.content\[0\]: a application/pdf file cannot go into a Kimi message.*extract its text",
        ),
        (
            HumanMessage(
                [
                    {"type": "text", "text": "Summarise:"},
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                    },
                ]
            ),
            r"messages\[0\]\.content\[1\]: a application/pdf file cannot go",
        ),
        (
            HumanMessage([{"type": "image", "source": {"type": "file", "file_id": "file_011C"}}]),
            r"messages\[0\]\.content\[0\]: an image given by another service's file id",
        ),
        (
            AIMessage([{"type": "hologram", "frames": 3}]),
            r"messages\[0\]\.content\[0\]: assistant content of type 'hologram' has no Kimi "
            r"equivalent: remove the block",
        ),
    ],
    ids=["audio", "pdf-file", "anthropic-pdf", "file-id", "unknown-block"],
)
@pytest.mark.parametrize("mode", MODES)
async def test_what_kimi_cannot_take_is_refused_before_sending(
    server: FakeKimiServer,
    kimi: Callable[..., ChatKimi],
    message: BaseMessage,
    match: str,
    mode: str,
) -> None:
    with pytest.raises(ValueError, match=match):
        await call(kimi(), [message, HumanMessage("go on")], mode)
    assert server.request_count == 0


def test_with_fallbacks_moves_an_anthropic_conversation_to_kimi(
    foreign_turns: Turns, server: FakeKimiServer, kimi: Callable[..., ChatKimi]
) -> None:
    """The failing primary's history (Anthropic's shapes) reaches the Kimi fallback intact."""

    class Down(Exception):
        pass

    def primary(_: Any) -> Any:
        raise Down("anthropic is down")

    server.queue(Reply(content="Wear a light jacket."))
    chain = RunnableLambda(primary).with_fallbacks([kimi()], exceptions_to_handle=(Down,))
    history = [
        HumanMessage(QUESTION),
        foreign_turns["anthropic", "tool", "v0", True],
        ToolMessage(TOOL_RESULT, tool_call_id=ANTHROPIC_CALL_ID),
        HumanMessage("What should I wear?"),
    ]
    assert chain.invoke(history).content == "Wear a light jacket."
    assert server.requests[0].body["messages"][1] == EXPECTED_TOOL_TURN["anthropic"]
