"""The SSE decoder: framing rules, and any split of real streams into reads."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_kimi._sse import SSEDecoder
from tests.fixtures.load import docs_text, interactions


def decode_all(pieces: list[bytes]) -> list[str]:
    decoder = SSEDecoder()
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


def test_invalid_utf8_raises() -> None:
    with pytest.raises(UnicodeDecodeError):
        decode_all([b"data: \xff\xfe\n\n"])


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
