"""Moonshot's Files API: ``model.files`` and the file object.

Upload a document and read the text Moonshot extracts from it, upload an image
or a video for kimi-k3 (referenced as ``ms://<file id>``), or a batch's input
file. Moonshot's API only (``api_flavor="moonshot"``): on Ace Data Cloud every
call raises ``ValueError`` before sending anything.

Usage::

    model = ChatKimi(model="kimi-k2.6", base_url="https://api.moonshot.ai/v1")
    uploaded = model.files.upload("report.pdf", purpose="file-extract")
    text = model.files.content(uploaded.id)     # the extracted text
    model.files.list()                          # [KimiFile(...), ...]
    model.files.retrieve(uploaded.id)
    model.files.delete(uploaded.id)
    # async: aupload, acontent, alist, aretrieve, adelete

Refused before sending (``ValueError``, naming the problem): an unknown
``purpose``, an empty file, a file over 100 MB (Moonshot's limit, read from the
file's size on disk), a ``batch`` file not named ``*.jsonl``. Requests share the
chat calls' connections, retry policy, error mapping and redaction; an upload is
never sent twice once it may have reached the service.
"""

from __future__ import annotations

import builtins
import json
import mimetypes
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_kimi._platform import Platform, expect_object, path_segment
from langchain_kimi._transport import PlatformAnswer, Resend, Upload
from langchain_kimi.errors import KimiResponseError

if TYPE_CHECKING:
    from langchain_kimi.chat_models import ChatKimi

__all__ = ["FILE_PURPOSES", "MAX_FILE_BYTES", "KimiFile", "KimiFiles"]

FILE_PURPOSES = ("file-extract", "image", "video", "batch")
"""What an upload may be for: text extraction, a kimi-k3 image or video, a batch's input."""

MAX_FILE_BYTES = 100 * 1024 * 1024
"""Moonshot's limit on one file (100 MB)."""


@dataclass(frozen=True)
class KimiFile:
    """A file held by Moonshot, as the Files API describes it.

    ``status`` is what the service says: ``"ok"`` in its examples and observed
    answers (``"error"`` when extraction failed), ``"ready"`` in its schema.
    ``created_at`` is a Unix time in seconds.
    """

    id: str
    filename: str
    bytes: int
    purpose: str
    status: str
    created_at: int

    @property
    def reference(self) -> str:
        """``ms://<id>``: the URL of an ``image``/``video`` upload in an image or video block."""
        return f"ms://{self.id}"

    @classmethod
    def from_answer(cls, body: Any) -> KimiFile:
        """Read a file object (``{"id", "filename", "bytes", ...}``); raises on a malformed one."""
        data = expect_object(body, "the file object")
        file_id = data.get("id")
        if not isinstance(file_id, str) or not file_id:
            raise KimiResponseError(f"the file object has no id: {data!r}"[:300])
        size = data.get("bytes")
        created = data.get("created_at")
        return cls(
            id=file_id,
            filename=str(data.get("filename") or ""),
            bytes=size if isinstance(size, int) and not isinstance(size, bool) else 0,
            purpose=str(data.get("purpose") or ""),
            status=str(data.get("status") or ""),
            created_at=created if isinstance(created, int) and not isinstance(created, bool) else 0,
        )


class KimiFiles:
    """``model.files``: the Files API of the model's Moonshot account. See the module's docs."""

    def __init__(self, model: ChatKimi) -> None:
        self._model = model

    def __repr__(self) -> str:
        return f"KimiFiles(base_url={self._model.base_url!r})"

    # --- sync ---------------------------------------------------------------------

    def upload(
        self,
        path_or_bytes: str | os.PathLike[str] | bytes,
        *,
        purpose: str,
        filename: str | None = None,
    ) -> KimiFile:
        """Upload a file (a path, streamed from disk, or bytes) for ``purpose``.

        ``purpose``: ``"file-extract"`` (read its text with :meth:`content`),
        ``"image"`` or ``"video"`` (kimi-k3: send ``KimiFile.reference``,
        ``ms://<id>``, as the image or video URL), ``"batch"`` (a ``.jsonl``).
        ``filename``: required with bytes (its extension tells the service how to
        read them); defaults to the path's name.
        """
        platform = Platform(self._model, "model.files.upload()")
        upload = _checked_upload(path_or_bytes, purpose, filename)
        return KimiFile.from_answer(platform.upload("/files", {"purpose": purpose}, upload))

    def content(self, file_id: str) -> str:
        """A file's text: what Moonshot extracted (``file-extract``), or a batch file's JSONL."""
        path = f"/files/{path_segment(file_id, 'file_id')}/content"
        return _content_text(Platform(self._model, "model.files.content()").get(path), file_id)

    def list(self) -> list[KimiFile]:
        """Every file of the account, as the service lists them."""
        return _file_list(Platform(self._model, "model.files.list()").get_json("/files"))

    def retrieve(self, file_id: str) -> KimiFile:
        """One file's description; ``KimiNotFoundError`` for an unknown id."""
        path = f"/files/{path_segment(file_id, 'file_id')}"
        return KimiFile.from_answer(Platform(self._model, "model.files.retrieve()").get_json(path))

    def delete(self, file_id: str) -> None:
        """Delete a file; ``KimiNotFoundError`` for an unknown or already deleted id."""
        path = f"/files/{path_segment(file_id, 'file_id')}"
        platform = Platform(self._model, "model.files.delete()")
        _check_deleted(platform.send_json("DELETE", path, resend=Resend.AS_POLICY), file_id)

    # --- async --------------------------------------------------------------------

    async def aupload(
        self,
        path_or_bytes: str | os.PathLike[str] | bytes,
        *,
        purpose: str,
        filename: str | None = None,
    ) -> KimiFile:
        """Async :meth:`upload`."""
        platform = Platform(self._model, "model.files.aupload()")
        upload = _checked_upload(path_or_bytes, purpose, filename)
        return KimiFile.from_answer(await platform.aupload("/files", {"purpose": purpose}, upload))

    async def acontent(self, file_id: str) -> str:
        """Async :meth:`content`."""
        path = f"/files/{path_segment(file_id, 'file_id')}/content"
        platform = Platform(self._model, "model.files.acontent()")
        return _content_text(await platform.aget(path), file_id)

    async def alist(self) -> builtins.list[KimiFile]:
        """Async :meth:`list`."""
        return _file_list(await Platform(self._model, "model.files.alist()").aget_json("/files"))

    async def aretrieve(self, file_id: str) -> KimiFile:
        """Async :meth:`retrieve`."""
        path = f"/files/{path_segment(file_id, 'file_id')}"
        platform = Platform(self._model, "model.files.aretrieve()")
        return KimiFile.from_answer(await platform.aget_json(path))

    async def adelete(self, file_id: str) -> None:
        """Async :meth:`delete`."""
        path = f"/files/{path_segment(file_id, 'file_id')}"
        platform = Platform(self._model, "model.files.adelete()")
        _check_deleted(await platform.asend_json("DELETE", path, resend=Resend.AS_POLICY), file_id)


def _checked_upload(
    path_or_bytes: str | os.PathLike[str] | bytes, purpose: str, filename: str | None
) -> Upload:
    """The upload, once it passes every check the service would make; else ``ValueError``."""
    if purpose not in FILE_PURPOSES:
        raise ValueError(
            f"purpose {purpose!r} is not one Moonshot accepts: use one of "
            + ", ".join(repr(p) for p in FILE_PURPOSES)
        )
    if filename is not None and (not isinstance(filename, str) or not filename.strip()):
        raise ValueError(f"filename must be a non-empty string, got {filename!r}")
    source: bytes | str | os.PathLike[str]
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        source = bytes(path_or_bytes)
        if filename is None:
            raise ValueError(
                "uploading bytes needs filename=... (its extension tells the service how to "
                "read them, e.g. 'notes.txt')"
            )
        size = len(source)
        where = f"the bytes for {filename!r}"
    elif isinstance(path_or_bytes, (str, os.PathLike)):
        path = Path(path_or_bytes)
        try:
            size = path.stat().st_size  # the size on disk: nothing is read to check it
        except OSError as err:
            raise ValueError(f"cannot upload {str(path)!r}: {err.strerror or err}") from None
        if not path.is_file():
            raise ValueError(f"cannot upload {str(path)!r}: it is not a file")
        source = path_or_bytes
        filename = filename or path.name
        where = f"{str(path)!r}"
    else:
        raise TypeError(f"upload takes a path or bytes, got {type(path_or_bytes).__name__}")
    if size == 0:
        raise ValueError(f"{where} is empty: Moonshot refuses empty files")
    if size > MAX_FILE_BYTES:
        raise ValueError(
            f"{where} is {size} bytes, over Moonshot's limit of {MAX_FILE_BYTES} bytes "
            "(100 MB) per file"
        )
    if purpose == "batch" and not filename.endswith(".jsonl"):
        raise ValueError(f"a batch input file must be named *.jsonl, got {filename!r}")
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return Upload(filename, source, content_type)


def _content_text(answer: PlatformAnswer, file_id: str) -> str:
    """The text of a content answer: plain text, or the JSON object that wraps it."""
    try:
        text = answer.body.decode("utf-8")
    except UnicodeDecodeError:
        raise KimiResponseError(
            f"the content of file {file_id} is not text ({answer.content_type or 'no type'}, "
            f"{len(answer.body)} bytes): image and video files have no text to read"
        ) from None
    if answer.content_type.split(";")[0].strip().lower() == "text/plain":
        return text  # what the reference documents
    # Observed in 2024: {"content": "<text>", "file_type", "filename", "title", "type": "file"}.
    try:
        wrapped = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if (
        isinstance(wrapped, Mapping)
        and wrapped.get("type") == "file"
        and isinstance(wrapped.get("content"), str)
    ):
        return str(wrapped["content"])
    return text


def _file_list(body: Any) -> list[KimiFile]:
    data = expect_object(body, "the file list").get("data")
    if not isinstance(data, list):
        raise KimiResponseError("the file list answer has no data list")
    return [KimiFile.from_answer(item) for item in data]


def _check_deleted(body: Any, file_id: str) -> None:
    answer = expect_object(body, "the delete answer")
    if answer.get("deleted") is not True:
        raise KimiResponseError(
            f"the service did not confirm deleting file {file_id}: {answer!r}"[:300]
        )
