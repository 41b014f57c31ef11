"""Config -> every request the dataset needs, each with a stable cache key, and the row layout.

Split rule (documented in the README): `n_high = round_half_up(size * percent_high)`, `n_low = size - n_high`;
within each quality `n_man = round_half_up(n_quality * percent_male)`, the rest are women. The counts always
add up to `size`, and each count never shrinks when `size` grows, so a larger run plans a superset of the
requests of a smaller one and reuses all of its answers.

As in the notebook, CVs do not depend on sex: within a quality the first `n_man` CV samples are men's and
the rest women's. Clues are per sex: the i-th man (men ordered high then low, by CV sample) gets man-clue i.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from .config import RunConfig
from .prompts import QUALITIES, SEXES, Message

KEY_VERSION = 1
REDRAW_SEED_STRIDE = 1_000_000_000  # above any sample index a dataset plans
Stage = Literal["cv", "clue"]
STAGES: tuple[Stage, ...] = ("cv", "clue")


@dataclass(frozen=True, slots=True)
class Job:
    """One request to make: which stage and variant, which sample, its messages and its cache key."""

    key: str
    stage: Stage
    variant: str  # quality for CVs, sex for clues
    sample: int
    messages: list[Message]
    redraw: int = 0  # n > 0: the n-th new sample asked in place of a flagged answer
    original: str | None = None  # for a redraw, the key of the answer it replaces

    @property
    def seed(self) -> int:
        """The API's `seed`: the sample index, moved far away for a redraw so that it draws anew."""
        return self.sample + self.redraw * REDRAW_SEED_STRIDE


def round_half_up(value: float) -> int:
    # A tiny epsilon absorbs float noise such as 0.7 * 10 = 7.000000000000001 or 0.35 * 10 = 3.4999999999999996.
    return math.floor(value + 0.5 + 1e-9)


def split_counts(size: int, percent_high: float, percent_male: float) -> dict[tuple[str, str], int]:
    """How many CVs in each (quality, sex) cell; the cells always add up to `size`."""
    n_high = round_half_up(size * percent_high)
    counts: dict[tuple[str, str], int] = {}
    for quality, n_quality in (("high", n_high), ("low", size - n_high)):
        n_man = round_half_up(n_quality * percent_male)
        counts[(quality, "man")] = n_man
        counts[(quality, "woman")] = n_quality - n_man
    return counts


def _stage_counts(config: RunConfig) -> dict[tuple[Stage, str], int]:
    cells = split_counts(config.size, config.percent_high, config.percent_male)
    counts: dict[tuple[Stage, str], int] = {}
    for quality in QUALITIES:
        counts[("cv", quality)] = cells[(quality, "man")] + cells[(quality, "woman")]
    for sex in SEXES:
        counts[("clue", sex)] = cells[("high", sex)] + cells[("low", sex)]
    return counts


def canonical_json(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(config: RunConfig, messages: list[Message], sample: int) -> str:
    """sha256 of everything that changes the answer, and nothing else (not limits, paths, concurrency)."""
    return _KeyMaker(config, messages).key(sample)


class _KeyMaker:
    """Hashes the canonical document once per variant, then only the sample index per job.

    The canonical JSON has sorted keys, so the sample index sits between a fixed prefix and suffix;
    hashing the prefix once makes planning 40,000 keys cost milliseconds instead of re-serialising prompts.
    """

    _SENTINEL = -7_777_777

    def __init__(self, config: RunConfig, messages: list[Message], redraw: int = 0) -> None:
        document: dict[str, Any] = {
            "v": KEY_VERSION,
            "provider": config.provider,
            "model": config.model,
            "messages": messages,
            "temperature": config.temperature,
            "max_tokens": config.max_tokens,
            "sample": self._SENTINEL,
        }
        if redraw:  # absent for first draws, so their keys are those of every earlier version
            document["redraw"] = redraw
        prefix, suffix = canonical_json(document).split(f'"sample":{self._SENTINEL}')
        self._prefix = hashlib.sha256((prefix + '"sample":').encode())
        self._suffix = suffix.encode()

    def key(self, sample: int) -> str:
        digest = self._prefix.copy()
        digest.update(str(sample).encode() + self._suffix)
        return digest.hexdigest()


def iter_jobs(config: RunConfig) -> Iterator[Job]:
    """Every request of the dataset, lazily, row by row (a row's CV, then its clue), taking the rows of
    the four (sex, quality) cells in turn.

    Row by row, so a run stopped early (a budget, Ctrl-C) leaves whole rows; cells in turn, so those rows
    are spread over all four cells, and the cost per answer seen early is the dataset's, not that of the
    long high-quality CVs alone.
    """
    cells = split_counts(config.size, config.percent_high, config.percent_male)
    cv_messages = {q: config.prompts.cv_messages(q) for q in QUALITIES}
    clue_messages = {s: config.prompts.clue_messages(s) for s in SEXES}
    cv_keys = {q: _KeyMaker(config, cv_messages[q]) for q in QUALITIES}
    clue_keys = {s: _KeyMaker(config, clue_messages[s]) for s in SEXES}
    # Each cell's rows as in `layout`: (quality, sex, first CV sample, first clue sample, count).
    ranges = []
    for sex in SEXES:
        clue_first = 0
        for quality in QUALITIES:
            cv_first = 0 if sex == "man" else cells[(quality, "man")]
            ranges.append((quality, sex, cv_first, clue_first, cells[(quality, sex)]))
            clue_first += cells[(quality, sex)]
    for i in range(max(count for *_, count in ranges)):
        for quality, sex, cv_first, clue_first, count in ranges:
            if i < count:
                cv_sample, clue_sample = cv_first + i, clue_first + i
                yield Job(cv_keys[quality].key(cv_sample), "cv", quality, cv_sample, cv_messages[quality])
                yield Job(clue_keys[sex].key(clue_sample), "clue", sex, clue_sample, clue_messages[sex])


def redraw_job(config: RunConfig, stage: Stage, variant: str, sample: int, redraw: int, original: str) -> Job:
    """The `redraw`-th new sample asked in place of the flagged answer `original`."""
    messages = config.prompts.cv_messages(variant) if stage == "cv" else config.prompts.clue_messages(variant)
    return Job(_KeyMaker(config, messages, redraw).key(sample), stage, variant, sample, messages, redraw, original)


def planned_counts(config: RunConfig) -> dict[Stage, int]:
    totals: dict[Stage, int] = {"cv": 0, "clue": 0}
    for (stage, _variant), count in _stage_counts(config).items():
        totals[stage] += count
    return totals


def layout(config: RunConfig) -> pl.DataFrame:
    """The dataset's rows in export order (man then woman, high then low, by CV sample) with their keys."""
    cells = split_counts(config.size, config.percent_high, config.percent_male)
    cv_keys = {q: _KeyMaker(config, config.prompts.cv_messages(q)) for q in QUALITIES}
    clue_keys = {s: _KeyMaker(config, config.prompts.clue_messages(s)) for s in SEXES}
    columns: dict[str, list[Any]] = {k: [] for k in ("sex", "quality", "cv_sample", "clue_sample")}
    columns.update(cv_key=[], clue_key=[])
    for sex in SEXES:
        clue_sample = 0
        for quality in QUALITIES:
            first = 0 if sex == "man" else cells[(quality, "man")]
            for cv_sample in range(first, first + cells[(quality, sex)]):
                columns["sex"].append(sex)
                columns["quality"].append(quality)
                columns["cv_sample"].append(cv_sample)
                columns["clue_sample"].append(clue_sample)
                columns["cv_key"].append(cv_keys[quality].key(cv_sample))
                columns["clue_key"].append(clue_keys[sex].key(clue_sample))
                clue_sample += 1
    return pl.DataFrame(
        columns,
        schema={
            "sex": pl.String,
            "quality": pl.String,
            "cv_sample": pl.Int64,
            "clue_sample": pl.Int64,
            "cv_key": pl.String,
            "clue_key": pl.String,
        },
    )
