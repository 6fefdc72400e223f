"""A loopback Kimi server for testing code that calls Kimi, without the network.

:class:`FakeKimiServer` speaks the wire protocol of Ace Data Cloud's
``/kimi/chat/completions`` (JSON and SSE), enforces the service's request rules,
and replays scripted :class:`Reply` values, faults included. It implements the
server side on its own (no code shared with the client), so it can be used to
test any HTTP client, not only ``ChatKimi``.

Usage::

    from langchain_kimi.testing import FakeKimiServer, Reply, ToolCall

    with FakeKimiServer(api_key="test-key") as server:
        server.queue(
            Reply(reasoning="Need the weather.",
                  tool_calls=[ToolCall("weather", {"city": "Oslo"})]),
            Reply(content="It is snowing in Oslo."),
        )
        model = ChatKimi(base_url=server.base_url, api_key=server.api_key)
        ...
        assert server.request_count == 2

Rules it enforces (each broken one answers like the real service; details in
``langchain_kimi.testing._rules``, the models it serves in
``langchain_kimi.testing._models``): the bearer token (401 ``no_token`` /
``invalid_token``); the model name, matched exactly (another name, a vendor
prefix or another case: 404 ``resource_not_found_error``); well-formed messages
(roles, non-empty content, content parts, tool results answering an earlier
call id, arguments as JSON strings); the ``thinking`` field each model takes
(no ``thinking`` at all for kimi-k3, ``thinking.keep`` only ``null``/``"all"``
on kimi-k2.6 and kimi-k2.7-code, none on kimi-k2.5); no images or video for text-only models
and no public image URLs for kimi-k3; the reasoning replay rule for thinking
requests (every assistant tool-call message carries ``reasoning_content``, and
every assistant message for kimi-k3 and kimi-k2.7-code); the fixed sampling
parameters of kimi-k2.5/k2.6/k2.7-code; ``tool_choice`` only ``"auto"``/``"none"``
(kimi-k3: also ``"required"``) and no ``$web_search`` while thinking, and no
forced ``tool_choice`` at all on kimi-k2.6, kimi-k2.7-code and kimi-k2-thinking;
``response_format`` only ``text``/``json_object``, and ``json_schema`` when
playing Moonshot (``FakeKimiServer(flavor="moonshot")``).

When a script is impractical (an agent, a third-party test suite), the
model-like mode answers each request from what it asks, as a model would: it
calls offered tools with arguments that fit their schemas (taken from the
prompt where it spells them out), fills JSON schemas, reasons when the request
thinks, and honours ``stop``, ``max_tokens`` and ``n``::

    with FakeKimiServer(model_like=True) as server:   # or set_responder(ModelLikeResponder())
        ...

With pytest, the ``kimi_server`` and ``kimi_chat_model`` fixtures (from the
plugin this package installs) set this up per test.

From another process (any language), run the simulator on its own with replies
scripted in a JSON or YAML file (format: :mod:`langchain_kimi.testing._script`)::

    python -m langchain_kimi.testing --port 0 --replies replies.yaml   # or: kimi-sim
    # prints the base URL on its first line of stdout; Ctrl-C stops it

The same file scripts an in-process server: ``server.set_responder(load_script(path))``.

Playing Moonshot (``FakeKimiServer(flavor="moonshot")``), it also serves Moonshot's
platform endpoints: files, batches, the balance and the token estimate
(``server.platform``, a :class:`MoonshotPlatform`; see
:mod:`langchain_kimi.testing._platform`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_kimi.testing._model_like import ModelLikeResponder
    from langchain_kimi.testing._platform import Balance, MoonshotPlatform
    from langchain_kimi.testing._replies import Reply, ToolCall
    from langchain_kimi.testing._script import Script, ScriptError, load_script
    from langchain_kimi.testing._server import FakeKimiServer, RecordedRequest

__all__ = [
    "Balance",
    "FakeKimiServer",
    "ModelLikeResponder",
    "MoonshotPlatform",
    "RecordedRequest",
    "Reply",
    "Script",
    "ScriptError",
    "ToolCall",
    "load_script",
]

# Loaded on first use: the pytest plugin imports this package in every test run
# of every project that installs langchain-kimi, and http.server is not free.
_HOMES = {
    "Balance": "_platform",
    "FakeKimiServer": "_server",
    "ModelLikeResponder": "_model_like",
    "MoonshotPlatform": "_platform",
    "RecordedRequest": "_server",
    "Reply": "_replies",
    "ToolCall": "_replies",
    "Script": "_script",
    "ScriptError": "_script",
    "load_script": "_script",
}


# Hidden from type checkers: they see the imports above and still flag misspelt names.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
