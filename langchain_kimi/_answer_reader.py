"""The bytes of one answer -> LangChain chunks: what the transports read, turned into results.

:class:`StreamReader` joins the SSE decoder (:mod:`langchain_kimi._sse`) and the
stream parser (:mod:`langchain_kimi._response`) for one streamed answer, and
tells an event stream from a JSON body that answers a streaming request.
:func:`read_completion` reads a whole (non-streamed) body. Pure: no I/O; errors are
:class:`~langchain_kimi.KimiResponseError` with the model's secrets redacted.

Usage::

    reader = StreamReader(secrets=("token",))
    for piece in transport.stream(body):
        for chunk in reader.feed(piece):
            ...
    for chunk in reader.finish():   # raises if the answer was cut short
        ...
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.outputs import ChatGenerationChunk, ChatResult

from langchain_kimi._limits import MAX_RESPONSE_BYTES
from langchain_kimi._response import StreamParser, completion_as_stream, parse_completion
from langchain_kimi._sse import SSEDecoder
from langchain_kimi.errors import (
    KimiResponseError,
    KimiStreamInterruptedError,
    KimiTimeoutError,
    redact_secrets,
)

__all__ = ["StreamReader", "decode_json", "read_completion"]

# StreamReader modes: deciding from the first bytes, an event stream, a JSON body.
_SNIFF = "sniff"
_SSE = "sse"
_JSON = "json"
_HEAD_BYTES = 200
# What the first line of an event stream starts with: a field or a comment.
_SSE_LINE_STARTS = (b"data:", b":", b"event:", b"id:", b"retry:")


def read_completion(raw: bytes, secrets: Sequence[str] = ()) -> ChatResult:
    """A whole (non-streamed) answer's body -> ``ChatResult``.

    Pass the bytes straight in (``read_completion(transport.post(body), ...)``),
    keeping no reference: they are dropped once decoded, so a large answer is
    not held twice while LangChain copies its text (a third of the peak).
    """
    data = decode_json(raw, secrets)
    del raw
    return parse_completion(data, secrets=secrets)


def decode_json(raw: bytes, secrets: Sequence[str] = ()) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        problem = "not JSON"
    except RecursionError:
        problem = "JSON nested too deeply"
    # Raised outside the except clause: the JSONDecodeError holds the whole body
    # (unredacted) and would ride along as __context__.
    excerpt = redact_secrets(raw[:_HEAD_BYTES].decode("utf-8", "replace"), secrets)
    raise KimiResponseError(f"the response is {problem}: {excerpt!r}")


class StreamReader:
    """Bytes of one stream -> chunks: the SSE decoder and the parser together.

    A service (or proxy) may answer a streaming request with one JSON body
    instead of an event stream: a whole completion, or ``{"error": ...}``. The
    first bytes tell (``{`` where an SSE line would start): the body is then
    read whole and given as the chunks a stream of it would have produced, or
    raised as the error it holds. ``secrets`` are redacted from every error.
    """

    __slots__ = (
        "_body",
        "_body_size",
        "_decoder",
        "_head",
        "_mode",
        "_parser",
        "secrets",
        "started",
    )

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        self.secrets = tuple(secrets)
        self._decoder = SSEDecoder()
        self._parser = StreamParser(self.secrets)
        self._mode = _SNIFF
        self._head = b""  # the first bytes that are not blank, to say what the body was
        self._body: list[bytes] = []
        self._body_size = 0
        self.started = False  # bytes of the answer have arrived

    def feed(self, raw: bytes) -> Iterator[ChatGenerationChunk]:
        """The chunks of the events ``raw`` completes, each yielded before the next is parsed.

        One read can hold several events: a bad one raises only after the
        chunks of the events before it were delivered.
        """
        if self._mode is not _SSE and self._read_first_bytes(raw):
            return
        parser = self._parser
        for data in self._decoder.feed(raw):
            chunk = parser.feed(data)
            if chunk is not None:
                yield chunk

    def _read_first_bytes(self, raw: bytes) -> bool:
        """Tell an event stream from a JSON body; True when ``raw`` went to the body."""
        self.started = True
        if self._mode is _JSON:
            self._add_to_body(raw)
            return True
        head = raw.lstrip()
        if not head:
            return False  # blank so far: still undecided (SSE skips blank lines)
        self._head = head[:_HEAD_BYTES]
        if head[:1] in (b"{", b"["):
            self._mode = _JSON
            self._add_to_body(head)
            return True
        self._mode = _SSE
        return False

    def _add_to_body(self, raw: bytes) -> None:
        self._body_size += len(raw)
        if self._body_size > MAX_RESPONSE_BYTES:
            self._body.clear()
            raise KimiResponseError(
                "the answer to a streaming request is a JSON body larger than "
                f"{MAX_RESPONSE_BYTES:,} bytes (the limit for one answer)"
            )
        self._body.append(raw)

    def finish(self) -> list[ChatGenerationChunk]:
        """The last chunks, once the bytes have ended (raises if the answer is incomplete)."""
        if self._mode is _JSON:
            return self._finish_json()
        parser = self._parser
        chunks = []
        for data in self._decoder.flush():
            chunk = parser.feed(data)
            if chunk is not None:
                chunks.append(chunk)
        if (
            not parser.done
            and not parser.started
            and self._head
            and not self._head.startswith(_SSE_LINE_STARTS)
        ):
            # Not an interruption: nothing in the answer was an event.
            shown = redact_secrets(self._head.decode("utf-8", "replace"), self.secrets)
            raise KimiResponseError(
                "the answer to a streaming request is not an event stream: "
                f"it starts with {shown!r}"
            )
        chunks.append(parser.finish())
        return chunks

    def _finish_json(self) -> list[ChatGenerationChunk]:
        data = decode_json(b"".join(self._body), self.secrets)
        self._body.clear()
        try:
            return completion_as_stream(data, secrets=self.secrets)
        except KimiResponseError as err:
            reason = str(err)
        raise KimiResponseError(
            "the service answered a streaming request with one JSON body instead of an "
            f"event stream, and it is not a completion: {reason}"
        )

    def answer_ended(self) -> bool:
        """The event that ends the answer (``[DONE]``) has arrived: nothing after it is read."""
        return self._parser.done

    def broken_off(self, cause: KimiStreamInterruptedError | KimiTimeoutError) -> Exception:
        """The error to raise for ``cause`` (bytes stopped coming), in its ``except`` clause.

        ``cause`` itself before any answer arrived; else an interruption carrying
        what had arrived, which replaces ``cause`` (as ``raise ... from None`` would).
        """
        if not self.started:
            return cause
        timed_out = isinstance(cause, KimiTimeoutError)
        error = self._parser.interrupted(str(cause), timed_out=timed_out)
        error.__suppress_context__ = True
        return error
