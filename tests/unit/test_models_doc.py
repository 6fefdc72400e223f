"""docs/models.md's catalogue table says what langchain_kimi/data says, row by row.

Each cell but "Notes" is recomputed here from the profile and the request rules
(``langchain_kimi._profiles.known_models``); a model added to the data without
a row, a row for a model the data lacks, or a figure that drifted fails.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pytest

from langchain_kimi._profiles import ModelRules, known_models

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"
COLUMNS = [
    "Model",
    "Status",
    "Context",
    "Output",
    "Input",
    "Thinking",
    "Fixed sampling",
    "`tool_choice` while thinking",
    "Forced `tool_choice`",
    "`reasoning_effort`",
    "Output-size field",
    "Reasoning replayed on",
    "Notes",
]
THINKING = {"default_on": "on by default", "always": "always", "never": "never", "toggle": "toggle"}
FORCED = {"send": "sent", "thinking_off": "thinking off", "emulate": "emulated"}


def table_rows() -> dict[str, dict[str, str]]:
    lines = DOC.read_text("utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Model |"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    assert header == COLUMNS
    rows: dict[str, dict[str, str]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == len(COLUMNS), line
        row = dict(zip(COLUMNS, cells, strict=True))
        rows[row["Model"].strip("`")] = row
    return rows


def number(value: float) -> str:
    return f"{value:g}"


def expected_cells(rules: ModelRules) -> dict[str, str]:
    profile: dict[str, Any] = dict(rules.profile)
    inputs = ["text"]
    if rules.image_inputs:
        inputs.append("image" if rules.public_image_urls else "image (base64 or `ms://` only)")
    if rules.video_inputs:
        inputs.append("video")
    fixed = []
    for name, value in rules.fixed_sampling_thinking.items():
        instant = rules.fixed_sampling_instant.get(name, value)
        extra = f" ({number(instant)} without thinking)" if instant != value else ""
        fixed.append(f"{name} {number(value)}{extra}")
    return {
        "Status": "deprecated" if rules.deprecated else "active",
        "Context": f"{profile['max_input_tokens']:,}",
        "Output": f"{profile['max_output_tokens']:,}",
        "Input": ", ".join(inputs),
        "Thinking": THINKING[rules.thinking]
        + ("" if rules.thinking_parameter else " (no `thinking` field)"),
        "Fixed sampling": ", ".join(fixed) or "none",
        "`tool_choice` while thinking": "—"
        if rules.thinking == "never"
        else ", ".join(sorted(rules.tool_choice_when_thinking)),
        "Forced `tool_choice`": FORCED[rules.forced_tool_choice],
        "`reasoning_effort`": ", ".join(rules.reasoning_effort_levels) or "—",
        "Output-size field": f"`{rules.max_tokens_field}`",
        "Reasoning replayed on": "every assistant message"
        if rules.reasoning_replay == "all"
        else "tool-call messages",
    }


def test_the_table_has_a_row_for_every_model_and_no_other() -> None:
    assert set(table_rows()) == set(known_models())


@pytest.mark.parametrize("name", sorted(known_models()))
def test_the_row_matches_the_data(name: str) -> None:
    row = table_rows()[name]
    expected = expected_cells(known_models()[name])
    assert {column: row[column] for column in expected} == expected


def test_the_table_would_catch_a_drift(monkeypatch: pytest.MonkeyPatch) -> None:
    # The comparison is not vacuous: a changed figure no longer matches its row.
    rules = known_models()["kimi-k3"]
    monkeypatch.setitem(rules.profile, "max_input_tokens", 262_144)  # type: ignore[arg-type]
    assert expected_cells(rules)["Context"] != table_rows()["kimi-k3"]["Context"]


def test_the_python_blocks_run_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACEDATACLOUD_API_TOKEN", "docs-test-token")
    blocks = re.findall(r"^```python\n(.*?)^```", DOC.read_text("utf-8"), re.DOTALL | re.MULTILINE)
    expected = [
        ["kimi-k2.5 refused: True", "kimi-k3 refused: True"],  # Preserved Thinking
        ["1048576 False", "['low', 'high', 'max']", "True", "None", "refused: True"],
    ]
    assert len(blocks) == len(expected)  # one expected output per block, in order
    for code, lines in zip(blocks, expected, strict=True):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(DOC), "exec"), {})
        assert out.getvalue().splitlines() == lines


PRESERVED_CELLS = {
    "always": ("always on", "accepted, nothing sent", "refused"),
    "optional": (
        "off by default",
        'sends `"thinking": {"type": "enabled", "keep": "all"}`',
        "accepted, nothing sent",
    ),
    "unsupported": ("none", "refused", "accepted, nothing sent"),
}


def test_the_preserved_thinking_table_says_what_the_data_says() -> None:
    lines = DOC.read_text("utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Model | Preserved"))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = tuple(cells[1:])
    named = {name for name in rows if name != "other known models"}
    for name, rules in known_models().items():
        row = rows[name] if name in named else rows["other known models"]
        assert row == PRESERVED_CELLS[rules.preserved_thinking], name
        # Every model that takes it is named; the catch-all row is for the others.
        assert (name in named) is (rules.preserved_thinking != "unsupported"), name


README = DOC.parents[1] / "README.md"
README_COLUMNS = ["Model", "Status", "Context", "Input", "Thinking"]


def test_the_readme_table_says_what_the_data_says() -> None:
    lines = README.read_text("utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Model | Status |"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    assert header == README_COLUMNS
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = dict(zip(README_COLUMNS, cells, strict=True))
    models = known_models()
    assert set(rows) == set(models)
    for name, rules in models.items():
        expected = expected_cells(rules)
        expected["Status"] = "deprecated on Moonshot" if rules.deprecated else "active"
        for column in README_COLUMNS[1:]:
            assert rows[name][column] == expected[column], (name, column)
