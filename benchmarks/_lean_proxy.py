"""A forward HTTP proxy for the benchmark's proxied fan-out, on aiohttp (server and client).

Whatever host a request names (``POST http://kimi.bench.invalid/kimi/...``), it
is forwarded to the benchmark server on 127.0.0.1, with pooled keep-alive
connections both ways, and the answer is streamed back as it arrives. It runs
in its own process, like the server, so its CPU never counts against the
client being measured.

Run ``python benchmarks/_lean_proxy.py --upstream-port N``: it prints ``PORT <n>``
once it listens and exits when its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading

import aiohttp
from aiohttp import web

# Hop-by-hop and framing headers: aiohttp sets its own for each side.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "transfer-encoding",
        "content-length",
        "host",
        "te",
        "trailer",
        "upgrade",
    }
)


def build_app(upstream_port: int) -> web.Application:
    app = web.Application()
    state: dict[str, aiohttp.ClientSession] = {}

    async def start(app: web.Application) -> None:
        state["session"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=False,
        )

    async def stop(app: web.Application) -> None:
        await state["session"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        body = await request.read()
        url = f"http://127.0.0.1:{upstream_port}{request.rel_url}"
        async with state["session"].request(
            request.method, url, data=body, headers=headers
        ) as upstream:
            response = web.StreamResponse(
                status=upstream.status,
                headers={
                    k: v for k, v in upstream.headers.items() if k.lower() not in _NOT_FORWARDED
                },
            )
            await response.prepare(request)
            async for piece in upstream.content.iter_any():
                await response.write(piece)
            await response.write_eof()
            return response

    app.router.add_route("*", "/{tail:.*}", forward)
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


async def serve(upstream_port: int) -> None:
    runner = web.AppRunner(build_app(upstream_port), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _exit_when_parent_leaves() -> None:
    sys.stdin.read()
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream-port", type=int, required=True)
    args = parser.parse_args()
    threading.Thread(target=_exit_when_parent_leaves, daemon=True).start()
    asyncio.run(serve(args.upstream_port))


if __name__ == "__main__":
    main()
