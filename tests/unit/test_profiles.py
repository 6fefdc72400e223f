"""The model catalogue: data files, name resolution, and each model's rules as ChatKimi applies them.

The expectations below are written from the services' public documentation,
not read from langchain_kimi/data, so a wrong entry in the data fails here:
Moonshot's model and thinking guides (platform.moonshot.ai/docs: the models
overview, "use-thinking-models", the kimi-k3 reference) and Ace Data Cloud's
Kimi page (platform.acedata.cloud) for the catalogue each service serves, its
fixed sampling parameters, thinking modes and tool_choice rules.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
import warnings
from importlib.resources import files
from pathlib import Path
from typing import Any, get_type_hints

import pytest
from langchain_core.language_models import ModelProfile
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from langchain_kimi import ChatKimi, _profiles, _tools, chat_models
from langchain_kimi._profiles import (
    catalogue_spelling,
    closest_known_model,
    known_models,
    resolve_model,
)
from langchain_kimi.data._profiles import _PROFILES

SECRET = "sk-test"
DATA = Path(str(files("langchain_kimi.data")))
AUGMENTATIONS = tomllib.loads((DATA / "profile_augmentations.toml").read_text("utf-8"))

K2_THINKING_SAMPLING = {
    "temperature": 1.0,
    "top_p": 0.95,
    "n": 1,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}
K2_INSTANT_SAMPLING = {**K2_THINKING_SAMPLING, "temperature": 0.6}
K256 = 262_144
M1 = 1_048_576
# "does not support the thinking parameter" (Moonshot's thinking guide, August 2026).
NO_THINKING_FIELD = {"kimi-k3"}
# Preserved Thinking (thinking.keep), from the same guide: kimi-k2.6 takes keep
# "all" (default null); kimi-k2.7-code(-highspeed) and kimi-k3 always preserve;
# kimi-k2.5 has no such field; nothing is documented for the others.
PRESERVED_THINKING = {
    "kimi-k2.6": "optional",
    "kimi-k2.7-code": "always",
    "kimi-k2.7-code-highspeed": "always",
    "kimi-k3": "always",
}

# model -> (context, output, image, video, public image URLs, thinking mode,
#           fixed when thinking, fixed when not, tool_choice accepted while thinking,
#           output-size field, replay reasoning on every assistant message,
#           reasoning_effort levels, deprecated on Moonshot)
EXPECTED: dict[str, tuple[Any, ...]] = {
    "kimi-k2.5": (
        K256,
        K256,
        True,
        True,
        True,
        "default_on",
        K2_THINKING_SAMPLING,
        K2_INSTANT_SAMPLING,
        {"auto", "none"},
        "max_tokens",
        False,
        (),
        True,
    ),
    "kimi-k2.6": (
        K256,
        K256,
        True,
        True,
        True,
        "default_on",
        K2_THINKING_SAMPLING,
        K2_INSTANT_SAMPLING,
        {"auto", "none"},
        "max_tokens",
        False,
        (),
        False,
    ),
    "kimi-k2.7-code": (
        K256,
        K256,
        True,
        True,
        True,
        "always",
        K2_THINKING_SAMPLING,
        {},
        {"auto", "none"},
        "max_tokens",
        True,
        (),
        False,
    ),
    "kimi-k2.7-code-highspeed": (
        K256,
        K256,
        True,
        True,
        True,
        "always",
        {},
        {},
        {"auto", "none"},
        "max_tokens",
        True,
        (),
        False,
    ),
    "kimi-k3": (
        M1,
        K256,
        True,
        True,
        False,
        "always",
        {},
        {},
        {"auto", "none", "required"},
        "max_completion_tokens",
        True,
        ("low", "high", "max"),
        False,
    ),
    "kimi-k2.8-preview": (
        M1,
        M1,
        True,
        True,
        True,
        "toggle",
        {},
        {},
        {"auto", "none"},
        "max_tokens",
        False,
        (),
        False,
    ),
    "kimi-k2-thinking": (
        K256,
        K256,
        False,
        False,
        False,
        "always",
        {},
        {},
        {"auto", "none"},
        "max_tokens",
        False,
        (),
        True,
    ),
    "kimi-k2-thinking-turbo": (
        K256,
        K256,
        False,
        False,
        False,
        "always",
        {},
        {},
        {"auto", "none"},
        "max_tokens",
        False,
        (),
        True,
    ),
    "kimi-k2-instruct-0905": (
        K256,
        K256,
        False,
        False,
        False,
        "never",
        {},
        {},
        {"auto", "none"},
        "max_tokens",
        False,
        (),
        False,
    ),
    "kimi-k2-0905-preview": (
        K256,
        K256,
        False,
        False,
        False,
        "never",
        {},
        {},
        {"auto", "none"},
        "max_tokens",
        False,
        (),
        True,
    ),
    "kimi-k2-turbo-preview": (
        K256,
        K256,
        False,
        False,
        False,
        "never",
        {},
        {},
        {"auto", "none"},
        "max_tokens",
        False,
        (),
        True,
    ),
    "kimi-k2-0711-preview": (
        131_072,
        16_384,
        False,
        False,
        False,
        "never",
        {},
        {},
        {"auto", "none"},
        "max_tokens",
        False,
        (),
        True,
    ),
}
MODELS = sorted(EXPECTED)
# Models models.dev's "moonshotai" provider is not known to list: a refresh keeps
# them only through their full [overrides] table.
AUGMENTATION_ONLY = {
    "kimi-k2-instruct-0905",
    "kimi-k2.7-code",
    "kimi-k2.7-code-highspeed",
    "kimi-k2.8-preview",
}


@tool
def get_time(city: str) -> str:
    """Local time in a city."""
    return "12:00"


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return "sunny"


def sent(model: ChatKimi, **kwargs: Any) -> dict[str, Any]:
    raw = model._encode([HumanMessage("hi")], None, False, kwargs)
    return json.loads(raw)  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _fresh_near_miss_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chat_models, "_warned_near_miss", set())


# --- the data files --------------------------------------------------------------------


def test_the_catalogue_holds_every_model_of_the_notes() -> None:
    assert set(known_models()) == set(EXPECTED)
    assert set(_PROFILES) == set(EXPECTED)


def test_profiles_file_is_what_the_refresh_command_writes() -> None:
    # langchain-profiles refresh: models sorted by id, json.dumps(indent=4) with
    # Python literals, trailing commas before every closing bracket.
    text = (DATA / "_profiles.py").read_text("utf-8")
    header, _, generated = text.partition("from typing import Any\n\n")
    assert "WRITTEN BY HAND" in header
    assert "langchain-profiles refresh --provider moonshotai" in header
    serialised = json.dumps(dict(sorted(_PROFILES.items())), indent=4)
    serialised = serialised.replace("true", "True").replace("false", "False")
    serialised = re.sub(r"([^\s,{\[])(?=\n\s*[\}\]])", r"\1,", serialised.replace("null", "None"))
    assert generated == f"_PROFILES: dict[str, dict[str, Any]] = {serialised}\n"
    assert ast.parse(text)  # and it is Python


def test_overrides_are_merged_as_the_refresh_command_merges_them() -> None:
    overrides = AUGMENTATIONS["overrides"]
    provider = {k: v for k, v in overrides.items() if not isinstance(v, dict)}
    assert provider  # tool_choice, tool_call_streaming
    for name, profile in _PROFILES.items():
        for key, value in provider.items():
            assert profile[key] == value, (name, key)
        for key, value in overrides.get(name, {}).items():
            assert profile[key] == value, (name, key)
    for name in AUGMENTATION_ONLY:
        # Nothing comes from models.dev: provider keys first, then the model's.
        expected = {**provider, **overrides[name]}
        assert list(_PROFILES[name].items()) == list(expected.items())


def test_profiles_use_only_langchains_keys_and_build_without_warnings() -> None:
    declared = set(get_type_hints(ModelProfile))
    for name, profile in _PROFILES.items():
        assert set(profile) <= declared, name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in MODELS:
            ChatKimi(model=name, api_key=SECRET)


def test_every_model_has_its_request_rules_and_nothing_else_does() -> None:
    rules = AUGMENTATIONS["request_rules"]
    per_model = {name for name, value in rules.items() if isinstance(value, dict)}
    assert per_model == set(EXPECTED)
    for name in per_model:
        assert rules[name]["thinking"] in ("default_on", "always", "never", "toggle")


def test_the_data_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    known_models()  # loaded by now
    calls: list[Any] = []
    monkeypatch.setattr(tomllib, "loads", lambda *a, **k: calls.append(a))
    for name in MODELS:
        ChatKimi(model=name, api_key=SECRET)
        resolve_model(name.upper())
    assert calls == []


def test_importing_the_package_does_not_load_the_data() -> None:
    import subprocess
    import sys

    code = (
        "import sys, langchain_kimi; "
        "print('langchain_kimi.data._profiles' in sys.modules, 'tomllib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --- each model ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_profile(name: str) -> None:
    context, output, image, video, public_urls, *_, levels, deprecated = EXPECTED[name]
    profile = ChatKimi(model=name, api_key=SECRET).profile
    assert profile is not None
    assert profile["max_input_tokens"] == context
    assert profile["max_output_tokens"] == output
    assert profile["text_inputs"] is True and profile["text_outputs"] is True
    assert profile["image_inputs"] is image and profile["video_inputs"] is video
    assert profile.get("image_url_inputs", image) is public_urls
    assert profile["tool_calling"] is True and profile["tool_choice"] is True
    assert profile["reasoning_output"] is (EXPECTED[name][5] != "never")
    assert tuple(profile.get("reasoning_effort_levels", ())) == levels
    assert (profile.get("status") == "deprecated") is deprecated
    # A copy: a user editing it does not change the next model's profile.
    profile["max_input_tokens"] = 1
    assert ChatKimi(model=name, api_key=SECRET).profile["max_input_tokens"] == context  # type: ignore[index]


@pytest.mark.parametrize("name", MODELS)
def test_thinking_mode(name: str) -> None:
    mode = EXPECTED[name][5]
    rules = resolve_model(name)
    assert rules is not None and rules.thinking == mode
    default = ChatKimi(model=name, api_key=SECRET)
    assert "thinking" not in sent(default)  # unset is never sent
    if mode == "always" and name in NO_THINKING_FIELD:
        # The reference: no thinking parameter. True is accepted and not sent;
        # False is refused, pointing at the setting the model does have.
        with pytest.raises(ValueError, match=f'{re.escape(name)} takes no thinking.*"low"'):
            ChatKimi(model=name, api_key=SECRET, thinking=False)
        with pytest.raises(ValueError, match="thinking=False"):
            sent(default, thinking=False)
        assert "thinking" not in sent(ChatKimi(model=name, api_key=SECRET, thinking=True))
        assert "thinking" not in sent(default, thinking={"type": "enabled"})
        assert rules.thinks(None) is True
    elif mode == "always":
        with pytest.raises(ValueError, match=f"{re.escape(name)} always thinks"):
            ChatKimi(model=name, api_key=SECRET, thinking=False)
        with pytest.raises(ValueError, match="thinking=False"):
            sent(default, thinking=False)
        assert sent(ChatKimi(model=name, api_key=SECRET, thinking=True))["thinking"] == {
            "type": "enabled"
        }
        assert rules.thinks(None) is True
    elif mode == "never":
        with pytest.raises(ValueError, match=f"{re.escape(name)} does not think"):
            ChatKimi(model=name, api_key=SECRET, thinking=True)
        with pytest.raises(ValueError, match="thinking=True"):
            sent(default, thinking={"type": "enabled"})
        assert sent(ChatKimi(model=name, api_key=SECRET, thinking=False))["thinking"] == {
            "type": "disabled"
        }
        assert rules.thinks(None) is False
    else:
        # Switchable (documented, or disputed for kimi-k3): sent as the user asked.
        for switch, wire in ((True, "enabled"), (False, "disabled")):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                model = ChatKimi(model=name, api_key=SECRET, thinking=switch)
            assert sent(model)["thinking"] == {"type": wire}
            assert rules.thinks(switch) is switch
        assert rules.thinks(None) is True


@pytest.mark.parametrize("name", MODELS)
def test_preserved_thinking(name: str) -> None:
    expected = PRESERVED_THINKING.get(name, "unsupported")
    rules = resolve_model(name)
    assert rules is not None and rules.preserved_thinking == expected
    assert rules.thinking_parameter is (name not in NO_THINKING_FIELD)
    default = ChatKimi(model=name, api_key=SECRET)
    if expected == "optional":
        on = sent(ChatKimi(model=name, api_key=SECRET, preserve_thinking=True))
        assert on["thinking"] == {"type": "enabled", "keep": "all"}
        assert sent(default, preserve_thinking=True)["thinking"] == {
            "type": "enabled",
            "keep": "all",
        }
        # False is the service's default (keep null): nothing to send.
        assert "thinking" not in sent(default, preserve_thinking=False)
        with pytest.raises(ValueError, match="preserve_thinking=True with thinking=False"):
            ChatKimi(model=name, api_key=SECRET, preserve_thinking=True, thinking=False)
        with pytest.raises(ValueError, match="preserve_thinking=True with thinking=False"):
            sent(default, preserve_thinking=True, thinking=False)
    elif expected == "always":
        # Accepted, and nothing added: keep omitted already means "all" there.
        assert sent(default, preserve_thinking=True) == sent(default)
        assert "thinking" not in sent(ChatKimi(model=name, api_key=SECRET, preserve_thinking=True))
        with pytest.raises(ValueError, match=f"{re.escape(name)} always preserves thinking"):
            ChatKimi(model=name, api_key=SECRET, preserve_thinking=False)
        with pytest.raises(ValueError, match="cannot turn it off"):
            sent(default, preserve_thinking=False)
    else:
        message = rf"{re.escape(name)} has no Preserved Thinking.*kimi-k2\.6 \(off by default\)"
        with pytest.raises(ValueError, match=message):
            ChatKimi(model=name, api_key=SECRET, preserve_thinking=True)
        with pytest.raises(ValueError, match=message):
            sent(default, preserve_thinking=True)
        if rules.thinking != "never":
            # The wire form's keep is read as the same switch.
            with pytest.raises(ValueError, match=message):
                sent(default, thinking={"type": "enabled", "keep": "all"})
        # False asks for what the model does anyway: accepted, nothing sent.
        assert sent(default, preserve_thinking=False) == sent(default)


def test_preserved_thinking_on_an_unknown_model_is_sent_as_asked() -> None:
    model = ChatKimi(model="kimi-k9", api_key=SECRET)
    assert sent(model, preserve_thinking=True)["thinking"] == {"type": "enabled", "keep": "all"}
    assert sent(model, preserve_thinking=False)["thinking"] == {"type": "enabled", "keep": None}
    assert "thinking" not in sent(model)
    wire = {"type": "enabled", "keep": "some-new-value", "budget": 3}
    assert sent(model, thinking=wire)["thinking"] == wire  # the wire form, as given
    with pytest.raises(ValueError, match="preserve_thinking=True with thinking=False"):
        sent(model, preserve_thinking=True, thinking=False)
    with pytest.raises(ValueError, match="preserve_thinking must be True, False or None"):
        sent(model, preserve_thinking="yes")


def test_kimi_k3_refuses_a_wire_form_thinking_field_it_cannot_take() -> None:
    model = ChatKimi(model="kimi-k3", api_key=SECRET)
    with pytest.raises(ValueError, match="kimi-k3 takes no thinking parameter"):
        sent(model, thinking={"type": "enabled", "budget_tokens": 100})


@pytest.mark.parametrize("name", MODELS)
def test_fixed_parameters(name: str) -> None:
    mode, fixed_thinking, fixed_instant = EXPECTED[name][5:8]
    rules = resolve_model(name)
    assert rules is not None
    assert dict(rules.fixed_sampling_thinking) == fixed_thinking
    assert dict(rules.fixed_sampling_instant) == fixed_instant
    settings = {"temperature": 0.3, "top_p": 0.5, "n": 2, "presence_penalty": 0.4}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = ChatKimi(model=name, api_key=SECRET, **settings)  # type: ignore[arg-type]
        body = sent(model)
        sent(model)  # warned once per parameter, at construction only
    fixed = fixed_thinking if mode != "never" else fixed_instant
    for parameter, value in settings.items():
        if parameter in fixed:
            assert parameter not in body
        else:
            assert body[parameter] == value
    warned = sorted(str(w.message).split(" fixes ")[1].split(" at ")[0] for w in caught)
    assert warned == sorted(p for p in settings if p in fixed)
    if fixed_instant:
        off = ChatKimi(model=name, api_key=SECRET, thinking=False, temperature=0.6)
        assert "temperature" not in sent(off)


# What a forced tool_choice becomes, per model (KIMI_API.md, "Models" and "Thinking
# controls"): kimi-k3 takes "required" while thinking; kimi-k2.5 takes a forced choice
# only with thinking off; kimi-k2.6, kimi-k2.7-code and kimi-k2-thinking refuse it in
# every mode; the models that never think take it. kimi-k2.8-preview: nothing published.
FORCED_RULE = {
    "kimi-k3": "send",
    "kimi-k2.5": "thinking_off",
    "kimi-k2.6": "emulate",
    "kimi-k2.7-code": "emulate",
    "kimi-k2.7-code-highspeed": "emulate",
    "kimi-k2-thinking": "emulate",
    "kimi-k2-thinking-turbo": "emulate",
    "kimi-k2.8-preview": "emulate",
    "kimi-k2-instruct-0905": "send",
    "kimi-k2-0905-preview": "send",
    "kimi-k2-turbo-preview": "send",
    "kimi-k2-0711-preview": "send",
}
NAMED = {"type": "function", "function": {"name": "get_weather"}}


def test_every_model_has_a_forced_choice_rule() -> None:
    assert set(FORCED_RULE) == set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_tool_choice_rules(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tools, "_warned_forced", set())
    mode, accepted = EXPECTED[name][5], EXPECTED[name][8]
    rules = resolve_model(name)
    assert rules is not None and set(rules.tool_choice_when_thinking) == accepted
    assert rules.forced_tool_choice == FORCED_RULE[name]
    model = ChatKimi(model=name, api_key=SECRET)
    tools = [get_weather, get_time]
    for choice in ("auto", "none"):
        body = sent(model, **model.bind_tools(tools, tool_choice=choice).kwargs)  # type: ignore[attr-defined]
        assert body["tool_choice"] == choice and len(body["tools"]) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the adaptation's warning is tested elsewhere
        required = sent(model, **model.bind_tools(tools, tool_choice="any").kwargs)  # type: ignore[attr-defined]
        named = sent(model, **model.bind_tools(tools, tool_choice="get_weather").kwargs)  # type: ignore[attr-defined]
    names = [[t["function"]["name"] for t in body["tools"]] for body in (required, named)]
    rule = FORCED_RULE[name]
    if rule == "send":
        assert required["tool_choice"] == "required" and names[0] == ["get_weather", "get_time"]
        if mode == "never":
            assert named["tool_choice"] == NAMED and names[1] == ["get_weather", "get_time"]
        else:  # a named tool is refused while thinking: "required" with only that tool
            assert named["tool_choice"] == "required" and names[1] == ["get_weather"]
        assert "thinking" not in required and required["messages"][0]["role"] == "user"
    elif rule == "thinking_off":
        assert required["tool_choice"] == "required" and named["tool_choice"] == NAMED
        assert required["thinking"] == named["thinking"] == {"type": "disabled"}
    else:
        assert required["tool_choice"] == named["tool_choice"] == "auto"
        assert names == [["get_weather", "get_time"], ["get_weather"]]
        assert "one of the tools" in required["messages"][0]["content"]
        assert "`get_weather`" in named["messages"][0]["content"]
        assert required["messages"][0]["role"] == named["messages"][0]["role"] == "system"
        assert "thinking" not in required  # emulated whatever the mode: nothing switched
    if mode in ("default_on", "toggle") and rule != "emulate":
        off = ChatKimi(model=name, api_key=SECRET, thinking=False)
        forced = sent(off, **off.bind_tools(tools, tool_choice="get_weather").kwargs)  # type: ignore[attr-defined]
        if rule == "thinking_off":  # thinking off: any tool can be forced as it is
            assert forced["tool_choice"] == NAMED and len(forced["tools"]) == 2
        else:  # kimi-k3: whether it stops thinking is disputed, "required" works either way
            assert forced["tool_choice"] == "required" and len(forced["tools"]) == 1


@pytest.mark.parametrize("name", MODELS)
def test_output_size_field(name: str) -> None:
    field = EXPECTED[name][9]
    body = sent(ChatKimi(model=name, api_key=SECRET, max_tokens=4096))
    assert body[field] == 4096
    other = {"max_tokens", "max_completion_tokens"} - {field}
    assert other.isdisjoint(body)
    assert sent(ChatKimi(model=name, api_key=SECRET), max_tokens=99)[field] == 99


def test_two_different_output_limits_for_kimi_k3_are_refused() -> None:
    model = ChatKimi(model="kimi-k3", api_key=SECRET, max_tokens=100)
    with pytest.raises(ValueError, match="max_completion_tokens"):
        sent(model, max_completion_tokens=200)
    assert sent(model, max_completion_tokens=100)["max_completion_tokens"] == 100


@pytest.mark.parametrize("name", MODELS)
def test_reasoning_effort_levels(name: str) -> None:
    levels = EXPECTED[name][11]
    for level in levels:
        assert (
            sent(ChatKimi(model=name, api_key=SECRET, reasoning_effort=level))["reasoning_effort"]
            == level
        )
    with pytest.raises(ValueError, match=rf"{re.escape(name)}.*reasoning_effort.*'medium'"):
        ChatKimi(model=name, api_key=SECRET, reasoning_effort="medium")
    with pytest.raises(ValueError, match="reasoning_effort"):
        sent(ChatKimi(model=name, api_key=SECRET), reasoning_effort="minimal")


# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "known"),
    [
        ("kimi-k2.5", "kimi-k2.5"),
        ("moonshotai/kimi-k2.5", "kimi-k2.5"),  # OpenRouter
        ("moonshot/kimi-k2.5", "kimi-k2.5"),
        ("kimi/kimi-k3", "kimi-k3"),
        ("Kimi-K2.5", "kimi-k2.5"),
        ("MoonshotAI/KIMI-K2-THINKING", "kimi-k2-thinking"),
        ("kimi-k2.5-20260115", "kimi-k2.5"),  # dated
        ("kimi-k3-2026-07-16", "kimi-k3"),
        ("kimi-k2-thinking-turbo-0101", "kimi-k2-thinking-turbo"),  # longest family first
        ("kimi-k2.7-code-highspeed", "kimi-k2.7-code-highspeed"),
        ("kimi-k2.7-code-fast", "kimi-k2.7-code"),
    ],
)
def test_names_resolve_to_a_known_model_and_go_to_ace_in_the_catalogue_spelling(
    written: str, known: str
) -> None:
    rules = resolve_model(written)
    assert rules is not None and rules.name == known
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a known name never warns on Ace Data Cloud's host
        model = ChatKimi(model=written, api_key=SECRET)
        moonshot = ChatKimi(model=written, api_key=SECRET, base_url="https://api.moonshot.ai/v1")
    assert model.profile == ChatKimi(model=known, api_key=SECRET).profile
    # Ace Data Cloud and Moonshot match names exactly: case and vendor prefix go,
    # a dated suffix stays (it may be a real model name).
    spelled = written.lower().split("/")[-1]
    assert sent(model)["model"] == sent(moonshot)["model"] == spelled


@pytest.mark.parametrize("written", ["Kimi-K2.6", "moonshotai/kimi-k3"])
def test_another_host_gets_the_name_as_written_with_one_warning(
    written: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_profiles, "_warned_exact_match", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _line() + 1
        model = ChatKimi(model=written, api_key=SECRET, base_url="https://gateway.example/v1")
        body = sent(model)
        sent(model)
        ChatKimi(model=written, api_key=SECRET, base_url="https://gateway.example/v1")
    assert body["model"] == written
    [warning] = caught  # once per name and host
    assert (warning.filename, warning.lineno) == (__file__, line)
    spelled = written.lower().split("/")[-1]
    message = str(warning.message)
    assert f"{written!r} is sent as written to gateway.example" in message
    assert f"model={spelled!r}" in message and "404" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the catalogue's own spelling: nothing to say
        assert sent(ChatKimi(model=spelled, api_key=SECRET, base_url="https://gateway.example/v1"))["model"] == spelled


def test_a_prefixed_name_gets_the_models_checks() -> None:
    with pytest.raises(ValueError, match="moonshotai/kimi-k2-thinking always thinks"):
        ChatKimi(model="moonshotai/kimi-k2-thinking", api_key=SECRET, thinking=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = ChatKimi(model="Kimi-K2.5", api_key=SECRET, temperature=0.2)
    assert "temperature" not in sent(model) and len(caught) == 1


@pytest.mark.parametrize(
    ("typo", "closest"),
    [
        ("kimi-k2.55", "kimi-k2.5"),
        ("kimi-k2-thinkng", "kimi-k2-thinking"),
        ("kimi-k25", "kimi-k2.5"),
        ("moonshotai/kimi-k2.55", "kimi-k2.5"),
    ],
)
def test_a_near_miss_is_not_resolved_and_warns_once_naming_the_closest_model(
    typo: str, closest: str
) -> None:
    assert resolve_model(typo) is None
    assert closest_known_model(typo) == closest
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = ChatKimi(model=typo, api_key=SECRET, temperature=0.2)
        body = sent(model)
        ChatKimi(model=typo, api_key=SECRET)
    assert len(caught) == 1
    assert caught[0].filename == __file__
    message = str(caught[0].message)
    assert repr(typo) in message and repr(closest) in message and "not a model" in message
    # Free text: sent as written, with what the user set, and no profile.
    assert body["model"] == typo and body["temperature"] == 0.2
    assert model.profile is None


@pytest.mark.parametrize(
    "name",
    ["gpt-4o", "kimi-latest", "deepseek-chat", "some-future-model", "kimi-k2.9", "kimi-k4"],
)
def test_an_unknown_name_works_without_profile_or_warning(name: str) -> None:
    assert resolve_model(name) is None and closest_known_model(name) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = ChatKimi(
            model=name, api_key=SECRET, temperature=0.3, thinking=True, reasoning_effort="x"
        )
        body = sent(model.bind_tools([get_weather], tool_choice="required"), tool_choice="required")  # type: ignore[arg-type]
    assert model.profile is None
    assert body["model"] == name and body["temperature"] == 0.3
    assert body["thinking"] == {"type": "enabled"} and body["reasoning_effort"] == "x"


def test_catalogue_spelling() -> None:
    assert catalogue_spelling(" MoonshotAI/Kimi-K3 ") == "kimi-k3"
    assert catalogue_spelling("openrouter/kimi-k3") == "openrouter/kimi-k3"  # only known prefixes


# --- where warnings point -----------------------------------------------------------------


def test_the_fixed_parameter_warning_points_at_the_constructor_line() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _line() + 1
        ChatKimi(model="kimi-k2.6", api_key=SECRET, temperature=0.2)
    [warning] = caught
    assert warning.category is UserWarning
    assert (warning.filename, warning.lineno) == (__file__, line)
    assert "kimi-k2.6 fixes temperature at 1.0" in str(warning.message)


def test_a_refused_setting_fails_at_the_constructor() -> None:
    with pytest.raises(ValueError, match="kimi-k2-instruct-0905 does not think"):
        ChatKimi(model="kimi-k2-instruct-0905", api_key=SECRET, thinking=True)


def test_an_emulated_forced_choice_set_on_the_model_warns_at_the_constructor_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_tools, "_warned_forced", set())
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _line() + 1
        model = ChatKimi(model="kimi-k2.6", api_key=SECRET, model_kwargs={"tool_choice": "required", "tools": [tool]})
        body = sent(model)
    [warning] = caught
    assert (warning.filename, warning.lineno) == (__file__, line)
    assert "kimi-k2.6 refuses a forced tool_choice: ChatKimi emulates it" in str(warning.message)
    assert body["tool_choice"] == "auto" and body["messages"][0]["role"] == "system"


def _line() -> int:
    import inspect

    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno


def test_rules_are_the_profiles_data() -> None:
    # One source: the rules object carries the very profile ChatKimi.profile copies.
    for name in MODELS:
        rules = resolve_model(name)
        assert rules is not None and rules.profile is _PROFILES[name]


# --- the service a model speaks to --------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "resolved"),
    [
        ({"base_url": "https://api.moonshot.ai/v1"}, "moonshot"),
        ({"base_url": "https://API.Moonshot.cn/v1"}, "moonshot"),
        ({"base_url": "https://api.acedata.cloud/kimi"}, "acedata"),
        ({"base_url": "https://gateway.example/v1"}, "acedata"),
        ({"base_url": "https://gateway.example/v1", "api_flavor": "moonshot"}, "moonshot"),
        ({"base_url": "https://api.moonshot.ai/v1", "api_flavor": "acedata"}, "acedata"),
    ],
)
def test_the_resolved_flavor_says_which_service_and_the_field_stays_as_set(
    settings: dict[str, Any], resolved: str
) -> None:
    from langchain_core.load import dumps, loads

    model = ChatKimi(api_key=SECRET, **settings)
    assert model.resolved_api_flavor == resolved
    assert model.api_flavor == settings.get("api_flavor")
    restored = loads(
        dumps(model),
        secrets_map={"ACEDATACLOUD_API_TOKEN": SECRET},
        valid_namespaces=["langchain_kimi"],
        allowed_objects=[ChatKimi],
    )
    assert restored.resolved_api_flavor == resolved
    assert restored.api_flavor == model.api_flavor
