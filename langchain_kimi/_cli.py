"""The command line: ``python -m langchain_kimi`` (installed as ``kimi-chat``).

One question, answered as a stream::

    export ACEDATACLOUD_API_TOKEN="your-token"
    kimi-chat "Why is the sky blue? One sentence." --show-reasoning

Without a question, an interactive multi-turn chat (``/reset``, ``/exit``,
``/help``; other ``/words`` are answered here, never sent to the model)::

    kimi-chat --system "You are terse."

``--offline`` answers from :class:`~langchain_kimi.testing.FakeKimiServer`, the
bundled simulator, started in-process: the same code path, short canned answers
marked ``[offline]``, no token and no network. It says so once, on stderr.

The command is a thin user of the public API (``ChatKimi.stream``); nothing here
is needed to use the library. ``--help`` and ``--version`` import neither the
model nor langchain-core, so they answer at once.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from langchain_kimi._version import __version__

if TYPE_CHECKING:
    from langchain_core.messages import AIMessageChunk, BaseMessage
    from langchain_core.messages.ai import UsageMetadata

    from langchain_kimi.chat_models import ChatKimi
    from langchain_kimi.testing import FakeKimiServer, Reply

PROG = "kimi-chat"
TOKEN_ENV = "ACEDATACLOUD_API_TOKEN"

EXIT_OK = 0
EXIT_SERVICE_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

JSON_INSTRUCTION = "Answer with a single JSON object and nothing else."
OFFLINE_MARK = "[offline]"

# The interactive chat's own commands, answered locally (never sent to the model).
CHAT_COMMANDS = {
    "/reset": "clear the history",
    "/exit": "quit (also /quit, or Ctrl-D)",
    "/help": "list these commands",
}
# "/word" at the start of a line is a command; "/usr/bin is what?" is a question.
_COMMAND = re.compile(r"/[A-Za-z][\w-]*(?=\s|$)")

_EPILOG = f"""\
examples:
  {PROG} "Why is the sky blue? One sentence."
  {PROG} "Plan a 3-day trip to Kyoto" --show-reasoning --max-tokens 16384
  {PROG} "What is in this picture?" --image photo.jpg
  {PROG} --system "You are a terse assistant."      (interactive chat)
  {PROG} --offline "hello"                          (no token, no network)

interactive commands: /reset clears the history, /exit (or Ctrl-D) quits, /help;
  an unknown /command is answered locally, never sent; start a message with //
  to send one that begins with /.

environment:
  {TOKEN_ENV}   your Ace Data Cloud token (required unless --offline)
  KIMI_BASE_URL            default for --base-url

exit status:
  0    success
  1    the service answered with an error or could not be reached
       (the message and the trace_id to quote to support are printed)
  2    usage or configuration error: bad arguments, no token,
       an unreadable image, input the model refuses before sending
  130  interrupted (Ctrl-C)
"""


class UsageError(Exception):
    """A problem with the command line or the local setup: exit status 2."""


@dataclass
class _Output:
    """Where questions come from and answers, reasoning and notes go."""

    inp: TextIO
    out: TextIO
    err: TextIO
    show_reasoning: bool = False
    _in_reasoning: bool = field(default=False, init=False)

    def reasoning(self, text: str) -> None:
        if not self.show_reasoning:
            return
        if not self._in_reasoning:
            self._in_reasoning = True
            self.err.write("[reasoning] ")
        self.err.write(text)
        self.err.flush()

    def answer(self, text: str) -> None:
        self._end_reasoning()
        self.out.write(text)
        self.out.flush()

    def _end_reasoning(self) -> None:
        if self._in_reasoning:
            self._in_reasoning = False
            self.err.write("\n")
            self.err.flush()

    def end_answer(self) -> None:
        self._end_reasoning()
        self.out.write("\n")
        self.out.flush()

    def note(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

    def warning(self, message: Warning | str, *_: Any, **__: Any) -> None:
        """``warnings.showwarning`` for the command: one line on stderr."""
        self.note(f"{PROG}: warning: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed so ``--help`` can be tested and documented)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Chat with Kimi (Moonshot AI) through Ace Data Cloud. With a question: "
            "stream one answer. Without: an interactive multi-turn chat."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "prompt", nargs="?", help="the question; '-' reads it from stdin; omit it to chat"
    )
    parser.add_argument("--model", default="kimi-k2.5", help="model name (default: kimi-k2.5)")
    parser.add_argument("--system", metavar="TEXT", help="system prompt")
    parser.add_argument(
        "--no-thinking",
        action="store_true",
        help="turn thinking off (models that can: kimi-k2.5, kimi-k2.6)",
    )
    parser.add_argument(
        "--show-reasoning", action="store_true", help="stream the model's reasoning to stderr"
    )
    parser.add_argument(
        "--max-tokens", type=_positive_int, metavar="N", help="output limit (reasoning counts)"
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="service base URL (default: $KIMI_BASE_URL or https://api.acedata.cloud/kimi)",
    )
    parser.add_argument(
        "--json", action="store_true", help="JSON mode: the answer is one JSON object"
    )
    parser.add_argument(
        "--image", metavar="PATH", help="attach an image (for a model that reads them: kimi-k2.6)"
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="answer from the bundled simulator (FakeKimiServer): no token, no network",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the command line; returns the exit status.

    Usage::

        from langchain_kimi.__main__ import main

        status = main(["--offline", "hello"])   # 0

    ``argv`` defaults to ``sys.argv[1:]``; the streams default to ``sys.stdin``,
    ``sys.stdout`` and ``sys.stderr`` (pass others to run it inside a program or
    a test). Exit statuses: 0 success, 1 service error, 2 usage or configuration
    error, 130 interrupted.
    """
    output = _Output(
        stdin if stdin is not None else sys.stdin,
        stdout if stdout is not None else sys.stdout,
        stderr if stderr is not None else sys.stderr,
    )
    parser = build_parser()
    try:
        # argparse prints --help, --version and its errors on sys.stdout/sys.stderr.
        with contextlib.redirect_stdout(output.out), contextlib.redirect_stderr(output.err):
            args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on bad arguments, 0 on --help
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    output.show_reasoning = args.show_reasoning
    try:
        with _interruptible(), warnings.catch_warnings():
            # The library's warnings (a model name sent as written, a fixed parameter
            # dropped) are notes to the user here, not Python tracebacks-in-miniature.
            warnings.showwarning = output.warning
            return _run(args, output)
    except UsageError as err:
        output.note(f"{PROG}: error: {err}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        output.note("\ninterrupted")
        return EXIT_INTERRUPTED


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C raises ``KeyboardInterrupt`` inside, however the process was started.

    A shell starts a background job (``kimi-chat ... &`` in a script) with
    SIGINT ignored, and Python leaves an ignored SIGINT ignored: Ctrl-C and
    ``kill -INT`` would do nothing. Python's default handler is put in place,
    and the previous one back afterwards (``main`` may run inside a program).
    Off the main thread, where Python cannot install handlers, nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous is not None:  # None: set outside Python, cannot be put back
            signal.signal(signal.SIGINT, previous)


def _run(args: argparse.Namespace, output: _Output) -> int:
    # Imported here so that --help and usage errors answer at once.
    from langchain_core.messages import HumanMessage, SystemMessage

    if args.offline and args.base_url:
        raise UsageError("--offline and --base-url cannot be combined")
    image_block = _read_image(args.image, args.model) if args.image else None
    prompt = args.prompt
    if prompt == "-":
        prompt = output.inp.read()
    if prompt is not None and not prompt.strip():
        raise UsageError("the question is empty")

    system_parts = [part for part in (args.system, JSON_INSTRUCTION if args.json else None) if part]
    history: list[BaseMessage] = []
    if system_parts:
        history.append(SystemMessage("\n\n".join(system_parts)))

    with _model_for(args, output) as model:
        if prompt is not None:
            message = HumanMessage(_user_content(prompt, image_block))
            return _answer(model, [*history, message], output)[0]
        return _chat(model, history, image_block, output)


def _user_content(
    text: str, image_block: dict[str, Any] | None
) -> str | list[str | dict[str, Any]]:
    if image_block is None:
        return text
    return [{"type": "text", "text": text}, image_block]


@contextlib.contextmanager
def _model_for(args: argparse.Namespace, output: _Output) -> Iterator[ChatKimi]:
    """The configured ChatKimi, pointed at the simulator when ``--offline``."""
    from langchain_kimi.chat_models import ChatKimi

    settings: dict[str, Any] = {"model": args.model}
    if args.no_thinking:
        settings["thinking"] = False
    if args.max_tokens is not None:
        settings["max_tokens"] = args.max_tokens
    if args.json:
        settings["model_kwargs"] = {"response_format": {"type": "json_object"}}

    server: FakeKimiServer | None = None
    if args.offline:
        server = _start_offline_server()
        settings.update(base_url=server.base_url, api_key=server.api_key)
        # Said once, here: the answers themselves only carry a short marker.
        output.note(
            f"offline: answers come from the bundled simulator (FakeKimiServer at "
            f"{server.base_url}), not from Kimi; set {TOKEN_ENV} and drop --offline to ask Kimi"
        )
    else:
        if not os.environ.get(TOKEN_ENV, "").strip():
            raise UsageError(
                f"no API token: set {TOKEN_ENV} to your Ace Data Cloud token "
                f'(export {TOKEN_ENV}="..."; get one at https://platform.acedata.cloud), '
                "or try the command with --offline"
            )
        if args.base_url:
            settings["base_url"] = args.base_url
    try:
        try:
            model = ChatKimi(**settings)
        except ValueError as err:  # pydantic's ValidationError is a ValueError
            raise UsageError(_first_line(err)) from None
        with model:
            yield model
    finally:
        if server is not None:
            server.stop()


def _first_line(err: ValueError) -> str:
    """The readable part of a configuration error (pydantic's first message)."""
    from pydantic import ValidationError

    if isinstance(err, ValidationError) and err.errors():
        first = err.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {message}" if where and where not in message else message
    return str(err)


def _read_image(path: str, model: str) -> dict[str, Any]:
    """A LangChain base64 image block for ``path``, or UsageError."""
    from langchain_kimi._content import MEDIA_FORMATS, SNIFF_BYTES, sniff_media_type
    from langchain_kimi._profiles import resolve_model

    rules = resolve_model(model)
    if rules is not None and not rules.image_inputs:
        raise UsageError(f"{model} does not accept images; use --model kimi-k2.6")
    file = Path(path)
    if file.is_dir():
        raise UsageError(f"--image {path}: is a directory, not an image file")
    try:
        with file.open("rb") as stream:
            # Judge the first bytes before reading the rest: a wrong path to a
            # huge file (or to /dev/zero) fails at once.
            head = stream.read(SNIFF_BYTES)
            # The library's own check (the one invoke applies to base64 data).
            mime = sniff_media_type(head)
            if mime is not None and not mime.startswith("image/"):
                mime = None
            data = head + stream.read() if mime is not None else head
    except OSError as err:
        raise UsageError(f"cannot read the image {path}: {err.strerror or err}") from None
    if not data:
        raise UsageError(f"the image {path} is empty")
    if mime is None:
        raise UsageError(f"{path} is not an image: its content is not {MEDIA_FORMATS['image']}")
    return {"type": "image", "base64": base64.b64encode(data).decode("ascii"), "mime_type": mime}


def _answer(
    model: ChatKimi, messages: list[BaseMessage], output: _Output
) -> tuple[int, AIMessageChunk | None]:
    """Stream one answer; returns (exit status, the whole answer or None on error)."""
    from langchain_core.messages.ai import add_ai_message_chunks

    from langchain_kimi.errors import KimiAPIError, KimiError

    chunks: list[AIMessageChunk] = []
    try:
        for chunk in model.stream(messages):
            chunks.append(chunk)
            reasoning = chunk.additional_kwargs.get("reasoning_content")
            if isinstance(reasoning, str) and reasoning:
                output.reasoning(reasoning)
            text = chunk.text
            if text:
                output.answer(text)
    except ValueError as err:  # refused before sending: bad input
        if chunks:
            output.end_answer()
        output.note(f"{PROG}: error: {err}")
        return EXIT_USAGE, None
    except KimiError as err:
        if chunks:
            output.end_answer()
        output.note(f"{PROG}: service error: {err}")
        if isinstance(err, KimiAPIError):
            if err.trace_id:
                output.note(f"trace_id: {err.trace_id} (quote it to Ace Data Cloud support)")
            if err.status_code == 401:
                output.note(f"check {TOKEN_ENV}: the service did not accept the token")
            if err.status_code == 404:
                output.note(_not_found_hint(model))
        return EXIT_SERVICE_ERROR, None
    output.end_answer()
    if not chunks:
        return EXIT_OK, None
    whole = add_ai_message_chunks(chunks[0], *chunks[1:]) if len(chunks) > 1 else chunks[0]
    if whole.usage_metadata:
        output.note(format_usage(whole.usage_metadata))
    return EXIT_OK, whole


def _not_found_hint(model: ChatKimi) -> str:
    """What to try after a 404: the catalogue's spelling of the name, or the settings."""
    from langchain_kimi._profiles import catalogue_spelling, resolve_model

    spelled = catalogue_spelling(model.model)
    if spelled != model.model and resolve_model(model.model) is not None:
        return (
            f"the service does not know the model name {model.model!r}: the catalogue spells "
            f"it {spelled!r} (try --model {spelled})"
        )
    return (
        f"the service does not know the model {model.model!r} (or {model.base_url} is not a "
        "Kimi endpoint): check --model and --base-url"
    )


def format_usage(usage: UsageMetadata) -> str:
    """``[usage] input=12 output=80 total=92 (reasoning=50)``.

    Usage::

        format_usage({"input_tokens": 1, "output_tokens": 2, "total_tokens": 3})
        # '[usage] input=1 output=2 total=3'
    """
    text = (
        f"[usage] input={usage['input_tokens']} output={usage['output_tokens']} "
        f"total={usage['total_tokens']}"
    )
    reasoning = (usage.get("output_token_details") or {}).get("reasoning")
    if reasoning:
        text += f" (reasoning={reasoning})"
    return text


def _chat(
    model: ChatKimi,
    preamble: list[BaseMessage],
    image_block: dict[str, Any] | None,
    output: _Output,
) -> int:
    """The interactive loop; returns the exit status (0 on /exit or end of input)."""
    from langchain_core.messages import AIMessage, HumanMessage

    history = list(preamble)
    output.note(
        f"Chatting with {model.model}. /reset clears the history, /exit quits, "
        "/help lists the commands."
    )
    while True:
        output.out.write("you> ")
        output.out.flush()
        line = output.inp.readline()
        if not line:  # end of input (Ctrl-D)
            output.out.write("\n")
            output.out.flush()
            return EXIT_OK
        text = line.strip()
        if not text:
            continue
        command = _COMMAND.match(text)
        if command is not None:
            name = command.group()
            if name in ("/exit", "/quit"):
                return EXIT_OK
            if name == "/reset":
                history = list(preamble)
                output.note("(history cleared)")
            elif name == "/help":
                output.note(_chat_help())
            else:
                known = ", ".join([*CHAT_COMMANDS, "/quit"])
                output.note(
                    f"unknown command {name}; commands: {known} "
                    f"(start with // to send a message beginning with /)"
                )
            continue
        if text.startswith("//"):
            text = text[1:]
        message = HumanMessage(_user_content(text, image_block))
        image_block = None  # the image goes with the first question only
        output.out.write("kimi> ")
        output.out.flush()
        status, whole = _answer(model, [*history, message], output)
        if status != EXIT_OK or whole is None:
            continue  # the error is printed; the failed turn stays out of the history
        kwargs = {}
        reasoning = whole.additional_kwargs.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            kwargs["reasoning_content"] = reasoning
        history += [message, AIMessage(whole.text or " ", additional_kwargs=kwargs)]


def _chat_help() -> str:
    lines = [f"  {name:<7} {meaning}" for name, meaning in CHAT_COMMANDS.items()]
    lines.append("Anything else is sent to the model; start with // to send a leading /.")
    return "\n".join(lines)


# --- offline ---------------------------------------------------------------------


def _start_offline_server() -> FakeKimiServer:
    from langchain_kimi.testing import FakeKimiServer

    server = FakeKimiServer(api_key="offline-token")
    server.set_responder(offline_reply)
    return server.start()


def offline_reply(body: dict[str, Any]) -> Reply:
    """The simulator's canned answer in ``--offline`` mode.

    One short line: the ``[offline]`` marker (so a copied answer cannot pass
    for Kimi's), the question, and the earlier turns the request carried, so a
    multi-turn session shows that the history is being sent. Streamed in small
    pieces so the output looks like a real stream.
    """
    from langchain_kimi._profiles import model_thinks
    from langchain_kimi.testing import Reply

    messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
    questions = [_wire_text(m.get("content")) for m in messages if m.get("role") == "user"]
    question = questions[-1] if questions else ""
    earlier = questions[:-1]
    images = [
        part
        for m in messages[-1:]
        if isinstance(m.get("content"), list)
        for part in m["content"]
        if isinstance(part, dict) and part.get("type") == "image_url"
    ]
    format_type = (body.get("response_format") or {}).get("type")
    if format_type == "json_object":
        content = json.dumps(
            {
                "source": "offline simulator",
                "question": question,
                "earlier_turns": len(earlier),
                "images": len(images),
            },
            ensure_ascii=False,
        )
    else:
        pieces = [f'{OFFLINE_MARK} You asked: "{_shorten(question)}".']
        if images:
            pieces.append(f"Images received: {len(images)} (not looked at offline).")
        if earlier:
            last = _shorten(earlier[-1])
            pieces.append(f'Earlier turns: {len(earlier)}; the last asked "{last}".')
        content = " ".join(pieces)

    thinking = body.get("thinking")
    thinking_on = isinstance(thinking, dict) and thinking.get("type") == "enabled"
    if not isinstance(thinking, dict):
        thinking_on = model_thinks(str(body.get("model", "")), None)
    reasoning = (
        f"Simulated reasoning: {len(question.split())} word(s), {len(earlier)} earlier turn(s)."
        if thinking_on
        else ""
    )
    return Reply(content=content, reasoning=reasoning, chunk_size=12, chunk_delay=0.005)


def _wire_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _shorten(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
