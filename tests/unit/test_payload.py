"""LangChain messages -> Kimi request bodies, and the bad input refused before sending."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_kimi._payload import REASONING_PLACEHOLDER, build_request_body, convert_messages
from tests.fixtures.load import interactions

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()


def wire(*messages: Any, thinking: bool = True) -> list[dict[str, Any]]:
    return convert_messages(list(messages), thinking_active=thinking)


def test_roles_and_names() -> None:
    assert wire(
        SystemMessage("be brief"),
        HumanMessage("hi", name="ann"),
        AIMessage("hello"),
        ChatMessage(role="user", content="again"),
    ) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi", "name": "ann"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "again"},
    ]


def test_body_puts_thinking_in_wire_form() -> None:
    body = build_request_body(
        [HumanMessage("hi")], {"model": "kimi-k2.5", "thinking": False}, thinking_active=False
    )
    assert body == {
        "model": "kimi-k2.5",
        "thinking": {"type": "disabled"},
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_image_blocks_in_every_form() -> None:
    (message,) = wire(
        HumanMessage(
            content=[
                {"type": "text", "text": "what is this?"},
                {"type": "image", "url": "https://example.com/a.png"},
                {"type": "image", "base64": PNG, "mime_type": "image/png"},
                {"type": "image", "source_type": "base64", "data": PNG, "mime_type": "image/png"},
                {"type": "image_url", "image_url": {"url": "https://example.com/b.jpg"}},
                {"type": "image_url", "image_url": f"data:image/png;base64,{PNG}"},
                {"type": "video_url", "video_url": {"url": "https://example.com/c.mp4"}},
            ]
        )
    )
    data_url = f"data:image/png;base64,{PNG}"
    assert message["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "image_url", "image_url": {"url": data_url}},
        {"type": "image_url", "image_url": {"url": data_url}},
        {"type": "image_url", "image_url": {"url": "https://example.com/b.jpg"}},
        {"type": "image_url", "image_url": {"url": data_url}},
        {"type": "video_url", "video_url": {"url": "https://example.com/c.mp4"}},
    ]


def test_single_text_part_is_sent_as_a_string() -> None:
    assert wire(HumanMessage(content=[{"type": "text", "text": "hi"}])) == [
        {"role": "user", "content": "hi"}
    ]


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([], "must not be empty"),
        ([HumanMessage("")], r"messages\[0\]: user message content is empty"),
        ([SystemMessage("ok"), HumanMessage("  ")], r"messages\[1\]"),
        (
            [HumanMessage("a"), ChatMessage(role="wizard", content="x")],
            r"messages\[1\]: unknown role 'wizard'",
        ),
        (
            [HumanMessage(content=[{"type": "audio", "base64": "AAAA", "mime_type": "audio/wav"}])],
            r"content\[0\]: Kimi takes no audio",
        ),
        (
            [
                HumanMessage(
                    content=[{"type": "image", "base64": "not base64!!", "mime_type": "image/png"}]
                )
            ],
            "invalid base64",
        ),
        (
            [HumanMessage(content=[{"type": "image", "base64": PNG, "mime_type": "image/tiff"}])],
            "unsupported image mime type 'image/tiff'",
        ),
        (
            [HumanMessage(content=[{"type": "image", "base64": "aGVsbG8gd29ybGQ="}])],
            r"content\[0\]: the image has no mime_type and its bytes are not PNG",
        ),
        (
            [HumanMessage(content=[{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}])],
            "http",
        ),
        ([FunctionMessage(name="f", content="x")], "unsupported message type FunctionMessage"),
        ([HumanMessage("a"), AIMessage("")], r"messages\[1\]: assistant message has no content"),
        (
            [AIMessage("", tool_calls=[{"name": "f", "args": {"x": object()}, "id": "f:0"}])],
            "not JSON-serializable",
        ),
        (
            [AIMessage("p", additional_kwargs={"partial": True}), HumanMessage("x")],
            "only the last message can be partial",
        ),
    ],
)
def test_bad_input_names_the_part(messages: list[Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        convert_messages(messages, thinking_active=True)


def test_tool_turn_replays_reasoning_like_the_recorded_second_turn() -> None:
    _, second = interactions("avian-kimi__thinking-streaming.yaml")
    recorded = second["request"]["messages"]
    ai = AIMessage(
        content="",
        additional_kwargs={"reasoning_content": recorded[2]["reasoning_content"]},
        tool_calls=[
            {"name": "weather", "args": {"location": "Florence"}, "id": "functions.weather:0"}
        ],
    )
    sent = wire(
        SystemMessage(recorded[0]["content"]),
        HumanMessage(recorded[1]["content"]),
        ai,
        ToolMessage("40 C", tool_call_id="functions.weather:0"),
    )
    assert sent[2] == {
        "role": "assistant",
        "content": " ",
        "tool_calls": [
            {
                "id": "functions.weather:0",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"location": "Florence"}'},
            }
        ],
        "reasoning_content": recorded[2]["reasoning_content"],
    }
    # Same shape as the request the service accepted.
    assert sent[2]["content"] == recorded[2]["content"]
    assert sent[2]["tool_calls"] == recorded[2]["tool_calls"]
    assert sent[3] == {"role": "tool", "tool_call_id": "functions.weather:0", "content": "40 C"}


def test_reasoning_from_v1_blocks_and_placeholder_when_missing() -> None:
    call = {"name": "f", "args": {}, "id": "f:0"}
    from_blocks = AIMessage(
        content=[{"type": "reasoning", "reasoning": "because"}, {"type": "text", "text": "ok"}],
        tool_calls=[call],
    )
    assert wire(from_blocks)[0]["reasoning_content"] == "because"
    assert wire(from_blocks)[0]["content"] == "ok"
    bare = AIMessage(content="", tool_calls=[call])
    assert wire(bare, thinking=True)[0]["reasoning_content"] == REASONING_PLACEHOLDER
    assert "reasoning_content" not in wire(bare, thinking=False)[0]


def test_reasoning_is_replayed_on_plain_answers_too() -> None:
    ai = AIMessage("42", additional_kwargs={"reasoning_content": "think"})
    assert wire(ai)[0] == {"role": "assistant", "content": "42", "reasoning_content": "think"}


def test_tool_message_list_content_and_error_status() -> None:
    message = ToolMessage(
        content=[{"type": "text", "text": "line 1"}, "line 2"],
        tool_call_id="f:0",
        status="error",
        name="f",
    )
    assert wire(message)[0] == {
        "role": "tool",
        "tool_call_id": "f:0",
        "content": "Error: line 1\nline 2",
        "name": "f",
    }


def test_invalid_tool_calls_go_back_as_valid_json() -> None:
    ai = AIMessage(
        content="",
        invalid_tool_calls=[
            {"name": "f", "args": "{oops", "id": "f:0", "error": "bad", "type": "invalid_tool_call"}
        ],
    )
    (sent,) = wire(ai)
    assert sent["tool_calls"][0]["function"] == {
        "name": "f",
        "arguments": '{"invalid_arguments": "{oops"}',
    }
    assert sent["reasoning_content"] == REASONING_PLACEHOLDER


def test_partial_mode_on_the_last_message() -> None:
    sent = wire(
        HumanMessage("write a poem"), AIMessage("Roses are", additional_kwargs={"partial": True})
    )
    assert sent[1] == {"role": "assistant", "content": "Roses are", "partial": True}
