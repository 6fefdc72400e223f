"""``model.files``, ``KimiFileLoader`` and ``model.balance()`` against the simulator, sync and async.

Every call of the Files API and the balance over real sockets against
``FakeKimiServer(flavor="moonshot")``; the refusals made before sending (on Ace
Data Cloud, and of bad uploads), checked by the simulator having seen nothing;
both forms of a content answer; and, against a raw server, the platform
transport's error mapping and what it resends (an upload never, once it may
have reached the service).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.messages import HumanMessage

from langchain_kimi import (
    ChatKimi,
    KimiBalance,
    KimiConnectionError,
    KimiFile,
    KimiFileLoader,
    KimiNotFoundError,
    KimiRateLimitError,
    KimiResponseError,
    KimiServerError,
)
from langchain_kimi.files import MAX_FILE_BYTES
from langchain_kimi.testing import Balance, FakeKimiServer

from ._raw_server import RawConnection, RawServer
from .conftest import TOKEN

MODES = ["sync", "async"]
FILE_ID = re.compile(r"^cl[a-z0-9]{18}$")


@pytest.fixture
def moonshot() -> Iterator[FakeKimiServer]:
    with FakeKimiServer(api_key=TOKEN, flavor="moonshot") as server:
        yield server


def on(server: FakeKimiServer | RawServer | str, **kwargs: Any) -> ChatKimi:
    base_url = server if isinstance(server, str) else server.base_url
    settings: dict[str, Any] = {
        "model": "kimi-k2.6",
        "base_url": base_url,
        "api_key": TOKEN,
        "api_flavor": "moonshot",
        "timeout": 5,
        "connect_timeout": 5,
    }
    settings.update(kwargs)
    return ChatKimi(**settings)


def call(target: Any, mode: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """``target.name(...)``, or its async twin ``target.aname(...)`` run to its end."""
    if mode == "sync":
        return getattr(target, name)(*args, **kwargs)
    return asyncio.run(getattr(target, "a" + name)(*args, **kwargs))


def load(loader: KimiFileLoader, mode: str) -> list[Document]:
    if mode == "sync":
        return list(loader.lazy_load())

    async def collect() -> list[Document]:
        return [document async for document in loader.alazy_load()]

    return asyncio.run(collect())


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --- each call ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_upload_bytes_then_every_call(moonshot: FakeKimiServer, mode: str) -> None:
    files = on(moonshot).files
    uploaded = call(
        files, mode, "upload", b"hello, files", purpose="file-extract", filename="hello.txt"
    )
    assert isinstance(uploaded, KimiFile)
    assert FILE_ID.match(uploaded.id)
    assert (uploaded.filename, uploaded.bytes, uploaded.purpose) == (
        "hello.txt",
        12,
        "file-extract",
    )
    assert uploaded.status == "ok" and uploaded.created_at > 0

    # The multipart body carried the file and the purpose, as the service reads them.
    sent = moonshot.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/files")
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert b'name="purpose"' in sent.raw and b"file-extract" in sent.raw
    assert b'filename="hello.txt"' in sent.raw and b"hello, files" in sent.raw

    assert call(files, mode, "content", uploaded.id) == "hello, files"
    assert call(files, mode, "retrieve", uploaded.id) == uploaded
    assert call(files, mode, "list") == [uploaded]
    assert call(files, mode, "delete", uploaded.id) is None
    assert moonshot.requests[-1].method == "DELETE"
    assert call(files, mode, "list") == []
    with pytest.raises(KimiNotFoundError, match=uploaded.id):
        call(files, mode, "retrieve", uploaded.id)
    with pytest.raises(KimiNotFoundError):
        call(files, mode, "delete", uploaded.id)


@pytest.mark.parametrize("mode", MODES)
def test_upload_from_a_path_streams_the_file(
    moonshot: FakeKimiServer, tmp_path: Path, mode: str
) -> None:
    text = "# Notes\n" + "line of notes\n" * 5000
    path = write(tmp_path, "notes.md", text)
    files = on(moonshot).files
    uploaded = call(files, mode, "upload", path, purpose="file-extract")
    assert uploaded.filename == "notes.md" and uploaded.bytes == len(text)
    # Named, a path's name gives way to the one given.
    renamed = call(files, mode, "upload", str(path), purpose="file-extract", filename="n.txt")
    assert renamed.filename == "n.txt"
    assert call(files, mode, "content", uploaded.id) == text
    # Sent with its length (streamed from the file, not chunked or buffered unknown).
    assert moonshot.requests[0].headers["content-length"] == str(len(moonshot.requests[0].raw))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("form", ["text", "json"])
def test_content_in_both_forms_sources_report(
    moonshot: FakeKimiServer, mode: str, form: Any
) -> None:
    moonshot.platform.files.content_form = form  # type: ignore[union-attr]
    files = on(moonshot).files
    text = 'Quarterly report: revenue up 12%.\n{"not": "a wrapper"}\n'
    uploaded = files.upload(text.encode(), purpose="file-extract", filename="report.txt")
    assert call(files, mode, "content", uploaded.id) == text
    answered = moonshot.requests[-1]
    assert answered.path == f"/v1/files/{uploaded.id}/content"


def test_plain_text_content_that_looks_like_the_wrapper_is_kept_as_sent(
    moonshot: FakeKimiServer,
) -> None:
    # A JSON file whose text happens to have the wrapper's shape, sent as text/plain
    # (the reference's form): it is the file's text, not a wrapper to open.
    wrapper_like = json.dumps({"content": "inner", "type": "file", "filename": "x"})
    files = on(moonshot).files
    uploaded = files.upload(wrapper_like.encode(), purpose="file-extract", filename="w.json")
    assert files.content(uploaded.id) == wrapper_like


def test_content_of_an_image_is_not_text(moonshot: FakeKimiServer) -> None:
    files = on(moonshot).files
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    uploaded = files.upload(png, purpose="image", filename="cat.png")
    assert uploaded.reference == f"ms://{uploaded.id}"
    with pytest.raises(KimiResponseError, match="not text"):
        files.content(uploaded.id)


@pytest.mark.parametrize("mode", MODES)
def test_batch_file_upload_and_its_jsonl_back(moonshot: FakeKimiServer, mode: str) -> None:
    line = {
        "custom_id": "r1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "kimi-k2.6", "messages": [{"role": "user", "content": "hi"}]},
    }
    data = (json.dumps(line) + "\n").encode()
    files = on(moonshot).files
    uploaded = call(files, mode, "upload", data, purpose="batch", filename="requests.jsonl")
    assert uploaded.purpose == "batch"
    assert call(files, mode, "content", uploaded.id) == data.decode()


# --- the loader -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_loader_uploads_one_at_a_time_and_yields_documents(
    moonshot: FakeKimiServer, tmp_path: Path, mode: str
) -> None:
    first = write(tmp_path, "a.txt", "first file")
    second = write(tmp_path, "b.md", "second file")
    model = on(moonshot)
    documents = load(KimiFileLoader([first, str(second)], model=model), mode)
    assert [d.page_content for d in documents] == ["first file", "second file"]
    assert [d.metadata["source"] for d in documents] == [str(first), str(second)]
    assert [d.metadata["filename"] for d in documents] == ["a.txt", "b.md"]
    ids = [d.metadata["file_id"] for d in documents]
    assert all(FILE_ID.match(i) for i in ids) and len(set(ids)) == 2
    # One at a time: upload, read, upload, read. The files stay.
    assert [(r.method, r.path) for r in moonshot.requests] == [
        ("POST", "/v1/files"),
        ("GET", f"/v1/files/{ids[0]}/content"),
        ("POST", "/v1/files"),
        ("GET", f"/v1/files/{ids[1]}/content"),
    ]
    assert [f.id for f in model.files.list()] == ids


def test_loader_load_and_a_single_path(moonshot: FakeKimiServer, tmp_path: Path) -> None:
    path = write(tmp_path, "only.txt", "just one")
    documents = KimiFileLoader(path, model=on(moonshot)).load()
    assert [d.page_content for d in documents] == ["just one"]


@pytest.mark.parametrize("mode", MODES)
def test_loader_deletes_after_reading(moonshot: FakeKimiServer, tmp_path: Path, mode: str) -> None:
    paths = [write(tmp_path, "a.txt", "one"), write(tmp_path, "b.txt", "two")]
    model = on(moonshot)
    documents = load(KimiFileLoader(paths, model=model, delete_after=True), mode)
    assert [d.page_content for d in documents] == ["one", "two"]
    assert [r.method for r in moonshot.requests] == ["POST", "GET", "DELETE"] * 2
    assert model.files.list() == []


@pytest.mark.parametrize("mode", MODES)
def test_loader_deletes_also_when_reading_fails(
    moonshot: FakeKimiServer, tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_kimi.testing import _files

    def broken(self: Any, file_id: str) -> Any:
        return _files.moonshot_error(400, "extraction failed for this file")

    monkeypatch.setattr(_files.FileStore, "content", broken)
    model = on(moonshot)
    loader = KimiFileLoader([write(tmp_path, "a.txt", "one")], model=model, delete_after=True)
    with pytest.raises(Exception, match="extraction failed"):
        load(loader, mode)
    assert [r.method for r in moonshot.requests] == ["POST", "GET", "DELETE"]
    assert model.files.list() == []


def test_loader_refuses_no_paths() -> None:
    with pytest.raises(ValueError, match="at least one path"):
        KimiFileLoader([], model=ChatKimi(api_key="sk-x"))


# --- the balance ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_balance(moonshot: FakeKimiServer, mode: str) -> None:
    moonshot.platform.balance = Balance(available=12.5, voucher=10.0, cash=-0.25)  # type: ignore[union-attr]
    model = on(moonshot)
    balance = call(model, mode, "balance")
    assert balance == KimiBalance(available=12.5, voucher=10.0, cash=-0.25)
    assert [(r.method, r.path) for r in moonshot.requests] == [("GET", "/v1/users/me/balance")]


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_a_used_up_quota_says_to_check_the_balance_and_is_not_retried(
    moonshot: FakeKimiServer, mode: str, fast_backoff: None
) -> None:
    moonshot.platform.balance = Balance(available=0.0, voucher=0.0, cash=0.0)  # type: ignore[union-attr]
    model = on(moonshot, max_retries=2)
    with pytest.raises(KimiRateLimitError) as caught:
        model.invoke("hi") if mode == "invoke" else asyncio.run(model.ainvoke("hi"))
    assert caught.value.quota_exceeded
    assert "model.balance()" in str(caught.value)
    assert moonshot.request_count == 1  # waiting does not bring the balance back
    assert model.balance().available == 0.0


# --- refused before sending -------------------------------------------------------------


def _ace_calls(model: ChatKimi, tmp_path: Path) -> list[tuple[str, Any]]:
    path = write(tmp_path, "a.txt", "text")
    files = model.files
    return [
        ("upload", lambda: files.upload(path, purpose="file-extract")),
        ("content", lambda: files.content("cl123")),
        ("list", files.list),
        ("retrieve", lambda: files.retrieve("cl123")),
        ("delete", lambda: files.delete("cl123")),
        ("aupload", lambda: asyncio.run(files.aupload(path, purpose="file-extract"))),
        ("acontent", lambda: asyncio.run(files.acontent("cl123"))),
        ("alist", lambda: asyncio.run(files.alist())),
        ("aretrieve", lambda: asyncio.run(files.aretrieve("cl123"))),
        ("adelete", lambda: asyncio.run(files.adelete("cl123"))),
        ("balance", model.balance),
        ("abalance", lambda: asyncio.run(model.abalance())),
        ("loader", lambda: KimiFileLoader(path, model=model).load()),
        ("aloader", lambda: load(KimiFileLoader(path, model=model), "async")),
    ]


def test_every_platform_call_on_ace_data_cloud_is_refused_before_sending(tmp_path: Path) -> None:
    with FakeKimiServer(api_key=TOKEN) as ace:
        model = ChatKimi(base_url=ace.base_url, api_key=TOKEN)  # Ace Data Cloud's semantics
        for name, run in _ace_calls(model, tmp_path):
            with pytest.raises(ValueError, match='api_flavor="moonshot"') as caught:
                run()
            assert "nothing was sent" in str(caught.value), name
        assert ace.requests == []


def test_the_refusal_also_comes_without_a_token(tmp_path: Path) -> None:
    # The flavour is the first thing checked: the message is about it, not the token.
    model = ChatKimi(api_key="sk-unused")
    model.api_key = None
    with pytest.raises(ValueError, match="api_flavor"):
        model.files.list()


@pytest.mark.parametrize("mode", MODES)
def test_bad_uploads_are_refused_before_sending(
    moonshot: FakeKimiServer, tmp_path: Path, mode: str
) -> None:
    files = on(moonshot).files
    empty = write(tmp_path, "empty.txt", b"")
    # Over the limit by one byte, as the file system reports it: a sparse file,
    # so nothing of that size is written or read.
    huge = tmp_path / "huge.pdf"
    with huge.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    just_fits = tmp_path / "fits.pdf"
    with just_fits.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES)
    cases: list[tuple[tuple[Any, ...], dict[str, Any], str]] = [
        ((b"",), {"purpose": "file-extract", "filename": "e.txt"}, "empty"),
        ((empty,), {"purpose": "file-extract"}, "empty"),
        ((huge,), {"purpose": "file-extract"}, f"{MAX_FILE_BYTES + 1} bytes, over"),
        (
            (b"x",),
            {"purpose": "assistants", "filename": "x.txt"},
            "'file-extract', 'image', 'video', 'batch'",
        ),
        ((b"x",), {"purpose": "file-extract"}, "filename="),
        ((b"x",), {"purpose": "batch", "filename": "x.txt"}, r"\*\.jsonl"),
        ((tmp_path / "missing.txt",), {"purpose": "file-extract"}, "cannot upload"),
        ((tmp_path,), {"purpose": "file-extract"}, "not a file"),
        ((b"x",), {"purpose": "file-extract", "filename": " "}, "filename"),
    ]
    for args, kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            call(files, mode, "upload", *args, **kwargs)
    with pytest.raises(TypeError, match="a path or bytes"):
        call(files, mode, "upload", 42, purpose="file-extract")
    for bad_id in ("", "   "):
        with pytest.raises(ValueError, match="file_id"):
            call(files, mode, "content", bad_id)
    assert moonshot.requests == []
    assert os.path.getsize(just_fits) == MAX_FILE_BYTES  # the limit itself is allowed (below)


def test_an_id_is_sent_as_one_path_segment(moonshot: FakeKimiServer) -> None:
    files = on(moonshot).files
    with pytest.raises(KimiNotFoundError):
        files.retrieve("../users/me/balance")
    assert moonshot.requests[-1].path == "/v1/files/..%2Fusers%2Fme%2Fbalance"


# --- the transport: errors, redaction, what is resent ----------------------------------


def _answering(*answers: tuple[int, bytes]) -> Any:
    """A raw server handler answering each request in turn (then the last answer again)."""
    queue = list(answers)

    def handle(connection: RawConnection) -> None:
        while connection.read_request() is not None:
            status, body = queue.pop(0) if len(queue) > 1 else queue[0]
            if status == 0:  # take the request, then drop the connection without an answer
                return
            connection.send_response(status, body)
            return

    return handle


def _unframed(body: bytes) -> bytes:
    """A multipart body without its boundary (random per request)."""
    boundary = body.split(b"\r\n", 1)[0]
    return body.replace(boundary, b"--")


def _platform_base(server: RawServer) -> str:
    return f"http://127.0.0.1:{server.port}/v1"


@pytest.mark.parametrize("mode", MODES)
def test_a_platform_error_is_typed_with_its_trace_id_and_no_token(mode: str) -> None:
    body = json.dumps(
        {
            "error": {
                "message": f"no such file (you sent Bearer {TOKEN})",
                "type": "resource_not_found_error",
            },
            "trace_id": "trace-1234",
        }
    ).encode()
    with RawServer(_answering((404, body))) as server:
        files = on(_platform_base(server)).files
        with pytest.raises(KimiNotFoundError) as caught:
            call(files, mode, "retrieve", "cl0")
    error = caught.value
    assert (error.status_code, error.code, error.trace_id) == (
        404,
        "resource_not_found_error",
        "trace-1234",
    )
    assert "trace-1234" in str(error)
    assert TOKEN not in str(error) and TOKEN not in json.dumps(error.body)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ambiguous_opt_in", [False, True])
def test_an_upload_is_not_resent_after_a_loss_once_sent(
    tmp_path: Path, mode: str, ambiguous_opt_in: bool, fast_backoff: None
) -> None:
    # The connection drops after the whole upload arrived: the file may exist now.
    with RawServer(_answering((0, b""), (200, b"{}"))) as server:
        model = on(
            _platform_base(server), max_retries=3, retry_on_ambiguous_failure=ambiguous_opt_in
        )
        path = write(tmp_path, "a.txt", "some text")
        with pytest.raises(KimiConnectionError, match="may have received it"):
            call(model.files, mode, "upload", path, purpose="file-extract")
        assert len(server.requests) == 1
        assert b"some text" in server.requests[0].body


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_an_upload_is_not_resent_after_a_server_error(
    mode: str, status: int, fast_backoff: None
) -> None:
    error = json.dumps({"error": {"message": "upstream failed", "type": "api_error"}}).encode()
    with RawServer(_answering((status, error))) as server:
        model = on(_platform_base(server), max_retries=3)
        with pytest.raises(KimiServerError):
            call(model.files, mode, "upload", b"x", purpose="file-extract", filename="a.txt")
        assert len(server.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_an_upload_refused_with_429_is_sent_again_from_its_start(
    mode: str, fast_backoff: None
) -> None:
    limited = json.dumps({"error": {"message": "slow down", "type": "rate_limit_reached_error"}})
    uploaded = {
        "id": "cl000000000000000001",
        "object": "file",
        "bytes": 5,
        "created_at": 1,
        "filename": "a.txt",
        "purpose": "file-extract",
        "status": "ok",
    }
    with RawServer(
        _answering((429, limited.encode()), (200, json.dumps(uploaded).encode()))
    ) as server:
        model = on(_platform_base(server), max_retries=3)
        result = call(
            model.files, mode, "upload", b"hello", purpose="file-extract", filename="a.txt"
        )
        assert result.id == "cl000000000000000001"
        assert len(server.requests) == 2
        # The whole file, twice (each with its own multipart boundary).
        first, second = (_unframed(r.body) for r in server.requests)
        assert first == second and b"hello" in second


@pytest.mark.parametrize("mode", MODES)
def test_a_read_is_resent_after_a_loss_once_sent(mode: str, fast_backoff: None) -> None:
    listing = json.dumps({"object": "list", "data": []}).encode()
    with RawServer(_answering((0, b""), (200, listing))) as server:
        model = on(_platform_base(server), max_retries=2)
        assert call(model.files, mode, "list") == []
        assert len(server.requests) == 2


@pytest.mark.parametrize("mode", MODES)
def test_a_platform_answer_that_is_not_json_raises(mode: str) -> None:
    with RawServer(_answering((200, b"<html>gateway</html>"))) as server:
        model = on(_platform_base(server))
        with pytest.raises(KimiResponseError, match="not JSON"):
            call(model, mode, "balance")


# --- kimi-k3: uploaded images and videos, referenced as ms://<file-id> ----------------


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_uploaded_media_go_to_kimi_k3_as_ms_references(moonshot: FakeKimiServer, mode: str) -> None:
    model = on(moonshot, model="kimi-k3")
    image = model.files.upload(b"\x89PNG\r\n\x1a\n", purpose="image", filename="cat.png")
    video = model.files.upload(b"\x00\x00\x00\x18ftypmp42", purpose="video", filename="a.mp4")
    message = HumanMessage(
        content=[
            {"type": "text", "text": "What is in these?"},
            {"type": "image", "url": image.reference},
            {"type": "image_url", "image_url": {"url": image.reference}},
            {"type": "video", "url": video.reference},
        ]
    )
    answer = model.invoke([message]) if mode == "invoke" else asyncio.run(model.ainvoke([message]))
    assert isinstance(answer.content, str)
    parts = moonshot.requests[-1].body["messages"][-1]["content"]
    assert parts[1:] == [
        {"type": "image_url", "image_url": {"url": f"ms://{image.id}"}},
        {"type": "image_url", "image_url": {"url": f"ms://{image.id}"}},
        {"type": "video_url", "video_url": {"url": f"ms://{video.id}"}},
    ]


# --- the token count: the service's, on request -----------------------------------------


def test_token_counting_on_moonshot_asks_the_service_unless_turned_off(
    moonshot: FakeKimiServer,
) -> None:
    # The default: Moonshot's own count, as ChatAnthropic asks Anthropic's.
    assert on(moonshot).get_num_tokens_from_messages([HumanMessage("Hello there")]) == 3
    assert [r.path for r in moonshot.requests] == ["/v1/tokenizers/estimate-token-count"]
    # False: the local estimate, no request (trim_messages in a loop, offline).
    local = on(moonshot, count_tokens_with_service=False)
    assert local.get_num_tokens_from_messages([HumanMessage("Hello there")]) > 0
    assert len(moonshot.requests) == 1


def test_token_counting_on_ace_data_cloud_stays_local() -> None:
    with FakeKimiServer(api_key=TOKEN) as ace:
        model = ChatKimi(base_url=ace.base_url, api_key=TOKEN)
        assert model.get_num_tokens_from_messages([HumanMessage("Hello there")]) > 0
        assert ace.requests == []


def test_token_counting_with_the_service(moonshot: FakeKimiServer) -> None:
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """Current weather in a city."""
        return "sunny"

    model = on(moonshot)
    messages = [HumanMessage("What's the weather in Rome? " * 10)]
    counted = model.get_num_tokens_from_messages(messages, tools=[get_weather])
    sent = moonshot.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/tokenizers/estimate-token-count")
    assert sent.body["model"] == "kimi-k2.6"
    assert sent.body["messages"] == [
        {"role": "user", "content": "What's the weather in Rome? " * 10}
    ]
    assert sent.body["tools"][0]["function"]["name"] == "get_weather"
    assert "stream" not in sent.body
    # The simulator's count: the characters of the text, divided by four, rounded up.
    assert counted == -(-len("What's the weather in Rome? " * 10) // 4)
    # The same count the service then reports for the request.
    answer = model.invoke(messages)
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] == counted


def test_token_counting_with_the_service_on_ace_data_cloud_is_refused() -> None:
    with FakeKimiServer(api_key=TOKEN) as ace:
        model = ChatKimi(base_url=ace.base_url, api_key=TOKEN, count_tokens_with_service=True)
        with pytest.raises(ValueError, match='api_flavor="moonshot"'):
            model.get_num_tokens_from_messages([HumanMessage("hi")])
        assert ace.requests == []


def test_a_service_count_error_is_typed(moonshot: FakeKimiServer) -> None:
    model = on(moonshot, model="kimi-unknown-model", count_tokens_with_service=True)
    with pytest.raises(KimiNotFoundError):
        model.get_num_tokens_from_messages([HumanMessage("hi")])


# --- streaming: an upload from a path, a body read in pieces ----------------------------


def _discarding_upload_server() -> RawServer:
    """Reads each request's body in pieces and drops them; answers with a file object."""
    answer = json.dumps(
        {
            "id": "cl000000000000000002",
            "object": "file",
            "bytes": 1,
            "created_at": 1,
            "filename": "big.txt",
            "purpose": "file-extract",
            "status": "ok",
        }
    ).encode()

    def handle(connection: RawConnection) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            piece = connection.sock.recv(65536)
            if not piece:
                return
            head += piece
        head, _, received = head.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        left = length - len(received)
        while left > 0:
            piece = connection.sock.recv(min(left, 65536))
            if not piece:
                return
            left -= len(piece)
        connection.send_response(200, answer)

    return RawServer(handle)


@pytest.mark.parametrize("mode", MODES)
def test_an_upload_from_a_path_is_streamed_not_read_whole(tmp_path: Path, mode: str) -> None:
    import tracemalloc

    size = 16 * 1024 * 1024
    path = tmp_path / "big.txt"
    with path.open("wb") as handle:
        for _ in range(size // 65536):
            handle.write(b"x" * 65536)
    with _discarding_upload_server() as server:
        model = on(_platform_base(server))
        call(model.files, mode, "upload", b"warm", purpose="file-extract", filename="w.txt")
        tracemalloc.start()
        try:
            uploaded = call(model.files, mode, "upload", path, purpose="file-extract")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert uploaded.id == "cl000000000000000002"
    # Read in pieces as it is sent: the peak is a small part of the file
    # (requests' files= holds it at least twice: 32 MB here).
    assert peak < size // 4, peak


@pytest.mark.parametrize("mode", MODES)
def test_a_body_read_in_pieces_for_the_batch_api(moonshot: FakeKimiServer, mode: str) -> None:
    from langchain_kimi._platform import Platform

    model = on(moonshot)
    data = "".join(json.dumps({"custom_id": f"r{i}", "n": i}) + "\n" for i in range(2000))
    uploaded = model.files.upload(data.encode(), purpose="batch", filename="in.jsonl")
    platform = Platform(model, "a test")
    path = f"/files/{uploaded.id}/content"
    if mode == "sync":
        pieces = list(platform.stream(path))
    else:

        async def read() -> list[bytes]:
            return [piece async for piece in platform.astream(path)]

        pieces = asyncio.run(read())
    assert b"".join(pieces).decode() == data


@pytest.mark.parametrize("mode", MODES)
def test_the_users_own_http_client_carries_platform_calls(
    moonshot: FakeKimiServer, tmp_path: Path, mode: str
) -> None:
    import aiohttp
    import requests

    path = write(tmp_path, "a.txt", "from the user's session")
    if mode == "sync":
        with requests.Session() as session:
            session.headers["X-Users-Session"] = "yes"
            model = on(moonshot, http_client=session)
            uploaded = model.files.upload(path, purpose="file-extract")
            assert model.files.content(uploaded.id) == "from the user's session"
    else:

        async def run() -> str:
            async with aiohttp.ClientSession(headers={"X-Users-Session": "yes"}) as session:
                model = on(moonshot, http_async_client=session)
                uploaded = await model.files.aupload(path, purpose="file-extract")
                return await model.files.acontent(uploaded.id)

        assert asyncio.run(run()) == "from the user's session"
    assert all(r.headers.get("x-users-session") == "yes" for r in moonshot.requests)


@pytest.mark.parametrize("mode", MODES)
def test_an_error_page_echoing_the_request_shows_no_credential(mode: str) -> None:
    # A gateway that quotes the whole request back, headers included.
    def echo(connection: RawConnection) -> None:
        request = connection.read_request()
        if request is not None:
            connection.send_response(400, request.head, content_type="text/plain")

    with RawServer(echo) as server:
        model = on(_platform_base(server), default_headers={"X-Api-Key": "header-secret-42"})
        with pytest.raises(Exception) as caught:
            call(model.files, mode, "upload", b"x", purpose="file-extract", filename="a.txt")
    shown = f"{caught.value} {caught.value!r} {getattr(caught.value, 'body', '')}"
    assert "POST /v1/files" in shown  # the echo arrived...
    assert TOKEN not in shown and "header-secret-42" not in shown  # ...redacted
