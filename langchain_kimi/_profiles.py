"""What the client knows about each Kimi model: capabilities and fixed parameters.

The catalogue moves every few months, so the model name stays free text: an
unknown name gets no profile, sends every parameter the user set, and thinks only
when the user says ``thinking=True``. Known names are matched exactly, then by
family prefix (``kimi-k2.5-2026xxxx`` behaves like ``kimi-k2.5``).

Context sizes are the documented ones (256K = 262,144 tokens). Output limits are
not published consistently; the figures below are conservative values that
providers serving these models report, good for budgeting, not hard limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.language_models import ModelProfile

ThinkingMode = Literal["default_on", "always", "never"]

# Sampling that kimi-k2.5/k2.6 fix. Moonshot rejects other values with a 400.
_K25_FIXED_THINKING: dict[str, float] = {
    "temperature": 1.0,
    "top_p": 0.95,
    "n": 1,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}
_K25_FIXED_INSTANT: dict[str, float] = {**_K25_FIXED_THINKING, "temperature": 0.6}


@dataclass(frozen=True)
class KimiModelSpec:
    """One model family: how it thinks, what it fixes, what it accepts."""

    thinking: ThinkingMode
    context: int
    max_output: int
    image_inputs: bool = False
    video_inputs: bool = False
    reasoning_effort_levels: tuple[str, ...] = ()
    fixed_when_thinking: dict[str, float] = field(default_factory=dict)
    fixed_when_instant: dict[str, float] = field(default_factory=dict)

    def thinks(self, thinking: bool | None) -> bool:
        """Whether a request with this ``thinking`` setting runs in thinking mode."""
        if self.thinking == "always":
            return True
        if self.thinking == "never":
            return bool(thinking)
        return thinking is not False

    def fixed_params(self, thinking: bool | None) -> dict[str, float]:
        """Parameters the model fixes in the given mode (name -> the value it uses)."""
        return self.fixed_when_thinking if self.thinks(thinking) else self.fixed_when_instant

    def to_profile(self) -> ModelProfile:
        profile: dict[str, Any] = {
            "max_input_tokens": self.context,
            "max_output_tokens": self.max_output,
            "text_inputs": True,
            "image_inputs": self.image_inputs,
            "image_url_inputs": self.image_inputs,
            "video_inputs": self.video_inputs,
            "audio_inputs": False,
            "pdf_inputs": False,
            "reasoning_output": self.thinking != "never",
            "text_outputs": True,
            "tool_calling": True,
            "tool_choice": True,
            "structured_output": True,
        }
        if self.reasoning_effort_levels:
            profile["reasoning_effort_levels"] = list(self.reasoning_effort_levels)
        return ModelProfile(**profile)  # type: ignore[typeddict-item,no-any-return]


_K25 = KimiModelSpec(
    thinking="default_on",
    context=262_144,
    max_output=32_768,
    image_inputs=True,
    video_inputs=True,
    fixed_when_thinking=_K25_FIXED_THINKING,
    fixed_when_instant=_K25_FIXED_INSTANT,
)
_K2_THINKING = KimiModelSpec(thinking="always", context=262_144, max_output=32_768)
_K2_INSTRUCT = KimiModelSpec(thinking="never", context=262_144, max_output=16_384)

KNOWN_MODELS: dict[str, KimiModelSpec] = {
    "kimi-k2.5": _K25,
    "kimi-k2.6": _K25,
    "kimi-k2-thinking": _K2_THINKING,
    "kimi-k2-thinking-turbo": _K2_THINKING,
    "kimi-k3": KimiModelSpec(
        thinking="always",
        context=262_144,
        max_output=32_768,
        image_inputs=True,
        reasoning_effort_levels=("max",),
    ),
    "kimi-k2-instruct-0905": _K2_INSTRUCT,
    "kimi-k2-0905-preview": _K2_INSTRUCT,
    "kimi-k2-turbo-preview": _K2_INSTRUCT,
    "kimi-k2-0711-preview": KimiModelSpec(thinking="never", context=131_072, max_output=16_384),
}

# Longest prefixes first so "kimi-k2-thinking-turbo-x" is not read as "kimi-k2-thinking".
_BY_PREFIX = sorted(KNOWN_MODELS, key=len, reverse=True)


def find_model_spec(model: str) -> KimiModelSpec | None:
    """The spec for ``model``, by exact name or family prefix; None when unknown."""
    spec = KNOWN_MODELS.get(model)
    if spec is not None:
        return spec
    for name in _BY_PREFIX:
        if model.startswith(name + "-"):
            return KNOWN_MODELS[name]
    return None


def model_thinks(model: str, thinking: bool | None) -> bool:
    """Whether a request to ``model`` with this ``thinking`` setting runs in thinking mode."""
    spec = find_model_spec(model)
    if spec is None:
        return bool(thinking)
    return spec.thinks(thinking)


def drop_fixed_params(
    params: dict[str, Any], model: str, thinking: bool | None
) -> list[tuple[str, Any, float]]:
    """Remove from ``params`` what ``model`` fixes; return (name, user value, fixed value).

    The service refuses any other value for a fixed parameter and needs none
    for it, so none is sent; the caller decides whom to warn.
    """
    spec = find_model_spec(model)
    if spec is None:
        return []
    return [
        (name, params.pop(name), fixed)
        for name, fixed in spec.fixed_params(thinking).items()
        if name in params
    ]
