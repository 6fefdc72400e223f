"""Model names on the wire: the catalogue's spelling for Ace Data Cloud and Moonshot.

Both services match names exactly, so ``Kimi-K2.6`` or ``moonshotai/kimi-k3``
(found in the profile data either way) must reach them as ``kimi-k2.6`` and
``kimi-k3``, with ``response_metadata["model_name_sent"]`` saying so. Another
host (a gateway, the simulator on 127.0.0.1) gets the name as written, after one
warning. The services' own hosts are reached here through a relay proxy that
forwards every request to the simulator, which matches names exactly too (a
name it does not serve: 404): the client never resolves or contacts them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from langchain_kimi import ChatKimi, KimiNotFoundError, _profiles
from langchain_kimi.testing import FakeKimiServer, Reply

from ._relay_proxy import RelayProxy

MODES = ["invoke", "ainvoke", "stream", "astream"]
# (base URL, simulator flavour): Ace Data Cloud's and Moonshot's hosts.
SERVICES = [("http://api.acedata.cloud/kimi", "acedata"), ("http://api.moonshot.ai/v1", "moonshot")]


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_profiles, "_warned_exact_match", set())
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(params=SERVICES, ids=["acedata", "moonshot"])
def service(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    base_url, flavor = request.param
    with FakeKimiServer(api_key="names-key", flavor=flavor) as server:
        relay = RelayProxy(server.port)
        monkeypatch.setenv("HTTP_PROXY", relay.url)
        request.node.simulator = server
        try:
            yield base_url
        finally:
            relay.close()


async def ask(model: ChatKimi, mode: str) -> Any:
    try:
        if mode == "invoke":
            return model.invoke("hi")
        if mode == "ainvoke":
            return await model.ainvoke("hi")
        chunks = (
            list(model.stream("hi"))
            if mode == "stream"
            else [chunk async for chunk in model.astream("hi")]
        )
        whole = chunks[0]
        for chunk in chunks[1:]:
            whole = whole + chunk
        return whole
    finally:
        await model.aclose()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("written", ["Kimi-K2.6", "moonshotai/kimi-k3", "MoonshotAI/Kimi-K2.6"])
async def test_the_services_get_the_catalogue_spelling_and_the_answer_says_so(
    service: str, request: pytest.FixtureRequest, written: str, mode: str
) -> None:
    server: FakeKimiServer = request.node.simulator
    server.queue(Reply(content="hello", reasoning="A greeting."))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about: the name is fixed
        model = ChatKimi(model=written, base_url=service, api_key="names-key", max_retries=0)
        answer = await ask(model, mode)
    spelled = written.lower().split("/")[-1]
    assert answer.content == "hello"
    assert server.requests[-1].body["model"] == spelled
    assert answer.response_metadata["model_name_sent"] == spelled
    assert model.model == written  # the model keeps what the user wrote


@pytest.mark.parametrize("mode", MODES)
async def test_a_name_already_in_the_catalogue_spelling_carries_no_note(
    service: str, request: pytest.FixtureRequest, mode: str
) -> None:
    server: FakeKimiServer = request.node.simulator
    server.queue(Reply(content="hello"))
    model = ChatKimi(model="kimi-k2.6", base_url=service, api_key="names-key", max_retries=0)
    answer = await ask(model, mode)
    assert server.requests[-1].body["model"] == "kimi-k2.6"
    assert "model_name_sent" not in answer.response_metadata


@pytest.mark.parametrize("mode", MODES)
async def test_another_host_gets_the_name_as_written_after_one_warning(mode: str) -> None:
    with FakeKimiServer(api_key="names-key") as server:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = ChatKimi(
                model="Kimi-K2.6", base_url=server.base_url, api_key="names-key", max_retries=0
            )
        [warning] = caught
        assert "'Kimi-K2.6' is sent as written to 127.0.0.1" in str(warning.message)
        assert "model='kimi-k2.6'" in str(warning.message)
        # The simulator matches names exactly, as the services do: 404.
        with pytest.raises(KimiNotFoundError, match=r"Not found the model Kimi-K2\.6"):
            await ask(model, mode)
        assert server.requests[-1].body["model"] == "Kimi-K2.6"
