"""Token counting: a local estimate of the prompt tokens Kimi bills for a request. Pure.

``ChatKimi.get_num_tokens_from_messages`` builds the request body with the code
that builds a real request (``_payload``), so what is counted is what would be
sent: reasoning replayed on assistant turns, tool calls, tool schemas, images.
:func:`estimate_request_tokens` then reads that body the way Kimi lays a request
out for the model, and prices the text with :func:`estimate_text_tokens`. No
tokenizer, no network, no dependency: Kimi's tokenizer (a 163,840-entry
byte-level BPE) is not something a chat client should ship.

Where each figure comes from (``docs/tokens.md`` has the measured accuracy):

- The layout: the chat template published with the open-weights Kimi models
  (K2, K2.5 and later). Each message is ``<|im_user|>user<|im_middle|>...<|im_end|>``
  (4 tokens around the content); the answer starts with
  ``<|im_assistant|>assistant<|im_middle|>`` and, on the models that write
  reasoning in ``<think>`` tags, an opening tag (or an empty pair when thinking
  is off); a request without a system message gets a default one (not
  kimi-k2.7-code); tools are declared in one system turn, as compact JSON on the
  K2 series and as TypeScript-style declarations from K2.5 on; a tool result
  starts with ``## Return of <call id>``; reasoning of turns before the last user
  message is left out unless the model preserves thinking (kimi-k3,
  kimi-k2.7-code, ``thinking.keep="all"``). None of these were fitted: with
  them, every recorded exchange in ``tests/fixtures/recorded`` is matched to
  within 5% (the test suite holds each to that bound).
- Text: the tokenizer first cuts text into runs (Han characters, words with one
  leading space or symbol, numbers of up to three digits, symbol runs,
  whitespace); this module cuts text the same way and prices each run. An
  English word of up to 10 letters is one token and ASCII symbols go two to a
  token: values chosen before looking at the data, and kept after it (on the
  recordings, 10 letters is best for the prompts and 12 for the answers, so the
  data cannot choose; symbols at 1.5 or 3 a token put the worst prompt 14% and
  13% off). One choice was made on the data: a line break after symbols is a
  token of its own.
- Chinese, Japanese and Korean are NOT measured: the recordings hold none. Han
  characters count 0.65 tokens each (DeepSeek documents 0.6 for its bilingual
  tokenizer of similar size; a third-party comparison found Kimi's slightly
  more frugal than Qwen's on Chinese; 0.65 leans to the safe side), kana and
  Hangul 1 token each; words in other scripts or with accents one token more
  than their length says. Expect a larger error there.
- Images: the open-weights vision encoder's preprocessing (14-pixel patches
  merged 2x2, so one token per 28x28 pixels; larger images are scaled down to
  16,384 patches, about 4,096 tokens, and 512 patches a side), the size read
  from the image's header.
  Moonshot documents only that images are priced "dynamically" by resolution,
  and offers its estimate endpoint. An image given by URL or ``ms://`` id has
  no size here: a 1024x1024 image is assumed (1,369 tokens). A video is
  assumed to be a 10-second clip (5,120 tokens): an assumption, no more.

Usage::

    estimate_text_tokens("Hello, world")  # 3
    estimate_request_tokens({"model": "kimi-k2.5", "messages": [{"role": "user", "content": "hi"}]})
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_kimi._image_size import image_size
from langchain_kimi._profiles import model_thinks, resolve_model

# --- text ---------------------------------------------------------------------

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_KANA_HANGUL = "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\uac00-\ud7af"
# The runs the tokenizer cuts text into before merging, in its order of preference.
_RUNS = re.compile(
    rf"(?P<han>[{_HAN}]+)"
    rf"|(?P<syllabic>[{_KANA_HANGUL}]+)"
    # A word: letters (not Han, kana or Hangul), with at most one space or symbol before.
    rf"|(?P<word>[^\r\n\w]?[^\W\d_{_HAN}{_KANA_HANGUL}]+)"
    r"|(?P<number>\d{1,3})"
    r"|(?P<symbols> ?(?:[^\s\w]|_)+[\r\n]*)"
    r"|(?P<space>\s+)"
)
HAN_TOKENS_PER_CHAR = 0.65
KANA_HANGUL_TOKENS_PER_CHAR = 1.0
# A word of up to this many letters is one token; longer words one more per 5 letters.
WORD_LETTERS_PER_TOKEN = 10
LONG_WORD_LETTERS_PER_EXTRA_TOKEN = 5
# ASCII symbols merge in pairs (", ":", "},", "//"); other symbols (emoji, ©) cost one each.
SYMBOLS_PER_TOKEN = 2
SPACES_PER_TOKEN = 16


@functools.lru_cache(maxsize=4096)
def _text_cost(text: str) -> float:
    # Cached: trim_messages and the summarization middleware count the same
    # messages again and again while they search for a cut.
    cost = 0.0
    for run in _RUNS.finditer(text):
        kind = run.lastgroup
        piece = run.group()
        if kind == "word":
            cost += _word_cost(piece)
        elif kind == "number":
            cost += 1
        elif kind == "symbols":
            symbols = piece.strip(" \r\n")
            ascii_symbols = sum(1 for char in symbols if char.isascii())
            cost += math.ceil(ascii_symbols / SYMBOLS_PER_TOKEN) + len(symbols) - ascii_symbols
            if piece[-1] in "\r\n":
                # The one choice made on the recordings: a line break after symbols
                # ("{\n", ";\n") as a token of its own, not merged (worst prompt
                # error -9% merged, -5% apart).
                cost += 1
        elif kind == "space":
            cost += math.ceil(len(piece) / SPACES_PER_TOKEN)
        elif kind == "han":
            cost += len(piece) * HAN_TOKENS_PER_CHAR
        else:
            cost += len(piece) * KANA_HANGUL_TOKENS_PER_CHAR
    return cost


def _word_cost(word: str) -> int:
    letters = len(word) if word[0].isalpha() else len(word) - 1
    cost = 1
    if letters > WORD_LETTERS_PER_TOKEN:
        cost += math.ceil((letters - WORD_LETTERS_PER_TOKEN) / LONG_WORD_LETTERS_PER_EXTRA_TOKEN)
    if not word.isascii():
        # Accented and non-Latin letters have fewer merges in the vocabulary ("Olá" is 2).
        cost += 1
    return cost


def estimate_text_tokens(text: str) -> int:
    """Estimated tokens of ``text`` alone, without any message around it.

    >>> estimate_text_tokens("You are a helpful assistant")
    5
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return math.ceil(_text_cost(text))


# --- the request layout -----------------------------------------------------------

# <|im_user|> (or im_system, im_assistant), <|im_middle|>, <|im_end|>; the role's
# name ("user", or the message's name) sits between the first two.
MESSAGE_FRAME = 3
# The answer's start: <|im_assistant|>assistant<|im_middle|>.
ANSWER_START = 3
# <|im_system|>tool_declare<|im_middle|> ... <|im_end|>.
TOOL_DECLARATION_FRAME = 5
# <|tool_calls_section_begin|> ... <|tool_calls_section_end|>, and per call
# <|tool_call_begin|>id<|tool_call_argument_begin|>arguments<|tool_call_end|>.
TOOL_CALLS_SECTION = 2
TOOL_CALL_FRAME = 3
TOOL_RESULT_HEADER = "## Return of {id}\n"
THINK_TAGS = 2
DEFAULT_SYSTEM_PROMPT = "You are Kimi, an AI assistant created by Moonshot AI."
# <|media_begin|>image<|media_content|> ... <|media_end|> around the image's tokens.
MEDIA_FRAME = 5

# The vision encoder: 14-pixel patches, merged 2x2 into one token.
PATCH_PIXELS = 14
MERGED_PATCHES = 2
MAX_PATCHES = 16_384
MAX_PATCHES_PER_SIDE = 512
ASSUMED_IMAGE_SIZE = (1024, 1024)
# A 10-second clip: two frames a second, four frames merged into one group of
# at most 1,024 tokens. Nothing published backs a figure for the hosted service.
ASSUMED_VIDEO_TOKENS = 5_120
# Enough of a base64 image to reach the size in any header worth the name
# (JPEG's can come after 64 KB of EXIF data).
_HEADER_BASE64_CHARS = 128 * 1024


class ChatFormat:
    """How a model's chat template lays out a request (what :func:`chat_format` knows)."""

    __slots__ = ("default_system_prompt", "keeps_all_reasoning", "think_tags", "typescript_tools")

    def __init__(
        self,
        *,
        typescript_tools: bool,
        default_system_prompt: bool,
        think_tags: bool,
        keeps_all_reasoning: bool,
    ) -> None:
        self.typescript_tools = typescript_tools
        """Tools declared in TypeScript style (K2.5 on), not as JSON (the K2 series)."""
        self.default_system_prompt = default_system_prompt
        """A request without a system message gets the template's own."""
        self.think_tags = think_tags
        """Assistant turns carry ``<think>`` tags (the reasoning models)."""
        self.keeps_all_reasoning = keeps_all_reasoning
        """Reasoning of every earlier turn reaches the model (Preserved Thinking)."""


# A model the client does not know: the heavier choice everywhere, so that a
# budget computed from it errs on the safe side.
_UNKNOWN_FORMAT = ChatFormat(
    typescript_tools=False, default_system_prompt=True, think_tags=True, keeps_all_reasoning=True
)


def chat_format(model: str) -> ChatFormat:
    """The layout of ``model``'s requests, by the catalogue name it resolves to."""
    rules = resolve_model(model)
    if rules is None:
        return _UNKNOWN_FORMAT
    if rules.name.startswith("kimi-k2-"):
        return ChatFormat(
            typescript_tools=False,
            default_system_prompt=True,
            think_tags=rules.thinking != "never",
            keeps_all_reasoning=False,
        )
    return ChatFormat(
        typescript_tools=True,
        default_system_prompt=not rules.name.startswith("kimi-k2.7-code"),
        think_tags=True,
        keeps_all_reasoning=rules.reasoning_replay == "all",
    )


def estimate_request_tokens(body: Mapping[str, Any]) -> int:
    """Estimated prompt tokens of a chat request body (``model``, ``messages``, ``tools``).

    What the service would report as ``usage.prompt_tokens``; an empty message
    list counts 0.
    """
    if not isinstance(body, Mapping):
        raise TypeError(f"body must be a mapping, got {type(body).__name__}")
    messages = body.get("messages")
    if not isinstance(messages, Sequence) or isinstance(messages, str):
        raise ValueError("body['messages'] must be a list of message objects")
    if not messages:
        return 0
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ValueError(f"body['messages'][{index}] is not a message object")
    model = str(body.get("model", ""))
    layout = chat_format(model)
    thinking = body.get("thinking")
    keep_all = layout.keeps_all_reasoning or (
        isinstance(thinking, Mapping) and thinking.get("keep") == "all"
    )
    last_user = max(
        (index for index, message in enumerate(messages) if message.get("role") == "user"),
        default=-1,
    )
    cost = 0.0
    tools = body.get("tools")
    if tools:
        cost += _tool_declaration_cost(tools, layout)
    if layout.default_system_prompt and messages[0].get("role") != "system":
        cost += MESSAGE_FRAME + 1 + _text_cost(DEFAULT_SYSTEM_PROMPT)
    for index, message in enumerate(messages):
        cost += _message_cost(message, layout, show_reasoning=keep_all or index > last_user)
    cost += ANSWER_START
    if layout.think_tags:
        # <think> opens the answer; with thinking off the template closes it at once.
        switch = thinking.get("type") != "disabled" if isinstance(thinking, Mapping) else None
        cost += 1 if model_thinks(model, switch) else THINK_TAGS
    return math.ceil(cost)


def _message_cost(message: Mapping[str, Any], layout: ChatFormat, *, show_reasoning: bool) -> float:
    name = message.get("name")
    cost = MESSAGE_FRAME + (_text_cost(name) if isinstance(name, str) and name else 1)
    cost += _content_cost(message.get("content"))
    role = message.get("role")
    if role == "assistant":
        if layout.think_tags:
            cost += THINK_TAGS
            reasoning = message.get("reasoning_content")
            if show_reasoning and isinstance(reasoning, str):
                cost += _text_cost(reasoning)
        calls = message.get("tool_calls")
        if calls:
            cost += TOOL_CALLS_SECTION
            for call in calls:
                function = call.get("function") or {}
                cost += TOOL_CALL_FRAME + _text_cost(str(call.get("id", "")))
                cost += _text_cost(str(function.get("arguments", "")))
    elif role == "tool":
        cost += _text_cost(TOOL_RESULT_HEADER.format(id=message.get("tool_call_id", "")))
    return cost


def _content_cost(content: Any) -> float:
    if content is None:
        return 0.0
    if isinstance(content, str):
        return _text_cost(content)
    cost = 0.0
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            cost += _text_cost(str(part.get("text", "")))
        elif kind == "image_url":
            cost += MEDIA_FRAME + image_tokens(_url(part, kind))
        elif kind == "video_url":
            cost += MEDIA_FRAME + ASSUMED_VIDEO_TOKENS
        else:
            cost += _text_cost(json.dumps(part, ensure_ascii=False, default=str))
    return cost


def _url(part: Mapping[str, Any], kind: str) -> str:
    ref = part.get(kind)
    url = ref.get("url") if isinstance(ref, Mapping) else ref
    return url if isinstance(url, str) else ""


# --- images ---------------------------------------------------------------------


def image_tokens(url: str) -> int:
    """Tokens of one image: from its size for a base64 data URL, else an assumed 1024x1024."""
    size = None
    if url.startswith("data:"):
        size = _data_url_image_size(url)
    width, height = size or ASSUMED_IMAGE_SIZE
    return image_tokens_for_size(width, height)


def image_tokens_for_size(width: int, height: int) -> int:
    """Tokens of a ``width`` x ``height`` image after the encoder's downscaling.

    >>> image_tokens_for_size(1024, 1024), image_tokens_for_size(20000, 20000)
    (1369, 4096)
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"an image's size must be positive, got {width}x{height}")
    # Scaled down (never up) to fit the patch budget and the per-side limit.
    patches = max(1, width // PATCH_PIXELS) * max(1, height // PATCH_PIXELS)
    side_limit = MAX_PATCHES_PER_SIDE * PATCH_PIXELS
    scale = min(1.0, math.sqrt(MAX_PATCHES / patches), side_limit / width, side_limit / height)
    scaled_width = min(max(1, int(width * scale)), side_limit)
    scaled_height = min(max(1, int(height * scale)), side_limit)
    tile = PATCH_PIXELS * MERGED_PATCHES
    return math.ceil(scaled_width / tile) * math.ceil(scaled_height / tile)


def _data_url_image_size(url: str) -> tuple[int, int] | None:
    encoded = url.partition(",")[2][:_HEADER_BASE64_CHARS]
    encoded = encoded[: len(encoded) - len(encoded) % 4]
    try:
        head = base64.b64decode(encoded)
    except (binascii.Error, ValueError):
        return None
    return image_size(head)


# --- tool declarations ------------------------------------------------------------


def _tool_declaration_cost(tools: Any, layout: ChatFormat) -> float:
    if not isinstance(tools, Sequence) or isinstance(tools, str):
        raise ValueError("body['tools'] must be a list of tool objects")
    if layout.typescript_tools:
        text = typescript_declaration(tools)
    else:
        # "strict" steers the service's argument checking; it is not shown to the model.
        shown = [_without_strict(tool) for tool in tools]
        text = json.dumps(shown, ensure_ascii=False, separators=(",", ":"), default=str)
    return TOOL_DECLARATION_FRAME + _text_cost(text)


def _without_strict(tool: Any) -> Any:
    if not isinstance(tool, Mapping) or not isinstance(tool.get("function"), Mapping):
        return tool
    function = {key: value for key, value in tool["function"].items() if key != "strict"}
    return {**tool, "function": function}


def typescript_declaration(tools: Sequence[Any]) -> str:
    """The tools as the K2.5-style template declares them, near enough to count.

    Each function becomes ``type name = (_: {...}) => any;`` with its description
    and each parameter's as ``//`` comments, inside ``namespace functions``. It is
    written for counting, not for the model: property order and rare schema
    keywords are not reproduced, which changes the text, not its size.
    """
    lines = ["# Tools", "", "## functions", "namespace functions {"]
    for index, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            raise ValueError(f"body['tools'][{index}] is not a tool object")
        function = tool.get("function")
        if tool.get("type") != "function" or not isinstance(function, Mapping):
            # A built-in ($web_search): declared by the service its own way.
            lines.append(json.dumps(tool, ensure_ascii=False, default=str))
            continue
        parameters = function.get("parameters")
        parameters = parameters if isinstance(parameters, Mapping) else {}
        for name, schema in (parameters.get("$defs") or {}).items():
            _add_comment(lines, _schema_description(schema), "")
            lines.append(f"interface {name} {_ts_type(schema, '')}")
        _add_comment(lines, function.get("description"), "")
        lines.append(
            f"type {function.get('name', 'function')} = (_: {_ts_type(parameters, '')}) => any;"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


_CONSTRAINTS = ("maxLength", "minLength", "pattern", "maximum", "minimum", "maxItems", "minItems")


def _ts_type(schema: Any, indent: str) -> str:
    if not isinstance(schema, Mapping):
        return "any"
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "enum" in schema and isinstance(schema["enum"], list):
        return " | ".join(json.dumps(value, ensure_ascii=False) for value in schema["enum"])
    for union in ("anyOf", "oneOf"):
        if isinstance(schema.get(union), list):
            return " | ".join(_ts_type(option, indent) for option in schema[union])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(str(item) for item in kind)
    if kind == "object" or "properties" in schema:
        return _ts_object(schema, indent)
    if kind == "array":
        return f"Array<{_ts_type(schema.get('items'), indent)}>"
    if kind == "integer":
        return "number"
    return str(kind) if kind else "any"


def _ts_object(schema: Mapping[str, Any], indent: str) -> str:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        return "{}"
    required = schema.get("required") or ()
    inner = indent + "  "
    fields = []
    for name, prop in properties.items():
        lines: list[str] = []
        if isinstance(prop, Mapping):
            _add_comment(lines, _schema_description(prop), inner)
            constraints = [f"{key}: {prop[key]}" for key in _CONSTRAINTS if key in prop]
            if constraints:
                lines.append(f"{inner}// {', '.join(constraints)}")
            if prop.get("default") is not None:
                default = json.dumps(prop["default"], ensure_ascii=False, default=str)
                lines.append(f"{inner}// Default: {default}")
        optional = "" if name in required else "?"
        lines.append(f"{inner}{name}{optional}: {_ts_type(prop, inner)}")
        fields.append("\n".join(lines))
    return "{\n" + ",\n".join(fields) + f"\n{indent}}}"


def _schema_description(schema: Any) -> str | None:
    if isinstance(schema, Mapping) and isinstance(schema.get("description"), str):
        return str(schema["description"])
    return None


def _add_comment(lines: list[str], text: Any, indent: str) -> None:
    if isinstance(text, str) and text:
        lines.extend(f"{indent}// {line}" if line else "" for line in text.split("\n"))
