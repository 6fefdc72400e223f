"""The command line (`python -m langchain_kimi`, `kimi-chat`).

Most tests call :func:`langchain_kimi._cli.main` in this process with its own
stdin/stdout/stderr (a subprocess costs a second of imports each). Offline runs
use the CLI's own in-process simulator; error and request-shape runs point
``--base-url`` (or ``KIMI_BASE_URL``) at a FakeKimiServer of the test.

A few things only a real process shows, so they run one: that ``--help`` and
``--version`` import neither the model nor langchain-core (``-X importtime``
lists every import of the real ``python -m langchain_kimi``), and that Ctrl-C
on a real terminal (stdlib ``pty``) exits 130 without a traceback.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from langchain_kimi import _profiles
from langchain_kimi._cli import build_parser, format_usage, main
from langchain_kimi._version import __version__
from langchain_kimi.testing import FakeKimiServer, Reply
from langchain_kimi.testing.__main__ import main as simulator_main

from ._relay_proxy import RelayProxy

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0
# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
# The start of a JPEG (SOI + JFIF APP0 marker): enough for the type to be judged.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 16
SERVICE_TOKEN = "cli-test-token"
DISCLAIMER = "offline: answers come from the bundled simulator (FakeKimiServer at http://127.0.0.1:"


@dataclass
class Run:
    status: int
    out: str
    err: str


def run_cli(*args: str, stdin: str = "") -> Run:
    """``main(args)`` in this process, with its own streams."""
    out, err = io.StringIO(), io.StringIO()
    status = main(list(args), stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return Run(status, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def _no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real token or base URL from the developer's environment."""
    monkeypatch.delenv("ACEDATACLOUD_API_TOKEN", raising=False)
    monkeypatch.delenv("KIMI_BASE_URL", raising=False)


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKimiServer]:
    """A simulator the CLI is pointed at with --base-url, and the token it accepts."""
    with FakeKimiServer(api_key=SERVICE_TOKEN) as server:
        monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", SERVICE_TOKEN)
        yield server


# --- one-shot, offline ------------------------------------------------------------


def test_offline_streams_an_answer_and_usage() -> None:
    result = run_cli("--offline", "Why is the sky blue?", "--show-reasoning")
    assert result.status == 0, result.err
    assert result.out == '[offline] You asked: "Why is the sky blue?".\n'
    assert DISCLAIMER in result.err
    assert "[reasoning] Simulated reasoning: 5 word(s), 0 earlier turn(s)." in result.err
    usage_line = result.err.strip().splitlines()[-1]
    assert usage_line.startswith("[usage] input=")
    assert "(reasoning=" in usage_line
    assert "Traceback" not in result.err


def test_reasoning_stays_hidden_without_show_reasoning() -> None:
    result = run_cli("--offline", "hello")
    assert result.status == 0, result.err
    assert "[reasoning]" not in result.err
    assert "[reasoning]" not in result.out
    # The reasoning was there, only not shown.
    assert "(reasoning=" in result.err


def test_no_thinking_sends_thinking_disabled() -> None:
    result = run_cli("--offline", "--no-thinking", "--show-reasoning", "hello")
    assert result.status == 0, result.err
    assert "[reasoning]" not in result.err
    assert "(reasoning=" not in result.err


def test_json_mode_prints_one_json_object() -> None:
    result = run_cli("--offline", "--json", "Name a colour")
    assert result.status == 0, result.err
    answer = json.loads(result.out)
    assert answer["question"] == "Name a colour"


def test_image_is_sent(tmp_path: Path) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    result = run_cli("--offline", "What is this?", "--image", str(image))
    assert result.status == 0, result.err
    assert "Images received: 1" in result.out


def test_prompt_from_stdin() -> None:
    result = run_cli("--offline", "-", stdin="a question from a pipe\n")
    assert result.status == 0, result.err
    assert "a question from a pipe" in result.out


def test_help_and_version_in_process() -> None:
    help_run = run_cli("--help")
    assert help_run.status == 0
    assert help_run.out.startswith("usage: kimi-chat")
    version_run = run_cli("--version")
    assert (version_run.status, version_run.out) == (0, f"kimi-chat {__version__}\n")


# --- usage and configuration errors: exit 2, nothing sent --------------------------


def test_missing_token_exits_2_with_instructions() -> None:
    result = run_cli("hello")
    assert result.status == 2
    assert result.out == ""
    assert "ACEDATACLOUD_API_TOKEN" in result.err
    assert "--offline" in result.err
    assert "Traceback" not in result.err


def _file(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--max-tokens", "0", "hi"], "--max-tokens"),
        (["--bogus"], "unrecognized arguments"),
        (["--offline", "--base-url", "http://127.0.0.1:1/kimi", "hi"], "cannot be combined"),
        (["--offline", "--image", "/nonexistent/x.png", "hi"], "cannot read the image"),
        (["--offline", "--image", ".", "hi"], "--image .: is a directory"),
        (["--offline", "--image", "{python}", "hi"], "is not an image: its content is not PNG"),
        # The name says PNG; the content (one byte) says otherwise: refused.
        (["--offline", "--image", "{one_byte_png}", "hi"], "is not an image"),
        (["--offline", "--image", "{empty_png}", "hi"], "is empty"),
        (["--offline", "--model", "kimi-k2-thinking", "--image", "x.png", "hi"], "images"),
        (["--offline", "   "], "the question is empty"),
    ],
)
def test_usage_errors_exit_2(args: list[str], expected: str, tmp_path: Path) -> None:
    files = {
        "{python}": __file__,
        "{one_byte_png}": _file(tmp_path, "x.png", b"x"),
        "{empty_png}": _file(tmp_path, "empty.png", b""),
    }
    result = run_cli(*[files.get(arg, arg) for arg in args])
    assert result.status == 2
    assert expected in result.err
    assert result.out == ""
    assert "Traceback" not in result.err


def test_bad_base_url_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", "t")
    result = run_cli("--base-url", "ftp://example", "hi")
    assert result.status == 2
    assert "base_url must start with https:// or http://" in result.err


# --- against a service ---------------------------------------------------------------


def test_service_error_exits_1_with_trace_id(service: FakeKimiServer) -> None:
    service.queue(Reply.error(401, "invalid_token", "The token is invalid.", trace_id="trace-42"))
    result = run_cli("--base-url", service.base_url, "hello")
    assert result.status == 1
    assert result.out == ""
    assert "The token is invalid." in result.err
    assert "trace-42" in result.err
    assert SERVICE_TOKEN not in result.err  # the token never leaks
    assert "Traceback" not in result.err
    assert service.request_count == 1


def test_answer_from_a_service(service: FakeKimiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIMI_BASE_URL", service.base_url)
    service.queue(Reply(content="Rayleigh scattering.", reasoning="Physics."))
    result = run_cli("Why is the sky blue?", "--system", "Be brief.", "--max-tokens", "900")
    assert result.status == 0, result.err
    assert result.out == "Rayleigh scattering.\n"
    body = service.requests[0].body
    assert body["stream"] is True
    assert body["max_tokens"] == 900
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][-1] == {"role": "user", "content": "Why is the sky blue?"}


def test_a_model_name_in_another_case_reaches_ace_data_cloud_in_the_catalogue_spelling(
    service: FakeKimiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ace Data Cloud's host, reached through a relay that forwards to the simulator.
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    relay = RelayProxy(service.port)
    try:
        monkeypatch.setenv("HTTP_PROXY", relay.url)
        service.queue(Reply(content="Hello."))
        result = run_cli(
            "--base-url", "http://api.acedata.cloud/kimi", "--model", "Kimi-K2.6", "hi"
        )
    finally:
        relay.close()
    assert result.status == 0, result.err
    assert result.out == "Hello.\n"
    assert service.requests[0].body["model"] == "kimi-k2.6"
    assert "warning" not in result.err


def test_a_model_name_the_service_does_not_know_gets_a_hint(
    service: FakeKimiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_profiles, "_warned_exact_match", set())
    # Another host: sent as written (it may have names of its own), with one warning;
    # the simulator matches names exactly, as the services do, and answers 404.
    result = run_cli("--base-url", service.base_url, "--model", "Kimi-K2.6", "hi")
    assert result.status == 1
    lines = result.err.splitlines()
    assert lines[0].startswith("kimi-chat: warning: the model name 'Kimi-K2.6' is sent as written")
    assert "Not found the model Kimi-K2.6" in result.err
    assert "the catalogue spells it 'kimi-k2.6' (try --model kimi-k2.6)" in result.err
    assert "Traceback" not in result.err and "UserWarning" not in result.err
    # A name no catalogue knows: the hint names the settings to check.
    result = run_cli("--base-url", service.base_url, "--model", "kimi-k9", "hi")
    assert result.status == 1
    assert "does not know the model 'kimi-k9'" in result.err and "--base-url" in result.err


def test_json_and_image_request_shape(service: FakeKimiServer, tmp_path: Path) -> None:
    image = _file(tmp_path, "dot.png", PNG)
    service.queue(Reply(content='{"thing": "a dot"}'))
    result = run_cli("--base-url", service.base_url, "--json", "--image", image, "What?")
    assert result.status == 0, result.err
    body = service.requests[0].body
    assert body["response_format"] == {"type": "json_object"}
    assert "JSON" in body["messages"][0]["content"]
    parts = body["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "What?"}
    assert parts[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode(
        "ascii"
    )


def test_image_type_comes_from_the_content(service: FakeKimiServer, tmp_path: Path) -> None:
    # A JPEG saved as .png goes out as the JPEG it is.
    image = _file(tmp_path, "really_a_jpeg.png", JPEG)
    result = run_cli("--base-url", service.base_url, "--image", image, "What?")
    assert result.status == 0, result.err
    url = service.requests[0].body["messages"][-1]["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")


# --- the interactive chat, in process ---------------------------------------------------


def test_interactive_chat_keeps_history_and_exits() -> None:
    lines = ["What is the capital of France?", "And of Italy?", "/reset", "Fresh start", "/exit"]
    result = run_cli("--offline", "--no-thinking", stdin="\n".join(lines) + "\n")
    assert result.status == 0, result.err
    assert result.out.split("you> ") == [
        "",
        'kimi> [offline] You asked: "What is the capital of France?".\n',
        # The second request carried the first turn: the simulator saw it.
        'kimi> [offline] You asked: "And of Italy?". Earlier turns: 1; '
        'the last asked "What is the capital of France?".\n',
        "",  # /reset: answered on stderr, nothing sent
        'kimi> [offline] You asked: "Fresh start".\n',
        "",  # /exit
    ]
    assert "/reset clears the history" in result.err
    assert "(history cleared)" in result.err
    assert result.err.count("[usage] input=") == 3
    # The simulator is announced once, not on every answer.
    assert result.err.count("not from Kimi") == 1
    assert "Traceback" not in result.err


def test_interactive_chat_ends_on_eof() -> None:
    result = run_cli("--offline", stdin="")
    assert result.status == 0
    assert result.out == "you> \n"


def test_unknown_command_is_answered_locally(service: FakeKimiServer) -> None:
    stdin = "hello\n/foo bar\n/help\n/usr/bin is a path?\n//reset is my question\n/quit\n"
    result = run_cli("--base-url", service.base_url, "--no-thinking", stdin=stdin)
    assert result.status == 0, result.err
    assert "unknown command /foo; commands: /reset, /exit, /help, /quit" in result.err
    assert "/reset  clear the history" in result.err  # /help's list
    # Only the two questions reached the service; "//" sent one leading "/".
    sent = [request.body["messages"][-1]["content"] for request in service.requests]
    assert sent == ["hello", "/usr/bin is a path?", "/reset is my question"]


def test_help_documents_exit_statuses() -> None:
    text = build_parser().format_help()
    for fragment in ("exit status", "130", "ACEDATACLOUD_API_TOKEN", "--offline", "/reset", "//"):
        assert fragment in text


def test_format_usage() -> None:
    usage = {
        "input_tokens": 1,
        "output_tokens": 5,
        "total_tokens": 6,
        "output_token_details": {"reasoning": 3},
    }
    assert format_usage(usage) == "[usage] input=1 output=5 total=6 (reasoning=3)"  # type: ignore[arg-type]


def test_console_scripts_point_at_the_mains() -> None:
    # What pyproject.toml declares (an install only copies it).
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    scripts = pyproject["project"]["scripts"]
    assert scripts == {
        "kimi-chat": "langchain_kimi.__main__:main",
        "kimi-sim": "langchain_kimi.testing.__main__:main",
    }
    assert metadata.EntryPoint("kimi-chat", scripts["kimi-chat"], "console_scripts").load() is main
    sim_main = metadata.EntryPoint("kimi-sim", scripts["kimi-sim"], "console_scripts").load()
    assert sim_main is simulator_main


# --- what only a real process shows ------------------------------------------------------


def clean_env() -> dict[str, str]:
    """The environment without any real token or base URL."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("ACEDATACLOUD_API_TOKEN", "KIMI_BASE_URL")
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_help_and_version_import_neither_model_nor_langchain_core(option: str) -> None:
    # -X importtime lists every module the real `python -m langchain_kimi` imports.
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "langchain_kimi", option],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: kimi-chat" if option == "--help" else "kimi-chat ")
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "langchain_kimi._cli" in imported  # the listing is the real one
    heavy = sorted(
        name
        for name in imported
        if name.split(".")[0] in ("langchain_core", "pydantic", "requests")
        or name == "langchain_kimi.chat_models"
    )
    assert heavy == []


class Terminal:
    """A child process on a pseudo-terminal; ``expect`` reads until a text appears."""

    def __init__(self, *args: str, sigint_ignored: bool = False) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            # What a shell does to a job it starts in the background (`&` without job
            # control): SIGINT ignored, and the ignoring survives exec.
            signal.signal(signal.SIGINT, signal.SIG_IGN if sigint_ignored else signal.SIG_DFL)
            os.execve(sys.executable, [sys.executable, "-m", "langchain_kimi", *args], clean_env())
        self.transcript = ""

    def expect(self, text: str, timeout: float = TIMEOUT) -> None:
        """Read until ``text`` appears."""
        deadline = time.monotonic() + timeout
        while text not in self.transcript:
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


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["foreground", "background"])
def test_ctrl_c_on_a_terminal_exits_130_without_traceback(sigint_ignored: bool) -> None:
    # Started in the background, the process inherits SIGINT as ignored: the chat
    # must still stop on Ctrl-C (or kill -INT), so it restores the default handler.
    term = Terminal("--offline", "--no-thinking", sigint_ignored=sigint_ignored)
    term.expect("you> ")
    # One real turn first: the prompt, echo and answer go through a real terminal.
    term.send("hello\n")
    term.expect('kimi> [offline] You asked: "hello".')
    term.expect("you> ")
    term.send("\x03")  # Ctrl-C: the terminal sends SIGINT
    assert term.wait() == 130
    assert "interrupted" in term.transcript
    assert "Traceback" not in term.transcript
