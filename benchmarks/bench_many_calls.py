"""Many calls at once: wall time of ``abatch`` by ``max_concurrency``, with a rate limiter or not.

Against the simulator on 127.0.0.1 with a fixed latency per answer (standing in
for the service's time to answer), so the figures show what concurrency and a
rate limiter do to a job's wall time, not how fast Kimi is. Each setting runs
once, in this process; figures for docs/many-calls.md.

Usage::

    python benchmarks/bench_many_calls.py                # 200 calls, 500 ms each
    python benchmarks/bench_many_calls.py --calls 100 --latency 0.2
"""

from __future__ import annotations

import argparse
import asyncio
import time

from langchain_core.rate_limiters import InMemoryRateLimiter

from langchain_kimi import ChatKimi
from langchain_kimi.testing import FakeKimiServer


async def run(server: FakeKimiServer, calls: int, concurrency: int, rps: float | None) -> float:
    limiter = (
        InMemoryRateLimiter(requests_per_second=rps, check_every_n_seconds=0.01, max_bucket_size=1)
        if rps
        else None
    )
    model = ChatKimi(
        model="kimi-k2.6",
        base_url=server.base_url,
        api_key=server.api_key,
        thinking=False,
        rate_limiter=limiter,
    )
    prompts = [f"question {i}" for i in range(calls)]
    start = time.perf_counter()
    answers = await model.abatch(prompts, config={"max_concurrency": concurrency})
    elapsed = time.perf_counter() - start
    assert [a.content for a in answers] == [f"Echo: {p}" for p in prompts]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.5)
    args = parser.parse_args()
    settings = [(1, None), (8, None), (32, None), (128, None), (32, 20.0), (128, 20.0)]
    print(f"{args.calls} calls, {args.latency * 1000:.0f} ms latency per answer")
    print("| max_concurrency | rate limit | wall time | calls per second |")
    print("| ---: | --- | ---: | ---: |")
    with FakeKimiServer(api_key="sk-bench", latency=args.latency) as server:
        for concurrency, rps in settings:
            calls = args.calls if concurrency > 1 else max(10, args.calls // 20)
            elapsed = asyncio.run(run(server, calls, concurrency, rps))
            limit = f"{rps:.0f} requests/s" if rps else "none"
            note = "" if calls == args.calls else f" ({calls} calls)"
            print(
                f"| {concurrency} | {limit} | {elapsed:.1f} s{note} | {calls / elapsed:.1f} |"
            )


if __name__ == "__main__":
    main()
