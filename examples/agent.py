"""A tool-calling agent on kimi-k2.5 with thinking on, built with ``create_agent``.

The agent has two tools and needs several model calls to answer. With
``ChatOpenAI`` pointed at Kimi, the second call fails with ``400 thinking is
enabled but reasoning_content is missing in assistant tool call message``;
``ChatKimi`` sends each turn's reasoning back, so the loop runs to the end.

Run it::

    python examples/agent.py --offline        # in-process FakeKimiServer, no token
    ACEDATACLOUD_API_TOKEN=... python examples/agent.py
    python examples/agent.py --question "Is Oslo or Lisbon warmer right now?"

Offline, a scripted responder plays the model; the simulator still enforces
Kimi's rules, the reasoning replay rule included, so a client bug would fail
here exactly as it would against the real service.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from langchain_kimi import ChatKimi
from langchain_kimi.testing import FakeKimiServer, Reply, ToolCall

TOKEN_ENV = "ACEDATACLOUD_API_TOKEN"
DEFAULT_QUESTION = "Which is warmer right now, Paris or Rome? Give the answer in Fahrenheit."
SYSTEM_PROMPT = (
    "You answer weather questions. Use get_weather for every city you need, "
    "then celsius_to_fahrenheit when the user wants Fahrenheit. Be brief."
)

# Stand-in weather data: the example is about the agent loop, not a weather API.
CELSIUS = {"paris": 18.0, "rome": 22.0, "oslo": 9.0, "lisbon": 21.0, "tokyo": 16.0}


@tool
def get_weather(city: str) -> str:
    """Current temperature of a city, in degrees Celsius."""
    celsius = CELSIUS.get(city.strip().lower())
    if celsius is None:
        return f"No weather data for {city}."
    return f"{city}: {celsius:g} C, clear sky"


@tool
def celsius_to_fahrenheit(celsius: float) -> str:
    """Convert a temperature from degrees Celsius to degrees Fahrenheit."""
    return f"{celsius * 9 / 5 + 32:g} F"


TOOLS = [get_weather, celsius_to_fahrenheit]


def scripted_kimi(body: Mapping[str, Any]) -> Reply:
    """Plays kimi-k2.5 for ``--offline``: reads the conversation, picks the next step.

    Turn 1 asks for both cities' weather in parallel; turn 2 reads the tool
    results and converts the warmer temperature; turn 3 answers. Each turn
    thinks first, as the real model does.
    """
    messages = body["messages"]
    results = [m["content"] for m in messages if m["role"] == "tool"]
    turns_taken = sum(1 for m in messages if m["role"] == "assistant")
    if turns_taken == 0:
        return Reply(
            reasoning="I need the current temperature of both cities; ask for them together.",
            tool_calls=[
                ToolCall("get_weather", {"city": "Paris"}, id="functions.get_weather:0"),
                ToolCall("get_weather", {"city": "Rome"}, id="functions.get_weather:1"),
            ],
        )
    readings = {text.split(":")[0]: float(text.split()[1]) for text in results[:2]}
    warmest = max(readings, key=lambda city: readings[city])
    if turns_taken == 1:
        return Reply(
            reasoning=f"{warmest} is warmer at {readings[warmest]:g} C; the user wants Fahrenheit.",
            content=f"{warmest} is warmer. Converting to Fahrenheit.",
            tool_calls=[
                ToolCall(
                    "celsius_to_fahrenheit",
                    {"celsius": readings[warmest]},
                    id="functions.celsius_to_fahrenheit:2",
                )
            ],
        )
    return Reply(
        reasoning="I have everything: state the warmer city and its temperature.",
        content=f"{warmest} is warmer right now: {results[-1]} ({readings[warmest]:g} C).",
    )


def run_agent(model: ChatKimi, question: str) -> list[BaseMessage]:
    agent = create_agent(model, TOOLS, system_prompt=SYSTEM_PROMPT)
    state = agent.invoke({"messages": [HumanMessage(question)]})
    messages: list[BaseMessage] = state["messages"]
    return messages


def report(messages: Sequence[BaseMessage]) -> None:
    """Print every tool call with its result, then the final answer."""
    results = {m.tool_call_id: m.content for m in messages if isinstance(m, ToolMessage)}
    print("Tool calls:")
    for message in messages:
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                arguments = json.dumps(call["args"], ensure_ascii=False)
                print(f"  {call['name']}({arguments})  [{call['id']}]")
                print(f"    -> {results.get(call['id'] or '', '(no result)')}")
    final = messages[-1]
    print("\nFinal answer:")
    print(f"  {final.text}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--offline",
        action="store_true",
        help="answer from an in-process FakeKimiServer instead of the real service",
    )
    parser.add_argument("--question", default=DEFAULT_QUESTION)
    parser.add_argument("--model", default="kimi-k2.5")
    args = parser.parse_args(argv)

    if args.offline:
        with FakeKimiServer() as server:
            server.set_responder(scripted_kimi)
            with ChatKimi(
                model=args.model, base_url=server.base_url, api_key=server.api_key
            ) as model:
                messages = run_agent(model, args.question)
            report(messages)
            print(
                f"\n(offline: {server.request_count} requests to FakeKimiServer, "
                "each accepted under the reasoning replay rule)"
            )
        return 0

    if not os.environ.get(TOKEN_ENV):
        print(
            f"error: {TOKEN_ENV} is not set. Export your Ace Data Cloud token "
            f"(export {TOKEN_ENV}=...) or run with --offline to use the local simulator.",
            file=sys.stderr,
        )
        return 2
    # Thinking models count reasoning against max_tokens: leave them room.
    with ChatKimi(model=args.model, max_tokens=16384) as model:
        report(run_agent(model, args.question))
    return 0


if __name__ == "__main__":
    sys.exit(main())
