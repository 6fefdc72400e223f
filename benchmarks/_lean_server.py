"""A fast loopback Kimi server for the client benchmarks (standard library only).

``FakeKimiServer`` is the referee of the test suite: it checks every request and
writes one event at a time from a thread per connection. That is right for
tests and too slow to keep up with a client being timed, so the benchmark runs
this server instead, in its own process (its CPU never counts against the
client): one asyncio loop, keep-alive connections, answers rendered once and
cached, a whole stream written in one go (one HTTP chunk per SSE event, as a
proxy that flushes per event would send them).

What to answer is read from the last message's text, so every client (raw
``requests``, ``ChatKimi``, ``ChatOpenAI``) can steer it with the same prompt:

- ``chunks=N``: a streamed answer has N content events of 4 characters each;
- ``latency=S``: wait S seconds before the status line.

Run ``python benchmarks/_lean_server.py [--impl fake]``: it prints
``PORT <n>`` once it listens and exits when its stdin closes (the benchmark
holds the pipe, so the server cannot outlive it) or after ``--max-seconds``.
``--impl fake`` serves the same answers with ``FakeKimiServer`` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import threading
from functools import lru_cache
from typing import Any

BASE_PATH = "/kimi"
COMPLETIONS_PATH = BASE_PATH + "/chat/completions"
MODEL = "kimi-k2.5"
CREATED = 1_770_000_000
DEFAULT_CHUNKS = 20
# Four-character pieces, about the size of a real token.
_PIECES = ("The ", "sky ", "is b", "lue ", "beca", "use ", "air ", "scat", "ters", " lig")
_KNOB = re.compile(r"(chunks|latency)=([0-9.]+)")
_MAX_HEADER_BYTES = 64 * 1024
ANSWER = (
    "The sky looks blue because air molecules scatter short (blue) wavelengths of "
    "sunlight much more than long (red) ones: Rayleigh scattering."
)
REASONING = "The user asks a physics question; one sentence on Rayleigh scattering will do."


def stream_text(chunks: int) -> str:
    """The content a ``chunks=N`` stream carries (the benchmark checks it arrived)."""
    return "".join(_PIECES[i % len(_PIECES)] for i in range(chunks))


def parse_knobs(text: str) -> tuple[int, float]:
    """``chunks=N latency=S`` in a prompt -> (chunks, latency)."""
    chunks, latency = DEFAULT_CHUNKS, 0.0
    for name, value in _KNOB.findall(text):
        if name == "chunks":
            chunks = max(int(float(value)), 1)
        else:
            latency = min(float(value), 30.0)
    return chunks, latency


def _last_text(body: Any) -> str:
    try:
        content = body["messages"][-1]["content"]
    except (KeyError, IndexError, TypeError):
        return ""
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _usage(completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": 24,
        "completion_tokens": completion_tokens,
        "total_tokens": 24 + completion_tokens,
        "completion_tokens_details": {"reasoning_tokens": 18},
    }


@lru_cache(maxsize=1)
def completion_response() -> bytes:
    body = _dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": ANSWER,
                        "reasoning_content": REASONING,
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(48),
        }
    )
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


@lru_cache(maxsize=4)
def stream_response(chunks: int, include_usage: bool) -> bytes:
    def event(choices: list[Any], usage: Any = None) -> bytes:
        data = _dumps(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": MODEL,
                "choices": choices,
                "usage": usage,
            }
        )
        return b"data: " + data + b"\n\n"

    def delta(fields: dict[str, Any], finish: str | None = None) -> list[Any]:
        return [{"index": 0, "delta": fields, "finish_reason": finish}]

    events = [event(delta({"role": "assistant", "content": ""}))]
    events.extend(event(delta({"content": _PIECES[i % len(_PIECES)]})) for i in range(chunks))
    events.append(event(delta({}, "stop")))
    if include_usage:
        events.append(event([], _usage(chunks)))
    events.append(b"data: [DONE]\n\n")
    parts = [
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
    ]
    parts.extend(b"%x\r\n%s\r\n" % (len(data), data) for data in events)
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


def _plain(status: str, message: str) -> bytes:
    body = _dumps({"success": False, "error": {"code": "bad_request", "message": message}})
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def answer(path: str, raw: bytes) -> tuple[bytes, float]:
    """The bytes to send for one request, and how long to wait first."""
    if path.split("?", 1)[0] != COMPLETIONS_PATH:
        return _plain("404 Not Found", f"POST to {COMPLETIONS_PATH}"), 0.0
    try:
        body = json.loads(raw)
    except ValueError:
        return _plain("400 Bad Request", "the body is not JSON"), 0.0
    chunks, latency = parse_knobs(_last_text(body))
    if body.get("stream") is True:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return stream_response(chunks, include_usage), latency
    return completion_response(), latency


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            path = parts[1] if len(parts) > 1 else "/"
            length = 0
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            raw = await reader.readexactly(length) if length else b""
            payload, latency = answer(path, raw)
            if latency > 0:
                await asyncio.sleep(latency)
            writer.write(payload)
            await writer.drain()
            if close:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def _serve_lean(port: int, max_seconds: float) -> None:
    server = await asyncio.start_server(
        _serve_connection, "127.0.0.1", port, backlog=1024, limit=_MAX_HEADER_BYTES
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"PORT {bound}", flush=True)
    async with server:
        await asyncio.sleep(max_seconds)


def _serve_fake(port: int, max_seconds: float) -> None:
    from langchain_kimi.testing import FakeKimiServer, Reply

    def respond(body: dict[str, Any]) -> Reply:
        chunks, latency = parse_knobs(_last_text(body))
        if body.get("stream") is True:
            return Reply(content=stream_text(chunks), reasoning="", chunk_size=4, delay=latency)
        return Reply(content=ANSWER, reasoning=REASONING, delay=latency)

    server = FakeKimiServer(api_key=None, port=port, enforce_rules=False)
    server.set_responder(respond)
    with server:
        print(f"PORT {server.port}", flush=True)
        threading.Event().wait(max_seconds)


def _exit_when_parent_leaves() -> None:
    # The benchmark holds our stdin; EOF means it is gone (even killed).
    sys.stdin.read()
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--impl", choices=("lean", "fake"), default="lean")
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args(argv)
    threading.Thread(target=_exit_when_parent_leaves, daemon=True).start()
    if args.impl == "fake":
        _serve_fake(args.port, args.max_seconds)
    else:
        asyncio.run(_serve_lean(args.port, args.max_seconds))


if __name__ == "__main__":
    main()
