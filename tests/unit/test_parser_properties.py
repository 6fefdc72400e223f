"""Whatever arrives, the decoder and the parsers give chunks or a KimiError, nothing else.

Random bytes, random JSON and random SSE framings go through the SSE decoder and
``StreamReader`` (decoder and ``StreamParser``), and random JSON through
``parse_completion``. Shapes close to real answers, with any JSON value in any
place, reach the deep paths that purely random values rarely do. What is
accepted is also checked to be usable: chunks add up without raising (as
LangChain and LangGraph add them), and a cut-off answer never adds up to a
tool call with arguments that were not complete.
"""

from __future__ import annotations

import json
from functools import reduce
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from langchain_kimi._answer_reader import StreamReader, decode_json
from langchain_kimi._response import StreamParser, completion_as_stream, parse_completion
from langchain_kimi._sse import SSEDecoder
from langchain_kimi.errors import KimiError, KimiResponseError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``common`` about five times in six, else ``rare``."""
    return st.sampled_from(range(6)).flatmap(lambda n: rare if n == 5 else common)


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the expected kind of value, sometimes any JSON value at all."""
    return mostly(value, json_values)


def shaped(
    fields: dict[str, st.SearchStrategy[Any]], required: tuple[str, ...] = ()
) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with ``required`` and some of the other ``fields``, each maybe of the wrong type."""
    return st.fixed_dictionaries(
        {key: maybe(fields[key]) for key in required},
        optional={key: maybe(value) for key, value in fields.items() if key not in required},
    )


tool_calls = st.lists(
    shaped(
        {
            "index": st.integers(min_value=0, max_value=2),
            "id": st.sampled_from(["f:0", "f:1", None]),
            "type": st.just("function"),
            "function": shaped(
                {
                    "name": st.sampled_from(["f", "g", "f", "g", ""]),
                    "arguments": st.sampled_from(['{"a": 1}', '{"a": ', "", '"x"', "[1"])
                    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                },
                required=("name",),
            ),
        },
        required=("index", "function"),
    ),
    max_size=2,
)
message_fields = {
    "role": st.just("assistant"),
    "content": st.text(max_size=8) | st.none(),
    "reasoning_content": st.text(max_size=8) | st.none(),
    "tool_calls": tool_calls,
}
usage = shaped(
    {
        "prompt_tokens": st.integers(min_value=0, max_value=100),
        "completion_tokens": st.integers(min_value=0, max_value=100),
        "total_tokens": st.integers(min_value=0, max_value=200),
        "cached_tokens": st.integers(min_value=0, max_value=100),
    }
)
finish_reasons = st.sampled_from(["stop", "length", "tool_calls", None])
completions = mostly(
    shaped(
        {
            "id": st.just("chatcmpl-1"),
            "model": st.just("kimi-k2.5"),
            "choices": st.lists(
                shaped(
                    {
                        "index": st.just(0),
                        "message": shaped(message_fields),
                        "finish_reason": finish_reasons,
                    },
                    required=("message",),
                ),
                min_size=1,
                max_size=2,
            ),
            "usage": usage,
        },
        required=("choices",),
    ),
    st.fixed_dictionaries(
        {"error": maybe(shaped({"message": st.text(max_size=8), "code": st.text(max_size=5)}))}
    ),
)
stream_events = shaped(
    {
        "id": st.just("chatcmpl-1"),
        "model": st.just("kimi-k2.5"),
        "choices": st.lists(
            shaped(
                {
                    "index": st.just(0),
                    "delta": shaped(message_fields),
                    "finish_reason": finish_reasons,
                    "usage": usage,
                },
                required=("delta",),
            ),
            max_size=1,
        ),
        "usage": usage,
    },
    required=("choices",),
)
event_data = mostly(
    stream_events.map(json.dumps),
    json_values.map(json.dumps)
    | st.sampled_from(["[DONE]", "{not json", ""])
    | st.text(max_size=20),
)


@st.composite
def framed_streams(draw: st.DrawFn) -> list[bytes]:
    """Events in SSE framing (any line ending, comments, split anywhere) as reads."""
    newline = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    parts = []
    datas = mostly(event_data.map(str.encode), st.binary(max_size=12))
    for data in draw(st.lists(datas, max_size=6)):
        if draw(st.booleans()):
            parts.append(b": keep-alive" + newline)
        parts.append(b"data: " + data + newline + newline)
    if draw(st.integers(0, 3)):
        parts.append(b"data: [DONE]" + newline + newline)
    raw = b"".join(parts) + draw(st.sampled_from([b"", b"", b"", b"\n"]) | st.binary(max_size=8))
    cuts = sorted(draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    return [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]


def read_stream(pieces: list[bytes]) -> list[ChatGenerationChunk]:
    """``StreamReader`` over ``pieces``; chunks or a KimiError, and the chunks add up."""
    reader = StreamReader()
    chunks: list[ChatGenerationChunk] = []
    try:
        for piece in pieces:
            chunks.extend(reader.feed(piece))
        chunks.extend(reader.finish())
    except KimiError:
        return []
    for chunk in chunks:
        assert isinstance(chunk, ChatGenerationChunk)
        assert isinstance(chunk.message, AIMessageChunk)
    if chunks:
        total = reduce(lambda a, b: a + b, chunks).message
        assert isinstance(total, AIMessageChunk)
        generate_from_stream(iter(chunks))  # how invoke(streaming=True) adds them up
    return chunks


@SETTINGS
@given(st.lists(st.binary(max_size=64), max_size=6))
def test_random_bytes_give_chunks_or_a_kimi_error(pieces: list[bytes]) -> None:
    read_stream(pieces)


@SETTINGS
@given(framed_streams())
def test_random_sse_framings_of_random_events_give_chunks_or_a_kimi_error(
    pieces: list[bytes],
) -> None:
    read_stream(pieces)


@SETTINGS
@given(st.lists(event_data, max_size=8))
def test_the_stream_parser_gives_chunks_or_a_kimi_error(events: list[str]) -> None:
    parser = StreamParser()
    chunks = []
    try:
        for data in events:
            chunk = parser.feed(data)
            if chunk is not None:
                chunks.append(chunk)
        chunks.append(parser.finish())
    except KimiError:
        return
    reduce(lambda a, b: a + b, chunks)


@SETTINGS
@given(json_values | completions)
def test_parse_completion_gives_a_result_or_a_kimi_error(data: Any) -> None:
    try:
        result = parse_completion(data)
    except KimiError:
        return
    for generation in result.generations:
        assert isinstance(generation.message.content, str)


@SETTINGS
@given(completions)
def test_a_json_body_read_as_a_stream_gives_chunks_or_a_kimi_error(data: Any) -> None:
    try:
        chunks = completion_as_stream(data)
    except KimiError:
        return
    read_stream([json.dumps(data).encode()])  # the same body through the reader
    reduce(lambda a, b: a + b, chunks)


@SETTINGS
@given(st.binary(max_size=200), st.integers(min_value=1, max_value=64))
def test_the_decoder_gives_text_or_a_kimi_error(raw: bytes, limit: int) -> None:
    decoder = SSEDecoder(max_line_bytes=limit)
    try:
        events = decoder.feed(raw) + decoder.flush()
    except KimiError:
        return
    assert all(isinstance(data, str) and len(data.encode()) <= limit for data in events)


# --- a cut-off answer never adds up to a call with incomplete arguments -----------------

argument_objects = st.dictionaries(
    st.text(max_size=6),
    st.recursive(
        json_scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        ),
        max_leaves=6,
    ),
    max_size=4,
)


@SETTINGS
@given(argument_objects, st.data())
def test_arguments_cut_anywhere_never_add_up_to_a_valid_call(
    arguments: dict[str, Any], data: st.DataObject
) -> None:
    text = json.dumps(arguments, ensure_ascii=data.draw(st.booleans()))
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    sent = text[:cut]
    fragment = data.draw(st.integers(min_value=1, max_value=8))
    events = [
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "f:0",
                                "type": "function",
                                "function": {"name": "f", "arguments": ""},
                            }
                        ]
                    },
                }
            ]
        }
    ]
    for start in range(0, len(sent), fragment):
        piece = sent[start : start + fragment]
        events.append(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]},
                    }
                ]
            }
        )
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    raw = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
    chunks = read_stream([raw.encode()])
    total = reduce(lambda a, b: a + b, chunks).message
    assert isinstance(total, AIMessageChunk)
    invoked = generate_from_stream(iter(chunks)).generations[0].message
    try:
        complete = isinstance(json.loads(sent), dict)
    except ValueError:
        complete = False
    for message in (total, invoked):
        assert message.response_metadata["finish_reason"] == "length"
        if complete:
            assert message.tool_calls[0]["args"] == json.loads(sent)
            assert message.invalid_tool_calls == []
        else:
            assert message.tool_calls == []
            assert [bad["id"] for bad in message.invalid_tool_calls] == ["f:0"]
            assert (message.invalid_tool_calls[0]["args"] or "").startswith(sent)


# --- JSON nested deeper than Python recurses ------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


def test_a_deeply_nested_event_is_a_response_error() -> None:
    with pytest.raises(KimiResponseError, match="nested too deeply"):
        read_stream_strictly([f"data: {DEEP}\n\n".encode()])
    error_event = '{"error": {"message": ' + DEEP + "}}"
    with pytest.raises(KimiResponseError, match="nested too deeply"):
        read_stream_strictly([f"data: {error_event}\n\n".encode()])


def test_a_deeply_nested_completion_is_a_response_error() -> None:
    with pytest.raises(KimiResponseError, match="nested too deeply"):
        decode_json(DEEP.encode())
    with pytest.raises(KimiResponseError, match="nested too deeply"):
        read_stream_strictly([DEEP.encode()])  # a JSON body answering a stream


def test_deeply_nested_tool_arguments_are_an_invalid_call() -> None:
    call = {"id": "f:0", "type": "function", "function": {"name": "f", "arguments": DEEP}}
    body = {"choices": [{"message": {"content": None, "tool_calls": [call]}}]}
    message = parse_completion(body).generations[0].message
    assert isinstance(message, AIMessage)
    assert message.tool_calls == [] and [c["id"] for c in message.invalid_tool_calls] == ["f:0"]
    # Streamed and cut off: the end of the stream copes with it too.
    opening = {"index": 0, "id": "f:0", "function": {"name": "f", "arguments": "[" * 50_000}}
    events = [
        {"choices": [{"index": 0, "delta": {"tool_calls": [opening]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
    ]
    raw = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    total = reduce(lambda a, b: a + b, read_stream_strictly([raw.encode()])).message
    assert isinstance(total, AIMessageChunk)
    assert total.tool_calls == [] and [c["id"] for c in total.invalid_tool_calls] == ["f:0"]


def read_stream_strictly(pieces: list[bytes]) -> list[ChatGenerationChunk]:
    reader = StreamReader()
    chunks = [chunk for piece in pieces for chunk in reader.feed(piece)]
    return chunks + reader.finish()
