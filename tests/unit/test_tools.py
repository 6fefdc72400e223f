"""bind_tools: every tool form, every tool_choice form, and the thinking limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from langchain_kimi import ChatKimi, _tools
from langchain_kimi._tools import WEB_SEARCH_TOOL

WEATHER_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}},
    "required": ["city"],
}


@tool(parse_docstring=True)
def get_weather(city: str) -> str:
    """Get the weather for a city.

    Args:
        city: City name
    """
    return "sunny"


def plain_weather(city: str) -> str:
    """Get the weather for a city.

    Args:
        city: City name
    """
    return "sunny"


class PydanticWeather(BaseModel):
    """Get the weather for a city."""

    city: str = Field(description="City name")


class TypedWeather(TypedDict):
    """Get the weather for a city."""

    city: str


def sent_body(runnable: Any) -> dict[str, Any]:
    """The body the bound model would send, built without any I/O."""
    model: ChatKimi = runnable.bound
    raw = model._encode([HumanMessage("weather in Paris?")], None, False, runnable.kwargs)
    return json.loads(raw)  # type: ignore[no-any-return]


INSTANT = ChatKimi(model="kimi-k2-instruct-0905", api_key="t")
THINKING = ChatKimi(model="kimi-k2.5", api_key="t")


@pytest.fixture(autouse=True)
def _fresh_forced_choice_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    # An adapted forced choice warns once per model per process; each test starts fresh.
    monkeypatch.setattr(_tools, "_warned_forced", set())


@pytest.mark.parametrize(
    "form",
    [
        get_weather,
        plain_weather,
        PydanticWeather,
        {
            "name": "get_weather",
            "description": "Get the weather for a city.",
            "parameters": WEATHER_PARAMS,
        },
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get the weather for a city.",
                "parameters": WEATHER_PARAMS,
            },
        },
    ],
    ids=["tool", "function", "pydantic", "function-dict", "openai-tool-dict"],
)
def test_each_tool_form_becomes_a_function_tool(form: Any) -> None:
    (sent,) = sent_body(INSTANT.bind_tools([form]))["tools"]
    assert sent["type"] == "function"
    function = sent["function"]
    assert function["name"] in ("get_weather", "plain_weather", "PydanticWeather")
    assert function["description"] == "Get the weather for a city."
    assert function["parameters"]["properties"]["city"]["type"] == "string"
    assert function["parameters"]["required"] == ["city"]


def test_typed_dict_tool() -> None:
    (sent,) = sent_body(INSTANT.bind_tools([TypedWeather]))["tools"]
    assert sent["function"]["name"] == "TypedWeather"
    assert sent["function"]["parameters"]["properties"] == {"city": {"type": "string"}}


def test_web_search_builtin_passes_through_untouched() -> None:
    tools = sent_body(INSTANT.bind_tools([WEB_SEARCH_TOOL, get_weather]))["tools"]
    assert tools[0] == {"type": "builtin_function", "function": {"name": "$web_search"}}


def test_strict_and_parallel_flags() -> None:
    sent = sent_body(INSTANT.bind_tools([get_weather], strict=True, parallel_tool_calls=False))
    assert sent["tools"][0]["function"]["strict"] is True
    assert sent["parallel_tool_calls"] is False


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("any", "required"),
        ("required", "required"),
        ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
        (True, {"type": "function", "function": {"name": "get_weather"}}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice_forms(choice: Any, expected: Any) -> None:
    assert (
        sent_body(INSTANT.bind_tools([get_weather], tool_choice=choice))["tool_choice"] == expected
    )


def test_tool_choice_none_given_sends_nothing() -> None:
    assert "tool_choice" not in sent_body(INSTANT.bind_tools([get_weather]))


def test_tool_choice_errors() -> None:
    with pytest.raises(ValueError, match="not one of the bound tools"):
        INSTANT.bind_tools([get_weather], tool_choice="other")
    with pytest.raises(ValueError, match="exactly one tool"):
        INSTANT.bind_tools([get_weather, plain_weather], tool_choice=True)


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("any", "required"),
        ("required", "required"),
        ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
        (True, {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_a_forced_choice_on_kimi_k25_is_sent_with_thinking_off(choice: Any, wire: Any) -> None:
    # kimi-k2.5 takes a forced choice only without thinking (the service's rule).
    with pytest.warns(UserWarning, match="only with thinking off"):
        body = sent_body(THINKING.bind_tools([get_weather], tool_choice=choice))
    assert body["tool_choice"] == wire
    assert body["thinking"] == {"type": "disabled"}


def test_thinking_model_allows_auto_and_none_and_thinking_false_allows_forcing() -> None:
    assert (
        sent_body(THINKING.bind_tools([get_weather], tool_choice="auto"))["tool_choice"] == "auto"
    )
    assert (
        sent_body(THINKING.bind_tools([get_weather], tool_choice="none"))["tool_choice"] == "none"
    )
    forced = ChatKimi(model="kimi-k2.5", thinking=False, api_key="t").bind_tools(
        [get_weather], tool_choice="any"
    )
    assert sent_body(forced)["tool_choice"] == "required"


def test_forced_choice_passed_at_call_time_is_adapted_too() -> None:
    bound = THINKING.bind_tools([get_weather])
    with pytest.warns(UserWarning, match="kimi-k2.5 takes a forced tool_choice only"):
        raw = THINKING._encode(
            [HumanMessage("x")], None, False, {**bound.kwargs, "tool_choice": "required"}  # type: ignore[attr-defined]
        )
    body = json.loads(raw)
    assert body["tool_choice"] == "required" and body["thinking"] == {"type": "disabled"}


def test_web_search_refused_while_thinking() -> None:
    with pytest.raises(ValueError, match=r"\$web_search.*thinking=False"):
        ChatKimi(model="kimi-k2-thinking", api_key="t").bind_tools([WEB_SEARCH_TOOL])
    assert sent_body(
        ChatKimi(model="kimi-k2.5", thinking=False, api_key="t").bind_tools([WEB_SEARCH_TOOL])
    )["tools"]
