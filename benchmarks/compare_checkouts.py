"""Async CPU per ``ainvoke`` and per ``astream`` chunk: this checkout against another one.

A change to the transport should be measured against what it replaces, on the
same machine, alternately. This script starts the benchmark server, then runs
the same probe in fresh interpreters, alternating between two source trees
(``--old``, e.g. a ``git worktree`` of an earlier commit, and this checkout),
and prints the medians.

Usage::

    git worktree add /tmp/old <commit>
    python benchmarks/compare_checkouts.py --old /tmp/old [--runs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_client as bench  # noqa: E402

PROBE = """
import asyncio, gc, json, statistics, sys, time
import langchain_kimi
from langchain_kimi import ChatKimi

async def main(base_url):
    model = ChatKimi(base_url=base_url, api_key="x", model="kimi-k2.5")
    async def invoke():
        await model.ainvoke("hi chunks=20")
    async def stream(prompt):
        async for _ in model.astream(prompt):
            pass
    for _ in range(100):
        await invoke()
    await stream("hi chunks=2000")
    calls, chunks = [], []
    for _ in range(15):
        gc.collect()
        start = time.process_time()
        for _ in range(50):
            await invoke()
        calls.append((time.process_time() - start) / 50 * 1e6)
        gc.collect()
        start = time.process_time()
        await stream("hi chunks=2000")
        long = time.process_time() - start
        start = time.process_time()
        for _ in range(5):
            await stream("hi chunks=1")
        one = (time.process_time() - start) / 5
        chunks.append((long - one) / 1999 * 1e6)
    await model.aclose()
    print(json.dumps({"package": langchain_kimi.__file__,
                      "call_us": statistics.median(calls),
                      "chunk_us": statistics.median(chunks)}))

asyncio.run(main(sys.argv[1]))
"""


def run_probe(source: Path, base_url: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(source), "NO_PROXY": "*"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, base_url],
        capture_output=True,
        text=True,
        env=env,
        cwd=source,
        timeout=600,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="the other source tree")
    parser.add_argument("--runs", type=int, default=4, help="alternating runs of each (4)")
    args = parser.parse_args()
    trees = {"old": args.old.resolve(), "this": HERE.parent}
    endpoints = bench.Endpoints("lean")
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    try:
        for _ in range(args.runs):
            for name, tree in trees.items():
                samples[name].append(run_probe(tree, endpoints.base_url))
    finally:
        endpoints.close()
    print("| checkout | CPU/ainvoke (us) | CPU/astream chunk (us) |")
    print("| --- | ---: | ---: |")
    medians = {}
    for name, runs in samples.items():
        call = statistics.median(run["call_us"] for run in runs)
        chunk = statistics.median(run["chunk_us"] for run in runs)
        medians[name] = (call, chunk)
        print(f"| {name} ({trees[name]}) | {call:.1f} | {chunk:.2f} |")
    (old_call, old_chunk), (new_call, new_chunk) = medians["old"], medians["this"]
    print(f"\nthis / old: {new_call / old_call:.2f}x per ainvoke, ", end="")
    print(f"{new_chunk / old_chunk:.2f}x per chunk")
    return 0


if __name__ == "__main__":
    sys.exit(main())
