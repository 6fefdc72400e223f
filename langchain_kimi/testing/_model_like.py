"""The simulator's model-like mode: answers that follow the request, as a model's do.

A scripted :class:`~langchain_kimi.testing.Reply` says exactly what comes back,
which suits a test about one exchange. An agent, a LangGraph graph or a
third-party test suite makes requests a test cannot easily foresee; for those,
:class:`ModelLikeResponder` answers each request from what it asks, like a
literal-minded model, and always the same way for the same request:

- **Tools.** It calls an offered tool when ``tool_choice`` forces one
  (``"required"``, or a named tool), when an instruction in a system message
  says a tool must be called ("You must call the tool ``get_weather``", "you
  have to use one of the tools": *must*, *have to*, *need to*, *required to* or
  *always*, without a condition; the sentence's tool name, if it names one, is
  the one called), when the last user message
  asks for one ("Use the tool."), names one (``magic_function(3)``), or
  mentions what a tool's name is about ("the weather" for ``get_weather``).
  Several tools named in the user message are called together (unless
  ``parallel_tool_calls`` is false). Once tool results have come back it
  answers in words, unless a choice is forced: then it calls a tool it has not
  called since the user spoke (the structured-output tool of an agent, say).
- **Arguments** fit the tool's JSON schema
  (:mod:`~langchain_kimi.testing._schema_instance`) and take the prompt's values
  where they appear (:mod:`~langchain_kimi.testing._prompt_values`): the
  arguments of ``name(...)``, ``key=value`` pairs, then quoted text and
  capitalised names for strings and numbers for numbers, in order.
- **JSON.** With ``response_format`` ``json_schema`` it answers an instance of
  that schema. With ``json_object`` it answers an instance of the JSON schema
  a system message states (the last one found, as ``with_structured_output``
  writes it on Ace Data Cloud, whatever the wording around it), else an object
  with the keys the user message quotes, else ``{"answer": ...}``. Only
  ``key: value`` pairs of the prompt are used there, not loose quoted text.
- **Words** otherwise: it says what it received (``You said: "..."``), or what
  the tools returned.
- **Reasoning** (``reasoning_content``) when the request thinks, saying what
  it decided and why; never otherwise.
- **Limits.** ``stop`` cuts the content before the first stop sequence;
  ``max_tokens`` (or ``max_completion_tokens``) caps reasoning, content and tool
  arguments together, in that order, and a cut answer ends with
  ``finish_reason: "length"`` (tool arguments cut mid-way are broken JSON, as a
  real cut leaves them); ``n`` gives that many choices (plain-text answers are
  told apart by a ``(choice N)`` suffix).
- **Usage** estimated from the whole request (messages, tool schemas, response
  format; about four characters a token for ASCII text and 1.5 for other
  scripts, a fixed 1,000 tokens per image or video part, four per message),
  with ``completion_tokens_details.reasoning_tokens`` when it reasoned.

It never bends the service's rules: the server checks them before asking the
responder (a thinking request with a forced ``tool_choice`` is refused as
usual). It shares no code with the client.

Usage::

    from langchain_kimi.testing import FakeKimiServer, ModelLikeResponder

    with FakeKimiServer(model_like=True) as server:   # the same as
        ...                                           # server.set_responder(ModelLikeResponder())
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_kimi.testing._prompt_values import PromptValues, convert, read_prompt
from langchain_kimi.testing._render import (
    DONE_PAYLOAD,
    _text_of,
    completion_body,
    last_user_text,
    resolve,
    sse_event,
    stream_events,
)
from langchain_kimi.testing._replies import Reply, ToolCall
from langchain_kimi.testing._rules import invalid_request, is_thinking
from langchain_kimi.testing._schema_instance import (
    NOTHING,
    Path,
    example_instance,
    fits_leaf,
)

_EXCERPT_CHARS = 200
_MEDIA_TOKENS = 1000
_MESSAGE_TOKENS = 4
_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}

_ASK_VERB = r"(?:call|calling|use|using|invoke|invoking)"
_TOOL_NOUN = r"(?:tools?|functions?)"
_ASKS = re.compile(rf"\b{_ASK_VERB}\b([^.!?\n]{{0,60}}?)\b{_TOOL_NOUN}\b", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|never|no|without|don't|dont|n't)\b", re.IGNORECASE)
_MODAL = re.compile(
    r"\b(?:must|have to|has to|need to|needs to|required to|always)\b", re.IGNORECASE
)
_PERMISSIVE = re.compile(
    r"\b(?:can|may|could|might|if|when|whenever|feel free|as needed|optional(?:ly)?)\b",
    re.IGNORECASE,
)
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
_IDENTIFIER_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_WORDS = re.compile(r"\w+")
_KEY_LIKE = re.compile(r"[A-Za-z_][\w-]{0,63}")
# Words that say nothing about what a tool is for.
_STOP_WORDS_TEXT = """
    get set fetch tool tools my the and for with from run make call function functions func
    data info value values create new this that what which input output result results
    return returns about into use using given takes two one any all can will should some
"""
_STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


class ModelLikeResponder:
    """A :class:`~langchain_kimi.testing.FakeKimiServer` responder that answers like a model.

    What it does with each request is described in
    :mod:`langchain_kimi.testing._model_like`: it calls offered tools with
    arguments that fit their schemas, fills JSON schemas, answers in words
    otherwise, reasons when the request thinks, honours ``stop``,
    ``max_tokens`` and ``n`` and reports plausible usage. Deterministic: the
    same request gets the same answer (ids and timestamps aside). Stateless,
    so one instance may serve any number of servers and threads.

    Usage::

        from langchain_core.tools import tool
        from langchain_kimi import ChatKimi
        from langchain_kimi.testing import FakeKimiServer, ModelLikeResponder

        @tool
        def get_weather(city: str) -> str:
            \"\"\"The weather in a city.\"\"\"
            return "sunny"

        with FakeKimiServer() as server:
            server.set_responder(ModelLikeResponder())   # or FakeKimiServer(model_like=True)
            model = ChatKimi(base_url=server.base_url, api_key=server.api_key)
            message = model.bind_tools([get_weather]).invoke("What is the weather in Oslo?")
            assert message.tool_calls[0]["args"] == {"city": "Oslo"}
    """

    def __call__(self, body: dict[str, Any]) -> Reply:
        return answer(body)

    def __repr__(self) -> str:
        return "ModelLikeResponder()"


def answer(body: Mapping[str, Any]) -> Reply:
    """The model-like reply to one request body (already accepted by the rules)."""
    choices = body.get("n", 1)
    if choices is None:
        choices = 1
    if not isinstance(choices, int) or isinstance(choices, bool) or choices < 1:
        return invalid_request(f"n must be a positive integer, got {choices!r}")
    turn = _Turn.read(body)
    plan = _plan(turn)
    replies = [_reply(turn, plan, number) for number in range(choices)]
    if choices == 1:
        return replies[0]
    return _several(replies, body, turn.thinking)


# --- reading the request ------------------------------------------------------------


@dataclass(frozen=True)
class _Tool:
    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class _Turn:
    """What the answer depends on, read once from the request body."""

    body: Mapping[str, Any]
    messages: Sequence[Mapping[str, Any]]
    prompt: str
    values: PromptValues
    tools: Sequence[_Tool]
    choice: str  # "auto", "none", "required" or "named"
    chosen: str | None  # the named tool
    thinking: bool

    @classmethod
    def read(cls, body: Mapping[str, Any]) -> _Turn:
        raw = body.get("messages")
        messages = [m for m in raw if isinstance(m, Mapping)] if isinstance(raw, list) else []
        prompt = last_user_text(body)
        choice, chosen = _read_tool_choice(body.get("tool_choice"))
        return cls(
            body=body,
            messages=messages,
            prompt=prompt,
            values=read_prompt(prompt),
            tools=_offered_tools(body.get("tools")),
            choice=choice,
            chosen=chosen,
            thinking=is_thinking(body),
        )

    def system_texts(self) -> list[str]:
        return [_text(m.get("content")) for m in self.messages if m.get("role") == "system"]

    def tool_results(self) -> list[tuple[str, str]]:
        """(tool name, result) of the tool messages that end the conversation."""
        names = {
            call.get("id"): (call.get("function") or {}).get("name", "a tool")
            for message in self.messages
            if message.get("role") == "assistant"
            for call in _calls_of(message)
        }
        results: list[tuple[str, str]] = []
        for message in reversed(self.messages):
            if message.get("role") != "tool":
                break
            name = str(names.get(message.get("tool_call_id"), "a tool"))
            results.append((name, _text(message.get("content"))))
        return results[::-1]

    def called_since_user(self) -> set[str]:
        called: set[str] = set()
        for message in reversed(self.messages):
            if message.get("role") == "user":
                break
            if message.get("role") == "assistant":
                called.update(
                    str((c.get("function") or {}).get("name")) for c in _calls_of(message)
                )
        return called

    def earlier_calls(self) -> int:
        return sum(len(_calls_of(m)) for m in self.messages if m.get("role") == "assistant")


def _read_tool_choice(value: Any) -> tuple[str, str | None]:
    if value in ("none", "required"):
        return str(value), None
    if isinstance(value, Mapping):
        function = value.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if isinstance(name, str):
            return "named", name
    return "auto", None


def _offered_tools(tools: Any) -> list[_Tool]:
    """The offered functions; builtin functions ($web_search) are the service's, never called."""
    offered = []
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if tool.get("type") != "function" or not isinstance(function, Mapping):
            continue
        name = function.get("name")
        if not isinstance(name, str) or not name:
            continue
        parameters = function.get("parameters")
        if not isinstance(parameters, Mapping) or (
            "properties" not in parameters and parameters.get("type") != "object"
        ):
            parameters = _EMPTY_PARAMETERS
        description = function.get("description")
        offered.append(_Tool(name, description if isinstance(description, str) else "", parameters))
    return offered


def _calls_of(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    calls = message.get("tool_calls")
    return [c for c in calls if isinstance(c, Mapping)] if isinstance(calls, list) else []


def _text(content: Any) -> str:
    return _text_of(content, "\n")


# --- deciding -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """The answer before limits: content, or tool calls, and the reasoning behind it."""

    content: str | None
    calls: tuple[tuple[str, dict[str, Any]], ...]
    reasoning: str
    plain_text: bool  # content in words (not JSON), which several choices may vary


def _plan(turn: _Turn) -> _Plan:
    excerpt = _excerpt(turn.prompt)
    tools, why = _choose_tools(turn)
    if tools:
        calls = tuple((tool.name, _arguments(tool, turn.values)) for tool in tools)
        steps = " ".join(
            f"I will call {name} with {json.dumps(args, ensure_ascii=False)}."
            for name, args in calls
        )
        return _Plan(None, calls, f"The user wrote: {excerpt}. {why} {steps}", plain_text=False)
    wanted = _json_wanted(turn)
    if wanted is not None:
        value, described = wanted
        content = json.dumps(value, ensure_ascii=False)
        reasoning = (
            f"The user wrote: {excerpt}. The answer must be a JSON object {described}; "
            "I will fill in every property."
        )
        return _Plan(content, (), reasoning, plain_text=False)
    results = turn.tool_results()
    if results:
        found = "; ".join(f"{name} returned {_excerpt(result)}" for name, result in results)
        names = ", ".join(dict.fromkeys(name for name, _ in results))
        return _Plan(
            f"Here is what the tools returned: {found}.",
            (),
            f"The results of {names} are in; I will report them.",
            plain_text=True,
        )
    if not turn.prompt.strip():
        return _Plan("Hello! How can I help?", (), "There is no question yet.", plain_text=True)
    return _Plan(
        f"You said: {excerpt}. This is the Kimi simulator's model-like answer.",
        (),
        f"The user wrote: {excerpt}. No tool is needed; I will answer directly.",
        plain_text=True,
    )


def _choose_tools(turn: _Turn) -> tuple[list[_Tool], str]:
    """The tools to call (none: answer), and why, in the words of a reasoning model."""
    if turn.choice == "none" or not turn.tools:
        return [], ""
    by_name = {tool.name: tool for tool in turn.tools}
    if turn.choice == "named":
        tool = by_name.get(turn.chosen or "")
        return ([tool], f"tool_choice names {tool.name}.") if tool else ([], "")
    instructed, instructed_name = _instruction(turn.system_texts(), by_name)
    forced = turn.choice == "required" or instructed
    why = "I was told to call a tool." if forced else ""
    if instructed_name is not None:
        return [by_name[instructed_name]], f"I was told to call {instructed_name}."
    if turn.tool_results():
        if not forced:
            return [], ""
        # Forced again after the results: a tool not used yet for this question
        # (an agent's structured-output tool), else the best one again.
        called = turn.called_since_user()
        fresh = [tool for tool in turn.tools if tool.name not in called] or list(turn.tools)
        return [_best(fresh, turn.prompt)], why
    limit = 1 if turn.body.get("parallel_tool_calls") is False else len(turn.tools)
    named = _named_in(turn.prompt, turn.tools)
    if named:
        listed = ", ".join(tool.name for tool in named[:limit])
        return named[:limit], f"The user names {listed}."
    if forced:
        return [_best(turn.tools, turn.prompt)], why
    if _asks_for_tool(turn.prompt):
        return [_best(turn.tools, turn.prompt)], "The user asks me to use a tool."
    relevant = [tool for tool in turn.tools if _name_words(tool.name) & _words(turn.prompt)]
    if relevant:
        tool = _best(relevant, turn.prompt)
        return [tool], f"The tool {tool.name} is about what the user asks."
    return [], ""


def _instruction(texts: Sequence[str], tools: Mapping[str, _Tool]) -> tuple[bool, str | None]:
    """Whether a system message says a tool must be called, and which tool, if it names one."""
    for text in reversed(texts):
        for sentence in _SENTENCES.split(text):
            for match in _ASKS.finditer(sentence):
                before = sentence[: match.start()]
                if _NEGATION.search(before[-30:]) or _NEGATION.search(match.group(1)):
                    continue
                # "You must call a tool" binds. "Use the tools to answer" (a persona's
                # advice) and "You must use tools when needed" do not: forcing
                # those would send an agent round its tools for ever.
                if not _MODAL.search(before) or _PERMISSIVE.search(sentence):
                    continue
                named = [name for name in tools if _mentions(sentence, name)]
                return True, named[0] if len(named) == 1 else None
    return False, None


def _asks_for_tool(prompt: str) -> bool:
    for match in _ASKS.finditer(prompt):
        before = prompt[max(0, match.start() - 30) : match.start()]
        if not (_NEGATION.search(before) or _NEGATION.search(match.group(1))):
            return True
    return False


def _named_in(prompt: str, tools: Sequence[_Tool]) -> list[_Tool]:
    """Tools whose exact names the prompt writes, in the order it writes them."""
    positions = []
    for tool in tools:
        found = re.search(rf"(?<!\w){re.escape(tool.name)}(?!\w)", prompt)
        if found is not None:
            positions.append((found.start(), tool))
    return [tool for _, tool in sorted(positions, key=lambda pair: pair[0])]


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) is not None


def _best(tools: Sequence[_Tool], prompt: str) -> _Tool:
    """The tool the prompt is most about: its name's words count most; ties go to the first."""
    words = _words(prompt)

    def score(tool: _Tool) -> int:
        described = {w for w in _words(tool.description) if len(w) > 3} - _STOP_WORDS
        return 3 * len(_name_words(tool.name) & words) + min(3, len(described & words))

    return max(tools, key=score)  # max keeps the first of equal scores


def _name_words(name: str) -> set[str]:
    return {word.lower() for word in _IDENTIFIER_WORDS.findall(name) if len(word) > 2} - _STOP_WORDS


def _words(text: str) -> set[str]:
    words = {word.lower() for word in _WORDS.findall(text)}
    return words | {word[:-1] for word in words if word.endswith("s") and len(word) > 3}


def _arguments(tool: _Tool, values: PromptValues) -> dict[str, Any]:
    properties = tool.parameters.get("properties")
    order = list(properties) if isinstance(properties, Mapping) else []
    positional = dict(zip(order, values.calls.get(tool.name, ()), strict=False))
    arguments = example_instance(tool.parameters, pick=_PromptPicker(values, positional))
    return arguments if isinstance(arguments, dict) else {}


class _PromptPicker:
    """Proposes the prompt's values for schema leaves (see the module docstring).

    ``loose``: also hand out values not tied to a name (quoted text, capitalised
    names, numbers), each once, in order: right for tool arguments, not for a
    JSON answer, where "the 'setup' key" is not a setup.
    """

    def __init__(
        self, values: PromptValues, positional: Mapping[str, str], *, loose: bool = True
    ) -> None:
        self.values = values
        self.positional = positional
        self.loose = loose
        self.strings = [*values.quoted, *values.phrases]
        self.numbers = list(values.numbers)

    def __call__(self, path: Path, leaf: Mapping[str, Any]) -> Any:
        name = path[-1] if path and isinstance(path[-1], str) else None
        if name is not None:
            tied = [self.values.named.get(name.lower())]
            if len(path) == 1:
                tied.insert(0, self.positional.get(name))
            for raw in tied:
                value = NOTHING if raw is None else convert(raw, leaf)
                if value is not NOTHING and fits_leaf(value, leaf):
                    return value
        if not self.loose:
            return NOTHING
        enum = leaf.get("enum")
        if isinstance(enum, list):
            text = self.values.text.lower()
            return next((m for m in enum if _mentions(text, str(m).lower())), NOTHING)
        kinds = leaf.get("type")
        kinds = [kinds] if isinstance(kinds, str) else kinds if isinstance(kinds, list) else []
        if "integer" in kinds or "number" in kinds:
            return _take(self.numbers, leaf)
        if "string" in kinds:
            return _take(self.strings, leaf)
        return NOTHING


def _take(pool: list[Any], leaf: Mapping[str, Any]) -> Any:
    """The first value of ``pool`` that fits ``leaf``, removed from the pool."""
    for position, value in enumerate(pool):
        if fits_leaf(value, leaf):
            return pool.pop(position)
    return NOTHING


def _json_wanted(turn: _Turn) -> tuple[Any, str] | None:
    """The JSON answer when the request asks for JSON, and how its shape was found."""
    response_format = turn.body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    picker = _PromptPicker(turn.values, {}, loose=False)
    if kind == "json_schema":
        spec = response_format.get("json_schema") if isinstance(response_format, Mapping) else {}
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        name = spec.get("name") if isinstance(spec, Mapping) else None
        return example_instance(schema or {}, pick=picker), f"fitting the schema {name}"
    if kind != "json_object":
        return None
    stated = _stated_schema([*turn.system_texts(), turn.prompt])
    if stated is not None:
        title = stated.get("title")
        described = f"fitting the schema {title}" if title else "fitting the stated schema"
        return example_instance(stated, pick=picker), described
    keys = [q for q in turn.values.quoted if _KEY_LIKE.fullmatch(q)]
    if keys:
        schema = {
            "type": "object",
            "properties": {key: {"type": "string"} for key in keys},
            "required": keys,
        }
        return example_instance(schema, pick=picker), f"with the keys {', '.join(keys)}"
    return {"answer": f"You said: {_excerpt(turn.prompt)}."}, "with an answer"


def _stated_schema(texts: Sequence[str]) -> Mapping[str, Any] | None:
    """The last JSON schema written in ``texts``, searched from the last text back.

    Found by decoding JSON wherever an object starts, so the wording around it
    (an instruction, a code fence) does not matter.
    """
    decoder = json.JSONDecoder()
    for text in reversed(texts):
        found: Mapping[str, Any] | None = None
        position = text.find("{")
        while position >= 0:
            try:
                value, end = decoder.raw_decode(text, position)
            except ValueError:
                position = text.find("{", position + 1)
                continue
            if _looks_like_schema(value):
                found = value
            position = text.find("{", end)
        if found is not None:
            return found
    return None


def _looks_like_schema(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    if value.get("type") in ("object", "array") or "properties" in value:
        return True
    return bool({"anyOf", "oneOf", "allOf", "$ref", "$defs"} & value.keys())


# --- limits, usage and the reply ----------------------------------------------------


def _reply(turn: _Turn, plan: _Plan, number: int) -> Reply:
    content = plan.content
    if content is not None and plan.plain_text and number > 0:
        content = f"{content} (choice {number + 1})"
    content = _before_stop(content, turn.body.get("stop"))
    reasoning = plan.reasoning if turn.thinking else ""
    budget = _budget(turn.body)
    cut = False
    if budget is not None:
        reasoning, budget, cut_reasoning = _within(reasoning, budget)
        cut = cut_reasoning
        if content is not None:
            content, budget, cut_content = _within(content, budget)
            cut = cut or cut_content
    first_id = turn.earlier_calls()
    calls: list[ToolCall] = []
    for position, (name, arguments) in enumerate(plan.calls):
        text = json.dumps(arguments, ensure_ascii=False)
        if budget is not None:
            if budget <= _estimate_tokens(name):
                cut = True
                break
            budget -= _estimate_tokens(name)
            text, budget, cut_arguments = _within(text, budget)
            cut = cut or cut_arguments
        calls.append(ToolCall(name, text, id=f"functions.{name}:{first_id + position}"))
    if content is None and not calls:
        content = ""  # every token went to reasoning
    completion = (
        _estimate_tokens(reasoning)
        + _estimate_tokens(content or "")
        + sum(_estimate_tokens(c.name) + _estimate_tokens(str(c.arguments)) for c in calls)
    )
    prompt_tokens = _prompt_tokens(turn.body)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }
    if reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": _estimate_tokens(reasoning)}
    finish = "length" if cut else "tool_calls" if calls else "stop"
    return Reply(
        content=content,
        reasoning=reasoning,
        tool_calls=calls,
        finish_reason=finish,
        usage=usage,
    )


def _before_stop(content: str | None, stop: Any) -> str | None:
    """The content up to the first stop sequence (which is not included)."""
    if content is None:
        return None
    sequences = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    cuts = [content.find(s) for s in sequences if isinstance(s, str) and s]
    cuts = [cut for cut in cuts if cut >= 0]
    return content[: min(cuts)] if cuts else content


def _budget(body: Mapping[str, Any]) -> int | None:
    for field in ("max_completion_tokens", "max_tokens"):
        value = body.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _within(text: str, budget: int) -> tuple[str, int, bool]:
    """The longest start of ``text`` that fits ``budget`` tokens, the budget left, and if cut."""
    needed = _estimate_tokens(text)
    if needed <= budget:
        return text, budget - needed, False
    low, high = 0, len(text)
    while low < high:  # the longest prefix whose estimate fits
        middle = (low + high + 1) // 2
        if _estimate_tokens(text[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return text[:low], 0, True


def _estimate_tokens(text: str) -> int:
    """About four ASCII characters a token, 1.5 characters of other scripts."""
    if not text:
        return 0
    ascii_chars = len(text.encode("ascii", "ignore"))
    return math.ceil(ascii_chars / 4 + (len(text) - ascii_chars) / 1.5)


def _prompt_tokens(body: Mapping[str, Any]) -> int:
    total = 3  # the reply's priming
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, Mapping):
            continue
        total += _MESSAGE_TOKENS + _estimate_tokens(_text(message.get("content")))
        content = message.get("content")
        if isinstance(content, list):
            total += _MEDIA_TOKENS * sum(
                1
                for part in content
                if isinstance(part, Mapping) and part.get("type") in ("image_url", "video_url")
            )
        reasoning = message.get("reasoning_content")
        if isinstance(reasoning, str):
            total += _estimate_tokens(reasoning)
        for call in _calls_of(message):
            total += _estimate_tokens(json.dumps(call.get("function"), ensure_ascii=False))
    for field in ("tools", "response_format"):
        if body.get(field):
            total += _estimate_tokens(json.dumps(body[field], ensure_ascii=False))
    return total


def _several(replies: Sequence[Reply], body: Mapping[str, Any], thinking: bool) -> Reply:
    """``n`` choices in one answer: the choices of each reply, renumbered; usage summed."""
    first = replies[0].usage or {}
    prompt_tokens = int(first.get("prompt_tokens", 0))
    completion = sum(int((reply.usage or {}).get("completion_tokens", 0)) for reply in replies)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }
    # One id and timestamp for the whole answer, as a service sends.
    head = resolve(replies[0], body, thinking)
    replies = [
        Reply(
            content=r.content,
            reasoning=r.reasoning,
            tool_calls=r.tool_calls,
            finish_reason=r.finish_reason,
            usage=usage,
            id=head.id,
            created=head.created,
        )
        for r in replies
    ]
    if body.get("stream") is not True:
        documents = [json.loads(completion_body(resolve(r, body, thinking), r)) for r in replies]
        merged = documents[0]
        merged["choices"] = [
            {**document["choices"][0], "index": index} for index, document in enumerate(documents)
        ]
        return Reply(body=merged)
    options = body.get("stream_options")
    include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
    events: list[bytes] = []
    for index, reply in enumerate(replies):
        for event in stream_events(resolve(reply, body, thinking), reply, False):
            chunk = json.loads(event[len(b"data: ") :])
            for choice in chunk["choices"]:
                choice["index"] = index
            events.append(sse_event(json.dumps(chunk, ensure_ascii=False).encode(), reply))
    if include_usage:
        closing = {
            "id": head.id,
            "object": "chat.completion.chunk",
            "created": head.created,
            "model": head.model,
            "choices": [],
            "usage": usage,
        }
        events.append(sse_event(json.dumps(closing).encode(), replies[0]))
    events.append(sse_event(DONE_PAYLOAD, replies[0]))
    return Reply.raw(b"".join(events))


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > _EXCERPT_CHARS:
        flat = flat[: _EXCERPT_CHARS - 1] + "…"
    return f"“{flat}”"
