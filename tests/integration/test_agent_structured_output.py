"""``create_agent(model, tools, response_format=Schema)`` on every active model, on both services.

LangChain's agents pick a strategy from ``model.profile["structured_output"]``:
``ProviderStrategy`` binds an OpenAI-style ``response_format`` of type
``json_schema``; ``ToolStrategy`` binds the schema as a tool with
``tool_choice="any"``. Ace Data Cloud refuses ``json_schema`` and most thinking
models refuse a forced ``tool_choice``, and the simulator refuses both the same
way. These tests run real agents (a tool turn, then the structured answer)
against it, with a responder that answers what each request asks for, and check
``structured_response`` and what went on the wire: sync and async, invoke and
stream, automatic and explicit strategies.

The expectations are written here from the services' documentation, not read
from ``langchain_kimi/data``.
"""

from __future__ import annotations

import inspect
import json
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.structured_output import ProviderStrategy, ToolStrategy
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessageChunk
from langchain_core.tools import tool
from pydantic import BaseModel

from langchain_kimi import ChatKimi, KimiToolChoiceError, _tools
from langchain_kimi._profiles import known_models
from langchain_kimi.testing import FakeKimiServer, Reply, ToolCall
from langchain_kimi.testing._rules import is_thinking

# Not deprecated on Moonshot (KIMI_API.md, "Catalogue, late 2026").
ACTIVE_MODELS = [
    "kimi-k3",
    "kimi-k2.8-preview",
    "kimi-k2.7-code",
    "kimi-k2.7-code-highspeed",
    "kimi-k2.6",
    "kimi-k2-instruct-0905",
]
FLAVORS = ["acedata", "moonshot"]
MODES = ["invoke", "ainvoke", "stream", "astream"]
# Moonshot documents json_schema for these (models.dev: structured_output).
NATIVE_SCHEMA_ON_MOONSHOT = {"kimi-k2.6"}
# How each model takes the forced tool_choice of ToolStrategy ("any" -> "required").
WIRE_CHOICE = {
    "kimi-k3": "required",  # takes it while thinking
    "kimi-k2-instruct-0905": "required",  # never thinks
    "kimi-k2.6": "auto",  # refuses it in every mode: emulated
    "kimi-k2.7-code": "auto",
    "kimi-k2.7-code-highspeed": "auto",
    "kimi-k2.8-preview": "auto",  # nothing published: emulated
}
QUESTION = "Which film is 'the one with the red pill'? Look it up."
MOVIE = {"title": "The Matrix", "year": 1999}


class Movie(BaseModel):
    """A film."""

    title: str
    year: int


@tool
def lookup_film(hint: str) -> str:
    """Find a film from a description."""
    return "The Matrix (1999)"


def test_the_active_models_are_the_datas() -> None:
    active = {name for name, rules in known_models().items() if not rules.deprecated}
    assert active == set(ACTIVE_MODELS)


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tools, "_warned_forced", set())


class Responder:
    """Answers like a model that follows the request: a lookup first, then the answer
    in the form asked for (JSON mode or json_schema: the object; the schema's tool: a
    call to it). Reasoning whenever the request thinks."""

    def __init__(self, *, decline: bool = False, bad_json: bool = False) -> None:
        self.decline = decline
        self.bad_json = bad_json

    def __call__(self, body: dict[str, Any]) -> Reply:
        reasoning = "Thinking it over." if is_thinking(body) else None
        messages = body["messages"]
        if not any(message["role"] == "tool" for message in messages):
            call = ToolCall("lookup_film", {"hint": "red pill"})
            return Reply(reasoning=reasoning, tool_calls=[call])
        kind = (body.get("response_format") or {}).get("type")
        if self.bad_json and kind:
            return Reply(reasoning=reasoning, content='{"title": "The Matrix"}')  # no year
        if kind == "json_object" and not body.get("stream"):
            # JSON mode promises an object, yet models fence it at times: a whole
            # answer is then reduced to the bare JSON (a stream goes out as it comes).
            return Reply(reasoning=reasoning, content=f"```json\n{json.dumps(MOVIE)}\n```")
        if kind == "json_object":
            return Reply(reasoning=reasoning, content=json.dumps(MOVIE))
        if kind == "json_schema":
            return Reply(reasoning=reasoning, content=json.dumps(MOVIE))
        offered = [tool["function"]["name"] for tool in body.get("tools") or []]
        if "Movie" in offered and not self.decline:
            return Reply(reasoning=reasoning, tool_calls=[ToolCall("Movie", MOVIE)])
        return Reply(reasoning=reasoning, content="It is The Matrix, from 1999.")


@pytest.fixture
def service(request: pytest.FixtureRequest) -> Iterator[FakeKimiServer]:
    with FakeKimiServer(api_key="agent-key", flavor=request.param) as server:
        yield server


@pytest.fixture
async def make_model(service: FakeKimiServer) -> AsyncIterator[Callable[..., ChatKimi]]:
    made: list[ChatKimi] = []

    def make(model: str, **kwargs: Any) -> ChatKimi:
        made.append(
            ChatKimi(
                model=model,
                base_url=service.base_url,
                api_key=service.api_key,
                api_flavor=service.flavor,
                max_retries=0,
                **kwargs,
            )
        )
        return made[-1]

    yield make
    for model in made:
        await model.aclose()


async def run(agent: Any, mode: str) -> dict[str, Any]:
    inputs = {"messages": [{"role": "user", "content": QUESTION}]}
    if mode == "invoke":
        return agent.invoke(inputs)  # type: ignore[no-any-return]
    if mode == "ainvoke":
        return await agent.ainvoke(inputs)  # type: ignore[no-any-return]
    # stream_mode "messages" makes the model stream: the answer is checked at its end.
    final: dict[str, Any] = {}
    streamed = 0
    if mode == "stream":
        for kind, payload in agent.stream(inputs, stream_mode=["values", "messages"]):
            if kind == "values":
                final = payload
            elif isinstance(payload[0], AIMessageChunk):
                streamed += 1
    else:
        async for kind, payload in agent.astream(inputs, stream_mode=["values", "messages"]):
            if kind == "values":
                final = payload
            elif isinstance(payload[0], AIMessageChunk):
                streamed += 1
    assert streamed > 0
    return final


def system_text(body: Mapping[str, Any]) -> str:
    first = body["messages"][0]
    return str(first["content"]) if first["role"] == "system" else ""


# --- the automatic choice ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model_name", ACTIVE_MODELS)
@pytest.mark.parametrize("service", FLAVORS, indirect=True)
async def test_create_agent_with_a_response_format(
    service: FakeKimiServer, make_model: Callable[..., ChatKimi], model_name: str, mode: str
) -> None:
    service.set_responder(Responder())
    model = make_model(model_name)
    agent = create_agent(model, [lookup_film], response_format=Movie)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an emulated choice warns: tested below
        result = await run(agent, mode)

    assert result["structured_response"] == Movie(**MOVIE)
    bodies = [request.body for request in service.requests]
    assert len(bodies) == 2  # the lookup, then the answer: nothing refused, nothing retried
    assert all(body.get("stream", False) is mode.endswith("stream") for body in bodies)
    last = bodies[-1]
    if service.flavor == "acedata":
        # json_schema is refused there: JSON mode, the schema as an instruction.
        assert model.profile is not None and model.profile["structured_output"] is True
        assert last["response_format"] == {"type": "json_object"}
        assert '"year"' in system_text(last) and "final answer" in system_text(last)
        assert "tool_choice" not in last
    elif model_name in NATIVE_SCHEMA_ON_MOONSHOT:
        assert last["response_format"]["type"] == "json_schema"
        assert last["response_format"]["json_schema"]["name"] == "Movie"
        assert system_text(last) == ""  # sent as is: no instruction
    else:
        # No native structured output: the schema is a tool, forced the model's way.
        assert model.profile is not None and not model.profile.get("structured_output")
        assert "response_format" not in last
        assert last["tool_choice"] == WIRE_CHOICE[model_name]
        assert "Movie" in [tool["function"]["name"] for tool in last["tools"]]
        if WIRE_CHOICE[model_name] == "auto":
            assert "calling one of the tools" in system_text(last)
    # The structured answer is also the last message (ProviderStrategy) or its tool call.
    assert result["messages"][-1].type in ("ai", "tool")


# --- explicit strategies -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
@pytest.mark.parametrize("model_name", ACTIVE_MODELS)
@pytest.mark.parametrize("service", FLAVORS, indirect=True)
async def test_tool_strategy_forces_the_schema_tool_the_models_way(
    service: FakeKimiServer, make_model: Callable[..., ChatKimi], model_name: str, mode: str
) -> None:
    service.set_responder(Responder())
    agent = create_agent(make_model(model_name), [lookup_film], response_format=ToolStrategy(Movie))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = await run(agent, mode)
    assert result["structured_response"] == Movie(**MOVIE)
    for request in service.requests:
        assert request.body["tool_choice"] == WIRE_CHOICE[model_name]
        assert "response_format" not in request.body


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
@pytest.mark.parametrize(
    ("service", "model_name"),
    [
        *[("acedata", name) for name in ACTIVE_MODELS],
        ("moonshot", "kimi-k2.6"),
        ("moonshot", "kimi-k3"),
    ],
    indirect=["service"],
)
async def test_provider_strategy_works_where_the_service_or_the_client_can_honour_it(
    service: FakeKimiServer, make_model: Callable[..., ChatKimi], model_name: str, mode: str
) -> None:
    service.set_responder(Responder())
    agent = create_agent(
        make_model(model_name), [lookup_film], response_format=ProviderStrategy(Movie)
    )
    result = await run(agent, mode)
    assert result["structured_response"] == Movie(**MOVIE)
    kind = service.requests[-1].body["response_format"]["type"]
    assert kind == ("json_object" if service.flavor == "acedata" else "json_schema")
    # What the agent keeps is the bare JSON (the fence the model added is gone on Ace).
    assert json.loads(result["messages"][-1].content) == MOVIE


# --- failures are raised, never passed off as an answer ---------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("service", ["moonshot"], indirect=True)
async def test_an_emulated_tool_strategy_the_model_declines_raises(
    service: FakeKimiServer, make_model: Callable[..., ChatKimi], mode: str
) -> None:
    service.set_responder(Responder(decline=True))
    agent = create_agent(make_model("kimi-k2.7-code"), [lookup_film], response_format=Movie)
    with (
        warnings.catch_warnings(),
        pytest.raises(KimiToolChoiceError, match=r"kimi-k2\.7-code declined") as info,
    ):
        warnings.simplefilter("ignore")
        await run(agent, mode)
    assert info.value.content == "It is The Matrix, from 1999."
    assert service.request_count == 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("service", ["acedata"], indirect=True)
async def test_json_that_does_not_match_the_schema_raises_on_arrival(
    service: FakeKimiServer, make_model: Callable[..., ChatKimi], mode: str
) -> None:
    service.set_responder(Responder(bad_json=True))
    agent = create_agent(make_model("kimi-k2.6"), [lookup_film], response_format=Movie)
    with pytest.raises(OutputParserException, match="year"):
        await run(agent, mode)


@pytest.mark.parametrize("service", ["acedata"], indirect=True)
def test_an_agents_emulated_choice_warns_once_at_the_users_invoke_line(
    service: FakeKimiServer, make_model: Callable[..., ChatKimi]
) -> None:
    service.set_responder(Responder())
    agent = create_agent(
        make_model("kimi-k2.7-code"), [lookup_film], response_format=ToolStrategy(Movie)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        agent.invoke({"messages": [{"role": "user", "content": QUESTION}]})
        agent.invoke({"messages": [{"role": "user", "content": QUESTION}]})
    [warning] = caught  # two runs, four model calls: one warning
    assert (warning.filename, warning.lineno) == (__file__, line)
    assert "kimi-k2.7-code refuses a forced tool_choice" in str(warning.message)
