"""JSON Schema for structured output: schemas checked before sending, replies on arrival.

Ace Data Cloud has no schema mode, and Moonshot's does not promise a valid
reply either, so ``with_structured_output(method="json_schema")`` validates
the reply here, on either service, with the ``jsonschema`` package (draft
2020-12 unless the schema's ``$schema`` says otherwise; ``format`` is not
asserted). It is imported on first use: most programs never need it.

Two bounds keep a hostile schema or reply from exhausting the stack:

- :func:`check_schema` refuses, before anything is sent, a schema whose
  ``$ref``/``allOf``/``anyOf``/``oneOf``/``not``/``if`` links loop back to
  themselves without descending into the value (A -> B -> A): validating any
  value against it would never end. It also refuses a schema that is not a
  valid JSON Schema, or a ``$ref`` that does not resolve inside the schema.
- :func:`check_depth` refuses a reply nested deeper than
  :data:`MAX_REPLY_DEPTH` levels, before it is validated.

Usage::

    check_schema({"type": "object", "required": ["a"]})  # before sending
    check_json_schema({"n": "3"}, schema)  # ["$.n: expected integer, got string"]
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

# A structured reply nested deeper than this is refused before validation. Real
# schemas nest a handful of levels; the validator recurses per level (about five
# frames each), and Python's stack holds about 1,000 frames.
MAX_REPLY_DEPTH = 100
_MAX_PROBLEMS = 5
_DETAIL_CHARS = 200
# Keywords that apply a subschema to the same value (no descent into it).
_SAME_VALUE_LISTS = ("allOf", "anyOf", "oneOf")
_SAME_VALUE_ONE = ("not", "if", "then", "else")
_SCHEMA_URI = "urn:langchain-kimi:schema"
_REQUIRED = re.compile(r"^(.*) is a required property$")
_UNEXPECTED = re.compile(r"\((.*) (?:was|were) unexpected\)$")


def check_schema(schema: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` for a schema that cannot check a reply; before sending.

    >>> check_schema({"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}},
    ...               "$ref": "#/$defs/A"})
    Traceback (most recent call last):
    ...
    ValueError: the schema loops without describing a value: #/$defs/A -> #/$defs/B -> #/$defs/A
    """
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    cls = validator_for(schema, default=_default_validator())
    try:
        cls.check_schema(dict(schema))
    except SchemaError as err:
        raise ValueError(f"the schema is not a valid JSON Schema: {_describe(err)}") from None
    except RecursionError:
        raise ValueError("the schema is nested too deeply to check") from None
    _check_links(schema)


def check_depth(value: Any, limit: int = MAX_REPLY_DEPTH) -> None:
    """Raise ``ValueError`` when ``value`` nests arrays/objects deeper than ``limit``."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            raise ValueError(
                f"the reply nests deeper than {limit} levels, more than structured output takes"
            )
        stack.extend((child, depth + 1) for child in children)


def check_json_schema(value: Any, schema: Mapping[str, Any]) -> list[str]:
    """Where ``value`` breaks ``schema``; ``[]`` if nowhere. At most five, each with a JSON path.

    >>> check_json_schema({"n": "3"}, {"type": "object", "properties": {"n": {"type": "integer"}},
    ...                               "required": ["n", "m"]})
    ["$: missing required property 'm'", '$.n: expected integer, got string']
    """
    check_depth(value)
    try:
        errors = sorted(_validator(schema).iter_errors(value), key=_position)
        return [_describe(error) for error in errors[:_MAX_PROBLEMS]]
    except RecursionError:
        raise ValueError("the reply nests too deeply to check against the schema") from None


def missing_required(value: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """The lax check of ``json_mode``: required top-level properties that are absent."""
    required = schema.get("required")
    if not isinstance(required, list):
        return []
    return [f"$: missing required property {name!r}" for name in required if name not in value]


def json_type_name(value: Any) -> str:
    """The JSON type of a decoded value (``integer``, ``object``...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _default_validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator


def _validator(schema: Mapping[str, Any]) -> Validator:
    from jsonschema.validators import validator_for

    cls = validator_for(schema, default=_default_validator())
    return cls(dict(schema))


def _position(error: ValidationError) -> tuple[str, str]:
    return (error.json_path, str(error.validator))


def _describe(error: Any) -> str:
    """``$.path: what is wrong``: types by their JSON names, long values cut."""
    path = getattr(error, "json_path", "$")
    if error.validator == "type":
        expected = error.validator_value
        names = expected if isinstance(expected, list) else [expected]
        detail = f"expected {' or '.join(map(str, names))}, got {json_type_name(error.instance)}"
    elif error.validator == "required" and (match := _REQUIRED.match(error.message)):
        detail = f"missing required property {match.group(1)}"
    elif error.validator == "additionalProperties" and (match := _UNEXPECTED.search(error.message)):
        detail = f"unexpected property {match.group(1)}"
    else:
        detail = error.message
    if len(detail) > _DETAIL_CHARS:
        detail = detail[:_DETAIL_CHARS] + "..."
    return f"{path}: {detail}"


# --- loops in a schema -----------------------------------------------------------------


def _check_links(schema: Mapping[str, Any]) -> None:
    """Refuse ``$ref``s that do not resolve, and same-value links that loop."""
    from referencing import Registry
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012

    document = schema if isinstance(schema, dict) else dict(schema)
    resource = DRAFT202012.create_resource(document)
    resolver = Registry().with_resource(_SCHEMA_URI, resource).resolver(base_uri=_SCHEMA_URI)
    # Depth-first over "applies to the same value" links, from every subschema
    # (a loop may hide under properties); a node on the current path reached
    # again is a loop. Nodes are subschemas, by identity.
    names: dict[int, str] = {}
    done: set[int] = set()
    for start, start_name in _subschemas(document):
        if id(start) in done:
            continue
        names.setdefault(id(start), start_name)
        _walk_links(start, resolver, Unresolvable, names, done)


def _subschemas(schema: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], str]]:
    """Every object in the schema document, with a JSON pointer to it."""
    stack: list[tuple[Any, str]] = [(schema, "#")]
    while stack:
        node, pointer = stack.pop()
        if isinstance(node, Mapping):
            yield node, pointer
            stack.extend((value, f"{pointer}/{key}") for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, f"{pointer}/{index}") for index, value in enumerate(node))


def _walk_links(
    start: Mapping[str, Any],
    resolver: Any,
    unresolvable: type[Exception],
    names: dict[int, str],
    done: set[int],
) -> None:
    path: list[int] = []
    on_path: set[int] = set()
    stack: list[tuple[Any, Any, Iterator[tuple[str, Any, Any]] | None]] = [(start, resolver, None)]
    while stack:
        node, node_resolver, links = stack[-1]
        if links is None:
            path.append(id(node))
            on_path.add(id(node))
            links = _same_value_links(node, node_resolver, unresolvable)
            stack[-1] = (node, node_resolver, links)
        step = next(links, None)
        if step is None:
            stack.pop()
            path.pop()
            on_path.discard(id(node))
            done.add(id(node))
            continue
        name, target, target_resolver = step
        names.setdefault(id(target), name)
        if id(target) in on_path:
            first = path.index(id(target))
            loop = [names.get(key, "?") for key in path[first:]] + [names[id(target)]]
            raise ValueError(f"the schema loops without describing a value: {' -> '.join(loop)}")
        if id(target) not in done and isinstance(target, Mapping):
            stack.append((target, target_resolver, None))


def _same_value_links(
    node: Any, resolver: Any, unresolvable: type[Exception]
) -> Iterator[tuple[str, Any, Any]]:
    if not isinstance(node, Mapping):
        return
    ref = node.get("$ref")
    if isinstance(ref, str):
        try:
            resolved = resolver.lookup(ref)
        except unresolvable:
            raise ValueError(
                f"the schema's $ref {ref!r} does not resolve inside the schema: Kimi "
                "structured output checks replies against a self-contained schema"
            ) from None
        yield ref, resolved.contents, resolved.resolver
    for keyword in _SAME_VALUE_LISTS:
        members = node.get(keyword)
        if isinstance(members, list):
            for member in members:
                yield f"{keyword}[...]", member, resolver
    for keyword in _SAME_VALUE_ONE:
        if isinstance(node.get(keyword), Mapping):
            yield keyword, node[keyword], resolver
