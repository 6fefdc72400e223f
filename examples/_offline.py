"""The examples' ``--offline`` plumbing: shared by the scripts here, not part of langchain_kimi.

Offline, the bundled ``FakeKimiServer`` plays Kimi with scripted answers, and
``ChatKimi`` finds it through the same environment variables it reads for the
real service (``ACEDATACLOUD_API_TOKEN``, ``KIMI_BASE_URL``). So the code inside
``with offline_if(...)`` is the same whether it talks to Kimi or to the simulator.

Copying an example into your own project? Drop ``offline_if`` and use the code
inside the ``with`` block: with a real token you need none of this.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from langchain_kimi.testing import FakeKimiServer, Reply

Responder = Callable[[dict[str, Any]], Reply | None]
"""Computes the simulator's reply from the request body Kimi would receive."""

TOKEN_ENV = "ACEDATACLOUD_API_TOKEN"


def start_offline(
    *, responder: Responder | None = None, replies: Iterable[Reply] = (), banner_end: str = "\n"
) -> FakeKimiServer:
    """Start the simulator, script its answers, and point ``ChatKimi`` at it.

    ``responder`` computes each answer from the request; ``replies`` are
    answered in order instead. The caller stops the returned server.
    """
    server = FakeKimiServer(api_key="offline-example").start()
    if responder is not None:
        server.set_responder(responder)
    server.queue(*replies)
    os.environ[TOKEN_ENV] = server.api_key or ""
    os.environ["KIMI_BASE_URL"] = server.base_url
    banner = f"(offline: answers come from FakeKimiServer at {server.base_url}, not Kimi)"
    print(banner, end=banner_end)
    return server


@contextmanager
def offline_if(
    enabled: bool,
    *,
    responder: Responder | None = None,
    replies: Iterable[Reply] = (),
    banner_end: str = "\n",
) -> Iterator[FakeKimiServer | None]:
    """With ``enabled`` (``--offline``), run the block against a started simulator.

    Yields the server, or ``None`` when not enabled (then this does nothing).
    """
    if not enabled:
        yield None
        return
    server = start_offline(responder=responder, replies=replies, banner_end=banner_end)
    try:
        yield server
    finally:
        server.stop()


def token_missing() -> bool:
    """True, after printing what to do, when there is no token to call Kimi with."""
    if os.environ.get(TOKEN_ENV):
        return False
    print(f"Set {TOKEN_ENV}, or run with --offline.", file=sys.stderr)
    return True
