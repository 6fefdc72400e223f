"""Conversations begun on another provider, made by that provider's real LangChain class.

``ChatAnthropic`` (langchain-anthropic) and ``ChatOpenAI`` on the Responses API
(langchain-openai) run unchanged against :class:`ForeignAPI`, a loopback server
that answers their requests with a recorded-style response of the real API
(Anthropic Messages, OpenAI Responses), as JSON or as the server-sent events a
streamed call gets. The AIMessages they return are therefore built by their own
response parsing, for each ``output_version`` and for ``invoke`` and ``stream``;
nothing here guesses their shape.

The response bodies follow the two APIs' published references: an Anthropic
answer with extended thinking, a redacted thinking block, text and a
``tool_use``; one with the server-side web search tool; an OpenAI Responses
answer with a reasoning item (summary), a message and a ``function_call``; one
with the built-in web search.

Usage::

    with ForeignAPI() as api:
        message = anthropic_turn(api, TOOL_TURN, output_version="v1", streaming=True)
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.tools import tool


@tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"18 C and sunny in {city}"


# --- Anthropic Messages API -------------------------------------------------------------

ANTHROPIC_TOOL_TURN: dict[str, Any] = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {
            "type": "thinking",
            "thinking": "The user wants the weather in Paris. I should call get_weather.",
            "signature": "EqQBCkYIBRgCIkBWm3yh0VplL2YfGqP0kX0yQq",
        },
        {
            "type": "redacted_thinking",
            "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP",
        },
        {"type": "text", "text": "I'll look up the weather in Paris."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"city": "Paris"},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 412,
        "output_tokens": 95,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    },
}
ANTHROPIC_REASONING = ANTHROPIC_TOOL_TURN["content"][0]["thinking"]
ANTHROPIC_CALL_ID = "toolu_01A09q90qw90lq917835lq9"

ANTHROPIC_WEB_SEARCH_TURN: dict[str, Any] = {
    "id": "msg_01Hm9pSPrSqVzKbfZ3qyvjCt",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "text", "text": "I'll search for that."},
        {
            "type": "server_tool_use",
            "id": "srvtoolu_01WYG3ziw53XMcoyKL4XcZmE",
            "name": "web_search",
            "input": {"query": "claude shannon birth date"},
        },
        {
            "type": "web_search_tool_result",
            "tool_use_id": "srvtoolu_01WYG3ziw53XMcoyKL4XcZmE",
            "content": [
                {
                    "type": "web_search_result",
                    "url": "https://en.wikipedia.org/wiki/Claude_Shannon",
                    "title": "Claude Shannon - Wikipedia",
                    "encrypted_content": "EqgfCioIARgBIiQ3YTAwMjY1Mi1mZjM5LTQ1NGUtODgxNC1kNjNjNTk1ZWI3Y",
                    "page_age": "April 30, 2025",
                }
            ],
        },
        {
            "type": "text",
            "text": "Claude Shannon was born on April 30, 1916, in Petoskey, Michigan",
            "citations": [
                {
                    "type": "web_search_result_location",
                    "url": "https://en.wikipedia.org/wiki/Claude_Shannon",
                    "title": "Claude Shannon - Wikipedia",
                    "encrypted_index": "Eo8BCioIAhgBIiQyYjQ0OWJmZi1lNm",
                    "cited_text": "Claude Elwood Shannon (April 30, 1916 – February 24, 2001)",
                }
            ],
        },
    ],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 6039,
        "output_tokens": 931,
        "server_tool_use": {"web_search_requests": 1},
    },
}


def _anthropic_events(message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The server-sent events of a streamed Messages API call that ends as ``message``."""
    start = dict(message, content=[], stop_reason=None, usage=dict(message["usage"]))
    start["usage"]["output_tokens"] = 1
    yield {"type": "message_start", "message": start}
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "thinking":
            empty = {"type": "thinking", "thinking": "", "signature": ""}
            yield {"type": "content_block_start", "index": index, "content_block": empty}
            for piece in _halves(block["thinking"]):
                delta = {"type": "thinking_delta", "thinking": piece}
                yield {"type": "content_block_delta", "index": index, "delta": delta}
            delta = {"type": "signature_delta", "signature": block["signature"]}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
        elif kind == "text":
            empty = {"type": "text", "text": ""}
            yield {"type": "content_block_start", "index": index, "content_block": empty}
            for piece in _halves(block["text"]):
                delta = {"type": "text_delta", "text": piece}
                yield {"type": "content_block_delta", "index": index, "delta": delta}
            for citation in block.get("citations", []):
                delta = {"type": "citations_delta", "citation": citation}
                yield {"type": "content_block_delta", "index": index, "delta": delta}
        elif kind in ("tool_use", "server_tool_use"):
            opening = dict(block, input={})
            yield {"type": "content_block_start", "index": index, "content_block": opening}
            for piece in _halves(json.dumps(block["input"])):
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield {"type": "content_block_delta", "index": index, "delta": delta}
        else:  # whole blocks: redacted thinking, server tool results
            yield {"type": "content_block_start", "index": index, "content_block": block}
        yield {"type": "content_block_stop", "index": index}
    usage = {"output_tokens": message["usage"]["output_tokens"]}
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    yield {"type": "message_delta", "delta": delta, "usage": usage}
    yield {"type": "message_stop"}


# --- OpenAI Responses API ------------------------------------------------------------------

RESPONSES_TOOL_TURN: dict[str, Any] = {
    "id": "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
    "object": "response",
    "created_at": 1741476777,
    "status": "completed",
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "max_output_tokens": None,
    "model": "gpt-5-2025-08-07",
    "output": [
        {
            "type": "reasoning",
            "id": "rs_67ccd3b2f1c08190b9e8f2a1d6c3a4b5",
            "summary": [
                {
                    "type": "summary_text",
                    "text": "**Checking the weather**\n\nThe user wants Paris weather; call the tool.",
                },
                {"type": "summary_text", "text": "Then answer in one sentence."},
            ],
        },
        {
            "type": "message",
            "id": "msg_67ccd3acc8d48190a77525dc6de64b4104becb25c45c1d41",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Let me check.", "annotations": []}],
        },
        {
            "type": "function_call",
            "id": "fc_67ccd3b5a3f88190b4b7a6ce9e1f0c2d",
            "call_id": "call_12xyzAbCdEf",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
            "status": "completed",
        },
    ],
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "usage": {
        "input_tokens": 36,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 87,
        "output_tokens_details": {"reasoning_tokens": 64},
        "total_tokens": 123,
    },
    "user": None,
    "metadata": {},
}
RESPONSES_REASONING = (
    "**Checking the weather**\n\nThe user wants Paris weather; call the tool."
    "\n\nThen answer in one sentence."
)
RESPONSES_CALL_ID = "call_12xyzAbCdEf"

RESPONSES_WEB_SEARCH_TURN: dict[str, Any] = copy.deepcopy(RESPONSES_TOOL_TURN)
RESPONSES_WEB_SEARCH_TURN.update(
    id="resp_67c9fdcecf488190bdd9a0a1f7a3b5c9",
    output=[
        {
            "type": "web_search_call",
            "id": "ws_67c9fa0502748190b7dd390736892e100be649c1a5ff9609",
            "status": "completed",
            "action": {"type": "search", "query": "positive news today"},
        },
        {
            "type": "message",
            "id": "msg_67c9fa077e288190af08fdffda2e34f20be649c1a5ff9609",
            "status": "completed",
            "role": "assistant",
            "content": [
                {
                    "type": "output_text",
                    "text": "A community garden opened in Lyon today.",
                    "annotations": [
                        {
                            "type": "url_citation",
                            "start_index": 2,
                            "end_index": 18,
                            "url": "https://example.org/lyon-garden",
                            "title": "Lyon opens a garden",
                        }
                    ],
                }
            ],
        },
    ],
)


def _responses_events(response: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The server-sent events of a streamed Responses API call that ends as ``response``."""
    sequence = 0

    def event(kind: str, **fields: Any) -> dict[str, Any]:
        nonlocal sequence
        sequence += 1
        return {"type": kind, "sequence_number": sequence, **fields}

    started = dict(response, status="in_progress", output=[], usage=None)
    yield event("response.created", response=started)
    for at, item in enumerate(response["output"]):
        ids = {"item_id": item["id"], "output_index": at}
        kind = item["type"]
        if kind == "reasoning":
            yield event("response.output_item.added", output_index=at, item=dict(item, summary=[]))
            for part_at, part in enumerate(item["summary"]):
                opening = {"type": "summary_text", "text": ""}
                where = dict(ids, summary_index=part_at)
                yield event("response.reasoning_summary_part.added", **where, part=opening)
                yield event("response.reasoning_summary_text.delta", **where, delta=part["text"])
                yield event("response.reasoning_summary_text.done", **where, text=part["text"])
                yield event("response.reasoning_summary_part.done", **where, part=part)
        elif kind == "message":
            opening_item = dict(item, status="in_progress", content=[])
            yield event("response.output_item.added", output_index=at, item=opening_item)
            for part_at, part in enumerate(item["content"]):
                where = dict(ids, content_index=part_at)
                opening = dict(part, text="", annotations=[])
                yield event("response.content_part.added", **where, part=opening)
                text = part["text"]
                yield event("response.output_text.delta", **where, delta=text, logprobs=[])
                for note_at, note in enumerate(part["annotations"]):
                    yield event(
                        "response.output_text.annotation.added",
                        **where,
                        annotation_index=note_at,
                        annotation=note,
                    )
                yield event("response.output_text.done", **where, text=text, logprobs=[])
                yield event("response.content_part.done", **where, part=part)
        elif kind == "function_call":
            opening_item = dict(item, arguments="", status="in_progress")
            yield event("response.output_item.added", output_index=at, item=opening_item)
            arguments = item["arguments"]
            yield event("response.function_call_arguments.delta", **ids, delta=arguments)
            yield event("response.function_call_arguments.done", **ids, arguments=arguments)
        else:  # built-in tools: the item as it starts
            opening_item = dict(item, status="in_progress")
            yield event("response.output_item.added", output_index=at, item=opening_item)
        yield event("response.output_item.done", output_index=at, item=item)
    yield event("response.completed", response=response)


def _halves(text: str) -> tuple[str, str]:
    middle = len(text) // 2
    return text[:middle], text[middle:]


# --- the server -----------------------------------------------------------------------------


class ForeignAPI:
    """A loopback server answering Anthropic's ``/v1/messages`` and OpenAI's ``/v1/responses``.

    Set ``anthropic_answer`` / ``responses_answer`` to the response object the next
    calls get; a request with ``"stream": true`` gets it as server-sent events.
    ``requests`` holds every request body received. HTTP/1.0: each connection
    closes after its answer, so the providers' clients leave no socket open.
    """

    def __init__(self) -> None:
        self.anthropic_answer: dict[str, Any] = ANTHROPIC_TOOL_TURN
        self.responses_answer: dict[str, Any] = RESPONSES_TOOL_TURN
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.api = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ForeignAPI:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        api: ForeignAPI = self.server.api  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        api.requests.append(body)
        anthropic = self.path.endswith("/messages")
        answer = api.anthropic_answer if anthropic else api.responses_answer
        if body.get("stream"):
            events = _anthropic_events(answer) if anthropic else _responses_events(answer)
            data = b"".join(
                f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
                for event in events
            )
            content_type = "text/event-stream"
        else:
            data = json.dumps(answer).encode()
            content_type = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


# --- the providers' classes, run against it ---------------------------------------------------


def _run(model: Any, streaming: bool) -> AIMessage:
    question = "What's the weather in Paris?"
    if not streaming:
        message = model.invoke(question)
        assert isinstance(message, AIMessage)
        return message
    total: AIMessageChunk | None = None
    for chunk in model.stream(question):
        total = chunk if total is None else total + chunk
    assert total is not None
    return total


def anthropic_turn(
    api: ForeignAPI, answer: dict[str, Any], *, output_version: str, streaming: bool
) -> AIMessage:
    """What ``ChatAnthropic`` (extended thinking, ``get_weather`` bound) returns for ``answer``."""
    from langchain_anthropic import ChatAnthropic

    api.anthropic_answer = answer
    model = ChatAnthropic(
        model="claude-sonnet-4-5",
        base_url=api.base_url,
        api_key="sk-ant-test",  # type: ignore[arg-type]
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        output_version=output_version,
        max_retries=0,
    )
    return _run(model.bind_tools([get_weather]), streaming)


def responses_turn(
    api: ForeignAPI, answer: dict[str, Any], *, output_version: str, streaming: bool
) -> AIMessage:
    """What ``ChatOpenAI(use_responses_api=True)`` (reasoning summaries on) returns."""
    from langchain_openai import ChatOpenAI

    api.responses_answer = answer
    model = ChatOpenAI(
        model="gpt-5",
        base_url=f"{api.base_url}/v1",
        api_key="sk-openai-test",  # type: ignore[arg-type]
        use_responses_api=True,
        reasoning={"effort": "medium", "summary": "auto"},
        output_version=output_version,
        max_retries=0,
    )
    return _run(model.bind_tools([get_weather]), streaming)
