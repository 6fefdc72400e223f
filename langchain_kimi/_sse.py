"""Server-sent events: raw bytes as they arrive -> the ``data`` of each event. Pure.

The decoder is incremental: feed it whatever the socket produced (a byte, a
line, half a UTF-8 character, ten events) and it returns the events completed so
far. Lines may end in ``\\n``, ``\\r\\n`` or ``\\r``; comment lines (``:``) and
fields other than ``data`` are ignored; an event's data lines are joined with
``\\n`` and the event is dispatched at the blank line that ends it.

Usage::

    decoder = SSEDecoder()
    for piece in response_bytes:
        for data in decoder.feed(piece):
            handle(data)            # e.g. '{"choices": [...]}' or '[DONE]'
    for data in decoder.flush():    # an event the server did not end with a blank line
        handle(data)
"""

from __future__ import annotations

__all__ = ["SSEDecoder"]


class SSEDecoder:
    """Incremental SSE parser; see the module docstring."""

    __slots__ = ("_data_lines", "_pending", "_pending_cr")

    def __init__(self) -> None:
        self._pending = b""  # an unfinished line
        self._pending_cr = False  # the last byte fed was a CR (maybe half of a CRLF)
        self._data_lines: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        """Consume ``chunk``; return the data of every event it completed."""
        if not chunk:
            return []
        if self._pending_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]  # the LF of a CRLF split across reads
        self._pending_cr = chunk[-1:] == b"\r"
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in chunk:
            self._pending += chunk
            return []
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        events: list[str] = []
        for line in lines:
            self._line(line, events)
        return events

    def flush(self) -> list[str]:
        """End of input: dispatch an event left without its closing blank line."""
        events: list[str] = []
        if self._pending:
            self._line(self._pending, events)
            self._pending = b""
        if self._data_lines:
            events.append("\n".join(self._data_lines))
            self._data_lines = []
        return events

    def _line(self, line: bytes, events: list[str]) -> None:
        if not line:
            if self._data_lines:
                events.append(
                    self._data_lines[0]
                    if len(self._data_lines) == 1
                    else "\n".join(self._data_lines)
                )
                self._data_lines = []
            return
        if line.startswith(b"data:"):
            value = line[6:] if line[5:6] == b" " else line[5:]
            self._data_lines.append(value.decode("utf-8"))
        # Comments (":...") and the event/id/retry fields carry nothing Kimi uses.
