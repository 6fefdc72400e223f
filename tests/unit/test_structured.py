"""Structured output on Kimi's JSON mode, without sockets.

``ScriptedKimi`` is ChatKimi with the transport replaced by a script: requests
are still encoded by the real client (so the bodies checked here are the bytes
that would be sent), and replies are handed back as messages or streamed chunks.
"""

from __future__ import annotations

import enum
import json
import re
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, NotRequired

import pytest
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    BaseCallbackHandler,
    CallbackManagerForLLMRun,
)
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.utils.function_calling import convert_to_json_schema
from langchain_tests.unit_tests import ChatModelUnitTests
from pydantic import BaseModel, Field
from pydantic import v1 as pydantic_v1
from typing_extensions import TypedDict

from langchain_kimi import ChatKimi, _structured, _tools
from langchain_kimi._jsonschema import MAX_REPLY_DEPTH, check_json_schema, check_schema
from langchain_kimi._structured import (
    EXCERPT_CHARS,
    KimiJsonOutputParser,
    add_instruction,
    build_instruction,
    describe_schema,
    extract_json_object,
)
from tests.capabilities import KimiCapabilities

THINKING = "kimi-k2.5"
INSTANT = "kimi-k2-instruct-0905"


# --- schemas used throughout ----------------------------------------------------------


# The (str, Enum) form users write, not StrEnum: that is what is under test.
class Mood(str, enum.Enum):  # noqa: UP042
    HAPPY = "happy"
    SAD = "sad"


class Joke(BaseModel):
    """A joke to tell the user."""

    setup: str = Field(description="the question")
    punchline: str
    rating: int | None = None


class JokeDict(TypedDict):
    """A joke to tell the user."""

    setup: Annotated[str, ..., "the question"]
    punchline: str


class Film(TypedDict):
    """A film."""

    title: str
    tags: NotRequired[list[str]]


JOKE_JSON_SCHEMA: dict[str, Any] = {
    "title": "Joke",
    "type": "object",
    "properties": {"setup": {"type": "string"}, "punchline": {"type": "string"}},
    "required": ["setup", "punchline"],
    "additionalProperties": False,
}
JOKE_FUNCTION: dict[str, Any] = {
    "name": "Joke",
    "description": "A joke to tell the user.",
    "parameters": {
        "type": "object",
        "properties": {"setup": {"type": "string"}, "punchline": {"type": "string"}},
        "required": ["setup", "punchline"],
    },
}
JOKE_TOOL: dict[str, Any] = {"type": "function", "function": JOKE_FUNCTION}
JOKE = {
    "setup": "Why did the cat sit on the computer?",
    "punchline": "To keep an eye on the mouse.",
}
JOKE_TEXT = json.dumps(JOKE)


# --- a ChatKimi whose transport is a script ---------------------------------------


class ScriptedKimi(ChatKimi):
    """ChatKimi that records the encoded request bodies and answers from a script."""

    script: list[AIMessage] = Field(default_factory=list)
    bodies: list[dict[str, Any]] = Field(default_factory=list)

    def _reply(
        self, messages: list[BaseMessage], stop: Any, stream: bool, kwargs: Any
    ) -> AIMessage:
        self.bodies.append(json.loads(self._encode(messages, stop, stream, kwargs)))
        if not self.script:
            raise AssertionError("no scripted reply left")
        return self.script.pop(0)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(
            generations=[ChatGeneration(message=self._reply(messages, stop, False, kwargs))]
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = self._reply(messages, stop, True, kwargs)
        reasoning = reply.additional_kwargs.get("reasoning_content")
        if reasoning:
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="", additional_kwargs={"reasoning_content": reasoning}
                )
            )
        text = reply.content if isinstance(reply.content, str) else ""
        for start in range(0, len(text), 5):
            yield ChatGenerationChunk(message=AIMessageChunk(content=text[start : start + 5]))
        for index, call in enumerate(reply.tool_calls):
            arguments = json.dumps(call["args"])
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    tool_call_chunks=[
                        {"name": call["name"], "args": "", "id": call["id"], "index": index}
                    ],
                )
            )
            for start in range(0, len(arguments), 5):
                yield ChatGenerationChunk(
                    message=AIMessageChunk(
                        content="",
                        tool_call_chunks=[
                            {
                                "name": None,
                                "args": arguments[start : start + 5],
                                "id": None,
                                "index": index,
                            }
                        ],
                    )
                )
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="", response_metadata=dict(reply.response_metadata), chunk_position="last"
            )
        )

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._generate(messages, stop, **kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._stream(messages, stop, **kwargs):
            yield chunk


def scripted(*replies: AIMessage, model: str = THINKING, **kwargs: Any) -> ScriptedKimi:
    # A closed local port and no retries: a call that escaped the script fails at once.
    return ScriptedKimi(
        model=model,
        api_key="test-token",
        base_url="http://127.0.0.1:9",
        max_retries=0,
        script=list(replies),
        **kwargs,
    )


def answer(content: Any, *, finish_reason: str = "stop", reasoning: str | None = None) -> AIMessage:
    extra = {"reasoning_content": reasoning} if reasoning is not None else {}
    return AIMessage(
        content=content, additional_kwargs=extra, response_metadata={"finish_reason": finish_reason}
    )


def tool_answer(name: str, args: dict[str, Any]) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[{"name": name, "args": args, "id": f"functions.{name}:0"}],
        response_metadata={"finish_reason": "tool_calls"},
    )


@pytest.fixture(autouse=True)
def _fresh_fallback_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    # The function_calling fallback warns once per process; each test starts fresh.
    monkeypatch.setattr(_tools, "_warned_forced", set())
    monkeypatch.setattr(_structured, "_warned_schema_fallback", set())


def system_text(body: dict[str, Any]) -> str:
    first = body["messages"][0]
    assert first["role"] == "system"
    return str(first["content"])


# --- schemas ---------------------------------------------------------------------------


def test_every_schema_kind_is_understood() -> None:
    pydantic = describe_schema(Joke)
    assert pydantic.pydantic_class is Joke and pydantic.name == "Joke"
    assert pydantic.json_schema == convert_to_json_schema(Joke)

    typed = describe_schema(JokeDict)
    assert typed.pydantic_class is None and typed.name == "JokeDict"
    assert typed.json_schema is not None
    assert typed.json_schema["properties"]["setup"] == {
        "type": "string",
        "description": "the question",
    }

    plain = describe_schema(JOKE_JSON_SCHEMA)
    assert plain.json_schema == JOKE_JSON_SCHEMA  # stated as given, additionalProperties kept

    for function_form in (JOKE_FUNCTION, JOKE_TOOL):
        described = describe_schema(function_form)
        assert described.name == "Joke" and described.json_schema is not None
        assert described.json_schema["required"] == ["setup", "punchline"]

    anything = describe_schema(None)
    assert anything.json_schema is None and anything.pydantic_class is None


@pytest.mark.parametrize("bad", [{"foo": 1}, 42, "Joke", list])
def test_unusable_schemas_are_refused_by_name(bad: Any) -> None:
    with pytest.raises(ValueError, match="schema"):
        describe_schema(bad)


# --- the instruction -------------------------------------------------------------------


def test_instruction_states_the_schema_and_asks_for_json_only() -> None:
    text = build_instruction(JOKE_JSON_SCHEMA)
    assert "single JSON object" in text and "no Markdown code fence" in text
    assert json.dumps(JOKE_JSON_SCHEMA) in text
    assert "JSON schema" not in build_instruction(None)


def test_instruction_is_appended_to_the_leading_system_message() -> None:
    original = [SystemMessage("You are a comedian.", id="sys-1"), HumanMessage("joke")]
    merged = add_instruction(original, "JSON!")
    assert merged[0].content == "You are a comedian.\n\nJSON!"
    assert merged[0].id == "sys-1" and merged[1] is original[1]
    assert original[0].content == "You are a comedian."  # the caller's history is untouched


def test_instruction_joins_block_content_and_is_inserted_when_no_system_leads() -> None:
    blocks = add_instruction(
        [SystemMessage([{"type": "text", "text": "Rules."}]), HumanMessage("x")], "JSON!"
    )
    assert blocks[0].content == [
        {"type": "text", "text": "Rules."},
        {"type": "text", "text": "\n\nJSON!"},
    ]

    history: list[BaseMessage] = [
        HumanMessage("hi"),
        SystemMessage("late system"),
        HumanMessage("x"),
    ]
    inserted = add_instruction(history, "JSON!")
    assert isinstance(inserted[0], SystemMessage) and inserted[0].content == "JSON!"
    assert inserted[1:] == history


# --- extracting the JSON object ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',
        '   {"a": 1}\n',
        '```json\n{"a": 1}\n```',
        '  ```JSON\n{"a": 1}```  ',
        '```\n{"a": 1}\n```',
        '```json {"a": 1} ```',
    ],
)
def test_json_around_which_models_put_whitespace_or_one_fence_is_accepted(text: str) -> None:
    assert extract_json_object(text) == {"a": 1}


def test_raw_control_characters_inside_strings_are_tolerated() -> None:
    assert extract_json_object('{"poem": "line one\nline two"}') == {"poem": "line one\nline two"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ('Sure! {"a": 1}', "not valid JSON"),
        ('{"a": 1} hope this helps', "not valid JSON"),
        ('Here:\n```json\n{"a": 1}\n```', "not valid JSON"),
        ('```json\n{"a": 1}\n``` and more', "not valid JSON"),
        ('```json\n{"a": 1}', "not valid JSON"),
        ('{"a": 1}{"b": 2}', "not valid JSON"),
        ('{"a": NaN}', "NaN is not JSON"),
        ("[1, 2]", "not an object"),
        ('"just a string"', "not an object"),
        ("```python\nprint(1)\n```", "not valid JSON"),
    ],
)
def test_anything_but_one_json_object_is_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        extract_json_object(text)


# --- the in-house JSON-schema check ----------------------------------------------------------

ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "mood": {"$ref": "#/$defs/Mood"},
        "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "kind": {"const": "order"},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["id", "items"],
    "additionalProperties": False,
    "$defs": {
        "Mood": {"enum": ["happy", "sad"], "type": "string"},
        "Item": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "qty": {"type": ["integer", "null"]}},
            "required": ["name"],
        },
    },
}


def test_a_conforming_value_has_no_problems() -> None:
    value = {
        "id": 7,
        "mood": "happy",
        "items": [{"name": "tea", "qty": 2}, {"name": "milk", "qty": None}],
        "note": None,
        "kind": "order",
        "tags": {"a": "b"},
    }
    assert check_json_schema(value, ORDER_SCHEMA) == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"items": []}, "$: missing required property 'id'"),
        ({"id": "7", "items": []}, "$.id: expected integer, got string"),
        ({"id": 7.5, "items": []}, "$.id: expected integer, got number"),
        ({"id": True, "items": []}, "$.id: expected integer, got boolean"),
        ({"id": 1, "items": [], "mood": "angry"}, "$.mood: 'angry' is not one of ['happy', 'sad']"),
        ({"id": 1, "items": [{"qty": 1}]}, "$.items[0]: missing required property 'name'"),
        (
            {"id": 1, "items": [{"name": "x", "qty": "2"}]},
            "$.items[0].qty: expected integer or null",
        ),
        ({"id": 1, "items": [], "note": 3}, "$.note: 3 is not valid under any of the given"),
        ({"id": 1, "items": [], "kind": "refund"}, "$.kind: 'order' was expected"),
        ({"id": 1, "items": [], "extra": 1}, "$: unexpected property 'extra'"),
        ({"id": 1, "items": [], "tags": {"a": 1}}, "$.tags.a: expected string, got integer"),
        ({"id": 1, "items": {}}, "$.items: expected array, got object"),
    ],
)
def test_each_checked_keyword_reports_where_the_value_breaks_it(value: Any, problem: str) -> None:
    problems = check_json_schema(value, ORDER_SCHEMA)
    assert any(p.startswith(problem) for p in problems), problems


def test_problem_lists_are_bounded_and_formats_are_not_asserted() -> None:
    schema = {"type": "object", "required": [f"k{i}" for i in range(20)]}
    assert len(check_json_schema({}, schema)) == 5
    assert check_json_schema("abc", {"type": "string", "format": "email"}) == []
    assert check_json_schema("abc", {"type": "string", "maxLength": 1}) == [
        "$: 'abc' is too long"
    ]
    assert check_json_schema(1, {"allOf": [{"type": "integer"}, {"enum": [2]}]}) == [
        "$: 1 is not one of [2]"
    ]
    assert check_json_schema(1, {"enum": [True]}) != []  # JSON does not equate 1 and true


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        (
            {"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}}, "$ref": "#/$defs/A"},
            "loops without describing a value: #/$defs/A -> #/$defs/B -> #/$defs/A",
        ),
        (  # hidden under a property, through allOf
            {
                "type": "object",
                "properties": {"b": {"$ref": "#/$defs/B"}},
                "$defs": {"B": {"allOf": [{"$ref": "#/$defs/C"}]}, "C": {"$ref": "#/$defs/B"}},
            },
            "loops without describing a value",
        ),
        ({"type": "object", "$ref": "https://example.com/remote.json"}, "does not resolve"),
        ({"type": "object", "required": True}, "not a valid JSON Schema: $.required"),
    ],
)
def test_a_schema_that_cannot_check_a_reply_is_refused(schema: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        check_schema(schema)


def test_a_recursive_schema_that_descends_is_fine_and_deep_values_are_bounded() -> None:
    tree = {"$defs": {"T": {"type": "array", "items": {"$ref": "#/$defs/T"}}}, "$ref": "#/$defs/T"}
    check_schema(tree)
    value: list[Any] = []
    for _ in range(MAX_REPLY_DEPTH - 1):
        value = [value]
    assert check_json_schema(value, tree) == []
    with pytest.raises(ValueError, match=f"nests deeper than {MAX_REPLY_DEPTH} levels"):
        check_json_schema([value], tree)


# --- what goes on the wire, per method and schema ------------------------------------------


@pytest.mark.parametrize("schema", [Joke, JokeDict, JOKE_JSON_SCHEMA, JOKE_FUNCTION, JOKE_TOOL])
@pytest.mark.parametrize("method", ["json_mode", "json_schema"])
def test_json_methods_send_json_mode_and_the_schema_instruction(schema: Any, method: str) -> None:
    model = scripted(answer(JOKE_TEXT))
    model.with_structured_output(schema, method=method).invoke("Tell me a joke")
    body = model.bodies[-1]
    assert body["response_format"] == {"type": "json_object"}
    assert "tools" not in body and "tool_choice" not in body
    instruction = system_text(body)
    assert "single JSON object" in instruction
    stated = json.loads(instruction.split("\n", 1)[1])
    assert stated["properties"].keys() == {"setup", "punchline", "rating"} - (
        set() if schema is Joke else {"rating"}
    )
    assert body["messages"][1] == {"role": "user", "content": "Tell me a joke"}
    assert "ls_structured_output_format" not in body


def test_json_schema_sends_exactly_what_json_mode_sends() -> None:
    # The service has no schema mode: the methods differ only in how replies are checked.
    model = scripted(answer(JOKE_TEXT), answer(JOKE_TEXT))
    model.with_structured_output(Joke, method="json_mode").invoke("joke")
    model.with_structured_output(Joke, method="json_schema").invoke("joke")
    assert model.bodies[0] == model.bodies[1]


def test_schema_less_json_mode_asks_for_any_object() -> None:
    model = scripted(answer('{"anything": [1, 2]}'))
    assert model.with_structured_output(method="json_mode").invoke("hi") == {"anything": [1, 2]}
    body = model.bodies[-1]
    assert body["response_format"] == {"type": "json_object"}
    assert system_text(body) == build_instruction(None)


def test_the_users_system_message_is_kept_and_the_instruction_appended() -> None:
    model = scripted(answer(JOKE_TEXT))
    model.with_structured_output(Joke).invoke(
        [SystemMessage("You are a cat comedian."), HumanMessage("joke")]
    )
    messages = model.bodies[-1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"].startswith(
        "You are a cat comedian.\n\nAnswer with a single JSON object"
    )


@pytest.mark.parametrize("schema", [Joke, JokeDict, JOKE_JSON_SCHEMA, JOKE_TOOL])
def test_function_calling_on_an_instant_model_forces_one_tool(schema: Any) -> None:
    model = scripted(
        tool_answer("Joke" if schema is not JokeDict else "JokeDict", JOKE), model=INSTANT
    )
    result = model.with_structured_output(schema, method="function_calling").invoke("joke")
    assert (result.model_dump(exclude_none=True) if isinstance(result, Joke) else result) == JOKE
    body = model.bodies[-1]
    name = body["tools"][0]["function"]["name"]
    assert len(body["tools"]) == 1
    assert body["tool_choice"] == {"type": "function", "function": {"name": name}}
    assert "response_format" not in body
    assert body["messages"] == [{"role": "user", "content": "joke"}]  # no instruction needed
    assert "strict" not in body["tools"][0]["function"]  # Kimi documents no such flag


def test_function_calling_on_kimi_k25_turns_thinking_off_with_one_warning() -> None:
    # kimi-k2.5 takes a forced tool_choice only without thinking: the tool stays forced.
    model = scripted(tool_answer("Joke", JOKE), tool_answer("Joke", JOKE))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _line() + 1
        runnable = model.with_structured_output(Joke, method="function_calling")
        assert runnable.invoke("joke") == Joke(**JOKE)
        assert runnable.invoke("joke again") == Joke(**JOKE)
    [warning] = caught  # once per model, where the forced choice was asked for
    assert warning.category is UserWarning and (warning.filename, warning.lineno) == (__file__, line)
    assert "kimi-k2.5 takes a forced tool_choice only with thinking off" in str(warning.message)
    body = model.bodies[-1]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "Joke"}}
    assert body["thinking"] == {"type": "disabled"} and "response_format" not in body


@pytest.mark.parametrize(
    "model_name",
    [
        "kimi-k2-thinking",
        "kimi-k2-thinking-turbo",
        "kimi-k2.6",
        "kimi-k2.7-code",
        "kimi-k2.7-code-highspeed",
        "kimi-k2.8-preview",
    ],
)
def test_function_calling_on_a_model_that_refuses_forcing_emulates_it(model_name: str) -> None:
    model = scripted(tool_answer("JokeDict", JOKE), model=model_name)
    with pytest.warns(UserWarning, match=f"{re.escape(model_name)} refuses a forced tool_choice"):
        result = model.with_structured_output(JokeDict, method="function_calling").invoke("joke")
    assert result == JOKE
    body = model.bodies[-1]
    assert body["tool_choice"] == "auto"
    assert [tool["function"]["name"] for tool in body["tools"]] == ["JokeDict"]
    assert "calling the tool `JokeDict`" in system_text(body)
    assert "thinking" not in body and "response_format" not in body


def _line() -> int:
    import inspect

    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno


@pytest.mark.parametrize(
    ("settings", "bound"),
    [
        ({"thinking": False}, {}),
        ({}, {"thinking": {"type": "disabled"}}),
        ({}, {"thinking": False}),
    ],
)
def test_function_calling_works_on_k25_with_thinking_off(
    settings: dict[str, Any], bound: dict[str, Any]
) -> None:
    model = scripted(tool_answer("Joke", JOKE), **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback, so no warning
        result = model.with_structured_output(Joke, method="function_calling", **bound).invoke(
            "joke"
        )
    assert result == Joke(**JOKE)
    body = model.bodies[-1]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "Joke"}}
    assert body["thinking"] == {"type": "disabled"}


def test_extra_keyword_arguments_are_bound_as_call_options() -> None:
    model = scripted(answer(JOKE_TEXT))
    model.with_structured_output(Joke, max_tokens=16384).invoke("joke")
    assert model.bodies[-1]["max_tokens"] == 16384


def test_tracing_records_the_schema_but_the_body_does_not_carry_it() -> None:
    class Recorder(BaseCallbackHandler):
        def __init__(self) -> None:
            self.options: list[Any] = []

        def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
            self.options.append(kwargs.get("options"))

    for schema in (Joke, JokeDict, JOKE_JSON_SCHEMA):
        model = scripted(answer(JOKE_TEXT), answer(JOKE_TEXT))
        recorder = Recorder()
        runnable = model.with_structured_output(schema)
        runnable.invoke("joke", config={"callbacks": [recorder]})
        list(runnable.stream("joke", config={"callbacks": [recorder]}))
        assert len(recorder.options) == 2
        for options in recorder.options:
            recorded = options["ls_structured_output_format"]
            assert recorded["schema"] == convert_to_json_schema(schema)
            assert recorded["kwargs"]["method"] == "json_mode"
        assert all("ls_structured_output_format" not in body for body in model.bodies)


def test_few_shot_histories_and_prompt_values_go_through() -> None:
    model = scripted(answer(JOKE_TEXT), model=INSTANT)
    history = [
        SystemMessage("You tell jokes."),
        HumanMessage("A joke about dogs"),
        AIMessage(
            "",
            tool_calls=[{"name": "Joke", "args": {"setup": "s", "punchline": "p"}, "id": "Joke:0"}],
        ),
        ToolMessage("ok", tool_call_id="Joke:0"),
        AIMessage('{"setup": "s", "punchline": "p"}'),
        HumanMessage("{topic}"),
    ]
    prompt = ChatPromptTemplate.from_messages([*history[:-1], ("human", "A joke about {topic}")])
    chain = prompt | model.with_structured_output(JokeDict)
    assert chain.invoke({"topic": "cats"}) == JOKE
    messages = model.bodies[-1]["messages"]
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert messages[0]["content"].startswith("You tell jokes.\n\n")
    assert messages[-1]["content"] == "A joke about cats"


def test_partial_mode_and_json_mode_are_refused_before_the_request() -> None:
    model = scripted()
    prefix = AIMessage('{"setup": "', additional_kwargs={"partial": True})
    with pytest.raises(ValueError, match="Partial Mode"):
        model.with_structured_output(Joke).invoke([HumanMessage("joke"), prefix])
    assert model.bodies == []


@pytest.mark.parametrize(
    ("call", "match"),
    [
        ({"schema": Joke, "method": "xml"}, "method must be one of"),
        ({"schema": None, "method": "json_schema"}, "needs a schema"),
        ({"schema": None, "method": "function_calling"}, "needs a schema"),
        ({"schema": Joke, "response_format": {"type": "text"}}, "sets response_format itself"),
        ({"schema": Joke, "tools": []}, "sets tools itself"),
        ({"schema": {"type": "object", "properties": {}}, "method": "function_calling"}, "'title'"),
    ],
)
def test_misuse_fails_at_construction(call: dict[str, Any], match: str) -> None:
    model = scripted(model=INSTANT)
    with pytest.raises(ValueError, match=match):
        model.with_structured_output(**call)


# --- reading replies ----------------------------------------------------------------------


def test_pydantic_schemas_return_validated_instances() -> None:
    model = scripted(answer(' ```json\n{"setup": "s", "punchline": "p", "rating": "4"}\n```'))
    assert model.with_structured_output(Joke).invoke("joke") == Joke(
        setup="s", punchline="p", rating=4
    )


def test_json_schema_checks_strictly_and_strict_false_relaxes_it() -> None:
    reply = '{"setup": "s", "punchline": "p", "rating": "4"}'
    strict = scripted(answer(reply)).with_structured_output(Joke, method="json_schema")
    with pytest.raises(OutputParserException, match="does not match Joke"):
        strict.invoke("joke")
    relaxed = scripted(answer(reply)).with_structured_output(
        Joke, method="json_schema", strict=False
    )
    assert relaxed.invoke("joke") == Joke(setup="s", punchline="p", rating=4)
    forced = scripted(answer(reply)).with_structured_output(Joke, method="json_mode", strict=True)
    with pytest.raises(OutputParserException, match="valid integer"):
        forced.invoke("joke")


def test_strict_pydantic_still_reads_enum_values_from_json() -> None:
    class Feeling(BaseModel):
        mood: Mood

    model = scripted(answer('{"mood": "sad"}'))
    assert model.with_structured_output(Feeling, method="json_schema").invoke("x").mood is Mood.SAD


def test_dict_schemas_check_required_keys_in_json_mode_and_everything_in_json_schema() -> None:
    missing = '{"setup": "s"}'
    with pytest.raises(OutputParserException, match="missing required property 'punchline'"):
        scripted(answer(missing)).with_structured_output(JokeDict).invoke("joke")

    extra = '{"setup": "s", "punchline": 3, "extra": true}'
    assert scripted(answer(extra)).with_structured_output(JOKE_JSON_SCHEMA).invoke(
        "joke"
    ) == json.loads(extra)
    with pytest.raises(OutputParserException) as caught:
        scripted(answer(extra)).with_structured_output(
            JOKE_JSON_SCHEMA, method="json_schema"
        ).invoke("joke")
    assert "$.punchline: expected string, got integer" in str(caught.value)
    assert "unexpected property 'extra'" in str(caught.value)


def test_pydantic_v1_classes_are_accepted() -> None:
    class OldJoke(pydantic_v1.BaseModel):
        setup: str
        punchline: str

    model = scripted(answer(JOKE_TEXT))
    result = model.with_structured_output(OldJoke).invoke("joke")
    assert isinstance(result, OldJoke) and result.setup == JOKE["setup"]


def test_reasoning_is_never_parsed() -> None:
    model = scripted(answer(JOKE_TEXT, reasoning='{"setup": "draft", "punchline": "draft"} maybe'))
    assert model.with_structured_output(JokeDict).invoke("joke") == JOKE

    only_reasoning = scripted(answer("", reasoning=JOKE_TEXT))
    with pytest.raises(OutputParserException, match="empty"):
        only_reasoning.with_structured_output(JokeDict).invoke("joke")


def test_v1_content_blocks_are_read_as_their_text_only() -> None:
    blocks = [
        {"type": "reasoning", "reasoning": '{"not": "this"}'},
        {"type": "text", "text": '{"setup": "s", '},
        {"type": "text", "text": '"punchline": "p"}'},
    ]
    parser = KimiJsonOutputParser()
    assert parser.invoke(AIMessage(content=blocks)) == {"setup": "s", "punchline": "p"}


def test_a_bad_reply_raises_with_a_bounded_excerpt_and_the_whole_text_on_the_exception() -> None:
    reply = "I cannot answer in JSON. " + "x" * 5000
    with pytest.raises(OutputParserException) as caught:
        scripted(answer(reply)).with_structured_output(Joke).invoke("joke")
    message = str(caught.value)
    assert "not valid JSON" in message and "I cannot answer in JSON." in message
    assert f"({len(reply)} characters)" in message
    assert "x" * (EXCERPT_CHARS - 25) in message and "x" * EXCERPT_CHARS not in message
    assert caught.value.llm_output == reply


def test_a_reply_cut_by_max_tokens_says_it_was_truncated() -> None:
    model = scripted(answer('{"setup": "Why did the', finish_reason="length"), max_tokens=20)
    with pytest.raises(OutputParserException) as caught:
        model.with_structured_output(Joke).invoke("joke")
    message = str(caught.value)
    assert (
        "truncated" in message and "max_tokens" in message and "finish_reason 'length'" in message
    )
    assert '{"setup": "Why did the' in message


def test_include_raw_returns_errors_instead_of_raising() -> None:
    good = scripted(answer(JOKE_TEXT)).with_structured_output(Joke, include_raw=True).invoke("joke")
    assert good["parsed"] == Joke(**JOKE) and good["parsing_error"] is None
    assert isinstance(good["raw"], AIMessage)

    for reply in (
        answer("no JSON here"),
        answer('{"setup": 1}'),
        answer('{"a', finish_reason="length"),
    ):
        model = scripted(reply)
        result = model.with_structured_output(Joke, method="json_schema", include_raw=True).invoke(
            "joke"
        )
        assert result["parsed"] is None
        assert isinstance(result["parsing_error"], OutputParserException)
        assert result["raw"].content == reply.content


def test_function_calling_replies_without_the_tool_call_raise() -> None:
    runnable = scripted(answer("Here is a joke: ..."), model=INSTANT).with_structured_output(
        Joke, method="function_calling"
    )
    with pytest.raises(OutputParserException, match="did not call the 'Joke' tool"):
        runnable.invoke("joke")

    broken = AIMessage(
        content="",
        invalid_tool_calls=[
            {"name": "Joke", "args": '{"setup": "s', "id": "Joke:0", "error": "bad"}
        ],
        response_metadata={"finish_reason": "tool_calls"},
    )
    with pytest.raises(OutputParserException, match="not valid JSON"):
        scripted(broken, model=INSTANT).with_structured_output(
            Joke, method="function_calling"
        ).invoke("j")

    wrong = scripted(tool_answer("Joke", {"setup": "s"}), model=INSTANT)
    with pytest.raises(OutputParserException, match="does not match Joke"):
        wrong.with_structured_output(Joke, method="function_calling").invoke("joke")


# --- streaming, async, batch -------------------------------------------------------------------


def test_dict_schemas_stream_growing_partial_dicts() -> None:
    model = scripted(answer("```json\n" + JOKE_TEXT + "\n```", reasoning="thinking hard"))
    partials = list(model.with_structured_output(JokeDict).stream("joke"))
    assert len(partials) > 3
    assert all(isinstance(p, dict) for p in partials)
    assert partials[-1] == JOKE
    assert any("setup" in p and "punchline" not in p for p in partials)
    assert model.bodies[-1]["stream"] is True and model.bodies[-1]["response_format"] == {
        "type": "json_object"
    }


def test_pydantic_schemas_stream_one_validated_object_at_the_end() -> None:
    model = scripted(answer(JOKE_TEXT))
    assert list(model.with_structured_output(Joke).stream("joke")) == [Joke(**JOKE)]


def test_function_calling_streams_partial_arguments() -> None:
    model = scripted(tool_answer("Joke", JOKE), model=INSTANT)
    partials = list(
        model.with_structured_output(JOKE_TOOL, method="function_calling").stream("joke")
    )
    assert len(partials) > 3 and partials[-1] == JOKE


def test_a_stream_that_ends_in_bad_json_raises_after_its_partials() -> None:
    model = scripted(answer('{"setup": "Why did', finish_reason="length"))
    seen: list[Any] = []
    with pytest.raises(OutputParserException, match="truncated"):
        for partial in model.with_structured_output(JokeDict).stream("joke"):
            seen.append(partial)
    assert seen and seen[-1] == {"setup": "Why did"}


def test_include_raw_streams_raw_chunks_then_reports_the_error() -> None:
    # The JSON breaks after several good chunks: a fallback-based include_raw would
    # raise here, because fallbacks only cover a stream's first chunk.
    model = scripted(answer('{"setup": "Why did the cat', finish_reason="length"))
    chunks = list(model.with_structured_output(JokeDict, include_raw=True).stream("joke"))
    assert len(chunks) > 3 and all(set(chunk) == {"raw"} for chunk in chunks[:-1])
    assert chunks[-1]["parsed"] is None
    assert "truncated" in str(chunks[-1]["parsing_error"])
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert total["raw"].content == '{"setup": "Why did the cat'


def test_include_raw_invoke_makes_one_plain_request() -> None:
    model = scripted(answer(JOKE_TEXT))
    result = model.with_structured_output(JokeDict, include_raw=True).invoke("joke")
    assert result == {"raw": result["raw"], "parsed": JOKE, "parsing_error": None}
    assert "stream" not in model.bodies[-1]


async def test_async_invoke_stream_and_batch() -> None:
    model = scripted(answer(JOKE_TEXT), answer(JOKE_TEXT), answer(JOKE_TEXT), answer(JOKE_TEXT))
    assert await model.with_structured_output(Joke).ainvoke("joke") == Joke(**JOKE)
    partials = [p async for p in model.with_structured_output(JokeDict).astream("joke")]
    assert len(partials) > 3 and partials[-1] == JOKE
    results = await model.with_structured_output(Joke).abatch(["a", "b"])
    assert results == [Joke(**JOKE), Joke(**JOKE)]
    raw = await scripted(answer("nope")).with_structured_output(Joke, include_raw=True).ainvoke("x")
    assert raw["parsed"] is None and isinstance(raw["parsing_error"], OutputParserException)
    assert all(body["response_format"] == {"type": "json_object"} for body in model.bodies)


def test_batch() -> None:
    model = scripted(answer(JOKE_TEXT), answer("nope"))
    results = model.with_structured_output(Joke).batch(["a", "b"], return_exceptions=True)
    assert results[0] == Joke(**JOKE) and isinstance(results[1], OutputParserException)


# --- LangChain's standard unit suite, on a thinking model --------------------------------------


class _ThinkingModelSuite(KimiCapabilities, ChatModelUnitTests):  # type: ignore[misc]
    """The suite's structured-output checks on kimi-k2.5 (test_standard.py runs the
    whole suite on an instant model, because its tool tests force a tool choice)."""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "kimi-k2.5", "api_key": "test-token"}


@pytest.mark.parametrize("model_name", ["kimi-k2.5", "kimi-k2-thinking", "kimi-k3", INSTANT])
def test_standard_suite_structured_output_constructs_for_every_method(model_name: str) -> None:
    from langchain_tests.unit_tests.chat_models import TEST_PYDANTIC_MODELS

    suite = _ThinkingModelSuite()
    model = ChatKimi(model=model_name, api_key="test-token")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the documented fallback warning
        for schema in TEST_PYDANTIC_MODELS:
            suite.test_with_structured_output(model, schema)


def test_typeddicts_with_not_required_keys_work_for_every_method() -> None:
    described = describe_schema(Film)
    assert described.json_schema is not None and described.json_schema["required"] == ["title"]
    model = scripted(
        answer('{"title": "Heat"}'), tool_answer("Film", {"title": "Up"}), model=INSTANT
    )
    assert model.with_structured_output(Film, method="json_schema").invoke("x") == {"title": "Heat"}
    called = model.with_structured_output(Film, method="function_calling").invoke("x")
    assert called == {"title": "Up"}
    assert model.bodies[-1]["tools"][0]["function"]["name"] == "Film"


# --- json_schema on Moonshot's API, function_calling on kimi-k3 -----------------------------


# A JSON schema with $ref (a hand-written one: LangChain inlines a Pydantic class's refs).
FILM_SCHEMA: dict[str, Any] = {
    "title": "Film",
    "type": "object",
    "properties": {"title": {"type": "string"}, "lead": {"$ref": "#/$defs/Person"}},
    "required": ["title", "lead"],
    "$defs": {"Person": {"type": "object", "properties": {"name": {"type": "string"}}}},
}
FILM = {"title": "Heat", "lead": {"name": "Al Pacino"}}


@pytest.mark.parametrize(
    ("settings", "flavor"),
    [
        ({}, "acedata"),
        ({"base_url": "https://api.moonshot.ai/v1"}, "moonshot"),
        ({"base_url": "https://API.moonshot.cn/v1/"}, "moonshot"),
        ({"base_url": "https://gateway.example/v1", "api_flavor": "moonshot"}, "moonshot"),
        ({"base_url": "https://api.moonshot.ai/v1", "api_flavor": "acedata"}, "acedata"),
    ],
)
def test_the_api_flavor_comes_from_the_host_unless_set(
    settings: dict[str, Any], flavor: str
) -> None:
    assert ChatKimi(api_key="t", **settings)._effective_api_flavor() == flavor


@pytest.mark.parametrize("strict", [None, True, False])
def test_json_schema_on_moonshot_sends_the_schema_in_response_format(strict: bool | None) -> None:
    model = scripted(answer(JOKE_TEXT), api_flavor="moonshot")
    result = model.with_structured_output(Joke, method="json_schema", strict=strict).invoke("joke")
    assert result == Joke(**JOKE)  # still validated on arrival
    body = model.bodies[-1]
    expected: dict[str, Any] = {"name": "Joke", "schema": convert_to_json_schema(Joke)}
    if strict is not None:
        expected["strict"] = strict
    assert body["response_format"] == {"type": "json_schema", "json_schema": expected}
    assert body["messages"] == [{"role": "user", "content": "joke"}]  # no instruction


def test_json_schema_on_moonshot_still_refuses_a_reply_that_does_not_match() -> None:
    model = scripted(answer('{"setup": "only half"}'), api_flavor="moonshot")
    with pytest.raises(OutputParserException, match="does not match"):
        model.with_structured_output(Joke, method="json_schema").invoke("joke")


def test_json_mode_on_moonshot_is_unchanged() -> None:
    model = scripted(answer(JOKE_TEXT), api_flavor="moonshot")
    model.with_structured_output(Joke).invoke("joke")
    assert model.bodies[-1]["response_format"] == {"type": "json_object"}


def test_kimi_k26_takes_ref_and_oneof_schemas_as_an_instruction_with_one_warning() -> None:
    film = json.dumps(FILM)
    model = scripted(
        answer(film), answer(JOKE_TEXT), answer(film), model="kimi-k2.6", api_flavor="moonshot"
    )
    one_of = {
        "type": "object",
        "properties": {"v": {"oneOf": [{"type": "string"}, {"type": "integer"}]}},
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runnable = model.with_structured_output(FILM_SCHEMA, method="json_schema")
        model.with_structured_output(FILM_SCHEMA, method="json_schema")
    assert len(caught) == 1 and caught[0].filename == __file__
    assert "kimi-k2.6" in str(caught[0].message) and "$ref" in str(caught[0].message)
    assert runnable.invoke("Heat?") == FILM
    body = model.bodies[-1]
    assert body["response_format"] == {"type": "json_object"}
    assert "JSON schema" in system_text(body)
    # A flat schema goes in response_format on kimi-k2.6 too; oneOf does not.
    model.with_structured_output(Joke, method="json_schema").invoke("joke")
    assert model.bodies[-1]["response_format"]["type"] == "json_schema"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.with_structured_output(one_of, method="json_schema").invoke("v?")
    assert model.bodies[-1]["response_format"] == {"type": "json_object"}
    # Other models take $ref as it is.
    k3 = scripted(answer(film), model="kimi-k3", api_flavor="moonshot")
    assert k3.with_structured_output(FILM_SCHEMA, method="json_schema").invoke("Heat?") == FILM
    assert k3.bodies[-1]["response_format"]["json_schema"] == {
        "name": "Film",
        "schema": FILM_SCHEMA,
    }


def test_function_calling_on_kimi_k3_forces_the_one_tool_with_required() -> None:
    model = scripted(tool_answer("Joke", JOKE), model="kimi-k3")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback
        result = model.with_structured_output(Joke, method="function_calling").invoke("joke")
    assert result == Joke(**JOKE)
    body = model.bodies[-1]
    assert body["tool_choice"] == "required"
    assert [tool["function"]["name"] for tool in body["tools"]] == ["Joke"]
