"""Kimi response JSON -> LangChain results. Pure: no I/O.

``parse_completion`` reads a whole ``chat.completion``; ``StreamParser`` reads the
``data`` of each streamed event (as :class:`~langchain_kimi._sse.SSEDecoder`
yields it) and returns one :class:`ChatGenerationChunk` per event that carries
something. End-of-stream facts that real streams repeat or scatter (the
``finish_reason`` sent twice, usage in any of three places) are held back and
emitted once, on the last chunk, because LangChain adds chunks' usage together
and concatenates their strings.
"""

from __future__ import annotations

import json
from typing import Any, cast

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    InvalidToolCall,
    ToolCall,
    ToolCallChunk,
)
from langchain_core.messages import content as types
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.block_translators import register_translator
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from langchain_kimi.errors import (
    KimiAPIError,
    KimiResponseError,
    KimiStreamInterruptedError,
    KimiStreamTimeoutError,
    parse_error_body,
)

PROVIDER = "kimi"

# A malformed event can be a whole HTML page; error messages quote only its start.
_LINE_EXCERPT_CHARS = 200


def parse_usage(usage: Any) -> UsageMetadata | None:
    """Kimi's ``usage`` object -> LangChain's ``UsageMetadata`` (None when absent)."""
    if not isinstance(usage, dict):
        return None
    input_tokens = usage.get("prompt_tokens") or 0
    output_tokens = usage.get("completion_tokens") or 0
    result: UsageMetadata = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": usage.get("total_tokens") or input_tokens + output_tokens,
    }
    # Kimi reports cache hits at the top level; OpenAI-style proxies nest them.
    cached = usage.get("cached_tokens")
    if cached is None:
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict):
            cached = details.get("cached_tokens")
    if cached is not None:
        result["input_token_details"] = InputTokenDetails(cache_read=cached)
    completion_details = usage.get("completion_tokens_details")
    if isinstance(completion_details, dict):
        reasoning = completion_details.get("reasoning_tokens")
        if reasoning is not None:
            result["output_token_details"] = OutputTokenDetails(reasoning=reasoning)
    return result


def parse_tool_calls(raw_calls: Any) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """Wire ``tool_calls`` -> (parsed calls, calls whose arguments are not a JSON object)."""
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    if not isinstance(raw_calls, list):
        return calls, invalid
    for raw in raw_calls:
        function = raw.get("function") or {}
        name = function.get("name") or ""
        arguments = function.get("arguments")
        call_id = raw.get("id")
        if isinstance(arguments, dict):  # some proxies send an object, not a string
            calls.append(tool_call(name=name, args=arguments, id=call_id))
            continue
        text = arguments or ""
        try:
            args = json.loads(text) if text.strip() else {}
        except ValueError as err:
            invalid.append(
                invalid_tool_call(name=name, args=text, id=call_id, error=f"invalid JSON: {err}")
            )
            continue
        if isinstance(args, dict):
            calls.append(tool_call(name=name, args=args, id=call_id))
        else:
            invalid.append(
                invalid_tool_call(
                    name=name, args=text, id=call_id, error="arguments are not a JSON object"
                )
            )
    return calls, invalid


def raise_for_error_event(data: dict[str, Any], status_code: int = 200) -> None:
    """Raise the typed error for an ``{"error": ...}`` body that arrived with a 200."""
    if data.get("error") is None or "choices" in data:
        return
    code, message, trace_id, body = parse_error_body(json.dumps(data))
    raise KimiAPIError(
        f"the service reported an error inside a {status_code} response: {message}",
        status_code=status_code,
        code=code,
        trace_id=trace_id,
        body=body,
    )


def parse_completion(data: Any) -> ChatResult:
    """A ``chat.completion`` JSON object -> ``ChatResult`` (one generation per choice)."""
    if not isinstance(data, dict):
        raise KimiResponseError(f"expected a JSON object, got {type(data).__name__}")
    raise_for_error_event(data)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise KimiResponseError(
            f"the response has no choices: {_excerpt(json.dumps(data, ensure_ascii=False))}"
        )
    usage = parse_usage(data.get("usage"))
    model_name = data.get("model")
    completion_id = data.get("id") if isinstance(data.get("id"), str) and data["id"] else None
    generations = []
    for choice in choices:
        message = choice.get("message") or {}
        additional_kwargs: dict[str, Any] = {}
        reasoning = message.get("reasoning_content")
        if isinstance(reasoning, str):
            additional_kwargs["reasoning_content"] = reasoning
        if message.get("refusal"):
            additional_kwargs["refusal"] = message["refusal"]
        calls, invalid = parse_tool_calls(message.get("tool_calls"))
        finish_reason = choice.get("finish_reason")
        response_metadata: dict[str, Any] = {
            "model_name": model_name,
            "finish_reason": finish_reason,
            "id": data.get("id"),
            "model_provider": PROVIDER,
        }
        if data.get("system_fingerprint"):
            response_metadata["system_fingerprint"] = data["system_fingerprint"]
        if choice.get("logprobs"):
            response_metadata["logprobs"] = choice["logprobs"]
        generations.append(
            ChatGeneration(
                message=AIMessage(
                    content=message.get("content") or "",
                    # The service's id, as ChatOpenAI gives it; LangChain keeps an id
                    # that is set and invents a run id only where there is none.
                    id=completion_id,
                    additional_kwargs=additional_kwargs,
                    tool_calls=calls,
                    invalid_tool_calls=invalid,
                    usage_metadata=usage,
                    response_metadata=response_metadata,
                ),
                generation_info={"finish_reason": finish_reason},
            )
        )
    llm_output: dict[str, Any] = {"model_name": model_name}
    if data.get("usage") is not None:
        llm_output["token_usage"] = data["usage"]
    return ChatResult(generations=generations, llm_output=llm_output)


class StreamParser:
    """Turns a stream's events into ``ChatGenerationChunk``s; one instance per stream.

    Call :meth:`feed` with each event's data (``[DONE]`` included), then
    :meth:`finish` when the bytes end: it returns the last chunk (finish reason,
    usage, ``chunk_position="last"``) or raises when ``[DONE]`` never came.
    Every chunk carries the first completion id the stream sent as its message
    id (proxies change the id mid-stream; one message needs one id).
    ``partial_content`` / ``partial_reasoning`` tell what arrived, for errors.
    """

    __slots__ = (
        "_content_parts",
        "_first",
        "_id",
        "_model",
        "_reasoning_parts",
        "_system_fingerprint",
        "done",
        "finish_reason",
        "usage",
    )

    def __init__(self) -> None:
        self.done = False
        self.finish_reason: str | None = None
        self.usage: Any = None
        self._first = True
        self._id: str | None = None
        self._model: str | None = None
        self._system_fingerprint: str | None = None
        # Kept only to report what arrived if the stream breaks; joined once, then.
        self._content_parts = _TextParts()
        self._reasoning_parts = _TextParts()

    @property
    def partial_content(self) -> str:
        return self._content_parts.join()

    @property
    def partial_reasoning(self) -> str:
        return self._reasoning_parts.join()

    def interrupted(self, reason: str, *, timed_out: bool = False) -> KimiStreamInterruptedError:
        """The error for a stream cut short (or stalled), carrying what had arrived."""
        content = self.partial_content
        error_class = KimiStreamTimeoutError if timed_out else KimiStreamInterruptedError
        return error_class(
            f"the response was interrupted after {len(content)} characters of content: {reason}",
            partial_content=content,
            partial_reasoning=self.partial_reasoning,
        )

    def feed(self, data: str) -> ChatGenerationChunk | None:
        """One event's data -> a chunk to yield, or None when it carries nothing new."""
        if self.done:
            return None  # anything after [DONE] is noise
        if data == "[DONE]":
            self.done = True
            return None
        try:
            event = json.loads(data)
        except ValueError:
            raise KimiResponseError(
                f"malformed stream event (not JSON): {_excerpt(data)!r}"
            ) from None
        if not isinstance(event, dict):
            raise KimiResponseError(f"malformed stream event (not an object): {_excerpt(data)!r}")
        choices = event.get("choices")
        if not choices:
            raise_for_error_event(event)
            if event.get("usage") is not None:
                self.usage = event["usage"]
            return None
        if self._first:
            self._first = False
            self._model = event.get("model")
            self._system_fingerprint = event.get("system_fingerprint")
        if self._id is None:
            event_id = event.get("id")
            if isinstance(event_id, str) and event_id:
                self._id = event_id
        if event.get("usage") is not None:
            self.usage = event["usage"]
        choice = choices[0]
        if choice.get("usage") is not None:
            self.usage = choice["usage"]
        finish = choice.get("finish_reason")
        if finish:
            self.finish_reason = finish
        delta = choice.get("delta")
        if not delta:
            return None
        content = delta.get("content") or ""
        reasoning = delta.get("reasoning_content")
        raw_calls = delta.get("tool_calls")
        if not content and not reasoning and not raw_calls:
            return None
        if content:
            self._content_parts.append(content)
        # Only what the event carries: passing the empty defaults explicitly
        # costs a microsecond of validation per chunk.
        fields: dict[str, Any] = {}
        if reasoning:
            self._reasoning_parts.append(reasoning)
            fields["additional_kwargs"] = {"reasoning_content": reasoning}
        if raw_calls:
            call_chunks: list[ToolCallChunk] = []
            fields["tool_call_chunks"] = call_chunks
            for position, raw in enumerate(raw_calls):
                function = raw.get("function") or {}
                arguments = function.get("arguments")
                if isinstance(arguments, dict):
                    arguments = json.dumps(arguments, ensure_ascii=False)
                call_chunks.append(
                    tool_call_chunk(
                        name=function.get("name"),
                        args=arguments,
                        id=raw.get("id"),
                        index=raw.get("index", position),
                    )
                )
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content=content,
                id=self._id,
                **fields,
                # Every chunk names its provider: LangChain picks the block
                # translator (output_version="v1", content_blocks) per chunk.
                response_metadata={"model_provider": PROVIDER},
            )
        )

    def finish(self) -> ChatGenerationChunk:
        """The closing chunk, once the bytes have ended after ``[DONE]``."""
        if not self.done:
            raise self.interrupted("the stream ended before [DONE]")
        response_metadata: dict[str, Any] = {
            "model_name": self._model,
            "finish_reason": self.finish_reason,
            "id": self._id,
            "model_provider": PROVIDER,
        }
        if self._system_fingerprint:
            response_metadata["system_fingerprint"] = self._system_fingerprint
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                id=self._id,
                usage_metadata=parse_usage(self.usage),
                response_metadata=response_metadata,
                chunk_position="last",
            ),
            generation_info={"finish_reason": self.finish_reason},
        )


class _TextParts:
    """Text that arrives in small pieces, stored in little more than its own size.

    A plain list of the pieces costs about 60 bytes of object overhead per
    token-sized piece: 15x the text over a long stream (measured: 6 MB held for
    a 100,000-chunk, 400 KB answer). Every ``_BLOCK`` pieces are joined into one
    string instead, so each character is copied at most twice and the overhead
    is one string per block.
    """

    __slots__ = ("_blocks", "_pieces")

    def __init__(self) -> None:
        self._blocks: list[str] = []
        self._pieces: list[str] = []

    def append(self, piece: str) -> None:
        pieces = self._pieces
        pieces.append(piece)
        if len(pieces) >= _BLOCK:
            self._blocks.append("".join(pieces))
            pieces.clear()

    def join(self) -> str:
        return "".join(self._blocks) + "".join(self._pieces)


_BLOCK = 256


def _excerpt(text: str) -> str:
    return text if len(text) <= _LINE_EXCERPT_CHARS else text[:_LINE_EXCERPT_CHARS] + "..."


# --- standard content blocks (output_version="v1", content_blocks) -------------
#
# LangChain's generic fallback gives every streamed block the index of its own
# kind (reasoning 0, text 1, tool call i -> i), so with output_version="v1" the
# first tool call's fragments merge into the reasoning block. Kimi's order is
# fixed (reasoning, then text, then tool calls), so each kind gets its own merge
# key, stable for the whole stream.
_REASONING_BLOCK_INDEX = 0
_TEXT_BLOCK_INDEX = 1
_FIRST_TOOL_BLOCK_INDEX = 2


def translate_content(message: AIMessage) -> list[types.ContentBlock]:
    """A Kimi message's standard blocks: reasoning, text, tool calls, invalid tool calls."""
    if not isinstance(message.content, str):
        # Already blocks (v1) or built by hand: LangChain's generic parsing reads them.
        raise NotImplementedError
    # Plain dicts: the TypedDict constructors (and mypy's reading of their
    # NotRequired keys) would demand ids, and LangChain's factories invent random
    # ones, which would stop streamed blocks from merging.
    blocks: list[dict[str, Any]] = []
    reasoning = message.additional_kwargs.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        blocks.append({"type": "reasoning", "reasoning": reasoning})
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        blocks.append(
            {"type": "tool_call", "id": call["id"], "name": call["name"], "args": call["args"]}
        )
    for bad in message.invalid_tool_calls:
        blocks.append(
            {
                "type": "invalid_tool_call",
                "id": bad["id"],
                "name": bad["name"],
                "args": bad["args"],
                "error": bad["error"],
            }
        )
    return cast("list[types.ContentBlock]", blocks)


def translate_content_chunk(chunk: AIMessageChunk) -> list[types.ContentBlock]:
    """A streamed chunk's standard blocks, indexed so that adding chunks merges them right."""
    if not isinstance(chunk.content, str):
        raise NotImplementedError
    if chunk.chunk_position == "last":
        # The whole stream added up (or its closing chunk): calls are complete.
        return translate_content(chunk)
    blocks: list[dict[str, Any]] = []
    reasoning = chunk.additional_kwargs.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        blocks.append(
            {"type": "reasoning", "reasoning": reasoning, "index": _REASONING_BLOCK_INDEX}
        )
    if chunk.content:
        blocks.append({"type": "text", "text": chunk.content, "index": _TEXT_BLOCK_INDEX})
    for position, piece in enumerate(chunk.tool_call_chunks):
        call_index = piece.get("index")
        if call_index is None:
            call_index = position
        blocks.append(
            {
                "type": "tool_call_chunk",
                "id": piece.get("id"),
                "name": piece.get("name"),
                "args": piece.get("args"),
                "index": _FIRST_TOOL_BLOCK_INDEX + call_index,
            }
        )
    return cast("list[types.ContentBlock]", blocks)


register_translator(PROVIDER, translate_content, translate_content_chunk)
