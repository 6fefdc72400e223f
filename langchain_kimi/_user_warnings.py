"""Warnings that point at the user's own line, not into LangChain or Pydantic.

A warning is read where ``warnings`` says it happened. ``ChatKimi`` warns from
inside a Pydantic validator (at construction) or from inside LangChain's
``invoke``/``stream`` machinery (at call time), a varying number of frames below
the user's code, so a fixed ``stacklevel`` would point at library code. This
walks up to the first frame that belongs to none of the libraries in between.

Usage::

    warn_at_user_code("kimi-k2.5 fixes temperature at 1.0 ...")
"""

from __future__ import annotations

import sys
import warnings

# Modules between the user's code and ours: this package, LangChain (core,
# the langchain package's agents, LangGraph) and Pydantic.
_LIBRARY_MODULES = ("langchain_kimi", "langchain_core", "langchain", "langgraph", "pydantic")


def _is_library(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in _LIBRARY_MODULES)


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning issued by our caller point at user code.

    Counted from the function that calls :func:`warnings.warn` (stacklevel 1).
    When no user frame exists (a worker thread of ``batch``), the outermost
    frame is used.
    """
    frame = sys._getframe(2)  # the caller of the function that called us
    level = 2
    while frame.f_back is not None and _is_library(str(frame.f_globals.get("__name__", ""))):
        frame = frame.f_back
        level += 1
    return level


def warn_at_user_code(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` with the stacklevel of the first frame outside the libraries."""
    warnings.warn(message, category, stacklevel=user_stacklevel())
