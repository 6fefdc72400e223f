"""A multi-turn chat that streams Kimi's reasoning, then its answer.

The history is a plain list of messages: each ``AIMessage`` goes back as it
came, reasoning included. Type your messages, or pass them with ``--say``.

Run it::

    python examples/streaming_chat.py --offline     # a scripted demo conversation
    ACEDATACLOUD_API_TOKEN=... python examples/streaming_chat.py   # chat; empty line quits
    ACEDATACLOUD_API_TOKEN=... python examples/streaming_chat.py --say "Hi, I'm Ann" --say "Hm?"
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

from _offline import offline_if, token_missing  # --offline plumbing: see _offline.py
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage, SystemMessage

from langchain_kimi import ChatKimi, KimiError
from langchain_kimi.testing import Reply

DEMO = ["Hi! I'm Ann and I like climbing.", "Suggest a weekend plan for me. Remember my name?"]


def offline_answer(body: dict[str, Any]) -> Reply:
    """The simulator's stand-in for Kimi: it answers from the history it is sent."""
    users = [m["content"] for m in body["messages"] if m["role"] == "user"]
    if len(users) == 1:
        return Reply(
            reasoning="The user introduces herself as Ann, a climber.",
            content="Nice to meet you, Ann! Climbing is a great way to spend a day outside.",
            chunk_delay=0.005,
        )
    return Reply(
        reasoning=f"Earlier the user said: {users[0]!r}. Plan around climbing.",
        content="Of course, Ann: Saturday at the crag, Sunday a slow hike and a long lunch.",
        chunk_delay=0.005,
    )


def user_turns(scripted: list[str]) -> Iterator[str]:
    if scripted:
        for text in scripted:
            print(f"\nyou> {text}")
            yield text
        return
    while True:
        try:
            text = input("\nyou> ").strip()
        except EOFError:
            return
        if not text:
            return
        yield text


def stream_turn(model: ChatKimi, history: list[BaseMessage]) -> AIMessageChunk:
    """Stream one answer: reasoning dimmed, then the answer; return the whole message."""
    full: AIMessageChunk | None = None
    in_reasoning = answer_started = False
    for chunk in model.stream(history):
        full = chunk if full is None else full + chunk
        reasoning = chunk.additional_kwargs.get("reasoning_content")
        if reasoning:
            if not in_reasoning:
                print("(thinking) ", end="")
                in_reasoning = True
            print(reasoning, end="", flush=True)
        if chunk.content:
            if in_reasoning:
                print()
                in_reasoning = False
            if not answer_started:
                print("kimi> ", end="")
                answer_started = True
            print(chunk.content, end="", flush=True)
    print()
    assert full is not None
    return full


def main() -> int:
    parser = argparse.ArgumentParser(description="A streaming multi-turn chat with Kimi.")
    parser.add_argument("--offline", action="store_true", help="use the bundled simulator")
    parser.add_argument("--say", action="append", default=[], help="a message (repeatable)")
    args = parser.parse_args()

    with offline_if(args.offline, responder=offline_answer):
        if token_missing():
            return 2
        scripted = args.say or (DEMO if args.offline else [])
        history: list[BaseMessage] = [SystemMessage("You are a friendly, brief assistant.")]
        try:
            with ChatKimi(model="kimi-k2.5", max_tokens=16384) as model:
                for text in user_turns(scripted):
                    history.append(HumanMessage(text))
                    answer = stream_turn(model, history)
                    history.append(answer)  # reasoning included: Kimi gets it back
                    if answer.usage_metadata:
                        print(f"[{answer.usage_metadata['total_tokens']} tokens]")
        except KimiError as err:
            print(f"Kimi error: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
