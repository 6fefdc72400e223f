"""A forced ``tool_choice`` on every model, over real sockets against FakeKimiServer.

The service's rules (KIMI_API.md, "Models" and "Thinking controls"), which the
simulator enforces with the service's 400:

| models | the service's rule | what ChatKimi does |
| --- | --- | --- |
| kimi-k3 | takes ``"required"`` while thinking (a named tool never) | sends it (a named tool: ``"required"``, only that tool offered) |
| kimi-k2.5 | takes a forced choice only with thinking off | turns thinking off for that request |
| kimi-k2.6, kimi-k2.7-code*, kimi-k2-thinking* | refuse it in every mode | emulates it |
| kimi-k2-instruct-0905, kimi-k2-*-preview | never think: take it | sends it |

Emulated: ``"auto"``, only the named tool offered, a system instruction, and an
answer without the call raises ``KimiToolChoiceError`` (a stream: after its chunks).
kimi-k2.8-preview, about which nothing is published, is emulated too.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool

from langchain_kimi import ChatKimi, KimiToolChoiceError, _tools
from langchain_kimi._payload import REASONING_PLACEHOLDER
from langchain_kimi.testing import FakeKimiServer, Reply, ToolCall
from langchain_kimi.testing._rules import is_thinking

MODES = ["invoke", "ainvoke", "stream", "astream"]
NAMED = {"type": "function", "function": {"name": "get_weather"}}
INSTRUCTION = "You must answer this request by calling"

# What goes on the wire for ("required", named): tool_choice, the tools offered, thinking.
BOTH = ["get_weather", "get_time"]
ONLY = ["get_weather"]
WIRE: dict[str, tuple[tuple[Any, list[str], Any], tuple[Any, list[str], Any]]] = {
    "kimi-k3": (("required", BOTH, None), ("required", ONLY, None)),
    "kimi-k2.5": (("required", BOTH, "disabled"), (NAMED, BOTH, "disabled")),
    "kimi-k2.6": (("auto", BOTH, None), ("auto", ONLY, None)),
    "kimi-k2.7-code": (("auto", BOTH, None), ("auto", ONLY, None)),
    "kimi-k2.7-code-highspeed": (("auto", BOTH, None), ("auto", ONLY, None)),
    "kimi-k2-thinking": (("auto", BOTH, None), ("auto", ONLY, None)),
    "kimi-k2-thinking-turbo": (("auto", BOTH, None), ("auto", ONLY, None)),
    "kimi-k2.8-preview": (("auto", BOTH, None), ("auto", ONLY, None)),
    "kimi-k2-instruct-0905": (("required", BOTH, None), (NAMED, BOTH, None)),
    "kimi-k2-0905-preview": (("required", BOTH, None), (NAMED, BOTH, None)),
    "kimi-k2-turbo-preview": (("required", BOTH, None), (NAMED, BOTH, None)),
    "kimi-k2-0711-preview": (("required", BOTH, None), (NAMED, BOTH, None)),
}
EMULATED = sorted(name for name, wire in WIRE.items() if wire[0][0] == "auto")
DECLINED = "I can answer that without a tool: it is sunny."


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"{city}: sunny"


@tool
def get_time(city: str) -> str:
    """Local time in a city."""
    return "12:00"


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tools, "_warned_forced", set())


@pytest.fixture
async def make_model(
    kimi_chat_model: Callable[..., ChatKimi],
) -> AsyncIterator[Callable[..., ChatKimi]]:
    made: list[ChatKimi] = []

    def make(**kwargs: Any) -> ChatKimi:
        made.append(kimi_chat_model(**kwargs))
        return made[-1]

    yield make
    for model in made:
        await model.aclose()


def obliging(body: dict[str, Any]) -> Reply:
    """A model that does what the request asks: calls the one tool offered, or the first."""
    reasoning = "The user wants the weather." if is_thinking(body) else None
    name = body["tools"][0]["function"]["name"]
    return Reply(reasoning=reasoning, tool_calls=[ToolCall(name, {"city": "Oslo"})])


def declining(body: dict[str, Any]) -> Reply:
    """A model that answers in text whatever it was told."""
    return Reply(reasoning="No tool needed." if is_thinking(body) else None, content=DECLINED)


async def call(runnable: Any, mode: str, prompt: Any = "Weather in Oslo?") -> tuple[Any, int]:
    """The answer (streams added up) and the number of chunks received before it ended."""
    if mode == "invoke":
        return runnable.invoke(prompt), 0
    if mode == "ainvoke":
        return await runnable.ainvoke(prompt), 0
    chunks: list[AIMessageChunk] = []
    if mode == "stream":
        for chunk in runnable.stream(prompt):
            chunks.append(chunk)
    else:
        async for chunk in runnable.astream(prompt):
            chunks.append(chunk)
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole = whole + chunk
    return whole, len(chunks)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model_name", sorted(WIRE))
async def test_a_forced_choice_reaches_every_model_the_way_it_takes_one(
    kimi_server: FakeKimiServer, make_model: Callable[..., ChatKimi], model_name: str, mode: str
) -> None:
    kimi_server.set_responder(obliging)
    model = make_model(model=model_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warning has its own test
        required = model.bind_tools([get_weather, get_time], tool_choice="any")
        named = model.bind_tools([get_weather, get_time], tool_choice="get_weather")
    for runnable, (choice, offered, thinking) in zip(
        (required, named), WIRE[model_name], strict=True
    ):
        answer, _ = await call(runnable, mode)
        assert [c["name"] for c in answer.tool_calls] == ["get_weather"]
        assert answer.tool_calls[0]["args"] == {"city": "Oslo"}
        body = kimi_server.requests[-1].body  # accepted: the simulator enforces the rules
        assert body["tool_choice"] == choice
        assert [tool["function"]["name"] for tool in body["tools"]] == offered
        assert (body.get("thinking") or {}).get("type") == thinking
        first = body["messages"][0]
        if choice == "auto":
            assert first["role"] == "system" and INSTRUCTION in first["content"]
            if offered == ONLY:
                assert "`get_weather`" in first["content"]
        else:
            assert first["role"] == "user"  # nothing added
    assert kimi_server.request_count == 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model_name", EMULATED)
@pytest.mark.parametrize("choice", ["required", "get_weather"])
async def test_an_emulated_choice_the_model_declines_raises(
    kimi_server: FakeKimiServer,
    make_model: Callable[..., ChatKimi],
    model_name: str,
    mode: str,
    choice: str,
) -> None:
    kimi_server.set_responder(declining)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bound = make_model(model=model_name).bind_tools([get_weather], tool_choice=choice)
    received: list[Any] = []

    async def consume() -> None:
        if mode == "invoke":
            received.append(bound.invoke("Weather in Oslo?"))
        elif mode == "ainvoke":
            received.append(await bound.ainvoke("Weather in Oslo?"))
        elif mode == "stream":
            for chunk in bound.stream("Weather in Oslo?"):
                received.append(chunk)
        else:
            async for chunk in bound.astream("Weather in Oslo?"):
                received.append(chunk)

    with pytest.raises(KimiToolChoiceError) as info:
        await consume()
    error = info.value
    assert error.model == model_name and error.content == DECLINED and error.called == ()
    assert error.tool_choice == choice
    assert f"{model_name} declined the forced tool_choice" in str(error)
    if mode.endswith("stream"):
        # The text was already streamed when the check could run: raised at the end.
        assert "".join(chunk.text for chunk in received) == DECLINED
    else:
        assert received == []  # never returned as if the choice had been honoured
    assert kimi_server.request_count == 1  # not retried


@pytest.mark.parametrize("model_name", ["kimi-k2.6", "kimi-k2.5"])
def test_the_warning_comes_once_per_model_at_the_users_line(
    kimi_server: FakeKimiServer, make_model: Callable[..., ChatKimi], model_name: str
) -> None:
    kimi_server.set_responder(obliging)
    model = make_model(model=model_name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        bound = model.bind_tools([get_weather], tool_choice="required")
        bound.invoke("Oslo?")
        model.bind_tools([get_weather], tool_choice="get_weather").invoke("Oslo?")
        make_model(model=model_name).bind_tools([get_weather], tool_choice="required")
    [warning] = caught
    assert warning.category is UserWarning
    assert (warning.filename, warning.lineno) == (__file__, line)
    expected = {
        "kimi-k2.6": "refuses a forced tool_choice: ChatKimi emulates it",
        "kimi-k2.5": "takes a forced tool_choice only with thinking off",
    }[model_name]
    assert f"{model_name} {expected}" in str(warning.message)


def test_forced_at_call_time_the_warning_points_at_the_call(
    kimi_server: FakeKimiServer, make_model: Callable[..., ChatKimi]
) -> None:
    # (An async call runs the model in a task of its own, whose frames do not reach
    # the caller's: there the warning names the outermost frame instead.)
    kimi_server.set_responder(obliging)
    bound = make_model(model="kimi-k2.7-code").bind_tools([get_weather])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        bound.invoke("Oslo?", tool_choice="required")
    [warning] = caught
    assert (warning.filename, warning.lineno) == (__file__, line)
    assert kimi_server.requests[-1].body["tool_choice"] == "auto"


@pytest.mark.parametrize("thinking", [None, True])
def test_kimi_k3_takes_a_named_tool_as_required(
    kimi_server: FakeKimiServer, make_model: Callable[..., ChatKimi], thinking: bool | None
) -> None:
    # kimi-k3 always thinks and takes no thinking parameter; "required" is sent as is.
    kimi_server.set_responder(obliging)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing emulated, nothing to say
        model = make_model(model="kimi-k3", thinking=thinking)
        model.bind_tools([get_weather, get_time], tool_choice="get_weather").invoke("Oslo?")
    body = kimi_server.requests[-1].body
    assert body["tool_choice"] == "required" and len(body["tools"]) == 1
    assert "thinking" not in body


@pytest.mark.parametrize("mode", MODES)
async def test_reasoning_replay_stays_correct_around_a_thinking_off_turn(
    kimi_server: FakeKimiServer, make_model: Callable[..., ChatKimi], mode: str
) -> None:
    # kimi-k2.5's forced turn runs without thinking, so its tool call has no reasoning;
    # the next (thinking) turn must still send the field, or the service answers 400.
    kimi_server.set_responder(obliging)
    model = make_model(model="kimi-k2.5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forced = model.bind_tools([get_weather], tool_choice="get_weather")
    history: list[Any] = [HumanMessage("Weather in Oslo?")]
    turn, _ = await call(forced, mode, history)
    assert isinstance(turn, AIMessage) and "reasoning_content" not in turn.additional_kwargs
    assert kimi_server.requests[-1].body["thinking"] == {"type": "disabled"}
    history += [turn, ToolMessage("sunny", tool_call_id=turn.tool_calls[0]["id"])]
    kimi_server.set_responder(lambda body: Reply(reasoning="Done.", content="Sunny in Oslo."))
    answer, _ = await call(model.bind_tools([get_weather]), mode, history)
    assert answer.content == "Sunny in Oslo."
    body = kimi_server.requests[-1].body
    assert "thinking" not in body  # the model's default: thinking
    replayed = body["messages"][1]
    assert (
        replayed["role"] == "assistant" and replayed["reasoning_content"] == REASONING_PLACEHOLDER
    )
