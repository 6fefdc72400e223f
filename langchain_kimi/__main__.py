"""``python -m langchain_kimi``: chat with Kimi from a terminal (also ``kimi-chat``).

Usage::

    python -m langchain_kimi "Why is the sky blue?" --show-reasoning
    python -m langchain_kimi                 # interactive chat; /reset, /exit
    python -m langchain_kimi --offline "hi"  # the bundled simulator, no token

See ``python -m langchain_kimi --help`` for every option and the exit statuses;
the implementation lives in :mod:`langchain_kimi._cli`.
"""

from __future__ import annotations

import sys

from langchain_kimi._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
