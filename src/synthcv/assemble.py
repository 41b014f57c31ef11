"""The polars stage: answers + layout + seeded draws -> the dataset, exactly as the notebook builds it.

Pure: the same rows, answers, names and seed give the same frame. Each random quantity has its own
generator spawned from the seed, so changing e.g. race weights does not reshuffle callbacks.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .config import RACES, RunConfig
from .errors import RunIncomplete
from .names import NameLists
from .validate import flag_columns

COLUMNS = ["cv", "quality", "sex", "clue", "cv_with_clue", "callback", "race", "name"]
EXTRA_COLUMNS = [
    "id",
    "cv_sample",
    "clue_sample",
    "model",
    "cv_finish_reason",
    "clue_finish_reason",
    "flags",
    "cv_redraw",
    "clue_redraw",
]


# Exactly the characters Python's str.strip() removes, so the polars clean-up equals the notebook's.
PYTHON_WHITESPACE = "".join(c for c in map(chr, range(0x110000)) if c.isspace())


def clean_expr(column: str) -> pl.Expr:
    """The notebook's `text.strip().replace("```markdown", "").replace("`", "")`, vectorised."""
    return (
        pl.col(column)
        .str.strip_chars(PYTHON_WHITESPACE)
        .str.replace_all("```markdown", "", literal=True)
        .str.replace_all("`", "", literal=True)
    )


def _draws(config: RunConfig, rows: pl.DataFrame, names: NameLists) -> pl.DataFrame:
    n = rows.height
    callback_rng, race_rng, name_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(3))
    sexes = rows["sex"].to_list()
    qualities = rows["quality"].to_list()

    probability = np.array([config.callback_probability.of(s, q) for s, q in zip(sexes, qualities, strict=True)])
    callback = (callback_rng.random(n) < probability).astype(np.int64)

    weights = np.array([config.race_weights.get(race, 0.0) for race in RACES], dtype=float)
    races = [RACES[i] for i in race_rng.choice(len(RACES), size=n, p=weights / weights.sum())]

    picks = name_rng.random(n)
    chosen = []
    for sex, race, pick in zip(sexes, races, picks, strict=True):
        options = names.names(sex, race)
        chosen.append(options[int(pick * len(options))])
    return pl.DataFrame(
        {"callback": callback, "race": races, "name": chosen},
        schema={"callback": pl.Int64, "race": pl.String, "name": pl.String},
    )


def skeleton(config: RunConfig, rows: pl.DataFrame, names: NameLists) -> pl.DataFrame:
    """Every planned CV with its id and seeded draws (callback, race, name): the dataset without its texts.

    Small (no texts), so it is built whole; draws are made over every planned row, so a row that lacks
    an answer does not shift the others.
    """
    frame = pl.concat([rows.with_row_index("id"), _draws(config, rows, names)], how="horizontal")
    return frame.with_columns(
        pl.col("id").cast(pl.Int64), pl.lit(0, pl.Int64).alias("cv_redraw"), pl.lit(0, pl.Int64).alias("clue_redraw")
    )


def fill(config: RunConfig, rows: pl.DataFrame, answers: pl.DataFrame) -> pl.DataFrame:
    """The dataset rows for some `skeleton` rows: their texts joined, cleaned and named.

    `answers` has key, content, finish_reason, model; rows lacking either answer are left out.
    """
    cv_answers = answers.select(
        pl.col("key").alias("cv_key"),
        pl.col("content").alias("cv_raw"),
        pl.col("finish_reason").alias("cv_finish_reason"),
        "model",
    )
    clue_answers = answers.select(
        pl.col("key").alias("clue_key"),
        pl.col("content").alias("clue_raw"),
        pl.col("finish_reason").alias("clue_finish_reason"),
    )
    frame = (
        rows.join(cv_answers, on="cv_key", how="inner")
        .join(clue_answers, on="clue_key", how="inner")
        .drop_nulls(["cv_raw", "clue_raw"])
        .sort("id")
    )
    marker = pl.when(pl.col("sex") == "woman").then(pl.lit(config.explicit_marker)).otherwise(pl.lit(""))
    frame = frame.with_columns(clean_expr("cv_raw").alias("cv_clean"), clean_expr("clue_raw").alias("clue_clean"))
    frame = flag_columns(frame, config.min_cv_chars)
    frame = frame.with_columns(
        pl.col("cv_clean").alias("cv_with_clue"),
        (pl.col("clue_clean") + marker).alias("clue"),
    ).with_columns((pl.col("cv_with_clue") + "\n\n" + pl.col("clue")).alias("cv_with_clue"))
    return frame.with_columns(
        pl.col("cv_with_clue").str.replace_all("{NAME}", pl.col("name"), literal=True).alias("cv"),
    ).select(COLUMNS + EXTRA_COLUMNS)


def assemble(
    config: RunConfig,
    rows: pl.DataFrame,
    answers: pl.DataFrame,
    names: NameLists,
    *,
    allow_incomplete: bool = False,
) -> pl.DataFrame:
    """The dataset frame, whole. `rows` is `plan.layout(config)`; `answers` has key, content, finish_reason, model.

    Raises RunIncomplete when an answer is missing, unless `allow_incomplete`, which drops those rows.
    """
    planned = skeleton(config, rows, names)
    frame = fill(config, planned, answers)
    missing = planned.height - frame.height
    if missing and not allow_incomplete:
        raise RunIncomplete(
            f"{missing} of {planned.height} CVs lack an answer in the cache; run `synthcv run` again to fetch them"
        )
    return frame
