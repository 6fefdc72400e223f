"""HTTPS and proxies from the environment, sync and async, all on 127.0.0.1.

A throwaway CA (trustme) signs the simulator's certificate; a relay proxy
(``_relay_proxy.py``) forwards whatever host a request names to the simulator,
so the tests can use ``kimi.invalid``, a name that cannot resolve: an answer
proves the client went through the proxy and never looked the name up.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from langchain_kimi import ChatKimi, KimiConnectionError, _network_settings
from langchain_kimi.testing import FakeKimiServer, Reply

from ._relay_proxy import RelayProxy
from .conftest import TOKEN
from .test_faults import MODES, call, make

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No proxy or CA setting from the machine leaks in; TLS contexts are rebuilt per test."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name in _network_settings.CA_BUNDLE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    _network_settings._context_for.cache_clear()
    yield
    _network_settings._context_for.cache_clear()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CA, trusted through the variable each library reads: one setting covers both."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    return bundle


def _tls_server(ca: trustme.CA, *names: str) -> FakeKimiServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return FakeKimiServer(api_key=TOKEN, tls=context)


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[FakeKimiServer]:
    with _tls_server(ca, "127.0.0.1", "kimi.invalid") as server:
        yield server


@pytest.mark.parametrize("mode", MODES)
def test_https_round_trip(tls_server: FakeKimiServer, trusted: Path, mode: str) -> None:
    assert tls_server.base_url.startswith("https://127.0.0.1:")
    tls_server.queue(Reply(content="over TLS"))
    outcome = call(make(tls_server), mode)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.answer == "over TLS"
    assert tls_server.request_count == 1


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_DIR"])
@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_every_ca_variable_works_for_both_flavours(
    tls_server: FakeKimiServer,
    ca: trustme.CA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    mode: str,
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    if variable == "SSL_CERT_DIR":
        # A CA directory is looked up by subject hash: name the file accordingly.
        hashed = tmp_path / "certs"
        hashed.mkdir()
        subject_hash = _subject_hash(bundle)
        (hashed / f"{subject_hash}.0").write_bytes(bundle.read_bytes())
        monkeypatch.setenv(variable, str(hashed))
    else:
        monkeypatch.setenv(variable, str(bundle))
    tls_server.queue(Reply(content="trusted"))
    outcome = call(make(tls_server), mode)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.answer == "trusted"


def _subject_hash(pem: Path) -> str:
    # OpenSSL's directory lookup hashes the subject name; Python exposes no
    # helper, so ask the ssl module by loading the file into a throwaway store.
    import subprocess

    result = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(pem)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip("the openssl command is needed to name a hashed CA directory")
    return result.stdout.strip()


@pytest.mark.parametrize("mode", MODES)
def test_an_untrusted_certificate_is_refused_once_and_explained(
    tls_server: FakeKimiServer,
    fast_backoff: None,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    # No CA variable: certifi's bundle does not know the throwaway CA.
    with caplog.at_level(logging.INFO, logger="langchain_kimi"):
        outcome = call(make(tls_server, max_retries=3), mode)
    error = outcome.raised(KimiConnectionError)
    message = str(error)
    assert "certificate" in message and "not retried" in message
    assert "REQUESTS_CA_BUNDLE" in message and "SSL_CERT_FILE" in message
    assert tls_server.request_count == 0
    # It would fail again: no retry was even announced.
    assert not [r for r in caplog.records if "retry" in r.getMessage()]


@pytest.mark.parametrize("mode", MODES)
def test_a_certificate_for_another_host_is_refused(
    ca: trustme.CA, trusted: Path, fast_backoff: None, mode: str
) -> None:
    with _tls_server(ca, "somewhere.else") as server:
        outcome = call(make(server), mode)
        error = outcome.raised(KimiConnectionError)
        assert "certificate" in str(error)
        assert server.request_count == 0


@pytest.fixture
def proxy(server: FakeKimiServer) -> Iterator[RelayProxy]:
    relay = RelayProxy(server.port)
    yield relay
    relay.close()


@pytest.mark.parametrize("mode", MODES)
def test_http_proxy_from_the_environment_with_credentials(
    server: FakeKimiServer, proxy: RelayProxy, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://agent:p%40ss@127.0.0.1:{proxy.port}")
    server.queue(Reply(content="via the proxy"))
    outcome = call(make("http://kimi.invalid/kimi"), mode)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.answer == "via the proxy"
    assert [(h.method, h.target) for h in proxy.heads] == [
        ("POST", "http://kimi.invalid/kimi/chat/completions")
    ]
    # The password was percent-encoded in the variable; the header carries it decoded.
    expected = "Basic " + base64.b64encode(b"agent:p@ss").decode()
    assert proxy.heads[0].proxy_authorization == expected
    # The service's token went through to the service, not to the proxy's header.
    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("mode", MODES)
def test_https_through_a_connect_tunnel(
    ca: trustme.CA, trusted: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    with _tls_server(ca, "kimi.invalid") as tls_server:
        relay = RelayProxy(tls_server.port)
        try:
            monkeypatch.setenv("HTTPS_PROXY", relay.url)
            tls_server.queue(Reply(content="tunnelled"))
            outcome = call(make("https://kimi.invalid/kimi"), mode)
            assert outcome.error is None, repr(outcome.error)
            assert outcome.answer == "tunnelled"
            assert [(h.method, h.target) for h in relay.heads] == [("CONNECT", "kimi.invalid:443")]
        finally:
            relay.close()


@pytest.mark.parametrize("mode", MODES)
def test_no_proxy_sends_directly(
    server: FakeKimiServer, proxy: RelayProxy, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server.queue(Reply(content="direct"))
    outcome = call(make(server), mode)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.answer == "direct"
    assert proxy.heads == []


def test_a_socks_proxy_fails_before_any_async_request_saying_what_to_do(
    server: FakeKimiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1")

    async def attempt() -> None:
        async with ChatKimi(base_url=server.base_url, api_key=TOKEN) as model:
            await model.ainvoke("hi")

    with pytest.raises(ValueError, match=r"socks5 proxy.*http_async_client.*aiohttp-socks"):
        asyncio.run(attempt())
    assert server.request_count == 0
