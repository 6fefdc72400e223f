"""``python -m langchain_kimi.testing`` (also ``kimi-sim``): the simulator as a server of its own.

Serves :class:`~langchain_kimi.testing.FakeKimiServer` until interrupted, so
any process (a second Python program, ``curl``, a test in another language)
can talk to a Kimi that answers from a script::

    $ python -m langchain_kimi.testing --port 0 --replies tests/fixtures/sim/tool_call.yaml
    http://127.0.0.1:41235/kimi                       <- stdout, first line: the base URL
    kimi-sim: serving ... (Ctrl-C to stop)            <- stderr: for humans

    $ ACEDATACLOUD_API_TOKEN=any KIMI_BASE_URL=http://127.0.0.1:41235/kimi python my_agent.py

The first line of stdout is the base URL, flushed at once, so a parent process
can start it with ``--port 0`` (a free port) and read where it listens. Every
other line goes to stderr. Without ``--api-key`` any bearer token (or none) is
accepted; with it, only that one. Without ``--replies`` every request gets the
simulator's echo, or with ``--model-like`` an answer that follows the request as
a model's would (offered tools called, JSON schemas filled: see
:mod:`langchain_kimi.testing._model_like`). The script format and which entry
answers which request: :mod:`langchain_kimi.testing._script`.

Ctrl-C (SIGINT) and SIGTERM stop it cleanly with status 0. Status 2: bad
arguments or a bad script (the message names the entry and field); status 1:
it could not listen (address in use, no permission).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from langchain_kimi._version import __version__

if TYPE_CHECKING:
    from langchain_kimi.testing._model_like import ModelLikeResponder
    from langchain_kimi.testing._replies import Reply
    from langchain_kimi.testing._script import Script
    from langchain_kimi.testing._server import FakeKimiServer

PROG = "kimi-sim"
EXIT_OK = 0
EXIT_CANNOT_SERVE = 1
EXIT_USAGE = 2

_EPILOG = f"""\
examples:
  {PROG} --port 8000
  {PROG} --port 0 --replies tests/fixtures/sim/tool_call.yaml --exhausted error
  {PROG} --api-key test-key --latency 0.2 --path-prefix /v1
  {PROG} --model-like          (answers like a model: calls tools, fills JSON schemas)

  then: KIMI_BASE_URL=<the printed URL> ACEDATACLOUD_API_TOKEN=<any> python your_app.py

script file (--replies): a JSON or YAML list of replies (or {{"replies": [...]}}):
  - reasoning: Need the weather.
    tool_calls: [{{name: get_weather, arguments: {{city: Oslo}}}}]
  - content: It is sunny in Oslo.
  - match: refund
    error: {{status: 429, code: too_many_requests, message: slow down}}
  Fields: those of langchain_kimi.testing.Reply, plus error, match, match_regex.
  A request takes the first unused entry whose match fits its last user message,
  else the first unused entry without a match, else --exhausted decides.
  YAML needs PyYAML (pip install pyyaml).

exit status:
  0  stopped with Ctrl-C or SIGTERM
  1  could not listen on the host and port
  2  bad arguments or a bad script file
"""


class _Terminated(Exception):
    """Raised in the main thread by the SIGTERM handler, to stop like Ctrl-C does."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed so ``--help`` can be tested and documented)."""
    from langchain_kimi.testing._script import EXHAUSTED_CHOICES

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Serve the Kimi simulator (FakeKimiServer) until interrupted. The first line "
            "of stdout is its base URL."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=_port, default=0, help="TCP port; 0 (default) picks a free one"
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help="the only bearer token accepted (default: accept any token, or none)",
    )
    parser.add_argument(
        "--latency",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="wait before every answer (default: 0)",
    )
    parser.add_argument(
        "--no-rules",
        action="store_true",
        help="do not check requests against the service's rules (auth is still checked)",
    )
    parser.add_argument(
        "--flavor",
        choices=("acedata", "moonshot"),
        default="acedata",
        help="which service to play: acedata (default) or moonshot (its error bodies, "
        "json_schema response formats, /v1 path, and its files, batches, balance and "
        "token-estimate endpoints)",
    )
    parser.add_argument(
        "--path-prefix",
        metavar="PATH",
        help="the base URL's path (default: /kimi, or /v1 with --flavor moonshot)",
    )
    parser.add_argument("--replies", metavar="FILE", help="answer from this JSON or YAML script")
    parser.add_argument(
        "--model-like",
        action="store_true",
        help="answer like a model instead of echoing (call offered tools, fill JSON schemas, "
        "honour stop/max_tokens/n); after a script's entries too",
    )
    parser.add_argument(
        "--exhausted",
        choices=EXHAUSTED_CHOICES,
        default="echo",
        help="when no script entry is left: echo (default) or a 500 error",
    )
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="print one line per request on stderr: method, path, model, status, and the "
        "rule that refused it",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Serve until interrupted; returns the exit status.

    ``stop``: serve until this event is set instead of until Ctrl-C/SIGTERM
    (no signal handlers are installed then), to run the simulator in a thread.

    Usage::

        from langchain_kimi.testing.__main__ import main

        main(["--port", "8000", "--replies", "replies.json"])   # until Ctrl-C
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: 0 after --help/--version, 2 on bad arguments
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    if args.model_like and args.exhausted == "error":
        print(
            f"{PROG}: error: --model-like answers where the echo would; with --exhausted error "
            "nothing would reach it: choose one",
            file=err,
            flush=True,
        )
        return EXIT_USAGE

    # Imported here so that --help answers at once.
    from langchain_kimi.testing._script import ScriptError, load_script

    script: Script | None = None
    if args.replies is not None:
        try:
            script = load_script(args.replies, exhausted=args.exhausted)
        except ScriptError as problem:
            print(f"{PROG}: error: {problem}", file=err, flush=True)
            return EXIT_USAGE
    server = build_server(args, script)
    try:
        server.start()
    except OSError as problem:
        reason = problem.strerror or problem
        print(f"{PROG}: error: cannot listen on {args.host}:{args.port}: {reason}", file=err)
        return EXIT_CANNOT_SERVE
    previous = _install_signal_handlers() if stop is None else None
    try:
        try:
            # The URL first and alone on its line, flushed: a parent process reads
            # it, and may signal us as soon as it has.
            print(server.base_url, file=out, flush=True)
            print(_describe(server, args, script), file=err, flush=True)
            (stop if stop is not None else threading.Event()).wait()
        except (KeyboardInterrupt, _Terminated):
            if previous is not None:
                # A second Ctrl-C while the server stops would only print a traceback.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
    finally:
        server.stop()
        if previous is not None:
            # None: a handler not set from Python, which cannot be put back.
            if previous[0] is not None:
                signal.signal(signal.SIGINT, previous[0])
            if previous[1] is not None:
                signal.signal(signal.SIGTERM, previous[1])
    used = f", {len(script.used)} of {len(script.entries)} script entries used" if script else ""
    print(f"{PROG}: stopped after {server.request_count} request(s){used}", file=err, flush=True)
    return EXIT_OK


def build_server(args: argparse.Namespace, script: Script | None) -> FakeKimiServer:
    """The (unstarted) server the parsed options describe, answering from ``script``."""
    from langchain_kimi.testing._model_like import ModelLikeResponder
    from langchain_kimi.testing._script import Script
    from langchain_kimi.testing._server import FakeKimiServer

    server = FakeKimiServer(
        api_key=args.api_key,
        port=args.port,
        latency=args.latency,
        enforce_rules=not args.no_rules,
        flavor=args.flavor,
        path_prefix=args.path_prefix,
        host=args.host,
        model_like=args.model_like,
        log=sys.stderr if args.verbose else None,
    )
    if script is not None and args.model_like:
        server.set_responder(_script_then_model_like(script, ModelLikeResponder()))
    elif script is not None:
        server.set_responder(script)
    elif args.exhausted == "error":
        # No script at all is a script with nothing left.
        server.set_responder(Script([], exhausted="error"))
    return server


def _script_then_model_like(
    script: Script, model_like: ModelLikeResponder
) -> Callable[[dict[str, Any]], Reply]:
    """The script's entries first; the model-like answer where the script would echo."""

    def respond(body: dict[str, Any]) -> Reply:
        scripted = script(body)
        return scripted if scripted is not None else model_like(body)

    return respond


_Handler = Callable[[int, FrameType | None], Any] | int | None


def _install_signal_handlers() -> tuple[_Handler, _Handler] | None:
    """Ctrl-C and SIGTERM stop the server; returns the handlers to restore.

    SIGINT gets Python's default handler back: a shell starts a background job
    (``kimi-sim &`` in a script) with SIGINT ignored, and Python leaves an
    ignored SIGINT ignored, so ``kill -INT`` would do nothing. None off the
    main thread, where Python cannot install handlers (pass ``stop``).
    """
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    return (
        signal.signal(signal.SIGINT, signal.default_int_handler),
        signal.signal(signal.SIGTERM, on_sigterm),
    )


def _describe(server: FakeKimiServer, args: argparse.Namespace, script: Script | None) -> str:
    token = (
        f"only the token {args.api_key!r} (Authorization: Bearer {args.api_key})"
        if args.api_key is not None
        else "any token, or none"
    )
    rules = "off (--no-rules)" if args.no_rules else "enforced"
    if script is not None:
        fallback = "model-like answers" if args.model_like else "the echo"
        then = f"then {fallback}" if args.exhausted == "echo" else "then a 500 error"
        replies = f"{len(script.entries)} scripted replies from {args.replies}, {then}"
    else:
        replies = "the echo" if args.exhausted == "echo" else "a 500 error (no script)"
        if args.model_like:
            replies = "model-like answers (tools called, JSON schemas filled)"
    return (
        f"{PROG}: the Kimi simulator (FakeKimiServer) is serving at {server.base_url}"
        f" (POST {server.base_url}/chat/completions)\n"
        f"  accepts: {token}; service rules: {rules}; latency: {args.latency:g} s\n"
        f"  answers: {replies}\n"
        f"  Ctrl-C or SIGTERM stops it"
    )


if __name__ == "__main__":
    sys.exit(main())
