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
    from langchain_kimi._platform import KimiBalance
    from langchain_kimi.batch import KimiBatchError, KimiBatchJob, KimiBatchStatus
    from langchain_kimi.chat_models import ChatKimi
    from langchain_kimi.document_loaders import KimiFileLoader
    from langchain_kimi.files import KimiFile

__all__ = [
    "ChatKimi",
    "KimiAPIError",
    "KimiAuthenticationError",
    "KimiBadRequestError",
    "KimiBalance",
    "KimiBatchError",
    "KimiBatchJob",
    "KimiBatchStatus",
    "KimiConnectionError",
    "KimiError",
    "KimiFile",
    "KimiFileLoader",
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

    # Public names loaded on first use, and the module each lives in.
    _LAZY = {
        "ChatKimi": "langchain_kimi.chat_models",
        "KimiBalance": "langchain_kimi._platform",
        "KimiBatchError": "langchain_kimi.batch",
        "KimiBatchJob": "langchain_kimi.batch",
        "KimiBatchStatus": "langchain_kimi.batch",
        "KimiFile": "langchain_kimi.files",
        "KimiFileLoader": "langchain_kimi.document_loaders",
    }

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is not None:
            import importlib

            value = getattr(importlib.import_module(module), name)
            globals()[name] = value
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
