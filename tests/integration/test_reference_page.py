"""The API reference page, built as CI builds the manual, lists ChatKimi's fields with types and defaults.

Builds the site with mkdocs (the docs extra: mkdocs-material, mkdocstrings,
griffe-pydantic) into a temporary directory and reads the reference page's
HTML: every field ChatKimi declares has a heading with its type, the ones with
a plain default show it, the class appears once in the table of contents, and
the docstring's init args are a list, not a run-on paragraph. What it
looks like in a browser: docs/images/reference-page.png.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_kimi import ChatKimi

pytest.importorskip("mkdocs", reason='the docs extra is not installed: pip install ".[docs]"')
pytest.importorskip(
    "griffe_pydantic", reason='the docs extra is not installed: pip install ".[docs]"'
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=180,
    )
    return (site / "reference" / "index.html").read_text()


def heading_text(page: str, name: str) -> str:
    match = re.search(
        rf'<h\d id="langchain_kimi\.ChatKimi\.{name}"[^>]*>(.*?)</h\d>', page, re.DOTALL
    )
    assert match is not None, f"no heading for ChatKimi.{name}"
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))).strip()


# The fields ChatKimi declares itself (not those of LangChain's base classes).
OWN_FIELDS = sorted(set(ChatKimi.__annotations__) & set(ChatKimi.model_fields))


@pytest.mark.parametrize("name", OWN_FIELDS)
def test_every_field_chatkimi_declares_has_a_typed_heading(page: str, name: str) -> None:
    text = heading_text(page, name)
    assert text.startswith(f"{name} :"), text  # "name : type"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("api_key", "api_key : SecretStr | None"),
        ("timeout", "timeout : float | None = 120.0"),
        ("max_retries", "max_retries : int = 2"),
        ("thinking", "thinking : bool | None = None"),
        ("api_flavor", "api_flavor : ApiFlavor | None = None"),
    ],
)
def test_types_and_defaults_are_shown(page: str, name: str, shown: str) -> None:
    assert heading_text(page, name).startswith(shown)


def test_the_class_is_listed_once_and_its_init_args_are_a_list(page: str) -> None:
    toc = page[page.find('<nav class="md-nav md-nav--secondary"') :]
    toc = toc[: toc.find("</nav>")]
    assert len(re.findall(r">\s*ChatKimi\s*<", toc)) == 1
    args = page[page.find("Key init args") :]
    args = args[: args.find("Instantiate")]
    assert args.count("<li>") >= 10, "the init args are not a list"
    assert "<li><code>thinking</code> (default <code>None</code>" in args


def test_examples_use_the_services_tool_call_ids(page: str) -> None:
    assert "functions.get_weather:0" in page
    assert '"id": "get_weather:0"' not in html.unescape(page)
