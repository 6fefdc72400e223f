"""LangChain's standard integration suite against the live Kimi API.

Runs only when ACEDATACLOUD_API_TOKEN is set (it spends real tokens); skipped
otherwise, with that reason. Everything else in tests/ stays on 127.0.0.1.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from tests.capabilities import KimiCapabilities

pytestmark = pytest.mark.skipif(
    not os.environ.get("ACEDATACLOUD_API_TOKEN"),
    reason="live API tests need ACEDATACLOUD_API_TOKEN (they call the real, billed service)",
)


class TestChatKimiLive(KimiCapabilities, ChatModelIntegrationTests):  # type: ignore[misc]
    @property
    def chat_model_params(self) -> dict[str, Any]:
        # Thinking off: the suite forces tool choice, which thinking mode refuses.
        return {"model": "kimi-k2.5", "thinking": False, "max_tokens": 4096, "timeout": 120}
