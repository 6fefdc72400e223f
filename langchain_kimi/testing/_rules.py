"""The service rules :class:`~langchain_kimi.testing.FakeKimiServer` enforces.

Each rule answers a broken request the way the real services do, so a client
bug shows up in tests as the same error a user would get in production.
Checked in this order; the first violation wins:

1. Authentication (Ace Data Cloud body, always checked when the server has an
   ``api_key``): no ``Authorization: Bearer <token>`` header, or an empty token
   -> 401 ``no_token``; another token -> 401 ``invalid_token``.
2. The body must be a JSON object -> else 400 Ace ``bad_request``.

Every rule below answers 400 with Moonshot's body
``{"error": {"message": ..., "type": "invalid_request_error"}}``:

3. ``model`` is a non-empty string; ``messages`` a non-empty list.
4. ``thinking``, when present, is ``{"type": "enabled" | "disabled"}``.
5. Messages: the role is ``system``, ``user``, ``assistant`` or ``tool``.
   ``system``/``user`` content is a non-empty string, or a non-empty list of
   parts (``text`` with a string ``text``; ``image_url``/``video_url`` with a
   string ``url``); a string that holds a JSON-encoded list is refused.
   ``assistant`` needs non-empty content (``" "`` is fine) or ``tool_calls``;
   each call has a string ``id``, ``type: "function"``, a ``function.name`` and
   ``function.arguments`` *as a JSON string*. ``tool`` needs a ``tool_call_id``
   naming a call of an earlier assistant message, and string content.
6. The reasoning replay rule: when the request thinks, every assistant message
   with ``tool_calls`` carries ``reasoning_content`` (a string, ``""`` allowed):
   ``thinking is enabled but reasoning_content is missing in assistant tool
   call message at index N``.
7. ``kimi-k2.5``/``kimi-k2.6`` fixed sampling: ``temperature`` 1.0 when thinking
   (0.6 when not), ``top_p`` 0.95, ``n`` 1, ``presence_penalty`` 0,
   ``frequency_penalty`` 0. Absent or ``null`` is fine; any other value is refused.
8. With thinking on, ``tool_choice`` is ``"auto"`` or ``"none"`` and the
   ``$web_search`` builtin function is not offered.
9. ``tools`` entries are ``function`` (with a name) or ``builtin_function``.
10. ``response_format`` type is ``"text"`` or ``"json_object"``; JSON mode is not
    combined with a ``partial`` assistant prefix.

Unknown top-level fields are accepted, as Ace's gateway passes them on.

Which requests think: ``kimi-k2.5``/``kimi-k2.6`` unless ``thinking`` is
disabled; ``kimi-k2-thinking*`` and ``kimi-k3*`` always; any other model only
with ``{"type": "enabled"}``. A provider prefix (``moonshotai/kimi-k2.5``) is
ignored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from langchain_kimi.testing._replies import Reply

_ROLES = frozenset({"system", "user", "assistant", "tool"})
_THINKS_BY_DEFAULT = ("kimi-k2.5", "kimi-k2.6")
_ALWAYS_THINKS = ("kimi-k2-thinking", "kimi-k3")
_PART_TYPES = ("text", "image_url", "video_url")
_RESPONSE_FORMATS = ("text", "json_object")


def model_family(model: object) -> str:
    """The model name without a provider prefix, lower-cased ("" if not a string)."""
    if not isinstance(model, str):
        return ""
    return model.rsplit("/", 1)[-1].lower()


def is_thinking(body: Mapping[str, Any]) -> bool:
    """Whether the service would think for this request (see the module docstring)."""
    family = model_family(body.get("model"))
    thinking = body.get("thinking")
    mode = thinking.get("type") if isinstance(thinking, Mapping) else None
    if family.startswith(_ALWAYS_THINKS):
        return True
    if family.startswith(_THINKS_BY_DEFAULT):
        return mode != "disabled"
    return mode == "enabled"


def check_auth(authorization: str | None, api_key: str | None) -> Reply | None:
    """The 401 answer for a missing or wrong bearer token, or None when accepted."""
    if api_key is None:
        return None
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if not token:
        return Reply.error(
            401, "no_token", "No token was provided: send 'Authorization: Bearer <token>'."
        )
    if scheme.lower() != "bearer" or token != api_key:
        return Reply.error(401, "invalid_token", "The specified token is invalid or wrong.")
    return None


def invalid_request(message: str) -> Reply:
    """A 400 with Moonshot's ``invalid_request_error`` body."""
    return Reply.error(400, "invalid_request_error", message, style="moonshot")


def check_request(body: Any) -> Reply | None:
    """The 400 answer for the first rule the request body breaks, or None."""
    if not isinstance(body, Mapping):
        return Reply.error(400, "bad_request", "The request body must be a JSON object.")
    problem = _find_problem(body)
    return invalid_request(problem) if problem is not None else None


def _find_problem(body: Mapping[str, Any]) -> str | None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return "model is required and must be a non-empty string"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages is required and must be a non-empty list"
    if "thinking" in body and body["thinking"] is not None:
        thinking = body["thinking"]
        if not isinstance(thinking, Mapping) or thinking.get("type") not in ("enabled", "disabled"):
            return 'thinking must be {"type": "enabled"} or {"type": "disabled"}'
    thinking_on = is_thinking(body)
    return (
        _check_messages(messages, thinking_on)
        or _check_fixed_sampling(body, thinking_on)
        or _check_tools(body, thinking_on)
        or _check_response_format(body, messages)
    )


def _check_messages(messages: list[Any], thinking_on: bool) -> str | None:
    # Ids of tool calls made so far: a tool message may only answer one of them,
    # since the service pairs results with calls by id.
    call_ids: set[str] = set()
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping):
            return f"{where} must be an object"
        role = message.get("role")
        if role not in _ROLES:
            return f"{where}.role {role!r} is not one of system, user, assistant, tool"
        if role in ("system", "user"):
            problem = _check_content(where, message.get("content"))
        elif role == "assistant":
            problem = _check_assistant(where, message, call_ids)
            if problem is None and message.get("tool_calls") and thinking_on:
                reasoning = message.get("reasoning_content")
                if not isinstance(reasoning, str):
                    return (
                        "thinking is enabled but reasoning_content is missing in assistant "
                        f"tool call message at index {index}"
                    )
        else:
            problem = _check_tool_message(where, message, call_ids)
        if problem is not None:
            return problem
    return None


def _check_content(where: str, content: Any) -> str | None:
    if isinstance(content, str):
        if not content:
            return f"{where}.content must not be empty"
        if _is_json_list(content):
            return (
                f"{where}.content is a JSON-encoded list in a string: "
                "send the content parts as a list, not as text"
            )
        return None
    if isinstance(content, list):
        if not content:
            return f"{where}.content must not be an empty list"
        for part_index, part in enumerate(content):
            problem = _check_part(f"{where}.content[{part_index}]", part)
            if problem is not None:
                return problem
        return None
    if content is None:
        return f"{where}.content must not be empty"
    return f"{where}.content must be a string or a list of content parts"


def _is_json_list(text: str) -> bool:
    stripped = text.strip()
    if not (stripped.startswith("[") and stripped.endswith("]")):
        return False
    try:
        return isinstance(json.loads(stripped), list)
    except ValueError:
        return False


def _check_part(where: str, part: Any) -> str | None:
    if not isinstance(part, Mapping):
        return f"{where} must be an object"
    kind = part.get("type")
    if kind == "text":
        return None if isinstance(part.get("text"), str) else f"{where}.text must be a string"
    if kind in ("image_url", "video_url"):
        target = part.get(kind)
        url = target.get("url") if isinstance(target, Mapping) else None
        if not isinstance(url, str) or not url:
            return f"{where}.{kind}.url must be a non-empty string"
        return None
    return f"{where}.type {kind!r} is not one of {', '.join(_PART_TYPES)}"


def _check_assistant(where: str, message: Mapping[str, Any], call_ids: set[str]) -> str | None:
    tool_calls = message.get("tool_calls")
    content = message.get("content")
    if tool_calls is not None:
        if not isinstance(tool_calls, list):
            return f"{where}.tool_calls must be a list"
        for call_index, call in enumerate(tool_calls):
            problem = _check_tool_call(f"{where}.tool_calls[{call_index}]", call)
            if problem is not None:
                return problem
            call_ids.add(call["id"])
    if not tool_calls and (content is None or content == "" or content == []):
        return f"{where}: an assistant message needs content or tool_calls"
    if content is not None and not isinstance(content, (str, list)):
        return f"{where}.content must be a string, a list of parts or null"
    return None


def _check_tool_call(where: str, call: Any) -> str | None:
    if not isinstance(call, Mapping):
        return f"{where} must be an object"
    if not isinstance(call.get("id"), str) or not call["id"]:
        return f"{where}.id must be a non-empty string"
    if call.get("type") != "function":
        return f'{where}.type must be "function"'
    function = call.get("function")
    if not isinstance(function, Mapping):
        return f"{where}.function must be an object"
    if not isinstance(function.get("name"), str) or not function["name"]:
        return f"{where}.function.name must be a non-empty string"
    if not isinstance(function.get("arguments"), str):
        return f"{where}.function.arguments must be a JSON-encoded string"
    return None


def _check_tool_message(where: str, message: Mapping[str, Any], call_ids: set[str]) -> str | None:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        return f"{where}.tool_call_id is required for a tool message"
    if call_id not in call_ids:
        return (
            f"{where}.tool_call_id {call_id!r} does not match any tool call "
            "of a preceding assistant message"
        )
    if not isinstance(message.get("content"), str):
        return f"{where}.content of a tool message must be a string"
    return None


def _fixed_sampling(thinking_on: bool) -> dict[str, float]:
    return {
        "temperature": 1.0 if thinking_on else 0.6,
        "top_p": 0.95,
        "n": 1,
        "presence_penalty": 0,
        "frequency_penalty": 0,
    }


def _check_fixed_sampling(body: Mapping[str, Any], thinking_on: bool) -> str | None:
    family = model_family(body.get("model"))
    if not family.startswith(_THINKS_BY_DEFAULT):
        return None
    for name, allowed in _fixed_sampling(thinking_on).items():
        value = body.get(name)
        if value is None:
            continue
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not is_number or not math.isclose(value, allowed, abs_tol=1e-9):
            mode = "enabled" if thinking_on else "disabled"
            return (
                f"invalid {name}: only {allowed} is allowed for {family} "
                f"when thinking is {mode} (got {value!r})"
            )
    return None


def _check_tools(body: Mapping[str, Any], thinking_on: bool) -> str | None:
    tool_choice = body.get("tool_choice")
    if thinking_on and tool_choice is not None and tool_choice not in ("auto", "none"):
        return (
            f"tool_choice {json.dumps(tool_choice)} is incompatible with thinking enabled: "
            'only "auto" and "none" are allowed'
        )
    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        return "tools must be a list"
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, Mapping):
            return f"{where} must be an object"
        function = tool.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if tool.get("type") == "function":
            if not isinstance(name, str) or not name:
                return f"{where}.function.name must be a non-empty string"
        elif tool.get("type") == "builtin_function":
            if name == "$web_search" and thinking_on:
                return "the $web_search builtin function is not supported when thinking is enabled"
        else:
            return f'{where}.type must be "function" or "builtin_function"'
    return None


def _check_response_format(body: Mapping[str, Any], messages: list[Any]) -> str | None:
    response_format = body.get("response_format")
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind not in _RESPONSE_FORMATS:
        return f'invalid response_format type {kind!r}: only "text" and "json_object" are supported'
    last = messages[-1]
    if kind == "json_object" and isinstance(last, Mapping) and last.get("partial") is True:
        return "partial mode cannot be combined with response_format json_object"
    return None
