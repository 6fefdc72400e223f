"""Structured output on Kimi's JSON modes: a schema in, validated data out.

Ace Data Cloud's ``response_format`` knows only ``{"type": "json_object"}``: the
service promises *a* JSON object, never a particular shape, and thinking models
refuse a forced ``tool_choice``. So the schema travels in a system instruction,
the request asks for JSON mode, and the reply is checked on arrival. Moonshot's
own API also takes ``{"type": "json_schema", "json_schema": {...}}``, which
``json_schema`` uses there (``ChatKimi.api_flavor`` says which service it is):

``json_mode`` (the default)
    Lax checking: Pydantic's lax mode, or the required top-level keys of a dict
    schema. Without a schema, any JSON object.
``json_schema``
    Strict checking: Pydantic's strict mode, or
    :func:`~langchain_kimi._jsonschema.check_json_schema` for dict schemas (the
    ``jsonschema`` package, see that module). On Ace Data Cloud the *same
    request* as ``json_mode``; on Moonshot the schema goes in ``response_format``
    (OpenAI's shape, no instruction) and the reply is still checked. kimi-k2.6
    is unreliable with ``$ref``/``oneOf`` there (the model's ``json_schema_avoid``
    rule): such schemas take the instruction path, with a ``UserWarning`` once.
``function_calling``
    One tool, forced, through ``bind_tools``: each model gets a forced choice the
    way it takes one (sent; thinking off; or emulated with ``"auto"``, an
    instruction and a check, see ``_tools``). An emulated choice the model
    declines raises :class:`~langchain_kimi.errors.KimiToolChoiceError`.

The same building blocks serve a ``response_format`` of type ``json_schema``
passed to the model directly (LangChain's agents do, for ``ProviderStrategy``):
:func:`plan_schema_format` turns it, on Ace Data Cloud, into JSON mode plus the
schema as an instruction, and :class:`SchemaReplyCheck` checks the answer.

Only ``message.content`` is parsed (text blocks when ``output_version="v1"``);
``reasoning_content`` never is.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NoReturn, Protocol

from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, SystemMessage
from langchain_core.output_parsers.transform import BaseCumulativeTransformOutputParser
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda, RunnableMap
from langchain_core.runnables.utils import AddableDict
from langchain_core.utils.function_calling import convert_to_json_schema
from langchain_core.utils.json import parse_partial_json
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict, TypeAdapter
from typing_extensions import is_typeddict

from langchain_kimi._jsonschema import (
    check_depth,
    check_json_schema,
    check_schema,
    json_type_name,
    missing_required,
)
from langchain_kimi._profiles import ModelRules, resolve_model
from langchain_kimi._tools import format_tool, tool_name
from langchain_kimi._user_warnings import warn_at_user_code

if TYPE_CHECKING:
    from langchain_core.prompt_values import PromptValue


class StructuredModel(Protocol):
    """What structured output needs of the chat model (``ChatKimi``, which this
    module does not import: the layers read one way, chat_models -> _structured)."""

    model: str

    def _convert_input(self, model_input: LanguageModelInput) -> PromptValue: ...

    def _effective_api_flavor(self) -> str: ...

    def bind(self, **kwargs: Any) -> Runnable[LanguageModelInput, BaseMessage]: ...

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, BaseMessage]: ...

Method = Literal["json_mode", "json_schema", "function_calling"]
METHODS: tuple[str, ...] = ("json_mode", "json_schema", "function_calling")

JSON_OBJECT_FORMAT: dict[str, str] = {"type": "json_object"}

# Errors quote the reply so the user sees what the model said, but a runaway
# reply can be megabytes: quote its start only (the whole text is on llm_output).
EXCERPT_CHARS = 500
_DETAIL_CHARS = 1000

# Call options that would undo what the structured runnable sets up.
_RESERVED_KWARGS = frozenset({"response_format", "tools", "tool_choice"})

_JSON_ONLY = (
    "Answer with a single JSON object and nothing else: no text before or after it, "
    "no Markdown code fence."
)

# One fence around the whole reply, with or without a "json" tag. Anchored at both
# ends: prose around a fenced block is not JSON, and is refused.
_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n?(.*?)\s*```", re.DOTALL | re.IGNORECASE)

# Model names already warned about a json_schema they handle unreliably.
_warned_schema_fallback: set[str] = set()
# What OpenAI-style json_schema names may not hold (compiled on first use).
_SCHEMA_NAME_UNSAFE = r"[^A-Za-z0-9_-]"


# --- schemas ------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputSchema:
    """A user's schema, read once when the structured runnable is built.

    ``original`` is what the user passed (tools and tracing are built from it);
    ``json_schema`` is what the instruction states and dict replies are checked
    against; ``pydantic_class`` is set when replies become instances of it.
    """

    original: Any
    json_schema: dict[str, Any] | None
    pydantic_class: type[Any] | None = None
    name: str = "the schema"


def describe_schema(schema: Any) -> OutputSchema:
    """Normalise any schema ``with_structured_output`` accepts.

    Pydantic classes (v2, or v1 through ``pydantic.v1``), TypedDicts, JSON-schema
    dicts, OpenAI function or tool dicts, and ``None`` (any JSON object).

    >>> describe_schema({"type": "object", "properties": {"a": {"type": "integer"}}}).name
    'the schema'
    >>> describe_schema(None).json_schema is None
    True
    """
    if schema is None:
        return OutputSchema(None, None)
    if isinstance(schema, type) and is_basemodel_subclass(schema):
        return OutputSchema(schema, convert_to_json_schema(schema), schema, schema.__name__)
    if isinstance(schema, Mapping):
        return _describe_dict(schema)
    if is_typeddict(schema):
        return _describe_typeddict(schema)
    raise ValueError(
        "schema must be a Pydantic class, a TypedDict, a JSON-schema dict, an OpenAI "
        f"function or tool dict, or None; got {schema!r}"
    )


def _describe_typeddict(schema: type[Any]) -> OutputSchema:
    try:
        # LangChain's converter reads its own Annotated[type, default, "description"] form.
        converted = convert_to_json_schema(schema)
    except TypeError:
        # ...but fails on NotRequired/Required; Pydantic reads those. The JSON schema
        # then stands in for the class everywhere, tools and tracing included.
        converted = TypeAdapter(schema).json_schema()
        return OutputSchema(converted, converted, None, schema.__name__)
    return OutputSchema(schema, converted, None, str(converted.get("title") or schema.__name__))


def _describe_dict(schema: Mapping[str, Any]) -> OutputSchema:
    function = schema.get("function")
    if schema.get("type") == "function" and isinstance(function, Mapping):
        return _describe_function(schema, function)
    if "name" in schema and ("parameters" in schema or "input_schema" in schema):
        return _describe_function(schema, schema)
    if not {"type", "properties", "anyOf", "oneOf", "allOf", "$ref"} & schema.keys():
        raise ValueError(
            "a dict schema must be a JSON schema (with 'type' or 'properties') or an OpenAI "
            f"function/tool dict; got keys {sorted(schema)}"
        )
    # A plain JSON schema is stated and checked as given: converting it would
    # require a title and drop keywords (additionalProperties, $defs) it may rely on.
    check_schema(schema)
    title = schema.get("title")
    return OutputSchema(dict(schema), dict(schema), None, str(title) if title else "the schema")


def _describe_function(original: Mapping[str, Any], function: Mapping[str, Any]) -> OutputSchema:
    return OutputSchema(
        dict(original), convert_to_json_schema(dict(original)), None, str(function["name"])
    )


# --- the request side ---------------------------------------------------------------


def build_instruction(json_schema: Mapping[str, Any] | None, *, with_tools: bool = False) -> str:
    """The system instruction that asks for JSON (and states the schema, if any).

    ``with_tools``: tools are offered in the same request (an agent's turn), so
    the JSON is asked for the final answer only, not instead of tool calls.

    >>> build_instruction(None).startswith("Answer with a single JSON object")
    True
    """
    ask = _JSON_ONLY
    if with_tools:
        ask = (
            "Call the tools offered to you as you need them. When you give your final "
            "answer instead of calling a tool, a" + _JSON_ONLY[1:]
        )
    if json_schema is None:
        return ask
    stated = without_empty_description(json_schema)
    # Models given a bare schema sometimes echo it back; saying so explicitly
    # is cheaper than a failed parse.
    return (
        f"{ask} The object must be an instance of this JSON schema, filled with "
        "your answer (do not repeat the schema itself); include every required "
        "property and use the exact property names:\n"
        f"{json.dumps(stated, ensure_ascii=False)}"
    )


def add_instruction(messages: Sequence[BaseMessage], instruction: str) -> list[BaseMessage]:
    """Put ``instruction`` in the leading system message, or in a new one.

    The user's own system message stays: the instruction is appended to it, so
    a persona or rules set there still apply.

    >>> from langchain_core.messages import HumanMessage, SystemMessage
    >>> messages = [SystemMessage("Be terse."), HumanMessage("hi")]
    >>> [m.content for m in add_instruction(messages, "JSON!")]
    ['Be terse.\\n\\nJSON!', 'hi']
    """
    if not messages or not isinstance(messages[0], SystemMessage):
        return [SystemMessage(instruction), *messages]
    first = messages[0]
    content = first.content
    merged: str | list[str | dict[Any, Any]]
    if isinstance(content, str):
        merged = f"{content}\n\n{instruction}" if content.strip() else instruction
    else:
        merged = [*content, {"type": "text", "text": f"\n\n{instruction}"}]
    return [first.model_copy(update={"content": merged}), *messages[1:]]


def _instruction_step(
    model: StructuredModel, instruction: str | None
) -> Runnable[LanguageModelInput, list[BaseMessage]]:
    """Input -> messages, refusing Partial Mode, with ``instruction`` added (if any)."""

    def add_json_instruction(value: LanguageModelInput) -> list[BaseMessage]:
        messages = model._convert_input(value).to_messages()
        last = messages[-1] if messages else None
        if isinstance(last, AIMessage) and last.additional_kwargs.get("partial"):
            # The service refuses the combination; fail before the request is paid for.
            raise ValueError(
                "Partial Mode (a last assistant message with partial=True) cannot be "
                "combined with JSON mode, which structured output uses"
            )
        return messages if instruction is None else add_instruction(messages, instruction)

    async def aadd_json_instruction(value: LanguageModelInput) -> list[BaseMessage]:
        # A native coroutine: without it RunnableLambda would hop to a thread per call.
        return add_json_instruction(value)

    return RunnableLambda(add_json_instruction, afunc=aadd_json_instruction)


# --- the reply side -----------------------------------------------------------------


def extract_json_object(text: str) -> dict[str, Any]:
    """The JSON object a reply holds; ``ValueError`` saying why when it holds none.

    Tolerates what models put around JSON (surrounding whitespace, one Markdown
    code fence around the whole reply) and raw control characters inside strings.
    Refuses prose around the JSON, trailing data, ``NaN``/``Infinity`` and any
    top-level value that is not an object.

    >>> extract_json_object(' ```json\\n{"a": 1}\\n``` ')
    {'a': 1}
    >>> extract_json_object('Sure: {"a": 1}')
    Traceback (most recent call last):
    ...
    ValueError: the reply is not valid JSON (Expecting value: line 1 column 1 (char 0))
    """
    body = text.strip()
    if not body:
        raise ValueError("the reply is empty (expected a JSON object)")
    fenced = _FENCE.fullmatch(body)
    if fenced is not None:
        body = fenced.group(1)
    try:
        value = json.loads(body, strict=False, parse_constant=_refuse_constant)
    except ValueError as err:
        raise ValueError(f"the reply is not valid JSON ({err})") from None
    except RecursionError:
        raise ValueError(
            "the reply nests deeper than Python's JSON decoder goes (about 1,000 levels)"
        ) from None
    if not isinstance(value, dict):
        raise ValueError(f"the reply is JSON but not an object (got {json_type_name(value)})")
    check_depth(value)
    return value


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _partial_json_body(text: str) -> str | None:
    """The JSON part of a reply still arriving, or None while there is none yet."""
    body = text.lstrip()
    if body.startswith("```"):
        newline = body.find("\n")
        if newline < 0:
            return None  # the fence's opening line is still arriving
        body = body[newline + 1 :]
        closing = body.find("```")
        if closing >= 0:
            body = body[:closing]
        body = body.rstrip().rstrip("`")
    return body if body.startswith("{") else None


def _message_text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    # output_version="v1" content is a list of blocks: only text blocks are the
    # answer (reasoning blocks are the model's thoughts, never parsed).
    return "".join(
        block if isinstance(block, str) else str(block.get("text", ""))
        for block in content
        if isinstance(block, str) or block.get("type") == "text"
    )


class _Draft:
    """What a reply has said so far: text, tool-call arguments, finish reason.

    Streams are accumulated here piece by piece and joined on demand, rather
    than by adding message chunks, which re-concatenates the whole text each time.
    """

    __slots__ = ("_calls", "_text", "_text_parts", "finish_reason")

    def __init__(self) -> None:
        self._text_parts: list[str] = []
        self._text: str | None = ""
        # index -> [name, argument fragments]
        self._calls: dict[Any, tuple[list[str], list[str]]] = {}
        self.finish_reason: str | None = None

    @classmethod
    def from_generation(cls, generation: Generation) -> _Draft:
        draft = cls()
        if isinstance(generation, ChatGeneration):
            draft.add_message(generation.message, whole=True)
        else:
            draft.add_text(generation.text)
        info = generation.generation_info or {}
        if draft.finish_reason is None and isinstance(info.get("finish_reason"), str):
            draft.finish_reason = info["finish_reason"]
        return draft

    def add_text(self, text: str) -> None:
        if text:
            self._text_parts.append(text)
            self._text = None

    def add_message(self, message: BaseMessage, *, whole: bool = False) -> None:
        self.add_text(_message_text(message))
        reason = message.response_metadata.get("finish_reason")
        if isinstance(reason, str) and reason:
            self.finish_reason = reason
        if isinstance(message, AIMessageChunk) and not whole:
            for position, chunk in enumerate(message.tool_call_chunks):
                index = chunk.get("index")
                names, parts = self._calls.setdefault(
                    position if index is None else index, ([], [])
                )
                if chunk.get("name"):
                    names.append(str(chunk["name"]))
                if chunk.get("args"):
                    parts.append(str(chunk["args"]))
        elif isinstance(message, AIMessage):
            for position, call in enumerate(message.tool_calls):
                arguments = json.dumps(call["args"], ensure_ascii=False)
                self._calls[position] = ([call["name"]], [arguments])
            offset = len(message.tool_calls)
            for position, bad in enumerate(message.invalid_tool_calls, start=offset):
                self._calls[position] = ([bad.get("name") or ""], [bad.get("args") or ""])

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = "".join(self._text_parts)
        return self._text

    def tool_arguments(self, name: str) -> str | None:
        """The arguments of the first call to ``name``; None when it was not called."""
        for names, parts in self._calls.values():
            if "".join(names) == name:
                return "".join(parts)
        return None

    def called_tools(self) -> list[str]:
        return ["".join(names) for names, _ in self._calls.values()]


class KimiJsonOutputParser(BaseCumulativeTransformOutputParser[Any]):
    """Parses and validates the JSON object in a Kimi reply, whole or streamed.

    Reads the reply's text (or, with ``tool_name``, that tool call's arguments),
    never its reasoning. Returns an instance of ``pydantic_class`` when set,
    else a dict checked against ``json_schema`` (strictly when ``strict``).
    While streaming, dict outputs are yielded as growing partial dicts; a
    Pydantic output is yielded once, validated, at the end. A reply that holds
    no valid object raises ``OutputParserException`` quoting the start of the
    reply, and saying so when ``max_tokens`` cut it short.

    Usage::

        parser = KimiJsonOutputParser(json_schema={"type": "object", "required": ["a"]})
        parser.invoke(AIMessage('```json\\n{"a": 1}\\n```'))  # {"a": 1}
    """

    pydantic_class: type[Any] | None = None
    """Replies become instances of this Pydantic (v2 or v1) class."""
    json_schema: dict[str, Any] | None = None
    """Stated in the format instructions; dict replies are checked against it."""
    strict: bool = False
    """Strict checking: Pydantic strict mode, or :func:`check_json_schema`."""
    tool_name: str | None = None
    """Read this tool call's arguments instead of the content (function calling)."""
    schema_name: str = "the schema"
    """How error messages name the schema."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _type(self) -> str:
        return "kimi_json"

    def get_format_instructions(self) -> str:
        """The system instruction the structured runnable sends."""
        return build_instruction(self.json_schema)

    def parse(self, text: str) -> Any:
        draft = _Draft()
        draft.add_text(text)
        return self._parse_draft(draft)

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        draft = _Draft.from_generation(result[0])
        return self._partial(draft) if partial else self._parse_draft(draft)

    def _transform(self, input: Iterator[str | BaseMessage]) -> Iterator[Any]:
        draft = _Draft()
        last: Any = None
        for chunk in input:
            self._feed(draft, chunk)
            partial = self._partial(draft)
            if partial is not None and partial != last:
                last = partial
                yield partial
        final = self._parse_draft(draft)
        if final != last:
            yield final

    async def _atransform(self, input: AsyncIterator[str | BaseMessage]) -> AsyncIterator[Any]:
        draft = _Draft()
        last: Any = None
        async for chunk in input:
            self._feed(draft, chunk)
            partial = self._partial(draft)
            if partial is not None and partial != last:
                last = partial
                yield partial
        final = self._parse_draft(draft)
        if final != last:
            yield final

    def transform_with_raw(self, items: Iterator[Mapping[str, Any]]) -> Iterator[AddableDict]:
        """``include_raw=True``: ``{"raw": message}`` in, ``raw`` chunks then the outcome out.

        Yields each ``{"raw": chunk}`` as it arrives, then one
        ``{"parsed": ..., "parsing_error": ...}``; a bad reply is reported, never raised.
        """
        draft = _Draft()
        for item in items:
            self._feed(draft, item["raw"])
            yield AddableDict(raw=item["raw"])
        yield self._outcome(draft)

    async def atransform_with_raw(
        self, items: AsyncIterator[Mapping[str, Any]]
    ) -> AsyncIterator[AddableDict]:
        """The async twin of :meth:`transform_with_raw`."""
        draft = _Draft()
        async for item in items:
            self._feed(draft, item["raw"])
            yield AddableDict(raw=item["raw"])
        yield self._outcome(draft)

    def _outcome(self, draft: _Draft) -> AddableDict:
        try:
            parsed = self._parse_draft(draft)
        except OutputParserException as err:
            return AddableDict(parsed=None, parsing_error=err)
        return AddableDict(parsed=parsed, parsing_error=None)

    @staticmethod
    def _feed(draft: _Draft, chunk: str | BaseMessage) -> None:
        if isinstance(chunk, str):
            draft.add_text(chunk)
        else:
            draft.add_message(chunk)

    def _source(self, draft: _Draft) -> str | None:
        if self.tool_name is None:
            return draft.text
        return draft.tool_arguments(self.tool_name)

    def _partial(self, draft: _Draft) -> dict[str, Any] | None:
        """The object so far, for streaming dict outputs; None when there is none yet."""
        if self.pydantic_class is not None:
            return None  # a half-built model instance would fail validation
        text = self._source(draft)
        body = _partial_json_body(text) if text else None
        if body is None:
            return None
        try:
            value = parse_partial_json(body)
        except (ValueError, RecursionError):
            return None  # the whole reply, once it is in, says what is wrong
        return value if isinstance(value, dict) else None

    def _parse_draft(self, draft: _Draft) -> Any:
        text = self._source(draft)
        if text is None:
            called = draft.called_tools()
            problem = f"the model did not call the {self.tool_name!r} tool" + (
                f" (it called {called})" if called else " (it answered in text)"
            )
            self._fail(draft, problem, draft.text)
        try:
            value = extract_json_object(text)
        except ValueError as err:
            self._fail(draft, str(err), text)
        try:
            return self._validate(value)
        except (ValueError, TypeError) as err:
            detail = str(err)
            if len(detail) > _DETAIL_CHARS:
                detail = detail[:_DETAIL_CHARS] + "..."
            self._fail(draft, f"the JSON does not match {self.schema_name}: {detail}", text)

    def _validate(self, value: dict[str, Any]) -> Any:
        cls = self.pydantic_class
        if cls is not None:
            if not hasattr(cls, "model_validate"):
                return cls.parse_obj(value)  # pydantic.v1 has no strict mode
            if self.strict:
                # Strict mode on JSON input still accepts strings for enums and dates;
                # on Python input it would demand Enum instances.
                return cls.model_validate_json(json.dumps(value), strict=True)
            return cls.model_validate(value)
        if self.json_schema is not None:
            problems = (
                check_json_schema(value, self.json_schema)
                if self.strict
                else missing_required(value, self.json_schema)
            )
            if problems:
                raise ValueError("; ".join(problems))
        return value

    @staticmethod
    def _fail(draft: _Draft, problem: str, raw: str) -> NoReturn:
        if draft.finish_reason == "length":
            problem = (
                "the output was truncated: the reply reached max_tokens (finish_reason "
                "'length') before the JSON was complete. Raise max_tokens (thinking models "
                f"spend part of it on reasoning: give them 16K or more). Parser said: {problem}"
            )
        excerpt = raw[:EXCERPT_CHARS] + ("..." if len(raw) > EXCERPT_CHARS else "")
        raise OutputParserException(
            f"Kimi's reply is not valid structured output: {problem}\n"
            f"Reply ({len(raw)} characters): {excerpt!r}",
            llm_output=raw,
        )


# --- the runnable -------------------------------------------------------------------


def structured_runnable(
    model: StructuredModel,
    schema: Any,
    *,
    method: str = "json_mode",
    include_raw: bool = False,
    strict: bool | None = None,
    **kwargs: Any,
) -> Runnable[LanguageModelInput, Any]:
    """``ChatKimi.with_structured_output``: a runnable from input to validated output.

    ``schema``: a Pydantic class (instances come back), a TypedDict, a JSON-schema
    dict or an OpenAI function/tool dict (dicts come back), or None with
    ``json_mode`` (any JSON object). ``strict``: ``True`` checks strictly under
    any method; ``False`` relaxes ``json_schema``; None keeps each method's
    default. ``include_raw=True`` returns ``{"raw", "parsed", "parsing_error"}``
    and never raises on a bad reply. Other keyword arguments are bound to the
    model as call options (``max_tokens=...``, ``thinking=False``).

    .. code-block:: python

        class Movie(BaseModel):
            title: str
            year: int

        runnable = ChatKimi(model="kimi-k2.5").with_structured_output(Movie)
        runnable.invoke("The first Matrix film?")  # Movie(title='The Matrix', year=1999)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    reserved = sorted(_RESERVED_KWARGS & kwargs.keys())
    if reserved:
        raise ValueError(
            f"with_structured_output sets {', '.join(reserved)} itself; "
            "bind other tools or formats on a separate model"
        )
    target = describe_schema(schema)
    if target.json_schema is None and method != "json_mode":
        raise ValueError(
            f"method={method!r} needs a schema; use method='json_mode' to get any JSON object"
        )
    if isinstance(kwargs.get("thinking"), Mapping):
        # The wire form {"type": "disabled"}: bind_tools and the profiles read a bool.
        kwargs["thinking"] = kwargs["thinking"].get("type") != "disabled"
    model_name = str(kwargs.get("model", model.model))
    rules = resolve_model(model_name)
    if method == "function_calling":
        # bind_tools gives each model the forced choice it can take (see _tools).
        return _tool_runnable(model, target, strict=strict, include_raw=include_raw, **kwargs)
    checks_strictly = strict is True or (method == "json_schema" and strict is not False)
    if target.original is not None:
        kwargs["ls_structured_output_format"] = {
            "kwargs": {"method": method, "strict": strict},
            "schema": target.original,
        }
    response_format: dict[str, Any] = dict(JSON_OBJECT_FORMAT)
    instruction: str | None = build_instruction(target.json_schema)
    if (
        method == "json_schema"
        and target.json_schema is not None
        and model._effective_api_flavor() == "moonshot"
        and _schema_is_reliable(model_name, rules, target.json_schema)
    ):
        response_format = json_schema_format(target, strict=strict)
        instruction = None
    llm = _instruction_step(model, instruction) | model.bind(
        response_format=response_format, **kwargs
    )
    parser = KimiJsonOutputParser(
        pydantic_class=target.pydantic_class,
        json_schema=target.json_schema,
        strict=checks_strictly,
        schema_name=target.name,
    )
    return _assemble(llm, parser, include_raw=include_raw)


def without_empty_description(json_schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema without an empty top-level ``description`` (a class with no
    docstring gets one from Pydantic): noise to the model, wherever it is stated."""
    return {k: v for k, v in json_schema.items() if v != "" or k != "description"}


def json_schema_format(target: OutputSchema, *, strict: bool | None) -> dict[str, Any]:
    """Moonshot's (OpenAI-shaped) ``response_format`` for a schema.

    ``strict`` is sent only when the user set it: what the service does by
    default is its business.

    >>> json_schema_format(describe_schema({"title": "Movie", "type": "object"}), strict=True)
    ... # doctest: +NORMALIZE_WHITESPACE
    {'type': 'json_schema', 'json_schema': {'name': 'Movie',
     'schema': {'title': 'Movie', 'type': 'object'}, 'strict': True}}
    """
    name = re.sub(_SCHEMA_NAME_UNSAFE, "_", target.name)[:64] if target.name != "the schema" else ""
    assert target.json_schema is not None
    schema = without_empty_description(target.json_schema)
    spec: dict[str, Any] = {"name": name or "output", "schema": schema}
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def _schema_is_reliable(model_name: str, rules: ModelRules | None, schema: Any) -> bool:
    """False (after one warning per model) when the schema uses keywords the model
    handles unreliably in ``json_schema`` mode; those take the instruction path."""
    avoid = rules.json_schema_avoid if rules is not None else ()
    found = sorted(keyword for keyword in avoid if _uses_keyword(schema, keyword))
    if not found:
        return True
    if model_name not in _warned_schema_fallback:
        _warned_schema_fallback.add(model_name)
        warn_at_user_code(
            f"{model_name} is unreliable with {', '.join(found)} in response_format "
            "json_schema: this schema is sent as an instruction with JSON mode instead "
            "(the reply is validated against it either way)"
        )
    return False


def _uses_keyword(schema: Any, keyword: str) -> bool:
    if isinstance(schema, Mapping):
        return keyword in schema or any(_uses_keyword(value, keyword) for value in schema.values())
    if isinstance(schema, list):
        return any(_uses_keyword(value, keyword) for value in schema)
    return False


def _tool_runnable(
    model: StructuredModel,
    target: OutputSchema,
    *,
    strict: bool | None,
    include_raw: bool,
    **kwargs: Any,
) -> Runnable[LanguageModelInput, Any]:
    try:
        # Kimi documents no "strict" flag on tools: strictness is checked here instead.
        tool = format_tool(target.original)
    except ValueError as err:
        raise ValueError(
            f"method='function_calling' needs a named schema (a JSON schema needs a 'title'): {err}"
        ) from None
    name = tool_name(tool)
    llm = model.bind_tools(
        [tool],
        tool_choice=name,
        ls_structured_output_format={
            "kwargs": {"method": "function_calling", "strict": strict},
            "schema": target.original,
        },
        **kwargs,
    )
    parser = KimiJsonOutputParser(
        pydantic_class=target.pydantic_class,
        json_schema=target.json_schema,
        strict=strict is True,
        tool_name=name,
        schema_name=target.name,
    )
    return _assemble(llm, parser, include_raw=include_raw)


def _assemble(
    llm: Runnable[LanguageModelInput, Any],
    parser: KimiJsonOutputParser,
    *,
    include_raw: bool,
) -> Runnable[LanguageModelInput, Any]:
    if not include_raw:
        return llm | parser
    # Not LangChain's usual `assign(parsed=...).with_fallbacks(...)`: a fallback
    # only covers a stream's first chunk, so a stream whose JSON breaks later
    # would still raise. This step catches the parse error wherever it happens.
    with_raw = RunnableGenerator(
        parser.transform_with_raw, parser.atransform_with_raw, name="KimiStructuredOutput"
    )
    return RunnableMap(raw=llm) | with_raw


# --- a json_schema response_format passed to the model ------------------------------------


class SchemaFormatPlan:
    """What a request with a ``json_schema`` ``response_format`` sends on a service
    that does not take one, and the check its answer must pass.

    ``response_format``: what to send instead (JSON mode); ``instruction``: the
    system instruction stating the schema; ``check``: run on the answer.
    """

    __slots__ = ("check", "instruction", "response_format")

    def __init__(self, instruction: str, check: SchemaReplyCheck) -> None:
        self.response_format = dict(JSON_OBJECT_FORMAT)
        self.instruction = instruction
        self.check = check


def plan_schema_format(
    response_format: Any,
    *,
    moonshot: bool,
    model_name: str,
    rules: ModelRules | None,
    with_tools: bool,
) -> SchemaFormatPlan | None:
    """How to send an OpenAI-style ``json_schema`` ``response_format``; None: as it is.

    Moonshot's API takes it as it is (except a schema the model handles
    unreliably, see ``json_schema_avoid``, which goes the other way, with one
    warning). Ace Data Cloud takes only ``json_object``: the schema then becomes
    the instruction :func:`with_structured_output` sends (:func:`build_instruction`),
    JSON mode is asked for, and the answer is checked against the schema
    (strictly when the format says ``"strict": true``). A malformed format
    raises ``ValueError`` naming the bad part, before anything is sent.
    """
    if not isinstance(response_format, Mapping) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not isinstance(schema, Mapping):
        raise ValueError(
            "response_format of type 'json_schema' needs json_schema.schema, a JSON schema "
            f"object: {{'type': 'json_schema', 'json_schema': {{'name': ..., 'schema': {{...}}}}}}"
            f", got json_schema={spec!r}"
        )
    assert isinstance(spec, Mapping)
    if moonshot and _schema_is_reliable(model_name, rules, schema):
        return None
    name = spec.get("name")
    parser = KimiJsonOutputParser(
        json_schema=dict(schema),
        strict=spec.get("strict") is True,
        schema_name=str(name) if isinstance(name, str) and name else "the schema",
    )
    instruction = build_instruction(schema, with_tools=with_tools)
    return SchemaFormatPlan(instruction, SchemaReplyCheck(parser))


class SchemaReplyCheck:
    """Checks an answer against the schema of an adapted ``json_schema`` response_format.

    An answer that calls tools is an agent's tool turn: not checked. Otherwise
    its text must hold a JSON object that matches the schema, or
    ``OutputParserException`` is raised (quoting the start of the answer, and
    saying so when ``max_tokens`` cut it short).
    """

    __slots__ = ("parser",)

    def __init__(self, parser: KimiJsonOutputParser) -> None:
        self.parser = parser

    def check(self, draft: _Draft) -> dict[str, Any] | None:
        """The checked object, or None for a tool turn."""
        if draft.called_tools():
            return None
        value: dict[str, Any] = self.parser._parse_draft(draft)
        return value


def answer_draft(message: BaseMessage, finish_reason: Any = None) -> _Draft:
    """A whole answer, read the way the checks read it."""
    draft = _Draft()
    draft.add_message(message, whole=True)
    if draft.finish_reason is None and isinstance(finish_reason, str):
        draft.finish_reason = finish_reason
    return draft


def streamed_draft() -> _Draft:
    """An empty draft to feed a streamed answer's chunks to (``draft.add_message``)."""
    return _Draft()
