"""Scripted answers for :class:`~langchain_kimi.testing.FakeKimiServer`.

A :class:`Reply` describes one HTTP answer: the assistant message it carries
(content, reasoning, tool calls, usage), the shape of the stream it is sent as,
and optionally a fault to inject. Replies are immutable, so one value can be
queued many times.

Usage::

    from langchain_kimi.testing import FakeKimiServer, Reply, ToolCall

    with FakeKimiServer() as server:
        server.queue(
            Reply(reasoning="The user wants weather.",
                  tool_calls=[ToolCall("weather", {"city": "Paris"})]),
            Reply(content="It is sunny."),
            Reply.error(429, "too_many_requests", "slow down", headers={"Retry-After": "1"}),
            Reply(fault="disconnect", fault_after=3),
        )
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

Fault = Literal["reset", "disconnect", "stall", "malformed", "error_event", "split_utf8", "gzip"]
UsageStyle = Literal["ace", "moonshot", "inline"]
ErrorStyle = Literal["ace", "moonshot"]

FAULTS: frozenset[str] = frozenset(
    {"reset", "disconnect", "stall", "malformed", "error_event", "split_utf8", "gzip"}
)
USAGE_STYLES: frozenset[str] = frozenset({"ace", "moonshot", "inline"})

# Mixes ASCII with 2-, 3- and 4-byte UTF-8 characters so that large bodies also
# exercise the client's decoding across read boundaries.
_LARGE_PATTERN = "The quick brown fox jumps over the lazy dog. Ça va? 你好，世界。🙂 "


@dataclass(frozen=True)
class ToolCall:
    """One tool call the fake model makes.

    ``arguments`` given as a mapping is JSON-encoded; a string is sent verbatim,
    which lets a test send arguments that are not valid JSON. ``id`` defaults to
    ``functions.<name>:<index>``, the form Kimi uses (``functions.weather:0``).

    Usage::

        ToolCall("weather", {"location": "Paris"})
        ToolCall("weather", '{"location": "Par', id="call_1")  # broken JSON on purpose
    """

    name: str
    arguments: Mapping[str, Any] | str
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """One scripted answer of the fake server.

    Every field is optional; ``Reply()`` is the server's default answer.

    Message fields (``None`` means "the server's default"):

    - ``content``: the answer text. Default: ``"Echo: <last user message text>"``,
      or no content (``null``) when the reply has tool calls.
    - ``reasoning``: ``reasoning_content``. Default: ``"Thinking about: <text>"``
      when the request is a thinking request, none otherwise. ``""`` means none.
    - ``tool_calls``: :class:`ToolCall` values.
    - ``finish_reason``: default ``"tool_calls"`` with tool calls, else ``"stop"``.
    - ``usage``: sent verbatim; default computed from text lengths (about four
      characters a token), with ``completion_tokens_details.reasoning_tokens``
      when there is reasoning.
    - ``model``, ``id``, ``created``: default the request's model, a random
      ``chatcmpl-...`` id and the current time. Fix ``id`` and ``created`` for
      byte-identical bodies.

    HTTP fields:

    - ``status``: anything but 200 is sent as-is (``body`` and ``headers``), even
      to a streaming request.
    - ``body``: with status 200, a body sent verbatim instead of a generated
      completion (for replaying recorded payloads); a mapping is JSON-encoded.
      Default content type: JSON for a mapping, ``text/plain`` otherwise; set
      ``Content-Type`` in ``headers`` to change it.
    - ``headers``: extra response headers.
    - ``delay``: seconds to wait before the status line (added to the server's
      ``latency``).

    Stream shape (requests with ``"stream": true``):

    - ``chunk_size``: characters of reasoning, content and tool arguments per event.
    - ``chunk_delay``: seconds between events (lets a client cancel mid-stream).
    - ``fragment_tool_calls``: a call starts with a delta holding ``id``, ``type``,
      ``function.name`` and ``arguments: ""``, then argument fragments follow;
      ``False`` sends each call whole in one delta.
    - ``usage_style``: ``"ace"``: a last chunk with ``choices: []`` and the usage,
      only when the request set ``stream_options.include_usage``; every other
      chunk has ``"usage": null``. ``"moonshot"``: usage inside ``choices[0]`` of
      the finish chunk. ``"inline"``: usage top-level on the finish chunk.
    - ``repeat_role`` (role on every delta), ``spaced_json`` (``", "`` and
      ``": "`` separators), ``comments`` (``: keep-alive`` lines and extra blank
      lines), ``crlf`` (``\\r\\n`` line endings), ``repeat_finish`` (the finish
      chunk twice): quirks seen in real streams.

    Faults (``fault``), counted in SSE events for streams (the first event is
    the role delta; ``fault_after`` defaults to 2 for streams, 0 otherwise):

    - ``"reset"``: the connection is reset (RST) before any status line.
    - ``"disconnect"``: streams send ``fault_after`` events then drop the
      connection without ``[DONE]`` nor the chunked terminator. Non-streamed
      replies send the headers and ``fault_after`` bytes of the body, then drop.
    - ``"stall"``: wait ``stall`` seconds after ``fault_after`` events (streams),
      before the status line (non-streamed, ``fault_after == 0``) or after the
      headers and ``fault_after`` body bytes. Stopping the server ends the wait
      and drops the connection.
    - ``"malformed"``: after ``fault_after`` events a ``data: {not json`` line,
      then the stream goes on normally. Non-streamed: the body is ``{not json``.
    - ``"error_event"``: after ``fault_after`` events a ``data: {"error": ...}``
      event, then the stream ends cleanly *without* ``[DONE]``. Non-streamed:
      the error object is the 200 body.
    - ``"split_utf8"``: the body goes out in writes of 1 to 3 bytes (one HTTP
      chunk each for streams), splitting multi-byte characters.
    - ``"gzip"``: ``Content-Encoding: gzip`` (streams are compressed with a sync
      flush per event).
    """

    content: str | None = None
    reasoning: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    finish_reason: str | None = None
    usage: Mapping[str, Any] | None = None
    model: str | None = None
    id: str | None = None
    created: int | None = None
    status: int = 200
    body: bytes | str | Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunk_size: int = 4
    chunk_delay: float = 0.0
    fragment_tool_calls: bool = True
    usage_style: UsageStyle = "ace"
    repeat_role: bool = False
    spaced_json: bool = False
    comments: bool = False
    crlf: bool = False
    repeat_finish: bool = False
    fault: Fault | None = None
    fault_after: int | None = None
    stall: float = 30.0

    def __post_init__(self) -> None:
        # Fail when the reply is written, not later inside a server thread where
        # the mistake would surface as a confusing client-side error.
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; expected one of {sorted(FAULTS)}")
        if self.usage_style not in USAGE_STYLES:
            raise ValueError(
                f"unknown usage_style {self.usage_style!r}; expected one of {sorted(USAGE_STYLES)}"
            )
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        if not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {self.status}")
        if self.fault_after is not None and self.fault_after < 0:
            raise ValueError("fault_after must not be negative")
        if isinstance(self.tool_calls, (str, bytes)) or not all(
            isinstance(call, ToolCall) for call in self.tool_calls
        ):
            raise TypeError("tool_calls must be a sequence of ToolCall")

    @classmethod
    def error(
        cls,
        status: int,
        code: str,
        message: str,
        *,
        trace_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        style: ErrorStyle = "ace",
    ) -> Reply:
        """An error answer with the body of one of the two services.

        ``style="ace"`` (Ace Data Cloud)::

            {"success": false, "error": {"code": code, "message": message}, "trace_id": ...}

        ``style="moonshot"``: ``{"error": {"message": message, "type": code}}``.
        ``trace_id`` defaults to a fresh UUID.

        Usage::

            Reply.error(429, "too_many_requests", "slow down", headers={"Retry-After": "1"})
            Reply.error(400, "invalid_request_error", "bad", style="moonshot")
        """
        body: dict[str, Any]
        if style == "ace":
            body = {
                "success": False,
                "error": {"code": code, "message": message},
                "trace_id": trace_id if trace_id is not None else str(uuid.uuid4()),
            }
        elif style == "moonshot":
            body = {"error": {"message": message, "type": code}}
        else:
            raise ValueError(f"unknown error style {style!r}; expected 'ace' or 'moonshot'")
        return cls(status=status, body=body, headers=dict(headers or {}))

    @classmethod
    def html(
        cls, status: int, html: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """A gateway's HTML error page (``Content-Type: text/html``), as proxies send on 502-504.

        Usage::

            Reply.html(502)
            Reply.html(503, "<html><body>Service Unavailable</body></html>")
        """
        if html is None:
            try:
                title = f"{status} {HTTPStatus(status).phrase}"
            except ValueError:
                title = str(status)
            html = (
                f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
                f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
                "</body>\r\n</html>\r\n"
            )
        merged = {"Content-Type": "text/html; charset=utf-8", **(headers or {})}
        return cls(status=status, body=html, headers=merged)

    @classmethod
    def raw(
        cls,
        body: bytes | str,
        *,
        content_type: str = "text/event-stream",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """A body sent verbatim, for replaying a recorded payload (SSE by default).

        Usage::

            Reply.raw('data: {"choices": []}\\n\\ndata: [DONE]\\n\\n')
        """
        merged = {"Content-Type": content_type, **(headers or {})}
        return cls(status=status, body=body, headers=merged)

    @classmethod
    def large(cls, n_chars: int, *, chunk_size: int = 4096, **fields: Any) -> Reply:
        """A reply whose content is ``n_chars`` characters of deterministic text.

        The text mixes ASCII with multi-byte characters. ``chunk_size`` defaults
        to 4096 so a streamed megabyte stays a few hundred events.

        Usage::

            Reply.large(1_000_000)
            Reply.large(50_000, chunk_size=16, fault="split_utf8")
        """
        if n_chars < 0:
            raise ValueError("n_chars must not be negative")
        repeats = n_chars // len(_LARGE_PATTERN) + 1
        content = (_LARGE_PATTERN * repeats)[:n_chars]
        return cls(content=content, chunk_size=chunk_size, **fields)
