"""LangChain messages and call options -> a Kimi request body. Pure: no I/O.

Everything the service would refuse is refused here first, with a ``ValueError``
that names the message index and the bad part, so a bad call never costs a
request. The one rule this module exists for is the reasoning replay rule: with
thinking on, every assistant message that carries ``tool_calls`` must also carry
``reasoning_content``, or the service answers 400 "thinking is enabled but
reasoning_content is missing in assistant tool call message at index N"; kimi-k3 and
kimi-k2.7-code want it on *every* historical assistant message. Real reasoning
is replayed when the message has it; otherwise a placeholder keeps the field present.

What a known model takes comes from its :class:`~langchain_kimi._profiles.ModelRules`:
no image or video for a text-only model, no public image URL where the model
takes only base64 data URLs and ``ms://<file-id>`` references (kimi-k3).
Content blocks (this package's, LangChain's standard ones, and those other
providers' chat models write: Anthropic, OpenAI Responses) are converted by
:mod:`langchain_kimi._content`; this module assembles the messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_kimi._content import (
    ANY_MEDIA,
    MediaPolicy,
    assistant_content,
    reasoning_of_additional_kwargs,
    responses_tool_output_notes,
    tool_content,
    user_parts,
)
from langchain_kimi._profiles import ModelRules
from langchain_kimi._thinking import preserves_all

# What goes back as reasoning_content for a tool-call message that never had any
# (another model's turn, a hand-written few-shot example). The service only
# checks that the field is present; a blank keeps the model from reading invented
# thoughts. The same single space is what Kimi itself accepts as the content of a
# tool-call-only message (recorded second-turn request in the fixtures).
REASONING_PLACEHOLDER = " "
TOOL_ONLY_CONTENT = " "

_CHAT_MESSAGE_ROLES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "system": "system",
    "tool": "tool",
}


def build_request_body(
    messages: Sequence[BaseMessage],
    params: Mapping[str, Any],
    *,
    thinking_active: bool,
    rules: ModelRules | None = None,
) -> dict[str, Any]:
    """The JSON body for ``POST /chat/completions``.

    ``params`` holds only what is to be sent besides the messages (already
    filtered: unset parameters and those the model fixes are absent). The
    ``thinking`` flag in it is a ``bool`` and becomes Kimi's ``{"type": ...}``.
    ``rules`` are the model's (None for a model the client does not know):
    they decide which media the messages may carry and where reasoning goes back.

    >>> from langchain_core.messages import HumanMessage
    >>> build_request_body([HumanMessage("hi")], {"model": "kimi-k2.5"}, thinking_active=True)
    {'model': 'kimi-k2.5', 'messages': [{'role': 'user', 'content': 'hi'}]}
    """
    body: dict[str, Any] = {}
    for key, value in params.items():
        if key == "thinking" and isinstance(value, bool):
            body["thinking"] = {"type": "enabled" if value else "disabled"}
        else:
            body[key] = value
    media = MediaPolicy.for_model(str(params.get("model", "")), rules)
    # Preserved Thinking (keep "all") hands earlier reasoning to the model: all of it goes back.
    replay_all = (rules is not None and rules.reasoning_replay == "all") or preserves_all(
        body.get("thinking")
    )
    body["messages"] = convert_messages(
        messages, thinking_active=thinking_active, replay_all=replay_all, media=media
    )
    # Keep "model" first: easier to read in logs and recorded requests.
    return {"model": body.pop("model"), **body} if "model" in body else body


def convert_messages(
    messages: Sequence[BaseMessage],
    *,
    thinking_active: bool,
    replay_all: bool = False,
    media: MediaPolicy = ANY_MEDIA,
) -> list[dict[str, Any]]:
    """Convert a LangChain conversation to Kimi's ``messages`` list.

    ``replay_all``: every assistant message carries ``reasoning_content`` (the
    placeholder where it has none), not only tool-call messages while thinking.
    ``media``: which images and videos user messages may carry.

    One LangChain message can become several Kimi messages: Anthropic's
    ``tool_result`` blocks in a user message become ``tool`` messages, and
    images a tool returned follow its result in a user message.
    """
    if not messages:
        raise ValueError("messages must not be empty: Kimi needs at least one message")
    out = _Conversation()
    last = len(messages) - 1
    for index, message in enumerate(messages):
        if isinstance(message, HumanMessage):
            _add_user_message(out, message, index, media)
        elif isinstance(message, AIMessage):
            out.add(
                _assistant_message(
                    message,
                    index,
                    thinking_active=thinking_active,
                    is_last=index == last,
                    replay_all=replay_all,
                )
            )
        elif isinstance(message, ToolMessage):
            _add_tool_message(out, message, index, media)
        elif isinstance(message, SystemMessage):
            out.add(_with_name({"role": "system", "content": _plain_text(message, index)}, message))
        elif isinstance(message, ChatMessage):
            _add_chat_message(
                out, message, index, thinking_active, index == last, replay_all, media
            )
        else:
            raise ValueError(
                f"messages[{index}]: unsupported message type {type(message).__name__}; "
                "use SystemMessage, HumanMessage, AIMessage, ToolMessage or ChatMessage"
            )
    return out.finish()


class _Conversation:
    """The Kimi messages built so far, and the media tools returned, not yet sent.

    Kimi's tool messages carry text only; the images a tool returned go in a user
    message once the run of tool results ends (the service wants the results
    right after the call), ahead of the user's own parts when a user message follows.
    """

    __slots__ = ("messages", "tool_media")

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.tool_media: list[dict[str, Any]] = []

    def add(self, wire: dict[str, Any]) -> None:
        if self.tool_media:
            if wire["role"] == "user":
                content = wire["content"]
                own = [{"type": "text", "text": content}] if isinstance(content, str) else content
                wire["content"] = self._take_media() + own
            else:
                self.messages.append({"role": "user", "content": self._take_media()})
        self.messages.append(wire)

    def add_tool_result(
        self, call_id: str, text: str, media: list[dict[str, Any]], name: str | None = None
    ) -> None:
        wire: dict[str, Any] = {"role": "tool", "tool_call_id": call_id, "content": text}
        if name:
            wire["name"] = name
        self.messages.append(wire)
        if media:
            self.tool_media.append({"type": "text", "text": f"Returned by tool call {call_id}:"})
            self.tool_media.extend(media)

    def finish(self) -> list[dict[str, Any]]:
        if self.tool_media:
            self.messages.append({"role": "user", "content": self._take_media()})
        return self.messages

    def _take_media(self) -> list[dict[str, Any]]:
        media, self.tool_media = self.tool_media, []
        return media


def _add_chat_message(
    out: _Conversation,
    message: ChatMessage,
    index: int,
    thinking_active: bool,
    is_last: bool,
    replay_all: bool,
    media: MediaPolicy,
) -> None:
    role = _CHAT_MESSAGE_ROLES.get(message.role)
    if role is None:
        raise ValueError(
            f"messages[{index}]: unknown role {message.role!r}; "
            "Kimi accepts system, user, assistant and tool"
        )
    if role == "user":
        user = HumanMessage(content=message.content, name=message.name)
        _add_user_message(out, user, index, media)
    elif role == "assistant":
        out.add(
            _assistant_message(
                AIMessage(content=message.content, name=message.name),
                index,
                thinking_active=thinking_active,
                is_last=is_last,
                replay_all=replay_all,
            )
        )
    elif role == "system":
        out.add(_with_name({"role": "system", "content": _plain_text(message, index)}, message))
    else:
        raise ValueError(
            f"messages[{index}]: a tool message needs a tool_call_id: use ToolMessage, "
            "not ChatMessage(role='tool')"
        )


def _with_name(wire: dict[str, Any], message: BaseMessage) -> dict[str, Any]:
    if message.name:
        wire["name"] = message.name
    return wire


# --- user -------------------------------------------------------------------


def _add_user_message(
    out: _Conversation, message: BaseMessage, index: int, media: MediaPolicy
) -> None:
    content = message.content
    if isinstance(content, str):
        if not content.strip():
            raise ValueError(f"messages[{index}]: user message content is empty")
        out.add(_with_name({"role": "user", "content": content}, message))
        return
    parts, tool_results = user_parts(content, index, media)
    for result in tool_results:
        out.add_tool_result(result.call_id, result.text, result.media)
    if not parts:
        if tool_results:
            return  # a message of tool results only (Anthropic's form)
        raise ValueError(f"messages[{index}]: user message content is empty")
    if len(parts) == 1 and parts[0]["type"] == "text":
        # A single text part reads the same as a plain string and is cheaper to send.
        out.add(_with_name({"role": "user", "content": parts[0]["text"]}, message))
    else:
        out.add(_with_name({"role": "user", "content": parts}, message))


# --- assistant -----------------------------------------------------------------


def _assistant_message(
    message: AIMessage,
    index: int,
    *,
    thinking_active: bool,
    is_last: bool,
    replay_all: bool = False,
) -> dict[str, Any]:
    tool_calls = _wire_tool_calls(message, index)
    content = message.content
    pieces: list[str] = []
    if isinstance(content, str):
        text = content
    else:
        known_ids = {call["id"] for call in tool_calls}
        text, pieces, content_calls = assistant_content(content, index, known_ids)
        for position, call in enumerate(content_calls, start=len(tool_calls)):
            arguments = _valid_json_arguments(call.arguments)
            tool_calls.append(_wire_call(call.call_id, call.name, arguments, index, position))
    kwargs = message.additional_kwargs
    if "tool_outputs" in kwargs:  # OpenAI Responses built-in tools, kept aside by "v0"
        notes = "\n".join(responses_tool_output_notes(kwargs))
        text = f"{notes}\n\n{text}" if notes and text else notes or text
    reasoning = kwargs.get("reasoning_content")
    if not isinstance(reasoning, str):
        # Another provider's reasoning counts as reasoning: it goes back as Kimi's.
        reasoning = "\n\n".join(pieces) if pieces else reasoning_of_additional_kwargs(kwargs)
    partial = bool(kwargs.get("partial"))
    wire: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        wire["tool_calls"] = tool_calls
        if not text:
            wire["content"] = TOOL_ONLY_CONTENT
    elif not text and not partial:
        if not reasoning:
            raise ValueError(
                f"messages[{index}]: assistant message has no content and no tool calls"
            )
        wire["content"] = TOOL_ONLY_CONTENT  # a turn that only thought (cut off, say)
    if reasoning is not None:
        wire["reasoning_content"] = reasoning
    elif (tool_calls and thinking_active) or (replay_all and not partial):
        # A partial last message is the prefix of the answer to come, not history.
        wire["reasoning_content"] = REASONING_PLACEHOLDER
    if partial:
        if not is_last:
            raise ValueError(
                f"messages[{index}]: only the last message can be partial (Partial Mode)"
            )
        wire["partial"] = True
    return _with_name(wire, message)


def _wire_tool_calls(message: AIMessage, index: int) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for position, call in enumerate(message.tool_calls):
        try:
            arguments = json.dumps(call["args"], ensure_ascii=False)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"messages[{index}].tool_calls[{position}] ({call['name']!r}): "
                f"arguments are not JSON-serializable: {err}"
            ) from None
        calls.append(_wire_call(call.get("id"), call["name"], arguments, index, position))
    for position, bad in enumerate(message.invalid_tool_calls, start=len(calls)):
        # The service needs valid JSON arguments; wrap the unparsable text so the
        # turn (and the tool message answering it) can still go back.
        arguments = _valid_json_arguments(bad.get("args") or "")
        calls.append(_wire_call(bad.get("id"), bad.get("name") or "", arguments, index, position))
    return calls


def _valid_json_arguments(raw: str) -> str:
    try:
        json.loads(raw)
    except ValueError:
        return json.dumps({"invalid_arguments": raw}, ensure_ascii=False)
    return raw


def _wire_call(
    call_id: str | None, name: str, arguments: str, index: int, position: int
) -> dict[str, Any]:
    if not call_id:
        raise ValueError(
            f"messages[{index}].tool_calls[{position}] ({name!r}) has no id; "
            "Kimi matches tool results to calls by id"
        )
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# --- system and tool -------------------------------------------------------------


def _plain_text(message: BaseMessage, index: int) -> str:
    content = message.content
    if isinstance(content, str):
        text = content
    else:
        pieces: list[str] = []
        for position, block in enumerate(content):
            if isinstance(block, str):
                pieces.append(block)
            elif block.get("type") == "text":
                pieces.append(str(block.get("text", "")))
            else:
                raise ValueError(
                    f"messages[{index}].content[{position}]: only text is allowed in a "
                    f"{message.type} message, got {block.get('type')!r}"
                )
        text = "".join(pieces)
    if not text.strip():
        raise ValueError(f"messages[{index}]: {message.type} message content is empty")
    return text


def _add_tool_message(
    out: _Conversation, message: ToolMessage, index: int, media: MediaPolicy
) -> None:
    text, found = tool_content(message.content, f"messages[{index}].content", media)
    if message.status == "error" and not text.lower().startswith("error"):
        text = f"Error: {text}"
    out.add_tool_result(message.tool_call_id, text, found, message.name)
