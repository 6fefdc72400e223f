"""pytest fixtures for testing code built on ChatKimi, offline.

Installed with langchain-kimi as the ``langchain_kimi`` pytest plugin (entry
point ``pytest11``), so the fixtures are available in any project that has the
package installed; nothing to import.

- ``kimi_server``: a started :class:`~langchain_kimi.testing.FakeKimiServer`
  (api key ``"test-key"``), stopped after the test. The ``kimi_server`` marker
  passes it other options: ``@pytest.mark.kimi_server(model_like=True)`` for
  the model-like mode (answers that follow the request: tools called, JSON
  schemas filled), ``flavor="moonshot"``, ``latency=0.2``...
- ``kimi_chat_model``: a factory ``make(**kwargs) -> ChatKimi`` pointed at that
  server with ``max_retries=0``; keyword arguments are passed to ``ChatKimi``
  and override those defaults.

Usage::

    from langchain_kimi.testing import Reply

    def test_answer(kimi_server, kimi_chat_model):
        kimi_server.queue(Reply(content="Paris", reasoning="Capital of France."))
        model = kimi_chat_model(model="kimi-k2.5")
        assert model.invoke("Capital of France?").content == "Paris"
        assert kimi_server.request_count == 1

    @pytest.mark.kimi_server(model_like=True)
    def test_agent_step(kimi_chat_model):
        model = kimi_chat_model(model="kimi-k2.6").bind_tools([get_weather])
        call = model.invoke("What is the weather in Oslo?").tool_calls[0]
        assert call["args"] == {"city": "Oslo"}

This module is imported in every pytest run of every project that installs the
package, so it imports nothing but pytest at load time; the server and the
client are imported when a fixture is first used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from langchain_kimi.chat_models import ChatKimi
    from langchain_kimi.testing._server import FakeKimiServer

# ChatKimi refuses to build without a token; a server started with api_key=None
# accepts any, so any placeholder will do.
_PLACEHOLDER_TOKEN = "fake-kimi-token"
MARKER = "kimi_server"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): FakeKimiServer keyword arguments for the kimi_server fixture, "
        f"e.g. @pytest.mark.{MARKER}(model_like=True)",
    )


def server_options(marker: pytest.Mark | None) -> dict[str, Any]:
    """The ``FakeKimiServer`` keyword arguments for a test: the defaults, then its marker's."""
    options: dict[str, Any] = {"api_key": "test-key"}
    if marker is not None:
        if marker.args:
            raise TypeError(
                f"@pytest.mark.{MARKER} takes FakeKimiServer keyword arguments only, "
                f"got positional {marker.args!r}"
            )
        options.update(marker.kwargs)
    return options


@pytest.fixture
def kimi_server(request: pytest.FixtureRequest) -> Iterator[FakeKimiServer]:
    """A FakeKimiServer on 127.0.0.1, started for the test and stopped after it.

    ``@pytest.mark.kimi_server(**options)`` on the test (or its class or module)
    passes FakeKimiServer options, e.g. ``model_like=True``.
    """
    from langchain_kimi.testing._server import FakeKimiServer

    with FakeKimiServer(**server_options(request.node.get_closest_marker(MARKER))) as server:
        yield server


@pytest.fixture
def kimi_chat_model(kimi_server: FakeKimiServer) -> Callable[..., ChatKimi]:
    """A factory of ChatKimi instances talking to ``kimi_server``.

    ``make(**kwargs)`` returns ``ChatKimi(base_url=..., api_key=..., max_retries=0, **kwargs)``;
    retries are off so a scripted error reaches the test instead of being retried.
    """

    def make(**kwargs: Any) -> ChatKimi:
        from langchain_kimi import ChatKimi

        settings: dict[str, Any] = {
            "base_url": kimi_server.base_url,
            "api_key": kimi_server.api_key or _PLACEHOLDER_TOKEN,
            "max_retries": 0,
        }
        settings.update(kwargs)
        return ChatKimi(**settings)

    return make
