"""examples/ray_data.py: ChatKimi on Ray Data, one model per worker, against the simulator.

The example starts a local Ray cluster (two worker processes), so it runs as
a user starts it, in a process of its own; the workers reach the simulator the
driver started on 127.0.0.1. Ray's usage reporting is off (the example sets
``RAY_USAGE_STATS_ENABLED=0``), so nothing leaves the machine.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_kimi import ChatKimi

pytest.importorskip("ray", reason='Ray is not installed: pip install ".[ray]"')

ROOT = Path(__file__).resolve().parents[2]


def test_a_model_pickles_for_the_workers_and_answers_after() -> None:
    model = ChatKimi(model="kimi-k2.6", api_key="sk-pickled", base_url="http://127.0.0.1:9/kimi")
    copy = pickle.loads(pickle.dumps(model))
    assert copy.api_key is not None and copy.api_key.get_secret_value() == "sk-pickled"
    assert copy.base_url == model.base_url and copy.model == model.model


def test_the_ray_example_answers_every_row_on_two_workers() -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ACEDATACLOUD_API_TOKEN", "KIMI_BASE_URL")
        and not key.startswith(("LANGSMITH_", "LANGCHAIN_"))
    }
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ray_data.py"), "--offline"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "In one word: what colour is item 0? -> Echo: In one word: what colour is item 0?" in out
    assert "answered 24 questions on 2 Ray worker(s)" in out
    assert "offline: 24 requests to FakeKimiServer" in out
