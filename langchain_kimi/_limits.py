"""How much of an answer the client accepts: one place, so every reader agrees.

A service (or anything posing as one) can send more than any real answer holds:
a gzip body that inflates a thousandfold, an error page of gigabytes, one SSE
line that never ends. Each reader stops at its limit and raises
:class:`~langchain_kimi.KimiResponseError` instead of buffering without end.

The limits sit well above the largest real answer. kimi-k3 can write up to
1,048,576 tokens; at about four characters a token, and up to six bytes a
character once JSON escapes non-ASCII text (``\\u4f60``), that is about 25 MB of
JSON for a whole completion with its reasoning.
"""

from __future__ import annotations

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""Decoded size of a non-streamed answer's body (after gzip/deflate are undone)."""

MAX_SSE_LINE_BYTES = MAX_RESPONSE_BYTES
"""One line of a stream: an event's data can hold a whole answer (a proxy that
sends everything in one delta), so it gets the same limit as a whole body."""

MAX_ERROR_BODY_BYTES = 64 * 1024
"""What is read of an error answer: enough for any JSON error body; a gateway's
HTML page is only quoted, so its start is all the message needs."""

MAX_CHOICES = 128
"""Choices in one answer. Services cap ``n`` far below this (Moonshot at 5, OpenAI's
API at 128); each choice becomes a message of a few KB, so a body of many empty
choices would otherwise cost a hundred times its size."""
