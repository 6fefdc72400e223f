"""A fitting example instance of a JSON schema: what the model-like simulator answers with.

The model-like mode (:mod:`langchain_kimi.testing._model_like`) has to fill tool
arguments and JSON answers that a schema describes. This module builds such a
value for the part of JSON Schema that LangChain's tools and structured-output
schemas use (what Pydantic and ``convert_to_openai_tool`` write):

- ``type`` (one, or a list: the first that is not ``"null"``), ``nullable``;
- ``enum`` and ``const``;
- objects: ``properties``, ``required``, ``additionalProperties``;
- arrays: ``items``, ``prefixItems``, ``minItems``, ``maxItems``, ``uniqueItems``;
- strings: ``minLength``, ``maxLength``, ``format`` (date, date-time, time, email,
  uri, uuid, ipv4, ipv6, hostname, duration: never padded to a length, which
  would break them), ``pattern`` (a string built from Python's own parse of
  the expression, or stock strings; a pattern none of them matches raises
  :class:`SchemaError`);
- numbers: ``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``
  (numbers, or draft 4's booleans), ``multipleOf``;
- ``anyOf`` and ``oneOf`` (a branch that is not ``null``), ``allOf`` (merged);
- ``$ref`` into the same document (``#/$defs/...``, ``#/definitions/...``, any
  JSON pointer), recursive ones included.

Not honoured: ``not``, ``if``/``then``/``else``, ``patternProperties``,
``dependentRequired``, ``minProperties``, ``contains``; references to other
documents raise :class:`SchemaError`.

A ``pick`` function lets the caller propose values for leaves (strings,
numbers, booleans, enums), for example values read from the prompt: a
proposal is used only when it fits the leaf's own constraints, else the
generated example is. Everything is deterministic.

Usage::

    example_instance({"type": "object", "properties": {"n": {"type": "integer", "minimum": 5}},
                      "required": ["n"]})
    # {"n": 5}
    example_instance(schema, pick=lambda path, leaf: "Oslo" if path[-1:] == ("city",) else NOTHING)
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Path = tuple[str | int, ...]


class _Nothing:
    """The sentinel a ``pick`` function returns when it has no value to propose."""

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Any = _Nothing()

Pick = Callable[[Path, Mapping[str, Any]], Any]
"""``pick(path, leaf_schema)``: a proposed value for the leaf at ``path``, or ``NOTHING``."""


class SchemaError(ValueError):
    """A schema this generator cannot fill (a remote ``$ref``, ``false``, bounds no value meets)."""


# Optional properties and array items are filled only this deep: a recursive
# schema (a tree of nodes) stops growing there.
_FULL_DEPTH = 4
# Deeper than this a schema that *requires* its own recursion has no finite instance.
_MAX_DEPTH = 32
# Tried in turn against a ``pattern`` when the generated string does not match it.
_PATTERN_TRIES = (
    "example",
    "abc",
    "ABC",
    "a1",
    "A1",
    "123",
    "1",
    "a",
    "A",
    "x-1",
    "2025-01-01",
    "user@example.com",
    "https://example.com/",
    "+1 555 0100",
)
_LEAF_TYPES = frozenset({"string", "integer", "number", "boolean", "null"})


def example_instance(schema: Any, *, pick: Pick | None = None) -> Any:
    """A value that fits ``schema`` (the subset in the module docstring).

    ``pick(path, leaf_schema)`` may propose a value for each leaf; it is used
    when it fits that leaf, else a generated example is. Raises
    :class:`SchemaError` for a schema no value fits or that this module cannot
    read.

    >>> example_instance({"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 2,
    ...                   "uniqueItems": True})
    ['a', 'b']
    """
    return _Generator(schema, pick).instance(schema, (), 0, 0)


def fits_leaf(value: Any, schema: Mapping[str, Any]) -> bool:
    """Whether ``value`` meets a leaf schema's own constraints.

    A leaf is a schema for a string, number, integer, boolean, null, or an
    ``enum``/``const``. Checked: ``type``, ``enum``, ``const``, string lengths and
    ``pattern``, numeric bounds and ``multipleOf``. References and combinators
    are not followed (resolve them first): this decides whether a proposed
    value may stand for a generated one, it is not a validator.

    >>> fits_leaf(3, {"type": "integer", "exclusiveMaximum": 3})
    False
    """
    if "const" in schema:
        return _same(value, schema["const"])
    enum = schema.get("enum")
    if isinstance(enum, list):
        return any(_same(value, member) for member in enum)
    types = _types(schema)
    if types and not any(_has_type(value, kind) for kind in types):
        return False
    if isinstance(value, str):
        return _string_fits(value, schema)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number_fits(value, schema)
    return True


def is_leaf(schema: Mapping[str, Any]) -> bool:
    """Whether ``schema`` describes a single value (no properties, items or combinators)."""
    if "enum" in schema or "const" in schema:
        return True
    types = _types(schema)
    return bool(types) and all(kind in _LEAF_TYPES for kind in types)


class _Generator:
    def __init__(self, root: Any, pick: Pick | None) -> None:
        self.root = root
        self.pick = pick

    def instance(self, schema: Any, path: Path, depth: int, variant: int) -> Any:
        if depth > _MAX_DEPTH:
            raise SchemaError(
                f"the schema at {_where(path)} requires itself without end: no finite instance"
            )
        if schema is True:
            schema = {}
        if schema is False:
            raise SchemaError(f"the schema at {_where(path)} is false: no value fits it")
        if not isinstance(schema, Mapping):
            raise SchemaError(f"the schema at {_where(path)} is not an object: {schema!r}")
        schema = self.resolve(schema, path)
        if "allOf" in schema:
            return self.instance(self.merge_all_of(schema, path), path, depth, variant)
        branches = schema.get("anyOf", schema.get("oneOf"))
        if isinstance(branches, list):
            return self.one_branch(schema, branches, path, depth, variant)
        if "const" in schema:
            return schema["const"]
        proposed = self.proposal(schema, path)
        if proposed is not NOTHING:
            return proposed
        enum = schema.get("enum")
        if isinstance(enum, list):
            if not enum:
                raise SchemaError(f"the schema at {_where(path)} has an empty enum")
            return enum[variant % len(enum)]
        kind = _main_type(schema)
        if kind == "object":
            return self.object(schema, path, depth, variant)
        if kind == "array":
            return self.array(schema, path, depth, variant)
        if kind == "string":
            return _string(schema, path, variant)
        if kind in ("integer", "number"):
            return _number(schema, path, variant, integer=kind == "integer")
        if kind == "boolean":
            return variant % 2 == 0
        if kind == "null":
            return None
        raise SchemaError(f"the schema at {_where(path)} has an unknown type {kind!r}")

    def proposal(self, schema: Mapping[str, Any], path: Path) -> Any:
        if self.pick is None or not is_leaf(schema):
            return NOTHING
        value = self.pick(path, schema)
        if value is NOTHING or not fits_leaf(value, schema):
            return NOTHING
        return value

    def resolve(self, schema: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
        """Follow ``$ref`` chains; keywords beside a ``$ref`` apply too (2019-09 and later)."""
        seen: set[str] = set()
        while isinstance(schema.get("$ref"), str):
            ref = schema["$ref"]
            if ref in seen:
                raise SchemaError(f"the $ref {ref!r} at {_where(path)} refers to itself")
            seen.add(ref)
            target = self.lookup(ref, path)
            siblings = {key: value for key, value in schema.items() if key != "$ref"}
            schema = {**target, **siblings}
        return schema

    def lookup(self, ref: str, path: Path) -> Mapping[str, Any]:
        if not ref.startswith("#"):
            raise SchemaError(
                f"the $ref {ref!r} at {_where(path)} points to another document; "
                "only references into the same schema (#/...) are followed"
            )
        node: Any = self.root
        for raw in ref[1:].split("/")[1:] if ref != "#" else []:
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise SchemaError(f"the $ref {ref!r} at {_where(path)} points to nothing")
        if node is True:
            return {}
        if not isinstance(node, Mapping):
            raise SchemaError(f"the $ref {ref!r} at {_where(path)} is not a schema")
        return node

    def merge_all_of(self, schema: Mapping[str, Any], path: Path) -> dict[str, Any]:
        """``allOf`` as one schema: properties and required lists joined, other keywords layered."""
        merged: dict[str, Any] = {key: value for key, value in schema.items() if key != "allOf"}
        for part in schema["allOf"]:
            if not isinstance(part, Mapping):
                raise SchemaError(f"an allOf entry at {_where(path)} is not a schema")
            resolved = self.resolve(part, path)
            if "allOf" in resolved:
                resolved = self.merge_all_of(resolved, path)
            for key, value in resolved.items():
                if key == "properties" and isinstance(merged.get(key), Mapping):
                    merged[key] = {**merged[key], **value}
                elif key == "required" and isinstance(merged.get(key), list):
                    merged[key] = [*merged[key], *value]
                else:
                    merged.setdefault(key, value)
        return merged

    def one_branch(
        self,
        schema: Mapping[str, Any],
        branches: Sequence[Any],
        path: Path,
        depth: int,
        variant: int,
    ) -> Any:
        # Keywords beside anyOf (a description, a default) belong to every branch.
        shared = {key: value for key, value in schema.items() if key not in ("anyOf", "oneOf")}
        candidates = [
            {**shared, **self.resolve(branch, path)} if isinstance(branch, Mapping) else branch
            for branch in branches
        ]
        if not candidates:
            raise SchemaError(f"the schema at {_where(path)} has an empty anyOf/oneOf")
        useful = [branch for branch in candidates if not _only_null(branch)] or candidates
        # A proposed value picks its branch: "Oslo" for `str | int` is the string.
        for branch in useful:
            if isinstance(branch, Mapping) and not {"anyOf", "oneOf", "allOf"} & branch.keys():
                proposed = self.proposal(branch, path)
                if proposed is not NOTHING:
                    return proposed
        return self.instance(useful[0], path, depth, variant)

    def object(
        self, schema: Mapping[str, Any], path: Path, depth: int, variant: int
    ) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = schema.get("required")
        required = [name for name in required if isinstance(name, str)] if required else []
        result: dict[str, Any] = {}
        for name, subschema in properties.items():
            if name in required or depth < _FULL_DEPTH:
                result[name] = self.instance(subschema, (*path, name), depth + 1, variant)
        extra = schema.get("additionalProperties", True)
        for name in required:
            if name not in result:
                subschema = extra if isinstance(extra, Mapping) else {"type": "string"}
                result[name] = self.instance(subschema, (*path, name), depth + 1, variant)
        return result

    def array(self, schema: Mapping[str, Any], path: Path, depth: int, variant: int) -> list[Any]:
        prefix = schema.get("prefixItems")
        items = schema.get("items", {})
        if isinstance(items, list):  # draft 4-7 tuples
            prefix, items = items, schema.get("additionalItems", {})
        prefix = prefix if isinstance(prefix, list) else []
        minimum = _int(schema.get("minItems"), 0)
        count = max(minimum, len(prefix), 1 if depth < _FULL_DEPTH else 0)
        maximum = schema.get("maxItems")
        if isinstance(maximum, int):
            count = min(count, maximum)
        if items is False:
            count = min(count, len(prefix))
        if count < minimum:
            raise SchemaError(f"the array at {_where(path)} cannot hold minItems={minimum} items")
        unique = schema.get("uniqueItems") is True
        values = []
        for position in range(count):
            item_schema = prefix[position] if position < len(prefix) else items
            # Distinct items when the schema wants them unique: each gets its own variant.
            item_variant = variant + position if unique else variant
            values.append(self.instance(item_schema, (*path, position), depth + 1, item_variant))
        return values


def _string(schema: Mapping[str, Any], path: Path, variant: int) -> str:
    formatted = _formatted(str(schema.get("format")), variant)
    if formatted is not None:
        # A date padded to a minLength is no longer a date: no bending here.
        if _string_fits(formatted, schema):
            return formatted
        raise SchemaError(
            f"the {schema['format']} example {formatted!r} does not fit the schema at "
            f"{_where(path)} (its length or pattern)"
        )
    name = next((part for part in reversed(path) if isinstance(part, str)), "")
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ")
    base = f"example {words.strip()}".strip()
    if variant:
        base = f"{base} {variant + 1}"
    minimum = _int(schema.get("minLength"), 0)
    maximum = _int(schema.get("maxLength"), -1)
    candidates = [base]
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        built = _matching(pattern)
        candidates += [*([built] if built is not None else []), *_PATTERN_TRIES]
    for candidate in candidates:
        if len(candidate) < minimum:
            candidate = candidate + "x" * (minimum - len(candidate))
        if maximum >= 0:
            candidate = candidate[:maximum]
        if _string_fits(candidate, schema):
            return candidate
    raise SchemaError(
        f"no example string fits the schema at {_where(path)} "
        f"(pattern {schema.get('pattern')!r}, length {minimum}..{maximum if maximum >= 0 else ''})"
    )


def _formatted(format_name: str, variant: int) -> str | None:
    """An example of a string ``format``, distinct per variant (unique items); None if unknown."""
    day = 1 + variant % 28
    number = str(variant) if variant else ""
    examples = {
        "date": f"2025-01-{day:02d}",
        "date-time": f"2025-01-{day:02d}T12:00:00Z",
        "time": f"12:{variant % 60:02d}:00",
        "email": f"user{number}@example.com",
        "idn-email": f"user{number}@example.com",
        "uri": f"https://example.com/{number}",
        "url": f"https://example.com/{number}",
        "iri": f"https://example.com/{number}",
        "uri-reference": f"https://example.com/{number}",
        "uuid": f"00000000-0000-4000-8000-{variant % 10**12:012d}",
        "ipv4": f"192.0.2.{1 + variant % 254}",
        "ipv6": f"2001:db8::{1 + variant % 65535:x}",
        "hostname": f"host{number}.example.com",
        "duration": f"P{day}D",
    }
    return examples.get(format_name)


class _Unbuildable(Exception):
    """A regular expression construct :func:`_matching` does not build (a back-reference...)."""


def _matching(pattern: str) -> str | None:
    """A string ``pattern`` matches, built from Python's own parse of it; None if it cannot be.

    Each repeat is taken its minimum number of times (at least once when it may),
    each alternation its first branch, each class its first member. The caller
    checks the result with :func:`re.search` (lookarounds are not built).

    >>> _matching(r"^\\d{5}(-[A-Z]{2})?$")
    '00000-AA'
    """
    try:
        # The parser behind re.compile (sre_parse): no expression parsing of our own.
        parser: Any = importlib.import_module("re._parser")
        return _build(parser.parse(pattern))
    except (_Unbuildable, re.error, ImportError, AttributeError, ValueError, TypeError):
        return None


def _build(items: Any) -> str:
    built: list[str] = []
    for op, argument in items:
        kind = str(op)
        if kind == "LITERAL":
            built.append(chr(argument))
        elif kind == "NOT_LITERAL":
            built.append("a" if argument != ord("a") else "b")
        elif kind == "ANY":
            built.append("a")
        elif kind == "IN":
            built.append(_class_member(argument))
        elif kind in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, body = argument
            built.append(_build(body) * max(low, min(1, high)))
        elif kind == "SUBPATTERN":
            built.append(_build(argument[-1]))
        elif kind == "ATOMIC_GROUP":
            built.append(_build(argument))
        elif kind == "BRANCH":
            built.append(_build(argument[1][0]))
        elif kind not in ("AT", "ASSERT", "ASSERT_NOT"):
            raise _Unbuildable(kind)
    return "".join(built)


_CATEGORY_MEMBERS = {
    "CATEGORY_DIGIT": "0",
    "CATEGORY_NOT_DIGIT": "a",
    "CATEGORY_WORD": "a",
    "CATEGORY_NOT_WORD": " ",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "a",
}


def _class_member(items: Any) -> str:
    """A character of a ``[...]`` class: its first member, or for ``[^...]`` one it leaves out."""
    if items and str(items[0][0]) == "NEGATE":
        pattern = "[^" + "".join(_class_source(op, argument) for op, argument in items[1:]) + "]"
        for candidate in "aA0x_ -.":
            if re.fullmatch(pattern, candidate):
                return candidate
        raise _Unbuildable("NEGATE")
    for op, argument in items:
        kind = str(op)
        if kind == "LITERAL":
            return chr(argument)
        if kind == "RANGE":
            return chr(argument[0])
        if kind == "CATEGORY" and str(argument) in _CATEGORY_MEMBERS:
            return _CATEGORY_MEMBERS[str(argument)]
    raise _Unbuildable("IN")


def _class_source(op: Any, argument: Any) -> str:
    kind = str(op)
    if kind == "LITERAL":
        return re.escape(chr(argument))
    if kind == "RANGE":
        return f"{re.escape(chr(argument[0]))}-{re.escape(chr(argument[1]))}"
    if kind == "CATEGORY":
        return {
            "CATEGORY_DIGIT": r"\d",
            "CATEGORY_NOT_DIGIT": r"\D",
            "CATEGORY_WORD": r"\w",
            "CATEGORY_NOT_WORD": r"\W",
            "CATEGORY_SPACE": r"\s",
            "CATEGORY_NOT_SPACE": r"\S",
        }.get(str(argument), "")
    raise _Unbuildable(kind)


def _number(schema: Mapping[str, Any], path: Path, variant: int, *, integer: bool) -> int | float:
    low, low_open = _bound(schema, "minimum", "exclusiveMinimum")
    high, high_open = _bound(schema, "maximum", "exclusiveMaximum")
    wanted: list[float] = [1 + variant, variant]
    if low is not None:
        wanted += [low + variant, low + 1 + variant, low + 0.5]
    if high is not None:
        wanted += [high - variant, high - 1 - variant, high - 0.5]
    if low is not None and high is not None:
        wanted.append((low + high) / 2)
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0:
        wanted = [rounded * step for value in wanted for rounded in (math.ceil(value / step), 1, 0)]
    for value in wanted:
        candidate: int | float = math.ceil(value) if integer else value
        if integer:
            candidate = int(candidate)
        elif float(candidate).is_integer():
            candidate = int(candidate)  # 1, not 1.0: what a model writes
        if _number_fits(candidate, schema):
            return candidate
    raise SchemaError(
        f"no {'integer' if integer else 'number'} fits the bounds at {_where(path)} "
        f"({'(' if low_open else '['}{low}, {high}{')' if high_open else ']'})"
    )


def _string_fits(value: str, schema: Mapping[str, Any]) -> bool:
    if len(value) < _int(schema.get("minLength"), 0):
        return False
    maximum = schema.get("maxLength")
    if isinstance(maximum, int) and len(value) > maximum:
        return False
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            return re.search(pattern, value) is not None
        except re.error:
            return True  # a pattern Python cannot read: not ours to judge
    return True


def _number_fits(value: float, schema: Mapping[str, Any]) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return False
    low, low_open = _bound(schema, "minimum", "exclusiveMinimum")
    high, high_open = _bound(schema, "maximum", "exclusiveMaximum")
    if low is not None and (value < low or (low_open and value == low)):
        return False
    if high is not None and (value > high or (high_open and value == high)):
        return False
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0:
        quotient = value / step
        return math.isclose(quotient, round(quotient), abs_tol=1e-9)
    return True


def _bound(schema: Mapping[str, Any], inclusive: str, exclusive: str) -> tuple[float | None, bool]:
    """The tighter of a bound's two forms: (value, open?); draft 4's boolean form included."""
    closed = schema.get(inclusive)
    opened = schema.get(exclusive)
    closed = closed if _is_number(closed) else None
    if opened is True:  # draft 4: the inclusive keyword's value, excluded
        return closed, closed is not None
    opened = opened if _is_number(opened) else None
    if opened is None:
        return closed, False
    if closed is None:
        return opened, True
    tighter_open = opened >= closed if inclusive == "minimum" else opened <= closed
    return (opened, True) if tighter_open else (closed, False)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        kinds = [kind]
    elif isinstance(kind, list):
        kinds = [entry for entry in kind if isinstance(entry, str)]
    else:
        kinds = []
    if schema.get("nullable") is True and kinds and "null" not in kinds:
        kinds.append("null")
    return kinds


def _main_type(schema: Mapping[str, Any]) -> str:
    """The type to generate: the first named that is not null, else one the keywords imply."""
    kinds = _types(schema)
    for kind in kinds:
        if kind != "null":
            return kind
    if kinds:
        return "null"
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    if any(key in schema for key in ("minimum", "maximum", "exclusiveMinimum", "multipleOf")):
        return "number"
    return "string"  # an unconstrained value ({}): a string is as good as any


def _only_null(schema: Any) -> bool:
    return isinstance(schema, Mapping) and _types(schema) == ["null"]


def _has_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return _is_number(value)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "array":
        return isinstance(value, list)
    return False


def _same(value: Any, member: Any) -> bool:
    """JSON equality: ``True`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(value, bool) or isinstance(member, bool):
        return isinstance(value, bool) and isinstance(member, bool) and value == member
    return bool(value == member)


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _where(path: Path) -> str:
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
