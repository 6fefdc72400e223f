"""Connection lifecycle: lazy clients, close/aclose, context managers, copies, pickling."""

from __future__ import annotations

import asyncio
import copy
import gc
import pickle
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from langchain_kimi import ChatKimi
from langchain_kimi.testing import FakeKimiServer

from .conftest import TOKEN


def make(server: FakeKimiServer, **kwargs: Any) -> ChatKimi:
    settings: dict[str, Any] = {
        "base_url": server.base_url,
        "api_key": TOKEN,
        "max_retries": 0,
        "thinking": False,
    }
    settings.update(kwargs)
    return ChatKimi(**settings)


@pytest.fixture
def no_resource_warnings() -> Iterator[None]:
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, leaks


def test_clients_are_created_lazily(server: FakeKimiServer) -> None:
    model = make(server)
    assert model._sync_transport is None and model._async_transport is None
    assert server.connections == 0
    model.invoke("hi")
    assert model._sync_transport is not None
    assert model._async_transport is None  # the async side is untouched by sync calls
    model.close()


def test_close_releases_connections_and_the_model_still_works(
    server: FakeKimiServer, no_resource_warnings: None
) -> None:
    model = make(server)
    model.invoke("one")
    first = model._sync_transport
    model.close()
    assert model._sync_transport is None
    model.close()  # idempotent
    assert model.invoke("two").content == "Echo: two"
    assert model._sync_transport is not first
    assert server.connections == 2  # the closed pool's connection was not reused
    model.close()


def test_context_managers_close(server: FakeKimiServer, no_resource_warnings: None) -> None:
    with make(server) as model:
        assert model.invoke("hi").content == "Echo: hi"
    assert model._sync_transport is None

    async def use_async() -> ChatKimi:
        async with make(server) as amodel:
            assert (await amodel.ainvoke("hi")).content == "Echo: hi"
            list(amodel.stream("sync too"))  # aclose closes both sides
        return amodel

    amodel = asyncio.run(use_async())
    assert amodel._async_transport is None and amodel._sync_transport is None


async def test_aclose_closes_the_async_client(
    server: FakeKimiServer, no_resource_warnings: None
) -> None:
    model = make(server)
    await model.ainvoke("hi")
    transport = model._async_transport
    assert transport is not None
    session = await transport._session()
    await model.aclose()
    assert session.closed
    await model.aclose()  # idempotent
    assert (await model.ainvoke("again")).content == "Echo: again"
    await model.aclose()


def test_aclose_after_the_calls_loop_has_ended_does_not_raise(server: FakeKimiServer) -> None:
    # asyncio.run(model.ainvoke(...)) then asyncio.run(model.aclose()): a common script shape.
    # The first loop's session was closed when asyncio.run ended that loop, so
    # nothing is left to warn about (ResourceWarning is an error in this suite).
    model = make(server)
    assert asyncio.run(model.ainvoke("hi")).content == "Echo: hi"
    asyncio.run(model.aclose())
    assert model._async_transport is None
    # A later loop gets a fresh client.
    assert asyncio.run(_ainvoke_and_close(model, "later")) == "Echo: later"
    gc.collect()


async def _ainvoke_and_close(model: ChatKimi, text: str) -> str:
    async with model:
        return str((await model.ainvoke(text)).content)


@pytest.mark.parametrize(
    "copier",
    [
        lambda m: m.model_copy(),
        lambda m: m.model_copy(update={"temperature": 0.3}),
        copy.copy,
        copy.deepcopy,
        lambda m: pickle.loads(pickle.dumps(m)),
    ],
    ids=["model_copy", "model_copy-update", "copy", "deepcopy", "pickle"],
)
def test_copies_never_share_a_client(
    server: FakeKimiServer, copier: Any, no_resource_warnings: None
) -> None:
    original = make(server)
    original.invoke("warm")
    copied = copier(original)
    assert copied._sync_transport is None and copied._async_transport is None
    # Closing the original leaves the copy working, and the other way round.
    original.close()
    assert copied.invoke("copy").content == "Echo: copy"
    assert copied._sync_transport is not None
    copied.close()
    assert original.invoke("original").content == "Echo: original"
    original.close()


async def test_async_copies_never_share_a_client(
    server: FakeKimiServer, no_resource_warnings: None
) -> None:
    original = make(server)
    await original.ainvoke("warm")
    copied = original.model_copy()
    assert copied._async_transport is None
    await original.aclose()
    assert (await copied.ainvoke("copy")).content == "Echo: copy"
    await copied.aclose()


def test_bind_and_closing_the_model(server: FakeKimiServer, no_resource_warnings: None) -> None:
    model = make(server)
    bound = model.bind(stop=["never"])
    assert bound.invoke("one").content == "Echo: one"
    model.close()
    # The binding wraps the same model: after close it opens a fresh client, not the closed one.
    assert bound.invoke("two").content == "Echo: two"
    assert server.requests[-1].body["stop"] == ["never"]
    model.close()


def test_pickle_round_trip_keeps_the_configuration(server: FakeKimiServer) -> None:
    model = make(server, temperature=0.2, max_tokens=64, model="kimi-k2-instruct-0905")
    model.invoke("warm")
    restored = pickle.loads(pickle.dumps(model))
    assert restored.model_dump() == model.model_dump()
    assert restored.api_key is not None and model.api_key is not None
    assert restored.api_key.get_secret_value() == model.api_key.get_secret_value()
    assert restored.invoke("hi").content == "Echo: hi"
    body = server.requests[-1].body
    assert body["temperature"] == 0.2 and body["max_tokens"] == 64
    restored.close()
    model.close()


def test_a_model_dropped_without_close_leaves_no_sync_socket(
    server: FakeKimiServer, no_resource_warnings: None
) -> None:
    model = make(server)
    model.invoke("hi")
    del model  # the sync transport closes its pool when collected


def test_first_calls_racing_on_threads_leak_nothing(
    server: FakeKimiServer, no_resource_warnings: None
) -> None:
    import threading

    model = make(server)
    barrier = threading.Barrier(8)
    answers: dict[int, str] = {}

    def worker(index: int) -> None:
        barrier.wait()  # all threads hit the lazy client creation at once
        answers[index] = str(model.invoke(f"t{index}").content)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert answers == {i: f"Echo: t{i}" for i in range(8)}
    model.close()
