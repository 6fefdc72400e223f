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
answer and never from the request headers, and what the answer quotes is passed
through :func:`redact_secrets` first: a gateway that echoes the request (its
``Authorization`` header included) shows ``Bearer [REDACTED]``, in the message
and in ``body`` alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, TypeVar

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
    "KimiToolChoiceError",
    "parse_error_body",
    "parse_error_json",
    "redact_secrets",
]

# Moonshot's code (error type) for a 429 sent because the available balance is used up.
QUOTA_EXCEEDED_CODE = "exceeded_current_quota_error"
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
        partial_content, partial_reasoning: for an error event that ended a
            stream, the text (and reasoning) that had arrived before it; empty
            otherwise.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        trace_id: str | None = None,
        body: Any = None,
        partial_content: str = "",
        partial_reasoning: str = "",
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.message = message
        self.trace_id = trace_id
        self.body = body
        self.partial_content = partial_content
        self.partial_reasoning = partial_reasoning
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
    """429: too many requests. ``retry_after`` holds the server's hint in seconds.

    Moonshot also answers 429 (``code == "exceeded_current_quota_error"``,
    :attr:`quota_exceeded`) when the account's available balance is used up:
    waiting does not help, so that one is not retried; ``model.balance()`` shows it.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)

    @property
    def quota_exceeded(self) -> bool:
        """True when Moonshot refused because the account's balance is used up."""
        return self.code == QUOTA_EXCEEDED_CODE


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


class KimiToolChoiceError(KimiError):
    """The model answered without the tool call a forced ``tool_choice`` asked for.

    Some models refuse a forced ``tool_choice`` (``"required"``, ``"any"``, a named
    tool) in every mode: kimi-k2.6, the kimi-k2.7-code models, kimi-k2-thinking.
    ChatKimi emulates it there (``"auto"``, only the named tool offered, and an
    instruction to call it) and checks the answer; an answer that calls no tool
    (or not the named one) raises this instead of passing for an honoured choice.
    For a stream it is raised at the end, after the chunks (the text was already
    yielded). Nothing is retried: asking again is the caller's choice.

    Attributes:
        model: the model name, as sent.
        tool_choice: ``"required"``, or the name of the tool that was forced.
        content: the text the model answered instead (possibly empty).
        called: the names of the tools it called instead, if any.

    Usage::

        try:
            ai = ChatKimi(model="kimi-k2.6").bind_tools([f], tool_choice="f").invoke(q)
        except KimiToolChoiceError as err:
            print(err.model, "declined; it said:", err.content)
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        tool_choice: str,
        content: str = "",
        called: tuple[str, ...] = (),
    ) -> None:
        self.model = model
        self.tool_choice = tool_choice
        self.content = content
        self.called = called
        super().__init__(message)


_STATUS_CLASSES: dict[int, type[KimiAPIError]] = {
    400: KimiBadRequestError,
    401: KimiAuthenticationError,
    403: KimiPermissionError,
    404: KimiNotFoundError,
    429: KimiRateLimitError,
}


REDACTED = "[REDACTED]"
# An RFC 6750 bearer token; whatever follows "Bearer " up to a character no token has.
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9\-._~+/]+=*")

_V = TypeVar("_V")


def redact_secrets(value: _V, secrets: Iterable[str] = ()) -> _V:
    """``value`` with every secret, and every ``Bearer <token>``, replaced by ``[REDACTED]``.

    Walks strings, and the strings inside dicts (keys too), lists and tuples;
    anything else is returned as it is. A secret is also found in its JSON
    escaped form (as it appears inside a raw JSON body). Used on everything an
    error keeps from an answer: message, code, trace id, body.

    Usage::

        redact_secrets({"echo": "Authorization: Bearer sk-1"}, ["sk-1"])
        # {'echo': 'Authorization: Bearer [REDACTED]'}
    """
    forms = _secret_forms(secrets)
    return _redact(value, forms)  # type: ignore[no-any-return]


def _secret_forms(secrets: Iterable[str]) -> tuple[str, ...]:
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        forms.add(secret)
        forms.add(json.dumps(secret)[1:-1])  # as written inside a JSON string
        forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
        if "/" in secret:  # JSON may escape "/" too (PHP's encoder does)
            forms.add(json.dumps(secret)[1:-1].replace("/", "\\/"))
    # Longest first: a secret that contains another is replaced whole.
    return tuple(sorted(forms, key=len, reverse=True))


def _redact(value: Any, forms: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for form in forms:
            if form in value:
                value = value.replace(form, REDACTED)
        return _BEARER.sub(rf"\1\2{REDACTED}", value)
    if isinstance(value, dict):
        return {_redact(key, forms): _redact(item, forms) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact(item, forms) for item in value]
    if isinstance(value, tuple):
        return tuple(_redact(item, forms) for item in value)
    return value


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _BODY_EXCERPT_CHARS:
        return text[:_BODY_EXCERPT_CHARS] + "..."
    return text


def parse_error_body(
    raw: bytes | str, *, secrets: Iterable[str] = ()
) -> tuple[str | None, str, str | None, Any]:
    """Read (code, message, trace_id, body) from any error body the services send.

    Handles Ace Data Cloud's ``{"error": {"code", "message"}, "trace_id"}``,
    Moonshot's ``{"error": {"message", "type"}}``, ``{"error": "text"}``,
    ``{"error": null}`` and bodies that are not JSON at all (gateway HTML pages).
    ``secrets`` (and any ``Bearer`` token) are redacted from all four, before
    anything is cut short to an excerpt.
    """
    forms = _secret_forms(secrets)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses
        text = _redact(text, forms)
        return None, _excerpt(text) if text.strip() else "(empty body)", None, text
    return _read_error_json(decoded, forms)


def parse_error_json(
    body: Any, *, secrets: Iterable[str] = ()
) -> tuple[str | None, str, str | None, Any]:
    """:func:`parse_error_body` for a body already decoded from JSON."""
    return _read_error_json(body, _secret_forms(secrets))


def _read_error_json(body: Any, forms: tuple[str, ...]) -> tuple[str | None, str, str | None, Any]:
    try:
        # JSON is redacted once decoded: in the raw text a secret can hide
        # behind \u escapes, and a half-redacted escape would show the rest.
        body = _redact(body, forms)
        text = json.dumps(body, ensure_ascii=False)
    except RecursionError:
        return None, "(an error body nested too deeply to show)", None, None
    if not isinstance(body, dict):
        return None, _excerpt(text), None, body
    trace_id = body.get("trace_id")
    trace = str(trace_id) if trace_id else None
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        message = error.get("message") or _excerpt(json.dumps(error, ensure_ascii=False))
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
    secrets: Iterable[str] = (),
) -> KimiAPIError:
    """Build the typed error for an HTTP error answer.

    ``secrets`` (the token, and any other value that must not be shown) are
    redacted from the message and the body the error keeps, as is any
    ``Bearer <token>``.
    """
    code, message, trace_id, body = parse_error_body(raw, secrets=secrets)
    if status_code == 429 and code == QUOTA_EXCEEDED_CODE:
        message = (
            f"{message} (the account's available balance is used up: check it with "
            "model.balance() and recharge; not retried)"
        )
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
