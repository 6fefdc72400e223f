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

    # Not applicable, each for a stated reason (these are the suites' defaults,
    # declared so that a skipped standard test says why).

    @property
    def supports_pdf_inputs(self) -> bool:
        # Kimi's chat takes text, image and video parts; documents go through
        # Moonshot's Files API (model.files), not a content part.
        return False

    @property
    def supports_audio_inputs(self) -> bool:
        return False  # no Kimi model takes audio

    @property
    def supports_image_tool_message(self) -> bool:
        # A tool message's content is a string on Kimi's wire; an image in a tool
        # result goes in a user message right after the tool results (_content).
        return True

    @property
    def supports_pdf_tool_message(self) -> bool:
        return False  # same: tool results are strings, and there are no PDF parts

    @property
    def supports_anthropic_inputs(self) -> bool:
        # Anthropic's own blocks (tool_use, thinking, tool_result, image with a
        # source) are converted to Kimi's messages (_content).
        return True

    @property
    def enable_vcr_tests(self) -> bool:
        # test_stream_time times replays of recorded cassettes; this project
        # measures speed in benchmarks/ as ratios against an in-process baseline.
        return False
