"""A small, stated subset of JSON Schema, to check structured output on arrival. Pure.

Ace Data Cloud has no schema mode, and Moonshot's does not promise a valid
reply either, so ``with_structured_output(method="json_schema")`` validates
the reply here, on either service. Checked: ``type`` (``integer`` excludes ``1.0`` and
booleans), ``enum``, ``const``, ``properties``, ``required``,
``additionalProperties``, ``items`` (one schema), ``anyOf``, ``oneOf`` (read as
``anyOf``), ``allOf``, ``nullable`` and ``$ref`` into the same document. Not
checked: formats, patterns, lengths and numeric bounds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_MAX_PROBLEMS = 5


def check_json_schema(value: Any, schema: Mapping[str, Any]) -> list[str]:
    """Where ``value`` breaks ``schema`` (the subset in the module docstring); ``[]`` if nowhere.

    At most five problems are reported, each with a JSON path.

    >>> check_json_schema({"n": "3"}, {"type": "object", "properties": {"n": {"type": "integer"}},
    ...                               "required": ["n", "m"]})
    ["$: missing required property 'm'", '$.n: expected integer, got string']
    """
    problems: list[str] = []
    _check(value, schema, "$", schema, problems)
    return problems[:_MAX_PROBLEMS]


def missing_required(value: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """The lax check of ``json_mode``: required top-level properties that are absent."""
    required = schema.get("required")
    if not isinstance(required, list):
        return []
    return [f"$: missing required property {name!r}" for name in required if name not in value]


def _check(
    value: Any, schema: Any, path: str, root: Mapping[str, Any], problems: list[str]
) -> None:
    if len(problems) >= _MAX_PROBLEMS:
        return
    if schema is False:
        problems.append(f"{path}: no value is allowed here")
        return
    if not isinstance(schema, Mapping):
        return  # `true` and unknown forms accept anything
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = _resolve_ref(root, ref)
        if target is not None:
            _check(value, target, path, root, problems)
    if value is None and schema.get("nullable") is True:
        return
    declared = schema.get("type")
    if declared is not None:
        names = [declared] if isinstance(declared, str) else list(declared)
        if not any(_has_type(value, name) for name in names):
            problems.append(f"{path}: expected {' or '.join(names)}, got {json_type_name(value)}")
            return  # deeper checks would only repeat the same mistake
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        problems.append(f"{path}: {_short(value)} is not one of {_short(schema['enum'])}")
    if "const" in schema and not _same(value, schema["const"]):
        problems.append(f"{path}: expected {_short(schema['const'])}, got {_short(value)}")
    for keyword in ("anyOf", "oneOf"):
        options = schema.get(keyword)
        if (
            isinstance(options, list)
            and options
            and not any(not _problems_under(value, option, path, root) for option in options)
        ):
            problems.append(f"{path}: {_short(value)} matches none of the {keyword} alternatives")
    for part in schema.get("allOf") or ():
        _check(value, part, path, root, problems)
    if isinstance(value, dict):
        _check_object(value, schema, path, root, problems)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping) or items is False:
            for index, item in enumerate(value):
                _check(item, items, f"{path}[{index}]", root, problems)


def _check_object(
    value: dict[str, Any],
    schema: Mapping[str, Any],
    path: str,
    root: Mapping[str, Any],
    problems: list[str],
) -> None:
    for name in schema.get("required") or ():
        if name not in value:
            problems.append(f"{path}: missing required property {name!r}")
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        properties = {}
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        if key in properties:
            _check(item, properties[key], f"{path}.{key}", root, problems)
        elif extra is False:
            problems.append(f"{path}: unexpected property {key!r}")
        elif isinstance(extra, Mapping):
            _check(item, extra, f"{path}.{key}", root, problems)


def _problems_under(value: Any, schema: Any, path: str, root: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    _check(value, schema, path, root, found)
    return found


def _resolve_ref(root: Mapping[str, Any], ref: str) -> Any:
    """A ``#/...`` pointer into the same document; None for anything else."""
    if not ref.startswith("#"):
        return None  # remote references are not followed
    node: Any = root
    for part in ref[1:].split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _has_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    # bool is an int in Python, never in JSON.
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True  # a type name this subset does not know is not ours to refuse


def _same(a: Any, b: Any) -> bool:
    # Python says True == 1; JSON does not.
    return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)


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


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
