"""Careless configuration (issue 19): refused before sending, or taking effect, never half-used.

Each refusal is checked against a loopback simulator that would have answered:
``server.request_count == 0`` proves nothing was sent. Values that may be
secrets (header values, credential-like keywords) must not appear in what the
error shows. Settings assigned after the first call take effect on the next
one, sync and async.
"""

from __future__ import annotations

import asyncio
import copy
import math
import pickle
import traceback
from collections.abc import Iterator
from functools import reduce
from typing import Any

import aiohttp
import pytest
import requests
from pydantic import SecretStr, ValidationError

from langchain_kimi import ChatKimi, KimiBadRequestError, KimiTimeoutError
from langchain_kimi._configuration import MAX_TIMEOUT_SECONDS, looks_like_credential
from langchain_kimi._transport import Endpoint, RetryPolicy, check_headers
from langchain_kimi.testing import FakeKimiServer, Reply

from .conftest import TOKEN

MODES = ["invoke", "stream", "ainvoke", "astream"]
SECRET = "s3cr3t-VALUE-9f2e"


def make(base_url: str, **kwargs: Any) -> ChatKimi:
    settings: dict[str, Any] = {
        "base_url": base_url,
        "api_key": TOKEN,
        "max_retries": 0,
        "thinking": False,
    }
    settings.update(kwargs)
    return ChatKimi(**settings)


def call(model: ChatKimi, mode: str, text: str = "hi", **kwargs: Any) -> str:
    """One call in ``mode``; the answer's text. Closes the model's connections."""

    async def acall() -> str:
        async with model:
            if mode == "ainvoke":
                return str((await model.ainvoke(text, **kwargs)).content)
            chunks = [chunk async for chunk in model.astream(text, **kwargs)]
            return str(reduce(lambda a, b: a + b, chunks).content)

    try:
        if mode == "invoke":
            return str(model.invoke(text, **kwargs).content)
        if mode == "stream":
            return str(reduce(lambda a, b: a + b, model.stream(text, **kwargs)).content)
        return asyncio.run(acall())
    finally:
        model.close()


def everything_shown(err: BaseException) -> str:
    parts = [str(err), repr(err), repr(err.args)]
    parts.extend(traceback.format_exception(type(err), err, err.__traceback__))
    cause = err.__cause__ or err.__context__
    if cause is not None:
        parts.append(everything_shown(cause))
    return "\n".join(parts)


# --- timeouts -------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["timeout", "connect_timeout", "total_timeout"])
@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, 1e12, MAX_TIMEOUT_SECONDS * 1.01, 0.0, -1.0]
)
def test_a_timeout_that_is_not_finite_positive_seconds_is_refused_at_construction(
    server: FakeKimiServer, field: str, value: float
) -> None:
    with pytest.raises(ValidationError, match=field) as info:
        make(server.base_url, **{field: value})
    assert "None" in str(info.value)
    assert server.request_count == 0


def test_a_timeout_above_the_longest_the_libraries_take_says_what_the_limit_is() -> None:
    with pytest.raises(ValidationError) as info:
        ChatKimi(api_key=TOKEN, timeout=1e12)
    assert "9,223,372,036" in str(info.value) and "None" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_the_longest_accepted_timeouts_work_in_every_mode(
    server: FakeKimiServer, mode: str
) -> None:
    longest = MAX_TIMEOUT_SECONDS
    model = make(server.base_url, timeout=longest, connect_timeout=longest, total_timeout=longest)
    assert call(model, mode, "hi") == "Echo: hi"
    unlimited = make(server.base_url, timeout=None, connect_timeout=None, total_timeout=longest)
    assert call(unlimited, mode, "again") == "Echo: again"


def test_a_timeout_assigned_later_is_checked_too(server: FakeKimiServer) -> None:
    model = make(server.base_url)
    for field in ("timeout", "connect_timeout", "total_timeout"):
        with pytest.raises(ValidationError, match=field):
            setattr(model, field, math.inf)
    assert model.timeout == 120.0 and model.total_timeout is None
    assert call(model, "invoke") == "Echo: hi"


# --- base_url -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix",
    ["/kimi\r\nX-Injected: 1", "/ki\x00mi", "/ki\tmi", "/kimi\x7f", "/\x1bkimi", "/kimi\n"],
    ids=["crlf", "nul", "tab", "del", "escape", "trailing-newline"],
)
def test_a_base_url_with_control_characters_is_refused(server: FakeKimiServer, suffix: str) -> None:
    with pytest.raises(ValidationError, match=r"base_url .*control character"):
        make(f"http://127.0.0.1:{server.port}{suffix}")
    assert server.request_count == 0


@pytest.mark.parametrize("suffix", ["?region=eu", "?", "#v1", "/#"])
def test_a_base_url_with_a_query_or_fragment_is_refused(
    server: FakeKimiServer, suffix: str
) -> None:
    with pytest.raises(ValidationError, match=r"base_url .*query .*fragment"):
        make(f"{server.base_url}{suffix}")
    assert server.request_count == 0


@pytest.mark.parametrize("url", ["http://", "https:///kimi", "http://127.0.0.1:99999/kimi"])
def test_a_base_url_without_a_usable_host_or_port_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="base_url"):
        ChatKimi(api_key=TOKEN, base_url=url)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scheme", ["HTTP", "Http"])
def test_a_scheme_in_upper_case_is_accepted(server: FakeKimiServer, mode: str, scheme: str) -> None:
    model = make(server.base_url.replace("http", scheme, 1))
    assert model.base_url == server.base_url
    assert call(model, mode) == "Echo: hi"
    assert server.requests[-1].path == "/kimi/chat/completions"


# --- default_headers ------------------------------------------------------------------------


@pytest.mark.parametrize("value", [f" {SECRET}", f"{SECRET} ", f"\t{SECRET}", f"{SECRET}\t"])
def test_a_header_value_with_surrounding_whitespace_is_refused_unquoted(
    server: FakeKimiServer, value: str
) -> None:
    # requests refused it at call time quoting the value; aiohttp stripped and sent it.
    with pytest.raises(ValidationError, match=r"X-Team-Key.*whitespace") as info:
        make(server.base_url, default_headers={"X-Team-Key": value})
    assert SECRET not in everything_shown(info.value)
    assert server.request_count == 0


def test_the_transports_header_check_refuses_surrounding_whitespace_unquoted() -> None:
    for value in (f" {SECRET}", f"{SECRET} "):
        with pytest.raises(ValueError, match=r"'X-Key'.*whitespace") as info:
            check_headers({"X-Key": value})
        assert SECRET not in everything_shown(info.value)
        with pytest.raises(ValueError, match="whitespace"):
            Endpoint(
                url="http://127.0.0.1:9/kimi/chat/completions",
                headers={"X-Key": value},
                connect_timeout=1.0,
                read_timeout=1.0,
                retry=RetryPolicy(),
            )
    check_headers({"X-Key": "inner space is fine"})


@pytest.mark.parametrize("mode", MODES)
def test_a_header_assigned_later_with_whitespace_is_refused_in_every_mode(
    server: FakeKimiServer, mode: str
) -> None:
    model = make(server.base_url)
    with pytest.raises(ValidationError, match="whitespace") as info:
        model.default_headers = {"X-Team-Key": f"{SECRET} "}
    assert SECRET not in everything_shown(info.value)
    assert call(model, mode) == "Echo: hi"
    assert "x-team-key" not in server.requests[-1].headers


# --- credential-like keywords ---------------------------------------------------------------

CREDENTIAL_KEYWORDS = [
    "moonshot_key",
    "kimi_key",
    "acedata_key",
    "access_key",
    "accessKey",
    "private_key",
    "MOONSHOT_API_KEY",
    "x_api_key",
    "auth_token",
    "password",
    "client_secret",
    "bearer",
    "api_keys",
]

# Every request body field KIMI_API.md names: Ace Data Cloud's published list, and
# Moonshot's prompt caching fields (prompt_cache_key; prompt_cache_options is disputed).
KIMI_BODY_FIELDS = [
    "n",
    "model",
    "stream",
    "messages",
    "max_tokens",
    "temperature",
    "response_format",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "stop",
    "max_completion_tokens",
    "logprobs",
    "top_logprobs",
    "stream_options",
    "parallel_tool_calls",
    "user",
    "reasoning_effort",
    "service_tier",
    "store",
    "metadata",
    "logit_bias",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "tools",
    "tool_choice",
    "thinking",
    "prompt_cache_key",
    "prompt_cache_options",
]


@pytest.mark.parametrize("keyword", CREDENTIAL_KEYWORDS)
def test_a_credential_like_constructor_keyword_is_refused(
    server: FakeKimiServer, keyword: str
) -> None:
    with pytest.raises(ValueError, match=f"'{keyword}' looks like a credential") as info:
        make(server.base_url, **{keyword: SECRET})
    assert SECRET not in everything_shown(info.value)
    assert server.request_count == 0


@pytest.mark.parametrize("keyword", CREDENTIAL_KEYWORDS)
def test_a_credential_like_model_kwargs_key_is_refused(
    server: FakeKimiServer, keyword: str
) -> None:
    with pytest.raises(ValueError, match=f"'{keyword}' looks like a credential") as info:
        make(server.base_url, model_kwargs={keyword: SECRET})
    assert SECRET not in everything_shown(info.value)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("keyword", ["api_key", "kimi_key", "access_key", "token"])
def test_a_credential_like_call_option_is_refused_before_sending(
    server: FakeKimiServer, mode: str, keyword: str
) -> None:
    model = make(server.base_url)
    with pytest.raises(ValueError, match=f"'{keyword}' looks like a credential") as info:
        call(model, mode, **{keyword: SECRET})
    assert SECRET not in everything_shown(info.value)
    assert server.request_count == 0


@pytest.mark.parametrize("keyword", ["api_key", "moonshot_key"])
def test_a_credential_like_bound_option_is_refused_when_bound(
    server: FakeKimiServer, keyword: str
) -> None:
    model = make(server.base_url)
    with pytest.raises(ValueError, match=f"'{keyword}' looks like a credential") as info:
        model.bind(**{keyword: SECRET})
    assert SECRET not in everything_shown(info.value)
    with pytest.raises(ValueError, match=f"'{keyword}' looks like a credential"):
        model.bind_tools([], **{keyword: SECRET})
    with pytest.raises(ValueError, match=f"'{keyword}' looks like a credential"):
        model.with_structured_output(None, **{keyword: SECRET})
    assert server.request_count == 0


@pytest.mark.parametrize("field", KIMI_BODY_FIELDS)
def test_no_body_field_kimi_accepts_looks_like_a_credential(field: str) -> None:
    assert not looks_like_credential(field)


def test_real_body_fields_still_go_out_as_keywords_and_model_kwargs(
    server: FakeKimiServer,
) -> None:
    with pytest.warns(UserWarning, match="safety_identifier"):
        model = make(server.base_url, safety_identifier="user-hash-42")
    assert model.model_kwargs == {"safety_identifier": "user-hash-42"}
    assert call(model, "invoke", user="u-1", max_completion_tokens=64) == "Echo: hi"
    body = server.requests[-1].body
    assert body["safety_identifier"] == "user-hash-42" and body["user"] == "u-1"
    assert body["max_completion_tokens"] == 64
    # A field the model does not model can still be sent, as given, through extra_body.
    assert call(model, "invoke", extra_body={"gateway_key": "g"}) == "Echo: hi"
    assert server.requests[-1].body["gateway_key"] == "g"


# --- copies and pickles of a model holding the user's own clients ----------------------------


def test_deepcopy_shares_the_users_requests_session(server: FakeKimiServer) -> None:
    with requests.Session() as session:
        model = make(server.base_url, http_client=session)
        for copied in (copy.deepcopy(model), model.model_copy(deep=True), copy.copy(model)):
            assert copied.http_client is session
            assert call(copied, "invoke") == "Echo: hi"
        assert call(model, "invoke") == "Echo: hi"


async def test_deepcopy_shares_the_users_aiohttp_session(server: FakeKimiServer) -> None:
    async with aiohttp.ClientSession() as session:
        model = make(server.base_url, http_async_client=session)
        for copied in (copy.deepcopy(model), model.model_copy(deep=True)):
            assert copied.http_async_client is session
            assert (await copied.ainvoke("hi")).content == "Echo: hi"
        assert (await model.ainvoke("hi")).content == "Echo: hi"
        assert not session.closed


def test_pickling_a_model_with_the_users_requests_session_is_refused_saying_why(
    server: FakeKimiServer,
) -> None:
    with requests.Session() as session:
        model = make(server.base_url, http_client=session)
        with pytest.raises(TypeError, match="http_client") as info:
            pickle.dumps(model)
        assert "requests.Session" in str(info.value) and TOKEN not in str(info.value)


async def test_pickling_a_model_with_the_users_aiohttp_session_is_refused_saying_why(
    server: FakeKimiServer,
) -> None:
    async with aiohttp.ClientSession() as session:
        model = make(server.base_url, http_async_client=session)
        with pytest.raises(TypeError, match="http_async_client") as info:
            pickle.dumps(model)
        assert "event loop" in str(info.value) and TOKEN not in str(info.value)


# --- settings assigned after the first call -----------------------------------------------------


@pytest.fixture
def open_server() -> Iterator[FakeKimiServer]:
    """A simulator that accepts any token, so the one sent can be read back."""
    with FakeKimiServer(api_key=None) as fake:
        yield fake


def test_a_new_api_key_is_sent_on_the_next_sync_call_over_the_same_pool(
    open_server: FakeKimiServer,
) -> None:
    model = make(open_server.base_url, api_key="old-key-1")
    model.invoke("one")
    transport = model._sync_transport
    assert transport is not None
    session = transport._session
    model.api_key = SecretStr("new-key-2")
    model.invoke("two")
    list(model.stream("three"))
    assert [r.headers["authorization"] for r in open_server.requests] == [
        "Bearer old-key-1",
        "Bearer new-key-2",
        "Bearer new-key-2",
    ]
    assert model._sync_transport is transport and transport._session is session
    model.close()


def test_a_new_api_key_is_sent_on_the_next_async_call_over_the_same_pool(
    open_server: FakeKimiServer,
) -> None:
    async def rotate() -> None:
        model = make(open_server.base_url, api_key="old-key-1")
        await model.ainvoke("one")
        transport = model._async_transport
        assert transport is not None
        session = await transport._session()
        model.api_key = "new-key-2"  # type: ignore[assignment]  # a str is read as a SecretStr
        await model.ainvoke("two")
        [chunk async for chunk in model.astream("three")]
        assert model._async_transport is transport and await transport._session() is session
        await model.aclose()

    asyncio.run(rotate())
    assert [r.headers["authorization"] for r in open_server.requests] == [
        "Bearer old-key-1",
        "Bearer new-key-2",
        "Bearer new-key-2",
    ]


def test_a_new_token_is_redacted_from_errors(open_server: FakeKimiServer) -> None:
    model = make(open_server.base_url, api_key="old-key-1")
    model.invoke("warm")
    model.api_key = SecretStr("new-key-echoed-2")
    open_server.queue(Reply(status=400, body={"error": {"message": "bad key new-key-echoed-2"}}))
    with pytest.raises(KimiBadRequestError) as info:
        model.invoke("x")
    assert "new-key-echoed-2" not in everything_shown(info.value)
    model.close()


@pytest.mark.parametrize("mode", MODES)
def test_headers_and_timeouts_assigned_after_the_first_call_take_effect(
    open_server: FakeKimiServer, mode: str
) -> None:
    model = make(open_server.base_url, timeout=10.0)
    # The first call opens the connections; the assignments below must reach them.
    model.invoke("warm")
    model.default_headers = {"X-Team": "blue"}
    model.timeout = 0.2
    assert call(model, mode) == "Echo: hi"
    assert open_server.requests[-1].headers["x-team"] == "blue"
    open_server.queue(Reply(fault="stall"))  # until the server stops
    with pytest.raises(KimiTimeoutError, match=r"0\.2 s"):
        call(model, mode)


@pytest.mark.parametrize("mode", MODES)
def test_a_base_url_assigned_after_the_first_call_takes_effect(
    server: FakeKimiServer, mode: str
) -> None:
    model = make(server.base_url)
    model.invoke("warm")
    with FakeKimiServer(api_key=TOKEN) as other:
        model.base_url = other.base_url + "/"
        assert model.base_url == other.base_url
        assert call(model, mode) == "Echo: hi"
        assert other.request_count == 1
    assert server.request_count == 1


def test_bad_values_assigned_later_are_refused_and_change_nothing(server: FakeKimiServer) -> None:
    model = make(server.base_url)
    model.invoke("warm")
    with pytest.raises(ValidationError, match="base_url"):
        model.base_url = "ftp://example.com"
    with pytest.raises(ValidationError, match="http_client"):
        model.http_client = object()
    assert model.base_url == server.base_url and model.http_client is None
    assert call(model, "invoke") == "Echo: hi"
