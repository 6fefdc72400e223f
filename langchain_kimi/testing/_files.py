"""Moonshot's Files API, simulated: uploads, listing, content, deletion.

Served by :class:`~langchain_kimi.testing.FakeKimiServer` in its Moonshot flavour
(``flavor="moonshot"``) under the base URL's path (``/v1``), by the rules of
Moonshot's reference (August 2026; the project's protocol notes, "Platform
endpoints"):

- ``POST /v1/files``: a ``multipart/form-data`` body with a ``file`` part and a
  ``purpose`` field, one of ``file-extract``, ``image``, ``video``, ``batch``.
  Answers the file object. 400 ``invalid_request_error`` for: no ``file`` part,
  an unknown ``purpose``, an empty file (``File size is zero...``), a file over
  :attr:`FileStore.max_file_bytes` (100 MB: ``File size is too large...``), one
  file more than :attr:`FileStore.max_files` (1,000: ``Too many uploaded
  files...``) or past :attr:`FileStore.max_total_bytes` (10 GB). A ``batch`` file
  must be named ``*.jsonl``.
- ``GET /v1/files``: ``{"object": "list", "data": [file, ...]}``, oldest first.
- ``GET /v1/files/{id}``: the file object; 404 for an unknown id.
- ``GET /v1/files/{id}/content``: for ``file-extract``, the extracted text (see
  :attr:`FileStore.content_form` for the two body forms sources report); batch
  input, output and error files: their JSONL; ``image``/``video``: the bytes.
- ``DELETE /v1/files/{id}``: ``{"id", "object": "file", "deleted": true}``; 404
  for an unknown or already deleted id.

The file object: ``id`` (``cl`` and 18 more lower-case letters and digits, like
Moonshot's ``clg681objj8g9m7n4je0``), ``object: "file"``, ``bytes``,
``created_at``, ``filename``, ``purpose``, ``status: "ok"`` (what the reference's
example and observed answers say; its schema says ``"ready"``) and
``status_details: ""``.

"Extraction" is simulated: a text-like file (by its name's extension, or any
file whose bytes are UTF-8) is its own text; anything else (a PDF, an image for
OCR) gets a stand-in sentence naming the file and its size.

The multipart body is parsed by the standard library's ``email`` package: no
hand-written parser.

Usage::

    with FakeKimiServer(flavor="moonshot") as server:
        server.platform.files.max_file_bytes = 1024      # limits, for tests
        server.platform.files.content_form = "json"      # the JSON-object content body
        requests.post(f"{server.base_url}/files", headers=auth,
                      files={"file": ("notes.txt", b"hello")}, data={"purpose": "file-extract"})
"""

from __future__ import annotations

import email.parser
import email.policy
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any, Literal

from langchain_kimi.testing._replies import Reply

ContentForm = Literal["text", "json"]

PURPOSES = ("file-extract", "image", "video", "batch")
# Files the service writes itself (batch results); never accepted as an upload purpose.
BATCH_OUTPUT = "batch_output"
MB = 1024 * 1024
# The multipart framing around one file and one field: far below this.
_MULTIPART_OVERHEAD = 64 * 1024
_ID_ALPHABET = string.ascii_lowercase + string.digits
_TEXT_SUFFIXES = frozenset(
    {
        "txt", "md", "markdown", "csv", "tsv", "json", "jsonl", "yaml", "yml", "html", "htm",
        "xml", "py", "js", "ts", "java", "c", "h", "cpp", "go", "rs", "rb", "sh", "sql", "log",
        "ini", "toml", "cfg",
    }
)  # fmt: skip
_MIME_BY_SUFFIX = {
    "txt": "text/plain",
    "md": "text/markdown",
    "csv": "text/csv",
    "json": "application/json",
    "jsonl": "application/jsonl",
    "html": "text/html",
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "mp4": "video/mp4",
}


def moonshot_error(status: int, message: str, kind: str = "invalid_request_error") -> Reply:
    """An answer with Moonshot's error body ``{"error": {"message", "type"}}``."""
    return Reply.error(status, kind, message, style="moonshot")


def not_found(what: str, identifier: str) -> Reply:
    return moonshot_error(404, f"{what} {identifier} not found", "resource_not_found_error")


def new_file_id() -> str:
    """``cl`` and 18 lower-case letters and digits: the shape of Moonshot's file ids."""
    return "cl" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(18))


@dataclass
class StoredFile:
    """One file the simulated service holds."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "ok",
            "status_details": "",
        }


class FileStore:
    """The files of one simulated account, and the Files API's answers.

    Settable by tests (attributes): ``max_file_bytes`` (100 MB), ``max_files``
    (1,000), ``max_total_bytes`` (10 GB), ``content_form`` (``"text"``: the
    extracted text as ``text/plain``, what the reference says; ``"json"``: the
    object ``{"content", "file_type", "filename", "title", "type": "file"}``,
    what third-party code observed in 2024). Not thread-safe on its own: the
    platform calls it under its lock.
    """

    def __init__(self) -> None:
        self.max_file_bytes = 100 * MB
        self.max_files = 1000
        self.max_total_bytes = 10 * 1024 * MB
        self.content_form: ContentForm = "text"
        self._files: dict[str, StoredFile] = {}

    # -- used by the batch API -------------------------------------------------------

    def get(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    def add(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        """Store a file without the upload checks (the service's own output files)."""
        stored = StoredFile(new_file_id(), filename, purpose, data, int(time.time()))
        self._files[stored.id] = stored
        return stored

    def all(self) -> list[StoredFile]:
        return list(self._files.values())

    # -- the endpoints -----------------------------------------------------------------

    def upload(self, content_type: str, raw: bytes) -> Reply:
        if len(raw) > self.max_file_bytes + _MULTIPART_OVERHEAD:
            # Too large whatever its framing: no need to parse it.
            return self._too_large()
        fields = _parse_form(content_type, raw)
        if fields is None:
            return moonshot_error(400, "the body must be multipart/form-data")
        purpose_field = fields.get("purpose")
        purpose = purpose_field[1].decode("utf-8", "replace") if purpose_field else ""
        if purpose not in PURPOSES:
            return moonshot_error(
                400, f"invalid purpose {purpose!r}: must be one of {', '.join(PURPOSES)}"
            )
        part = fields.get("file")
        filename = part[0] if part is not None else None
        if part is None or not filename:
            return moonshot_error(400, "a 'file' part with a filename is required")
        data = part[1]
        if not data:
            return moonshot_error(400, "File size is zero, please confirm and re-upload the file")
        if len(data) > self.max_file_bytes:
            return self._too_large()
        if purpose == "batch" and not filename.endswith(".jsonl"):
            message = f"a batch input file must be a .jsonl file, got {filename!r}"
            return moonshot_error(400, message)
        if len(self._files) >= self.max_files:
            return moonshot_error(
                400, "Too many uploaded files, please delete some files and try again"
            )
        if sum(len(f.data) for f in self._files.values()) + len(data) > self.max_total_bytes:
            return moonshot_error(
                400, "Total size of uploaded files is too large, please delete some files"
            )
        stored = StoredFile(new_file_id(), filename, purpose, data, int(time.time()))
        self._files[stored.id] = stored
        return Reply(body=stored.to_json())

    def listing(self) -> Reply:
        return Reply(body={"object": "list", "data": [f.to_json() for f in self._files.values()]})

    def retrieve(self, file_id: str) -> Reply:
        stored = self._files.get(file_id)
        return Reply(body=stored.to_json()) if stored else not_found("file", file_id)

    def delete(self, file_id: str) -> Reply:
        if self._files.pop(file_id, None) is None:
            return not_found("file", file_id)
        return Reply(body={"id": file_id, "object": "file", "deleted": True})

    def content(self, file_id: str) -> Reply:
        stored = self._files.get(file_id)
        if stored is None:
            return not_found("file", file_id)
        if stored.purpose in ("batch", BATCH_OUTPUT):
            return Reply(body=stored.data, headers={"Content-Type": "application/jsonl"})
        if stored.purpose != "file-extract":
            return Reply(body=stored.data, headers={"Content-Type": "application/octet-stream"})
        text = extracted_text(stored.filename, stored.data)
        if self.content_form == "json":
            return Reply(
                body={
                    "content": text,
                    "file_type": _MIME_BY_SUFFIX.get(_suffix(stored.filename), "text/plain"),
                    "filename": stored.filename,
                    "title": "",
                    "type": "file",
                }
            )
        return Reply(body=text, headers={"Content-Type": "text/plain; charset=utf-8"})

    def _too_large(self) -> Reply:
        limit = f"{self.max_file_bytes / MB:g}MB"
        return moonshot_error(
            400, f"File size is too large, max file size is {limit}, please confirm and re-upload"
        )


def extracted_text(filename: str, data: bytes) -> str:
    """The simulated extraction: a text-like file's own text, else a stand-in sentence."""
    if _suffix(filename) in _TEXT_SUFFIXES:
        return data.decode("utf-8", "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return f"[simulated extraction of {filename}: {len(data)} bytes]"


def _suffix(filename: str) -> str:
    return filename.rpartition(".")[2].lower() if "." in filename else ""


def _parse_form(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]] | None:
    """``multipart/form-data`` fields: name -> (filename or None, bytes); None if not multipart."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    # The email package reads MIME multipart bodies: give it the one header it needs.
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    if not message.is_multipart():
        return None
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or name in fields:
            continue
        payload = part.get_payload(decode=True)
        fields[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields
