"""Error bodies of both services -> typed exceptions with code, message and trace_id."""

from __future__ import annotations

import pytest

from langchain_kimi.errors import (
    KimiAPIError,
    KimiAuthenticationError,
    KimiBadRequestError,
    KimiPermissionError,
    KimiRateLimitError,
    KimiServerError,
    error_from_status,
)
from tests.fixtures.load import docs_json

BODIES = docs_json("errors.json")


def body(label: str) -> str:
    import json

    return json.dumps(BODIES[label])


@pytest.mark.parametrize(
    ("label", "status", "cls", "code", "trace_id"),
    [
        (
            "400 token_mismatched",
            400,
            KimiBadRequestError,
            "token_mismatched",
            "2efa9340-b21b-4e26-9e14-4aac95f343ab",
        ),
        (
            "401 invalid_token",
            401,
            KimiAuthenticationError,
            "invalid_token",
            "2efa9340-b21b-4e26-9e14-4aac95f343ab",
        ),
        (
            "429 too_many_requests",
            429,
            KimiRateLimitError,
            "too_many_requests",
            "2efa9340-b21b-4e26-9e14-4aac95f343ab",
        ),
        (
            "500 api_error",
            500,
            KimiServerError,
            "api_error",
            "2cf86e86-22a4-46e1-ac2f-032c0f2a4e89",
        ),
        ("400 moonshot reasoning missing", 400, KimiBadRequestError, "invalid_request_error", None),
    ],
)
def test_documented_bodies(
    label: str, status: int, cls: type, code: str, trace_id: str | None
) -> None:
    err = error_from_status(status, body(label))
    assert type(err) is cls
    assert err.status_code == status
    assert err.code == code
    assert err.trace_id == trace_id
    assert err.message == BODIES[label]["error"]["message"]
    assert err.message in str(err)
    if trace_id:
        assert trace_id in str(err)


def test_string_error_body() -> None:
    err = error_from_status(402, body("402 string error"))
    assert type(err) is KimiAPIError
    assert err.message == "Facilitator verify returned empty body"
    assert err.code is None


def test_null_error_and_html_and_empty_bodies() -> None:
    assert "null" in error_from_status(500, '{"error": null}').message
    html = "<html><head><title>502 Bad Gateway</title></head><body>" + "x" * 5000 + "</body></html>"
    err = error_from_status(502, html)
    assert isinstance(err, KimiServerError)
    assert "502 Bad Gateway" in err.message
    assert len(err.message) < 400  # a gateway page is quoted, not dumped
    assert error_from_status(503, b"").message == "(empty body)"


def test_used_up_says_the_balance_is_exhausted() -> None:
    raw = '{"success": false, "error": {"code": "used_up", "message": "Insufficient balance"}, "trace_id": "t-1"}'
    err = error_from_status(403, raw)
    assert isinstance(err, KimiPermissionError)
    assert err.used_up
    assert "balance" in str(err) and "t-1" in str(err)


def test_rate_limit_carries_retry_after() -> None:
    err = error_from_status(429, body("429 too_many_requests"), retry_after=3.0)
    assert isinstance(err, KimiRateLimitError)
    assert err.retry_after == 3.0
