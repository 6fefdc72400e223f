"""Moonshot's platform endpoints beyond chat, simulated: files, batches, balance, token counts.

:class:`~langchain_kimi.testing.FakeKimiServer` serves them when it plays Moonshot
(``FakeKimiServer(flavor="moonshot")``, or ``kimi-sim --flavor moonshot``),
under its base URL's path (``/v1``); playing Ace Data Cloud, which documents
none of them, it answers 404 as for any other path. Every request is recorded
in ``server.requests`` and checked for the bearer token like chat requests.

- Files (``/files``...): :mod:`langchain_kimi.testing._files`.
- Batches (``/batches``...): :mod:`langchain_kimi.testing._batches`.
- ``GET /v1/users/me/balance``: ``{"code": 0, "data": {"available_balance",
  "voucher_balance", "cash_balance"}, "scode": "0x0", "status": true}`` from
  :attr:`MoonshotPlatform.balance`. When ``available_balance <= 0``, chat
  completions (and batch lines) answer 429 ``exceeded_current_quota_error``.
- ``POST /v1/tokenizers/estimate-token-count`` ``{"model", "messages"}``:
  ``{"data": {"total_tokens": N}}``, where N is what the simulator reports as
  ``usage.prompt_tokens`` for the same messages: the characters of their text
  (string content, and the ``text`` of content parts; images and video count
  nothing) divided by four, rounded up, at least 1. Deterministic, and the
  same count a chat request then reports. A bad request (no model, a model
  the service does not serve, no messages, a message with an unknown role)
  answers ``{"error": {"message", "type"}}``.

Usage::

    from langchain_kimi.testing import Balance, FakeKimiServer

    with FakeKimiServer(flavor="moonshot") as server:
        server.platform.balance = Balance(available=0.0, voucher=0.0, cash=0.0)
        server.platform.batches.progress = "manual"
        ...
        server.platform.advance_batches()        # every unfinished batch, one step
        server.platform.expire_batch(batch_id)
        server.platform.reset()                  # forget files and batches
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from langchain_kimi.testing._batches import BatchStore
from langchain_kimi.testing._files import FileStore, moonshot_error
from langchain_kimi.testing._models import not_found_message, served_model
from langchain_kimi.testing._render import _prompt_chars, _tokens
from langchain_kimi.testing._replies import Reply

_ROLES = frozenset({"system", "user", "assistant", "tool"})


@dataclass(frozen=True)
class Balance:
    """An account's balance in USD, as ``GET /v1/users/me/balance`` reports it.

    The default is the reference's example. ``cash`` can be negative.
    """

    available: float = 49.58894
    voucher: float = 46.58893
    cash: float = 3.00001


class MoonshotPlatform:
    """The platform endpoints of one simulated Moonshot account (``server.platform``).

    ``files`` (a ``FileStore``) and ``batches`` (a ``BatchStore``) hold the state
    and the settings tests change; ``balance`` is settable. Requests are answered
    under one lock.

    Usage::

        with FakeKimiServer(flavor="moonshot") as server:
            platform = server.platform
            platform.files.max_file_bytes = 1024        # default 100 MB
            platform.files.max_files = 3                # default 1,000
            platform.files.content_form = "json"        # default "text"
            platform.batches.progress = "manual"        # "instant" (default), "per_retrieve"
            platform.batches.lines_per_step = 10        # default None: all lines in one step
            platform.batches.output_order = "shuffled"  # "input" (default), "reversed"
            platform.batches.output_seed = 7
            platform.balance = Balance(available=0.0, voucher=0.0, cash=0.0)
            ...
            platform.advance_batches()                  # one step for every unfinished batch
            platform.expire_batch(batch_id)
    """

    def __init__(self, prefix: str, chat_answer: Callable[[dict[str, Any]], Reply]) -> None:
        self.balance = Balance()
        self.files = FileStore()
        self.batches = BatchStore(self.files, chat_answer)
        self._prefix = prefix
        self._lock = threading.RLock()

    def reset(self) -> None:
        """Forget every file and batch (settings and balance stay)."""
        with self._lock:
            self.files._files.clear()
            self.batches._batches.clear()

    def advance_batches(self, steps: int = 1) -> None:
        """Move every unfinished batch ``steps`` steps on (for ``progress="manual"``)."""
        with self._lock:
            self.batches.advance(steps)

    def expire_batch(self, batch_id: str) -> None:
        """End an unfinished batch as ``expired``, keeping the output of the lines that ran."""
        with self._lock:
            self.batches.expire(batch_id)

    def quota_refusal(self) -> Reply | None:
        """The 429 for an account whose available balance is used up, or None."""
        if self.balance.available > 0:
            return None
        return moonshot_error(
            429,
            "Your account's available balance is used up (available_balance "
            f"{self.balance.available:g}): recharge to continue",
            "exceeded_current_quota_error",
        )

    def handler(
        self, method: str, route: str, query: str, headers: Mapping[str, str], raw: bytes, body: Any
    ) -> Callable[[], Reply] | None:
        """What answers this request, or None when ``route`` is no platform path (a 404 then).

        The server checks the bearer token before calling it: a refused request
        changes nothing.
        """
        if not route.startswith(self._prefix + "/"):
            return None
        parts = route[len(self._prefix) + 1 :].split("/")
        handlers = self._handlers(parts, headers, raw, body, query)
        if handlers is None:
            return None
        handler = handlers.get(method)
        if handler is None:
            allowed = ", ".join(sorted(handlers))
            return lambda: moonshot_error(405, f"{method} is not allowed here: use {allowed}")

        def locked() -> Reply:
            with self._lock:
                return handler()

        return locked

    def _handlers(
        self, parts: list[str], headers: Mapping[str, str], raw: bytes, body: Any, query: str
    ) -> dict[str, Callable[[], Reply]] | None:
        files, batches = self.files, self.batches
        match parts:
            case ["files"]:
                content_type = headers.get("content-type", "")
                return {"GET": files.listing, "POST": lambda: files.upload(content_type, raw)}
            case ["files", file_id] if file_id:
                return {
                    "GET": lambda: files.retrieve(file_id),
                    "DELETE": lambda: files.delete(file_id),
                }
            case ["files", file_id, "content"] if file_id:
                return {"GET": lambda: files.content(file_id)}
            case ["batches"]:
                return {
                    "GET": lambda: batches.listing(parse_qs(query)),
                    "POST": lambda: batches.create(body),
                }
            case ["batches", batch_id] if batch_id:
                return {"GET": lambda: batches.retrieve(batch_id)}
            case ["batches", batch_id, "cancel"] if batch_id:
                return {"POST": lambda: batches.cancel(batch_id)}
            case ["users", "me", "balance"]:
                return {"GET": self._balance}
            case ["tokenizers", "estimate-token-count"]:
                return {"POST": lambda: estimate_token_count(body)}
        return None

    def _balance(self) -> Reply:
        balance = self.balance
        return Reply(
            body={
                "code": 0,
                "data": {
                    "available_balance": balance.available,
                    "voucher_balance": balance.voucher,
                    "cash_balance": balance.cash,
                },
                "scode": "0x0",
                "status": True,
            }
        )


def estimate_token_count(body: Any) -> Reply:
    """``POST /tokenizers/estimate-token-count``: the simulator's prompt token count."""
    if not isinstance(body, Mapping):
        return moonshot_error(400, "the request body must be a JSON object")
    name = body.get("model")
    if not isinstance(name, str) or not name:
        return moonshot_error(400, "model is required and must be a non-empty string")
    if served_model(name) is None:
        return moonshot_error(404, not_found_message(name), "resource_not_found_error")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return moonshot_error(400, "messages is required and must be a non-empty list")
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, Mapping) else None
        if role not in _ROLES:
            return moonshot_error(
                400, f"messages[{index}].role {role!r} is not one of system, user, assistant, tool"
            )
    return Reply(body={"data": {"total_tokens": max(1, _tokens(_prompt_chars(body)))}})
