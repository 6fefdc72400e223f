"""One rule for images and video, on every path (issue 20), through invoke to the simulator.

A missing ``mime_type`` is read from the bytes; a declared type the bytes
contradict is refused before sending, naming the block; so are bytes that are no
format Kimi reads. The same for LangChain's v1 and v0 blocks, OpenAI-style data
URLs and Anthropic's ``source`` blocks, with invoke, stream and their async
twins (langchain-core's own formatting for tracing runs before the model and
used to refuse a base64 image without a type: "mime_type key is required").
"""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage

from langchain_kimi import ChatKimi
from langchain_kimi.testing import FakeKimiServer

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
WEBP = (
    b"RIFF" + struct.pack("<I", 26) + b"WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11"
)
BMP = (
    b"BM" + struct.pack("<IHHI", 58, 0, 0, 54) + struct.pack("<IiiHH", 40, 1, 1, 1, 24) + bytes(28)
)
MP4 = struct.pack(">I", 24) + b"ftypisom\x00\x00\x02\x00isomiso2" + struct.pack(">I", 8) + b"free"
TEXT = b"these are my holiday notes, not a picture\n"
MODES = ["invoke", "ainvoke", "stream", "astream"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def v1(data: bytes, mime: str | None = None, kind: str = "image") -> dict[str, Any]:
    block: dict[str, Any] = {"type": kind, "base64": b64(data)}
    if mime is not None:
        block["mime_type"] = mime
    return block


def v0(data: bytes, mime: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "image", "source_type": "base64", "data": b64(data)}
    if mime is not None:
        block["mime_type"] = mime
    return block


def data_url(data: bytes, mime: str = "") -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{b64(data)}"}}


def anthropic(data: bytes, mime: str | None = None) -> dict[str, Any]:
    source: dict[str, Any] = {"type": "base64", "data": b64(data)}
    if mime is not None:
        source["media_type"] = mime
    return {"type": "image", "source": source}


def question(block: dict[str, Any]) -> list[HumanMessage]:
    return [HumanMessage([{"type": "text", "text": "What is this?"}, block])]


@pytest.fixture
async def model(server: FakeKimiServer) -> AsyncIterator[ChatKimi]:
    kimi = ChatKimi(
        model="kimi-k2.6", base_url=server.base_url, api_key=server.api_key, max_retries=0
    )
    yield kimi
    await kimi.aclose()


async def call(model: ChatKimi, messages: list[HumanMessage], mode: str) -> AIMessage:
    if mode == "invoke":
        return model.invoke(messages)
    if mode == "ainvoke":
        return await model.ainvoke(messages)
    total: AIMessageChunk | None = None
    if mode == "stream":
        for chunk in model.stream(messages):
            total = chunk if total is None else total + chunk
    else:
        async for chunk in model.astream(messages):
            total = chunk if total is None else total + chunk
    assert total is not None
    return total


def sent_url(server: FakeKimiServer) -> str:
    (request,) = server.requests
    part = request.body["messages"][0]["content"][1]
    url = part.get("image_url", part.get("video_url"))["url"]
    assert isinstance(url, str)
    return url


# --- a missing type is read from the bytes --------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (v1(PNG), "image/png"),
        (v1(JPEG), "image/jpeg"),
        (v1(GIF), "image/gif"),
        (v1(WEBP), "image/webp"),
        (v1(BMP), "image/bmp"),
        (v0(JPEG), "image/jpeg"),
        (data_url(JPEG), "image/jpeg"),
        (anthropic(JPEG), "image/jpeg"),
        (v1(MP4, kind="video"), "video/mp4"),
    ],
    ids=[
        "v1-png",
        "v1-jpeg",
        "v1-gif",
        "v1-webp",
        "v1-bmp",
        "v0-jpeg",
        "data-url",
        "anthropic",
        "video",
    ],
)
async def test_a_missing_type_is_read_from_the_bytes(
    server: FakeKimiServer, model: ChatKimi, block: dict[str, Any], expected: str, mode: str
) -> None:
    await call(model, question(block), mode)
    url = sent_url(server)
    assert url.startswith(f"data:{expected};base64,")
    assert base64.b64decode(url.partition(",")[2]) in (PNG, JPEG, GIF, WEBP, BMP, MP4)


# --- a declared type the bytes contradict is refused -------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("block", "match"),
    [
        (v1(JPEG, "image/png"), "declared 'image/png' but its bytes are image/jpeg"),
        (v0(PNG, "image/gif"), "declared 'image/gif' but its bytes are image/png"),
        (data_url(JPEG, "image/png"), "declared 'image/png' but its bytes are image/jpeg"),
        (anthropic(PNG, "image/webp"), "declared 'image/webp' but its bytes are image/png"),
        # A text file labelled as a picture.
        (v1(TEXT, "image/png"), "declared 'image/png' but its bytes are not PNG, JPEG"),
        (data_url(TEXT, "image/jpeg"), "declared 'image/jpeg' but its bytes are not PNG"),
        # A video in an image block.
        (v1(MP4, "image/png"), "declared 'image/png' but its bytes are video/mp4"),
        (v1(MP4), "an image block holds video/mp4 data: send it as a video block"),
    ],
    ids=["v1", "v0", "data-url", "anthropic", "text-as-png", "text-data-url", "mp4-as-png", "mp4"],
)
async def test_a_type_the_bytes_contradict_is_refused_before_sending(
    server: FakeKimiServer, model: ChatKimi, block: dict[str, Any], match: str, mode: str
) -> None:
    with pytest.raises(ValueError, match=r"^messages\[0\]\.content\[1\]: .*" + match):
        await call(model, question(block), mode)
    assert server.request_count == 0


# --- a matching type is accepted ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["invoke", "astream"])
@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (v1(JPEG, "image/jpeg"), f"data:image/jpeg;base64,{b64(JPEG)}"),
        (v1(JPEG, "image/jpg"), f"data:image/jpeg;base64,{b64(JPEG)}"),  # the common alias
        (v1(PNG, "IMAGE/PNG"), f"data:image/png;base64,{b64(PNG)}"),
        (v0(GIF, "image/gif"), f"data:image/gif;base64,{b64(GIF)}"),
        (data_url(PNG, "image/png"), f"data:image/png;base64,{b64(PNG)}"),
        (anthropic(WEBP, "image/webp"), f"data:image/webp;base64,{b64(WEBP)}"),
        (v1(MP4, "video/mp4", kind="video"), f"data:video/mp4;base64,{b64(MP4)}"),
    ],
    ids=["v1", "alias", "upper-case", "v0", "data-url", "anthropic", "video"],
)
async def test_a_matching_type_is_accepted(
    server: FakeKimiServer, model: ChatKimi, block: dict[str, Any], expected: str, mode: str
) -> None:
    await call(model, question(block), mode)
    assert sent_url(server) == expected


# --- bytes that are no image, with no type -----------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "block",
    [v1(TEXT), v0(TEXT), data_url(TEXT), anthropic(TEXT), v1(b"%PDF-1.7\n" + bytes(40))],
    ids=["v1", "v0", "data-url", "anthropic", "pdf"],
)
async def test_unknown_bytes_without_a_type_are_refused_clearly(
    server: FakeKimiServer, model: ChatKimi, block: dict[str, Any], mode: str
) -> None:
    with pytest.raises(ValueError) as refused:
        await call(model, question(block), mode)
    message = str(refused.value)
    assert message.startswith("messages[0].content[1]: the image has no mime_type")
    assert "its bytes are not PNG, JPEG, GIF, WebP or BMP" in message
    # langchain-core's own message, which said nothing of the block, no longer shows.
    assert "mime_type key is required" not in message
    assert server.request_count == 0


def test_the_callers_message_is_not_changed(server: FakeKimiServer, model: ChatKimi) -> None:
    """The type is filled in on a copy: the user's message stays as written."""
    message = HumanMessage([{"type": "text", "text": "What?"}, v1(JPEG)])
    model.invoke([message])
    assert "mime_type" not in message.content[1]  # type: ignore[operator]
    assert sent_url(server).startswith("data:image/jpeg;base64,")


def test_the_command_line_uses_the_same_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The CLI's --image reads the type with the library's function, not one of its own."""
    from langchain_kimi import _cli, _content

    seen: list[bytes] = []
    real = _content.sniff_media_type

    def spy(head: bytes) -> str | None:
        seen.append(head)
        return real(head)

    monkeypatch.setattr(_content, "sniff_media_type", spy)
    photo = tmp_path / "photo.png"  # a JPEG, whatever its name says
    photo.write_bytes(JPEG)
    block = _cli._read_image(str(photo), "kimi-k2.6")
    assert seen == [JPEG]
    assert block == {"type": "image", "base64": b64(JPEG), "mime_type": "image/jpeg"}
    video = tmp_path / "clip.png"
    video.write_bytes(MP4)
    with pytest.raises(_cli.UsageError, match="is not an image"):
        _cli._read_image(str(video), "kimi-k2.6")


def test_callbacks_see_the_type(server: FakeKimiServer, model: ChatKimi) -> None:
    """Callbacks get the message with the type read from the bytes (what langchain-core needs)."""
    from langchain_core.callbacks import BaseCallbackHandler

    class Recorder(BaseCallbackHandler):
        def __init__(self) -> None:
            self.messages: list[Any] = []

        def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
            self.messages.extend(messages)

    recorder = Recorder()
    model.invoke(question(v1(PNG)), config={"callbacks": [recorder]})
    (traced,) = recorder.messages
    assert traced[0].content[1] == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{b64(PNG)}"},
    }
