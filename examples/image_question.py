"""Ask kimi-k2.5 about an image: a local file sent as base64, or a URL.

Run it::

    python examples/image_question.py --offline                  # a tiny built-in image
    ACEDATACLOUD_API_TOKEN=... python examples/image_question.py photo.jpg
    ACEDATACLOUD_API_TOKEN=... python examples/image_question.py https://example.com/cat.jpg \\
        --question "What breed is this cat?"
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path
from typing import Any

from _offline import offline_if, token_missing  # --offline plumbing: see _offline.py
from langchain_core.messages import HumanMessage

from langchain_kimi import ChatKimi, KimiError
from langchain_kimi.testing import Reply

# A 1x1 PNG, so that the offline run needs no file.
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def image_block(source: str | None) -> dict[str, Any]:
    """A LangChain standard image block for a URL or a local file.

    No ``mime_type``: ChatKimi reads the type from the image's bytes (a file's
    name can lie), and refuses a file that is no image it can send.
    """
    if source is None:
        return {"type": "image", "base64": base64.b64encode(TINY_PNG).decode()}
    if source.startswith(("https://", "http://")):
        return {"type": "image", "url": source}
    return {"type": "image", "base64": base64.b64encode(Path(source).read_bytes()).decode()}


def offline_answer(body: dict[str, Any]) -> Reply:
    """Stand-in for Kimi: report what arrived (the simulator cannot see images)."""
    parts = body["messages"][-1]["content"]
    images = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    kind = images[0].split(";")[0].removeprefix("data:") if images else "none"
    return Reply(
        reasoning="The user sent an image and a question.",
        content=f"I received {len(images)} image ({kind}). Offline, I can only say it is tiny.",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Ask Kimi about an image.")
    parser.add_argument("image", nargs="?", help="a local image file or an http(s) URL")
    parser.add_argument("--question", default="What is in this picture? Be brief.")
    parser.add_argument("--offline", action="store_true", help="use the bundled simulator")
    args = parser.parse_args()
    if args.image is None and not args.offline:
        parser.error("give an image path or URL (or use --offline)")

    with offline_if(args.offline, responder=offline_answer):
        if token_missing():
            return 2
        message = HumanMessage(
            content=[{"type": "text", "text": args.question}, image_block(args.image)]
        )
        try:
            with ChatKimi(model="kimi-k2.5", max_tokens=16384) as model:
                for chunk in model.stream([message]):
                    print(chunk.content, end="", flush=True)
                print()
        except (KimiError, ValueError) as err:  # ValueError: e.g. a file that is no image
            print(f"error: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
