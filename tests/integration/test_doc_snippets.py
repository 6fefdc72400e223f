"""Every ```python block of the README and of the manual (docs/) runs, offline, as written.

Where the snippets come from: every ```python block of README.md and of each
Markdown page under docs/.

How each snippet runs:

- against a fresh :class:`~langchain_kimi.testing.FakeKimiServer`, with
  ``ACEDATACLOUD_API_TOKEN`` and ``KIMI_BASE_URL`` set to the server's, so a
  snippet says ``ChatKimi(model="kimi-k2.5")`` with no ``base_url``, exactly as in
  a user's code; LangSmith/LangChain tracing variables are removed (tests talk
  only to 127.0.0.1);
- in a fresh namespace, from a temporary working directory that holds a small
  ``photo.png`` (for the image snippets);
- a snippet with ``await`` at the top level is compiled with top-level await
  allowed and its coroutine run with ``asyncio.run`` (like the asyncio REPL);
- functions the snippet defines whose names start with ``test_`` are then
  called, with the pytest plugin's fixtures (``kimi_server``,
  ``kimi_chat_model``) built against a fresh server (with the options of its
  ``@pytest.mark.kimi_server(...)`` marker, if any), so a documented test runs too.

Conventions in the Markdown, an HTML comment on the line(s) just before a block:

- ``<!-- replies: [...] -->``: a JSON list of :class:`~langchain_kimi.testing.Reply`
  keyword arguments, queued before the snippet runs, e.g.
  ``<!-- replies: [{"content": "{\\"name\\": \\"Ann\\"}"}] -->``. A ``tool_calls``
  entry is a list of :class:`~langchain_kimi.testing.ToolCall` keyword arguments
  (``{"name": "get_weather", "arguments": {"city": "Oslo"}}``). Every queued reply
  must be used by the snippet, or the test fails: the comment and the code must
  agree. Unscripted requests get the simulator's echo.
- ``<!-- skip: reason -->``: the block is not run (use only where unavoidable).
- ``<!-- flavor: moonshot -->``: the simulator plays Moonshot's API (its files,
  batches, balance and token count), at ``KIMI_BASE_URL``; the snippet's model
  says ``api_flavor="moonshot"`` (a loopback URL implies Ace Data Cloud).
"""

from __future__ import annotations

import ast
import asyncio
import base64
import contextlib
import gc
import inspect
import json
import re
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from langchain_kimi import ChatKimi, _profiles, _structured, _tools, chat_models
from langchain_kimi.testing import FakeKimiServer, Reply, ToolCall
from langchain_kimi.testing.pytest_plugin import MARKER, server_options

ROOT = Path(__file__).resolve().parents[2]
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
SERVER_TOKEN = "readme-test-token"
_ONCE_PER_PROCESS = (
    (_tools, "_warned_forced"),
    (_profiles, "_warned_exact_match"),
    (_structured, "_warned_schema_fallback"),
    (chat_models, "_warned_near_miss"),
)
_TRACING_VARIABLES = (
    "LANGSMITH_TRACING",
    "LANGSMITH_TRACING_V2",
    "LANGCHAIN_TRACING",
    "LANGCHAIN_TRACING_V2",
    "LANGSMITH_API_KEY",
    "LANGCHAIN_API_KEY",
)

# A fence opening (```python), then the block up to the closing fence. Optional
# HTML comments right before it carry the directives.
_BLOCK = re.compile(
    r"(?P<comments>(?:<!--.*?-->\s*)*)^```python[ \t]*\n(?P<code>.*?)^```[ \t]*$",
    re.DOTALL | re.MULTILINE,
)
_DIRECTIVE = re.compile(r"<!--\s*(?P<name>replies|skip|flavor)\s*:\s*(?P<value>.*?)\s*-->", re.DOTALL)


@dataclass(frozen=True)
class Snippet:
    path: Path
    line: int
    code: str
    replies: tuple[Reply, ...]
    skip: str | None
    flavor: str = "acedata"

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def source_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def parse_reply(spec: dict[str, Any]) -> Reply:
    fields = dict(spec)
    if "tool_calls" in fields:
        fields["tool_calls"] = [ToolCall(**call) for call in fields["tool_calls"]]
    return Reply(**fields)


def extract_snippets(path: Path) -> list[Snippet]:
    text = path.read_text(encoding="utf-8")
    snippets = []
    for match in _BLOCK.finditer(text):
        replies: tuple[Reply, ...] = ()
        skip = None
        flavor = "acedata"
        for directive in _DIRECTIVE.finditer(match["comments"]):
            if directive["name"] == "skip":
                skip = directive["value"] or "no reason given"
            elif directive["name"] == "flavor":
                flavor = directive["value"]
            else:
                replies = tuple(parse_reply(spec) for spec in json.loads(directive["value"]))
        line = text.count("\n", 0, match.start("code"))  # the line of the opening fence
        snippets.append(Snippet(path, line, match["code"], replies, skip, flavor))
    return snippets


def all_snippets() -> list[Snippet]:
    return [snippet for path in source_files() for snippet in extract_snippets(path)]


SNIPPETS = all_snippets()


def test_there_are_snippets() -> None:
    assert len(SNIPPETS) >= 10, [str(path) for path in source_files()]


def test_directives_parse(tmp_path: Path) -> None:
    sample = tmp_path / "sample.md"
    sample.write_text(
        "text\n"
        '<!-- replies: [{"content": "{\\"name\\": \\"Ann\\"}"}, '
        '{"tool_calls": [{"name": "f", "arguments": {"x": 1}}]}] -->\n'
        "```python\nprint(1)\n```\n"
        "<!-- skip: needs a GPU -->\n```python\nraise SystemExit\n```\n"
        "```bash\necho no\n```\n",
        encoding="utf-8",
    )
    first, second = extract_snippets(sample)
    assert (first.code, first.line, first.skip) == ("print(1)\n", 3, None)
    assert first.replies[0].content == '{"name": "Ann"}'
    assert list(first.replies[1].tool_calls) == [ToolCall("f", {"x": 1})]
    assert (second.code, second.skip, second.replies) == ("raise SystemExit\n", "needs a GPU", ())


@pytest.fixture
def snippet_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeKimiServer]:
    with FakeKimiServer(api_key=SERVER_TOKEN) as server:
        monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", SERVER_TOKEN)
        monkeypatch.setenv("KIMI_BASE_URL", server.base_url)
        for name in _TRACING_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        (tmp_path / "photo.png").write_bytes(PNG)
        monkeypatch.chdir(tmp_path)
        # Each snippet is a user's script, in a process of its own: warnings said
        # "once per process" have not been said yet.
        for module, name in _ONCE_PER_PROCESS:
            monkeypatch.setattr(module, name, set())
        yield server


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[snippet.id for snippet in SNIPPETS])
def test_snippet_runs(
    snippet: Snippet, snippet_server: FakeKimiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    if snippet.skip is not None:
        pytest.skip(snippet.skip)
    with contextlib.ExitStack() as stack:
        if snippet.flavor != "acedata":
            snippet_server = stack.enter_context(
                FakeKimiServer(api_key=SERVER_TOKEN, flavor=snippet.flavor)  # type: ignore[arg-type]
            )
            monkeypatch.setenv("KIMI_BASE_URL", snippet_server.base_url)
        run_snippet_against(snippet, snippet_server)


def run_snippet_against(snippet: Snippet, snippet_server: FakeKimiServer) -> None:
    snippet_server.queue(*snippet.replies)
    # A real module, as a user's script is one: pydantic and dataclasses look
    # classes' modules up in sys.modules to resolve their annotations.
    module = types.ModuleType("doc_snippet")
    module.__file__ = str(snippet.path)
    namespace = module.__dict__
    sys.modules[module.__name__] = module
    try:
        run_snippet(snippet, namespace)
        run_documented_tests(namespace)
    finally:
        close_models(namespace)
        del sys.modules[module.__name__]
    assert snippet_server.pending_replies == 0, (
        f"{snippet.id}: {snippet_server.pending_replies} scripted replies were not used"
    )


def run_snippet(snippet: Snippet, namespace: dict[str, Any]) -> None:
    # Pad with blank lines so tracebacks point at the Markdown line numbers.
    source = "\n" * snippet.line + snippet.code
    code = compile(source, str(snippet.path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if code.co_flags & inspect.CO_COROUTINE:

        async def run() -> None:
            try:
                await eval(code, namespace)
            finally:
                # Inside the loop: async connections cannot be closed once it ends.
                for model in live_models():
                    await model.aclose()

        asyncio.run(run())
    else:
        exec(code, namespace)


def run_documented_tests(namespace: dict[str, Any]) -> None:
    """Call the snippet's ``test_*`` functions with the pytest plugin's fixtures."""
    tests = [
        value
        for name, value in namespace.items()
        if name.startswith("test_") and inspect.isfunction(value)
    ]
    for test in tests:
        marker = next((m for m in getattr(test, "pytestmark", []) if m.name == MARKER), None)
        with FakeKimiServer(**server_options(marker)) as server:
            fixtures: dict[str, Any] = {
                "kimi_server": server,
                "kimi_chat_model": chat_model_factory(server),
            }
            params = inspect.signature(test).parameters
            missing = [name for name in params if name not in fixtures]
            assert not missing, f"{test.__name__} needs unknown fixtures {missing}"
            test(**{name: fixtures[name] for name in params})


def chat_model_factory(server: FakeKimiServer) -> Callable[..., ChatKimi]:
    def make(**kwargs: Any) -> ChatKimi:
        settings: dict[str, Any] = {
            "base_url": server.base_url,
            "api_key": server.api_key,
            "max_retries": 0,
        }
        settings.update(kwargs)
        return ChatKimi(**settings)

    return make


def live_models() -> list[ChatKimi]:
    """Every ChatKimi alive, including those a snippet hid inside an agent or chain."""
    return [obj for obj in gc.get_objects() if isinstance(obj, ChatKimi)]


def close_models(namespace: dict[str, Any]) -> None:
    for model in live_models():
        model.close()


def test_snippets_need_no_base_url() -> None:
    """Snippets read the endpoint from the environment, as users' code does."""
    for snippet in SNIPPETS:
        if "ChatKimi(" in snippet.code and "FakeKimiServer" not in snippet.code:
            assert "127.0.0.1" not in snippet.code, snippet.id
