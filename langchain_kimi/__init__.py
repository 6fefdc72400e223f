"""LangChain integration for Kimi (Moonshot AI) models served by Ace Data Cloud.

Usage::

    from langchain_kimi import ChatKimi

    model = ChatKimi(model="kimi-k2.5")
    print(model.invoke("Hello").content)
"""

from langchain_kimi._version import __version__
from langchain_kimi.chat_models import ChatKimi
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
)

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
    "__version__",
]
