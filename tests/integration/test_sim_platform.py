"""The simulator's Moonshot platform endpoints, over real sockets, with plain HTTP clients.

Files, batches, the balance and the token estimate, as Moonshot's reference
(August 2026) describes them: every call's success and every documented
refusal, with ``requests`` and (for the async twin) ``aiohttp``. The client side
(``model.files``, ``model.batch_submit``) comes later and builds on this.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import requests

from langchain_kimi.testing import Balance, FakeKimiServer, Reply

from .conftest import TOKEN

FILE_ID = re.compile(r"^cl[a-z0-9]{18}$")
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def moonshot() -> Iterator[FakeKimiServer]:
    with FakeKimiServer(api_key=TOKEN, flavor="moonshot") as server:
        yield server


def get(server: FakeKimiServer, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(f"{server.base_url}{path}", headers=AUTH, timeout=30, **kwargs)


def post(server: FakeKimiServer, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("headers", AUTH)
    return requests.post(f"{server.base_url}{path}", timeout=30, **kwargs)


def delete(server: FakeKimiServer, path: str) -> requests.Response:
    return requests.delete(f"{server.base_url}{path}", headers=AUTH, timeout=30)


def upload(
    server: FakeKimiServer, filename: str, data: bytes, purpose: str = "file-extract"
) -> requests.Response:
    return post(server, "/files", files={"file": (filename, data)}, data={"purpose": purpose})


def refused(answer: requests.Response, status: int, text: str) -> None:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert text in error["message"], error
    assert error["type"] == {
        400: "invalid_request_error",
        404: "resource_not_found_error",
        429: "exceeded_current_quota_error",
    }.get(status, error["type"])


def request_line(custom_id: str, content: str = "hi", **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "kimi-k2.6", "messages": [{"role": "user", "content": content}], **body},
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def batch_file(server: FakeKimiServer, lines: list[dict[str, Any]]) -> str:
    answer = upload(server, "requests.jsonl", jsonl(lines), purpose="batch")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def create(server: FakeKimiServer, file_id: str, **fields: Any) -> requests.Response:
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    return post(server, "/batches", json={**body, **fields})


def run_batch(server: FakeKimiServer, lines: list[dict[str, Any]]) -> dict[str, Any]:
    created = create(server, batch_file(server, lines))
    assert created.status_code == 200, created.text
    return dict(get(server, f"/batches/{created.json()['id']}").json())


def file_lines(server: FakeKimiServer, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    answer = get(server, f"/files/{file_id}/content")
    assert answer.status_code == 200
    return [json.loads(line) for line in answer.text.splitlines()]


# --- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", ["file-extract", "image", "video", "batch"])
def test_upload_answers_the_file_object(moonshot: FakeKimiServer, purpose: str) -> None:
    name = "requests.jsonl" if purpose == "batch" else "notes.txt"
    data = jsonl([request_line("a")]) if purpose == "batch" else "Hello, 世界".encode()
    answer = upload(moonshot, name, data, purpose)
    assert answer.status_code == 200, answer.text
    stored = answer.json()
    assert FILE_ID.match(stored["id"])
    assert isinstance(stored.pop("created_at"), int)
    assert stored == {
        "id": stored["id"],
        "object": "file",
        "bytes": len(data),
        "filename": name,
        "purpose": purpose,
        "status": "ok",
        "status_details": "",
    }


def test_list_retrieve_and_delete(moonshot: FakeKimiServer) -> None:
    first = upload(moonshot, "a.txt", b"alpha").json()
    second = upload(moonshot, "b.md", b"# beta", "file-extract").json()
    listing = get(moonshot, "/files").json()
    assert listing == {"object": "list", "data": [first, second]}
    assert get(moonshot, f"/files/{second['id']}").json() == second

    gone = delete(moonshot, f"/files/{first['id']}")
    assert gone.status_code == 200
    assert gone.json() == {"id": first["id"], "object": "file", "deleted": True}
    assert get(moonshot, "/files").json()["data"] == [second]
    refused(delete(moonshot, f"/files/{first['id']}"), 404, first["id"])  # already deleted
    refused(get(moonshot, f"/files/{first['id']}"), 404, first["id"])
    refused(get(moonshot, f"/files/{first['id']}/content"), 404, first["id"])
    refused(get(moonshot, "/files/clnosuchfile000000000"), 404, "clnosuchfile000000000")


def test_content_of_a_text_file_is_its_text(moonshot: FakeKimiServer) -> None:
    stored = upload(moonshot, "notes.md", "Line one\nLigne deux: été".encode()).json()
    answer = get(moonshot, f"/files/{stored['id']}/content")
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert answer.text == "Line one\nLigne deux: été"


def test_content_in_the_json_object_form(moonshot: FakeKimiServer) -> None:
    assert moonshot.platform is not None
    moonshot.platform.files.content_form = "json"
    stored = upload(moonshot, "notes.txt", b"the text").json()
    assert get(moonshot, f"/files/{stored['id']}/content").json() == {
        "content": "the text",
        "file_type": "text/plain",
        "filename": "notes.txt",
        "title": "",
        "type": "file",
    }


def test_content_of_a_binary_document_is_a_stand_in_and_an_image_its_bytes(
    moonshot: FakeKimiServer,
) -> None:
    pdf = b"%PDF-1.7\n\xe2\xe3\xcf\xd3\n" + bytes(range(256))
    stored = upload(moonshot, "report.pdf", pdf).json()
    text = get(moonshot, f"/files/{stored['id']}/content").text
    assert text == f"[simulated extraction of report.pdf: {len(pdf)} bytes]"
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    image = upload(moonshot, "cat.png", png, "image").json()
    assert get(moonshot, f"/files/{image['id']}/content").content == png


@pytest.mark.parametrize(
    ("setting", "value", "files", "message"),
    [
        (None, None, [("empty.txt", b"")], "File size is zero"),
        ("max_file_bytes", 10, [("big.txt", b"x" * 11)], "File size is too large"),
        # Far over the limit: refused from the body's size, before parsing.
        ("max_file_bytes", 10, [("huge.txt", b"x" * 200_000)], "File size is too large"),
        ("max_files", 2, [("a.txt", b"a"), ("b.txt", b"b"), ("c.txt", b"c")], "Too many uploaded"),
        ("max_total_bytes", 5, [("a.txt", b"abc"), ("b.txt", b"def")], "Total size"),
    ],
)
def test_upload_limits(
    moonshot: FakeKimiServer,
    setting: str | None,
    value: int | None,
    files: list[tuple[str, bytes]],
    message: str,
) -> None:
    assert moonshot.platform is not None
    if setting is not None:
        setattr(moonshot.platform.files, setting, value)
    *accepted, last = files
    for name, data in accepted:
        assert upload(moonshot, name, data).status_code == 200
    refused(upload(moonshot, *last), 400, message)
    assert len(get(moonshot, "/files").json()["data"]) == len(accepted)  # nothing stored


def test_the_file_size_limit_defaults_to_100_mb(moonshot: FakeKimiServer) -> None:
    assert moonshot.platform is not None
    assert moonshot.platform.files.max_file_bytes == 100 * 1024 * 1024
    assert moonshot.platform.files.max_files == 1000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"files": {"file": ("a.txt", b"a")}, "data": {"purpose": "fine-tune"}}, "invalid purpose"),
        ({"files": {"file": ("a.txt", b"a")}}, "invalid purpose"),
        ({"files": {"other": ("a.txt", b"a")}, "data": {"purpose": "image"}}, "'file' part"),
        ({"json": {"file": "a", "purpose": "image"}}, "multipart/form-data"),
        (
            {"files": {"file": ("requests.json", b"{}")}, "data": {"purpose": "batch"}},
            ".jsonl file",
        ),
    ],
)
def test_upload_refusals(moonshot: FakeKimiServer, kwargs: dict[str, Any], message: str) -> None:
    refused(post(moonshot, "/files", **kwargs), 400, message)
    assert get(moonshot, "/files").json()["data"] == []


def test_every_platform_call_needs_the_token_and_a_refused_one_changes_nothing(
    moonshot: FakeKimiServer,
) -> None:
    wrong = {"Authorization": "Bearer sk-wrong"}
    calls = [
        ("POST", "/files"),
        ("GET", "/files"),
        ("GET", "/files/clx/content"),
        ("DELETE", "/files/clx"),
        ("POST", "/batches"),
        ("GET", "/batches"),
        ("POST", "/batches/batch_x/cancel"),
        ("GET", "/users/me/balance"),
        ("POST", "/tokenizers/estimate-token-count"),
    ]
    for method, path in calls:
        answer = requests.request(
            method,
            f"{moonshot.base_url}{path}",
            headers=wrong,
            files={"file": ("a.txt", b"a")} if path == "/files" and method == "POST" else None,
            data={"purpose": "image"} if path == "/files" and method == "POST" else None,
            timeout=10,
        )
        assert answer.status_code == 401, (method, path)
        assert answer.json()["error"]["type"] == "incorrect_api_key_error"
    assert get(moonshot, "/files").json()["data"] == []
    # Recorded like chat requests, refused ones included.
    assert [(r.method, r.path.removeprefix("/v1")) for r in moonshot.requests[:-1]] == calls


def test_a_wrong_method_is_405_and_other_paths_404(moonshot: FakeKimiServer) -> None:
    answer = requests.put(f"{moonshot.base_url}/files", headers=AUTH, timeout=10)
    assert answer.status_code == 405 and "GET, POST" in answer.json()["error"]["message"]
    assert get(moonshot, "/fine_tuning/jobs").status_code == 404
    assert get(moonshot, "/files/a/b/c").status_code == 404


@pytest.mark.parametrize(
    "path", ["/files", "/batches", "/users/me/balance", "/tokenizers/estimate-token-count"]
)
def test_playing_ace_data_cloud_the_platform_paths_are_404(path: str) -> None:
    with FakeKimiServer(api_key=TOKEN) as ace:
        assert ace.platform is None
        for method in ("GET", "POST"):
            answer = requests.request(method, f"{ace.base_url}{path}", headers=AUTH, timeout=10)
            assert answer.status_code == 404
        moved = requests.get(f"http://127.0.0.1:{ace.port}/v1{path}", headers=AUTH, timeout=10)
        assert moved.status_code == 404


async def test_files_over_aiohttp(moonshot: FakeKimiServer) -> None:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        form = aiohttp.FormData()
        form.add_field("purpose", "file-extract")
        form.add_field("file", "Bonjour, été".encode(), filename="hello.txt")
        async with session.post(f"{moonshot.base_url}/files", data=form) as answer:
            assert answer.status == 200
            stored = await answer.json()
        async with session.get(f"{moonshot.base_url}/files/{stored['id']}/content") as answer:
            assert await answer.text() == "Bonjour, été"
        async with session.delete(f"{moonshot.base_url}/files/{stored['id']}") as answer:
            assert (await answer.json())["deleted"] is True
        async with session.get(f"{moonshot.base_url}/files") as answer:
            assert (await answer.json())["data"] == []


# --- batches: creating -----------------------------------------------------------------------


def test_a_batch_runs_every_line_and_writes_the_output_file(moonshot: FakeKimiServer) -> None:
    file_id = batch_file(moonshot, [request_line(f"request-{n}", f"question {n}") for n in (1, 2)])
    created = create(moonshot, file_id, metadata={"job": "nightly"})
    assert created.status_code == 200
    batch = created.json()
    assert batch["status"] == "validating"  # what the create call answers
    assert re.match(r"^batch_[a-z0-9]{24}$", batch["id"])
    assert batch["object"] == "batch" and batch["endpoint"] == "/v1/chat/completions"
    assert batch["input_file_id"] == file_id and batch["metadata"] == {"job": "nightly"}
    assert batch["expires_at"] == batch["created_at"] + 24 * 3600

    done = get(moonshot, f"/batches/{batch['id']}").json()  # progress "instant": finished
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
    for state in ("in_progress", "finalizing", "completed"):
        assert isinstance(done[f"{state}_at"], int)
    assert done["failed_at"] is None and done["error_file_id"] is None and done["errors"] is None
    output_file = get(moonshot, f"/files/{done['output_file_id']}").json()
    assert output_file["purpose"] == "batch_output"
    lines = file_lines(moonshot, done["output_file_id"])
    assert [line["custom_id"] for line in lines] == ["request-1", "request-2"]
    for number, line in enumerate(lines, start=1):
        assert line["error"] is None and line["id"].startswith("batch_req_")
        response = line["response"]
        assert response["status_code"] == 200 and response["request_id"]
        message = response["body"]["choices"][0]["message"]
        assert message["content"] == f"Echo: question {number}"
        assert message["reasoning_content"]  # kimi-k2.6 thinks by default
        assert response["body"]["usage"]["prompt_tokens"] > 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input_file_id": None}, "input_file_id is required"),
        ({"input_file_id": "clnosuchfile000000000"}, "no such file"),
        ({"endpoint": "/v1/embeddings"}, "endpoint must be"),
        ({"endpoint": None}, "endpoint must be"),
        ({"completion_window": "11h"}, "completion_window"),
        ({"completion_window": "8d"}, "completion_window"),
        ({"completion_window": "169h"}, "completion_window"),
        ({"completion_window": "24"}, "completion_window"),
        ({"completion_window": None}, "completion_window"),
        ({"metadata": {f"k{n}": "v" for n in range(17)}}, "at most 16"),
        ({"metadata": {"k" * 65: "v"}}, "longer than 64"),
        ({"metadata": {"k": "v" * 513}}, "longer than 512"),
        ({"metadata": {"k": 1}}, "must be a string"),
        ({"metadata": ["k"]}, "metadata must be an object"),
    ],
)
def test_create_refusals(moonshot: FakeKimiServer, fields: dict[str, Any], message: str) -> None:
    file_id = batch_file(moonshot, [request_line("a")])
    refused(create(moonshot, file_id, **fields), 400, message)
    assert get(moonshot, "/batches").json()["data"] == []


def test_create_refuses_a_file_not_uploaded_for_batch(moonshot: FakeKimiServer) -> None:
    other = upload(moonshot, "requests.jsonl", jsonl([request_line("a")])).json()
    refused(create(moonshot, other["id"]), 400, "not 'batch'")
    refused(post(moonshot, "/batches", data=b"not json"), 400, "JSON object")


@pytest.mark.parametrize("window", ["12h", "7d", "168h", "1d", "24h"])
def test_create_accepts_windows_from_12h_to_7d_and_the_metadata_limits(
    moonshot: FakeKimiServer, window: str
) -> None:
    file_id = batch_file(moonshot, [request_line("a")])
    metadata = {f"{n:02d}" + "k" * 62: "v" * 512 for n in range(16)}
    created = create(moonshot, file_id, completion_window=window, metadata=metadata)
    assert created.status_code == 200, created.text
    hours = int(window[:-1]) * (24 if window.endswith("d") else 1)
    assert created.json()["expires_at"] - created.json()["created_at"] == hours * 3600


def test_retrieve_list_and_cancel_of_unknown_batches(moonshot: FakeKimiServer) -> None:
    refused(get(moonshot, "/batches/batch_nope"), 404, "batch_nope")
    refused(post(moonshot, "/batches/batch_nope/cancel"), 404, "batch_nope")
    assert get(moonshot, "/batches").json() == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


def test_list_pages_newest_first(moonshot: FakeKimiServer) -> None:
    file_id = batch_file(moonshot, [request_line("a")])
    ids = [create(moonshot, file_id).json()["id"] for _ in range(5)]
    newest_first = ids[::-1]
    page = get(moonshot, "/batches", params={"limit": 2}).json()
    assert [batch["id"] for batch in page["data"]] == newest_first[:2]
    assert page["has_more"] is True and page["last_id"] == newest_first[1]
    page = get(moonshot, "/batches", params={"limit": 2, "after": page["last_id"]}).json()
    assert [batch["id"] for batch in page["data"]] == newest_first[2:4]
    page = get(moonshot, "/batches", params={"after": page["last_id"]}).json()
    assert [batch["id"] for batch in page["data"]] == newest_first[4:]
    assert page["has_more"] is False
    assert len(get(moonshot, "/batches").json()["data"]) == 5  # default limit 20
    refused(get(moonshot, "/batches", params={"limit": 0}), 400, "limit")
    refused(get(moonshot, "/batches", params={"limit": 101}), 400, "limit")
    refused(get(moonshot, "/batches", params={"after": "batch_nope"}), 400, "batch_nope")


# --- batches: validating the input -------------------------------------------------------------


def bad_lines(kind: str) -> bytes:
    good = jsonl([request_line("a")])
    other: dict[str, Any]
    if kind == "invalid_json_line":
        return good + b'{"custom_id": "b", \n'
    if kind == "missing_custom_id":
        other = request_line("b")
        del other["custom_id"]
    elif kind == "duplicate_custom_id":
        other = request_line("a")
    elif kind == "invalid_method":
        other = {**request_line("b"), "method": "GET"}
    elif kind == "invalid_url":
        other = {**request_line("b"), "url": "/v1/embeddings"}
    elif kind == "invalid_body":
        other = {**request_line("b"), "body": "hi"}
    elif kind == "mixed_models":
        other = request_line("b")
        other["body"]["model"] = "kimi-k2.5"
    elif kind == "empty_file":
        return b"\n  \n"
    else:
        raise AssertionError(kind)
    return good + jsonl([other])


@pytest.mark.parametrize(
    "kind",
    [
        "invalid_json_line",
        "missing_custom_id",
        "duplicate_custom_id",
        "invalid_method",
        "invalid_url",
        "invalid_body",
        "mixed_models",
        "empty_file",
    ],
)
def test_an_invalid_input_file_fails_the_batch(moonshot: FakeKimiServer, kind: str) -> None:
    stored = upload(moonshot, "requests.jsonl", bad_lines(kind), "batch").json()
    batch = get(moonshot, f"/batches/{create(moonshot, stored['id']).json()['id']}").json()
    assert batch["status"] == "failed" and isinstance(batch["failed_at"], int)
    assert batch["in_progress_at"] is None and batch["output_file_id"] is None
    [error] = batch["errors"]["data"]
    assert error["code"] == kind
    assert error["line"] == (None if kind == "empty_file" else 2)
    assert moonshot.request_count == 3  # upload, create, retrieve: no line was run


@pytest.mark.parametrize("model", ["kimi-k3", "kimi-k2.7-code", "kimi-k2-thinking"])
def test_models_the_batch_api_does_not_serve_fail_the_batch(
    moonshot: FakeKimiServer, model: str
) -> None:
    line = request_line("a")
    line["body"]["model"] = model
    batch = run_batch(moonshot, [line])
    assert batch["status"] == "failed"
    [error] = batch["errors"]["data"]
    assert error["code"] == "model_not_supported" and model in error["message"]
    assert "kimi-k2.6, kimi-k2.5" in error["message"]


def test_kimi_k25_batches_are_served(moonshot: FakeKimiServer) -> None:
    line = request_line("a")
    line["body"]["model"] = "kimi-k2.5"
    assert run_batch(moonshot, [line])["status"] == "completed"


# --- batches: running the lines ----------------------------------------------------------------


def test_lines_go_through_the_chat_rules_and_the_reply_sources(moonshot: FakeKimiServer) -> None:
    seen: list[str] = []

    def responder(body: dict[str, Any]) -> Reply:
        seen.append(body["messages"][0]["content"])
        return Reply(content="from the responder")

    moonshot.set_responder(responder)
    moonshot.queue(
        Reply(content="queued"),
        Reply.error(503, "server_error", "busy", style="moonshot"),
        Reply(fault="disconnect"),
    )
    lines = [
        request_line("queued", "one"),
        request_line("error", "two"),
        request_line("rule", "three", temperature=0.3),  # kimi-k2.6 fixes temperature
        request_line("stream", "four", stream=True),
        request_line("fault", "five"),
        request_line("responder", "six"),
    ]
    batch = run_batch(moonshot, lines)
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 6, "completed": 2, "failed": 4}
    output = {line["custom_id"]: line for line in file_lines(moonshot, batch["output_file_id"])}
    errors = {line["custom_id"]: line for line in file_lines(moonshot, batch["error_file_id"])}
    assert set(output) == {"queued", "responder"}
    assert set(errors) == {"error", "rule", "stream", "fault"}

    def content(line: dict[str, Any]) -> str:
        return str(line["response"]["body"]["choices"][0]["message"]["content"])

    # Queued replies answer lines in input order; refused lines consume none.
    assert content(output["queued"]) == "queued"
    assert content(output["responder"]) == "from the responder"
    assert seen == ["six"]
    assert moonshot.pending_replies == 0
    assert errors["error"]["response"]["status_code"] == 503
    assert errors["error"]["response"]["body"] == {
        "error": {"message": "busy", "type": "server_error"}
    }
    rule = errors["rule"]["response"]
    assert rule["status_code"] == 400
    assert rule["body"]["error"]["type"] == "invalid_request_error"
    assert "temperature" in rule["body"]["error"]["message"]
    assert errors["stream"]["response"]["status_code"] == 400
    assert "stream" in errors["stream"]["response"]["body"]["error"]["message"]
    assert errors["fault"]["response"]["status_code"] == 500
    for line in errors.values():
        assert line["error"] is None  # they ran: the answer is in response


def test_the_responder_answers_lines_when_nothing_is_queued(moonshot: FakeKimiServer) -> None:
    bodies: list[dict[str, Any]] = []

    def responder(body: dict[str, Any]) -> Reply:
        bodies.append(body)
        return Reply(content=f"#{len(bodies)}")

    moonshot.set_responder(responder)
    batch = run_batch(moonshot, [request_line("a", max_tokens=5), request_line("b")])
    contents = [
        line["response"]["body"]["choices"][0]["message"]["content"]
        for line in file_lines(moonshot, batch["output_file_id"])
    ]
    assert contents == ["#1", "#2"]
    assert bodies[0]["max_tokens"] == 5  # the line's body, as written


def test_lines_are_answered_429_when_the_balance_is_used_up(moonshot: FakeKimiServer) -> None:
    assert moonshot.platform is not None
    moonshot.platform.balance = Balance(available=0.0, voucher=0.0, cash=0.0)
    batch = run_batch(moonshot, [request_line("a")])
    [line] = file_lines(moonshot, batch["error_file_id"])
    assert line["response"]["status_code"] == 429
    assert line["response"]["body"]["error"]["type"] == "exceeded_current_quota_error"


# --- batches: progress, order, cancel, expiry --------------------------------------------------


def test_per_retrieve_moves_one_state_per_retrieve(moonshot: FakeKimiServer) -> None:
    assert moonshot.platform is not None
    moonshot.platform.batches.progress = "per_retrieve"
    batch_id = create(moonshot, batch_file(moonshot, [request_line("a")])).json()["id"]
    states = [get(moonshot, f"/batches/{batch_id}").json()["status"] for _ in range(5)]
    assert states == ["in_progress", "finalizing", "completed", "completed", "completed"]
    # Listing does not move anything.
    assert get(moonshot, "/batches").json()["data"][0]["status"] == "completed"


def test_manual_progress_and_lines_per_step(moonshot: FakeKimiServer) -> None:
    platform = moonshot.platform
    assert platform is not None
    platform.batches.progress = "manual"
    platform.batches.lines_per_step = 2
    batch_id = create(moonshot, batch_file(moonshot, [request_line(f"r{n}") for n in range(5)]))
    batch_id = batch_id.json()["id"]

    def state() -> tuple[str, dict[str, int]]:
        batch = get(moonshot, f"/batches/{batch_id}").json()
        return batch["status"], batch["request_counts"]

    assert state() == ("validating", {"total": 0, "completed": 0, "failed": 0})
    platform.advance_batches()
    assert state() == ("in_progress", {"total": 5, "completed": 0, "failed": 0})
    platform.advance_batches()
    assert state() == ("in_progress", {"total": 5, "completed": 2, "failed": 0})
    platform.advance_batches(2)
    assert state() == ("finalizing", {"total": 5, "completed": 5, "failed": 0})
    platform.advance_batches()
    assert state() == ("completed", {"total": 5, "completed": 5, "failed": 0})


def test_cancel_keeps_the_output_that_ran_and_lists_the_lines_that_did_not(
    moonshot: FakeKimiServer,
) -> None:
    platform = moonshot.platform
    assert platform is not None
    platform.batches.progress = "manual"
    platform.batches.lines_per_step = 2
    batch_id = create(moonshot, batch_file(moonshot, [request_line(f"r{n}") for n in range(5)]))
    batch_id = batch_id.json()["id"]
    platform.advance_batches(2)  # validated, then r0 and r1 ran
    cancelling = post(moonshot, f"/batches/{batch_id}/cancel")
    assert cancelling.status_code == 200
    assert cancelling.json()["status"] == "cancelling"
    assert isinstance(cancelling.json()["cancelling_at"], int)
    platform.advance_batches()
    batch = get(moonshot, f"/batches/{batch_id}").json()
    assert batch["status"] == "cancelled" and isinstance(batch["cancelled_at"], int)
    assert batch["request_counts"] == {"total": 5, "completed": 2, "failed": 0}
    assert [line["custom_id"] for line in file_lines(moonshot, batch["output_file_id"])] == [
        "r0",
        "r1",
    ]
    not_run = file_lines(moonshot, batch["error_file_id"])
    assert [line["custom_id"] for line in not_run] == ["r2", "r3", "r4"]
    for line in not_run:
        assert line["response"] is None and line["error"]["code"] == "batch_cancelled"
    refused(post(moonshot, f"/batches/{batch_id}/cancel"), 400, "status is cancelled")


def test_cancel_is_refused_once_a_batch_has_ended(moonshot: FakeKimiServer) -> None:
    done = run_batch(moonshot, [request_line("a")])
    refused(post(moonshot, f"/batches/{done['id']}/cancel"), 400, "status is completed")
    failed_file = upload(moonshot, "requests.jsonl", b"not json\n", "batch").json()["id"]
    failed = create(moonshot, failed_file).json()["id"]
    refused(post(moonshot, f"/batches/{failed}/cancel"), 400, "status is failed")


def test_cancel_while_validating_runs_nothing(moonshot: FakeKimiServer) -> None:
    assert moonshot.platform is not None
    moonshot.platform.batches.progress = "per_retrieve"
    batch_id = create(moonshot, batch_file(moonshot, [request_line("a")])).json()["id"]
    assert post(moonshot, f"/batches/{batch_id}/cancel").json()["status"] == "cancelling"
    batch = get(moonshot, f"/batches/{batch_id}").json()
    assert batch["status"] == "cancelled" and batch["output_file_id"] is None
    assert batch["in_progress_at"] is None


def test_an_instant_batch_cancelled_at_once_is_cancelled_by_the_next_call(
    moonshot: FakeKimiServer,
) -> None:
    # Instant progress finishes a batch before any other call can cancel it:
    # cancelling needs per_retrieve or manual progress.
    batch = create(moonshot, batch_file(moonshot, [request_line("a")])).json()
    refused(post(moonshot, f"/batches/{batch['id']}/cancel"), 400, "status is completed")


def test_expiry_keeps_what_ran(moonshot: FakeKimiServer) -> None:
    platform = moonshot.platform
    assert platform is not None
    platform.batches.progress = "manual"
    platform.batches.lines_per_step = 1
    batch_id = create(moonshot, batch_file(moonshot, [request_line(f"r{n}") for n in range(3)]))
    batch_id = batch_id.json()["id"]
    platform.advance_batches(2)
    platform.expire_batch(batch_id)
    batch = get(moonshot, f"/batches/{batch_id}").json()
    assert batch["status"] == "expired" and isinstance(batch["expired_at"], int)
    assert [line["custom_id"] for line in file_lines(moonshot, batch["output_file_id"])] == ["r0"]
    not_run = file_lines(moonshot, batch["error_file_id"])
    assert [(line["custom_id"], line["error"]["code"]) for line in not_run] == [
        ("r1", "batch_expired"),
        ("r2", "batch_expired"),
    ]
    with pytest.raises(ValueError, match="already ended"):
        platform.expire_batch(batch_id)
    with pytest.raises(KeyError):
        platform.expire_batch("batch_nope")


def test_an_unvalidated_batch_expires_with_every_line_not_run(moonshot: FakeKimiServer) -> None:
    assert moonshot.platform is not None
    moonshot.platform.batches.progress = "manual"
    batch_id = create(moonshot, batch_file(moonshot, [request_line("a"), request_line("b")]))
    moonshot.platform.expire_batch(batch_id.json()["id"])
    batch = get(moonshot, f"/batches/{batch_id.json()['id']}").json()
    assert batch["output_file_id"] is None
    assert [line["custom_id"] for line in file_lines(moonshot, batch["error_file_id"])] == [
        "a",
        "b",
    ]


@pytest.mark.parametrize("order", ["reversed", "shuffled"])
def test_output_lines_out_of_order(moonshot: FakeKimiServer, order: str) -> None:
    assert moonshot.platform is not None
    moonshot.platform.batches.output_order = order  # type: ignore[assignment]
    moonshot.platform.batches.output_seed = 7
    ids = [f"r{n}" for n in range(20)]
    first = run_batch(moonshot, [request_line(custom_id) for custom_id in ids])
    again = run_batch(moonshot, [request_line(custom_id) for custom_id in ids])
    got = [line["custom_id"] for line in file_lines(moonshot, first["output_file_id"])]
    assert sorted(got) == sorted(ids) and got != ids
    if order == "reversed":
        assert got == ids[::-1]
    # Deterministic: the same seed gives the same order.
    assert got == [line["custom_id"] for line in file_lines(moonshot, again["output_file_id"])]


def test_a_thousand_line_batch_is_one_upload_and_one_create(moonshot: FakeKimiServer) -> None:
    lines = [request_line(f"request-{n}", f"question {n}") for n in range(1000)]
    batch = run_batch(moonshot, lines)
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 1000, "completed": 1000, "failed": 0}
    output = file_lines(moonshot, batch["output_file_id"])
    assert len({line["custom_id"] for line in output}) == 1000
    assert output[999]["response"]["body"]["choices"][0]["message"]["content"] == (
        "Echo: question 999"
    )
    assert [r.method for r in moonshot.requests] == ["POST", "POST", "GET", "GET"]


async def test_batches_over_aiohttp(moonshot: FakeKimiServer) -> None:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        form.add_field("file", jsonl([request_line("a")]), filename="requests.jsonl")
        async with session.post(f"{moonshot.base_url}/files", data=form) as answer:
            file_id = (await answer.json())["id"]
        body = {
            "input_file_id": file_id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        }
        async with session.post(f"{moonshot.base_url}/batches", json=body) as answer:
            batch_id = (await answer.json())["id"]
        async with session.get(f"{moonshot.base_url}/batches/{batch_id}") as answer:
            batch = await answer.json()
        assert batch["status"] == "completed"
        async with session.get(
            f"{moonshot.base_url}/files/{batch['output_file_id']}/content"
        ) as answer:
            [line] = (await answer.text()).splitlines()
        assert json.loads(line)["custom_id"] == "a"


# --- balance and the token estimate -------------------------------------------------------------


def test_balance(moonshot: FakeKimiServer) -> None:
    assert get(moonshot, "/users/me/balance").json() == {
        "code": 0,
        "data": {
            "available_balance": 49.58894,
            "voucher_balance": 46.58893,
            "cash_balance": 3.00001,
        },
        "scode": "0x0",
        "status": True,
    }
    assert moonshot.platform is not None
    moonshot.platform.balance = Balance(available=1.5, voucher=2.0, cash=-0.5)
    data = get(moonshot, "/users/me/balance").json()["data"]
    assert data == {"available_balance": 1.5, "voucher_balance": 2.0, "cash_balance": -0.5}


@pytest.mark.parametrize("available", [0.0, -3.2])
def test_a_used_up_balance_answers_chat_with_429(
    moonshot: FakeKimiServer, available: float
) -> None:
    assert moonshot.platform is not None
    chat = {"model": "kimi-k2.6", "messages": [{"role": "user", "content": "hi"}]}
    assert post(moonshot, "/chat/completions", json=chat).status_code == 200
    moonshot.platform.balance = Balance(available=available, voucher=0.0, cash=available)
    moonshot.queue(Reply(content="never used"))
    refused(post(moonshot, "/chat/completions", json=chat), 429, "balance")
    assert moonshot.pending_replies == 1  # a refused request uses no reply
    moonshot.platform.balance = Balance(available=0.01, voucher=0.0, cash=0.01)
    assert post(moonshot, "/chat/completions", json=chat).json()["choices"][0]["message"][
        "content"
    ] == ("never used")


def test_the_token_estimate_is_the_prompt_tokens_a_chat_request_reports(
    moonshot: FakeKimiServer,
) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},  # 14 characters
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this image."},  # 20
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
    ]
    estimate = post(
        moonshot,
        "/tokenizers/estimate-token-count",
        json={"model": "kimi-k2.6", "messages": messages},
    )
    assert estimate.status_code == 200
    assert estimate.json() == {"data": {"total_tokens": 9}}  # ceil(34 / 4)
    chat = post(moonshot, "/chat/completions", json={"model": "kimi-k2.6", "messages": messages})
    assert chat.json()["usage"]["prompt_tokens"] == 9
    tiny = {"model": "kimi-k3", "messages": [{"role": "user", "content": "x"}]}
    assert post(moonshot, "/tokenizers/estimate-token-count", json=tiny).json() == {
        "data": {"total_tokens": 1}
    }


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, 400, "model is required"),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}, 404, "gpt-4o"),
        ({"model": "kimi-k2.6", "messages": []}, 400, "messages is required"),
        ({"model": "kimi-k2.6"}, 400, "messages is required"),
        ({"model": "kimi-k2.6", "messages": [{"role": "robot"}]}, 400, "messages[0].role"),
        (["not", "an", "object"], 400, "JSON object"),
    ],
)
def test_token_estimate_refusals(
    moonshot: FakeKimiServer, body: Any, status: int, message: str
) -> None:
    answer = post(moonshot, "/tokenizers/estimate-token-count", json=body)
    refused(answer, status, message)
    assert "data" not in answer.json()


def test_kimi_sim_flavor_moonshot_serves_the_platform_endpoints() -> None:
    from .test_simulator_cli import WATCHDOG, serve_in_thread

    url, stop, thread, status = serve_in_thread("--port", "0", "--flavor", "moonshot")
    try:
        headers = {"Authorization": "Bearer any"}
        stored = requests.post(
            f"{url}/files",
            headers=headers,
            files={"file": ("notes.txt", b"offline")},
            data={"purpose": "file-extract"},
            timeout=WATCHDOG,
        )
        assert stored.status_code == 200, stored.text
        content = requests.get(
            f"{url}/files/{stored.json()['id']}/content", headers=headers, timeout=WATCHDOG
        )
        assert content.text == "offline"
        balance = requests.get(f"{url}/users/me/balance", headers=headers, timeout=WATCHDOG)
        assert balance.json()["status"] is True
    finally:
        stop.set()
        thread.join(WATCHDOG)
    assert status == [0]
