"""Turning a :class:`Reply` into wire bytes: a ``chat.completion`` or SSE events.

Pure functions, no I/O: the server decides when and how the bytes are written
(faults, pacing). Written independently of the client's parser on purpose.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_kimi.testing._replies import Reply

DONE_PAYLOAD = b"[DONE]"
MALFORMED_PAYLOAD = b"{not json"
ERROR_EVENT_BODY: dict[str, Any] = {
    "error": {
        "message": "The upstream model failed while generating the answer.",
        "type": "server_error",
    }
}


@dataclass(frozen=True)
class ResolvedReply:
    """A reply with every default filled in for one request."""

    id: str
    created: int
    model: str
    content: str | None
    reasoning: str
    # (id, name, arguments as sent)
    tool_calls: tuple[tuple[str, str, str], ...]
    finish_reason: str
    usage: Mapping[str, Any]


def last_user_text(body: Mapping[str, Any]) -> str:
    """Text of the last user message: what the default answer echoes."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _text_of(content: Any, sep: str = " ") -> str:
    """The text of a message's content: a string, or its text parts joined by ``sep``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return sep.join(
            part["text"]
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""


def _prompt_chars(body: Mapping[str, Any]) -> int:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0
    total = 0
    for message in messages:
        if isinstance(message, Mapping):
            total += len(_text_of(message.get("content")))
    return total


_CHARS_PER_TOKEN = 4


def _output_limit(body: Mapping[str, Any]) -> int | None:
    """The request's output limit in tokens (``max_completion_tokens`` or ``max_tokens``)."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _tokens(chars: int) -> int:
    # About four characters a token: deterministic, and close enough to real
    # counts that ratios in tests look plausible.
    return (chars + 3) // 4


def resolve(reply: Reply, body: Mapping[str, Any], thinking: bool) -> ResolvedReply:
    """Fill the reply's defaults from the request (see :class:`Reply`)."""
    text = last_user_text(body)
    tool_calls = tuple(
        (
            call.id if call.id is not None else f"functions.{call.name}:{index}",
            call.name,
            call.arguments
            if isinstance(call.arguments, str)
            else json.dumps(dict(call.arguments), ensure_ascii=False),
        )
        for index, call in enumerate(reply.tool_calls)
    )
    content = reply.content
    echo = content is None and not tool_calls
    if echo:
        content = f"Echo: {text}"
    reasoning = reply.reasoning
    if reasoning is None:
        reasoning = f"Thinking about: {text}" if thinking else ""
    finish_reason = reply.finish_reason or ("tool_calls" if tool_calls else "stop")
    limit = _output_limit(body)
    if echo and limit is not None and reply.finish_reason is None:
        # The echo honours the output limit as a model does: reasoning first
        # (it counts against the limit), then the answer, cut at the limit.
        budget = limit * _CHARS_PER_TOKEN
        if reply.reasoning is None and len(reasoning) > budget:
            reasoning = reasoning[:budget]
        room = max(0, budget - len(reasoning))
        if len(content or "") > room:
            content, finish_reason = (content or "")[:room], "length"
    usage: Mapping[str, Any]
    if reply.usage is not None:
        usage = reply.usage
    else:
        reasoning_tokens = _tokens(len(reasoning))
        completion_tokens = (
            _tokens(len(content or ""))
            + reasoning_tokens
            + sum(_tokens(len(name) + len(arguments)) for _, name, arguments in tool_calls)
        )
        prompt_tokens = max(1, _tokens(_prompt_chars(body)))
        computed: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if reasoning:
            computed["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
        usage = computed
    request_model = body.get("model")
    return ResolvedReply(
        id=reply.id if reply.id is not None else f"chatcmpl-{uuid.uuid4().hex[:24]}",
        created=reply.created if reply.created is not None else int(time.time()),
        model=reply.model
        if reply.model is not None
        else (request_model if isinstance(request_model, str) else "kimi"),
        content=content,
        reasoning=reasoning,
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        usage=usage,
    )


# Built once: json.dumps with non-default options builds a new encoder per call,
# which dominated the cost of rendering a stream.
_COMPACT_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_SPACED_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))


def dumps(value: Any, spaced: bool = False) -> bytes:
    """JSON as UTF-8 bytes (real services send raw UTF-8, not ``\\u`` escapes)."""
    encoder = _SPACED_ENCODER if spaced else _COMPACT_ENCODER
    return encoder.encode(value).encode("utf-8")


def completion_body(resolved: ResolvedReply, reply: Reply) -> bytes:
    """The non-streamed ``chat.completion`` document."""
    message: dict[str, Any] = {"role": "assistant", "content": resolved.content}
    if resolved.reasoning:
        message["reasoning_content"] = resolved.reasoning
    if resolved.tool_calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
            for call_id, name, args in resolved.tool_calls
        ]
    document = {
        "id": resolved.id,
        "object": "chat.completion",
        "created": resolved.created,
        "model": resolved.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": resolved.finish_reason,
            }
        ],
        "usage": dict(resolved.usage),
    }
    return dumps(document, reply.spaced_json)


def sse_event(payload: bytes, reply: Reply) -> bytes:
    """One ``data:`` event, framed with the reply's line endings."""
    newline = b"\r\n" if reply.crlf else b"\n"
    return b"data: " + payload + newline + newline


def _pieces(text: str, size: int) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)]


def stream_events(resolved: ResolvedReply, reply: Reply, include_usage: bool) -> list[bytes]:
    """The SSE events of a streamed reply, framed, without the final ``[DONE]``.

    Order: role delta, reasoning, content, tool calls, finish chunk(s), usage.
    """
    ace = reply.usage_style == "ace"
    spaced = reply.spaced_json

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        value: dict[str, Any] = {
            "id": resolved.id,
            "object": "chat.completion.chunk",
            "created": resolved.created,
            "model": resolved.model,
            "choices": choices,
        }
        if ace:
            # Ace's published stream carries "usage": null on every chunk.
            value["usage"] = None
        value.update(extra)
        return dumps(value, spaced)

    # Delta chunks differ only in their delta: serialize the rest once. The
    # server may share a process (and the GIL) with a client being benchmarked,
    # so its per-event cost should stay small. The bytes equal json.dumps of
    # the whole chunk (same key order and separators).
    key_sep = b": " if spaced else b":"
    head = chunk([{"index": 0, "delta": None, "finish_reason": None}])
    delta_at = head.index(b'"delta"' + key_sep) + len(b'"delta"' + key_sep)
    before_delta = head[:delta_at]
    after_delta = head[delta_at + len(b"null") :]
    role = {"role": "assistant"} if reply.repeat_role else {}

    def delta_chunk(delta: dict[str, Any]) -> bytes:
        return before_delta + dumps({**role, **delta}, spaced) + after_delta

    payloads = [
        chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    ]
    size = reply.chunk_size
    payloads.extend(
        delta_chunk({"reasoning_content": piece}) for piece in _pieces(resolved.reasoning, size)
    )
    payloads.extend(
        delta_chunk({"content": piece}) for piece in _pieces(resolved.content or "", size)
    )
    for index, (call_id, name, arguments) in enumerate(resolved.tool_calls):
        call_head = {"index": index, "id": call_id, "type": "function"}
        if reply.fragment_tool_calls:
            payloads.append(
                delta_chunk(
                    {"tool_calls": [{**call_head, "function": {"name": name, "arguments": ""}}]}
                )
            )
            payloads.extend(
                delta_chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                for piece in _pieces(arguments, size)
            )
        else:
            whole = {"name": name, "arguments": arguments}
            payloads.append(delta_chunk({"tool_calls": [{**call_head, "function": whole}]}))
    finish_count = 2 if reply.repeat_finish else 1
    for number in range(finish_count):
        choice: dict[str, Any] = {
            "index": 0,
            "delta": {},
            "finish_reason": resolved.finish_reason,
        }
        is_last = number == finish_count - 1
        extra: dict[str, Any] = {}
        if is_last and reply.usage_style == "moonshot":
            choice["usage"] = dict(resolved.usage)
        if is_last and reply.usage_style == "inline":
            extra["usage"] = dict(resolved.usage)
        payloads.append(chunk([choice], **extra))
    if ace and include_usage:
        payloads.append(chunk([], usage=dict(resolved.usage)))

    events = [sse_event(payload, reply) for payload in payloads]
    if reply.comments:
        newline = b"\r\n" if reply.crlf else b"\n"
        comment = b": keep-alive" + newline + newline
        # A comment before the first event and every third one, plus a stray
        # blank line after each event: both are legal SSE a parser must skip.
        events = [
            (comment if index % 3 == 0 else b"") + event + newline
            for index, event in enumerate(events)
        ]
    return events
