"""The retry policy, and the retry table of docs/errors.md read against it. No sockets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from langchain_kimi._transport import (
    RETRYABLE_STATUSES,
    Failure,
    RetryPolicy,
    delay_before_retry,
)
from langchain_kimi.errors import KimiConnectionError

ERRORS_PAGE = Path(__file__).parents[2] / "docs" / "errors.md"


def retry_table() -> list[tuple[str, str, str]]:
    """(failure, kind, retried) of each row of the table under "## What is retried"."""
    text = ERRORS_PAGE.read_text(encoding="utf-8")
    section = text.split("## What is retried", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].startswith("`"):
            rows.append((cells[0], cells[1].strip("`"), cells[2]))
    return rows


def test_the_table_has_one_row_per_failure_the_code_knows() -> None:
    kinds = [kind for _, kind, _ in retry_table()]
    assert sorted(kinds) == sorted(failure.value for failure in Failure)


@pytest.mark.parametrize(("failure", "kind", "retried"), retry_table(), ids=lambda v: v[:24])
def test_each_row_says_what_the_policy_does(failure: str, kind: str, retried: str) -> None:
    kind_of = Failure(kind)
    by_default, opted_in = RetryPolicy(), RetryPolicy(retry_on_ambiguous_failure=True)
    if retried == "yes":
        assert by_default.retries(kind_of) and opted_in.retries(kind_of)
    elif retried == "no":
        assert not by_default.retries(kind_of) and not opted_in.retries(kind_of)
    else:
        assert retried == "only with `retry_on_ambiguous_failure=True`"
        assert not by_default.retries(kind_of) and opted_in.retries(kind_of)


def test_the_retryable_statuses_row_lists_the_codes_statuses() -> None:
    (row,) = [failure for failure, kind, _ in retry_table() if kind == "retryable-status"]
    assert {int(code) for code in re.findall(r"`(\d{3})`", row)} == RETRYABLE_STATUSES


def test_only_provable_failures_are_retried_by_default() -> None:
    retried = {failure for failure in Failure if RetryPolicy().retries(failure)}
    assert retried == {Failure.CONNECT_FAILED, Failure.CONNECT_TIMEOUT, Failure.RETRYABLE_STATUS}


@pytest.mark.parametrize("failure", list(Failure))
def test_delay_before_retry_raises_what_the_policy_does_not_retry(failure: Failure) -> None:
    error = KimiConnectionError("lost")
    policy = RetryPolicy(max_retries=3)
    if policy.retries(failure):
        assert delay_before_retry(policy, 0, failure, error, 0.0, None) == 0.0
        with pytest.raises(KimiConnectionError):  # retries used up
            delay_before_retry(policy, 3, failure, error, 0.0, None)
    else:
        with pytest.raises(KimiConnectionError):
            delay_before_retry(policy, 0, failure, error, 0.0, None)
