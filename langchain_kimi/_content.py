"""Message content blocks -> Kimi message parts and reasoning. Pure: no I/O.

Whatever another LangChain chat model put in a message is converted here, not
refused, so that a conversation begun on another provider (``with_fallbacks``,
a multi-model LangGraph graph, a saved thread) can continue on Kimi:

============================  ===================================================
block                         becomes
============================  ===================================================
text (any provider), refusal  text
LangChain ``reasoning``;      ``reasoning_content`` (so it counts for the
Anthropic ``thinking``;       reasoning replay rule)
OpenAI Responses
``reasoning`` (summary text)
Anthropic                     dropped: encrypted, no model but Claude can read it
``redacted_thinking``
``tool_call``, ``tool_use``,  ``tool_calls`` (from ``message.tool_calls``, or
``function_call``             from the block when only the block has the call)
``server_tool_call`` and      text, ``[web_search call: {...}]`` and
its result; Anthropic         ``[web_search result: ...]``: Kimi cannot replay
``server_tool_use``,          another service's built-in tools, but the model
``*_tool_result``; OpenAI     should know what they found
built-in ``*_call`` items
images and video: LangChain   ``image_url`` / ``video_url`` parts; base64 data
v1 and v0, OpenAI             is checked against its bytes (below)
``image_url``, Anthropic
``source``, Responses
``input_image``
Anthropic ``document``        text
with text; LangChain
``text-plain``, text files
Anthropic ``tool_result``     a ``tool`` message (Kimi's tool results are
in a user message             messages of their own)
images in a tool result       a user message after the tool results (Kimi's tool
                              messages carry text only)
============================  ===================================================

What Kimi cannot take (audio, a PDF or other binary file, media by another
service's file id, a block type nobody defined) raises ``ValueError`` before
anything is sent, naming the block (``messages[2].content[1]``) and the way out.

One content check for images and video, everywhere (:func:`media_data_url`): a
missing ``mime_type`` is read from the bytes (:func:`sniff_media_type`), and a
declared type that the bytes contradict is refused, so a text file labelled
``image/png`` never reaches the service.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from langchain_kimi._profiles import ModelRules

IMAGE_MIME_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif", "image/bmp"}
)
VIDEO_MIME_TYPES = frozenset({"video/mp4", "video/mpeg", "video/quicktime", "video/webm"})
# The names users read in errors, per kind.
MEDIA_FORMATS = {"image": "PNG, JPEG, GIF, WebP or BMP", "video": "MP4, MPEG, QuickTime or WebM"}
_ARTICLE = {"image": "an", "video": "a"}
# A file uploaded to Moonshot's file API, referenced instead of sent (ms://<file-id>).
FILE_REFERENCE_SCHEME = "ms://"
# Enough leading bytes for every signature below (a BMP needs 18, a WebM's
# DocType sits within its first few dozen).
SNIFF_BYTES = 64

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\x00\x00\x01\xba", "video/mpeg"),  # MPEG program stream pack header
    (b"\x00\x00\x01\xb3", "video/mpeg"),  # MPEG video sequence header
)
# A BMP's 14-byte file header is followed by a DIB header whose first field is
# its own size: one of these few values (BITMAPCOREHEADER ... BITMAPV5HEADER).
_BMP_DIB_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
# ISO base media files (an "ftyp" box first) are MP4 video only for these
# brands: the same container holds AVIF and HEIC images, which Kimi does not take.
_MP4_BRANDS = frozenset(
    {
        b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9",
        b"mp41", b"mp42", b"mp71", b"avc1", b"M4V ", b"M4VH", b"M4VP", b"dash", b"mmp4",
        b"f4v ", b"MSNV", b"NDAS", b"XAVC",
    }
)  # fmt: skip
_IMAGE_BRANDS = frozenset({b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1", b"heim"})
# QuickTime files older than the "ftyp" box start with one of these atoms.
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"pnot"})

# Keys of foreign blocks that hold opaque bytes for their own service only.
_OPAQUE_KEYS = frozenset({"encrypted_content", "encrypted_index", "signature", "index"})
# Assistant blocks whose call is carried in message.tool_calls.
_TOOL_CALL_BLOCKS = frozenset(
    {"tool_call", "tool_call_chunk", "invalid_tool_call", "tool_use", "function_call"}
)


def sniff_media_type(head: bytes) -> str | None:
    """The MIME type of an image or video Kimi reads, from its first bytes; else None.

    The content decides, as it does for the service; a file's name or a declared
    type says nothing reliable. ``head`` needs at most :data:`SNIFF_BYTES` bytes.

    Usage::

        sniff_media_type(Path("photo.jpg").read_bytes()[:SNIFF_BYTES])   # 'image/jpeg'
        sniff_media_type(b"%PDF-1.7")                                    # None
    """
    for signature, mime in _SIGNATURES:
        if head.startswith(signature):
            return mime
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if (
        len(head) >= 18
        and head[:2] == b"BM"
        and int.from_bytes(head[14:18], "little") in _BMP_DIB_HEADER_SIZES
    ):
        return "image/bmp"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska, or WebM by its DocType
        return "video/webm" if b"webm" in head[4:SNIFF_BYTES] else None
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _iso_media_type(head)
    if len(head) >= 8 and head[4:8] in _QUICKTIME_ATOMS:
        return "video/quicktime"
    return None


def _iso_media_type(head: bytes) -> str | None:
    major = head[8:12]
    if major == b"qt  ":
        return "video/quicktime"
    if major in _MP4_BRANDS:
        return "video/mp4"
    if major in _IMAGE_BRANDS:
        return None
    box_end = min(int.from_bytes(head[:4], "big"), len(head))
    compatible = {head[at : at + 4] for at in range(16, box_end - 3, 4)}
    return "video/mp4" if compatible & _MP4_BRANDS else None


def _canonical(mime: str) -> str:
    mime = mime.strip().lower()
    return "image/jpeg" if mime == "image/jpg" else mime


def _allowed(kind: str) -> frozenset[str]:
    return IMAGE_MIME_TYPES if kind == "image" else VIDEO_MIME_TYPES


def media_type_of(data: str, declared: str | None, kind: str, where: str) -> str:
    """The MIME type to send base64 ``data`` (an image or a video) as, or ``ValueError``.

    The bytes decide: with no ``declared`` type they give it; a declared type they
    contradict, or bytes that are no format Kimi reads, are refused, naming ``where``.
    """
    if declared:
        canonical = _canonical(declared)
        if canonical not in _allowed(kind):
            raise ValueError(
                f"{where}: unsupported {kind} mime type {declared!r}; use one of "
                f"{sorted(_allowed(kind))}"
            )
    else:
        canonical = None
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where}: invalid base64 data") from None
    sniffed = sniff_media_type(raw[:SNIFF_BYTES])
    if sniffed is None:
        formats = MEDIA_FORMATS[kind]
        if declared:
            raise ValueError(
                f"{where}: the {kind} is declared {declared!r} but its bytes are not "
                f"{formats}: is it the file you meant?"
            )
        raise ValueError(
            f"{where}: the {kind} has no mime_type and its bytes are not {formats}, so "
            f"its type cannot be told: send {_ARTICLE[kind]} {kind} in one of those formats"
        )
    if canonical is not None and canonical != sniffed:
        raise ValueError(
            f"{where}: the {kind} is declared {declared!r} but its bytes are {sniffed}: "
            "fix the mime_type, or leave it out (the type is read from the bytes)"
        )
    if sniffed not in _allowed(kind):
        raise ValueError(
            f"{where}: {_ARTICLE[kind]} {kind} block holds {sniffed} data: send it as "
            f"{_ARTICLE[sniffed[:5]]} {sniffed[:5]} block"
        )
    return sniffed


def media_data_url(data: str, declared: str | None, kind: str, where: str) -> str:
    """``data:<type>;base64,<data>`` for an image or video, checked by :func:`media_type_of`."""
    return f"data:{media_type_of(data, declared, kind, where)};base64,{data}"


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
            return ANY_MEDIA
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


ANY_MEDIA = MediaPolicy("")


# --- before LangChain sees the messages ------------------------------------------------


def fill_missing_media_types(messages: Sequence[BaseMessage]) -> Sequence[BaseMessage]:
    """``messages`` with each base64 image block's missing ``mime_type`` read from its bytes.

    langchain-core formats image blocks for tracing before the model runs, and
    refuses base64 data without a ``mime_type`` ("mime_type key is required for
    base64 data."): this fills the type in first. Bytes that are no image Kimi
    reads raise ``ValueError`` naming the block. The messages are not changed:
    a message that needs a type is copied; when none does, ``messages`` itself
    comes back.
    """
    filled: list[BaseMessage] | None = None
    for index, message in enumerate(messages):
        content = message.content
        if isinstance(content, str):
            continue
        new_content: list[str | dict[str, Any]] | None = None
        for position, block in enumerate(content):
            if not isinstance(block, dict) or block.get("type") != "image":
                continue
            data = _base64_of(block)
            if data is None or block.get("mime_type"):
                continue
            where = f"messages[{index}].content[{position}]"
            if new_content is None:
                new_content = list(content)
            mime = media_type_of(data, None, "image", where)
            new_content[position] = {**block, "mime_type": mime}
        if new_content is not None:
            if filled is None:
                filled = list(messages)
            filled[index] = message.model_copy(update={"content": new_content})
    return messages if filled is None else filled


def _base64_of(block: Mapping[str, Any]) -> str | None:
    """The base64 data of a LangChain v1 or v0 media block, or None."""
    data = block.get("base64")
    if data is None and block.get("source_type") == "base64":
        data = block.get("data")
    return data if isinstance(data, str) and data else None


# --- user messages ---------------------------------------------------------------------


class ToolResult:
    """A tool result found inside a user message (Anthropic's ``tool_result`` block)."""

    __slots__ = ("call_id", "media", "text")

    def __init__(self, call_id: str, text: str, media: list[dict[str, Any]]) -> None:
        self.call_id = call_id
        self.text = text
        self.media = media


def user_parts(
    content: Sequence[str | dict[str, Any]], index: int, media: MediaPolicy
) -> tuple[list[dict[str, Any]], list[ToolResult]]:
    """A user message's list content -> Kimi parts, and the tool results it carries."""
    parts: list[dict[str, Any]] = []
    results: list[ToolResult] = []
    for position, block in enumerate(content):
        where = f"messages[{index}].content[{position}]"
        if isinstance(block, dict) and block.get("type") == "tool_result":
            results.append(_anthropic_tool_result(block, where, media))
            continue
        part = _user_part(block, where, media)
        if part is not None:
            parts.append(part)
    return parts, results


def _user_part(block: Any, where: str, media: MediaPolicy) -> dict[str, Any] | None:
    if isinstance(block, str):
        return _text_part(block)
    if not isinstance(block, dict):
        raise ValueError(f"{where}: content parts must be strings or dicts")
    kind = block.get("type")
    if kind == "non_standard" and isinstance(block.get("value"), dict):
        block, kind = block["value"], block["value"].get("type")
    if kind in ("text", "input_text"):
        text = block.get("text")
        if not isinstance(text, str):
            raise ValueError(f"{where}: a text part needs a string 'text'")
        return _text_part(text)
    if kind in ("image_url", "video_url"):
        ref = block.get(kind)
        url = ref.get("url") if isinstance(ref, dict) else ref
        return _url_part(url, "image" if kind == "image_url" else "video", where, media)
    if kind == "input_image":  # OpenAI Responses
        if block.get("file_id"):
            raise _by_file_id("image", where)
        return _url_part(block.get("image_url"), "image", where, media)
    if kind in ("image", "video"):
        return _media_part(block, kind, where, media)
    if kind in ("file", "text-plain"):
        return _file_part(block, where, media)
    if kind == "document":  # Anthropic
        return _text_part(_document_text(block, where))
    if kind in ("audio", "input_audio"):
        raise ValueError(
            f"{where}: Kimi takes no audio (it reads text, images and video): "
            "transcribe the audio and send the text"
        )
    raise ValueError(
        f"{where}: unsupported content part type {kind!r}: Kimi takes text, images "
        "and video; turn the block into text, or remove it"
    )


def _text_part(text: str) -> dict[str, Any] | None:
    # Blank parts are dropped: the service refuses empty content.
    return {"type": "text", "text": text} if text.strip() else None


def _url_part(url: Any, kind: str, where: str, media: MediaPolicy) -> dict[str, Any]:
    if not isinstance(url, str) or not url:
        raise ValueError(f"{where}: {kind}_url part needs a URL")
    url = _checked_url(url, kind, where)
    media.check(kind, url, where)
    wire = f"{kind}_url"
    return {"type": wire, wire: {"url": url}}


def _checked_url(url: str, kind: str, where: str) -> str:
    """``url`` as it is to be sent; a data URL's type is checked against its bytes."""
    if url.startswith("data:"):
        header, sep, data = url.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ValueError(f"{where}: a data URL must be base64: data:<mime>;base64,<data>")
        declared = header[5:-7]
        mime = media_type_of(data, declared or None, kind, where)
        # The user's own URL when it says the type as it is sent: no copy of the data.
        return url if declared == mime else f"data:{mime};base64,{data}"
    if not url.startswith(("https://", "http://", FILE_REFERENCE_SCHEME)):
        raise ValueError(
            f"{where}: {kind} URL must be http(s), a base64 data URL, or "
            f"{FILE_REFERENCE_SCHEME}<file-id> (a file uploaded to Moonshot)"
        )
    return url


def _media_part(
    block: Mapping[str, Any], kind: str, where: str, media: MediaPolicy
) -> dict[str, Any]:
    """An ``image``/``video`` block: LangChain v1 and v0, and Anthropic's ``source`` form."""
    source = block.get("source")
    if isinstance(source, dict):  # Anthropic
        source_type = source.get("type")
        if source_type == "url":
            return _url_part(source.get("url"), kind, where, media)
        if source_type == "base64":
            return _base64_part(source.get("data"), source.get("media_type"), kind, where, media)
        if source_type == "file":
            raise _by_file_id(kind, where)
        raise ValueError(
            f"{where}: {_ARTICLE[kind]} {kind} source of type {source_type!r} cannot be sent"
        )
    url = block.get("url")
    if block.get("source_type") == "url" and not url:
        url = block.get("data")
    if isinstance(url, str) and url:
        return _url_part(url, kind, where, media)
    data = _base64_of(block)
    if data is not None:
        return _base64_part(data, block.get("mime_type"), kind, where, media)
    if block.get("file_id") or block.get("source_type") == "id":
        raise _by_file_id(kind, where)
    raise ValueError(f"{where}: {_ARTICLE[kind]} {kind} block needs 'url', or 'base64' data")


def _base64_part(
    data: Any, declared: Any, kind: str, where: str, media: MediaPolicy
) -> dict[str, Any]:
    if not isinstance(data, str) or not data:
        raise ValueError(f"{where}: the {kind} has no base64 data")
    url = media_data_url(data, declared if isinstance(declared, str) else None, kind, where)
    media.check(kind, None, where)
    wire = f"{kind}_url"
    return {"type": wire, wire: {"url": url}}


def _by_file_id(kind: str, where: str) -> ValueError:
    return ValueError(
        f"{where}: {_ARTICLE[kind]} {kind} given by another service's file id cannot be "
        f"sent to Kimi: pass a URL or base64 data (or {FILE_REFERENCE_SCHEME}<file-id> for "
        "a file uploaded to Moonshot)"
    )


def _file_part(block: Mapping[str, Any], where: str, media: MediaPolicy) -> dict[str, Any] | None:
    """A LangChain ``file`` or ``text-plain`` block: text goes as text, media as media."""
    mime = block.get("mime_type")
    mime = _canonical(mime) if isinstance(mime, str) else ""
    if mime.startswith(("image/", "video/")):
        return _media_part(block, mime.partition("/")[0], where, media)
    text = block.get("text")
    if isinstance(text, str) and (block.get("type") == "text-plain" or mime.startswith("text/")):
        return _text_part(text)
    data = _base64_of(block)
    if data is not None and (block.get("type") == "text-plain" or mime.startswith("text/")):
        return _text_part(_decoded_text(data, where))
    if data is not None and not mime:
        # A file block with no type: an image or video is recognised by its bytes.
        sniffed = _sniff_base64(data)
        if sniffed is not None:
            return _media_part(block, sniffed.partition("/")[0], where, media)
    raise _unsendable_file(mime, where)


def _sniff_base64(data: str) -> str | None:
    # 88 base64 characters are 66 bytes: more than any signature needs.
    try:
        return sniff_media_type(base64.b64decode(data[:88], validate=True))
    except (binascii.Error, ValueError):
        return None


def _decoded_text(data: str, where: str) -> str:
    try:
        return base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise ValueError(f"{where}: a text file must be UTF-8 text in valid base64") from None


def _unsendable_file(mime: str, where: str) -> ValueError:
    what = f"a {mime} file" if mime else "a file"
    return ValueError(
        f"{where}: {what} cannot go into a Kimi message (Kimi reads text, images and "
        "video): extract its text and send that (Moonshot's file API extracts text from "
        "PDF and office files, purpose 'file-extract'), or send its pages as images"
    )


def _document_text(block: Mapping[str, Any], where: str) -> str:
    """An Anthropic ``document`` block's text, with its title and context."""
    source = block.get("source")
    source_type = source.get("type") if isinstance(source, dict) else None
    if source_type == "text" and isinstance(source, dict):
        text = str(source.get("data", ""))
    elif source_type == "content" and isinstance(source, dict):
        inner = source.get("content")
        if isinstance(inner, str):
            text = inner
        else:
            text = "\n".join(
                str(item.get("text", "")) if isinstance(item, dict) else str(item)
                for item in inner or ()
            )
    else:
        mime = source.get("media_type") if isinstance(source, dict) else None
        raise _unsendable_file(mime if isinstance(mime, str) else "", where)
    heading = [str(block[key]) for key in ("title", "context") if block.get(key)]
    return "\n\n".join([*heading, text])


def _anthropic_tool_result(
    block: Mapping[str, Any], where: str, media: MediaPolicy
) -> ToolResult:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise ValueError(f"{where}: a tool_result block needs its tool_use_id")
    inner = block.get("content", "")
    text, found = tool_content(
        inner if isinstance(inner, list) else str(inner), f"{where}.content", media
    )
    if block.get("is_error") and not text.lower().startswith("error"):
        text = f"Error: {text}"
    return ToolResult(call_id, text, found)


# --- tool messages ---------------------------------------------------------------------


def tool_content(
    content: str | Sequence[str | dict[str, Any]], where: str, media: MediaPolicy
) -> tuple[str, list[dict[str, Any]]]:
    """A tool result's text, and the image/video parts it returned (sent after it).

    ``where`` names the content list in errors (``messages[3].content``).
    """
    if isinstance(content, str):
        return content, []
    pieces: list[str] = []
    found: list[dict[str, Any]] = []
    for position, block in enumerate(content):
        at = f"{where}[{position}]"
        if isinstance(block, str):
            pieces.append(block)
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            pieces.append(block["text"])
        elif kind in ("image", "video", "image_url", "video_url", "input_image"):
            part = _user_part(block, at, media)
            if part is not None:
                found.append(part)
        elif kind in ("file", "text-plain", "document"):
            part = _user_part(block, at, media)
            if part is not None and part["type"] == "text":
                pieces.append(part["text"])
            elif part is not None:
                found.append(part)
        else:
            # Other structured results go back as JSON, so the model still sees them.
            pieces.append(json.dumps(block, ensure_ascii=False, default=str))
    text = "\n".join(pieces)
    if not text and found:
        text = f"(the result is the {len(found)} attachment(s) in the next message)"
    return text, found


# --- assistant messages ------------------------------------------------------------------


class ContentCall:
    """A tool call written only in an assistant message's content (``tool_use`` and kin)."""

    __slots__ = ("arguments", "call_id", "name")

    def __init__(self, call_id: str | None, name: str, arguments: str) -> None:
        self.call_id = call_id
        self.name = name
        self.arguments = arguments


def assistant_content(
    content: Sequence[str | dict[str, Any]], index: int, known_call_ids: set[str]
) -> tuple[str, list[str], list[ContentCall]]:
    """An assistant message's list content -> (text, reasoning pieces, calls only in content).

    ``known_call_ids`` are the ids in ``message.tool_calls``: a block repeating one
    of them is not sent twice.
    """
    text = _TextJoiner()
    reasoning: list[str] = []
    calls: list[ContentCall] = []
    server_names: dict[str, str] = {}
    for position, item in enumerate(content):
        if isinstance(item, str):
            text.add(item)
            continue
        where = f"messages[{index}].content[{position}]"
        block: Mapping[str, Any] = item
        kind = block.get("type")
        if kind == "non_standard" and isinstance(block.get("value"), dict):
            block, kind = block["value"], block["value"].get("type")
        if kind == "text":
            text.add(str(block.get("text") or ""))
        elif kind == "refusal":
            text.add(str(block.get("refusal") or ""))
        elif kind == "text-plain" and isinstance(block.get("text"), str):
            text.add(block["text"])
        elif kind in ("reasoning", "thinking"):
            piece = _reasoning_text(block)
            if piece:
                reasoning.append(piece)
        elif kind == "redacted_thinking":
            continue  # encrypted for Anthropic's own models: nothing Kimi can read
        elif kind in _TOOL_CALL_BLOCKS:
            call = _content_call(block)
            if call is not None and call.call_id not in known_call_ids:
                known_call_ids.add(call.call_id or "")
                calls.append(call)
        elif kind in ("server_tool_call", "server_tool_call_chunk", "server_tool_use"):
            name = str(block.get("name") or "server_tool")
            server_names[str(block.get("id"))] = name
            args = block.get("args", block.get("input"))
            if not args and block.get("partial_json"):  # Anthropic, streamed
                args = block["partial_json"]
            text.add_note(_call_note(name, args))
        elif kind == "server_tool_result":
            name = server_names.get(str(block.get("tool_call_id")), "server_tool")
            note = _result_note(name, block.get("output"), block.get("status"))
            if note:
                text.add_note(note)
        elif isinstance(kind, str) and kind.endswith("_tool_result"):  # Anthropic
            name = server_names.get(str(block.get("tool_use_id")), kind[: -len("_tool_result")])
            text.add_note(_result_note(name, block.get("content"), None) or f"[{name} result]")
        elif isinstance(kind, str) and kind.endswith("_call"):  # OpenAI Responses built-ins
            text.add_note(responses_item_note(block))
        elif kind in ("image", "video", "audio", "file"):
            # Kimi's assistant messages are text: say what was there, not its bytes.
            text.add_note(f"[{kind} omitted]")
        elif kind is None and set(block) <= {"index", "id"}:
            continue  # a streaming leftover with nothing in it
        else:
            raise ValueError(
                f"{where}: assistant content of type {kind!r} has no Kimi equivalent: "
                "remove the block (or turn it into text) before sending"
            )
    return text.join(), reasoning, calls


def _reasoning_text(block: Mapping[str, Any]) -> str:
    """Readable reasoning of a LangChain, Anthropic or OpenAI Responses block ("" if none)."""
    for key in ("reasoning", "thinking"):
        value = block.get(key)
        if isinstance(value, str):
            return value
    # OpenAI Responses: the summary parts, or the raw reasoning text some models return.
    for key in ("summary", "content"):
        items = block.get(key)
        if isinstance(items, list):
            texts = [
                item["text"]
                for item in items
                if isinstance(item, dict) and isinstance(item.get("text"), str)
            ]
            if texts:
                return "\n\n".join(texts)
    return ""


def reasoning_of_additional_kwargs(additional_kwargs: Mapping[str, Any]) -> str | None:
    """Reasoning that ChatOpenAI's ``output_version="v0"`` keeps in ``additional_kwargs``."""
    item = additional_kwargs.get("reasoning")
    if isinstance(item, dict):
        return _reasoning_text(item) or None
    return None


def _content_call(block: Mapping[str, Any]) -> ContentCall | None:
    kind = block.get("type")
    if kind == "tool_use":  # Anthropic: arguments as a dict, or streamed as partial JSON
        arguments: Any = block.get("input")
        if not arguments and isinstance(block.get("partial_json"), str):
            arguments = block["partial_json"] or "{}"
        call_id, name = block.get("id"), block.get("name")
    elif kind == "function_call":  # OpenAI Responses: the call's id is call_id
        arguments, call_id, name = block.get("arguments"), block.get("call_id"), block.get("name")
    elif kind in ("tool_call", "invalid_tool_call", "tool_call_chunk"):
        arguments, call_id, name = block.get("args"), block.get("id"), block.get("name")
    else:
        return None
    if not isinstance(name, str) or not name:
        return None  # a chunk without its call's name: its call is in tool_calls
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)
    return ContentCall(call_id if isinstance(call_id, str) else None, name, arguments)


def responses_item_note(block: Mapping[str, Any]) -> str:
    """An OpenAI Responses built-in tool item (``web_search_call``, ...) as text."""
    kind = str(block.get("type"))
    name = kind[: -len("_call")] if kind.endswith("_call") else kind
    args = block.get("action")
    if args is None:
        args = {
            key: value
            for key, value in block.items()
            if key not in ("type", "id", "status", "output", "outputs", "results", "result")
            and key not in _OPAQUE_KEYS
        }
    note = _call_note(name, args)
    for key in ("output", "outputs", "results"):
        if block.get(key):
            note += "\n" + _result_note(name, block[key], None)
    return note


def responses_tool_output_notes(additional_kwargs: Mapping[str, Any]) -> list[str]:
    """The built-in tool items ChatOpenAI's ``output_version="v0"`` keeps aside, as text."""
    items = additional_kwargs.get("tool_outputs")
    if not isinstance(items, list):
        return []
    return [
        responses_item_note(item)
        for item in items
        if isinstance(item, dict) and str(item.get("type", "")).endswith("_call")
    ]


def _call_note(name: str, args: Any) -> str:
    if isinstance(args, str):
        shown = args
    else:
        shown = json.dumps(_without_opaque(args or {}), ensure_ascii=False, default=str)
    return f"[{name} call: {shown}]"


def _result_note(name: str, output: Any, status: Any) -> str:
    """``[web_search result: ...]``; "" for a success that returned nothing to read."""
    label = f"{name} result" if status in (None, "success") else f"{name} result ({status})"
    if output is None or output == []:
        return "" if label == f"{name} result" else f"[{label}]"
    readable = _readable(output)
    separator = "" if readable.startswith("\n") else " "
    return f"[{label}:{separator}{readable}]"


def _readable(output: Any) -> str:
    """A server tool's output for the model to read: search hits as lines, else JSON."""
    if isinstance(output, str):
        return output
    if isinstance(output, list) and output and all(
        isinstance(item, dict) and isinstance(item.get("url"), str) for item in output
    ):
        lines = []
        for item in output:
            details = ", ".join(str(item[key]) for key in ("page_age",) if item.get(key))
            title = item.get("title") or item["url"]
            lines.append(f"- {title} <{item['url']}>" + (f" ({details})" if details else ""))
        return "\n" + "\n".join(lines)
    if isinstance(output, list) and all(
        isinstance(item, dict) and item.get("type") == "text" for item in output
    ):
        return "\n".join(str(item.get("text", "")) for item in output)
    return json.dumps(_without_opaque(output), ensure_ascii=False, default=str)


def _without_opaque(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_opaque(v) for k, v in value.items() if k not in _OPAQUE_KEYS}
    if isinstance(value, list):
        return [_without_opaque(item) for item in value]
    return value


class _TextJoiner:
    """Text pieces joined as they were written; notes (server tools) on lines of their own.

    Text blocks join with nothing between them: a provider splits one paragraph
    into several blocks (Anthropic does, around citations).
    """

    __slots__ = ("_after_note", "_pieces")

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._after_note = False

    def add(self, text: str) -> None:
        if not text:
            return
        if self._after_note:
            self._pieces.append("\n\n")
            self._after_note = False
        self._pieces.append(text)

    def add_note(self, note: str) -> None:
        if self._pieces and not self._after_note:
            self._pieces.append("\n\n")
        elif self._after_note:
            self._pieces.append("\n")
        self._pieces.append(note)
        self._after_note = True

    def join(self) -> str:
        return "".join(self._pieces)
