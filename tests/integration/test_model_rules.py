"""Each model's rules over real sockets: what ChatKimi refuses before sending, and why.

For every refusal the test shows two things: ChatKimi raises a ValueError that
names the model and sends nothing (``server.request_count == 0``), and the
simulator, sent the same request by hand, refuses it too (or, for a thinking
switch the model cannot honour, ignores it), so the refusal is the service's
rule and not the client's invention.
"""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from pydantic import BaseModel

from langchain_kimi import ChatKimi, _profiles, _tools, chat_models
from langchain_kimi._payload import REASONING_PLACEHOLDER
from langchain_kimi.errors import KimiNotFoundError
from langchain_kimi.testing import FakeKimiServer, Reply, ToolCall

from .conftest import TOKEN

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
PUBLIC_IMAGE = "https://example.com/cat.png"


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return "sunny"


def make(server: FakeKimiServer, **kwargs: Any) -> ChatKimi:
    settings: dict[str, Any] = {"base_url": server.base_url, "api_key": TOKEN, "max_retries": 0}
    settings.update(kwargs)
    return ChatKimi(**settings)


def post(server: FakeKimiServer, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{server.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )


def image_question(url: str) -> HumanMessage:
    return HumanMessage(
        content=[{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": url}]
    )


def wire_user(url: str, kind: str = "image_url") -> dict[str, Any]:
    return {
        "role": "user",
        "content": [{"type": "text", "text": "What is this?"}, {"type": kind, kind: {"url": url}}],
    }


@pytest.fixture(autouse=True)
def _fresh_near_miss_warnings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(chat_models, "_warned_near_miss", set())
    monkeypatch.setattr(_profiles, "_warned_exact_match", set())
    monkeypatch.setattr(_tools, "_warned_forced", set())
    yield


# --- refusals: the thinking switch ------------------------------------------------------


@pytest.mark.parametrize("name", ["kimi-k2-thinking", "kimi-k2.7-code"])
def test_thinking_off_on_an_always_thinking_model_is_refused(
    server: FakeKimiServer, name: str
) -> None:
    with pytest.raises(ValueError, match=f"{name} always thinks: thinking=False"):
        make(server, model=name, thinking=False)
    model = make(server, model=name)
    with pytest.raises(ValueError, match=f"{name} always thinks"):
        model.invoke("hi", thinking=False)
    with pytest.raises(ValueError, match=f"{name} always thinks"):
        list(model.stream("hi", thinking=False))
    assert server.request_count == 0
    # Sent anyway, the switch changes nothing: the model still thinks.
    answer = post(
        server,
        {
            "model": name,
            "messages": [{"role": "user", "content": "hi"}],
            "thinking": {"type": "disabled"},
        },
    )
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["reasoning_content"]


async def test_thinking_on_for_a_model_that_does_not_think_is_refused(
    server: FakeKimiServer,
) -> None:
    name = "kimi-k2-instruct-0905"
    with pytest.raises(ValueError, match=f"{name} does not think: thinking=True"):
        make(server, model=name, thinking=True)
    model = make(server, model=name)
    with pytest.raises(ValueError, match=f"{name} does not think"):
        await model.ainvoke("hi", thinking=True)
    assert server.request_count == 0
    answer = post(
        server,
        {
            "model": name,
            "messages": [{"role": "user", "content": "hi"}],
            "thinking": {"type": "enabled"},
        },
    )
    assert answer.status_code == 200
    assert "reasoning_content" not in answer.json()["choices"][0]["message"]


# --- refusals: tool_choice -----------------------------------------------------------------


def test_kimi_k26_gets_an_emulated_choice_and_kimi_k3_takes_required(
    server: FakeKimiServer,
) -> None:
    # The simulator refuses "required" from kimi-k2.6, thinking or not...
    for thinking in ({"type": "enabled"}, {"type": "disabled"}):
        refused = post(
            server,
            {
                "model": "kimi-k2.6",
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "function", "function": {"name": "get_weather"}}],
                "tool_choice": "required",
                "thinking": thinking,
            },
        )
        assert refused.status_code == 400 and "tool_choice" in refused.text
    # ...so ChatKimi sends "auto" with an instruction, and the simulator accepts it.
    server.queue(
        Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]),
        Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]),
    )
    with pytest.warns(UserWarning, match="kimi-k2.6 refuses a forced tool_choice"):
        k26 = make(server, model="kimi-k2.6").bind_tools([get_weather], tool_choice="required")
    assert k26.invoke("Weather in Oslo?").tool_calls[0]["args"] == {"city": "Oslo"}  # type: ignore[attr-defined]
    assert server.requests[-1].body["tool_choice"] == "auto"

    k3 = make(server, model="kimi-k3").bind_tools([get_weather], tool_choice="required")
    message = k3.invoke("Weather in Oslo?")
    assert message.tool_calls[0]["args"] == {"city": "Oslo"}  # type: ignore[attr-defined]
    assert server.requests[-1].body["tool_choice"] == "required"


# --- refusals: media -------------------------------------------------------------------------


def test_kimi_k3_refuses_public_image_urls_and_takes_base64_and_file_ids(
    server: FakeKimiServer,
) -> None:
    model = make(server, model="kimi-k3")
    with pytest.raises(ValueError, match=r"kimi-k3 does not accept public image URLs.*base64"):
        model.invoke([image_question(PUBLIC_IMAGE)])
    standard = HumanMessage(content=[{"type": "image", "url": PUBLIC_IMAGE}])
    with pytest.raises(ValueError, match="ms://<file-id>"):
        list(model.stream([standard]))
    assert server.request_count == 0
    refused = post(server, {"model": "kimi-k3", "messages": [wire_user(PUBLIC_IMAGE)]})
    assert refused.status_code == 400 and "image" in refused.text

    model.invoke([image_question(f"data:image/png;base64,{PNG}")])
    model.invoke([image_question("ms://file-abc123")])
    model.invoke(
        [HumanMessage(content=[{"type": "image", "base64": PNG, "mime_type": "image/png"}])]
    )
    urls = [r.body["messages"][0]["content"][-1]["image_url"]["url"] for r in server.requests[1:]]
    assert urls == [
        f"data:image/png;base64,{PNG}",
        "ms://file-abc123",
        f"data:image/png;base64,{PNG}",
    ]


@pytest.mark.parametrize("name", ["kimi-k2-thinking", "kimi-k2-instruct-0905"])
def test_a_text_only_model_refuses_images_and_video(server: FakeKimiServer, name: str) -> None:
    model = make(server, model=name)
    with pytest.raises(ValueError, match=f"{name} takes text only and refuses images"):
        model.invoke([image_question(f"data:image/png;base64,{PNG}")])
    video = HumanMessage(content=[{"type": "video_url", "video_url": {"url": "https://e.x/v.mp4"}}])
    with pytest.raises(ValueError, match=f"{name} refuses video input"):
        model.invoke([video])
    assert server.request_count == 0
    for kind, url in (("image_url", PUBLIC_IMAGE), ("video_url", "https://e.x/v.mp4")):
        refused = post(server, {"model": name, "messages": [wire_user(url, kind)]})
        assert refused.status_code == 400 and "does not support" in refused.text
    # The same image to a model that reads images goes through.
    make(server, model="kimi-k2.6").invoke([image_question(PUBLIC_IMAGE)])
    assert server.requests[-1].body["model"] == "kimi-k2.6"


# --- refusals: reasoning_effort ---------------------------------------------------------------


def test_reasoning_effort_outside_the_levels_is_refused(server: FakeKimiServer) -> None:
    with pytest.raises(ValueError, match="kimi-k3 takes reasoning_effort 'low', 'high', 'max'"):
        make(server, model="kimi-k3", reasoning_effort="medium")
    with pytest.raises(ValueError, match="kimi-k3 takes reasoning_effort"):
        make(server, model="kimi-k3").invoke("hi", reasoning_effort="xhigh")
    with pytest.raises(ValueError, match=r"kimi-k2\.6 has no reasoning_effort setting"):
        make(server, model="kimi-k2.6").invoke("hi", reasoning_effort="max")
    assert server.request_count == 0
    make(server, model="kimi-k3", reasoning_effort="max").invoke("hi")
    assert server.requests[-1].body["reasoning_effort"] == "max"


# --- the reasoning replay rule on every historical assistant message --------------------------


def history() -> list[BaseMessage]:
    """A conversation with assistant turns that never had reasoning (hand-written few-shot)
    and one that did, plus a tool-call turn."""
    return [
        HumanMessage("Say hi."),
        AIMessage("Hi."),  # no reasoning: another model's turn
        HumanMessage("Weather in Oslo?"),
        AIMessage(
            "",
            tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "get_weather:0"}],
            additional_kwargs={"reasoning_content": "Call the tool."},
        ),
        ToolMessage("sunny", tool_call_id="get_weather:0"),
        AIMessage("It is sunny.", additional_kwargs={"reasoning_content": "Read the tool."}),
        HumanMessage("Thanks!"),
    ]


@pytest.mark.parametrize("name", ["kimi-k3", "kimi-k2.7-code"])
def test_every_historical_assistant_message_replays_reasoning(
    server: FakeKimiServer, name: str
) -> None:
    model = make(server, model=name)
    assert model.invoke(history()).content == "Echo: Thanks!"
    sent = server.requests[-1].body["messages"]
    replayed = [m.get("reasoning_content") for m in sent if m["role"] == "assistant"]
    assert replayed == [REASONING_PLACEHOLDER, "Call the tool.", "Read the tool."]

    # Proof the simulator needs it: the same request without it on the plain turn.
    del sent[1]["reasoning_content"]
    refused = post(server, {"model": name, "messages": sent})
    assert refused.status_code == 400
    assert "reasoning_content is missing in assistant message at index 1" in refused.text


def test_other_models_replay_only_on_tool_call_turns(server: FakeKimiServer) -> None:
    make(server, model="kimi-k2.5").invoke(history())
    sent = server.requests[-1].body["messages"]
    assert "reasoning_content" not in sent[1]  # plain turn, no reasoning: nothing invented
    assert sent[3]["reasoning_content"] == "Call the tool."
    # And the simulator does not require more for them.
    del sent[5]["reasoning_content"]
    assert post(server, {"model": "kimi-k2.5", "messages": sent}).status_code == 200


# --- message ids -----------------------------------------------------------------------------


async def test_message_id_is_the_services_completion_id(server: FakeKimiServer) -> None:
    server.queue(*(Reply(content=f"answer {n}", id=f"chatcmpl-{n}") for n in range(5)))
    model = make(server)
    assert model.invoke("a").id == "chatcmpl-0"
    assert (await model.ainvoke("b")).id == "chatcmpl-1"
    ids = {message.id for message in model.batch(["c", "d"])}
    assert ids == {"chatcmpl-2", "chatcmpl-3"}
    streamed = make(server, streaming=True).invoke("e")  # invoke over a stream
    assert streamed.id == "chatcmpl-4"
    await model.aclose()


async def test_every_chunk_of_a_stream_carries_the_same_id(server: FakeKimiServer) -> None:
    server.queue(
        Reply(content="one two three four", reasoning="think", chunk_size=3, id="chatcmpl-s1"),
        Reply(content="five six seven", chunk_size=2, id="chatcmpl-s2"),
    )
    model = make(server)
    chunks = list(model.stream("x"))
    assert len(chunks) > 4 and {chunk.id for chunk in chunks} == {"chatcmpl-s1"}
    total: AIMessageChunk = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert total.id == "chatcmpl-s1" and total.content == "one two three four"
    achunks = [chunk async for chunk in model.astream("y")]
    assert {chunk.id for chunk in achunks} == {"chatcmpl-s2"}
    await model.aclose()


# --- where call-time warnings point ----------------------------------------------------------


def test_a_call_time_fixed_parameter_warns_at_the_users_call_line(server: FakeKimiServer) -> None:
    model = make(server, model="kimi-k2.6")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        invoke_line = _next_line()
        model.invoke("hi", temperature=0.3)
        stream_line = _next_line()
        for _ in model.stream("hi", top_p=0.5):
            pass
    where = [(w.filename, w.lineno) for w in caught]
    assert where == [(__file__, invoke_line), (__file__, stream_line)]
    assert [json.loads(r.raw).get("temperature") for r in server.requests] == [None, None]


def _next_line() -> int:
    import inspect

    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno + 1


# --- structured output on each service ------------------------------------------------------


class Movie(BaseModel):
    title: str
    year: int


def test_json_schema_goes_in_response_format_on_moonshot_only() -> None:
    answer = Reply(content='{"title": "Heat", "year": 1995}')
    with FakeKimiServer(api_key=TOKEN, flavor="moonshot") as moonshot:
        moonshot.queue(answer)
        model = make(moonshot, model="kimi-k3", api_flavor="moonshot")
        structured = model.with_structured_output(Movie, method="json_schema")
        assert structured.invoke("Heat?") == Movie(title="Heat", year=1995)
        body = moonshot.requests[-1].body
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["name"] == "Movie"
        # The same body to Ace Data Cloud's simulator: refused, as Ace documents no json_schema.
    with FakeKimiServer(api_key=TOKEN) as ace:
        assert post(ace, body).status_code == 400
        ace.queue(answer)
        on_ace = make(ace, model="kimi-k3").with_structured_output(Movie, method="json_schema")
        assert on_ace.invoke("Heat?") == Movie(title="Heat", year=1995)
        assert ace.requests[-1].body["response_format"] == {"type": "json_object"}


# --- names ---------------------------------------------------------------------------------


def test_names_are_sent_as_written_to_another_host_and_the_service_decides(server: FakeKimiServer) -> None:
    # The client knows moonshotai/Kimi-K2.5 is kimi-k2.5 (the fixed temperature is
    # dropped) but sends the name as written; this service does not serve it.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = make(server, model="moonshotai/Kimi-K2.5", temperature=0.5)
    # 127.0.0.1 is neither Ace Data Cloud nor Moonshot: sent as written, with a warning.
    assert len(caught) == 2 and "fixes temperature" in str(caught[0].message)
    assert "sent as written to 127.0.0.1" in str(caught[1].message)
    with pytest.raises(KimiNotFoundError, match=r"Not found the model moonshotai/Kimi-K2\.5"):
        model.invoke("hi")
    assert server.requests[-1].body == {
        "model": "moonshotai/Kimi-K2.5",
        "messages": [{"role": "user", "content": "hi"}],
    }
    # A near miss is sent as written too, after one warning.
    with pytest.warns(UserWarning, match=r"closest known model is 'kimi-k2\.5'"):
        typo = make(server, model="kimi-k2.55")
    with pytest.raises(KimiNotFoundError):
        typo.invoke("hi")
    assert server.requests[-1].body["model"] == "kimi-k2.55"
