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
"""

from __future__ import annotations

import base64
import binascii
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

from langchain_kimi._profiles import ModelRules
from langchain_kimi._thinking import preserves_all

# What goes back as reasoning_content for a tool-call message that never had any
# (another model's turn, a hand-written few-shot example). The service only
# checks that the field is present; a blank keeps the model from reading invented
# thoughts. The same single space is what Kimi itself accepts as the content of a
# tool-call-only message (recorded second-turn request in the fixtures).
REASONING_PLACEHOLDER = " "
TOOL_ONLY_CONTENT = " "

IMAGE_MIME_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif", "image/bmp"}
)
VIDEO_MIME_TYPES = frozenset({"video/mp4", "video/mpeg", "video/quicktime", "video/webm"})
# A file uploaded to Moonshot's file API, referenced instead of sent (ms://<file-id>).
FILE_REFERENCE_SCHEME = "ms://"

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


class MediaPolicy:
    """Which media a request's user messages may carry (for a model the client knows)."""

    # A plain class, not a dataclass: building a dataclass costs import time.
    __slots__ = ("images", "model", "public_image_urls", "videos")

    def __init__(
        self, model: str, images: bool = True, videos: bool = True, public_image_urls: bool = True
    ) -> None:
        self.model = model
        self.images = images
        self.videos = videos
        self.public_image_urls = public_image_urls

    @classmethod
    def for_model(cls, model: str, rules: ModelRules | None) -> MediaPolicy:
        if rules is None:
            return _ANY_MEDIA
        return cls(model, rules.image_inputs, rules.video_inputs, rules.public_image_urls)

    def check(self, kind: str, url: str | None, where: str) -> None:
        """``ValueError`` for media the model refuses; ``url`` is None for base64 data."""
        if kind == "image" and not self.images:
            raise ValueError(
                f"{where}: {self.model} takes text only and refuses images: remove the "
                "image, or use a model that reads images (kimi-k2.6, kimi-k3)"
            )
        if kind == "video" and not self.videos:
            raise ValueError(
                f"{where}: {self.model} refuses video input: remove the video, or use a "
                "model that reads video (kimi-k2.6, kimi-k3)"
            )
        if (
            kind == "image"
            and not self.public_image_urls
            and url is not None
            and url.startswith(("https://", "http://"))
        ):
            raise ValueError(
                f"{where}: {self.model} does not accept public image URLs: send the image "
                "as base64 (a data:image/...;base64 URL or a base64 image block), or upload "
                "it to Moonshot's file API and pass ms://<file-id>"
            )


_ANY_MEDIA = MediaPolicy("")


def convert_messages(
    messages: Sequence[BaseMessage],
    *,
    thinking_active: bool,
    replay_all: bool = False,
    media: MediaPolicy = _ANY_MEDIA,
) -> list[dict[str, Any]]:
    """Convert a LangChain conversation to Kimi's ``messages`` list.

    ``replay_all``: every assistant message carries ``reasoning_content`` (the
    placeholder where it has none), not only tool-call messages while thinking.
    ``media``: which images and videos user messages may carry.
    """
    if not messages:
        raise ValueError("messages must not be empty: Kimi needs at least one message")
    last = len(messages) - 1
    return [
        _convert_message(
            message,
            index,
            thinking_active=thinking_active,
            is_last=index == last,
            replay_all=replay_all,
            media=media,
        )
        for index, message in enumerate(messages)
    ]


def _convert_message(
    message: BaseMessage,
    index: int,
    *,
    thinking_active: bool,
    is_last: bool,
    replay_all: bool,
    media: MediaPolicy,
) -> dict[str, Any]:
    if isinstance(message, HumanMessage):
        return _user_message(message, index, media)
    if isinstance(message, AIMessage):
        return _assistant_message(
            message, index, thinking_active=thinking_active, is_last=is_last, replay_all=replay_all
        )
    if isinstance(message, SystemMessage):
        return _with_name({"role": "system", "content": _plain_text(message, index)}, message)
    if isinstance(message, ToolMessage):
        return _tool_message(message, index)
    if isinstance(message, ChatMessage):
        role = _CHAT_MESSAGE_ROLES.get(message.role)
        if role is None:
            raise ValueError(
                f"messages[{index}]: unknown role {message.role!r}; "
                "Kimi accepts system, user, assistant and tool"
            )
        if role == "user":
            return _user_message(
                HumanMessage(content=message.content, name=message.name), index, media
            )
        if role == "assistant":
            return _assistant_message(
                AIMessage(content=message.content, name=message.name),
                index,
                thinking_active=thinking_active,
                is_last=is_last,
                replay_all=replay_all,
            )
        if role == "system":
            return _with_name({"role": "system", "content": _plain_text(message, index)}, message)
        raise ValueError(
            f"messages[{index}]: a tool message needs a tool_call_id: use ToolMessage, "
            "not ChatMessage(role='tool')"
        )
    raise ValueError(
        f"messages[{index}]: unsupported message type {type(message).__name__}; "
        "use SystemMessage, HumanMessage, AIMessage, ToolMessage or ChatMessage"
    )


def _with_name(wire: dict[str, Any], message: BaseMessage) -> dict[str, Any]:
    if message.name:
        wire["name"] = message.name
    return wire


# --- user -------------------------------------------------------------------


def _user_message(message: BaseMessage, index: int, media: MediaPolicy) -> dict[str, Any]:
    content = message.content
    if isinstance(content, str):
        if not content.strip():
            raise ValueError(f"messages[{index}]: user message content is empty")
        return _with_name({"role": "user", "content": content}, message)
    converted = (_user_part(part, index, position, media) for position, part in enumerate(content))
    parts = [part for part in converted if part is not None]
    if not parts:
        raise ValueError(f"messages[{index}]: user message content is empty")
    if len(parts) == 1 and parts[0]["type"] == "text":
        # A single text part reads the same as a plain string and is cheaper to send.
        return _with_name({"role": "user", "content": parts[0]["text"]}, message)
    return _with_name({"role": "user", "content": parts}, message)


def _user_part(
    part: str | dict[str, Any], index: int, position: int, media: MediaPolicy
) -> dict[str, Any] | None:
    where = f"messages[{index}].content[{position}]"
    if isinstance(part, str):
        return {"type": "text", "text": part} if part.strip() else None
    if not isinstance(part, dict):
        raise ValueError(f"{where}: content parts must be strings or dicts")
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise ValueError(f"{where}: a text part needs a string 'text'")
        return {"type": "text", "text": text} if text.strip() else None
    if kind in ("image_url", "video_url"):
        ref = part.get(kind)
        url = ref.get("url") if isinstance(ref, dict) else ref
        if not isinstance(url, str) or not url:
            raise ValueError(f"{where}: {kind} part needs a URL")
        medium = "image" if kind == "image_url" else "video"
        _check_media_url(url, medium, where)
        media.check(medium, url, where)
        return {"type": kind, kind: {"url": url}}
    if kind in ("image", "video"):
        return _standard_media_block(part, kind, where, media)
    if kind in ("audio", "input_audio", "file", "document"):
        raise ValueError(f"{where}: {kind} parts are not supported by Kimi (text, image, video)")
    raise ValueError(f"{where}: unsupported content part type {kind!r}")


def _standard_media_block(
    part: Mapping[str, Any], kind: str, where: str, media: MediaPolicy
) -> dict[str, Any]:
    """LangChain's standard ``image``/``video`` blocks (v1 and the older v0 form)."""
    wire_type = f"{kind}_url"
    url = part.get("url")
    if part.get("source_type") == "url" and not url:
        url = part.get("data")
    if isinstance(url, str) and url:
        _check_media_url(url, kind, where)
        media.check(kind, url, where)
        return {"type": wire_type, wire_type: {"url": url}}
    data = part.get("base64")
    if data is None and part.get("source_type") == "base64":
        data = part.get("data")
    if isinstance(data, str) and data:
        mime = part.get("mime_type")
        if not isinstance(mime, str):
            raise ValueError(f"{where}: a base64 {kind} needs a mime_type")
        _check_mime(mime, kind, where)
        _check_base64(data, where)
        media.check(kind, None, where)
        return {"type": wire_type, wire_type: {"url": f"data:{mime};base64,{data}"}}
    if part.get("file_id") or part.get("id"):
        raise ValueError(f"{where}: {kind} by file id is not supported; pass a URL or base64")
    raise ValueError(f"{where}: an {kind} block needs 'url' or 'base64' with 'mime_type'")


def _check_media_url(url: str, kind: str, where: str) -> None:
    if url.startswith("data:"):
        header, sep, data = url.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ValueError(f"{where}: a data URL must be base64: data:<mime>;base64,<data>")
        _check_mime(header[5:-7], kind, where)
        _check_base64(data, where)
    elif not url.startswith(("https://", "http://", FILE_REFERENCE_SCHEME)):
        raise ValueError(
            f"{where}: {kind} URL must be http(s), a base64 data URL, or "
            f"{FILE_REFERENCE_SCHEME}<file-id> (a file uploaded to Moonshot)"
        )


def _check_mime(mime: str, kind: str, where: str) -> None:
    allowed = IMAGE_MIME_TYPES if kind == "image" else VIDEO_MIME_TYPES
    if mime.lower() not in allowed:
        raise ValueError(
            f"{where}: unsupported {kind} mime type {mime!r}; use one of {sorted(allowed)}"
        )


def _check_base64(data: str, where: str) -> None:
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where}: invalid base64 data") from None


# --- assistant -----------------------------------------------------------------


def _assistant_message(
    message: AIMessage,
    index: int,
    *,
    thinking_active: bool,
    is_last: bool,
    replay_all: bool = False,
) -> dict[str, Any]:
    text, block_reasoning = _assistant_text_and_reasoning(message, index)
    wire: dict[str, Any] = {"role": "assistant", "content": text}
    tool_calls = _wire_tool_calls(message, index)
    if tool_calls:
        wire["tool_calls"] = tool_calls
        if not text:
            wire["content"] = TOOL_ONLY_CONTENT
    elif not text and not message.additional_kwargs.get("partial"):
        raise ValueError(f"messages[{index}]: assistant message has no content and no tool calls")
    reasoning = message.additional_kwargs.get("reasoning_content")
    if not isinstance(reasoning, str):
        reasoning = block_reasoning
    partial = bool(message.additional_kwargs.get("partial"))
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


def _assistant_text_and_reasoning(message: AIMessage, index: int) -> tuple[str, str | None]:
    content = message.content
    if isinstance(content, str):
        return content, None
    texts: list[str] = []
    reasonings: list[str] = []
    for position, block in enumerate(content):
        if isinstance(block, str):
            texts.append(block)
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "reasoning":
            reasonings.append(str(block.get("reasoning", "")))
        elif kind in ("tool_call", "tool_call_chunk", "invalid_tool_call", "server_tool_call"):
            continue  # carried by message.tool_calls
        else:
            raise ValueError(
                f"messages[{index}].content[{position}]: assistant content of type {kind!r} "
                "cannot be sent to Kimi"
            )
    return "".join(texts), ("".join(reasonings) if reasonings else None)


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
        raw = bad.get("args") or ""
        try:
            json.loads(raw)
            arguments = raw
        except ValueError:
            arguments = json.dumps({"invalid_arguments": raw}, ensure_ascii=False)
        calls.append(_wire_call(bad.get("id"), bad.get("name") or "", arguments, index, position))
    return calls


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


def _tool_message(message: ToolMessage, index: int) -> dict[str, Any]:
    content = message.content
    if isinstance(content, str):
        text = content
    else:
        pieces = []
        for block in content:
            if isinstance(block, str):
                pieces.append(block)
            elif block.get("type") == "text":
                pieces.append(str(block.get("text", "")))
            else:
                # Tool results that are not text (images, files) go back as JSON
                # so the model still sees what the tool returned.
                pieces.append(json.dumps(block, ensure_ascii=False, default=str))
        text = "\n".join(pieces)
    if message.status == "error" and not text.lower().startswith("error"):
        text = f"Error: {text}"
    wire: dict[str, Any] = {"role": "tool", "tool_call_id": message.tool_call_id, "content": text}
    if message.name:
        wire["name"] = message.name
    return wire
