"""--regenerate-flagged against the fake server: flagged answers are asked again as new samples, within
a bound, the old answers stay cached, and the dataset uses the first clean answer of each row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl

from synthcv.store import open_store

from .conftest import start_server, stop_server, synthcv_env


def run(url: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "synthcv", "run", "--base-url", url, "--size", "40", "--out", str(out), "-q"]
    return subprocess.run(
        [*command, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=synthcv_env(OPENAI_API_KEY="fake-secret-for-tests-0123456789"),
    )


def test_flagged_answers_are_redrawn_once_and_the_dataset_uses_the_clean_ones(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    faulty = start_server(tmp_path / "a", "--faults", "noname=0.25,gendered=0.25")
    try:
        first = run(faulty.url, tmp_path)
        assert first.returncode == 0, first.stderr
    finally:
        stop_server(faulty)
    before = pl.read_ipc(tmp_path / "resumes.feather")
    flagged = before.filter(pl.col("flags") != "")
    assert flagged.height > 0
    assert "rows flagged" in first.stdout
    cv_flagged = flagged.filter(pl.col("flags").str.contains("cv_no_name")).height
    clue_flagged = flagged.filter(pl.col("flags").str.contains("clue_gendered")).height
    assert cv_flagged + clue_flagged > 0

    (tmp_path / "b").mkdir()
    clean = start_server(tmp_path / "b")
    try:
        fixed = run(clean.url, tmp_path, "--regenerate-flagged")
        assert fixed.returncode == 0, fixed.stderr
        asked = len(clean.entries())
        again = run(clean.url, tmp_path, "--regenerate-flagged")
        assert again.returncode == 0, again.stderr
        asked_again = len(clean.entries()) - asked
    finally:
        stop_server(clean)
    assert asked == cv_flagged + clue_flagged  # one new sample per flagged answer, nothing else
    assert asked_again == 0  # the choice is remade from the cache: nothing left to ask
    after = pl.read_ipc(tmp_path / "resumes.feather")
    assert after.filter(pl.col("flags") != "").height == 0
    assert after["cv_redraw"].sum() == cv_flagged
    assert after["clue_redraw"].sum() == clue_flagged
    # Rows that were clean are unchanged, names and callbacks included.
    untouched = before.filter(pl.col("flags") == "")["id"]
    assert (
        after.filter(pl.col("id").is_in(untouched.implode()))
        .drop("model")
        .equals(before.filter(pl.col("flags") == "").drop("model"))
    )
    # The old answers stay in the cache: paid for, and the choice can be remade.
    with open_store(tmp_path / "synthcv-cache.sqlite") as store:
        assert len(store.done_keys()) == 80 + cv_flagged + clue_flagged

    # An export without the flag uses the same choice.
    exported = subprocess.run(
        [sys.executable, "-m", "synthcv", "export", "--base-url", clean.url, "--size", "40", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=synthcv_env(),
    )
    assert exported.returncode == 0, exported.stderr
    assert pl.read_ipc(tmp_path / "resumes.feather").equals(after)


def test_regeneration_stops_at_its_bound_and_keeps_the_original(tmp_path: Path) -> None:
    always = start_server(tmp_path, "--faults", "noname=1.0")  # every CV lacks {NAME}, every time
    try:
        result = run(always.url, tmp_path, "--regenerate-flagged")
        assert result.returncode == 0, result.stderr
        requests = len(always.entries())
    finally:
        stop_server(always)
    assert requests == 40 * (1 + 2) + 40  # each CV, then 2 redraws (max_regenerations); each clue once
    frame = pl.read_ipc(tmp_path / "resumes.feather")
    assert (frame["flags"] == "cv_no_name").all()
    assert (frame["cv_redraw"] == 0).all()  # none clean: the original is used
