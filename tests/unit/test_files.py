"""The pure parts of the Files API and the platform transport: answers read, resending decided.

No sockets: the file object and the balance read from answers (malformed ones
raise), the two forms of a content answer, and which failures each kind of
platform request may be resent after.
"""

from __future__ import annotations

import json

import pytest

from langchain_kimi import KimiBalance, KimiFile, KimiResponseError
from langchain_kimi._platform import expect_object, path_segment
from langchain_kimi._transport import (
    Endpoint,
    Failure,
    PlatformAnswer,
    PlatformRequest,
    Resend,
    RetryPolicy,
    platform_endpoint,
    resend_failure,
    resend_policy,
)
from langchain_kimi.files import _content_text

FILE = {
    "id": "clg681objj8g9m7n4je0",
    "object": "file",
    "bytes": 499719,
    "created_at": 1698737226,
    "filename": "paper.pdf",
    "purpose": "file-extract",
    "status": "ok",
    "status_details": "",
}


def test_the_file_object_from_the_references_example() -> None:
    uploaded = KimiFile.from_answer(FILE)
    assert uploaded == KimiFile(
        id="clg681objj8g9m7n4je0",
        filename="paper.pdf",
        bytes=499719,
        purpose="file-extract",
        status="ok",
        created_at=1698737226,
    )
    assert uploaded.reference == "ms://clg681objj8g9m7n4je0"
    with pytest.raises(AttributeError):
        uploaded.id = "other"  # type: ignore[misc]


@pytest.mark.parametrize("body", [[], "text", None, {"object": "file"}, {**FILE, "id": ""}])
def test_a_file_object_without_an_id_raises(body: object) -> None:
    with pytest.raises(KimiResponseError):
        KimiFile.from_answer(body)


def test_the_balance_from_the_references_example() -> None:
    answer = {
        "code": 0,
        "data": {"available_balance": 49.58894, "voucher_balance": 46.58893, "cash_balance": -3},
        "scode": "0x0",
        "status": True,
    }
    assert KimiBalance.from_answer(answer) == KimiBalance(49.58894, 46.58893, -3.0)


@pytest.mark.parametrize(
    "answer",
    [
        {},
        {"data": None},
        {"data": {"available_balance": 1.0, "voucher_balance": 1.0}},
        {"data": {"available_balance": "1", "voucher_balance": 1.0, "cash_balance": 0}},
        {"data": {"available_balance": True, "voucher_balance": 1.0, "cash_balance": 0}},
    ],
)
def test_a_malformed_balance_raises(answer: object) -> None:
    with pytest.raises(KimiResponseError):
        KimiBalance.from_answer(answer)


WRAPPED = {
    "content": "the text",
    "file_type": "application/pdf",
    "filename": "a.pdf",
    "title": "",
    "type": "file",
}


@pytest.mark.parametrize(
    ("body", "content_type", "text"),
    [
        (b"the text", "text/plain; charset=utf-8", "the text"),
        (json.dumps(WRAPPED).encode(), "application/json", "the text"),
        (json.dumps(WRAPPED).encode(), "", "the text"),
        # text/plain is the reference's form: its body is the text, whatever it looks like.
        (json.dumps(WRAPPED).encode(), "text/plain", json.dumps(WRAPPED)),
        # JSON that is not the wrapper is the file's text.
        (b'{"content": "x"}', "application/json", '{"content": "x"}'),
        (b"[1, 2]", "application/json", "[1, 2]"),
        ("déjà vu".encode(), "application/octet-stream", "déjà vu"),
    ],
)
def test_content_in_either_form(body: bytes, content_type: str, text: str) -> None:
    assert _content_text(PlatformAnswer(body, content_type), "cl1") == text


def test_content_that_is_not_text_raises() -> None:
    with pytest.raises(KimiResponseError, match="not text"):
        _content_text(PlatformAnswer(b"\x89PNG\r\n\x1a\n\xff\xfe", "image/png"), "cl1")


def test_ids_become_one_path_segment() -> None:
    assert path_segment("cl123", "file_id") == "cl123"
    assert path_segment("a/b?c#d", "file_id") == "a%2Fb%3Fc%23d"
    for bad in ("", "  "):
        with pytest.raises(ValueError, match="file_id"):
            path_segment(bad, "file_id")
    with pytest.raises(KimiResponseError, match="the list"):
        expect_object([], "the list")


POLICY = RetryPolicy(max_retries=2)
OPTED_IN = RetryPolicy(max_retries=2, retry_on_ambiguous_failure=True)


def test_reads_are_resent_after_a_loss_once_sent() -> None:
    assert resend_policy(POLICY, Resend.READ).retries(Failure.LOST_BEFORE_ANSWER)
    assert not resend_policy(POLICY, Resend.READ).retries(Failure.READ_TIMEOUT)


def test_deletes_follow_the_models_policy() -> None:
    assert resend_policy(POLICY, Resend.AS_POLICY) is POLICY
    assert resend_policy(OPTED_IN, Resend.AS_POLICY) is OPTED_IN


@pytest.mark.parametrize("policy", [POLICY, OPTED_IN])
def test_creates_are_resent_only_when_the_service_did_not_take_them(policy: RetryPolicy) -> None:
    creates = resend_policy(policy, Resend.CREATE)
    assert not creates.retries(Failure.LOST_BEFORE_ANSWER)
    assert creates.retries(Failure.CONNECT_FAILED) and creates.retries(Failure.CONNECT_TIMEOUT)
    for status in (408, 429):
        assert resend_failure(Resend.CREATE, Failure.RETRYABLE_STATUS, status) is (
            Failure.RETRYABLE_STATUS
        )
    for status in (500, 502, 503, 504):
        assert resend_failure(Resend.CREATE, Failure.RETRYABLE_STATUS, status) is (
            Failure.ERROR_STATUS
        )
        assert resend_failure(Resend.READ, Failure.RETRYABLE_STATUS, status) is (
            Failure.RETRYABLE_STATUS
        )


def test_a_platform_request_keeps_the_token_and_drops_the_chat_body_type() -> None:
    chat = Endpoint(
        url="https://api.moonshot.ai/v1/chat/completions",
        headers={
            "Authorization": "Bearer sk-unit",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "X-Team": "red",
        },
        connect_timeout=5,
        read_timeout=60,
        retry=POLICY,
        secrets=("sk-unit",),
    )
    get = platform_endpoint(
        chat, PlatformRequest("GET", "https://api.moonshot.ai/v1/files", Resend.READ)
    )
    assert get.url == "https://api.moonshot.ai/v1/files"
    assert get.headers == {"Authorization": "Bearer sk-unit", "X-Team": "red", "Accept": "*/*"}
    assert get.secrets == ("sk-unit",) and get.retry is POLICY
    post = platform_endpoint(
        chat, PlatformRequest("POST", "https://x/v1/batches", Resend.CREATE, json_body=b"{}")
    )
    assert post.headers["Content-Type"] == "application/json"
    assert "sk-unit" not in repr(post)
