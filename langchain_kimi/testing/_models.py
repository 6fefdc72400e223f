"""The models :class:`~langchain_kimi.testing.FakeKimiServer` serves, and what each accepts.

The simulator's own table, written from the service's documentation (the
project's protocol notes), never read from the client's ``langchain_kimi.data``:
the simulator is the referee, and a table shared with the client would let both
agree on the same mistake.

Names are matched exactly, as the real service matches them: ``Kimi-K2.5`` or
``moonshotai/kimi-k2.5`` (how OpenRouter spells it) are names the service does
not serve. For those, Moonshot answers 404
``{"error": {"message": "Not found the model <name> or Permission denied",
"type": "resource_not_found_error"}}`` (seen in public reports against
``api.moonshot.ai``, 2025-2026). Ace Data Cloud's answer for a model outside its
list is not documented; the simulator assumes it passes Moonshot's answer on,
as it does for Moonshot's 400s.

Usage::

    served_model("kimi-k3").tool_choice_while_thinking  # ("auto", "none", "required")
    served_model("moonshotai/kimi-k2.5")                # None: a 404
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Thinking = Literal["default_on", "always", "never"]

# Kimi K2.x's fixed sampling: the only values the service accepts (absent is fine).
K2_SAMPLING_THINKING: dict[str, float] = {
    "temperature": 1.0,
    "top_p": 0.95,
    "n": 1,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}
K2_SAMPLING_INSTANT: dict[str, float] = {**K2_SAMPLING_THINKING, "temperature": 0.6}


@dataclass(frozen=True)
class ServedModel:
    """How the simulated service treats requests for one model."""

    thinking: Thinking
    """``default_on``: thinks unless ``{"type": "disabled"}``; ``always``: a disabled
    switch is ignored; ``never``: an enabled switch is ignored."""
    images: bool = False
    videos: bool = False
    public_image_urls: bool = True
    """False: images only as base64 data URLs or ``ms://<file-id>`` (kimi-k3)."""
    sampling_when_thinking: dict[str, float] = field(default_factory=dict)
    sampling_when_instant: dict[str, float] = field(default_factory=dict)
    tool_choice_while_thinking: tuple[str, ...] = ("auto", "none")
    forced_choice_refused: bool = False
    """A forced ``tool_choice`` (``"required"``, a named tool) is refused in every
    mode, thinking or not (kimi-k2.6, the kimi-k2.7-code models, kimi-k2-thinking:
    Moonshot's thinking guide, 2026)."""
    replay_every_turn: bool = False
    """Every assistant message in the history must carry ``reasoning_content``,
    not only tool-call messages (kimi-k3, kimi-k2.7-code)."""
    takes_thinking_field: bool = True
    """False: a request with a ``thinking`` field is refused (kimi-k3)."""
    thinking_keep: tuple[str | None, ...] | None = None
    """The values ``thinking.keep`` may take (``None`` is JSON null); ``()``: the
    model has no such field, any ``keep`` is refused; None: not checked (the
    documentation says nothing for this model)."""


# thinking.keep on the models that have it: null (kimi-k2.6's default: earlier
# reasoning dropped) or "all" (Preserved Thinking).
_KEEP_NULL_OR_ALL: tuple[str | None, ...] = (None, "all")
_K2_INSTRUCT = ServedModel(thinking="never")
_K2_THINKING = ServedModel(thinking="always", forced_choice_refused=True)

SERVED_MODELS: dict[str, ServedModel] = {
    # Ace Data Cloud's list (its OpenAPI schema), still served there in 2026.
    "kimi-k2.5": ServedModel(
        thinking="default_on",
        images=True,
        videos=True,
        sampling_when_thinking=K2_SAMPLING_THINKING,
        sampling_when_instant=K2_SAMPLING_INSTANT,
        thinking_keep=(),
    ),
    "kimi-k2-thinking": _K2_THINKING,
    "kimi-k2-thinking-turbo": _K2_THINKING,
    "kimi-k2-instruct-0905": _K2_INSTRUCT,
    "kimi-k2-0905-preview": _K2_INSTRUCT,
    "kimi-k2-turbo-preview": _K2_INSTRUCT,
    "kimi-k2-0711-preview": _K2_INSTRUCT,
    # Moonshot's 2026 models.
    "kimi-k2.6": ServedModel(
        thinking="default_on",
        images=True,
        videos=True,
        sampling_when_thinking=K2_SAMPLING_THINKING,
        sampling_when_instant=K2_SAMPLING_INSTANT,
        forced_choice_refused=True,
        thinking_keep=_KEEP_NULL_OR_ALL,
    ),
    "kimi-k2.7-code": ServedModel(
        thinking="always",
        images=True,
        videos=True,
        sampling_when_thinking=K2_SAMPLING_THINKING,
        forced_choice_refused=True,
        replay_every_turn=True,
        # Omitted, null and "all" all mean "all": Preserved Thinking is always on.
        thinking_keep=_KEEP_NULL_OR_ALL,
    ),
    "kimi-k2.7-code-highspeed": ServedModel(
        thinking="always",
        images=True,
        videos=True,
        forced_choice_refused=True,
        thinking_keep=_KEEP_NULL_OR_ALL,
    ),
    # kimi-k3 "does not support the thinking parameter" and always thinks, with
    # Preserved Thinking always on (Moonshot's thinking guide, August 2026).
    "kimi-k3": ServedModel(
        thinking="always",
        images=True,
        videos=True,
        public_image_urls=False,
        tool_choice_while_thinking=("auto", "none", "required"),
        replay_every_turn=True,
        takes_thinking_field=False,
    ),
    "kimi-k2.8-preview": ServedModel(thinking="default_on", images=True, videos=True),
}


def served_model(name: object) -> ServedModel | None:
    """The model the service serves under exactly this name; None for any other name."""
    return SERVED_MODELS.get(name) if isinstance(name, str) else None


def not_found_message(name: str) -> str:
    """Moonshot's message for a model it does not serve (or the key may not use)."""
    return f"Not found the model {name} or Permission denied"
