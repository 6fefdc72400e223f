"""What the client knows about each Kimi model, read from ``langchain_kimi/data``.

One source of truth: ``ChatKimi.profile`` and every check made before a request
read the same :class:`ModelRules`. They come from two files, loaded together,
once, when the first model is built (not when ``langchain_kimi`` is imported):

- ``data/_profiles.py``: LangChain's standard profile keys, in the format that
  ``langchain-profiles refresh --provider moonshotai`` writes from models.dev;
- ``data/profile_augmentations.toml``: its ``[request_rules]`` tables hold what
  LangChain's profile has no key for (thinking modes, fixed sampling, the
  ``tool_choice`` values accepted while thinking, the output-size field, the
  reasoning replay rule).

Names are resolved by :func:`resolve_model`: a vendor prefix (``moonshotai/``,
``moonshot/``, ``kimi/``) is dropped and case ignored, then the exact name is
looked up, then the longest known family the name extends with a ``-`` suffix
(``kimi-k2.5-20260115`` is kimi-k2.5). Ace Data Cloud and Moonshot match names
exactly, so :func:`name_to_send` sends them the catalogue's spelling of a known
name written in another case or with a vendor prefix; any other service gets the
name as written (it decides which names exist), with a warning where the
spellings differ. An unknown name gets no profile and no checks;
:func:`closest_known_model` names the model a near-miss (``kimi-k2.55``) was
probably meant to be, so the caller can warn.

Usage::

    rules = resolve_model("moonshotai/Kimi-K2.5")
    rules.name, rules.thinks(None), rules.fixed_params(True)["temperature"]
    # ('kimi-k2.5', True, 1.0)
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

from langchain_core.language_models import ModelProfile

from langchain_kimi._user_warnings import warn_at_user_code

ThinkingMode = Literal["default_on", "always", "never", "toggle"]
ReplayRule = Literal["tool_calls", "all"]
ForcedChoiceRule = Literal["send", "thinking_off", "emulate"]
PreservedThinking = Literal["unsupported", "optional", "always"]
ApiFlavor = Literal["acedata", "moonshot"]

THINKING_MODES: tuple[ThinkingMode, ...] = ("default_on", "always", "never", "toggle")
FORCED_CHOICE_RULES: tuple[ForcedChoiceRule, ...] = ("send", "thinking_off", "emulate")
PRESERVED_THINKING: tuple[PreservedThinking, ...] = ("unsupported", "optional", "always")
VENDOR_PREFIXES = ("moonshotai/", "moonshot/", "kimi/")
# The services that match model names exactly against their catalogue (Ace Data
# Cloud's and Moonshot's hosts): a known name is sent to them in its catalogue
# spelling. Any other host may be a gateway with names of its own.
CATALOGUE_HOSTS = frozenset({"api.acedata.cloud", "api.moonshot.ai", "api.moonshot.cn"})
# A name this similar to a known one (difflib's ratio) is probably a typo of it:
# "kimi-k2.55" scores 0.95 against kimi-k2.5; "gpt-4o" and "kimi-latest" score
# well under it against every Kimi name.
_NEAR_MISS_RATIO = 0.85
# (model name, host) pairs already warned about being sent as written (once per process).
_warned_exact_match: set[tuple[str, str]] = set()
_DIGIT = re.compile(r"\d")


class ModelRules:
    """Everything the client knows about one model: its profile and its request rules.

    One instance per model, built once from ``data/`` (see :func:`known_models`);
    treat it as read-only.
    """

    # A plain class, not a dataclass: building a dataclass costs import time.
    __slots__ = (
        "fixed_sampling_instant",
        "fixed_sampling_thinking",
        "forced_tool_choice",
        "json_schema_avoid",
        "max_tokens_field",
        "name",
        "preserved_thinking",
        "profile",
        "reasoning_replay",
        "thinking",
        "thinking_parameter",
        "tool_choice_when_thinking",
        "web_search_when_thinking",
    )

    def __init__(
        self,
        *,
        name: str,
        profile: Mapping[str, Any],
        thinking: ThinkingMode,
        fixed_sampling_thinking: Mapping[str, float],
        fixed_sampling_instant: Mapping[str, float],
        tool_choice_when_thinking: frozenset[str],
        web_search_when_thinking: bool,
        max_tokens_field: str,
        reasoning_replay: ReplayRule,
        json_schema_avoid: tuple[str, ...],
        forced_tool_choice: ForcedChoiceRule = "emulate",
        thinking_parameter: bool = True,
        preserved_thinking: PreservedThinking = "unsupported",
    ) -> None:
        self.name = name
        """The catalogue name (lower case, no vendor prefix)."""
        self.profile = profile
        """LangChain's profile keys, as in ``data/_profiles.py``."""
        self.thinking = thinking
        self.fixed_sampling_thinking = fixed_sampling_thinking
        self.fixed_sampling_instant = fixed_sampling_instant
        self.tool_choice_when_thinking = tool_choice_when_thinking
        self.web_search_when_thinking = web_search_when_thinking
        self.max_tokens_field = max_tokens_field
        self.reasoning_replay = reasoning_replay
        self.json_schema_avoid = json_schema_avoid
        self.forced_tool_choice = forced_tool_choice
        """What a forced ``tool_choice`` becomes (see ``profile_augmentations.toml``)."""
        self.thinking_parameter = thinking_parameter
        """False: the model takes no ``thinking`` field at all (kimi-k3); it is never sent."""
        self.preserved_thinking = preserved_thinking
        """Preserved Thinking (``thinking.keep``): ``"optional"`` (``keep: "all"`` turns it
        on), ``"always"`` (always on, cannot be turned off), ``"unsupported"``."""

    def __repr__(self) -> str:
        return f"<ModelRules {self.name} thinking={self.thinking}>"

    @property
    def image_inputs(self) -> bool:
        return bool(self.profile.get("image_inputs"))

    @property
    def video_inputs(self) -> bool:
        return bool(self.profile.get("video_inputs"))

    @property
    def public_image_urls(self) -> bool:
        """False only where the data says so: an unstated rule is not enforced."""
        return self.image_inputs and self.profile.get("image_url_inputs") is not False

    @property
    def reasoning_effort_levels(self) -> tuple[str, ...]:
        return tuple(self.profile.get("reasoning_effort_levels") or ())

    @property
    def deprecated(self) -> bool:
        return self.profile.get("status") == "deprecated"

    def thinks(self, thinking: bool | None) -> bool:
        """Whether a request with this ``thinking`` switch runs in thinking mode."""
        if self.thinking == "always":
            return True
        if self.thinking == "never":
            return False
        return thinking is not False

    def fixed_params(self, thinking: bool | None) -> Mapping[str, float]:
        """Parameters the model fixes in the mode ``thinking`` selects (name -> value)."""
        if self.thinks(thinking):
            return self.fixed_sampling_thinking
        return self.fixed_sampling_instant

    def accepts_tool_choice(self, choice: Any, *, thinking: bool) -> bool:
        """Whether the service takes this wire ``tool_choice`` in the given mode."""
        if choice is None or not thinking:
            return True
        return isinstance(choice, str) and choice in self.tool_choice_when_thinking

    def check_thinking_switch(self, model: str, thinking: bool | None) -> None:
        """``ValueError`` for a switch the model cannot honour (named as the user wrote it)."""
        if thinking is False and self.thinking == "always" and not self.thinking_parameter:
            lowest = self.reasoning_effort_levels[:1]
            instead = (
                f'for less reasoning, set reasoning_effort="{lowest[0]}"'
                if lowest
                else "leave thinking unset"
            )
            raise ValueError(
                f"{model} takes no thinking parameter and always thinks: thinking=False "
                f"cannot turn it off. Leave thinking unset; {instead}"
            )
        if thinking is False and self.thinking == "always":
            raise ValueError(
                f"{model} always thinks: thinking=False cannot turn it off (the service would "
                "think anyway). Leave thinking unset, or use a model that can answer without "
                "thinking (kimi-k2.6 with thinking=False)"
            )
        if thinking is True and self.thinking == "never":
            raise ValueError(
                f"{model} does not think: thinking=True cannot turn thinking on. Leave "
                "thinking unset, or use a thinking model (kimi-k2.6, kimi-k3)"
            )

    def check_reasoning_effort(self, model: str, effort: Any) -> None:
        """``ValueError`` for a ``reasoning_effort`` outside the model's documented levels."""
        if effort is None:
            return
        levels = self.reasoning_effort_levels
        if effort in levels:
            return
        if not levels:
            raise ValueError(
                f"{model} has no reasoning_effort setting (got {effort!r}): remove it, "
                "or use kimi-k3 (low, high, max)"
            )
        raise ValueError(
            f"{model} takes reasoning_effort {', '.join(map(repr, levels))}, not {effort!r}"
        )

    def to_profile(self, api_flavor: ApiFlavor = "acedata") -> ModelProfile:
        """A fresh copy of the profile, for ``ChatKimi.profile`` on that service.

        ``structured_output`` says whether a ``response_format`` of type
        ``json_schema`` works (what LangChain's agents check before sending one).
        Moonshot takes it natively where the data says so. Ace Data Cloud takes
        only ``json_object``, and ChatKimi turns a ``json_schema`` into JSON mode
        plus the schema as an instruction, checking the answer on arrival: so
        there it works on every model.
        """
        profile = {key: _copy(value) for key, value in self.profile.items()}
        if api_flavor == "acedata":
            profile["structured_output"] = True
        return cast(ModelProfile, profile)


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


# --- the data ------------------------------------------------------------------------


@functools.cache
def known_models() -> Mapping[str, ModelRules]:
    """Every model in ``data/``, by catalogue name (parsed once, on first use)."""
    import tomllib
    from importlib.resources import files

    from langchain_kimi.data._profiles import _PROFILES

    augmentations = tomllib.loads(
        files("langchain_kimi.data").joinpath("profile_augmentations.toml").read_text("utf-8")
    )
    rules = augmentations.get("request_rules", {})
    defaults = {key: value for key, value in rules.items() if not isinstance(value, dict)}
    unknown = set(rules) - set(defaults) - set(_PROFILES)
    if unknown:
        # A refresh dropped a model the rules still describe: say which, loudly.
        raise RuntimeError(f"request_rules for models without a profile: {sorted(unknown)}")
    return {
        name: _build_rules(name, profile, {**defaults, **rules.get(name, {})})
        for name, profile in _PROFILES.items()
    }


def _build_rules(name: str, profile: Mapping[str, Any], rules: Mapping[str, Any]) -> ModelRules:
    thinking = rules.get("thinking") or ("toggle" if profile.get("reasoning_output") else "never")
    if thinking not in THINKING_MODES:
        raise RuntimeError(f"{name}: thinking must be one of {THINKING_MODES}, got {thinking!r}")
    replay = rules.get("reasoning_replay", "tool_calls")
    if replay not in ("tool_calls", "all"):
        raise RuntimeError(f"{name}: reasoning_replay must be tool_calls or all, got {replay!r}")
    forced = rules.get("forced_tool_choice") or ("send" if thinking == "never" else "emulate")
    if forced not in FORCED_CHOICE_RULES:
        raise RuntimeError(
            f"{name}: forced_tool_choice must be one of {FORCED_CHOICE_RULES}, got {forced!r}"
        )
    accepted = frozenset(rules.get("tool_choice_when_thinking", ()))
    if forced == "send" and thinking != "never" and "required" not in accepted:
        # "send" for a thinking model means the service takes "required" while thinking.
        raise RuntimeError(f"{name}: forced_tool_choice 'send' needs 'required' accepted")
    preserved = rules.get("preserved_thinking", "unsupported")
    if preserved not in PRESERVED_THINKING:
        raise RuntimeError(
            f"{name}: preserved_thinking must be one of {PRESERVED_THINKING}, got {preserved!r}"
        )
    return ModelRules(
        name=name,
        profile=profile,
        thinking=thinking,
        fixed_sampling_thinking=dict(rules.get("fixed_sampling_thinking", {})),
        fixed_sampling_instant=dict(rules.get("fixed_sampling_instant", {})),
        tool_choice_when_thinking=accepted,
        web_search_when_thinking=bool(rules.get("web_search_when_thinking", False)),
        max_tokens_field=str(rules.get("max_tokens_field", "max_tokens")),
        reasoning_replay=replay,
        json_schema_avoid=tuple(rules.get("json_schema_avoid", ())),
        forced_tool_choice=forced,
        thinking_parameter=bool(rules.get("thinking_parameter", True)),
        preserved_thinking=preserved,
    )


@functools.cache
def _families() -> Sequence[str]:
    # Longest first: "kimi-k2-thinking-turbo-x" extends kimi-k2-thinking-turbo,
    # not kimi-k2-thinking.
    return sorted(known_models(), key=len, reverse=True)


# --- names ---------------------------------------------------------------------------


def catalogue_spelling(model: str) -> str:
    """``model`` in lower case, without a vendor prefix (``moonshotai/Kimi-K2.5`` -> kimi-k2.5)."""
    lowered = model.strip().lower()
    for prefix in VENDOR_PREFIXES:
        if lowered.startswith(prefix):
            return lowered[len(prefix) :]
    return lowered


@functools.lru_cache(maxsize=512)
def resolve_model(model: str) -> ModelRules | None:
    """The rules for ``model``: exact name, else the longest family it extends; None if unknown."""
    name = catalogue_spelling(model)
    models = known_models()
    rules = models.get(name)
    if rules is not None:
        return rules
    for family in _families():
        if name.startswith(family + "-"):
            return models[family]
    return None


def name_to_send(model: str, host: str) -> str:
    """The name to send for ``model`` to ``host``.

    A known model written in another case or with a vendor prefix
    (``Kimi-K2.6``, ``moonshotai/kimi-k3``) is sent in the catalogue's spelling
    to Ace Data Cloud's and Moonshot's hosts, which match names exactly. Other
    hosts get it as written (their own names apply), with a ``UserWarning``
    once per name and host.

    >>> name_to_send("moonshotai/Kimi-K2.6", "api.acedata.cloud")
    'kimi-k2.6'
    >>> name_to_send("kimi-k2.6", "api.moonshot.ai")
    'kimi-k2.6'
    """
    spelled = catalogue_spelling(model)
    if spelled == model or resolve_model(model) is None:
        return model
    host = host.lower()
    if host in CATALOGUE_HOSTS:
        return spelled
    if (model, host) not in _warned_exact_match:
        _warned_exact_match.add((model, host))
        warn_at_user_code(
            f"the model name {model!r} is sent as written to {host}: Ace Data Cloud and "
            f"Moonshot match names exactly and call this model {spelled!r} (ChatKimi sends "
            f"them that), but {host} is neither, so its own names apply. If it answers 404 "
            f"(model not found), use model={spelled!r}"
        )
    return model


@functools.lru_cache(maxsize=512)
def closest_known_model(model: str) -> str | None:
    """For a name :func:`resolve_model` does not know: the known name it nearly spells.

    A name that differs from a known one only in its digits (``kimi-k2.9``,
    ``kimi-k4``) reads as another version, not a typo: None.
    """
    if resolve_model(model) is not None:
        return None
    name = catalogue_spelling(model)
    matches = difflib.get_close_matches(name, list(known_models()), n=1, cutoff=_NEAR_MISS_RATIO)
    if not matches or _DIGIT.sub("0", matches[0]) == _DIGIT.sub("0", name):
        return None
    return matches[0]


def unknown_model_message(model: str, closest: str) -> str:
    """The warning for a name that nearly spells a known model."""
    return (
        f"{model!r} is not a model langchain-kimi knows; the closest known model is "
        f"{closest!r}. It is sent as written, without that model's checks or profile. "
        f"If you meant {closest!r}, fix the name; if {model!r} is a newer model, ignore "
        "this warning (or upgrade langchain-kimi)"
    )


# --- what the request code asks --------------------------------------------------------


def model_thinks(model: str, thinking: bool | None) -> bool:
    """Whether a request to ``model`` with this ``thinking`` switch runs in thinking mode."""
    rules = resolve_model(model)
    if rules is None:
        return bool(thinking)
    return rules.thinks(thinking)


def drop_fixed_params(
    params: dict[str, Any], model: str, thinking: bool | None
) -> list[tuple[str, Any, float]]:
    """Remove from ``params`` what ``model`` fixes; return (name, user value, fixed value).

    The service refuses any other value for a fixed parameter and needs none
    for it, so none is sent; the caller decides whom to warn.
    """
    rules = resolve_model(model)
    if rules is None:
        return []
    return [
        (name, params.pop(name), fixed)
        for name, fixed in rules.fixed_params(thinking).items()
        if name in params
    ]


def move_output_limit(params: dict[str, Any], field: str, model: str) -> None:
    """Send the user's ``max_tokens`` under the field the model takes (kimi-k3's is
    ``max_completion_tokens``); refuse two different limits."""
    if field == "max_tokens" or "max_tokens" not in params:
        return
    value = params.pop("max_tokens")
    other = params.get(field)
    if other is not None and other != value:
        raise ValueError(
            f"{model} takes its output limit as {field}, and max_tokens={value} and "
            f"{field}={other} disagree: set only one"
        )
    params[field] = value
