"""New samples for flagged answers (`--regenerate-flagged`), and which answer each row then uses.

A flagged CV or clue is asked again as a new sample: the same prompt with its own cache key and API
seed (`plan.redraw_job`). The old answer stays in the cache, so nothing paid for is lost and the choice
can be remade at any time: a row uses the first of its answers (the original, then redraws 1, 2, ...)
that carries no regenerable flag, or the original when every one does. The choice depends only on the
cache's contents, so export, status and a rerun all agree on it.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from .assemble import clean_expr
from .config import RunConfig
from .plan import Job, Stage, redraw_job
from .store import Store
from .validate import REGENERATED_FLAGS, clue_flags, cv_flags, names_person


def _regenerable(flags: dict[str, pl.Expr]) -> pl.Expr:
    return pl.any_horizontal([expr for name, expr in flags.items() if name in REGENERATED_FLAGS])


def _flagged(stage: Stage, candidates: pl.DataFrame, answers: pl.DataFrame, config: RunConfig) -> pl.DataFrame:
    """`candidates` (id, key, name) with a `flagged` column: does the answer under `key` need a redraw."""
    frame = candidates.join(answers, on="key", how="inner").with_columns(clean_expr("content").alias("clean"))
    if stage == "cv":
        check = _regenerable(cv_flags("content", "clean", "finish_reason", config.min_cv_chars))
    else:
        frame = frame.with_columns(names_person(frame["clean"].to_list(), frame["name"].to_list()).alias("named"))
        check = _regenerable(clue_flags("clean", "finish_reason", "named"))
    return frame.with_columns(check.alias("flagged"))


def use_redraws(store: Store, config: RunConfig, planned: pl.DataFrame) -> pl.DataFrame:
    """`planned` (assemble.skeleton) with each key replaced by the answer the row uses.

    Adds `<stage>_original` (the planned key) and `<stage>_redraws` (how many redraws the cache holds);
    sets `<stage>_redraw` to the one chosen.
    """
    stages: tuple[Stage, ...] = ("cv", "clue")
    for stage in stages:
        key, original, chosen, made = f"{stage}_key", f"{stage}_original", f"{stage}_redraw", f"{stage}_redraws"
        planned = planned.with_columns(pl.col(key).alias(original), pl.lit(0, pl.Int64).alias(made))
        redraws = store.redraws(planned[key].to_list())
        if redraws.is_empty():
            continue
        touched = planned.filter(pl.col(key).is_in(redraws["original"].implode())).select("id", key, "name")
        candidates = pl.concat(
            [
                touched.select("id", pl.col(key).alias("key"), pl.lit(0, pl.Int64).alias("redraw"), "name"),
                touched.join(redraws, left_on=key, right_on="original").select("id", "key", "redraw", "name"),
            ]
        )
        answers = store.answers(candidates["key"].to_list())
        checked = _flagged(stage, candidates, answers, config)
        choice = (
            checked.sort("id", "redraw")
            .group_by("id", maintain_order=True)
            .agg(
                # The first clean answer, else the original.
                pl.col("key").filter(~pl.col("flagged")).first().fill_null(pl.col("key").first()).alias("use"),
                pl.col("redraw").filter(~pl.col("flagged")).first().fill_null(0).alias("use_redraw"),
                pl.col("redraw").max().alias("use_made"),
            )
        )
        planned = (
            planned.join(choice, on="id", how="left")
            .with_columns(
                pl.coalesce("use", key).alias(key),
                pl.coalesce("use_redraw", chosen).alias(chosen),
                pl.coalesce("use_made", made).alias(made),
            )
            .drop("use", "use_redraw", "use_made")
        )
    return planned


def redraw_jobs(config: RunConfig, chunks: Iterable[pl.DataFrame], complete: pl.DataFrame) -> list[Job]:
    """A new sample for every answer the dataset uses that carries a regenerable flag, within the bound.

    `chunks` are the dataset's filled rows (with `flags`), `complete` their planned rows (with keys).
    """
    jobs: list[Job] = []
    keys = complete.select(
        "id", "quality", "sex", "cv_sample", "clue_sample", "cv_original", "clue_original", "cv_redraws", "clue_redraws"
    )
    for chunk in chunks:
        flagged = chunk.filter(pl.col("flags") != "").select("id", "flags")
        if flagged.is_empty():
            continue
        for row in flagged.join(keys, on="id").iter_rows(named=True):
            names = set(row["flags"].split(",")) & REGENERATED_FLAGS
            asked: tuple[tuple[Stage, str, int], ...] = (
                ("cv", row["quality"], row["cv_sample"]),
                ("clue", row["sex"], row["clue_sample"]),
            )
            for stage, variant, sample in asked:
                if not any(name.startswith(f"{stage}_") for name in names):
                    continue
                next_redraw = row[f"{stage}_redraws"] + 1
                if next_redraw <= config.max_regenerations:
                    jobs.append(redraw_job(config, stage, variant, sample, next_redraw, row[f"{stage}_original"]))
    return jobs
