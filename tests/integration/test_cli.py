"""The command line (`python -m langchain_kimi`), run as a user runs it: in a subprocess.

One-shot mode through pipes; the interactive chat through a pseudo-terminal
(stdlib ``pty``), so the prompt, echo and line discipline are the real ones.
Offline runs use the CLI's own in-process simulator; error runs point
``--base-url`` at a FakeKimiServer in this test process.
"""

from __future__ import annotations

import base64
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from langchain_kimi._cli import build_parser, format_usage, main
from langchain_kimi.testing import FakeKimiServer, Reply

TIMEOUT = 30.0
# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any real token or base URL, plus ``extra``."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("ACEDATACLOUD_API_TOKEN", "KIMI_BASE_URL")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "langchain_kimi", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else clean_env(),
        timeout=TIMEOUT,
    )


# --- one-shot -------------------------------------------------------------------


def test_offline_streams_an_answer_and_usage() -> None:
    result = run_cli("--offline", "Why is the sky blue?", "--show-reasoning")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[offline simulator, not Kimi]")
    assert '"Why is the sky blue?"' in result.stdout
    assert result.stdout.endswith("\n")
    assert "offline: answering from the bundled simulator at http://127.0.0.1:" in result.stderr
    assert "[reasoning] The offline simulator is answering, not Kimi" in result.stderr
    usage_line = result.stderr.strip().splitlines()[-1]
    assert usage_line.startswith("[usage] input=")
    assert "(reasoning=" in usage_line
    assert "Traceback" not in result.stderr


def test_reasoning_stays_hidden_without_show_reasoning() -> None:
    result = run_cli("--offline", "hello")
    assert result.returncode == 0, result.stderr
    assert "[reasoning]" not in result.stderr
    assert "[reasoning]" not in result.stdout


def test_no_thinking_sends_thinking_disabled() -> None:
    result = run_cli("--offline", "--no-thinking", "--show-reasoning", "hello")
    assert result.returncode == 0, result.stderr
    assert "[reasoning]" not in result.stderr
    assert "(reasoning=" not in result.stderr


def test_json_mode_prints_one_json_object() -> None:
    import json

    result = run_cli("--offline", "--json", "Name a colour")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["question"] == "Name a colour"


def test_image_is_sent(tmp_path: Path) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    result = run_cli("--offline", "What is this?", "--image", str(image))
    assert result.returncode == 0, result.stderr
    assert "I was sent 1 image(s)" in result.stdout


def test_prompt_from_stdin() -> None:
    result = run_cli("--offline", "-", stdin="a question from a pipe\n")
    assert result.returncode == 0, result.stderr
    assert "a question from a pipe" in result.stdout


def test_missing_token_exits_2_with_instructions() -> None:
    result = run_cli("hello")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "ACEDATACLOUD_API_TOKEN" in result.stderr
    assert "--offline" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--max-tokens", "0", "hi"], "--max-tokens"),
        (["--bogus"], "unrecognized arguments"),
        (["--offline", "--base-url", "http://127.0.0.1:1/kimi", "hi"], "cannot be combined"),
        (["--offline", "--image", "/nonexistent/x.png", "hi"], "cannot read the image"),
        (["--offline", "--image", __file__, "hi"], "not a supported image type"),
        (["--offline", "--model", "kimi-k2-thinking", "--image", "x.png", "hi"], "images"),
        (["--offline", "   "], "the question is empty"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str],
    expected: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In-process (each subprocess costs a second of imports); the subprocess
    # path is covered by the missing-token test below.
    monkeypatch.delenv("ACEDATACLOUD_API_TOKEN", raising=False)
    assert main(args) == 2
    captured = capsys.readouterr()
    assert expected in captured.err
    assert captured.out == ""


def test_bad_base_url_is_a_configuration_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", "t")
    assert main(["--base-url", "ftp://example", "hi"]) == 2
    assert "base_url must start with https:// or http://" in capsys.readouterr().err


@pytest.fixture
def service() -> Iterator[FakeKimiServer]:
    with FakeKimiServer(api_key="cli-test-token") as server:
        yield server


def test_service_error_exits_1_with_trace_id(service: FakeKimiServer) -> None:
    service.queue(Reply.error(401, "invalid_token", "The token is invalid.", trace_id="trace-42"))
    env = clean_env(ACEDATACLOUD_API_TOKEN="cli-test-token")
    result = run_cli("--base-url", service.base_url, "hello", env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "The token is invalid." in result.stderr
    assert "trace-42" in result.stderr
    assert "cli-test-token" not in result.stderr  # the token never leaks
    assert "Traceback" not in result.stderr
    assert service.request_count == 1


def test_answer_from_a_service(service: FakeKimiServer) -> None:
    service.queue(Reply(content="Rayleigh scattering.", reasoning="Physics."))
    env = clean_env(ACEDATACLOUD_API_TOKEN="cli-test-token", KIMI_BASE_URL=service.base_url)
    result = run_cli(
        "Why is the sky blue?", "--system", "Be brief.", "--max-tokens", "900", env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Rayleigh scattering.\n"
    body = service.requests[0].body
    assert body["stream"] is True
    assert body["max_tokens"] == 900
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][-1] == {"role": "user", "content": "Why is the sky blue?"}


def test_json_and_image_request_shape(service: FakeKimiServer, tmp_path: Path) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    service.queue(Reply(content='{"thing": "a dot"}'))
    env = clean_env(ACEDATACLOUD_API_TOKEN="cli-test-token")
    result = run_cli(
        "--base-url", service.base_url, "--json", "--image", str(image), "What?", env=env
    )
    assert result.returncode == 0, result.stderr
    body = service.requests[0].body
    assert body["response_format"] == {"type": "json_object"}
    assert "JSON" in body["messages"][0]["content"]
    parts = body["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "What?"}
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_help_documents_exit_statuses() -> None:
    text = build_parser().format_help()
    for fragment in ("exit status", "130", "ACEDATACLOUD_API_TOKEN", "--offline", "/reset"):
        assert fragment in text


def test_main_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--offline", "--no-thinking", "in process"]) == 0
    captured = capsys.readouterr()
    assert '"in process"' in captured.out
    assert "[usage]" in captured.err


def test_format_usage() -> None:
    usage = {
        "input_tokens": 1,
        "output_tokens": 5,
        "total_tokens": 6,
        "output_token_details": {"reasoning": 3},
    }
    assert format_usage(usage) == "[usage] input=1 output=5 total=6 (reasoning=3)"  # type: ignore[arg-type]


# --- interactive, through a pseudo-terminal ---------------------------------------


class Terminal:
    """A child process on a pseudo-terminal; ``expect`` reads until a text appears."""

    def __init__(self, *args: str) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.execve(sys.executable, [sys.executable, "-m", "langchain_kimi", *args], clean_env())
        self.transcript = ""

    def expect(self, text: str, timeout: float = TIMEOUT) -> str:
        """Read until ``text`` appears; return everything read up to and including it."""
        deadline = time.monotonic() + timeout
        start = len(self.transcript) - len(self._unread)
        while text not in self._unread:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {text!r}; got:\n{self.transcript}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    data = b""
                if not data:
                    raise AssertionError(f"child ended before {text!r}; got:\n{self.transcript}")
                self.transcript += data.decode("utf-8", "replace").replace("\r\n", "\n")
        end = self.transcript.index(text, start) + len(text)
        seen = self.transcript[start:end]
        self._consumed = end
        return seen

    @property
    def _unread(self) -> str:
        return self.transcript[getattr(self, "_consumed", 0) :]

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self, timeout: float = TIMEOUT) -> int:
        """Drain the output until the child exits; return its exit status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    data = b""
                self.transcript += data.decode("utf-8", "replace").replace("\r\n", "\n")
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        raise AssertionError(f"the chat did not exit; got:\n{self.transcript}")


def test_interactive_chat_keeps_history_and_exits() -> None:
    term = Terminal("--offline", "--no-thinking")
    banner = term.expect("you> ")
    assert "offline: answering from the bundled simulator" in banner
    assert "/reset clears the history" in banner

    term.send("What is the capital of France?\n")
    first = term.expect("you> ")
    assert "kimi> [offline simulator, not Kimi]" in first
    assert '"What is the capital of France?"' in first
    assert "This is the first turn of the chat." in first
    assert "[usage] input=" in first

    term.send("And of Italy?\n")
    second = term.expect("you> ")
    # The second request carried the first turn: the simulator saw it.
    assert (
        'Earlier turns in this chat: 1 (the last one asked "What is the capital of France?")'
        in second
    )

    term.send("/reset\n")
    assert "(history cleared)" in term.expect("you> ")
    term.send("Fresh start\n")
    assert "This is the first turn of the chat." in term.expect("you> ")

    term.send("/exit\n")
    assert term.wait() == 0
    assert "Traceback" not in term.transcript


def test_interactive_chat_ends_on_eof() -> None:
    term = Terminal("--offline")
    term.expect("you> ")
    term.send("\x04")  # Ctrl-D at an empty line: end of input
    assert term.wait() == 0


def test_ctrl_c_exits_130_without_traceback() -> None:
    term = Terminal("--offline")
    term.expect("you> ")
    term.send("\x03")  # Ctrl-C: the terminal sends SIGINT
    assert term.wait() == 130
    assert "interrupted" in term.transcript
    assert "Traceback" not in term.transcript
