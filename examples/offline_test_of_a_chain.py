"""Testing your own LangChain chain offline, with FakeKimiServer.

``build_review_chain`` stands for your application code: a prompt, the model,
an output parser. The ``test_*`` functions are what your test suite would hold:
they script Kimi's answers, run the chain, and check both the result and the
request the chain sent. No token, no network.

Run it::

    python examples/offline_test_of_a_chain.py --offline   # runs the tests below
    python -m pytest examples/offline_test_of_a_chain.py   # the same tests under pytest,
                                                           # with the kimi_server fixture
    ACEDATACLOUD_API_TOKEN=... python examples/offline_test_of_a_chain.py  # the real thing
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

from langchain_kimi import ChatKimi, KimiRateLimitError
from langchain_kimi.testing import FakeKimiServer, Reply

# --- the application code under test ------------------------------------------------


def build_review_chain(model: ChatKimi) -> Runnable[dict[str, Any], str]:
    """Classify a product review as POSITIVE, NEGATIVE or MIXED."""
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Classify the review. Answer with one word: POSITIVE, NEGATIVE or MIXED."),
            ("human", "{review}"),
        ]
    )
    return prompt | model | StrOutputParser() | (lambda text: text.strip().upper())


# --- the tests (pytest finds them; kimi_server comes from langchain-kimi's plugin) ----


def test_classifies_a_review(kimi_server: FakeKimiServer) -> None:
    kimi_server.queue(Reply(content=" positive\n", reasoning="The customer is happy."))
    model = ChatKimi(base_url=kimi_server.base_url, api_key=kimi_server.api_key)
    chain = build_review_chain(model)

    assert chain.invoke({"review": "Great kettle, boils fast."}) == "POSITIVE"

    sent = kimi_server.requests[0].body
    assert sent["model"] == "kimi-k2.5"
    assert sent["messages"][0]["role"] == "system"
    assert sent["messages"][1] == {"role": "user", "content": "Great kettle, boils fast."}


def test_streams_through_the_chain(kimi_server: FakeKimiServer) -> None:
    kimi_server.queue(Reply(content="MIXED", chunk_size=1))
    model = ChatKimi(base_url=kimi_server.base_url, api_key=kimi_server.api_key)
    pieces = list(build_review_chain(model).stream({"review": "Nice, but loud."}))
    assert "".join(pieces) == "MIXED"
    assert kimi_server.requests[0].body["stream"] is True


def test_rate_limit_reaches_the_caller(kimi_server: FakeKimiServer) -> None:
    kimi_server.queue(Reply.error(429, "too_many_requests", "slow down", trace_id="t-1"))
    model = ChatKimi(base_url=kimi_server.base_url, api_key=kimi_server.api_key, max_retries=0)
    try:
        build_review_chain(model).invoke({"review": "ok"})
    except KimiRateLimitError as err:
        assert err.trace_id == "t-1"
    else:
        raise AssertionError("expected KimiRateLimitError")


TESTS: list[Callable[[FakeKimiServer], None]] = [
    test_classifies_a_review,
    test_streams_through_the_chain,
    test_rate_limit_reaches_the_caller,
]


def run_tests_offline() -> int:
    """What pytest would do: a fresh simulator per test."""
    for test in TESTS:
        with FakeKimiServer(api_key="offline-example") as server:
            test(server)
        print(f"passed: {test.__name__}")
    print(f"all {len(TESTS)} tests passed (offline, against FakeKimiServer)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Test a chain offline with FakeKimiServer.")
    parser.add_argument("--offline", action="store_true", help="run the tests offline")
    args = parser.parse_args()
    if args.offline:
        return run_tests_offline()
    if not os.environ.get("ACEDATACLOUD_API_TOKEN"):
        print("Set ACEDATACLOUD_API_TOKEN, or run with --offline.", file=sys.stderr)
        return 2
    with ChatKimi(model="kimi-k2.5", max_tokens=16384) as model:
        print(build_review_chain(model).invoke({"review": "Works well, a bit pricey."}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
