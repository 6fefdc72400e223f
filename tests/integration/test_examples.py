"""Every script in examples/ runs offline (``--offline``) and prints what it should.

Each runs in a subprocess, as a user runs it, with no token in the environment:
the scripts start their own in-process FakeKimiServer. A new example is picked
up automatically (checked for exit status 0 and some output); the ones listed in
``EXPECTED`` are also checked for the lines that show they did their job.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Files starting with "_" are the examples' shared helpers, not examples.
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
TIMEOUT = 60

EXPECTED: dict[str, list[str]] = {
    "quickstart.py": [
        "offline: answers come from FakeKimiServer",
        "reasoning: Rayleigh scattering",
        "answer:    Air molecules scatter blue sunlight",
        "'output_token_details': {'reasoning':",
        "Blue light bends and scatters\nacross the wide morning air\nthe whole sky answers",
    ],
    "streaming_chat.py": [
        "you> Hi! I'm Ann and I like climbing.",
        "(thinking) The user introduces herself as Ann",
        "kimi> Nice to meet you, Ann!",
        # The second answer is computed from the history the simulator received.
        '(thinking) Earlier the user said: "Hi! I\'m Ann and I like climbing."',
        "kimi> Of course, Ann",
        "tokens]",
    ],
    "structured_extraction.py": [
        '{"name":"Ann Lee","company":"Acme","email":"ann@example.com","interest":"a demo in March"}',
        '{"name":"Bob Stone","company":"Globex","email":null,"interest":"pricing for 40 seats"}',
    ],
    "image_question.py": ["I received 1 image (image/png)."],
    "offline_test_of_a_chain.py": [
        "passed: test_classifies_a_review",
        "passed: test_streams_through_the_chain",
        "passed: test_rate_limit_reaches_the_caller",
        "all 3 tests passed",
    ],
}


def env_without_token() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ACEDATACLOUD_API_TOKEN", "KIMI_BASE_URL")
        and not key.startswith(("LANGSMITH_", "LANGCHAIN_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=env_without_token(),
        cwd=EXAMPLES.parent,
        timeout=TIMEOUT,
    )


def test_the_documented_examples_exist() -> None:
    assert set(EXPECTED) <= {script.name for script in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.name for script in SCRIPTS])
def test_example_runs_offline(script: Path) -> None:
    result = run(script, "--offline")
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.stdout.strip(), result.stderr
    assert "Traceback" not in result.stderr
    for expected in EXPECTED.get(script.name, []):
        assert expected in result.stdout, f"{expected!r} not in:\n{result.stdout}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_without_token_says_what_to_do(name: str) -> None:
    result = run(EXAMPLES / name)
    assert result.returncode == 2, result.stderr
    assert "--offline" in result.stderr
    assert "Traceback" not in result.stderr
