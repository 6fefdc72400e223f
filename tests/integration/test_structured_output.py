"""with_structured_output over real sockets, against FakeKimiServer.

The simulator enforces the service's rules (forced tool_choice under thinking,
JSON mode with Partial Mode, the reasoning replay rule), so a request the real
service would refuse fails here with the same 400.
"""

from __future__ import annotations

import enum
import json
import warnings
from collections.abc import Iterator
from typing import Any, NotRequired

import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from langchain_kimi import ChatKimi, KimiToolChoiceError, _tools
from langchain_kimi.testing import FakeKimiServer, Reply, ToolCall

from .conftest import TOKEN

INSTANT = "kimi-k2-instruct-0905"


# The (str, Enum) form users write, not StrEnum: that is what is under test.
class Genre(str, enum.Enum):  # noqa: UP042
    SCIFI = "sci-fi"
    DRAMA = "drama"


class CastMember(BaseModel):
    name: str
    role: str | None = None


class Movie(BaseModel):
    """A film, as the user asked about it."""

    title: str
    year: int
    genre: Genre
    cast: list[CastMember] = Field(description="main actors, most famous first")
    sequel_of: str | None = None
    tags: list[str] = Field(default_factory=list)


class MovieDict(TypedDict):
    """A film."""

    title: str
    year: int
    tags: NotRequired[list[str]]


MOVIE_SCHEMA: dict[str, Any] = {
    "title": "Movie",
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer"},
        "cast": {"type": "array", "items": {"$ref": "#/$defs/Person"}},
    },
    "required": ["title", "year", "cast"],
    "additionalProperties": False,
    "$defs": {
        "Person": {
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
        }
    },
}

MATRIX: dict[str, Any] = {
    "title": "The Matrix",
    "year": 1999,
    "genre": "sci-fi",
    "cast": [{"name": "Keanu Reeves", "role": "Neo"}, {"name": "Carrie-Anne Moss"}],
    "sequel_of": None,
}
MATRIX_TEXT = json.dumps(MATRIX)


@pytest.fixture(autouse=True)
def _fresh_fallback_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tools, "_warned_forced", set())


@pytest.fixture
def kimi(server: FakeKimiServer) -> Iterator[Any]:
    made: list[ChatKimi] = []

    def make(**kwargs: Any) -> ChatKimi:
        settings: dict[str, Any] = {
            "base_url": server.base_url,
            "api_key": TOKEN,
            "max_retries": 0,
        }
        settings.update(kwargs)
        model = ChatKimi(**settings)
        made.append(model)
        return model

    yield make
    for model in made:
        model.close()


def test_nested_pydantic_model_round_trips(server: FakeKimiServer, kimi: Any) -> None:
    server.queue(
        Reply(
            content=f" ```json\n{MATRIX_TEXT}\n```",
            reasoning='Maybe {"title": "Matrix Reloaded"}? No, the first one.',
        )
    )
    structured = kimi(model="kimi-k2.5").with_structured_output(Movie)
    movie = structured.invoke(
        [SystemMessage("You are a film librarian."), HumanMessage("The first Matrix film?")]
    )
    assert movie == Movie.model_validate(MATRIX)
    assert movie.genre is Genre.SCIFI and movie.cast[1].role is None

    body = server.requests[-1].body
    assert body["response_format"] == {"type": "json_object"}
    system = body["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith("You are a film librarian.\n\nAnswer with a single JSON")
    assert '"enum": ["sci-fi", "drama"]' in system["content"]
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


async def test_typeddict_round_trips_async(server: FakeKimiServer, kimi: Any) -> None:
    server.queue(Reply(content='{"title": "Alien", "year": 1979}'))
    model = kimi(model="kimi-k2-thinking")
    result = await model.with_structured_output(MovieDict).ainvoke("Ridley Scott's 1979 film?")
    assert result == {"title": "Alien", "year": 1979}
    assert server.requests[-1].body["response_format"] == {"type": "json_object"}
    await model.aclose()


def test_json_schema_dict_round_trips_and_is_checked_strictly(
    server: FakeKimiServer, kimi: Any
) -> None:
    good = {"title": "Heat", "year": 1995, "cast": [{"name": "Al Pacino"}]}
    server.queue(
        Reply(content=json.dumps(good)),
        Reply(content='{"title": "Heat", "year": "1995", "cast": [{}], "studio": "WB"}'),
    )
    structured = kimi().with_structured_output(MOVIE_SCHEMA, method="json_schema")
    assert structured.invoke("Heat?") == good
    with pytest.raises(OutputParserException) as caught:
        structured.invoke("Heat?")
    message = str(caught.value)
    assert "$.year: expected integer, got string" in message
    assert "$.cast[0]: missing required property 'name'" in message
    assert "unexpected property 'studio'" in message
    # Both requests were the JSON-mode request: the service has no schema mode.
    assert server.requests[0].body == server.requests[1].body


def test_schema_less_json_mode_returns_any_object(server: FakeKimiServer, kimi: Any) -> None:
    server.queue(Reply(content='\n{"cities": ["Oslo", "Bergen"], "count": 2}\n'))
    result = kimi(model=INSTANT).with_structured_output(method="json_mode").invoke("Norway?")
    assert result == {"cities": ["Oslo", "Bergen"], "count": 2}
    instruction = server.requests[-1].body["messages"][0]["content"]
    assert "single JSON object" in instruction and "schema" not in instruction


def test_include_raw_returns_a_malformed_reply_instead_of_raising(
    server: FakeKimiServer, kimi: Any
) -> None:
    server.queue(Reply(content="I'm sorry, I can only answer in prose."))
    result = kimi().with_structured_output(Movie, include_raw=True).invoke("Matrix?")
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], OutputParserException)
    assert "only answer in prose" in str(result["parsing_error"])
    assert isinstance(result["raw"], AIMessage)
    assert result["raw"].content == "I'm sorry, I can only answer in prose."
    assert result["raw"].additional_kwargs["reasoning_content"]  # the simulator's reasoning


def test_without_include_raw_a_non_json_reply_raises(server: FakeKimiServer, kimi: Any) -> None:
    server.queue(Reply(content="The Matrix (1999) is a sci-fi film."))
    with pytest.raises(OutputParserException, match=r"not valid JSON[\s\S]*The Matrix \(1999\)"):
        kimi().with_structured_output(Movie).invoke("Matrix?")


def test_a_reply_cut_by_length_says_it_was_truncated(server: FakeKimiServer, kimi: Any) -> None:
    cut = MATRIX_TEXT[:40]
    server.queue(
        Reply(content=cut, finish_reason="length"), Reply(content=cut, finish_reason="length")
    )
    structured = kimi(max_tokens=64).with_structured_output(Movie)
    with pytest.raises(OutputParserException) as caught:
        structured.invoke("Matrix?")
    assert "truncated" in str(caught.value) and "max_tokens" in str(caught.value)
    with pytest.raises(OutputParserException, match="truncated"):
        list(structured.stream("Matrix?"))


def test_streaming_a_dict_schema_yields_growing_partials(server: FakeKimiServer, kimi: Any) -> None:
    server.queue(Reply(content=MATRIX_TEXT, chunk_size=6))
    partials = list(kimi().with_structured_output(MOVIE_SCHEMA).stream("Matrix?"))
    assert len(partials) > 5
    assert partials[-1] == MATRIX
    assert any(p.get("title") and "year" not in p for p in partials)
    assert server.requests[-1].body["stream"] is True


async def test_async_streaming_a_dict_schema_yields_growing_partials(
    server: FakeKimiServer, kimi: Any
) -> None:
    server.queue(Reply(content=f"```json\n{MATRIX_TEXT}\n```", chunk_size=5))
    model = kimi()
    partials = [p async for p in model.with_structured_output(MovieDict).astream("Matrix?")]
    assert len(partials) > 5 and partials[-1] == MATRIX
    await model.aclose()


def test_streaming_a_pydantic_schema_yields_the_object_once(
    server: FakeKimiServer, kimi: Any
) -> None:
    server.queue(Reply(content=MATRIX_TEXT, chunk_size=3))
    assert list(kimi().with_structured_output(Movie).stream("Matrix?")) == [
        Movie.model_validate(MATRIX)
    ]


@pytest.mark.parametrize(
    ("model_name", "wire_choice", "thinking"),
    [
        # kimi-k2.5 takes the forced tool with thinking off; kimi-k3 takes "required"
        # while thinking; kimi-k2-thinking and kimi-k2.6 refuse it: "auto" + an instruction.
        ("kimi-k2.5", {"type": "function", "function": {"name": "Movie"}}, {"type": "disabled"}),
        ("kimi-k3", "required", None),
        ("kimi-k2-thinking", "auto", None),
        ("kimi-k2.6", "auto", None),
    ],
)
def test_function_calling_on_a_thinking_model_calls_the_tool_the_way_the_model_allows(
    server: FakeKimiServer, kimi: Any, model_name: str, wire_choice: Any, thinking: Any
) -> None:
    server.queue(Reply(tool_calls=[ToolCall("Movie", MATRIX)]))
    with pytest.warns(UserWarning) if wire_choice != "required" else warnings.catch_warnings():
        structured = kimi(model=model_name).with_structured_output(Movie, method="function_calling")
    assert structured.invoke("Matrix?") == Movie.model_validate(MATRIX)
    body = server.requests[-1].body  # accepted by the simulator, which enforces the rules
    assert body["tool_choice"] == wire_choice and body.get("thinking") == thinking
    assert [tool["function"]["name"] for tool in body["tools"]] == ["Movie"]
    assert "response_format" not in body


@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream", "astream"])
async def test_function_calling_declined_on_an_emulating_model_raises(
    server: FakeKimiServer, kimi: Any, mode: str
) -> None:
    server.queue(Reply(content="The Matrix came out in 1999.", reasoning="Easy."))
    with pytest.warns(UserWarning, match="refuses a forced tool_choice"):
        structured = kimi(model="kimi-k2.6").with_structured_output(
            Movie, method="function_calling"
        )
    with pytest.raises(KimiToolChoiceError, match=r"kimi-k2\.6 declined") as info:
        if mode == "invoke":
            structured.invoke("Matrix?")
        elif mode == "ainvoke":
            await structured.ainvoke("Matrix?")
        elif mode == "stream":
            list(structured.stream("Matrix?"))
        else:
            [item async for item in structured.astream("Matrix?")]
    assert info.value.tool_choice == "Movie" and info.value.content == "The Matrix came out in 1999."


def test_function_calling_forces_the_tool_where_the_model_allows_it(
    server: FakeKimiServer, kimi: Any
) -> None:
    server.queue(
        Reply(tool_calls=[ToolCall("Movie", MATRIX)]),
        Reply(tool_calls=[ToolCall("Movie", MATRIX)], chunk_size=7),
        Reply(tool_calls=[ToolCall("Movie", MATRIX)]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        instant = kimi(model=INSTANT).with_structured_output(Movie, method="function_calling")
        assert instant.invoke("Matrix?") == Movie.model_validate(MATRIX)
        assert list(instant.stream("Matrix?")) == [Movie.model_validate(MATRIX)]
        # kimi-k2.5 with thinking off accepts a forced tool too (the simulator
        # would answer 400 if thinking were still on).
        off = kimi(model="kimi-k2.5", thinking=False).with_structured_output(
            Movie, method="function_calling"
        )
        assert off.invoke("Matrix?") == Movie.model_validate(MATRIX)
    for request in server.requests:
        assert request.body["tool_choice"] == {"type": "function", "function": {"name": "Movie"}}
        assert [tool["function"]["name"] for tool in request.body["tools"]] == ["Movie"]


def test_chains_batches_and_few_shot_histories(server: FakeKimiServer, kimi: Any) -> None:
    server.queue(*[Reply(content='{"title": "Alien", "year": 1979}')] * 3)
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You catalogue films."),
            ("human", "Heat?"),
            AIMessage(
                "",
                tool_calls=[{"name": "lookup", "args": {"q": "Heat"}, "id": "lookup:0"}],
            ),
            ToolMessage('{"year": 1995}', tool_call_id="lookup:0"),
            AIMessage('{"title": "Heat", "year": 1995}'),
            ("human", "{question}"),
        ]
    )
    chain = prompt | kimi(model="kimi-k2.5").with_structured_output(MovieDict)
    results = chain.batch([{"question": "Alien?"}, {"question": "Alien (1979)?"}])
    assert results == [{"title": "Alien", "year": 1979}] * 2
    assert chain.invoke({"question": "Alien!"}) == {"title": "Alien", "year": 1979}
    for request in server.requests:
        messages = request.body["messages"]
        assert [m["role"] for m in messages] == [
            "system",
            "user",
            "assistant",
            "tool",
            "assistant",
            "user",
        ]
        assert messages[0]["content"].startswith("You catalogue films.\n\n")
        # The thinking model's replay rule held for the hand-written tool call.
        assert "reasoning_content" in messages[2]


# --- a json_schema response_format passed to the model (what ProviderStrategy binds) -----

SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "Movie", "schema": Movie.model_json_schema()},
}


async def _answer(model: Any, mode: str, chunks: list[Any]) -> Any:
    """The answer (a stream added up) in any of the four modes; streamed chunks go to ``chunks``."""
    if mode == "invoke":
        return model.invoke("Matrix?")
    if mode == "ainvoke":
        return await model.ainvoke("Matrix?")
    if mode == "stream":
        for chunk in model.stream("Matrix?"):
            chunks.append(chunk)
    else:
        async for chunk in model.astream("Matrix?"):
            chunks.append(chunk)
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole = whole + chunk
    return whole


@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream", "astream"])
async def test_a_json_schema_response_format_works_on_ace_data_cloud(
    server: FakeKimiServer, kimi: Any, mode: str
) -> None:
    # Without the adaptation the simulator answers 400, as Ace Data Cloud does.
    server.queue(Reply(content=MATRIX_TEXT, chunk_size=9))
    model = kimi(model="kimi-k2.6").bind(response_format=SCHEMA_FORMAT)
    answer = await _answer(model, mode, [])
    assert Movie.model_validate_json(answer.content) == Movie.model_validate(MATRIX)
    body = server.requests[-1].body
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system"
    assert '"sequel_of"' in body["messages"][0]["content"]


@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream", "astream"])
async def test_a_json_schema_answer_that_does_not_match_raises_streams_after_their_chunks(
    server: FakeKimiServer, kimi: Any, mode: str
) -> None:
    wrong = json.dumps({"title": "The Matrix"})  # no year
    server.queue(Reply(content=wrong, chunk_size=4))
    model = kimi(model="kimi-k2.6").bind(response_format=SCHEMA_FORMAT)
    chunks: list[Any] = []
    with pytest.raises(OutputParserException, match="year"):
        await _answer(model, mode, chunks)
    # A stream's text went out as it came; the check could only run at its end.
    assert "".join(chunk.text for chunk in chunks) == (wrong if mode.endswith("stream") else "")
