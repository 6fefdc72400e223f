"""Response JSON and recorded streams -> LangChain messages."""

from __future__ import annotations

import json
from functools import reduce

import pytest
from langchain_core.messages import AIMessageChunk

from langchain_kimi._answer_reader import StreamReader
from langchain_kimi._response import StreamParser, parse_completion, parse_usage
from langchain_kimi.errors import (
    KimiAPIError,
    KimiResponseError,
    KimiStreamInterruptedError,
    KimiStreamTimeoutError,
    KimiTimeoutError,
)
from tests.fixtures.load import docs_json, docs_text, interactions


def aggregate(raw: str | bytes) -> AIMessageChunk:
    reader = StreamReader()
    chunks = list(reader.feed(raw.encode() if isinstance(raw, str) else raw))
    chunks.extend(reader.finish())
    message = reduce(lambda a, b: a + b, chunks).message
    assert isinstance(message, AIMessageChunk)
    return message


# --- whole completions --------------------------------------------------------


def test_k25_completion_keeps_reasoning() -> None:
    result = parse_completion(docs_json("ace_completion_k25_reasoning.json"))
    message = result.generations[0].message
    assert message.content == " Hello! How can I help you today?"
    assert message.additional_kwargs["reasoning_content"].startswith(" The user has simply said")
    assert message.response_metadata["model_name"] == "kimi-k2.5"
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.response_metadata["id"] == "chatcmpl-b5d9e1b799c137e3"
    assert message.response_metadata["model_provider"] == "kimi"
    blocks = message.content_blocks
    assert blocks[0]["type"] == "reasoning" and blocks[1]["type"] == "text"


def test_k3_completion_usage() -> None:
    message = parse_completion(docs_json("ace_completion_k3.json")).generations[0].message
    assert message.content == "Hello! How can I help you today?"
    assert message.usage_metadata == {"input_tokens": 86, "output_tokens": 206, "total_tokens": 292}


def test_usage_details_in_either_place() -> None:
    assert parse_usage(
        {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cached_tokens": 4}
    ) == {
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "input_token_details": {"cache_read": 4},
    }
    nested = parse_usage(
        {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 6},
            "completion_tokens_details": {"reasoning_tokens": 3},
        }
    )
    assert nested is not None
    assert nested["input_token_details"] == {"cache_read": 6}
    assert nested["output_token_details"] == {"reasoning": 3}
    assert parse_usage(None) is None


def test_recorded_tool_completion() -> None:
    first = interactions("groq-kimi-k2__tool.yaml")[0]
    message = parse_completion(json.loads(first["response"])).generations[0].message
    assert message.tool_calls == [
        {
            "name": "weather",
            "args": {"location": "Florence,Italy"},
            "id": "functions.weather:0",
            "type": "tool_call",
        }
    ]
    assert message.response_metadata["finish_reason"] == "tool_calls"


def test_unparsable_tool_arguments_become_invalid_tool_calls() -> None:
    data = {
        "id": "x",
        "model": "kimi-k2.5",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "f:0",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{oops"},
                        },
                        {
                            "id": "g:1",
                            "type": "function",
                            "function": {"name": "g", "arguments": "[1]"},
                        },
                        {
                            "id": "h:2",
                            "type": "function",
                            "function": {"name": "h", "arguments": ""},
                        },
                    ],
                },
            }
        ],
    }
    message = parse_completion(data).generations[0].message
    assert message.content == ""
    assert [c["name"] for c in message.tool_calls] == ["h"]
    assert message.tool_calls[0]["args"] == {}
    assert [(c["name"], c["args"]) for c in message.invalid_tool_calls] == [
        ("f", "{oops"),
        ("g", "[1]"),
    ]
    assert all(c["error"] for c in message.invalid_tool_calls)


def test_error_body_with_200_raises() -> None:
    with pytest.raises(KimiAPIError, match="rate"):
        parse_completion({"error": {"message": "rate limited", "type": "rate_limit"}})


def test_no_choices_raises() -> None:
    with pytest.raises(KimiResponseError, match="no choices"):
        parse_completion({"id": "x", "choices": []})


# --- streams -----------------------------------------------------------------


def test_k3_stream_docs() -> None:
    message = aggregate(docs_text("ace_stream_k3.sse"))
    assert message.content == "Hello"
    assert message.additional_kwargs["reasoning_content"] == "The"
    assert message.usage_metadata == {
        "input_tokens": 172,
        "output_tokens": 168,
        "total_tokens": 340,
    }
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.response_metadata["model_name"] == "kimi-k3"
    assert message.chunk_position == "last"


def test_simple_thinking_stream() -> None:
    (item,) = interactions("avian-kimi__simple_streaming.yaml")
    message = aggregate(item["response"])
    assert message.content == ' Oi! \n\n(Or "Olá!" which is slightly more formal)'
    assert message.additional_kwargs["reasoning_content"].startswith(
        'The user wants me to say "hi" in Portuguese'
    )
    assert message.usage_metadata == {
        "input_tokens": 21,
        "output_tokens": 242,
        "total_tokens": 263,
        "input_token_details": {"cache_read": 8},
        "output_token_details": {"reasoning": 238},
    }
    assert message.response_metadata["finish_reason"] == "stop"  # sent twice, kept once


def test_thinking_tool_stream_and_second_turn() -> None:
    first, second = interactions("avian-kimi__thinking-streaming.yaml")
    turn = aggregate(first["response"])
    assert turn.tool_calls == [
        {
            "name": "weather",
            "args": {"location": "Florence"},
            "id": "functions.weather:0",
            "type": "tool_call",
        }
    ]
    # The reasoning the service later wants back is exactly what the stream carried.
    replayed = second["request"]["messages"][2]
    assert turn.additional_kwargs["reasoning_content"] == replayed["reasoning_content"]
    assert turn.response_metadata["finish_reason"] == "tool_calls"
    answer = aggregate(second["response"])
    assert answer.content.startswith(
        " The weather in Florence, Italy is currently **40°C (104°F)**"
    )
    assert answer.usage_metadata is not None and answer.usage_metadata["total_tokens"] == 223


def test_parallel_tool_stream() -> None:
    first, second = interactions("groq-kimi-k2__multi_tool_streaming.yaml")
    turn = aggregate(first["response"])
    assert [(c["name"], c["args"], c["id"]) for c in turn.tool_calls] == [
        ("add", {"a": 2, "b": 3}, "functions.add:0"),
        ("multiply", {"a": 2, "b": 3}, "functions.multiply:1"),
    ]
    assert turn.usage_metadata == {"input_tokens": 201, "output_tokens": 58, "total_tokens": 259}
    assert aggregate(second["response"]).content.startswith("Here are the results:")


def test_streamed_tool_turn_equals_the_non_streamed_one() -> None:
    streamed = aggregate(interactions("groq-kimi-k2__tool_streaming.yaml")[0]["response"])
    whole = parse_completion(json.loads(interactions("groq-kimi-k2__tool.yaml")[0]["response"]))
    message = whole.generations[0].message
    assert streamed.tool_calls == message.tool_calls
    assert streamed.content == message.content
    assert streamed.usage_metadata == message.usage_metadata


def test_usage_inside_choice_moonshot_style() -> None:
    raw = (
        'data: {"id":"a","model":"kimi-k2.5","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}\n\n'
        'data: {"id":"a","model":"kimi-k2.5","choices":[{"index":0,"delta":{},"finish_reason":"stop",'
        '"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,"cached_tokens":2}}]}\n\n'
        "data: [DONE]\n\n"
    )
    message = aggregate(raw)
    assert message.content == "Hi"
    assert message.usage_metadata == {
        "input_tokens": 3,
        "output_tokens": 1,
        "total_tokens": 4,
        "input_token_details": {"cache_read": 2},
    }


def test_null_reasoning_and_ids_changing_between_chunks() -> None:
    raw = (
        'data: {"id":"a","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"x","reasoning_content":null}}]}\n\n'
        'data: {"id":"b","model":"m","choices":[{"index":0,"delta":{"content":"y"},"finish_reason":"stop"}]}\n\n'
        "data: [DONE]\n\n"
    )
    message = aggregate(raw)
    assert message.content == "xy"
    assert "reasoning_content" not in message.additional_kwargs
    assert message.response_metadata["id"] == "a"


def test_whole_tool_call_in_one_delta() -> None:
    raw = (
        'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"f:0","type":"function",'
        '"function":{"name":"f","arguments":"{\\"x\\": 1}"}}]}}]}\n\n'
        'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n'
        "data: [DONE]\n\n"
    )
    assert aggregate(raw).tool_calls == [
        {"name": "f", "args": {"x": 1}, "id": "f:0", "type": "tool_call"}
    ]


def test_error_event_after_200_raises() -> None:
    raw = 'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\ndata: {"error": {"message": "upstream died", "type": "server_error"}}\n\n'
    reader = StreamReader()
    chunks = reader.feed(raw.encode())
    # The chunk of the event before the error is delivered first.
    assert next(chunks).message.content == "a"
    with pytest.raises(KimiAPIError, match="upstream died"):
        next(chunks)


def test_malformed_line_is_named() -> None:
    with pytest.raises(KimiResponseError, match=r"\{not json"):
        list(StreamReader().feed(b"data: {not json\n\n"))


def test_stream_without_done_is_interrupted_with_partial_text() -> None:
    reader = StreamReader()
    chunks = list(
        reader.feed(
            b'data: {"choices":[{"index":0,"delta":{"reasoning_content":"hm","content":"Hel"}}]}\n\n'
            b'data: {"choices":[{"index":0,"delta":{"content":"lo"}}]}\n\n'
        )
    )
    assert "".join(str(c.message.content) for c in chunks) == "Hello"
    with pytest.raises(KimiStreamInterruptedError) as info:
        reader.finish()
    assert info.value.partial_content == "Hello"
    assert info.value.partial_reasoning == "hm"


def test_timeout_mid_stream_is_both_timeout_and_interruption() -> None:
    parser = StreamParser()
    parser.feed('{"choices":[{"index":0,"delta":{"content":"ab"}}]}')
    err = parser.interrupted("stalled", timed_out=True)
    assert isinstance(err, KimiStreamTimeoutError)
    assert isinstance(err, KimiTimeoutError) and isinstance(err, KimiStreamInterruptedError)
    assert err.partial_content == "ab"


def test_everything_after_done_is_ignored() -> None:
    parser = StreamParser()
    assert parser.feed("[DONE]") is None
    assert parser.feed("garbage") is None


def test_standard_blocks_keep_kimi_order_and_stable_stream_indexes() -> None:
    from langchain_core.messages import AIMessage

    from langchain_kimi._response import translate_content, translate_content_chunk

    message = AIMessage(
        content="Checking.",
        additional_kwargs={"reasoning_content": "need weather"},
        tool_calls=[{"name": "weather", "args": {"city": "Rome"}, "id": "functions.weather:0"}],
        invalid_tool_calls=[
            {"name": "w", "args": "{x", "id": "w:1", "error": "bad", "type": "invalid_tool_call"}
        ],
    )
    assert [block["type"] for block in translate_content(message)] == [
        "reasoning",
        "text",
        "tool_call",
        "invalid_tool_call",
    ]
    chunk = AIMessageChunk(
        content="a",
        additional_kwargs={"reasoning_content": "r"},
        tool_call_chunks=[
            {"name": "f", "args": "{", "id": "f:0", "index": 1, "type": "tool_call_chunk"}
        ],
    )
    # Reasoning, text and each call get their own merge index, stable for the stream.
    assert [(b["type"], b.get("index")) for b in translate_content_chunk(chunk)] == [
        ("reasoning", 0),
        ("text", 1),
        ("tool_call_chunk", 3),
    ]


# --- hostile streams (issue 19, second round) -----------------------------------


def _event(delta: dict[str, object], index: int = 0, finish: str | None = None) -> str:
    choice = {"index": index, "delta": delta, "finish_reason": finish}
    return "data: " + json.dumps({"id": "c-1", "choices": [choice]}) + "\n\n"


def test_an_error_event_carries_what_had_arrived() -> None:
    raw = (
        _event({"reasoning_content": "thinking"})
        + _event({"content": "half an"})
        + 'event: error\ndata: {"message": "overloaded", "trace_id": "t-9"}\n\n'
        + "data: [DONE]\n\n"
    )
    reader = StreamReader(secrets=("sk-1",))
    with pytest.raises(KimiAPIError) as info:
        list(reader.feed(raw.encode()))
    err = info.value
    assert (err.status_code, err.trace_id) == (200, "t-9")
    assert "overloaded" in err.message
    assert (err.partial_content, err.partial_reasoning) == ("half an", "thinking")


def test_an_error_event_echoing_the_token_is_redacted() -> None:
    raw = "event: error\ndata: denied for sk-secret-123\n\n"
    with pytest.raises(KimiAPIError) as info:
        list(StreamReader(secrets=("sk-secret-123",)).feed(raw.encode()))
    assert "sk-secret-123" not in str(info.value) and "[REDACTED]" in str(info.value)


def test_an_error_object_event_carries_what_had_arrived_too() -> None:
    raw = _event({"content": "so far"}) + 'data: {"error": {"message": "gone"}}\n\n'
    with pytest.raises(KimiAPIError) as info:
        list(StreamReader().feed(raw.encode()))
    assert info.value.partial_content == "so far"


@pytest.mark.parametrize(
    ("choices", "named"),
    [
        ([{"index": 1, "delta": {"content": "b"}}], "index 1"),
        (
            [{"index": 0, "delta": {"content": "a"}}, {"index": 1, "delta": {"content": "b"}}],
            "index 1",
        ),
        ([{"index": "1", "delta": {}}], r"choices\[0\]\.index is not a whole number"),
    ],
)
def test_a_second_choice_is_refused_not_merged(choices: list[object], named: str) -> None:
    parser = StreamParser()
    parser.feed(_event({"content": "a"})[6:].strip())
    with pytest.raises(KimiResponseError, match=named):
        parser.feed(json.dumps({"choices": choices}))


def test_choice_index_zero_or_absent_is_the_one_choice() -> None:
    parser = StreamParser()
    first = parser.feed(json.dumps({"choices": [{"index": 0, "delta": {"content": "a"}}]}))
    second = parser.feed(json.dumps({"choices": [{"delta": {"content": "b"}}]}))
    assert first is not None and second is not None


def _call(index: int, call_id: str | None, args: str, name: str | None = None) -> str:
    raw: dict[str, object] = {"index": index, "function": {"arguments": args}}
    if call_id is not None:
        raw["id"] = call_id
    if name is not None:
        raw["function"] = {"name": name, "arguments": args}
    return _event({"tool_calls": [raw]})


@pytest.mark.parametrize("cut_args", ['{"path": "/ho', "", '{"a": [1, {"b": "x'])
def test_a_call_replaced_by_a_new_id_mid_arguments_is_invalid(cut_args: str) -> None:
    raw = (
        _call(0, "a:0", cut_args, name="read_file")
        + _call(0, "b:1", '{"x": ', name="other")
        + _call(0, None, "2}")
        + _event({}, finish="tool_calls")
        + "data: [DONE]\n\n"
    )
    message = aggregate(raw)
    assert message.tool_calls == [
        {"name": "other", "args": {"x": 2}, "id": "b:1", "type": "tool_call"}
    ]
    assert [(c["name"], c["id"]) for c in message.invalid_tool_calls] == [("read_file", "a:0")]


def test_a_call_replaced_after_whole_arguments_stays_valid() -> None:
    raw = (
        _call(0, "a:0", '{"p": 1}', name="f")
        + _call(0, "b:1", '{"q": 2}', name="g")
        + _event({}, finish="tool_calls")
        + "data: [DONE]\n\n"
    )
    message = aggregate(raw)
    assert [(c["id"], c["args"]) for c in message.tool_calls] == [
        ("a:0", {"p": 1}),
        ("b:1", {"q": 2}),
    ]
    assert message.invalid_tool_calls == []


def test_a_stream_that_keeps_the_id_is_unchanged() -> None:
    # Ids on the first fragment only, as Kimi sends them: no fragment gains an id.
    parser = StreamParser()
    chunks = [
        parser.feed(_call(0, "a:0", '{"p"', name="f")[6:].strip()),
        parser.feed(_call(0, None, ": 1}")[6:].strip()),
    ]
    assert [c.message.tool_call_chunks[0]["id"] for c in chunks if c is not None] == ["a:0", None]


def test_too_many_choices_are_refused_before_building_messages() -> None:
    from langchain_kimi._limits import MAX_CHOICES

    one = {"index": 0, "message": {"content": "x"}, "finish_reason": "stop"}
    assert len(parse_completion({"choices": [one] * MAX_CHOICES}).generations) == MAX_CHOICES
    with pytest.raises(KimiResponseError, match=f"more than {MAX_CHOICES}"):
        parse_completion({"choices": [one] * (MAX_CHOICES + 1)})
