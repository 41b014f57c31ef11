"""What the model wrote, checked: each problem a named flag, computed over a whole chunk of rows at once.

A flag describes one answer (a CV or a clue), so `--regenerate-flagged` can ask that answer again. The
checks and why:

- `cv_no_name`: no `{NAME}` placeholder, so no name (and no race signal) reaches the CV. Flagged, not
  patched: inserting a name line would put words in the model's mouth; regenerate or filter instead.
- `cv_code_fence`: a fence the notebook's clean-up does not remove (```` ```md ````, `~~~`), which
  leaves a stray language tag or fence line in the text.
- `cv_empty`, `cv_short`: nothing, or fewer than `min_cv_chars` characters after clean-up.
- `cv_truncated`, `clue_truncated`: cut at `max_tokens` (finish_reason `length`).
- `cv_refusal`, `clue_refusal`: the answer opens with a refusal ("I'm sorry", "I can't", "As an AI").
- `clue_gendered`: a gendered word or pronoun in the clue itself (the explicit marker appended to women's
  clues is not looked at): the prompt forbids them, so a clue with one is not the subtle clue asked for.
- `clue_name`: the clue names the person: the `{NAME}` placeholder, or the first name or surname the
  row was given.
- `clue_empty`: nothing after clean-up.
"""

from __future__ import annotations

import functools
import re

import polars as pl

CV_FLAGS: dict[str, str] = {
    "cv_no_name": "CV lacks the `{NAME}` placeholder",
    "cv_code_fence": "CV keeps a fence the clean-up leaves (a language tag other than markdown, or ~~~)",
    "cv_empty": "CV is empty",
    "cv_short": "CV is shorter than min_cv_chars",
    "cv_truncated": "CV was cut at max_tokens",
    "cv_refusal": "CV is a refusal",
}
CLUE_FLAGS: dict[str, str] = {
    "clue_gendered": "clue uses a gendered word or pronoun",
    "clue_name": "clue names the person",
    "clue_empty": "clue is empty",
    "clue_truncated": "clue was cut at max_tokens",
    "clue_refusal": "clue is a refusal",
}
FLAGS: dict[str, str] = CV_FLAGS | CLUE_FLAGS
# Truncation is cured by asking the same request again (--retry-truncated), not by a new sample.
REGENERATED_FLAGS = frozenset(FLAGS) - {"cv_truncated", "clue_truncated"}

GENDERED_WORDS = (
    "he",
    "she",
    "him",
    "her",
    "his",
    "hers",
    "himself",
    "herself",
    "man",
    "men",
    "woman",
    "women",
    "male",
    "males",
    "female",
    "females",
    "boy",
    "boys",
    "girl",
    "girls",
    "gentleman",
    "gentlemen",
    "lady",
    "ladies",
    "husband",
    "husbands",
    "wife",
    "wives",
    "father",
    "fathers",
    "mother",
    "mothers",
    "dad",
    "dads",
    "mom",
    "moms",
    "mum",
    "mums",
    "son",
    "sons",
    "daughter",
    "daughters",
    "brother",
    "brothers",
    "sister",
    "sisters",
)
# Titles only before a capitalised name, case and all: "MS degree" and "miss a deadline" are not titles.
GENDERED = r"(?i:\b(?:" + "|".join(GENDERED_WORDS) + r")\b)|\b(?:Mr|Mrs|Ms|Miss)\.?\s+[A-Z]"
REFUSAL = (
    r"(?i)^\W*(?:i'm sorry|i am sorry|sorry,|i apologi[sz]e|i can't|i cannot|i can not|i'm unable|i am unable"
    r"|as an ai)"
)
# A fence with a language tag other than "markdown" (which the clean-up removes whole), or a tilde fence.
STRAY_FENCE = r"```[A-Za-z]|(?m)^\s*~~~"


def _named(flags: dict[str, pl.Expr]) -> pl.Expr:
    """One string column: the names of the true flags, comma-separated, in FLAGS order; "" when none."""
    return (
        pl.concat_list([pl.when(flag).then(pl.lit(name)).otherwise(pl.lit(None)) for name, flag in flags.items()])
        .list.drop_nulls()
        .list.join(",")
    )


def cv_flags(raw: str, cleaned: str, finish_reason: str, min_chars: int) -> dict[str, pl.Expr]:
    text = pl.col(cleaned)
    length = text.str.strip_chars().str.len_chars()  # the clean-up can leave bare newlines
    return {
        "cv_no_name": ~pl.col(raw).str.contains("{NAME}", literal=True),
        "cv_code_fence": pl.col(raw).str.replace_all("```markdown", "", literal=True).str.contains(STRAY_FENCE),
        "cv_empty": length == 0,
        "cv_short": (length > 0) & (length < min_chars),
        "cv_truncated": pl.col(finish_reason).fill_null("") == "length",
        "cv_refusal": text.str.contains(REFUSAL),
    }


def clue_flags(cleaned: str, finish_reason: str, names_person: str) -> dict[str, pl.Expr]:
    text = pl.col(cleaned)
    return {
        "clue_gendered": text.str.contains(GENDERED),
        "clue_name": pl.col(names_person),
        "clue_empty": text.str.strip_chars().str.len_chars() == 0,
        "clue_truncated": pl.col(finish_reason).fill_null("") == "length",
        "clue_refusal": text.str.contains(REFUSAL),
    }


@functools.lru_cache(maxsize=4096)
def _name_pattern(name: str) -> re.Pattern[str] | None:
    # A few hundred names recur across tens of thousands of rows: compile each once.
    words = [re.escape(word) for word in name.split() if len(word) > 1]
    return re.compile(r"\b(?:" + "|".join(words) + r")\b") if words else None


def names_person(clues: list[str | None], names: list[str]) -> pl.Series:
    """Whether each clue holds `{NAME}` or a word of the person's name (whole words, as written)."""
    hits = []
    for clue, name in zip(clues, names, strict=True):
        clue = clue or ""
        pattern = _name_pattern(name)
        hits.append("{NAME}" in clue or (pattern is not None and pattern.search(clue) is not None))
    return pl.Series(hits, dtype=pl.Boolean)


def flag_columns(frame: pl.DataFrame, min_cv_chars: int) -> pl.DataFrame:
    """`frame` (with cv_raw, cv_clean, cv_finish_reason, clue_clean, clue_finish_reason, name) plus
    `cv_flags`, `clue_flags` and `flags`, each a comma-separated list of flag names."""
    frame = frame.with_columns(
        names_person(frame["clue_clean"].to_list(), frame["name"].to_list()).alias("_clue_names_person")
    )
    cv = cv_flags("cv_raw", "cv_clean", "cv_finish_reason", min_cv_chars)
    clue = clue_flags("clue_clean", "clue_finish_reason", "_clue_names_person")
    return (
        frame.with_columns(_named(cv).alias("cv_flags"), _named(clue).alias("clue_flags"))
        .with_columns(
            pl.concat_str(
                [pl.col("cv_flags"), pl.col("clue_flags")],
                separator=",",
            )
            .str.strip_chars(",")
            .alias("flags")
        )
        .drop("_clue_names_person")
    )


def flag_counts(flags: pl.Series) -> dict[str, int]:
    """How many rows carry each flag, for every flag (zeros included), in FLAGS order."""
    counts = dict.fromkeys(FLAGS, 0)
    exploded = flags.filter(flags != "").str.split(",").explode()
    for name, count in exploded.value_counts().iter_rows():
        counts[name] = count
    return counts
