"""The simulator explains itself: a request log, and an echo that honours the output limit.

A user whose client gets a 400 from the simulator reads why in the log
(``FakeKimiServer(log=...)``, ``kimi-sim --verbose``); the echo answers within
``max_tokens`` (or ``max_completion_tokens``) as a model would, with
``finish_reason: "length"`` when it had to stop.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys

import pytest

from langchain_kimi import ChatKimi, KimiAuthenticationError, KimiBadRequestError
from langchain_kimi.testing import FakeKimiServer

TOKEN = "sk-log"


def test_the_log_says_method_path_model_status_and_the_refusing_rule() -> None:
    lines: list[str] = []
    with FakeKimiServer(api_key=TOKEN, log=lines.append) as server:
        model = ChatKimi(model="kimi-k2.6", base_url=server.base_url, api_key=TOKEN)
        model.invoke("Hello")
        wrong_key = ChatKimi(model="kimi-k2.6", base_url=server.base_url, api_key="sk-wrong")
        with pytest.raises(KimiAuthenticationError):
            wrong_key.invoke("Hello")
    assert lines[0] == "POST /kimi/chat/completions model=kimi-k2.6 -> 200"
    assert lines[1].startswith("POST /kimi/chat/completions model=kimi-k2.6 -> 401 refused: ")
    assert "sk-wrong" not in lines[1]


def test_a_rule_refusal_is_logged_with_the_rule() -> None:
    stream = io.StringIO()
    with FakeKimiServer(api_key=TOKEN, log=stream) as server:
        model = ChatKimi(model="kimi-k2.6", base_url=server.base_url, api_key=TOKEN)
        # Sent as given (extra_body), past the client's own check: the service refuses it.
        with pytest.raises(KimiBadRequestError) as refused:
            model.invoke("Hi", extra_body={"temperature": 0.2})
    [line] = stream.getvalue().splitlines()
    assert line.startswith("POST /kimi/chat/completions model=kimi-k2.6 -> 400 refused: ")
    assert refused.value.message in line


def test_kimi_sim_verbose_logs_each_request_on_stderr() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "langchain_kimi.testing", "--verbose", "--api-key", TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        ChatKimi(model="kimi-k2.5", base_url=base_url, api_key=TOKEN).invoke("Hello")
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert "POST /kimi/chat/completions model=kimi-k2.5 -> 200" in err


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream"])
def test_the_echo_stops_at_the_output_limit_with_finish_reason_length(
    field: str, mode: str
) -> None:
    prompt = "Please repeat this rather long sentence back to me in full."
    with FakeKimiServer(api_key=TOKEN) as server:
        model = ChatKimi(
            model="kimi-k2-instruct-0905", base_url=server.base_url, api_key=TOKEN
        ).bind(**{field: 5})
        if mode == "invoke":
            message = model.invoke(prompt)
        elif mode == "ainvoke":
            message = asyncio.run(model.ainvoke(prompt))
        else:
            chunks = list(model.stream(prompt))
            message = chunks[0]
            for chunk in chunks[1:]:
                message += chunk  # type: ignore[assignment]
        sent = server.requests[-1].body
    assert sent.get(field) == 5 or sent.get("max_tokens") == 5
    assert message.content == f"Echo: {prompt}"[:20]
    assert message.response_metadata["finish_reason"] == "length"


def test_a_thinking_echo_spends_the_limit_on_reasoning_first() -> None:
    with FakeKimiServer(api_key=TOKEN) as server:
        model = ChatKimi(model="kimi-k2.6", base_url=server.base_url, api_key=TOKEN, max_tokens=3)
        message = model.invoke("Why is the sky blue?")
    assert message.additional_kwargs["reasoning_content"] == "Thinking abo"
    assert message.content == ""
    assert message.response_metadata["finish_reason"] == "length"


def test_within_the_limit_the_echo_is_whole() -> None:
    with FakeKimiServer(api_key=TOKEN) as server:
        model = ChatKimi(
            model="kimi-k2-instruct-0905", base_url=server.base_url, api_key=TOKEN, max_tokens=100
        )
        message = model.invoke("Hello")
    assert message.content == "Echo: Hello"
    assert message.response_metadata["finish_reason"] == "stop"
