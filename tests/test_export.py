"""Exports stay well-formed whatever the model wrote, and chunked writing equals whole-frame writing."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthcv.assemble import fill, skeleton
from synthcv.config import RunConfig
from synthcv.export import export
from synthcv.names import load_names
from synthcv.plan import layout

CONFIG = RunConfig(size=4)
ROWS = skeleton(CONFIG, layout(CONFIG), load_names(None, None))

# Text that breaks naive CSV writers and that spreadsheets would run as formulas.
HOSTILE = st.lists(
    st.sampled_from([*"abc ,;\"'\n\r\t=+-@\\{}", "{NAME}", "é", "\u2028", "🙂"]), min_size=1, max_size=30
).map("".join)


def answers_with(texts: list[str]) -> pl.DataFrame:
    keys = ROWS["cv_key"].to_list() + ROWS["clue_key"].to_list()
    return pl.DataFrame(
        {"key": keys, "content": texts, "finish_reason": ["stop"] * len(keys), "model": ["m"] * len(keys)}
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(HOSTILE.filter(lambda t: t.strip()), min_size=8, max_size=8))
def test_any_text_survives_every_format_unchanged(texts: list[str]) -> None:
    frame = fill(CONFIG, ROWS, answers_with(texts))
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        export(frame, out, ("csv", "feather", "parquet"))
        from_csv = pd.read_csv(out / "resumes.csv", keep_default_na=False)
        from_feather = pd.read_feather(out / "resumes.feather")
        from_parquet = pl.read_parquet(out / "resumes.parquet")
    assert len(from_csv) == frame.height
    for column in ("cv", "clue", "cv_with_clue"):
        expected = frame[column].to_list()
        assert from_csv[column].tolist() == expected  # quotes, newlines and `=` cells come back verbatim
        assert from_feather[column].tolist() == expected
        assert from_parquet[column].to_list() == expected


def test_chunked_export_writes_the_same_files_as_one_frame(tmp_path: Path) -> None:
    config = RunConfig(size=40)
    rows = skeleton(config, layout(config), load_names(None, None))
    keys = rows["cv_key"].to_list() + rows["clue_key"].to_list()
    answers = pl.DataFrame(
        {"key": keys, "content": [f"text {k[:8]}" for k in keys], "finish_reason": "stop", "model": "m"}
    )
    whole = fill(config, rows, answers)
    export(whole, tmp_path / "whole", ("csv", "feather", "parquet"))
    chunks = [fill(config, rows.slice(start, 7), answers) for start in range(0, rows.height, 7)]
    export(chunks, tmp_path / "chunked", ("csv", "feather", "parquet"))
    assert (tmp_path / "whole" / "resumes.csv").read_bytes() == (tmp_path / "chunked" / "resumes.csv").read_bytes()
    for fmt in ("feather", "parquet"):
        reader = pl.read_ipc if fmt == "feather" else pl.read_parquet
        assert reader(tmp_path / "chunked" / f"resumes.{fmt}").equals(whole)
