"""message.id is the service's completion id, through LangChain's invoke and stream.

LangChain gives a message its run id (``lc_run--...``) only when the model left
``id`` unset; these tests go through ``model.invoke``/``model.stream``, not only
the parser, so they would see LangChain replacing it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk

from langchain_kimi import ChatKimi
from langchain_kimi._response import StreamParser, parse_completion
from tests.fixtures.load import docs_json, interactions

FIRST_ID = "chatcmpl-6e0335f41a00481da298cc3f"  # the recorded stream's first id


class _CannedTransport:
    """Stands in for the sync transport: answers with recorded bytes, records the body."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.endpoint = SimpleNamespace(secrets=())  # what the model reads off a transport

    def post(self, body: bytes) -> bytes:
        return self.answer

    def stream(self, body: bytes, answer_ended: Callable[[], bool]) -> Iterator[bytes]:
        for start in range(0, len(self.answer), 97):
            yield self.answer[start : start + 97]
            if answer_ended():
                return  # as the real transports do: nothing after [DONE] is read


def canned(monkeypatch: pytest.MonkeyPatch, answer: str | bytes) -> ChatKimi:
    raw = answer.encode() if isinstance(answer, str) else answer
    monkeypatch.setattr(ChatKimi, "_sync", lambda self: _CannedTransport(raw))
    return ChatKimi(model="kimi-k2.5", api_key="t", max_retries=0)


def test_invoke_gives_the_completion_id(monkeypatch: pytest.MonkeyPatch) -> None:
    completion = docs_json("ace_completion_k25_reasoning.json")
    model = canned(monkeypatch, json.dumps(completion))
    message = model.invoke("hi")
    assert message.id == completion["id"] and not message.id.startswith("lc_")
    assert message.response_metadata["id"] == completion["id"]
    assert [m.id for m in model.batch(["a", "b"])] == [completion["id"]] * 2


def test_a_completion_without_id_still_gets_langchains_run_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    completion = docs_json("ace_completion_k25_reasoning.json")
    del completion["id"]
    message = canned(monkeypatch, json.dumps(completion)).invoke("hi")
    assert message.id is not None and message.id.startswith("lc_run-")


def test_every_streamed_chunk_carries_the_first_id_even_when_the_stream_changes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorded = interactions("avian-kimi__thinking-streaming.yaml")[0]["response"]
    ids = {
        json.loads(line[6:]).get("id")
        for line in recorded.splitlines()
        if line.startswith("data: {")
    }
    assert len(ids) > 1  # the proxy changed the id mid-stream
    chunks = list(canned(monkeypatch, recorded).stream("Weather in Florence?"))
    assert len(chunks) > 10
    assert {chunk.id for chunk in chunks} == {FIRST_ID}
    total: Any = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert isinstance(total, AIMessageChunk) and total.id == FIRST_ID
    assert total.response_metadata["id"] == FIRST_ID


def test_the_parser_alone() -> None:
    parser = StreamParser()
    first = parser.feed('{"id":"a","choices":[{"index":0,"delta":{"content":"x"}}]}')
    second = parser.feed('{"id":"b","choices":[{"index":0,"delta":{"content":"y"}}]}')
    parser.feed("[DONE]")
    last = parser.finish()
    assert first is not None and second is not None
    assert [first.message.id, second.message.id, last.message.id] == ["a", "a", "a"]
    result = parse_completion(
        {"id": "c", "choices": [{"index": 0, "message": {"content": "z"}, "finish_reason": "stop"}]}
    )
    assert result.generations[0].message.id == "c"
