from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthcv.errors import NamesError
from synthcv.names import load_names

from .conftest import SHARED_NAMES


def test_packaged_defaults_have_a_hundred_full_names_per_race_and_sex() -> None:
    names = load_names(None, None)
    for sex in ("man", "woman"):
        for race in ("White", "Black", "Asian", "Hispanic"):
            options = names.names(sex, race)
            assert len(options) == 100
            assert all(len(n.split()) == 2 and n == n.title() for n in options)


@pytest.mark.skipif(not SHARED_NAMES.exists(), reason="the workshop's name files are not beside this checkout")
def test_the_workshops_own_name_files_load() -> None:
    names = load_names(SHARED_NAMES / "top_mens_names.json", SHARED_NAMES / "top_womens_names.json")
    assert "Adam Erickson" in names.names("man", "White")
    assert "Yolanda Vazquez" in names.names("woman", "Hispanic")


def write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "names.json"
    path.write_text(content)
    return path


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps({"W": ["A B"], "B": ["A B"], "A": ["A B"]}), "no key 'H'"),
        (json.dumps({"W": ["A B"], "B": ["A B"], "A": ["A B"], "H": []}), "is empty"),
        (json.dumps({"W": ["A B"], "B": [3], "A": ["A B"], "H": ["A B"]}), "list of non-empty strings"),
    ],
)
def test_malformed_name_files_are_rejected(tmp_path: Path, content: str, expected: str) -> None:
    with pytest.raises(NamesError, match=expected):
        load_names(write(tmp_path, content), None)


def test_missing_name_file(tmp_path: Path) -> None:
    with pytest.raises(NamesError, match="does not exist"):
        load_names(None, tmp_path / "absent.json")
