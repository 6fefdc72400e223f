"""What ChatKimi supports, declared once for LangChain's unit and live standard suites."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from langchain_kimi import ChatKimi


class KimiCapabilities:
    """Capability flags of langchain-tests' suites, all truthful for ChatKimi."""

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatKimi

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        # True on every model: a forced choice is sent, sent with thinking off, or
        # emulated, per model (tests/integration/test_forced_tool_choice.py).
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True
