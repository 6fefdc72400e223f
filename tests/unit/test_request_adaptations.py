"""What ChatKimi changes in a request so the service takes it, built without any I/O.

A ``json_schema`` ``response_format`` (what LangChain's ``ProviderStrategy``
binds) on Ace Data Cloud, the profile's ``structured_output`` per service, the
forced-choice rule's data, and the checks run on answers.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langchain_kimi import ChatKimi, KimiError, KimiToolChoiceError, _structured
from langchain_kimi._answer_plan import plan_answer
from langchain_kimi._profiles import _build_rules, resolve_model
from langchain_kimi._tools import ForcedToolCallCheck, forced_tool_name

SECRET = "sk-unit"
MOVIE_SCHEMA = {
    "title": "Movie",
    "type": "object",
    "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
    "required": ["title", "year"],
}
SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "Movie", "schema": MOVIE_SCHEMA, "strict": True},
}
MOONSHOT = "https://api.moonshot.ai/v1"


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_structured, "_warned_schema_fallback", set())


def sent(model: ChatKimi, messages: list[Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    raw = model._encode(messages or [HumanMessage("The Matrix?")], None, False, kwargs)
    return json.loads(raw)  # type: ignore[no-any-return]


# --- the profile says what works on each service --------------------------------------


@pytest.mark.parametrize(
    ("name", "on_moonshot"),
    [("kimi-k2.6", True), ("kimi-k2.5", True), ("kimi-k3", False), ("kimi-k2.7-code", False)],
)
def test_structured_output_in_the_profile_depends_on_the_service(
    name: str, on_moonshot: bool
) -> None:
    # Ace Data Cloud: ChatKimi turns json_schema into JSON mode, for every model.
    assert ChatKimi(model=name, api_key=SECRET).profile["structured_output"] is True  # type: ignore[index]
    moonshot = ChatKimi(model=name, api_key=SECRET, base_url=MOONSHOT).profile
    gateway = ChatKimi(
        model=name, api_key=SECRET, base_url="https://gw.example/v1", api_flavor="moonshot"
    ).profile
    assert moonshot is not None and gateway is not None
    # Moonshot takes json_schema natively where models.dev says so; nothing else is claimed.
    assert bool(moonshot.get("structured_output")) is on_moonshot
    assert bool(gateway.get("structured_output")) is on_moonshot


# --- a json_schema response_format ---------------------------------------------------------


def test_json_schema_on_ace_becomes_json_mode_plus_the_schema_as_an_instruction() -> None:
    model = ChatKimi(model="kimi-k2.6", api_key=SECRET)
    body = sent(
        model,
        [SystemMessage("Be brief."), HumanMessage("The Matrix?")],
        response_format=SCHEMA_FORMAT,
    )
    assert body["response_format"] == {"type": "json_object"}
    system = body["messages"][0]["content"]
    # The same instruction with_structured_output sends, appended to the user's system message.
    assert system == "Be brief.\n\n" + _structured.build_instruction(MOVIE_SCHEMA)
    with_tools = sent(
        model,
        response_format=SCHEMA_FORMAT,
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
    )
    assert with_tools["messages"][0]["content"].startswith("Call the tools offered to you")
    assert "final answer" in with_tools["messages"][0]["content"]


def test_json_schema_on_moonshot_is_sent_as_is() -> None:
    for settings in ({"base_url": MOONSHOT}, {"api_flavor": "moonshot"}):
        body = sent(
            ChatKimi(model="kimi-k2.6", api_key=SECRET, **settings), response_format=SCHEMA_FORMAT
        )
        assert body["response_format"] == SCHEMA_FORMAT
        assert [m["role"] for m in body["messages"]] == ["user"]


def test_a_schema_kimi_k26_handles_unreliably_takes_the_instruction_path_on_moonshot() -> None:
    schema = {
        **MOVIE_SCHEMA,
        "$defs": {"X": {"type": "string"}},
        "properties": {"x": {"$ref": "#/$defs/X"}},
    }
    spec = {"type": "json_schema", "json_schema": {"name": "Movie", "schema": schema}}
    model = ChatKimi(model="kimi-k2.6", api_key=SECRET, base_url=MOONSHOT)
    with pytest.warns(UserWarning, match=r"unreliable with \$ref"):
        body = sent(model, response_format=spec)
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system"


@pytest.mark.parametrize(
    "broken",
    [
        {"type": "json_schema"},
        {"type": "json_schema", "json_schema": {"name": "M"}},
        {"type": "json_schema", "json_schema": {"name": "M", "schema": "{}"}},
    ],
)
def test_a_malformed_json_schema_format_fails_before_sending(broken: dict[str, Any]) -> None:
    for base_url in ("https://api.acedata.cloud/kimi", MOONSHOT):
        model = ChatKimi(model="kimi-k2.6", api_key=SECRET, base_url=base_url)
        with pytest.raises(ValueError, match=r"json_schema\.schema"):
            sent(model, response_format=broken)


def test_other_formats_pass_untouched() -> None:
    model = ChatKimi(model="kimi-k2.6", api_key=SECRET)
    for fmt in ({"type": "json_object"}, {"type": "text"}):
        assert sent(model, response_format=fmt)["response_format"] == fmt


# --- checking answers ------------------------------------------------------------------------


def plan_for(params: dict[str, Any], **kwargs: Any) -> Any:
    settings: dict[str, Any] = {
        "written_name": "kimi-k2.6",
        "rules": resolve_model("kimi-k2.6"),
        "forced": None,
        "moonshot": False,
    }
    settings.update(kwargs)
    return plan_answer([HumanMessage("x")], {"model": "kimi-k2.6", **params}, **settings)[1]


def result_of(message: AIMessage, finish_reason: str = "stop") -> ChatResult:
    return ChatResult(
        generations=[
            ChatGeneration(message=message, generation_info={"finish_reason": finish_reason})
        ]
    )


def test_nothing_changed_means_no_plan_and_no_cost() -> None:
    assert plan_for({}) is None
    assert plan_for({"response_format": {"type": "json_object"}}) is None
    assert plan_for({"response_format": SCHEMA_FORMAT}, moonshot=True) is None


def test_a_whole_answer_is_checked_and_reduced_to_the_bare_json() -> None:
    plan = plan_for({"response_format": SCHEMA_FORMAT})
    fenced = AIMessage('```json\n{"title": "The Matrix", "year": 1999}\n```')
    [generation] = plan.finish(result_of(fenced)).generations
    assert json.loads(generation.message.content) == {"title": "The Matrix", "year": 1999}
    assert generation.text == generation.message.content
    bare = AIMessage('{"title": "The Matrix", "year": 1999}')
    assert plan.finish(result_of(bare)).generations[0].message.content == bare.content
    # A tool turn (an agent's) is not the answer: not checked.
    call = AIMessage("", tool_calls=[{"name": "lookup", "args": {}, "id": "lookup:0"}])
    assert plan.finish(result_of(call)).generations[0].message.tool_calls


@pytest.mark.parametrize(
    ("content", "finish_reason", "expected"),
    [
        ('{"title": "The Matrix"}', "stop", "year"),
        ('{"title": "The Matrix", "year": "1999"}', "stop", "year"),  # strict: no coercion
        ("It is The Matrix.", "stop", "not valid JSON"),
        ('{"title": "The Ma', "length", "truncated"),
    ],
)
def test_a_whole_answer_that_does_not_match_raises(
    content: str, finish_reason: str, expected: str
) -> None:
    plan = plan_for({"response_format": SCHEMA_FORMAT})
    with pytest.raises(OutputParserException, match=expected):
        plan.finish(result_of(AIMessage(content), finish_reason))


def test_the_name_sent_is_noted_on_whole_answers() -> None:
    plan = plan_for({}, written_name="Kimi-K2.6")
    message = plan.finish(result_of(AIMessage("hi"))).generations[0].message
    assert message.response_metadata["model_name_sent"] == "kimi-k2.6"


def test_forced_tool_call_check() -> None:
    check = ForcedToolCallCheck("kimi-k2.6", "get_weather")
    check.check("", ["get_weather"])
    check.check("Calling.", ["get_time", "get_weather"])
    with pytest.raises(KimiToolChoiceError, match=r"called \['get_time'\]") as info:
        check.check("", ["get_time"])
    assert isinstance(info.value, KimiError) and info.value.called == ("get_time",)
    long_text = "x" * 1000
    with pytest.raises(KimiToolChoiceError) as info:
        ForcedToolCallCheck("kimi-k2.6", "required").check(long_text, [])
    assert info.value.content == long_text and "x" * 201 not in str(info.value)
    ForcedToolCallCheck("kimi-k2.6", "required").check("", ["anything"])


def test_forced_tool_name() -> None:
    assert forced_tool_name("required") == "required"
    assert forced_tool_name({"type": "function", "function": {"name": "f"}}) == "f"
    for unforced in ("auto", "none", None, {"type": "function"}, {"type": "other"}):
        assert forced_tool_name(unforced) is None


def test_forced_choice_naming_a_tool_that_is_not_offered_fails_before_sending() -> None:
    model = ChatKimi(model="kimi-k2.6", api_key=SECRET)
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    with pytest.raises(ValueError, match="'g', which is not among the tools offered"):
        sent(model, tools=[tool], tool_choice={"type": "function", "function": {"name": "g"}})


# --- the data ----------------------------------------------------------------------------------


def test_the_forced_choice_rule_is_checked_when_the_data_loads() -> None:
    profile = dict(resolve_model("kimi-k2.6").profile)  # type: ignore[union-attr]
    with pytest.raises(RuntimeError, match="forced_tool_choice must be one of"):
        _build_rules("m", profile, {"thinking": "default_on", "forced_tool_choice": "force"})
    # "send" on a thinking model needs "required" accepted while thinking.
    with pytest.raises(RuntimeError, match="needs 'required' accepted"):
        _build_rules("m", profile, {"thinking": "always", "forced_tool_choice": "send"})
    # Left out: "send" for a model that never thinks, else "emulate" (safe everywhere).
    assert _build_rules("m", profile, {"thinking": "never"}).forced_tool_choice == "send"
    assert _build_rules("m", profile, {"thinking": "always"}).forced_tool_choice == "emulate"


def test_no_adaptation_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = ChatKimi(model="kimi-k2.6", api_key=SECRET)
        body = sent(
            model,
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
            tool_choice="auto",
        )
    assert body["tool_choice"] == "auto" and body["messages"][0]["role"] == "user"
