"""Every script in examples/ runs offline (``--offline``) and prints what it should.

The scripts run in this process, as ``python examples/<name>.py`` would run them:
``runpy.run_path`` as ``__main__`` with their own ``sys.argv``, the examples
directory first on ``sys.path`` (where their ``_offline`` helper lives), the
repository as working directory and no token in the environment (each run's
changes to it are undone). A subprocess per script cost a second of imports
each; one subprocess run remains to show a script works as a user starts it.

A new example is picked up automatically (checked for exit status 0 and some
output); the ones listed in ``EXPECTED`` are also checked for the lines that show
they did their job.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Run in a process of their own, by their own test: ray_data.py starts a Ray
# cluster of worker processes (tests/integration/test_ray_example.py).
OWN_PROCESS = {"ray_data.py"}
# Files starting with "_" are the examples' shared helpers, not examples.
SCRIPTS = sorted(
    p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_") and p.name not in OWN_PROCESS
)
TIMEOUT = 60
# Set by the examples' --offline plumbing, or by the developer's shell.
_ENDPOINT_VARIABLES = ("ACEDATACLOUD_API_TOKEN", "KIMI_BASE_URL")

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
    "k3_uploaded_image.py": ["uploaded tiny.png as ms://cl", "I received 1 image(s): ms://cl"],
    "offline_test_of_a_chain.py": [
        "passed: test_classifies_a_review",
        "passed: test_streams_through_the_chain",
        "passed: test_rate_limit_reaches_the_caller",
        "all 3 tests passed",
    ],
    "agent.py": [
        'get_weather({"city": "Paris"})',
        "Final answer:\n  Rome is warmer right now: 71.6 F (22 C).",
        "offline: 3 requests to FakeKimiServer",
    ],
}


@dataclass
class Run:
    status: int
    out: str
    err: str


@pytest.fixture
def run_example(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Run]:
    """``run_example(script, *args) -> Run``: the script as ``__main__``, in this process."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.chdir(EXAMPLES.parent)
    for name in [*_ENDPOINT_VARIABLES, *_tracing_variables()]:
        # setenv first so that teardown restores the original, even when the
        # example itself set the variable (the --offline plumbing does).
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)

    def run(script: Path, *args: str) -> Run:
        monkeypatch.setattr(sys, "argv", [str(script), *args])
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exit_:
            code = exit_.code
        else:
            code = 0
        captured = capsys.readouterr()
        status = code if isinstance(code, int) else (0 if code is None else 1)
        return Run(status, captured.out, captured.err)

    return run


def _tracing_variables() -> list[str]:
    return [key for key in os.environ if key.startswith(("LANGSMITH_", "LANGCHAIN_"))]


def test_the_documented_examples_exist() -> None:
    assert set(EXPECTED) <= {script.name for script in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.name for script in SCRIPTS])
def test_example_runs_offline(script: Path, run_example: Callable[..., Run]) -> None:
    result = run_example(script, "--offline")
    assert result.status == 0, f"stdout:\n{result.out}\nstderr:\n{result.err}"
    assert result.out.strip(), result.err
    assert "Traceback" not in result.err
    for expected in EXPECTED.get(script.name, []):
        assert expected in result.out, f"{expected!r} not in:\n{result.out}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_without_token_says_what_to_do(name: str, run_example: Callable[..., Run]) -> None:
    result = run_example(EXAMPLES / name)
    assert result.status == 2, result.err
    assert "--offline" in result.err
    assert "Traceback" not in result.err


def test_a_script_runs_as_a_user_starts_it() -> None:
    """One real ``python examples/quickstart.py --offline``: the script's own sys.path[0]."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _ENDPOINT_VARIABLES and not key.startswith(("LANGSMITH_", "LANGCHAIN_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), "--offline"],
        capture_output=True,
        text=True,
        env=env,
        cwd=EXAMPLES.parent,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    for expected in EXPECTED["quickstart.py"]:
        assert expected in result.stdout


# A JPEG's first bytes (SOI, APP0 "JFIF"): the type is in the content, not the name.
_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def test_image_example_reads_the_type_from_the_bytes(
    run_example: Callable[..., Run], tmp_path: Path
) -> None:
    """image_question.py leaves the type to the library: a JPEG named .png goes as JPEG."""
    misnamed = tmp_path / "holiday.png"
    misnamed.write_bytes(_JPEG)
    result = run_example(EXAMPLES / "image_question.py", str(misnamed), "--offline")
    assert result.status == 0, result.err
    assert "I received 1 image (image/jpeg)." in result.out

    notes = tmp_path / "notes.png"
    notes.write_text("not a picture at all\n")
    result = run_example(EXAMPLES / "image_question.py", str(notes), "--offline")
    assert result.status == 1
    assert "its bytes are not PNG, JPEG, GIF, WebP or BMP" in result.err
    assert "Traceback" not in result.err
