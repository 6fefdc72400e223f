"""The SSE decoder: framing rules, and any split of real streams into reads."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_kimi._limits import MAX_SSE_LINE_BYTES
from langchain_kimi._sse import ErrorEvent, SSEDecoder
from langchain_kimi.errors import KimiResponseError
from tests.fixtures.load import docs_text, interactions


def decode_all(pieces: list[bytes], max_line_bytes: int | None = None) -> list[str]:
    decoder = SSEDecoder(max_line_bytes)
    events: list[str] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.extend(decoder.flush())
    return events


def test_events_are_dispatched_at_blank_lines() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a": 1}\n') == []
    assert decoder.feed(b"\n") == ['{"a": 1}']
    assert decoder.feed(b"data: [DONE]\n\n") == ["[DONE]"]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_all_three_line_endings(newline: bytes) -> None:
    raw = b"data: one" + newline + newline + b"data: two" + newline + newline
    assert decode_all([raw]) == ["one", "two"]


def test_comments_other_fields_and_extra_blank_lines_are_ignored() -> None:
    raw = b": keep-alive\n\n\n\nevent: message\nid: 7\nretry: 10\ndata: x\n\n\n: bye\n\n"
    assert decode_all([raw]) == ["x"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert decode_all([b"data: a\ndata: b\n\n"]) == ["a\nb"]


def test_data_without_space_after_colon() -> None:
    assert decode_all([b"data:{}\n\n"]) == ["{}"]


def test_flush_dispatches_an_unterminated_last_event() -> None:
    assert decode_all([b"data: [DONE]"]) == ["[DONE]"]
    assert decode_all([b"data: [DONE]\n"]) == ["[DONE]"]


def test_utf8_split_across_reads() -> None:
    raw = 'data: {"content": "40°C 你好"}\n\n'.encode()
    pieces = [raw[i : i + 1] for i in range(len(raw))]
    assert decode_all(pieces) == ['{"content": "40°C 你好"}']


def test_crlf_split_between_reads() -> None:
    assert decode_all([b"data: a\r", b"\n\r", b"\n"]) == ["a"]


def test_invalid_utf8_raises_a_response_error() -> None:
    with pytest.raises(KimiResponseError, match="not valid UTF-8"):
        decode_all([b"data: \xff\xfe\n\n"])


def test_invalid_utf8_in_an_unterminated_last_line_raises_a_response_error() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: [DONE]\n\ndata: \xe4\xbd") == ["[DONE]"]
    with pytest.raises(KimiResponseError, match="not valid UTF-8"):
        decoder.flush()


STREAMS = [
    docs_text("ace_stream_k3.sse").encode(),
    *(
        item["response"].encode()
        for name in (
            "avian-kimi__thinking-streaming.yaml",
            "groq-kimi-k2__multi_tool_streaming.yaml",
        )
        for item in interactions(name)
    ),
]


@pytest.mark.parametrize("raw", STREAMS, ids=range(len(STREAMS)))
@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=40))
def test_any_split_yields_the_same_events(raw: bytes, cuts: list[int]) -> None:
    expected = decode_all([raw])
    points = sorted({cut % (len(raw) + 1) for cut in cuts})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    assert decode_all(pieces) == expected
    assert expected[-1] == "[DONE]"
    assert len(expected) > 3


# --- cost and limits ---------------------------------------------------------------

PIECE = b"x" * 4096
MIB = 1024 * 1024


def test_a_piece_of_a_long_line_does_not_copy_what_is_already_buffered() -> None:
    # A 20 MiB line in 4 KiB reads. Decoding that re-joins the buffered part on
    # every read allocates a copy of it (20 MiB) for each new piece: quadratic.
    # Linear decoding allocates next to nothing per piece; the line is joined
    # once, when it ends.
    decoder = SSEDecoder()
    assert decoder.feed(b"data: ") == []
    for _ in range(20 * MIB // len(PIECE)):
        assert decoder.feed(PIECE) == []
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(16):
            decoder.feed(PIECE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < MIB, f"one 4 KiB piece cost {(peak - before) // 16:,} bytes"
    (event,) = decoder.feed(b"\n\n")
    assert len(event) == 20 * MIB + 16 * len(PIECE)
    assert event == "x" * len(event)


def test_a_line_over_the_limit_is_refused_and_names_the_limit() -> None:
    decoder = SSEDecoder(max_line_bytes=10_000)
    decoder.feed(b"data: ")
    decoder.feed(b"x" * 9_000)
    with pytest.raises(KimiResponseError, match="longer than 10,000 bytes"):
        decoder.feed(b"x" * 2_000)


@pytest.mark.parametrize(
    "pieces",
    [
        [b"data: " + b"x" * 10_001 + b"\n\n"],  # one read
        [b"data: x\n\n: " + b"c" * 10_001],  # the start of a line, in a read with events
        [b"data: ", b"x" * 5_000, b"x" * 5_000 + b"\n"],  # ended by a read
        [b"data: x\n\nevent: " + b"e" * 20_000 + b"\ndata: y\n\n"],  # any field
    ],
    ids=["whole", "tail", "pieces", "other-field"],
)
def test_every_way_a_long_line_arrives_is_refused(pieces: list[bytes]) -> None:
    with pytest.raises(KimiResponseError, match="longer than 10,000 bytes"):
        decode_all(pieces, max_line_bytes=10_000)


def test_a_line_at_the_limit_is_accepted() -> None:
    line = b"data: " + b"x" * (10_000 - 6)
    assert decode_all([line[:3], line[3:], b"\n\n"], max_line_bytes=10_000) == ["x" * 9_994]
    assert decode_all([line + b"\n\n"], max_line_bytes=10_000) == ["x" * 9_994]


def test_an_event_of_many_short_data_lines_is_bounded_too() -> None:
    raw = b"data: 0123456789\n" * 2_000 + b"\n"
    with pytest.raises(KimiResponseError, match="event's data is longer than 10,000 bytes"):
        decode_all([raw], max_line_bytes=10_000)
    assert decode_all([b"data: 0123456789\n" * 500 + b"\n"], max_line_bytes=10_000) == [
        "\n".join(["0123456789"] * 500)
    ]


def test_the_default_limit_is_the_documented_one() -> None:
    decoder = SSEDecoder()
    limit = MAX_SSE_LINE_BYTES
    decoder.feed(b"data: ")
    for _ in range(limit // MIB - 1):
        decoder.feed(b"x" * MIB)
    decoder.feed(b"x" * (MIB - 6))  # the line is now exactly at the limit
    with pytest.raises(KimiResponseError, match=f"longer than {limit:,} bytes"):
        decoder.feed(b"x")


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("cut", range(7))
def test_a_byte_order_mark_that_starts_the_stream_is_dropped_however_it_is_split(
    cut: int,
) -> None:
    raw = BOM + b"data: first\n\ndata: second\n\n"
    assert decode_all([raw[:cut], raw[cut:]]) == ["first", "second"]
    assert decode_all([bytes([b]) for b in raw]) == ["first", "second"]


def test_only_a_leading_byte_order_mark_is_dropped() -> None:
    # Anywhere else it is data (and a line starting with it is no "data:" line).
    assert decode_all([b"data: a\xef\xbb\xbfb\n\n"]) == ["a\ufeffb"]
    assert decode_all([b"data: a\n\n" + BOM + b"data: b\n\n"]) == ["a"]
    assert decode_all([BOM]) == []


def test_an_error_event_is_told_apart_whatever_its_data() -> None:
    raw = (
        b'data: {"a": 1}\n\n'
        b'event: error\ndata: {"message": "overloaded"}\n\n'
        b"event: error\ndata: line one\ndata: line two\n\n"
        b"event: error\n\n"
        b"event:error\n\n"
        b"event: message\ndata: plain\n\n"
        b"event: ping\n\n"
    )
    events = decode_all([raw])
    assert events == [
        '{"a": 1}',
        '{"message": "overloaded"}',
        "line one\nline two",
        "",
        "",
        "plain",
    ]
    kinds = [type(event) for event in events]
    assert kinds == [str, ErrorEvent, ErrorEvent, ErrorEvent, ErrorEvent, str]


def test_the_event_type_does_not_outlive_its_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: error\ndata: x\n\n") == ["x"]
    (after,) = decoder.feed(b"data: y\n\n")
    assert type(after) is str
