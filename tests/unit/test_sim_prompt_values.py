"""The values the model-like simulator reads from a prompt (langchain_kimi.testing._prompt_values)."""

from __future__ import annotations

from typing import Any

import pytest

from langchain_kimi.testing._prompt_values import convert, read_prompt
from langchain_kimi.testing._schema_instance import NOTHING


def test_a_function_call_written_in_the_prompt() -> None:
    values = read_prompt('What is magic_function(3)? And f("a, b", 2, x=3)?')
    assert values.calls == {"magic_function": ("3",), "f": ('"a, b"', "2")}
    assert values.named["x"] == "3"  # a keyword argument is a named value


def test_named_values() -> None:
    values = read_prompt("Use units=metric, a=1 and b: 2. Label: \"big one\"; x = 'y z'")
    assert values.named == {"units": "metric", "a": "1", "b": "2", "label": "big one", "x": "y z"}


def test_quoted_text_in_every_script_in_order() -> None:
    values = read_prompt(
        "Create 'こんにちは株式会社', then \"Acme\", “Fancy”, «Guillemets», 「括弧」 and ‘single’."
    )
    assert values.quoted == ("こんにちは株式会社", "Acme", "Fancy", "Guillemets", "括弧", "single")


def test_apostrophes_open_no_quote() -> None:
    assert read_prompt("What's the weather? It's 'Oslo' I'd say").quoted == ("Oslo",)


def test_numbers_stand_alone() -> None:
    assert read_prompt("What is 1 + 2.5, or -3? Not k2 nor v1.2.3.").numbers == (1, 2.5, -3)


def test_capitalised_names_that_do_not_just_open_a_sentence() -> None:
    values = read_prompt(
        "What is the weather in San Francisco, CA? Using the tool, greet a Pirate. I think so."
    )
    assert values.phrases == ("San Francisco, CA", "Pirate")
    # A quoted name is not offered twice.
    assert read_prompt("Weather in 'Paris' please").phrases == ()


@pytest.mark.parametrize(
    ("raw", "schema", "expected"),
    [
        ("3", {"type": "integer"}, 3),
        ("3.5", {"type": "integer"}, NOTHING),
        ("3.5", {"type": "number"}, 3.5),
        ("'Oslo'", {"type": "string"}, "Oslo"),
        ('"caf\\u00e9"', {"type": "string"}, "café"),
        ("yes", {"type": "boolean"}, True),
        ("FALSE", {"type": "boolean"}, False),
        ("null", {"type": ["integer", "null"]}, None),
        ("celsius", {"enum": ["Celsius", "Fahrenheit"]}, "Celsius"),
        ("kelvin", {"enum": ["Celsius", "Fahrenheit"]}, NOTHING),
        ("[1, 2]", {}, [1, 2]),
        ("word", {}, "word"),
        ("abc", {"type": "integer"}, NOTHING),
    ],
)
def test_convert_to_what_the_leaf_wants(raw: str, schema: dict[str, Any], expected: Any) -> None:
    result = convert(raw, schema)
    if expected is NOTHING:
        assert result is NOTHING
    else:
        assert (result, type(result)) == (expected, type(expected))
