"""The service rules :class:`~langchain_kimi.testing.FakeKimiServer` enforces.

Each rule answers a broken request the way the real services do, so a client
bug shows up in tests as the same error a user would get in production. What
each model accepts comes from the simulator's own table,
:mod:`langchain_kimi.testing._models`. Checked in this order; the first
violation wins:

1. Authentication (always checked when the server has an ``api_key``): no
   ``Authorization: Bearer <token>`` header, or an empty token -> 401
   ``no_token``; another token -> 401 ``invalid_token`` (Ace Data Cloud's
   body). Playing Moonshot: 401 ``{"error": {"message": "Incorrect API key
   provided", "type": "incorrect_api_key_error"}}`` for both.
2. The body must be a JSON object -> else 400 Ace ``bad_request``.
3. ``model`` is a non-empty string (400), and a model the service serves,
   matched exactly: another name, a vendor prefix (``moonshotai/kimi-k2.5``) or
   another case (``Kimi-K2.5``) -> 404 ``{"error": {"message": "Not found the
   model <name> or Permission denied", "type": "resource_not_found_error"}}``.

Every rule below answers 400 with Moonshot's body
``{"error": {"message": ..., "type": "invalid_request_error"}}``:

4. ``messages`` is a non-empty list; ``thinking``, when present, is
   ``{"type": "enabled" | "disabled"}``, with ``keep`` only where the model has
   it: kimi-k2.6 and the kimi-k2.7-code models take ``null`` or ``"all"``
   (omitted is fine), kimi-k2.5 refuses any ``keep`` (other models: not
   checked, nothing is documented). kimi-k3 refuses a ``thinking`` field
   outright: the reference says it "does not support the thinking parameter"
   and that one "should not" pass it, without saying whether the service
   answers 400 or ignores it; the simulator takes the strict reading, so a
   client that sends it fails here.
5. Messages: the role is ``system``, ``user``, ``assistant`` or ``tool``.
   ``system``/``user`` content is a non-empty string, or a non-empty list of
   parts (``text`` with a string ``text``; ``image_url``/``video_url`` with a
   string ``url``); a string that holds a JSON-encoded list is refused.
   ``assistant`` needs non-empty content (``" "`` is fine) or ``tool_calls``;
   each call has a string ``id``, ``type: "function"``, a ``function.name`` and
   ``function.arguments`` *as a JSON string*. ``tool`` needs a ``tool_call_id``
   naming a call of an earlier assistant message, and string content.
6. Media: a text-only model (the kimi-k2 series) refuses image and video
   parts; kimi-k3 refuses images by public ``http(s)`` URL (base64 data URLs
   and ``ms://<file-id>`` are fine).
7. The reasoning replay rule: when the request thinks, every assistant message
   with ``tool_calls`` carries ``reasoning_content`` (a string, ``""`` allowed):
   ``thinking is enabled but reasoning_content is missing in assistant tool
   call message at index N``. kimi-k3 and kimi-k2.7-code want it on *every*
   assistant message of the history (a ``partial`` prefix excepted):
   ``... missing in assistant message at index N``.
8. Fixed sampling: ``kimi-k2.5``/``kimi-k2.6`` take ``temperature`` 1.0 when
   thinking (0.6 when not), ``top_p`` 0.95, ``n`` 1, ``presence_penalty`` 0,
   ``frequency_penalty`` 0; ``kimi-k2.7-code`` the thinking values. Absent or
   ``null`` is fine; any other value is refused.
9. With thinking on, ``tool_choice`` is ``"auto"`` or ``"none"`` (kimi-k3 also
   accepts ``"required"``; a named tool is always refused) and the
   ``$web_search`` builtin function is not offered. kimi-k2.6, the
   kimi-k2.7-code models and kimi-k2-thinking* refuse a forced choice
   (``"required"``, a named tool) in every mode, thinking disabled included.
10. ``tools`` entries are ``function`` (with a name) or ``builtin_function``.
11. ``response_format`` type is ``"text"`` or ``"json_object"``; playing
    Moonshot also ``"json_schema"`` with ``json_schema: {"name": <string>,
    "schema": <object>, "strict"?: <bool>}``. JSON modes are not combined with a
    ``partial`` assistant prefix.

Unknown top-level fields are accepted, as Ace's gateway passes them on.

Which requests think: ``kimi-k2.5``, ``kimi-k2.6`` and ``kimi-k2.8-preview``
unless ``thinking`` is disabled; ``kimi-k3``, ``kimi-k2-thinking*`` and
``kimi-k2.7-code*`` always; the instruct and preview models never, whatever the
switch says (they answer without reasoning).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Literal

from langchain_kimi.testing._models import ServedModel, not_found_message, served_model
from langchain_kimi.testing._replies import Reply

Flavor = Literal["acedata", "moonshot"]
FLAVORS: tuple[Flavor, ...] = ("acedata", "moonshot")

_ROLES = frozenset({"system", "user", "assistant", "tool"})
_PART_TYPES = ("text", "image_url", "video_url")
_UNFORCED = ("auto", "none")
_RESPONSE_FORMATS: dict[Flavor, tuple[str, ...]] = {
    "acedata": ("text", "json_object"),
    "moonshot": ("text", "json_object", "json_schema"),
}


def is_thinking(body: Mapping[str, Any]) -> bool:
    """Whether the service would think for this request (see the module docstring)."""
    thinking = body.get("thinking")
    mode = thinking.get("type") if isinstance(thinking, Mapping) else None
    model = served_model(body.get("model"))
    if model is None:
        return mode == "enabled"  # only reached with enforce_rules=False
    if model.thinking == "always":
        return True
    if model.thinking == "never":
        return False
    return mode != "disabled"


def check_auth(
    authorization: str | None, api_key: str | None, flavor: Flavor = "acedata"
) -> Reply | None:
    """The 401 answer for a missing or wrong bearer token, or None when accepted."""
    if api_key is None:
        return None
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if token and scheme.lower() == "bearer" and token == api_key:
        return None
    if flavor == "moonshot":
        return Reply.error(
            401, "incorrect_api_key_error", "Incorrect API key provided", style="moonshot"
        )
    if not token:
        return Reply.error(
            401, "no_token", "No token was provided: send 'Authorization: Bearer <token>'."
        )
    return Reply.error(401, "invalid_token", "The specified token is invalid or wrong.")


def invalid_request(message: str) -> Reply:
    """A 400 with Moonshot's ``invalid_request_error`` body."""
    return Reply.error(400, "invalid_request_error", message, style="moonshot")


def check_request(body: Any, flavor: Flavor = "acedata") -> Reply | None:
    """The 400 (or 404) answer for the first rule the request body breaks, or None."""
    if not isinstance(body, Mapping):
        return Reply.error(400, "bad_request", "The request body must be a JSON object.")
    name = body.get("model")
    if not isinstance(name, str) or not name:
        return invalid_request("model is required and must be a non-empty string")
    model = served_model(name)
    if model is None:
        return Reply.error(
            404, "resource_not_found_error", not_found_message(name), style="moonshot"
        )
    problem = _find_problem(body, name, model, flavor)
    return invalid_request(problem) if problem is not None else None


def _find_problem(
    body: Mapping[str, Any], name: str, model: ServedModel, flavor: Flavor
) -> str | None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages is required and must be a non-empty list"
    problem = _check_thinking_field(body, name, model)
    if problem is not None:
        return problem
    thinking_on = is_thinking(body)
    return (
        _check_messages(messages, thinking_on, name, model)
        or _check_fixed_sampling(body, thinking_on, name, model)
        or _check_tools(body, thinking_on, model)
        or _check_response_format(body, messages, flavor)
    )


def _check_thinking_field(body: Mapping[str, Any], name: str, model: ServedModel) -> str | None:
    if "thinking" not in body:
        return None
    if not model.takes_thinking_field:
        return (
            f"model {name} does not support the thinking parameter: remove it "
            "(the model always thinks; use reasoning_effort to set how much)"
        )
    thinking = body["thinking"]
    if thinking is None:
        return None
    if not isinstance(thinking, Mapping) or thinking.get("type") not in ("enabled", "disabled"):
        return 'thinking must be {"type": "enabled"} or {"type": "disabled"}'
    if "keep" not in thinking or model.thinking_keep is None:
        return None
    keep = thinking["keep"]
    if not model.thinking_keep:
        return f"model {name} does not support thinking.keep (Preserved Thinking)"
    if keep not in model.thinking_keep:
        accepted = ", ".join(json.dumps(value) for value in model.thinking_keep)
        return f"invalid thinking.keep {json.dumps(keep)} for {name}: only {accepted} allowed"
    return None


def _check_messages(
    messages: list[Any], thinking_on: bool, name: str, model: ServedModel
) -> str | None:
    # Ids of tool calls made so far: a tool message may only answer one of them,
    # since the service pairs results with calls by id.
    call_ids: set[str] = set()
    last = len(messages) - 1
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping):
            return f"{where} must be an object"
        role = message.get("role")
        if role not in _ROLES:
            return f"{where}.role {role!r} is not one of system, user, assistant, tool"
        if role in ("system", "user"):
            problem = _check_content(where, message.get("content"))
            if problem is None and role == "user":
                problem = _check_media(where, message.get("content"), name, model)
        elif role == "assistant":
            problem = _check_assistant(where, message, call_ids)
            if problem is None and thinking_on:
                problem = _check_replayed_reasoning(
                    message, index, every_turn=model.replay_every_turn, is_last=index == last
                )
        else:
            problem = _check_tool_message(where, message, call_ids)
        if problem is not None:
            return problem
    return None


def _check_replayed_reasoning(
    message: Mapping[str, Any], index: int, *, every_turn: bool, is_last: bool
) -> str | None:
    if isinstance(message.get("reasoning_content"), str):
        return None
    if message.get("tool_calls"):
        return (
            "thinking is enabled but reasoning_content is missing in assistant "
            f"tool call message at index {index}"
        )
    prefix = is_last and message.get("partial") is True
    if every_turn and not prefix:
        return (
            "thinking is enabled but reasoning_content is missing in assistant "
            f"message at index {index}: this model needs the reasoning_content of every "
            "historical assistant message kept as-is"
        )
    return None


def _check_media(where: str, content: Any, name: str, model: ServedModel) -> str | None:
    if not isinstance(content, list):
        return None
    for part_index, part in enumerate(content):
        kind = part.get("type")
        if kind == "image_url" and not model.images:
            return f"{where}.content[{part_index}]: model {name} does not support image input"
        if kind == "video_url" and not model.videos:
            return f"{where}.content[{part_index}]: model {name} does not support video input"
        if kind == "image_url" and not model.public_image_urls:
            url = part["image_url"]["url"]
            if url.lower().startswith(("http://", "https://")):
                return (
                    f"{where}.content[{part_index}]: model {name} does not accept image URLs; "
                    "send the image as base64 or as ms://<file-id>"
                )
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


def _check_fixed_sampling(
    body: Mapping[str, Any], thinking_on: bool, name: str, model: ServedModel
) -> str | None:
    fixed = model.sampling_when_thinking if thinking_on else model.sampling_when_instant
    for parameter, allowed in fixed.items():
        value = body.get(parameter)
        if value is None:
            continue
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not is_number or not math.isclose(value, allowed, abs_tol=1e-9):
            mode = "enabled" if thinking_on else "disabled"
            return (
                f"invalid {parameter}: only {allowed} is allowed for {name} "
                f"when thinking is {mode} (got {value!r})"
            )
    return None


def _check_tools(body: Mapping[str, Any], thinking_on: bool, model: ServedModel) -> str | None:
    tool_choice = body.get("tool_choice")
    accepted = model.tool_choice_while_thinking
    if thinking_on and tool_choice is not None and tool_choice not in accepted:
        return (
            f"tool_choice {json.dumps(tool_choice)} is incompatible with thinking enabled: "
            f"only {', '.join(json.dumps(value) for value in accepted)} are allowed"
        )
    if model.forced_choice_refused and tool_choice is not None and tool_choice not in _UNFORCED:
        return (
            f"tool_choice {json.dumps(tool_choice)} is not supported by this model: "
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
        tool_name = function.get("name") if isinstance(function, Mapping) else None
        if tool.get("type") == "function":
            if not isinstance(tool_name, str) or not tool_name:
                return f"{where}.function.name must be a non-empty string"
        elif tool.get("type") == "builtin_function":
            if tool_name == "$web_search" and thinking_on:
                return "the $web_search builtin function is not supported when thinking is enabled"
        else:
            return f'{where}.type must be "function" or "builtin_function"'
    return None


def _check_response_format(
    body: Mapping[str, Any], messages: list[Any], flavor: Flavor
) -> str | None:
    response_format = body.get("response_format")
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    accepted = _RESPONSE_FORMATS[flavor]
    if kind not in accepted:
        return (
            f"invalid response_format type {kind!r}: only "
            f"{', '.join(json.dumps(value) for value in accepted)} are supported"
        )
    if kind == "json_schema":
        problem = _check_json_schema_format(response_format.get("json_schema"))
        if problem is not None:
            return problem
    last = messages[-1]
    if kind != "text" and isinstance(last, Mapping) and last.get("partial") is True:
        return f"partial mode cannot be combined with response_format {kind}"
    return None


def _check_json_schema_format(spec: Any) -> str | None:
    if not isinstance(spec, Mapping):
        return "response_format.json_schema must be an object"
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        return "response_format.json_schema.name must be a non-empty string"
    if not isinstance(spec.get("schema"), Mapping):
        return "response_format.json_schema.schema must be a JSON schema object"
    if "strict" in spec and not isinstance(spec["strict"], bool):
        return "response_format.json_schema.strict must be a boolean"
    return None
