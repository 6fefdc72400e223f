"""Ask kimi-k3 about an image uploaded to Moonshot's file API (``ms://<file-id>``).

kimi-k3 takes no public image URLs: an image goes as base64, or uploaded once
with ``purpose="image"`` and referenced as ``ms://<file-id>`` in an image block
(a video the same way, with ``purpose="video"`` and a video block). Moonshot's
own API only.

Run it::

    python examples/k3_uploaded_image.py --offline            # the simulator, a tiny image
    MOONSHOT_API_KEY=... python examples/k3_uploaded_image.py photo.jpg \\
        --question "What breed is this cat?"
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

from langchain_kimi import ChatKimi, KimiError
from langchain_kimi.testing import FakeKimiServer, Reply

MOONSHOT_URL = "https://api.moonshot.ai/v1"
# A 1x1 PNG, so that the offline run needs no file.
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def offline_answer(body: dict[str, Any]) -> Reply:
    """Stand-in for kimi-k3: report which image references arrived."""
    parts = body["messages"][-1]["content"]
    images = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    return Reply(content=f"I received {len(images)} image(s): {', '.join(images)}")


@contextmanager
def moonshot(offline: bool) -> Iterator[tuple[str, str | None]]:
    """Moonshot's base URL and key; offline, the simulator's (playing Moonshot)."""
    if not offline:
        yield MOONSHOT_URL, os.environ.get("MOONSHOT_API_KEY")
        return
    with FakeKimiServer(api_key="offline-example", flavor="moonshot") as server:
        server.set_responder(offline_answer)
        print(f"(offline: answers come from FakeKimiServer at {server.base_url}, not Kimi)")
        yield server.base_url, server.api_key


def main() -> int:
    parser = argparse.ArgumentParser(description="Ask kimi-k3 about an uploaded image.")
    parser.add_argument("image", nargs="?", help="a local image file")
    parser.add_argument("--question", default="What is in this picture? Be brief.")
    parser.add_argument("--offline", action="store_true", help="use the bundled simulator")
    args = parser.parse_args()
    if args.image is None and not args.offline:
        parser.error("give an image path (or use --offline)")

    with moonshot(args.offline) as (base_url, api_key):
        if not api_key:
            print("set MOONSHOT_API_KEY (or run with --offline)", file=sys.stderr)
            return 2
        # api_flavor names the service: Moonshot's own host implies it, a gateway does not.
        with ChatKimi(
            model="kimi-k3", base_url=base_url, api_key=api_key, api_flavor="moonshot"
        ) as model:
            try:
                if args.image is None:
                    image = model.files.upload(TINY_PNG, purpose="image", filename="tiny.png")
                else:
                    image = model.files.upload(Path(args.image), purpose="image")
                print(f"uploaded {image.filename} as {image.reference}")
                message = HumanMessage(
                    content=[
                        {"type": "text", "text": args.question},
                        {"type": "image", "url": image.reference},  # ms://<file-id>
                    ]
                )
                print(model.invoke([message]).content)
                model.files.delete(image.id)  # the account holds at most 1,000 files
            except (KimiError, ValueError) as err:
                print(f"error: {err}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
