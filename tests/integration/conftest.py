"""Shared fixtures for the socket-level tests: a simulator and fast retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import pytest_socket

from langchain_kimi import _transport
from langchain_kimi.testing import FakeKimiServer

TOKEN = "sk-integration-secret"


@pytest.fixture
def server() -> Iterator[FakeKimiServer]:
    with FakeKimiServer(api_key=TOKEN) as fake:
        yield fake


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff of a few milliseconds, so retry tests run quickly (Retry-After still applies)."""
    monkeypatch.setattr(_transport.RetryPolicy, "base_delay", 0.001)
    monkeypatch.setattr(_transport.RetryPolicy, "max_delay", 0.005)


@pytest.fixture(autouse=True)
def _loopback_only(request: pytest.FixtureRequest) -> Iterator[None]:
    """Sockets may connect to this machine only; the token-gated live suite is the exception."""
    if request.module.__name__.endswith("test_live"):
        yield
        return
    pytest_socket.socket_allow_hosts(["127.0.0.1", "localhost", "::1"], allow_unix_socket=True)
    yield
    pytest_socket._remove_restrictions()  # what pytest-socket itself uses to undo it
