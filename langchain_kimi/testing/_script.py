"""Scripted replies from a JSON or YAML file, for the simulator in another process.

``python -m langchain_kimi.testing --replies FILE`` (``kimi-sim``) answers from
a script; so can a :class:`~langchain_kimi.testing.FakeKimiServer` in a test::

    from langchain_kimi.testing import FakeKimiServer, load_script

    with FakeKimiServer() as server:
        server.set_responder(load_script("tests/fixtures/sim/tool_call.yaml"))
        ...

The file holds a list of entries, or a mapping whose only key is ``replies``
holding that list. Each entry is one answer, written with the fields of
:class:`~langchain_kimi.testing.Reply`::

    replies:
      - reasoning: The user wants the weather.
        tool_calls:
          - {name: get_weather, arguments: {city: Oslo}}
      - content: It is 18 C and sunny in Oslo.
      - match: refund                      # only for a last user message containing "refund"
        error: {status: 429, code: too_many_requests, message: slow down}
        headers: {Retry-After: 1}
      - {fault: disconnect, fault_after: 3}

Fields: ``content``, ``reasoning``, ``tool_calls`` (a list of ``{name, arguments,
id?}``; ``arguments`` a mapping, or a string sent verbatim), ``finish_reason``,
``usage``, ``model``, ``id``, ``created``, ``status``, ``body``, ``headers``
(numbers become strings), ``delay``, ``chunk_size``, ``chunk_delay``,
``fragment_tool_calls``, ``usage_style``, ``repeat_role``, ``spaced_json``,
``comments``, ``crlf``, ``repeat_finish``, ``fault``, ``fault_after``, ``stall``,
as documented on :class:`Reply`; and three of the script's own:

- ``error: {status, code, message, trace_id?, style?}``: an error answer with
  the service's body (:meth:`Reply.error`); not combined with ``status``,
  ``body``, ``content``, ``reasoning`` or ``tool_calls``.
- ``match: "text"``: the entry answers only a request whose last user message
  contains ``text`` (case-sensitive).
- ``match_regex: "pattern"``: the same with :func:`re.search`
  (``"(?i)weather"`` ignores case).

Which entry answers a request: each entry answers at most one request. The
first unused entry, in file order, whose ``match``/``match_regex`` fits the last
user message wins; failing that, the first unused entry without a match; when
none is left, the script is exhausted: ``exhausted="echo"`` (the default) gives
the simulator's usual echo, ``exhausted="error"`` a 500 ``script_exhausted``
error (clients retry a 500: turn retries off to see it at once). Requests the
simulator rejects (auth, rules) use no entry.

The whole file is checked when loaded; :class:`ScriptError` names the entry and
the field (``tool_call.yaml: replies[1].tool_calls[0].arguments: ...``).
YAML needs PyYAML, which langchain-kimi does not install (``pip install pyyaml``).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_kimi.testing._replies import Reply, ToolCall

Exhausted = Literal["echo", "error"]
EXHAUSTED_CHOICES: tuple[Exhausted, ...] = ("echo", "error")


class ScriptError(ValueError):
    """A script file that cannot be used: unreadable, not JSON/YAML, or a bad entry."""


@dataclass(frozen=True)
class ScriptEntry:
    """One entry of a script: the reply and, optionally, what the request must say."""

    position: int
    reply: Reply
    match: str | None = None
    match_regex: re.Pattern[str] | None = None

    @property
    def conditional(self) -> bool:
        """True when the entry answers only matching requests."""
        return self.match is not None or self.match_regex is not None

    def fits(self, text: str) -> bool:
        """Whether the entry may answer a request whose last user message is ``text``."""
        if self.match is not None:
            return self.match in text
        if self.match_regex is not None:
            return self.match_regex.search(text) is not None
        return True


class Script:
    """Answers requests from script entries; a :class:`FakeKimiServer` responder.

    Thread-safe (the server answers each connection in its own thread).

    Usage::

        script = Script(parse_script([{"content": "Hi"}]), exhausted="error")
        server.set_responder(script)
        ...
        script.remaining      # entries not used yet
        script.used           # positions of the entries used, in the order served
    """

    def __init__(self, entries: Sequence[ScriptEntry], *, exhausted: Exhausted = "echo") -> None:
        if exhausted not in EXHAUSTED_CHOICES:
            raise ValueError(f"exhausted must be 'echo' or 'error', got {exhausted!r}")
        self.entries = tuple(entries)
        self.exhausted = exhausted
        self._unused = list(self.entries)
        self._used: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply | None:
        entry = self._take(last_user_text(body))
        if entry is not None:
            return entry.reply
        if self.exhausted == "error":
            return Reply.error(
                500,
                "script_exhausted",
                f"The simulator's script has no reply left for this request "
                f"(all {len(self.entries)} entries are used, or none fits it).",
            )
        return None  # the simulator's default: the echo

    def _take(self, text: str) -> ScriptEntry | None:
        with self._lock:
            chosen = next((e for e in self._unused if e.conditional and e.fits(text)), None)
            if chosen is None:
                chosen = next((e for e in self._unused if not e.conditional), None)
            if chosen is not None:
                self._unused.remove(chosen)
                self._used.append(chosen.position)
            return chosen

    @property
    def remaining(self) -> int:
        """Entries not used yet."""
        with self._lock:
            return len(self._unused)

    @property
    def used(self) -> list[int]:
        """Positions (0-based, in the file) of the entries served, in order."""
        with self._lock:
            return list(self._used)


def last_user_text(body: Mapping[str, Any]) -> str:
    """The text of the request's last user message ("" when there is none).

    A list content's text parts are joined with spaces; other parts are ignored.
    """
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    str(part.get("text", ""))
                    for part in content
                    if isinstance(part, Mapping) and part.get("type") == "text"
                )
            return ""
    return ""


def load_script(path: str | Path, *, exhausted: Exhausted = "echo") -> Script:
    """Read and check a script file (``.json``, or ``.yaml``/``.yml`` with PyYAML).

    Raises :class:`ScriptError` naming the file, the entry and the field.

    Usage::

        server.set_responder(load_script("replies.yaml", exhausted="error"))
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise ScriptError(f"cannot read the script {file}: {reason}") from None
    if file.suffix.lower() in (".yaml", ".yml"):
        data = _parse_yaml(text, file)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ScriptError(
                f"{file}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
                "YAML scripts must be named .yaml or .yml"
            ) from None
    return Script(parse_script(data, source=file.name), exhausted=exhausted)


def _parse_yaml(text: str, file: Path) -> Any:
    try:
        import yaml
    except ImportError:
        raise ScriptError(
            f"{file}: reading YAML needs PyYAML, which langchain-kimi does not install: "
            "run `pip install pyyaml`, or write the script as JSON"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ScriptError(f"{file}: not valid YAML: {err}") from None


def parse_script(data: Any, *, source: str = "script") -> list[ScriptEntry]:
    """Check decoded JSON/YAML and build the entries; ScriptError names what is wrong.

    Usage::

        parse_script({"replies": [{"content": "Hi"}, {"match": "bye", "content": "Bye"}]})
    """
    if isinstance(data, Mapping):
        if set(data) != {"replies"}:
            raise ScriptError(
                f"{source}: a mapping at the top must have exactly one key, 'replies' "
                f"(a list of entries); found {sorted(str(key) for key in data)}"
            )
        data = data["replies"]
    if not isinstance(data, list):
        raise ScriptError(
            f"{source}: expected a list of entries, or {{'replies': [...]}}; got {_kind(data)}"
        )
    # Entries are named replies[i] (0-based) whether or not the file says "replies:".
    return [
        _parse_entry(entry, position, f"{source}: replies[{position}]")
        for position, entry in enumerate(data)
    ]


# --- one entry ----------------------------------------------------------------------

Check = Callable[[Any, str], Any]


def _parse_entry(entry: Any, position: int, where: str) -> ScriptEntry:
    if not isinstance(entry, Mapping):
        raise ScriptError(f"{where}: expected a mapping of reply fields, got {_kind(entry)}")
    fields: dict[str, Any] = {}
    for key, value in entry.items():
        name = str(key)
        check = _FIELD_CHECKS.get(name)
        if check is None:
            raise ScriptError(f"{where}: unknown field {name!r}{_suggestion(name)}")
        fields[name] = check(value, f"{where}.{name}")

    match = fields.pop("match", None)
    match_regex = fields.pop("match_regex", None)
    if match is not None and match_regex is not None:
        raise ScriptError(f"{where}: use 'match' or 'match_regex', not both")
    error = fields.pop("error", None)
    try:
        if error is not None:
            clash = sorted(set(fields) & _NOT_WITH_ERROR)
            if clash:
                raise ScriptError(f"{where}: 'error' cannot be combined with {clash}")
            reply = dataclasses.replace(Reply.error(**error), **fields)
        else:
            reply = Reply(**fields)
    except ValueError as err:  # Reply's own checks (fault names, status range, ...)
        if isinstance(err, ScriptError):
            raise
        raise ScriptError(f"{where}: {err}") from None
    return ScriptEntry(position, reply, match, match_regex)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    return type(value).__name__


def _fail(where: str, expected: str, value: Any) -> ScriptError:
    return ScriptError(f"{where}: expected {expected}, got {_kind(value)}")


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, "a string", value)
    return value


def _optional_string(value: Any, where: str) -> str | None:
    return None if value is None else _string(value, where)


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, "an integer", value)
    return value


def _optional_integer(value: Any, where: str) -> int | None:
    return None if value is None else _integer(value, where)


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, "a number of seconds", value)
    if value < 0:
        raise ScriptError(f"{where}: must not be negative, got {value}")
    return float(value)


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, "true or false", value)
    return value


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, "a mapping", value)
    return {str(key): item for key, item in value.items()}


def _optional_mapping(value: Any, where: str) -> dict[str, Any] | None:
    return None if value is None else _mapping(value, where)


def _body(value: Any, where: str) -> str | dict[str, Any] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return _mapping(value, where)
    raise _fail(where, "a string or a mapping", value)


def _headers(value: Any, where: str) -> dict[str, str]:
    headers = _mapping(value, where)
    for name, item in headers.items():
        # YAML reads `Retry-After: 1` as a number; a header value is text anyway.
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            headers[name] = str(item)
        elif not isinstance(item, str):
            raise _fail(f"{where}.{name}", "a string or a number", item)
    return headers


def _tool_calls(value: Any, where: str) -> tuple[ToolCall, ...]:
    if not isinstance(value, list):
        raise _fail(where, "a list of {name, arguments, id?}", value)
    calls = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise _fail(at, "a mapping with name and arguments", item)
        unknown = sorted(str(key) for key in item if key not in ("name", "arguments", "id"))
        if unknown:
            raise ScriptError(
                f"{at}: unknown field {unknown[0]!r}; a tool call has name, arguments, id"
            )
        if "name" not in item:
            raise ScriptError(f"{at}: missing field 'name'")
        arguments = item.get("arguments", {})
        if not isinstance(arguments, (str, Mapping)):
            raise _fail(f"{at}.arguments", "a mapping or a string", arguments)
        calls.append(
            ToolCall(
                name=_string(item["name"], f"{at}.name"),
                arguments=arguments if isinstance(arguments, str) else dict(arguments),
                id=_optional_string(item.get("id"), f"{at}.id"),
            )
        )
    return tuple(calls)


def _error(value: Any, where: str) -> dict[str, Any]:
    spec = _mapping(value, where)
    required = ("status", "code", "message")
    missing = [name for name in required if name not in spec]
    if missing:
        raise ScriptError(f"{where}: missing {missing} (an error has status, code, message)")
    allowed = {*required, "trace_id", "style"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ScriptError(f"{where}: unknown field {unknown[0]!r}; an error has {sorted(allowed)}")
    checked: dict[str, Any] = {
        "status": _integer(spec["status"], f"{where}.status"),
        "code": _string(spec["code"], f"{where}.code"),
        "message": _string(spec["message"], f"{where}.message"),
    }
    if "trace_id" in spec:
        checked["trace_id"] = _string(spec["trace_id"], f"{where}.trace_id")
    if "style" in spec:
        style = _string(spec["style"], f"{where}.style")
        if style not in ("ace", "moonshot"):
            raise ScriptError(f"{where}.style: expected 'ace' or 'moonshot', got {style!r}")
        checked["style"] = style
    return checked


def _match_text(value: Any, where: str) -> str:
    text = _string(value, where)
    if not text:
        raise ScriptError(f"{where}: must not be empty (it would match every request)")
    return text


def _match_regex(value: Any, where: str) -> re.Pattern[str]:
    pattern = _string(value, where)
    try:
        return re.compile(pattern)
    except re.error as err:
        raise ScriptError(f"{where}: not a valid regular expression: {err}") from None


# Every Reply field a script can set, and how its value is checked.
REPLY_FIELD_CHECKS: dict[str, Check] = {
    "content": _optional_string,
    "reasoning": _optional_string,
    "tool_calls": _tool_calls,
    "finish_reason": _optional_string,
    "usage": _optional_mapping,
    "model": _optional_string,
    "id": _optional_string,
    "created": _optional_integer,
    "status": _integer,
    "body": _body,
    "headers": _headers,
    "delay": _seconds,
    "chunk_size": _integer,
    "chunk_delay": _seconds,
    "fragment_tool_calls": _boolean,
    "usage_style": _string,
    "repeat_role": _boolean,
    "spaced_json": _boolean,
    "comments": _boolean,
    "crlf": _boolean,
    "repeat_finish": _boolean,
    "fault": _optional_string,
    "fault_after": _optional_integer,
    "stall": _seconds,
}
_FIELD_CHECKS: dict[str, Check] = {
    **REPLY_FIELD_CHECKS,
    "error": _error,
    "match": _match_text,
    "match_regex": _match_regex,
}
_NOT_WITH_ERROR = frozenset({"status", "body", "content", "reasoning", "tool_calls"})


def _suggestion(name: str) -> str:
    close = difflib.get_close_matches(name, list(_FIELD_CHECKS), n=1)
    known = ", ".join(sorted(_FIELD_CHECKS))
    return f" (did you mean {close[0]!r}?)" if close else f"; known fields: {known}"
