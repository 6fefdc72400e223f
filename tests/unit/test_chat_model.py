"""ChatKimi's configuration surface: what is sent, what is refused, what stays secret."""

from __future__ import annotations

import json
import pickle
import warnings
from typing import Any

import pytest
from langchain_core.load import dumps
from langchain_core.messages import HumanMessage

from langchain_kimi import ChatKimi

SECRET = "sk-very-secret-token"


def body(
    model: ChatKimi, *, stream: bool = False, stop: list[str] | None = None, **kwargs: Any
) -> dict[str, Any]:
    raw = model._encode([HumanMessage("hi")], stop, stream, kwargs)
    return json.loads(raw)  # type: ignore[no-any-return]


def test_unset_parameters_are_never_sent() -> None:
    assert body(ChatKimi(api_key=SECRET)) == {
        "model": "kimi-k2.5",
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_seed_example_drops_the_fixed_temperature_with_one_warning() -> None:
    # The warning comes when the model is built (pointing at that line), not per call.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = ChatKimi(model="kimi-k2.5", max_tokens=1024, temperature=0.7, api_key=SECRET)
        sent = model._encode([HumanMessage("你好，请介绍一下你自己")], None, False, {})
        model._encode([HumanMessage("again")], None, False, {})
    assert json.loads(sent) == {
        "model": "kimi-k2.5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "你好，请介绍一下你自己"}],
    }
    assert "你好" in sent.decode()  # sent as UTF-8, not \\u escapes
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert "kimi-k2.5" in messages[0] and "1.0" in messages[0] and "0.7" in messages[0]


def test_fixed_values_follow_the_thinking_mode() -> None:
    model = ChatKimi(api_key=SECRET, thinking=False, temperature=0.6, top_p=0.95, n=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # equal to what the model uses: no warning
        assert body(model) == {
            "model": "kimi-k2.5",
            "thinking": {"type": "disabled"},
            "messages": [{"role": "user", "content": "hi"}],
        }


def test_other_models_send_what_the_user_set() -> None:
    model = ChatKimi(
        model="kimi-k2-instruct-0905",
        api_key=SECRET,
        temperature=0.3,
        top_p=0.9,
        n=2,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        seed=7,
        stop=["END"],
        max_tokens=50,
        model_kwargs={"user": "u-1"},
    )
    sent = body(model)
    assert sent["temperature"] == 0.3 and sent["top_p"] == 0.9 and sent["n"] == 2
    assert sent["presence_penalty"] == 0.1 and sent["frequency_penalty"] == 0.2
    assert sent["seed"] == 7 and sent["stop"] == ["END"] and sent["max_tokens"] == 50
    assert sent["user"] == "u-1"


def test_call_kwargs_override_fields_and_streams_ask_for_usage() -> None:
    model = ChatKimi(model="kimi-k2.6", api_key=SECRET, max_tokens=10, seed=1)
    sent = body(model, stream=True, stop=["x"], max_tokens=20, seed=2)
    assert sent["max_tokens"] == 20 and sent["stop"] == ["x"] and sent["seed"] == 2
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert "stream_options" not in body(ChatKimi(api_key=SECRET, stream_usage=False), stream=True)


def test_unknown_constructor_arguments_become_model_kwargs() -> None:
    with pytest.warns(UserWarning, match="response_format"):
        model = ChatKimi(api_key=SECRET, response_format={"type": "json_object"})
    assert body(model)["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_tokens": 0}, "positive"),
        ({"timeout": -1}, "positive"),
        ({"connect_timeout": 0}, "positive"),
        ({"max_retries": -1}, "max_retries"),
        ({"base_url": "ftp://example.com"}, "base_url"),
        ({"n": 0}, "positive"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ChatKimi(api_key=SECRET, **kwargs)


def test_bad_call_options_are_refused_before_sending() -> None:
    model = ChatKimi(model="kimi-k2-instruct-0905", api_key=SECRET)
    with pytest.raises(ValueError, match="max_tokens"):
        body(model, max_tokens=-5)
    with pytest.raises(ValueError, match="n > 1"):
        body(ChatKimi(model="kimi-k2-instruct-0905", api_key=SECRET, n=2), stream=True)


def test_missing_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACEDATACLOUD_API_TOKEN", raising=False)
    with pytest.raises(ValueError, match="ACEDATACLOUD_API_TOKEN"):
        ChatKimi().invoke("hi")


def test_env_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", SECRET)
    monkeypatch.setenv("KIMI_BASE_URL", "https://api.moonshot.ai/v1/")
    model = ChatKimi()
    assert model.api_key is not None and model.api_key.get_secret_value() == SECRET
    assert model.base_url == "https://api.moonshot.ai/v1"
    assert model._endpoint().url == "https://api.moonshot.ai/v1/chat/completions"


def test_model_name_alias_and_profile() -> None:
    model = ChatKimi(model_name="kimi-k2-thinking", api_key=SECRET)
    assert model.model == "kimi-k2-thinking"
    assert model.profile is not None
    assert model.profile["reasoning_output"] is True and model.profile["image_inputs"] is False
    assert ChatKimi(model="kimi-k2.5", api_key=SECRET).profile["image_inputs"] is True  # type: ignore[index]
    assert ChatKimi(model="some-future-model", api_key=SECRET).profile is None


def test_ls_params() -> None:
    model = ChatKimi(api_key=SECRET, max_tokens=5, temperature=1.0)
    params = model._get_ls_params(stop=["s"])
    assert params == {
        "ls_provider": "kimi",
        "ls_model_name": "kimi-k2.5",
        "ls_model_type": "chat",
        "ls_temperature": 1.0,
        "ls_max_tokens": 5,
        "ls_stop": ["s"],
    }
    assert model._get_ls_params(model="kimi-k3")["ls_model_name"] == "kimi-k3"


def test_token_never_appears_in_representations() -> None:
    model = ChatKimi(api_key=SECRET, default_headers={"X-Trace": "1"})
    endpoint = model._endpoint()
    for text in (
        repr(model),
        str(model),
        repr(model.model_dump()),
        dumps(model),
        repr(model._get_ls_params()),
        repr(model._identifying_params),
        repr(endpoint),
    ):
        assert SECRET not in text


def test_copies_get_their_own_connections_and_pickle_works() -> None:
    model = ChatKimi(api_key=SECRET)
    transport = model._sync()
    copied = model.model_copy(update={"base_url": "https://api.moonshot.ai/v1"})
    assert copied._sync_transport is None
    assert copied._sync().endpoint.url == "https://api.moonshot.ai/v1/chat/completions"
    assert model._sync() is transport
    deep = model.model_copy(deep=True)
    assert deep._sync_transport is None and model._sync_transport is transport
    restored = pickle.loads(pickle.dumps(model))
    assert restored._sync_transport is None
    assert restored.api_key is not None and restored.api_key.get_secret_value() == SECRET
    model.close()
    assert model._sync_transport is None


def test_drop_fixed_params_is_a_profile_rule() -> None:
    from langchain_kimi._profiles import drop_fixed_params

    params: dict[str, Any] = {"model": "kimi-k2.5", "temperature": 0.2, "top_p": 0.95, "seed": 1}
    dropped = drop_fixed_params(params, "kimi-k2.5", None)
    assert dropped == [("temperature", 0.2, 1.0), ("top_p", 0.95, 0.95)]
    assert params == {"model": "kimi-k2.5", "seed": 1}
    instant: dict[str, Any] = {"temperature": 0.2}
    assert drop_fixed_params(instant, "kimi-k2.5", False) == [("temperature", 0.2, 0.6)]
    other: dict[str, Any] = {"temperature": 0.2}
    assert drop_fixed_params(other, "kimi-k2-instruct-0905", None) == [] and other == {
        "temperature": 0.2
    }


def test_every_field_of_chat_kimi_has_a_docstring() -> None:
    # The API reference is built from these (mkdocstrings reads the string
    # that follows each field), so a field without one is undocumented.
    import ast
    import inspect

    from langchain_kimi import chat_models

    tree = ast.parse(inspect.getsource(chat_models))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ChatKimi"]
    body = cls.body
    fields = [
        (node.target.id, body[i + 1] if i + 1 < len(body) else None)
        for i, node in enumerate(body)
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and not node.target.id.startswith("_")
        and node.target.id != "model_config"
    ]
    undocumented = [
        name
        for name, following in fields
        if not (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        )
    ]
    assert len(fields) >= 25
    assert undocumented == []
    # Every field ChatKimi adds to BaseChatModel's is one of them.
    inherited = set(chat_models.BaseChatModel.model_fields)
    added = set(chat_models.ChatKimi.model_fields) - inherited
    assert added <= {name for name, _ in fields}
