"""Quickstart: ask Kimi a question, stream an answer, read the token usage.

Run it::

    python examples/quickstart.py --offline           # bundled simulator: no token, no network
    ACEDATACLOUD_API_TOKEN=... python examples/quickstart.py
    ACEDATACLOUD_API_TOKEN=... python examples/quickstart.py "Why do cats purr?"

Offline, ``FakeKimiServer`` plays Kimi with scripted answers; everything after
``start_offline()`` is the same code either way.
"""

from __future__ import annotations

import argparse
import os
import sys

from langchain_kimi import ChatKimi, KimiError
from langchain_kimi.testing import FakeKimiServer, Reply

DEFAULT_QUESTION = "Why is the sky blue? One sentence."


def start_offline(question: str) -> FakeKimiServer:
    """Start the simulator and point ChatKimi at it through the environment."""
    server = FakeKimiServer(api_key="offline-example").start()
    server.queue(
        Reply(
            reasoning="Rayleigh scattering: shorter wavelengths scatter more.",
            content="Air molecules scatter blue sunlight more than red, so the sky looks blue.",
        ),
        Reply(
            reasoning="A haiku has three lines of 5, 7 and 5 syllables.",
            content="Blue light bends and scatters\nacross the wide morning air\n"
            "the whole sky answers",
            chunk_delay=0.01,
        ),
    )
    os.environ["ACEDATACLOUD_API_TOKEN"] = server.api_key or ""
    os.environ["KIMI_BASE_URL"] = server.base_url
    print(f"(offline: answers come from FakeKimiServer at {server.base_url}, not Kimi)\n")
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    parser.add_argument("--offline", action="store_true", help="use the bundled simulator")
    args = parser.parse_args()

    server = start_offline(args.question) if args.offline else None
    if not os.environ.get("ACEDATACLOUD_API_TOKEN"):
        print("Set ACEDATACLOUD_API_TOKEN, or run with --offline.", file=sys.stderr)
        return 2
    try:
        with ChatKimi(model="kimi-k2.5", max_tokens=16384) as model:
            # 1. invoke: one answer, with the reasoning that led to it.
            message = model.invoke(args.question)
            print("reasoning:", message.additional_kwargs.get("reasoning_content"))
            print("answer:   ", message.content)
            print("usage:    ", message.usage_metadata)

            # 2. stream: print the answer as it arrives.
            print("\nstreamed haiku:")
            for chunk in model.stream("Write a haiku about the blue sky."):
                print(chunk.content, end="", flush=True)
            print()
    except KimiError as err:
        print(f"Kimi error: {err}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
