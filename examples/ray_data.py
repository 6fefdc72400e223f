"""Answer a dataset of questions with ChatKimi on Ray Data: one model per worker.

Ray Data's ``map_batches`` runs a callable class on a pool of workers (here two
processes); each builds its model once, in ``__init__``, and answers its share
of rows with ``batch`` (a few calls at a time). The model travels to the
workers pickled; its connections are opened in each worker on first use.

A rate limit for the whole job is divided between the workers: each gets an
``InMemoryRateLimiter`` at the total rate over the number of workers (built in
the worker: a limiter holds a lock, which does not pickle). For a limit shared
exactly across machines, give each worker a ``BaseRateLimiter`` backed by a
shared store (Redis, for one); langchain-kimi writes no scheduler and no
distributed limiter of its own.

    pip install ".[ray]"
    python examples/ray_data.py --offline      # against the bundled simulator
    python examples/ray_data.py                # against Kimi (ACEDATACLOUD_API_TOKEN)
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from _offline import TOKEN_ENV, offline_if

from langchain_kimi import ChatKimi

WORKERS = 2
TOTAL_REQUESTS_PER_SECOND = 20.0
QUESTIONS = [f"In one word: what colour is item {i}?" for i in range(24)]


class Answerer:
    """One per Ray worker: a ChatKimi with this worker's share of the rate limit."""

    def __init__(self, model: ChatKimi, requests_per_second: float) -> None:
        from langchain_core.rate_limiters import InMemoryRateLimiter

        limiter = InMemoryRateLimiter(
            requests_per_second=requests_per_second, check_every_n_seconds=0.01
        )
        self.model = model.model_copy(update={"rate_limiter": limiter})

    def __call__(self, rows: dict[str, Any]) -> dict[str, Any]:
        questions = [str(question) for question in rows["question"]]
        answers = self.model.batch(questions, config={"max_concurrency": 4})
        return {
            "question": questions,
            "answer": [str(answer.content) for answer in answers],
            "pid": [os.getpid()] * len(questions),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--offline", action="store_true", help="use the bundled simulator")
    args = parser.parse_args()
    with offline_if(args.offline) as server:
        if server is None and not os.environ.get(TOKEN_ENV):
            print(f"set {TOKEN_ENV}, or run with --offline", file=sys.stderr)
            return 2
        # Ray reports usage statistics to its authors unless told not to.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        import ray

        ray.init(
            num_cpus=WORKERS,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
        )
        try:
            ray.data.DataContext.get_current().enable_progress_bars = False
            model = ChatKimi(model="kimi-k2.6", thinking=False, max_tokens=64)
            dataset = ray.data.from_items([{"question": q} for q in QUESTIONS])
            answered = dataset.map_batches(
                Answerer,
                fn_constructor_kwargs={
                    "model": model,
                    "requests_per_second": TOTAL_REQUESTS_PER_SECOND / WORKERS,
                },
                batch_size=6,
                compute=ray.data.ActorPoolStrategy(size=WORKERS),
                num_cpus=1,
            )
            rows = sorted(answered.take_all(), key=lambda row: QUESTIONS.index(row["question"]))
        finally:
            ray.shutdown()
        for row in rows[:3]:
            print(f"{row['question']} -> {row['answer']}")
        workers = {row["pid"] for row in rows}
        print(f"answered {len(rows)} questions on {len(workers)} Ray worker(s)")
        if server is not None:
            print(f"offline: {len(server.requests)} requests to FakeKimiServer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
