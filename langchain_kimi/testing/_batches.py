"""Moonshot's Batch API, simulated: batches that validate, run, finish, fail, expire, cancel.

Served by :class:`~langchain_kimi.testing.FakeKimiServer` in its Moonshot flavour,
by the rules of Moonshot's reference (August 2026; the project's protocol notes,
"Platform endpoints"):

- ``POST /v1/batches`` ``{"input_file_id", "endpoint", "completion_window",
  "metadata"?}`` answers the batch with ``status: "validating"``. 400
  ``invalid_request_error`` for: an unknown ``input_file_id`` or a file whose
  purpose is not ``batch``; an ``endpoint`` other than ``/v1/chat/completions``;
  a ``completion_window`` outside ``12h`` to ``7d`` (written ``<n>h`` or
  ``<n>d``); ``metadata`` beyond 16 string pairs, keys of 64 characters, values
  of 512.
- ``GET /v1/batches/{id}``; ``GET /v1/batches?after=<id>&limit=<1..100, 20>``
  (newest first, ``{"object": "list", "data", "has_more", "first_id",
  "last_id"}``); ``POST /v1/batches/{id}/cancel`` (``cancelling``, then
  ``cancelled``; 400 unless ``validating``, ``in_progress`` or ``finalizing``).
  404 for an unknown id.

Validation (the ``validating`` step) reads the input file: each non-blank line
``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}``,
``custom_id`` a unique non-empty string, every ``body.model`` the same, and a
model the Batch API serves (:attr:`BatchStore.models`: kimi-k2.6 and kimi-k2.5;
"kimi-k3 is not supported"). Any problem fails the batch: ``status: "failed"``
with ``errors: {"object": "list", "data": [{"code", "message", "line",
"param"}]}``.

Running: each line's body goes through the same path as a request to
``/v1/chat/completions`` (the service's rules, then the queued replies, the
responder, or the echo: whatever answers chat requests), in input order. The
simulator also refuses ``"stream": true`` in a line (a batch answer cannot be a
stream; its strict reading). A line answered 200 goes to the output file::

    {"id": "batch_req_...", "custom_id": "...", "response": {"status_code": 200,
     "request_id": "...", "body": <chat completion>}, "error": null}

A line answered otherwise (a rule's 400, a queued ``Reply.error``) goes to the
error file, with its status and Moonshot error body in ``response`` (OpenAI's
convention; Moonshot does not document error lines). Lines that never ran
(the batch was cancelled or expired first) go to the error file as
``{"response": null, "error": {"code": "batch_cancelled" | "batch_expired",
"message"}}``. A reply with a network fault becomes a 500 ``server_error`` line.
``request_counts``: ``total`` lines, ``completed`` (200) and ``failed`` (the
others that ran). ``<state>_at`` times are set as each state is reached.

Progress is deterministic, chosen by :attr:`BatchStore.progress`:

- ``"instant"`` (default): the create answer says ``validating``, and by the
  next request the batch has finished;
- ``"per_retrieve"``: every ``GET /v1/batches/{id}`` moves that batch one state
  (validating -> in_progress -> finalizing -> completed) before answering;
- ``"manual"``: only ``server.platform.advance_batches()`` moves batches.

With :attr:`BatchStore.lines_per_step` set, each step in ``in_progress`` runs
that many lines, so a batch can be cancelled or expired
(``server.platform.expire_batch(id)``) with part of its output written.
:attr:`BatchStore.output_order` (``"input"``, ``"reversed"``, ``"shuffled"`` with
:attr:`BatchStore.output_seed`) orders the lines of the files it writes.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

from langchain_kimi.testing._files import BATCH_OUTPUT, FileStore, moonshot_error, not_found
from langchain_kimi.testing._render import completion_body, dumps, resolve
from langchain_kimi.testing._replies import Reply
from langchain_kimi.testing._rules import is_thinking

Progress = Literal["instant", "per_retrieve", "manual"]
OutputOrder = Literal["input", "reversed", "shuffled"]
# A chat request body -> the Reply the chat endpoint would answer it with.
ChatAnswer = Callable[[dict[str, Any]], Reply]

PROGRESS_MODES: tuple[Progress, ...] = ("instant", "per_retrieve", "manual")
OUTPUT_ORDERS: tuple[OutputOrder, ...] = ("input", "reversed", "shuffled")
ENDPOINT = "/v1/chat/completions"
CANCELLABLE = frozenset({"validating", "in_progress", "finalizing"})
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_NEXT_STATE = {"validating": "in_progress", "in_progress": "finalizing", "finalizing": "completed"}
_WINDOW = re.compile(r"^([1-9][0-9]*)([hd])$")
_MIN_WINDOW_HOURS = 12
_MAX_WINDOW_HOURS = 7 * 24
_MAX_METADATA_PAIRS = 16
_MAX_METADATA_KEY = 64
_MAX_METADATA_VALUE = 512
_MAX_ERRORS = 100
# Faults are network events: inside a batch there is no connection to break, so
# a line scripted with one fails as the upstream failure it stands for.
_FAULTS_AS_FAILURES = frozenset({"reset", "disconnect", "stall", "malformed", "error_event"})
_FAULT_BODY = dumps(
    {"error": {"message": "The upstream model failed on this request.", "type": "server_error"}}
)


def _random_id(prefix: str, length: int) -> str:
    # Hex digits: lower-case letters and digits, like the service's ids. One
    # system call per id: a 100,000-line batch makes 200,000 of them.
    return prefix + secrets.token_hex((length + 1) // 2)[:length]


@dataclass
class _Line:
    index: int
    custom_id: str
    body: dict[str, Any]


@dataclass
class _Result:
    index: int
    custom_id: str
    line: bytes
    succeeded: bool


@dataclass
class Batch:
    """One simulated batch (read its state through the API, or ``to_json()``)."""

    id: str
    input_file_id: str
    completion_window: str
    window_seconds: int
    metadata: dict[str, str] | None
    created_at: int
    status: str = "validating"
    times: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] | None = None
    lines: list[_Line] | None = None
    next_line: int = 0
    results: list[_Result] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        succeeded = sum(1 for result in self.results if result.succeeded)
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": ENDPOINT,
            "errors": None if self.errors is None else {"object": "list", "data": self.errors},
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "in_progress_at": self.times.get("in_progress"),
            "expires_at": self.created_at + self.window_seconds,
            "finalizing_at": self.times.get("finalizing"),
            "completed_at": self.times.get("completed"),
            "failed_at": self.times.get("failed"),
            "expired_at": self.times.get("expired"),
            "cancelling_at": self.times.get("cancelling"),
            "cancelled_at": self.times.get("cancelled"),
            "request_counts": {
                "total": len(self.lines) if self.lines is not None else 0,
                "completed": succeeded,
                "failed": len(self.results) - succeeded,
            },
            "metadata": self.metadata,
        }

    def enter(self, status: str) -> None:
        self.status = status
        self.times[status] = int(time.time())


class BatchStore:
    """The batches of one simulated account, and the Batch API's answers.

    Settable by tests (attributes): ``progress`` (``"instant"``,
    ``"per_retrieve"``, ``"manual"``), ``lines_per_step`` (None: a step in
    ``in_progress`` runs every line), ``output_order`` (``"input"``,
    ``"reversed"``, ``"shuffled"``), ``output_seed`` (for ``"shuffled"``),
    ``models`` (what the Batch API serves). Not thread-safe on its own: the
    platform calls it under its lock.
    """

    def __init__(self, files: FileStore, chat_answer: ChatAnswer) -> None:
        self.progress: Progress = "instant"
        self.lines_per_step: int | None = None
        self.output_order: OutputOrder = "input"
        self.output_seed = 0
        self.models: tuple[str, ...] = ("kimi-k2.6", "kimi-k2.5")
        self._files = files
        self._chat_answer = chat_answer
        self._batches: dict[str, Batch] = {}

    # -- the endpoints ----------------------------------------------------------------

    def create(self, body: Any) -> Reply:
        problem = self._check_create(body)
        if isinstance(problem, Reply):
            return problem
        window, seconds, metadata = problem
        batch = Batch(
            id=_random_id("batch_", 24),
            input_file_id=body["input_file_id"],
            completion_window=window,
            window_seconds=seconds,
            metadata=metadata,
            created_at=int(time.time()),
        )
        batch.times["validating"] = batch.created_at
        self._batches[batch.id] = batch
        answer = Reply(body=batch.to_json())
        if self.progress == "instant":
            self._finish(batch)
        return answer

    def retrieve(self, batch_id: str) -> Reply:
        batch = self._batches.get(batch_id)
        if batch is None:
            return not_found("batch", batch_id)
        if self.progress == "per_retrieve":
            self.step(batch)
        return Reply(body=batch.to_json())

    def listing(self, query: Mapping[str, list[str]]) -> Reply:
        newest_first = list(reversed(self._batches.values()))
        raw_limit = query.get("limit", ["20"])[-1]
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
            return moonshot_error(400, f"limit must be an integer from 1 to 100, got {raw_limit!r}")
        limit = int(raw_limit)
        after = query.get("after", [None])[-1]
        start = 0
        if after is not None:
            ids = [batch.id for batch in newest_first]
            if after not in ids:
                return moonshot_error(400, f"after: no batch {after}")
            start = ids.index(after) + 1
        page = newest_first[start : start + limit]
        return Reply(
            body={
                "object": "list",
                "data": [batch.to_json() for batch in page],
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
                "has_more": start + limit < len(newest_first),
            }
        )

    def cancel(self, batch_id: str) -> Reply:
        batch = self._batches.get(batch_id)
        if batch is None:
            return not_found("batch", batch_id)
        if batch.status not in CANCELLABLE:
            return moonshot_error(
                400,
                f"batch {batch_id} cannot be cancelled: its status is {batch.status} "
                "(only validating, in_progress or finalizing batches can be)",
            )
        batch.enter("cancelling")
        answer = Reply(body=batch.to_json())
        if self.progress == "instant":
            self._finish(batch)
        return answer

    # -- controls (through the platform, under its lock) --------------------------------

    def step(self, batch: Batch) -> None:
        """Move ``batch`` one state on (or run ``lines_per_step`` more of its lines)."""
        if batch.status == "validating":
            self._validate(batch)
        elif batch.status == "in_progress":
            self._run_lines(batch)
        elif batch.status == "finalizing":
            self._write_files(batch, unrun_code=None)
            batch.enter("completed")
        elif batch.status == "cancelling":
            self._write_files(batch, unrun_code="batch_cancelled")
            batch.enter("cancelled")

    def advance(self, steps: int = 1) -> None:
        """Move every unfinished batch ``steps`` steps on (see :meth:`step`)."""
        for _ in range(steps):
            for batch in list(self._batches.values()):
                self.step(batch)

    def expire(self, batch_id: str) -> None:
        """End an unfinished batch as ``expired``: what ran is kept, the rest did not run."""
        batch = self._batches.get(batch_id)
        if batch is None:
            raise KeyError(f"no batch {batch_id}")
        if batch.status in TERMINAL:
            raise ValueError(f"batch {batch_id} has already ended ({batch.status})")
        if batch.lines is None:
            batch.lines, _ = parse_input(self._input_bytes(batch), self.models)
        self._write_files(batch, unrun_code="batch_expired")
        batch.enter("expired")

    def get(self, batch_id: str) -> Batch | None:
        return self._batches.get(batch_id)

    def all(self) -> list[Batch]:
        return list(self._batches.values())

    # -- the steps ---------------------------------------------------------------------

    def _finish(self, batch: Batch) -> None:
        while batch.status not in TERMINAL:
            self.step(batch)

    def _input_bytes(self, batch: Batch) -> bytes:
        stored = self._files.get(batch.input_file_id)
        return stored.data if stored is not None else b""

    def _validate(self, batch: Batch) -> None:
        stored = self._files.get(batch.input_file_id)
        if stored is None:
            errors = [_error("file_not_found", f"input file {batch.input_file_id} was deleted")]
            lines: list[_Line] = []
        else:
            lines, errors = parse_input(stored.data, self.models)
        if errors:
            batch.errors = errors
            batch.enter("failed")
            return
        batch.lines = lines
        batch.enter("in_progress")

    def _run_lines(self, batch: Batch) -> None:
        lines = batch.lines or []
        count = len(lines) if self.lines_per_step is None else self.lines_per_step
        for line in lines[batch.next_line : batch.next_line + count]:
            batch.results.append(self._run(line))
        batch.next_line = min(len(lines), batch.next_line + count)
        if batch.next_line >= len(lines):
            batch.enter("finalizing")

    def _run(self, line: _Line) -> _Result:
        if line.body.get("stream") is True:
            status, body = (
                400,
                dumps(
                    {
                        "error": {
                            "message": "stream is not supported in a batch request: remove it",
                            "type": "invalid_request_error",
                        }
                    }
                ),
            )
        else:
            status, body = render_answer(self._chat_answer(line.body), line.body)
        request_id = _random_id("", 32)
        encoded = (
            b'{"id":"' + _random_id("batch_req_", 24).encode() + b'","custom_id":'
            + dumps(line.custom_id) + b',"response":{"status_code":' + str(status).encode()
            + b',"request_id":"' + request_id.encode() + b'","body":' + body
            + b'},"error":null}'
        )  # fmt: skip
        return _Result(line.index, line.custom_id, encoded, status == 200)

    def _write_files(self, batch: Batch, unrun_code: str | None) -> None:
        results = list(batch.results)
        if unrun_code is not None and batch.lines is not None:
            reason = "cancelled" if unrun_code == "batch_cancelled" else "expired"
            for line in batch.lines[batch.next_line :]:
                unrun = {
                    "id": _random_id("batch_req_", 24),
                    "custom_id": line.custom_id,
                    "response": None,
                    "error": {
                        "code": unrun_code,
                        "message": f"This request was not run: the batch was {reason} first.",
                    },
                }
                results.append(_Result(line.index, line.custom_id, dumps(unrun), False))
        ordered = self._ordered(results)
        output = [result.line for result in ordered if result.succeeded]
        errors = [result.line for result in ordered if not result.succeeded]
        if output:
            name = f"{batch.id}_output.jsonl"
            batch.output_file_id = self._files.add(name, BATCH_OUTPUT, _jsonl(output)).id
        if errors:
            name = f"{batch.id}_error.jsonl"
            batch.error_file_id = self._files.add(name, BATCH_OUTPUT, _jsonl(errors)).id

    def _ordered(self, results: list[_Result]) -> list[_Result]:
        ordered = sorted(results, key=lambda result: result.index)
        if self.output_order == "reversed":
            ordered.reverse()
        elif self.output_order == "shuffled":
            random.Random(self.output_seed).shuffle(ordered)
        return ordered

    def _check_create(self, body: Any) -> Reply | tuple[str, int, dict[str, str] | None]:
        if not isinstance(body, Mapping):
            return moonshot_error(400, "the request body must be a JSON object")
        file_id = body.get("input_file_id")
        if not isinstance(file_id, str) or not file_id:
            return moonshot_error(400, "input_file_id is required")
        stored = self._files.get(file_id)
        if stored is None:
            return moonshot_error(400, f"input_file_id {file_id}: no such file")
        if stored.purpose != "batch":
            return moonshot_error(
                400, f"input_file_id {file_id} was uploaded with purpose {stored.purpose!r}, "
                "not 'batch'"
            )  # fmt: skip
        if body.get("endpoint") != ENDPOINT:
            return moonshot_error(
                400, f"endpoint must be {ENDPOINT!r}, got {body.get('endpoint')!r}"
            )
        window = body.get("completion_window")
        seconds = _window_seconds(window)
        if seconds is None:
            return moonshot_error(
                400, f"completion_window must be from 12h to 7d (like '24h'), got {window!r}"
            )
        metadata = body.get("metadata")
        problem = _check_metadata(metadata)
        if problem is not None:
            return moonshot_error(400, problem)
        return str(window), seconds, dict(metadata) if metadata is not None else None


def render_answer(reply: Reply, body: Mapping[str, Any]) -> tuple[int, bytes]:
    """The status and JSON body bytes the chat endpoint would send for ``reply`` (not streamed)."""
    if reply.fault in _FAULTS_AS_FAILURES:
        return 500, _FAULT_BODY
    if reply.status == 200 and reply.body is None:
        return 200, completion_body(resolve(reply, body, is_thinking(body)), reply)
    if isinstance(reply.body, Mapping):
        return reply.status, dumps(dict(reply.body))
    if reply.body is None:
        try:
            phrase = HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = f"HTTP {reply.status}"
        return reply.status, dumps({"error": {"message": phrase, "type": "server_error"}})
    raw = reply.body
    text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "replace")
    try:
        json.loads(text)
    except ValueError:
        # Not JSON (an HTML error page): carried as a string, so the line stays JSON.
        return reply.status, dumps(text)
    return reply.status, text.encode("utf-8")


def parse_input(data: bytes, models: tuple[str, ...]) -> tuple[list[_Line], list[dict[str, Any]]]:
    """A batch input file's requests, and the problems that fail the batch (empty if none)."""
    lines: list[_Line] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    model: str | None = None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [], [_error("invalid_file", "the input file is not UTF-8 text")]
    for number, raw in enumerate(text.splitlines(), start=1):
        if len(errors) >= _MAX_ERRORS:
            break
        if not raw.strip():
            continue
        problem, line = _parse_line(raw, number, len(lines), seen)
        if problem is not None:
            errors.append(problem)
            continue
        assert line is not None
        line_model = line.body.get("model")
        if model is None:
            model = line_model if isinstance(line_model, str) else ""
            if model not in models:
                errors.append(
                    _error(
                        "model_not_supported",
                        f"model {model!r} is not supported by the Batch API: "
                        f"use one of {', '.join(models)}",
                        number,
                        "body.model",
                    )
                )
        elif line_model != model:
            errors.append(
                _error(
                    "mixed_models",
                    f"every request of a batch must use the same model: {line_model!r} "
                    f"differs from {model!r}",
                    number,
                    "body.model",
                )
            )
        seen.add(line.custom_id)
        lines.append(line)
    if not lines and not errors:
        errors.append(_error("empty_file", "the input file holds no requests"))
    return lines, errors


def _parse_line(
    raw: str, number: int, index: int, seen: set[str]
) -> tuple[dict[str, Any] | None, _Line | None]:
    try:
        value = json.loads(raw)
    except ValueError:
        return _error("invalid_json_line", "the line is not valid JSON", number), None
    if not isinstance(value, dict):
        return _error("invalid_json_line", "the line must be a JSON object", number), None
    custom_id = value.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        message = "custom_id is required and must be a non-empty string"
        return _error("missing_custom_id", message, number, "custom_id"), None
    if custom_id in seen:
        message = f"custom_id {custom_id!r} is not unique in the file"
        return _error("duplicate_custom_id", message, number, "custom_id"), None
    if value.get("method") != "POST":
        message = f"method must be 'POST', got {value.get('method')!r}"
        return _error("invalid_method", message, number, "method"), None
    if value.get("url") != ENDPOINT:
        message = f"url must be {ENDPOINT!r}, got {value.get('url')!r}"
        return _error("invalid_url", message, number, "url"), None
    body = value.get("body")
    if not isinstance(body, dict):
        return _error("invalid_body", "body must be a JSON object", number, "body"), None
    return None, _Line(index, custom_id, body)


def _error(
    code: str, message: str, line: int | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"code": code, "message": message, "line": line, "param": param}


def _window_seconds(window: Any) -> int | None:
    match = _WINDOW.match(window) if isinstance(window, str) else None
    if match is None:
        return None
    hours = int(match[1]) * (24 if match[2] == "d" else 1)
    if not _MIN_WINDOW_HOURS <= hours <= _MAX_WINDOW_HOURS:
        return None
    return hours * 3600


def _check_metadata(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        return "metadata must be an object of string keys and values"
    if len(metadata) > _MAX_METADATA_PAIRS:
        return f"metadata holds {len(metadata)} pairs: at most {_MAX_METADATA_PAIRS}"
    for key, value in metadata.items():
        if not isinstance(value, str):
            return f"metadata[{key!r}] must be a string"
        if len(key) > _MAX_METADATA_KEY:
            return f"metadata key {key[:20]!r}... is longer than {_MAX_METADATA_KEY} characters"
        if len(value) > _MAX_METADATA_VALUE:
            return f"metadata[{key!r}] is longer than {_MAX_METADATA_VALUE} characters"
    return None


def _jsonl(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n"
