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
