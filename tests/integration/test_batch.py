"""``model.batch_submit`` and the batch job against the simulator's Batch API, sync and async.

The simulator (``FakeKimiServer(flavor="moonshot")``) validates the uploaded
JSONL, runs each line through its chat endpoint (the service's rules, queued
replies, the echo), writes output and error files in the order a test asks
for, and cancels or expires batches on request: the client is judged by the
same rules as a chat call.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from langchain_kimi import ChatKimi, KimiError, KimiServerError, KimiTimeoutError
from langchain_kimi import batch as batch_module
from langchain_kimi._platform import Platform, Resend
from langchain_kimi.batch import KimiBatchError, KimiBatchJob
from langchain_kimi.testing import FakeKimiServer, Reply

from .conftest import TOKEN

MODES = ["sync", "async"]


@tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"18 C in {city}"


@pytest.fixture
def moonshot() -> Iterator[FakeKimiServer]:
    with FakeKimiServer(api_key=TOKEN, flavor="moonshot") as server:
        yield server


def on(server: FakeKimiServer, **kwargs: Any) -> ChatKimi:
    settings: dict[str, Any] = {
        "model": "kimi-k2.6",
        "base_url": server.base_url,
        "api_key": TOKEN,
        "api_flavor": "moonshot",
    }
    return ChatKimi(**{**settings, **kwargs})


def submit(model: ChatKimi, mode: str, inputs: Any, **kwargs: Any) -> KimiBatchJob:
    if mode == "sync":
        return model.batch_submit(inputs, **kwargs)
    return asyncio.run(model.abatch_submit(inputs, **kwargs))


def on_job(job: KimiBatchJob, mode: str, name: str, **kwargs: Any) -> Any:
    """``job.name(...)`` or its async twin (``wait`` -> ``await_done``, else ``a<name>``)."""
    if mode == "sync":
        return getattr(job, name)(**kwargs)
    twin = "await_done" if name == "wait" else "a" + name
    return asyncio.run(getattr(job, twin)(**kwargs))


def posts(server: FakeKimiServer, path: str) -> int:
    return sum(1 for r in server.requests if (r.method, r.path) == ("POST", path))


def input_lines(model: ChatKimi, job: KimiBatchJob) -> list[dict[str, Any]]:
    lines = []
    for batch in job.status().batches:
        content = model.files.content(batch["input_file_id"])
        lines += [json.loads(line) for line in content.splitlines() if line.strip()]
    return lines


# --- the body of a line is invoke's --------------------------------------------------


HISTORY = [
    HumanMessage("Weather in Oslo?"),
    AIMessage(
        "",
        additional_kwargs={"reasoning_content": "I should call the tool."},
        tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "get_weather:0"}],
    ),
    ToolMessage("18 C in Oslo", tool_call_id="get_weather:0"),
]


@pytest.mark.parametrize(
    ("inputs", "options"),
    [
        ("What is 2 + 2?", {}),
        (HISTORY, {"tools": [get_weather]}),
        ("Reply in JSON: a list of two colours.", {"response_format": {"type": "json_object"}}),
        ("Stop at the comma, please", {"stop": [","], "max_tokens": 300}),
    ],
    ids=["text", "tool-loop-with-reasoning-replay", "json-mode", "stop-and-max-tokens"],
)
def test_a_batch_line_body_is_the_body_invoke_sends(
    moonshot: FakeKimiServer, inputs: Any, options: dict[str, Any]
) -> None:
    model = on(moonshot)
    bound_options = dict(options)
    if "tools" in bound_options:
        runnable: Any = model.bind_tools(bound_options.pop("tools"))
    else:
        runnable = model
    runnable.invoke(inputs, **bound_options)
    sent = dict(moonshot.requests[-1].body)
    sent.pop("stream", None)
    sent.pop("stream_options", None)
    job = model.batch_submit([inputs], **options)
    [line] = input_lines(model, job)
    assert line["body"] == sent
    assert "stream" not in line["body"]
    assert (line["method"], line["url"]) == ("POST", "/v1/chat/completions")


# --- one upload, one create; results in input order --------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_thousand_inputs_are_one_upload_and_one_create(
    moonshot: FakeKimiServer, mode: str
) -> None:
    model = on(moonshot, thinking=False)
    questions = [f"question {i}" for i in range(1_000)]
    job = submit(model, mode, questions)
    assert posts(moonshot, "/v1/files") == 1 and posts(moonshot, "/v1/batches") == 1
    assert posts(moonshot, "/v1/chat/completions") == 0
    assert on_job(job, mode, "wait", poll_interval=0).status == "completed"
    results = on_job(job, mode, "results")
    assert len(results) == 1_000
    assert all(isinstance(item, AIMessage) for item in results)
    assert [item.content for item in results] == [f"Echo: question {i}" for i in range(1_000)]
    assert results[7].usage_metadata is not None and results[7].usage_metadata["input_tokens"] > 0
    custom_ids = [line["custom_id"] for line in input_lines(model, job)]
    assert len(set(custom_ids)) == 1_000


@pytest.mark.parametrize("order", ["reversed", "shuffled"])
@pytest.mark.parametrize("mode", MODES)
def test_output_lines_out_of_order_come_back_in_input_order(
    moonshot: FakeKimiServer, mode: str, order: str
) -> None:
    moonshot.platform.batches.output_order = order  # type: ignore[assignment]
    model = on(moonshot, thinking=False)
    job = submit(model, mode, [f"q{i}" for i in range(30)])
    output = model.files.content(job.status().batches[0]["output_file_id"])
    written = [json.loads(line)["custom_id"] for line in output.splitlines()]
    assert written != sorted(written, key=lambda c: int(c.split("-")[1]))  # really out of order
    results = on_job(job, mode, "results")
    assert [item.content for item in results] == [f"Echo: q{i}" for i in range(30)]


@pytest.mark.parametrize("mode", MODES)
def test_a_thinking_models_answers_carry_their_reasoning(
    moonshot: FakeKimiServer, mode: str
) -> None:
    moonshot.queue(Reply(reasoning="Two and two.", content="4"))
    job = submit(on(moonshot), mode, ["2 + 2?"])
    [answer] = on_job(job, mode, "results")
    assert answer.content == "4"
    assert answer.additional_kwargs["reasoning_content"] == "Two and two."


# --- failures ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_line_is_a_typed_error_in_its_place(moonshot: FakeKimiServer, mode: str) -> None:
    moonshot.queue(
        Reply(content="first"),
        Reply.error(500, "server_error", "The engine stalled.", style="moonshot"),
        Reply(content="third"),
    )
    job = submit(on(moonshot, thinking=False), mode, ["a", "b", "c"])
    status = on_job(job, mode, "wait", poll_interval=0)
    assert (status.completed, status.failed, status.total) == (2, 1, 3)
    first, failed, third = on_job(job, mode, "results")
    assert (first.content, third.content) == ("first", "third")
    assert isinstance(failed, KimiServerError) and "The engine stalled." in str(failed)
    assert TOKEN not in str(failed)


@pytest.mark.parametrize("mode", MODES)
def test_a_cancelled_job_reports_the_inputs_that_did_not_run(
    moonshot: FakeKimiServer, mode: str
) -> None:
    moonshot.platform.batches.progress = "manual"
    moonshot.platform.batches.lines_per_step = 2
    job = submit(on(moonshot, thinking=False), mode, [f"q{i}" for i in range(5)])
    moonshot.platform.advance_batches(2)  # validated, then two lines run
    on_job(job, mode, "cancel")
    with pytest.raises(ValueError, match="not done"):
        on_job(job, mode, "results")
    moonshot.platform.advance_batches()
    assert on_job(job, mode, "wait", poll_interval=0).status == "cancelled"
    results = on_job(job, mode, "results")
    assert [item.content for item in results[:2]] == ["Echo: q0", "Echo: q1"]
    for index, item in enumerate(results[2:], start=2):
        assert isinstance(item, KimiBatchError)
        assert (item.index, item.code) == (index, "batch_cancelled")


@pytest.mark.parametrize("mode", MODES)
def test_an_expired_job_reports_the_inputs_that_did_not_run(
    moonshot: FakeKimiServer, mode: str
) -> None:
    moonshot.platform.batches.progress = "manual"
    moonshot.platform.batches.lines_per_step = 1
    job = submit(on(moonshot, thinking=False), mode, ["a", "b", "c"])
    moonshot.platform.advance_batches(2)
    moonshot.platform.expire_batch(job.id)
    results = on_job(job, mode, "results")
    assert results[0].content == "Echo: a"
    assert [getattr(item, "code", None) for item in results[1:]] == ["batch_expired"] * 2


@pytest.mark.parametrize("mode", MODES)
def test_waiting_past_the_timeout_raises_and_the_job_goes_on(
    moonshot: FakeKimiServer, mode: str
) -> None:
    moonshot.platform.batches.progress = "manual"
    job = submit(on(moonshot, thinking=False), mode, ["a"])
    with pytest.raises(KimiTimeoutError, match="not done within the timeout"):
        on_job(job, mode, "wait", poll_interval=0, timeout=0)
    moonshot.platform.advance_batches(4)
    assert on_job(job, mode, "wait", poll_interval=0).done


# --- reattaching, splitting ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_fresh_model_reattaches_by_id(moonshot: FakeKimiServer, mode: str) -> None:
    job = submit(on(moonshot, thinking=False), mode, ["a", "b"])
    again = on(moonshot).batch_job(job.id)
    assert again.ids == job.ids
    assert [item.content for item in on_job(again, mode, "results")] == ["Echo: a", "Echo: b"]


@pytest.mark.parametrize("mode", MODES)
def test_over_the_file_limit_the_lines_split_over_batches_tracked_together(
    moonshot: FakeKimiServer, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_module, "BATCH_FILE_BYTES", 1_000)
    model = on(moonshot, thinking=False)
    job = submit(model, mode, [f"question number {i}" for i in range(20)])
    assert len(job.ids) > 1
    assert posts(moonshot, "/v1/files") == posts(moonshot, "/v1/batches") == len(job.ids)
    sizes = [b for b in moonshot.platform.files._files.values() if b.purpose == "batch"]
    assert all(len(f.data) <= 1_000 for f in sizes)
    results = on_job(model.batch_job(job.ids), mode, "results")
    assert [item.content for item in results] == [f"Echo: question number {i}" for i in range(20)]


# --- refused before sending ------------------------------------------------------------------


def test_on_ace_data_cloud_nothing_is_sent() -> None:
    with FakeKimiServer(api_key=TOKEN) as ace:
        model = ChatKimi(model="kimi-k2.6", base_url=ace.base_url, api_key=TOKEN)
        with pytest.raises(ValueError, match='api_flavor="moonshot"'):
            model.batch_submit(["hi"])
        with pytest.raises(ValueError, match='api_flavor="moonshot"'):
            asyncio.run(model.abatch_submit(["hi"]))
        with pytest.raises(ValueError, match='api_flavor="moonshot"'):
            model.batch_job("batch_123").status()
        assert ace.requests == []


@pytest.mark.parametrize(
    ("model_kwargs", "inputs", "options", "problem"),
    [
        ({"model": "kimi-k3"}, ["hi"], {}, "does not serve 'kimi-k3'"),
        ({"extra_body": {"temperature": 0.3}}, ["hi"], {}, "takes no temperature"),
        ({}, [], {}, "at least one input"),
        ({}, ["hi"], {"completion_window": "1h"}, "completion_window"),
        ({}, ["hi"], {"metadata": {f"k{i}": "v" for i in range(16)}}, "at most 15"),
        ({}, [42], {}, "Invalid input type"),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_what_the_batch_api_would_refuse_is_refused_before_sending(
    moonshot: FakeKimiServer,
    mode: str,
    model_kwargs: dict[str, Any],
    inputs: list[Any],
    options: dict[str, Any],
    problem: str,
) -> None:
    with pytest.raises(ValueError, match=problem):
        submit(on(moonshot, **model_kwargs), mode, inputs, **options)
    assert moonshot.requests == []


def test_a_batch_not_submitted_by_this_package_is_named(moonshot: FakeKimiServer) -> None:
    model = on(moonshot)
    uploaded = model.files.upload(
        b'{"custom_id": "x", "method": "POST", "url": "/v1/chat/completions", '
        b'"body": {"model": "kimi-k2.6", "messages": [{"role": "user", "content": "hi"}]}}\n',
        purpose="batch",
        filename="mine.jsonl",
    )
    batch = Platform(model, "a batch of the user's own").send_json(
        "POST",
        "/batches",
        {
            "input_file_id": uploaded.id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
        resend=Resend.CREATE,
    )
    with pytest.raises(KimiError, match="not submitted by langchain-kimi"):
        model.batch_job(batch["id"]).results()
