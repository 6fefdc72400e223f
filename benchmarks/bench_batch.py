"""What a large batch costs the client: time and memory to build it and to read it back.

Two measurements, each in this process, with ``tracemalloc`` for the peak:

- **build**: ``model.batch_submit``'s local half for N inputs (each line's body
  made by ``invoke``'s code, written as JSONL into temporary files split at the
  file limit), from a generator of prompts, so the inputs themselves cost
  nothing; nothing is sent.
- **read back**: a job's results from an output file of N answers (chat
  completions with usage, as the service writes them, in shuffled order),
  read from a local file in 64 KiB pieces through the same reader
  ``job.results()`` uses on the service's stream; every answer becomes an
  ``AIMessage``, and all N are kept (that is the result).

The network is left out on purpose: it is the service's time, not the client's.

Usage::

    python benchmarks/bench_batch.py            # 100,000 inputs
    python benchmarks/bench_batch.py --inputs 10000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

from langchain_kimi import ChatKimi
from langchain_kimi.batch import _lines, _remove, _ResultReader, _write_files

PIECE = 64 * 1024


def prompts(n: int) -> Iterator[str]:
    for i in range(n):
        yield f"Question {i}: summarise the plot of book number {i} in two sentences."


def completion(i: int) -> dict[str, object]:
    return {
        "id": f"chatcmpl-{i:08d}",
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": "kimi-k2.6",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": f"Book {i} follows a family over three generations. It ends "
                    "where it began, by the sea.",
                    "reasoning_content": "Two sentences, the plot only.",
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 28, "completion_tokens": 31, "total_tokens": 59},
    }


def write_output_file(n: int, path: Path) -> int:
    order = list(range(n))
    random.Random(7).shuffle(order)
    with path.open("wb") as out:
        for i in order:
            line = {
                "id": f"batch_req_{i}",
                "custom_id": f"lk-{i}",
                "response": {"status_code": 200, "request_id": f"r{i}", "body": completion(i)},
                "error": None,
            }
            out.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
    return path.stat().st_size


def pieces(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while piece := source.read(PIECE):
            yield piece


def measure_build(model: ChatKimi, n: int) -> tuple[float, int, int, int]:
    tracemalloc.start()
    start = time.perf_counter()
    chunks, plans = _write_files(model, prompts(n), {})
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    size = sum(os.path.getsize(chunk.path) for chunk in chunks)
    count = len(chunks)
    _remove(chunks)
    assert plans is None
    return elapsed, peak, size, count


def measure_read(n: int, path: Path) -> tuple[float, int]:
    batch = {
        "id": "batch_bench",
        "status": "completed",
        "output_file_id": "file-out",
        "metadata": {"langchain_kimi_inputs": f"0:{n}"},
    }
    tracemalloc.start()
    start = time.perf_counter()
    reader = _ResultReader([batch], None, ("sk-secret",))
    for line in _lines(pieces(path)):
        reader.add(line)
    results = reader.finish()
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(results) == n and results[n - 1].content.startswith(f"Book {n - 1} ")  # type: ignore[union-attr]
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    args = parser.parse_args()
    n = args.inputs
    model = ChatKimi(
        model="kimi-k2.6",
        api_flavor="moonshot",
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-bench",
        max_tokens=1024,
    )
    build_s, build_peak, size, files = measure_build(model, n)
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "output.jsonl"
        out_size = write_output_file(n, output)
        read_s, read_peak = measure_read(n, output)
    mib = 1024 * 1024
    print(f"inputs: {n:,}")
    print(
        f"build: {build_s:.1f} s ({build_s / n * 1e6:.0f} us per input), peak traced memory "
        f"{build_peak / mib:.1f} MiB, {size / mib:.1f} MiB of JSONL in {files} file(s)"
    )
    print(
        f"read back: {read_s:.1f} s ({read_s / n * 1e6:.0f} us per answer), peak traced memory "
        f"{read_peak / mib:.1f} MiB for a {out_size / mib:.1f} MiB output file "
        f"({read_peak / n:.0f} bytes per answer kept)"
    )


if __name__ == "__main__":
    main()
