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
from collections.abc import Sequence
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
from langchain_core.utils.json import parse_partial_json

from langchain_kimi._limits import MAX_CHOICES
from langchain_kimi._sse import ErrorEvent
from langchain_kimi.errors import (
    KimiAPIError,
    KimiResponseError,
    KimiStreamInterruptedError,
    KimiStreamTimeoutError,
    parse_error_body,
    parse_error_json,
    redact_secrets,
)

PROVIDER = "kimi"

# A malformed event can be a whole HTML page; error messages quote only its start.
_LINE_EXCERPT_CHARS = 200


def parse_usage(usage: Any, where: str = "usage") -> UsageMetadata | None:
    """Kimi's ``usage`` object -> LangChain's ``UsageMetadata`` (None when absent).

    Raises :class:`KimiResponseError` when it is not an object or a count is
    not a number: LangChain adds usage up across calls, and a string there
    would fail far from here.
    """
    if usage is None:
        return None
    if not isinstance(usage, dict):
        raise _malformed(where, "an object", usage)
    input_tokens = _token_count(usage, "prompt_tokens", where) or 0
    output_tokens = _token_count(usage, "completion_tokens", where) or 0
    result: UsageMetadata = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": _token_count(usage, "total_tokens", where) or input_tokens + output_tokens,
    }
    # Kimi reports cache hits at the top level; OpenAI-style proxies nest them.
    cached = _token_count(usage, "cached_tokens", where)
    if cached is None:
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict):
            cached = _token_count(details, "cached_tokens", f"{where}.prompt_tokens_details")
    if cached is not None:
        result["input_token_details"] = InputTokenDetails(cache_read=cached)
    completion_details = usage.get("completion_tokens_details")
    if isinstance(completion_details, dict):
        reasoning = _token_count(
            completion_details, "reasoning_tokens", f"{where}.completion_tokens_details"
        )
        if reasoning is not None:
            result["output_token_details"] = OutputTokenDetails(reasoning=reasoning)
    return result


def _token_count(container: dict[str, Any], key: str, where: str) -> int | None:
    value = container.get(key)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _malformed(f"{where}.{key}", "a whole number", value)


def parse_tool_calls(
    raw_calls: Any, *, where: str = "tool_calls", truncated: bool = False
) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """Wire ``tool_calls`` -> (parsed calls, calls whose arguments are not a JSON object).

    ``truncated``: the answer was cut off (``finish_reason: "length"``); a call
    whose arguments are not complete JSON, or are empty, was cut off with it
    and is invalid, never a call with fewer arguments. A call that is not shaped
    like one (not an object, no name...) raises :class:`KimiResponseError`.
    """
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    if raw_calls is None:
        return calls, invalid
    if not isinstance(raw_calls, list):
        raise _malformed(where, "an array", raw_calls)
    for position, raw in enumerate(raw_calls):
        call_where = f"{where}[{position}]"
        name, arguments, call_id = _read_tool_call(raw, call_where, whole=True)
        if isinstance(arguments, dict):  # some proxies send an object, not a string
            calls.append(tool_call(name=name or "", args=arguments, id=call_id))
            continue
        text = arguments or ""
        if truncated and not text.strip():
            invalid.append(
                invalid_tool_call(name=name, args=text, id=call_id, error=_CUT_OFF_BEFORE_ARGS)
            )
            continue
        try:
            args = json.loads(text) if text.strip() else {}
        except (ValueError, RecursionError) as err:
            error = f"{_CUT_OFF} ({err})" if truncated else f"invalid JSON: {err}"
            invalid.append(invalid_tool_call(name=name, args=text, id=call_id, error=error))
            continue
        if isinstance(args, dict):
            calls.append(tool_call(name=name or "", args=args, id=call_id))
        else:
            invalid.append(
                invalid_tool_call(
                    name=name, args=text, id=call_id, error="arguments are not a JSON object"
                )
            )
    return calls, invalid


_CUT_OFF = 'the answer was cut off (finish_reason "length"): the arguments are incomplete JSON'
_CUT_OFF_BEFORE_ARGS = 'the answer was cut off (finish_reason "length") before the arguments'


def _read_tool_call(
    raw: Any, where: str, *, whole: bool, context: str = "response"
) -> tuple[str | None, str | dict[str, Any] | None, str | None]:
    """(name, arguments, id) of one wire tool call, or the error saying what is wrong.

    ``whole``: a complete call (not a stream fragment), which must have a name.
    """
    if not isinstance(raw, dict):
        raise _malformed(where, "an object", raw, context)
    call_id = _optional_str(raw, "id", where, context)
    function = raw.get("function")
    if function is None:
        if whole:
            raise KimiResponseError(f"malformed {context}: {where} has no function")
        return None, None, call_id
    if not isinstance(function, dict):
        raise _malformed(f"{where}.function", "an object", function, context)
    name = _optional_str(function, "name", f"{where}.function", context)
    if whole and not name:
        raise KimiResponseError(f"malformed {context}: {where}.function has no name")
    arguments = function.get("arguments")
    if arguments is not None and not isinstance(arguments, (str, dict)):
        raise _malformed(f"{where}.function.arguments", "a string or an object", arguments, context)
    index = raw.get("index")
    if not whole and index is not None and index.__class__ is not int:
        raise _malformed(f"{where}.index", "a whole number", index, context)
    return name, arguments, call_id


def raise_for_error_event(
    data: dict[str, Any],
    status_code: int = 200,
    *,
    secrets: Sequence[str] = (),
    partial_content: str = "",
    partial_reasoning: str = "",
) -> None:
    """Raise the typed error for an ``{"error": ...}`` body that arrived with a 200.

    ``secrets`` are redacted from what the error shows (see
    :func:`~langchain_kimi.errors.redact_secrets`); ``partial_*``: what a stream
    had delivered before it.
    """
    if data.get("error") is None or "choices" in data:
        return
    code, message, trace_id, body = parse_error_json(data, secrets=secrets)
    raise KimiAPIError(
        f"the service reported an error inside a {status_code} response: {message}",
        status_code=status_code,
        code=code,
        trace_id=trace_id,
        body=body,
        partial_content=partial_content,
        partial_reasoning=partial_reasoning,
    )


def parse_completion(data: Any, *, secrets: Sequence[str] = ()) -> ChatResult:
    """A ``chat.completion`` JSON object -> ``ChatResult`` (one generation per choice).

    Anything not shaped like a completion raises :class:`KimiResponseError`
    naming the part (``choices[0].message.tool_calls[0] is not an object``);
    an ``{"error": ...}`` body raises :class:`KimiAPIError`. ``secrets`` are
    redacted from what errors quote.
    """
    if not isinstance(data, dict):
        raise KimiResponseError(
            f"malformed response: expected a JSON object, got {_json_type(data)}"
        )
    raise_for_error_event(data, secrets=secrets)
    choices = data.get("choices")
    if choices is not None and not isinstance(choices, list):
        raise _malformed("choices", "an array", choices)
    if not choices:
        raise KimiResponseError(f"the response has no choices: {_shown_json(data, secrets)}")
    if len(choices) > MAX_CHOICES:
        # Each choice becomes a message of a few KB: a body of empty choices
        # would cost a hundred times its size. No request asks for this many.
        raise KimiResponseError(
            f"the response has {len(choices):,} choices, more than {MAX_CHOICES} "
            "(the most any request can ask for); it was not read further"
        )
    usage = parse_usage(data.get("usage"))
    model_name = _optional_str(data, "model", "")
    response_id = _optional_str(data, "id", "")
    fingerprint = _optional_str(data, "system_fingerprint", "")
    generations = []
    for position, choice in enumerate(choices):
        where = f"choices[{position}]"
        if not isinstance(choice, dict):
            raise _malformed(where, "an object", choice)
        message = choice.get("message")
        if not isinstance(message, dict):
            raise _malformed(f"{where}.message", "an object", message)
        where = f"{where}.message"
        content = _optional_str(message, "content", where)
        reasoning = _optional_str(message, "reasoning_content", where)
        refusal = _optional_str(message, "refusal", where)
        finish_reason = _optional_str(choice, "finish_reason", f"choices[{position}]")
        additional_kwargs: dict[str, Any] = {}
        if reasoning is not None:
            additional_kwargs["reasoning_content"] = reasoning
        if refusal:
            additional_kwargs["refusal"] = refusal
        calls, invalid = parse_tool_calls(
            message.get("tool_calls"),
            where=f"{where}.tool_calls",
            truncated=finish_reason == "length",
        )
        response_metadata: dict[str, Any] = {
            "model_name": model_name,
            "finish_reason": finish_reason,
            "id": response_id,
            "model_provider": PROVIDER,
        }
        if fingerprint:
            response_metadata["system_fingerprint"] = fingerprint
        if choice.get("logprobs"):
            response_metadata["logprobs"] = choice["logprobs"]
        generations.append(
            ChatGeneration(
                message=AIMessage(
                    content=content or "",
                    # The service's id, as ChatOpenAI gives it; LangChain keeps an id
                    # that is set and invents a run id only where there is none.
                    id=response_id or None,
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


def completion_as_stream(data: Any, *, secrets: Sequence[str] = ()) -> list[ChatGenerationChunk]:
    """A whole ``chat.completion`` -> the chunks a stream of it would have given.

    For a service (or proxy) that answers a streaming request with one JSON
    completion: the chunks add up to the message ``invoke`` returns (a call
    that ``parse_completion`` found invalid stays invalid once added up), and
    the last one carries the metadata and usage, as a stream's closing chunk does.
    """
    result = parse_completion(data, secrets=secrets)
    if len(result.generations) != 1:
        raise KimiResponseError(
            f"a streaming request was answered with {len(result.generations)} choices "
            "in one JSON body; a stream has one"
        )
    message = result.generations[0].message
    assert isinstance(message, AIMessage)
    try:
        call_chunks: list[ToolCallChunk] = [
            tool_call_chunk(
                name=call["name"],
                args=json.dumps(call["args"], ensure_ascii=False),
                id=call["id"],
                index=position,
            )
            for position, call in enumerate(message.tool_calls)
        ]
    except RecursionError:
        call_chunks = []
    if len(call_chunks) != len(message.tool_calls):
        raise KimiResponseError("malformed response: tool call arguments nested too deeply")
    for position, bad in enumerate(message.invalid_tool_calls, start=len(call_chunks)):
        args = bad["args"] or ""
        call_chunks.append(
            tool_call_chunk(
                name=bad["name"], args=args + _unparsable_suffix(args), id=bad["id"], index=position
            )
        )
    chunks = [
        ChatGenerationChunk(
            message=AIMessageChunk(
                content=message.content,
                additional_kwargs=message.additional_kwargs,
                tool_call_chunks=call_chunks,
                response_metadata={"model_provider": PROVIDER},
            )
        ),
        ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=message.usage_metadata,
                response_metadata=message.response_metadata,
                chunk_position="last",
            ),
            generation_info=result.generations[0].generation_info,
        ),
    ]
    return chunks


def _unparsable_suffix(args: str) -> str:
    """What to add to arguments LangChain must not accept, so that it cannot.

    Added-up chunks get their tool calls from LangChain's partial-JSON parser,
    which completes what was cut off (``'{"path": "/ho'`` becomes
    ``{"path": "/ho"}``). It gives up at a closing bracket that does not match
    what is open, so the suffix closes an open string, then adds one that does
    not match. Empty when LangChain already refuses ``args``. The result is
    checked with LangChain's own parser; if none works, this raises rather
    than let a cut-off call through.
    """
    if not _langchain_accepts(args):
        return ""
    for suffix in _SUFFIXES:
        if not _langchain_accepts(args + suffix):
            return suffix
    raise KimiResponseError(
        "the answer was cut off in the middle of a tool call's arguments, and the "
        "call could not be marked as incomplete"
    )


# Outside a string, with "{" or nothing open / with "[" open; then the same
# after closing an open string; then after ending an escape first.
_SUFFIXES = ("]", "}", '"]', '"}', '\\"]', '\\"}')


def _langchain_accepts(args: str) -> bool:
    """Whether adding up chunks turns ``args`` into a valid tool call (as langchain-core does)."""
    if not args:
        return True  # no arguments: a call with {}
    try:
        return isinstance(parse_partial_json(args), dict)
    except Exception:  # what LangChain does with any failure: the call is invalid
        return False


def _shown_json(data: Any, secrets: Sequence[str]) -> str:
    """The start of ``data`` as JSON, for an error message, with ``secrets`` redacted."""
    try:
        text = json.dumps(data, ensure_ascii=False)
    except RecursionError:
        return "(nested too deeply to show)"
    return _excerpt(redact_secrets(text, secrets))


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


_JSON_TYPES: dict[type, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}


def _malformed(
    where: str, expected: str, value: Any, context: str = "response"
) -> KimiResponseError:
    # The type, never the value: a server can echo anything, the token included.
    return KimiResponseError(
        f"malformed {context}: {where} is not {expected} (it is {_json_type(value)})"
    )


def _optional_str(
    container: dict[str, Any], key: str, where: str, context: str = "response"
) -> Any:
    value = container.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _malformed(f"{where}.{key}" if where else key, "a string", value, context)


class StreamParser:
    """Turns a stream's events into ``ChatGenerationChunk``s; one instance per stream.

    Call :meth:`feed` with each event's data (``[DONE]`` included), then
    :meth:`finish` when the bytes end: it returns the last chunk (finish reason,
    usage, ``chunk_position="last"``) or raises when ``[DONE]`` never came.
    Every chunk carries the first completion id the stream sent as its message
    id (proxies change the id mid-stream; one message needs one id).
    ``partial_content`` / ``partial_reasoning`` tell what arrived, for errors.
    An event not shaped like a chunk raises :class:`KimiResponseError` naming
    the part; ``secrets`` are redacted from what errors quote.

    When the answer was cut off (``finish_reason: "length"``) in the middle of
    a tool call's arguments, the last chunk also carries a fragment for that
    call that LangChain's partial-JSON parser cannot complete: the chunks then
    add up to a message where the call is in ``invalid_tool_calls``, not a call
    with the arguments it had so far.
    """

    __slots__ = (
        "_calls",
        "_content_parts",
        "_first",
        "_id",
        "_model",
        "_reasoning_parts",
        "_replaced",
        "_secrets",
        "_system_fingerprint",
        "done",
        "finish_reason",
        "usage",
    )

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        self.done = False
        self.finish_reason: str | None = None
        self.usage: Any = None
        self._first = True
        self._id: str | None = None
        self._model: str | None = None
        self._system_fingerprint: str | None = None
        self._secrets = tuple(secrets)
        # Kept only to report what arrived if the stream breaks; joined once, then.
        self._content_parts = _TextParts()
        self._reasoning_parts = _TextParts()
        # Each tool call's id and argument fragments by index, to tell at the
        # end whether a cut-off answer left one incomplete.
        self._calls: dict[int, tuple[str | None, list[str]]] | None = None
        # Indexes where a call with a new id replaced another (see _tool_call_chunks).
        self._replaced: set[int] | None = None

    @property
    def started(self) -> bool:
        """An event with choices has arrived."""
        return not self._first

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
        if data.__class__ is ErrorEvent:
            raise self._error_event(data)
        try:
            event = json.loads(data)
        except ValueError:
            event = _NOT_JSON
        except RecursionError:
            event = _TOO_DEEP
        if event is _NOT_JSON or event is _TOO_DEEP:
            # Raised outside the except clause: the JSONDecodeError holds the
            # whole line (unredacted) and would ride along as __context__.
            problem = "not JSON" if event is _NOT_JSON else "JSON nested too deeply"
            shown = redact_secrets(data, self._secrets)
            raise KimiResponseError(f"malformed stream event ({problem}): {_excerpt(shown)!r}")
        # The common shapes are read without checking each field's type first;
        # a wrong type fails below (or is caught by the few checks that remain),
        # and _diagnose then says exactly what was wrong.
        try:
            choices = event.get("choices")
            if not choices:
                if choices is not None and not isinstance(choices, list):
                    raise _malformed("choices", "an array", choices, "stream event")
                if event.get("error") is not None:
                    raise_for_error_event(
                        event,
                        secrets=self._secrets,
                        partial_content=self.partial_content,
                        partial_reasoning=self.partial_reasoning,
                    )
                if event.get("usage") is not None:
                    self.usage = event["usage"]
                return None
            if self._first:
                self._read_first(event)
            if self._id is None:
                # The first id the stream sends names the whole message (proxies
                # change it mid-stream; one message needs one id).
                self._id = _optional_str(event, "id", "", "stream event") or None
            if event.get("usage") is not None:
                self.usage = event["usage"]
            choice = choices[0]
            if choice.get("index") or len(choices) > 1:
                raise self._second_choice(choices)
            if choice.get("usage") is not None:
                self.usage = choice["usage"]
            finish = choice.get("finish_reason")
            if finish:
                if finish.__class__ is not str:
                    raise _malformed("choices[0].finish_reason", "a string", finish, "stream event")
                self.finish_reason = finish
            delta = choice.get("delta")
            if not delta:
                if delta is not None and delta.__class__ is not dict:
                    raise _malformed("choices[0].delta", "an object", delta, "stream event")
                return None
            content = delta.get("content")
            if content.__class__ is not str:
                if content is not None:
                    raise _malformed(
                        "choices[0].delta.content", "a string", content, "stream event"
                    )
                content = ""
            reasoning = delta.get("reasoning_content")
            raw_calls = delta.get("tool_calls")
            if not content and not reasoning and not raw_calls:
                _check_empty_delta(reasoning, raw_calls)
                return None
            if content:
                self._content_parts.append(content)
            # Only what the event carries: passing the empty defaults explicitly
            # costs a microsecond of validation per chunk.
            fields: dict[str, Any] = {}
            if reasoning:
                if reasoning.__class__ is not str:
                    raise _malformed(
                        "choices[0].delta.reasoning_content", "a string", reasoning, "stream event"
                    )
                self._reasoning_parts.append(reasoning)
                fields["additional_kwargs"] = {"reasoning_content": reasoning}
            if raw_calls:
                fields["tool_call_chunks"] = self._tool_call_chunks(raw_calls)
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
        except (AttributeError, TypeError, KeyError, IndexError, ValueError, RecursionError) as err:
            error = self._diagnose(event, err)
        # Outside the except clause, so that the failure (a pydantic error quotes
        # the values) does not ride along as __context__.
        raise error

    def _error_event(self, data: str) -> KimiAPIError:
        """The error for an ``event: error``, whatever its data holds (or if none)."""
        code, message, trace_id, body = parse_error_body(data, secrets=self._secrets)
        return KimiAPIError(
            f"the service sent an error event in the stream: {message}",
            status_code=200,
            code=code,
            trace_id=trace_id,
            body=body,
            partial_content=self.partial_content,
            partial_reasoning=self.partial_reasoning,
        )

    def _second_choice(self, choices: list[Any]) -> KimiResponseError:
        """The error for an event with another choice than the first (a stream has one)."""
        carries = f"{len(choices):,} choices in one event"
        for position, choice in enumerate(choices):
            index = choice.get("index") if isinstance(choice, dict) else None
            if index:
                if index.__class__ is not int:
                    return _malformed(
                        f"choices[{position}].index", "a whole number", index, "stream event"
                    )
                carries = f"a choice with index {index}"
                break
        return KimiResponseError(
            f"the stream carries {carries}: a streaming request asks for one choice, "
            "and choices are never merged into one answer"
        )

    def _read_first(self, event: dict[str, Any]) -> None:
        self._first = False
        self._model = _optional_str(event, "model", "", "stream event")
        self._system_fingerprint = _optional_str(event, "system_fingerprint", "", "stream event")

    def _tool_call_chunks(self, raw_calls: Any) -> list[ToolCallChunk]:
        if raw_calls.__class__ is not list:
            raise _malformed("choices[0].delta.tool_calls", "an array", raw_calls, "stream event")
        calls = self._calls
        if calls is None:
            calls = self._calls = {}
        call_chunks: list[ToolCallChunk] = []
        for position, raw in enumerate(raw_calls):
            function = raw.get("function")
            if function is None:
                name = arguments = None
            else:
                name = function.get("name")
                arguments = function.get("arguments")
                if isinstance(arguments, dict):
                    arguments = json.dumps(arguments, ensure_ascii=False)
            call_id = raw.get("id")
            index = raw.get("index")
            if index.__class__ is not int:
                if index is not None:
                    raise _malformed(
                        f"choices[0].delta.tool_calls[{position}].index",
                        "a whole number",
                        index,
                        "stream event",
                    )
                index = position
            known = calls.get(index)
            if known is None:
                known = calls[index] = (call_id, [])
            elif call_id and known[0] and call_id != known[0]:
                # Another call at the same index (LangChain also starts a new one
                # for a new id): the one it replaces ends here, maybe cut.
                cut = _fragment_if_cut(index, *known)
                if cut is not None:
                    call_chunks.append(cut)
                known = calls[index] = (call_id, [])
                if self._replaced is None:
                    self._replaced = set()
                self._replaced.add(index)
            elif call_id and not known[0]:
                known = calls[index] = (call_id, known[1])
            elif call_id is None and self._replaced and index in self._replaced:
                # LangChain adds a fragment without an id to the first call at
                # its index (the replaced one): name the call it belongs to.
                call_id = known[0]
            if arguments:
                known[1].append(arguments)
            call_chunks.append(tool_call_chunk(name=name, args=arguments, id=call_id, index=index))
        return call_chunks

    def _diagnose(self, event: Any, cause: Exception) -> KimiResponseError:
        """What is wrong with an event that failed to read, as precisely as can be said."""
        try:
            _check_stream_event(event)
        except KimiResponseError as err:
            return err
        # Nothing found by the checks: say what failed, without quoting values.
        return KimiResponseError(
            f"malformed stream event: {type(cause).__name__} while reading it: "
            f"{_excerpt(redact_secrets(str(cause), self._secrets))}"
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
        fields: dict[str, Any] = {}
        if self.finish_reason == "length" and self._calls:
            cut_off = self._cut_off_calls()
            if cut_off:
                fields["tool_call_chunks"] = cut_off
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                id=self._id,
                usage_metadata=parse_usage(self.usage),
                response_metadata=response_metadata,
                chunk_position="last",
                **fields,
            ),
            generation_info={"finish_reason": self.finish_reason},
        )

    def _cut_off_calls(self) -> list[ToolCallChunk]:
        """Fragments that keep the calls a cut-off answer left incomplete from parsing."""
        fragments: list[ToolCallChunk] = []
        for index, (call_id, parts) in (self._calls or {}).items():
            fragment = _fragment_if_cut(index, call_id, parts)
            if fragment is not None:
                fragments.append(fragment)
        return fragments


def _fragment_if_cut(index: int, call_id: str | None, parts: list[str]) -> ToolCallChunk | None:
    """For a streamed call whose arguments (``parts``) are not a whole JSON object: the
    fragment that keeps LangChain from completing them into a runnable call."""
    args = "".join(parts)
    try:
        if isinstance(json.loads(args), dict):
            return None  # whole
    except (ValueError, RecursionError):
        pass
    suffix = _unparsable_suffix(args)
    return tool_call_chunk(name=None, args=suffix, id=call_id, index=index) if suffix else None


def _check_empty_delta(reasoning: Any, raw_calls: Any) -> None:
    if reasoning is not None and not isinstance(reasoning, str):
        raise _malformed(
            "choices[0].delta.reasoning_content", "a string", reasoning, "stream event"
        )
    if raw_calls is not None and not isinstance(raw_calls, list):
        raise _malformed("choices[0].delta.tool_calls", "an array", raw_calls, "stream event")


def _check_stream_event(event: Any) -> None:
    """Raise the error that says what is wrong with a stream event, if anything."""
    context = "stream event"
    if not isinstance(event, dict):
        raise KimiResponseError(
            f"malformed stream event: expected a JSON object, got {_json_type(event)}"
        )
    choices = event.get("choices")
    if choices is None:
        return
    if not isinstance(choices, list):
        raise _malformed("choices", "an array", choices, context)
    if not choices:
        return
    choice = choices[0]
    if not isinstance(choice, dict):
        raise _malformed("choices[0]", "an object", choice, context)
    delta = choice.get("delta")
    if delta is None:
        return
    if not isinstance(delta, dict):
        raise _malformed("choices[0].delta", "an object", delta, context)
    raw_calls = delta.get("tool_calls")
    if raw_calls is None:
        return
    if not isinstance(raw_calls, list):
        raise _malformed("choices[0].delta.tool_calls", "an array", raw_calls, context)
    for position, raw in enumerate(raw_calls):
        _read_tool_call(
            raw, f"choices[0].delta.tool_calls[{position}]", whole=False, context=context
        )


_NOT_JSON = object()
_TOO_DEEP = object()


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
