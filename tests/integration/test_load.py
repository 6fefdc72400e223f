"""One ChatKimi shared by many threads and many tasks: right answers, nothing leaked.

Bounded in count (200 batch inputs, 500 tasks) and in time (each test has a
deadline well inside CI's budget on a 2-core machine). The simulator's default
reply echoes the request ("Echo: <last user text>"), so a crossed wire between
two concurrent calls shows up as a wrong answer.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
from collections.abc import Iterator

import pytest
from langchain_core.messages import AIMessageChunk

from langchain_kimi import ChatKimi
from langchain_kimi.testing import FakeKimiServer, Reply

from .conftest import TOKEN

# Generous against a loaded 2-core CI runner; typical runs take a fraction.
BATCH_DEADLINE = 20.0
TASKS_DEADLINE = 25.0


def make(server: FakeKimiServer) -> ChatKimi:
    return ChatKimi(
        base_url=server.base_url, api_key=TOKEN, max_retries=0, timeout=20.0, thinking=False
    )


@pytest.fixture
def no_resource_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Collect ResourceWarnings (unclosed sockets, transports) raised during the test.

    A leaked socket warns when it is garbage-collected, so the check collects
    garbage before and after; the test's own objects must be gone by then.
    """
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield caught
        gc.collect()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, [str(w.message) for w in leaks]


def test_batch_of_200_on_32_threads_matches_every_answer(
    server: FakeKimiServer, no_resource_warnings: list[warnings.WarningMessage]
) -> None:
    inputs = [f"question {i} from the batch" for i in range(200)]
    started = time.monotonic()
    with make(server) as model:
        answers = model.batch(inputs, config={"max_concurrency": 32})
    elapsed = time.monotonic() - started
    assert [answer.content for answer in answers] == [f"Echo: {text}" for text in inputs]
    assert server.request_count == 200
    # Pooled keep-alive: no more connections than threads, far fewer than requests.
    assert server.connections <= 32
    assert elapsed < BATCH_DEADLINE


def test_threads_streaming_at_once_get_their_own_stream(
    server: FakeKimiServer, no_resource_warnings: list[warnings.WarningMessage]
) -> None:
    server.set_responder(lambda body: Reply(chunk_size=2))
    errors: list[BaseException] = []
    results: dict[int, str] = {}

    with make(server) as model:

        def worker(index: int) -> None:
            try:
                text = "".join(str(c.content) for c in model.stream(f"stream {index}"))
                results[index] = text
            except BaseException as err:  # reported below, with the index
                errors.append(err)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=BATCH_DEADLINE)
    assert not errors, errors
    assert results == {i: f"Echo: stream {i}" for i in range(32)}


async def test_500_concurrent_ainvoke_tasks_match_every_answer(
    server: FakeKimiServer, no_resource_warnings: list[warnings.WarningMessage]
) -> None:
    texts = [f"task {i} asks" for i in range(500)]
    started = time.monotonic()
    async with make(server) as model:
        answers = await asyncio.wait_for(
            asyncio.gather(*(model.ainvoke(text) for text in texts)), TASKS_DEADLINE
        )
    assert [answer.content for answer in answers] == [f"Echo: {text}" for text in texts]
    assert server.request_count == 500
    assert time.monotonic() - started < TASKS_DEADLINE


async def test_concurrent_astreams_match_every_answer(
    server: FakeKimiServer, no_resource_warnings: list[warnings.WarningMessage]
) -> None:
    server.set_responder(lambda body: Reply(chunk_size=3))

    async def collect(model: ChatKimi, text: str) -> str:
        return "".join([str(chunk.content) async for chunk in model.astream(text)])

    texts = [f"stream {i}" for i in range(100)]
    async with make(server) as model:
        answers = await asyncio.wait_for(
            asyncio.gather(*(collect(model, text) for text in texts)), TASKS_DEADLINE
        )
    assert answers == [f"Echo: {text}" for text in texts]


async def test_cancelling_an_astream_consumer_closes_the_connection(
    server: FakeKimiServer, no_resource_warnings: list[warnings.WarningMessage]
) -> None:
    # A slow stream: 200 one-character events, 20 ms apart (4 s if read to the end).
    server.queue(Reply(content="x" * 200, chunk_size=1, chunk_delay=0.02))
    received: list[AIMessageChunk] = []
    first_chunks = asyncio.Event()

    async with make(server) as model:

        async def consume() -> None:
            async for chunk in model.astream("slow"):
                received.append(chunk)
                if len(received) >= 3:
                    first_chunks.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first_chunks.wait(), 5.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The server learns of the close when its next write fails.
        assert await asyncio.to_thread(server.wait_for_disconnects, 1, 5.0)
        # The model still works after a cancelled call (its slot and pool are intact).
        assert (await model.ainvoke("after")).content == "Echo: after"
    assert len(received) < 200
    assert not any(chunk.chunk_position == "last" for chunk in received)
    assert server.disconnects == 1


async def test_breaking_out_of_astream_closes_the_connection(
    server: FakeKimiServer, no_resource_warnings: list[warnings.WarningMessage]
) -> None:
    server.queue(Reply(content="y" * 200, chunk_size=1, chunk_delay=0.02))
    async with make(server) as model:
        stream = model.astream("slow")
        async for chunk in stream:
            if chunk.content:
                break
        # An abandoned async generator is closed only when asked (or collected).
        await stream.aclose()  # type: ignore[attr-defined]
        assert await asyncio.to_thread(server.wait_for_disconnects, 1, 5.0)


def test_breaking_out_of_stream_closes_the_connection(
    server: FakeKimiServer, no_resource_warnings: list[warnings.WarningMessage]
) -> None:
    server.queue(Reply(content="z" * 200, chunk_size=1, chunk_delay=0.02))
    with make(server) as model:
        stream = model.stream("slow")
        for chunk in stream:
            if chunk.content:
                break
        stream.close()  # type: ignore[attr-defined]
        assert server.wait_for_disconnects(1, 5.0)
        assert model.invoke("after").content == "Echo: after"


async def test_many_cancelled_streams_leak_nothing(
    server: FakeKimiServer, no_resource_warnings: list[warnings.WarningMessage]
) -> None:
    server.set_responder(lambda body: Reply(content="w" * 100, chunk_size=1, chunk_delay=0.02))
    async with make(server) as model:

        async def consume(text: str) -> None:
            async for _ in model.astream(text):
                pass

        tasks = [asyncio.create_task(consume(f"c{i}")) for i in range(50)]
        await asyncio.sleep(0.3)
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(result, asyncio.CancelledError) for result in results)
        assert await asyncio.to_thread(server.wait_for_disconnects, 50, 10.0)
