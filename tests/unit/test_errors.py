"""Error bodies of both services -> typed exceptions with code, message and trace_id."""

from __future__ import annotations

import json

import pytest

from langchain_kimi.errors import (
    KimiAPIError,
    KimiAuthenticationError,
    KimiBadRequestError,
    KimiPermissionError,
    KimiRateLimitError,
    KimiServerError,
    error_from_status,
    redact_secrets,
)
from tests.fixtures.load import docs_json

BODIES = docs_json("errors.json")


def body(label: str) -> str:
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


# --- redaction ---------------------------------------------------------------------

SECRET = "sk-Zq7-unit-SECRET"


def test_redact_secrets_walks_strings_dicts_lists_and_tuples() -> None:
    value = {
        f"key {SECRET}": [f"a {SECRET} b", (f"Bearer {SECRET}",), 3, None],
        "auth": "authorization: BEARER someone.else-token==",
    }
    assert redact_secrets(value, [SECRET]) == {
        "key [REDACTED]": ["a [REDACTED] b", ("Bearer [REDACTED]",), 3, None],
        "auth": "authorization: BEARER [REDACTED]",
    }
    assert redact_secrets(42, [SECRET]) == 42
    assert redact_secrets("nothing to hide", []) == "nothing to hide"


def test_redact_secrets_finds_a_secret_in_its_json_escaped_form() -> None:
    odd = 'pa"ss\\word'
    raw = json.dumps({"echo": odd})  # the secret as it appears inside raw JSON text
    assert odd not in raw
    assert "[REDACTED]" in redact_secrets(raw, [odd])


def test_error_from_status_redacts_message_and_body() -> None:
    raw = json.dumps(
        {
            "error": {"code": "bad", "message": f"header Authorization: Bearer {SECRET}"},
            "echo": {"x-api-key": SECRET},
        }
    )
    err = error_from_status(400, raw, secrets=[SECRET])
    assert SECRET not in str(err) and SECRET not in repr(err.body) and SECRET not in err.message
    assert err.message == "header Authorization: Bearer [REDACTED]"
    assert err.body["echo"] == {"x-api-key": "[REDACTED]"}


def test_a_secret_behind_json_escapes_is_redacted_whole() -> None:
    escaped = "".join(f"\\u{ord(c):04x}" for c in SECRET)
    raw = '{"error": {"message": "Bearer ' + escaped + " and " + escaped + '"}}'
    err = error_from_status(401, raw, secrets=[SECRET])
    assert err.message == "Bearer [REDACTED] and [REDACTED]"
    assert "Zq7" not in str(err)


def test_an_excerpt_never_shows_part_of_a_secret() -> None:
    # The token straddles the point where a long page is cut for the message.
    page = "<html>" + "x" * 285 + f" {SECRET} " + "y" * 500 + "</html>"
    err = error_from_status(502, page, secrets=[SECRET])
    assert "Zq7" not in str(err) and "sk-" not in str(err)
    assert SECRET not in err.body


def test_without_secrets_only_bearer_values_are_redacted() -> None:
    err = error_from_status(400, '{"error": {"message": "Bearer abc.def and sk-visible"}}')
    assert err.message == "Bearer [REDACTED] and sk-visible"
