"""Server-sent events: raw bytes as they arrive -> the ``data`` of each event. Pure.

The decoder is incremental: feed it whatever the socket produced (a byte, a
line, half a UTF-8 character, ten events) and it returns the events completed so
far. Lines may end in ``\\n``, ``\\r\\n`` or ``\\r``; a UTF-8 byte-order mark
that starts the stream is dropped; comment lines (``:``), ``id`` and ``retry``
are ignored; an event's data lines are joined with ``\\n`` and the event is
dispatched at the blank line that ends it. An event of type ``error``
(``event: error``) is dispatched as an :class:`ErrorEvent`, even without data:
it ends the answer, whatever it holds.

Its cost is linear in the input: the pieces of a line that spans many reads
are kept as a list and joined once, when the line ends. A line (or an event's
data) longer than :data:`~langchain_kimi._limits.MAX_SSE_LINE_BYTES` raises
:class:`~langchain_kimi.KimiResponseError` instead of growing without end, and
so does data that is not UTF-8.

Usage::

    decoder = SSEDecoder()
    for piece in response_bytes:
        for data in decoder.feed(piece):
            handle(data)            # e.g. '{"choices": [...]}' or '[DONE]'
    for data in decoder.flush():    # an event the server did not end with a blank line
        handle(data)
"""

from __future__ import annotations

from langchain_kimi._limits import MAX_SSE_LINE_BYTES
from langchain_kimi.errors import KimiResponseError

__all__ = ["ErrorEvent", "SSEDecoder"]

_BOM = b"\xef\xbb\xbf"


class ErrorEvent(str):
    """The data of an ``event: error`` (empty when it had none): a ``str`` like any
    event's data, told apart by its class."""

    __slots__ = ()


class SSEDecoder:
    """Incremental SSE parser; see the module docstring.

    ``max_line_bytes`` bounds one line and one event's data (default
    :data:`~langchain_kimi._limits.MAX_SSE_LINE_BYTES`, read when the decoder
    is made).
    """

    __slots__ = (
        "_data_lines",
        "_data_size",
        "_error_event",
        "_max_line_bytes",
        "_pending",
        "_pending_cr",
        "_pending_size",
        "_start",
    )

    def __init__(self, max_line_bytes: int | None = None) -> None:
        self._max_line_bytes = MAX_SSE_LINE_BYTES if max_line_bytes is None else max_line_bytes
        # The pieces of an unfinished line, joined once when it ends: adding
        # each read to one bytes object would copy the whole line every time.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._pending_cr = False  # the last byte fed was a CR (maybe half of a CRLF)
        self._data_lines: list[str] = []
        self._data_size = 0  # bytes of the current event's data lines, once there are two
        self._error_event = False  # the current event is an ``event: error``
        # The first bytes, until they tell whether the stream starts with a
        # byte-order mark (which can arrive split across reads); None after.
        self._start: bytes | None = b""

    def feed(self, chunk: bytes) -> list[str]:
        """Consume ``chunk``; return the data of every event it completed."""
        if self._start is not None:
            chunk = self._start + chunk
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                self._start = chunk  # maybe the start of a byte-order mark
                return []
            self._start = None
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        if not chunk:
            return []
        if self._pending_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]  # the LF of a CRLF split across reads
        self._pending_cr = chunk[-1:] == b"\r"
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        pending = self._pending
        if b"\n" not in chunk:
            if chunk:  # the start, or another piece, of a line whose end is to come
                size = (self._pending_size if pending else 0) + len(chunk)
                if size > self._max_line_bytes:
                    raise self._line_too_long()
                pending.append(chunk)
                self._pending_size = size
            return []
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if pending:
            # The line that was waiting for its end: its pieces joined, once.
            head = lines[0]
            if self._pending_size + len(head) > self._max_line_bytes:
                raise self._line_too_long()
            pending.append(head)
            lines[0] = b"".join(pending)
            pending.clear()
        if tail:
            if len(tail) > self._max_line_bytes:
                raise self._line_too_long()
            pending.append(tail)
            self._pending_size = len(tail)
        # Only a read larger than the limit can hold a whole line over it.
        if len(chunk) > self._max_line_bytes and any(
            len(line) > self._max_line_bytes for line in lines
        ):
            raise self._line_too_long()
        events: list[str] = []
        data_lines = self._data_lines
        try:
            for line in lines:
                if not line:
                    if self._error_event:
                        events.append(ErrorEvent("\n".join(data_lines)))
                        data_lines = self._data_lines = []
                        self._error_event = False
                    elif data_lines:
                        events.append(
                            data_lines[0] if len(data_lines) == 1 else "\n".join(data_lines)
                        )
                        data_lines = self._data_lines = []
                elif line.startswith(b"data:"):
                    value = line[6:] if line[5:6] == b" " else line[5:]
                    if data_lines:
                        self._add_data_line(value.decode("utf-8"), len(value))
                    else:
                        data_lines.append(value.decode("utf-8"))
                elif line.startswith(b"event:"):
                    kind = line[7:] if line[6:7] == b" " else line[6:]
                    self._error_event = kind == b"error"
                # Comments (":...") and the id/retry fields carry nothing Kimi uses.
        except UnicodeDecodeError as err:
            error = _not_utf8(err)
        else:
            return events
        # Raised here, not in the except clause: the UnicodeDecodeError holds the
        # whole line and would ride along as __context__.
        raise error

    def flush(self) -> list[str]:
        """End of input: dispatch an event left without its closing blank line."""
        # Two line ends finish whatever is pending: the last line, then its event.
        return self.feed(b"\n\n")

    def _add_data_line(self, text: str, size: int) -> None:
        """A second or later data line of one event (rare): bound the event's total too."""
        data_lines = self._data_lines
        if len(data_lines) == 1:
            self._data_size = len(data_lines[0].encode("utf-8"))
        self._data_size += 1 + size
        if self._data_size > self._max_line_bytes:
            raise KimiResponseError(
                f"a stream event's data is longer than {self._max_line_bytes:,} bytes "
                "(the limit for one event); the stream was not read further"
            )
        data_lines.append(text)

    def _line_too_long(self) -> KimiResponseError:
        self._pending.clear()  # free what was buffered: the decoder is done
        self._pending_size = 0
        return KimiResponseError(
            f"a stream line is longer than {self._max_line_bytes:,} bytes "
            "(the limit for one line); the stream was not read further"
        )


def _not_utf8(err: UnicodeDecodeError) -> KimiResponseError:
    # The bytes are not quoted: a message must not carry what a server echoed
    # (it could be the token).
    return KimiResponseError(
        f"the stream is not valid UTF-8 ({err.reason} at byte {err.start} of a data line)"
    )
