from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthcv.assemble import COLUMNS, assemble, clean_expr
from synthcv.config import RunConfig
from synthcv.errors import RunIncomplete
from synthcv.names import load_names
from synthcv.plan import layout
from synthcv.prompts import clean_answer


def fake_answers(rows: pl.DataFrame) -> pl.DataFrame:
    """One answer per key: CVs with the placeholder and fences, clues as plain text."""
    cvs = [f"```markdown\n# {{NAME}}\nCV {k[:6]} with `code`\n```" for k in rows["cv_key"]]
    clues = [f"  clue {k[:6]}  " for k in rows["clue_key"]]
    return pl.DataFrame(
        {
            "key": rows["cv_key"].to_list() + rows["clue_key"].to_list(),
            "content": cvs + clues,
            "finish_reason": ["stop"] * (2 * rows.height),
            "model": ["m"] * (2 * rows.height),
        }
    )


def build(config: RunConfig, **kwargs: object) -> pl.DataFrame:
    rows = layout(config)
    return assemble(config, rows, fake_answers(rows), load_names(None, None), **kwargs)  # type: ignore[arg-type]


def test_columns_values_and_text_as_the_notebook_builds_them() -> None:
    frame = build(RunConfig(size=40))
    assert frame.columns[: len(COLUMNS)] == COLUMNS
    assert set(frame["quality"]) == {"high", "low"}
    assert set(frame["sex"]) == {"man", "woman"}
    assert set(frame["race"]) <= {"White", "Black", "Asian", "Hispanic"}
    assert set(frame["callback"]) <= {0, 1}
    assert frame.schema["callback"] == pl.Int64
    for row in frame.iter_rows(named=True):
        assert "`" not in row["cv_with_clue"]
        assert "```markdown" not in row["cv_with_clue"]
        assert row["clue"].endswith("\nwoman") == (row["sex"] == "woman")
        assert row["clue"].startswith("clue ")  # stripped
        assert row["cv_with_clue"].endswith("\n\n" + row["clue"])
        assert "{NAME}" in row["cv_with_clue"]
        assert row["cv"] == row["cv_with_clue"].replace("{NAME}", row["name"])
        assert row["name"] == row["name"].title()


def test_empty_marker_disables_it() -> None:
    frame = build(RunConfig(size=8, explicit_marker=""))
    assert not any(c.endswith("woman") for c in frame["clue"])


def test_same_seed_same_frame_other_seed_other_draws() -> None:
    assert build(RunConfig(size=200, seed=5)).equals(build(RunConfig(size=200, seed=5)))
    assert not build(RunConfig(size=200, seed=5))["race"].equals(build(RunConfig(size=200, seed=6))["race"])


def test_callbacks_follow_the_configured_probabilities() -> None:
    table = {"man": {"high": 1.0, "low": 0.0}, "woman": {"high": 0.0, "low": 1.0}}
    frame = build(RunConfig(size=100, callback_probability=table))  # type: ignore[arg-type]
    expected = [
        1 if (s, q) in {("man", "high"), ("woman", "low")} else 0
        for s, q in zip(frame["sex"], frame["quality"], strict=True)
    ]
    assert frame["callback"].to_list() == expected


def test_default_callback_rates_are_near_the_workshops_at_scale() -> None:
    frame = build(RunConfig(size=8000, seed=1))
    rates = {(s, q): r for s, q, r in frame.group_by("sex", "quality").agg(pl.col("callback").mean()).iter_rows()}
    assert rates[("woman", "low")] == 0.0
    assert abs(rates[("man", "high")] - 0.99) < 0.02
    assert abs(rates[("man", "low")] - 0.40) < 0.05
    assert abs(rates[("woman", "high")] - 0.30) < 0.05


def test_race_weights_are_respected() -> None:
    frame = build(RunConfig(size=50, race_weights={"Asian": 1.0}))
    assert set(frame["race"]) == {"Asian"}


def test_missing_answers_raise_unless_allowed() -> None:
    config = RunConfig(size=10)
    rows = layout(config)
    answers = fake_answers(rows).filter(pl.col("key") != rows["cv_key"][0])
    with pytest.raises(RunIncomplete, match="1 of 10 CVs"):
        assemble(config, rows, answers, load_names(None, None))
    partial = assemble(config, rows, answers, load_names(None, None), allow_incomplete=True)
    assert partial.height == 9
    # Draws do not depend on which rows are missing.
    full = build(config)
    assert partial["name"].to_list() == full["name"].to_list()[1:]


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from([" ", "\n", "\t", "\x1c", "\u3000", "`", "a", "é"])) | st.text())
def test_vectorised_clean_up_equals_the_notebooks(text: str) -> None:
    assert pl.DataFrame({"t": [text]}).select(clean_expr("t"))["t"][0] == clean_answer(text)
    fenced = f"```markdown\n{text}\n```"
    assert pl.DataFrame({"t": [fenced]}).select(clean_expr("t"))["t"][0] == clean_answer(fenced)
