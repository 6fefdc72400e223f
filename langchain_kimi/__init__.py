"""LangChain integration for Kimi (Moonshot AI) models served by Ace Data Cloud.

Usage::

    from langchain_kimi import ChatKimi

    model = ChatKimi(model="kimi-k2.5")
    print(model.invoke("Hello").content)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_kimi._version import __version__
from langchain_kimi.errors import (
    KimiAPIError,
    KimiAuthenticationError,
    KimiBadRequestError,
    KimiConnectionError,
    KimiError,
    KimiNotFoundError,
    KimiPermissionError,
    KimiRateLimitError,
    KimiResponseError,
    KimiServerError,
    KimiStreamInterruptedError,
    KimiStreamTimeoutError,
    KimiTimeoutError,
    KimiToolChoiceError,
)

if TYPE_CHECKING:
    from langchain_kimi.chat_models import ChatKimi

__all__ = [
    "ChatKimi",
    "KimiAPIError",
    "KimiAuthenticationError",
    "KimiBadRequestError",
    "KimiConnectionError",
    "KimiError",
    "KimiNotFoundError",
    "KimiPermissionError",
    "KimiRateLimitError",
    "KimiResponseError",
    "KimiServerError",
    "KimiStreamInterruptedError",
    "KimiStreamTimeoutError",
    "KimiTimeoutError",
    "KimiToolChoiceError",
    "__version__",
]


# ChatKimi is loaded on first use: it pulls in langchain-core (most of a second),
# which `kimi-chat --help`, the simulator and the pytest plugin do not need.
# Hidden from type checkers, which see the import above and so still flag
# misspelt names (a module __getattr__ would make every attribute Any).
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name == "ChatKimi":
            from langchain_kimi.chat_models import ChatKimi

            globals()["ChatKimi"] = ChatKimi
            return ChatKimi
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
