"""The token never leaks: not in reprs, dumps, LangSmith params, errors, nor DEBUG logs.

Failing calls are the dangerous ones (error messages get built, libraries log
what went wrong), so every failure kind is run, sync and async, with every
logger at DEBUG (this package, requests, urllib3, aiohttp), and the
captured text is searched for the token.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import ssl
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.load import dumpd, dumps

from langchain_kimi import (
    ChatKimi,
    KimiAPIError,
    KimiAuthenticationError,
    KimiConnectionError,
    KimiError,
    KimiServerError,
    KimiStreamInterruptedError,
    KimiTimeoutError,
    _transport,
)
from langchain_kimi.testing import FakeKimiServer, Reply

# Distinctive, so a match cannot be a coincidence ("tok" would match "max_tokens").
SECRET = "sk-Zq7-VERY-SECRET-4f1c9e"
LIBRARY_LOGGERS = ("langchain_kimi", "requests", "urllib3", "aiohttp")


@pytest.fixture
def secret_server() -> Iterator[FakeKimiServer]:
    with FakeKimiServer(api_key=SECRET) as fake:
        yield fake


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record at DEBUG, from the root logger down, the HTTP libraries included."""
    caplog.set_level(logging.DEBUG)
    for name in LIBRARY_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def make(url: str, **kwargs: Any) -> ChatKimi:
    settings: dict[str, Any] = {
        "base_url": url,
        "api_key": SECRET,
        "max_retries": 1,
        "timeout": 0.5,
        "connect_timeout": 0.5,
        "thinking": False,
    }
    settings.update(kwargs)
    return ChatKimi(**settings)


def error_text(err: BaseException) -> str:
    """Everything an error shows: str, repr, args, attributes, the formatted traceback."""
    parts = [str(err), repr(err), repr(err.args), repr(vars(err))]
    parts.extend(traceback.format_exception(type(err), err, err.__traceback__))
    cause = err.__cause__ or err.__context__
    if cause is not None:
        parts.append(error_text(cause))
    return "\n".join(parts)


def run(model: ChatKimi, mode: str) -> BaseException:
    async def acall() -> None:
        async with model:
            if mode == "ainvoke":
                await model.ainvoke("hi")
            else:
                async for _ in model.astream("hi"):
                    pass

    try:
        if mode == "invoke":
            model.invoke("hi")
        elif mode == "stream":
            for _ in model.stream("hi"):
                pass
        else:
            asyncio.run(acall())
    except Exception as err:
        return err
    finally:
        model.close()
    raise AssertionError("the call was expected to fail")


FAILURES: dict[str, tuple[Reply | None, type[KimiError]]] = {
    "401": (Reply.error(401, "invalid_token", "The token is invalid."), KimiAuthenticationError),
    "500-retried": (Reply.error(500, "api_error", "fetch failed"), KimiServerError),
    "connection-refused": (None, KimiConnectionError),
    "timeout": (Reply(delay=5.0), KimiTimeoutError),
    "stream-interrupted": (
        Reply(content="partial answer", fault="disconnect", fault_after=2),
        KimiStreamInterruptedError,
    ),
}


@pytest.mark.parametrize("mode", ["invoke", "stream", "ainvoke", "astream"])
@pytest.mark.parametrize("case", list(FAILURES))
def test_no_token_in_logs_or_errors_of_failing_calls(
    secret_server: FakeKimiServer,
    all_logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    mode: str,
) -> None:
    monkeypatch.setattr(_transport.RetryPolicy, "base_delay", 0.001)
    monkeypatch.setattr(_transport.RetryPolicy, "max_delay", 0.005)
    reply, error_type = FAILURES[case]
    if reply is None:
        url = secret_server.base_url
        secret_server.stop()
    else:
        url = secret_server.base_url
        secret_server.queue(reply, reply)
    if case == "stream-interrupted" and mode in ("invoke", "ainvoke"):
        # Non-streamed answers are cut by bytes, not events.
        secret_server.clear()
        secret_server.queue(Reply(content="partial answer", fault="disconnect", fault_after=40))
    err = run(make(url), mode)
    assert isinstance(err, error_type), repr(err)

    # The test must be able to fail: the token really went over the wire...
    if reply is not None:
        assert secret_server.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    # ...and DEBUG logging really captured the HTTP libraries' chatter.
    logged = "\n".join(
        f"{record.name} {record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in all_logs.records
    )
    if mode in ("invoke", "stream"):
        # (aiohttp, under async calls, logs nothing at DEBUG for these failures.)
        assert any(r.name.startswith(("urllib3", "langchain_kimi")) for r in all_logs.records)
    assert SECRET not in logged
    assert SECRET not in error_text(err)


def test_the_model_never_shows_its_token(secret_server: FakeKimiServer) -> None:
    model = make(secret_server.base_url)
    model.invoke("warm up")  # a live transport holds the header: it must not show either
    shown = [
        repr(model),
        str(model),
        repr(model.model_dump()),
        str(model.model_dump_json()),
        dumps(model),
        repr(dumpd(model)),
        repr(model._get_ls_params()),
        repr(model._identifying_params),
        repr(model._sync()),
        repr(model._sync().endpoint),
        repr(model.bind(stop=["x"])),
    ]
    for text in shown:
        assert SECRET not in text, text
    assert model.api_key is not None and model.api_key.get_secret_value() == SECRET
    # Serialised models name the variable the token comes from, never the value.
    assert "ACEDATACLOUD_API_TOKEN" in dumps(model)
    # A pickle carries the configuration (it has to work when loaded), but no live
    # transport: nothing but the field itself holds the token.
    restored = pickle.loads(pickle.dumps(model))
    assert restored._sync_transport is None
    model.close()


def test_service_error_bodies_echoing_the_request_are_reported_without_the_header(
    secret_server: FakeKimiServer,
) -> None:
    # The error text is built from the answer, never from the request headers.
    secret_server.queue(Reply.error(400, "bad_request", "messages[0] is invalid"))
    err = run(make(secret_server.base_url), "invoke")
    assert isinstance(err, KimiAPIError)
    assert SECRET not in error_text(err)


@pytest.mark.parametrize("mode", ["invoke", "stream", "ainvoke", "astream"])
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_to_another_host_is_not_followed(
    secret_server: FakeKimiServer, all_logs: pytest.LogCaptureFixture, status: int, mode: str
) -> None:
    with FakeKimiServer(api_key=None) as elsewhere:
        target = f"{elsewhere.base_url}/chat/completions"
        secret_server.queue(Reply(status=status, body=b"", headers={"Location": target}))
        err = run(make(secret_server.base_url, max_retries=3), mode)
        assert isinstance(err, KimiAPIError)
        assert err.status_code == status
        assert "redirect" in str(err) and target in str(err)
        assert secret_server.request_count == 1  # not retried either
        assert elsewhere.request_count == 0
        assert elsewhere.connections == 0
    assert SECRET not in error_text(err)


def test_tls_verification_stays_on(secret_server: FakeKimiServer) -> None:
    model = make("https://127.0.0.1:1/kimi")
    session = model._sync()._get_session()
    # True, or the CA bundle named by REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE: never off.
    assert session.verify is True or (isinstance(session.verify, str) and session.verify)

    async def client_verifies() -> bool:
        async with model:
            # The loop's session connects with this context; verification
            # means CERT_REQUIRED and a hostname check. (That an unknown CA
            # really is refused: test_tls_and_proxies.py.)
            session = await model._async()._session()
            context = session.connector._ssl  # type: ignore[union-attr]
            assert isinstance(context, ssl.SSLContext)
            return bool(context.check_hostname) and context.verify_mode.name == "CERT_REQUIRED"

    assert asyncio.run(client_verifies())
    model.close()
