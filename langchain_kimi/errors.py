"""Exceptions raised by :class:`~langchain_kimi.ChatKimi`.

Every error the package raises on purpose derives from :class:`KimiError`, so one
``except KimiError`` catches them all. Errors the service answered carry what a
support ticket needs: the HTTP status, the service's error code and message, and
the ``trace_id`` Ace Data Cloud attaches to its error bodies.

Usage::

    from langchain_kimi import ChatKimi, KimiRateLimitError, KimiAPIError

    try:
        ChatKimi().invoke("hi")
    except KimiRateLimitError as err:
        print("slow down, retry after", err.retry_after)
    except KimiAPIError as err:
        print(err.status_code, err.code, err.message, err.trace_id)

No error text ever contains the API token: messages are built from the service's
answer and never from the request headers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = [
    "KimiAPIError",
    "KimiAuthenticationError",
    "KimiBadRequestError",
    "KimiConnectionError",
    "KimiError",
    "KimiNotFoundError",
    "KimiPermissionError",
    "KimiRateLimitError",
    "KimiResponseError",
    "KimiServerError",
    "KimiStreamInterruptedError",
    "KimiStreamTimeoutError",
    "KimiTimeoutError",
]

# Bodies can be large HTML pages; an exception message needs only their start.
_BODY_EXCERPT_CHARS = 300


class KimiError(Exception):
    """Base class of every error raised by langchain-kimi."""


class KimiAPIError(KimiError):
    """The service answered with an error status (or an error event in a stream).

    Attributes:
        status_code: HTTP status of the answer (200 for an error event in a stream).
        code: the service's error code (``"invalid_token"``, ``"used_up"``,
            ``"invalid_request_error"``...), or None when the body had none.
        message: the service's human-readable message.
        trace_id: Ace Data Cloud's request id; quote it to their support.
        body: the decoded JSON body, or the raw text when it was not JSON.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        trace_id: str | None = None,
        body: Any = None,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.message = message
        self.trace_id = trace_id
        self.body = body
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"Kimi API error {self.status_code}"]
        if self.code:
            parts[0] += f" ({self.code})"
        text = f"{parts[0]}: {self.message}"
        if self.trace_id:
            text += f" [trace_id: {self.trace_id}]"
        return text


class KimiBadRequestError(KimiAPIError):
    """400: the service refused the request as malformed or unsupported."""


class KimiAuthenticationError(KimiAPIError):
    """401: the token is missing, wrong or expired."""


class KimiPermissionError(KimiAPIError):
    """403: balance exhausted (``code == "used_up"``), resource disabled, or content blocked."""

    @property
    def used_up(self) -> bool:
        """True when the account's balance is exhausted."""
        return self.code == "used_up"


class KimiNotFoundError(KimiAPIError):
    """404: wrong ``base_url`` or an unknown model."""


class KimiRateLimitError(KimiAPIError):
    """429: too many requests. ``retry_after`` holds the server's hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class KimiServerError(KimiAPIError):
    """5xx (or 408): the service or a gateway in front of it failed."""


class KimiConnectionError(KimiError):
    """No answer was received: the connection failed or was reset before a response."""


class KimiTimeoutError(KimiError):
    """Connecting or reading took longer than the configured timeout."""


class KimiResponseError(KimiError):
    """The answer could not be understood: not JSON, a malformed stream line, a missing field."""


class KimiStreamInterruptedError(KimiError):
    """A response ended before it was complete (no ``[DONE]``, connection dropped, stall).

    Nothing is retried once output has been received, because a retry can be
    charged twice. ``partial_content`` and ``partial_reasoning`` hold what arrived
    before the interruption so the caller can decide what to do with it.
    """

    def __init__(
        self, message: str, *, partial_content: str = "", partial_reasoning: str = ""
    ) -> None:
        self.partial_content = partial_content
        self.partial_reasoning = partial_reasoning
        super().__init__(message)


class KimiStreamTimeoutError(KimiStreamInterruptedError, KimiTimeoutError):
    """A response stalled mid-way for longer than the read timeout.

    Both a :class:`KimiTimeoutError` and a :class:`KimiStreamInterruptedError`:
    catch either; ``partial_content`` holds what arrived before the stall.
    """


_STATUS_CLASSES: dict[int, type[KimiAPIError]] = {
    400: KimiBadRequestError,
    401: KimiAuthenticationError,
    403: KimiPermissionError,
    404: KimiNotFoundError,
    429: KimiRateLimitError,
}


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _BODY_EXCERPT_CHARS:
        return text[:_BODY_EXCERPT_CHARS] + "..."
    return text


def parse_error_body(raw: bytes | str) -> tuple[str | None, str, str | None, Any]:
    """Read (code, message, trace_id, body) from any error body the services send.

    Handles Ace Data Cloud's ``{"error": {"code", "message"}, "trace_id"}``,
    Moonshot's ``{"error": {"message", "type"}}``, ``{"error": "text"}``,
    ``{"error": null}`` and bodies that are not JSON at all (gateway HTML pages).
    """
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        body: Any = json.loads(text)
    except ValueError:
        return None, _excerpt(text) if text.strip() else "(empty body)", None, text
    if not isinstance(body, dict):
        return None, _excerpt(text), None, body
    trace_id = body.get("trace_id")
    trace = str(trace_id) if trace_id else None
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        message = error.get("message") or _excerpt(json.dumps(error))
        return (str(code) if code else None), str(message), trace, body
    if isinstance(error, str) and error:
        return None, error, trace, body
    message = body.get("message") or body.get("detail")
    return None, str(message) if message else _excerpt(text), trace, body


def error_from_status(
    status_code: int,
    raw: bytes | str,
    retry_after: float | None = None,
    *,
    secrets: Sequence[str] = (),
) -> KimiAPIError:
    """Build the typed error for an HTTP error answer; ``secrets`` never show in it."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    code, message, trace_id, body = parse_error_body(text)
    if status_code == 429:
        return KimiRateLimitError(
            message,
            retry_after=retry_after,
            status_code=status_code,
            code=code,
            trace_id=trace_id,
            body=body,
        )
    if status_code == 403 and code == "used_up":
        message = f"{message} (the account's balance is used up: top it up at Ace Data Cloud)"
    cls = _STATUS_CLASSES.get(status_code)
    if cls is None:
        cls = KimiServerError if status_code >= 500 or status_code == 408 else KimiAPIError
    return cls(message, status_code=status_code, code=code, trace_id=trace_id, body=body)
