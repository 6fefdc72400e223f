"""Quickstart: ask Kimi a question, stream an answer, read the token usage.

Run it::

    python examples/quickstart.py --offline           # bundled simulator: no token, no network
    ACEDATACLOUD_API_TOKEN=... python examples/quickstart.py
    ACEDATACLOUD_API_TOKEN=... python examples/quickstart.py "Why do cats purr?"

Offline, ``FakeKimiServer`` plays Kimi with scripted answers; everything inside
``with offline_if(...)`` is the same code either way.
"""

from __future__ import annotations

import argparse
import sys

from _offline import offline_if, token_missing  # --offline plumbing: see _offline.py

from langchain_kimi import ChatKimi, KimiError
from langchain_kimi.testing import Reply

DEFAULT_QUESTION = "Why is the sky blue? One sentence."

# Offline, the simulator answers the two requests below with these, in order.
OFFLINE_REPLIES = [
    Reply(
        reasoning="Rayleigh scattering: shorter wavelengths scatter more.",
        content="Air molecules scatter blue sunlight more than red, so the sky looks blue.",
    ),
    Reply(
        reasoning="A haiku has three lines of 5, 7 and 5 syllables.",
        content="Blue light bends and scatters\nacross the wide morning air\nthe whole sky answers",
        chunk_delay=0.01,
    ),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    parser.add_argument("--offline", action="store_true", help="use the bundled simulator")
    args = parser.parse_args()

    with offline_if(args.offline, replies=OFFLINE_REPLIES, banner_end="\n\n"):
        if token_missing():
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
