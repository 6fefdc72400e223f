"""The simulator's model-like mode over real sockets: raw HTTP for the wire, ChatKimi for the rest.

Each behaviour the mode promises (langchain_kimi.testing._model_like): tools
called when forced, instructed, asked, named or relevant, with arguments that
fit their schemas and come from the prompt; JSON schemas filled; words
otherwise; reasoning only when thinking; stop, max_tokens and n honoured;
plausible usage; the service's rules still enforced first.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import pytest
import requests
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from langchain_kimi import ChatKimi
from langchain_kimi.testing import FakeKimiServer, ModelLikeResponder, Reply

TOKEN = "sk-model-like"
THINKING = "kimi-k2.6"
INSTANT = "kimi-k2-instruct-0905"


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"{city}: 18 C, sunny"


@tool
def get_time(zone: str) -> str:
    """Current time in an IANA time zone."""
    return "12:00"


class MagicInput(BaseModel):
    input: int = Field(..., gt=-1000, lt=1000)


@tool(args_schema=MagicInput)
def magic_function(input: int) -> int:
    """Apply a magic function to an input."""
    return input + 2


@tool
def unicode_customer(customer_name: str, description: str) -> str:
    """Create a customer with a Unicode name."""
    return f"Created {customer_name}"


class Address(BaseModel):
    street: str
    zip_code: str = Field(pattern=r"^\d{5}$")


class Profile(BaseModel):
    """A nested schema, with a $ref, a bounded number and an optional field."""

    name: str
    age: int = Field(ge=18, le=99)
    home: Address
    nickname: str | None = None
    tags: list[str] = Field(min_length=2)


class Joke(BaseModel):
    """Joke to tell user."""

    setup: str
    punchline: str


@pytest.fixture
def server() -> Iterator[FakeKimiServer]:
    with FakeKimiServer(api_key=TOKEN, model_like=True) as fake:
        yield fake


@pytest.fixture
def make_model(server: FakeKimiServer) -> Iterator[Callable[..., ChatKimi]]:
    models: list[ChatKimi] = []

    def make(model: str = INSTANT, **kwargs: Any) -> ChatKimi:
        chat = ChatKimi(
            model=model, base_url=server.base_url, api_key=TOKEN, max_retries=0, **kwargs
        )
        models.append(chat)
        return chat

    yield make
    for chat in models:
        chat.close()


def post(server: FakeKimiServer, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{server.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )


def ask(server: FakeKimiServer, model: str = INSTANT, **body: Any) -> dict[str, Any]:
    """A non-streamed request; the parsed 200 answer."""
    body.setdefault("messages", [{"role": "user", "content": "Hello"}])
    response = post(server, {"model": model, **body})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def message_of(answer: dict[str, Any], index: int = 0) -> dict[str, Any]:
    message: dict[str, Any] = answer["choices"][index]["message"]
    return message


def calls_of(message: AIMessage) -> list[tuple[str, dict[str, Any]]]:
    return [(call["name"], call["args"]) for call in message.tool_calls]


async def run(model: Any, value: Any, mode: str) -> AIMessage:
    """invoke or ainvoke, as the test is parametrized."""
    result = await model.ainvoke(value) if mode == "ainvoke" else model.invoke(value)
    assert isinstance(result, AIMessage)
    return result


MODES = ["invoke", "ainvoke"]


# --- words and reasoning ------------------------------------------------------------------


def test_words_say_what_was_received_and_are_deterministic(server: FakeKimiServer) -> None:
    first = ask(server, messages=[{"role": "user", "content": "How are you?"}])
    again = ask(server, messages=[{"role": "user", "content": "How are you?"}])
    message = message_of(first)
    assert "How are you?" in message["content"]
    assert "reasoning_content" not in message  # kimi-k2-instruct does not think
    assert first["choices"][0]["finish_reason"] == "stop"
    assert message == message_of(again)
    assert first["model"] == INSTANT


def test_reasoning_exactly_when_the_request_thinks(server: FakeKimiServer) -> None:
    thinking = message_of(ask(server, THINKING))
    assert thinking["reasoning_content"].startswith("The user wrote: “Hello”")
    switched_off = message_of(ask(server, THINKING, thinking={"type": "disabled"}))
    assert "reasoning_content" not in switched_off
    always = message_of(ask(server, "kimi-k2-thinking", thinking={"type": "disabled"}))
    assert always["reasoning_content"]


def test_the_service_rules_still_come_first(server: FakeKimiServer) -> None:
    tools = [convert_to_openai_tool(get_weather)]
    forced = post(
        server,
        {
            "model": THINKING,
            "messages": [{"role": "user", "content": "Hi"}],
            "tools": tools,
            "tool_choice": "required",
        },
    )
    assert forced.status_code == 400
    assert "incompatible with thinking" in forced.json()["error"]["message"]
    no_replay = post(
        server,
        {
            "model": THINKING,
            "tools": tools,
            "messages": [
                {"role": "user", "content": "Weather in Oslo?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            ],
        },
    )
    assert no_replay.status_code == 400
    assert "reasoning_content is missing" in no_replay.json()["error"]["message"]


# --- tools ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model_name", [THINKING, INSTANT])
async def test_a_relevant_tool_is_called_with_the_prompts_values(
    make_model: Callable[..., ChatKimi], model_name: str, mode: str
) -> None:
    model = make_model(model_name).bind_tools([get_time, get_weather])
    message = await run(model, "What is the weather in San Francisco, CA?", mode)
    assert calls_of(message) == [("get_weather", {"city": "San Francisco, CA"})]
    assert message.tool_calls[0]["id"] == "functions.get_weather:0"
    if model_name == THINKING:
        assert "get_weather" in message.additional_kwargs["reasoning_content"]


@pytest.mark.parametrize("mode", MODES)
async def test_no_tool_when_none_is_relevant_or_tool_choice_is_none(
    make_model: Callable[..., ChatKimi], mode: str
) -> None:
    model = make_model()
    unrelated = await run(model.bind_tools([get_weather]), "Tell me a joke about cats.", mode)
    assert unrelated.tool_calls == [] and "joke about cats" in unrelated.text
    refused = await run(
        model.bind_tools([get_weather], tool_choice="none"), "What is the weather in Oslo?", mode
    )
    assert refused.tool_calls == []


@pytest.mark.parametrize("mode", MODES)
async def test_a_tool_named_like_a_call_gets_its_arguments(
    make_model: Callable[..., ChatKimi], mode: str
) -> None:
    model = make_model(THINKING).bind_tools([get_weather, magic_function])
    message = await run(model, "What is the value of magic_function(3)? Use the tool.", mode)
    assert calls_of(message) == [("magic_function", {"input": 3})]


def test_arguments_from_quotes_and_key_value_pairs(make_model: Callable[..., ChatKimi]) -> None:
    model = make_model().bind_tools([unicode_customer])
    message = model.invoke(
        "Create a customer named '你好啊集团' (Hello Group) - a Chinese technology company"
    )
    assert calls_of(message) == [
        ("unicode_customer", {"customer_name": "你好啊集团", "description": "Hello Group"})
    ]
    named = model.invoke("Use the tool with description=VIP and customer_name: 'Ann Lee'")
    assert calls_of(named) == [
        ("unicode_customer", {"customer_name": "Ann Lee", "description": "VIP"})
    ]


def test_asked_for_a_tool_it_calls_the_best_one(make_model: Callable[..., ChatKimi]) -> None:
    model = make_model().bind_tools([get_weather, get_time])
    message = model.invoke("Please use a tool to tell me the time in Europe/Oslo.")
    assert [name for name, _ in calls_of(message)] == ["get_time"]
    declined = model.invoke("Do not use any tool: what is your name?")
    assert declined.tool_calls == []


def test_tools_named_in_the_prompt_are_called_together(make_model: Callable[..., ChatKimi]) -> None:
    model = make_model()
    prompt = "Call get_time and get_weather for Oslo."
    both = model.bind_tools([get_weather, get_time]).invoke(prompt)
    assert [name for name, _ in calls_of(both)] == ["get_time", "get_weather"]
    assert [call["id"] for call in both.tool_calls] == [
        "functions.get_time:0",
        "functions.get_weather:1",
    ]
    one = model.bind_tools([get_weather, get_time], parallel_tool_calls=False).invoke(prompt)
    assert [name for name, _ in calls_of(one)] == ["get_time"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_forced_choice_is_honoured_with_schema_valid_arguments(
    make_model: Callable[..., ChatKimi], mode: str
) -> None:
    model = make_model()
    some = await run(
        model.bind_tools([magic_function, get_weather], tool_choice="any"), "Hello!", mode
    )
    assert [name for name, _ in calls_of(some)] == ["magic_function"]
    jsonschema.validate(some.tool_calls[0]["args"], MagicInput.model_json_schema())
    named = await run(
        model.bind_tools([magic_function, get_weather], tool_choice="get_weather"), "Hello!", mode
    )
    assert [name for name, _ in calls_of(named)] == ["get_weather"]


@pytest.mark.parametrize(
    ("instruction", "expected"),
    [
        ("You must call the tool `get_time` now.", ["get_time"]),
        ("Answer briefly.\n\nYou have to use one of the tools.", ["get_weather"]),
        ("Always call a tool. Nothing else.", ["get_weather"]),
        # A persona's advice or a condition does not force a call (an agent would loop).
        ("Use the tools provided to answer questions.", []),
        ("You must use tools when needed.", []),
        ("You can use tools if needed.", []),
        ("Do not call any tool.", []),
        ("You must not use the tools.", []),
    ],
)
def test_an_instruction_in_the_system_message_forces_a_call(
    make_model: Callable[..., ChatKimi], instruction: str, expected: list[str]
) -> None:
    # How a client emulates a forced choice on a model that refuses one while thinking.
    model = make_model(THINKING).bind_tools([get_weather, get_time])
    message = model.invoke([SystemMessage(instruction), HumanMessage("Hello!")])
    assert [name for name, _ in calls_of(message)] == expected


def test_after_tool_results_it_reports_them_unless_forced(
    make_model: Callable[..., ChatKimi],
) -> None:
    model = make_model(THINKING)
    question = HumanMessage("What is the weather in Oslo?")
    call = model.bind_tools([get_weather]).invoke([question])
    result = ToolMessage(
        get_weather.invoke(call.tool_calls[0]["args"]), tool_call_id=call.tool_calls[0]["id"]
    )
    # The simulator enforces the replay rule on this second turn: ChatKimi sends the reasoning back.
    final = model.bind_tools([get_weather]).invoke([question, call, result])
    assert final.tool_calls == []
    assert "get_weather returned “Oslo: 18 C, sunny”" in final.text
    forced = make_model().bind_tools([get_weather, Joke], tool_choice="any")
    first = forced.invoke([question])
    follow = ToolMessage("sunny", tool_call_id=first.tool_calls[0]["id"])
    second = forced.invoke([question, first, follow])
    # Forced again: the tool not used yet for this question (an agent's output tool).
    assert [name for name, _ in calls_of(second)] == ["Joke"]
    assert second.tool_calls[0]["id"] == "functions.Joke:1"  # ids go on across turns


@pytest.mark.parametrize("model_name", [THINKING, INSTANT])
def test_an_agent_loop_runs_to_its_answer(
    make_model: Callable[..., ChatKimi], model_name: str
) -> None:
    agent = create_agent(make_model(model_name), [get_weather, get_time])
    result = agent.invoke({"messages": [{"role": "user", "content": "Weather in 'Oslo'?"}]})
    messages = result["messages"]
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert messages[2].content == "Oslo: 18 C, sunny"
    assert "Oslo: 18 C, sunny" in messages[-1].text


async def test_an_agent_loop_runs_async(make_model: Callable[..., ChatKimi]) -> None:
    agent = create_agent(make_model(THINKING), [get_weather])
    result = await agent.ainvoke({"messages": [{"role": "user", "content": "Weather in Oslo?"}]})
    assert "Oslo: 18 C, sunny" in result["messages"][-1].text


# --- JSON -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model_name", [THINKING, INSTANT])
async def test_structured_output_gets_an_instance_of_the_stated_schema(
    make_model: Callable[..., ChatKimi], model_name: str, mode: str
) -> None:
    structured = make_model(model_name).with_structured_output(Profile)
    profile = await structured.ainvoke("Who?") if mode == "ainvoke" else structured.invoke("Who?")
    assert isinstance(profile, Profile)
    assert 18 <= profile.age <= 99 and len(profile.tags) >= 2 and profile.home.zip_code.isdigit()


def test_the_schema_is_found_whatever_the_wording(server: FakeKimiServer) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 7}},
        "required": ["n"],
    }
    system = [
        {"type": "text", "text": 'Be terse. An example: {"n": 1}.'},
        {"type": "text", "text": f"Reply as JSON, schema:\n```json\n{json.dumps(schema)}\n```"},
    ]
    answer = ask(
        server,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": "Go"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(message_of(answer)["content"]) == {"n": 7}


def test_json_schema_on_moonshot() -> None:
    schema = Profile.model_json_schema()
    with FakeKimiServer(api_key=TOKEN, model_like=True, flavor="moonshot") as moonshot:
        answer = ask(
            moonshot,
            THINKING,
            messages=[{"role": "user", "content": "Name: Ann. age = 30"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "Profile", "schema": schema},
            },
        )
    value = json.loads(message_of(answer)["content"])
    jsonschema.validate(value, schema)
    # Named values of the prompt fill the matching properties; loose text does not.
    assert (value["name"], value["age"]) == ("Ann", 30)


def test_json_mode_without_a_schema(server: FakeKimiServer) -> None:
    keyed = ask(
        server,
        messages=[{"role": "user", "content": "A joke as JSON with 'setup' and 'punchline' keys."}],
        response_format={"type": "json_object"},
    )
    assert set(json.loads(message_of(keyed)["content"])) == {"setup", "punchline"}
    bare = ask(server, response_format={"type": "json_object"})
    assert json.loads(message_of(bare)["content"]) == {"answer": "You said: “Hello”."}


# --- limits -------------------------------------------------------------------------------


def test_stop_cuts_the_content_before_the_sequence(server: FakeKimiServer) -> None:
    answer = ask(server, messages=[{"role": "user", "content": "hi"}], stop=["“hi”", "never"])
    assert message_of(answer)["content"] == "You said: "
    assert answer["choices"][0]["finish_reason"] == "stop"
    single = ask(server, messages=[{"role": "user", "content": "hi"}], stop="said")
    assert message_of(single)["content"] == "You "


def test_max_tokens_caps_reasoning_then_content(server: FakeKimiServer) -> None:
    plain = ask(server, max_tokens=3)
    assert plain["choices"][0]["finish_reason"] == "length"
    # "You said: " is 10 ASCII characters, 2.5 tokens; the "“" after it would make 3.2.
    assert message_of(plain)["content"] == "You said: "
    assert plain["usage"]["completion_tokens"] <= 3
    thinking = ask(server, THINKING, max_completion_tokens=4)
    message = message_of(thinking)
    assert (message["content"], thinking["choices"][0]["finish_reason"]) == ("", "length")
    assert thinking["usage"]["completion_tokens_details"]["reasoning_tokens"] <= 4
    roomy = ask(server, THINKING, max_tokens=4096)
    assert roomy["choices"][0]["finish_reason"] == "stop"


def test_max_tokens_can_cut_tool_arguments(make_model: Callable[..., ChatKimi]) -> None:
    model = make_model(max_tokens=8).bind_tools([unicode_customer], tool_choice="any")
    message = model.invoke("Create a customer named 'Ann'")
    assert message.response_metadata["finish_reason"] == "length"
    assert message.tool_calls == []
    assert message.invalid_tool_calls[0]["name"] == "unicode_customer"


def test_n_gives_that_many_choices(
    server: FakeKimiServer, make_model: Callable[..., ChatKimi]
) -> None:
    answer = ask(server, n=3)
    assert [choice["index"] for choice in answer["choices"]] == [0, 1, 2]
    contents = [choice["message"]["content"] for choice in answer["choices"]]
    assert contents[1] == contents[0] + " (choice 2)" and len(set(contents)) == 3
    single = ask(server)
    assert answer["usage"]["completion_tokens"] > single["usage"]["completion_tokens"]
    assert answer["usage"]["prompt_tokens"] == single["usage"]["prompt_tokens"]
    result = make_model().generate([[HumanMessage("hey")]], n=2)
    assert [generation.text.endswith("(choice 2)") for generation in result.generations[0]] == [
        False,
        True,
    ]
    bad = post(server, {"model": INSTANT, "messages": [{"role": "user", "content": "x"}], "n": 0})
    assert bad.status_code == 400 and "n must be a positive integer" in bad.text


def test_n_choices_streamed(server: FakeKimiServer) -> None:
    response = post(
        server,
        {
            "model": INSTANT,
            "n": 2,
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "hey"}],
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [
        line[len("data: ") :] for line in response.text.splitlines() if line.startswith("data: ")
    ]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    text: dict[int, str] = {0: "", 1: ""}
    for chunk in chunks:
        for choice in chunk["choices"]:
            text[choice["index"]] += choice["delta"].get("content") or ""
    assert text[1] == text[0] + " (choice 2)"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert len({chunk["id"] for chunk in chunks}) == 1


# --- usage ------------------------------------------------------------------------------


def test_usage_counts_the_whole_request(server: FakeKimiServer) -> None:
    bare = ask(server)["usage"]
    with_tools = ask(server, tools=[convert_to_openai_tool(get_weather)])["usage"]
    assert with_tools["prompt_tokens"] > bare["prompt_tokens"]
    ascii_prompt = ask(server, messages=[{"role": "user", "content": "abcdef" * 10}])["usage"]
    cjk_prompt = ask(server, messages=[{"role": "user", "content": "你好世界吗" * 12}])["usage"]
    assert cjk_prompt["prompt_tokens"] > ascii_prompt["prompt_tokens"]  # 60 characters each
    thinking = ask(server, THINKING)["usage"]
    details = thinking["completion_tokens_details"]
    assert 0 < details["reasoning_tokens"] < thinking["completion_tokens"]
    for usage in (bare, with_tools, thinking):
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_chat_kimi_reports_that_usage(make_model: Callable[..., ChatKimi]) -> None:
    message = make_model(THINKING).invoke("Hello")
    usage = message.usage_metadata
    assert usage is not None
    assert usage["output_token_details"]["reasoning"] > 0
    assert usage["output_tokens"] > usage["output_token_details"]["reasoning"]


# --- how the mode is switched on --------------------------------------------------------


def test_queued_replies_come_first_and_set_responder_replaces_it(server: FakeKimiServer) -> None:
    server.queue(Reply(content="scripted"))
    assert message_of(ask(server))["content"] == "scripted"
    assert message_of(ask(server))["content"].startswith("You said:")
    server.set_responder(None)
    assert message_of(ask(server))["content"] == "Echo: Hello"
    server.set_responder(ModelLikeResponder())
    assert message_of(ask(server))["content"].startswith("You said:")
    assert repr(ModelLikeResponder()) == "ModelLikeResponder()"


def test_the_default_server_still_echoes() -> None:
    with FakeKimiServer(api_key=TOKEN) as plain:
        assert message_of(ask(plain))["content"] == "Echo: Hello"


@pytest.mark.kimi_server(model_like=True, flavor="moonshot")
def test_the_pytest_marker_configures_the_fixture(
    kimi_server: FakeKimiServer, kimi_chat_model: Callable[..., ChatKimi]
) -> None:
    assert kimi_server.flavor == "moonshot"
    with kimi_chat_model(model=THINKING, api_flavor="moonshot") as model:
        message = model.bind_tools([get_weather]).invoke("What is the weather in Oslo?")
    assert calls_of(message) == [("get_weather", {"city": "Oslo"})]


def test_the_fixture_without_a_marker_echoes(kimi_chat_model: Callable[..., ChatKimi]) -> None:
    with kimi_chat_model(model=INSTANT) as model:
        assert model.invoke("Hello").content == "Echo: Hello"


def test_the_mode_shares_no_code_with_the_client() -> None:
    """The simulator is the referee: answering imports nothing of the client, nor langchain-core."""
    code = textwrap.dedent(
        """
        import sys
        from langchain_kimi.testing._model_like import answer

        tool = {"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]{2}$"}}}}}
        answer({"model": "kimi-k2.6", "messages": [{"role": "user", "content": "Use f."}],
                "tools": [tool]})
        answer({"model": "kimi-k2.6", "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "json_object"}, "n": 2})
        print(" ".join(sorted(sys.modules)))
        """
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        ).stdout.split()
    )
    assert "langchain_kimi.testing._model_like" in loaded
    client = {"langchain_kimi.chat_models", "langchain_kimi._payload", "langchain_kimi._sse"}
    client |= {"langchain_kimi._response", "langchain_kimi._structured", "langchain_core"}
    assert loaded & client == set()
