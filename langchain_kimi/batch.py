"""Moonshot's Batch API: many chat requests in one job, 40% cheaper, answered within a window.

``model.batch_submit(inputs)`` builds one request per input with the same code
as ``invoke`` (the model's rules, reasoning replay, refusals before sending,
fixed parameters left out; no ``stream``), writes them as JSONL with unique
``custom_id``s, uploads the file (``purpose="batch"``) and creates the batch:
one upload and one create, whatever the number of inputs. Past the service's
100 MB file limit the lines are split over several batches, which the job
tracks together. Nothing is sent on Ace Data Cloud, which has no Batch API.

The job (:class:`KimiBatchJob`) reports its state, waits, cancels, and reads
the results: one item per input, in input order (the service's output files
have none), each an ``AIMessage`` parsed by the same code as ``invoke``'s
answer or a :class:`~langchain_kimi.errors.KimiError` for an input that failed
or never ran. Result files are read as streams, so memory grows with the
answers kept, not with the files.

Usage::

    job = model.batch_submit(["Summarise A.", "Summarise B."], tools=[get_weather])
    job.wait(poll_interval=60)
    for item in job.results():
        print(item.content if isinstance(item, AIMessage) else f"failed: {item}")

    later = ChatKimi(model="kimi-k2.6", api_flavor="moonshot").batch_job(job.ids)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage

from langchain_kimi._platform import Platform, Resend, path_segment
from langchain_kimi._response import parse_completion
from langchain_kimi.errors import (
    KimiError,
    KimiResponseError,
    KimiTimeoutError,
    error_from_status,
)
from langchain_kimi.files import MAX_FILE_BYTES, KimiFile

if TYPE_CHECKING:
    from langchain_core.language_models import LanguageModelInput

    from langchain_kimi._answer_plan import AnswerPlan
    from langchain_kimi.chat_models import ChatKimi

__all__ = ["BATCH_MODELS", "KimiBatchError", "KimiBatchJob", "KimiBatchStatus"]

# The models Moonshot's Batch API serves (its guide: "kimi-k3 is not supported").
BATCH_MODELS = ("kimi-k2.6", "kimi-k2.5")
# Body fields the Batch API guide says to leave out.
UNSUPPORTED_FIELDS = ("temperature", "top_p", "n", "presence_penalty", "frequency_penalty")
# One batch input file at most (the Files API's limit); more lines, more batches.
BATCH_FILE_BYTES = MAX_FILE_BYTES
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_WINDOW = re.compile(r"^([1-9][0-9]*)([hd])$")
_ID_PREFIX = "lk-"
# Batch metadata naming the inputs a batch holds: "<first index>:<count>".
_RANGE_KEY = "langchain_kimi_inputs"
_CHAT_PATH = "/v1/chat/completions"


class KimiBatchError(KimiError):
    """A batch input with no answer: its batch failed validation, it never ran, or it is missing.

    Attributes:
        index: the input's position in what was submitted.
        code: the service's code (``batch_cancelled``, ``batch_expired``...), or
            ``batch_failed`` / ``missing``.
    """

    def __init__(self, message: str, *, index: int, code: str) -> None:
        self.index = index
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class KimiBatchStatus:
    """Where a job stands: its batches' states and request counts, added up.

    ``status`` is the batches' common state, or ``"in_progress"`` while any is
    unfinished (a split job); ``done`` once every batch has ended.
    """

    status: str
    completed: int
    failed: int
    total: int
    batches: tuple[Mapping[str, Any], ...]

    @property
    def done(self) -> bool:
        return all(batch.get("status") in TERMINAL for batch in self.batches)

    @classmethod
    def of(cls, batches: Sequence[Mapping[str, Any]]) -> KimiBatchStatus:
        states = [str(batch.get("status")) for batch in batches]
        if len(set(states)) == 1:
            status = states[0]
        elif all(state in TERMINAL for state in states):
            status = next(state for state in states if state != "completed")
        else:
            status = "in_progress"
        counts = [batch.get("request_counts") or {} for batch in batches]
        return cls(
            status=status,
            completed=sum(int(c.get("completed") or 0) for c in counts),
            failed=sum(int(c.get("failed") or 0) for c in counts),
            total=sum(int(c.get("total") or 0) for c in counts),
            batches=tuple(batches),
        )


class KimiBatchJob:
    """One submitted job: one batch, or several when the input was split.

    Made by ``model.batch_submit(...)``, or ``model.batch_job(ids)`` to reattach
    from another process (answers are then parsed without the checks a forced
    ``tool_choice`` or a ``json_schema`` response format adds: those live in the
    submitting process).
    """

    def __init__(
        self,
        model: ChatKimi,
        ids: Sequence[str],
        plans: Sequence[AnswerPlan | None] | None = None,
    ) -> None:
        if isinstance(ids, str) or not ids:
            raise ValueError(f"a batch job needs one or more batch ids, got {ids!r}")
        for batch_id in ids:
            path_segment(batch_id, "batch id")  # refuses a blank or non-string id
        self._model = model
        self.ids: tuple[str, ...] = tuple(ids)
        self._plans = plans

    def __repr__(self) -> str:
        return f"KimiBatchJob(ids={self.ids!r})"

    @property
    def id(self) -> str:
        """The batch's id (the first batch's, for a split job: see :attr:`ids`)."""
        return self.ids[0]

    # --- sync ---------------------------------------------------------------------

    def status(self) -> KimiBatchStatus:
        """The batches as the service describes them now."""
        platform = Platform(self._model, "job.status()")
        return KimiBatchStatus.of([platform.get_json(_batch_path(i)) for i in self.ids])

    def wait(self, poll_interval: float = 30.0, timeout: float | None = None) -> KimiBatchStatus:
        """Poll every ``poll_interval`` seconds until every batch has ended.

        ``timeout``: raise ``KimiTimeoutError`` (the job goes on) after that long.
        """
        deadline = _deadline(poll_interval, timeout)
        while True:
            current = self.status()
            if current.done:
                return current
            time.sleep(_next_wait(poll_interval, deadline, current))

    def results(self) -> list[AIMessage | KimiError]:
        """One item per input, in input order: its answer, or the error in its place.

        Raises ``ValueError`` while the job is not done (call :meth:`wait`).
        """
        platform = Platform(self._model, "job.results()")
        batches = self._ended([platform.get_json(_batch_path(i)) for i in self.ids])
        reader = _ResultReader(batches, self._plans, self._model._secrets())
        for file_id in reader.files():
            for line in _lines(
                platform.stream(f"/files/{path_segment(file_id, 'file id')}/content")
            ):
                reader.add(line)
        return reader.finish()

    def cancel(self) -> KimiBatchStatus:
        """Ask the service to cancel every unfinished batch; their unrun inputs report it."""
        platform = Platform(self._model, "job.cancel()")
        states = []
        for batch_id in self.ids:
            batch = platform.get_json(_batch_path(batch_id))
            if batch.get("status") not in TERMINAL and batch.get("status") != "cancelling":
                batch = platform.send_json(
                    "POST", _batch_path(batch_id) + "/cancel", resend=Resend.AS_POLICY
                )
            states.append(batch)
        return KimiBatchStatus.of(states)

    # --- async --------------------------------------------------------------------

    async def astatus(self) -> KimiBatchStatus:
        """Async :meth:`status`."""
        platform = Platform(self._model, "job.astatus()")
        return KimiBatchStatus.of([await platform.aget_json(_batch_path(i)) for i in self.ids])

    async def await_done(
        self, poll_interval: float = 30.0, timeout: float | None = None
    ) -> KimiBatchStatus:
        """Async :meth:`wait`."""
        deadline = _deadline(poll_interval, timeout)
        while True:
            current = await self.astatus()
            if current.done:
                return current
            await asyncio.sleep(_next_wait(poll_interval, deadline, current))

    async def aresults(self) -> list[AIMessage | KimiError]:
        """Async :meth:`results`."""
        platform = Platform(self._model, "job.aresults()")
        batches = self._ended([await platform.aget_json(_batch_path(i)) for i in self.ids])
        reader = _ResultReader(batches, self._plans, self._model._secrets())
        for file_id in reader.files():
            path = f"/files/{path_segment(file_id, 'file id')}/content"
            async for line in _alines(platform.astream(path)):
                reader.add(line)
        return reader.finish()

    async def acancel(self) -> KimiBatchStatus:
        """Async :meth:`cancel`."""
        platform = Platform(self._model, "job.acancel()")
        states = []
        for batch_id in self.ids:
            batch = await platform.aget_json(_batch_path(batch_id))
            if batch.get("status") not in TERMINAL and batch.get("status") != "cancelling":
                batch = await platform.asend_json(
                    "POST", _batch_path(batch_id) + "/cancel", resend=Resend.AS_POLICY
                )
            states.append(batch)
        return KimiBatchStatus.of(states)

    def _ended(self, batches: list[Any]) -> list[Mapping[str, Any]]:
        current = KimiBatchStatus.of(batches)
        if not current.done:
            raise ValueError(
                f"the batch job {self.ids} is not done (status {current.status!r}, "
                f"{current.completed + current.failed} of {current.total} requests run): "
                "call job.wait() first"
            )
        return batches


# --- submitting -------------------------------------------------------------------------


@dataclass
class _Chunk:
    """One batch input file being written: its path and the inputs it holds."""

    path: str
    first: int
    count: int = 0
    size: int = 0


def submit(
    model: ChatKimi,
    inputs: Iterable[LanguageModelInput],
    completion_window: str,
    metadata: Mapping[str, str] | None,
    options: dict[str, Any],
) -> KimiBatchJob:
    """``model.batch_submit``: build the files, upload each, create a batch for each."""
    platform = Platform(model, "model.batch_submit()")
    chunks, plans = _prepared(model, inputs, completion_window, metadata, options)
    try:
        ids = []
        for chunk in chunks:
            uploaded = model.files.upload(chunk.path, purpose="batch")
            payload = _create(uploaded, chunk, completion_window, metadata)
            ids.append(
                _id_of(platform.send_json("POST", "/batches", payload, resend=Resend.CREATE))
            )
    finally:
        _remove(chunks)
    return KimiBatchJob(model, ids, plans)


async def asubmit(
    model: ChatKimi,
    inputs: Iterable[LanguageModelInput],
    completion_window: str,
    metadata: Mapping[str, str] | None,
    options: dict[str, Any],
) -> KimiBatchJob:
    """``model.abatch_submit``: :func:`submit` with async uploads and creates."""
    platform = Platform(model, "model.abatch_submit()")
    chunks, plans = _prepared(model, inputs, completion_window, metadata, options)
    try:
        ids = []
        for chunk in chunks:
            uploaded = await model.files.aupload(chunk.path, purpose="batch")
            payload = _create(uploaded, chunk, completion_window, metadata)
            created = await platform.asend_json("POST", "/batches", payload, resend=Resend.CREATE)
            ids.append(_id_of(created))
    finally:
        _remove(chunks)
    return KimiBatchJob(model, ids, plans)


def _prepared(
    model: ChatKimi,
    inputs: Iterable[LanguageModelInput],
    completion_window: str,
    metadata: Mapping[str, str] | None,
    options: dict[str, Any],
) -> tuple[list[_Chunk], list[AnswerPlan | None] | None]:
    """The checks before anything is sent, then the input files."""
    _check_window(completion_window)
    _check_metadata(metadata)
    return _write_files(model, inputs, options)


def _id_of(created: Any) -> str:
    batch_id = created.get("id") if isinstance(created, Mapping) else None
    if not isinstance(batch_id, str) or not batch_id:
        raise KimiResponseError("the batch create answer has no batch id")
    return batch_id


def _write_files(
    model: ChatKimi, inputs: Iterable[LanguageModelInput], options: dict[str, Any]
) -> tuple[list[_Chunk], list[AnswerPlan | None] | None]:
    """Every input's request line, in JSONL files of at most :data:`BATCH_FILE_BYTES`.

    Each body is what ``invoke`` would send (``ChatKimi._prepare``), minus ``stream``.
    """
    options = _with_formatted_tools(model, options)
    stop = options.pop("stop", None)
    chunks: list[_Chunk] = []
    plans: list[AnswerPlan | None] = []
    handle = None
    try:
        for index, item in enumerate(inputs):
            messages = model._convert_input(item).to_messages()
            body, plan = model._prepare(messages, stop, False, options)
            if index == 0:
                _check_first_body(body)
            plans.append(plan)
            line = b'{"custom_id":"%s%d","method":"POST","url":"%s","body":%s}\n' % (
                _ID_PREFIX.encode(),
                index,
                _CHAT_PATH.encode(),
                body,
            )
            if len(line) > BATCH_FILE_BYTES:
                raise ValueError(
                    f"inputs[{index}] makes a batch line of {len(line)} bytes, over the "
                    f"{BATCH_FILE_BYTES}-byte limit of a batch file: send it with invoke"
                )
            if handle is None or chunks[-1].size + len(line) > BATCH_FILE_BYTES:
                if handle is not None:
                    handle.close()
                handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed per chunk)
                    prefix="kimi-batch-", suffix=".jsonl", delete=False
                )
                chunks.append(_Chunk(handle.name, first=index))
            handle.write(line)
            chunks[-1].count += 1
            chunks[-1].size += len(line)
    except BaseException:
        if handle is not None:
            handle.close()
        _remove(chunks)
        raise
    if handle is not None:
        handle.close()
    if not chunks:
        raise ValueError("batch_submit needs at least one input")
    return chunks, (None if all(plan is None for plan in plans) else plans)


def _with_formatted_tools(model: ChatKimi, options: dict[str, Any]) -> dict[str, Any]:
    """``tools=[...]`` (and ``tool_choice``) as ``bind_tools`` formats and checks them."""
    options = dict(options)
    if "tools" in options:
        tools = options.pop("tools")
        choice = options.pop("tool_choice", None)
        bound = model.bind_tools(tools, tool_choice=choice)
        options = {**bound.kwargs, **options}  # type: ignore[attr-defined]
    return options


def _check_first_body(body: bytes) -> None:
    """The Batch API's rules, on the first line's body (every line shares its options)."""
    decoded = json.loads(body)
    model = decoded.get("model")
    if model not in BATCH_MODELS:
        raise ValueError(
            f"Moonshot's Batch API does not serve {model!r}; it serves {', '.join(BATCH_MODELS)} "
            "(use invoke or abatch for other models); nothing was sent"
        )
    sent = [name for name in UNSUPPORTED_FIELDS if name in decoded]
    if sent:
        raise ValueError(
            f"the Batch API takes no {', '.join(sent)}: leave them unset for batch_submit; "
            "nothing was sent"
        )


def _check_window(window: str) -> None:
    match = _WINDOW.match(window) if isinstance(window, str) else None
    hours = int(match.group(1)) * (24 if match.group(2) == "d" else 1) if match else 0
    if not 12 <= hours <= 168:
        raise ValueError(
            f"completion_window must be from '12h' to '7d' (hours 'Nh' or days 'Nd'), "
            f"got {window!r}"
        )


def _check_metadata(metadata: Mapping[str, str] | None) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, Mapping) or len(metadata) > 15:
        raise ValueError(
            "metadata must be a dict of at most 15 string pairs (the API takes 16; "
            "langchain-kimi uses one)"
        )
    for key, value in metadata.items():
        if (
            not (isinstance(key, str) and isinstance(value, str))
            or len(key) > 64
            or len(value) > 512
        ):
            raise ValueError(
                f"metadata[{key!r}]: keys and values must be strings of at most 64 and 512 "
                "characters"
            )
        if key == _RANGE_KEY:
            raise ValueError(f"metadata[{key!r}] is langchain-kimi's own: use another key")


def _create(
    uploaded: KimiFile, chunk: _Chunk, window: str, metadata: Mapping[str, str] | None
) -> dict[str, Any]:
    return {
        "input_file_id": uploaded.id,
        "endpoint": _CHAT_PATH,
        "completion_window": window,
        "metadata": {**(metadata or {}), _RANGE_KEY: f"{chunk.first}:{chunk.count}"},
    }


def _remove(chunks: list[_Chunk]) -> None:
    for chunk in chunks:
        with contextlib.suppress(OSError):
            os.unlink(chunk.path)


# --- reading the results ----------------------------------------------------------------


class _ResultReader:
    """The batches' output and error lines -> one item per input, in input order."""

    def __init__(
        self,
        batches: Sequence[Mapping[str, Any]],
        plans: Sequence[AnswerPlan | None] | None,
        secrets: Sequence[str],
    ) -> None:
        self._batches = batches
        self._plans = plans
        self._secrets = secrets
        ranges = [_range_of(batch) for batch in batches]
        self._size = max((first + count for first, count in ranges), default=0)
        self._items: list[AIMessage | KimiError | None] = [None] * self._size
        for batch, (first, count) in zip(batches, ranges, strict=True):
            if batch.get("status") == "failed":
                problem = _validation_errors(batch)
                for index in range(first, first + count):
                    self._items[index] = KimiBatchError(
                        f"input {index}: batch {batch.get('id')} failed validation: {problem}",
                        index=index,
                        code="batch_failed",
                    )

    def files(self) -> Iterator[str]:
        for batch in self._batches:
            for key in ("output_file_id", "error_file_id"):
                if batch.get(key):
                    yield str(batch[key])

    def add(self, raw: bytes) -> None:
        try:
            line = json.loads(raw)
            index = _index_of(line.get("custom_id"), self._size)
        except (ValueError, AttributeError, RecursionError):
            raise KimiResponseError(
                f"a batch result line is not a result of this job: {raw[:120]!r}"
            ) from None
        self._items[index] = self._item(index, line)

    def _item(self, index: int, line: Mapping[str, Any]) -> AIMessage | KimiError:
        response = line.get("response")
        if isinstance(response, Mapping) and response.get("status_code") == 200:
            try:
                result = parse_completion(response.get("body"), secrets=self._secrets)
                plan = self._plans[index] if self._plans is not None else None
                if plan is not None:
                    result = plan.finish(result)
            except KimiError as err:
                return err
            message = result.generations[0].message
            assert isinstance(message, AIMessage)
            return message
        if isinstance(response, Mapping) and isinstance(response.get("status_code"), int):
            body = json.dumps(response.get("body"), ensure_ascii=False)
            return error_from_status(response["status_code"], body, secrets=self._secrets)
        found = line.get("error")
        error: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        code = str(error.get("code") or "not_run")
        return KimiBatchError(
            f"input {index} did not run ({code}): {error.get('message') or 'no answer'}",
            index=index,
            code=code,
        )

    def finish(self) -> list[AIMessage | KimiError]:
        items: list[AIMessage | KimiError] = []
        for index, item in enumerate(self._items):
            if item is None:
                item = KimiBatchError(
                    f"input {index}: no line for it in the batch's output or error file",
                    index=index,
                    code="missing",
                )
            items.append(item)
        return items


def _range_of(batch: Mapping[str, Any]) -> tuple[int, int]:
    value = (batch.get("metadata") or {}).get(_RANGE_KEY)
    try:
        first, count = (int(part) for part in str(value).split(":"))
    except ValueError:
        raise KimiResponseError(
            f"batch {batch.get('id')!r} was not submitted by langchain-kimi's batch_submit "
            f"(its metadata has no {_RANGE_KEY!r}); read its files with model.files"
        ) from None
    return first, count


def _index_of(custom_id: Any, size: int) -> int:
    if not isinstance(custom_id, str) or not custom_id.startswith(_ID_PREFIX):
        raise ValueError(custom_id)
    index = int(custom_id[len(_ID_PREFIX) :])
    if not 0 <= index < size:
        raise ValueError(custom_id)
    return index


def _validation_errors(batch: Mapping[str, Any]) -> str:
    errors = (batch.get("errors") or {}).get("data") or []
    shown = [str(error.get("message")) for error in errors[:3] if isinstance(error, Mapping)]
    return "; ".join(shown) or "no reason given"


def _batch_path(batch_id: str) -> str:
    return f"/batches/{path_segment(batch_id, 'batch id')}"


def _deadline(poll_interval: float, timeout: float | None) -> float | None:
    if not poll_interval >= 0:
        raise ValueError(f"poll_interval must be 0 or more seconds, got {poll_interval!r}")
    return None if timeout is None else time.monotonic() + timeout


def _next_wait(poll_interval: float, deadline: float | None, current: KimiBatchStatus) -> float:
    if deadline is None:
        return poll_interval
    left = deadline - time.monotonic()
    if left <= 0:
        raise KimiTimeoutError(
            f"the batch job is not done within the timeout (status {current.status!r}, "
            f"{current.completed + current.failed} of {current.total} requests run); it "
            "goes on: wait again, or reattach later with model.batch_job(ids)"
        )
    return min(poll_interval, left)


def _lines(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Non-blank lines of a body that arrives in pieces, without holding it whole."""
    rest = b""
    for piece in pieces:
        rest += piece
        if b"\n" not in piece:
            continue
        *whole, rest = rest.split(b"\n")
        yield from (line for line in whole if line.strip())
    if rest.strip():
        yield rest


async def _alines(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    rest = b""
    async for piece in pieces:
        rest += piece
        if b"\n" not in piece:
            continue
        *whole, rest = rest.split(b"\n")
        for line in whole:
            if line.strip():
                yield line
    if rest.strip():
        yield rest
