"""Bounded answers: size caps that stop a decompression bomb, and a total deadline per call.

The servers here misbehave on purpose, written byte by byte (``_raw_server``):
a small gzip body that inflates far past the cap, an endless error page, a body
trickled one byte at a time, an SSE stream of keep-alive comments that never
ends. Each would keep a call alive (or its memory growing) without the bound;
each server gives up on its own after ``GIVE_UP`` seconds, so a client without
the bound fails its test instead of hanging the suite.
"""

from __future__ import annotations

import functools
import tracemalloc
import zlib
from typing import Any

import pytest

from langchain_kimi import KimiResponseError, KimiServerError, KimiTimeoutError
from langchain_kimi._limits import MAX_ERROR_BODY_BYTES, MAX_RESPONSE_BYTES
from langchain_kimi.testing import FakeKimiServer, Reply

from ._raw_server import RawConnection, RawServer, response_head
from .test_faults import MODES, STREAM_MODES, call, make

GIVE_UP = 20.0  # a server's own limit on how long it misbehaves
DEADLINE = 0.5  # total_timeout for the deadline tests
# Inflated size of the bomb: four times the cap, from about 260 KB on the wire.
BOMB_SIZE = 4 * MAX_RESPONSE_BYTES


@functools.cache
def gzip_bomb() -> bytes:
    """``BOMB_SIZE`` zero bytes, gzipped (built once per test process)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(BOMB_SIZE // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)


def serve_bomb(connection: RawConnection, *, status: str = "200 OK") -> None:
    while connection.read_request() is not None:
        bomb = gzip_bomb()
        head = response_head(
            status,
            content_type="application/json",
            content_encoding="gzip",
            content_length=len(bomb),
        )
        if not connection.send(head + bomb):
            return


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_a_gzip_bomb_is_refused_without_inflating_it(mode: str) -> None:
    assert len(gzip_bomb()) < 1024 * 1024  # small on the wire...
    with RawServer(serve_bomb) as server:
        tracemalloc.start()
        try:
            outcome = call(make(server.base_url), mode)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    error = outcome.raised(KimiResponseError)
    assert f"larger than {MAX_RESPONSE_BYTES} bytes" in str(error)
    # ...four times the cap once inflated; the client stopped near the cap
    # (what it read, joined once) instead of holding the whole thing.
    assert peak < 2 * MAX_RESPONSE_BYTES + 16 * 1024 * 1024, peak


@pytest.mark.parametrize("mode", MODES)
def test_an_error_page_bomb_is_read_only_as_far_as_the_error_needs(mode: str) -> None:
    with RawServer(functools.partial(serve_bomb, status="400 Bad Request")) as server:
        tracemalloc.start()
        try:
            outcome = call(make(server.base_url), mode)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    error = outcome.raised(Exception)
    assert getattr(error, "status_code", None) == 400, repr(error)
    assert peak < 16 * 1024 * 1024, peak
    assert len(str(error)) < MAX_ERROR_BODY_BYTES


def test_a_declared_length_past_the_cap_is_refused_before_reading() -> None:
    def declare_huge(connection: RawConnection) -> None:
        if connection.read_request() is not None:
            head = response_head(
                content_type="application/json", content_length=MAX_RESPONSE_BYTES + 1
            )
            connection.send(head + b"{")
            connection.pause(GIVE_UP)

    for mode in ("invoke", "ainvoke"):
        with RawServer(declare_huge) as server:
            outcome = call(make(server.base_url), mode)
        assert f"larger than {MAX_RESPONSE_BYTES} bytes" in str(outcome.raised(KimiResponseError))


# --- the total deadline ---------------------------------------------------------


def trickle_json(connection: RawConnection) -> None:
    """A 200 whose body comes one byte every 50 ms: never silent for a read timeout."""
    if connection.read_request() is None:
        return
    body = b'{"choices": [{"message": {"content": "' + b"x" * 10_000 + b'"}}]}'
    connection.send(response_head(content_type="application/json", content_length=len(body)))
    for byte in body:
        if not connection.pause(0.05) or not connection.send(bytes([byte])):
            return


def trickle(connection: RawConnection, data: bytes) -> None:
    """``data`` one byte every 50 ms, for at most ``GIVE_UP`` seconds."""
    for byte in data[: int(GIVE_UP / 0.05)]:
        if not connection.pause(0.05) or not connection.send(bytes([byte])):
            return


def trickle_error_body(connection: RawConnection) -> None:
    """A 500 whose error page comes one byte every 50 ms (an error body is read too)."""
    if connection.read_request() is None:
        return
    page = b"<html>" + b"upstream trouble " * 600 + b"</html>"
    connection.send(response_head("500 Internal Server Error", content_length=len(page)))
    trickle(connection, page)


def trickle_head(connection: RawConnection) -> None:
    """The status line and headers one byte every 50 ms, then (never reached) a body."""
    if connection.read_request() is None:
        return
    head = response_head(content_type="application/json", content_length=2, x_padding="p" * 10_000)
    trickle(connection, head + b"{}")


def keepalive_forever(connection: RawConnection) -> None:
    """An SSE stream that sends only ``: keep-alive`` comments, every 50 ms."""
    if connection.read_request() is None:
        return
    connection.send(response_head(content_type="text/event-stream", transfer_encoding="chunked"))
    comment = b": keep-alive\n\n"
    chunk = b"%x\r\n%s\r\n" % (len(comment), comment)
    waited = 0.0
    while waited < GIVE_UP and connection.pause(0.05):
        waited += 0.05
        if not connection.send(chunk):
            return


def trickle_then_answer_normally(connection: RawConnection) -> None:
    """For streams: the role delta, then the rest of each event a byte at a time."""
    if connection.read_request() is None:
        return
    connection.send(response_head(content_type="text/event-stream", transfer_encoding="chunked"))
    event = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
    while connection.pause(0.0):
        for byte in event:
            if not connection.pause(0.05) or not connection.send(b"1\r\n%c\r\n" % byte):
                return


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("retries", [0, 2])
@pytest.mark.parametrize(
    "handler",
    [
        trickle_json,
        keepalive_forever,
        trickle_then_answer_normally,
        trickle_error_body,
        trickle_head,
    ],
    ids=[
        "trickled-body",
        "keepalive-comments",
        "trickled-events",
        "trickled-error-body",
        "trickled-head",
    ],
)
def test_total_timeout_ends_a_call_however_the_server_dribbles(
    handler: Any, retries: int, mode: str
) -> None:
    if handler is trickle_json and mode in STREAM_MODES:
        pytest.skip("a JSON body to a stream request is another test's subject")
    with RawServer(handler) as server:
        # The read timeout (silence) is generous: only the deadline can end these calls.
        model = make(server.base_url, timeout=5.0, total_timeout=DEADLINE, max_retries=retries)
        outcome = call(model, mode)
    error = outcome.raised(KimiTimeoutError)
    assert "total_timeout" in str(error)
    # Bounded by the deadline, not by the server's own GIVE_UP (a generous watchdog).
    assert outcome.elapsed < GIVE_UP / 2


@pytest.mark.parametrize("mode", MODES)
def test_retries_count_against_the_deadline(server: FakeKimiServer, mode: str) -> None:
    # Retry-After asks for a wait the deadline does not leave: the retry is not
    # made, and the call ends with a timeout whose cause is the service's answer.
    busy = Reply.error(503, "api_error", "busy", headers={"Retry-After": "30"})
    server.queue(busy, busy, busy)
    outcome = call(make(server, max_retries=5, total_timeout=DEADLINE), mode)
    error = outcome.raised(KimiTimeoutError)
    assert "total_timeout" in str(error)
    assert isinstance(error.__cause__, KimiServerError)
    assert server.request_count == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_call_within_its_deadline_is_untouched(server: FakeKimiServer, mode: str) -> None:
    server.queue(Reply(content="in time"))
    outcome = call(make(server, total_timeout=30.0), mode)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.answer == "in time"


def test_total_timeout_must_be_positive() -> None:
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="total_timeout"):
            make("http://127.0.0.1:1/kimi", total_timeout=bad)


def test_the_bomb_really_inflates_past_the_cap() -> None:
    # The tests above must be able to fail: the body really is that large.
    inflater = zlib.decompressobj(31)
    inflated = len(inflater.decompress(gzip_bomb(), MAX_RESPONSE_BYTES))
    while inflater.unconsumed_tail:
        inflated += len(inflater.decompress(inflater.unconsumed_tail, MAX_RESPONSE_BYTES))
    assert inflated == BOMB_SIZE > MAX_RESPONSE_BYTES


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "soon"])
@pytest.mark.parametrize("mode", MODES)
def test_an_unusable_retry_after_falls_back_to_the_backoff(
    server: FakeKimiServer, fast_backoff: None, value: str, mode: str
) -> None:
    server.queue(
        Reply.error(429, "too_many_requests", "slow down", headers={"Retry-After": value}),
        Reply(content="after the backoff"),
    )
    outcome = call(make(server), mode)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.answer == "after the backoff"
    assert server.request_count == 2


# --- what a body can make, not only its size --------------------------------------

# Bytes of memory per byte of body, at most, whatever the body's shape: what
# Python's own JSON objects cost for a body of nothing but empty objects (the
# worst shape measured), once the client's caps keep it from building more.
# docs/errors.md states it, with the figures measured for each shape.
STRUCTURE_BOUND = 30
BODY_SIZE = 1_900_000


def _list_of(item: str, size: int) -> str:
    return ",".join([item] * (size // (len(item) + 1)))


ONE_CHOICE = '{"index":0,"message":{"content":"ok"},"finish_reason":"stop"}'
CALL = '{"id":"f:0","type":"function","function":{"name":"f","arguments":"{}"}}'
HOSTILE_BODIES = {
    # The body: 135,000 choices of nothing (177 bytes per byte before the cap).
    "empty-choices": '{"choices":[' + _list_of('{"message":{}}', BODY_SIZE) + "]}",
    "junk-objects": '{"choices":[' + ONE_CHOICE + '],"junk":[' + _list_of("{}", BODY_SIZE) + "]}",
    "junk-arrays": '{"choices":[' + ONE_CHOICE + '],"junk":[' + _list_of("[]", BODY_SIZE) + "]}",
    "many-tool-calls": '{"choices":[{"message":{"tool_calls":['
    + _list_of(CALL, BODY_SIZE)
    + ']},"finish_reason":"tool_calls"}]}',
}
HOSTILE_BODIES["event-of-empty-choices"] = (
    "data: {" + '"choices":[' + _list_of('{"delta":{}}', BODY_SIZE) + "]}\n\ndata: [DONE]\n\n"
)
CASES = [
    *[
        (shape, mode)
        for shape in HOSTILE_BODIES
        if shape.startswith("event")
        for mode in STREAM_MODES
    ],
    *[
        (shape, mode)
        for shape in HOSTILE_BODIES
        if not shape.startswith("event")
        for mode in ("invoke", "ainvoke")
    ],
]


@pytest.mark.parametrize(("shape", "mode"), CASES)
def test_what_a_body_can_make_is_bounded_by_its_size(shape: str, mode: str) -> None:
    raw = HOSTILE_BODIES[shape].encode()
    content_type = "text/event-stream" if mode in STREAM_MODES else "application/json"

    def answer(connection: RawConnection) -> None:
        if connection.read_request() is not None:
            connection.send(response_head(content_type=content_type, content_length=len(raw)))
            connection.send(raw)

    with RawServer(answer) as server:
        model = make(server.base_url, timeout=30.0)
        tracemalloc.start()
        try:
            outcome = call(model, mode)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    if "empty-choices" in shape:
        # Far more choices than any request asks for: refused, not built.
        assert "choices" in str(outcome.raised(KimiResponseError))
    else:
        assert outcome.error is None, repr(outcome.error)
    assert len(raw) > 1_800_000
    assert peak < STRUCTURE_BOUND * len(raw), f"{peak / len(raw):.1f} bytes per byte"
