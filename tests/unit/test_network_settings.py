"""What both transports read from the environment, and the headers they refuse. No sockets."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import pytest

from langchain_kimi._async_transport import _split_proxy
from langchain_kimi._network_settings import NetworkSettings, ca_bundle, proxy_credential_forms
from langchain_kimi._transport import Endpoint, RetryPolicy, parse_retry_after
from langchain_kimi.errors import redact_secrets

URL = "https://api.acedata.cloud/kimi/chat/completions"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_no_variables_means_no_proxy_and_certifi() -> None:
    settings = NetworkSettings.from_environment(URL)
    assert settings == NetworkSettings(proxy=None, ca_bundle=None)


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"])
def test_the_proxy_variable_for_the_scheme_is_used(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "http://proxy.internal:3128")
    assert NetworkSettings.from_environment(URL).proxy == "http://proxy.internal:3128"


def test_an_http_proxy_does_not_carry_https_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    assert NetworkSettings.from_environment(URL).proxy is None
    plain = "http://127.0.0.1:9/kimi/chat/completions"
    assert NetworkSettings.from_environment(plain).proxy == "http://proxy.internal:3128"


def test_no_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.acedata.cloud")
    assert NetworkSettings.from_environment(URL).proxy is None


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"SSL_CERT_DIR": "/d", "SSL_CERT_FILE": "/f"}, "/f"),
        ({"CURL_CA_BUNDLE": "/c", "SSL_CERT_FILE": "/f"}, "/c"),
        ({"REQUESTS_CA_BUNDLE": "/r", "CURL_CA_BUNDLE": "/c"}, "/r"),
        ({"SSL_CERT_DIR": "/d"}, "/d"),
    ],
)
def test_the_first_ca_variable_wins(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], expected: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert ca_bundle() == expected


def test_proxy_credentials_become_a_header_and_leave_the_url() -> None:
    url, credentials = _split_proxy("user:s%3Acret@proxy.internal:3128")
    assert str(url) == "http://proxy.internal:3128"
    assert credentials == "Basic dXNlcjpzOmNyZXQ="  # user:s:cret, percent-decoded


def test_a_proxy_without_credentials_sends_none() -> None:
    url, credentials = _split_proxy("https://proxy.internal:8443")
    assert str(url) == "https://proxy.internal:8443"
    assert credentials is None


@pytest.mark.parametrize("proxy", ["socks5://127.0.0.1:1080", "ftp://proxy.internal:21"])
def test_a_proxy_aiohttp_cannot_use_is_refused_saying_what_to_do(proxy: str) -> None:
    with pytest.raises(ValueError, match="http_async_client"):
        _split_proxy(proxy)


# --- headers ----------------------------------------------------------------------


def _endpoint(headers: dict[str, Any]) -> Endpoint:
    return Endpoint(URL, headers, 1.0, 1.0, RetryPolicy())


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({"Authorization": "Bearer sk-secret\r\nX-Injected: 1"}, "Authorization"),
        ({"Authorization": "Bearer sk-sécret-\u2603"}, "Authorization"),
        ({"X-Trace": "a\nb"}, "X-Trace"),
        ({"Bad Name": "value-1234"}, "Bad Name"),
        ({"Bad:Name": "value-1234"}, "Bad:Name"),
        ({"Ünicode": "value-1234"}, "Ünicode"),
        ({"X-Number": 56789}, "X-Number"),
    ],
)
def test_a_header_http_cannot_carry_is_refused_naming_it_not_showing_it(
    headers: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError) as caught:
        _endpoint(headers)
    assert repr(named) in str(caught.value)
    for value in headers.values():
        assert str(value) not in str(caught.value)
    assert "sk-s" not in str(caught.value)


def test_latin1_header_values_are_accepted() -> None:
    assert _endpoint({"X-Name": "café"}).headers["X-Name"] == "café"


def test_the_endpoint_repr_never_shows_the_token() -> None:
    endpoint = Endpoint(
        URL, {"Authorization": "Bearer sk-xyz"}, 1.0, 1.0, RetryPolicy(), secrets=("sk-xyz",)
    )
    assert "sk-xyz" not in repr(endpoint)


# --- Retry-After --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        ("0.5", 0.5),
        ("-4", 0.0),
        ("nan", None),
        ("NaN", None),
        ("inf", None),
        ("-inf", None),
        ("1e999", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
    ],
)
def test_retry_after_values(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_a_future_retry_after_date_counts_down() -> None:
    seconds = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT")
    assert seconds is not None and seconds > 1e9


# --- a proxy's credentials, kept out of errors ------------------------------------


def test_a_proxy_without_credentials_has_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert NetworkSettings.from_environment(URL).proxy_secrets() == ()
    assert proxy_credential_forms([]) == ()


def test_every_form_of_a_proxy_password_an_error_page_may_echo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://agent:p%40ss%2Fw0rd~x@proxy.internal:3128")
    forms = set(NetworkSettings.from_environment(URL).proxy_secrets())
    basic = base64.b64encode(b"agent:p@ss/w0rd~x").decode()
    expected = {
        "agent:p%40ss%2Fw0rd~x",  # as written in the variable
        "agent:p@ss/w0rd~x",  # decoded
        "p@ss/w0rd~x",  # the password alone: 8 characters or more
        basic,  # Proxy-Authorization: Basic ...
        quote(basic, safe=""),
        "p%40ss%2Fw0rd~x",
        "p%40ss/w0rd~x",  # quote() keeps "/" by default
        "p%40ss%2fw0rd~x",  # lower-case hex
    }
    assert expected <= forms
    assert "agent" not in forms  # a user name alone is no secret


def test_a_short_password_is_redacted_only_with_its_user() -> None:
    forms = set(proxy_credential_forms(["http://u:pw@proxy:8080"]))
    assert "pw" not in forms and "u:pw" in forms
    assert base64.b64encode(b"u:pw").decode() in forms


def test_redaction_finds_a_base64_password_escaped_in_json() -> None:
    password = quote("?pr~0xy-s3cret/pass-word", safe="")  # as a URL must carry it
    forms = proxy_credential_forms([f"http://agent-7:{password}@proxy:8080"])
    basic = base64.b64encode(b"agent-7:?pr~0xy-s3cret/pass-word").decode()
    assert "/" in basic
    page = '{"echo": "Proxy-Authorization: Basic ' + basic.replace("/", "\\/") + '"}'
    assert basic.split("/")[0] not in redact_secrets(page, forms)
