"""The fault matrix: every network and service failure, sync and async, invoke and stream.

Each case checks three things: the exception type, how many requests the
simulator saw (a retry is a second charge, so the count is the point), and
that nothing incomplete reached the caller as if it were a finished answer.
Timeouts are small (0.5 s) and the backoff is patched to milliseconds
(``fast_backoff``), except where a test measures a real ``Retry-After`` wait.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    ToolMessage,
)

from langchain_kimi import (
    ChatKimi,
    KimiAPIError,
    KimiAuthenticationError,
    KimiBadRequestError,
    KimiConnectionError,
    KimiError,
    KimiNotFoundError,
    KimiPermissionError,
    KimiRateLimitError,
    KimiResponseError,
    KimiServerError,
    KimiStreamInterruptedError,
    KimiStreamTimeoutError,
    KimiTimeoutError,
    _transport,
)
from langchain_kimi.testing import FakeKimiServer, Reply

from .conftest import TOKEN

MODES = ["invoke", "stream", "ainvoke", "astream"]
STREAM_MODES = ["stream", "astream"]
TIMEOUT = 0.5
# A stall lasts far longer than the timeout; stop() ends it when the test is done.
STALL = 10.0
# Four-character pieces: the role delta, then "abcd", "efgh", "ijkl".
TEXT = "abcdefghijkl"


def make(server_or_url: FakeKimiServer | str, **kwargs: Any) -> ChatKimi:
    base_url = server_or_url if isinstance(server_or_url, str) else server_or_url.base_url
    settings: dict[str, Any] = {
        "base_url": base_url,
        "api_key": TOKEN,
        "max_retries": 2,
        "timeout": TIMEOUT,
        "connect_timeout": TIMEOUT,
        # No reasoning in the default reply: partial_content is then the whole story.
        "thinking": False,
    }
    settings.update(kwargs)
    return ChatKimi(**settings)


class Outcome:
    """What one call gave its caller: the chunks it saw, the answer, the error."""

    def __init__(self) -> None:
        self.chunks: list[AIMessageChunk] = []
        self.answer: str | None = None
        self.error: BaseException | None = None
        self.elapsed = 0.0

    def raised(self, error_type: type[BaseException]) -> Any:
        assert self.error is not None, f"expected {error_type.__name__}, got answer {self.answer!r}"
        assert isinstance(self.error, error_type), repr(self.error)
        # Never an answer, and never the closing chunk that marks a stream as complete.
        assert self.answer is None
        assert not any(chunk.chunk_position == "last" for chunk in self.chunks)
        return self.error

    def streamed_text(self) -> str:
        return "".join(str(chunk.content) for chunk in self.chunks)


def call(
    model: ChatKimi, mode: str, text: str | list[BaseMessage] = "hi", **kwargs: Any
) -> Outcome:
    """Run one call in ``mode``; record what the caller received. Closes the model."""
    outcome = Outcome()
    started = time.monotonic()
    try:
        if mode == "invoke":
            outcome.answer = str(model.invoke(text, **kwargs).content)
        elif mode == "stream":
            for chunk in model.stream(text, **kwargs):
                assert isinstance(chunk, AIMessageChunk)
                outcome.chunks.append(chunk)
            outcome.answer = outcome.streamed_text()
        else:
            outcome.answer = asyncio.run(_acall(model, mode, text, outcome, kwargs))
    except Exception as err:
        outcome.error = err
    finally:
        outcome.elapsed = time.monotonic() - started
        model.close()
    return outcome


async def _acall(
    model: ChatKimi, mode: str, text: str | list[BaseMessage], outcome: Outcome, kwargs: Any
) -> str:
    # The async client belongs to this loop: close it here, errors or not.
    async with model:
        if mode == "ainvoke":
            return str((await model.ainvoke(text, **kwargs)).content)
        async for chunk in model.astream(text, **kwargs):
            assert isinstance(chunk, AIMessageChunk)
            outcome.chunks.append(chunk)
        return outcome.streamed_text()


@pytest.fixture
def retry_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="langchain_kimi")
    yield caplog


def retry_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "langchain_kimi" and "retry" in record.getMessage()
    ]


# --- retried: no answer yet, or the service said "try again" -----------------------

RETRIED = {
    # The simulator resets after reading the whole request: ambiguous, retried
    # only when the model opts in (see RETRY_SETTINGS).
    "reset": (Reply(fault="reset"), KimiConnectionError, "reset"),
    "408": (Reply.error(408, "timeout", "request timeout"), KimiServerError, "408"),
    "429": (
        Reply.error(429, "too_many_requests", "slow down", headers={"Retry-After": "0"}),
        KimiRateLimitError,
        "429",
    ),
    "500-json": (Reply.error(500, "api_error", "fetch failed"), KimiServerError, "fetch failed"),
    "502-html": (Reply.html(502), KimiServerError, "502"),
    "503-empty": (Reply(status=503, body=b""), KimiServerError, "503"),
    "504-html": (Reply.html(504), KimiServerError, "504"),
}
RETRY_SETTINGS: dict[str, dict[str, Any]] = {"reset": {"retry_on_ambiguous_failure": True}}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(RETRIED))
def test_retryable_failure_then_success(
    server: FakeKimiServer,
    fast_backoff: None,
    retry_logs: pytest.LogCaptureFixture,
    case: str,
    mode: str,
) -> None:
    fault, _, reason = RETRIED[case]
    server.queue(fault)
    outcome = call(make(server, max_retries=2, **RETRY_SETTINGS.get(case, {})), mode)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.answer == "Echo: hi"
    assert server.request_count == 2
    records = retry_records(retry_logs)
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    assert reason in records[0].getMessage()
    assert "retry 1 of 2" in records[0].getMessage()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(RETRIED))
def test_retryable_failure_gives_up_after_max_retries_plus_one(
    server: FakeKimiServer,
    fast_backoff: None,
    retry_logs: pytest.LogCaptureFixture,
    case: str,
    mode: str,
) -> None:
    fault, error_type, _ = RETRIED[case]
    server.queue(fault, fault, fault, Reply(content="never reached"))
    outcome = call(make(server, max_retries=2, **RETRY_SETTINGS.get(case, {})), mode)
    outcome.raised(error_type)
    assert server.request_count == 3  # max_retries + 1 attempts
    assert server.pending_replies == 1
    assert len(retry_records(retry_logs)) == 2


@pytest.mark.parametrize("mode", ["invoke", "astream"])
def test_max_retries_zero_disables_retries(server: FakeKimiServer, mode: str) -> None:
    server.queue(Reply.error(500, "api_error", "fetch failed"))
    outcome = call(make(server, max_retries=0), mode)
    outcome.raised(KimiServerError)
    assert server.request_count == 1


@pytest.mark.parametrize("mode", MODES)
def test_connection_refused_is_retried_then_raised(
    fast_backoff: None, retry_logs: pytest.LogCaptureFixture, mode: str
) -> None:
    # A server that was stopped: its port is closed, and it can count that nothing arrived.
    fake = FakeKimiServer(api_key=TOKEN).start()
    url = fake.base_url
    fake.stop()
    outcome = call(make(url, max_retries=2), mode)
    error = outcome.raised(KimiConnectionError)
    assert "127.0.0.1" in str(error)
    assert fake.request_count == 0
    # Three attempts: two retries, each logged with the reason.
    records = retry_records(retry_logs)
    assert len(records) == 2
    assert all("could not reach" in record.getMessage() for record in records)


# --- not retried: the service refused, or the answer had started ---------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_reset_after_the_whole_request_is_not_retried_by_default(
    server: FakeKimiServer, fast_backoff: None, retry_logs: pytest.LogCaptureFixture, mode: str
) -> None:
    # The simulator read the whole request before the reset: it may have served it.
    server.queue(Reply(fault="reset"), Reply(content="never reached"))
    outcome = call(make(server, max_retries=2), mode)
    error = outcome.raised(KimiConnectionError)
    assert "retry_on_ambiguous_failure" in str(error)
    assert server.request_count == 1
    assert retry_records(retry_logs) == []

REFUSED = {
    400: (Reply.error(400, "bad_request", "malformed"), KimiBadRequestError),
    401: (Reply.error(401, "invalid_token", "bad token"), KimiAuthenticationError),
    403: (Reply.error(403, "used_up", "balance used up"), KimiPermissionError),
    404: (Reply.error(404, "api_not_implemented", "no such api"), KimiNotFoundError),
    422: (Reply.error(422, "unprocessable", "cannot process"), KimiAPIError),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", list(REFUSED))
def test_client_errors_are_not_retried(
    server: FakeKimiServer,
    fast_backoff: None,
    retry_logs: pytest.LogCaptureFixture,
    status: int,
    mode: str,
) -> None:
    fault, error_type = REFUSED[status]
    server.queue(fault, Reply(content="never reached"))
    outcome = call(make(server, max_retries=3), mode)
    error = outcome.raised(error_type)
    assert error.status_code == status
    assert server.request_count == 1
    assert retry_records(retry_logs) == []


@pytest.mark.parametrize("mode", MODES)
def test_read_timeout_before_headers_is_not_retried(
    server: FakeKimiServer, fast_backoff: None, mode: str
) -> None:
    # No status line within the read timeout: the service may be working on it
    # (and charging for it), so a second attempt could be a second charge.
    server.queue(Reply(delay=STALL), Reply(content="never reached"))
    outcome = call(make(server, max_retries=3), mode)
    error = outcome.raised(KimiTimeoutError)
    assert not isinstance(error, KimiStreamInterruptedError)
    assert TIMEOUT <= outcome.elapsed < STALL / 2  # the timeout, not the stall, ended it
    assert server.request_count == 1


@pytest.mark.parametrize("mode", STREAM_MODES)
def test_stall_mid_stream_raises_stream_timeout_with_partial_content(
    server: FakeKimiServer, fast_backoff: None, mode: str
) -> None:
    server.queue(Reply(content=TEXT, fault="stall", fault_after=3, stall=STALL))
    outcome = call(make(server, max_retries=3), mode)
    error = outcome.raised(KimiStreamTimeoutError)
    # One exception, catchable as either kind.
    assert isinstance(error, KimiTimeoutError) and isinstance(error, KimiStreamInterruptedError)
    assert error.partial_content == "abcdefgh"
    assert outcome.streamed_text() == "abcdefgh"
    assert TIMEOUT <= outcome.elapsed < STALL / 2  # the timeout, not the stall, ended it
    assert server.request_count == 1


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_stall_mid_body_raises_timeout(
    server: FakeKimiServer, fast_backoff: None, mode: str
) -> None:
    server.queue(Reply(content=TEXT, fault="stall", fault_after=20, stall=STALL))
    outcome = call(make(server, max_retries=3), mode)
    outcome.raised(KimiTimeoutError)
    assert TIMEOUT <= outcome.elapsed < STALL / 2  # the timeout, not the stall, ended it
    assert server.request_count == 1


@pytest.mark.parametrize("mode", STREAM_MODES)
def test_disconnect_mid_stream_raises_interrupted_with_partial_content(
    server: FakeKimiServer, fast_backoff: None, mode: str
) -> None:
    server.queue(
        Reply(content=TEXT, fault="disconnect", fault_after=3), Reply(content="never reached")
    )
    outcome = call(make(server, max_retries=3), mode)
    error = outcome.raised(KimiStreamInterruptedError)
    assert not isinstance(error, KimiTimeoutError)
    assert error.partial_content == "abcdefgh"
    assert outcome.streamed_text() == "abcdefgh"
    assert "interrupted" in str(error)
    assert server.request_count == 1


@pytest.mark.parametrize("mode", STREAM_MODES)
def test_disconnect_just_before_done_is_still_an_interruption(
    server: FakeKimiServer, mode: str
) -> None:
    # Every event arrived, the finish chunk too: only [DONE] is missing. Still not complete.
    server.queue(Reply(content=TEXT, fault="disconnect", fault_after=99))
    outcome = call(make(server), mode)
    error = outcome.raised(KimiStreamInterruptedError)
    assert error.partial_content == TEXT
    assert server.request_count == 1


@pytest.mark.parametrize("mode", MODES)
def test_disconnect_after_headers_is_not_retried(
    server: FakeKimiServer, fast_backoff: None, mode: str
) -> None:
    # A 200 arrived: the service accepted the request, so it may be charged.
    server.queue(
        Reply(content=TEXT, fault="disconnect", fault_after=0), Reply(content="never reached")
    )
    outcome = call(make(server, max_retries=3), mode)
    error = outcome.raised(KimiStreamInterruptedError)
    assert error.partial_content == ""
    assert server.request_count == 1


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_disconnect_mid_body_is_interrupted(
    server: FakeKimiServer, fast_backoff: None, mode: str
) -> None:
    server.queue(
        Reply(content=TEXT, fault="disconnect", fault_after=30), Reply(content="never reached")
    )
    outcome = call(make(server, max_retries=3), mode)
    outcome.raised(KimiStreamInterruptedError)
    assert server.request_count == 1


@pytest.mark.parametrize("mode", MODES)
def test_malformed_data_line_names_the_line_and_is_not_retried(
    server: FakeKimiServer, fast_backoff: None, mode: str
) -> None:
    server.queue(
        Reply(content=TEXT, fault="malformed", fault_after=2), Reply(content="never reached")
    )
    outcome = call(make(server, max_retries=3), mode)
    error = outcome.raised(KimiResponseError)
    assert "{not json" in str(error)
    assert server.request_count == 1
    if mode in STREAM_MODES:
        assert outcome.streamed_text() == "abcd"  # what came before the bad line, no more


@pytest.mark.parametrize("mode", MODES)
def test_error_event_after_200_raises_api_error(
    server: FakeKimiServer, fast_backoff: None, mode: str
) -> None:
    server.queue(
        Reply(content=TEXT, fault="error_event", fault_after=2), Reply(content="never reached")
    )
    outcome = call(make(server, max_retries=3), mode)
    error = outcome.raised(KimiAPIError)
    assert error.status_code == 200
    assert error.message
    assert server.request_count == 1


@pytest.mark.parametrize("mode", STREAM_MODES)
def test_error_event_right_after_headers(server: FakeKimiServer, mode: str) -> None:
    server.queue(Reply(fault="error_event", fault_after=0))
    outcome = call(make(server), mode)
    outcome.raised(KimiAPIError)
    assert outcome.chunks == []
    assert server.request_count == 1


# --- bodies that are fine but awkward -------------------------------------------------

UNICODE = "héllo wörld — 你好，世界 🙂🎉 ça va?"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "reply",
    [
        Reply(content=UNICODE, fault="gzip"),
        Reply(content=UNICODE, fault="split_utf8", chunk_size=3),
        Reply(
            content=UNICODE,
            fault="split_utf8",
            fault_after=0,
            chunk_size=1,
            crlf=True,
            comments=True,
        ),
    ],
    ids=["gzip", "split-utf8", "split-utf8-crlf-comments"],
)
def test_awkward_encodings_decode_exactly(server: FakeKimiServer, reply: Reply, mode: str) -> None:
    server.queue(reply)
    outcome = call(make(server), mode)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.answer == UNICODE
    assert server.request_count == 1


@pytest.mark.parametrize("mode", MODES)
def test_very_large_body(server: FakeKimiServer, mode: str) -> None:
    size = 1_000_000
    server.queue(Reply.large(size))
    outcome = call(make(server, timeout=10.0), mode)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.answer is not None and len(outcome.answer) == size
    assert outcome.answer.startswith("The quick brown fox")
    assert server.request_count == 1


@pytest.mark.parametrize("mode", MODES)
def test_large_html_error_page_is_excerpted(
    server: FakeKimiServer, fast_backoff: None, mode: str
) -> None:
    page = "<html><body>" + "gateway trouble " * 50_000 + "</body></html>"
    server.queue(Reply.html(502, page))
    outcome = call(make(server, max_retries=0), mode)
    error = outcome.raised(KimiServerError)
    assert len(str(error)) < 1_000


# --- Retry-After ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_retry_after_seconds_is_honoured(
    server: FakeKimiServer, fast_backoff: None, retry_logs: pytest.LogCaptureFixture, mode: str
) -> None:
    # The backoff is patched to milliseconds: only the header explains the wait.
    server.queue(Reply.error(429, "too_many_requests", "slow down", headers={"Retry-After": "0.3"}))
    outcome = call(make(server), mode)
    assert outcome.answer == "Echo: hi"
    assert outcome.elapsed >= 0.3
    assert server.request_count == 2
    assert "in 0.30 s" in retry_records(retry_logs)[0].getMessage()


async def test_retry_after_http_date_is_honoured(
    server: FakeKimiServer, fast_backoff: None, retry_logs: pytest.LogCaptureFixture
) -> None:
    # A date already past means "now" (a date ahead counts down to it; HTTP
    # dates have whole-second resolution, so that is left to the unit tests).
    when = email.utils.formatdate(time.time() - 30, usegmt=True)
    server.queue(Reply.error(503, "unavailable", "later", headers={"Retry-After": when}))
    async with make(server) as model:
        message = await model.ainvoke("hi")
    assert message.content == "Echo: hi"
    assert server.request_count == 2
    (record,) = retry_records(retry_logs)
    assert "in 0.00 s" in record.getMessage()


@pytest.mark.parametrize("mode", ["invoke", "astream"])
def test_retry_after_is_capped(
    server: FakeKimiServer,
    fast_backoff: None,
    retry_logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    assert _transport.RetryPolicy.max_retry_after == 60.0  # the documented cap
    monkeypatch.setattr(_transport.RetryPolicy, "max_retry_after", 0.2)
    server.queue(
        Reply.error(429, "too_many_requests", "slow down", headers={"Retry-After": "86400"})
    )
    outcome = call(make(server), mode)
    assert outcome.answer == "Echo: hi"
    assert outcome.elapsed < 10  # a watchdog: without the cap the wait would be a day
    assert server.request_count == 2
    assert "in 0.20 s" in retry_records(retry_logs)[0].getMessage()


def test_rate_limit_error_carries_retry_after(server: FakeKimiServer, fast_backoff: None) -> None:
    server.queue(
        Reply.error(429, "too_many_requests", "slow down", headers={"Retry-After": "0.01"})
    )
    outcome = call(make(server, max_retries=0), "invoke")
    error = outcome.raised(KimiRateLimitError)
    assert error.retry_after == pytest.approx(0.01)


def test_backoff_defaults_and_full_jitter() -> None:
    policy = _transport.RetryPolicy(max_retries=2)
    assert (policy.base_delay, policy.max_delay, policy.max_retry_after) == (0.5, 8.0, 60.0)
    delays = [policy.delay(attempt, None) for attempt in range(10) for _ in range(50)]
    assert min(delays) >= 0.0 and max(delays) <= 8.0
    # Full jitter: spread from near zero, not a fixed ladder.
    assert len({round(delay, 6) for delay in delays}) > 400
    assert max(policy.delay(0, None) for _ in range(200)) <= 0.5
    assert policy.delay(0, 3.0) == 3.0 and policy.delay(0, 1e9) == 60.0


# --- bad input: refused before any request ------------------------------------------


def _tool_call_history() -> list[BaseMessage]:
    return [
        HumanMessage("weather?"),
        AIMessage(
            content="",
            tool_calls=[{"name": "weather", "args": {"when": object()}, "id": "weather:0"}],
            additional_kwargs={"reasoning_content": "look it up"},
        ),
        ToolMessage(content="sunny", tool_call_id="weather:0"),
    ]


BAD_MESSAGES: dict[str, tuple[list[BaseMessage], str]] = {
    "empty-list": ([], "empty"),
    "unknown-role": ([ChatMessage(role="wizard", content="x")], "role"),
    "empty-user-content": ([HumanMessage(content="")], "empty"),
    "invalid-base64": (
        [
            HumanMessage(
                content=[
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,@@not base64@@"},
                    }
                ]
            )
        ],
        "base64",
    ),
    "unsupported-mime": (
        [
            HumanMessage(
                content=[{"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}]
            )
        ],
        "image/tiff",
    ),
    "tool-args-not-json": (_tool_call_history(), "JSON"),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(BAD_MESSAGES))
def test_bad_messages_are_refused_before_any_request(
    server: FakeKimiServer, case: str, mode: str
) -> None:
    messages, named = BAD_MESSAGES[case]
    outcome = call(make(server), mode, messages)
    error = outcome.raised(ValueError)
    assert not isinstance(error, KimiError)
    assert named in str(error)
    assert server.request_count == 0


@pytest.mark.parametrize("mode", MODES)
def test_non_positive_max_tokens_at_call_time(server: FakeKimiServer, mode: str) -> None:
    outcome = call(make(server), mode, "hi", max_tokens=0)
    assert "max_tokens" in str(outcome.raised(ValueError))
    assert server.request_count == 0


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": -3}, "max_tokens"),
        ({"timeout": -1.0}, "timeout"),
        ({"connect_timeout": -0.5}, "connect_timeout"),
        ({"base_url": "ftp://127.0.0.1/kimi"}, "base_url"),
        ({"base_url": "127.0.0.1:8000/kimi"}, "base_url"),
    ],
)
def test_bad_settings_are_refused_at_construction(
    server: FakeKimiServer, settings: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        make(server, **settings)
    assert server.request_count == 0
