"""The simulator's script files: checked whole at load time, then served in a clear order.

In-process and socket-free: the script is a plain responder function, so these
tests call it with request bodies directly. The subprocess end-to-end run is in
tests/integration/test_simulator_cli.py.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from langchain_kimi.testing import Reply, Script, ScriptError, ToolCall, load_script
from langchain_kimi.testing._script import REPLY_FIELD_CHECKS, last_user_text, parse_script

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sim"


def ask(text: str, *, history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A request body whose last user message is ``text``."""
    return {"model": "kimi-k2.5", "messages": [*(history or []), {"role": "user", "content": text}]}


def script(entries: list[Any], **options: Any) -> Script:
    return Script(parse_script(entries), **options)


# --- the fixture file --------------------------------------------------------------------


def test_the_tool_call_fixture_loads() -> None:
    loaded = load_script(FIXTURES / "tool_call.yaml")
    first, second = (entry.reply for entry in loaded.entries)
    assert first.tool_calls == (ToolCall("get_weather", {"city": "Oslo"}),)
    assert first.reasoning and first.content is None
    assert second.content == "It is 18 C and sunny in Oslo."


# --- order, matching, exhaustion ------------------------------------------------------------


def test_entries_without_match_answer_in_order_once_each() -> None:
    answers = script([{"content": "one"}, {"content": "two"}])
    assert [answers(ask("x")).content, answers(ask("y")).content] == ["one", "two"]  # type: ignore[union-attr]
    assert answers.used == [0, 1]
    assert answers.remaining == 0


def test_exhausted_script_echoes_by_default() -> None:
    answers = script([{"content": "one"}])
    answers(ask("x"))
    assert answers(ask("again")) is None  # None: the server's default reply, the echo


def test_exhausted_error_answers_500() -> None:
    answers = script([{"content": "one"}], exhausted="error")
    answers(ask("x"))
    reply = answers(ask("again"))
    assert reply is not None and reply.status == 500
    assert isinstance(reply.body, dict)
    assert reply.body["error"]["code"] == "script_exhausted"


def test_exhausted_must_be_echo_or_error() -> None:
    with pytest.raises(ValueError, match="exhausted"):
        Script([], exhausted="ignore")  # type: ignore[arg-type]


def test_a_matching_entry_wins_over_order() -> None:
    answers = script(
        [
            {"content": "first in order"},
            {"match": "refund", "content": "about refunds"},
            {"content": "second in order"},
        ]
    )
    assert answers(ask("I want a refund, please")).content == "about refunds"  # type: ignore[union-attr]
    # Matched entries are skipped by requests they do not fit.
    assert answers(ask("hello")).content == "first in order"  # type: ignore[union-attr]
    # Used once: the next refund question takes the next entry in order.
    assert answers(ask("refund again")).content == "second in order"  # type: ignore[union-attr]
    assert answers.used == [1, 0, 2]


def test_an_unmatched_conditional_entry_is_never_served_in_order() -> None:
    answers = script([{"match": "refund", "content": "about refunds"}])
    assert answers(ask("hello")) is None
    assert answers.remaining == 1


def test_same_match_twice_scripts_a_tool_loop() -> None:
    """After the tool result, the last *user* message is still the question."""
    answers = script(
        [
            {"match": "weather", "tool_calls": [{"name": "get_weather", "arguments": {}}]},
            {"match": "weather", "content": "Sunny."},
        ]
    )
    question = ask("weather in Oslo?")
    assert answers(question).tool_calls  # type: ignore[union-attr]
    tool_turn = {
        "model": "kimi-k2.5",
        "messages": [
            *question["messages"],
            {"role": "assistant", "content": "", "tool_calls": []},
            {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "sunny"},
        ],
    }
    assert answers(tool_turn).content == "Sunny."  # type: ignore[union-attr]


def test_match_is_case_sensitive_and_regex_searches() -> None:
    answers = script(
        [{"match": "Oslo", "content": "sub"}, {"match_regex": r"(?i)\bparis\b", "content": "re"}]
    )
    assert answers(ask("oslo")) is None
    assert answers(ask("Is PARIS warm?")).content == "re"  # type: ignore[union-attr]
    assert answers(ask("Oslo!")).content == "sub"  # type: ignore[union-attr]


def test_the_first_fitting_entry_in_file_order_wins() -> None:
    answers = script([{"match": "a", "content": "1"}, {"match": "ab", "content": "2"}])
    assert answers(ask("ab")).content == "1"  # type: ignore[union-attr]
    assert answers(ask("ab")).content == "2"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "body, expected",
    [
        (ask("plain"), "plain"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "look"},
                            {"type": "image_url", "image_url": {"url": "data:,"}},
                            {"type": "text", "text": "here"},
                        ],
                    }
                ]
            },
            "look here",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "question"},
                    {"role": "assistant", "content": "answer"},
                    {"role": "tool", "tool_call_id": "x", "content": "result"},
                ]
            },
            "question",
        ),
        ({"messages": [{"role": "system", "content": "s"}]}, ""),
        ({}, ""),
        ({"messages": "nonsense"}, ""),
    ],
)
def test_last_user_text(body: dict[str, Any], expected: str) -> None:
    assert last_user_text(body) == expected


# --- what an entry can say ---------------------------------------------------------------------


def test_every_reply_field_can_be_scripted() -> None:
    assert set(REPLY_FIELD_CHECKS) == {field.name for field in dataclasses.fields(Reply)}


def test_fields_become_the_reply() -> None:
    (entry,) = parse_script(
        [
            {
                "content": "hi",
                "reasoning": "r",
                "tool_calls": [
                    {"name": "f", "arguments": {"x": 1}, "id": "call_1"},
                    {"name": "g", "arguments": '{"broken": '},
                ],
                "finish_reason": "length",
                "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
                "headers": {"Retry-After": 1, "X-Test": "yes"},
                "chunk_size": 2,
                "chunk_delay": 0,
                "fault": "disconnect",
                "fault_after": 3,
                "comments": True,
            }
        ]
    )
    reply = entry.reply
    assert reply.tool_calls == (
        ToolCall("f", {"x": 1}, id="call_1"),
        ToolCall("g", '{"broken": '),
    )
    assert reply.headers == {"Retry-After": "1", "X-Test": "yes"}
    assert (reply.content, reply.reasoning, reply.finish_reason) == ("hi", "r", "length")
    assert (reply.chunk_size, reply.fault, reply.fault_after, reply.comments) == (
        2,
        "disconnect",
        3,
        True,
    )


def test_error_shorthand_is_reply_error() -> None:
    (entry,) = parse_script(
        [
            {
                "error": {"status": 429, "code": "too_many_requests", "message": "slow down"},
                "headers": {"Retry-After": "2"},
                "delay": 0.5,
            }
        ]
    )
    reply = entry.reply
    assert reply.status == 429
    assert isinstance(reply.body, dict)
    assert reply.body["error"] == {"code": "too_many_requests", "message": "slow down"}
    assert reply.headers == {"Retry-After": "2"}
    assert reply.delay == 0.5
    (moonshot,) = parse_script(
        [
            {
                "error": {
                    "status": 400,
                    "code": "invalid_request_error",
                    "message": "m",
                    "style": "moonshot",
                }
            }
        ]
    )
    assert moonshot.reply.body == {"error": {"message": "m", "type": "invalid_request_error"}}


def test_top_level_mapping_with_replies() -> None:
    entries = parse_script({"replies": [{"content": "x"}]})
    assert entries[0].reply.content == "x"
    assert parse_script([]) == []


# --- validation: errors name the entry and the field ----------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        ({"reply": []}, "exactly one key, 'replies'"),
        ({"replies": [], "exhausted": "echo"}, "exactly one key, 'replies'"),
        ("content: hi", "expected a list of entries"),
        ([["content", "x"]], "replies[0]: expected a mapping of reply fields, got a list"),
        (
            [{"content": "x"}, {"contnet": "y"}],
            "replies[1]: unknown field 'contnet' (did you mean 'content'?)",
        ),
        ([{"zzz": 1}], "replies[0]: unknown field 'zzz'; known fields: body, chunk_delay"),
        ([{"content": 5}], "replies[0].content: expected a string, got a number (5)"),
        ([{"content": True}], "replies[0].content: expected a string, got a boolean (true)"),
        ([{"status": "500"}], "replies[0].status: expected an integer, got a string ('500')"),
        ([{"status": True}], "replies[0].status: expected an integer, got a boolean"),
        ([{"status": 42}], "replies[0]: status must be an HTTP status code"),
        ([{"chunk_size": 0}], "replies[0]: chunk_size must be at least 1"),
        ([{"delay": -1}], "replies[0].delay: must not be negative"),
        ([{"chunk_delay": "fast"}], "replies[0].chunk_delay: expected a number of seconds"),
        ([{"fault": "explode"}], "replies[0]: unknown fault 'explode'"),
        ([{"usage_style": "openai"}], "replies[0]: unknown usage_style 'openai'"),
        ([{"comments": "yes"}], "replies[0].comments: expected true or false"),
        ([{"usage": [1]}], "replies[0].usage: expected a mapping, got a list"),
        ([{"body": 3}], "replies[0].body: expected a string or a mapping"),
        ([{"headers": {"X": [1]}}], "replies[0].headers.X: expected a string or a number"),
        ([{"tool_calls": {"name": "f"}}], "replies[0].tool_calls: expected a list"),
        ([{"tool_calls": ["f"]}], "replies[0].tool_calls[0]: expected a mapping"),
        ([{"tool_calls": [{"arguments": {}}]}], "replies[0].tool_calls[0]: missing field 'name'"),
        (
            [{"tool_calls": [{"name": "f", "args": {}}]}],
            "replies[0].tool_calls[0]: unknown field 'args'",
        ),
        (
            [{"tool_calls": [{"name": "f", "arguments": 3}]}],
            "replies[0].tool_calls[0].arguments: expected a mapping or a string",
        ),
        (
            [{"tool_calls": [{"name": 1, "arguments": {}}]}],
            "replies[0].tool_calls[0].name: expected a string",
        ),
        ([{"error": {"status": 429}}], "replies[0].error: missing ['code', 'message']"),
        (
            [{"error": {"status": 429, "code": "c", "message": "m", "type": "x"}}],
            "replies[0].error: unknown field 'type'",
        ),
        (
            [{"error": {"status": 429, "code": "c", "message": "m", "style": "openai"}}],
            "replies[0].error.style: expected 'ace' or 'moonshot'",
        ),
        (
            [{"error": {"status": 429, "code": "c", "message": "m"}, "content": "x"}],
            "replies[0]: 'error' cannot be combined with ['content']",
        ),
        (
            [{"match": "a", "match_regex": "b", "content": "x"}],
            "replies[0]: use 'match' or 'match_regex', not both",
        ),
        ([{"match": "", "content": "x"}], "replies[0].match: must not be empty"),
        (
            [{"match_regex": "(", "content": "x"}],
            "replies[0].match_regex: not a valid regular expression",
        ),
    ],
)
def test_bad_scripts_are_refused_naming_entry_and_field(data: Any, message: str) -> None:
    with pytest.raises(ScriptError) as caught:
        parse_script(data, source="s.json")
    assert str(caught.value).startswith("s.json: ")
    assert message in str(caught.value)


# --- files ---------------------------------------------------------------------------------------------


def test_json_file(tmp_path: Path) -> None:
    path = tmp_path / "replies.json"
    path.write_text(json.dumps({"replies": [{"content": "from json"}]}), encoding="utf-8")
    loaded = load_script(path, exhausted="error")
    assert loaded.entries[0].reply.content == "from json"
    assert loaded.exhausted == "error"


def test_invalid_json_says_where(tmp_path: Path) -> None:
    path = tmp_path / "replies.json"
    path.write_text('[{"content": "x",}]', encoding="utf-8")
    with pytest.raises(ScriptError, match=r"replies.json: not valid JSON \(line 1, column 18"):
        load_script(path)


def test_a_bad_entry_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "replies.yml"
    path.write_text("- content: fine\n- content: [not, text]\n", encoding="utf-8")
    with pytest.raises(
        ScriptError, match=r"^replies.yml: replies\[1\]\.content: expected a string"
    ):
        load_script(path)


def test_invalid_yaml_says_so(tmp_path: Path) -> None:
    path = tmp_path / "replies.yaml"
    path.write_text("- content: [unclosed\n", encoding="utf-8")
    with pytest.raises(ScriptError, match="not valid YAML"):
        load_script(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match=r"cannot read the script .*No such file"):
        load_script(tmp_path / "nope.json")


def test_yaml_without_pyyaml_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "replies.yaml"
    path.write_text("- content: hi\n", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` raise ImportError
    with pytest.raises(ScriptError, match=r"needs PyYAML.*pip install pyyaml"):
        load_script(path)
    # JSON never needs it.
    json_path = tmp_path / "replies.json"
    json_path.write_text('[{"content": "hi"}]', encoding="utf-8")
    assert load_script(json_path).entries[0].reply.content == "hi"
