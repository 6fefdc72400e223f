"""The wheel a user installs: built here, offline, and read back.

Built with the build backend the test extra installs (hatchling), without
build isolation, so no package index is asked. Checks what a careful adopter
checks: the typing marker, the data files the model rules are read from, the
license text, and the metadata (license expression, URLs, classifiers, the
runtime dependencies, the two commands).
"""

from __future__ import annotations

import email
import subprocess
import sys
import zipfile
from email.message import Message
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    pytest.importorskip("hatchling", reason="the test extra installs hatchling, the build backend")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [built] = out.glob("langchain_kimi-*.whl")
    return zipfile.ZipFile(built)


def metadata(wheel: zipfile.ZipFile) -> Message:
    [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(wheel.read(name))


def test_the_wheel_ships_the_typing_marker_and_the_data_files(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "langchain_kimi/py.typed" in names
    assert "langchain_kimi/data/profile_augmentations.toml" in names
    assert "langchain_kimi/data/_profiles.py" in names
    assert {"langchain_kimi/testing/__init__.py", "langchain_kimi/batch.py"} <= names
    # The rules file in the wheel is the one in the tree, byte for byte.
    shipped = wheel.read("langchain_kimi/data/profile_augmentations.toml")
    assert shipped == (ROOT / "langchain_kimi/data/profile_augmentations.toml").read_bytes()
    # Nothing of the tests or the repository's tooling.
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "docs/", ".ci/"))]


def test_the_wheel_ships_the_license_text(wheel: zipfile.ZipFile) -> None:
    [license_file] = [n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert wheel.read(license_file) == (ROOT / "LICENSE").read_bytes()
    assert b"MIT License" in wheel.read(license_file)


def test_the_metadata_says_what_an_adopter_looks_for(wheel: zipfile.ZipFile) -> None:
    meta = metadata(wheel)
    assert meta["Name"] == "langchain-kimi"
    assert meta["License-Expression"] == "MIT" and meta["License-File"] == "LICENSE"
    urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL") or [])
    assert set(urls) == {"Homepage", "Documentation", "Changelog", "Issues"}
    classifiers = set(meta.get_all("Classifier") or [])
    assert {
        "Programming Language :: Python :: 3.11",
        "Development Status :: 4 - Beta",
        "Intended Audience :: Developers",
        "Typing :: Typed",
    } <= classifiers
    requires = {
        r.split(">")[0].split("<")[0].split(";")[0] for r in meta.get_all("Requires-Dist") or []
    }
    assert {"langchain-core", "requests", "aiohttp", "pydantic"} <= requires


def test_the_wheel_declares_both_commands(wheel: zipfile.ZipFile) -> None:
    [entry_points] = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "kimi-chat = langchain_kimi.__main__:main" in text
    assert "kimi-sim = langchain_kimi.testing.__main__:main" in text
