"""After ``os.fork()``, parent and child each talk over their own connections.

A pooled keep-alive connection is a socket; a forked child inherits it. If
both processes then used it, each could read the other's answer, silently
(gunicorn with preload, Celery prefork, multiprocessing). Here the parent
warms its pool, forks, and both fire calls at once with their own questions;
the simulator echoes each question, so a crossed answer is a wrong echo.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback
from typing import Any

import pytest

from langchain_kimi import ChatKimi
from langchain_kimi.testing import FakeKimiServer

from .conftest import TOKEN

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
CALLS = 40


def make(server: FakeKimiServer) -> ChatKimi:
    return ChatKimi(
        base_url=server.base_url, api_key=TOKEN, max_retries=0, timeout=20.0, thinking=False
    )


def ask_sync(model: ChatKimi, label: str) -> list[str]:
    wrong = []
    for i in range(CALLS):
        question = f"{label} {i}"
        answer = model.invoke(question).content
        if answer != f"Echo: {question}":
            wrong.append(f"{question!r} got {answer!r}")
    return wrong


async def ask_async(model: ChatKimi, label: str) -> list[str]:
    wrong = []
    for i in range(CALLS):
        question = f"{label} {i}"
        answer = (await model.ainvoke(question)).content
        if answer != f"Echo: {question}":
            wrong.append(f"{question!r} got {answer!r}")
    return wrong


def run_in_child(work: Any) -> tuple[int, int]:
    """Fork; the child runs ``work()`` -> list of problems, reported through a pipe.

    Returns (pid, read end). The child never returns into pytest.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        try:
            report: Any = work()
        except BaseException:
            report = [traceback.format_exc()]
        with os.fdopen(write_end, "w") as pipe:
            json.dump(report, pipe)
        os._exit(0)
    os.close(write_end)
    return pid, read_end


def child_report(pid: int, read_end: int) -> list[str]:
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    report: list[str] = json.loads(text)
    return report


def test_sync_calls_after_fork_get_their_own_answers(server: FakeKimiServer) -> None:
    model = make(server)
    assert model.invoke("warm up").content == "Echo: warm up"  # a pooled connection now
    pid, read_end = run_in_child(lambda: ask_sync(model, "child"))
    parent_wrong = ask_sync(model, "parent")
    child_wrong = child_report(pid, read_end)
    assert parent_wrong == [] and child_wrong == []
    # The parent's pool survived: it still answers on it.
    assert model.invoke("after").content == "Echo: after"
    model.close()
    assert server.request_count == 2 * CALLS + 2


def test_async_calls_after_fork_get_their_own_answers(server: FakeKimiServer) -> None:
    model = make(server)
    loop = asyncio.new_event_loop()
    try:
        # The parent's loop stays open with a pooled connection across the fork.
        warm = loop.run_until_complete(model.ainvoke("warm up"))
        assert warm.content == "Echo: warm up"
        pid, read_end = run_in_child(lambda: asyncio.run(ask_async(model, "child")))
        parent_wrong = loop.run_until_complete(ask_async(model, "parent"))
        child_wrong = child_report(pid, read_end)
        assert parent_wrong == [] and child_wrong == []
        after = loop.run_until_complete(model.ainvoke("after"))
        assert after.content == "Echo: after"
        loop.run_until_complete(model.aclose())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    assert server.request_count == 2 * CALLS + 2


def test_the_child_forgets_the_inherited_pool(server: FakeKimiServer) -> None:
    # White-box companion of the tests above: the child's first call opens a
    # new connection instead of writing into the parent's.
    model = make(server)
    model.invoke("warm up")
    connections_before = server.connections

    def child_work() -> list[str]:
        transport = model._sync_transport
        assert transport is not None
        problems = [] if transport._session is None else ["the child kept the parent's session"]
        model.invoke("from the child")
        return problems

    pid, read_end = run_in_child(child_work)
    assert child_report(pid, read_end) == []
    assert server.connections == connections_before + 1
    model.close()


if sys.platform == "win32":  # pragma: no cover
    pytest.skip("fork is POSIX-only", allow_module_level=True)
