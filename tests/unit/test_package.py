"""The package's public names: ChatKimi is loaded lazily, everything else works as before.

``import langchain_kimi`` must stay cheap (the command line's ``--help``, the
simulator and the pytest plugin import it without needing langchain-core), yet
``from langchain_kimi import ChatKimi``, ``dir()``, ``__all__``, pickling and
langchain's serialization must behave as if ChatKimi were imported eagerly.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap

import pytest
from langchain_core.load import dumps, loads

import langchain_kimi
from langchain_kimi import ChatKimi, KimiError, KimiRateLimitError, errors
from langchain_kimi.chat_models import ChatKimi as ChatKimiFromModule


def test_chat_kimi_is_the_model_class() -> None:
    assert ChatKimi is ChatKimiFromModule
    assert langchain_kimi.ChatKimi is ChatKimiFromModule
    assert KimiRateLimitError is errors.KimiRateLimitError
    assert issubclass(KimiRateLimitError, KimiError)


def test_public_names_are_listed_and_resolvable() -> None:
    listed = dir(langchain_kimi)
    for name in langchain_kimi.__all__:
        assert name in listed
        assert getattr(langchain_kimi, name) is not None
    assert "ChatKimi" in langchain_kimi.__all__


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        langchain_kimi.ChatOpenAI  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as err:
        assert "ChatOpenAI" in str(err)
    else:
        raise AssertionError("no AttributeError")


def test_star_import_brings_chat_kimi() -> None:
    namespace: dict[str, object] = {}
    exec("from langchain_kimi import *", namespace)
    assert namespace["ChatKimi"] is ChatKimiFromModule
    assert "KimiTimeoutError" in namespace


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
def test_pickle_and_langchain_serialization_round_trip() -> None:
    model = ChatKimi(model="kimi-k2.5", api_key="sk-unit", temperature=None, max_tokens=77)
    restored = pickle.loads(pickle.dumps(model))
    assert isinstance(restored, ChatKimi)
    assert restored.max_tokens == 77
    # langchain's loads resolves the class from its namespace, by import.
    revived = loads(
        dumps(model),
        secrets_map={"ACEDATACLOUD_API_TOKEN": "sk-unit"},
        valid_namespaces=["langchain_kimi"],
        allowed_objects=[ChatKimi],
    )
    assert isinstance(revived, ChatKimi)
    assert revived.max_tokens == 77
    model.close()
    restored.close()
    revived.close()


def test_importing_the_package_does_not_import_the_model() -> None:
    # A fresh interpreter: this one has imported everything already.
    code = textwrap.dedent(
        """
        import json, sys
        import langchain_kimi
        from langchain_kimi import KimiError
        before = ["langchain_core" in sys.modules, "langchain_kimi.chat_models" in sys.modules]
        from langchain_kimi import ChatKimi
        after = ["langchain_core" in sys.modules, "langchain_kimi.chat_models" in sys.modules]
        print(json.dumps([before, after, ChatKimi.__module__]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    before, after, module = json.loads(result.stdout)
    assert before == [False, False]
    assert after == [True, True]
    assert module == "langchain_kimi.chat_models"
