"""LangChain's standard integration suite, offline, against the simulator's model-like mode.

``ChatModelIntegrationTests`` is written for a live model: it asks for tool
calls, jokes as JSON, haikus under a stop sequence. The simulator's model-like
mode (``FakeKimiServer(model_like=True)``) answers such requests as a model
would, within the service's rules, so the whole client runs the suite over
real HTTP on 127.0.0.1, for a thinking model (kimi-k2.6) and one that does not
think (kimi-k2-instruct-0905). ``tests/integration/test_live.py`` runs the same
suite against the real service when a token is set.

The capability flags are ChatKimi's (``tests/capabilities.py``); the only ones
set here are those that depend on the model, or on running offline, each with
its reason.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import httpx
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_kimi.testing import FakeKimiServer
from tests.capabilities import KimiCapabilities

TOKEN = "sk-standard-suite"
SUITE_IMAGE_HOST = "https://raw.githubusercontent.com/"
# A 1x1 PNG, standing in for the suite's downloaded picture.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
UsageDetail = Literal[
    "audio_input", "audio_output", "reasoning_output", "cache_read_input", "cache_creation_input"
]


@pytest.fixture(scope="class")
def model_like_simulator(request: pytest.FixtureRequest) -> Iterator[FakeKimiServer]:
    """A model-like simulator for the test class, on ``cls.server``.

    One per class (and per xdist worker): the suite builds its models from
    ``chat_model_params``, a property, which must name the server's URL.
    """
    with FakeKimiServer(api_key=TOKEN, model_like=True) as server:
        request.cls.server = server
        yield server


@pytest.mark.usefixtures("model_like_simulator")
class _SimulatedSuite(KimiCapabilities, ChatModelIntegrationTests):  # type: ignore[misc]
    """The suite against one model of a model-like simulator started for the class."""

    model_name: ClassVar[str]
    override_name: ClassVar[str]
    server: ClassVar[FakeKimiServer]

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": self.model_name, "base_url": self.server.base_url, "api_key": TOKEN}

    @property
    def model_override_value(self) -> str:
        # invoke(..., model=...) must reach the service; the simulator answers
        # with the model it was asked for, which the suite reads back.
        return self.override_name

    @pytest.fixture(autouse=True)
    def _suite_images_offline(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The suite's image tests download one PNG first: answered here, offline.

        ``test_image_inputs``, ``test_image_tool_message`` and
        ``test_anthropic_inputs`` fetch a picture from raw.githubusercontent.com
        with ``httpx.get`` before they call the model. That download is answered
        with a small PNG of ours, so what they test (the image reaching the model,
        base64 or by URL, in a user or a tool message) runs over real HTTP to the
        simulator. Any other ``httpx.get`` goes on, and pytest-socket refuses it.
        """
        real_get = httpx.get

        def get(url: Any, *args: Any, **kwargs: Any) -> httpx.Response:
            if str(url).startswith(SUITE_IMAGE_HOST) and str(url).endswith(".png"):
                return httpx.Response(200, content=PNG, request=httpx.Request("GET", url))
            return real_get(url, *args, **kwargs)

        monkeypatch.setattr(httpx, "get", get)


class TestChatKimiSimulatedThinking(_SimulatedSuite):
    """kimi-k2.6, thinking (its default): reasoning on every answer, the replay rule enforced."""

    model_name = "kimi-k2.6"
    override_name = "kimi-k2.5"

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # The suite's max_tokens=100 is too small for a thinking model, whose
        # reasoning counts against it (KIMI_API.md, "Models"); the live run
        # uses the same limit.
        return {**super().chat_model_params, "max_tokens": 4096}

    @property
    def supported_usage_metadata_details(self) -> dict[str, list[UsageDetail]]:
        return {"invoke": ["reasoning_output"], "stream": ["reasoning_output"]}

    def invoke_with_reasoning_output(self, *, stream: bool = False) -> AIMessage:
        model = self.chat_model_class(
            **{**self.standard_chat_model_params, **self.chat_model_params}
        )
        prompt = "Explain in one sentence why the sky is blue."
        if not stream:
            message = model.invoke(prompt)
            assert isinstance(message, AIMessage)
            return message
        full: AIMessageChunk | None = None
        for chunk in model.stream(prompt):
            assert isinstance(chunk, AIMessageChunk)
            full = chunk if full is None else full + chunk
        assert full is not None
        return full


class TestChatKimiSimulatedInstant(_SimulatedSuite):
    """kimi-k2-instruct-0905: no thinking, so forced tool choice is the service's own."""

    model_name = "kimi-k2-instruct-0905"
    override_name = "kimi-k2-0905-preview"

    @property
    def supports_image_inputs(self) -> bool:
        return False  # kimi-k2-instruct-0905 takes text only

    @property
    def supports_image_urls(self) -> bool:
        return False

    @property
    def supports_image_tool_message(self) -> bool:
        return False
