"""The ``thinking`` request field: the thinking switch and Preserved Thinking, per model. Pure.

Moonshot's thinking guide (August 2026) gives each model a different field:

==========================  ======================  ====================================
model                       ``thinking.type``       ``thinking.keep`` (Preserved Thinking)
==========================  ======================  ====================================
kimi-k3                     no ``thinking`` field   none: always preserved
kimi-k2.7-code(-highspeed)  ``enabled`` only        omitted, null, ``"all"``: all "all"
kimi-k2.6                   enabled / disabled      null (default) or ``"all"``
kimi-k2.5                   enabled / disabled      no such field
==========================  ======================  ====================================

:func:`thinking_field` turns the user's two switches, ``thinking`` and
``preserve_thinking``, into the field to send (or None: send nothing), and
refuses before sending what the model cannot do. What each known model takes is
in ``data/profile_augmentations.toml`` (``thinking``, ``thinking_parameter``,
``preserved_thinking``); a model the client does not know gets what the user
asked, unchecked.

Preserved Thinking (``keep: "all"``) hands the model the ``reasoning_content`` of
earlier assistant turns, which the service bills as input tokens. For it to
work every assistant message must carry its reasoning back: the payload builder
replays it on all of them when the field it sends says ``keep: "all"``
(:func:`preserves_all`).

Usage::

    thinking_field("kimi-k2.6", resolve_model("kimi-k2.6"), None, True)
    # {'type': 'enabled', 'keep': 'all'}
    thinking_field("kimi-k3", resolve_model("kimi-k3"), True, None)   # None: never sent
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_kimi._profiles import ModelRules, known_models

KEEP_ALL = "all"


def apply_thinking(params: dict[str, Any], model: str, rules: ModelRules | None) -> bool | None:
    """Replace the switches in request ``params`` by the ``thinking`` field to send.

    Reads ``params["thinking"]`` (a bool or the wire form) and pops
    ``params["preserve_thinking"]``; checks them against ``rules`` (None: a model
    the client does not know, nothing checked); leaves ``params["thinking"]`` the
    field to send, or absent. Returns the thinking switch as a bool (None: unset).
    """
    given = params.get("thinking")
    thinking, preserve = read_switches(given, params.pop("preserve_thinking", None))
    if rules is not None:
        rules.check_thinking_switch(model, thinking)
    wire = given if isinstance(given, Mapping) else None
    field = thinking_field(model, rules, thinking, preserve, wire)
    if field is None:
        params.pop("thinking", None)
    else:
        params["thinking"] = field
    return thinking


def thinking_field(
    model: str,
    rules: ModelRules | None,
    thinking: bool | None,
    preserve: bool | None,
    given: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The ``thinking`` body field for these switches, or None to send none.

    ``model`` is the name as the user wrote it (for messages); ``rules`` the
    model's, None for a model the client does not know. ``given`` is a wire-form
    field the user passed instead of a bool (``{"type": "enabled", ...}``): its
    keys other than ``type`` and ``keep`` are kept. Raises ``ValueError`` for a
    combination the model refuses; call after ``rules.check_thinking_switch``.
    """
    if preserve is True and thinking is False:
        raise ValueError(
            f"preserve_thinking=True with thinking=False on {model}: Preserved Thinking "
            "keeps earlier turns' reasoning, so it needs thinking on. Drop one of the two"
        )
    if rules is None:
        return _as_asked(thinking, preserve, given)
    extra = {key: value for key, value in (given or {}).items() if key not in ("type", "keep")}
    if preserve is not None:
        _check_preserve(model, rules, preserve)
    if not rules.thinking_parameter:
        if extra:
            raise ValueError(
                f"{model} takes no thinking parameter, so thinking={dict(given or {})!r} "
                "cannot be sent: remove it (the model always thinks; reasoning_effort is "
                "its setting)"
            )
        return None
    field: dict[str, Any] = {}
    if thinking is not None:
        field["type"] = "enabled" if thinking else "disabled"
    if preserve is True and rules.preserved_thinking == "optional":
        # keep only means something with thinking on: say so when the user did not.
        field = {"type": "enabled", "keep": KEEP_ALL}
    # "always" models preserve with keep omitted, which the service documents as
    # "all": nothing is added, so the body is what it would be without the option.
    return {**field, **extra} if field else (dict(extra) if extra else None)


def preserves_all(body_thinking: Any) -> bool:
    """Whether a ``thinking`` body field asks for Preserved Thinking (``keep: "all"``)."""
    return isinstance(body_thinking, Mapping) and body_thinking.get("keep") == KEEP_ALL


def thinking_switch(value: Any) -> bool | None:
    """The user's thinking switch as a bool; the wire form (``{"type": ...}``) is read too."""
    if isinstance(value, Mapping):
        return value.get("type") != "disabled"
    return None if value is None else bool(value)


def read_switches(thinking: Any, preserve: Any) -> tuple[bool | None, bool | None]:
    """``(thinking, preserve_thinking)`` as bools (or None: unset), from what the user passed.

    ``thinking`` may be the wire form: ``{"type": "disabled"}`` is off, another
    ``type`` on, and its ``keep`` (``"all"`` or null) stands for
    ``preserve_thinking`` when that is unset.
    """
    if preserve is not None and not isinstance(preserve, bool):
        raise ValueError(f"preserve_thinking must be True, False or None, got {preserve!r}")
    if preserve is None and isinstance(thinking, Mapping) and "keep" in thinking:
        preserve = thinking.get("keep") == KEEP_ALL
    return thinking_switch(thinking), preserve


def _check_preserve(model: str, rules: ModelRules, preserve: bool) -> None:
    if preserve and rules.preserved_thinking == "unsupported":
        raise ValueError(
            f"{model} has no Preserved Thinking: preserve_thinking=True is refused (the "
            f"service would reject thinking.keep). Models that take it: {_takers()}"
        )
    if not preserve and rules.preserved_thinking == "always":
        raise ValueError(
            f"{model} always preserves thinking (earlier turns' reasoning reaches the model, "
            "billed as input): preserve_thinking=False cannot turn it off. Leave it unset, or "
            "use kimi-k2.6, where it is off unless preserve_thinking=True"
        )


def _takers() -> str:
    names = []
    for name, rules in known_models().items():
        if rules.preserved_thinking == "optional":
            names.append(f"{name} (off by default)")
        elif rules.preserved_thinking == "always":
            names.append(f"{name} (always on)")
    return ", ".join(names)


def _as_asked(
    thinking: bool | None, preserve: bool | None, given: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """For a model the client does not know: the switches as the user set them.

    A wire-form field is sent as given, but for a ``preserve_thinking`` that
    says otherwise than its ``keep``.
    """
    field: dict[str, Any] = dict(given) if given else {}
    if given is None and thinking is not None:
        field["type"] = "enabled" if thinking else "disabled"
    if preserve is not None and thinking is not False:
        # keep exists only with thinking on: a preserve switch implies it.
        field.setdefault("type", "enabled")
        if "keep" not in field or (field["keep"] == KEEP_ALL) != preserve:
            field["keep"] = KEEP_ALL if preserve else None
    return field or None
