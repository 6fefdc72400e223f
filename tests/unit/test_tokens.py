"""Token counting: the local estimate, its calibration on real usage, and ChatKimi's methods.

The calibration tests hold the estimate to the bound ``docs/tokens.md`` states, on
every recorded exchange in ``tests/fixtures/recorded`` (real requests with the
``prompt_tokens`` the service reported). No test here opens a socket: the unit
suite's pytest-socket guard would fail it.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    trim_messages,
)
from langchain_core.tools import tool

from langchain_kimi import ChatKimi
from langchain_kimi._tokens import (
    ASSUMED_IMAGE_SIZE,
    ASSUMED_VIDEO_TOKENS,
    MEDIA_FRAME,
    estimate_request_tokens,
    estimate_text_tokens,
    image_tokens,
    image_tokens_for_size,
    typescript_declaration,
)
from tests.fixtures.load import RECORDED, interactions
from tests.unit.test_image_size import jpeg, png

# The bounds docs/tokens.md states: the relative error on each recorded prompt,
# and on the held-out recorded answers (text priced alone, see below).
PROMPT_BOUND = 0.05
ANSWER_BOUND = 0.16

RECORDED_EXCHANGES = [
    pytest.param(item, id=f"{path.stem}[{index}]")
    for path in RECORDED
    for index, item in enumerate(interactions(path.name))
]


def reported(response: str, field: str) -> int:
    match = re.search(rf'"{field}"\s*:\s*(\d+)', response)
    assert match, f"no {field} in the recorded response"
    return int(match.group(1))


# --- calibration on real usage -------------------------------------------------------


def test_the_recordings_are_the_documented_data_points() -> None:
    """docs/tokens.md counts 10 exchanges, 8 distinct prompts: keep it true."""
    prompts = [p.values[0]["request"] for p in RECORDED_EXCHANGES]
    # Two exchanges are the streamed twins of two others: same prompt, same count.
    distinct = {
        json.dumps([r["model"], r["messages"], r.get("tools")], sort_keys=True) for r in prompts
    }
    assert (len(prompts), len(distinct)) == (10, 8)


@pytest.mark.parametrize("exchange", RECORDED_EXCHANGES)
def test_prompt_estimate_is_within_the_documented_bound(exchange: dict[str, Any]) -> None:
    actual = reported(exchange["response"], "prompt_tokens")
    estimate = estimate_request_tokens(exchange["request"])
    assert abs(estimate - actual) / actual <= PROMPT_BOUND, (estimate, actual)


def recorded_answer(response: str) -> tuple[str, str, list[tuple[str, str]]]:
    """Content, reasoning and (id, arguments) of each tool call of a recorded answer."""
    if response.lstrip().startswith("{"):
        message = json.loads(response)["choices"][0]["message"]
        calls = [
            (call["id"], call["function"]["arguments"]) for call in message.get("tool_calls") or []
        ]
        return message.get("content") or "", message.get("reasoning_content") or "", calls
    content, reasoning, calls = [], [], {}
    for line in response.splitlines():
        if not line.startswith("data:") or line.strip() == "data: [DONE]":
            continue
        for choice in json.loads(line[5:]).get("choices") or []:
            delta = choice.get("delta") or {}
            content.append(delta.get("content") or "")
            reasoning.append(delta.get("reasoning_content") or "")
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call.get("index", 0), ["", ""])
                slot[0] = call.get("id") or slot[0]
                slot[1] += (call.get("function") or {}).get("arguments") or ""
    return "".join(content), "".join(reasoning), [(i, a) for i, a in calls.values()]


@pytest.mark.parametrize("exchange", RECORDED_EXCHANGES)
def test_answer_text_is_priced_within_the_documented_bound(exchange: dict[str, Any]) -> None:
    """A check the constants were not fitted on: the answers' text, against completion_tokens.

    The answer is laid out as the prompt's assistant turns are: reasoning closed
    by ``</think>`` (the opening tag is the prompt's), tool calls in their section,
    ``<|im_end|>`` last.
    """
    content, reasoning, calls = recorded_answer(exchange["response"])
    estimate = estimate_text_tokens(content) + 1
    if "k2.5" in exchange["request"]["model"]:
        estimate += estimate_text_tokens(reasoning) + 1
    if calls:
        estimate += 2 + sum(3 + estimate_text_tokens(i) + estimate_text_tokens(a) for i, a in calls)
    actual = reported(exchange["response"], "completion_tokens")
    assert abs(estimate - actual) / actual <= ANSWER_BOUND, (estimate, actual)


# --- text ---------------------------------------------------------------------------


def test_text_examples() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("You are a helpful assistant") == 5
    assert estimate_text_tokens("Hello, world") == 3
    # A long rare word costs more than a short common one.
    assert estimate_text_tokens("antidisestablishmentarianism") > estimate_text_tokens("the")
    # Numbers go three digits to a token.
    assert estimate_text_tokens("123456789") == 3


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text())
def test_estimate_never_shrinks_when_text_is_appended(head: str, tail: str) -> None:
    assert estimate_text_tokens(head + tail) >= estimate_text_tokens(head)


@pytest.mark.parametrize("unit", ["hello world. ", "数据", "こんにちは", '{"a": 1}\n', " "])
def test_estimate_grows_with_length(unit: str) -> None:
    counts = [estimate_text_tokens(unit * n) for n in (1, 10, 100, 1000)]
    assert counts == sorted(counts) and counts[-1] > counts[0]


def test_chinese_costs_more_per_character_than_english() -> None:
    chinese = "你好我叫李雷今天天气很好我们去公园散步吧" * 10  # 200 Han characters
    english = "The weather is fine today, shall we take a walk in the park? " * 10
    # The documented rate: 0.65 tokens a Han character.
    assert estimate_text_tokens(chinese) == 130
    assert estimate_text_tokens(chinese) / len(chinese) > 2 * (
        estimate_text_tokens(english) / len(english)
    )


def test_kana_hangul_accents_and_emoji() -> None:
    assert estimate_text_tokens("こんにちは") == 5
    assert estimate_text_tokens("안녕하세요") == 5
    assert estimate_text_tokens("Olá") == 2  # the recorded answer "Olá!" is 3 tokens with its "!"
    assert estimate_text_tokens("🙂🙂") == 2


@pytest.mark.parametrize("bad", [None, 12, b"bytes", ["a list"]])
def test_text_must_be_a_string(bad: Any) -> None:
    with pytest.raises(TypeError, match="text must be a string"):
        estimate_text_tokens(bad)


# --- requests -------------------------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Get weather information for a location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "the city"}},
            "required": ["location"],
        },
    },
}


def body(model: str = "kimi-k2.5", **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant"},
            {"role": "user", "content": "What's the weather in Florence?"},
        ],
        **extra,
    }


@pytest.mark.parametrize("model", ["kimi-k2.5", "kimi-k2-instruct-0905", "kimi-k3", "my-own-model"])
def test_tools_are_counted(model: str) -> None:
    without = estimate_request_tokens(body(model))
    one = estimate_request_tokens(body(model, tools=[WEATHER_TOOL]))
    second = {**WEATHER_TOOL, "function": {**WEATHER_TOOL["function"], "name": "forecast"}}
    two = estimate_request_tokens(body(model, tools=[WEATHER_TOOL, second]))
    assert without < one < two


def test_k2_declares_tools_as_json_and_k25_as_typescript() -> None:
    # The recordings: the same tool costs 68 tokens on kimi-k2 and 50 on kimi-k2.5.
    k2 = estimate_request_tokens(body("kimi-k2-instruct-0905", tools=[WEATHER_TOOL]))
    k2_bare = estimate_request_tokens(body("kimi-k2-instruct-0905"))
    k25 = estimate_request_tokens(body("kimi-k2.5", tools=[WEATHER_TOOL]))
    k25_bare = estimate_request_tokens(body("kimi-k2.5"))
    assert k2 - k2_bare > k25 - k25_bare


def test_typescript_declaration_reads_the_schema() -> None:
    text = typescript_declaration(
        [
            {
                "type": "function",
                "function": {
                    "name": "book",
                    "description": "Book a table",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "size": {"type": "integer", "minimum": 1, "default": 2},
                            "when": {"enum": ["lunch", "dinner"]},
                            "guests": {"type": "array", "items": {"$ref": "#/$defs/Guest"}},
                        },
                        "required": ["when"],
                        "$defs": {
                            "Guest": {"type": "object", "properties": {"name": {"type": "string"}}}
                        },
                    },
                },
            },
            {"type": "builtin_function", "function": {"name": "$web_search"}},
        ]
    )
    assert "// Book a table\ntype book = (_: {" in text
    assert 'when: "lunch" | "dinner"' in text
    assert "size?: number" in text and "// minimum: 1" in text and "// Default: 2" in text
    assert "guests?: Array<Guest>" in text and "interface Guest {" in text
    assert "$web_search" in text


def test_reasoning_of_the_current_turn_is_counted() -> None:
    call = {"id": "functions.weather:0", "type": "function"}
    call["function"] = {"name": "weather", "arguments": '{"location": "Florence"}'}
    assistant = {"role": "assistant", "content": " ", "tool_calls": [call]}
    result = {"role": "tool", "tool_call_id": "functions.weather:0", "content": "40 C"}
    base = body("kimi-k2.5")
    placeholder = estimate_request_tokens(
        {**base, "messages": [*base["messages"], {**assistant, "reasoning_content": " "}, result]}
    )
    reasoning = "I need the weather in Florence, so I call the weather tool. " * 5
    replayed = estimate_request_tokens(
        {
            **base,
            "messages": [*base["messages"], {**assistant, "reasoning_content": reasoning}, result],
        }
    )
    assert replayed - placeholder == estimate_text_tokens(reasoning) - estimate_text_tokens(" ")


def test_reasoning_of_earlier_turns_is_counted_only_where_the_model_keeps_it() -> None:
    reasoning = "Let me think about this greeting for a while. " * 10
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!", "reasoning_content": reasoning},
        {"role": "user", "content": "How are you?"},
    ]
    dropped = estimate_request_tokens({"model": "kimi-k2.6", "messages": messages})
    kept = estimate_request_tokens(
        {"model": "kimi-k2.6", "messages": messages, "thinking": {"type": "enabled", "keep": "all"}}
    )
    preserved = estimate_request_tokens({"model": "kimi-k3", "messages": messages})
    assert kept - dropped == estimate_text_tokens(reasoning)
    without = {key: value for key, value in messages[1].items() if key != "reasoning_content"}
    preserved_without = estimate_request_tokens(
        {"model": "kimi-k3", "messages": [messages[0], without, messages[2]]}
    )
    assert preserved - preserved_without == estimate_text_tokens(reasoning)


def test_tool_calls_and_results_are_counted() -> None:
    base = body("kimi-k2-instruct-0905")
    call = {"id": "functions.weather:0", "type": "function"}
    call["function"] = {"name": "weather", "arguments": '{"location":"Florence"}'}
    turn = [
        {"role": "assistant", "content": "Checking.", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "functions.weather:0", "content": "40 C"},
    ]
    with_calls = estimate_request_tokens({**base, "messages": [*base["messages"], *turn]})
    two_calls = [{**turn[0], "tool_calls": [call, {**call, "id": "functions.weather:1"}]}, turn[1]]
    with_two = estimate_request_tokens({**base, "messages": [*base["messages"], *two_calls]})
    assert estimate_request_tokens(base) < with_calls < with_two


def test_a_missing_system_message_is_replaced_by_the_template_default() -> None:
    user_only = {"model": "kimi-k2.5", "messages": [{"role": "user", "content": "Hi"}]}
    with_system = {
        "model": "kimi-k2.5",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    }
    # "You are Kimi, an AI assistant created by Moonshot AI." is longer than "Be brief."
    assert estimate_request_tokens(user_only) > estimate_request_tokens(with_system)
    # kimi-k2.7-code's template adds none.
    assert estimate_request_tokens(
        {**user_only, "model": "kimi-k2.7-code"}
    ) < estimate_request_tokens(user_only)


def data_url(image: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(image).decode()}"


def image_body(url: str, kind: str = "image_url") -> dict[str, Any]:
    content = [{"type": "text", "text": "What is this?"}, {"type": kind, kind: {"url": url}}]
    return {"model": "kimi-k2.6", "messages": [{"role": "user", "content": content}]}


def test_images_are_counted_by_size() -> None:
    text_only = estimate_request_tokens(
        {"model": "kimi-k2.6", "messages": [{"role": "user", "content": "What is this?"}]}
    )
    small = estimate_request_tokens(image_body(data_url(png(56, 28))))
    large = estimate_request_tokens(image_body(data_url(png(1024, 1024))))
    assert small - text_only == MEDIA_FRAME + 2  # two 28x28 tiles
    assert large - text_only == MEDIA_FRAME + 1369
    photo = estimate_request_tokens(
        image_body(data_url(jpeg(1920, 1080, exif_bytes=60_000), "image/jpeg"))
    )
    assert photo - text_only == MEDIA_FRAME + image_tokens_for_size(1920, 1080)


def test_image_tokens_follow_the_encoder_limits() -> None:
    assert image_tokens_for_size(28, 28) == 1
    assert image_tokens_for_size(29, 28) == 2
    assert image_tokens_for_size(1024, 1024) == 37 * 37
    # Downscaled to at most 16,384 patches (4,096 tokens, a tile more or less
    # where the scaled side is padded up to whole tiles), whatever the size.
    assert image_tokens_for_size(8000, 8000) == 65 * 65
    assert image_tokens_for_size(20000, 20000) == 64 * 64
    assert all(4000 < image_tokens_for_size(side, side) <= 4225 for side in range(1800, 30000, 997))
    # Long and thin: at most 512 patches (7,168 pixels) a side.
    assert image_tokens_for_size(50_000, 28) == 256
    with pytest.raises(ValueError, match="positive"):
        image_tokens_for_size(0, 10)


def test_images_without_a_readable_size_get_the_assumed_one() -> None:
    assumed = image_tokens_for_size(*ASSUMED_IMAGE_SIZE)
    assert image_tokens("https://example.com/cat.png") == assumed
    assert image_tokens("ms://clg681objj8g9m7n4je0") == assumed
    assert image_tokens(data_url(b"not an image")) == assumed
    assert image_tokens("data:image/png;base64,!!!") == assumed


def test_a_video_is_counted_at_the_assumed_figure() -> None:
    text_only = estimate_request_tokens(
        {"model": "kimi-k2.6", "messages": [{"role": "user", "content": "What is this?"}]}
    )
    video = estimate_request_tokens(image_body("https://example.com/clip.mp4", "video_url"))
    assert video - text_only == MEDIA_FRAME + ASSUMED_VIDEO_TOKENS


def test_empty_and_malformed_bodies() -> None:
    assert estimate_request_tokens({"model": "kimi-k2.5", "messages": []}) == 0
    with pytest.raises(TypeError, match="body must be a mapping"):
        estimate_request_tokens([])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"body\['messages'\] must be a list"):
        estimate_request_tokens({"model": "kimi-k2.5"})
    with pytest.raises(ValueError, match=r"body\['messages'\]\[1\] is not a message"):
        estimate_request_tokens({"model": "kimi-k2.5", "messages": [{"role": "user"}, "hi"]})
    with pytest.raises(ValueError, match=r"body\['tools'\] must be a list"):
        estimate_request_tokens({**body(), "tools": "weather"})
    with pytest.raises(ValueError, match=r"body\['tools'\]\[0\] is not a tool"):
        estimate_request_tokens({**body(), "tools": ["weather"]})


# --- ChatKimi's methods ------------------------------------------------------------------


@pytest.fixture
def model() -> ChatKimi:
    return ChatKimi(model="kimi-k2.5", api_key="sk-unit")


def test_get_num_tokens(model: ChatKimi) -> None:
    assert model.get_num_tokens("You are a helpful assistant") == 5
    with pytest.raises(TypeError, match="text must be a string"):
        model.get_num_tokens(5)  # type: ignore[arg-type]


def test_get_num_tokens_from_messages_matches_the_recorded_prompt(model: ChatKimi) -> None:
    # avian-kimi__simple_streaming.yaml: these two messages were billed 21 prompt tokens.
    messages = [SystemMessage("You are a helpful assistant"), HumanMessage("Say hi in Portuguese")]
    assert model.get_num_tokens_from_messages(messages) == 21


def test_get_num_tokens_from_messages_counts_the_body_a_call_sends(model: ChatKimi) -> None:
    messages: list[BaseMessage] = [
        SystemMessage("You are a helpful assistant"),
        HumanMessage("What's the weather in Florence, Italy?"),
        AIMessage(
            content="",
            additional_kwargs={"reasoning_content": "I should call the weather tool for Florence."},
            tool_calls=[
                {"name": "weather", "args": {"location": "Florence"}, "id": "functions.weather:0"}
            ],
        ),
        ToolMessage("40 C", tool_call_id="functions.weather:0"),
    ]
    sent = json.loads(model._encode(messages, None, False, {}))
    assert model.get_num_tokens_from_messages(messages) == estimate_request_tokens(sent)
    # The replayed reasoning is part of it.
    without = [*messages[:2], messages[2].model_copy(update={"additional_kwargs": {}}), messages[3]]
    assert model.get_num_tokens_from_messages(messages) > model.get_num_tokens_from_messages(
        without
    )


def test_get_num_tokens_from_messages_counts_tools_in_any_langchain_form(model: ChatKimi) -> None:
    @tool
    def weather(location: str) -> str:
        """Get weather information for a location."""
        return "sunny"

    messages = [HumanMessage("Weather in Florence?")]
    bare = model.get_num_tokens_from_messages(messages)
    assert model.get_num_tokens_from_messages(messages, tools=[weather]) > bare
    assert model.get_num_tokens_from_messages(messages, tools=[WEATHER_TOOL]) > bare


def test_get_num_tokens_from_messages_edge_and_bad_input(model: ChatKimi) -> None:
    assert model.get_num_tokens_from_messages([]) == 0
    with pytest.raises(TypeError, match="messages must be a list of messages, got str"):
        model.get_num_tokens_from_messages("hi")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got HumanMessage"):
        model.get_num_tokens_from_messages(HumanMessage("hi"))  # type: ignore[arg-type]
    # What a request would refuse, counting refuses too, with the same message.
    with pytest.raises(ValueError, match=r"messages\[0\]: user message content is empty"):
        model.get_num_tokens_from_messages([HumanMessage("")])
    with pytest.raises(ValueError, match="takes text only and refuses images"):
        ChatKimi(model="kimi-k2-instruct-0905", api_key="sk-unit").get_num_tokens_from_messages(
            [HumanMessage([{"type": "image_url", "image_url": {"url": data_url(png(2, 2))}}])]
        )


def test_counting_needs_no_api_key() -> None:
    assert (
        ChatKimi(model="kimi-k2.5", api_key=None).get_num_tokens_from_messages([HumanMessage("hi")])
        > 0
    )


def test_a_tokenizer_given_by_the_user_wins() -> None:
    model = ChatKimi(
        model="kimi-k2.5", api_key="sk-unit", custom_get_token_ids=lambda text: [0] * len(text)
    )
    assert model.get_num_tokens("abcdef") == 6
    assert model.get_num_tokens_from_messages([HumanMessage("abc")]) == len("Human: abc")


def test_trim_messages_with_the_model_as_counter(model: ChatKimi) -> None:
    history: list[BaseMessage] = [SystemMessage("You are a concise assistant.")]
    for turn in range(10):
        history.append(HumanMessage(f"Question {turn}: " + "tell me more about the weather " * 10))
        history.append(AIMessage(f"Answer {turn}: " + "it is sunny and warm today " * 10))
    full = model.get_num_tokens_from_messages(history)
    trimmed = trim_messages(
        history,
        max_tokens=full // 3,
        token_counter=model,
        strategy="last",
        include_system=True,
        start_on="human",
    )
    assert 1 < len(trimmed) < len(history)
    assert trimmed[0] == history[0] and trimmed[-1] == history[-1]
    assert model.get_num_tokens_from_messages(trimmed) <= full // 3
    # One more message would not have fitted.
    dropped_before = history[len(history) - len(trimmed)]
    assert (
        model.get_num_tokens_from_messages([history[0], dropped_before, *trimmed[1:]]) > full // 3
    )


def test_importing_the_package_does_not_import_the_estimator() -> None:
    code = textwrap.dedent(
        """
        import json, sys
        from langchain_kimi import ChatKimi
        model = ChatKimi(model="kimi-k2.5", api_key="sk-unit")
        before = "langchain_kimi._tokens" in sys.modules
        model.get_num_tokens("hi")
        print(json.dumps([before, "langchain_kimi._tokens" in sys.modules]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout) == [False, True]
