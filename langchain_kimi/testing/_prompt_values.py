"""Values a prompt spells out, for the model-like simulator to put in tool arguments.

A user who writes "What is the weather in San Francisco, CA?" or
"Create a customer named '你好啊集团'" expects the call to carry those values.
:func:`read_prompt` finds, deterministically and without any model:

- ``calls``: ``name(3, "x")`` written like a function call: name -> raw arguments;
- ``named``: ``key=value`` and ``key: value`` pairs (keys lower-cased);
- ``quoted``: text in quotes (``'...'``, ``"..."``, ``“...”``, ``‘...’``, ``«...»``,
  ``「...」``, ``『...』``), in order;
- ``numbers``: numbers standing on their own (not the ``2`` of ``k2``), in order;
- ``phrases``: runs of capitalised words that do not merely open a sentence
  ("San Francisco, CA", "Pirate"), in order.

Raw values stay text; :func:`convert` turns one into what a schema leaf wants.

Usage::

    values = read_prompt("What is magic_function(3)? Use the tool.")
    values.calls["magic_function"]   # ("3",)
    convert("3", {"type": "integer"})  # 3
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_kimi.testing._schema_instance import NOTHING

_QUOTES = (
    # An apostrophe inside a word ("What's") opens nothing.
    re.compile(r"(?<![\w'])'([^'\n]+?)'(?![\w'])"),
    re.compile(r'"([^"\n]+?)"'),
    re.compile(r"“([^”\n]+?)”"),
    re.compile(r"‘([^’\n]+?)’"),
    re.compile(r"«\s*([^»\n]+?)\s*»"),
    re.compile(r"「([^」\n]+?)」"),
    re.compile(r"『([^』\n]+?)』"),
)
_CALL = re.compile(r"\b([A-Za-z_][\w.]*)\s*\(([^()\n]*)\)")
_ARGUMENT = re.compile(r"\s*(\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^,]+?)\s*(?:,|$)")
_KEYWORD = re.compile(r"[A-Za-z_]\w*\s*=")
_NAMED = re.compile(
    r"(?<![\w-])([A-Za-z_][\w-]*)\s*(?:=|:)\s*(\"[^\"\n]*\"|'[^'\n]*'|[^\s,;)\]}]+)"
)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w|\.\d)")
_CAPITALISED = r"[A-Z][\w'&-]*"
_PHRASE = re.compile(rf"{_CAPITALISED}(?:(?:\s+|,\s*)(?:of\s+|de\s+|la\s+)?{_CAPITALISED})*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n\s*)$")


@dataclass(frozen=True)
class PromptValues:
    """The values one prompt spells out (see the module docstring)."""

    text: str
    calls: Mapping[str, tuple[str, ...]]
    named: Mapping[str, str]
    quoted: tuple[str, ...]
    numbers: tuple[int | float, ...]
    phrases: tuple[str, ...]


def read_prompt(text: str) -> PromptValues:
    """The values ``text`` spells out.

    >>> values = read_prompt("What is the weather in San Francisco, CA? Units: metric.")
    >>> values.phrases, values.named["units"]
    (('San Francisco, CA',), 'metric')
    """
    quoted_spans: list[tuple[int, str]] = []
    for pattern in _QUOTES:
        quoted_spans.extend(
            (match.start(), match.group(1).strip()) for match in pattern.finditer(text)
        )
    quoted = tuple(value for _, value in sorted(quoted_spans) if value)
    calls: dict[str, tuple[str, ...]] = {}
    for match in _CALL.finditer(text):
        arguments = match.group(2).strip()
        raw = [part.group(1).strip() for part in _ARGUMENT.finditer(arguments)] if arguments else []
        # Keyword arguments (x=3) are named values, found below; the rest are positional.
        positional = tuple(value for value in raw if value and not _KEYWORD.match(value))
        calls.setdefault(match.group(1), positional)
    named: dict[str, str] = {}
    for match in _NAMED.finditer(text):
        value = match.group(2)
        named.setdefault(
            match.group(1).lower(), _unquote(value if value[0] in "\"'" else value.rstrip("."))
        )
    numbers = tuple(_to_number(match.group()) for match in _NUMBER.finditer(text))
    phrases = tuple(phrase for phrase in _phrases(text) if phrase not in quoted)
    return PromptValues(text, calls, named, quoted, numbers, phrases)


def convert(raw: Any, schema: Mapping[str, Any]) -> Any:
    """A raw prompt value as the leaf ``schema`` wants it, or ``NOTHING`` if it cannot be.

    Strings stay strings; numbers, booleans and ``null`` are read from their
    text ("3" -> 3, "yes" -> True); an ``enum`` member is matched ignoring case.

    >>> convert("3", {"type": "integer"}), convert("'Oslo'", {"type": "string"})
    (3, 'Oslo')
    """
    if not isinstance(raw, str):
        return raw
    text = _unquote(raw.strip())
    enum = schema.get("enum")
    if isinstance(enum, list):
        for member in enum:
            if str(member).lower() == text.lower():
                return member
        return NOTHING
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds if isinstance(kinds, list) else []
    for kind in kinds:
        if kind == "string":
            return text
        if kind in ("integer", "number") and _NUMBER.fullmatch(text):
            number = _to_number(text)
            if kind == "number" or isinstance(number, int):
                return number
        if kind == "boolean" and text.lower() in ("true", "yes", "false", "no"):
            return text.lower() in ("true", "yes")
        if kind == "null" and text.lower() in ("null", "none"):
            return None
    if not kinds:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return NOTHING


def _phrases(text: str) -> tuple[str, ...]:
    found = []
    for match in _PHRASE.finditer(text):
        words = re.split(r"(?<=,)\s*|\s+", match.group())
        # "Using the tool": a capital that only opens a sentence names nothing.
        if _SENTENCE_START.search(text[: match.start()]):
            words = words[1:]
        phrase = " ".join(words).strip(" ,.'")
        if phrase and phrase != "I":
            found.append(phrase)
    return tuple(found)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        inner = value[1:-1]
        if value[0] == '"':
            try:
                decoded = json.loads(value)
                return decoded if isinstance(decoded, str) else inner
            except ValueError:
                return inner
        return inner
    return value


def _to_number(text: str) -> int | float:
    return float(text) if "." in text else int(text)
