"""``KimiFileLoader``: documents from the text Moonshot extracts from files.

Each file is uploaded with ``purpose="file-extract"`` (one at a time, in the
order given), its extracted text read back, and one ``Document`` yielded per
file, with metadata ``source`` (the path as given), ``file_id`` and
``filename``. Moonshot's API only (``api_flavor="moonshot"``): on Ace Data Cloud
loading raises ``ValueError`` before anything is sent.

Usage::

    from langchain_kimi import ChatKimi, KimiFileLoader

    model = ChatKimi(model="kimi-k2.6", base_url="https://api.moonshot.ai/v1")
    loader = KimiFileLoader(["report.pdf", "notes.docx"], model=model, delete_after=True)
    documents = loader.load()            # or lazy_load(), or: async for d in loader.alazy_load()
    print(documents[0].metadata["file_id"], documents[0].page_content[:100])

With ``delete_after=True`` each uploaded file is deleted once its text is read,
also when reading it failed; without it the files stay on the account (it holds
at most 1,000: ``model.files.delete(document.metadata["file_id"])``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from langchain_kimi._platform import require_moonshot
from langchain_kimi.errors import KimiError
from langchain_kimi.files import KimiFile

if TYPE_CHECKING:
    from langchain_kimi.chat_models import ChatKimi

__all__ = ["KimiFileLoader"]

PathLike = str | os.PathLike[str]


class KimiFileLoader(BaseLoader):
    """Load files as documents of the text Moonshot's file-extract reads from them.

    Args:
        paths: one path or several (pdf, docx, xlsx, pptx, txt, md, html, images
            for OCR...: what Moonshot's file-extract reads).
        model: a :class:`~langchain_kimi.ChatKimi` on Moonshot's API; its token,
            connections and retry settings are used.
        delete_after: delete each uploaded file once its text is read (also when
            reading fails). Default False: the files stay on the account.
    """

    def __init__(
        self, paths: PathLike | Sequence[PathLike], *, model: ChatKimi, delete_after: bool = False
    ) -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths = list(paths)
        if not self.paths:
            raise ValueError("KimiFileLoader needs at least one path")
        for path in self.paths:
            if not isinstance(path, (str, os.PathLike)):
                raise TypeError(f"paths must be paths, got {type(path).__name__}: {path!r}")
        self.model = model
        self.delete_after = delete_after

    def lazy_load(self) -> Iterator[Document]:
        """Upload, read and yield one file at a time."""
        require_moonshot(self.model, "KimiFileLoader")
        files = self.model.files
        for path in self.paths:
            uploaded = files.upload(path, purpose="file-extract")
            try:
                text = files.content(uploaded.id)
            except BaseException:
                if self.delete_after:
                    with contextlib.suppress(KimiError):  # the reading error is the one to see
                        files.delete(uploaded.id)
                raise
            if self.delete_after:
                files.delete(uploaded.id)
            yield _document(path, uploaded, text)

    async def alazy_load(self) -> AsyncIterator[Document]:
        """Async :meth:`lazy_load`."""
        require_moonshot(self.model, "KimiFileLoader")
        files = self.model.files
        for path in self.paths:
            uploaded = await files.aupload(path, purpose="file-extract")
            try:
                text = await files.acontent(uploaded.id)
            except BaseException:
                if self.delete_after:
                    with contextlib.suppress(KimiError):  # the reading error is the one to see
                        await files.adelete(uploaded.id)
                raise
            if self.delete_after:
                await files.adelete(uploaded.id)
            yield _document(path, uploaded, text)


def _document(path: PathLike, uploaded: KimiFile, text: str) -> Document:
    return Document(
        page_content=text,
        metadata={"source": str(path), "file_id": uploaded.id, "filename": uploaded.filename},
    )
