"""Structured output against replies nested beyond reason and schemas that loop (issue 19).

A reply nested thousands of levels deep used to raise a raw ``RecursionError`` in
every method; a schema whose ``$ref``s only point at each other raised it after the
request was sent. Now: the deep reply is an ``OutputParserException`` (``parsing_error``
with ``include_raw=True``), and the looping schema a ``ValueError`` before sending.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.exceptions import OutputParserException
from pydantic import BaseModel

from langchain_kimi import ChatKimi
from langchain_kimi._jsonschema import MAX_REPLY_DEPTH
from langchain_kimi.testing import FakeKimiServer, Reply, ToolCall

from .conftest import TOKEN


class Box(BaseModel):
    a: Any


DICT_SCHEMA = {
    "title": "Box",
    "type": "object",
    "properties": {"a": {}},
    "required": ["a"],
}
METHODS = ["json_mode", "json_schema", "function_calling"]
CALLS = ["invoke", "stream", "ainvoke", "astream", "batch"]


def nested(levels: int) -> str:
    return '{"a": ' + "[" * levels + "]" * levels + "}"


def reply(method: str, body: str) -> Reply:
    if method == "function_calling":
        return Reply(tool_calls=[ToolCall("Box", body)], chunk_size=512)
    return Reply(content=body, chunk_size=512)


def last(items: list[Any]) -> Any:
    """A stream's result: with include_raw its dict pieces (raw, then parsed and error) merged."""
    if items and all(
        (isinstance(item, dict) and "parsed" in item) or "raw" in item for item in items
    ):
        merged: dict[str, Any] = {}
        for item in items:
            merged.update(item)
        return merged
    return items[-1]


def run(runnable: Any, how: str) -> Any:
    if how == "invoke":
        return runnable.invoke("Box it.")
    if how == "stream":
        return last(list(runnable.stream("Box it.")))
    if how == "batch":
        return runnable.batch(["Box it."])[0]

    async def go() -> Any:
        if how == "ainvoke":
            return await runnable.ainvoke("Box it.")
        return last([item async for item in runnable.astream("Box it.")])

    return asyncio.run(go())


@pytest.fixture
def model(server: FakeKimiServer) -> ChatKimi:
    return ChatKimi(model="kimi-k2-instruct-0905", base_url=server.base_url, api_key=TOKEN)


@pytest.mark.parametrize(
    ("how", "levels"),
    [(how, 5_000) for how in CALLS] + [("invoke", MAX_REPLY_DEPTH + 1), ("astream", 1_000)],
)
@pytest.mark.parametrize("schema", [Box, DICT_SCHEMA], ids=["pydantic", "dict"])
@pytest.mark.parametrize("method", METHODS)
def test_a_deep_reply_is_a_parsing_error_in_every_method(
    server: FakeKimiServer, model: ChatKimi, method: str, schema: Any, levels: int, how: str
) -> None:
    structured = model.with_structured_output(schema, method=method)  # type: ignore[arg-type]
    server.queue(reply(method, nested(levels)))
    with pytest.raises(OutputParserException, match="nests deeper than"):
        run(structured, how)
    # include_raw=True: the raw message comes back, the problem in parsing_error.
    with_raw = model.with_structured_output(schema, method=method, include_raw=True)  # type: ignore[arg-type]
    server.queue(reply(method, nested(levels)))
    result = run(with_raw, how)
    assert result["parsed"] is None and "raw" in result
    assert "nests deeper than" in str(result["parsing_error"])


@pytest.mark.parametrize("schema", [Box, DICT_SCHEMA], ids=["pydantic", "dict"])
def test_a_reply_within_the_bound_is_parsed(
    server: FakeKimiServer, model: ChatKimi, schema: Any
) -> None:
    server.queue(Reply(content=nested(MAX_REPLY_DEPTH - 2)))
    parsed = model.with_structured_output(schema, method="json_mode").invoke("Box it.")
    value = parsed.a if isinstance(parsed, Box) else parsed["a"]
    depth = 0
    while value != []:
        value, depth = value[0], depth + 1
    assert depth == MAX_REPLY_DEPTH - 3


LOOPING = {
    "title": "A",
    "type": "object",
    "properties": {"b": {"$ref": "#/$defs/B"}},
    "$defs": {"B": {"$ref": "#/$defs/C"}, "C": {"$ref": "#/$defs/B"}},
}


@pytest.mark.parametrize("method", METHODS)
def test_a_looping_schema_is_refused_before_sending(
    server: FakeKimiServer, model: ChatKimi, method: str
) -> None:
    with pytest.raises(ValueError, match="loops without describing a value"):
        model.with_structured_output(LOOPING, method=method).invoke("x")  # type: ignore[arg-type]
    assert server.requests == []
