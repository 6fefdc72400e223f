"""The standalone simulator: ``python -m langchain_kimi.testing`` (``kimi-sim``).

The end-to-end tests start it as a user would, in another process, read the base
URL from the first line of its stdout, and talk to it from this process with
ChatKimi; then stop it with SIGTERM or SIGINT and check it exits cleanly (0).
The option wiring and the error exits run in-process (``main`` with a ``stop``
event, in a thread).
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from langchain_kimi import ChatKimi
from langchain_kimi.testing.__main__ import build_parser, build_server, main

ROOT = Path(__file__).resolve().parents[2]
TOOL_CALL_SCRIPT = ROOT / "tests" / "fixtures" / "sim" / "tool_call.yaml"
WATCHDOG = 30.0
_EXEC_WITH_SIGINT = (
    "import os, signal, sys; "
    "signal.signal(signal.SIGINT, getattr(signal, sys.argv[1])); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"{city}: 18 C, sunny"


class Simulator:
    """``python -m langchain_kimi.testing`` in a subprocess; ``url`` is its first stdout line."""

    def __init__(
        self, *args: str, python_flags: tuple[str, ...] = (), sigint: str = "SIG_DFL"
    ) -> None:
        env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
        env["PYTHONUNBUFFERED"] = "1"
        command = [sys.executable, *python_flags, "-m", "langchain_kimi.testing", *args]
        self.process = subprocess.Popen(
            # Started with SIGINT's disposition set, not inherited from this process:
            # SIG_IGN is what a shell gives a job it starts in the background
            # (`kimi-sim &` in a script), and it survives exec.
            [sys.executable, "-c", _EXEC_WITH_SIGINT, sigint, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], WATCHDOG)
        if not ready:
            self.process.kill()
            raise AssertionError(f"no URL within {WATCHDOG} s: {self.process.communicate()}")
        self.url = self.process.stdout.readline().strip()

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str, str]:
        """Send ``signum``; return (exit status, rest of stdout, stderr)."""
        self.process.send_signal(signum)
        try:
            out, err = self.process.communicate(timeout=WATCHDOG)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            raise AssertionError(f"the simulator did not stop: {err}") from None
        return self.process.returncode, out, err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture
def simulators() -> Iterator[list[Simulator]]:
    """Started simulators are killed after the test, whatever happened."""
    started: list[Simulator] = []
    yield started
    for simulator in started:
        simulator.kill()


def test_chat_kimi_in_this_process_receives_the_scripted_tool_call(
    simulators: list[Simulator],
) -> None:
    sim = Simulator("--port", "0", "--replies", str(TOOL_CALL_SCRIPT))
    simulators.append(sim)
    assert sim.url.startswith("http://127.0.0.1:") and sim.url.endswith("/kimi")

    # Without --api-key the simulator accepts any token.
    with ChatKimi(model="kimi-k2.5", base_url=sim.url, api_key="any-token", max_retries=0) as model:
        agent_model = model.bind_tools([get_weather])
        question = HumanMessage("What is the weather in Oslo?")
        first = agent_model.invoke([question])
        assert isinstance(first, AIMessage)
        assert [(call["name"], call["args"]) for call in first.tool_calls] == [
            ("get_weather", {"city": "Oslo"})
        ]
        assert first.additional_kwargs["reasoning_content"].startswith("The user wants")
        result = ToolMessage(
            get_weather.invoke(first.tool_calls[0]["args"]), tool_call_id=first.tool_calls[0]["id"]
        )
        # Streamed, so the SSE path crosses the process boundary too. The
        # simulator enforces the replay rule: the reasoning must come back.
        final = "".join(chunk.text for chunk in agent_model.stream([question, first, result]))
        assert final == "It is 18 C and sunny in Oslo."

    status, rest, err = sim.stop(signal.SIGTERM)
    assert status == 0, err
    assert rest == ""  # the URL was the only stdout line
    assert "stopped after 2 request(s), 2 of 2 script entries used" in err
    assert "Traceback" not in err


def test_ctrl_c_stops_it_and_it_imports_nothing_of_the_client(
    simulators: list[Simulator],
) -> None:
    sim = Simulator("--port", "0", "--api-key", "sim-key", python_flags=("-X", "importtime"))
    simulators.append(sim)
    url = f"{sim.url}/chat/completions"
    body = {"model": "kimi-k2.5", "messages": [{"role": "user", "content": "hi"}]}
    assert requests.post(url, json=body, timeout=WATCHDOG).status_code == 401
    answer = requests.post(
        url, json=body, headers={"Authorization": "Bearer sim-key"}, timeout=WATCHDOG
    )
    assert answer.json()["choices"][0]["message"]["content"] == "Echo: hi"

    status, _, err = sim.stop(signal.SIGINT)
    assert status == 0, err
    assert "stopped after 2 request(s)" in err
    assert "Traceback" not in err
    assert "only the token 'sim-key'" in err
    # The simulator judges the client: it shares none of its code (nor langchain-core).
    imported = {line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if "|" in line}
    assert "langchain_kimi.testing._server" in imported
    client = {"langchain_kimi.chat_models", "langchain_kimi._payload", "langchain_kimi._sse"}
    client |= {"langchain_kimi._response", "langchain_core"}
    assert imported & client == set()


def test_sigint_stops_it_when_started_in_the_background(simulators: list[Simulator]) -> None:
    sim = Simulator("--port", "0", sigint="SIG_IGN")
    simulators.append(sim)
    status, _, err = sim.stop(signal.SIGINT)
    assert status == 0, err
    assert "stopped after 0 request(s)" in err
    assert "Traceback" not in err


# --- in-process: options and errors ------------------------------------------------------------


class LineSink(io.StringIO):
    """A stdout whose first complete line can be waited for from another thread."""

    def __init__(self) -> None:
        super().__init__()
        self.first_line = threading.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if "\n" in self.getvalue():
            self.first_line.set()
        return written


def serve_in_thread(*args: str) -> tuple[str, threading.Event, threading.Thread, list[int]]:
    out, err = LineSink(), io.StringIO()
    stop = threading.Event()
    status: list[int] = []
    thread = threading.Thread(
        target=lambda: status.append(main(list(args), stdout=out, stderr=err, stop=stop))
    )
    thread.start()
    if not out.first_line.wait(WATCHDOG):
        stop.set()
        thread.join(WATCHDOG)
        raise AssertionError(f"not serving: {err.getvalue()}")
    return out.getvalue().splitlines()[0], stop, thread, status


def test_options_reach_the_server() -> None:
    url, stop, thread, status = serve_in_thread(
        "--port", "0", "--api-key", "k", "--path-prefix", "/v1", "--no-rules"
    )
    try:
        assert url.endswith("/v1")
        # --no-rules: a body the rules refuse (no messages) is answered.
        response = requests.post(
            f"{url}/chat/completions",
            json={"model": "kimi-k2.5", "messages": []},
            headers={"Authorization": "Bearer k"},
            timeout=WATCHDOG,
        )
        assert response.status_code == 200
        wrong = requests.post(
            f"{url}/chat/completions",
            json={"model": "kimi-k2.5", "messages": []},
            headers={"Authorization": "Bearer nope"},
            timeout=WATCHDOG,
        )
        assert wrong.status_code == 401  # auth is still checked
    finally:
        stop.set()
        thread.join(WATCHDOG)
    assert status == [0]


def test_parsed_options_build_the_server() -> None:
    args = build_parser().parse_args(
        ["--host", "localhost", "--latency", "0.25", "--no-rules", "--api-key", "k"]
    )
    server = build_server(args, None)
    assert (server.host, server.latency, server.enforce_rules, server.api_key) == (
        "localhost",
        0.25,
        False,
        "k",
    )
    defaults = build_server(build_parser().parse_args([]), None)
    assert (defaults.host, defaults.latency, defaults.enforce_rules, defaults.api_key) == (
        "127.0.0.1",
        0.0,
        True,
        None,
    )
    assert defaults.flavor == "acedata"


def test_the_moonshot_flavor_serves_under_v1_and_takes_json_schema() -> None:
    url, stop, thread, status = serve_in_thread("--port", "0", "--flavor", "moonshot")
    try:
        assert url.endswith("/v1")
        body = {
            "model": "kimi-k2.6",
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "a", "schema": {"type": "object"}},
            },
        }
        response = requests.post(
            f"{url}/chat/completions",
            json=body,
            headers={"Authorization": "Bearer x"},
            timeout=WATCHDOG,
        )
        assert response.status_code == 200, response.text
    finally:
        stop.set()
        thread.join(WATCHDOG)
    assert status == [0]


def test_exhausted_error_without_a_script_answers_500() -> None:
    url, stop, thread, status = serve_in_thread("--exhausted", "error")
    try:
        response = requests.post(
            f"{url}/chat/completions",
            json={"model": "kimi-k2.5", "messages": [{"role": "user", "content": "hi"}]},
            timeout=WATCHDOG,
        )
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "script_exhausted"
    finally:
        stop.set()
        thread.join(WATCHDOG)
    assert status == [0]


def test_model_like_answers_after_the_script(tmp_path: Path) -> None:
    script = tmp_path / "one.json"
    script.write_text(json.dumps([{"content": "scripted first"}]))
    url, stop, thread, status = serve_in_thread("--replies", str(script), "--model-like")
    try:
        with ChatKimi(model="kimi-k2.6", base_url=url, api_key="any", max_retries=0) as model:
            assert model.invoke("hi").content == "scripted first"
            call = model.bind_tools([get_weather]).invoke("What is the weather in Oslo?")
            assert [(c["name"], c["args"]) for c in call.tool_calls] == [
                ("get_weather", {"city": "Oslo"})
            ]
    finally:
        stop.set()
        thread.join(WATCHDOG)
    assert status == [0]
    alone = build_server(build_parser().parse_args(["--model-like"]), None)
    assert repr(alone._responder) == "ModelLikeResponder()"


def test_model_like_and_exhausted_error_contradict() -> None:
    status, out, err = run_main("--model-like", "--exhausted", "error")
    assert (status, out) == (2, "")
    assert "--model-like answers where the echo would" in err


def run_main(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(args), stdout=out, stderr=err, stop=threading.Event())
    return status, out.getvalue(), err.getvalue()


def test_a_bad_script_exits_2_naming_entry_and_field(tmp_path: Path) -> None:
    script = tmp_path / "bad.json"
    script.write_text(json.dumps([{"content": "ok"}, {"tool_calls": [{"name": 3}]}]))
    status, out, err = run_main("--replies", str(script))
    assert status == 2
    assert out == ""  # never served: no URL
    assert "kimi-sim: error: bad.json: replies[1].tool_calls[0].name: expected a string" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "70000"], "must be between 0 and 65535"),
        (["--latency", "-1"], "must not be negative"),
        (["--exhausted", "ignore"], "invalid choice"),
        (["--replies", "/nonexistent/replies.json"], "cannot read the script"),
    ],
)
def test_bad_arguments_exit_2(args: list[str], message: str) -> None:
    status, out, err = run_main(*args)
    assert status == 2
    assert message in err
    assert out == ""


def test_a_busy_port_exits_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, out, err = run_main("--port", str(port))
    assert status == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert out == ""


def test_help_and_version() -> None:
    status, out, _ = run_main("--help")
    assert status == 0
    for fragment in (
        "usage: kimi-sim",
        "--replies",
        "--exhausted",
        "--model-like",
        "match",
        "exit status",
    ):
        assert fragment in out
    status, out, _ = run_main("--version")
    assert (status, out.startswith("kimi-sim ")) == (0, True)
