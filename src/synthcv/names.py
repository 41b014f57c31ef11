"""Per-race, per-sex name lists: the workshop's JSON format (keys W, B, A, H; lists of "FIRST SURNAME")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import NamesError

RACE_CODES: dict[str, str] = {"White": "W", "Black": "B", "Asian": "A", "Hispanic": "H"}


@dataclass(frozen=True)
class NameLists:
    """Title-cased names by sex ("man"/"woman") then race ("White", ...), as the notebook uses them."""

    by_sex_race: dict[str, dict[str, list[str]]]
    sources: dict[str, str]

    def names(self, sex: str, race: str) -> list[str]:
        return self.by_sex_race[sex][race]


def _parse(text: str, source: str) -> dict[str, list[str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise NamesError(f"name file {source} is not valid JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(data, dict):
        raise NamesError(f"name file {source} must be a JSON object with keys W, B, A, H")
    lists: dict[str, list[str]] = {}
    for race, code in RACE_CODES.items():
        names = data.get(code)
        if names is None:
            raise NamesError(f"name file {source} has no key {code!r} ({race}); give lists for W, B, A and H")
        if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
            raise NamesError(f"name file {source}: {code!r} must be a list of non-empty strings")
        if not names:
            raise NamesError(f"name file {source}: the list for {code!r} ({race}) is empty; add names")
        # Python's str.title(), as the notebook applies it: "ADAM ERICKSON" -> "Adam Erickson".
        lists[race] = [n.strip().title() for n in names]
    return lists


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NamesError(f"name file {path} does not exist; check --names-men / --names-women") from None
    except (OSError, UnicodeDecodeError) as error:
        raise NamesError(f"cannot read name file {path}: {error}") from None


def _packaged(filename: str) -> str:
    return resources.files("synthcv.data").joinpath(filename).read_text(encoding="utf-8")


def load_names(men: Path | None, women: Path | None) -> NameLists:
    """The given files, or the lists shipped with synthcv (derived from Census data; see data/NAMES.md)."""
    texts = {
        "man": (_read(men), str(men)) if men else (_packaged("names_men.json"), "synthcv default (men)"),
        "woman": (_read(women), str(women)) if women else (_packaged("names_women.json"), "synthcv default (women)"),
    }
    return NameLists(
        by_sex_race={sex: _parse(text, source) for sex, (text, source) in texts.items()},
        sources={sex: source for sex, (_text, source) in texts.items()},
    )
